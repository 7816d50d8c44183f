"""What the tests' spawned processes run, in a module of its own: a spawned process imports the module of the
function it is given, and a test module's imports (the matcher's, MLflow's) cost each such process seconds."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["start_sleeping_threads"]


def start_sleeping_threads(count: int) -> int:
    """Starts `count` daemon threads that sleep for ten minutes, as a loaded model's threads wait; this process's
    id."""
    for _ in range(count):
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
    return os.getpid()
