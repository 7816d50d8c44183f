"""A batch job killed with SIGKILL at any point and run again writes the same bytes, with no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.commands import match_args


def parts_of(out: Path) -> list[Path]:
    return [p for d in out.parent.glob(f".{out.name}.parts-*") for p in d.glob("scored-*.parquet")]


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


@pytest.mark.parametrize("kill_after_chunks", [0, 3, "last"])
def test_killed_and_rerun_gives_the_same_bytes(world_dir, reference, tmp_path, kill_after_chunks):
    out = tmp_path / "matches.parquet"
    n_chunks = len(pd.read_parquet(world_dir / "new_campaigns.parquet").query("in_stock"))
    # "last": every chunk but the one being scored is committed; after it the job ends within milliseconds.
    target = n_chunks - 1 if kill_after_chunks == "last" else kill_after_chunks
    job = subprocess.Popen(
        match_args(world_dir, out, "--chunk-size", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 300
    while len(parts_of(out)) < target and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if target == 0:
        time.sleep(3)  # mid-start-up: model and index loading
    assert job.poll() is None, "the job finished before it could be killed; use a larger world"
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not out.exists(), "no partial output may appear before the run completes"
    assert len(parts_of(out)) >= target
    done = subprocess.run(
        match_args(world_dir, out, "--chunk-size", "1"), capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference
    matches = pd.read_parquet(out)
    assert not matches.duplicated(["campaign_id", "creator_id"]).any()
    assert not parts_of(out)
