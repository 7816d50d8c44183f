"""The slate assignment's programme: candidate columns, constraint rows, HiGHS, reduced costs, and the optimum.

Variables: one 0/1 column per candidate pair; per covered (campaign, stage) a slack column, priced at twice the
campaign's best score, for a stage that cannot be covered; per campaign whose budget can bind a 0/1 switch `z`,
1 when the slate is wider than its minimum and must then keep to the budget; per seat a slate may fall short of its
`floor` (its minimum, where capacity could take it away) a slack column priced at FLOOR_PRICE times the batch's best
score. Rows: each slate's size (at most `target`, or `minimum` while `z` is 0), its floor (at least `floor` members
or short seats), its budget (`expected commission x take-up <= budget` when `z` is 1), its unproven limit, each
stage's coverage, each person's capacity (their creator ids together), and one row per group of mutual
near-duplicates (at most one of them).

Scores enter the objective on one scale across currencies (`matcher.slate_book.common_scale`: each campaign's divided
by how much dearer its currency reads than the batch's main one), and so do the slacks' prices in multiples
of a best score; a campaign's own rules (a stage's worthy candidate, the budget) read its own currency.

Without budget or duplicate rows the matrix is totally unimodular (each campaign's rows a laminar family, the
creators' another) and the linear programme's vertex optimum is already integral; the budget's knapsack rows and
the duplicates' group rows can make it fractional, and then HiGHS's branch and bound finishes the job. Columns are
generated: `optimum` solves the relaxation on a working subset (one `highspy` model holding the rows of every
column, re-solved from its last basis as columns join), adds every column whose reduced cost says it could improve
it, and once it is optimal over all columns, branches first on the relaxation's support, then on every column whose
reduced cost is below that integer solution's gap to the relaxation (the only ones that could be in a better
integer solution), unless the integer solution is already proven within `SALES_GAP` of the optimum: no better
than the relaxation's bound by at most that share of its own predicted sales. The result is the optimum over all
columns when the relaxation was integral, and otherwise within `SALES_GAP` of its predicted sales of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from matcher.settings import SlatePolicy
from matcher.slate_book import FUNNEL, common_scale

__all__ = ["FLOOR_PRICE", "MIP_GAP", "SALES_GAP", "Programme", "Solution", "dearest_spend"]

# Relative gap at which HiGHS's branch and bound stops: only used when the relaxation is fractional.
MIP_GAP = 1e-7
# How far an assignment may stay below the optimum, as a share of its predicted sales, once the relaxation's bound
# proves it: a thousandth of a percent, far inside the scores' own error. Proving more costs a second branch and
# bound over every column that could still close the gap: at 10,000 campaigns x 1M creators, 283k columns and
# 277 s to close a gap of 2e-6 of the sales (a first one on the relaxation's support took 3 s), with the same slates.
SALES_GAP = 1e-5
# The price of a seat short of a slate's floor, in multiples of the batch's best score (on the common scale): above
# what any member of any slate is worth, so creators whose capacity is scarce go first where a slate would fall below
# its minimum (a slate of one or two invitees, half of whom usually take part, often never runs) rather than to a
# wider slate elsewhere. Above the coverage slack (twice a campaign's best), so a floor comes before a funnel stage.
FLOOR_PRICE = 4.0


def dearest_spend(cost: np.ndarray, campaign: np.ndarray, count: np.ndarray, n_campaigns: int) -> np.ndarray:
    """Per campaign code, the sum of its `count[code]` largest `cost` values: the most its slate can spend."""
    order = np.lexsort((-cost, campaign))
    position = pd.Series(campaign[order]).groupby(campaign[order]).cumcount().to_numpy()
    top = np.where(position < count[campaign[order]], cost[order], 0.0)
    return np.bincount(campaign[order], weights=top, minlength=n_campaigns)


class Solution:
    """An optimum: the chosen columns, its objective (scores minus coverage penalties), the relaxation's bound, and
    the columns the solver ended up considering (where a solve of a similar programme can start)."""

    def __init__(
        self, chosen: np.ndarray, objective: float, bound: float, considered: np.ndarray | None = None
    ) -> None:
        self.chosen, self.objective, self.bound = chosen, objective, bound
        self.considered = chosen if considered is None else considered


class Programme:
    """The programme's candidate columns and how each enters the constraint rows, to solve on any subset.

    Args:
        scored: the batch's candidates in canonical order (`matcher.slate_book.campaign_order`).
        plan: per campaign `target`, `standard`, `unproven`, and where budgets apply `best`, `budget`, `minimum`,
            `budgeted` (whether the campaign gets a budget row); optionally `floor`, the fewest members a slate
            should have (0: no floor row).
        policy: the slate policy (capacity, coverage, take-up).
        rows: the rows of `scored` that get a column, ascending.
        conflicts: `(group, row)` entries: groups of rows of `scored` (one campaign's mutual near-duplicates) of
            which at most one may be on the slate.
        person: per row of `scored`, the person whose capacity it uses (`matcher.slate_book.SlateBook.person`: the
            creator ids of one person share one capacity row); None: each creator_row its own.
    """

    def __init__(
        self,
        scored: pd.DataFrame,
        plan: pd.DataFrame,
        policy: SlatePolicy,
        rows: np.ndarray,
        conflicts: np.ndarray | None = None,
        person: np.ndarray | None = None,
    ) -> None:
        self.plan, self.policy = plan, policy
        self.camp = pd.Categorical(scored["campaign_id"].to_numpy()[rows], categories=plan.index).codes.astype(np.int64)
        # The objective adds predicted sales across campaigns, so on one scale across currencies (`common_scale`);
        # each campaign's own rules read its own currency's.
        own = scored["score"].to_numpy(float)[rows]
        scale = common_scale(scored, rows)
        self.score = own / scale
        self.campaign_scale = np.ones(len(plan))
        self.campaign_scale[self.camp] = scale
        # Capacity's rows are per person: each column's person, numbered (one creator id each when `person` is None).
        self.person = pd.factorize((scored["creator_row"].to_numpy() if person is None else person)[rows])[0]
        # Standard slates: at most `unproven` creators without a record (a row only where that can bind).
        unproven = scored["hist_campaigns"].to_numpy(float)[rows] <= 0
        self.limited = unproven & (plan["unproven"].to_numpy()[self.camp] < plan["target"].to_numpy()[self.camp])
        # Funnel coverage: the (campaign, stage) row a worthy candidate of a non-standard slate counts towards.
        self.key = np.full(len(rows), -1)
        if policy.funnel_coverage:
            stage = scored["funnel_stage"].to_numpy()[rows]
            best = plan["best"].to_numpy()[self.camp]
            worthy = ~plan["standard"].to_numpy()[self.camp] & (own >= policy.min_stage_value * best)
            for k, name in enumerate(FUNNEL):
                self.key = np.where(worthy & (stage == name), self.camp * len(FUNNEL) + k, self.key)
        # Budgets: campaigns whose slate could pass the budget get a switch and a knapsack row.
        budgeted = plan["budgeted"].to_numpy(bool) if "budgeted" in plan.columns else np.zeros(len(plan), bool)
        self.budgeted = np.flatnonzero(budgeted)
        self.cost = np.zeros(len(rows))
        self.slack = np.zeros(len(self.budgeted))
        if len(self.budgeted):
            self.cost = scored["expected_commission"].to_numpy(float)[rows] * policy.participation_rate
            # While the switch is off the slate holds at most `minimum` creators, so its spend is at most the
            # `minimum` dearest candidates': the budget row is relaxed by that much over the budget.
            dearest = dearest_spend(self.cost, self.camp, plan["minimum"].to_numpy(), len(plan))
            self.slack = np.maximum(dearest - plan["budget"].to_numpy(float), 0.0)[self.budgeted]
        # Near-duplicate groups as (group, column position) entries; a group with one member among the columns
        # is moot.
        entries = np.empty((0, 2), dtype=np.int64) if conflicts is None else np.asarray(conflicts, dtype=np.int64)
        at = np.searchsorted(rows, entries[:, 1]).clip(0, max(len(rows) - 1, 0))
        inside = rows[at] == entries[:, 1] if len(rows) else np.zeros(len(entries), bool)
        group, position = entries[inside, 0], at[inside]
        _, member_of, members = np.unique(group, return_inverse=True, return_counts=True)
        several = members[member_of] > 1
        self.conflict_group = np.unique(group[several], return_inverse=True)[1].astype(np.int64)
        self.conflicts = position[several]
        self.floor = plan["floor"].to_numpy(np.int64) if "floor" in plan.columns else np.zeros(len(plan), np.int64)
        self._whole: tuple | None = None

    def optimum(self, working: np.ndarray) -> Solution:
        """The best assignment over every column (within `SALES_GAP`), starting from the `working` ones."""
        tolerance = 1e-9 * max(float(self.score.max(initial=0.0)), 1.0)
        working = working.copy()
        master = _Relaxation(self, working)
        while True:  # the relaxation, by column generation
            relaxed = master.solve()
            reduced = self.reduced_cost(relaxed.duals)
            entering = ~working & (reduced < -tolerance)
            if not entering.any():
                break
            entering = self._best_per_campaign(entering, reduced)
            working |= entering
            master.add(np.flatnonzero(entering))
        del master
        bound = relaxed.value
        if relaxed.integral:
            return Solution(np.flatnonzero(relaxed.chosen), -relaxed.value, -bound, np.flatnonzero(working))
        # In integers, a column at zero in the relaxation with reduced cost d can only be in a solution worth at
        # least bound + d: against an incumbent, the columns with d past its gap to the bound are out. So branch and
        # bound runs first on the relaxation's own support (d about zero or below), whose optimum is a good
        # incumbent, then on every column that could still beat it, rather than on all the working columns; not at
        # all once the incumbent is within SALES_GAP of the bound.
        pool = reduced <= tolerance
        best = self._integer(pool)
        while True:
            gap = best.value - bound
            # Better by more than the tolerance the relaxation's loop stops at (ties do not count).
            entering = ~pool & (reduced < gap - tolerance)
            if not entering.any() or gap <= SALES_GAP * float(self.score[best.chosen].sum()):
                return Solution(np.flatnonzero(best.chosen), -best.value, -bound, np.flatnonzero(working))
            pool |= entering
            best = self._integer(pool)

    def _best_per_campaign(self, entering: np.ndarray, reduced: np.ndarray) -> np.ndarray:
        """Of the `entering` columns (a mask), each campaign's `2 x target` with the most negative reduced cost.

        Pricing in every improving column at once took 620k of 1.3M columns into the relaxation at 10,000
        campaigns, most of them never in its optimum, and HiGHS's memory grows with its columns; a few rounds
        more of warm-started solves reach the same optimum over a smaller model.
        """
        at = np.flatnonzero(entering)
        order = at[np.lexsort((at, reduced[at], self.camp[at]))]
        camp = self.camp[order]
        rank = np.arange(len(order)) - np.searchsorted(camp, camp)  # position within its campaign's run
        keep = np.zeros(len(entering), dtype=bool)
        keep[order[rank < 2 * self.plan["target"].to_numpy()[camp]]] = True
        return keep

    def _integer(self, columns: np.ndarray) -> _Result:
        """The optimum in integers over these columns (a mask) and every switch and slack, on all the rows of
        `whole`: HiGHS's branch and bound, from scratch."""
        var = np.flatnonzero(columns)
        cost, matrix, upper, _ = self.whole()
        n = len(self.camp)
        keep = np.concatenate([var, np.arange(n, matrix.shape[1])])  # then every switch and slack
        result = milp(
            cost[keep],
            integrality=np.ones(len(keep)),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(matrix[:, keep], -np.inf, upper),
            options={"mip_rel_gap": MIP_GAP},
        )
        if result.status != 0:
            raise RuntimeError(f"slate assignment failed: {result.message}")
        return self._result(var, result.x, float(result.fun), None)

    def _result(self, var: np.ndarray, x: np.ndarray, value: float, duals: dict | None) -> _Result:
        """A solve's `_Result` from the values `x` of the columns `var` (then switches and slacks)."""
        n = len(var)
        chosen = np.zeros(len(self.camp), dtype=bool)
        chosen[var[x[:n] > 0.5]] = True
        decisions = np.concatenate([x[:n], x[n : n + len(self.budgeted)]])
        whole = np.abs(decisions - np.rint(decisions)) <= 1e-7
        return _Result(chosen, value, duals, bool(whole.all()))

    def whole(self) -> tuple[np.ndarray, sparse.csc_array, np.ndarray, dict]:
        """The programme over every column, built once: costs, the matrix by column, row upper bounds, and where
        each row block starts (`spans`, for the duals).

        The matrix's first columns are the candidates, then a switch per budgeted campaign, then a slack per covered
        (campaign, stage); rows are the slates' sizes, then the blocks of `spans`. Every solve takes its columns
        from it with all their rows, so a stage none of them covers still pays its penalty.
        """
        if self._whole is not None:
            return self._whole
        plan, cap = self.plan, self.policy.capacity
        n = len(self.camp)
        camp = self.camp
        rows_at, cols_at, coef, upper = [camp], [np.arange(n)], [np.ones(n)], [plan["target"].to_numpy(float)]
        cost = [-self.score]
        width = n
        offset = len(plan)
        spans: dict[str, tuple[int, np.ndarray]] = {}

        def block(name: str, members: np.ndarray, ids: np.ndarray, codes: np.ndarray, bound: np.ndarray, values):
            nonlocal offset
            rows_at.append(offset + codes)
            cols_at.append(members)
            coef.append(values)
            upper.append(bound)
            spans[name] = (offset, ids)
            offset += len(ids)

        if len(self.budgeted):
            # The switch: size <= minimum + (target - minimum) z, and spend <= budget + slack (1 - z).
            b = self.budgeted
            switch = width + np.arange(len(b))
            width += len(b)
            cost.append(np.zeros(len(b)))
            upper[0] = upper[0].copy()
            upper[0][b] = plan["minimum"].to_numpy(float)[b]
            rows_at.append(b)
            cols_at.append(switch)
            coef.append(-(plan["target"].to_numpy(float)[b] - plan["minimum"].to_numpy(float)[b]))
            where = np.searchsorted(b, camp).clip(0, len(b) - 1)
            spending = np.flatnonzero(b[where] == camp)
            start = offset
            block(
                "budget",
                spending,
                b,
                where[spending],
                plan["budget"].to_numpy(float)[b] + self.slack,
                self.cost[spending],
            )
            rows_at.append(start + np.arange(len(b)))
            cols_at.append(switch)
            coef.append(self.slack)
        limited = np.flatnonzero(self.limited)
        if len(limited):
            ids, codes = np.unique(camp[limited], return_inverse=True)
            block("unproven", limited, ids, codes, plan["unproven"].to_numpy(float)[ids], np.ones(len(limited)))
        if cap is not None:
            _, codes, counts = np.unique(self.person, return_inverse=True, return_counts=True)
            busy = np.flatnonzero(counts[codes] > cap)
            if len(busy):
                ids, codes = np.unique(self.person[busy], return_inverse=True)
                block("person", busy, ids, codes, np.full(len(ids), float(cap)), np.ones(len(busy)))
        covered = np.flatnonzero(self.key >= 0)
        if len(covered):
            # Each stage with a worthy candidate is on the slate unless that is impossible: a slack column per
            # stage, priced above any member the campaign could give up for it.
            ids, codes = np.unique(self.key[covered], return_inverse=True)
            start = offset
            block("coverage", covered, ids, codes, np.full(len(ids), -1.0), np.full(len(covered), -1.0))
            rows_at.append(start + np.arange(len(ids)))
            cols_at.append(width + np.arange(len(ids)))
            coef.append(np.full(len(ids), -1.0))
            campaign = ids // len(FUNNEL)
            cost.append(2.0 * plan["best"].to_numpy(float)[campaign] / self.campaign_scale[campaign])
            width += len(ids)
        floors = np.flatnonzero(self.floor > 0)
        if len(floors):
            # At least `floor` members, or a priced slack column per seat short (the floor's shortfall).
            members = np.flatnonzero(np.isin(camp, floors))
            seats = self.floor[floors]
            start = offset
            codes = np.searchsorted(floors, camp[members])
            block("floor", members, floors, codes, -seats.astype(float), np.full(len(members), -1.0))
            rows_at.append(start + np.repeat(np.arange(len(floors)), seats))
            cols_at.append(width + np.arange(seats.sum()))
            coef.append(np.full(seats.sum(), -1.0))
            cost.append(np.full(seats.sum(), FLOOR_PRICE * max(float(self.score.max(initial=0.0)), 1e-12)))
            width += int(seats.sum())
        if len(self.conflicts):
            k = np.arange(self.conflict_group.max() + 1)
            ones = np.ones(len(self.conflicts))
            block("conflict", self.conflicts, k, self.conflict_group, np.ones(len(k)), ones)
        entries = (np.concatenate(coef), (np.concatenate(rows_at), np.concatenate(cols_at)))
        matrix = sparse.csc_array(entries, shape=(offset, width))
        self._whole = np.concatenate(cost), matrix, np.concatenate(upper), spans
        return self._whole

    def reduced_cost(self, duals: dict) -> np.ndarray:
        """Every column's reduced cost under the duals (negative: it would improve the objective)."""
        price = duals["campaign"][self.camp].copy()
        for name, lookup, weight in (
            ("budget", self.camp, self.cost),
            ("unproven", np.where(self.limited, self.camp, -1), 1.0),
            ("person", self.person, 1.0),
            ("coverage", self.key, -1.0),
            ("floor", self.camp, -1.0),
        ):
            if name in duals:
                ids, values = duals[name]
                where = np.searchsorted(ids, lookup).clip(0, len(ids) - 1)
                hit = (lookup >= 0) & (ids[where] == lookup)
                price += weight * np.where(hit, values[where], 0.0)
        if "conflict" in duals:  # a column can be in several groups: summed, not looked up
            _, values = duals["conflict"]
            price += np.bincount(self.conflicts, weights=values[self.conflict_group], minlength=len(self.camp))
        return -self.score - price


class _Relaxation:
    """The linear relaxation as one HiGHS model that grows by columns, each solve starting from the last basis.

    Its rows are those of every column (a capacity row for each person with more candidates than the capacity,
    a row for each near-duplicate group, ...), so a column joins with all its entries and the basis of the
    last solve stays valid: only the columns added since are priced, instead of the whole programme being solved
    again from scratch. Rows whose columns are not in yet are empty or cannot bind, so each solve is the
    relaxation over the columns in.

    Args:
        programme: the programme whose columns these are.
        working: the columns to start from.
    """

    def __init__(self, programme: Programme, working: np.ndarray) -> None:
        import highspy

        self.programme = programme
        n = len(programme.camp)
        cost, matrix, upper, self.spans = programme.whole()
        self.n_campaigns = len(programme.plan)
        self.matrix, self.cost = matrix[:, :n], cost[:n]
        # highspy's `Highs` wrapper registers its callbacks in its constructor, and HiGHS prints its banner on
        # standard output at that first call, before any option can be set. The binding it wraps (exported by
        # highspy as `_Highs`) takes the option first; the wrapper adds only callbacks and Ctrl-C handling,
        # neither of which is used here, and `run` is the binding's own. A highspy without it gets the wrapper (and
        # the banner; tests/matcher/test_slate.py notices).
        self.highs = getattr(highspy, "_Highs", highspy.Highs)()
        self.highs.setOptionValue("output_flag", False)
        # As linprog's "highs-ds": dual simplex, here for the first solve; later ones go on from its basis.
        self.highs.setOptionValue("simplex_strategy", 1)
        self.highs.addRows(
            len(upper), np.full(len(upper), -np.inf), upper, 0, np.zeros(len(upper), np.int32), _no_ints, _no_floats
        )
        extra = matrix[:, n:]
        self.n_extra = extra.shape[1]  # a switch per budgeted campaign, then a slack per covered stage
        self._add_columns(extra, cost[n:])
        self.columns = np.zeros(0, dtype=np.int64)
        self.add(np.flatnonzero(working))

    def add(self, columns: np.ndarray) -> None:
        """Adds these columns (not yet in) to the model."""
        self._add_columns(self.matrix[:, columns], self.cost[columns])
        self.columns = np.concatenate([self.columns, columns])

    def _add_columns(self, block: sparse.csc_array, cost: np.ndarray) -> None:
        n = block.shape[1]
        self.highs.addCols(
            n,
            cost,
            np.zeros(n),
            np.ones(n),
            block.nnz,
            block.indptr[:-1].astype(np.int32),
            block.indices.astype(np.int32),
            block.data.astype(float),
        )

    def solve(self) -> _Result:
        """The relaxation's optimum over the columns in, with the duals of every row."""
        import highspy

        self.highs.run()
        status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"slate assignment failed: {self.highs.modelStatusToString(status)}")
        solution = self.highs.getSolution()
        x = np.asarray(solution.col_value)
        marginals = np.asarray(solution.row_dual)
        duals: dict = {"campaign": marginals[: self.n_campaigns]}
        for name, (start, ids) in self.spans.items():
            duals[name] = (ids, marginals[start : start + len(ids)])
        values = np.concatenate([x[self.n_extra :], x[: self.n_extra]])
        return self.programme._result(self.columns, values, self.highs.getInfo().objective_function_value, duals)


_no_ints = np.zeros(0, dtype=np.int32)
_no_floats = np.zeros(0)


class _Result:
    """One solve: chosen columns, objective value (minimised), duals (relaxation only), and integrality."""

    def __init__(self, chosen: np.ndarray, value: float, duals: dict | None, integral: bool) -> None:
        self.chosen, self.value, self.duals, self.integral = chosen, value, duals, integral
