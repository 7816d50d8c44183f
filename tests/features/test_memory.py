"""release_free_memory gives the heap's freed pages back to the system, with live data intact."""

from __future__ import annotations

import os
import sys

import pytest

from features.memory import release_free_memory


def resident_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and trims glibc's heap")
def test_freed_blocks_between_live_ones_are_given_back_and_the_live_ones_kept():
    # 2,000-byte blocks come from malloc (Python's own allocator takes only up to 512); one in fifty stays alive,
    # spread through the heap, so freeing the rest leaves holes the heap cannot give back by shrinking its end.
    blocks = [bytearray(b"%d" % i).ljust(2000, b".") for i in range(200_000)]
    survivors = blocks[::50]
    del blocks
    before = resident_bytes()

    assert release_free_memory()

    assert before - resident_bytes() > 200 * 2**20  # of the ~390 MB freed
    assert all(block.startswith(b"%d." % (50 * i)) and len(block) == 2000 for i, block in enumerate(survivors))
