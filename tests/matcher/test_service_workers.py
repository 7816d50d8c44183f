"""How `serve --workers` retires a pool of real spawned worker processes."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from matcher.service_workers import _retire


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


def test_a_pool_whose_worker_died_is_ended_whole():
    """Killed and shut down at once, a pool once left its other worker waiting for good on the queue lock the dead
    one held (about one time in two); retiring it ends every worker."""
    for victim in [0, 1, 0, 1]:
        pool, processes = _started_pool(2)
        os.kill(processes[victim].pid, signal.SIGKILL)
        _retire(pool, 0.0)
        codes = _exit_codes(processes)
        assert None not in codes, f"a worker of the retired pool still runs: {codes}"
        assert codes[victim] == -signal.SIGKILL


def test_a_healthy_pool_is_left_to_finish_within_the_grace_and_reaped():
    """Stopping the service: idle workers end on their own (exit 0), nothing is killed, and they are reaped before
    `_retire` returns (a service that ended by its signal next left them as zombies, never reaped in a container
    whose first process reaps nothing)."""
    pool, processes = _started_pool(2)
    _retire(pool, 30.0)
    assert not [process.pid for process in processes if Path(f"/proc/{process.pid}").exists()]
    assert _exit_codes(processes) == [0, 0]
