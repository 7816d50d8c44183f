"""The exact slate assignment: the most predicted sales under every rule at once, for the whole batch.

The rules are each person's capacity (one person's creator ids share it), the slate sizes, each slate's budget
(beyond its minimum), the unproven-creator limit of standard slates, funnel coverage of non-standard ones, and
near-duplicates never sharing a slate: all are rows of one programme (`matcher.programme`, scipy's HiGHS), so
the slates it returns are the optimum under them, not an optimum under some of them trimmed afterwards. Budget rows
are added for the campaigns whose slate could pass its budget; near-duplicates are rows from the start, one per
group of a campaign's candidates that are all copies of each other (`near_duplicate_groups`), so one solve is the
answer.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from features.duplicate_evidence import DuplicateEvidence
from features.threads import blas_threads
from matcher.programme import Programme, Solution, dearest_spend
from matcher.settings import SlatePolicy
from matcher.slate_book import FUNNEL, SlateBook, campaign_order

__all__ = ["assign_exact", "best_assignment", "budget_rows", "near_duplicate_groups"]


def assign_exact(scored: pd.DataFrame, slates: SlateBook, plan: pd.DataFrame) -> Solution:
    """The assignment with the most predicted sales (on one scale across currencies, `common_scale`) under capacity,
    size, budget, unproven, funnel and near-duplicate rules. Returns the programme's solution (objective and the
    relaxation's bound)."""
    policy = slates.policy
    plan = plan.assign(budgeted=budget_rows(scored, plan, policy))
    exempt = plan["budgeted"].to_numpy(bool)
    conflicts = near_duplicate_groups(scored, slates.evidence, policy.duplicate_similarity)
    solution = _solve(scored, plan, policy, exempt, conflicts, slates.person)
    score = scored["score"].to_numpy(float)
    chosen = solution.chosen
    for i in chosen[np.lexsort((scored["creator_id"].to_numpy()[chosen], -score[chosen]))]:
        slates.add(int(i))
    _explain(scored, slates, plan, conflicts)
    return solution


def budget_rows(scored: pd.DataFrame, plan: pd.DataFrame, policy: SlatePolicy) -> np.ndarray:
    """Per campaign of `plan`, whether its slate could pass its budget: wider than its minimum, and its `target`
    dearest candidates' expected commission x take-up over the budget. Only these need a budget row."""
    cost = scored["expected_commission"].to_numpy(float) * policy.participation_rate
    campaign = plan.index.get_indexer(scored["campaign_id"].to_numpy())
    target = plan["target"].to_numpy()
    dearest = dearest_spend(cost, campaign, target, len(plan))
    budget = plan["budget"].to_numpy(float)
    return np.isfinite(budget) & (target > plan["minimum"].to_numpy()) & (dearest > budget)


def near_duplicate_groups(scored: pd.DataFrame, evidence: DuplicateEvidence, threshold: float) -> np.ndarray:
    """Groups of one campaign's candidates who are all near-duplicates of each other (profiles at cosine at least
    `threshold` that hold a bio, or one person: the same handle on a shared platform; `DuplicateEvidence`), covering
    every such pair: `(group, row)` entries, rows of `scored`, ordered by group.

    At most one member of a group may share a slate. A group's row says what its pairs' rows say in integers, but
    the linear relaxation cannot spread half a place over each of three mutual copies, which keeps branch and bound
    short. Groups are grown best candidate first, each from an uncovered pair, by every candidate close to all
    members so far.
    """
    if (threshold >= 1 and not evidence.people) or not len(scored):
        return np.empty((0, 2), dtype=np.int64)
    campaign = pd.factorize(scored["campaign_id"])[0]
    order = np.argsort(campaign, kind="stable")  # `scored` is in canonical order: best first within a campaign
    bounds = np.flatnonzero(np.diff(campaign[order], prepend=-1, append=-1))
    creator = scored["creator_row"].to_numpy()
    out: list[np.ndarray] = []
    with blas_threads(1):  # a few hundred rows: a second thread costs more than it shares
        for first, last in pairwise(bounds):
            members = order[first:last]
            rows = creator[members]
            if threshold < 1:
                v, bio = evidence.vectors[rows], evidence.has_bio[rows]
                close = (v @ v.T >= threshold) & bio[:, None] & bio[None, :]
            else:  # the rule's cosine is off (duplicate_similarity 1); one person is still one
                close = np.zeros((len(rows), len(rows)), dtype=bool)
            if evidence.has_other_ids[rows].sum() > 1:
                close |= evidence.same_person(rows, rows)
            np.fill_diagonal(close, False)
            uncovered = close.copy()
            for i in np.flatnonzero(close.any(axis=1)):
                while uncovered[i].any():
                    group = [i, int(np.argmax(uncovered[i]))]
                    common = close[i] & close[group[1]]
                    for k in np.flatnonzero(common):
                        if common[k]:
                            group.append(int(k))
                            common &= close[k]
                    uncovered[np.ix_(group, group)] = False
                    out.append(np.sort(members[group]))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    group_of = np.repeat(np.arange(len(out)), [len(g) for g in out])
    return np.stack([group_of, np.concatenate(out)], axis=1)


def _solve(
    scored: pd.DataFrame,
    plan: pd.DataFrame,
    policy: SlatePolicy,
    exempt: np.ndarray,
    conflicts: np.ndarray,
    person: np.ndarray,
) -> Solution:
    """The optimal assignment (rows of `scored`) over the candidates pruning keeps, with `conflicts` (near-duplicate
    groups, `near_duplicate_groups`) as rows and capacity counted per `person` (per row of `scored`, whose capacity
    it uses: `SlateBook.person`).

    Solved by column generation (`Programme.optimum`): first on each campaign's best few candidates, then adding
    every candidate whose reduced cost says it could improve the solution, until none can.
    """
    rows = _prune(scored, plan, policy, exempt, conflicts, person)
    if len(rows) == 0:
        return Solution(rows, 0.0, 0.0)
    if "floor" in plan.columns:  # a floor row only where capacity could leave the slate short
        at_risk = _at_risk(scored, plan, policy, rows, conflicts, person)
        plan = plan.assign(floor=np.where(at_risk, plan["floor"], 0))
    columns = Programme(scored, plan, policy, rows, conflicts, person)
    ones = np.ones(len(columns.camp), dtype=np.int64)
    position = _group_cumsum(ones, columns.camp) - 1
    stage_position = _group_cumsum(ones, columns.camp * (columns.key.max(initial=0) + 2) + columns.key + 1) - 1
    working = (position < 2 * plan["target"].to_numpy()[columns.camp]) | ((columns.key >= 0) & (stage_position < 2))
    solution = columns.optimum(working)
    solution.chosen, solution.considered = rows[solution.chosen], rows[solution.considered]
    return solution


def _at_risk(
    scored: pd.DataFrame,
    plan: pd.DataFrame,
    policy: SlatePolicy,
    rows: np.ndarray,
    conflicts: np.ndarray,
    person: np.ndarray,
) -> np.ndarray:
    """Per campaign of `plan`, whether capacity could leave its slate below its floor: it has fewer than `floor`
    candidates (among the columns `rows`) whose person (`person`, by row of `scored`: all their creator ids
    together) has room on every campaign they are a candidate of,
    that are in no near-duplicate group and that its unproven limit lets in together.

    Only these slates get a floor row. Any other slate below its floor could take one of those candidates more,
    breaking no row and adding a positive score, so no optimum leaves it short: the optimum with floor rows for
    the slates at risk is the optimum with a floor row for every slate, while the 1M run's batch, where nearly
    every campaign has hundreds of such candidates, keeps its programme's size.
    """
    if policy.capacity is None:
        return np.zeros(len(plan), dtype=bool)
    camp = plan.index.get_indexer(scored["campaign_id"].to_numpy()[rows])
    people = pd.factorize(person[rows])[0]
    free = (np.bincount(people)[people] <= policy.capacity) & ~np.isin(rows, conflicts[:, 1])
    proven = scored["hist_campaigns"].to_numpy(float)[rows] > 0
    usable = np.bincount(camp[free & proven], minlength=len(plan)) + np.minimum(
        np.bincount(camp[free & ~proven], minlength=len(plan)),
        np.where(plan["standard"].to_numpy(bool), plan["unproven"].to_numpy(), np.iinfo(np.int64).max),
    )
    return usable < plan["floor"].to_numpy()


def best_assignment(pairs: pd.DataFrame, sizes: pd.Series, capacity: int | None) -> pd.DataFrame:
    """The plain b-matching: the most total `score` with at most `sizes[c]` creators per campaign and each
    creator on at most `capacity` campaigns. What a slate policy's choice is measured against.

    Args:
        pairs: campaign_id, creator_id, score (rows of campaigns absent from `sizes` are ignored); with
            `currency_log_scale`, scores in several currencies are added on one scale (`common_scale`).
        sizes: slate size by campaign_id.
        capacity: most campaigns per creator, None for no limit.
    """
    pairs = pairs[pairs["campaign_id"].isin(sizes.index) & (pairs["score"] > 0)]
    scored = pairs.iloc[campaign_order(pairs)].reset_index(drop=True)
    scored = scored.assign(
        creator_row=pd.factorize(scored["creator_id"])[0], funnel_stage="awareness", hist_campaigns=1.0
    )
    plan = pd.DataFrame({"target": sizes.astype(np.int64), "standard": True}).sort_index()
    plan["unproven"] = np.iinfo(np.int64).max
    policy = SlatePolicy(capacity=capacity, funnel_coverage=False)
    no_conflict = np.empty((0, 2), dtype=np.int64)
    solution = _solve(
        scored, plan, policy, np.zeros(len(plan), dtype=bool), no_conflict, scored["creator_row"].to_numpy()
    )
    return scored.iloc[solution.chosen].reset_index(drop=True)


def _prune(
    scored: pd.DataFrame,
    plan: pd.DataFrame,
    policy: SlatePolicy,
    exempt: np.ndarray,
    conflicts: np.ndarray,
    person: np.ndarray,
) -> np.ndarray:
    """Rows that can be in some optimal assignment; the others never need a column.

    A candidate is dominated when its campaign has at least `target` better candidates of the same funnel stage
    and record status whose persons (`person`, by row: a person's creator ids share one capacity) can never run
    out of capacity and who are in no near-duplicate group
    (`conflicts`): whatever slate holds it, one of those is free to take its place with no rule broken and no score
    lost. Dropping pairs frees more creators, so this repeats until nothing changes. It does not hold where a
    dearer creator could break the budget: the campaigns marked `exempt` (by plan position) keep every candidate.
    """
    # `scored` comes in the canonical order (`campaign_order`) from every caller: each campaign's rows are
    # contiguous and best first, which the running counts below read. Codes of the columns, not a copy of the
    # rows (a copy, or their strings as objects, cost 0.3 GiB at 1M creators).
    campaign, ids = pd.factorize(scored["campaign_id"])
    people = pd.factorize(person)[0]
    stage = pd.factorize(scored["funnel_stage"], use_na_sentinel=False)[0]
    proven = scored["hist_campaigns"].to_numpy() > 0
    group = (campaign * (stage.max(initial=0) + 1) + stage) * 2 + proven
    at = plan.index.get_indexer(ids)[campaign]
    target = np.where(at >= 0, plan["target"].to_numpy(float)[at], np.nan)  # as a reindex: NaN where absent
    always = (at >= 0) & exempt[at.clip(0)]
    clean = ~np.isin(np.arange(len(scored)), conflicts[:, 1])
    keep = np.ones(len(scored), dtype=bool)
    while True:
        if policy.capacity is None:
            free = np.ones(len(scored), dtype=bool)
        else:
            free = np.bincount(people, weights=keep)[people] <= policy.capacity
        counted = (free & keep & clean).astype(np.int64)
        before = _group_cumsum(counted, group) - counted
        now = keep & ((before < target) | always)
        if (now == keep).all():
            return np.flatnonzero(keep)
        keep = now


def _group_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running sum of integer `values` within each `group`, in row order (numpy: pandas' groupby costs ~1 ms)."""
    order = np.argsort(group, kind="stable")
    ordered = values[order]
    running = np.cumsum(ordered)
    first = np.flatnonzero(np.diff(group[order], prepend=group[order[:1]] - 1))
    which = np.cumsum(np.isin(np.arange(len(order)), first)) - 1
    out = np.empty_like(running)
    out[order] = running - (running - ordered)[first][which]
    return out


def _explain(scored: pd.DataFrame, slates: SlateBook, plan: pd.DataFrame, conflicts: np.ndarray) -> None:
    """Which rules kept better candidates off each slate, and which stages came in only for coverage.

    `scored` is in canonical order (campaign, best first), so a row's position in its campaign is its rank.
    """
    score = scored["score"].to_numpy(float)
    campaign = slates.campaign
    code = pd.factorize(campaign)[0]
    chosen = np.zeros(len(scored), dtype=bool)
    chosen[[i for members in slates.members.values() for i in members]] = True
    weakest = np.full(code.max(initial=-1) + 1, np.inf)
    np.minimum.at(weakest, code[chosen], score[chosen])
    # Better candidates left off a slate, and whether a full creator or the unproven limit kept them off.
    outside = ~chosen & (score > weakest[code])
    # Rows no slate of theirs could take: the person is proposed to as many campaigns as capacity allows (under
    # any of their creator ids), or a near-duplicate of theirs is on the slate.
    blocked = np.zeros(len(scored), dtype=bool)
    if slates.policy.capacity is not None:
        blocked |= ~chosen & (slates.loads_elsewhere(chosen) >= slates.policy.capacity)
        for c in np.unique(campaign[outside & blocked]):
            slates.skipped[c].add("capacity")
    at_limit = {c for c in slates.members if slates.unproven[c] >= slates.max_unproven[c]}
    for c in np.unique(campaign[outside & ~slates.proven]):
        if plan.at[c, "standard"] and c in at_limit:
            slates.skipped[c].add("unproven")
    # A better candidate whose near-duplicate is on the slate.
    group, row = conflicts[:, 0], conflicts[:, 1]
    held = np.bincount(group, weights=chosen[row], minlength=group.max(initial=-1) + 1) > 0
    for i in np.unique(row[held[group] & outside[row]]):
        slates.skipped[campaign[i]].add("duplicate")
    blocked[row[held[group] & ~chosen[row]]] = True
    # A slate short of its size whose budget has no room left for any better candidate free to join it.
    at = plan.index.get_indexer(campaign)
    cheapest = np.full(len(plan), np.inf)
    free = outside & ~blocked
    np.minimum.at(cheapest, at[free], slates.commission[free])
    for k in np.flatnonzero(plan["budgeted"].to_numpy(bool)):
        c = plan.index[k]
        if len(slates.members[c]) < plan["target"].iat[k] and slates.spend[c] + cheapest[k] > slates.budget[c]:
            slates.skipped[c].add("budget")
    # A slate the budget sized on its best candidates' commission, filled by cheaper ones: its budget is not spent.
    # So is one sized by what its candidates are worth beside its best, which capacity then placed elsewhere.
    cheapest_free = np.full(len(plan), np.inf)
    np.minimum.at(cheapest_free, at[~chosen & ~blocked], slates.commission[~chosen & ~blocked])
    for k in np.flatnonzero(cheapest_free < np.inf):
        c = plan.index[k]
        resized = "budget" in slates.skipped[c] or {"worth", "capacity"} <= slates.skipped[c]
        if resized and slates.spend[c] + cheapest_free[k] <= slates.budget[c]:
            slates.budget_left.add(c)
    if not slates.policy.funnel_coverage:
        return
    # A stage whose members all rank below the slate's size, among the candidates free to join it, is there for
    # coverage, not for its score (a better creator taken by capacity left room, not a gap coverage filled).
    position = _group_cumsum((~blocked).astype(np.int64), code) - 1
    size = np.bincount(code, weights=chosen)[code]
    stage = scored["funnel_stage"].to_numpy()
    wide = ~plan["standard"].to_numpy(bool)[plan.index.get_indexer(campaign)]
    top = position < size
    coverage: dict[tuple[str, str], bool] = {}
    for c, s, t in zip(campaign[chosen & wide], stage[chosen & wide], top[chosen & wide], strict=True):
        if s in FUNNEL:
            coverage[c, s] = coverage.get((c, s), False) or bool(t)
    for (c, s), any_top in sorted(coverage.items()):
        if not any_top:
            slates.added.setdefault(c, []).append(s)
