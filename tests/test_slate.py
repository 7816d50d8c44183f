"""Each slate rule on small hand-made cases: size, budget, capacity, near-duplicates, funnel mix, proven converters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matcher.slate import SlatePolicy, build_slates

STAGES = {"a": "awareness", "r": "consideration", "d": "conversion"}


def candidates(rows: list[tuple], budget: float = 1e9, kind: str = "non_standard") -> pd.DataFrame:
    """rows: (campaign_id, creator_row, score, stage letter[, commission[, proven]])."""
    frame = pd.DataFrame(
        [
            {
                "campaign_id": c,
                "creator_id": f"cr{r:03d}",
                "creator_row": r,
                "score": s,
                "funnel_stage": STAGES[stage],
                "expected_commission": rest[0] if rest else 1.0,
                "hist_campaigns": 0.0 if len(rest) > 1 and not rest[1] else 3.0,
                "product_type": kind,
                "budget": budget,
            }
            for c, r, s, stage, *rest in rows
        ]
    )
    return frame


def distinct_vectors(n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)


def test_sizes_follow_the_product_type():
    policy = SlatePolicy(capacity=None, funnel_coverage=False)
    rows = [("std", r, 100.0 - r, "d") for r in range(20)]
    chosen, why = build_slates(candidates(rows, kind="standard"), policy, distinct_vectors(40))
    assert len(chosen) == policy.standard_size
    rows = [("ns", r, 100.0 - r, "a") for r in range(20)]
    chosen, _ = build_slates(candidates(rows), policy, distinct_vectors(40))
    assert len(chosen) == policy.non_standard_size
    assert why["std"].startswith("6: the standard slate size")


def test_budget_closes_the_slate_but_keeps_a_few_creators():
    """Expected commission x take-up may not pass the budget by more than 10%, beyond the minimum of 3."""
    policy = SlatePolicy(capacity=None, funnel_coverage=False, participation_rate=0.5, min_size=3)
    rows = [("c", r, 100.0 - r, "d", 100.0) for r in range(10)]
    chosen, why = build_slates(candidates(rows, budget=100.0, kind="standard"), policy, distinct_vectors(10))
    assert chosen["creator_row"].tolist() == [0, 1, 2]  # 3 x 100 x 0.5 = 150 > 110, but the minimum holds
    assert "budget reached" in why["c"]
    chosen, _ = build_slates(candidates(rows, budget=250.0, kind="standard"), policy, distinct_vectors(10))
    assert len(chosen) == 5  # 5 x 50 = 250 <= 275 < 6 x 50
    # A cheap weak creator after the budget closed does not sneak in.
    rows_with_cheap = [*rows, ("c", 11, 1.0, "d", 0.01)]
    chosen, _ = build_slates(candidates(rows_with_cheap, budget=250.0, kind="standard"), policy, distinct_vectors(12))
    assert 11 not in chosen["creator_row"].tolist()


def test_non_standard_slates_stay_wider_than_standard_ones_when_budgets_bind():
    """A tight budget leaves a standard slate at 3 and a non-standard one at 6, and the summary says so."""
    policy = SlatePolicy(capacity=None, funnel_coverage=False)
    rows = [("c", r, 100.0 - r, "a", 100.0) for r in range(10)]
    tight = 10.0
    standard, _ = build_slates(candidates(rows, budget=tight, kind="standard"), policy, distinct_vectors(10))
    wide, why = build_slates(candidates(rows, budget=tight), policy, distinct_vectors(10))
    assert len(standard) == 3 and len(wide) == 6
    assert "may use the budget up before the end date" in why["c"]


def test_capacity_places_a_creator_where_it_is_worth_most_not_first_come():
    """Creator 0 is on 7 campaigns; with capacity 5 it keeps the 5 where its score is highest."""
    policy = SlatePolicy(capacity=5, funnel_coverage=False)
    rows = [(f"c{k}", 0, 10.0 + k, "a") for k in range(7)]  # c0 (listed first) is where it is worth least
    rows += [(f"c{k}", 1 + k, 5.0, "a") for k in range(7)]
    chosen, _ = build_slates(candidates(rows), policy, distinct_vectors(10))
    with_star = sorted(chosen.loc[chosen["creator_row"] == 0, "campaign_id"])
    assert with_star == ["c2", "c3", "c4", "c5", "c6"]
    assert (chosen.groupby("creator_row").size() <= 5).all()
    uncapped, _ = build_slates(
        candidates(rows), SlatePolicy(capacity=None, funnel_coverage=False), distinct_vectors(10)
    )
    assert (uncapped["creator_row"] == 0).sum() == 7


def test_near_duplicate_creators_do_not_share_a_slate():
    vectors = distinct_vectors(4)
    vectors[1] = vectors[0]  # creator 1 is a copy of creator 0
    rows = [("c", 0, 10.0, "a"), ("c", 1, 9.0, "a"), ("c", 2, 8.0, "a"), ("c", 3, 7.0, "a")]
    chosen, _ = build_slates(candidates(rows), SlatePolicy(funnel_coverage=False), vectors)
    assert chosen["creator_row"].tolist() == [0, 2, 3]


def test_non_standard_slates_span_the_funnel_when_candidates_exist():
    """Awareness fills the slate by score; the best review and deals creators take the weakest places."""
    policy = SlatePolicy(capacity=None, non_standard_size=4)
    rows = [("c", r, 100.0 - r, "a") for r in range(6)] + [("c", 10, 20.0, "r"), ("c", 11, 30.0, "d")]
    chosen, why = build_slates(candidates(rows), policy, distinct_vectors(12))
    assert set(chosen["funnel_stage"]) == {"awareness", "consideration", "conversion"}
    assert chosen["rank"].tolist() == [1, 2, 3, 4]
    assert chosen["score"].is_monotonic_decreasing
    assert "added for funnel coverage" in why["c"]
    # A stage candidate worth under 5% of the best is not forced in.
    weak = [("c", r, 100.0 - r, "a") for r in range(6)] + [("c", 10, 1.0, "r")]
    chosen, _ = build_slates(candidates(weak), policy, distinct_vectors(12))
    assert set(chosen["funnel_stage"]) == {"awareness"}


def test_standard_slates_lean_on_proven_converters():
    """At most one creator without a track record on a standard slate, and no funnel quota."""
    rows = [("c", r, 100.0 - r, "a", 1.0, False) for r in range(4)] + [("c", 10 + r, 50.0 - r, "d") for r in range(6)]
    chosen, _ = build_slates(candidates(rows, kind="standard"), SlatePolicy(capacity=None), distinct_vectors(20))
    assert (chosen["hist_campaigns"] == 0).sum() == 1
    assert len(chosen) == 6


def test_policy_errors_name_the_value():
    with pytest.raises(ValueError, match=r"participation_rate=1\.5"):
        SlatePolicy(participation_rate=1.5)
    with pytest.raises(ValueError, match="capacity=0"):
        SlatePolicy(capacity=0)
