"""Loading a candidate index while `creator-match index` replaces it: how many loads mix two builds.

Two flat indexes of `--creators` creators hold the same ids and vectors in opposite row orders, so that a load
of one build's vectors with the other's ids agrees in count and is caught only by its rows: every loaded row's
vector must be its id's. A writer process saves them in turn at one directory with `CandidateIndex.save` (the
writer `creator-match index` uses: stage, swap, delete the old build), nonstop, while a reader process loads
that directory in a loop for `--seconds`. Both run the code at `--code` (default: this checkout), so the figure
before a change is this script run against a checkout of the code before it.
The last line printed is one JSON object: loads, mixed (a row on another's vector), refused (a load that raised),
and, should the reader's process die, `aborted`: the first line it wrote to standard error (an Arrow thread pool
once aborted a reader at exit, apache/arrow#50482), the figures then being those it printed last.

    .venv/bin/python benchmarks/index_swap.py --seconds 40
    .venv/bin/python benchmarks/index_swap.py --seconds 40 --code /path/to/checkout/before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

HERE = Path(__file__).resolve().parent.parent

# argv: the folder holding `forward` and `reversed` saved builds, the target directory.
_WRITER = """
import sys
from matcher.candidate_index import CandidateIndex
builds = [CandidateIndex.load(f"{sys.argv[1]}/{name}") for name in ("forward", "reversed")]
print("saving", flush=True)
while True:
    for build in builds:
        build.save(sys.argv[2])
"""

# argv: the folder holding `forward` (each id's own vector), the target directory, the seconds to load for.
_READER = """
import json, sys, time
import numpy as np
from matcher.candidate_index import CandidateIndex
truth = CandidateIndex.load(f"{sys.argv[1]}/forward")
own = dict(zip(truth.creator_ids.tolist(), truth.vectors()))
loads = mixed = refused = 0
stop = time.monotonic() + float(sys.argv[3])
while time.monotonic() < stop:
    loads += 1
    try:
        loaded = CandidateIndex.load(sys.argv[2])
    except Exception:
        refused += 1
        continue
    rows = loaded.vectors()
    mixed += any(not np.array_equal(rows[i], own[c]) for i, c in enumerate(loaded.creator_ids.tolist()))
    print(json.dumps({"loads": loads, "mixed": mixed, "refused": refused}), flush=True)
"""


def main(argv: list[str] | None = None) -> dict:
    """Runs the race and prints its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--code", type=Path, default=HERE, help="the checkout whose code writes and loads")
    args = parser.parse_args(argv)
    code = args.code.resolve()
    env = {**os.environ, "PYTHONPATH": str(code)}
    with tempfile.TemporaryDirectory(prefix="index-swap-") as scratch:
        _save_builds(Path(scratch), args.creators, code, env)
        target = str(Path(scratch) / "index")
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, scratch, target], cwd=code, env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            if writer.stdout.readline().strip() != "saving":
                raise RuntimeError("the writer did not start")
            read = subprocess.run(
                [sys.executable, "-X", "faulthandler", "-c", _READER, scratch, target, str(args.seconds)],
                cwd=code,  # `-c` puts the working directory first on the path: the code measured is --code's
                env=env,
                capture_output=True,
                text=True,
            )
        finally:
            writer.kill()
            writer.wait()
    figures = {"creators": args.creators, "seconds": args.seconds, **json.loads(read.stdout.splitlines()[-1])}
    if read.returncode:
        figures["aborted"] = (read.stderr.strip().splitlines() or [f"exit {read.returncode}"])[0]
        print(read.stderr, file=sys.stderr)
    print(json.dumps(figures))
    return figures


def _save_builds(scratch: Path, creators: int, code: Path, env: dict) -> None:
    """The two builds, saved by the code under test (an older checkout saves in its own format)."""
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from matcher.candidate_index import CandidateIndex\n"
        "n = int(sys.argv[2])\n"
        "rng = np.random.default_rng(0)\n"
        "vectors = rng.normal(size=(n, 32)).astype(np.float32)\n"
        "vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)\n"
        "ids = np.array([f'cr{i:06d}' for i in range(n)], dtype=object)\n"
        "CandidateIndex.build(vectors, ids, 'all-MiniLM-L6-v2').save(f'{sys.argv[1]}/forward')\n"
        "CandidateIndex.build(vectors[::-1].copy(), ids[::-1].copy(), 'all-MiniLM-L6-v2')"
        ".save(f'{sys.argv[1]}/reversed')\n"
        "CandidateIndex.build(vectors, ids, 'all-MiniLM-L6-v2').save(f'{sys.argv[1]}/index')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(scratch), str(creators)], cwd=code, env=env, check=True)


if __name__ == "__main__":
    main()
