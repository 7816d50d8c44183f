"""Why each creator is on a slate and what happened to each campaign: the reasons column, in sentences a
seller understands with each clause backed by its evidence, and the per-campaign summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.similarity import TAG_FIT_THRESHOLD
from matcher.schema import MATCH_COLUMNS, CampaignSummary, empty_matches

__all__ = ["matches_table", "reason", "summaries"]


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[: limit - 1].rstrip() + '…'}”"


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
) -> str:
    """One sentence: which interest fits which phrase of the brief, audience in the campaign's marketplaces,
    track record or plainly none, funnel role.

    Topical fit is claimed only at or above TAG_FIT_THRESHOLD (a cosine measured to separate related from
    unrelated tag-brief pairs); below it the sentence says the interests are not clearly related.
    """
    close = fit_tag and not math.isnan(fit_similarity) and fit_similarity >= TAG_FIT_THRESHOLD
    if close:
        parts = [f"interest “{fit_tag}” fits {_quote(fit_phrase)} (similarity {fit_similarity:.2f})"]
    else:
        parts = ["interests not clearly related to the brief"]
    if not math.isnan(market_share):
        parts.append(f"{market_share:.0%} of audience in {'/'.join(marketplaces)}")
    if hist_campaigns >= 1:
        n = int(hist_campaigns)
        parts.append(
            f"record of {n} campaign{'s' if n > 1 else ''} at {hist_ctr:.1%} click-through and "
            f"{hist_cvr:.1%} orders per click"
        )
    else:
        basis = "interest fit, reach and category averages" if close else "reach and category averages"
        parts.append(f"no record yet: estimate rests on {basis}")
    parts.append(f"{funnel_stage} role ({creator_type.replace('_', ' ')})")
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
    # The sentence quotes the raw record, not the shrunk rates the ranker reads (0 where it has no denominator).
    raw_ctr, raw_cvr = _rate(clicks, impressions), _rate(orders, clicks)
    reasons = [
        reason(tag, phrase, fit, m, list(mk), n, ctr, cvr, stage, kind)
        for tag, phrase, fit, m, mk, n, ctr, cvr, stage, kind in zip(
            chosen["fit_tag"],
            chosen["fit_phrase"],
            chosen["fit_similarity"],
            chosen["market_share"],
            chosen["marketplaces"],
            chosen["hist_campaigns"],
            raw_ctr.tolist(),
            raw_cvr.tolist(),
            chosen["funnel_stage"],
            chosen["creator_type"],
            strict=True,
        )
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


# The matches table's columns written here rather than taken from the scored pairs.
_WRITTEN = ("reasons", "model_version")


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator where the denominator is positive, else 0 (and 0 where either is missing)."""
    rate = numerator / np.where(denominator > 0, denominator, np.nan)
    return np.where(np.isnan(rate), 0.0, rate)


def summaries(campaigns: pd.DataFrame, matches: pd.DataFrame, size_reason: dict[str, str]) -> list[CampaignSummary]:
    """One summary per campaign (in stock or not): its status, product type and why its slate has its size."""
    grouped = matches.groupby("campaign_id")
    sums = grouped[["expected_orders", "expected_commission"]].sum()  # pandas' compensated sum, kept
    pairs = zip(sums["expected_orders"].tolist(), sums["expected_commission"].tolist(), strict=True)
    totals = dict(zip(sums.index, pairs, strict=True))
    sizes = grouped.size().to_dict()
    # The columns read, not itertuples over every column of the campaigns: a lookup per row and column.
    out = []
    for campaign_id, in_stock, product_type, product_type_reason, budget, probability in zip(
        campaigns["campaign_id"],
        campaigns["in_stock"],
        campaigns["product_type"],
        campaigns["product_type_reason"],
        campaigns["budget"],
        campaigns["product_type_probability"],
        strict=True,
    ):
        size = int(sizes.get(campaign_id, 0))
        if not in_stock:
            status, why = "out of stock", "0: out-of-stock campaigns get no slate"
        elif size == 0:
            status, why = "no eligible creator", "0: no eligible candidate with positive expected sales"
        else:
            status, why = "matched", size_reason.get(campaign_id, "")
        orders, commission = totals.get(campaign_id, (0.0, 0.0))
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
            )
        )
    return out
