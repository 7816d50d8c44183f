"""Slate building: how many creators each campaign gets, and which, across a whole batch run.

Sizes come first, per campaign, from the policy: the product type's size, cut where the campaign's own best
candidates' expected commission would pass the budget, never below the minimum. Then one assignment over the
whole batch picks the members with the most predicted sales under every rule at once: each creator's
capacity, the sizes, the unproven-creator limit of standard slates and funnel coverage of non-standard ones.
It is solved exactly as a linear programme (scipy's HiGHS): each campaign's constraint rows form a laminar
family (the slate, and inside it either its unproven creators or each funnel stage), each creator's row
another, so the matrix is totally unimodular and the programme's vertex optimum is integral. The budget is
not a row of the programme (a knapsack row would break integrality); a slate that the assignment pushes over
it gives up its weakest members down to the minimum. Near-duplicate pairs found on a solved slate are taken
out and the programme solved again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from features.contract import COVERED_STAGES
from features.product_type import UNCERTAIN

__all__ = ["ASSIGNMENTS", "SlatePolicy", "best_assignment", "build_slates", "default_slates", "plan_sizes"]

FUNNEL = COVERED_STAGES
ASSIGNMENTS = ("exact", "greedy")


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
            no track record, where proven alternatives of comparable value exist to fill the rest.
        comparable_value: a proven creator is a comparable alternative when its score is at least this share
            of the score the slate's last place would have without the limit. A catalogue where nobody has a
            record therefore gets full slates.
        assignment: "exact" (the linear programme) or "greedy" (one best-first pass over all pairs, kept to
            measure what the exact assignment gains).
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
    comparable_value: float = 0.5
    assignment: str = "exact"

    def __post_init__(self) -> None:
        if not 0 < self.participation_rate <= 1:
            raise ValueError(f"Got participation_rate={self.participation_rate}; expected a value in (0, 1]")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"Got capacity={self.capacity}; expected at least 1 or None")
        if min(self.standard_size, self.non_standard_size, self.min_size, self.min_non_standard_size) < 1:
            raise ValueError("slate sizes must be at least 1")
        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f"Got assignment={self.assignment!r}; expected one of {', '.join(ASSIGNMENTS)}")

    def size_for(self, product_type: str) -> int:
        return self.non_standard_size if product_type == "non_standard" else self.standard_size

    def minimum_for(self, product_type: str) -> int:
        return self.min_non_standard_size if product_type == "non_standard" else self.min_size


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


def _campaign_order(scored: pd.DataFrame) -> np.ndarray:
    """Row order within each campaign, best first; ties go to the smaller creator_id (stable)."""
    # Sorting integer codes, not the strings themselves: 4M pairs sort in a second rather than in ten.
    campaign = pd.factorize(scored["campaign_id"].to_numpy(), sort=True)[0]
    creator = pd.factorize(scored["creator_id"].to_numpy(), sort=True)[0]
    return np.lexsort((creator, -scored["score"].to_numpy(float), campaign))


def plan_sizes(scored: pd.DataFrame, policy: SlatePolicy) -> pd.DataFrame:
    """Per campaign, what the policy allows before any creator is placed.

    Returns:
        Indexed by campaign_id: `standard`, `limit` (the product type's size), `minimum`, `budget` (with the
        tolerated overrun), `unproven` (most creators without a record; the limit where there are enough
        comparable proven ones), `target` (the slate size: the limit, cut by the budget on the campaign's own
        best candidates, never below the minimum nor above what is eligible), `budget_bound`, `best` score.
    """
    order = _campaign_order(scored)
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


class _Slates:
    """The batch's slates: members, spend and load per creator, and why a campaign stopped growing."""

    def __init__(self, scored: pd.DataFrame, policy: SlatePolicy, vectors: np.ndarray, plan: pd.DataFrame) -> None:
        self.policy = policy
        self.vectors = vectors
        self.campaign = scored["campaign_id"].to_numpy()
        self.creator = scored["creator_row"].to_numpy()
        self.commission = scored["expected_commission"].to_numpy(float) * policy.participation_rate
        self.proven = scored["hist_campaigns"].to_numpy(float) > 0
        self.size = plan["limit"].to_dict()
        self.minimum = plan["minimum"].to_dict()
        self.standard = plan["standard"].to_dict()
        self.budget = plan["budget"].to_dict()
        self.max_unproven = plan["unproven"].to_dict()
        self.members: dict[str, list[int]] = {c: [] for c in plan.index}
        self.spend = dict.fromkeys(plan.index, 0.0)
        self.unproven = dict.fromkeys(plan.index, 0)
        self.load: dict[int, int] = {}
        self.skipped: dict[str, set[str]] = {c: set() for c in plan.index}
        self.closed: set[str] = set()
        self.added: dict[str, list[str]] = {}

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
        if self.standard[c] and not self.proven[i] and self.unproven[c] >= self.max_unproven[c]:
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

    def remove(self, i: int) -> None:
        c = self.campaign[i]
        self.members[c].remove(i)
        self.spend[c] -= self.commission[i]
        self.unproven[c] -= int(self.standard[c] and not self.proven[i])
        self.load[self.creator[i]] -= 1


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
    scored = scored.iloc[_campaign_order(scored)].reset_index(drop=True)
    if scored.empty:
        return scored.assign(rank=pd.Series(dtype="int64")), {}
    plan = plan_sizes(scored, policy)
    slates = _Slates(scored, policy, vectors, plan)
    if policy.assignment == "greedy":
        _greedy(scored, slates)
    else:
        _exact(scored, slates, plan)
    stage = scored["funnel_stage"].to_numpy()
    chosen_rows = [i for members in slates.members.values() for i in members]
    chosen = scored.iloc[chosen_rows].sort_values(
        ["campaign_id", "score", "creator_id"], ascending=[True, False, True], kind="stable"
    )
    chosen = chosen.assign(rank=chosen.groupby("campaign_id").cumcount() + 1).reset_index(drop=True)
    return chosen, {c: _why(c, slates, slates.added.get(c, []), stage) for c in slates.members}


def _exact(scored: pd.DataFrame, slates: _Slates, plan: pd.DataFrame) -> None:
    """The assignment with the most predicted sales under capacity, size, unproven and funnel rules."""
    policy = slates.policy
    removed = np.zeros(len(scored), dtype=bool)
    for _ in range(20):
        chosen = _solve(scored, plan, policy, removed)
        duplicates = _duplicates(scored, chosen, slates.vectors, policy.duplicate_similarity)
        if not len(duplicates):
            break
        removed[duplicates] = True
    else:  # pathological clusters of copies: drop what still collides
        chosen = chosen[~np.isin(chosen, _duplicates(scored, chosen, slates.vectors, policy.duplicate_similarity))]
    for c in np.unique(slates.campaign[removed]):
        slates.skipped[c].add("duplicate")
    score = scored["score"].to_numpy(float)
    for i in chosen[np.lexsort((scored["creator_id"].to_numpy()[chosen], -score[chosen]))]:
        slates.add(int(i))
    for c, members in slates.members.items():
        if plan.at[c, "budget_bound"]:
            slates.skipped[c].add("budget")
        # A slate the assignment pushed past its budget gives up its weakest members, down to the minimum.
        while slates.spend[c] > slates.budget[c] and len(members) > slates.minimum[c]:
            slates.remove(min(members, key=lambda m: (score[m], scored["creator_id"].iat[m])))
            slates.skipped[c].add("budget")
    _explain(scored, slates, plan)


def _solve(scored: pd.DataFrame, plan: pd.DataFrame, policy: SlatePolicy, removed: np.ndarray) -> np.ndarray:
    """Rows of the optimal assignment (linear programme, integral by total unimodularity).

    Solved by column generation: first on each campaign's best few candidates, then adding every candidate
    whose reduced cost under the solution's duals says it would improve the objective, until none does. The
    last programme's optimum is then the full programme's, with a fraction of its columns.
    """
    rows = _prune(scored, plan, policy, removed)
    if len(rows) == 0:
        return rows
    columns = _Columns(scored, plan, policy, rows)
    position = pd.Series(columns.camp).groupby(columns.camp).cumcount().to_numpy()
    stage_position = pd.Series(columns.key).groupby([columns.camp, columns.key]).cumcount().to_numpy()
    working = (position < 2 * plan["target"].to_numpy()[columns.camp]) | ((columns.key >= 0) & (stage_position < 2))
    tolerance = 1e-9 * float(columns.score.max())
    while True:
        chosen, duals = columns.solve(working)
        reduced = columns.reduced_cost(duals)
        entering = ~working & (reduced < -tolerance)
        if not entering.any():
            return rows[chosen]
        working |= entering


class _Columns:
    """The programme's candidate columns and how each enters the constraint rows, to solve on any subset."""

    def __init__(self, scored: pd.DataFrame, plan: pd.DataFrame, policy: SlatePolicy, rows: np.ndarray) -> None:
        self.plan, self.policy = plan, policy
        self.camp = pd.Categorical(scored["campaign_id"].to_numpy()[rows], categories=plan.index).codes.astype(np.int64)
        self.score = scored["score"].to_numpy(float)[rows]
        self.creator = pd.factorize(scored["creator_row"].to_numpy()[rows])[0]
        # Standard slates: at most `unproven` creators without a record (a row only where that can bind).
        unproven = scored["hist_campaigns"].to_numpy(float)[rows] <= 0
        self.limited = unproven & (plan["unproven"].to_numpy()[self.camp] < plan["target"].to_numpy()[self.camp])
        # Funnel coverage: the (campaign, stage) row a worthy candidate of a non-standard slate counts towards.
        self.key = np.full(len(rows), -1)
        if policy.funnel_coverage:
            stage = scored["funnel_stage"].to_numpy()[rows]
            best = plan["best"].to_numpy()[self.camp]
            worthy = ~plan["standard"].to_numpy()[self.camp] & (self.score >= policy.min_stage_value * best)
            for k, name in enumerate(FUNNEL):
                self.key = np.where(worthy & (stage == name), self.camp * len(FUNNEL) + k, self.key)

    def solve(self, working: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The optimum over the `working` columns: which are chosen, and the duals of every row kind."""
        plan, cap = self.plan, self.policy.capacity
        var = np.flatnonzero(working)
        n = len(var)
        camp = self.camp[var]
        rows_at, cols_at, coef, upper = [camp], [np.arange(n)], [np.ones(n)], [plan["target"].to_numpy(float)]
        offset = len(plan)
        spans: dict[str, tuple[int, np.ndarray]] = {}

        def block(name: str, members: np.ndarray, ids: np.ndarray, codes: np.ndarray, bound: np.ndarray, sign=1.0):
            nonlocal offset
            rows_at.append(offset + codes)
            cols_at.append(members)
            coef.append(np.full(len(members), sign))
            upper.append(bound)
            spans[name] = (offset, ids)
            offset += len(ids)

        limited = np.flatnonzero(self.limited[var])
        if len(limited):
            ids, codes = np.unique(camp[limited], return_inverse=True)
            block("unproven", limited, ids, codes, plan["unproven"].to_numpy(float)[ids])
        if cap is not None:
            _, codes, counts = np.unique(self.creator[var], return_inverse=True, return_counts=True)
            busy = np.flatnonzero(counts[codes] > cap)
            if len(busy):
                ids, codes = np.unique(self.creator[var][busy], return_inverse=True)
                block("creator", busy, ids, codes, np.full(len(ids), float(cap)))
        cost = -self.score[var]
        covered = np.flatnonzero(self.key[var] >= 0)
        if len(covered):
            # Each stage with a worthy candidate is on the slate unless that is impossible: a slack column per
            # stage, priced above any member the campaign could give up for it.
            ids, codes = np.unique(self.key[var][covered], return_inverse=True)
            start = offset
            block("coverage", covered, ids, codes, np.full(len(ids), -1.0), sign=-1.0)
            rows_at.append(start + np.arange(len(ids)))
            cols_at.append(n + np.arange(len(ids)))
            coef.append(np.full(len(ids), -1.0))
            cost = np.concatenate([cost, 2.0 * plan["best"].to_numpy(float)[ids // len(FUNNEL)]])
        a = sparse.csr_array(
            (np.concatenate(coef), (np.concatenate(rows_at), np.concatenate(cols_at))), shape=(offset, len(cost))
        )
        result = linprog(cost, A_ub=a, b_ub=np.concatenate(upper), bounds=(0, 1), method="highs-ds")
        if result.status != 0:
            raise RuntimeError(f"slate assignment failed: {result.message}")
        marginals = result.ineqlin.marginals
        duals = {"campaign": marginals[: len(plan)]}
        for name, (start, ids) in spans.items():
            duals[name] = (ids, marginals[start : start + len(ids)])
        chosen = np.zeros(len(self.camp), dtype=bool)
        chosen[var[result.x[:n] > 0.5]] = True
        return chosen, duals

    def reduced_cost(self, duals: dict) -> np.ndarray:
        """Every column's reduced cost under the duals (negative: it would improve the objective)."""
        price = duals["campaign"][self.camp].copy()
        for name, lookup, sign in (
            ("unproven", np.where(self.limited, self.camp, -1), 1.0),
            ("creator", self.creator, 1.0),
            ("coverage", self.key, -1.0),
        ):
            if name in duals:
                ids, values = duals[name]
                where = np.searchsorted(ids, lookup).clip(0, len(ids) - 1)
                hit = (lookup >= 0) & (ids[where] == lookup)
                price += sign * np.where(hit, values[where], 0.0)
        return -self.score - price


def best_assignment(pairs: pd.DataFrame, sizes: pd.Series, capacity: int | None) -> pd.DataFrame:
    """The plain b-matching: the most total `score` with at most `sizes[c]` creators per campaign and each
    creator on at most `capacity` campaigns. What a slate policy's choice is measured against.

    Args:
        pairs: campaign_id, creator_id, score (rows of campaigns absent from `sizes` are ignored).
        sizes: slate size by campaign_id.
        capacity: most campaigns per creator, None for no limit.
    """
    pairs = pairs[pairs["campaign_id"].isin(sizes.index) & (pairs["score"] > 0)]
    scored = pairs.iloc[_campaign_order(pairs)].reset_index(drop=True)
    scored = scored.assign(
        creator_row=pd.factorize(scored["creator_id"])[0], funnel_stage="awareness", hist_campaigns=1.0
    )
    plan = pd.DataFrame({"target": sizes.astype(np.int64), "standard": True}).sort_index()
    plan["unproven"] = np.iinfo(np.int64).max
    policy = SlatePolicy(capacity=capacity, funnel_coverage=False)
    return scored.iloc[_solve(scored, plan, policy, np.zeros(len(scored), dtype=bool))].reset_index(drop=True)


def _prune(scored: pd.DataFrame, plan: pd.DataFrame, policy: SlatePolicy, removed: np.ndarray) -> np.ndarray:
    """Rows that can be in some optimal assignment; the others never need a column.

    A candidate is dominated when its campaign has at least `target` better candidates of the same funnel stage
    and record status whose creators can never run out of capacity: whatever slate holds it, one of those is
    free to take its place with no rule broken and no score lost. Dropping pairs frees more creators, so this
    repeats until nothing changes.
    """
    order = _campaign_order(scored)
    order = order[~removed[order]]
    s = scored.iloc[order]
    campaign = s["campaign_id"].to_numpy()
    creator = s["creator_row"].to_numpy()
    group = pd.MultiIndex.from_arrays([campaign, s["funnel_stage"].to_numpy(), s["hist_campaigns"].to_numpy() > 0])
    group_code = pd.factorize(group)[0]
    target = plan["target"].reindex(campaign).to_numpy()
    keep = np.ones(len(order), dtype=bool)
    while True:
        if policy.capacity is None:
            free = np.ones(len(order), dtype=bool)
        else:
            load = np.bincount(pd.factorize(creator)[0], weights=keep)
            free = load[pd.factorize(creator)[0]] <= policy.capacity
        counted = (free & keep).astype(np.int64)
        before = pd.Series(counted).groupby(group_code).cumsum().to_numpy() - counted
        now = keep & (before < target)
        if (now == keep).all():
            return np.sort(order[keep])
        keep = now


def _duplicates(scored: pd.DataFrame, chosen: np.ndarray, vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Chosen rows that sit on a slate with a better-scored near-duplicate of themselves."""
    if threshold >= 1 or not len(chosen):
        return np.array([], dtype=np.int64)
    frame = scored.iloc[chosen].assign(_row=chosen).sort_values(["campaign_id", "score"], ascending=[True, False])
    out = []
    for _, members in frame.groupby("campaign_id", sort=False):
        v = vectors[members["creator_row"].to_numpy()]
        close = np.triu(v @ v.T >= threshold, k=1)
        out += members["_row"].to_numpy()[close.any(axis=0)].tolist()
    return np.array(sorted(out), dtype=np.int64)


def _explain(scored: pd.DataFrame, slates: _Slates, plan: pd.DataFrame) -> None:
    """Which rules kept better candidates off each slate, and which stages came in only for coverage.

    `scored` is in canonical order (campaign, best first), so a row's position in its campaign is its rank.
    """
    score = scored["score"].to_numpy(float)
    campaign = slates.campaign
    chosen = np.zeros(len(scored), dtype=bool)
    chosen[[i for members in slates.members.values() for i in members]] = True
    weakest = pd.Series(np.where(chosen, score, np.inf)).groupby(campaign).transform("min").to_numpy()
    # Better candidates left off a slate, and whether a full creator or the unproven limit kept them off.
    outside = ~chosen & (score > weakest)
    if slates.policy.capacity is not None:
        load = np.bincount(slates.creator[chosen], minlength=int(slates.creator.max()) + 1)
        for c in np.unique(campaign[outside & (load[slates.creator] >= slates.policy.capacity)]):
            slates.skipped[c].add("capacity")
    at_limit = {c for c in slates.members if slates.unproven[c] >= slates.max_unproven[c]}
    for c in np.unique(campaign[outside & ~slates.proven]):
        if plan.at[c, "standard"] and c in at_limit:
            slates.skipped[c].add("unproven")
    if not slates.policy.funnel_coverage:
        return
    # A stage whose members all rank below the slate's size is there for coverage, not for its score.
    position = pd.Series(campaign).groupby(campaign).cumcount().to_numpy()
    size = pd.Series(chosen).groupby(campaign).transform("sum").to_numpy()
    stage = scored["funnel_stage"].to_numpy()
    wide = ~plan["standard"].reindex(campaign).to_numpy(bool)
    members = pd.DataFrame({"c": campaign, "s": stage, "top": position < size})[chosen & wide]
    for (c, s), top in members.groupby(["c", "s"], sort=True)["top"]:
        if s in FUNNEL and not top.any():
            slates.added.setdefault(c, []).append(s)


def _greedy(scored: pd.DataFrame, slates: _Slates) -> None:
    """One best-first pass over every pair, then funnel coverage by swaps: kept to measure the exact gain."""
    policy = slates.policy
    order = np.lexsort((scored["creator_id"].to_numpy(), scored["campaign_id"].to_numpy(), -scored["score"].to_numpy()))
    for i in order:
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
                slates.remove(min(crowded, key=lambda m: score[m]))
            slates.add(pick)
            slates.added.setdefault(c, []).append(wanted)


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
