"""Approximate vs exact candidate search: speed and recall@100 of IVF (and HNSW) against Flat, side by side.

Synthetic 384-d unit vectors clustered like profile embeddings (1,000 Gaussian clusters on the unit sphere,
grouped under 50 topics), 1,000 queries from the same distribution searched in one batch, with and without
an eligibility filter (a random `--allowed` share of creators, passed to the search as the matcher does).
Each index is searched through `CandidateIndex.search`, so filtered numbers include the widening fallback.
Every index is built first, then all are searched in turn within each of `--repeats` rounds (order alternating);
times are medians, speed-ups the median of Flat's time over the index's time within a round; recall@100 is the
share of Flat's exact top 100 returned. The last line printed is one JSON object: per size, the fastest
setting with recall@100 >= 0.99 with and without the filter (`ann_speedup_<n>`, the lower of the two, and
`recall_at_100_<n>`), and the default IVF setting's figures.

    .venv/bin/python benchmarks/ann.py                 # 100k and 1M (several minutes; HNSW at 100k only)
    .venv/bin/python benchmarks/ann.py --quick         # 20k, 200 queries: a smoke test in seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import faiss
import numpy as np

from matcher.candidate_index import DEFAULT_NPROBE, CandidateIndex, ivf_nlist

__all__ = ["clustered_unit_vectors", "main", "recall_at_k"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _around(centres: np.ndarray, n: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """`n` unit rows, each near a random one of `centres`: cosine to it about 1/sqrt(1 + spread²)."""
    chunk = centres[rng.integers(0, len(centres), n)]
    chunk += rng.standard_normal(chunk.shape, dtype=np.float32) * np.float32(spread / np.sqrt(centres.shape[1]))
    return _unit(chunk)


def clustered_unit_vectors(
    n: int, args: argparse.Namespace, rng: np.random.Generator, centres: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit rows in `args.clusters` Gaussian clusters, themselves grouped under `args.topics` topics.

    Profile embeddings are clustered at two levels (a category, then a niche inside it), so a row's nearest
    neighbours beyond its own niche come from sibling niches, not from anywhere. Made in chunks to bound memory.
    """
    if centres is None:
        topics = _unit(rng.standard_normal((args.topics, args.dimension), dtype=np.float32))
        centres = _around(topics, args.clusters, args.topic_spread, rng)
    rows = np.empty((n, args.dimension), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        rows[start:stop] = _around(centres, stop - start, args.spread, rng)
    return rows, centres


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top-k that the search returned."""
    return float(np.mean([np.intersect1d(f, t).size / t.size for f, t in zip(found, truth, strict=True)]))


def bench_size(n: int, args: argparse.Namespace) -> list[dict]:
    """Builds every index once, then times all of them, filter by filter, interleaved within each repeat."""
    rng = np.random.default_rng(args.seed)
    rows, centres = clustered_unit_vectors(n, args, rng)
    queries, _ = clustered_unit_vectors(args.queries, args, rng, centres)
    allowed = rng.random(n) < args.allowed
    ids = np.arange(n).astype(str).astype(object)

    kinds = ["flat", "ivf"] + (["hnsw"] if n <= args.hnsw_max else [])
    built, build_seconds = {}, {}
    for kind in kinds:
        start = time.perf_counter()
        built[kind] = CandidateIndex.build(rows, ids, "synthetic", kind=kind, seed=args.seed)
        build_seconds[kind] = time.perf_counter() - start
    del rows
    configs = [("flat", "Flat", None, None)]
    configs += [("ivf", f"IVF{built['ivf'].meta['nlist']}", "nprobe", p) for p in args.nprobes]
    if "hnsw" in built:
        configs += [("hnsw", "HNSW32", "ef_search", ef) for ef in args.ef_searches]

    seconds: dict[tuple, list[float]] = {}
    found: dict[tuple, np.ndarray] = {}
    for repeat in range(args.repeats):
        # Alternate the order, so a change in the machine's load between runs falls on both sides.
        for config in configs if repeat % 2 == 0 else configs[::-1]:
            kind, _, setting, value = config
            if setting:
                setattr(built[kind], setting, value)
            for label, mask in (("all", None), ("filtered", allowed)):
                start = time.perf_counter()
                _, found[config, label] = built[kind].search(queries, args.k, mask)
                seconds.setdefault((config, label), []).append(time.perf_counter() - start)

    results = []
    for config in configs:
        kind, name, setting, value = config
        for label in ("all", "filtered"):
            flat = seconds[configs[0], label]
            mine = seconds[config, label]
            results.append(
                dict(
                    n=n,
                    index=name,
                    setting=f"{setting}={value}" if setting else "",
                    filter=label,
                    build=build_seconds[kind],
                    seconds=statistics.median(mine),
                    # The median of ratios taken within one repeat, when both ran under the same load.
                    speedup=statistics.median(f / m for f, m in zip(flat, mine, strict=True)),
                    recall=recall_at_k(found[config, label], found[configs[0], label]),
                )
            )
    print_rows(results)
    return results


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        print(
            f"{row['n']:>9,} {row['index']:>9} {row['setting']:>13} {row['filter']:>9} "
            f"{row['build']:>8.1f} {row['seconds']:>9.3f} {row['speedup']:>8.1f}x {row['recall']:>10.4f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="20k vectors, 200 queries, one repeat")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=1000, help="Gaussian clusters (niches)")
    parser.add_argument("--topics", type=int, default=50, help="groups of clusters (categories)")
    parser.add_argument("--spread", type=float, default=0.8, help="noise norm of a row around its cluster")
    parser.add_argument("--topic-spread", type=float, default=0.8, help="noise norm of a cluster around its topic")
    parser.add_argument("--allowed", type=float, default=0.8, help="share of creators the filter allows")
    parser.add_argument("--nprobes", type=int, nargs="+", default=[4, 8, 12, 16, 24, 32])
    parser.add_argument("--ef-searches", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size HNSW is built at")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.repeats = [20_000], 200, 1
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    print(
        f"{args.queries} queries, k={args.k}, {args.dimension}-d, {args.clusters} clusters in {args.topics} topics "
        f"(spreads {args.spread}, {args.topic_spread}), filter allows "
        f"{args.allowed:.0%}, {faiss.omp_get_max_threads()} FAISS threads, median of {args.repeats}"
    )
    header = ("n", 9), ("index", 9), ("setting", 13), ("filter", 9), ("build s", 8), ("search s", 9), ("speedup", 9)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'recall@k':>10}")
    results = []
    for n in args.sizes:
        results += bench_size(n, args)
    print("\nfastest setting with recall@k >= 0.99 on both filters, per size:")
    figures: dict[str, object] = {"queries": args.queries, "k": args.k}
    for n in args.sizes:
        good = {}
        for row in results:
            if row["n"] == n and row["index"] != "Flat":
                good.setdefault((row["index"], row["setting"]), []).append(row)
        passing = [rows for rows in good.values() if all(r["recall"] >= 0.99 for r in rows)]
        default = good.get((f"IVF{ivf_nlist(n)}", f"nprobe={DEFAULT_NPROBE}"), [])
        for row in default:  # what `creator-match index` builds above the flat threshold
            figures[f"default_ivf_speedup_{row['filter']}_{n}"] = round(row["speedup"], 2)
            figures[f"default_ivf_recall_at_{args.k}_{row['filter']}_{n}"] = round(row["recall"], 4)
        if not passing:
            print(f"  {n:>9,}: none")
            continue
        best = max(passing, key=lambda rows: min(r["speedup"] for r in rows))
        parts = ", ".join(f"{r['filter']} {r['speedup']:.1f}x at recall {r['recall']:.4f}" for r in best)
        print(f"  {n:>9,}: {best[0]['index']} {best[0]['setting']}: {parts}")
        figures[f"ann_setting_{n}"] = f"{best[0]['index']} {best[0]['setting']}"
        figures[f"ann_speedup_{n}"] = round(min(r["speedup"] for r in best), 2)
        figures[f"recall_at_{args.k}_{n}"] = round(min(r["recall"] for r in best), 4)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
