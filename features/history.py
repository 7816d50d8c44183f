"""Creators' track records: click-through and orders per click, shrunk toward category priors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features.contract import CATEGORIES, SETTLEMENT_DAYS
from features.parameters import check_kinds, refuse

__all__ = [
    "DEFAULT_CTR",
    "HISTORY_COLUMNS",
    "MAX_CATEGORY_CODES",
    "CategoryPriors",
    "creator_history",
    "settled_rows",
]

# The boosted heads take at most this many distinct categories (HistGradientBoosting's max_bins).
MAX_CATEGORY_CODES = 255
# Priors for categories with no data: North-America beauty content averages about 7% click-through.
DEFAULT_CTR = {"beauty": 0.07}
FALLBACK_CTR, FALLBACK_CVR = 0.05, 0.04
HISTORY_COLUMNS = [
    "hist_campaigns",
    "hist_impressions",
    "hist_clicks",
    "hist_orders",
    "hist_prior_clicks",
    "hist_prior_orders",
]


class CategoryPriors(BaseEstimator):
    """Click-through and orders per click per category, shrunk toward the overall rate.

    Fitted on no rows, every category gets the fallbacks: 7% click-through for beauty (DEFAULT_CTR), 5% for
    the others, 4% orders per click.

    Args:
        strength_impressions: pseudo-impressions pulling a category's CTR toward the overall CTR.
        strength_clicks: pseudo-clicks pulling a category's orders per click toward the overall rate.
    """

    def __init__(self, strength_impressions: float = 20_000.0, strength_clicks: float = 500.0) -> None:
        self.strength_impressions = strength_impressions
        self.strength_clicks = strength_clicks

    def fit(self, rows: pd.DataFrame) -> CategoryPriors:
        """Learns priors from performance rows carrying a `category` column.

        Raises:
            ValueError: naming a parameter of the wrong type or range.
        """
        check_kinds(self)
        # Pseudo-counts: a negative one gave negative rates, and none left a category without impressions at 0 / 0.
        for name in ("strength_impressions", "strength_clicks"):
            if getattr(self, name) <= 0:
                raise refuse(name, getattr(self, name), "a value above 0")
        totals = rows.groupby("category")[["impressions", "clicks", "orders"]].sum()
        self.overall_ctr_, self.overall_cvr_ = FALLBACK_CTR, FALLBACK_CVR
        if totals["impressions"].sum() > 0:
            self.overall_ctr_ = float(totals["clicks"].sum() / totals["impressions"].sum())
        if totals["clicks"].sum() > 0:
            self.overall_cvr_ = float(totals["orders"].sum() / totals["clicks"].sum())
        ctr = (totals["clicks"] + self.strength_impressions * self._ctr_anchor(totals.index)) / (
            totals["impressions"] + self.strength_impressions
        )
        cvr = (totals["orders"] + self.strength_clicks * self.overall_cvr_) / (totals["clicks"] + self.strength_clicks)
        self.ctr_, self.cvr_ = ctr.to_dict(), cvr.to_dict()
        return self

    def _ctr_anchor(self, categories: pd.Index) -> np.ndarray:
        return np.array([DEFAULT_CTR.get(c, self.overall_ctr_) for c in categories])

    def ctr(self, categories: pd.Series) -> np.ndarray:
        """Click-through per impression of each category."""
        check_is_fitted(self, "ctr_")
        return categories.map(lambda c: self.ctr_.get(c, DEFAULT_CTR.get(c, self.overall_ctr_))).to_numpy(float)

    def known(self, categories) -> np.ndarray:
        """Whether each category had settled campaigns to learn from (else its rates are fallbacks)."""
        check_is_fitted(self, "ctr_")
        return np.array([c in self.ctr_ for c in categories], dtype=bool)

    def fitted_categories(self) -> list[str]:
        """The categories that had settled campaigns to learn from, in name order."""
        check_is_fitted(self, "ctr_")
        return sorted(c for c in self.ctr_ if isinstance(c, str))

    def cvr(self, categories: pd.Series) -> np.ndarray:
        """Orders per click of each category."""
        check_is_fitted(self, "cvr_")
        return categories.map(lambda c: self.cvr_.get(c, self.overall_cvr_)).to_numpy(float)

    def codes(self, categories: pd.Series) -> np.ndarray:
        """Each category's code for the ranker's categorical feature; NaN for a category it cannot tell apart.

        A seller's own category names ("Beauty & Personal Care") are learned from the rows the priors were fitted
        on: the contract's named categories keep their place in CATEGORIES, and every other fitted category gets
        a code after them, in name order, up to MAX_CATEGORY_CODES in all. A category neither names is missing,
        which is how the booster reads a category it never saw in training.
        """
        check_is_fitted(self, "ctr_")
        learned = [c for c in self.fitted_categories() if c not in CATEGORIES]
        vocabulary = [*CATEGORIES, *learned][:MAX_CATEGORY_CODES]
        code = {name: float(i) for i, name in enumerate(vocabulary)}
        return categories.map(lambda c: code.get(c, np.nan)).to_numpy(float)


def settled_rows(performance: pd.DataFrame, campaigns: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Performance rows that may teach: status settled and the campaign 7 days past its end (as of `as_of`).

    Adds the campaign's `category`, `start_date`, `marketplaces` and `settled_on` (end date + 7 days).
    """
    info = campaigns.set_index("campaign_id")[["category", "start_date", "end_date", "marketplaces"]]
    rows = performance.join(info, on="campaign_id", how="inner")
    rows["settled_on"] = pd.to_datetime(rows["end_date"]) + pd.Timedelta(days=SETTLEMENT_DAYS)
    rows["start_date"] = pd.to_datetime(rows["start_date"])
    keep = rows["status"].eq("settled")
    if as_of is not None:
        keep &= rows["settled_on"] <= pd.Timestamp(as_of)
    return rows[keep].reset_index(drop=True)


def creator_history(
    rows: pd.DataFrame,
    priors: CategoryPriors,
    queries: pd.DataFrame | None = None,
    by: tuple[str, ...] = ("creator_id",),
) -> pd.DataFrame:
    """Each creator's totals over settled campaigns, plus the clicks and orders an average creator would get.

    What "average" means: the rows' own `expected_clicks` and `expected_orders` columns when present (a
    context model's predictions for that campaign and profile), else the category priors. Judging a
    record against its context keeps a strong creator who was put on off-topic campaigns from looking weak.

    Args:
        rows: settled performance rows (see `settled_rows`).
        priors: category priors, the fallback expectation.
        queries: optional (`creator_id`, `as_of`) rows; each gets the totals of campaigns settled strictly
            before its `as_of`, so a training pair never sees its own outcome. Without it, one row per creator
            over all rows.
        by: the keys a record belongs to: ("creator_id",) for a creator's whole record, ("creator_id",
            "category") for the record in each category. Queries carry the same keys.

    Returns:
        One row per query (or key) with the keys and HISTORY_COLUMNS; zeros where there is no history.
    """
    if "expected_clicks" in rows.columns and "expected_orders" in rows.columns:
        rows = rows.assign(hist_prior_clicks=rows["expected_clicks"], hist_prior_orders=rows["expected_orders"])
    else:
        rows = rows.assign(hist_prior_clicks=rows["impressions"] * priors.ctr(rows["category"]))
        rows["hist_prior_orders"] = rows["clicks"] * priors.cvr(rows["category"])
    rows = rows.rename(columns={"impressions": "hist_impressions", "clicks": "hist_clicks", "orders": "hist_orders"})
    rows["hist_campaigns"] = 1
    value_columns = HISTORY_COLUMNS
    if queries is None:
        return rows.groupby(list(by))[value_columns].sum().astype(float).reset_index()
    # Stable sorts: campaigns settling on the same day must keep their running totals in order.
    events = rows.sort_values("settled_on", kind="stable")
    cumulative = events.groupby(list(by))[value_columns].cumsum().astype(float)
    for key in by:
        cumulative[key] = events[key].to_numpy()
    cumulative["settled_on"] = events["settled_on"].to_numpy()
    ask = queries[[*by, "as_of"]].assign(
        _order=np.arange(len(queries)), as_of=pd.to_datetime(queries["as_of"]).astype("datetime64[ns]")
    )
    cumulative["settled_on"] = cumulative["settled_on"].astype("datetime64[ns]")
    merged = pd.merge_asof(
        ask.sort_values("as_of", kind="stable"),
        cumulative.sort_values("settled_on", kind="stable"),
        left_on="as_of",
        right_on="settled_on",
        by=list(by),
        allow_exact_matches=False,
        direction="backward",
    )
    merged = merged.sort_values("_order")
    return merged[[*by, *value_columns]].fillna(0.0).reset_index(drop=True)
