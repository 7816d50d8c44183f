"""Slate building: how many creators each campaign gets, and which, across a whole batch run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SlatePolicy", "build_slates", "default_slates"]

FUNNEL = ("awareness", "consideration", "conversion")


@dataclass(frozen=True)
class SlatePolicy:
    """How slates are sized and composed.

    Args:
        standard_size: most creators for a standard (commodity) product: a few sure converters suffice.
        non_standard_size: most creators for a non-standard product, where creator content converts best
            and several angles (awareness, reviews, deals) each add sales.
        participation_rate: share of invited creators who usually take part; the slate's expected
            commission, discounted by it, should not run past the budget by more than `budget_overrun`.
        budget_overrun: tolerated overrun of the budget, as a share of it.
        min_size: creators kept on a standard slate even when the first ones already exhaust the budget:
            sellers are advised to spread a budget over several creators rather than bet on one, and not
            every invitee takes part. Commission is paid per sale, so inviting more never spends past the
            budget; it can only use it up sooner, which the run summary flags.
        min_non_standard_size: the same for non-standard slates, at least `standard_size` so that they stay
            wider than standard ones when budgets bind, with room for two of each funnel stage.
        capacity: most campaigns one creator is proposed to in a run (None: no limit). Creators go where
            their expected sales are highest across the run, not to whichever campaign comes first.
        duplicate_similarity: a creator whose profile is at least this close (cosine) to one already on the
            slate is a near-duplicate and is skipped.
        funnel_coverage: non-standard slates get the best awareness, consideration and conversion creator
            when one is eligible and worth at least `min_stage_value` of the campaign's best candidate.
        min_stage_value: see `funnel_coverage`.
        max_unproven_standard: standard slates lean on proven converters: at most this many creators with
            no track record.
    """

    standard_size: int = 6
    non_standard_size: int = 15
    participation_rate: float = 0.5
    budget_overrun: float = 0.1
    min_size: int = 3
    min_non_standard_size: int = 6
    capacity: int | None = 5
    duplicate_similarity: float = 0.95
    funnel_coverage: bool = True
    min_stage_value: float = 0.05
    max_unproven_standard: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.participation_rate <= 1:
            raise ValueError(f"Got participation_rate={self.participation_rate}; expected a value in (0, 1]")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"Got capacity={self.capacity}; expected at least 1 or None")
        if min(self.standard_size, self.non_standard_size, self.min_size, self.min_non_standard_size) < 1:
            raise ValueError("slate sizes must be at least 1")

    def size_for(self, product_type: str) -> int:
        return self.non_standard_size if product_type == "non_standard" else self.standard_size

    def minimum_for(self, product_type: str) -> int:
        return self.min_non_standard_size if product_type == "non_standard" else self.min_size


class _Slates:
    """Mutable state of a batch's slates while the greedy assignment runs."""

    def __init__(self, scored: pd.DataFrame, policy: SlatePolicy, vectors: np.ndarray) -> None:
        self.policy = policy
        self.vectors = vectors
        self.campaign = scored["campaign_id"].to_numpy()
        self.creator = scored["creator_row"].to_numpy()
        self.commission = scored["expected_commission"].to_numpy(float) * policy.participation_rate
        self.proven = scored["hist_campaigns"].to_numpy(float) > 0
        limits = scored.groupby("campaign_id").agg(kind=("product_type", "first"), budget=("budget", "first"))
        self.size = {c: policy.size_for(k) for c, k in limits["kind"].items()}
        self.minimum = {c: policy.minimum_for(k) for c, k in limits["kind"].items()}
        self.standard = {c: k != "non_standard" for c, k in limits["kind"].items()}
        self.budget = (limits["budget"] * (1 + policy.budget_overrun)).to_dict()
        self.members: dict[str, list[int]] = {c: [] for c in limits.index}
        self.spend = dict.fromkeys(limits.index, 0.0)
        self.unproven = dict.fromkeys(limits.index, 0)
        self.load: dict[int, int] = {}
        self.skipped: dict[str, set[str]] = {c: set() for c in limits.index}
        self.closed: set[str] = set()

    def why_not(self, i: int, swap: bool = False) -> str | None:
        """None if row i can join its campaign's slate, else the rule that stops it.

        With `swap`, size and budget are not checked: the row takes the place of a member of similar cost.
        """
        c, p = self.campaign[i], self.policy
        members = self.members[c]
        if not swap and len(members) >= self.size[c]:
            return "size"
        if not swap and c in self.closed:
            return "budget"
        if p.capacity is not None and self.load.get(self.creator[i], 0) >= p.capacity:
            return "capacity"
        if not swap and len(members) >= self.minimum[c] and self.spend[c] + self.commission[i] > self.budget[c]:
            # The slate closes at its budget: filling up with ever weaker, cheaper creators is not a plan.
            self.closed.add(c)
            return "budget"
        if self.standard[c] and not self.proven[i] and self.unproven[c] >= p.max_unproven_standard:
            return "unproven"
        if members and p.duplicate_similarity < 1:
            closest = float(np.max(self.vectors[self.creator[members]] @ self.vectors[self.creator[i]]))
            if closest >= p.duplicate_similarity:
                return "duplicate"
        return None

    def add(self, i: int) -> None:
        c = self.campaign[i]
        self.members[c].append(i)
        self.spend[c] += self.commission[i]
        self.unproven[c] += int(self.standard[c] and not self.proven[i])
        self.load[self.creator[i]] = self.load.get(self.creator[i], 0) + 1


def build_slates(scored: pd.DataFrame, policy: SlatePolicy, vectors: np.ndarray) -> tuple[pd.DataFrame, dict[str, str]]:
    """Picks every campaign's slate in one pass over the batch's scored candidates.

    Pairs are taken best-first across all campaigns, so a creator limited by `capacity` lands where their
    expected sales are highest. Non-standard slates then get a creator of each funnel stage they lack, in
    place of their weakest member of a stage that is represented twice or more.

    Args:
        scored: one row per eligible candidate pair: campaign_id, creator_id, creator_row (row in `vectors`),
            score, expected_commission, product_type, budget, funnel_stage, hist_campaigns.
        policy: the sizing and composition rules.
        vectors: unit creator profile vectors, by creator_row, for the near-duplicate rule.

    Returns:
        The chosen rows ranked 1..k per campaign by score, and per campaign a sentence on its size and mix.
    """
    scored = scored[scored["score"] > 0].reset_index(drop=True)
    if scored.empty:
        return scored.assign(rank=pd.Series(dtype="int64")), {}
    order = np.lexsort((scored["creator_id"].to_numpy(), scored["campaign_id"].to_numpy(), -scored["score"].to_numpy()))
    slates = _Slates(scored, policy, vectors)
    for i in order:
        reason = slates.why_not(i)
        if reason is None:
            slates.add(i)
        else:
            slates.skipped[slates.campaign[i]].add(reason)
    stage = scored["funnel_stage"].to_numpy()
    score = scored["score"].to_numpy(float)
    added: dict[str, list[str]] = {}
    if policy.funnel_coverage:
        best = scored.groupby("campaign_id")["score"].max().to_dict()
        by_campaign = pd.Series(np.arange(len(scored))).groupby(scored["campaign_id"].to_numpy()).apply(list)
        for c, rows in by_campaign.items():
            if slates.standard[c]:
                continue
            for wanted in FUNNEL:
                members = slates.members[c]
                if any(stage[m] == wanted for m in members):
                    continue
                options = [
                    i
                    for i in rows
                    if stage[i] == wanted and score[i] >= policy.min_stage_value * best[c] and i not in members
                ]
                counts = pd.Series([stage[m] for m in members]).value_counts()
                crowded = [m for m in members if counts.get(stage[m], 0) >= 2]
                if not options:
                    continue
                full = len(members) >= slates.size[c] or c in slates.closed
                if full and not crowded:
                    continue
                pick = next(
                    (i for i in sorted(options, key=lambda i: -score[i]) if slates.why_not(i, swap=True) is None), None
                )
                if pick is None:
                    continue
                if full:
                    weakest = min(crowded, key=lambda m: score[m])
                    members.remove(weakest)
                    slates.spend[c] -= slates.commission[weakest]
                    slates.load[slates.creator[weakest]] -= 1
                slates.add(pick)
                added.setdefault(c, []).append(wanted)
    chosen_rows = [i for members in slates.members.values() for i in members]
    chosen = scored.iloc[chosen_rows].sort_values(
        ["campaign_id", "score", "creator_id"], ascending=[True, False, True], kind="stable"
    )
    chosen = chosen.assign(rank=chosen.groupby("campaign_id").cumcount() + 1).reset_index(drop=True)
    return chosen, {c: _why(c, slates, added.get(c, []), stage) for c in slates.members}


def default_slates(scored: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """The default policy's slates: what `training.train` reviews on held-out campaigns as `slate_builder`.

    Training may not import the matcher, so whoever calls it (the `train` command, the demo) passes this in.
    """
    return build_slates(scored, SlatePolicy(), vectors)[0]


def _why(campaign: str, slates: _Slates, added: list[str], stage: np.ndarray) -> str:
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
