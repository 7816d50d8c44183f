"""A batch job killed with SIGKILL at any point and run again writes the same bytes, with no duplicates.

The killed jobs and the rerun that resumes from them are real processes (the kill is the point); the uninterrupted
reference run and the candidate index every run reads (the session's, tests/conftest.py) are made in this process
(tests/commands.py), which is not what is under test here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from matcher.api import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV
from tests.commands import match_args, run_in_process


def checkpoint_folders(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.parts-*"))


def parts_of(out: Path) -> list[Path]:
    return [p for d in checkpoint_folders(out) for p in d.glob("scored-*.parquet")]


def job_args(world_dir: Path, index: Path, out: Path) -> list[str]:
    """The batch job under test: one campaign per committed chunk, so there are many points to be killed at."""
    return match_args(world_dir, out, "--chunk-size", "1", "--index", str(index))


@pytest.fixture(scope="module")
def reference(world_dir, trained, world_index, tmp_path_factory):
    """An uninterrupted run's bytes."""
    out = tmp_path_factory.mktemp("reference") / "matches.parquet"
    done = run_in_process(*job_args(world_dir, world_index, out)[1:])
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "it/s" not in done.stderr, "a log file (stderr not a terminal) gets no bars"
    assert not parts_of(out), "checkpoints are removed once the matches are written"
    return out.read_bytes()


def kill_when_halted(world_dir: Path, index: Path, out: Path, chunks: int, marker: Path) -> None:
    """Runs the job until it has committed `chunks` chunks and says so (the marker file), then SIGKILLs it."""
    job = subprocess.Popen(
        job_args(world_dir, index, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, HALT_AFTER_CHUNKS_ENV: str(chunks), HALT_MARKER_ENV: str(marker)},
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert job.poll() is None, f"the job ended (status {job.returncode}) before it reached {chunks} chunks"
            assert time.monotonic() < deadline, f"the job did not reach {chunks} chunks within 300 s"
            time.sleep(0.05)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()


@pytest.mark.slow
def test_killed_at_every_stage_and_rerun_gives_the_same_bytes(world_dir, world_index, reference, tmp_path):
    """One output, killed again and again: once the models and index are loaded and nothing is scored, after
    3 chunks, with all but the last, and with all of them (the matches not yet written). Each run resumes
    from what the killed one committed, so every kind of partial state is resumed from once; the run that
    is finally let finish writes the uninterrupted run's bytes."""
    out = tmp_path / "matches.parquet"
    n_chunks = len(pd.read_parquet(world_dir / "new_campaigns.parquet").query("in_stock"))
    stages = [0, 3, n_chunks - 1, n_chunks]
    assert stages == sorted(set(stages)), f"the world needs more than 4 in-stock campaigns; got {n_chunks}"
    for stage in stages:
        # The job itself says when it got there, and waits to be killed: no guessed delay.
        kill_when_halted(world_dir, world_index, out, stage, tmp_path / f"halted-{stage}")
        assert not out.exists(), f"no partial output may appear before the run completes (killed at {stage})"
        assert len(parts_of(out)) == stage, f"killed at {stage} chunks"
    done = subprocess.run(job_args(world_dir, world_index, out), capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference
    matches = pd.read_parquet(out)
    assert not matches.duplicated(["campaign_id", "creator_id"]).any()
    assert not checkpoint_folders(out), "the checkpoints are removed once the matches are written"
