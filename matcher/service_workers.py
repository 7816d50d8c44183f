"""`creator-match serve --workers N`: requests answered by N worker processes, each holding a loaded matcher.

One process runs one request's pandas and model code at a time (Python's interpreter lock), so on a machine with
several cores a single process leaves most of them idle while concurrent requests queue behind each other. With
`--workers N` the HTTP server stays one process, which reads and validates bodies and writes replies, and hands
each request to whichever of N worker processes is free (each a spawned single-process `ProcessPoolExecutor`):
requests, not connections, are spread, so four clients on keep-alive connections keep two workers equally busy
whichever connections the kernel gave to whom.

Each worker reads the creators and loads the ranker, index and encoder itself, and watches the model alias on
its own. The workers of one service share a directory (`WorkerGroup`): the plan they serve, one file per worker
process (loading, or the model version it serves), and why a worker process could not load. The service is ready
once every worker serves; a worker that cannot load at start stops the service with the reason, as a single process
does: at start a failure is most likely the configuration's, and a process supervisor shows it at once. A worker
that dies after it served is replaced alone, within a second, while the others answer: its call in progress is
answered 503, and its replacement loads the version in service rather than the alias (which may point at a version
that failed to load) from copies of the creators table and index taken at start. Only while no worker serves is
every request answered 503 with Retry-After.

A replacement that cannot load (the registry or artifact store briefly unreachable, a load killed for memory, a
full disk) or cannot be started does not stop the service: what it loads had served, so the cause is outside it.
The log says each failure once, in one line; /readyz stays 200 while another worker serves, its reason and
`workers.replacement_failure` saying why, and that place is tried again after 1 s, then 2, 4, ... at most 60 s
apart (`_RETRY_FIRST_SECONDS`, `_RETRY_MOST_SECONDS`): the first retry soon, as a blip lasts seconds; the cap
bounds both the CPU a lasting cause costs (a failed load imports the work libraries, seconds of a core) and how
long after the cause is gone the service is whole again. Once no worker has served for a minute
(`_UNSERVED_MOST_SECONDS`, a few attempts), the next failure while no other replacement is loading (which may be
about to serve) stops the service with its reason, exit status 2, for a process supervisor to start it afresh:
nothing answers meanwhile anyway (503 with Retry-After, as at start).
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
from training.registry import first_line

__all__ = ["WorkerGroup", "WorkerPlan", "WorkerPool", "WorkerState"]

_PLAN = "plan.pickle"
# The folder of the copies of the creators table and candidate index (`WorkerGroup.plan`), and the index's in it.
_SERVED = "served"
_INDEX = "index"
_FAILURE = "failure-"
_WORKER = "worker-"
# How often the pool looks for a worker that died between requests, and a worker for a supervisor that died.
_WATCH_SECONDS = 1.0
# How long after a replacement's failure to load that place is tried again: doubling from the first to the most.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MOST_SECONDS = 60.0
# How long no worker may serve before a replacement's failure to load stops the service (the module's docstring).
_UNSERVED_MOST_SECONDS = 60.0
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
    """One worker process, as its file says.

    Args:
        launch: which worker process of the service it is (`WorkerPool` counts them from 1).
        pid: the worker's process id.
        alive: whether the process still runs.
        serving: what it serves (model version, creators), or None while it loads.
    """

    launch: int
    pid: int
    alive: bool
    serving: dict | None


class WorkerGroup:
    """The directory the workers of one service share: the plan, a file per worker process, and one per worker
    process that could not load, saying why.

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
        replacement worker reads those, so that it serves what the first ones did: it once read the paths given at start
        again, and where a refresh had moved those files away a worker's death stopped the whole service."""
        # Written by `create` into a directory only this user can write: not data from elsewhere.
        plan = pickle.loads((self.directory / _PLAN).read_bytes())
        if not copies:
            return plan
        served = self.directory / _SERVED
        config = plan.config if plan.config.index is None else replace(plan.config, index=str(served / _INDEX))
        return replace(plan, creators=str(served / Path(plan.creators).name), config=config)

    def mark_loading(self, launch: int, pid: int) -> None:
        """Worker process number `launch`, `pid`, has started and is loading."""
        self._write(launch, pid, None)

    def mark_serving(self, launch: int, pid: int, served: dict) -> None:
        """Worker process number `launch`, `pid`, serves what `served` says (`ModelHolder.served`: its model
        version, creators, and the alias's version it could not load, if any)."""
        self._write(launch, pid, served)

    def workers(self, launches: list[int]) -> list[WorkerState]:
        """The worker processes numbered `launches` that have written their file, the most recently changed last."""
        wanted, found = set(launches), []
        for marker in self.directory.glob(f"{_WORKER}*"):
            with contextlib.suppress(ValueError, OSError):  # a file removed or replaced meanwhile
                launch, pid = (int(part) for part in marker.name.removeprefix(_WORKER).split("-"))
                if launch in wanted:
                    state = WorkerState(launch, pid, _alive(pid), json.loads(marker.read_text()))
                    found.append((marker.stat().st_mtime_ns, state))
        return [state for _, state in sorted(found, key=lambda item: item[0])]

    def forget(self, launch: int) -> None:
        """Removes the files of worker process number `launch`, replaced: a service whose workers died now and then
        kept a file for each of them."""
        for marker in self.directory.glob(f"{_WORKER}{launch}-*"):
            marker.unlink(missing_ok=True)
        (self.directory / f"{_FAILURE}{launch}").unlink(missing_ok=True)

    def fail(self, launch: int, reason: str) -> None:
        """Records why worker process number `launch` cannot serve, in one line; whether that stops the service is
        the pool's to say (a worker at start, or a replacement)."""
        with atomic_path(self.directory / f"{_FAILURE}{launch}") as staged:
            staged.write_text(reason)

    def failure(self, launch: int) -> str | None:
        """Why worker process number `launch` could not load, if it recorded why."""
        with contextlib.suppress(FileNotFoundError):
            return (self.directory / f"{_FAILURE}{launch}").read_text()
        return None

    def remove(self) -> None:
        """Deletes the group's directory if it holds only the group's own files (nothing of the user's)."""
        remove_directory(self.directory, self._why_not_ours)
        release_temp_dir(self.directory, remove=False)

    def _write(self, launch: int, pid: int, serving: dict | None) -> None:
        # Written whole: a reader never sees half a file.
        with atomic_path(self.directory / f"{_WORKER}{launch}-{pid}") as staged:
            staged.write_text(json.dumps(serving))

    @staticmethod
    def _why_not_ours(directory: Path) -> str | None:
        foreign = foreign_entries(directory, [_PLAN, _SERVED, f"{_FAILURE}*", f"{_WORKER}*", OWNER_LOCK])
        return f"it holds files the service did not write: {foreign}" if foreign else None


def _retire(pools: list[ProcessPoolExecutor], grace: float) -> None:
    """Shuts `pools` down together; those of their workers that have not ended within `grace` seconds are killed.

    A shutdown alone does not end a pool one of whose workers died: a survivor waits for good on the queue lock the
    dead one held (CPython kills the survivors itself only when it sees the death before the shutdown). Python 3.14's
    `ProcessPoolExecutor.kill_workers` does this; 3.11 needs the pool's own list of processes.
    """
    processes = [process for pool in pools for process in (pool._processes or {}).values()]
    for pool in pools:
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
    worker's replacement: a process object closed meanwhile is an ended process of unknown exit.
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


class _Worker:
    """One worker process, alone in its own executor, so that its death breaks nothing but it.

    Args:
        launch: which worker process of the service's life this is, counted from 1: its file in the group carries
            the number.
        executor: the single-process executor it runs in.
        process: its process.
        replacement: it replaces one that had served (its failure to load is retried), not one of the first N.
    """

    def __init__(self, launch: int, executor: ProcessPoolExecutor, process, replacement: bool) -> None:
        self.launch = launch
        self.executor = executor
        self.process = process
        self.replacement = replacement
        self.loaded = False  # its initializer has returned: it serves
        self.busy = False  # it holds a call
        self.handed = 0  # when it was last handed a call (`WorkerPool._handed`'s count then); 0: never
        self.broken = False  # a call found it dead: no call goes to it any more

    def ended(self) -> bool:
        """Whether it is known to have died: a call found it so, its sentinel is closed, or /proc says it has ended
        (a process with threads reads "Z" there before its sentinel closes)."""
        try:
            return self.broken or bool(wait([self.process.sentinel], timeout=0)) or not _alive(self.process.pid)
        except ValueError:  # a closed process object
            return True


@dataclass(frozen=True)
class _Retry:
    """A place whose replacement could not load (or be started), until one there serves.

    Args:
        launch: the worker process whose failure this is (dead, still in its place until the next attempt).
        failures: how many attempts in a row have failed in this place.
        failed_at: when the last one was found to have failed (`time.monotonic`).
        due: when the next attempt starts.
        reason: why the last one failed, in one line.
    """

    launch: int
    failures: int
    failed_at: float
    due: float
    reason: str


class WorkerPool:
    """The matcher in N worker processes: `readiness` as `ModelHolder` answers it, and its `match` and `similar`
    through `submit` (a future, so that the service waits without a thread and can drop a call no worker has taken).

    Each worker runs in a single-process executor of its own: the standard library marks a whole executor broken
    when one of its processes dies, and one executor of N processes made every worker load again after any death.

    Args:
        plan: what the workers serve, and how many there are.
    """

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.config = plan.config
        self.failure: str | None = None
        self._group: WorkerGroup | None = None
        self._workers: list[_Worker] = []  # the current worker of each of the N places
        self._launches = 0  # worker processes started so far: the last one's number
        self._in_service: str | None = None  # the model URI a replacement loads first
        # Every worker has served: from then on the service answers while at least one does. Before, /readyz is 503
        # until all N serve, as a load balancer expects of a service that is starting.
        self._complete = False
        # The places whose replacement could not load, by place: tried again with backoff (`_replacement_failed`).
        self._retries: dict[int, _Retry] = {}
        self._unserved_since: float | None = None  # since when no worker has served (as the watch last found)
        self._lock = threading.Lock()  # held while workers are started, replaced or retired
        self._stop = threading.Event()
        self._wake = threading.Event()  # a call found its worker dead: the watch replaces it now, not a second later
        self._on_failure = None
        # Calls not yet handed to a worker (their answer's future, the function, its arguments): `submit`.
        self._waiting: deque[tuple[Future, Any, tuple]] = deque()
        self._handed = 0  # calls handed to workers so far
        # Over `_waiting`, `_handed`, `_workers`, each worker's state, `_retries` and `_unserved_since`.
        self._calls_lock = threading.Lock()

    def start(self, on_failure=None) -> None:
        """Starts the workers (they load in the background) and a thread that replaces a worker that died.

        Args:
            on_failure: called with the reason, in one line, if a worker cannot load.
        """
        self._on_failure = on_failure
        self._group = WorkerGroup.create(self.plan)
        with self._lock:
            for place in range(self.plan.workers):
                self._launch(place)
        threading.Thread(target=self._watch, name="worker-pool", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._calls_lock:
            for answer, _, _ in self._waiting:
                answer.cancel()
        with self._lock:
            _retire([worker.executor for worker in self._workers], _STOP_GRACE_SECONDS)
            if self._group is not None:
                self._group.remove()

    def readiness(self) -> tuple[bool, dict]:
        """Ready once all N workers have served; after that, while any serves, with how many do (the others are
        being replaced after a death) and, while a replacement could not load, why (the last failure): degraded.
        Not ready while none serves."""
        if self.failure:
            return False, {"status": "failed", "reason": self.failure}
        with self._calls_lock:
            launches = [worker.launch for worker in self._workers if worker.loaded and not worker.ended()]
            retries = list(self._retries.values())
        states = self._group.workers(launches) if self._group is not None else []
        serving = [state.serving for state in states if state.alive and state.serving is not None]
        workers: dict[str, Any] = {"serving": len(serving), "of": self.plan.workers}
        reason = f"{len(serving)} of {self.plan.workers} worker processes serving"
        if retries:
            last = max(retries, key=lambda retry: retry.failed_at)
            workers["replacement_failure"] = last.reason
            reason += (
                f"; degraded: a replacement could not load ({last.failures} failed in a row, tried again with "
                f"backoff): {last.reason}"
            )
        if not serving or (len(serving) < self.plan.workers and not self._complete):
            return False, {"status": "loading", "reason": reason, "workers": workers}
        if len(serving) < self.plan.workers:
            if not retries:
                reason += "; the others are being replaced"
            return True, {"status": "ready", "reason": reason, **serving[-1], "workers": workers}
        return True, {"status": "ready", **serving[-1], "workers": workers}

    def submit(self, work: str, *args) -> Future:
        """`work` ("match" or "similar", as `ModelHolder` answers it) on `args`, handed to the next free worker
        process without waiting: the future of its answer, read with `outcome` once done.

        A call waits here, not in a worker's executor, until a worker is free: an executor marks as running (so
        past any `cancel`) every call it has queued for its process, long before the process takes it. `cancel()`
        therefore succeeds exactly while no worker has the call; a call a worker has runs to its end, or fails
        with NotServing if that worker dies meanwhile. Such a call is not run again elsewhere: whether it had
        started cannot be told, and a call that killed its worker (a batch too large for its memory) would kill the
        next one too. A call never goes to a worker already known dead.

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
        """The answer of a done call `submit` returned (its exception raised; NotServing if its worker died)."""
        if answer.cancelled():  # by `stop`, still waiting for a worker
            raise NotServing("the service is stopping")
        return answer.result(timeout=0)

    def _dispatch(self) -> None:
        """Hands waiting calls to free workers that serve, one each, the one handed a call least recently first (so
        that calls are shared, as workers taking them from one queue share them); skips those cancelled. With no
        worker serving at all (every one died, and their replacements load), the waiting calls are answered
        NotServing at once, as a request that arrives then is, rather than held through a load."""
        while True:
            with self._calls_lock:
                if not self._waiting:
                    return
                serving = [worker for worker in self._workers if worker.loaded and not worker.ended()]
                if not serving:
                    stranded = list(self._waiting)
                    self._waiting.clear()
                    break
                free = [worker for worker in serving if not worker.busy]
                if not free:
                    return
                answer, function, args = self._waiting.popleft()
                if not answer.set_running_or_notify_cancel():
                    continue
                worker = min(free, key=lambda worker: worker.handed)
                self._handed += 1
                worker.busy, worker.handed = True, self._handed
            try:
                call = worker.executor.submit(function, *args)
            except (BrokenProcessPool, RuntimeError) as exc:  # RuntimeError: shut down, as a replaced one is
                stopping = self._stop.is_set()  # `stop` shut every worker down: none is being replaced
                failure = NotServing("the service is stopping") if stopping else self._died(worker, exc)
                self._settle(answer, worker, failure)
            else:
                # Run by the executor's own thread when the call ends (or at once here, if it has already).
                call.add_done_callback(partial(self._finished, answer, worker))
        for answer, _, _ in stranded:
            if answer.set_running_or_notify_cancel():
                answer.set_exception(NotServing(f"0 of {self.plan.workers} worker processes serving"))

    def _finished(self, answer: Future, worker: _Worker, call: Future) -> None:
        if call.cancelled():  # by the executor itself: shut down (the service stopping) with the call queued
            self._settle(answer, worker, NotServing("the service is stopping"))
        elif isinstance(call.exception(), BrokenProcessPool):
            self._settle(answer, worker, self._died(worker, call.exception()))
        else:
            self._settle(answer, worker, call.exception(), call)

    def _died(self, worker: _Worker, cause: BaseException) -> NotServing:
        """The answer of a call whose worker died (or was retired) before the call ended; the watch replaces the
        worker now."""
        with self._calls_lock:
            worker.broken = True
        self._wake.set()
        died = NotServing("the worker process answering this request stopped; it is being replaced")
        died.__cause__ = cause
        return died

    def _settle(self, answer: Future, worker: _Worker, failure: BaseException | None, call: Future | None = None):
        """Ends `answer` with `failure`, or else with `call`'s result; the next waiting call goes to a free
        worker."""
        with self._calls_lock:
            worker.busy = False
        if failure is not None:
            answer.set_exception(failure)
        else:
            answer.set_result(call.result())
        self._dispatch()

    def _launch(self, place: int, first: str | None = None) -> None:
        """Starts a worker process in `place` (0 to N-1), in place of the one there if any; it loads `first`, if
        given, before following the plan's alias. The caller holds `_lock`."""
        self._launches += 1
        # The first N read the files named at start, so that what they say of them names them; a replacement the
        # copies taken then.
        copies = self._launches > self.plan.workers
        executor = ProcessPoolExecutor(
            1,
            get_context("spawn"),
            initializer=_load,
            initargs=(str(self._group.directory), self._launches, copies, first),
        )
        # A call starts the process, which runs it once it has loaded: its end says the worker serves.
        started = executor.submit(os.getpid)
        (process,) = executor._processes.values()
        worker = _Worker(self._launches, executor, process, replacement=copies)
        with self._calls_lock:
            if place < len(self._workers):
                self._workers[place] = worker
            else:
                self._workers.append(worker)
        started.add_done_callback(partial(self._started, worker))

    def _started(self, worker: _Worker, call: Future) -> None:
        """`worker` has loaded and takes calls; or it died while loading (before it wrote its file, too), which
        stops the service if it was one of the first N, and is the watch's to retry if it was a replacement."""
        if call.cancelled():  # retired while loading: the service stopping
            return
        if call.exception() is None:
            with self._calls_lock:
                worker.loaded = True
                complete = len(self._workers) == self.plan.workers and all(each.loaded for each in self._workers)
                self._complete = self._complete or complete
                retried = self._retries.pop(self._workers.index(worker), None) if worker in self._workers else None
                self._unserved_since = None  # here too: a worker that serves and dies within a watch's second
            if retried is not None:
                log.warning(
                    "a replacement worker process serves, after %d that could not load; %s",
                    retried.failures,
                    self._serving_count(),
                )
            self._dispatch()
        elif isinstance(call.exception(), BrokenProcessPool) and worker in self._workers:
            if worker.replacement:
                self._wake.set()
            else:
                self._fail(self._group.failure(worker.launch) or "a worker process died while loading")

    def _serving_count(self) -> str:
        with self._calls_lock:
            serving = sum(1 for each in self._workers if each.loaded and not each.ended())
        return f"{serving} of {self.plan.workers} worker processes serving"

    def _replace(self, worker: _Worker) -> str | None:
        """A new worker in the place of `worker`, which served and died; the others serve meanwhile. The caller
        holds `_lock`. The reason to stop the service, if one could not be started (`_relaunch`)."""
        if is_alias(self.config.model):
            # The replacement loads the version the workers serve, pinned: the alias may point at a version they
            # could not load (kept serving the one they had), and loading that would stop the whole service. It
            # then follows the alias as every worker does. The dead worker's file counts too: it had served.
            states = self._group.workers([each.launch for each in self._workers])
            served = [state.serving for state in states if state.serving is not None]
            if served:
                self._in_service = f"models:/{served[-1]['model_version']}"
        others = sum(1 for each in self._workers if each is not worker and each.loaded and not each.ended())
        # Said once, whichever noticed the death (a call on it, or the watch between requests).
        log.warning(
            "a worker process died (%s); replacing it alone, %d of %d worker processes serving meanwhile",
            _deaths([worker.process]),
            others,
            self.plan.workers,
        )
        return self._relaunch(worker)

    def _relaunch(self, worker: _Worker) -> str | None:
        """A new worker in the place of `worker`, dead, loading the version in service first; one that cannot be
        started (EAGAIN, ENOMEM, too many files) counts as a replacement that could not load. The caller holds
        `_lock`. The reason to stop the service, if that failure is the one that does (`_replacement_failed`)."""
        # Retired first: a launch that fails (no process can be started) must not leave the dead one's executor.
        _retire([worker.executor], 0.0)
        self._group.forget(worker.launch)
        try:
            self._launch(self._workers.index(worker), self._in_service)
        except Exception as exc:  # the watch would end with the exception, and no later death be replaced or said
            return self._replacement_failed(worker, f"a worker process could not be started: {first_line(exc)}")
        return None

    def _replacement_failed(self, worker: _Worker, reason: str) -> str | None:
        """Records that `worker`, dead in its place, was a replacement that could not load (or be started) for
        `reason`, says so once, and sets when that place is tried again; or, once no worker has served for
        `_UNSERVED_MOST_SECONDS`, returns the reason to stop the service. The caller holds `_lock`."""
        now = time.monotonic()
        with self._calls_lock:
            unserved = None if self._unserved_since is None else now - self._unserved_since
            # Another place's worker still loading may be about to serve: stopping would throw its load away and
            # have a supervisor load all N again.
            loading = any(each is not worker and not each.loaded and not each.ended() for each in self._workers)
        if unserved is not None and unserved >= _UNSERVED_MOST_SECONDS and not loading:
            return f"no worker process has served for {unserved:.0f} s, and a replacement could not load: {reason}"
        with self._calls_lock:
            place = self._workers.index(worker)
            before = self._retries.get(place)
            failures = 1 if before is None else before.failures + 1
            delay = min(_RETRY_FIRST_SECONDS * 2 ** (failures - 1), _RETRY_MOST_SECONDS)
            self._retries[place] = _Retry(worker.launch, failures, now, now + delay, reason)
        log.warning(
            "a replacement worker process could not load (failure %d in a row): %s; trying again in %.0f s, %s "
            "meanwhile",
            failures,
            reason,
            delay,
            self._serving_count(),
        )
        return None

    def _fail(self, reason: str) -> None:
        # Called by the watch and by the executors' threads: the first reason is the one kept and reported once.
        with self._calls_lock:
            first = self.failure is None and not self._stop.is_set()
            if first:
                self.failure = reason
        if first and self._on_failure is not None:
            self._on_failure(reason)

    def _watch(self) -> None:
        """Every second, or at once when a call found its worker dead: `_look_after` the workers, until the service
        stops or one of them stops it."""
        while True:
            self._wake.wait(_WATCH_SECONDS)
            self._wake.clear()
            with self._lock:
                if self._stop.is_set():
                    return
                reason = self._look_after()
            if reason is not None:
                self._fail(reason)
                return

    def _look_after(self) -> str | None:
        """Stops the service when one of the first N workers could not load; replaces each worker that had served
        and died (killed, out of memory), alone; records a replacement that could not load and starts the next
        attempt in its place when it is due. The caller holds `_lock`. The reason to stop the service, if any."""
        now = time.monotonic()
        with self._calls_lock:
            dead = [worker for worker in self._workers if worker.ended()]
            if any(worker.loaded and not worker.ended() for worker in self._workers):
                self._unserved_since = None
            elif self._unserved_since is None:
                self._unserved_since = now
            retries = dict(self._retries)
        states = self._group.workers([worker.launch for worker in dead])
        served = {state.launch for state in states if state.serving is not None}
        # Before any replacement: a service that cannot start starts nothing more.
        for worker in dead:
            if not worker.replacement and not worker.loaded and worker.launch not in served:
                return self._group.failure(worker.launch) or "a worker process died while loading"
        for worker in dead:
            retry = retries.get(self._workers.index(worker))
            if retry is not None and retry.launch == worker.launch:  # said already: its next attempt, when due
                reason = self._relaunch(worker) if now >= retry.due else None
            elif worker.loaded or worker.launch in served:
                reason = self._replace(worker)
            else:
                failure = self._group.failure(worker.launch)
                reason = self._replacement_failed(
                    worker, failure or f"it died while loading ({_deaths([worker.process])})"
                )
            if reason is not None:
                return reason
        return None


# In a worker process: the matcher it serves.
_holder: ModelHolder | None = None


def _load(directory: str, launch: int, copies: bool, first: str | None = None) -> None:
    """A worker's initializer: loads the plan's matcher (from the copies `WorkerGroup.create` took, with `copies`;
    `first`, if given, before following the plan's alias), or records why it cannot and ends the process."""
    global _holder
    # A spawned process starts with Python's own format, a source line below a "UserWarning": as the command's.
    warnings.formatwarning = one_line_warning
    group = WorkerGroup(directory)
    group.mark_loading(launch, os.getpid())
    hold_blas_threads(1)  # as the single-process service: answers the same bits whichever process gives them
    plan = group.plan(copies=copies)
    supervisor = os.getppid()
    holder = ModelHolder(Path(plan.creators), plan.config, first)
    loaded = threading.Event()

    def changed() -> None:
        group.mark_serving(launch, os.getpid(), holder.served())
        loaded.set()

    holder.start(on_failure=lambda _: loaded.set(), on_change=changed)
    loaded.wait()
    if holder.matcher is None:
        # On a full disk (one cause of a failure) the reason cannot be recorded: the pool then says the process
        # died while loading, without a traceback of this one's.
        with contextlib.suppress(OSError):
            group.fail(launch, holder.failure or "the worker could not load")
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
