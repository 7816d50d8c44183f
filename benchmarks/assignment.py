"""Slate assignment at batch scale: the exact programme against the greedy pass, time, memory and objective.

A scored batch shaped like the matcher's: each campaign's candidates are its 200 nearest creators (random
over the catalogue, so rarely shared) united with its category's 200 proven creators (shared by every campaign
of the category, so capacity binds there). Scores are log-normal, a proven creator's higher; a third of the
campaigns are standard; budgets bind on some. Both assignments run in this process on the same frame under the
same rules; "objective" is the sum of the chosen pairs' scores, "objective with coverage" what the exact
assignment maximises (`matcher.slate.objective`: less twice a campaign's best score per funnel stage a
non-standard slate could cover and does not), the one on which exact >= greedy holds by construction.

    .venv/bin/python benchmarks/assignment.py                  # 10,000 campaigns x ~400 candidates
    .venv/bin/python benchmarks/assignment.py --quick          # 1,000 campaigns
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd

from features.contract import FUNNEL_STAGE
from matcher.slate import SlatePolicy, build_slates, objective


def scored_batch(n_campaigns: int, n_creators: int, n_categories: int, seed: int) -> pd.DataFrame:
    """One row per (campaign, candidate) with the columns `build_slates` reads."""
    rng = np.random.default_rng(seed)
    kinds = np.array(list(FUNNEL_STAGE.values()))
    creator_stage = rng.choice(kinds, n_creators)
    proven_pool = rng.choice(n_creators, size=(n_categories, 200), replace=False)
    category = rng.integers(n_categories, size=n_campaigns)
    near = rng.integers(n_creators, size=(n_campaigns, 200))
    rows = np.concatenate([near, proven_pool[category]], axis=1)
    campaign = np.repeat(np.arange(n_campaigns), rows.shape[1])
    creator = rows.ravel()
    proven = np.zeros(len(creator), dtype=bool)
    proven[np.tile(np.arange(400) >= 200, n_campaigns)] = True
    score = np.exp(rng.normal(3 + 1.0 * proven, 1.2))
    frame = pd.DataFrame(
        {
            "campaign_id": pd.Series(campaign).map("b{:06d}".format).to_numpy(),
            "creator_id": pd.Series(creator).map("cr{:07d}".format).to_numpy(),
            "creator_row": creator,
            "score": score,
            "expected_commission": score * 0.15,
            "product_type": np.where(rng.random(n_campaigns) < 0.35, "standard", "non_standard")[campaign],
            "budget": np.exp(rng.normal(5, 1, n_campaigns))[campaign],
            "funnel_stage": creator_stage[creator],
            "hist_campaigns": np.where(proven, 3.0, 0.0),
        }
    )
    return frame.drop_duplicates(["campaign_id", "creator_id"]).reset_index(drop=True)


def run(frame: pd.DataFrame, policy: SlatePolicy) -> tuple[float, float, float, int]:
    vectors = np.eye(1, dtype=np.float32)  # profile vectors only matter for near-duplicates, off here
    started = time.perf_counter()
    chosen, _ = build_slates(frame, policy, vectors)
    seconds = time.perf_counter() - started
    return seconds, float(chosen["score"].sum()), objective(frame, chosen, policy), len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="1,000 campaigns")
    parser.add_argument("--assignments", nargs="+", choices=["greedy", "exact"], default=["greedy", "exact"])
    args = parser.parse_args()
    n_campaigns = 1000 if args.quick else args.campaigns
    frame = scored_batch(n_campaigns, args.creators, args.categories, seed=0)
    print(f"{n_campaigns} campaigns, {len(frame):,} scored pairs", flush=True)
    figures = {"campaigns": n_campaigns, "pairs": len(frame)}
    # With budgets out of the way no slate is held below its planned size by the budget rule.
    unbudgeted = frame.assign(budget=np.inf)
    for name in args.assignments:
        for label, batch in (("", frame), ("_no_budget", unbudgeted)):
            seconds, total, covered, pairs = run(batch, SlatePolicy(assignment=name, duplicate_similarity=1.0))
            figures[f"{name}{label}_seconds"] = round(seconds, 2)
            figures[f"{name}{label}_objective"] = round(total, 1)
            figures[f"{name}{label}_objective_with_coverage"] = round(covered, 1)
            figures[f"{name}{label}_pairs"] = pairs
            print(
                f"{name}{label}: {seconds:.1f} s, objective {total:,.0f} ({covered:,.0f} with coverage), "
                f"{pairs:,} pairs chosen",
                flush=True,
            )
    if len(args.assignments) == 2:
        for label in ("", "_no_budget"):
            for kind in ("", "_with_coverage"):
                ratio = figures[f"greedy{label}_objective{kind}"] / figures[f"exact{label}_objective{kind}"]
                figures[f"greedy_over_exact{label}{kind}"] = round(ratio, 4)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
