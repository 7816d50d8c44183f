"""The Ray engine on a real local 2-CPU Ray: the same matches, byte for byte, as the local engine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray")

from tests.commands import free_port, match_args, run_in_process


def match(world: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    # No RAY_ADDRESS: the command starts its own local Ray and shuts it down.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    args = match_args(world, out, "--chunk-size", "3", *extra)
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_ray_resumes_a_local_run_and_writes_the_same_bytes(world_dir, world_index, trained, tmp_path):
    """A local run dies after one chunk; Ray scores the other chunks on two actors: the local engine's bytes, for
    the matches and for every scored pair (`--candidates-out`).

    Each run reads the session's index of the world (`--index`): both engines score against the index the driver
    holds, however it was made, and the sigterm test below builds one on the fly under Ray."""
    from features.tables import read_table
    from matcher.api import Matcher
    from matcher.batch import _fingerprint
    from training.registry import load_ranker

    # The local engine's bytes, from the command's own `main` in this process: Ray's run is the one under test.
    reference = run_in_process(
        *match_args(
            world_dir,
            tmp_path / "reference.parquet",
            "--chunk-size",
            "3",
            "--index",
            str(world_index),
            "--candidates-out",
            str(tmp_path / "reference-candidates.parquet"),
        )[1:]
    )
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "matches.parquet"
    campaigns_file, creators_file = world_dir / "new_campaigns.parquet", world_dir / "creators.parquet"
    creators = read_table(creators_file, "creators").frame
    campaigns = read_table(campaigns_file, "campaigns").frame
    matcher = Matcher(creators, model=load_ranker("models:/creator-ranker@champion"), index=str(world_index))
    checkpoints = out.with_name(
        f".{out.name}.parts-{_fingerprint(campaigns_file, creators_file, matcher, 3, world_index)}"
    )
    # What a local run that died after its first chunk leaves behind. The whole file is resolved (a campaign's
    # product type weighs its price against the other campaigns of the run), then the later chunks are dropped.
    matcher.match_many(campaigns, checkpoint_dir=checkpoints, chunk_size=3)
    for later in sorted(checkpoints.glob("scored-*.parquet"))[1:]:
        later.unlink()
    assert len(list(checkpoints.glob("scored-*.parquet"))) == 1

    candidates = tmp_path / "candidates.parquet"
    resumed = match(
        world_dir,
        out,
        "--index",
        str(world_index),
        "--engine",
        "ray",
        "--ray-actors",
        "2",
        "--candidates-out",
        str(candidates),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert out.read_bytes() == (tmp_path / "reference.parquet").read_bytes()
    # Every scored pair, read back from chunks scored on both engines, is the local run's too.
    assert candidates.read_bytes() == (tmp_path / "reference-candidates.parquet").read_bytes()
    matches = pd.read_parquet(out)
    assert matches["campaign_id"].nunique() >= 4, "chunks scored on Ray are in the output"
    assert not matches.duplicated(["campaign_id", "creator_id"]).any()
    assert not checkpoints.exists(), "checkpoints are removed once the matches are written"


def test_a_ray_address_that_does_not_answer_is_refused_at_once_leaving_nothing(world_dir, trained, tmp_path):
    """$RAY_ADDRESS naming a port nobody listens on: one line and exit 2 within seconds (ray.init retried it for as
    long as the job was let run), before any output folder or lock file is made."""
    out = tmp_path / "out" / "matches.parquet"
    args = match_args(world_dir, out, "--engine", "ray")
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{free_port()}"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("creator-match: cannot reach the Ray cluster at")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_sigterm_ends_a_ray_run_cleanly_and_the_rerun_resumes(world_dir, trained, tmp_path):
    """A scheduler's SIGTERM in the middle of a Ray run: exit 143, no native stack dump, Ray shut down and its temp
    folder removed (Ray's own handler aborted with 134 and left both); the chunks committed so far are kept.

    Four copies of the world's 12 new campaigns: Ray Data hands the driver scored chunks as a stream, and with 12
    the last ones came so soon after the first that the SIGTERM once landed while the outputs were being written
    (held until they were whole, as it must be), leaving no chunk to keep."""
    out = tmp_path / "matches.parquet"
    new = pd.read_parquet(world_dir / "new_campaigns.parquet")
    copies = [new.assign(campaign_id=new["campaign_id"] + f"-{copy}") for copy in range(4)]
    campaigns = tmp_path / "campaigns.parquet"
    pd.concat(copies, ignore_index=True).to_parquet(campaigns)
    args = match_args(world_dir, out, "--chunk-size", "1", "--engine", "ray")
    args[args.index(str(world_dir / "new_campaigns.parquet"))] = str(campaigns)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    ray_folders = set(Path("/tmp").glob("ray-*"))
    job = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob(".matches.parquet.parts-*/scored-*.parquet")):
            assert job.poll() is None, f"the run ended before its first chunk: {job.stderr.read()[-1000:]}"
            assert time.monotonic() < deadline, "no chunk committed within 300 s"
            time.sleep(0.1)
        job.send_signal(signal.SIGTERM)
        stderr = job.communicate(timeout=120)[1]
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 143, stderr[-2000:]
    assert "SIGTERM received" not in stderr
    assert set(Path("/tmp").glob("ray-*")) <= ray_folders, "the run's Ray temp folder is removed"
    assert not out.exists(), "a run stopped while scoring writes no matches"
    assert list(tmp_path.glob(".matches.parquet.parts-*/scored-*.parquet")), "committed chunks are kept for a rerun"
