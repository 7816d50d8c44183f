"""Embedding throughput and equivalence: each backend against the bare model, and a cached re-index against a cold one.

1. Encode rate at 1 and 2 threads: `Embedder.encode` (hashing, cache lookup, shard write) on each backend
   (`torch`: sentence-transformers; `onnx`: ONNX Runtime) on N distinct new profile texts from the simulator,
   against the bare `SentenceTransformer.encode` on the same texts and batch size. Runs alternate within each
   of `--repeats` rounds; a ratio is the median over rounds of bare time / pipeline time within the round,
   both wall-clock and CPU time (the machine may be shared: CPU time is what the work cost, wall what a user
   waits). Target: onnx >= 1.3x at 1 and 2 threads.
2. Equivalence of onnx with torch: cosine of each text's two vectors (target >= 0.9999 for every text), and
   identical top-100 neighbours on a `--equivalence-index` (100k) exact index for at least 99% of queries. The
   index holds replicas of the N real profile vectors plus noise (cosine about 0.9 to their original, the same
   noise for both backends, as benchmarks/batch.py makes its catalogue); the queries are `--queries` real
   campaign briefs encoded by each backend. The default backend must pass this and be the faster.
3. Re-index after a 1% change, measured side by side on the default backend: a cold run embeds M distinct
   profile texts into an empty cache; each cached run is a fresh Embedder on that cache (as a new
   `creator-match index` process would be) over the same texts with 1% of them changed. Target: >= 50x.
4. The cached path at 1M: 1,000,000 distinct profile texts (simulated profiles, each made unique by a line
   naming its handle), 990,000 of them already cached, 10,000 changed. Embedding 1M texts cold would take
   hours here, so the cache is seeded with random unit vectors for the unchanged texts (the cached path reads
   keys and vectors, never their values), the cached run is measured, and the cold time is EXTRAPOLATED from
   the cold rate measured on 2,000 of these texts.

Models are loaded (and the ONNX export made) before timing, so no figure includes loading. The last line
printed is one JSON object of the named figures.

    .venv/bin/python benchmarks/embedding.py              # N=1,000, 100k index, M=20,000, 1M (about 30 minutes)
    .venv/bin/python benchmarks/embedding.py --quick      # N=200, 20k index, M=1,000, 20k: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from features.environment import unset_defaults

os.environ.update(unset_defaults())

import faiss
import numpy as np

from features.embeddings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBEDDING_BACKEND,
    EMBEDDING_BACKENDS,
    Embedder,
    content_keys,
)
from features.text import campaign_text, creator_text
from simulation.world import simulate

__all__ = ["main", "profile_texts"]

MIN_COSINE, MIN_IDENTICAL_SHARE = 0.9999, 0.99


def profile_texts(n: int, seed: int) -> list[str]:
    """`n` distinct creator profile texts from the simulator (it repeats some profiles; repeats are dropped)."""
    creators = 0
    texts: list[str] = []
    while len(texts) < n:
        creators = max(creators * 2, int(n * 1.25) + 20)
        frame = simulate(n_creators=creators, n_campaigns=10, n_new_campaigns=1, seed=seed).creators
        texts = list(dict.fromkeys(map(creator_text, frame["creator_type"], frame["interest_tags"], frame["bio"])))
    return texts[:n]


def brief_texts(n: int, seed: int) -> list[str]:
    """`n` distinct campaign brief texts from the simulator."""
    campaigns = simulate(n_creators=50, n_campaigns=10, n_new_campaigns=n * 2, seed=seed + 1).new_campaigns
    return list(dict.fromkeys(map(campaign_text, campaigns["brief"], campaigns["category"])))[:n]


def changed(texts: list[str], share: float, tag: str, seed: int) -> tuple[list[str], np.ndarray]:
    """A copy with `share` of the texts edited (a new sentence in the bio), and which rows changed."""
    rows = np.sort(
        np.random.default_rng(seed).choice(len(texts), size=max(1, round(share * len(texts))), replace=False)
    )
    out = list(texts)
    for row in rows:
        out[row] = f"{texts[row]} New this season: {tag} unboxings and honest reviews."
    return out, rows


def fresh(encoder, cache_dir: Path | None, batch_size: int, backend: str, threads: int | None = None) -> Embedder:
    """A new Embedder on `cache_dir` that reuses a loaded model, as a new process with a warm disk cache."""
    embedder = Embedder(
        cache_dir=cache_dir, batch_size=batch_size, show_progress=False, threads=threads, backend=backend
    )
    embedder._encoder = encoder
    return embedder


def timed(function, *args):
    """(wall seconds, CPU seconds of this process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def encode_rate(encoders: dict, texts: list[str], threads: int, args, work: Path) -> tuple[dict, dict]:
    """Bare model vs each backend's pipeline at `threads` threads; returns figures and each one's vectors."""
    import torch

    torch.set_num_threads(threads)  # the bare model's threads; the pipelines set their own
    bare_model = encoders["torch"]
    runs = {
        "bare": lambda: bare_model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    }
    for backend in EMBEDDING_BACKENDS:  # ONNX Runtime makes a session per thread count: not part of the timing
        fresh(encoders[backend], None, args.batch_size, backend, threads).encode([f"warm-up on {threads}"])
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in ["bare", *EMBEDDING_BACKENDS]}
    vectors = {}
    for repeat in range(args.repeats):
        for backend in EMBEDDING_BACKENDS:
            pipeline = fresh(encoders[backend], work / f"rate-{threads}-{repeat}", args.batch_size, backend, threads)
            runs[backend] = pipeline.encode
        order = list(seconds) if repeat % 2 == 0 else list(seconds)[::-1]
        for name in order:
            wall, cpu, vectors[name] = timed(runs[name]) if name == "bare" else timed(runs[name], texts)
            seconds[name].append((wall, cpu))
    figures = {}
    print(f"\n1. encode rate on {len(texts):,} distinct new profile texts, {threads} thread(s)", end="")
    print(f", median of {args.repeats}")
    print(f"   {'':28} {'texts/s':>9} {'ratio wall':>11} {'ratio CPU':>10}")
    for name in seconds:
        rate = len(texts) / statistics.median(wall for wall, _ in seconds[name])
        wall_ratio, cpu_ratio = (
            statistics.median(b[k] / m[k] for b, m in zip(seconds["bare"], seconds[name], strict=True)) for k in (0, 1)
        )
        label = "SentenceTransformer.encode" if name == "bare" else f"Embedder.encode on {name}"
        print(f"   {label:28} {rate:9.1f} {wall_ratio:11.3f} {cpu_ratio:10.3f}")
        if name != "bare":
            figures[f"encode_ratio_{name}_{threads}_threads"] = round(wall_ratio, 3)
            figures[f"encode_cpu_ratio_{name}_{threads}_threads"] = round(cpu_ratio, 3)
    print("   (ratio: bare time / pipeline time, within each round; target onnx >= 1.3)")
    return figures, vectors


def neighbour_check(torch_base: np.ndarray, onnx_base: np.ndarray, queries: dict, args) -> dict:
    """Top-100 neighbours of the same queries on each backend's replica index: how often they are identical."""
    rng = np.random.default_rng(args.seed)
    n, dimension = args.equivalence_index, torch_base.shape[1]
    source = np.arange(n) % len(torch_base)
    noise = rng.standard_normal((n, dimension), dtype=np.float32) * np.float32(0.5 / np.sqrt(dimension))
    noise[: len(torch_base)] = 0  # the originals themselves are in the index
    top = {}
    for backend, base in (("torch", torch_base), ("onnx", onnx_base)):
        rows = base[source] + noise
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(dimension)
        index.add(rows)
        top[backend] = index.search(np.ascontiguousarray(queries[backend]), args.k)[1]
        del rows, index
    overlap = np.array(
        [np.intersect1d(a, b).size / args.k for a, b in zip(top["torch"], top["onnx"], strict=True)], dtype=float
    )
    return {
        "neighbour_identical_share_at_100": round(float((overlap == 1).mean()), 4),
        "neighbour_overlap_at_100": round(float(overlap.mean()), 6),
        "neighbour_overlap_min_at_100": round(float(overlap.min()), 4),
    }


def equivalence(encoders: dict, rate_vectors: dict, briefs: list[str], args) -> dict:
    """Cosine of onnx to torch vectors and neighbour agreement at 100 on the replica index."""
    torch_base = rate_vectors["torch"].astype(np.float32)
    onnx_base = rate_vectors["onnx"].astype(np.float32)
    queries = {backend: fresh(encoders[backend], None, args.batch_size, backend).encode(briefs) for backend in encoders}
    cosines = np.concatenate(
        [np.sum(torch_base * onnx_base, axis=1), np.sum(queries["torch"] * queries["onnx"], axis=1)]
    )
    figures = {
        "cosine_min": round(float(cosines.min()), 7),
        "cosine_share_at_least_0_9999": round(float((cosines >= MIN_COSINE).mean()), 4),
    }
    figures |= neighbour_check(torch_base, onnx_base, queries, args)
    passed = figures["cosine_min"] >= MIN_COSINE and figures["neighbour_identical_share_at_100"] >= MIN_IDENTICAL_SHARE
    figures["equivalence_passed"] = bool(passed)
    identical, mean, least = (figures[f"neighbour_{k}_at_100"] for k in ("identical_share", "overlap", "overlap_min"))
    print(f"\n2. onnx against torch: {len(cosines):,} texts; {len(briefs):,} queries", end="")
    print(f" on {args.equivalence_index:,} vectors")
    print(f"   cosine min                  {figures['cosine_min']:.7f}  (target >= {MIN_COSINE})")
    print(f"   identical top-{args.k} share      {identical:.4f}     (target >= {MIN_IDENTICAL_SHARE})")
    print(f"   mean / min overlap at {args.k}   {mean:.6f} / {least:.4f}")
    print(f"   equivalence check           {'passed' if passed else 'FAILED'}")
    return figures


def reindex(encoder, texts: list[str], args, work: Path) -> dict:
    """Cold vs cached re-index of the same texts with a share changed."""
    cache = work / "reindex"
    cold = fresh(encoder, cache, args.batch_size, DEFAULT_EMBEDDING_BACKEND)
    cold_seconds, _, cold_vectors = timed(cold.encode, texts)
    cached_seconds = []
    for repeat in range(args.repeats):
        edited, rows = changed(texts, args.change, f"round {repeat}", args.seed + repeat)
        warm = fresh(encoder, cache, args.batch_size, DEFAULT_EMBEDDING_BACKEND)
        seconds, _, vectors = timed(warm.encode, edited)
        cached_seconds.append(seconds)
        assert warm.encoded_count_ == len(rows), (warm.encoded_count_, len(rows))
        kept = np.setdiff1d(np.arange(len(texts)), rows)
        np.testing.assert_array_equal(vectors[kept], cold_vectors[kept])
    cached = statistics.median(cached_seconds)
    print(f"\n3. re-index {len(texts):,} distinct profile texts after a {args.change:.0%} change, measured")
    print(f"   cold (empty cache)          {cold_seconds:8.1f} s   ({len(texts) / cold_seconds:.1f} texts/s)")
    print(f"   cached, {len(rows):,} re-encoded    {cached:8.2f} s   (median of {args.repeats})")
    print(f"   cold / cached               {cold_seconds / cached:8.1f}x  (target >= 50x)")
    return {"reindex_cold_seconds": round(cold_seconds, 2), "reindex_speedup": round(cold_seconds / cached, 1)}


def cached_at_scale(encoder, base: list[str], args, work: Path) -> dict:
    n = args.large
    backend = DEFAULT_EMBEDDING_BACKEND
    texts = [f"{base[i % len(base)]} Posts as @creator{i}." for i in range(n)]
    sample = texts[: args.rate_sample]
    sample_seconds, _, _ = timed(fresh(encoder, work / "rate-sample", args.batch_size, backend).encode, sample)
    cold_rate = len(sample) / sample_seconds

    edited, rows = changed(texts, args.change, "scale", args.seed)
    unchanged = np.setdiff1d(np.arange(n), rows)
    seeder = fresh(encoder, work / "large", args.batch_size, backend)
    seed_seconds, _, _ = timed(seed_cache, seeder, texts, unchanged, args.seed)
    warm = fresh(encoder, work / "large", args.batch_size, backend)
    seconds, _, vectors = timed(warm.encode, edited)
    assert warm.encoded_count_ == len(rows) and vectors.shape == (n, 384)
    again = fresh(encoder, work / "large", args.batch_size, backend)
    lookup_seconds, _, _ = timed(again.encode, edited)
    assert again.encoded_count_ == 0
    extrapolated = n / cold_rate
    print(
        f"\n4. cached path at {n:,} texts, {len(rows):,} changed "
        f"({n - len(rows):,} cached, seeded in {seed_seconds:.0f} s)"
    )
    print(f"   cold rate on {len(sample):,} of these texts {cold_rate:8.1f} texts/s (measured)")
    print(f"   cold, all {n:,}             {extrapolated:8.0f} s   EXTRAPOLATED ({extrapolated / 3600:.2f} h)")
    print(f"   cached run                  {seconds:8.1f} s   (hash + look up + encode {len(rows):,} + write + gather)")
    print(f"   of which hash/lookup/gather {lookup_seconds:8.1f} s   (measured: a second run with nothing new)")
    print(f"   cold / cached               {extrapolated / seconds:8.1f}x  (cold EXTRAPOLATED; target >= 50x)")
    return {
        "large_texts": n,
        "large_cached_seconds": round(seconds, 2),
        "large_lookup_seconds": round(lookup_seconds, 2),
        "large_speedup_extrapolated": round(extrapolated / seconds, 1),
    }


def seed_cache(embedder: Embedder, texts: list[str], rows: np.ndarray, seed: int) -> None:
    """Caches random unit vectors for `texts[rows]`, as if a cold run had embedded them."""
    vectors = np.random.default_rng(seed).standard_normal((len(rows), 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedder.cache.put(content_keys([texts[i] for i in rows]), vectors)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=200, 20k index, M=1,000, 20k, one repeat")
    parser.add_argument("--texts", type=int, default=1000, help="N, texts for the encode rate and equivalence")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts the rate is timed at")
    parser.add_argument("--equivalence-index", type=int, default=100_000, help="vectors in the neighbour check")
    parser.add_argument("--queries", type=int, default=1000, help="real briefs searched in the neighbour check")
    parser.add_argument("--k", type=int, default=100, help="neighbours compared")
    parser.add_argument("--reindex", type=int, default=20_000, help="M, texts for cold vs cached; 0 skips")
    parser.add_argument("--large", type=int, default=1_000_000, help="texts for the cached path at scale; 0 skips")
    parser.add_argument("--rate-sample", type=int, default=2000, help="texts the extrapolated cold rate is timed on")
    parser.add_argument("--change", type=float, default=0.01, help="share of texts changed before re-indexing")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.texts, args.equivalence_index, args.queries = 200, 20_000, 200
        args.reindex, args.large, args.rate_sample, args.repeats = 1000, 20_000, 200, 1

    work = Path(tempfile.mkdtemp(prefix="embedding-bench-"))
    try:
        # Each backend loaded once (the ONNX export made if the default cache has none yet) and warmed up.
        encoders = {backend: Embedder(backend=backend).encoder for backend in EMBEDDING_BACKENDS}
        for backend in EMBEDDING_BACKENDS:
            fresh(encoders[backend], None, args.batch_size, backend).encode(["warm-up: weights and tokenizer"])
        print(f"model {Embedder().model}, batch size {args.batch_size}, default backend {DEFAULT_EMBEDDING_BACKEND}")
        texts = profile_texts(max(args.texts, args.reindex), args.seed)
        # Wall-clock ratios are only as steady as the machine: its load is recorded beside them.
        figures: dict[str, object] = {"texts": args.texts, "batch_size": args.batch_size, "load_1m": os.getloadavg()[0]}
        rate_vectors = {}
        for threads in args.threads:
            found, rate_vectors = encode_rate(encoders, texts[: args.texts], threads, args, work)
            figures |= found
        figures |= equivalence(encoders, rate_vectors, brief_texts(args.queries, args.seed), args)
        default = encoders[DEFAULT_EMBEDDING_BACKEND]
        if args.reindex:
            figures |= reindex(default, texts[: args.reindex], args, work)
        if args.large:
            figures |= cached_at_scale(default, texts, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
