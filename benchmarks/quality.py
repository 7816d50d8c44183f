"""Slate quality on simulated worlds whose truth is known: the share of the oracle's expected sales captured.

For each seed: simulate a world, train and register a ranker in a throw-away MLflow store, match the new
campaigns, and compare the slates' true expected sales with the best possible slates of the same sizes.
Baselines get the same slate sizes and the same eligibility, searching the whole catalogue:
followers only; tag overlap then followers (what sellers do by hand); embedding similarity only.
"model" is the ranking alone (no capacity, funnel quota or near-duplicate rule, which the oracle does not
have either); "default slate policy" adds them, and the capacity cost is the share of true expected sales
that a 5-campaign cap per creator gives up against uncapped slates.

The policy's own yardstick: the best assignment under the same constraints, i.e. the default policy's slate
size per campaign and the same per-creator capacity, on TRUE expected sales (an exact b-matching,
`matcher.slate.best_assignment`). "policy / constrained best" is what the policy's scores and rules leave on
the table that the constraints do not; "greedy" is the same policy with the best-first pass instead of the
exact assignment, under the same rules, and "greedy / exact objective" the gap on the model's own predicted
scores (at most 1 up to funnel coverage, which the exact one keeps where greedy's swaps cannot). "The same rules
on true scores" builds the default policy's slates from the true expected sales of the retrieved candidates: what
retrieval and the rules themselves give up, which no ranker can win back.

Two ceilings say where the ranking's gap to the oracle lies. "retrieval ceiling": the best slates of the ranking's
sizes among the candidates retrieval gave the ranker (what no ranker of those candidates can pass). "feature
ceiling": slates picked by a gradient-boosted model fitted to the TRUE expected sales of the matched campaigns'
own candidates, on the ranker's own features, cross-fitted by campaign (five folds): what those features could
reach with perfect supervision and no selection in the training rows. A ranking near the feature ceiling needs
new information, not a better fit; one far below it is losing to how the history was collected or learned.
"noise-free labels" tells those two apart: the same ranker fitted on the same past pairs and features, with
each pair's realized impressions, clicks and orders replaced by the expectations they were drawn from (the
world's `past_truth`). Its gain over the ranking is what outcome noise costs; what it still leaves below the
feature ceiling is what the seller's history did not cover (who took part, which categories ran before).
"without the new-creator rules" is the ranking alone with `related_first` and the unproven limit off as well:
what those two product rules (a new creator whose interests do not relate to the product ranks after one whose
do; a standard slate takes one new creator where proven ones of comparable value exist) cost against an oracle
that has neither.

"orders within the slates' 80% range": each default slate's creators' outcomes drawn as the world draws its
performance rows (`simulation.world.realize`, every creator taking part), against the range of orders its summary
gave (`training.forecast_interval`); counted over the slates given one (none in a category with no past campaign).

`--currencies local` prices each campaign of the worlds in its first marketplace's currency (yen at 150 per dollar,
pounds at 0.79...: `simulation.world.in_local_currency`); the truth stays in dollars, so the oracle, the constrained
best and every slate's captured sales are still added in one currency, while the ranker, the product types and the
slates read the seller's own amounts. "unscaled" is the default policy's slates from the same scored candidates with
the product's currency scale dropped (`currency_log_scale`, `matcher.slate_book.common_scale`): sales added across
currencies as they read, as before the scale; "read as" is the factor the product divides a currency's predicted sales
by, beside its true rate to the dollar.

`--world main alt` (the default: both generators, one after the other) picks the generators; `--sweep KEY=V1,V2`
reruns every seed with a generator knob set to each value (shared knobs: outcome_noise, history_days,
new_creator_share). The last line is one JSON object: each world's and setting's means under `settings`, and under
`targets` each of issue #13's figures beside its target, as a ratio (>= 1 is met). "Clearly wider" non-standard
slates are taken as at least 1.5 times the standard ones' mean size.

    .venv/bin/python benchmarks/quality.py --seeds 0 1 2 3 4 --creators 3000 --campaigns 400
    .venv/bin/python benchmarks/quality.py --world alt --seeds 0 1 --sweep new_creator_share=0,0.5
    .venv/bin/python benchmarks/quality.py --world main --seeds 0 --creators 1500 --campaigns 200 --currencies local
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from features.environment import unset_defaults

os.environ.update(unset_defaults())

import faiss  # noqa: F401
import numpy as np
import pandas as pd
from sklearn.base import clone

from features.contract import CASHBACK_TYPE
from features.embeddings import Embedder, campaign_vectors, creator_vectors
from features.pairwise import CATEGORICAL_FEATURES, FEATURES, audience_share
from features.similarity import TAG_FIT_THRESHOLD, CampaignPhrases, TagSpace
from features.tables import read_table
from matcher.api import Matcher, MatchSettings
from matcher.candidate_index import CandidateIndex
from matcher.evaluation import oracle_share, oracle_totals, true_sales
from matcher.slate import SlatePolicy, best_assignment, build_slates
from matcher.slate_book import campaign_scales
from simulation import WORLDS, AltConfig, SimulationConfig, World, write_world
from simulation.world import CURRENCIES, realize
from training.dataset import build_training_data, read_training_tables
from training.evaluate import BASELINES
from training.forecast_interval import FORECAST_COVERAGE
from training.ranker import OUTCOMES, CreatorRanker
from training.registry import LoadedRanker, load_ranker
from training.selection import DEFAULT_SELECTION_POWER, row_weights
from training.train import train

# Amazon's department names for the generators' categories (`--category-names amazon`): a seller's own names, to
# check that nothing depends on the contract's example names.
AMAZON_DEPARTMENTS = {
    "beauty": "Beauty & Personal Care",
    "fashion": "Clothing, Shoes & Jewelry",
    "home": "Home Décor & Furniture",
    "kitchen": "Kitchen & Dining",
    "electronics": "Electronics",
    "sports": "Sports & Fitness",
    "outdoors": "Outdoor Recreation",
    "toys": "Toys & Games",
    "pets": "Pet Supplies",
    "baby": "Baby Products",
    "health": "Health & Household",
    "automotive": "Automotive Parts & Accessories",
    "tools": "Tools & Home Improvement",
    "office": "Office Products",
    "garden": "Patio, Lawn & Garden",
    "grocery": "Grocery & Gourmet Food",
}
CATEGORY_NAMES = {"contract": None, "amazon": AMAZON_DEPARTMENTS}
# Each generator's settings, for drawing the outcomes of the slates it did not simulate.
CONFIGS = {"main": SimulationConfig, "alt": AltConfig}


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
    eligible = creators["accepts_campaigns"].to_numpy(bool) & (creators["creator_type"] != CASHBACK_TYPE).to_numpy()
    sizes = matches.groupby("campaign_id").size()
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in BASELINES}
    for k, campaign in enumerate(campaigns.itertuples(index=False)):
        size = int(sizes.get(campaign.campaign_id, 0))
        if size == 0:
            continue
        market = np.array([audience_share(a, list(campaign.marketplaces)) for a in creators["audience_marketplaces"]])
        ok = eligible & ~(market < settings.min_market_share)
        fitting = tags.tag_fit(tag_scores, np.full(len(creators), k), everyone, TAG_FIT_THRESHOLD)[2]
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


def top_of(pairs: pd.DataFrame, value: np.ndarray, sizes: pd.Series) -> pd.DataFrame:
    """Each campaign's `sizes[campaign]` pairs of highest `value` (ties to the smaller creator_id)."""
    ranked = pairs.assign(_value=value).sort_values(
        ["campaign_id", "_value", "creator_id"], ascending=[True, False, True], kind="stable"
    )
    within = ranked.groupby("campaign_id").cumcount().to_numpy() < ranked["campaign_id"].map(sizes).fillna(0).to_numpy()
    return ranked[within][["campaign_id", "creator_id"]]


def ceilings(matcher: Matcher, campaigns: pd.DataFrame, truth: pd.DataFrame, sizes: pd.Series) -> dict[str, float]:
    """The retrieval ceiling and the feature ceiling (see the module docstring) for slates of `sizes`."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import GroupKFold

    pairs = matcher.candidate_features(campaigns)
    pairs = pairs[~(pairs["market_share"] < matcher.settings.min_market_share)].reset_index(drop=True)
    sales = true_sales(pairs, truth)
    # Relative to the campaign's mean, so that cheap and dear products weigh alike in the fit.
    relative = sales / np.maximum(pd.Series(sales).groupby(pairs["campaign_id"]).transform("mean").to_numpy(), 1e-12)
    # A feature no pair has (every record feature where no creator has history) says nothing, and the booster's
    # binning cannot take a column without a value.
    known = [name for name in FEATURES if pairs[name].notna().any()]
    data = pairs[known].to_numpy(float)
    fitted = np.zeros(len(pairs))
    model = HistGradientBoostingRegressor(
        loss="poisson",
        max_iter=300,
        learning_rate=0.05,
        random_state=0,
        categorical_features=[known.index(name) for name in CATEGORICAL_FEATURES if name in known],
    )
    for learn, held in GroupKFold(5).split(data, relative, pairs["campaign_id"]):
        fitted[held] = model.fit(data[learn], relative[learn]).predict(data[held])
    return {
        "retrieval_ceiling": oracle_share(top_of(pairs, sales, sizes), truth),
        "feature_ceiling": oracle_share(top_of(pairs, fitted, sizes), truth),
    }


def with_noise_free_labels(
    ranker: LoadedRanker, data: Path, embedder: Embedder, selection_power: float = DEFAULT_SELECTION_POWER
) -> LoadedRanker:
    """`ranker` refitted on its own training pairs and features with the outcomes' expectations as labels."""
    pairs = build_training_data(read_training_tables(data), embedder, selection_power=selection_power).pairs
    past = pd.read_parquet(data / "past_truth.parquet").set_index(["campaign_id", "creator_id"])
    expected = past.reindex(pd.MultiIndex.from_frame(pairs[["campaign_id", "creator_id"]]))
    impressions = expected["expected_impressions"].to_numpy(float)
    clicks = impressions * expected["ctr"].to_numpy(float)
    orders = clicks * expected["cvr"].to_numpy(float)
    labels = pd.DataFrame(dict(zip(OUTCOMES, (impressions, clicks, orders), strict=True)))
    model = copy.copy(ranker.model)
    model.ranker = clone(ranker.model.ranker).fit(pairs[FEATURES], labels, row_weights(pairs))
    return dataclasses.replace(ranker, model=model)


def rules_on_true_scores(
    matcher: Matcher, scored: pd.DataFrame, campaigns: pd.DataFrame, truth: pd.DataFrame, units_per_dollar: pd.Series
) -> float:
    """The default policy's slates built from TRUE expected sales of the retrieved candidates (`scored`), over the
    best assignment of the same sizes and capacity among all pairs: what retrieval and the slate rules (budget,
    unproven limit, funnel quota, near-duplicates) give up, the part of "policy / constrained best" that no
    ranker can win back. The true sales are in dollars, one scale for every campaign (no currency scale); their
    commission is in the campaign's currency (`units_per_dollar` by campaign_id), as its budget is."""
    sales = true_sales(scored, truth)
    rate = scored["campaign_id"].map(campaigns.set_index("campaign_id")["commission_rate"]).to_numpy(float)
    local = sales * scored["campaign_id"].map(units_per_dollar).to_numpy(float)
    policy = matcher.settings.slate
    chosen, _ = build_slates(
        scored.drop(columns="currency_log_scale").assign(score=sales, expected_commission=local * rate),
        policy,
        matcher.duplicate_evidence,
    )
    sizes = chosen.groupby("campaign_id").size()
    best = best_assignment(truth.rename(columns={"expected_sales": "score"}), sizes, policy.capacity)
    return float(chosen["score"].sum() / best["score"].sum())


def run_seed(
    seed: int,
    n_creators: int,
    n_campaigns: int,
    embedder: Embedder,
    work: Path,
    world: str,
    knobs: dict,
    ranker: CreatorRanker | None = None,
    selection_power: float = DEFAULT_SELECTION_POWER,
    category_names: str = "contract",
) -> dict[str, float]:
    data = work / f"{world}-{seed}-{category_names}-{abs(hash(tuple(sorted(knobs.items()))))}"
    simulated = WORLDS[world](n_creators=n_creators, n_campaigns=n_campaigns, seed=seed, **knobs)
    if (names := CATEGORY_NAMES[category_names]) is not None:
        for table in (simulated.campaigns, simulated.new_campaigns):
            table["category"] = table["category"].map(names)
    write_world(simulated, data)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{data}.db"
    result = train(data, embedder=embedder, ranker=ranker, selection_power=selection_power)
    creators = read_table(data / "creators.parquet", "creators").frame
    campaigns = read_table(data / "new_campaigns.parquet", "campaigns").frame
    creator_vec = creator_vectors(embedder, creators)
    index = CandidateIndex.build(creator_vec, creators["creator_id"], embedder.model)
    ranker = load_ranker(result.model_uri)
    truth = pd.read_parquet(data / "truth.parquet")
    # Each campaign's currency against the truth's dollars (1 in a world priced in dollars alone).
    known = simulated.campaign_truth.set_index("campaign_id")
    units_per_dollar = known["units_per_dollar"] if "units_per_dollar" in known else pd.Series(1.0, known.index)

    def run(policy: SlatePolicy, model: LoadedRanker = ranker, related_first: bool = True):
        settings = MatchSettings(slate=policy, related_first=related_first)
        return Matcher(creators, model=model, index=index, embedder=embedder, settings=settings).match_many(campaigns)

    # Ranking alone: no capacity, funnel quota or near-duplicate rule between the model and the oracle.
    alone = SlatePolicy(capacity=None, funnel_coverage=False, duplicate_similarity=1.0)
    ranking = run(alone).matches
    default = run(SlatePolicy())
    greedy = run(SlatePolicy(assignment="greedy"))
    uncapped = run(SlatePolicy(capacity=None))
    row = {"model": oracle_share(ranking, truth), "model_default_policy": oracle_share(default.matches, truth)}
    unruled = run(dataclasses.replace(alone, max_unproven_standard=np.iinfo(np.int32).max), related_first=False)
    row["model_without_new_creator_rules"] = oracle_share(unruled.matches, truth)
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    row |= ceilings(matcher, campaigns, truth, ranking.groupby("campaign_id").size())
    row["noise_free_labels"] = oracle_share(
        run(alone, with_noise_free_labels(ranker, data, embedder, selection_power)).matches, truth
    )
    for name, slates in baseline_slates(
        ranking, campaigns, creators, campaign_vectors(embedder, campaigns), creator_vec, MatchSettings(), embedder
    ).items():
        row[name] = oracle_share(slates, truth)

    def total(matches: pd.DataFrame) -> float:
        return float(true_sales(matches, truth).sum())

    row["capacity_cost"] = 1 - total(default.matches) / total(uncapped.matches)
    scored = matcher.scored_candidates(campaigns)
    # The same slates with the product's currency scale left out: predicted sales added across currencies as read.
    rebuilt, _ = build_slates(scored, SlatePolicy(), matcher.duplicate_evidence)
    unscaled, _ = build_slates(scored.drop(columns="currency_log_scale"), SlatePolicy(), matcher.duplicate_evidence)
    row["slates_rebuilt_as_matched"] = float(
        set(zip(rebuilt["campaign_id"], rebuilt["creator_id"], strict=True))
        == set(zip(default.matches["campaign_id"], default.matches["creator_id"], strict=True))
    )
    # The yardstick: the best slates of the policy's sizes under the same capacity, on true expected sales.
    sizes = default.matches.groupby("campaign_id").size()
    best = best_assignment(truth.rename(columns={"expected_sales": "score"}), sizes, SlatePolicy().capacity)
    row["constrained_best_share"] = float(best["score"].sum() / oracle_totals(default.matches, truth)["best"].sum())
    row["policy_vs_constrained_best"] = total(default.matches) / float(best["score"].sum())
    row["policy_vs_constrained_best_unscaled"] = total(unscaled) / float(best["score"].sum())
    row["greedy_vs_constrained_best"] = total(greedy.matches) / float(best["score"].sum())
    row["rules_on_true_scores"] = rules_on_true_scores(matcher, scored, campaigns, truth, units_per_dollar)
    # Predicted sales on the product's one scale (`common_scale`), as the exact assignment adds them.
    scale = campaign_scales(scored)

    def on_one_scale(matches: pd.DataFrame) -> float:
        return float((matches["score"] / scale.reindex(matches["campaign_id"]).to_numpy()).sum())

    row["greedy_over_exact_objective"] = on_one_scale(greedy.matches) / on_one_scale(default.matches)
    if "currency" in known:  # what the product divides each currency's sales by, beside its true rate
        currency = known["currency"].reindex(scale.index)
        for code, factors in scale.groupby(currency.to_numpy()):
            row[f"read_{code}"] = float(factors.median())
    m = default.matches
    kinds = pd.read_parquet(data / "campaign_truth.parquet").set_index("campaign_id")["product_type"]
    sizes = m.groupby("campaign_id").size().rename("size").to_frame().assign(kind=lambda f: f.index.map(kinds))
    row["size_standard"] = sizes.loc[sizes["kind"] == "standard", "size"].mean()
    row["size_non_standard"] = sizes.loc[sizes["kind"] == "non_standard", "size"].mean()
    stages = (
        m[m["product_type"] == "non_standard"]
        .groupby("campaign_id")["funnel_stage"]
        .agg(lambda s: len(set(s) & {"awareness", "consideration", "conversion"}))
    )
    row["non_standard_all_stages"] = float((stages == 3).mean())
    auto = [s for s in default.summaries if s.product_type_reason != "declared by the seller"]
    row["product_type_accuracy"] = float(np.mean([s.product_type == kinds[s.campaign_id] for s in auto]))
    row["ndcg_at_10"] = result.metrics.get("ndcg_at_10", float("nan"))
    config = CONFIGS[world](n_creators=n_creators, n_campaigns=n_campaigns, seed=seed, **knobs)
    row |= orders_range_coverage(default, simulated, config, seed)
    row["orders_range_later_half_coverage"] = result.metrics.get("forecast_later_half_coverage", float("nan"))
    return row


def orders_range_coverage(result, simulated: World, config, seed: int) -> dict[str, float]:
    """How often the summaries' range of a slate's orders holds what the slate then sells: each slate's creators'
    outcomes drawn as the world draws its performance rows (`simulation.world.realize`, from the true expectations,
    every creator taking part), against the range the summary gave."""
    matches = result.matches
    truth = simulated.truth.set_index(["campaign_id", "creator_id"])
    keys = pd.MultiIndex.from_frame(matches[["campaign_id", "creator_id"]])
    # A pair the truth does not hold sells nothing, as `true_sales` counts it.
    pairs = (
        truth.reindex(keys)[["expected_impressions", "ctr", "cvr"]].fillna(0.0).reset_index()
        if len(matches)
        else pd.DataFrame(columns=["campaign_id", "creator_id", "expected_impressions", "ctr", "cvr"])
    )
    campaigns = simulated.new_campaigns.reset_index(drop=True)
    position = pd.Index(campaigns["campaign_id"]).get_indexer(pairs["campaign_id"])
    draws = np.random.default_rng(seed + 10_000)
    performance, _, _ = realize(config, draws, campaigns, simulated.creators, pairs, position)
    sold = performance.groupby("campaign_id")["orders"].sum()
    ranged = [s for s in result.summaries if s.slate_size > 0]
    # Campaigns in a category with no past campaign get no range (`matcher.explain.summaries`).
    summaries = [s for s in ranged if not np.isnan(s.expected_orders_low)]
    low = np.array([s.expected_orders_low for s in summaries])
    high = np.array([s.expected_orders_high for s in summaries])
    actual = sold.reindex([s.campaign_id for s in summaries]).fillna(0).to_numpy(float)
    expected = np.array([s.expected_orders for s in summaries])
    return {
        "orders_range_coverage": float(np.mean((actual >= low) & (actual <= high))) if summaries else float("nan"),
        "orders_below_range": float(np.mean(actual < low)) if summaries else float("nan"),
        "orders_sold_over_expected": float(actual.sum() / expected.sum()) if summaries else float("nan"),
        "orders_range_given": len(summaries) / len(ranged) if ranged else float("nan"),
    }


def parse_value(text: str) -> float | int:
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--creators", type=int, default=3000)
    parser.add_argument("--campaigns", type=int, default=400)
    parser.add_argument("--world", choices=sorted(WORLDS), nargs="+", default=["main", "alt"])
    parser.add_argument("--sweep", metavar="KEY=V1,V2", help="rerun every seed with a generator knob at each value")
    parser.add_argument("--members", type=int, default=1, help="the ranker's n_members (train --members)")
    parser.add_argument("--max-features", type=float, default=1.0, help="the ranker's max_features")
    parser.add_argument(
        "--selection-power", type=float, default=DEFAULT_SELECTION_POWER, help="train --selection-power"
    )
    parser.add_argument(
        "--currencies",
        choices=CURRENCIES,
        default="dollars",
        help="price each campaign in its first marketplace's currency (the truth stays in dollars)",
    )
    parser.add_argument(
        "--category-names",
        choices=sorted(CATEGORY_NAMES),
        default="contract",
        help="the categories as the generators name them, or renamed to Amazon's departments (a seller's own names)",
    )
    args = parser.parse_args()
    ranker = CreatorRanker(max_features=args.max_features, n_members=args.members)
    settings = [{}]
    if args.sweep:
        key, _, values = args.sweep.partition("=")
        settings = [{key: parse_value(v)} for v in values.split(",")]
    if args.currencies != "dollars":
        settings = [{**knobs, "currencies": args.currencies} for knobs in settings]
    embedder = Embedder(cache_dir=Path(tempfile.gettempdir()) / "creator-matcher-bench-cache")
    figures: dict[str, dict[str, float]] = {}
    targets: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for world, knobs in itertools.product(args.world, settings):
            label = world + " " + (",".join(f"{k}={v}" for k, v in knobs.items()) or "defaults")
            if (args.members, args.max_features) != (1, 1.0):
                label += f" (ranker: {args.members} members, max_features {args.max_features})"
            if args.selection_power != DEFAULT_SELECTION_POWER:
                label += f" (selection power {args.selection_power})"
            if args.category_names != "contract":
                label += f" (categories named as {args.category_names})"
            rows = []
            for seed in args.seeds:
                started = time.perf_counter()
                row = run_seed(
                    seed,
                    args.creators,
                    args.campaigns,
                    embedder,
                    Path(tmp),
                    world,
                    knobs,
                    ranker,
                    args.selection_power,
                    args.category_names,
                )
                rows.append(row)
                print(
                    f"{label} seed {seed}: model {row['model']:.3f} (without the new-creator rules "
                    f"{row['model_without_new_creator_rules']:.3f}, noise-free labels "
                    f"{row['noise_free_labels']:.3f}, feature ceiling {row['feature_ceiling']:.3f}, retrieval "
                    f"ceiling {row['retrieval_ceiling']:.3f}; default "
                    f"slate policy {row['model_default_policy']:.3f}, constrained best "
                    f"{row['constrained_best_share']:.3f}, "
                    f"policy / constrained best {row['policy_vs_constrained_best']:.3f} (without the currency scale "
                    f"{row['policy_vs_constrained_best_unscaled']:.3f}), greedy "
                    f"{row['greedy_vs_constrained_best']:.3f}, the same rules on true scores "
                    f"{row['rules_on_true_scores']:.3f}, greedy / exact objective "
                    f"{row['greedy_over_exact_objective']:.4f})  followers {row['followers']:.3f}  "
                    f"tags_then_followers {row['tags_then_followers']:.3f}  similarity {row['similarity']:.3f} | "
                    f"capacity cost {row['capacity_cost']:.1%} | slate size by true type: standard "
                    f"{row['size_standard']:.1f}, non-standard {row['size_non_standard']:.1f} | non-standard "
                    f"slates with all 3 funnel stages {row['non_standard_all_stages']:.0%} | product type "
                    f"accuracy {row['product_type_accuracy']:.1%} | held-out NDCG@10 {row['ndcg_at_10']:.3f} | "
                    f"orders within the slates' {FORECAST_COVERAGE:.0%} range {row['orders_range_coverage']:.0%} "
                    f"(below it {row['orders_below_range']:.0%}; sold / expected "
                    f"{row['orders_sold_over_expected']:.2f}; held-out campaigns, later half "
                    f"{row['orders_range_later_half_coverage']:.0%}; slates given a range "
                    f"{row['orders_range_given']:.0%}) "
                    + "".join(
                        f"| {name[5:]} read as {value:.3g} " for name, value in row.items() if name[:5] == "read_"
                    )
                    + f"({time.perf_counter() - started:.0f}s)",
                    flush=True,
                )
            frame = pd.DataFrame(rows)
            mean = frame.mean()
            ratio = statistics.mean(frame["model"] / frame["tags_then_followers"])
            print(
                f"\n{label}, mean over {len(rows)} seeds: model {mean['model']:.3f} (target >= 0.88; "
                f"without the new-creator rules {mean['model_without_new_creator_rules']:.3f}, "
                f"noise-free labels {mean['noise_free_labels']:.3f}, feature ceiling {mean['feature_ceiling']:.3f}, "
                f"retrieval ceiling {mean['retrieval_ceiling']:.3f}); "
                f"policy / constrained best {mean['policy_vs_constrained_best']:.3f} (target >= 0.90; without the "
                f"currency scale {mean['policy_vs_constrained_best_unscaled']:.3f}; greedy "
                f"{mean['greedy_vs_constrained_best']:.3f}; the same rules on true scores "
                f"{mean['rules_on_true_scores']:.3f}); default policy {mean['model_default_policy']:.3f} of "
                f"the oracle; model / tags_then_followers {ratio:.2f}x (target >= 2); product type accuracy "
                f"{mean['product_type_accuracy']:.1%} (target >= 85%); slate size standard "
                f"{mean['size_standard']:.1f} vs non-standard {mean['size_non_standard']:.1f}; orders within the "
                f"slates' {FORECAST_COVERAGE:.0%} range {mean['orders_range_coverage']:.0%}\n",
                flush=True,
            )
            figures[label] = {
                **{k: round(float(v), 4) for k, v in mean.items()},
                "model_over_tags_then_followers": round(ratio, 3),
                "model_min": round(float(frame["model"].min()), 4),
                "policy_vs_constrained_best_min": round(float(frame["policy_vs_constrained_best"].min()), 4),
            }
            targets[label] = against_targets(figures[label])
    print(json.dumps({"worlds": args.world, "seeds": args.seeds, "settings": figures, "targets": targets}))


def against_targets(mean: dict[str, float]) -> dict[str, float]:
    """Issue #13's figures as ratios to their targets (>= 1 is met)."""
    return {
        name: round(mean[figure] / target, 3)
        for name, figure, target in (
            ("model_vs_0.88", "model", 0.88),
            ("policy_vs_constrained_best_vs_0.90", "policy_vs_constrained_best", 0.90),
            ("model_over_tags_then_followers_vs_2", "model_over_tags_then_followers", 2.0),
            ("product_type_accuracy_vs_0.85", "product_type_accuracy", 0.85),
        )
    } | {"non_standard_over_standard_vs_1.5": round(mean["size_non_standard"] / mean["size_standard"] / 1.5, 3)}


if __name__ == "__main__":
    main()
