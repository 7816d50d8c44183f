"""Product-type accuracy on real Amazon titles (tests/fixtures/real_titles.csv) and on `auto` campaigns of simulated
worlds, no history: the evidence a new seller has (zero-shot descriptions, price within the category).

    python benchmarks/product_type.py                 # real titles, and a simulated world's auto campaigns
    python benchmarks/product_type.py --world alt     # a world whose products the rules were not written from

The last line printed is a JSON object of named figures.
"""

from __future__ import annotations

import argparse
import json
import time

import faiss  # noqa: F401
import numpy as np

from features.embeddings import Embedder
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
    model = ProductTypeModel().fit(
        past, embedder.encode([str(b) for b in past["brief"]]), outcomes, kind_vectors(embedder)
    )
    new = w.new_campaigns.assign(product_type="auto")
    resolved = resolve_product_types(new, embedder, model)
    truth = w.campaign_truth.set_index("campaign_id")["product_type"].reindex(new["campaign_id"]).to_numpy()
    no_past = resolve_product_types(new, embedder)
    return {
        "world_accuracy": float((resolved["product_type"].to_numpy() == truth).mean()),
        "world_accuracy_without_past": float((no_past["product_type"].to_numpy() == truth).mean()),
        "world_campaigns": float(len(new)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="main", help="simulation.WORLDS generator (main or alt)")
    parser.add_argument("--seed", type=int, default=0)
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
        figures |= world_accuracy(embedder, args.seed, args.world)
        print(
            f"simulated world {args.world or 'main'} seed {args.seed}: accuracy on auto campaigns "
            f"{figures['world_accuracy']:.3f} with the seller's past, {figures['world_accuracy_without_past']:.3f}"
            " without"
        )
    figures["seconds"] = time.perf_counter() - start
    print(json.dumps({k: round(v, 4) if isinstance(v, float) and np.isfinite(v) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
