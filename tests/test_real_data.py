"""Real creators and real product titles with no history (tests/fixtures; sources and the relevance rules in the
files' headers), on the three pairs of real files: slates are full and on topic, and beat raw embedding similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.embeddings import campaign_vectors, creator_vectors
from features.product_type import UNCERTAIN
from matcher.api import Matcher, MatchSettings
from matcher.scoring import interests_relate
from matcher.slate import SlatePolicy
from tests.real_fixtures import FIRST, REAL_FIXTURES, SECOND, THIRD, pure_ranking, topical_precision
from training.registry import load_ranker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=REAL_FIXTURES, ids=lambda fixture: fixture.key)
def real_run(request, trained, embedder):
    """Every third title of the departments that have relevant creators, all matched in one run."""
    fixture = request.param
    titles = fixture.titles()
    titles = titles[titles["category"].isin(fixture.departments)].iloc[::3].reset_index(drop=True)
    campaigns = fixture.campaigns(titles)
    matcher = Matcher(fixture.creators(), model=load_ranker(trained.model_uri), embedder=embedder)
    return fixture, matcher, campaigns, matcher.match_many(campaigns)


def test_every_campaign_gets_a_slate_and_says_it_rests_on_no_record(real_run):
    _, _, campaigns, result = real_run
    assert {s.status for s in result.summaries} == {"matched"}
    assert set(result.matches["campaign_id"]) == set(campaigns["campaign_id"])
    assert result.matches["reasons"].str.contains("no record yet").all()


def test_every_slate_reaches_the_policy_minimum_though_no_creator_has_a_record(real_run):
    """71 campaigns share 300 creators (72 share 260 in the second pair), 5 campaigns each at most, and nobody has a
    record: the unproven limit does not shrink the slates, and capacity goes first where a slate would fall below its
    minimum."""
    _, matcher, _, result = real_run
    sizes = result.matches.groupby("campaign_id").size()
    policy = matcher.settings.slate
    minimum = {s.campaign_id: policy.minimum_for(s.product_type) for s in result.summaries}
    for s in result.summaries:  # an uncertain type is sized between the two kinds' minimums, by its probability
        if UNCERTAIN[0] <= s.product_type_probability <= UNCERTAIN[1]:
            p = s.product_type_probability
            minimum[s.campaign_id] = round(policy.min_size + p * (policy.min_non_standard_size - policy.min_size))
    short = {c: int(sizes.get(c, 0)) for c, m in minimum.items() if sizes.get(c, 0) < m}
    assert short == {}
    assert (result.matches.groupby("creator_id").size() <= policy.capacity).all()


# The third pair, built after the rules were tuned on the first two to measure whether they generalize, misses the
# ratio to raw similarity, as measured by benchmarks/real_data.py on all 144 titles (ranker trained on `main`): slates
# one at a time 0.750 and the pure ranking 0.750 against raw similarity 0.775 (0.97x); 0.6 is met. By department the
# ranking is 1.000 on music, sports and automotive titles, whose creator categories name the department, and 0.000 on
# electronics titles, whose relevant creators are tagged "Science & Technology" (docs/measurements.md, "Real data, a
# third pair"). Strict: a change that meets the targets must say so; the pair's rule must not be tuned to it.
THIRD_MISSES_RATIO = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="third real pair: slates 0.750 vs raw similarity 0.775 (electronics titles 0.000)",
)


@pytest.mark.parametrize(
    "real_run",
    [FIRST, SECOND, pytest.param(THIRD, marks=THIRD_MISSES_RATIO)],
    indirect=True,
    ids=lambda fixture: fixture.key,
)
def test_slates_are_on_topic_and_beat_raw_similarity(real_run, embedder):
    """Each campaign's slate as if it ran alone: the first pair has 29 on-topic creators for 71 campaigns (the second
    30 per department for 12 campaigns each), so the per-run capacity (5 campaigns a creator) would otherwise decide
    who is left, not the ranking."""
    fixture, matcher, campaigns, _ = real_run
    alone = MatchSettings(slate=SlatePolicy(capacity=None))
    result = Matcher(matcher.creators, model=matcher.ranker, index=matcher.index, embedder=embedder, settings=alone)
    result = result.match_many(campaigns)
    creators = matcher.creators
    relevant_to = fixture.relevant(creators)
    profile, brief = creator_vectors(embedder, creators), campaign_vectors(embedder, campaigns)
    slates, similarity = [], []
    for k, (campaign_id, category) in enumerate(zip(campaigns["campaign_id"], campaigns["category"], strict=True)):
        relevant = relevant_to[category]
        slates.append(topical_precision(result.for_campaign(campaign_id)["creator_id"].tolist(), relevant))
        nearest = creators["creator_id"].to_numpy()[np.argsort(-(profile @ brief[k]), kind="stable")]
        similarity.append(topical_precision(list(nearest), relevant))
    # benchmarks/real_data.py measured the ranking's first 10 against raw similarity at 1.000 vs 0.767 on the first
    # pair's 213 judged titles, and 0.992 vs 0.681 on the second pair's 216 (0.519 until interests history never saw,
    # "interior", "family", "pet", were read through known ones close in meaning: `TagCategoryAffinity.with_stand_ins`).
    assert np.nanmean(slates) >= 0.6
    assert np.nanmean(slates) >= 1.15 * np.mean(similarity)


# The first pair only: its titles are where the ranker alone was seen to put the loud creator above related ones.
@pytest.mark.parametrize("real_run", [FIRST], indirect=True, ids=lambda fixture: fixture.key)
def test_new_creators_whose_interests_fit_the_brief_come_before_the_others_whatever_their_reach(real_run, embedder):
    """With no record on either side, a creator whose interests relate to the product (a tag at the measured cosine,
    or one the history ties to the category) scores above one whose do not, however many followers the latter has:
    here one with 50 million followers and interests in fishing and motorsport, whom the ranker's scores alone put
    above related creators."""
    _, matcher, campaigns, _ = real_run
    campaigns = campaigns.iloc[::3].reset_index(drop=True)
    loud = matcher.creators.iloc[[0]].assign(
        creator_id="loud-unrelated",
        interest_tags=[["fishing", "motorsport"]],
        bio=None,
        followers=50_000_000,
        avg_views=5_000_000,
        audience_marketplaces=None,
    )
    creators = pd.concat([matcher.creators, loud], ignore_index=True)
    wide = pure_ranking(30)
    outscored = {}
    for first in (True, False):
        runner = Matcher(
            creators, model=matcher.ranker, embedder=embedder, settings=MatchSettings(slate=wide, related_first=first)
        )
        evidence = [
            "campaign_id",
            "creator_id",
            "fit_similarity",
            "tag_participation_floor",
            "content_creator",
            "hist_campaigns",
        ]
        slates = runner.match_many(campaigns).matches.merge(runner.candidate_features(campaigns)[evidence])
        assert (slates["hist_campaigns"] == 0).all()
        related = pd.Series(interests_relate(slates), index=slates.index)
        lowest_related = slates[related].groupby("campaign_id")["score"].min()
        mine = slates[(slates["creator_id"] == "loud-unrelated") & ~related].set_index("campaign_id")["score"]
        outscored[first] = int((mine > lowest_related.reindex(mine.index)).sum())
        if first:
            unrelated = slates[~related].groupby("campaign_id")["score"].max()
            both = lowest_related.index.intersection(unrelated.index)
            assert len(both) > 5 and (lowest_related[both] > unrelated[both]).all()
    assert outscored[True] == 0 and outscored[False] > 0, outscored


@pytest.mark.parametrize("real_run", [SECOND], indirect=True, ids=lambda fixture: fixture.key)
def test_creators_alike_in_a_profile_of_tags_alone_share_slates(real_run):
    """The second pair's creators hold one category tag and no bio each, so the 30 of a category share one profile
    text: alike in interests, not copies of each other. The near-duplicate rule, which had kept one of them per
    slate (slates of one creator per category), leaves them to the ranking."""
    _, matcher, _, result = real_run
    assert not matcher.creators["bio"].notna().any()
    profile = matcher.creators.set_index("creator_id")["interest_tags"].map(tuple)
    same_profile = result.matches.assign(profile=result.matches["creator_id"].map(profile))
    largest = same_profile.groupby(["campaign_id", "profile"]).size().groupby("campaign_id").max()
    # Measured: every one of the 72 slates holds 6 to 15 creators of one profile (median 13); before, 1 each.
    assert (largest > 1).all(), largest[largest <= 1]
