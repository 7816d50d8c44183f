"""The range of a slate's orders: split-conformal bounds from held-out campaigns, checked on campaigns drawn as
sellers' campaigns sell (a campaign-wide multiple of the creators' expected orders, then Poisson counts)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from tests.estimator_contract import EstimatorContract
from training.forecast_interval import OrdersInterval, fit_with_check


def campaigns(n: int, seed: int, spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Expected orders of n slates (from under one to hundreds) and what each sold: the expectation times a
    campaign's own log-normal multiple, drawn as a Poisson count."""
    rng = np.random.default_rng(seed)
    expected = rng.lognormal(2.5, 1.5, n)
    return expected, rng.poisson(expected * rng.lognormal(-(spread**2) / 2, spread, n)).astype(float)


class TestOrdersInterval(EstimatorContract):
    estimator_class = OrdersInterval
    params: ClassVar[dict] = {"coverage": 0.8}
    refused: ClassVar[list] = [
        ({"coverage": 1.0}, "Got coverage=1.0; expected a share in (0, 1)"),
        ({"coverage": 0}, "Got coverage=0; expected a share in (0, 1)"),
    ]

    def fit_args(self) -> tuple:
        return campaigns(60, seed=0)

    def uses(self) -> dict:
        expected = np.array([0.0, 0.4, 12.0, 300.0])
        return {"predict": lambda interval: interval.predict(expected)}


@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_new_campaigns_fall_in_the_range_as_often_as_promised(coverage):
    interval = OrdersInterval(coverage=coverage).fit(*campaigns(200, seed=1))
    expected, sold = campaigns(20_000, seed=2)
    low, high = interval.predict(expected)
    inside = float(np.mean((sold >= low) & (sold <= high)))
    # Conformal bounds hold at least the coverage on average over calibration sets; one set of 200 lands near it.
    assert coverage - 0.05 <= inside <= coverage + 0.07
    # Each tail takes about half of what is left out.
    assert abs(np.mean(sold < low) - np.mean(sold > high)) <= 0.06


def test_the_range_widens_with_the_campaigns_spread_and_brackets_the_expectation():
    steady = OrdersInterval().fit(*campaigns(300, seed=3, spread=0.2))
    volatile = OrdersInterval().fit(*campaigns(300, seed=3, spread=1.0))
    expected = np.array([0.0, 2.0, 40.0, 500.0])
    for interval in (steady, volatile):
        low, high = interval.predict(expected)
        assert (low >= 0).all() and (low <= expected).all() and (high >= expected).all()
        assert (np.diff(low) >= 0).all() and (np.diff(high) > 0).all()
    (steady_low, steady_high), (volatile_low, volatile_high) = steady.predict(expected), volatile.predict(expected)
    assert (volatile_high[1:] / np.maximum(volatile_low[1:], 1) > steady_high[1:] / np.maximum(steady_low[1:], 1)).all()


def per_campaign(expected: np.ndarray, sold: np.ndarray) -> pd.DataFrame:
    """Campaigns as `campaign_orders` gives them: one a week, in start order."""
    starts = pd.date_range("2026-01-05", periods=len(expected), freq="7D")
    return pd.DataFrame({"start_date": starts, "expected_orders": expected, "orders": sold})


def test_too_few_campaigns_give_no_range_rather_than_a_narrow_one():
    # At 80%, the 9th of 9 ranked ratios is the first rank that bounds a new one; with 8 there is none.
    interval, metrics = fit_with_check(per_campaign(*campaigns(8, seed=4)))
    low, high = interval.predict(np.array([5.0, 50.0]))
    assert np.isnan(low).all() and np.isnan(high).all()
    assert metrics == {"forecast_campaigns": 8.0}
    # 17 set a range, but their earlier half (8) cannot check it on the later half.
    interval, metrics = fit_with_check(per_campaign(*campaigns(17, seed=4)))
    assert np.isfinite(interval.predict(np.array([5.0]))).all()
    assert set(metrics) == {"forecast_campaigns", "forecast_low_multiple", "forecast_high_multiple"}


def test_the_later_half_check_holds_while_campaigns_stay_alike_and_falls_when_they_change():
    _, metrics = fit_with_check(per_campaign(*campaigns(100, seed=5)))
    assert metrics["forecast_campaigns"] == 100 and 0.7 <= metrics["forecast_later_half_coverage"] <= 0.95
    assert metrics["forecast_low_multiple"] < 1 < metrics["forecast_high_multiple"]
    # The later campaigns' sales swing six times as wide: the earlier half's range holds far fewer of them.
    earlier, later = campaigns(50, seed=6, spread=0.2), campaigns(50, seed=7, spread=1.2)
    _, metrics = fit_with_check(per_campaign(*(np.concatenate(pair) for pair in zip(earlier, later, strict=True))))
    assert metrics["forecast_later_half_coverage"] < 0.6


@pytest.mark.parametrize(
    ("expected", "sold", "message"),
    [
        (np.array([1.0, 2.0]), np.array([1.0]), r"^Got expected_orders of shape \(2,\) and orders of shape \(1,\)"),
        (np.array([1.0, 2.0]), np.array([1.0, -3.0]), "^Got orders with a negative or non-finite value"),
        (np.array([1.0, np.nan]), np.array([1.0, 3.0]), "^Got expected_orders with a negative or non-finite value"),
    ],
)
def test_campaigns_that_are_not_counts_are_refused_naming_which(expected, sold, message):
    with pytest.raises(ValueError, match=message):
        OrdersInterval().fit(expected, sold)
