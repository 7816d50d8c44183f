"""How `serve --workers` retires real spawned worker processes and names the dead one, and retries a replacement
that cannot load (a worker killed mid-request is tests/matcher/test_service.py's, on its module's service)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from matcher.service_workers import _alive, _deaths, _retire
from tests.commands import CLI, free_port, stop
from tests.matcher.spawned_targets import start_sleeping_threads
from tests.matcher.test_model_holder import versions_with_own_files
from tests.matcher.test_service import _wait_ready, _worker_processes, call, campaign_records


def _started_pool(workers: int) -> tuple[ProcessPoolExecutor, list]:
    pool = ProcessPoolExecutor(workers, get_context("spawn"))
    for started in [pool.submit(os.getpid) for _ in range(workers)]:
        started.result(timeout=120)
    return pool, list(pool._processes.values())


def _exit_codes(processes: list, seconds: float = 30.0) -> list[int | None]:
    """Each process's exit code once all have ended, or None for those still running after `seconds`.

    Polled rather than joined: the pool's own thread reaps its workers too, and a join that loses that race reports
    a process that has ended as running.
    """
    deadline = time.monotonic() + seconds
    while any(process.exitcode is None for process in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [process.exitcode for process in processes]


def test_a_death_proc_shows_before_its_sentinel_closed_is_named():
    """A worker with threads (a loaded model has many) reads "Z" in /proc while its other threads still end and
    its sentinel is still open; the watch between requests, which reads /proc, once found such a death and the
    log said that none of the workers had ended yet (CI, session 37)."""
    pool = ProcessPoolExecutor(1, get_context("spawn"))
    try:
        pid = pool.submit(start_sleeping_threads, 8).result(timeout=120)
        (process,) = pool._processes.values()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            assert time.monotonic() < deadline, "the killed worker still runs after 30 s"
        assert _deaths([process]) == f"pid {pid}, killed by SIGKILL"
    finally:
        _retire([pool], 0.0)


def test_a_pool_whose_worker_died_is_ended_whole():
    """Killed and shut down at once, a pool once left its other worker waiting for good on the queue lock the dead
    one held (about one time in two); retiring it ends every worker."""
    for victim in [0, 1, 0, 1]:
        pool, processes = _started_pool(2)
        os.kill(processes[victim].pid, signal.SIGKILL)
        _retire([pool], 0.0)
        codes = _exit_codes(processes)
        assert None not in codes, f"a worker of the retired pool still runs: {codes}"
        assert codes[victim] == -signal.SIGKILL


def test_a_healthy_pool_is_left_to_finish_within_the_grace_and_reaped():
    """Stopping the service: idle workers end on their own (exit 0), nothing is killed, and they are reaped before
    `_retire` returns (a service that ended by its signal next left them as zombies, never reaped in a container
    whose first process reaps nothing)."""
    pool, processes = _started_pool(2)
    _retire([pool], 30.0)
    assert not [process.pid for process in processes if Path(f"/proc/{process.pid}").exists()]
    assert _exit_codes(processes) == [0, 0]


def test_the_log_names_the_dead_worker_and_how_it_died_or_what_is_not_known():
    """A worker killed outright is named with its signal; one whose status this process cannot read (collected by
    anything else) is still named, as ended; a pool where none has ended says so. The line once read "exit unknown"."""
    pool, processes = _started_pool(2)
    try:
        os.kill(processes[1].pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _deaths(processes).startswith(f"pid {processes[1].pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _deaths(processes) == f"pid {processes[1].pid}, killed by SIGKILL"
    finally:
        _retire([pool], 0.0)
    # Processes of no pool, whose statuses nothing else collects: a pool's own thread would race this test for it.
    sleepers = [get_context("spawn").Process(target=time.sleep, args=(120,)) for _ in range(2)]
    for process in sleepers:
        process.start()
    try:
        assert _deaths(sleepers) == f"none of pids {sleepers[0].pid}, {sleepers[1].pid} had ended yet"
        os.kill(sleepers[0].pid, signal.SIGKILL)
        os.waitpid(sleepers[0].pid, 0)  # collected behind the process object's back
        assert _deaths(sleepers) == f"pid {sleepers[0].pid}, ended, its exit status not readable"
    finally:
        for process in sleepers:
            process.kill()
        sleepers[1].join(timeout=30)


_FAILED_LINE = re.compile(
    r"a replacement worker process could not load \(failure (\d+) in a row\): (.*); trying again in (\d+) s, "
    r"1 of 2 worker processes serving meanwhile"
)


@pytest.mark.slow
def test_a_replacement_that_cannot_load_is_retried_while_the_other_worker_answers(
    world_dir, world_index, trained, tmp_path
):
    """`--workers 2` of a version whose files go missing after the workers loaded it (its artifact store away), then
    a worker killed: its replacement, which loads that version, fails, which once stopped the whole service. Now the
    other worker answers every request as before, /readyz stays 200 and says the service is degraded and why, each
    failure is said once in a line with its backoff (1 s, then 2 s), and once the files are back the next attempt
    loads and both workers serve again."""
    name = "workers-retried-ranker"
    MlflowClient().create_registered_model(name)
    (folder,) = versions_with_own_files(name, trained, tmp_path / "versions", count=1)
    port, log = free_port(), tmp_path / "serve.log"
    args = ["serve", "--creators", str(world_dir / "creators.parquet"), "--index", str(world_index)]
    args += ["--model", f"models:/{name}@champion", "--port", str(port), "--workers", "2"]
    with open(log, "w") as sink:
        process = subprocess.Popen([CLI, *args], stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    record = campaign_records(pd.read_parquet(world_dir / "new_campaigns.parquet"))[0]
    model_file, away = folder / "python_model.pkl", folder / "away.pkl"

    def answered_until(done, seconds: float = 300) -> dict:
        """The /readyz body once `done(body)`, every /v1/match meanwhile answered 200 with `expected` and every
        /readyz 200 (bounded)."""
        deadline = time.monotonic() + seconds
        while True:
            assert process.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"not so within {seconds} s: {log.read_text()[-2000:]}"
            assert call(f"{url}/v1/match", record) == (200, expected)
            status, body = call(f"{url}/readyz")
            assert status == 200, body
            if done(body):
                return body
            time.sleep(0.5)

    try:
        _wait_ready(url, process, log)
        status, expected = call(f"{url}/v1/match", record)
        assert status == 200, expected
        workers = _worker_processes(process.pid)
        model_file.rename(away)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _alive(workers[0]):
            assert time.monotonic() < deadline, f"worker {workers[0]} still runs 60 s after its kill"
            time.sleep(0.05)
        degraded = answered_until(
            lambda body: "replacement_failure" in body["workers"] and len(_FAILED_LINE.findall(log.read_text())) >= 2
        )
        assert degraded["status"] == "ready" and degraded["workers"]["serving"] == 1
        failure = degraded["workers"]["replacement_failure"]
        assert "No such file or directory" in failure and "python_model.pkl" in failure
        assert "degraded: a replacement could not load" in degraded["reason"] and failure in degraded["reason"]

        away.rename(model_file)
        whole = answered_until(lambda body: body["workers"] == {"serving": 2, "of": 2})
        assert whole["status"] == "ready" and "reason" not in whole
        now = _worker_processes(process.pid)
        assert len(now) == 2 and workers[1] in now and workers[0] not in now
        # Both answer as one: requests spread over the two, the replacement serving the same version.
        with ThreadPoolExecutor(2) as clients:
            assert list(clients.map(lambda _: call(f"{url}/v1/match", record), range(4))) == [(200, expected)] * 4
    finally:
        stop(process)
        with contextlib.suppress(FileNotFoundError):
            away.rename(model_file)
    text = log.read_text()
    failures = _FAILED_LINE.findall(text)
    # Each failure said once, in one line, its wait doubling from 1 s.
    assert [(int(n), int(wait)) for n, _, wait in failures] == [(n, 2 ** (n - 1)) for n in range(1, len(failures) + 1)]
    assert all("python_model.pkl" in reason for _, reason, _ in failures)
    assert text.count("a replacement worker process could not load") == len(failures)
    assert f"a replacement worker process serves, after {len(failures)} that could not load" in text
    assert "cannot serve" not in text
