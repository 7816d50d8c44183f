"""`creator-match demo`, the README's first command, as a new user runs it: one process, a readable result.

Its own file, so that the suite's workers can run it beside the other command-line tests rather than after them.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.commands import CLI


@pytest.mark.slow
def test_demo_runs_the_whole_job_and_prints_slates(tmp_path):
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        MLFLOW_REGISTRY_URI=f"sqlite:///{tmp_path}/registry.db",
    )
    # A small world: the whole job and its printout are the subject, and training is most of the demo's time (at 100
    # creators and 20 past campaigns it still registers a champion and prints both kinds of product type).
    done = subprocess.run(
        [CLI, "demo", "--out", str(tmp_path / "demo"), "--creators", "100", "--campaigns", "20"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-800:]
    assert "registered creator-ranker version 1 (champion)" in done.stdout
    assert "slate of" in done.stdout and "role (" in done.stdout
    # Every campaign says how its product type was settled: declared, or the evidence and its probability.
    types = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("type: ")]
    assert types and all(t == "type: declared by the seller" or "(probability of non-standard " in t for t in types)
    assert "type: declared by the seller" in types and any("(probability of non-standard " in t for t in types)
    assert "of the expected sales of the best possible slates" in done.stdout
    assert (tmp_path / "demo" / "matches.parquet").exists()
    # A team's registry, named by the environment, is not where a made-up world's ranker goes.
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "registry.db").exists()
    assert (tmp_path / "demo" / "mlflow.db").is_file() and any((tmp_path / "demo" / "mlruns").rglob("MLmodel"))
