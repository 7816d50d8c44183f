"""Slate quality on simulated worlds whose truth is known: the share of the oracle's expected sales captured.

For each seed: simulate a world, train and register a ranker in a throw-away MLflow store, match the new
campaigns, and compare the slates' true expected sales with the best possible slates of the same sizes.
Baselines get the same slate sizes and the same eligibility, searching the whole catalogue:
followers only; tag overlap then followers (what sellers do by hand); embedding similarity only.
"model" is the ranking alone (no capacity, funnel quota or near-duplicate rule, which the oracle does not
have either); "default slate policy" adds them, and the capacity cost is the share of true expected sales
that a 5-campaign cap per creator gives up against uncapped slates.

    .venv/bin/python benchmarks/quality.py --seeds 0 1 2 3 4 --creators 3000 --campaigns 400
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss  # noqa: F401
import numpy as np
import pandas as pd

from features.embeddings import Embedder, campaign_vectors, creator_vectors
from features.pairwise import audience_share
from features.similarity import TAG_FIT_THRESHOLD, CampaignPhrases, TagSpace
from features.tables import read_table
from matcher.api import Matcher, MatchSettings
from matcher.candidate_index import CandidateIndex
from matcher.evaluation import oracle_share
from matcher.slate import SlatePolicy
from simulation.world import simulate, write_world
from training.evaluate import BASELINES
from training.registry import load_ranker
from training.train import train


def baseline_slates(
    matches: pd.DataFrame,
    campaigns: pd.DataFrame,
    creators: pd.DataFrame,
    campaign_vec: np.ndarray,
    creator_vec: np.ndarray,
    settings: MatchSettings,
    embedder: Embedder,
) -> dict[str, pd.DataFrame]:
    """Each baseline's slates: same sizes as the model's, same eligibility, whole catalogue."""
    tags = TagSpace(embedder, creators["interest_tags"])
    tag_scores, _ = CampaignPhrases(embedder, campaigns).tag_scores(tags)
    everyone = np.arange(len(creators))
    eligible = creators["accepts_campaigns"].to_numpy(bool) & (creators["creator_type"] != "cashback_site").to_numpy()
    sizes = matches.groupby("campaign_id").size()
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in BASELINES}
    for k, campaign in enumerate(campaigns.itertuples(index=False)):
        size = int(sizes.get(campaign.campaign_id, 0))
        if size == 0:
            continue
        market = np.array([audience_share(a, list(campaign.marketplaces)) for a in creators["audience_marketplaces"]])
        ok = eligible & ~(market < settings.min_market_share)
        fitting = tags.fit(tag_scores, np.full(len(creators), k), everyone, TAG_FIT_THRESHOLD)[2]
        # The same baseline scores the training run reports, over the whole catalogue.
        pairs = pd.DataFrame(
            {
                "log_followers": np.log1p(creators["followers"].to_numpy(float)),
                "fitting_tags": fitting,
                "similarity": creator_vec @ campaign_vec[k],
            }
        )
        for name, baseline in BASELINES.items():
            score = baseline(pairs)
            pick = np.argsort(-np.where(ok, score, -np.inf), kind="stable")[:size]
            out[name].append(
                pd.DataFrame(
                    {"campaign_id": campaign.campaign_id, "creator_id": creators["creator_id"].to_numpy()[pick]}
                )
            )
    return {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}


def run_seed(seed: int, n_creators: int, n_campaigns: int, embedder: Embedder, work: Path) -> dict[str, float]:
    data = work / f"world-{seed}"
    write_world(simulate(n_creators=n_creators, n_campaigns=n_campaigns, seed=seed), data)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work}/mlflow-{seed}.db"
    result = train(data, embedder=embedder)
    creators = read_table(data / "creators.parquet", "creators").frame
    campaigns = read_table(data / "new_campaigns.parquet", "campaigns").frame
    creator_vec = creator_vectors(embedder, creators)
    index = CandidateIndex.build(creator_vec, creators["creator_id"], embedder.model)
    ranker = load_ranker(result.model_uri)
    truth = pd.read_parquet(data / "truth.parquet")

    def run(policy: SlatePolicy):
        settings = MatchSettings(slate=policy)
        return Matcher(creators, model=ranker, index=index, embedder=embedder, settings=settings).match_many(campaigns)

    # Ranking alone: no capacity, funnel quota or near-duplicate rule between the model and the oracle.
    ranking = run(SlatePolicy(capacity=None, funnel_coverage=False, duplicate_similarity=1.0)).matches
    default = run(SlatePolicy())
    uncapped = run(SlatePolicy(capacity=None))
    row = {"model": oracle_share(ranking, truth), "model_default_policy": oracle_share(default.matches, truth)}
    for name, slates in baseline_slates(
        ranking, campaigns, creators, campaign_vectors(embedder, campaigns), creator_vec, MatchSettings(), embedder
    ).items():
        row[name] = oracle_share(slates, truth)
    true_sales = truth.set_index(["campaign_id", "creator_id"])["expected_sales"]

    def total(matches: pd.DataFrame) -> float:
        keys = pd.MultiIndex.from_frame(matches[["campaign_id", "creator_id"]])
        return float(true_sales.reindex(keys).fillna(0).sum())

    row["capacity_cost"] = 1 - total(default.matches) / total(uncapped.matches)
    m = default.matches
    sizes = m.groupby("campaign_id").agg(size=("rank", "size"), kind=("product_type", "first"))
    row["size_standard"] = sizes.loc[sizes["kind"] == "standard", "size"].mean()
    row["size_non_standard"] = sizes.loc[sizes["kind"] == "non_standard", "size"].mean()
    stages = (
        m[m["product_type"] == "non_standard"]
        .groupby("campaign_id")["funnel_stage"]
        .agg(lambda s: len(set(s) & {"awareness", "consideration", "conversion"}))
    )
    row["non_standard_all_stages"] = float((stages == 3).mean())
    kinds = pd.read_parquet(data / "campaign_truth.parquet").set_index("campaign_id")["product_type"]
    auto = [s for s in default.summaries if s.product_type_reason != "declared by the seller"]
    row["product_type_accuracy"] = float(np.mean([s.product_type == kinds[s.campaign_id] for s in auto]))
    row["ndcg_at_10"] = result.metrics.get("ndcg_at_10", float("nan"))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--creators", type=int, default=3000)
    parser.add_argument("--campaigns", type=int, default=400)
    args = parser.parse_args()
    embedder = Embedder(cache_dir=Path(tempfile.gettempdir()) / "creator-matcher-bench-cache")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            started = time.perf_counter()
            row = run_seed(seed, args.creators, args.campaigns, embedder, Path(tmp))
            rows.append(row)
            print(
                f"seed {seed}: model {row['model']:.3f} (default slate policy {row['model_default_policy']:.3f})  "
                f"followers {row['followers']:.3f}  tags_then_followers {row['tags_then_followers']:.3f}  "
                f"similarity {row['similarity']:.3f} | capacity cost {row['capacity_cost']:.1%} | slate size "
                f"standard {row['size_standard']:.1f}, non-standard {row['size_non_standard']:.1f} | non-standard "
                f"slates with all 3 funnel stages {row['non_standard_all_stages']:.0%} | product type accuracy "
                f"{row['product_type_accuracy']:.1%} | held-out NDCG@10 {row['ndcg_at_10']:.3f} "
                f"({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    frame = pd.DataFrame(rows)
    mean = frame.mean()
    print(
        f"\nmean over {len(rows)} seeds: model {mean['model']:.3f} (default slate policy "
        f"{mean['model_default_policy']:.3f}); followers {mean['followers']:.3f}; tags_then_followers "
        f"{mean['tags_then_followers']:.3f}; similarity {mean['similarity']:.3f}; capacity cost "
        f"{mean['capacity_cost']:.1%}; slate size standard {mean['size_standard']:.1f} vs non-standard "
        f"{mean['size_non_standard']:.1f}; non-standard slates with all 3 stages "
        f"{mean['non_standard_all_stages']:.0%}; "
        f"product type accuracy {mean['product_type_accuracy']:.1%}"
    )
    ratio = statistics.mean(frame["model"] / frame["tags_then_followers"])
    print(f"model / tags_then_followers: {ratio:.2f}x (target >= 2.0); model share target >= 0.80")


if __name__ == "__main__":
    main()
