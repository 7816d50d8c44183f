"""Reading a large creators table: column-wise validation against the row model's row-by-row, time and memory.

A world of `--base-creators` simulated creators is replicated with new ids and jittered reach into a Parquet
table of `--creators` rows (benchmarks/batch.py's catalogue, without its vectors). `read_table(path, "creators")`
then runs in a fresh process per measurement, alternating the two ways, `--rounds` times each: "rowwise" is the
code at `--baseline` (a checkout of the code before column-wise validation) or, without it, this code with the
creators table validated row by row; "columnar" is this code. Each process reports its time, its peak resident
memory (the kernel's high-water mark), its resident memory after the read, and a digest of the frame (columns,
dtypes, every value's repr) and rejects, which must agree between the two.
The last line printed is one JSON object of the named figures (medians over the rounds).

    .venv/bin/python benchmarks/read_creators.py --baseline /path/to/checkout      # 1,000,000 creators, 3 rounds
    .venv/bin/python benchmarks/read_creators.py --creators 100000 --rounds 1      # a minute
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from batch import scaled_catalogue

from simulation.world import simulate, write_table

__all__ = ["main"]

HERE = Path(__file__).resolve().parent.parent

# One measurement, in a process of its own: argv is the table's path and the way to read it.
_MEASURE = """
import dataclasses, hashlib, json, resource, sys, time
from features import tables
from features.memory import release_free_memory
path, way = sys.argv[1:3]
if way == "rowwise" and hasattr(tables.TableSpec, "columnar"):
    tables.TABLES["creators"] = dataclasses.replace(tables.TABLES["creators"], columnar=False)
started = time.perf_counter()
table = tables.read_table(path, "creators")
seconds = time.perf_counter() - started
release_free_memory()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
with open("/proc/self/statm") as statm:
    resident = int(statm.read().split()[1]) * resource.getpagesize() / 2**30
digest = hashlib.sha256()
frame = table.frame
digest.update(repr([(name, str(frame[name].dtype)) for name in frame.columns]).encode())
for name in frame.columns:
    for value in frame[name].tolist():
        digest.update(repr((type(value).__name__, value)).encode())
digest.update(repr(table.rejects).encode())
print(json.dumps({"seconds": seconds, "peak_rss_gib": peak, "rss_after_gib": resident, "rows": len(frame),
                  "rejects": len(table.rejects),
                  "rejected_rows": len({reject.row for reject in table.rejects}), "digest": digest.hexdigest()}))
"""


def write_creators(n: int, base_creators: int, seed: int, path: Path) -> None:
    """Writes `n` creators replicated from a simulated world of `base_creators` as one Parquet table."""
    world = simulate(n_creators=base_creators, n_campaigns=40, n_new_campaigns=2, seed=seed)
    # The catalogue's vectors are not read here: one dimension keeps them small.
    frame, _ = scaled_catalogue(world.creators, np.ones((len(world.creators), 1), dtype=np.float32), n, seed)
    write_table(frame, path)


def measure(path: Path, way: str, code: Path) -> dict:
    """One `read_table` of `path` in a fresh process running the code at `code`."""
    env = os.environ | {"PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), way], capture_output=True, text=True, env=env, cwd=code
    )
    if done.returncode != 0:
        raise SystemExit(f"{way} read failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--base-creators", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", type=Path, help="a checkout of the code before (default: this code, row-wise)")
    parser.add_argument("--table", type=Path, help="read this creators file instead of writing one")
    args = parser.parse_args()
    code = {"rowwise": (args.baseline or HERE).resolve(), "columnar": HERE}

    with tempfile.TemporaryDirectory() as tmp:
        path = args.table or Path(tmp) / "creators.parquet"
        if args.table is None:
            write_creators(args.creators, args.base_creators, args.seed, path)
        runs: dict[str, list[dict]] = {way: [] for way in code}
        for round_ in range(args.rounds):
            for way in code:
                run = measure(path, way, code[way])
                runs[way].append(run)
                print(
                    f"round {round_ + 1} {way:8}: {run['seconds']:.1f}s, peak {run['peak_rss_gib']:.3f} GiB, "
                    f"resident after {run['rss_after_gib']:.3f} GiB, {run['rows']:,} rows, {run['rejects']} rejects",
                    flush=True,
                )
    digests = {run["digest"] for way in runs for run in runs[way]}

    def median(way: str, key: str) -> float:
        return round(statistics.median(run[key] for run in runs[way]), 3)

    figures = {
        "creators": runs["columnar"][0]["rows"] + runs["columnar"][0]["rejected_rows"],
        "rounds": args.rounds,
        "baseline": "checkout" if args.baseline else "this code, row-wise",
        "read_seconds_rowwise": median("rowwise", "seconds"),
        "read_seconds_columnar": median("columnar", "seconds"),
        "ratio": round(median("rowwise", "seconds") / median("columnar", "seconds"), 2),
        "peak_rss_gib_rowwise": median("rowwise", "peak_rss_gib"),
        "peak_rss_gib_columnar": median("columnar", "peak_rss_gib"),
        "rss_after_gib_rowwise": median("rowwise", "rss_after_gib"),
        "rss_after_gib_columnar": median("columnar", "rss_after_gib"),
        "identical_frames_and_rejects": len(digests) == 1,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
