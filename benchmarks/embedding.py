"""Embedding throughput: the pipeline against the bare model, and a cached re-index against a cold one.

1. Encode rate: `Embedder.encode` (hashing, cache lookup, shard write) on N distinct new profile texts from the
   simulator, against `SentenceTransformer.encode` on the same texts and batch size; medians of `--repeats`,
   alternating which goes first. Target: ratio >= 0.9.
2. Re-index after a 1% change, measured side by side: a cold run embeds M distinct profile texts into an empty
   cache; each cached run is a fresh Embedder on that cache (as a new `creator-match index` process would be)
   over the same texts with 1% of them changed. Target: cold / cached >= 50x.
3. The cached path at 1M: 1,000,000 distinct profile texts (simulated profiles, each made unique by a line
   naming its handle), 990,000 of them already cached, 10,000 changed. Embedding 1M texts cold would take
   about 1.5 hours here, so the cache is seeded with random unit vectors for the unchanged texts (the cached
   path reads keys and vectors, never their values), the cached run is measured, and the cold time is
   EXTRAPOLATED from the cold rate measured on 2,000 of these texts.

The model is loaded once before timing, so no figure includes loading it. All runs are in one process;
the machine may be shared, so read the ratios (measured side by side), not the absolute rates.

    .venv/bin/python benchmarks/embedding.py              # N=2,000, M=20,000, 1M (about 10 minutes)
    .venv/bin/python benchmarks/embedding.py --quick      # N=200, M=1,000, 20k: a smoke test
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from features.embeddings import Embedder, content_keys
from features.text import creator_text
from simulation.world import simulate

__all__ = ["main", "profile_texts"]


def profile_texts(n: int, seed: int) -> list[str]:
    """`n` distinct creator profile texts from the simulator (it repeats some profiles; repeats are dropped)."""
    creators = 0
    texts: list[str] = []
    while len(texts) < n:
        creators = max(creators * 2, int(n * 1.25) + 20)
        frame = simulate(n_creators=creators, n_campaigns=10, n_new_campaigns=1, seed=seed).creators
        texts = list(dict.fromkeys(map(creator_text, frame["creator_type"], frame["interest_tags"], frame["bio"])))
    return texts[:n]


def changed(texts: list[str], share: float, tag: str, seed: int) -> tuple[list[str], np.ndarray]:
    """A copy with `share` of the texts edited (a new sentence in the bio), and which rows changed."""
    rows = np.sort(
        np.random.default_rng(seed).choice(len(texts), size=max(1, round(share * len(texts))), replace=False)
    )
    out = list(texts)
    for row in rows:
        out[row] = f"{texts[row]} New this season: {tag} unboxings and honest reviews."
    return out, rows


def fresh(encoder, cache_dir: Path, batch_size: int) -> Embedder:
    """A new Embedder on `cache_dir` that reuses the loaded model, as a new process with a warm disk cache."""
    embedder = Embedder(cache_dir=cache_dir, batch_size=batch_size, show_progress=False)
    embedder._encoder = encoder
    return embedder


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def encode_rate(encoder, texts: list[str], args, work: Path) -> None:
    bare, pipeline = [], []
    for repeat in range(args.repeats):
        pipeline_embedder = fresh(encoder, work / f"rate-{repeat}", args.batch_size)
        runs = {
            "bare": lambda: encoder.encode(
                texts,
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            "pipeline": lambda embedder=pipeline_embedder: embedder.encode(texts),
        }
        order = ["bare", "pipeline"] if repeat % 2 == 0 else ["pipeline", "bare"]
        for name in order:
            seconds, _ = timed(runs[name])
            (bare if name == "bare" else pipeline).append(seconds)
    bare_rate, pipeline_rate = len(texts) / statistics.median(bare), len(texts) / statistics.median(pipeline)
    print(f"\n1. encode rate on {len(texts):,} distinct new profile texts (median of {args.repeats})")
    print(f"   SentenceTransformer.encode  {bare_rate:8.1f} texts/s")
    print(f"   Embedder.encode (cached)    {pipeline_rate:8.1f} texts/s")
    print(f"   ratio pipeline / bare       {pipeline_rate / bare_rate:8.3f}   (target >= 0.9)")


def reindex(encoder, texts: list[str], args, work: Path) -> None:
    """Cold vs cached re-index of the same texts with a share changed."""
    cache = work / "reindex"
    cold = fresh(encoder, cache, args.batch_size)
    cold_seconds, cold_vectors = timed(cold.encode, texts)
    cached_seconds = []
    for repeat in range(args.repeats):
        edited, rows = changed(texts, args.change, f"round {repeat}", args.seed + repeat)
        warm = fresh(encoder, cache, args.batch_size)
        seconds, vectors = timed(warm.encode, edited)
        cached_seconds.append(seconds)
        assert warm.encoded_count_ == len(rows), (warm.encoded_count_, len(rows))
        kept = np.setdiff1d(np.arange(len(texts)), rows)
        np.testing.assert_array_equal(vectors[kept], cold_vectors[kept])
    cached = statistics.median(cached_seconds)
    print(f"\n2. re-index {len(texts):,} distinct profile texts after a {args.change:.0%} change, measured")
    print(f"   cold (empty cache)          {cold_seconds:8.1f} s   ({len(texts) / cold_seconds:.1f} texts/s)")
    print(f"   cached, {len(rows):,} re-encoded    {cached:8.2f} s   (median of {args.repeats})")
    print(f"   cold / cached               {cold_seconds / cached:8.1f}x  (target >= 50x)")


def cached_at_scale(encoder, base: list[str], args, work: Path) -> None:
    n = args.large
    texts = [f"{base[i % len(base)]} Posts as @creator{i}." for i in range(n)]
    sample = texts[: args.rate_sample]
    sample_seconds, _ = timed(fresh(encoder, work / "rate-sample", args.batch_size).encode, sample)
    cold_rate = len(sample) / sample_seconds

    edited, rows = changed(texts, args.change, "scale", args.seed)
    unchanged = np.setdiff1d(np.arange(n), rows)
    seed_seconds, _ = timed(seed_cache, fresh(encoder, work / "large", args.batch_size), texts, unchanged, args.seed)
    warm = fresh(encoder, work / "large", args.batch_size)
    seconds, vectors = timed(warm.encode, edited)
    assert warm.encoded_count_ == len(rows) and vectors.shape == (n, 384)
    again = fresh(encoder, work / "large", args.batch_size)
    lookup_seconds, _ = timed(again.encode, edited)
    assert again.encoded_count_ == 0
    extrapolated = n / cold_rate
    print(
        f"\n3. cached path at {n:,} texts, {len(rows):,} changed "
        f"({n - len(rows):,} cached, seeded in {seed_seconds:.0f} s)"
    )
    print(f"   cold rate on {len(sample):,} of these texts {cold_rate:8.1f} texts/s (measured)")
    print(f"   cold, all {n:,}             {extrapolated:8.0f} s   EXTRAPOLATED ({extrapolated / 3600:.2f} h)")
    print(f"   cached run                  {seconds:8.1f} s   (hash + look up + encode {len(rows):,} + write + gather)")
    print(f"   of which hash/lookup/gather {lookup_seconds:8.1f} s   (measured: a second run with nothing new)")
    print(f"   cold / cached               {extrapolated / seconds:8.1f}x  (cold EXTRAPOLATED; target >= 50x)")


def seed_cache(embedder: Embedder, texts: list[str], rows: np.ndarray, seed: int) -> None:
    """Caches random unit vectors for `texts[rows]`, as if a cold run had embedded them."""
    vectors = np.random.default_rng(seed).standard_normal((len(rows), 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedder.cache.put(content_keys([texts[i] for i in rows]), vectors)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=200, M=1,000, 20k, one repeat")
    parser.add_argument("--texts", type=int, default=2000, help="N, texts for the encode rate")
    parser.add_argument("--reindex", type=int, default=20_000, help="M, texts for cold vs cached")
    parser.add_argument("--large", type=int, default=1_000_000, help="texts for the cached path at scale; 0 skips")
    parser.add_argument("--rate-sample", type=int, default=2000, help="texts the extrapolated cold rate is timed on")
    parser.add_argument("--change", type=float, default=0.01, help="share of texts changed before re-indexing")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.texts, args.reindex, args.large, args.rate_sample, args.repeats = 200, 1000, 20_000, 200, 1

    import torch

    if args.threads:
        # On a shared machine, more threads than idle cores makes torch wait on busy ones: small batches crawl.
        torch.set_num_threads(args.threads)
    encoder = Embedder().encoder
    encoder.encode(["warm-up: load the weights and the tokenizer"], show_progress_bar=False)
    print(f"model {Embedder().model}, batch size {args.batch_size}, torch threads {torch.get_num_threads()}")
    texts = profile_texts(max(args.texts, args.reindex), args.seed)
    work = Path(tempfile.mkdtemp(prefix="embedding-bench-"))
    try:
        encode_rate(encoder, texts[: args.texts], args, work)
        reindex(encoder, texts[: args.reindex], args, work)
        if args.large:
            cached_at_scale(encoder, texts, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
