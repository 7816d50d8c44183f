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

__all__ = ["blas_threads", "hold_blas_threads", "openmp_threads"]

_controllers: dict[str, object] = {}
_controller_lock = threading.Lock()
# OpenBLAS's thread count is the process's: the blocks that limit it, and a limit held for good, share one state.
_blas_lock = threading.Lock()
_blas_blocks = 0  # blocks running now, in any thread
_blas_before: list[int] | None = None  # what the first of them found, put back when the last ends
_blas_held = False


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
    per match comparing each campaign's candidates on two OpenBLAS threads. OpenBLAS's setting is the process's:
    of overlapping blocks, in any threads, the first sets it and the last to end puts back what the first found
    (blocks that each put back what they found left the process on one thread for good after two overlapped).
    Meanwhile other threads' products are limited too, and a float32 product split over fewer threads can differ
    in its last bits, so a process whose calls overlap (the service) holds the limit for good instead
    (`hold_blas_threads`), which no block changes.
    """
    global _blas_blocks, _blas_before
    with _blas_lock:
        if _blas_blocks == 0 and not _blas_held:
            _blas_before = _set_blas(limit)
        _blas_blocks += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_blocks -= 1
            if _blas_blocks == 0 and _blas_before is not None:
                _set_blas(_blas_before)
                _blas_before = None


def hold_blas_threads(limit: int) -> None:
    """numpy's matrix products use at most `limit` threads from now on, in every thread of the process.

    For a process that serves overlapping calls: its answers then never depend on whether another call was
    running (see `blas_threads`).
    """
    global _blas_held, _blas_before
    with _blas_lock:
        _set_blas(limit)
        _blas_held = True
        _blas_before = None  # a block running now leaves the held limit in place when it ends


def _set_blas(counts: int | list[int]) -> list[int]:
    """Sets each BLAS runtime's thread count (one for all, or one each), from whichever thread calls; returns what
    each had. The caller holds `_blas_lock`.

    threadpoolctl lets only the first thread that limited OpenBLAS change it again while that thread lives, so a
    block ending in another thread could not put the setting back; `_blas_lock` already keeps threads from
    fighting over it, so the claim is released before each change.
    """
    runtimes = _runtimes("blas").lib_controllers
    before = []
    for runtime, count in zip(runtimes, [counts] * len(runtimes) if isinstance(counts, int) else counts, strict=True):
        before.append(runtime.get_num_threads())
        release = getattr(runtime, "clear_controlling_thread", None)
        if release is not None:
            release(force=True)
        runtime.set_num_threads(count)
    return before
