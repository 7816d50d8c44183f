"""The Ray engine: campaign chunks embedded and scored on Ray Data by a pool of actors holding a scorer.

The driver splits campaigns into the same chunks as the local engine and each actor scores whole chunks
with its own copy of the `matcher.scoring.Scorer` (ranker heads, creator table and vectors, candidate index,
creators' records), so a chunk is embedded in the same batches on either engine and the scores are the same
numbers. Slates are assigned on the driver,
across all chunks, exactly as locally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import signal
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from features.environment import RAY_ADDRESS_ENV
from features.errors import MatcherError

if TYPE_CHECKING:
    from matcher.scoring import Scorer

__all__ = ["RAY_ADDRESS_ENV", "RayUnavailable", "check_reachable", "import_ray", "ray_session", "score_on_ray"]

# Fractional CPUs: on a small machine, actors holding whole CPUs leave none for Ray Data's own tasks.
ACTOR_CPUS = 0.5


class RayUnavailable(MatcherError):
    """`--engine ray` was asked for but Ray is not installed, or the cluster at $RAY_ADDRESS does not answer."""


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayUnavailable(
            "--engine ray needs Ray: pip install 'creator-matcher[ray]' (or use --engine local)"
        ) from exc
    return ray


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Refuses a Ray address whose head answers no connection within `timeout` seconds: `ray.init` retried one for
    as long as a nightly job was let run, printing C++ warnings.

    Raises:
        RayUnavailable: nothing accepts connections at the address's host and port.
    """
    where = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = where.hostname, where.port
    except ValueError as exc:  # a port that is not a number
        raise RayUnavailable(f"${RAY_ADDRESS_ENV}={address!r} is not host:port ({exc})") from exc
    if host is None or port is None:  # "auto" or "local": Ray finds or starts the cluster itself
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise RayUnavailable(
            f"cannot reach the Ray cluster at ${RAY_ADDRESS_ENV}={address}: {exc.strerror or exc}; unset it to run "
            "Ray on this machine, or use --engine local"
        ) from exc


@contextlib.contextmanager
def ray_session(progress: bool = False) -> Iterator[None]:
    """Connects to $RAY_ADDRESS when set, else starts a local Ray for the duration; shuts down what it started."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    address = os.environ.get(RAY_ADDRESS_ENV)
    if address:
        check_reachable(address)
    # A batch job's output is its summary and one line per bad row, not Ray's start-up and planning chatter.
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # A short private temp dir: Ray's socket paths must stay under the OS limit, and runs must not collide.
    temp_dir = None if address else tempfile.mkdtemp(prefix="ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    # ray.init sets a SIGTERM handler of its own (an exit with status 15) and leaves it: the caller's comes back
    # after the session, so that a run's writes after it are stopped as its scoring was.
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
            **({} if address else {"num_cpus": os.cpu_count() or 1, "_temp_dir": temp_dir}),
        )
        ray.data.DataContext.get_current().enable_progress_bars = progress
        from matcher.termination import terminated_as_exit

        # SIGTERM ends the run as SystemExit(143), so that Ray is shut down and its temp folder removed: Ray's own
        # handler aborted the process (status 134, a native stack dump) and left both behind.
        with terminated_as_exit():
            yield
    finally:
        ray.shutdown()
        if before is not None:
            signal.signal(signal.SIGTERM, before)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


class _ChunkScorer:
    """A Ray Data actor: holds one scorer and turns pickled campaign chunks into Parquet bytes of scored pairs."""

    def __init__(self, scorer_ref: list) -> None:
        import ray

        self.scorer = ray.get(scorer_ref[0])
        # The pool's actors already share the cores: each encodes on one thread (the same bits as on several).
        self.scorer.embedder = self.scorer.embedder.isolated(threads=1)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        scored = [self.scorer.score_parquet(*pickle.loads(payload)) for payload in batch["campaigns"]]
        return pd.DataFrame({"chunk": batch["chunk"].to_numpy(), "scored": scored})


def score_on_ray(
    scorer: Scorer, chunks: Mapping[int, pd.DataFrame], actors: int = 2, vectors: Mapping[int, np.ndarray] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Scores campaign chunks on the current Ray cluster; yields (chunk number, Parquet bytes) as they finish.

    Args:
        scorer: what scores a chunk (`Matcher.scorer`); put in the object store once and copied into each actor.
        chunks: campaign chunks by number, each scored whole by one actor.
        actors: size of the actor pool.
        vectors: each chunk's brief vectors, where already embedded (see `Scorer.features`).

    Raises:
        RayUnavailable: Ray is not installed.
        ValueError: `actors` is below 1.
    """
    if actors < 1:
        raise ValueError(f"Got actors={actors}; expected at least 1")
    ray = import_ray()
    if not chunks:
        return
    vectors = vectors or {}
    items = [
        {"chunk": number, "campaigns": pickle.dumps((frame, vectors.get(number)))} for number, frame in chunks.items()
    ]
    # One block per chunk, so the pool works on several chunks at once and never splits one.
    dataset = ray.data.from_items(items).repartition(len(items))
    with warnings.catch_warnings():
        # Ray 2.60 deprecates extra remote arguments but names no replacement for max_restarts yet.
        warnings.simplefilter("ignore", DeprecationWarning)
        scored = dataset.map_batches(
            _ChunkScorer,
            # Nested in a list, the reference is fetched by each actor: one copy in the object store.
            fn_constructor_args=([ray.put(scorer)],),
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(items))),
            num_cpus=ACTOR_CPUS,
            batch_size=1,
            batch_format="pandas",
            # A lost actor is not restarted: the job fails, and its rerun resumes from the committed chunks.
            max_restarts=0,
        )
    for row in scored.iter_rows():
        yield int(row["chunk"]), bytes(row["scored"])
