"""What history says about interests and categories: how creators with a tag do on a category's campaigns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.history import CategoryPriors

__all__ = ["AFFINITY_FEATURES", "PastPerformance", "TagCategoryAffinity"]

AFFINITY_FEATURES = ["tag_affinity_ctr", "tag_affinity_ctr_mean", "tag_affinity_cvr", "tag_affinity_evidence"]


@dataclass
class TagCategoryAffinity:
    """Click-through and orders-per-click lift of (interest tag, category) pairs over the category prior.

    Embeddings say which interests sound close to a brief; this says which interests actually sold in a
    category, and it scores a creator with no record of their own through their tags.

    Args:
        strength_clicks: pseudo-clicks pulling a pair's click lift toward 1.
        strength_orders: pseudo-orders pulling a pair's order lift toward 1.
    """

    strength_clicks: float = 50.0
    strength_orders: float = 10.0
    table_: pd.DataFrame = field(default_factory=pd.DataFrame)

    def fit(self, rows: pd.DataFrame, interest_tags: pd.Series, priors: CategoryPriors) -> TagCategoryAffinity:
        """Learns from settled rows (with `category`) and each row's creator tags (aligned with `rows`)."""
        exploded = pd.DataFrame(
            {
                "tag": [[t.strip().lower() for t in tags] for tags in interest_tags],
                "category": rows["category"].to_numpy(),
                "clicks": rows["clicks"].to_numpy(float),
                "orders": rows["orders"].to_numpy(float),
                "prior_clicks": rows["impressions"].to_numpy(float) * priors.ctr(rows["category"]),
                "prior_orders": rows["clicks"].to_numpy(float) * priors.cvr(rows["category"]),
            }
        ).explode("tag")
        totals = exploded.groupby(["tag", "category"])[["clicks", "orders", "prior_clicks", "prior_orders"]].sum()
        self.table_ = pd.DataFrame(
            {
                "ctr": (totals["clicks"] + self.strength_clicks) / (totals["prior_clicks"] + self.strength_clicks),
                "cvr": (totals["orders"] + self.strength_orders) / (totals["prior_orders"] + self.strength_orders),
                "evidence": np.log1p(totals["prior_clicks"]),
            }
        )
        return self

    def transform(self, interest_tags: pd.Series, categories: pd.Series) -> pd.DataFrame:
        """Per pair: the best and mean click lift and the best order lift of the creator's tags for the category.

        Unseen (tag, category) pairs count as lift 1 with no evidence.
        """
        lengths = np.array([len(tags) for tags in interest_tags])
        keys = pd.MultiIndex.from_arrays(
            [
                [t.strip().lower() for tags in interest_tags for t in tags],
                np.repeat(np.asarray(categories, dtype=object), lengths),
            ]
        )
        found = (
            self.table_.reindex(keys)
            if len(self.table_)
            else pd.DataFrame(index=keys, columns=["ctr", "cvr", "evidence"])
        )
        pair = np.repeat(np.arange(len(lengths)), lengths)
        values = pd.DataFrame(
            {
                "pair": pair,
                "ctr": found["ctr"].to_numpy(float),
                "cvr": found["cvr"].to_numpy(float),
                "evidence": found["evidence"].to_numpy(float),
            }
        ).fillna({"ctr": 1.0, "cvr": 1.0, "evidence": 0.0})
        best = values.groupby("pair").agg(
            ctr=("ctr", "max"), ctr_mean=("ctr", "mean"), cvr=("cvr", "max"), evidence=("evidence", "max")
        )
        best = best.reindex(np.arange(len(lengths))).fillna({"ctr": 1.0, "ctr_mean": 1.0, "cvr": 1.0, "evidence": 0.0})
        return pd.DataFrame(
            {
                "tag_affinity_ctr": best["ctr"].to_numpy(),
                "tag_affinity_ctr_mean": best["ctr_mean"].to_numpy(),
                "tag_affinity_cvr": best["cvr"].to_numpy(),
                "tag_affinity_evidence": best["evidence"].to_numpy(),
            }
        )


@dataclass
class PastPerformance:
    """What settled history says, as scoring needs it: category priors, each creator's record overall and
    per category, and which interests sold in which categories."""

    priors: CategoryPriors
    history: pd.DataFrame  # per creator_id: HISTORY_COLUMNS
    category_history: pd.DataFrame  # per (creator_id, category): HISTORY_COLUMNS
    affinity: TagCategoryAffinity
