"""`creator-match serve` as a real process on a loopback port, called over HTTP; always stopped."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from matcher.api import MATCH_COLUMNS
from matcher.service_workers import _alive
from tests.commands import CLI, free_port, run_in_process, stop
from tests.matcher.test_model_holder import versions_with_own_files
from tests.matcher.test_service_contract import (
    assert_declared,
    documented_example,
    exchange,
    health_status_for_host,
)

pytestmark = pytest.mark.slow
MODEL_NAME = "svc-ranker"  # its own registered model, so moving its alias leaves creator-ranker's champion alone
MAX_BODY = 200_000


def call(url: str, body: object | None = None, raw: bytes | None = None) -> tuple[int, object]:
    """GET (no body) or POST JSON; returns (status, parsed JSON reply)."""
    status, _, reply = exchange(url, body, raw)
    return status, reply


def campaign_records(frame: pd.DataFrame) -> list[dict]:
    """Campaign rows as a campaign tool would send them: JSON objects with ISO dates."""
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    for record in records:
        record["start_date"], record["end_date"] = record["start_date"][:10], record["end_date"][:10]
    return records


@pytest.fixture(scope="module")
def index_dir(world_index):
    """The session's index of the world (tests/conftest.py): the service and the command read the same one."""
    return world_index


@pytest.fixture(scope="module")
def versions(trained, tracking_uri) -> list[str]:
    """Two registered versions of MODEL_NAME (the trained ranker twice); `champion` on the first."""
    source = MlflowClient().get_model_version(trained.model_name, trained.version).source
    registered = [str(mlflow.register_model(source, MODEL_NAME).version) for _ in range(2)]
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", registered[0])
    return registered


@pytest.fixture(scope="module")
def service_log(tmp_path_factory) -> Path:
    """Where the service's standard output and error go."""
    return tmp_path_factory.mktemp("service-log") / "serve.log"


@dataclass(frozen=True)
class Started:
    """The module's single-process service, as it started (`service_started`).

    Args:
        url: where it answers.
        seen: the /readyz statuses seen while it loaded.
        line: its "serving on" line.
        health_at_once: /healthz's answer the moment that line was written.
    """

    url: str
    seen: list[int]
    line: str
    health_at_once: tuple[int, object]


@pytest.fixture(scope="module")
def service_started(world_dir, index_dir, versions, service_log) -> Iterator[Started]:
    """The service on the port the system chose (`--port 0`), as it started; once the module is done, stopped by
    SIGTERM and checked to end as a service manager expects (the port-0 test's second half).
    One process for the module: each test asks it something of its own, and the one that moves `champion` proves it.
    """
    log = service_log
    args = ["serve", "--creators", str(world_dir / "creators.parquet"), "--index", str(index_dir)]
    args += ["--model", f"models:/{MODEL_NAME}@champion", "--port", "0", "--poll-seconds", "1"]
    with open(log, "w") as sink:
        process = subprocess.Popen([CLI, *args, "--max-body-bytes", str(MAX_BODY)], stdout=sink, stderr=sink)
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while "serving on" not in log.read_text():
            assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no 'serving on' line within 300 s: {log.read_text()[-2000:]}"
            time.sleep(0.05)
        line = next(line for line in log.read_text().splitlines() if "serving on" in line)
        url = "http://127.0.0.1:" + line.split("serving on http://127.0.0.1:", 1)[1].split(" ", 1)[0]
        health_at_once = call(f"{url}/healthz")
        while not seen or seen[-1] != 200:
            assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"not ready within 300 s: {log.read_text()[-2000:]}"
            with contextlib.suppress(OSError):
                seen.append(call(f"{url}/readyz")[0])
            time.sleep(0.25)
        yield Started(url, seen, line, health_at_once)
    finally:
        stop(process)
    # Stopped with SIGTERM while serving: uvicorn's graceful shutdown, then the process ends by the signal itself, a
    # clean stop to a service manager (systemd reads exit status 143 as a failure).
    assert process.returncode == -signal.SIGTERM, log.read_text()[-2000:]
    assert "stopped by SIGTERM" not in log.read_text()


@pytest.fixture(scope="module")
def service(service_started) -> tuple[str, list[int]]:
    """The module's single-process service: its URL and the /readyz statuses seen while it loaded."""
    return service_started.url, service_started.seen


def test_health_readiness_and_openapi(service):
    url, seen = service
    assert call(f"{url}/healthz") == (200, {"status": "ok"})
    assert 503 in seen, "readyz answered 503 while the model and index loaded"
    status, ready = call(f"{url}/readyz")
    assert status == 200 and ready["model_version"] == f"{MODEL_NAME}/1" and ready["creators"] == 400
    _, schema = call(f"{url}/openapi.json")
    assert {"/v1/match", "/v1/similar", "/healthz", "/readyz"} <= set(schema["paths"])
    assert "commission_rate" in schema["components"]["schemas"]["CampaignRow"]["properties"]
    with urllib.request.urlopen(f"{url}/docs", timeout=30) as docs:
        assert docs.status == 200 and b"swagger" in docs.read().lower()


def test_answers_of_a_loaded_matcher_are_what_openapi_declares(service, world_dir):
    """200s of /v1/match (a list, and docs/service.md's example), /v1/similar and /readyz against /openapi.json;
    the refusals are checked in test_service_contract.py."""
    url, _ = service
    openapi = call(f"{url}/openapi.json")[1]
    records = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))
    example, _ = documented_example()
    for body in (records, example):
        status, headers, reply = exchange(f"{url}/v1/match", body)
        assert status == 200 and reply["matches"], reply
        assert_declared(openapi, "/v1/match", "post", status, headers, reply)
    assert {match["campaign_id"] for match in reply["matches"]} == {example["campaign_id"]}
    status, headers, reply = exchange(f"{url}/v1/similar", {"creator_ids": [reply["matches"][0]["creator_id"]]})
    assert status == 200 and reply["lookalikes"], reply
    assert_declared(openapi, "/v1/similar", "post", status, headers, reply)
    status, headers, reply = exchange(f"{url}/readyz")
    assert status == 200
    assert_declared(openapi, "/readyz", "get", status, headers, reply)


def test_same_slates_as_the_cli_and_the_same_reasons_for_a_bad_row(service, world_dir, index_dir, tmp_path):
    url, _ = service
    records = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))
    bad = dict(records[0], campaign_id="bad-one", commission_rate=1.7, asins=["not-an-asin"])
    campaigns = tmp_path / "campaigns.jsonl"
    campaigns.write_text("".join(json.dumps(record) + "\n" for record in [*records, bad]))
    out = tmp_path / "matches.parquet"
    # The command's own `main` in this process: what it writes is the comparison, not how a process exits.
    done = run_in_process(
        *("match", "--campaigns", str(campaigns), "--creators", str(world_dir / "creators.parquet")),
        *("--index", str(index_dir), "--model", f"models:/{MODEL_NAME}@champion", "--out", str(out)),
    )
    assert done.returncode == 2, done.stderr
    cli_reasons = [line for line in done.stderr.splitlines() if line.startswith("campaigns row")]

    status, reply = call(f"{url}/v1/match", [*records, bad])
    assert status == 422
    assert [problem["message"] for problem in reply["detail"]] == cli_reasons
    assert {problem["column"] for problem in reply["detail"]} == {"commission_rate", "asins"}

    status, reply = call(f"{url}/v1/match", records)
    assert status == 200, reply
    served = pd.DataFrame(reply["matches"], columns=MATCH_COLUMNS)
    pd.testing.assert_frame_equal(served, pd.read_parquet(out), check_dtype=False)
    assert [s["campaign_id"] for s in reply["summaries"]] == [r["campaign_id"] for r in records]

    status, one = call(f"{url}/v1/match", records[0])
    assert (
        status == 200 and one["matches"] and {m["campaign_id"] for m in one["matches"]} == {records[0]["campaign_id"]}
    )


def test_a_misspelt_optional_field_is_said_back_and_the_campaign_is_matched_with_its_default(
    service, world_dir, creators
):
    """Fields the contract does not name are ignored (a campaign tool may send its own), so a misspelt optional one
    is too; the reply says so instead of leaving the client to notice a product type it did not ask for."""
    url, _ = service
    record = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))[0]
    record.pop("product_type", None)
    status, reply = call(f"{url}/v1/match", dict(record, product_typ="non_standard", tool_reference="Q3-17"))
    assert status == 200, reply
    assert reply["notes"] == [
        f"campaign {record['campaign_id']}: field 'product_typ' is not in the campaigns table and was ignored; did you "
        "mean product_type?"
    ]
    assert reply["summaries"][0]["product_type_reason"] != "declared by the seller"
    status, reply = call(f"{url}/v1/match", dict(record, product_type="non_standard", tool_reference="Q3-17"))
    assert status == 200 and reply["notes"] == [], reply
    assert reply["summaries"][0]["product_type_reason"] == "declared by the seller"
    # Beside the right field, and a marketplace nobody states an audience in: the command line warns of both.
    status, reply = call(
        f"{url}/v1/match", dict(record, product_type="auto", product_typ="standard", marketplaces=["GB"])
    )
    assert status == 200, reply
    silent = int(creators["audience_marketplaces"].map(lambda shares: not shares).sum())
    assert reply["notes"][:2] == [
        f"campaign {record['campaign_id']}: field 'product_typ' is not in the campaigns table and was ignored; did you "
        "mean product_type?",
        f"marketplace GB of campaign {record['campaign_id']}: no creator states an audience there, so every creator "
        "who states an audience split has none of it in its marketplaces, under the minimum market share (5%), and "
        f"is left out: only creators who state no split ({silent} of the {len(creators)}) can be proposed (GB is not "
        "one of the contract's marketplace codes, US CA MX UK DE FR IT ES JP AU; did you mean UK?)",
    ]
    # And that the ranker learned no price there (tests/matcher/test_matcher.py holds the line's wording).
    assert len(reply["notes"]) == 3
    assert reply["notes"][2].startswith(
        f"marketplace GB of campaign {record['campaign_id']}: the ranker learned from fewer than 5 campaigns sold there"
    )


def test_serve_on_loopback_answers_only_the_loopback_names(service):
    """Bound to 127.0.0.1 by default, `serve` answers the names that reach it there, not a rebound domain's."""
    url, _ = service
    assert health_status_for_host(url, "rebind.attacker.example") == 400
    assert [health_status_for_host(url, name) for name in ("127.0.0.1", "localhost", "[::1]")] == [200, 200, 200]


def test_field_names_with_spaces_around_them_are_read_as_the_command_line_reads_a_header(service, world_dir):
    """`"product_type "` was ignored with a note, the campaign matched as `auto`, where `creator-match match` reads
    a file's `product_type ` column as product_type."""
    url, _ = service
    record = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))[0] | {"product_type": "standard"}
    spaced = {(f" {key} " if key in ("product_type", "budget") else key): value for key, value in record.items()}
    status, plain = call(f"{url}/v1/match", record)
    assert status == 200, plain
    status, reply = call(f"{url}/v1/match", spaced)
    assert status == 200, reply
    assert reply == plain and reply["notes"] == []
    assert reply["summaries"][0]["product_type_reason"] == "declared by the seller"


def test_every_note_of_a_list_names_the_campaigns_that_sent_the_field(service, world_dir):
    """A list's notes about ignored fields began "request: field 'in_stok' ..." with no campaign named, while its
    marketplace notes named theirs; each now names the campaigns that sent the field. A misspelt required field
    beside the right one (`marketplace` beside `marketplaces`) is noted as the command line notes it."""
    url, _ = service
    first, second = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))[:2]
    status, reply = call(f"{url}/v1/match", [dict(first, in_stok=False), dict(second, in_stok=False, marketplace="UK")])
    assert status == 200, reply
    assert reply["notes"] == [
        f"campaigns {first['campaign_id']}, {second['campaign_id']}: field 'in_stok' is not in the campaigns table and "
        "was ignored; did you mean in_stock?",
        f"campaign {second['campaign_id']}: field 'marketplace' is not in the campaigns table and was ignored; did you "
        "mean marketplaces?",
    ]


def test_an_id_holding_a_line_break_is_one_line_in_the_log_and_the_notes(service, service_log, world_dir, creators):
    """An id holding a line break was written raw into the service's warning about a marketplace no creator states,
    forging a log line of its own; it is escaped, in the log and in the notes, as a reject's line escapes it."""
    url, _ = service
    record = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))[2]
    status, reply = call(
        f"{url}/v1/match", dict(record, campaign_id="c-77\nserving creator-ranker/99", marketplaces=["GB"])
    )
    assert status == 200, reply
    silent = int(creators["audience_marketplaces"].map(lambda shares: not shares).sum())
    assert reply["notes"][0] == (
        "marketplace GB of campaign c-77\\nserving creator-ranker/99: no creator states an audience there, so every "
        "creator who states an audience split has none of it in its marketplaces, under the minimum market share "
        f"(5%), and is left out: only creators who state no split ({silent} of the {len(creators)}) can be proposed "
        "(GB is not one of the contract's marketplace codes, US CA MX UK DE FR IT ES JP AU; did you mean UK?)"
    )
    # The second note, that the ranker learned no price in GB, names the campaign escaped alike.
    assert len(reply["notes"]) == 2
    assert reply["notes"][1].startswith("marketplace GB of campaign c-77\\nserving creator-ranker/99: the ranker")
    lines = service_log.read_text().splitlines()
    assert not [line for line in lines if line.startswith("serving creator-ranker/99")]
    assert [line for line in lines if "marketplace GB of campaign c-77\\nserving creator-ranker/99: " in line]


def test_lookalikes_and_their_bad_requests(service, world_dir):
    url, _ = service
    performance = pd.read_parquet(world_dir / "performance.parquet")
    seeds = performance.groupby("creator_id")["sales"].sum().sort_values().index[-2:].tolist()
    ask = {"creator_ids": seeds, "k": 5, "creator_types": ["social_creator"], "marketplaces": ["UK"]}
    status, reply = call(f"{url}/v1/similar", ask)
    assert status == 200, reply
    found = reply["lookalikes"]
    assert [entry["rank"] for entry in found] == [1, 2, 3, 4, 5]
    assert not {entry["creator_id"] for entry in found} & set(seeds)
    assert {entry["creator_type"] for entry in found} == {"social_creator"}
    assert all(entry["reasons"] for entry in found)
    assert reply["notes"] == []  # every marketplace asked is one some creator states an audience in

    status, reply = call(f"{url}/v1/similar", {"creator_ids": ["no-such-creator"]})
    assert status == 422 and reply["detail"][0]["column"] == "creator_ids"
    # Led by "Got", unlike every other reason ("got 0; input should be ..."): it was the Python exception's text.
    assert reply["detail"][0]["reason"] == "got creator_id 'no-such-creator'; it is not in the creators table"
    status, reply = call(f"{url}/v1/similar", {"creator_ids": seeds, "creator_types": ["robot"]})
    assert status == 422 and reply["detail"][0]["column"] == "creator_types"
    assert reply["detail"][0]["reason"].startswith("got creator_type 'robot'; expected one of ")
    status, reply = call(f"{url}/v1/similar", {"creator_ids": seeds, "k": 0})
    assert status == 422 and reply["detail"][0]["column"] == "k"
    # A code that is not Amazon's and that no creator states: refused, as the command line refuses it.
    status, reply = call(f"{url}/v1/similar", {"creator_ids": seeds, "marketplaces": ["GB"]})
    assert status == 422 and reply["detail"][0]["column"] == "marketplaces"
    assert reply["detail"][0]["reason"].startswith(
        "got marketplace 'GB'; expected one of the contract's marketplace codes or one a creator states an audience "
        "in: no creator states an audience there (GB is"
    )


def test_oversized_and_malformed_bodies_are_refused_and_the_service_carries_on(service):
    url, _ = service
    status, reply = call(f"{url}/v1/match", raw=b"[" + b" " * (MAX_BODY + 10) + b"]")
    assert status == 413, reply
    status, reply = call(f"{url}/v1/match", raw=b'{"campaign_id": ')
    assert status == 422 and reply["detail"][0]["reason"].startswith("not JSON")
    status, reply = call(f"{url}/v1/match", [])
    assert status == 422
    assert call(f"{url}/readyz")[0] == 200


def _worker_processes(pid: int) -> list[int]:
    """The worker processes the service `pid` runs (not multiprocessing's resource tracker)."""
    children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> list[tuple[int, object]]:
    """/readyz until it answers 200 (bounded); every answer seen."""
    seen: list[tuple[int, object]] = []
    deadline = time.monotonic() + 300
    while not seen or seen[-1][0] != 200:
        assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"not ready within 300 s: {log.read_text()[-2000:]}"
        with contextlib.suppress(OSError):
            seen.append(call(f"{url}/readyz"))
        time.sleep(0.25)
    return seen


def answered_until_replaced(url: str, process: subprocess.Popen, log: Path, killed: int, record: dict) -> list[dict]:
    """Requests of `record`, each answered 200, until the worker process `killed` has been replaced and /readyz says
    both serve again (bounded); every /readyz body seen meanwhile."""
    deadline = time.monotonic() + 60
    while _alive(killed):
        assert time.monotonic() < deadline, f"worker {killed} still runs 60 s after its kill"
        time.sleep(0.05)
    bodies: list[dict] = []
    deadline = time.monotonic() + 300
    while not bodies or bodies[-1].get("workers") != {"serving": 2, "of": 2}:
        assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"not replaced within 300 s: {log.read_text()[-2000:]}"
        status, reply = call(f"{url}/v1/match", record)
        assert status == 200, (status, reply, bodies[-1:])
        status, body = call(f"{url}/readyz")
        assert status == 200, body
        bodies.append(body)
        time.sleep(0.2)
    assert killed not in _worker_processes(process.pid)
    return bodies


def _cpu_seconds(pid: int) -> float:
    """The CPU time process `pid` has used (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_BUSY_CALLS = itertools.count()  # `both_workers_busy`'s calls, so that no two send the same briefs


def both_workers_busy(clients: ThreadPoolExecutor, url: str, workers: list[int], records: list[dict]) -> list:
    """A 100-campaign batch for each of the two `workers`, sent through `clients`, once each worker runs one
    (bounded): the futures of their (status, headers, reply).

    Each brief is new to the workers (the call's number appended): a worker embeds a brief once, and on the
    module's shared service (`two_workers`) a batch of briefs it had matched before ended too soon after it began
    for a test to act while both run."""
    this_call = next(_BUSY_CALLS)
    batches = [
        [
            dict(record, campaign_id=f"busy-{b}-{n}", brief=f"{record['brief']} (busy {this_call}-{b}-{n})")
            for n, record in ((n, records[n % len(records)]) for n in range(100))
        ]
        for b in range(2)
    ]
    idle = {pid: _cpu_seconds(pid) for pid in workers}
    busy = [clients.submit(exchange, f"{url}/v1/match", batch) for batch in batches]
    deadline = time.monotonic() + 30
    while any(_cpu_seconds(pid) - idle[pid] < 0.5 for pid in workers):
        assert time.monotonic() < deadline, "the workers did not take the batches within 30 s"
        assert not any(answer.done() for answer in busy), "a batch ended before both workers were busy"
        time.sleep(0.05)
    return busy


MOST_CAMPAIGNS = 100  # `two_workers`'s --max-campaigns: a busy batch (`both_workers_busy`) is that many


@dataclass(frozen=True)
class TwoWorkers:
    """The module's `serve --workers 2` (`two_workers`).

    Args:
        process: the service's process.
        url: where it answers.
        log: its standard output and error.
        seen: every /readyz answer seen while it loaded.
        started_on: the folder of the creators table (`creators.parquet`) and index (`index`) it was started on.
    """

    process: subprocess.Popen
    url: str
    log: Path
    seen: list[tuple[int, object]]
    started_on: Path


@pytest.fixture(scope="module")
def two_workers(world_dir, index_dir, versions, tmp_path_factory) -> Iterator[TwoWorkers]:
    """`serve --workers 2 --max-campaigns 100` of `models:/svc-ranker@champion`, as the single-process `service`, on
    copies of the world's creators and index, once ready; its workers are checked to end with it.

    One service for the module's tests of worker processes, in file order: starting one loads the model and the
    index in three processes, each importing the work libraries, and a worker's replacement loads them again. Each
    test asks it by campaign ids of its own and reads the log lines of its own requests or kills; what a test changes
    is what it proves, and the next starts from it: the first kills a worker the moment the service is ready and
    moves the files it started on away, so every later worker is a replacement serving the copies taken at start;
    a worker killed mid-request is replaced alike. The single-process service's test that moves `champion` runs
    between them: these workers pick version 2 up too, which no later test here asks about.
    """
    folder = tmp_path_factory.mktemp("two-workers")
    started_on = folder / "started-on"
    started_on.mkdir()
    shutil.copyfile(world_dir / "creators.parquet", started_on / "creators.parquet")
    shutil.copytree(index_dir, started_on / "index")
    port, log = free_port(), folder / "serve.log"
    args = ["serve", "--creators", str(started_on / "creators.parquet"), "--index", str(started_on / "index")]
    args += ["--model", f"models:/{MODEL_NAME}@champion", "--port", str(port), "--workers", "2"]
    args += ["--max-campaigns", str(MOST_CAMPAIGNS)]
    with open(log, "w") as sink:
        process = subprocess.Popen([CLI, *args], stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    workers: list[int] = []
    try:
        seen = _wait_ready(url, process, log)
        yield TwoWorkers(process, url, log, seen, started_on)
        workers = _worker_processes(process.pid) if process.poll() is None else []
    finally:
        stop(process)
    assert "cannot serve" not in log.read_text()
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped with the service


def test_worker_processes_are_ready_together_survive_a_crash_and_answer_as_one_process(two_workers, service, world_dir):
    """`--workers 2`: /readyz 200 only once both serve; a worker killed outright the moment the service is ready is
    replaced alone while the other answers every request (/readyz 200 with "1 of 2 worker processes serving"), and
    the log says which died and how, once; concurrent requests are then answered exactly as the single process
    answers them, the replacement serving the creators and index the service started on though those files were
    moved away meanwhile. `--max-campaigns` holds. Before, one death made every worker load again, with 503 to every
    request for the load's length (24 s measured). The workers end with the service (`two_workers`)."""
    process, workers_url, log, seen = two_workers.process, two_workers.url, two_workers.log, two_workers.seen
    records = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))
    assert any(status == 503 for status, _ in seen)
    assert seen[-1][1]["workers"] == {"serving": 2, "of": 2}
    workers = _worker_processes(process.pid)
    assert len(workers) == 2

    too_many = [dict(records[n % len(records)], campaign_id=f"many-{n}") for n in range(MOST_CAMPAIGNS + 1)]
    status, reply = call(f"{workers_url}/v1/match", too_many)
    assert (status, reply["detail"].split(";")[0]) == (413, f"got {MOST_CAMPAIGNS + 1} campaigns")

    # Replaced by a refresh (a new table and index elsewhere): the new workers once read these paths again, and a
    # worker's death then stopped the whole service, unable to read them.
    started_on = two_workers.started_on
    (started_on / "creators.parquet").rename(started_on / "creators-before.parquet")
    (started_on / "index").rename(started_on / "index-before")
    # At once: a death right after the workers all served was once missed, and the service stayed 503.
    os.kill(workers[0], signal.SIGKILL)
    # A request at once may still have gone to the dying worker: that one alone is 503.
    assert call(f"{workers_url}/v1/match", records[0])[0] in {200, 503}
    bodies = answered_until_replaced(workers_url, process, log, workers[0], records[0])
    assert {
        "status": "ready",
        "reason": "1 of 2 worker processes serving; the others are being replaced",
        "workers": {"serving": 1, "of": 2},
    }.items() <= bodies[0].items()
    replacements = _worker_processes(process.pid)
    assert len(replacements) == 2 and workers[1] in replacements
    deaths = [line for line in log.read_text().splitlines() if "worker process died" in line]
    assert deaths == [
        f"a worker process died (pid {workers[0]}, killed by SIGKILL); replacing it alone, 1 of 2 worker "
        "processes serving meanwhile"
    ]
    records = records[:4]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda record: call(f"{workers_url}/v1/match", record), records * 3))
    url, _ = service
    expected = [call(f"{url}/v1/match", record) for record in records]
    assert answers == expected * 3


def test_a_request_whose_client_went_away_before_a_worker_took_it_never_runs(two_workers, world_dir):
    """`--workers 2`, both busy with a batch: a request sent meanwhile on a connection that then closes is dropped
    before a worker takes it, in one log line; the warning that running it writes (a marketplace no creator states,
    under its own campaign id) never comes, while the same request from a client that waits gets it. Neither busy
    batch had finished when the request was dropped."""
    records = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))
    process, url, log = two_workers.process, two_workers.url, two_workers.log
    with ThreadPoolExecutor(2) as clients:
        busy = both_workers_busy(clients, url, _worker_processes(process.pid), records)
        gone = json.dumps(dict(records[0], campaign_id="gone-1", marketplaces=["GB"])).encode()
        with socket.create_connection(("127.0.0.1", urllib.parse.urlsplit(url).port), timeout=30) as connection:
            head = "POST /v1/match HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            connection.sendall(f"{head}Content-Length: {len(gone)}\r\n\r\n".encode() + gone)
            time.sleep(1.0)  # read, validated and waiting for a worker
        deadline = time.monotonic() + 10
        while not (dropped := [line for line in log.read_text().splitlines() if "client went away" in line]):
            assert time.monotonic() < deadline, f"no line for the dropped request: {log.read_text()[-2000:]}"
            time.sleep(0.05)
        assert not any(answer.done() for answer in busy), "dropped only once a worker was free"
        assert [answer.result()[0] for answer in busy] == [200, 200]
    status, reply = call(f"{url}/v1/match", dict(records[0], campaign_id="kept-1", marketplaces=["GB"]))
    assert status == 200 and reply["notes"][0].startswith("marketplace GB of campaign kept-1: "), reply
    lines = log.read_text().splitlines()
    assert dropped == [
        "POST /v1/match: the client went away before its answer; its work had not started and never runs (499)"
    ]
    assert [line for line in lines if "marketplace GB of campaign kept-1: " in line]
    assert not [line for line in lines if "gone-1" in line]


def test_a_worker_killed_mid_request_fails_that_request_alone_and_is_replaced_alone(two_workers, world_dir):
    """`--workers 2`, each worker matching a 100-campaign batch, one killed outright: its batch is answered 503
    with Retry-After (not run again on the other: whether it had started cannot be told, and a batch that killed
    its worker would kill the next), the other batch 200; the survivor then answers every request while the
    replacement loads, and keeps its pid. Before, one death made every worker load again, 503 to every request."""
    records = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))
    process, url, log = two_workers.process, two_workers.url, two_workers.log
    logged = len(log.read_text().splitlines())  # the lines before this test's kill
    workers = _worker_processes(process.pid)
    with ThreadPoolExecutor(2) as clients:
        busy = both_workers_busy(clients, url, workers, records)
        os.kill(workers[0], signal.SIGKILL)
        answers = sorted((answer.result() for answer in busy), key=lambda answer: answer[0])
    assert [status for status, _, _ in answers] == [200, 503]
    assert answers[1][1]["retry-after"] == "5"
    assert answers[1][2] == {"detail": "the worker process answering this request stopped; it is being replaced"}
    answered_until_replaced(url, process, log, workers[0], records[0])
    assert workers[1] in _worker_processes(process.pid)
    deaths = [line for line in log.read_text().splitlines()[logged:] if "worker process died" in line]
    assert deaths == [
        f"a worker process died (pid {workers[0]}, killed by SIGKILL); replacing it alone, 1 of 2 worker processes "
        "serving meanwhile"
    ]


def test_a_model_no_worker_can_load_stops_the_service_with_the_reason(world_dir, index_dir):
    """A worker that cannot load stops every worker; the command exits 2 with the reason and leaves no files."""
    args = ["serve", "--creators", str(world_dir / "creators.parquet"), "--index", str(index_dir)]
    args += ["--model", "models:/no-such-ranker@champion", "--port", str(free_port()), "--workers", "2"]
    process = subprocess.Popen([CLI, *args], stderr=subprocess.PIPE, text=True)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1].startswith("creator-match: cannot serve: ModelNotFound: ")
    assert "no-such-ranker" in stderr.strip().splitlines()[-1]
    # Its own folder, named by its process id: services of other tests may run meanwhile.
    assert not list(Path(tempfile.gettempdir()).glob(f"creator-match-serve-*-{process.pid}-*"))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_service_given_no_index_at_its_index_path_says_so_before_the_model_loads(world_dir, tmp_path, workers):
    """A folder that is not an index passed serve's check (it only asked for a folder) and was found once the model
    had loaded, so with a model that could not load either, the refusal named the model. It names the index, as
    `match` does, missing or a folder of the user's.

    The command's own `main` in this process, its warnings on its standard error as in a process of its own: the
    refusal comes before the model, the workers or the server, so a new interpreter would add only its imports (a
    serve process's exit 2 is the model's refusal above)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    for index in (tmp_path / "no-such-index", mine):
        args = ["serve", "--creators", str(world_dir / "creators.parquet"), "--index", str(index)]
        args += ["--model", "models:/no-such-ranker@champion", "--port", str(free_port()), "--workers", workers]
        done = run_in_process(*args, warnings_on_stderr=True)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"creator-match: {index}: no candidate index here (missing meta.json)"
        ]


def test_a_promotion_is_swapped_in_without_a_failed_request(service, world_dir, versions):
    """Requests run back to back while `champion` moves to version 2; each one answers 200."""
    url, _ = service
    campaign = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))[0]
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 240
        while not stop.is_set() and time.monotonic() < deadline:
            status, reply = call(f"{url}/v1/match", campaign)
            answers.append((status, reply.get("model_version") if isinstance(reply, dict) else None))
            if answers[-1][1] == f"{MODEL_NAME}/{versions[1]}":
                stop.set()

    worker = threading.Thread(target=client)
    worker.start()
    while not answers:
        time.sleep(0.1)
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", versions[1])
    worker.join(timeout=300)
    stop.set()
    assert not worker.is_alive()
    assert all(status == 200 for status, _ in answers), answers
    served = [version for _, version in answers]
    assert served[0] == f"{MODEL_NAME}/{versions[0]}" and served[-1] == f"{MODEL_NAME}/{versions[1]}", served
    switched = served.index(served[-1])
    assert set(served[switched:]) == {served[-1]}, "never back to the old version once swapped"
    assert call(f"{url}/readyz")[1]["model_version"] == f"{MODEL_NAME}/{versions[1]}"


def test_a_replacement_worker_loads_the_version_in_service_not_a_champion_that_failed_and_retries_it(
    world_dir, index_dir, trained, tmp_path
):
    """A trial promoted a version whose pickle was missing, then a worker died: the new workers loaded the broken
    champion and the whole service exited 2. Now the replacement loads the version in service, /readyz names the
    champion it could not load, and once the file is back every worker serves it."""
    name = "svc-pinned-ranker"
    MlflowClient().create_registered_model(name)
    folders = versions_with_own_files(name, trained, tmp_path / "versions")
    port, log = free_port(), tmp_path / "serve.log"
    args = ["serve", "--creators", str(world_dir / "creators.parquet"), "--index", str(index_dir), "--workers", "2"]
    args += ["--model", f"models:/{name}@champion", "--port", str(port), "--poll-seconds", "1"]
    with open(log, "w") as sink:
        process = subprocess.Popen([CLI, *args], stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"

    def ready_until(done, seconds: float = 120) -> dict:
        """/readyz's 200 body once `done(body)`, within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"not so within {seconds} s: {log.read_text()[-2000:]}"
            with contextlib.suppress(OSError):
                status, body = call(f"{url}/readyz")
                if status == 200 and done(body):
                    return body
            time.sleep(0.25)

    away = folders[1] / "away.pkl"
    try:
        _wait_ready(url, process, log)
        (folders[1] / "python_model.pkl").rename(away)
        MlflowClient().set_registered_model_alias(name, "champion", "2")
        deadline = time.monotonic() + 60
        while log.read_text().count(f"not serving {name}/2 ") < 2:  # each worker has tried it
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.25)

        workers = _worker_processes(process.pid)
        os.kill(workers[0], signal.SIGKILL)
        body = ready_until(
            lambda body: (
                workers[0] not in _worker_processes(process.pid)
                and body["workers"] == {"serving": 2, "of": 2}
                and "not_served" in body
            )
        )
        assert body["model_version"] == f"{name}/1" and body["workers"] == {"serving": 2, "of": 2}
        assert body["not_served"]["model_version"] == f"{name}/2" and body["not_served"]["retried"] is True
        assert "No such file or directory: 'python_model.pkl'" in body["not_served"]["reason"]

        away.rename(folders[1] / "python_model.pkl")
        ready_until(lambda body: body["model_version"] == f"{name}/2" and "not_served" not in body)
        # Every worker, not only the one /readyz names (the most recent): a round of requests spread over both
        # answers with version 2 alone once the other has polled too.
        seed = {"creator_ids": [pd.read_parquet(world_dir / "creators.parquet")["creator_id"].iloc[0]]}
        deadline = time.monotonic() + 30
        while True:
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda _: call(f"{url}/v1/similar", seed), range(6)))
            assert all(status == 200 for status, _ in answers), answers
            if {reply["model_version"] for _, reply in answers} == {f"{name}/2"}:
                break
            assert time.monotonic() < deadline, f"a worker still serves version 1: {log.read_text()[-2000:]}"
            time.sleep(0.5)
    finally:
        stop(process)
        if away.exists():
            away.rename(folders[1] / "python_model.pkl")
    assert "cannot serve" not in log.read_text()


def test_port_0_serves_on_the_port_the_system_chose_and_says_which(service_started):
    """`serve --port 0` said "serving on http://127.0.0.1:0" while it listened on a port the system chose. The
    module's service is started so; `service_started` checks, once the module is done, that SIGTERM stops it
    cleanly."""
    port = int(service_started.line.split("serving on http://127.0.0.1:", 1)[1].split(" ", 1)[0])
    assert port != 0
    # At once: the line is written once the port takes connections.
    assert service_started.health_at_once == (200, {"status": "ok"})


def test_a_worker_process_warns_in_the_command_s_one_line(two_workers, world_dir):
    """`--workers 2`: a campaign sold only where no creator states an audience is warned about by the worker that
    matches it, in the line the single process writes. Spawned, a worker once wrote Python's own two lines, the
    worker's file and line number and "UserWarning" before the message, and the source line below it."""
    records = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))
    url, log = two_workers.url, two_workers.log
    status, reply = call(f"{url}/v1/match", dict(records[0], campaign_id="far-1", marketplaces=["GB"]))
    assert status == 200, reply
    notes = reply["notes"]  # no creator states an audience in GB, and the ranker learned no price there
    assert len(notes) == 2
    lines = log.read_text().splitlines()  # written before the answer, as the other test's `kept-1` line is
    said = [line for line in lines if "far-1" in line]
    # The audience line comes with every call; the price line once per worker and marketplace (`Matcher.match_many`),
    # which this module's earlier GB requests to the same worker may have used up.
    assert f"creator-match: warning: {notes[0]}" in said
    assert set(said) <= {f"creator-match: warning: {note}" for note in notes}, said
    assert not [line for line in lines if "match_many(" in line]  # the source line Python's format adds
