"""Features of a (campaign, creator) pair: the ranker's input."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.affinity import AFFINITY_FEATURES
from features.contract import CONTENT_STAGES, CREATOR_TYPES, FUNNEL_STAGE
from features.history import CategoryPriors
from features.similarity import EVIDENCE_COLUMNS, SEMANTIC_FEATURES

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURES",
    "HISTORY_FEATURES",
    "OPTIONAL_FEATURES",
    "audience_share",
    "pair_features",
    "record_lifts",
    "typical_audience",
    "without_history",
]

FEATURES = [
    *SEMANTIC_FEATURES,
    *AFFINITY_FEATURES,
    "creator_type_code",
    "category_code",
    "content_creator",
    "non_standard",
    "content_x_non_standard",
    "log_price_in_zone",
    "commission_rate",
    "expected_market_share",
    "log_followers",
    "log_avg_views",
    "avg_dwell_seconds",
    "storefront_return_rate",
    "log_storefront_followers",
    "audience_mobile_share",
    "disclosure_violations",
    "hist_campaigns",
    "hist_log_impressions_per_campaign",
    "hist_log_clicks",
    "hist_ctr_lift",
    "hist_cvr_lift",
    "prior_ctr",
    "prior_cvr",
    "hist_ctr_shrunk",
    "hist_cvr_shrunk",
    "hist_cat_campaigns",
    "hist_cat_ctr_lift",
    "hist_cat_cvr_lift",
    "hist_market_campaigns",
    "hist_market_share",
    "hist_market_ctr_lift",
    "hist_market_cvr_lift",
]
CATEGORICAL_FEATURES = ["creator_type_code", "category_code"]
# The creator's own record; everything else is known of a creator who never took part in a campaign.
HISTORY_FEATURES = [name for name in FEATURES if name.startswith("hist_")]
# The features of a creator's optional profile fields (`features.rows.CreatorRow`: avg_views, avg_dwell_seconds,
# storefront_return_rate, storefront_followers_30d, audience_mobile_share): missing for every creator who does not
# state them, as the heads saw in training, so a caller without them may leave them out (`training.pyfunc`). Every
# other feature is built for every pair from what the contract requires (the campaign and its category, the
# creator's required fields, the record or its absence): without one, every pair would be scored as no training
# pair ever looked.
OPTIONAL_FEATURES = [
    "log_avg_views",
    "avg_dwell_seconds",
    "storefront_return_rate",
    "log_storefront_followers",
    "audience_mobile_share",
]
# Pseudo-counts: how much evidence it takes for a creator's own record to outweigh the category prior.
CTR_PRIOR_CLICKS = 30.0
CVR_PRIOR_ORDERS = 5.0


def record_lifts(history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Click and order lift of each record over what was expected of it, shrunk toward 1 by the evidence."""
    ctr = (history["hist_clicks"].to_numpy(float) + CTR_PRIOR_CLICKS) / (
        history["hist_prior_clicks"].to_numpy(float) + CTR_PRIOR_CLICKS
    )
    cvr = (history["hist_orders"].to_numpy(float) + CVR_PRIOR_ORDERS) / (
        history["hist_prior_orders"].to_numpy(float) + CVR_PRIOR_ORDERS
    )
    return ctr, cvr


def without_history(features: pd.DataFrame) -> pd.DataFrame:
    """The same pairs as `pair_features` builds them for a creator with no record: what cold-start scoring sees."""
    return features.assign(
        hist_campaigns=0.0,
        hist_log_impressions_per_campaign=np.nan,
        hist_log_clicks=0.0,
        hist_ctr_lift=1.0,
        hist_cvr_lift=1.0,
        hist_ctr_shrunk=features["prior_ctr"],
        hist_cvr_shrunk=features["prior_cvr"],
        hist_cat_campaigns=0.0,
        hist_cat_ctr_lift=1.0,
        hist_cat_cvr_lift=1.0,
        hist_market_campaigns=0.0,
        hist_market_share=np.nan,
        hist_market_ctr_lift=1.0,
        hist_market_cvr_lift=1.0,
    )


def audience_share(audience: object, marketplaces: list[str]) -> float:
    """Share of a creator's audience in the campaign's marketplaces; NaN when the creator did not say."""
    if not isinstance(audience, dict) or not audience:
        return float("nan")
    return float(sum(audience.get(code, 0.0) for code in marketplaces))


def typical_audience(creators: pd.DataFrame) -> dict[str, float]:
    """Mean share of the audience in each marketplace over the creators who state a split: the typical creator.

    What a creator who states no split is expected to have in a campaign's marketplaces. Left unknown, a model
    learns it from the creators who took part in past campaigns, who were invited and accepted because their
    audience was where the campaign ran; it then expects that of every creator who states nothing, also for a
    campaign in a marketplace where few audiences are.
    """
    stated = [a for a in creators["audience_marketplaces"] if isinstance(a, dict) and a]
    codes = sorted({code for audience in stated for code in audience})
    return {code: float(np.mean([a.get(code, 0.0) for a in stated])) for code in codes}


def _log1p(values: pd.Series) -> np.ndarray:
    return np.log1p(pd.to_numeric(values, errors="coerce").to_numpy(float))


def pair_features(
    campaigns: pd.DataFrame,
    creators: pd.DataFrame,
    campaign_index: np.ndarray,
    creator_index: np.ndarray,
    semantic: pd.DataFrame,
    affinity: pd.DataFrame,
    history: pd.DataFrame,
    category_history: pd.DataFrame,
    marketplace_history: pd.DataFrame,
    priors: CategoryPriors,
    typical: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Builds FEATURES for pairs (campaigns.iloc[campaign_index[i]], creators.iloc[creator_index[i]]).

    Args:
        campaigns: valid campaign rows as `features.product_type.resolve_product_types` returns them: a resolved
            `product_type` (standard or non_standard) and `log_price_in_zone`, the price read in its currency.
        creators: valid creator rows.
        campaign_index, creator_index: positional indices of each pair.
        semantic: SEMANTIC_FEATURES and EVIDENCE_COLUMNS of each pair (`features.similarity.semantic_features`).
        affinity: AFFINITY_COLUMNS of each pair (see `features.affinity.TagCategoryAffinity`).
        history: one row per pair with HISTORY_COLUMNS of the creator's whole record (zeros for none).
        category_history: the same, for the creator's record in the campaign's category only.
        marketplace_history: the same, for the creator's record in the campaign's marketplaces, summed over them
            (`features.records.marketplace_history_as_of`): where a creator's audience buys, which many
            profiles do not state.
        priors: category priors for click-through and orders per click.
        typical: the typical creator's audience share per marketplace (`typical_audience`); None: of `creators`.

    Returns:
        A float DataFrame with FEATURES as columns, plus EVIDENCE_COLUMNS (which tag fits which brief phrase) for
        reasons, `market_share`, the audience share the creator states in the campaign's marketplaces (NaN
        when none is stated; `expected_market_share` is then the typical creator's), for eligibility and reasons,
        and `tag_participation_floor` (whether history relates the creator's interests to the category).
    """

    # Campaign values are computed per campaign, then taken per pair: a service request's one campaign is one
    # row, its pairs a few hundred, and pandas' per-call cost, not the arithmetic, was the time here.
    def per_pair(values: np.ndarray) -> np.ndarray:
        return np.asarray(values)[campaign_index]

    r = creators.iloc[creator_index].reset_index(drop=True)
    creator_type = r["creator_type"].to_numpy(object)
    content = np.array([FUNNEL_STAGE.get(kind) in CONTENT_STAGES for kind in creator_type], dtype=float)
    non_standard = per_pair(campaigns["product_type"].eq("non_standard").to_numpy(float))
    h = history.reset_index(drop=True)
    hist_n = h["hist_campaigns"].to_numpy(float)
    ctr_lift, cvr_lift = record_lifts(h)
    prior_ctr, prior_cvr = per_pair(priors.ctr(campaigns["category"])), per_pair(priors.cvr(campaigns["category"]))
    hc = category_history.reset_index(drop=True)
    cat_ctr_lift, cat_cvr_lift = record_lifts(hc)
    hm = marketplace_history.reset_index(drop=True)
    market_n = hm["hist_campaigns"].to_numpy(float)
    market_ctr_lift, market_cvr_lift = record_lifts(hm)
    markets = per_pair(campaigns["marketplaces"].to_numpy(object))
    audiences = r["audience_marketplaces"]
    stated = np.array([audience_share(a, m) for a, m in zip(audiences, markets, strict=True)], dtype=float)
    typical = typical_audience(creators) if typical is None else typical
    per_campaign = np.array([min(1.0, sum(typical.get(code, 0.0) for code in m)) for m in campaigns["marketplaces"]])
    type_code = {kind: i for i, kind in enumerate(CREATOR_TYPES)}
    frame = pd.DataFrame(
        {
            **{name: semantic[name].to_numpy(float) for name in SEMANTIC_FEATURES},
            **{name: affinity[name].to_numpy(float) for name in AFFINITY_FEATURES},
            "creator_type_code": np.array([type_code.get(kind, np.nan) for kind in creator_type], dtype=float),
            "category_code": per_pair(priors.codes(campaigns["category"])),
            "content_creator": content,
            "non_standard": non_standard,
            "content_x_non_standard": content * non_standard,
            "log_price_in_zone": per_pair(campaigns["log_price_in_zone"].to_numpy(float)),
            "commission_rate": per_pair(campaigns["commission_rate"].to_numpy(float)),
            "expected_market_share": np.where(np.isnan(stated), per_pair(per_campaign), stated),
            "log_followers": _log1p(r["followers"]),
            "log_avg_views": _log1p(r["avg_views"]),
            "avg_dwell_seconds": pd.to_numeric(r["avg_dwell_seconds"], errors="coerce").to_numpy(float),
            "storefront_return_rate": pd.to_numeric(r["storefront_return_rate"], errors="coerce").to_numpy(float),
            "log_storefront_followers": _log1p(r["storefront_followers_30d"]),
            "audience_mobile_share": pd.to_numeric(r["audience_mobile_share"], errors="coerce").to_numpy(float),
            "disclosure_violations": r["disclosure_violations"].to_numpy(float),
            "hist_campaigns": hist_n,
            "hist_log_impressions_per_campaign": np.where(
                hist_n > 0, np.log1p(h["hist_impressions"].to_numpy(float) / np.maximum(hist_n, 1)), np.nan
            ),
            "hist_log_clicks": np.log1p(h["hist_clicks"].to_numpy(float)),
            "hist_ctr_lift": ctr_lift,
            "hist_cvr_lift": cvr_lift,
            "prior_ctr": prior_ctr,
            "prior_cvr": prior_cvr,
            "hist_ctr_shrunk": prior_ctr * ctr_lift,
            "hist_cvr_shrunk": prior_cvr * cvr_lift,
            "hist_cat_campaigns": hc["hist_campaigns"].to_numpy(float),
            "hist_cat_ctr_lift": cat_ctr_lift,
            "hist_cat_cvr_lift": cat_cvr_lift,
            "hist_market_campaigns": market_n,
            # Unknown without a record, not 0: a creator whose record lies elsewhere is another case than a new one.
            # A campaign in two of the marketplaces counts twice in `market_n`: at most the whole record.
            "hist_market_share": np.where(hist_n > 0, np.minimum(market_n / np.maximum(hist_n, 1.0), 1.0), np.nan),
            "hist_market_ctr_lift": market_ctr_lift,
            "hist_market_cvr_lift": market_cvr_lift,
        }
    )[FEATURES]
    for name in EVIDENCE_COLUMNS:
        frame[name] = semantic[name].to_numpy()
    frame["market_share"] = stated
    frame["tag_participation_floor"] = affinity["tag_participation_floor"].to_numpy(float)
    return frame
