"""Measuring slates against a known truth: the share of the best possible expected sales they capture."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["oracle_share", "oracle_totals", "true_sales"]


def true_sales(pairs: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Each (campaign_id, creator_id) row's true expected sales in `truth`; 0 for a pair it does not hold."""
    by_pair = truth.set_index(["campaign_id", "creator_id"])["expected_sales"]
    return by_pair.reindex(pd.MultiIndex.from_frame(pairs[["campaign_id", "creator_id"]])).fillna(0.0).to_numpy()


def oracle_totals(matches: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per campaign: the slate's true expected sales (`captured`) and the best slate's of the same size (`best`).

    Args:
        matches: the matches table (campaign_id, creator_id, one row per slate member).
        truth: (campaign_id, creator_id, expected_sales) for eligible creators; absent pairs count as 0.
    """
    captured = pd.Series(true_sales(matches, truth), index=matches["campaign_id"])
    captured = captured.groupby(level=0).sum()
    sizes = matches.groupby("campaign_id").size()
    ranked = truth.sort_values(["campaign_id", "expected_sales"], ascending=[True, False])
    within = ranked.groupby("campaign_id").cumcount().to_numpy() < ranked["campaign_id"].map(sizes).fillna(0).to_numpy()
    best = ranked[within].groupby("campaign_id")["expected_sales"].sum()
    return pd.DataFrame({"captured": captured, "best": best.reindex(captured.index).fillna(0.0)})


def oracle_share(matches: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Share of the best slates' true expected sales (same sizes) that the slates capture, over all campaigns."""
    totals = oracle_totals(matches, truth)
    return float(totals["captured"].sum() / totals["best"].sum()) if totals["best"].sum() > 0 else float("nan")
