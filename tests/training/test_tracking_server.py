"""A real `mlflow server` on 127.0.0.1: train over HTTP, load the champion back over HTTP, promote, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.commands import free_port, run_in_process, stop

BIN = Path(sys.executable).parent
CLI = str(BIN / "creator-match")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Starts the server the way `make mlflow-ui` does, waits for /health, and always stops it.

    Without MLflow's job runner (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false): it starts seven huey consumer
    processes that poll the store for GenAI jobs the project never submits, and their polling took most of a core
    for as long as the server ran, tripling the time the trainings below took. Tracking, artifacts and the
    registry, which this file tests, are served the same either way.
    """
    home = tmp_path_factory.mktemp("server")
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{home}/mlflow.db",
            "--serve-artifacts",
            "--artifacts-destination",
            str(home / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=home,
        env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, "mlflow server exited during start-up"
            assert time.monotonic() < deadline, "mlflow server did not answer /health within 90 s"
            time.sleep(0.1)
        yield url, home
    finally:
        stop(process)


@pytest.mark.slow
def test_train_load_and_promote_over_http(server, small_world_dir, tmp_path, monkeypatch):
    url, home = server
    # TMPDIR: MLflow keeps the models it downloads in temp folders; the test's own, not the machine's.
    env = dict(os.environ, MLFLOW_TRACKING_URI=url, TMPDIR=str(tmp_path))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, cwd=tmp_path)

    def in_process(*args: str) -> subprocess.CompletedProcess:
        # The command's own `main` in this process, talking to the same server over HTTP: a client that is a
        # process of its own is the first training's and the refused promotion's to show.
        with monkeypatch.context() as patched:
            patched.setenv("MLFLOW_TRACKING_URI", url)
            patched.setattr(tempfile, "tempdir", str(tmp_path))  # as TMPDIR does for the processes above
            return run_in_process(*args, cwd=tmp_path)

    # The small world: what is under test is the store over HTTP, which two trainings of any size use alike.
    world = str(small_world_dir)
    first = cli("train", "--data", world)
    assert first.returncode == 0, first.stderr[-500:]
    assert "version 1 (champion)" in first.stdout
    assert "HiGHS" not in first.stdout + first.stderr, "the solver's banner reached the console"
    assert "View run" not in first.stdout, "MLflow's run links reached the command's own output"
    second = in_process("train", "--data", world, "--members", "2", "--max-features", "0.5")
    assert second.returncode == 0 and "version 2 (not champion" in second.stdout, second.stderr[-500:]
    assert not (tmp_path / "mlflow.db").exists(), "nothing may fall back to a local store"
    assert any((home / "artifacts").rglob("model_card.md")), "artifacts were uploaded to the server's store"

    # Version 2 learned from the champion's own campaigns: the gate cannot judge it fairly and says so.
    refused = cli("promote", "--model-name", "creator-ranker", "--version", "2")
    assert refused.returncode == 2 and "no fair comparison" in refused.stderr
    forced = in_process("promote", "--model-name", "creator-ranker", "--version", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    champion = MlflowClient(url).get_model_version_by_alias("creator-ranker", "champion")
    assert str(champion.version) == "2"
    params = MlflowClient(url).get_run(champion.run_id).data.params
    assert (params["ranker.n_members"], params["ranker.max_features"]) == ("2", "0.5")
    # The second training downloaded the champion from the server to compare with it: no copy of it is left.
    assert not list(tmp_path.rglob("MLmodel")), "a downloaded model copy was left in the temp folder"

    # A process with nothing of this project imported loads the champion with MLflow alone.
    load = (
        "import mlflow, pandas as pd; m = mlflow.pyfunc.load_model('models:/creator-ranker@champion');"
        "x = pd.DataFrame([{c.name: 0.5 for c in m.metadata.signature.inputs}]);"
        "print(sorted(m.predict(x).columns))"
    )
    done = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-500:]
    assert "['expected_impressions', 'p_click', 'p_order']" in done.stdout
