"""A range for a slate's expected orders: split-conformal on the campaigns training held out.

A slate's `expected_orders` sums its creators' expected orders, a point the seller cannot weigh: a campaign sells
more or less than its creators' rates say (the product, the season, the price against its rivals), and a few
creators' orders are few counts. The held-out campaigns say by how much: each one's orders against what the
held-out fit expected of the creators who took part. Their ratios, ranked, bound a new campaign's ratio at the
chosen coverage as long as the new campaign is like them (split conformal prediction: the bound holds on average
over campaigns, with no assumption on the ranker).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features.parameters import check_kinds, refuse
from training.ranker import expected_outcomes

__all__ = ["FORECAST_COVERAGE", "ORDERS_SMOOTHING", "OrdersInterval", "campaign_orders", "fit_with_check"]

# The share of campaigns whose orders the range should hold: the seller's planning range, not a tail bound.
FORECAST_COVERAGE = 0.8
# One order added to both sides of a ratio: a campaign that sold nothing has a ratio, and a slate expected to sell
# a fraction of an order is not read as a multiple of it.
ORDERS_SMOOTHING = 1.0


class OrdersInterval(BaseEstimator):
    """The range of a campaign's orders around its expected orders, from held-out campaigns' ratios.

    Each calibration campaign gives the log of (orders + 1) / (expected orders + 1); the range of a new
    campaign's orders is its expected orders scaled by the ranked ratios' conformal lower and upper bounds
    (each tail at half of 1 - `coverage`). With too few campaigns for those ranks to exist (fewer than 9 at 80%)
    there is no range: `bounds_` is None and `predict` gives NaN, rather than a range narrower than the data
    allow.

    Args:
        coverage: the share of campaigns the range should hold, in (0, 1).
    """

    def __init__(self, coverage: float = FORECAST_COVERAGE) -> None:
        self.coverage = coverage

    def fit(self, expected_orders: np.ndarray, orders: np.ndarray) -> OrdersInterval:
        """Learns the bounds from each calibration campaign's expected and actual orders.

        Raises:
            ValueError: naming a parameter out of range, or inputs of different lengths, negative or not finite.
        """
        check_kinds(self)
        if not 0 < self.coverage < 1:
            raise refuse("coverage", self.coverage, "a share in (0, 1)")
        expected, actual = np.asarray(expected_orders, float), np.asarray(orders, float)
        if expected.shape != actual.shape or expected.ndim != 1:
            raise ValueError(
                f"Got expected_orders of shape {expected.shape} and orders of shape {actual.shape}; expected two "
                "1-d arrays of one value per campaign"
            )
        for name, values in (("expected_orders", expected), ("orders", actual)):
            if not np.isfinite(values).all() or (values < 0).any():
                raise ValueError(f"Got {name} with a negative or non-finite value; expected orders of 0 or more")
        self.log_ratios_ = np.sort(_log_ratio(actual, expected))
        self.bounds_ = _conformal_bounds(self.log_ratios_, self.coverage)
        return self

    def predict(self, expected_orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The low and high ends of the range of each campaign's orders (NaN where there is no range)."""
        check_is_fitted(self, "bounds_")
        expected = np.asarray(expected_orders, float)
        if self.bounds_ is None:
            nothing = np.full(expected.shape, np.nan)
            return nothing, nothing.copy()
        low, high = self.bounds_
        base = expected + ORDERS_SMOOTHING
        return np.maximum(base * math.exp(low) - ORDERS_SMOOTHING, 0.0), base * math.exp(high) - ORDERS_SMOOTHING


def _log_ratio(orders: np.ndarray, expected_orders: np.ndarray) -> np.ndarray:
    return np.log((orders + ORDERS_SMOOTHING) / (expected_orders + ORDERS_SMOOTHING))


def _conformal_bounds(sorted_ratios: np.ndarray, coverage: float) -> tuple[float, float] | None:
    """The ranked ratios at the split-conformal ranks of each tail (at half of 1 - coverage), or None when there
    are too few ratios for a rank to exist."""
    n = len(sorted_ratios)
    tail = (1 - coverage) / 2
    # A new ratio exceeds the k-th smallest of n exchangeable ones with chance at most 1 - k / (n + 1).
    # Rounded first: (9 + 1) x 0.9 is 9.000000000000002 in floating point, whose ceiling would be rank 10.
    upper = math.ceil(round((n + 1) * (1 - tail), 9))
    lower = math.floor(round((n + 1) * tail, 9))
    if upper > n or lower < 1:
        return None
    return float(sorted_ratios[lower - 1]), float(sorted_ratios[upper - 1])


def campaign_orders(ranker, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per campaign of `pairs` (rows with `campaign_id`, `start_date`, `orders` and the ranker's features): the
    orders `ranker` expects of the creators who took part, summed as a slate's are
    (`training.ranker.expected_outcomes`), what they sold, and when the campaign started; in start order."""
    # Orders need no price; the one product of the heads that gives them is `expected_outcomes`'s.
    expected = expected_outcomes(ranker.predict(pairs), np.zeros(len(pairs)))["expected_orders"]
    frame = pd.DataFrame(
        {
            "campaign_id": pairs["campaign_id"].to_numpy(),
            "start_date": pairs["start_date"].to_numpy(),
            "expected_orders": expected,
            "orders": pairs["orders"].to_numpy(float),
        }
    )
    per_campaign = frame.groupby("campaign_id", sort=True).agg(
        start_date=("start_date", "first"), expected_orders=("expected_orders", "sum"), orders=("orders", "sum")
    )
    return per_campaign.sort_values("start_date", kind="stable")


def fit_with_check(per_campaign: pd.DataFrame) -> tuple[OrdersInterval, dict[str, float]]:
    """The range learned from every campaign of `per_campaign` (`campaign_orders`), and what training logs of it.

    Logged: how many campaigns set it (`forecast_campaigns`), the multiples of (expected orders + 1) its ends are
    (`forecast_low_multiple`, `forecast_high_multiple`), and `forecast_later_half_coverage`: the share of the later
    half of the campaigns, by start date, inside the range the earlier half sets. Each campaign left out in turn
    would say nothing (how many fall inside ranked bounds is fixed by their count); the later half says whether
    the campaigns' spread held over time. Figures that cannot exist (too few campaigns) are left out.
    """
    expected, orders = per_campaign["expected_orders"].to_numpy(), per_campaign["orders"].to_numpy()
    interval = OrdersInterval().fit(expected, orders)
    metrics = {"forecast_campaigns": float(len(per_campaign))}
    if interval.bounds_ is not None:
        low, high = interval.bounds_
        metrics |= {"forecast_low_multiple": math.exp(low), "forecast_high_multiple": math.exp(high)}
    half = len(per_campaign) // 2
    earlier = OrdersInterval().fit(expected[:half], orders[:half])
    if earlier.bounds_ is not None:
        low, high = earlier.predict(expected[half:])
        metrics["forecast_later_half_coverage"] = float(np.mean((orders[half:] >= low) & (orders[half:] <= high)))
    return interval, metrics
