"""`creator-match serve --workers N`: the service as N processes accepting on one socket.

One process runs one request's pandas and model code at a time (Python's GIL), so on a machine with several cores
a single process leaves most of them idle while concurrent requests queue behind each other. uvicorn's supervisor
starts N worker processes (spawned: nothing loaded in the parent is shared) that accept on the same socket, and
the kernel spreads the connections among them. Each worker reads the creators and loads the ranker, index and
encoder itself, in the background, as a single process does.

The workers of one service share a directory (`WorkerGroup`): the plan they all serve, one file per worker that
has loaded, and the first failure. `/readyz` answers 200 only once every worker has loaded, so a client that waits
for readiness is never sent to a worker still loading; a worker that cannot load records why and stops the whole
service, which then exits with that reason, as a single process does. Each worker watches the model alias on
its own: for up to `--poll-seconds` after a promotion, workers may answer with different versions (each response
names its `model_version`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from features.environment import SERVICE_GROUP_ENV
from matcher.model_holder import ServiceConfig

__all__ = ["WorkerGroup", "WorkerPlan", "worker_app"]

_PLAN = "plan.pickle"
_FAILURE = "failure.txt"
_READY = "ready-"


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


class WorkerGroup:
    """The directory the workers of one service share: the plan, a file per loaded worker, the first failure.

    Args:
        directory: the group's directory, made by `create`.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def create(cls, plan: WorkerPlan) -> WorkerGroup:
        """A new private directory holding `plan`."""
        group = cls(tempfile.mkdtemp(prefix="creator-match-serve-"))
        (group.directory / _PLAN).write_bytes(pickle.dumps(plan))
        return group

    def plan(self) -> WorkerPlan:
        # Written by `create` into a directory only this user can write: not data from elsewhere.
        return pickle.loads((self.directory / _PLAN).read_bytes())

    def mark_ready(self, pid: int) -> None:
        """Worker `pid` has loaded and serves."""
        (self.directory / f"{_READY}{pid}").touch()

    def ready_workers(self) -> int:
        """How many live workers have loaded (a worker that died and was replaced counts once it loads again)."""
        count = 0
        for marker in self.directory.glob(f"{_READY}*"):
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(marker.name.removeprefix(_READY)), 0)
                count += 1
        return count

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
        """Deletes the group's directory (the service's own temporary files, nothing of the user's)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def worker_app() -> FastAPI:
    """The application of one worker process (uvicorn's factory): the group named by the environment's plan."""
    from matcher.model_holder import ModelHolder
    from matcher.service import create_app

    group = WorkerGroup(os.environ[SERVICE_GROUP_ENV])
    plan = group.plan()
    holder = ModelHolder(Path(plan.creators), plan.config)  # read in the background: /healthz answers at once

    def give_up(reason: str) -> None:
        group.fail(reason)
        os.kill(os.getppid(), signal.SIGTERM)  # the supervisor stops every worker and returns

    holder.start(on_failure=give_up, on_ready=lambda: group.mark_ready(os.getpid()))
    return create_app(holder, workers=lambda: (group.ready_workers(), plan.workers))
