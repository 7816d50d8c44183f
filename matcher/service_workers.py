"""`creator-match serve --workers N`: requests answered by N worker processes, each holding a loaded matcher.

One process runs one request's pandas and model code at a time (Python's interpreter lock), so on a machine with
several cores a single process leaves most of them idle while concurrent requests queue behind each other. With
`--workers N` the HTTP server stays one process, which reads and validates bodies and writes replies, and hands
each request to whichever of N worker processes is free (a `ProcessPoolExecutor`, spawned): requests, not
connections, are spread, so four clients on keep-alive connections keep two workers equally busy whichever
connections the kernel gave to whom.

Each worker reads the creators and loads the ranker, index and encoder itself, and watches the model alias on
its own. The workers of one service share a directory (`WorkerGroup`): the plan they serve, one file per worker
of the current pool (loading, or the model version it serves), and the first failure. The service is ready once
every worker serves; a worker that cannot load stops the service with the reason, as a single process does; a
worker that dies after it served breaks the pool, which is replaced by a new one (every worker loads again, the
version in service rather than the alias, which may point at a version that failed to load, from copies of the
creators table and index taken at start; meanwhile 503 with Retry-After). Who died is read from the workers' own
files, so a death is acted on however soon it follows another event (a pool that became complete a moment before,
a request, a promotion).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import threading
import time
import warnings
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing import get_context
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from features.safe_write import (
    OWNER_LOCK,
    atomic_path,
    foreign_entries,
    private_temp_dir,
    release_temp_dir,
    remove_directory,
)
from features.threads import hold_blas_threads
from matcher.cli import one_line_warning
from matcher.model_holder import ModelHolder, NotServing, ServiceConfig, is_alias, log

__all__ = ["WorkerGroup", "WorkerPlan", "WorkerPool", "WorkerState"]

_PLAN = "plan.pickle"
# The folder of the copies of the creators table and candidate index (`WorkerGroup.plan`), and the index's in it.
_SERVED = "served"
_INDEX = "index"
_FAILURE = "failure.txt"
_WORKER = "worker-"
# How often the pool looks for a worker that died between requests, and a worker for a supervisor that died.
_WATCH_SECONDS = 1.0
# How long a stopping service waits for its workers to finish before it kills them (one may still be loading).
_STOP_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerPlan:
    """What every worker of a service serves.

    Args:
        creators: the creators table's path; each worker reads it and serves its valid rows.
        config: the service's configuration.
        workers: how many worker processes the service runs.
    """

    creators: str
    config: ServiceConfig
    workers: int

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"Got workers={self.workers}; expected at least 1")


@dataclass(frozen=True)
class WorkerState:
    """One worker of a pool, as its file says.

    Args:
        pid: the worker's process id.
        alive: whether the process still runs.
        serving: what it serves (model version, creators), or None while it loads.
    """

    pid: int
    alive: bool
    serving: dict | None


class WorkerGroup:
    """The directory the workers of one service share: the plan, a file per worker of each pool, the first failure.

    Args:
        directory: the group's directory, made by `create`.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def create(cls, plan: WorkerPlan) -> WorkerGroup:
        """A new private directory holding `plan`, and copies of the creators table and candidate index it names
        (`plan(copies=True)`)."""
        from matcher.index_files import IndexFiles

        group = cls(private_temp_dir("creator-match-serve-"))
        (group.directory / _PLAN).write_bytes(pickle.dumps(plan))
        copies = group.plan(copies=True)
        Path(copies.creators).parent.mkdir()
        shutil.copyfile(plan.creators, copies.creators)
        if plan.config.index is not None:  # all of one build, were `index` replacing it meanwhile
            IndexFiles.copy(plan.config.index, copies.config.index)
        return group

    def plan(self, copies: bool = False) -> WorkerPlan:
        """The plan; with `copies`, naming the copies of its creators table and index that `create` took. A
        replacement pool reads those, so that it serves what the first did: it once read the paths given at start
        again, and where a refresh had moved those files away a worker's death stopped the whole service."""
        # Written by `create` into a directory only this user can write: not data from elsewhere.
        plan = pickle.loads((self.directory / _PLAN).read_bytes())
        if not copies:
            return plan
        served = self.directory / _SERVED
        config = plan.config if plan.config.index is None else replace(plan.config, index=str(served / _INDEX))
        return replace(plan, creators=str(served / Path(plan.creators).name), config=config)

    def mark_loading(self, pool: int, pid: int) -> None:
        """Worker `pid` of pool number `pool` has started and is loading."""
        self._write(pool, pid, None)

    def mark_serving(self, pool: int, pid: int, served: dict) -> None:
        """Worker `pid` of pool number `pool` serves what `served` says (`ModelHolder.served`: its model version,
        creators, and the alias's version it could not load, if any)."""
        self._write(pool, pid, served)

    def workers(self, pool: int) -> list[WorkerState]:
        """The workers pool number `pool` has started, the most recently changed last."""
        found = []
        for marker in self.directory.glob(f"{_WORKER}{pool}-*"):
            with contextlib.suppress(ValueError, OSError):  # a file removed or replaced meanwhile
                pid = int(marker.name.rsplit("-", 1)[1])
                found.append((marker.stat().st_mtime_ns, WorkerState(pid, _alive(pid), json.loads(marker.read_text()))))
        return [state for _, state in sorted(found, key=lambda item: item[0])]

    def forget(self, pool: int) -> None:
        """Removes the files of pool number `pool`, replaced: a service whose workers died now and then kept a file
        for each of them."""
        for marker in self.directory.glob(f"{_WORKER}{pool}-*"):
            marker.unlink(missing_ok=True)

    def fail(self, reason: str) -> None:
        """Records why a worker cannot serve; the first reason recorded is kept."""
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(self.directory / _FAILURE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(reason)

    def failure(self) -> str | None:
        path = self.directory / _FAILURE
        return path.read_text() if path.exists() else None

    def remove(self) -> None:
        """Deletes the group's directory if it holds only the group's own files (nothing of the user's)."""
        remove_directory(self.directory, self._why_not_ours)
        release_temp_dir(self.directory, remove=False)

    def _write(self, pool: int, pid: int, serving: dict | None) -> None:
        # Written whole: a reader never sees half a file.
        with atomic_path(self.directory / f"{_WORKER}{pool}-{pid}") as staged:
            staged.write_text(json.dumps(serving))

    @staticmethod
    def _why_not_ours(directory: Path) -> str | None:
        foreign = foreign_entries(directory, [_PLAN, _SERVED, _FAILURE, f"{_WORKER}*", OWNER_LOCK])
        return f"it holds files the service did not write: {foreign}" if foreign else None


def _retire(pool: ProcessPoolExecutor, grace: float) -> None:
    """Shuts `pool` down; those of its workers that have not ended within `grace` seconds are killed.

    A shutdown alone does not end a pool one of whose workers died: a survivor waits for good on the queue lock the
    dead one held (CPython kills the survivors itself only when it sees the death before the shutdown). Python 3.14's
    `ProcessPoolExecutor.kill_workers` does this; 3.11 needs the pool's own list of processes.
    """
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    running = {process.sentinel: process for process in processes}
    deadline = time.monotonic() + grace
    while running:
        for ended in wait(list(running), timeout=max(0.0, deadline - time.monotonic())):
            del running[ended]
        if time.monotonic() >= deadline:
            break
    # A process whose sentinel is not ready has not ended, so its pid is still its own.
    for process in running.values():
        process.kill()
    # Reaped here, not left to the pool's own thread: a service that then ends by its signal (uvicorn raises SIGTERM
    # again once it has shut down) left them as zombies, which a container's first process may never reap.
    for process in processes:
        process.join(timeout=5)


def _deaths(processes: list) -> str:
    """Which of a pool's worker `processes` died, and how ("pid 123, killed by SIGKILL"), for the log.

    CPython terminates a broken pool's other workers itself (SIGTERM), so the one that broke it is the one that
    ended otherwise; all of them when each ended by SIGTERM. A process that ended without a status this process can
    read, or none ended yet, is said so with its pid: the line once read "exit unknown", which told neither who nor
    which of the two. A death /proc shows may not have closed its sentinel yet (a process's other threads are still
    ending when its first reads "Z"), so it waits until one has, within the same bound.
    """
    deadline = time.monotonic() + 2.0
    with contextlib.suppress(ValueError):  # a closed process object: its death is read as unknown below
        wait([process.sentinel for process in processes], timeout=2.0)
    outcomes = {process.pid: _exit_code(process, deadline) for process in processes}
    ended = [(pid, code) for pid, (done, code) in outcomes.items() if done and code is not None]
    first = [(pid, code) for pid, code in ended if code != -signal.SIGTERM] or ended
    if first:
        return "; ".join(f"pid {pid}, {_exit_status(code)}" for pid, code in first)
    unread = [pid for pid, (done, _) in outcomes.items() if done]
    if unread:
        return "; ".join(f"pid {pid}, ended, its exit status not readable" for pid in unread)
    return f"none of pids {', '.join(map(str, outcomes))} had ended yet" if outcomes else "no worker process known"


def _exit_code(process, deadline: float) -> tuple[bool, int | None]:
    """Whether a pool worker has ended, and its exit code (negative: the signal; None if not known by `deadline`).

    Ended is read from its sentinel, not /proc, whose state can read "running" for a moment after the pipe closed.
    The code is read from the process object, which collects it or finds it stored by the pool's own thread: that
    thread reaps its workers too, and a read in the moment between its wait and its store comes back empty, so it is
    read again until `deadline` (a status collected by anything else never comes). A log line never stops the
    pool's renewal: a process object closed meanwhile is an ended process of unknown exit.
    """
    try:
        if not wait([process.sentinel], timeout=0):
            return False, None
        while process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return True, process.exitcode
    except ValueError:  # closed
        return True, None


def _exit_status(code: int) -> str:
    """A process's exit code as words: "exit code 3", or "killed by SIGKILL" for a negative one."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a dead child the pool has not reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


class _PoolBroke(Exception):
    """A call's pool broke (a worker died) or was shut down before the call ended: which pool, so that only that one
    is replaced (`WorkerPool.outcome`)."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        super().__init__("the call's process pool broke")
        self.pool = pool

    @classmethod
    def of(cls, pool: ProcessPoolExecutor, cause: BaseException) -> _PoolBroke:
        broke = cls(pool)
        broke.__cause__ = cause
        return broke


class WorkerPool:
    """The matcher in N worker processes: `readiness` as `ModelHolder` answers it, and its `match` and `similar`
    through `submit` (a future, so that the service waits without a thread and can drop a call no worker has taken).

    Args:
        plan: what the workers serve, and how many there are.
    """

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.config = plan.config
        self.failure: str | None = None
        self._group: WorkerGroup | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._processes: list = []  # the pool's worker processes, kept: a broken pool forgets its own
        self._generation = 0  # which pool is current: its workers' files carry the number
        self._in_service: str | None = None  # the model URI a replacement pool loads first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._on_failure = None
        # Calls not yet handed to the pool (their answer's future, the function, its arguments), and how many the
        # pool holds: `submit`.
        self._waiting: deque[tuple[Future, Any, tuple]] = deque()
        self._handed = 0
        self._calls_lock = threading.Lock()

    def start(self, on_failure=None) -> None:
        """Starts the workers (they load in the background) and a thread that replaces a pool whose worker died.

        Args:
            on_failure: called with the reason, in one line, if a worker cannot load.
        """
        self._on_failure = on_failure
        self._group = WorkerGroup.create(self.plan)
        self._renew(None)
        threading.Thread(target=self._watch, name="worker-pool", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        with self._calls_lock:
            for answer, _, _ in self._waiting:
                answer.cancel()
        with self._lock:
            if self._pool is not None:
                _retire(self._pool, _STOP_GRACE_SECONDS)
            if self._group is not None:
                self._group.remove()

    def readiness(self) -> tuple[bool, dict]:
        if self.failure:
            return False, {"status": "failed", "reason": self.failure}
        states = self._group.workers(self._generation) if self._group is not None else []
        serving = [state.serving for state in states if state.alive and state.serving is not None]
        workers = {"serving": len(serving), "of": self.plan.workers}
        if len(serving) < self.plan.workers:
            reason = f"{len(serving)} of {self.plan.workers} worker processes serving"
            return False, {"status": "loading", "reason": reason, "workers": workers}
        return True, {"status": "ready", **serving[-1], "workers": workers}

    def submit(self, work: str, *args) -> Future:
        """`work` ("match" or "similar", as `ModelHolder` answers it) on `args`, handed to the next free worker
        process without waiting: the future of its answer, read with `outcome` once done.

        A call waits here, not in the process pool, until a worker is free: the pool marks as running (so past any
        `cancel`) every call it has queued for its workers, one more than there are workers, long before one takes
        it. `cancel()` therefore succeeds exactly while no worker has the call; a call a worker has runs to its end.

        Raises:
            NotServing: while the workers load, or after they failed to.
        """
        ready, body = self.readiness()
        if not ready:
            raise NotServing(body["reason"])
        answer: Future = Future()
        with self._calls_lock:
            self._waiting.append((answer, _WORK[work], args))
        self._dispatch()
        return answer

    def outcome(self, answer: Future):
        """The answer of a done call `submit` returned (its exception raised); NotServing if its pool broke, which
        is then replaced (a call that blocks on the replacement: not on the event loop)."""
        if answer.cancelled():  # by `stop`, still waiting for a worker
            raise NotServing("the service is stopping")
        try:
            return answer.result(timeout=0)
        except _PoolBroke as exc:
            self._renew(exc.pool)
            raise NotServing("a worker process stopped; the workers are loading again") from exc.__cause__

    def _dispatch(self) -> None:
        """Hands waiting calls to the pool while fewer than `workers` are in its hands; skips those cancelled."""
        while True:
            with self._calls_lock:
                if self._handed >= self.plan.workers or not self._waiting:
                    return
                answer, function, args = self._waiting.popleft()
                if not answer.set_running_or_notify_cancel():
                    continue
                self._handed += 1
                pool = self._pool
            try:
                call = pool.submit(function, *args)
            except (BrokenProcessPool, RuntimeError) as exc:  # RuntimeError: shut down, as a replaced pool is
                self._settle(answer, _PoolBroke.of(pool, exc))
            else:
                # Run by the pool's own thread when the call ends (or at once here, if it has already).
                call.add_done_callback(partial(self._finished, answer, pool))

    def _finished(self, answer: Future, pool: ProcessPoolExecutor, call: Future) -> None:
        if call.cancelled():  # by the pool itself: shut down (replaced, or the service stopping) with the call queued
            self._settle(answer, _PoolBroke.of(pool, RuntimeError("the process pool was shut down")))
        elif isinstance(call.exception(), BrokenProcessPool):
            self._settle(answer, _PoolBroke.of(pool, call.exception()))
        else:
            self._settle(answer, call.exception(), call)

    def _settle(self, answer: Future, failure: BaseException | None, call: Future | None = None) -> None:
        """Ends `answer` with `failure`, or else with `call`'s result; the next waiting call goes to the pool."""
        with self._calls_lock:
            self._handed -= 1
        if failure is not None:
            answer.set_exception(failure)
        else:
            answer.set_result(call.result())
        self._dispatch()

    def _renew(self, broken: ProcessPoolExecutor | None) -> None:
        """A new pool in place of `broken` (None at start), unless another thread replaced it already."""
        with self._lock:
            if self._pool is broken:
                self._renew_locked()

    def _renew_locked(self) -> None:
        """A new pool in place of the current one (none at start); the caller holds the lock."""
        if self._stop.is_set():
            return
        if self._pool is not None and is_alias(self.config.model):
            # The new workers load the version the old ones served, pinned: the alias may point at a version they
            # could not load (kept serving the one they had), and loading that would stop the whole service. They
            # then follow the alias as every worker does. The dead worker's file counts too: it had served.
            served = [state.serving for state in self._group.workers(self._generation) if state.serving is not None]
            if served:
                self._in_service = f"models:/{served[-1]['model_version']}"
        # The number moves first: the retired pool's calls, broken by the kill, are then not taken for this pool's.
        self._generation += 1
        if self._pool is not None:
            # Said once, whichever noticed the death (a request, or the watch between requests): a death found by a
            # request had left no line in the log, only the new pool's "serving" lines.
            log.warning(
                "a worker process died (%s); replacing the worker processes, which load again (503 meanwhile)",
                _deaths(self._processes),
            )
            _retire(self._pool, 0.0)
            self._group.forget(self._generation - 1)
        self._pool = ProcessPoolExecutor(
            self.plan.workers,
            get_context("spawn"),
            initializer=_load,
            initargs=(str(self._group.directory), self._generation, self._in_service),
        )
        # The pool starts a worker per call while none is idle: one call each starts them all now.
        for _ in range(self.plan.workers):
            self._pool.submit(os.getpid).add_done_callback(partial(self._started, self._generation))
        # Started by those calls. Read from the pool when a death is found, they were at times gone already (the
        # pool, broken, had let them go), and the log said "exit unknown" of a worker killed by SIGKILL.
        self._processes = list((self._pool._processes or {}).values())

    def _started(self, generation: int, call) -> None:
        """A worker that died before it wrote its file broke the pool before the call could run."""
        if generation != self._generation or call.cancelled() or not isinstance(call.exception(), BrokenProcessPool):
            return
        self._fail(self._group.failure() or "a worker process died while loading")

    def _fail(self, reason: str) -> None:
        if self.failure is None and not self._stop.is_set():
            self.failure = reason
            if self._on_failure is not None:
                self._on_failure(reason)

    def _watch(self) -> None:
        """Every second: stops the service when a worker could not load, and replaces the pool when a worker that
        had served died (killed, out of memory) between requests."""
        while not self._stop.wait(_WATCH_SECONDS):
            with self._lock:
                if self._stop.is_set():
                    return
                dead = [state for state in self._group.workers(self._generation) if not state.alive]
                reason = self._group.failure()
                if reason is None and dead and all(state.serving is None for state in dead):
                    reason = "a worker process died while loading"
                if reason is None:
                    if dead:
                        self._renew_locked()
                    continue
            self._fail(reason)
            return


# In a worker process: the matcher it serves.
_holder: ModelHolder | None = None


def _load(directory: str, pool: int, first: str | None = None) -> None:
    """A worker's initializer: loads the plan's matcher (`first`, if given, before following the plan's alias), or
    records why it cannot and ends the process."""
    global _holder
    # A spawned process starts with Python's own format, a source line below a "UserWarning": as the command's.
    warnings.formatwarning = one_line_warning
    group = WorkerGroup(directory)
    group.mark_loading(pool, os.getpid())
    hold_blas_threads(1)  # as the single-process service: answers the same bits whichever process gives them
    # The first pool reads the files named at start, so that what it says of them names them; a replacement the
    # copies taken then.
    plan = group.plan(copies=pool > 1)
    supervisor = os.getppid()
    holder = ModelHolder(Path(plan.creators), plan.config, first)
    loaded = threading.Event()

    def changed() -> None:
        group.mark_serving(pool, os.getpid(), holder.served())
        loaded.set()

    holder.start(on_failure=lambda _: loaded.set(), on_change=changed)
    loaded.wait()
    if holder.matcher is None:
        group.fail(holder.failure or "the worker could not load")
        os._exit(3)  # the reason is recorded; an exception here would print a traceback
    _holder = holder

    def orphaned() -> None:  # a supervisor killed outright cannot stop its workers: they stop themselves
        while os.getppid() == supervisor:
            threading.Event().wait(_WATCH_SECONDS)
        os._exit(0)

    threading.Thread(target=orphaned, name="supervisor-watch", daemon=True).start()


def _match(campaigns):
    return _holder.match(campaigns)


def _similar(creator_ids, k, marketplaces, creator_types):
    return _holder.similar(creator_ids, k, marketplaces, creator_types)


# What `WorkerPool.submit` runs in a worker, by the name of `ModelHolder`'s method.
_WORK = {"match": _match, "similar": _similar}
