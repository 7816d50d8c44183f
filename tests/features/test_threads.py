"""Thread limits on the process's real BLAS and OpenMP runtimes: held inside the block, restored after it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from features.threads import blas_threads, openmp_threads


def threads_of(user_api: str, library: str) -> list[int]:
    return [
        pool["num_threads"]
        for pool in threadpool_info()
        if pool["user_api"] == user_api and library in Path(pool["filepath"]).parent.name
    ]


# The runtimes the limits are for: numpy's BLAS, and the OpenMP that faiss ships and scikit-learn shares. Both are
# loaded before the first limit; one loaded later (torch's own libgomp) is not limited, as features/threads.py says.
@pytest.mark.parametrize(
    ("limit", "user_api", "library"), [(blas_threads, "blas", "numpy"), (openmp_threads, "openmp", "faiss")]
)
def test_a_limit_holds_in_its_block_and_the_runtime_gets_its_own_setting_back(limit, user_api, library):
    before = threads_of(user_api, library)
    assert before, f"no {library} {user_api} runtime loaded"
    other = 1 if max(before) > 1 else 2  # under xdist the workers already run on one thread
    with limit(other):
        assert threads_of(user_api, library) == [other] * len(before)
    assert threads_of(user_api, library) == before


def test_one_blas_thread_finds_the_same_close_pairs():
    """What near-duplicate grouping relies on: the thread count changes the speed of a product, not which pairs
    pass a threshold."""
    v = np.random.default_rng(0).normal(size=(300, 384)).astype(np.float32)
    with blas_threads(1):
        serial = v @ v.T
    assert np.array_equal(serial >= 0.5, (v @ v.T) >= 0.5)
