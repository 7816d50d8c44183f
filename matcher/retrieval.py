"""Candidate retrieval beyond embedding similarity: creators with a proven record in a campaign's category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.pairwise import record_lifts

__all__ = ["proven_value"]


def proven_value(creators: pd.DataFrame, history: pd.DataFrame, topical: pd.DataFrame) -> np.ndarray:
    """A campaign-agnostic estimate of each creator's value in a category, for retrieval only.

    Typical reach (past impressions per campaign, else stated average views, else a share of followers)
    x the creator's click and order lift over expectation x the best interest-tag lift for the category.
    Embedding similarity finds creators who sound like the brief; this finds those who have sold.

    Args:
        creators: the creator table.
        history: each creator's record (HISTORY_COLUMNS), in table order.
        topical: each creator's AFFINITY_FEATURES for the category (`TagCategoryAffinity.transform`).
    """
    campaigns = history["hist_campaigns"].to_numpy(float)
    stated = pd.to_numeric(creators["avg_views"], errors="coerce").to_numpy(float)
    fallback = np.where(np.isnan(stated), creators["followers"].to_numpy(float) * 0.1, stated)
    reach = np.where(campaigns > 0, history["hist_impressions"].to_numpy(float) / np.maximum(campaigns, 1), fallback)
    ctr_lift, cvr_lift = record_lifts(history)
    return reach * ctr_lift * cvr_lift * topical["tag_affinity_ctr"].to_numpy() * topical["tag_affinity_cvr"].to_numpy()
