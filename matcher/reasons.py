"""Why a creator is on a slate, in a sentence a seller understands."""

from __future__ import annotations

import math

__all__ = ["reason"]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def reason(
    shared: list[str],
    market_share: float,
    marketplaces: list[str],
    hist_campaigns: float,
    hist_ctr: float,
    hist_cvr: float,
    funnel_stage: str,
    creator_type: str,
) -> str:
    """One sentence: shared interests, audience in the campaign's marketplaces, track record, funnel role."""
    parts = [f"shares the brief's interests in {_join(shared[:3])}" if shared else "profile close to the brief"]
    if not math.isnan(market_share):
        parts.append(f"{market_share:.0%} of audience in {'/'.join(marketplaces)}")
    if hist_campaigns >= 1:
        n = int(hist_campaigns)
        parts.append(
            f"record of {n} campaign{'s' if n > 1 else ''} at {hist_ctr:.1%} click-through and "
            f"{hist_cvr:.1%} orders per click"
        )
    else:
        parts.append("new to campaigns, scored from profile and category averages")
    parts.append(f"{funnel_stage} role ({creator_type.replace('_', ' ')})")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
