"""Order credit from touches and purchases under an attribution model and window."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["ATTRIBUTION_MODELS", "attribute"]

ATTRIBUTION_MODELS = ("last_click", "position_based", "linear")


def _weights(n_touches: np.ndarray, position: np.ndarray, model: str) -> np.ndarray:
    """Credit of the touch at `position` (0 = first) among `n_touches` before one purchase."""
    if model == "last_click":
        return (position == n_touches - 1).astype(float)
    if model == "linear":
        return 1.0 / n_touches
    # Position-based (40/20/40): first and last 40% each, the middle touches share 20%; 1 touch takes all,
    # 2 touches split evenly.
    ends = (position == 0) | (position == n_touches - 1)
    middle = np.maximum(n_touches - 2, 1)
    return np.select([n_touches == 1, n_touches == 2, ends], [1.0, 0.5, 0.4], default=0.2 / middle)


def attribute(
    touches: pd.DataFrame,
    purchases: pd.DataFrame,
    model: str = "last_click",
    window: dt.timedelta = dt.timedelta(hours=24),
) -> pd.DataFrame:
    """Credits each purchase to the creators whose links the shopper clicked within `window` before it.

    Args:
        touches: shopper_id, campaign_id, creator_id, ts.
        purchases: shopper_id, campaign_id, ts, sales, units.
        model: `last_click`, `position_based` (40/20/40) or `linear`.
        window: how long before a purchase a click still counts.

    Returns:
        One row per credited (campaign_id, creator_id): fractional `orders`, `units` and `sales`.
    """
    if model not in ATTRIBUTION_MODELS:
        raise ValueError(f"Got attribution model {model!r}; expected one of {', '.join(ATTRIBUTION_MODELS)}")
    if window <= dt.timedelta(0):
        raise ValueError(f"Got window={window}; expected a positive duration")
    columns = ["campaign_id", "creator_id", "orders", "units", "sales"]
    if touches.empty or purchases.empty:
        return pd.DataFrame(columns=columns)
    bought = purchases.reset_index(drop=True).assign(purchase=lambda f: np.arange(len(f)))
    pairs = bought.merge(touches, on=["shopper_id", "campaign_id"], suffixes=("", "_touch"))
    before = pd.to_datetime(pairs["ts"]) - pd.to_datetime(pairs["ts_touch"])
    pairs = pairs[(before >= pd.Timedelta(0)) & (before <= pd.Timedelta(window))]
    pairs = pairs.sort_values(["purchase", "ts_touch"], kind="stable")
    position = pairs.groupby("purchase").cumcount().to_numpy()
    n_touches = pairs.groupby("purchase")["purchase"].transform("size").to_numpy()
    credit = _weights(n_touches, position, model)
    credited = pd.DataFrame(
        {
            "campaign_id": pairs["campaign_id"].to_numpy(),
            "creator_id": pairs["creator_id"].to_numpy(),
            "orders": credit,
            "units": credit * pairs["units"].to_numpy(float),
            "sales": credit * pairs["sales"].to_numpy(float),
        }
    )
    return credited.groupby(["campaign_id", "creator_id"], as_index=False)[["orders", "units", "sales"]].sum()
