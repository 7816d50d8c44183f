"""Real creators and real product titles with no history (tests/fixtures; sources and the relevance rule in the
files' headers): slates are full and on topic, and beat raw embedding similarity."""

from __future__ import annotations

import numpy as np
import pytest

from features.embeddings import campaign_vectors, creator_vectors
from matcher.api import Matcher, MatchSettings
from matcher.slate import SlatePolicy
from tests.real_fixtures import campaigns_from_titles, department, real_creators, real_titles, topical_precision
from training.registry import load_ranker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(trained, embedder):
    titles = real_titles()
    titles = titles[titles["category"].isin(["electronics", "kitchen"])].iloc[::3].reset_index(drop=True)
    campaigns = campaigns_from_titles(titles)
    matcher = Matcher(real_creators(), model=load_ranker(trained.model_uri), embedder=embedder)
    return matcher, campaigns, matcher.match_many(campaigns)


def test_every_campaign_gets_a_slate_and_says_it_rests_on_no_record(real_run):
    _, campaigns, result = real_run
    assert {s.status for s in result.summaries} == {"matched"}
    assert set(result.matches["campaign_id"]) == set(campaigns["campaign_id"])
    assert result.matches["reasons"].str.contains("no record yet").all()


def test_slates_are_on_topic_and_beat_raw_similarity(real_run, embedder):
    """Each campaign's slate as if it ran alone: the fixture has 29 on-topic creators for 71 campaigns, so the
    per-run capacity (5 campaigns a creator) would otherwise decide who is left, not the ranking."""
    matcher, campaigns, _ = real_run
    alone = MatchSettings(slate=SlatePolicy(capacity=None))
    result = Matcher(matcher.creators, model=matcher.ranker, index=matcher.index, embedder=embedder, settings=alone)
    result = result.match_many(campaigns)
    creators = matcher.creators
    departments = creators["interest_tags"].map(department)
    profile, brief = creator_vectors(embedder, creators), campaign_vectors(embedder, campaigns)
    slates, similarity = [], []
    for k, (campaign_id, category) in enumerate(zip(campaigns["campaign_id"], campaigns["category"], strict=True)):
        relevant = set(creators["creator_id"][departments.map(lambda d, c=category: c in d)])
        slates.append(topical_precision(result.for_campaign(campaign_id)["creator_id"].tolist(), relevant))
        nearest = creators["creator_id"].to_numpy()[np.argsort(-(profile @ brief[k]), kind="stable")]
        similarity.append(topical_precision(list(nearest), relevant))
    # benchmarks/real_data.py measured 1.000 for the ranking's first 10 and 0.767 for raw similarity on all 213.
    assert np.nanmean(slates) >= 0.6
    assert np.nanmean(slates) >= 1.15 * np.mean(similarity)
