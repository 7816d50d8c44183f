"""Slate building: how many creators each campaign gets, and which, across a whole batch run.

Sizes come first, per campaign, from the policy: the product type's size, cut where the campaign's own best
candidates' expected commission would pass the budget, never below the minimum. Then one assignment over the
whole batch picks the members (`matcher.assignment`: exact, the default; `matcher.greedy`: one best-first pass,
kept for comparison), and each campaign gets a sentence on its slate's size and mix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.product_type import UNCERTAIN
from matcher.assignment import assign_exact, best_assignment
from matcher.greedy import assign_greedy
from matcher.settings import ASSIGNMENTS, SlatePolicy
from matcher.slate_book import SlateBook, campaign_order

__all__ = ["ASSIGNMENTS", "SlatePolicy", "best_assignment", "build_slates", "default_slates", "plan_sizes"]


def _size_uncertain_types(plan: pd.DataFrame, probability: pd.Series, policy: SlatePolicy) -> None:
    """Campaigns whose product type is uncertain (features.product_type.UNCERTAIN) are sized between the two
    kinds, in proportion to the probability of non-standard."""
    p = probability.reindex(plan.index).to_numpy(float)
    between = (p >= UNCERTAIN[0]) & (p <= UNCERTAIN[1])
    for column, low, high in (
        ("limit", policy.standard_size, policy.non_standard_size),
        ("minimum", policy.min_size, policy.min_non_standard_size),
    ):
        plan[column] = np.where(between, np.rint(low + p * (high - low)), plan[column]).astype(np.int64)


def plan_sizes(scored: pd.DataFrame, policy: SlatePolicy) -> pd.DataFrame:
    """Per campaign, what the policy allows before any creator is placed.

    Returns:
        Indexed by campaign_id: `standard`, `limit` (the product type's size), `minimum`, `budget` (with the
        tolerated overrun), `unproven` (most creators without a record; the limit where there are enough
        comparable proven ones), `target` (the slate size: the limit, cut by the budget on the campaign's own
        best candidates, never below the minimum nor above what is eligible), `budget_bound`, `best` score.
    """
    order = campaign_order(scored)
    s = scored.iloc[order]
    campaign = s["campaign_id"].to_numpy()
    score = s["score"].to_numpy(float)
    proven = s["hist_campaigns"].to_numpy(float) > 0
    first = s.groupby("campaign_id", sort=True).agg(
        kind=("product_type", "first"), budget=("budget", "first"), n=("score", "size"), best=("score", "max")
    )
    plan = pd.DataFrame(index=first.index)
    plan["standard"] = first["kind"] != "non_standard"
    plan["limit"] = np.where(plan["standard"], policy.standard_size, policy.non_standard_size)
    plan["minimum"] = np.where(plan["standard"], policy.min_size, policy.min_non_standard_size)
    if "product_type_probability" in s.columns:
        _size_uncertain_types(plan, s.groupby("campaign_id", sort=True)["product_type_probability"].first(), policy)
    plan["budget"] = first["budget"].to_numpy(float) * (1 + policy.budget_overrun)
    plan["best"] = first["best"]
    position = s.groupby("campaign_id").cumcount().to_numpy()
    # The score the slate's last place would have with no unproven limit: what "comparable" is measured against.
    last = np.minimum(plan["limit"].to_numpy(), first["n"].to_numpy()) - 1
    at_last = position == pd.Series(last, index=plan.index).reindex(campaign).to_numpy()
    reference = pd.Series(score[at_last], index=campaign[at_last]).reindex(plan.index)
    comparable = proven & (score >= policy.comparable_value * reference.reindex(campaign).to_numpy())
    n_comparable = pd.Series(comparable).groupby(campaign).sum().reindex(plan.index).to_numpy()
    unproven = np.maximum(policy.max_unproven_standard, plan["limit"].to_numpy() - n_comparable)
    plan["unproven"] = np.where(plan["standard"], unproven, np.iinfo(np.int64).max)
    # Walk each campaign's best candidates that the unproven limit lets in, adding up their expected commission.
    unproven_rank = pd.Series(~proven).groupby(campaign).cumsum().to_numpy() - (~proven)
    allowed = proven | (unproven_rank < plan["unproven"].reindex(campaign).to_numpy())
    cost = np.where(allowed, s["expected_commission"].to_numpy(float) * policy.participation_rate, 0.0)
    spent = pd.Series(cost).groupby(campaign).cumsum().to_numpy()
    within = allowed & (spent <= plan["budget"].reindex(campaign).to_numpy())
    available = pd.Series(allowed).groupby(campaign).sum().reindex(plan.index).to_numpy()
    # The walk stops at the first candidate past the budget: cheaper, weaker ones after it do not sneak in.
    past = allowed & ~within
    first_past = pd.Series(np.where(past, position, np.iinfo(np.int64).max)).groupby(campaign).min()
    before = pd.Series(allowed & (position < first_past.reindex(campaign).to_numpy())).groupby(campaign).sum()
    affordable = before.reindex(plan.index).to_numpy()
    cap = np.minimum(plan["limit"].to_numpy(), available)
    plan["target"] = np.minimum(cap, np.maximum(plan["minimum"].to_numpy(), affordable))
    plan["budget_bound"] = affordable < cap
    return plan


def build_slates(scored: pd.DataFrame, policy: SlatePolicy, vectors: np.ndarray) -> tuple[pd.DataFrame, dict[str, str]]:
    """Picks every campaign's slate from the batch's scored candidates, all campaigns at once.

    Args:
        scored: one row per eligible candidate pair: campaign_id, creator_id, creator_row (row in `vectors`),
            score, expected_commission, product_type, budget, funnel_stage, hist_campaigns.
        policy: the sizing and composition rules, and which assignment to run.
        vectors: unit creator profile vectors, by creator_row, for the near-duplicate rule.

    Returns:
        The chosen rows ranked 1..k per campaign by score, and per campaign a sentence on its size and mix.
    """
    scored = scored[scored["score"] > 0]
    # One canonical row order, whatever the input's: the solver then settles ties the same way every run.
    scored = scored.iloc[campaign_order(scored)].reset_index(drop=True)
    if scored.empty:
        return scored.assign(rank=pd.Series(dtype="int64")), {}
    plan = plan_sizes(scored, policy)
    slates = SlateBook(scored, policy, vectors, plan)
    if policy.assignment == "greedy":
        assign_greedy(scored, slates)
    else:
        assign_exact(scored, slates, plan)
    stage = scored["funnel_stage"].to_numpy()
    chosen_rows = [i for members in slates.members.values() for i in members]
    chosen = scored.iloc[chosen_rows].sort_values(
        ["campaign_id", "score", "creator_id"], ascending=[True, False, True], kind="stable"
    )
    chosen = chosen.assign(rank=chosen.groupby("campaign_id").cumcount() + 1).reset_index(drop=True)
    return chosen, {c: _why(c, slates, slates.added.get(c, []), stage) for c in slates.members}


def default_slates(scored: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """The default policy's slates: what `training.train` reviews on held-out campaigns as `slate_builder`.

    Training may not import the matcher, so whoever calls it (the `train` command, the demo) passes this in.
    """
    return build_slates(scored, SlatePolicy(), vectors)[0]


def _why(campaign: str, slates: SlateBook, added: list[str], stage: np.ndarray) -> str:
    members = slates.members[campaign]
    size, limit = len(members), slates.size[campaign]
    kind = "standard" if slates.standard[campaign] else "non-standard"
    if size >= limit:
        text = f"{size}: the {kind} slate size"
    elif "budget" in slates.skipped[campaign]:
        text = f"{size}: budget reached (expected commission x {slates.policy.participation_rate:.0%} take-up)"
        if slates.spend[campaign] > slates.budget[campaign]:
            text += f"; the minimum of {slates.minimum[campaign]} may use the budget up before the end date"
    elif slates.skipped[campaign] & {"capacity", "duplicate", "unproven"}:
        stops = ", ".join(sorted(slates.skipped[campaign] & {"capacity", "duplicate", "unproven"}))
        text = f"{size}: no further eligible candidate ({stops} rules)"
    else:
        text = f"{size}: all eligible candidates with positive expected sales"
    stages = pd.Series([stage[m] for m in members]).value_counts()
    text += "; " + ", ".join(f"{n} {s}" for s, n in stages.items())
    if added:
        text += f" (added for funnel coverage: {', '.join(added)})"
    return text
