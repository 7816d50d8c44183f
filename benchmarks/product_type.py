"""Product-type accuracy on real Amazon titles (tests/fixtures/real_titles.csv) and on `auto` campaigns of simulated
worlds, no history: the evidence a new seller has (zero-shot descriptions, price within the category).

    .venv/bin/python -m benchmarks.product_type              # real titles, and a simulated world's auto campaigns
    .venv/bin/python -m benchmarks.product_type --world alt  # a world whose products the rules were not written from
    .venv/bin/python -m benchmarks.product_type --world alt --seeds 0,1,2,3  # simulated figures averaged over seeds

Run as a module from the repository's root: it reads the fixtures through `tests.real_fixtures`. The last line
printed is a JSON object of named figures.
"""

from __future__ import annotations

import argparse
import json
import time

import faiss  # noqa: F401
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.embeddings import Embedder, campaign_vectors
from features.product_type import ProductTypeModel, content_conversion_lift, kind_vectors, resolve_product_types
from tests.real_fixtures import campaigns_from_titles, held_out, real_titles


def real_accuracy(embedder: Embedder) -> dict[str, float]:
    titles = real_titles()
    resolved = resolve_product_types(campaigns_from_titles(titles), embedder)
    right = resolved["product_type"].to_numpy() == titles["label"].to_numpy()
    uncertain = resolved["product_type_probability"].between(0.35, 0.65).to_numpy()
    held = held_out(titles["asin"]).to_numpy()
    return {
        "real_titles": float(len(titles)),
        "real_accuracy": float(right.mean()),
        "real_accuracy_dev": float(right[~held].mean()),
        "real_accuracy_held_out": float(right[held].mean()),
        "real_uncertain_share": float(uncertain.mean()),
        "real_accuracy_when_certain": float(right[~uncertain].mean()) if (~uncertain).any() else float("nan"),
    }


def world_accuracy(embedder: Embedder, seed: int, world: str | None) -> dict[str, float]:
    """`auto` campaigns of a simulated world, resolved with a model fitted on its past campaigns (declared types,
    prices, how content creators converted against deal sites), and with none; judged against the truth."""
    from simulation import WORLDS

    w = WORLDS[world or "main"](n_creators=300, n_campaigns=400, n_new_campaigns=200, seed=seed)
    past = w.campaigns
    outcomes = content_conversion_lift(w.performance, w.creators)
    model = ProductTypeModel().fit(past, campaign_vectors(embedder, past), outcomes, kind_vectors(embedder))
    new = w.new_campaigns.assign(product_type="auto")
    resolved = resolve_product_types(new, embedder, model)
    truth = w.campaign_truth.set_index("campaign_id")["product_type"].reindex(new["campaign_id"]).to_numpy()
    no_past = resolve_product_types(new, embedder)
    return {
        "world_accuracy": float((resolved["product_type"].to_numpy() == truth).mean()),
        "world_accuracy_without_past": float((no_past["product_type"].to_numpy() == truth).mean()),
        "world_ceiling_price_category": price_category_ceiling(w),
        "world_campaigns": float(len(new)),
    }


def price_category_ceiling(world) -> float:
    """What the truth's own price position and category could do, learned from the same declared campaigns: a
    logistic regression on the world's latent price z and the category, fitted on the declared past campaigns and
    judged on the new ones. A yardstick (the model sees prices, not z), not a method."""
    truth = world.campaign_truth.set_index("campaign_id")
    categories = sorted(set(world.campaigns["category"]) | set(world.new_campaigns["category"]))
    if "price_z" not in truth:  # the main world draws prices from the type itself
        return float("nan")

    def table(campaigns: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        rows = truth.reindex(campaigns["campaign_id"])
        onehot = pd.get_dummies(campaigns["category"]).reindex(columns=categories, fill_value=0)
        features = np.column_stack([rows["price_z"].to_numpy(float), onehot.to_numpy(float)])
        return features, (rows["product_type"] == "non_standard").to_numpy()

    declared = world.campaigns["product_type"].isin(["standard", "non_standard"]).to_numpy()
    x, y = table(world.campaigns)
    x_new, y_new = table(world.new_campaigns)
    fitted = LogisticRegression(max_iter=1000).fit(x[declared], y[declared])
    return float((fitted.predict(x_new) == y_new).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="main", help="simulation.WORLDS generator (main or alt)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the simulated world, averaged")
    parser.add_argument("--quick", action="store_true", help="real titles only")
    args = parser.parse_args()
    embedder = Embedder()
    embedder.show_progress = False
    start = time.perf_counter()
    figures = real_accuracy(embedder)
    print(
        f"real titles: accuracy {figures['real_accuracy']:.3f} on {figures['real_titles']:.0f} "
        f"(dev half {figures['real_accuracy_dev']:.3f}, held-out half {figures['real_accuracy_held_out']:.3f})"
    )
    if not args.quick:
        seeds = [int(seed) for seed in args.seeds.split(",")]
        runs = pd.DataFrame([world_accuracy(embedder, seed, args.world) for seed in seeds])
        figures |= runs.mean().to_dict() | {"world_accuracy_min": float(runs["world_accuracy"].min())}
        print(
            f"simulated world {args.world or 'main'} seeds {args.seeds}: mean accuracy on auto campaigns "
            f"{figures['world_accuracy']:.3f} with the seller's past, {figures['world_accuracy_without_past']:.3f}"
            f" without; true price position and category alone: {figures['world_ceiling_price_category']:.3f}"
        )
    figures["seconds"] = time.perf_counter() - start
    # A figure the run could not measure (NaN) is left out, so the last line stays plain JSON.
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items() if v == v}))


if __name__ == "__main__":
    main()
