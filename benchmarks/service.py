"""`creator-match serve` under a bounded load: match and lookalike latency at 100,000 creators, and its slates
against the command line's.

A ranker is trained on a simulated world of `--base-creators` creators; the catalogue of `--creators` rows is
built as benchmarks/batch.py builds it (replicas with jittered reach and their originals' real MiniLM vectors plus
noise). The service then runs as its own process on a free loopback port and is called over HTTP:

- the same slates: one POST /v1/match of `--same-campaigns` campaigns against `creator-match match` on the same
  rows, model and index (equal frames after the JSON round trip);
- match load: `--requests` POST /v1/match of one campaign each from `--clients` concurrent clients on keep-alive
  connections (a fixed number of requests; it stops by itself), after `--warmup` requests not counted. Every
  request is a campaign the service has not seen, so no brief comes out of its embedding cache;
- lookalikes: `--similar-requests` POST /v1/similar (two seed creators, k=20), one client.

All of it runs once per `--workers` count (`serve --workers N`) and per `--index-kinds` kind of index over the same
vectors (`auto`: exact flat search up to 200,000 creators; `ivf`: the inverted file), side by side; the named figures
of the JSON line are the first kind's at the last count, with the others' beside them (`match_p50_ms_workers_1`,
`match_p50_ms_index_ivf`, ...).

    .venv/bin/python benchmarks/service.py            # 100,000 creators, 2,000 match requests at 4 clients
    .venv/bin/python benchmarks/service.py --quick    # 10,000 creators, 200 requests: a few minutes
    .venv/bin/python benchmarks/service.py --workers 2 --index-kinds auto,ivf   # exact and IVF search side by side
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from features.environment import unset_defaults

os.environ.update(unset_defaults())

import faiss  # noqa: F401  (before torch)
import numpy as np
import pandas as pd
from batch import CLI, build_catalogue

from features.embeddings import Embedder
from matcher.api import MATCH_COLUMNS
from simulation.world import simulate, write_table, write_world

__all__ = ["main"]

TARGETS = {"match_p50_ms": 150.0, "match_p99_ms": 500.0, "match_errors": 0, "similar_p50_ms": 50.0}


def campaign_records(frame: pd.DataFrame) -> list[dict]:
    """Campaign rows as a campaign tool sends them: JSON objects with ISO dates."""
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    for record in records:
        record["start_date"], record["end_date"] = record["start_date"][:10], record["end_date"][:10]
    return records


class Client:
    """One keep-alive HTTP connection to the service."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def post(self, path: str, body: object) -> tuple[int, dict, float]:
        """(status, reply, seconds) of one POST."""
        data = json.dumps(body).encode()
        started = time.perf_counter()
        self.connection.request("POST", path, data, {"Content-Type": "application/json"})
        reply = self.connection.getresponse()
        payload = reply.read()
        return reply.status, json.loads(payload), time.perf_counter() - started


def start_service(creators: Path, index: Path, work: Path, workers: int) -> tuple[subprocess.Popen, int, float]:
    """Starts `creator-match serve --workers N`; returns the process, its port and the seconds until /readyz said
    200."""
    with socket.socket() as probe:  # a port free on the loopback interface now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(work / "serve.log", "w")  # noqa: SIM115  (open while the service runs)
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            CLI,
            "serve",
            "--creators",
            str(creators),
            "--index",
            str(index),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 1800
    while True:
        if process.poll() is not None:
            raise SystemExit(f"serve exited: {(work / 'serve.log').read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise SystemExit("serve was not ready within 30 minutes")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process, port, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)


def same_slates(port: int, campaigns: pd.DataFrame, creators: Path, index: Path, work: Path) -> bool:
    """One POST of the campaigns against `creator-match match` on the same rows: equal matches tables."""
    path = work / "same_campaigns.parquet"
    write_table(campaigns, path)
    out = work / "cli_matches.parquet"
    args = [CLI, "match", "--campaigns", str(path), "--creators", str(creators), "--index", str(index)]
    done = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"match failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    status, reply, _ = Client(port).post("/v1/match", campaign_records(campaigns))
    if status != 200:
        raise SystemExit(f"/v1/match answered {status}: {str(reply)[:300]}")
    served = pd.DataFrame(reply["matches"], columns=MATCH_COLUMNS)
    try:
        pd.testing.assert_frame_equal(served, pd.read_parquet(out), check_dtype=False)
    except AssertionError as difference:
        print(f"slates differ from the CLI's: {str(difference)[:500]}")
        return False
    return True


def load(port: int, records: list[dict], requests: int, clients: int) -> tuple[list[float], int]:
    """`requests` single-campaign POSTs shared by `clients` threads; returns latencies and failed requests."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(number: int) -> None:
        client = Client(port)
        for i in range(number, requests, clients):
            try:
                status, _, seconds = client.post("/v1/match", records[i % len(records)])
            except (OSError, http.client.HTTPException, ValueError):
                status, seconds, client = 0, float("nan"), Client(port)
            with lock:
                latencies.append(seconds)
                errors[0] += status != 200

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [s for s in latencies if s == s], errors[0]


def percentile_ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


def serve_and_measure(creators: Path, index: Path, work: Path, base, workers: int, args) -> dict:
    """The service on `workers` processes: same slates as the CLI, the match load and lookalikes; its figures."""
    process, port, ready = start_service(creators, index, work, workers)
    try:
        print(f"--workers {workers}, index {index.name}: service ready after {ready:.0f}s")
        same = same_slates(port, base.new_campaigns.head(args.same_campaigns), creators, index, work)
        print(f"same slates as `creator-match match` for {args.same_campaigns} campaigns: {same}")
        records = campaign_records(base.new_campaigns)
        load(port, records[: args.warmup], args.warmup, 1)
        started = time.perf_counter()
        latencies, errors = load(port, records[args.warmup :], args.requests, args.clients)
        seconds = time.perf_counter() - started
        print(
            f"/v1/match: {args.requests:,} single-campaign requests at {args.clients} clients in {seconds:.0f}s "
            f"({args.requests / seconds:.1f}/s): p50 {percentile_ms(latencies, 50)} ms, "
            f"p99 {percentile_ms(latencies, 99)} ms, errors {errors} (load average {os.getloadavg()[0]:.1f})"
        )
        rng = np.random.default_rng(args.seed)
        ids = pd.read_parquet(creators, columns=["creator_id"])["creator_id"].to_numpy()
        client, similar = Client(port), []
        for _ in range(args.similar_requests):
            seeds = rng.choice(ids, size=2, replace=False).tolist()
            status, reply, took = client.post("/v1/similar", {"creator_ids": seeds, "k": 20})
            if status != 200:
                raise SystemExit(f"/v1/similar answered {status}: {str(reply)[:300]}")
            similar.append(took)
        print(
            f"/v1/similar: {args.similar_requests} requests (2 seeds, k=20), one client: "
            f"p50 {percentile_ms(similar, 50)} ms, p99 {percentile_ms(similar, 99)} ms"
        )
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        "creators": args.creators,
        "workers": workers,
        "match_requests": args.requests,
        "clients": args.clients,
        "match_p50_ms": percentile_ms(latencies, 50),
        "match_p99_ms": percentile_ms(latencies, 99),
        "match_mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "match_errors": errors,
        "match_per_second": round(args.requests / seconds, 1),
        "similar_p50_ms": percentile_ms(similar, 50),
        "similar_p99_ms": percentile_ms(similar, 99),
        "same_slates_as_cli": same,
        "ready_seconds": round(ready, 1),
    }


def index_of_kind(index: Path, kind: str) -> Path:
    """The catalogue's index as `kind` (`auto`: the one built with it), built from the same vectors if missing."""
    if kind == "auto":
        return index
    out = index.with_name(f"{index.name}-{kind}")
    if not out.exists():
        from matcher.candidate_index import CandidateIndex

        built = CandidateIndex.load(index)
        CandidateIndex.build(
            built.vectors(),
            built.creator_ids,
            built.meta["embedding_model"],
            kind=kind,
            embedding_backend=built.meta["embedding_backend"],
            profile_keys=built.profile_keys,
        ).save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--base-creators", type=int, default=3_000)
    parser.add_argument(
        "--campaigns", type=int, help="distinct campaigns the requests cycle through (default: one each)"
    )
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure, side by side")
    parser.add_argument("--index-kinds", default="auto", help="kinds of index to measure (auto, flat, ivf, hnsw)")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--similar-requests", type=int, default=200)
    parser.add_argument("--same-campaigns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary directory)")
    parser.add_argument("--quick", action="store_true", help="10,000 creators, 200 requests")
    parser.add_argument("--reuse", action="store_true", help="with --work: keep its trained ranker and index")
    args = parser.parse_args()
    if args.quick:
        args.creators, args.requests, args.similar_requests = 10_000, 200, 50
    args.campaigns = args.campaigns or args.warmup + args.requests
    counts = [int(count) for count in args.workers.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        embedder = Embedder(cache_dir=work / "embedding-cache")
        started = time.perf_counter()
        base = simulate(n_creators=args.base_creators, n_campaigns=400, n_new_campaigns=args.campaigns, seed=args.seed)
        creators, index = work / "large" / "creators.parquet", work / "large" / "index"
        if args.reuse and index.exists():
            print(f"set-up: reusing the ranker and the index of {args.creators:,} creators in {work}")
        else:
            write_world(base, work / "base")
            from training.train import train

            train(work / "base", embedder=embedder)
            creators, index, build = build_catalogue(base.creators, args.creators, embedder, work / "large", args.seed)
            print(
                f"set-up: trained on {args.base_creators:,} creators, index of {args.creators:,} in {build:.0f}s "
                f"({time.perf_counter() - started:.0f}s in all)"
            )

        kinds = args.index_kinds.split(",")
        indexes = {kind: index_of_kind(index, kind) for kind in kinds}
        runs = {
            kind: [serve_and_measure(creators, indexes[kind], work, base, count, args) for count in counts]
            for kind in kinds
        }
        figures = runs[kinds[0]][-1] | {"index_kind": kinds[0]}
        for run in runs[kinds[0]][:-1]:
            for name in ("match_p50_ms", "match_p99_ms", "match_per_second", "same_slates_as_cli"):
                figures[f"{name}_workers_{run['workers']}"] = run[name]
        if len(counts) > 1:
            figures[f"match_p50_workers_{counts[0]}_over_{counts[-1]}"] = round(
                runs[kinds[0]][0]["match_p50_ms"] / runs[kinds[0]][-1]["match_p50_ms"], 2
            )
        for kind in kinds[1:]:
            for name in ("match_p50_ms", "match_p99_ms", "match_per_second", "similar_p50_ms", "same_slates_as_cli"):
                figures[f"{name}_index_{kind}"] = runs[kind][-1][name]
        for name, target in TARGETS.items():
            figures[f"{name}_vs_target"] = round(figures[name] / target, 2) if target else figures[name]
        print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
