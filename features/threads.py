"""OpenMP and BLAS thread limits for small inputs.

Boosted trees and FAISS parallelise with OpenMP. On a few hundred rows, starting a team of threads costs more
than the work it shares out, and far more on a busy machine, where the team waits for every thread to be
scheduled: a single-campaign match spent 2.1 s of 2.8 s predicting its ~400 pairs on two threads (600 trees,
each a parallel region) and 0.07 s on one (benchmarks/service.py's catalogue, 10,000 creators, load average 12).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["blas_threads", "openmp_threads"]

_controllers: dict[str, object] = {}
_controller_lock = threading.Lock()


def _runtimes(user_api: str):
    """The process's OpenMP or BLAS runtimes, found once (scanning the loaded libraries takes ~10 ms).

    Runtimes loaded after the first call are not limited; faiss-cpu and scikit-learn ship the same libgomp,
    which the dynamic loader shares, and both are imported before any search or prediction runs.
    """
    with _controller_lock:
        if user_api not in _controllers:
            from threadpoolctl import ThreadpoolController

            _controllers[user_api] = ThreadpoolController().select(user_api=user_api)
        return _controllers[user_api]


@contextlib.contextmanager
def openmp_threads(limit: int | None) -> Iterator[None]:
    """OpenMP parallel regions started by this thread use at most `limit` threads in the block (None: no change).

    The limit is libgomp's per-thread setting, so other threads, e.g. a service's concurrent requests, keep theirs.
    """
    if limit is None:
        yield
        return
    with _runtimes("openmp").limit(limits=limit):
        yield


@contextlib.contextmanager
def blas_threads(limit: int) -> Iterator[None]:
    """numpy's matrix products use at most `limit` threads in the block.

    Products of a few hundred rows finish before a team of threads starts: a service worker spent twice the CPU
    per match comparing each campaign's candidates on two OpenBLAS threads. OpenBLAS's setting is the process's,
    so a concurrent thread's products are limited too while the block runs; only their speed can change.
    """
    with _runtimes("blas").limit(limits=limit):
        yield
