"""End-to-end batch throughput and peak memory of `creator-match match`, and the Ray engine against the local one.

A ranker is trained on a simulated world of `--base-creators` creators. Its creators are then replicated, with
jittered reach, into a catalogue of `--creators` rows; each replica's profile vector is its original's real MiniLM
vector plus noise (cosine about 0.9), because embedding a million profiles would take 1.5 hours here and is
measured on its own by benchmarks/embedding.py. The index is built as `creator-match index` would (IVF above
200,000 creators). `--campaigns` new campaigns come from the simulator (real briefs, embedded during the run).
The match command then runs as a separate process, timed from start to finish, its peak resident memory read
from the kernel; nothing is cached between the steps it times.

With `--ray-creators` and `--ray-campaigns`, the same command runs on a smaller catalogue with `--engine local`
and with `--engine ray` (a local 2-CPU Ray, started by the command), side by side: time ratio and byte equality.
The last line printed is one JSON object of the named figures (`seconds`, `peak_rss_gib`, `ray_over_local`...).

    .venv/bin/python benchmarks/batch.py                 # 10,000 campaigns x 1,000,000 creators, then Ray vs local
    .venv/bin/python benchmarks/batch.py --quick         # 300 campaigns x 30,000 creators: minutes
    .venv/bin/python benchmarks/batch.py --work DIR --reuse --ray-creators 0 --with-candidates-out

`--with-candidates-out` runs the same match again with `--candidates-out` (every scored pair written too): its time and
peak memory beside the plain run's, and whether the matches are the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from features.environment import unset_defaults

os.environ.update(unset_defaults())

import faiss  # noqa: F401  (before torch)
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.embeddings import Embedder, creator_vectors, profile_keys
from matcher.batch import checkpoint_directories
from matcher.candidate_index import CandidateIndex
from simulation.world import simulate, write_table, write_world

__all__ = ["main", "scaled_catalogue"]

CLI = str(Path(sys.executable).parent / "creator-match")
# Issue #15's targets for 10,000 campaigns x 1,000,000 creators (the time is the run measured before that issue).
TARGET_SECONDS, TARGET_GIB = 337, 4


def scaled_catalogue(creators: pd.DataFrame, vectors: np.ndarray, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` creators: the originals, then replicas with new ids, jittered reach and noisy profile vectors."""
    rng = np.random.default_rng(seed)
    source = np.arange(n) % len(creators)
    replica = np.arange(n) // len(creators)
    frame = creators.iloc[source].reset_index(drop=True)
    frame["creator_id"] = [
        cid if r == 0 else f"{cid}-r{r}" for cid, r in zip(frame["creator_id"], replica, strict=True)
    ]
    jitter = np.where(replica > 0, rng.lognormal(0.0, 0.5, n), 1.0)
    frame["followers"] = np.round(frame["followers"].to_numpy(float) * jitter).astype(np.int64)
    views = pd.to_numeric(frame["avg_views"], errors="coerce").to_numpy(float) * jitter
    frame["avg_views"] = pd.array(np.where(np.isnan(views), np.nan, np.round(views)), dtype="Int64")
    noisy = vectors[source].copy()
    spread = np.where(replica > 0, 0.5, 0.0).astype(np.float32)[:, None]
    noisy += rng.standard_normal(noisy.shape, dtype=np.float32) * spread / np.float32(np.sqrt(vectors.shape[1]))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return frame, noisy


# Runs a command and prints its peak resident memory (KiB) last. A command started straight from this process
# inherits this process's high-water mark when it execs (Linux keeps the larger), so after an in-process index
# build of 1M vectors the match "peaked" at 5.20 GiB where its own peak was 4.43; started from this small
# launcher, it inherits the launcher's instead.
_PEAK_OF_COMMAND = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)"
)


def run_match(campaigns: Path, creators: Path, index: Path, out: Path, *extra: str) -> tuple[float, float]:
    """Runs `creator-match match` in a fresh process; returns (seconds, its peak resident memory in GiB)."""
    if stale := checkpoint_directories(out):
        # `match` resumes from an interrupted run's chunks: the time and memory would be of the rest only.
        raise SystemExit(f"{stale[0]} holds an interrupted run's scored chunks; remove it or use another --work")
    started = time.perf_counter()
    args = [CLI, "match", "--campaigns", str(campaigns), "--creators", str(creators), "--index", str(index)]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_COMMAND, *args, "--out", str(out), *extra], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"match failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return seconds, int(done.stdout.split()[-1]) / 2**20


def build_catalogue(
    creators: pd.DataFrame, n: int, embedder: Embedder, out: Path, seed: int, kind: str = "auto"
) -> tuple[Path, Path, float]:
    """Writes the scaled creators table and its index; returns their paths and the index build time."""
    frame, vectors = scaled_catalogue(creators, creator_vectors(embedder, creators), n, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_table(frame, out / "creators.parquet")
    started = time.perf_counter()
    # The keys of the texts the replicas copy: a match finds no profile edited, at the check's real cost, and keeps
    # the noisy vectors (an index without keys would be matched unchecked, with a warning that it cannot be).
    index = CandidateIndex.build(
        vectors,
        frame["creator_id"],
        embedder.model,
        kind=kind,
        progress=True,
        embedding_backend=embedder.backend,
        profile_keys=profile_keys(frame),
    )
    index.save(out / "index")
    return out / "creators.parquet", out / "index", time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--base-creators", type=int, default=20_000)
    parser.add_argument("--ray-creators", type=int, default=50_000, help="0 skips Ray vs local")
    parser.add_argument("--ray-campaigns", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary directory)")
    parser.add_argument("--quick", action="store_true", help="300 campaigns x 30,000 creators, Ray on 100")
    parser.add_argument("--reuse", action="store_true", help="with --work: keep its trained ranker and large index")
    parser.add_argument(
        "--with-candidates-out", action="store_true", help="then the same match with --candidates-out, side by side"
    )
    args = parser.parse_args()
    if args.quick:
        args.creators, args.campaigns, args.base_creators = 30_000, 300, 3_000
        args.ray_creators, args.ray_campaigns = 10_000, 100

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        embedder = Embedder(cache_dir=work / "embedding-cache")
        started = time.perf_counter()
        base = simulate(n_creators=args.base_creators, n_campaigns=400, n_new_campaigns=10, seed=args.seed)
        world = simulate(n_creators=300, n_campaigns=40, n_new_campaigns=args.campaigns, seed=args.seed + 1)
        if not (args.reuse and (work / "mlflow.db").exists()):
            write_world(base, work / "base")
            write_table(world.new_campaigns, work / "new_campaigns.parquet")
            from training.train import train

            train(work / "base", embedder=embedder)
        print(f"set-up (simulate, train on {args.base_creators:,} creators): {time.perf_counter() - started:.0f}s")

        if args.reuse and (work / "large" / "index").exists():
            creators, index, build = work / "large" / "creators.parquet", work / "large" / "index", float("nan")
        else:
            creators, index, build = build_catalogue(base.creators, args.creators, embedder, work / "large", args.seed)
        kind = CandidateIndex.load(index).meta["kind"]
        print(f"index of {args.creators:,} creators ({kind}): built in {build:.0f}s")
        seconds, gib = run_match(work / "new_campaigns.parquet", creators, index, work / "matches.parquet")
        matches = pd.read_parquet(work / "matches.parquet")
        print(
            f"match: {args.campaigns:,} campaigns x {args.creators:,} creators in {seconds:.0f}s "
            f"({args.campaigns / seconds:.1f} campaigns/s), peak memory {gib:.2f} GiB, "
            f"{len(matches):,} matches for {matches['campaign_id'].nunique():,} campaigns"
        )
        figures = {
            "campaigns": args.campaigns,
            "creators": args.creators,
            "index_kind": kind,
            "seconds": round(seconds, 1),
            "peak_rss_gib": round(gib, 3),
            "matches": len(matches),
        }
        scale = args.creators / 1_000_000 * args.campaigns / 10_000
        print(
            f"  vs target ({TARGET_SECONDS}s, {TARGET_GIB} GiB at 10,000 x 1M): time {seconds / TARGET_SECONDS:.2f} "
            f"of budget, memory {gib / TARGET_GIB:.2f} of budget"
            + ("" if scale == 1 else f" (this run is {scale:.3g}x that size)")
        )
        if scale == 1:
            figures |= {
                "seconds_vs_target": round(seconds / TARGET_SECONDS, 2),
                "peak_rss_gib_vs_target": round(gib / TARGET_GIB, 2),
            }

        if args.with_candidates_out:
            table = work / "candidates.parquet"
            out = work / "matches_with_candidates.parquet"
            with_seconds, with_gib = run_match(
                work / "new_campaigns.parquet", creators, index, out, "--candidates-out", str(table)
            )
            rows = pq.ParquetFile(table).metadata.num_rows
            same = out.read_bytes() == (work / "matches.parquet").read_bytes()
            print(
                f"with --candidates-out: {with_seconds:.0f}s ({with_seconds / seconds:.2f}x), peak {with_gib:.2f} GiB "
                f"(+{with_gib - gib:.2f}), {rows:,} candidate rows, {table.stat().st_size / 2**20:.1f} MB; "
                f"the same matches: {same}"
            )
            figures |= {
                "candidates_seconds": round(with_seconds, 1),
                "candidates_over_plain_seconds": round(with_seconds / seconds, 3),
                "candidates_peak_rss_gib": round(with_gib, 3),
                "candidates_rows": rows,
                "candidates_same_matches": same,
            }

        if args.ray_creators:
            creators, index, _ = build_catalogue(base.creators, args.ray_creators, embedder, work / "ray", args.seed)
            campaigns = work / "ray_campaigns.parquet"
            write_table(world.new_campaigns.head(args.ray_campaigns), campaigns)
            chunk = ["--chunk-size", str(max(1, args.ray_campaigns // 8))]
            local, _ = run_match(campaigns, creators, index, work / "local.parquet", *chunk)
            ray, _ = run_match(campaigns, creators, index, work / "ray.parquet", *chunk, "--engine", "ray")
            same = (work / "local.parquet").read_bytes() == (work / "ray.parquet").read_bytes()
            print(
                f"ray vs local: {args.ray_campaigns:,} campaigns x {args.ray_creators:,} creators, local {local:.0f}s, "
                f"ray {ray:.0f}s (2 actors on this 2-core machine, start-up included): ray/local {ray / local:.2f}; "
                f"identical bytes: {same}"
            )
            figures |= {"ray_seconds": round(ray, 1), "ray_local_seconds": round(local, 1)}
            figures |= {"ray_over_local": round(ray / local, 3), "ray_identical_bytes": same}
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
