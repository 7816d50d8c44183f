"""OpenMP thread limits for small inputs.

Boosted trees and FAISS parallelise with OpenMP. On a few hundred rows, starting a team of threads costs more
than the work it shares out, and far more on a busy machine, where the team waits for every thread to be
scheduled: a single-campaign match spent 2.1 s of 2.8 s predicting its ~400 pairs on two threads (600 trees,
each a parallel region) and 0.07 s on one (benchmarks/service.py's catalogue, 10,000 creators, load average 12).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["openmp_threads"]

_controller = None
_controller_lock = threading.Lock()


def _openmp():
    """The process's OpenMP runtimes, found once (scanning the loaded libraries takes ~10 ms).

    Runtimes loaded after the first call are not limited; faiss-cpu and scikit-learn ship the same libgomp,
    which the dynamic loader shares, and both are imported before any search or prediction runs.
    """
    global _controller
    with _controller_lock:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController().select(user_api="openmp")
        return _controller


@contextlib.contextmanager
def openmp_threads(limit: int | None) -> Iterator[None]:
    """OpenMP parallel regions started by this thread use at most `limit` threads in the block (None: no change).

    The limit is libgomp's per-thread setting, so other threads, e.g. a service's concurrent requests, keep theirs.
    """
    if limit is None:
        yield
        return
    with _openmp().limit(limits=limit):
        yield
