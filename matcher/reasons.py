"""Why a creator is on a slate, in a sentence a seller understands, each clause backed by its evidence."""

from __future__ import annotations

import math

from features.similarity import TAG_FIT_THRESHOLD

__all__ = ["reason"]


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
