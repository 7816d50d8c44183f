"""A batch job killed with SIGKILL at any point and run again writes the same bytes, with no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from matcher.api import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV
from tests.commands import match_args


def checkpoint_folders(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.parts-*"))


def parts_of(out: Path) -> list[Path]:
    return [p for d in checkpoint_folders(out) for p in d.glob("scored-*.parquet")]


@pytest.fixture(scope="module")
def reference(world_dir, trained, tmp_path_factory):
    """An uninterrupted run's bytes."""
    out = tmp_path_factory.mktemp("reference") / "matches.parquet"
    done = subprocess.run(
        match_args(world_dir, out, "--chunk-size", "1"), capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert not parts_of(out), "checkpoints are removed once the matches are written"
    return out.read_bytes()


@pytest.mark.parametrize("kill_after_chunks", [0, 3, "last", "all"])
def test_killed_and_rerun_gives_the_same_bytes(world_dir, reference, tmp_path, kill_after_chunks):
    """Killed once `kill_after_chunks` chunks are committed: 0 (models and index loaded, nothing scored),
    3, all but the last, or all of them (the matches not yet written)."""
    out = tmp_path / "matches.parquet"
    n_chunks = len(pd.read_parquet(world_dir / "new_campaigns.parquet").query("in_stock"))
    target = {"last": n_chunks - 1, "all": n_chunks}.get(kill_after_chunks, kill_after_chunks)
    assert 0 <= target <= n_chunks
    # The job itself says when it got there (the marker file), and waits to be killed: no guessed delay.
    marker = tmp_path / "halted"
    job = subprocess.Popen(
        match_args(world_dir, out, "--chunk-size", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, HALT_AFTER_CHUNKS_ENV: str(target), HALT_MARKER_ENV: str(marker)},
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert job.poll() is None, f"the job ended (status {job.returncode}) before it reached the halt point"
            assert time.monotonic() < deadline, "the job did not reach the halt point within 300 s"
            time.sleep(0.05)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    assert not out.exists(), "no partial output may appear before the run completes"
    assert len(parts_of(out)) == target
    done = subprocess.run(
        match_args(world_dir, out, "--chunk-size", "1"), capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference
    matches = pd.read_parquet(out)
    assert not matches.duplicated(["campaign_id", "creator_id"]).any()
    assert not checkpoint_folders(out), "the checkpoints are removed once the matches are written"
