"""The review's permutation importance: the numbers scikit-learn's own function gives, for less time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sklearn_importance

import training.review as review
from features.pairwise import FEATURES
from features.threads import openmp_threads
from tests.ranker_contract import synthetic_pairs
from training.evaluate import expected_sales, ndcg_by_campaign
from training.ranker import CreatorRanker


@pytest.fixture(scope="module")
def held_out():
    """A small ranker fitted on synthetic pairs, and other synthetic pairs as 12 held-out campaigns with sales."""
    X, y = synthetic_pairs(1500, seed=1)
    ranker = CreatorRanker(max_iter=30).fit(X, y)
    X, y = synthetic_pairs(240, seed=2)
    rng = np.random.default_rng(3)
    price = rng.uniform(10, 200, len(X))
    pairs = X.assign(campaign_id=np.repeat([f"c{i:02d}" for i in range(12)], 20), sales=y["orders"] * price)
    return ranker, pairs, price


def test_importance_is_scikit_learns_to_the_bit(held_out):
    """With a seed other than the default, so that the seed is seen to reach both."""
    ranker, pairs, price = held_out
    seed = 7

    def ndcg_of(estimator, X: pd.DataFrame, _y) -> float:
        return ndcg_by_campaign(pairs, expected_sales(estimator.predict(X), price), 10)

    theirs = sklearn_importance(
        ranker, pairs[FEATURES], np.zeros(len(pairs)), scoring=ndcg_of, n_repeats=3, random_state=seed
    ).importances_mean
    ours = review.permutation_importance(ranker, pairs, price, n_repeats=3, seed=seed)
    assert list(ours.index) == FEATURES
    assert np.array_equal(ours.to_numpy(), theirs)
    assert (ours != 0).any()  # the features matter: shuffling them costs NDCG


def test_importance_is_the_same_when_the_copies_take_several_calls(held_out, monkeypatch):
    ranker, pairs, price = held_out
    whole = review.permutation_importance(ranker, pairs, price)
    monkeypatch.setattr(review, "IMPORTANCE_ROWS_PER_CALL", 7 * len(pairs))  # 7 copies a call: a short last call
    assert np.array_equal(review.permutation_importance(ranker, pairs, price).to_numpy(), whole.to_numpy())


def test_importance_is_the_same_on_two_threads(held_out):
    """A training run predicts the stacked copies on all the machine's OpenMP threads (the suite's workers on one):
    the ranker predicts row by row, so the numbers do not move."""
    ranker, pairs, price = held_out
    whole = review.permutation_importance(ranker, pairs, price)
    with openmp_threads(2):
        assert np.array_equal(review.permutation_importance(ranker, pairs, price).to_numpy(), whole.to_numpy())
