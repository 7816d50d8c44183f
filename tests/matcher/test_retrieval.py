"""Candidate retrieval's two channels: similarity to the brief (FAISS) and proven value in the category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.embeddings import campaign_vectors, creator_vectors
from matcher.api import Matcher, MatchSettings
from matcher.candidate_index import CandidateIndex
from matcher.retrieval import proven_value

# Small channels on a 400-creator world, so that each leaves most creators out.
SMALL = MatchSettings(candidates=20, proven_candidates=20)


@pytest.fixture(scope="module")
def chunk(campaigns):
    return campaigns.iloc[:4].reset_index(drop=True)


def candidates_of(matcher: Matcher, chunk: pd.DataFrame, vectors: np.ndarray) -> list[set[int]]:
    """Each campaign's candidate creators (table rows)."""
    campaign_rows, creator_rows = matcher.scorer.retrieval.candidates(chunk, vectors)
    return [set(creator_rows[campaign_rows == k].tolist()) for k in range(len(chunk))]


def test_a_proven_seller_far_from_the_brief_is_still_a_candidate(creators, chunk, ranker, embedder):
    vectors_of_creators = creator_vectors(embedder, creators)
    index = CandidateIndex.build(vectors_of_creators, creators["creator_id"], embedder.model)
    both = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=SMALL)
    no_proven = MatchSettings(candidates=SMALL.candidates, proven_candidates=0)
    similar_only = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=no_proven)
    vectors = campaign_vectors(embedder, chunk)
    similarity = vectors @ vectors_of_creators.T

    found, found_by_similarity = candidates_of(both, chunk, vectors), candidates_of(similar_only, chunk, vectors)

    for k, category in enumerate(chunk["category"]):
        rank = np.argsort(np.argsort(-similarity[k]))  # 0 = the creator closest to the brief
        proven = both.scorer.retrieval.proven(category)
        far = max(proven.tolist(), key=lambda row: rank[row])
        assert rank[far] >= len(both.creators) // 2, "the least similar proven creator is in the far half"
        assert both.scorer.history["hist_campaigns"].iloc[far] > 0, "proven: it has a record"
        assert far in found[k]
        assert far not in found_by_similarity[k], "similarity alone would have missed it"
        assert found[k] == found_by_similarity[k] | set(proven.tolist())


def test_a_close_creator_without_a_record_is_a_candidate_and_a_closed_one_never(creators, chunk, ranker, embedder):
    """A newcomer whose profile reads like the brief comes in through similarity; one who does not accept
    campaigns is filtered inside the search, however close."""
    campaign = chunk.iloc[0]
    profile = {
        "creator_type": "social_creator",
        "platforms": ["instagram"],
        "interest_tags": [campaign["category"]],
        "bio": campaign["brief"],
        "followers": 800,
    }
    newcomers = pd.DataFrame(
        [
            {"creator_id": "newcomer", **profile},
            {"creator_id": "closed", **profile, "accepts_campaigns": False},
        ]
    )
    table = pd.concat([creators.drop(columns="row"), newcomers], ignore_index=True)
    matcher = Matcher(table, model=ranker, embedder=embedder, settings=SMALL)  # index built from the table
    row = {name: int(np.flatnonzero(matcher.creators["creator_id"] == name)[0]) for name in ("newcomer", "closed")}
    vectors = campaign_vectors(embedder, chunk.iloc[:1])

    (found,) = candidates_of(matcher, chunk.iloc[:1], vectors)

    assert matcher.scorer.history["hist_campaigns"].iloc[row["newcomer"]] == 0, "no record"
    assert row["newcomer"] not in set(matcher.scorer.retrieval.proven(campaign["category"]).tolist())
    similarity = vectors[0] @ matcher.scorer.creator_vectors[np.arange(len(matcher.creators))].T
    assert np.argsort(-similarity)[:2].tolist() in ([row["newcomer"], row["closed"]], [row["closed"], row["newcomer"]])
    assert row["newcomer"] in found
    assert row["closed"] not in found


def test_proven_value_is_reach_times_record_times_interests():
    """Hand-computed: reach is past impressions per campaign, else stated views, else 10% of followers."""
    creators = pd.DataFrame(
        {"followers": [20_000, 20_000, 1_000_000], "avg_views": [5_000.0, np.nan, np.nan]},
    )
    history = pd.DataFrame(
        {
            "hist_campaigns": [0, 0, 4],
            "hist_impressions": [0, 0, 40_000],
            "hist_clicks": [0, 0, 90],
            "hist_orders": [0, 0, 15],
            "hist_prior_clicks": [0.0, 0.0, 30.0],
            "hist_prior_orders": [0.0, 0.0, 5.0],
        }
    )
    topical = pd.DataFrame({"tag_affinity_ctr": [1.2, 1.0, 1.0], "tag_affinity_cvr": [1.5, 1.0, 0.5]})

    value = proven_value(creators, history, topical)

    # 1: no record (lifts 1), stated views 5,000, interests 1.2 x 1.5: 5,000 x 1.8 = 9,000.
    # 2: no record, no stated views: 10% of 20,000 followers = 2,000.
    # 3: 40,000 impressions over 4 campaigns = 10,000 reach (not 10% of its million followers);
    #    click lift (90 + 30) / (30 + 30) = 2, order lift (15 + 5) / (5 + 5) = 2; interests 0.5:
    #    10,000 x 2 x 2 x 0.5 = 20,000.
    np.testing.assert_allclose(value, [9_000.0, 2_000.0, 20_000.0])


def test_scores_are_the_same_whether_per_category_tables_are_kept_or_pairs_computed(
    creators, chunk, ranker, embedder, monkeypatch
):
    """Above TOPICAL_CACHE_VALUES, retrieval computes a chunk's interest affinities for its pairs alone instead of
    keeping a table per category, and whole-table affinities are computed a block of rows at a time: the
    matches are equal to the last bit."""
    vectors = creator_vectors(embedder, creators)
    index = CandidateIndex.build(vectors, creators["creator_id"], embedder.model)
    kept = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=SMALL)
    matches = kept.match_many(chunk).matches
    monkeypatch.setattr("matcher.retrieval.TOPICAL_CACHE_VALUES", 0)
    monkeypatch.setattr("matcher.retrieval.TOPICAL_BLOCK", 7)  # the whole table's, a few rows at a time
    computed = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=SMALL)

    pd.testing.assert_frame_equal(computed.match_many(chunk).matches, matches, check_exact=True)
    assert len(matches)
    assert kept.scorer.retrieval._topical and not computed.scorer.retrieval._topical


def test_a_campaign_where_few_audiences_are_still_gets_its_similar_creators(creators, chunk, ranker, embedder):
    """The audience rule is in the similarity channel's search: a campaign run only where few creators' audiences
    are gets `candidates` creators who all pass it, not the nearest `candidates` less those who fail it."""
    vectors_of_creators = creator_vectors(embedder, creators)
    index = CandidateIndex.build(vectors_of_creators, creators["creator_id"], embedder.model)
    no_proven = MatchSettings(candidates=SMALL.candidates, proven_candidates=0)
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=no_proven)
    audiences = creators["audience_marketplaces"]
    stated = audiences.map(lambda a: isinstance(a, dict) and bool(a)).to_numpy()
    shares = {code: audiences[stated].map(lambda a, code=code: a.get(code, 0.0)) for code in ("DE", "JP", "AU")}
    rare = min(shares, key=lambda code: (shares[code] >= 0.05).mean())
    remote = chunk.assign(marketplaces=[[rare]] * len(chunk))
    vectors = campaign_vectors(embedder, remote)
    passing = matcher.scorer.retrieval.reaching([rare]) & matcher.eligibility.in_table
    assert passing.sum() < len(passing) / 2, "most creators' audiences are elsewhere"

    found = candidates_of(matcher, remote, vectors)

    similarity = vectors @ vectors_of_creators.T
    for k in range(len(remote)):
        assert len(found[k]) == SMALL.candidates
        assert all(passing[row] for row in found[k])
        best_passing = np.argsort(-np.where(passing, similarity[k], -np.inf))[: SMALL.candidates]
        assert found[k] == set(best_passing.tolist()), "the closest creators who pass, not fewer"
    scored = matcher.scored_candidates(remote)
    assert scored.groupby("campaign_id").size().min() == SMALL.candidates
