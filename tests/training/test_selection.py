"""Selection weights: past pairs weighed toward the creators a match would have scored (training.selection)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matcher.settings import MatchSettings
from training.dataset import build_training_data, read_training_tables
from training.selection import (
    CANDIDATES_PER_CAMPAIGN,
    MIN_MARKET_SHARE,
    SELECTION_FEATURES,
    WEIGHT_CLIP,
    candidate_pairs,
    effective_share,
    searched_creators,
    selection_weights,
)


def unit_rows(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, 24)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_past_campaigns_are_searched_as_retrieval_searches_new_ones():
    """What training takes for a past campaign's candidates is what matching's similarity channel would take."""
    defaults = MatchSettings()
    assert (defaults.candidates, defaults.min_market_share) == (CANDIDATES_PER_CAMPAIGN, MIN_MARKET_SHARE)


def test_candidates_are_the_closest_creators_who_reach_the_campaigns_marketplaces():
    briefs, profiles = unit_rows(7, 0), unit_rows(60, 1)
    markets = pd.Series([["US"], ["DE"], ["US", "DE"], ["JP"], ["US"], ["DE"], ["UK"]])
    rng = np.random.default_rng(2)
    audience = pd.Series([{"US": share, "DE": 1 - share} for share in rng.uniform(0, 1, 40)] + [None] * 10 + [{}] * 10)
    campaign_rows, creator_rows = candidate_pairs(briefs, markets, profiles, audience, k=5, min_market_share=0.3)
    for campaign, codes in enumerate(markets):
        shares = np.array([sum(a.get(c, 0.0) for c in codes) if a else np.nan for a in audience])
        allowed = np.isnan(shares) | (shares >= 0.3)  # a creator who states no split passes
        similarity = np.where(allowed, profiles @ briefs[campaign], -np.inf)
        expected = np.sort(np.argsort(-similarity, kind="stable")[:5])
        np.testing.assert_array_equal(creator_rows[campaign_rows == campaign], expected)
    # A campaign where few creators reach still gets k, from those who do (or say nothing).
    assert (np.bincount(campaign_rows, minlength=len(markets)) == 5).all()
    # Creators who may not be proposed at all are never candidates.
    eligible = np.arange(60) % 3 != 0
    _, some = candidate_pairs(briefs, markets, profiles, audience, k=5, min_market_share=0.3, eligible=eligible)
    assert eligible[some].all() and len(some) == 5 * len(markets)


def test_every_participant_is_searched_and_the_rest_are_capped_in_a_stable_order():
    ids = pd.Series([f"cr{i:05d}" for i in range(500)])
    participants = np.array([3, 3, 499, 250])
    first = searched_creators(ids, participants, limit=100)
    assert len(first) == 100 and {3, 250, 499} <= set(first)
    np.testing.assert_array_equal(first, searched_creators(ids.copy(), participants[::-1], limit=100))
    np.testing.assert_array_equal(searched_creators(ids, participants, limit=1000), np.arange(500))


def frame_like(n: int, followers: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(SELECTION_FEATURES))), columns=SELECTION_FEATURES)
    frame["creator_type_code"] = rng.integers(0, 5, n).astype(float)
    frame["category_code"] = rng.integers(0, 4, n).astype(float)
    frame["log_followers"] = followers
    return frame.assign(campaign_id=[f"c{i % 40:02d}" for i in range(n)])


def test_participants_like_the_candidates_weigh_more_than_those_unlike_them():
    """Past participants are mostly small creators, the candidates mostly large: a large participant stands for
    many candidates and weighs more; the weights average 1 and stay within the clip."""
    rng = np.random.default_rng(0)
    # Half the rows of before, at half the time (the classifier's 200 rounds per fold cost by the row): the medians
    # of large and small participants' weights still stand 11 to 1 apart at power 0.5 and 13 to 1 at power 1.
    participants = frame_like(750, rng.normal(9, 1, 750), seed=1)
    candidates = frame_like(3000, rng.normal(12, 1, 3000), seed=2)
    weights = selection_weights(participants, candidates, power=0.5)
    assert weights.mean() == pytest.approx(1.0)
    assert weights.max() / weights.min() <= WEIGHT_CLIP**2 + 1e-9
    large = participants["log_followers"].to_numpy() > 10.5
    assert np.median(weights[large]) > 3 * np.median(weights[~large])
    assert 0 < effective_share(weights) < 1
    # Power 1 leans further than the square root; power 0 weighs all alike and reads nothing.
    full = selection_weights(participants, candidates, power=1.0)
    assert np.median(full[large]) / np.median(full[~large]) > np.median(weights[large]) / np.median(weights[~large])
    np.testing.assert_array_equal(selection_weights(participants, candidates, power=0.0), np.ones(750))
    with pytest.raises(ValueError, match=r"Got selection power=1.5; expected a value in \[0, 1\]"):
        selection_weights(participants, candidates, power=1.5)


def test_training_pairs_carry_their_weight_and_weigh_alike_by_default(world_dir, embedder):
    tables = read_training_tables(world_dir)
    default = build_training_data(tables, embedder).pairs["selection_weight"]
    assert (default == 1.0).all()
    weighted = build_training_data(tables, embedder, selection_power=0.5).pairs["selection_weight"].to_numpy()
    assert len(weighted) == len(default)
    assert weighted.mean() == pytest.approx(1.0) and (weighted > 0).all()
    assert 0.2 < effective_share(weighted) < 1.0
