"""`creator-match demo`: the whole job on a sample world, printed for a person."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from features.embeddings import Embedder
from features.environment import REGISTRY_URI_ENV, TRACKING_URI_ENV
from features.safe_write import output_lock
from features.tables import read_table
from matcher.api import Matcher
from matcher.batch import write_matches
from matcher.candidate_index import CandidateIndex
from matcher.slate import default_slates
from simulation.world import simulate, write_world
from training.forecast_interval import FORECAST_COVERAGE
from training.registry import configure_tracking, create_store, load_ranker
from training.train import summarize, train

__all__ = ["format_slates", "run_demo"]


def _step(text: str) -> float:
    print(f"\n== {text}", flush=True)
    return time.perf_counter()


def format_slates(
    matches: pd.DataFrame, summaries, creators: pd.DataFrame, campaigns: pd.DataFrame, top: int = 5
) -> str:
    """A readable block per campaign: brief, resolved type, slate size and why, top creators, totals vs budget."""
    handles = creators.set_index("creator_id")["handle"]
    briefs = campaigns.set_index("campaign_id")
    lines = []
    for s in summaries:
        c = briefs.loc[s.campaign_id]
        lines.append(
            f"\n{s.campaign_id}  {c['category']}, {s.product_type.replace('_', '-')}, price {c['price']:.2f}, "
            f"commission {c['commission_rate']:.0%}"
        )
        lines.append(f"  type: {s.product_type_reason}")
        lines.append(f"  brief: {c['brief'][:110]}{'...' if len(c['brief']) > 110 else ''}")
        if s.status != "matched":
            lines.append(f"  no slate: {s.status}")
            continue
        lines.append(
            f"  slate of {s.size_reason}\n  if every creator takes part: {s.expected_orders:.0f} orders"
            f"{_range(s.expected_orders_low, s.expected_orders_high, '.0f')}, commission {s.expected_commission:,.0f}"
            f"{_range(s.expected_commission_low, s.expected_commission_high, ',.0f')} (budget {s.budget:,.0f}; "
            "pay-per-sale never spends past it)"
        )
        for row in matches[matches["campaign_id"] == s.campaign_id].head(top).itertuples(index=False):
            lines.append(
                f"  {row.rank:>2}. {handles.get(row.creator_id, row.creator_id)!s:<14} "
                f"{row.funnel_stage:<13} orders {row.expected_orders:6.1f}  sales {row.expected_sales:9,.0f}"
                f"  CTR {row.p_click:.1%}"
            )
            lines.append(f"      {row.reasons}")
    return "\n".join(lines)


def _range(low: float, high: float, spec: str) -> str:
    """` (80% range a to b)`, or nothing where the model gives no range."""
    if math.isnan(low) or math.isnan(high):
        return ""
    return f" ({FORECAST_COVERAGE:.0%} range {low:{spec}} to {high:{spec}})"


def run_demo(out: str | Path, n_creators: int = 600, n_campaigns: int = 120, seed: int = 7) -> None:
    """Simulates, trains and registers, indexes, matches, and prints the slates with their reasons. The ranker is
    registered in the demo's own MLflow store in `out`, never in the one $MLFLOW_TRACKING_URI names."""
    out = Path(out)
    with output_lock(out), _own_store(out):  # a second demo writing the same folder is refused, not interleaved
        _demo(out, n_creators, n_campaigns, seed)


@contextlib.contextmanager
def _own_store(out: Path) -> Iterator[None]:
    """MLflow pointed at a SQLite store in `out`, runs' artifacts in `out`/mlruns, for the block: with a team's
    registry configured, the demo registered a ranker of a made-up world there, and made it champion of a model
    that had none."""
    import mlflow

    store = (out / "mlflow.db").resolve()
    store.parent.mkdir(parents=True, exist_ok=True)
    saved = {name: os.environ.get(name) for name in (TRACKING_URI_ENV, REGISTRY_URI_ENV)}
    tracking = mlflow.get_tracking_uri()
    os.environ[TRACKING_URI_ENV] = f"sqlite:///{store}"
    os.environ.pop(REGISTRY_URI_ENV, None)  # the registry is then the tracking store's
    try:
        configure_tracking()
        create_store()
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        mlflow.set_tracking_uri(tracking)


def _demo(out: Path, n_creators: int, n_campaigns: int, seed: int) -> None:
    started = time.perf_counter()
    t = _step(f"simulating {n_creators} creators and {n_campaigns} past campaigns into {out / 'world'}")
    paths = write_world(simulate(n_creators=n_creators, n_campaigns=n_campaigns, seed=seed), out / "world")
    print(f"   done in {time.perf_counter() - t:.1f}s")

    t = _step("training the ranker and registering it in MLflow")
    embedder = Embedder()
    result = train(out / "world", embedder=embedder, slate_builder=default_slates)
    print(summarize(result))
    print(
        f"   in the demo's own store; to review it: mlflow ui --backend-store-uri sqlite:///{out.resolve()}/mlflow.db"
    )
    print(f"   done in {time.perf_counter() - t:.1f}s")

    t = _step("indexing creators")
    creators = read_table(paths["creators"], "creators")
    index = CandidateIndex.of_creators(creators, embedder)
    creators = creators.frame
    index.save(out / "index")
    print(f"   {len(index)} creators in {out / 'index'}, {time.perf_counter() - t:.1f}s")

    t = _step(f"matching new campaigns with {result.model_uri}")
    campaigns = read_table(paths["new_campaigns"], "campaigns").frame
    matcher = Matcher(creators, model=load_ranker(result.model_uri), index=index, embedder=embedder)
    matched = matcher.match_many(campaigns)
    write_matches(matched.matches, out / "matches.parquet")
    print(format_slates(matched.matches, matched.summaries, creators, campaigns))

    truth = pd.read_parquet(paths["truth"])
    from matcher.evaluation import oracle_share

    share = oracle_share(matched.matches, truth)
    print(
        f"\nslates capture {share:.0%} of the expected sales of the best possible slates of the same sizes "
        f"(simulation truth)"
    )
    print(f"matches written to {out / 'matches.parquet'}; total {time.perf_counter() - started:.0f}s")
