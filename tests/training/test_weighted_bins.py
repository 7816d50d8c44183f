"""The rate heads' pre-binning gives the booster exactly the bins it would have found itself, only faster."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from tests.estimator_contract import EstimatorContract
from training.weighted_bins import WeightedQuantileBins

CATEGORICAL = 4


def weighted_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns of the kinds the ranker has, with binomial-style weights: heavy-tailed reach, a rate with many
    ties, a share with missing values, a low-cardinality count, a categorical code."""
    rng = np.random.default_rng(seed)
    reach = rng.lognormal(8, 2.5, n)
    rate = np.round(rng.beta(2, 30, n), 3)
    share = np.where(rng.random(n) < 0.2, np.nan, rng.random(n))
    count = rng.integers(0, 12, n).astype(float)
    code = rng.integers(0, 5, n).astype(float)
    X = np.column_stack([reach, rate, share, count, code])
    labels = (rng.random(n) < 0.1 + 0.5 * rate).astype(float)
    weights = np.where(rng.random(n) < 0.5, rng.integers(1, 40, n), rng.gamma(0.5, 8.0, n)) + 1e-3
    return X, labels, weights


def booster(**extra) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=25, categorical_features=[CATEGORICAL], early_stopping=False, random_state=0, **extra
    )


class TestWeightedQuantileBins(EstimatorContract):
    estimator_class = WeightedQuantileBins
    params: ClassVar[dict] = {"skip": (CATEGORICAL,)}
    # 0 put every value of a column in one bin; -3 and 2.5 failed in numpy's linspace, naming no parameter.
    refused: ClassVar[list] = [
        ({"max_bins": 0}, "Got max_bins=0; expected a whole number from 2 to 255 (the booster's max_bins)"),
        ({"max_bins": -3}, "Got max_bins=-3; expected a whole number from 2 to 255 (the booster's max_bins)"),
        ({"max_bins": 2.5}, "Got max_bins=2.5; expected a whole number"),
        ({"max_bins": 256}, "Got max_bins=256; expected a whole number from 2 to 255 (the booster's max_bins)"),
        ({"skip": [1.5]}, "Got skip=[1.5]; expected a tuple of whole numbers"),
    ]

    def fit_args(self) -> tuple:
        X, _, weights = weighted_rows(3000, seed=1)
        return X, None, weights

    def uses(self) -> dict:
        return {"transform": lambda bins: bins.transform(weighted_rows(200, seed=2)[0])}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholds_are_the_boosters_own(seed):
    X, labels, weights = weighted_rows(6000, seed)
    native = booster().fit(X, labels, sample_weight=weights)
    bins = WeightedQuantileBins(skip=(CATEGORICAL,)).fit(X, sample_weight=weights)
    # The booster moves categorical columns to the front before binning.
    booster_order = [CATEGORICAL, *(c for c in range(X.shape[1]) if c != CATEGORICAL)]
    for column, found in enumerate(bins.thresholds_):
        if found is not None:
            np.testing.assert_array_equal(found, native._bin_mapper.bin_thresholds_[booster_order.index(column)])
    assert [found is not None for found in bins.thresholds_] == [True, False, True, False, False]


def test_the_booster_on_bin_numbers_predicts_the_same_bits_as_on_raw_values():
    X, labels, weights = weighted_rows(6000, seed=3)
    monotone = {"monotonic_cst": [1, 1, 0, 0, 0]}
    native = booster(**monotone).fit(X, labels, sample_weight=weights)
    bins = WeightedQuantileBins(skip=(CATEGORICAL,)).fit(X, sample_weight=weights)
    binned = booster(**monotone).fit(bins.transform(X), labels, sample_weight=weights)
    # Unseen rows, beyond the training range on both sides and with missing values where training had none.
    new, _, _ = weighted_rows(2000, seed=4)
    new[:50, 0] = np.concatenate([np.full(25, 1e-9), np.full(25, 1e12)])
    new[50:100, 1] = np.nan
    np.testing.assert_array_equal(binned.predict_proba(bins.transform(new)), native.predict_proba(new))


def test_without_weights_or_past_the_boosters_subsample_every_column_passes_through():
    X, _, weights = weighted_rows(500, seed=5)
    unweighted = WeightedQuantileBins().fit(X)
    assert unweighted.thresholds_ == [None] * X.shape[1]
    np.testing.assert_array_equal(unweighted.transform(X), X)
    big = np.repeat(X, 401, axis=0)  # over 200,000 rows: the booster subsamples instead of weighting
    assert WeightedQuantileBins().fit(big, sample_weight=np.repeat(weights, 401)).thresholds_ == [None] * X.shape[1]


def test_a_table_of_another_width_is_refused_naming_both():
    X, _, weights = weighted_rows(500, seed=6)
    bins = WeightedQuantileBins().fit(X, sample_weight=weights)
    with pytest.raises(ValueError, match="X has 3 features, but WeightedQuantileBins is expecting 5 features as input"):
        bins.transform(X[:, :3])


@pytest.mark.parametrize(
    ("X", "message"),
    [
        # Taken for one column of values, it failed with "IndexError: tuple index out of range".
        (np.arange(10.0), "Expected 2D array, got 1D array instead"),
        # Both were accepted: thresholds for no rows, and a column of inf binned as if it were values.
        (np.empty((0, 5)), r"Found array with 0 sample\(s\) \(shape=\(0, 5\)\) while a minimum of 1 is required"),
        (np.full((50, 2), np.inf), "Input X contains infinity"),
    ],
)
def test_rows_it_cannot_bin_get_scikit_learns_own_errors(X, message):
    with pytest.raises(ValueError, match=message):
        WeightedQuantileBins().fit(X, sample_weight=np.ones(len(X)))
    fitted = WeightedQuantileBins().fit(np.ones((3, X.shape[1] if X.ndim == 2 else 1)))
    with pytest.raises(ValueError, match=message):
        fitted.transform(X)


def test_weights_of_another_length_are_refused_naming_both():
    X, _, weights = weighted_rows(500, seed=7)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[500, 499\]"):
        WeightedQuantileBins().fit(X, sample_weight=weights[:-1])
    big = np.repeat(X, 401, axis=0)  # past the booster's subsample, where no weight is used
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[200500, 200499\]"):
        WeightedQuantileBins().fit(big, sample_weight=np.ones(len(big) - 1))
