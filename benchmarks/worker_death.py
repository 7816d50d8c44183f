"""`creator-match serve --workers 2` when one of its worker processes is killed: how long requests get 503.

A ranker is trained on a simulated world of `--creators` creators (400, the size of the trial that measured a 24 s
outage) and its creators indexed; the service then runs as its own process on a free loopback port with
`--workers 2`. One client posts a campaign back to back (`--pause` seconds apart); a worker process is killed with
SIGKILL, and the client goes on until /readyz says both serve again, a new process in place of the dead one. That
is done `--kills` times, each time the worker whose pid sorts first, then second, in turn (a replacement may be
the one killed next). Each kill's line: how many requests were answered 503,
the seconds from the kill to the last of them, and to both serving again.

    .venv/bin/python benchmarks/worker_death.py --work /tmp/death                 # this checkout's service
    PYTHONPATH=../other-checkout .venv/bin/python benchmarks/worker_death.py --work /tmp/death --reuse
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from features.environment import unset_defaults

os.environ.update(unset_defaults())

import pandas as pd
from batch import CLI
from service import Client, campaign_records, start_service

from features.embeddings import CACHE_DIR_ENV, Embedder
from simulation.world import simulate, write_world

__all__ = ["main"]


def worker_processes(pid: int) -> list[int]:
    """The worker processes the service `pid` runs (not multiprocessing's resource tracker)."""
    children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def readiness(port: int) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/readyz")
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def one_kill(process, port: int, victim: int, record: dict, pause: float) -> dict:
    """Kills worker `victim` and posts `record` until both workers serve again: the kill's figures."""
    client, failed = Client(port), []
    os.kill(victim, signal.SIGKILL)
    killed = time.perf_counter()
    while True:
        status, reply, _ = client.post("/v1/match", record)
        since = time.perf_counter() - killed
        if status == 503:
            failed.append(since)
        elif status != 200:
            raise SystemExit(f"/v1/match answered {status}: {str(reply)[:300]}")
        ready, body = readiness(port)
        if ready == 200 and body["workers"]["serving"] == 2 and victim not in worker_processes(process.pid):
            break
        if since > 600:
            raise SystemExit("both workers did not serve again within 10 minutes")
        time.sleep(pause)
    return {
        "answered_503": len(failed),
        "seconds_of_503": round(failed[-1] if failed else 0.0, 1),
        "seconds_to_both": round(since, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=400)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between one answer and the next request")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true", help="with --work: keep its world, ranker and index")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        os.environ[CACHE_DIR_ENV] = str(work / "embedding-cache")
        world, index = work / "world", work / "index"
        if not (args.reuse and index.exists()):
            from training.train import train

            write_world(simulate(n_creators=args.creators, n_campaigns=60, n_new_campaigns=12, seed=args.seed), world)
            train(world, embedder=Embedder())
            subprocess.run(
                [CLI, "index", "--creators", str(world / "creators.parquet"), "--out", str(index)], check=True
            )
        record = campaign_records(pd.read_parquet(world / "new_campaigns.parquet"))[0]
        process, port, ready = start_service(world / "creators.parquet", index, work, 2)
        try:
            print(f"--workers 2: service ready after {ready:.0f}s")
            kills = []
            for kill in range(args.kills):
                victim = sorted(worker_processes(process.pid))[kill % 2]
                kills.append(one_kill(process, port, victim, record, args.pause))
                print(f"kill {kill + 1} (pid {victim}): {json.dumps(kills[-1])}")
        finally:
            process.terminate()
            process.wait(timeout=60)
        deaths = [line for line in (work / "serve.log").read_text().splitlines() if "worker process died" in line]
        print("\n".join(deaths))
        print(json.dumps({"creators": args.creators, "kills": kills}))


if __name__ == "__main__":
    main()
