"""The behaviour every ranker must show; a ranker's test class inherits RankerContract and names the class.

RankerContract includes scikit-learn's estimator conventions (tests/estimator_contract.py). A ranker is fitted on
pair features (`features.pairwise.FEATURES`, some of them missing: MISSING_FEATURES) and per-pair outcomes
(impressions, clicks, orders), and predicts expected impressions and the click and order rates.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from features.pairwise import FEATURES, OPTIONAL_FEATURES, without_history
from tests.estimator_contract import EstimatorContract

__all__ = ["MISSING_FEATURES", "RankerContract", "synthetic_pairs"]

# Features real pairs often have no value for: the creator's optional profile fields and what only a record gives
# (the features `without_history` leaves unknown). A trial's 282 held-out pairs had log_avg_views missing in 44,
# avg_dwell_seconds in 60, storefront_return_rate in 64 and hist_market_share in 20.
_WITHOUT_RECORD = without_history(pd.DataFrame(np.zeros((1, len(FEATURES))), columns=FEATURES))
MISSING_FEATURES = [*OPTIONAL_FEATURES, *(name for name in FEATURES if _WITHOUT_RECORD[name].isna().all())]


def synthetic_pairs(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pair features with outcomes whose rates rise with similarity and history lift."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    X["creator_type_code"] = rng.integers(0, 8, n).astype(float)
    X["category_code"] = rng.integers(0, 16, n).astype(float)
    X["similarity"] = rng.uniform(0, 1, n)
    X["hist_ctr_lift"] = rng.lognormal(0, 0.5, n)
    impressions = rng.poisson(2000 * np.exp(X["log_followers"].to_numpy() * 0.3))
    ctr = 0.01 + 0.06 * X["similarity"].to_numpy() * X["hist_ctr_lift"].to_numpy() / 2
    clicks = rng.binomial(impressions, np.clip(ctr, 0, 0.5))
    orders = rng.binomial(clicks, np.clip(0.02 + 0.05 * X["similarity"].to_numpy(), 0, 1))
    return X, pd.DataFrame({"impressions": impressions, "clicks": clicks, "orders": orders})


class RankerContract(EstimatorContract):
    """Mix into a test class and set `ranker_class` (and `params`) to hold a ranker to the project's rules."""

    ranker_class: ClassVar[type]
    params: ClassVar[dict] = {}

    @property
    def estimator_class(self) -> type:
        return self.ranker_class

    def fit_args(self) -> tuple:
        return synthetic_pairs()

    def uses(self) -> dict:
        X, _ = synthetic_pairs(200, seed=1)
        return {"predict": lambda ranker: ranker.predict(X)}

    def test_predictions_are_rates_and_counts(self):
        X, _ = self.fit_args()
        out = self.fitted_once().predict(X)
        assert list(out.columns) == ["expected_impressions", "p_click", "p_order"]
        assert len(out) == len(X)
        assert out["p_click"].between(0, 1).all() and out["p_order"].between(0, 1).all()
        assert (out["expected_impressions"] >= 0).all()

    def test_no_rows_no_predictions(self):
        """A campaign with no candidate is scored like any other: zero rows in, the same columns out."""
        X, _ = self.fit_args()
        out = self.fitted_once().predict(X.iloc[:0])
        assert out.empty and list(out.columns) == ["expected_impressions", "p_click", "p_order"]

    def test_same_seed_same_predictions(self):
        X, y = self.fit_args()
        first = self.fitted_once().predict(X)
        second = self.fitted(X, y).predict(X)
        pd.testing.assert_frame_equal(first, second)

    def test_learns_the_signal(self):
        """Predicted click-through rises with the feature that drives it."""
        X, _ = self.fit_args()
        out = self.fitted_once().predict(X)
        assert np.corrcoef(out["p_click"], X["similarity"] * X["hist_ctr_lift"])[0, 1] > 0.5

    def test_missing_values_in_the_optional_features_are_taken(self):
        """Fitted and scoring with NaN in the features real pairs miss, the predictions are finite: a ranker that
        could not take NaN passed the rest of this contract, then failed in training ("Input X contains NaN")."""
        assert set(MISSING_FEATURES) <= set(FEATURES)
        X, y = synthetic_pairs()
        rng = np.random.default_rng(3)
        holes = X.copy()
        for name in MISSING_FEATURES:
            holes.loc[rng.random(len(X)) < 0.2, name] = np.nan
        none_known = X.iloc[:50].assign(**dict.fromkeys(MISSING_FEATURES, np.nan))
        ranker = self.fitted(holes, y)
        for scored in (holes, none_known):
            out = ranker.predict(scored)
            assert len(out) == len(scored) and np.isfinite(out.to_numpy(float)).all()

    def test_errors_name_the_problem(self):
        X, y = synthetic_pairs(200)
        with pytest.raises(ValueError, match="outcome"):
            self.make().fit(X, y.drop(columns="orders"))
        bad = y.assign(clicks=y["impressions"] + 1)
        with pytest.raises(ValueError, match="clicks above impressions"):
            self.make().fit(X, bad)

    def test_sample_weight_moves_the_fit_toward_the_heavier_rows(self):
        """The same pairs twice, once with the outcomes as drawn and once with a third of the clicks and a ninth of
        the orders: weighing one copy ten times the other moves both predicted rates toward that copy's."""
        X, y = synthetic_pairs(1500)
        fewer = y.assign(clicks=y["clicks"] // 3, orders=y["orders"] // 9)
        stacked_X, stacked_y = pd.concat([X, X], ignore_index=True), pd.concat([y, fewer], ignore_index=True)
        heavy_first = np.r_[np.full(len(X), 10.0), np.ones(len(X))]
        toward_drawn = self.fitted(stacked_X, stacked_y, sample_weight=heavy_first).predict(X)
        toward_fewer = self.fitted(stacked_X, stacked_y, sample_weight=heavy_first[::-1].copy()).predict(X)
        assert toward_drawn["p_click"].mean() > 1.5 * toward_fewer["p_click"].mean()
        assert toward_drawn["p_order"].mean() > 1.5 * toward_fewer["p_order"].mean()

    def test_sample_weight_of_the_wrong_length_or_sign_is_refused(self):
        X, y = synthetic_pairs(200)
        with pytest.raises(ValueError, match="sample_weight"):
            self.make().fit(X, y, sample_weight=np.ones(199))
        with pytest.raises(ValueError, match="sample_weight"):
            self.make().fit(X, y, sample_weight=np.r_[-1.0, np.ones(199)])
