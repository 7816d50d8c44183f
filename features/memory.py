"""Handing memory back to the system once a large step is done with it.

glibc's allocator keeps the pages of freed small objects in its heap for reuse, and Python's short-lived
objects leave holes no later large array fits into: validating a million creators' rows left 0.33 GiB
resident and unused (1.35 GiB after `read_table`, 1.02 after trimming), which a batch run then carried
through scoring and assignment.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return None


def release_free_memory() -> bool:
    """Returns the free pages of the C heap to the operating system (glibc's `malloc_trim`); the process's
    live data is untouched. False where the C library has no such call."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
