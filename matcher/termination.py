"""SIGTERM as an exit that unwinds: the one handler every command and run takes it with.

Nothing here imports more than the standard library, so the command line takes the signal before its libraries load.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["terminated_as_exit"]


@contextlib.contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM in the block ends it as SystemExit(143), the status a process killed by it has, so that the code
    it interrupts unwinds: `finally` blocks and context managers run (half-written files removed, locks
    released, Ray shut down) and the caller can say where the job stood. Main thread only (where Python can take a
    signal); the handler there before is put back after the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame) -> None:
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
