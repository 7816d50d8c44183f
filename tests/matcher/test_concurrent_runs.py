"""Two real processes on one output or one embedding cache: the second is refused or waits, nothing is corrupted.

No test sleeps to "let the other process get going": each waits, with a deadline, for something the other
process shows (a lock it holds in /proc/locks, a file it wrote), and holds it still with SIGSTOP or a lock. Where
the other process holds the lock and the command is the one refused, the command runs in this process
(tests/commands.py): this process is then the second one, and a new interpreter would add only its imports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.embeddings import Embedder, VectorCache
from features.safe_write import OutputRefused, lock_path, output_lock
from matcher.candidate_index import CandidateIndex
from tests.commands import CLI, held_by_another_process, match_args, run_in_process

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not Path("/proc/locks").exists(), reason="observes locks through /proc/locks")


def holds_lock(pid: int, path: Path) -> bool:
    """Whether process `pid` holds a flock on `path`, as the kernel reports it."""
    if not path.exists():
        return False
    inode = path.stat().st_ino
    held = (line.split() for line in Path("/proc/locks").read_text().splitlines())
    # "1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"; waiters' lines read "1: -> FLOCK ...".
    return any(f[1] == "FLOCK" and int(f[4]) == pid and int(f[5].rsplit(":", 1)[1]) == inode for f in held)


def wait_for(condition, job: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    """Polls `condition` until it holds; fails if `job` exits first or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if job.poll() is not None:
            pytest.fail(f"the first process exited ({job.returncode}) before {what}: {job.communicate()[1][-600:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no sign within {timeout:.0f} s that {what}")
        time.sleep(0.05)


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


@pytest.mark.slow
def test_a_second_match_on_the_same_output_is_refused_while_the_first_runs(world_dir, trained, world_index, tmp_path):
    """The second run exits 2 with one line and leaves the first one's checkpoints and output alone."""
    out = tmp_path / "matches.parquet"
    # Both read the session's index (tests/conftest.py): the lock is what is under test, not embedding creators.
    args = match_args(world_dir, out, "--chunk-size", "1", "--index", str(world_index))
    first = start(args)
    try:
        wait_for(lambda: holds_lock(first.pid, lock_path(out)), first, "it locked its output")
        first.send_signal(signal.SIGSTOP)  # frozen mid-run, holding its lock
        second = run_in_process(*args[1:])
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2, second.stderr[-800:]
        assert len(lines) == 1 and str(out) in lines[0] and "another process" in lines[0], second.stderr
        assert not out.exists(), "the refused run wrote nothing"
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-800:]
    matches = pd.read_parquet(out)
    assert len(matches) and not matches.duplicated(["campaign_id", "creator_id"]).any()
    assert not list(tmp_path.glob(".matches.parquet.parts-*")), "the first run cleaned up its own checkpoints"


@pytest.mark.slow
def test_a_second_index_on_the_same_out_is_refused_and_a_shared_cache_makes_writers_wait(
    world_dir, empty_cache_dir, tmp_path
):
    """`index` holds its --out for the whole run; embedding-cache writers wait for each other instead. Of 40 of
    the world's creators: the locks are the subject, and the first run embeds every creator it is given."""
    cache_dir, out = empty_cache_dir, tmp_path / "index"
    cache = Embedder(cache_dir=cache_dir).cache.directory  # where this model's vectors go (no model loaded)
    creators = tmp_path / "creators.parquet"
    pq.write_table(pq.read_table(world_dir / "creators.parquet").slice(0, 40), creators)
    args = ["index", "--creators", str(creators), "--cache-dir", str(cache_dir)]
    with output_lock(cache):  # this test is the cache's writer for now: the index run must wait for it
        first = start([CLI, *args, "--out", str(out)])
        try:
            wait_for(lambda: holds_lock(first.pid, lock_path(out)), first, "it locked its --out")
            second = subprocess.run([CLI, *args, "--out", str(out)], capture_output=True, text=True)
            lines = second.stderr.strip().splitlines()
            assert second.returncode == 2, second.stderr[-800:]
            assert len(lines) == 1 and str(out) in lines[0] and "another process" in lines[0], second.stderr
            assert first.poll() is None, "the first run waits for the cache's lock, not fails"
        except BaseException:
            first.kill()
            raise
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-800:]
    assert len(CandidateIndex.load(out)) == len(pd.read_parquet(creators)) == 40
    assert len(list(cache.glob("shard-*"))) == 1


@pytest.mark.slow
def test_similar_is_refused_an_output_another_process_is_writing(world_dir, trained, world_index, tmp_path):
    """`similar --out` took no lock: two runs on one file wrote it at once. Now, while another process holds the
    output's lock, it is refused in one line (exit 2) and writes nothing; once released, it writes."""
    out = tmp_path / "like.csv"
    seed = pd.read_parquet(world_dir / "creators.parquet")["creator_id"].iloc[0]
    args = ["similar", "--creators", str(world_dir / "creators.parquet"), "--index", str(world_index)]
    args += ["--model", trained.model_uri, "--like", seed, "--k", "5", "--out", str(out)]
    with held_by_another_process(out):
        refused = run_in_process(*args)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-800:]
        assert str(out) in lines[0] and "another process" in lines[0] and not out.exists()
    done = run_in_process(*args)
    assert done.returncode == 0, done.stderr[-800:]
    assert len(pd.read_csv(out)) == 5


def python_env() -> dict[str, str]:
    """The environment for `python -c` helpers: this checkout's packages first."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from features.embeddings import VectorCache

    directory, ready, go = (Path(arg) for arg in sys.argv[1:4])
    keys = np.array([f"{i:016d}".encode() for i in range(200)], dtype="S16")
    vectors = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    cache = VectorCache(directory)
    assert (cache.find(keys)[0] < 0).all()  # neither has the vectors: both will write
    ready.touch()
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("never told to go")
        time.sleep(0.01)
    cache.put(keys, vectors)
    """
)


def test_two_processes_filling_one_cache_store_each_vector_once(tmp_path):
    """Both found the same keys missing; the writer that goes second sees the first's shard and adds nothing."""
    directory, go = tmp_path / "cache", tmp_path / "go"
    env = python_env()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory), str(tmp_path / f"ready-{n}"), str(go)],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(2)
    ]
    for n, writer in enumerate(writers):
        wait_for(lambda n=n: (tmp_path / f"ready-{n}").exists(), writer, f"writer {n} looked the keys up")
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    assert len(list(directory.glob("shard-*"))) == 1
    cache = VectorCache(directory)
    assert len(cache) == 200
    keys = np.array([f"{i:016d}".encode() for i in range(200)], dtype="S16")
    assert (cache.find(keys)[0] == 0).all()


def test_a_cache_writer_that_waits_too_long_is_refused_in_one_line(tmp_path):
    """The wait is bounded: past `lock_timeout` the writer gives up naming the directory, and writes nothing."""
    directory = tmp_path / "cache"
    with held_by_another_process(directory):
        with pytest.raises(
            OutputRefused, match=r"cache is being written by another process .*; waited 0\.2 s\)"
        ) as refused:
            VectorCache(directory, lock_timeout=0.2).put(np.array([b"k" * 16], dtype="S16"), np.ones((1, 4)))
        assert "\n" not in str(refused.value)
        assert not directory.exists() or not list(directory.glob("shard-*"))
