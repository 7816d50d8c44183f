"""Thread limits on the process's real BLAS and OpenMP runtimes: held inside the block, restored after it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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


def test_overlapping_blocks_in_two_threads_give_the_process_its_setting_back():
    """Two requests' blocks overlap (A in, B in, A out, B out): each once put back what it found, and B, which had
    found A's limit, left the process on it for good."""
    before = threads_of("blas", "numpy")
    other = 1 if max(before) > 1 else 2
    a_in, a_out, b_in = threading.Event(), threading.Event(), threading.Event()
    seen_by_b: list[list[int]] = []

    def first() -> None:
        with blas_threads(other):
            a_in.set()
            assert b_in.wait(30)
        a_out.set()

    def second() -> None:
        assert a_in.wait(30)
        with blas_threads(other):
            b_in.set()
            assert a_out.wait(30)
            seen_by_b.append(threads_of("blas", "numpy"))  # A has ended: B's block still holds

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen_by_b == [[other] * len(before)]
    assert threads_of("blas", "numpy") == before


def test_a_held_limit_outlasts_every_block(tmp_path):
    """The service holds one BLAS thread for good; a block inside it ends without undoing that. In a process of its
    own: the hold is for the rest of the process."""
    script = tmp_path / "hold.py"
    script.write_text(
        "import numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "from features.threads import blas_threads, hold_blas_threads\n"
        "def blas(): return sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'})\n"
        "with blas_threads(1):\n"
        "    hold_blas_threads(1)\n"
        "after_block = blas()\n"
        "with blas_threads(2):\n"
        "    pass\n"
        "print(after_block, blas())\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env, cwd=Path.cwd()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "[1] [1]"
