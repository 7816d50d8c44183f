"""How `serve --workers` retires real spawned worker processes and names the dead one (a worker killed mid-request
is tests/matcher/test_service.py's, on its module's service)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from matcher.service_workers import _alive, _deaths, _retire
from tests.matcher.spawned_targets import start_sleeping_threads


def _started_pool(workers: int) -> tuple[ProcessPoolExecutor, list]:
    pool = ProcessPoolExecutor(workers, get_context("spawn"))
    for call in [pool.submit(os.getpid) for _ in range(workers)]:
        call.result(timeout=120)
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
