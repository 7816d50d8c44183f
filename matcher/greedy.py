"""The greedy slate assignment: one best-first pass over every pair, kept to measure what the exact one gains."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matcher.slate_book import FUNNEL, SlateBook, common_scale

__all__ = ["assign_greedy"]


def assign_greedy(scored: pd.DataFrame, slates: SlateBook) -> None:
    """One best-first pass over every pair (predicted sales on one scale across currencies, `common_scale`), then
    funnel coverage by swaps: kept to measure the exact gain."""
    policy = slates.policy
    value = scored["score"].to_numpy(float) / common_scale(scored)
    order = np.lexsort((scored["creator_id"].to_numpy(), scored["campaign_id"].to_numpy(), -value))
    placed = np.zeros(len(scored), dtype=bool)
    if policy.capacity is not None:
        # Slates below their minimum first, as the exact assignment's floors price them, then everything else.
        for i in order:
            c = slates.campaign[i]
            if len(slates.members[c]) < slates.floor[c] and slates.why_not(i) is None:
                slates.add(i)
                placed[i] = True
    for i in order[~placed[order]]:
        reason = slates.why_not(i)
        if reason is None:
            slates.add(i)
        else:
            slates.skipped[slates.campaign[i]].add(reason)
    if not policy.funnel_coverage:
        return
    stage = scored["funnel_stage"].to_numpy()
    score = scored["score"].to_numpy(float)
    best = scored.groupby("campaign_id")["score"].max().to_dict()
    by_campaign = pd.Series(np.arange(len(scored))).groupby(scored["campaign_id"].to_numpy()).apply(list)
    for c, rows in by_campaign.items():
        if slates.standard[c]:
            continue
        for wanted in FUNNEL:
            members = slates.members[c]
            # Covered by a member worth the stage's threshold, as in the exact assignment's coverage rows.
            worthy = policy.min_stage_value * best[c]
            if any(stage[m] == wanted and score[m] >= worthy for m in members):
                continue
            options = [i for i in rows if stage[i] == wanted and score[i] >= worthy and i not in members]
            counts = pd.Series([stage[m] for m in members]).value_counts()
            crowded = [m for m in members if counts.get(stage[m], 0) >= 2]
            if not options:
                continue
            full = len(members) >= slates.target[c] or c in slates.closed
            if full and not crowded:
                continue
            leaving = min(crowded, key=lambda m: score[m]) if full else None
            size = len(members) + (leaving is None)
            spend = slates.spend[c] - (0.0 if leaving is None else slates.commission[leaving])
            pick = next(
                (
                    i
                    for i in sorted(options, key=lambda i: -score[i])
                    if slates.why_not(i, swap=True) is None
                    and not slates.over_budget(c, size, spend + slates.commission[i])
                ),
                None,
            )
            if pick is None:
                continue
            if leaving is not None:
                slates.remove(leaving)
            slates.add(pick)
            slates.added.setdefault(c, []).append(wanted)
