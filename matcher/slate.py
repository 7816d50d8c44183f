"""Slate building: how many creators a campaign gets, and which."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["SlatePolicy", "build_slates"]


@dataclass(frozen=True)
class SlatePolicy:
    """How slates are sized.

    Args:
        standard_size: most creators for a standard (commodity) product: a few sure converters suffice.
        non_standard_size: most creators for a non-standard product, where creator content converts best
            and several angles (awareness, reviews, deals) each add sales.
        participation_rate: share of invited creators who usually take part; the slate's expected
            commission, discounted by it, should not run past the budget by more than `budget_overrun`.
        budget_overrun: tolerated overrun of the budget, as a share of it.
        min_size: creators kept even when the first ones already exhaust the budget.
    """

    standard_size: int = 6
    non_standard_size: int = 15
    participation_rate: float = 0.5
    budget_overrun: float = 0.1
    min_size: int = 1

    def size_for(self, product_type: str) -> int:
        return self.non_standard_size if product_type == "non_standard" else self.standard_size


def build_slates(scored: pd.DataFrame, policy: SlatePolicy) -> tuple[pd.DataFrame, dict[str, str]]:
    """Picks each campaign's slate from its eligible scored candidates.

    Args:
        scored: candidate rows with campaign_id, score, expected_commission, product_type and budget.
        policy: the sizing rules.

    Returns:
        The chosen rows ranked 1..k per campaign, and per campaign a sentence on why the slate has its size.
    """
    ordered = scored[scored["score"] > 0].sort_values(
        ["campaign_id", "score", "creator_id"], ascending=[True, False, True], kind="stable"
    )
    position = ordered.groupby("campaign_id").cumcount().to_numpy()
    cap = ordered["product_type"].map(policy.size_for).to_numpy()
    spend = ordered.groupby("campaign_id")["expected_commission"].cumsum().to_numpy() * policy.participation_rate
    affordable = spend <= ordered["budget"].to_numpy() * (1 + policy.budget_overrun)
    keep = (position < cap) & (affordable | (position < policy.min_size))
    chosen = ordered[keep].copy()
    chosen["rank"] = chosen.groupby("campaign_id").cumcount() + 1
    why: dict[str, str] = {}
    for campaign_id, group in ordered.groupby("campaign_id", sort=False):
        size = int((chosen["campaign_id"] == campaign_id).sum())
        kind = str(group["product_type"].iloc[0])
        limit = policy.size_for(kind)
        if size >= limit:
            why[campaign_id] = f"{size}: the {kind.replace('_', '-')} slate size"
        elif size < len(group):
            why[campaign_id] = f"{size}: budget reached (expected commission x {policy.participation_rate:.0%} take-up)"
        else:
            why[campaign_id] = f"{size}: all eligible candidates with positive expected sales"
    return chosen.reset_index(drop=True), why
