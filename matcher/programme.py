"""The slate assignment's linear programme: candidate columns, constraint rows, HiGHS, and reduced costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from matcher.settings import SlatePolicy
from matcher.slate_book import FUNNEL

__all__ = ["Programme"]


class Programme:
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
