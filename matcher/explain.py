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
    # The sentence quotes the raw record, not the shrunk rates the ranker reads.
    raw_ctr = chosen["hist_clicks"] / chosen["hist_impressions"].where(chosen["hist_impressions"] > 0)
    raw_cvr = chosen["hist_orders"] / chosen["hist_clicks"].where(chosen["hist_clicks"] > 0)
    chosen = chosen.assign(
        reasons=[
            reason(tag, phrase, fit, m, list(mk), n, ctr, cvr, stage, kind)
            for tag, phrase, fit, m, mk, n, ctr, cvr, stage, kind in zip(
                chosen["fit_tag"],
                chosen["fit_phrase"],
                chosen["fit_similarity"],
                chosen["market_share"],
                chosen["marketplaces"],
                chosen["hist_campaigns"],
                raw_ctr.fillna(0.0),
                raw_cvr.fillna(0.0),
                chosen["funnel_stage"],
                chosen["creator_type"],
                strict=True,
            )
        ],
        model_version=model_version,
    )
    order = pd.Series(np.arange(len(campaigns)), index=campaigns["campaign_id"])
    chosen = chosen.assign(_order=chosen["campaign_id"].map(order)).sort_values(["_order", "rank"])
    return chosen[MATCH_COLUMNS].astype({"rank": "int64"}).reset_index(drop=True)


def summaries(campaigns: pd.DataFrame, matches: pd.DataFrame, size_reason: dict[str, str]) -> list[CampaignSummary]:
    """One summary per campaign (in stock or not): its status, product type and why its slate has its size."""
    totals = matches.groupby("campaign_id")[["expected_orders", "expected_commission"]].sum()
    sizes = matches.groupby("campaign_id").size()
    out = []
    for row in campaigns.itertuples(index=False):
        size = int(sizes.get(row.campaign_id, 0))
        if not row.in_stock:
            status, why = "out of stock", "0: out-of-stock campaigns get no slate"
        elif size == 0:
            status, why = "no eligible creator", "0: no eligible candidate with positive expected sales"
        else:
            status, why = "matched", size_reason.get(row.campaign_id, "")
        total = totals.loc[row.campaign_id] if row.campaign_id in totals.index else None
        out.append(
            CampaignSummary(
                row.campaign_id,
                status,
                row.product_type,
                row.product_type_reason,
                size,
                why,
                float(total["expected_orders"]) if total is not None else 0.0,
                float(total["expected_commission"]) if total is not None else 0.0,
                float(row.budget),
                float(row.product_type_probability),
            )
        )
    return out
