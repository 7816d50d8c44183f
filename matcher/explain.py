"""Why each creator is on a slate and what happened to each campaign: the reasons column, in sentences a
seller understands with each clause backed by its evidence, and the per-campaign summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.similarity import TAG_FIT_THRESHOLD
from matcher.schema import MATCH_COLUMNS, CampaignSummary, empty_matches
from training.forecast_interval import OrdersInterval

__all__ = ["matches_table", "reason", "summaries"]


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[: limit - 1].rstrip() + '…'}”"


def _percent(share: float) -> str:
    # Below 0.1% one decimal would print 0.0% for a rate that is not zero: two significant digits instead.
    return f"{share:.1%}" if share == 0 or share >= 0.001 else f"{100 * share:.2g}%"


def reason(
    fit_tag: str,
    fit_phrase: str,
    fit_similarity: float,
    market_share: float,
    marketplaces: list[str],
    hist_campaigns: float,
    hist_ctr: float,
    hist_cvr: float,
    funnel_stage: str,
    creator_type: str,
    *,
    hist_category_campaigns: float = math.nan,
    category: str = "",
    category_known: bool = True,
    related_by_history: bool = False,
    disclosure_violations: int = 0,
    demoted: bool = False,
) -> str:
    """One sentence: which interest fits which phrase of the brief, audience in the campaign's marketplaces,
    track record or plainly none, funnel role, and any demotion.

    Topical fit is claimed only at or above TAG_FIT_THRESHOLD (a cosine measured to separate related from
    unrelated tag-brief pairs); below it the sentence says the interests are not clearly related, unless the
    seller's history shows creators with them taking part in the category (`related_by_history`), which it says.

    Args:
        hist_ctr: the record's clicks per impression; NaN when it has no impressions.
        hist_cvr: the record's orders per click; NaN when it has no clicks.
        hist_category_campaigns: how many of the record's campaigns were in the campaign's category.
        category: the campaign's category: a `fit_phrase` that is its name is called the category, not quoted as
            if the brief said it.
        category_known: whether the category had past campaigns (else its averages are fallbacks).
        related_by_history: the interests count as related for their history in the category, not their meaning.
        disclosure_violations: the creator's disclosure violations.
        demoted: the score was lowered for them (`violations="demote"`).
    """
    close = fit_tag and not math.isnan(fit_similarity) and fit_similarity >= TAG_FIT_THRESHOLD
    if close:
        where = "the category " if category and fit_phrase == category else ""
        parts = [f"interest “{fit_tag}” fits {where}{_quote(fit_phrase)} (similarity {fit_similarity:.2f})"]
    elif related_by_history:
        parts = [
            "interests not close to the brief in meaning, but creators who share them (or interests close to them) "
            "took part in this category's past campaigns more often than chance would give"
        ]
    else:
        parts = ["interests not clearly related to the brief"]
    markets = "/".join(marketplaces)
    if not math.isnan(market_share):
        parts.append(f"{market_share:.0%} of audience in {markets}")
    else:
        parts.append(f"audience in {markets} not stated")
    if hist_campaigns >= 1:
        n = int(hist_campaigns)
        record = f"record of {n} campaign{'s' if n > 1 else ''}"
        if not math.isnan(hist_category_campaigns):
            here = int(hist_category_campaigns)
            record += f" ({'none' if here == 0 else here} in this category)"
        if math.isnan(hist_ctr):
            record += " with no impressions reported"
        elif math.isnan(hist_cvr):
            record += f" at {_percent(hist_ctr)} click-through and no clicks yet"
        else:
            record += f" at {_percent(hist_ctr)} click-through and {_percent(hist_cvr)} orders per click"
        parts.append(record)
    else:
        averages = (
            "category averages"
            if category_known
            else "averages of other categories (no past campaigns in this category)"
        )
        basis = f"interest fit, reach and {averages}" if close else f"reach and {averages}"
        parts.append(f"no record yet: estimate rests on {basis}")
    parts.append(f"{funnel_stage} role ({creator_type.replace('_', ' ')})")
    if demoted and disclosure_violations > 0:
        plural = "s" if disclosure_violations > 1 else ""
        parts.append(f"ranked lower for {disclosure_violations} past disclosure violation{plural}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def matches_table(chosen: pd.DataFrame, campaigns: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """The contract's matches table from the chosen pairs: each with its reason, campaigns in input order.

    Args:
        chosen: the chosen scored pairs (`matcher.scoring.Scorer.score` columns) with their `rank`.
        campaigns: the campaigns matched, in input order.
        model_version: the ranker's version, written on every row.
    """
    if chosen.empty:
        return empty_matches()
    # Numpy on the chosen rows' columns: a service request's few rows made each pandas operation here (a
    # where, a map, a sort, a cast of every column) cost more than its arithmetic.
    clicks, impressions, orders = (
        chosen[name].to_numpy(float) for name in ("hist_clicks", "hist_impressions", "hist_orders")
    )
    # The sentence quotes the raw record, not the shrunk rates the ranker reads (NaN where it has no denominator).
    raw_ctr, raw_cvr = _rate(clicks, impressions), _rate(orders, clicks)
    described = zip(
        chosen["fit_tag"],
        chosen["fit_phrase"],
        chosen["fit_similarity"],
        chosen["market_share"],
        chosen["marketplaces"].map(list),
        chosen["hist_campaigns"],
        raw_ctr.tolist(),
        raw_cvr.tolist(),
        chosen["funnel_stage"],
        chosen["creator_type"],
        strict=True,
    )
    qualified = zip(*(chosen[column].tolist() for column in _QUALIFIERS.values()), strict=True)
    categories = chosen["campaign_id"].map(dict(zip(campaigns["campaign_id"], campaigns["category"], strict=True)))
    reasons = [
        reason(*row, **dict(zip(_QUALIFIERS, more, strict=True)), category=str(category))
        for row, more, category in zip(described, qualified, categories.fillna(""), strict=True)
    ]
    # Campaigns in input order, each best first (rank); a campaign not in `campaigns` last.
    position = pd.Index(campaigns["campaign_id"]).get_indexer(chosen["campaign_id"])
    position[position < 0] = len(campaigns)
    order = np.lexsort((chosen["rank"].to_numpy(), position))
    table = chosen.iloc[order][[name for name in MATCH_COLUMNS if name not in _WRITTEN]].reset_index(drop=True)
    table = table.assign(reasons=[reasons[i] for i in order], model_version=model_version)[MATCH_COLUMNS]
    if table["rank"].dtype != np.int64:
        table["rank"] = table["rank"].astype("int64")
    return table


# `reason`'s keyword arguments, and the scored pairs' columns they are read from.
_QUALIFIERS = {
    "hist_category_campaigns": "hist_cat_campaigns",
    "category_known": "category_known",
    "related_by_history": "related_by_history",
    "disclosure_violations": "disclosure_violations",
    "demoted": "demoted",
}
# The matches table's columns written here rather than taken from the scored pairs.
_WRITTEN = ("reasons", "model_version")


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator where the denominator is positive, else NaN: no rate, which is not a rate of 0."""
    return numerator / np.where(denominator > 0, denominator, np.nan)


def summaries(
    campaigns: pd.DataFrame,
    matches: pd.DataFrame,
    size_reason: dict[str, str],
    orders_interval: OrdersInterval | None = None,
    category_known: np.ndarray | None = None,
) -> list[CampaignSummary]:
    """One summary per campaign (in stock or not): its status, product type, why its slate has its size, and what
    the slate is expected to sell, with the range `orders_interval` gives (0 for no slate). The range is NaN without
    an interval, and where `category_known` (one per campaign; default all) says the campaign's category had no
    past campaign: the range holds for campaigns like the held-out ones, and none of those was in such a category
    (on the second simulated world such campaigns fell inside it one time in five).

    `size_reason` (`matcher.slate.build_slates`) has a sentence for each slate, and for an empty one only when
    capacity placed its candidates on other campaigns of the run.
    """
    grouped = matches.groupby("campaign_id")
    sums = grouped[["expected_orders", "expected_commission"]].sum()  # pandas' compensated sum, kept
    slate_orders, slate_commission = (
        sums["expected_orders"].to_numpy(float),
        sums["expected_commission"].to_numpy(float),
    )
    low, high = (
        orders_interval.predict(slate_orders)
        if orders_interval is not None
        else (np.full_like(slate_orders, np.nan),) * 2
    )
    # Commission moves with orders: one price and one rate per campaign.
    per_order = slate_commission / np.where(slate_orders > 0, slate_orders, np.nan)
    columns = (slate_orders, slate_commission, low, high, low * per_order, high * per_order)
    totals = dict(zip(sums.index, zip(*(c.tolist() for c in columns), strict=True), strict=True))
    sizes = grouped.size().to_dict()
    # The columns read, not itertuples over every column of the campaigns: a lookup per row and column.
    out = []
    known = np.ones(len(campaigns), dtype=bool) if category_known is None else np.asarray(category_known, dtype=bool)
    for campaign_id, in_stock, product_type, product_type_reason, budget, probability, calibrated in zip(
        campaigns["campaign_id"],
        campaigns["in_stock"],
        campaigns["product_type"],
        campaigns["product_type_reason"],
        campaigns["budget"],
        campaigns["product_type_probability"],
        known,
        strict=True,
    ):
        size = int(sizes.get(campaign_id, 0))
        if not in_stock:
            status, why = "out of stock", "0: out-of-stock campaigns get no slate"
        elif size == 0 and campaign_id in size_reason:  # candidates, all placed on other campaigns by capacity
            status, why = "candidates taken by capacity", size_reason[campaign_id]
        elif size == 0:
            status, why = "no eligible creator", "0: no eligible candidate with positive expected sales"
        else:
            status, why = "matched", size_reason.get(campaign_id, "")
        orders, commission, *ranges = totals.get(campaign_id, (0.0,) * 6)
        if size and not calibrated:
            ranges = [math.nan] * 4
        out.append(
            CampaignSummary(
                campaign_id,
                status,
                product_type,
                product_type_reason,
                size,
                why,
                float(orders),
                float(commission),
                float(budget),
                float(probability),
                *(float(value) for value in ranges),
            )
        )
    return out
