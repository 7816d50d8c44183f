"""SIGTERM as an exit that unwinds: the one handler every command and run takes it with.

Nothing here imports more than the standard library, so the command line takes the signal before its libraries load.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["raise_if_terminated", "terminated_as_exit"]

# The SIGTERMs taken since the outermost block opened (main thread only), and how many blocks are open: Python
# runs a handler at whatever code is running, and where that code cannot pass an exception on, the handler's
# SystemExit is lost and the block would go on to exit 0. Cython's modules register their memoryview types at import
# inside a bare `except: pass`, and importlib frees each module's lock in a weakref callback, whose exceptions are
# only reported ("Exception ignored in ..."): both run thousands of times while the command's libraries load
# (docs/measurements.md).
_taken: list[int] = []
_depth = 0


def raise_if_terminated() -> None:
    """Raises again the SystemExit of a SIGTERM that the open `terminated_as_exit` block took but whose exception
    never arrived (see above), so that code that carries on past it (a run about to go ahead, a command about to
    report) stops there instead. Does nothing when no SIGTERM was taken."""
    if _taken:
        raise SystemExit(128 + _taken[0])


@contextlib.contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM in the block ends it as SystemExit(143), the status a process killed by it has, so that the code
    it interrupts unwinds: `finally` blocks and context managers run (half-written files removed, locks
    released, Ray shut down) and the caller can say where the job stood. Main thread only (where Python can take a
    signal); the handler there before is put back after the block.

    A SIGTERM taken is never lost: one whose SystemExit a library swallowed is raised again as the next block
    nested in this one opens (a match run's own), where code calls `raise_if_terminated` (a run about to go ahead,
    a match about to report), and at the latest as the outermost block ends without an exception.
    """
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raise_if_terminated()

    def stop(signum, frame) -> None:
        _taken.append(signum)
        raise SystemExit(128 + signum)

    def unreported(unraisable) -> None:
        # A SystemExit lost in a weakref callback or a finalizer is raised again where it can leave: Python's report
        # of it would be a traceback beside the command's one line.
        lost = isinstance(unraisable.exc_value, SystemExit) and _taken and unraisable.exc_value.code == 128 + _taken[0]
        if not lost:
            reported(unraisable)

    outermost = _depth == 0
    before, reported = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    _depth += 1
    try:
        if outermost:
            sys.unraisablehook = unreported
        signal.signal(signal.SIGTERM, stop)
        yield
        if outermost:
            raise_if_terminated()
    finally:
        _depth -= 1
        if outermost:
            sys.unraisablehook = reported
            _taken.clear()
        signal.signal(signal.SIGTERM, before)
