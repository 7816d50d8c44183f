"""The exact slate assignment: the most predicted sales under every rule at once, for the whole batch.

The rules are each creator's capacity, the slate sizes, the unproven-creator limit of standard slates and funnel
coverage of non-standard ones. It is solved exactly as a linear programme (scipy's HiGHS, `matcher.programme`):
each campaign's constraint rows form a laminar family (the slate, and inside it either its unproven creators or
each funnel stage), each creator's row another, so the matrix is totally unimodular and the programme's vertex
optimum is integral. The budget is not a row of the programme (a knapsack row would break integrality); a slate
that the assignment pushes over it gives up its weakest members down to the minimum. Near-duplicate pairs found
on a solved slate are taken out and the programme solved again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matcher.programme import Programme
from matcher.settings import SlatePolicy
from matcher.slate_book import FUNNEL, SlateBook, campaign_order

__all__ = ["assign_exact", "best_assignment"]


def assign_exact(scored: pd.DataFrame, slates: SlateBook, plan: pd.DataFrame) -> None:
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
    columns = Programme(scored, plan, policy, rows)
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


def best_assignment(pairs: pd.DataFrame, sizes: pd.Series, capacity: int | None) -> pd.DataFrame:
    """The plain b-matching: the most total `score` with at most `sizes[c]` creators per campaign and each
    creator on at most `capacity` campaigns. What a slate policy's choice is measured against.

    Args:
        pairs: campaign_id, creator_id, score (rows of campaigns absent from `sizes` are ignored).
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
    return scored.iloc[_solve(scored, plan, policy, np.zeros(len(scored), dtype=bool))].reset_index(drop=True)


def _prune(scored: pd.DataFrame, plan: pd.DataFrame, policy: SlatePolicy, removed: np.ndarray) -> np.ndarray:
    """Rows that can be in some optimal assignment; the others never need a column.

    A candidate is dominated when its campaign has at least `target` better candidates of the same funnel stage
    and record status whose creators can never run out of capacity: whatever slate holds it, one of those is
    free to take its place with no rule broken and no score lost. Dropping pairs frees more creators, so this
    repeats until nothing changes.
    """
    order = campaign_order(scored)
    order = order[~removed[order]]
    s = scored.iloc[order]
    campaign = s["campaign_id"].to_numpy()
    creator = pd.factorize(s["creator_row"].to_numpy())[0]
    stage = pd.factorize(s["funnel_stage"].to_numpy(), use_na_sentinel=False)[0]
    group = (pd.factorize(campaign)[0] * (stage.max(initial=0) + 1) + stage) * 2 + (s["hist_campaigns"].to_numpy() > 0)
    at = plan.index.get_indexer(campaign)
    target = np.where(at >= 0, plan["target"].to_numpy(float)[at], np.nan)  # as a reindex: NaN where absent
    keep = np.ones(len(order), dtype=bool)
    while True:
        if policy.capacity is None:
            free = np.ones(len(order), dtype=bool)
        else:
            free = np.bincount(creator, weights=keep)[creator] <= policy.capacity
        counted = (free & keep).astype(np.int64)
        before = _group_cumsum(counted, group) - counted
        now = keep & (before < target)
        if (now == keep).all():
            return np.sort(order[keep])
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


def _explain(scored: pd.DataFrame, slates: SlateBook, plan: pd.DataFrame) -> None:
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
    position = _group_cumsum(np.ones(len(code), dtype=np.int64), code) - 1
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
