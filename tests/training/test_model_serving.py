"""`mlflow models serve` answers from the registered champion with only what the model carries and requires."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

MLFLOW = str(Path(sys.executable).parent / "mlflow")
READY_WITHIN = 240.0  # seconds: the server imports MLflow, pandas and scikit-learn on a shared machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(url: str, server: subprocess.Popen, log: Path) -> None:
    """Polls `url` until it answers 200; fails with the server's log if it exits or the time runs out."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert server.poll() is None, f"server exited {server.returncode}: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"no answer from {url} within {READY_WITHIN:.0f} s: {log.read_text()[-2000:]}")


def stop(server: subprocess.Popen) -> None:
    """Stops the server's process group (it and its workers): politely, then for good."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
            return


def test_the_champion_is_served_from_outside_the_repository_and_answers_its_input_example(
    trained, tracking_uri, tmp_path
):
    local = Path(mlflow.artifacts.download_artifacts("models:/creator-ranker@champion", dst_path=str(tmp_path / "m")))
    payload = (local / "serving_input_example.json").read_text()
    model = mlflow.pyfunc.load_model(str(local))
    expected = model.predict(model.input_example)

    port = free_port()
    # No PYTHONPATH to this checkout and not started in it: the server runs the code the model carries.
    # The venv's bin first on PATH, as when it is activated: MLflow starts the server as `uvicorn`.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{Path(MLFLOW).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(tmp_path),  # where the server's MLflow keeps what it downloads and unpacks
    }
    log = tmp_path / "server.log"
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("w") as out:
        server = subprocess.Popen(
            [MLFLOW, "models", "serve", "-m", "models:/creator-ranker@champion", "--env-manager", "local", *where],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,  # its own process group, so stopping it stops its workers too
        )
    # The same rows without the optional features' columns, which the signature lets a caller leave out, and
    # without a required one, which it does not.
    optional = [spec.name for spec in model.metadata.signature.inputs if not spec.required]
    without_optional, without_required = without_columns(payload, optional), without_columns(payload, ["category_code"])
    try:
        ready(f"http://127.0.0.1:{port}/ping", server, log)
        status, answer = invoke(port, payload)
        assert status == 200, answer
        predictions = pd.DataFrame(json.loads(answer)["predictions"])
        status, answer = invoke(port, without_optional)
        assert status == 200, answer
        predictions_without = pd.DataFrame(json.loads(answer)["predictions"])
        refused = invoke(port, without_required)
    finally:
        stop(server)
    assert list(predictions.columns) == ["expected_impressions", "p_click", "p_order"]
    assert len(predictions) == len(expected)
    np.testing.assert_allclose(predictions.to_numpy(float), expected.to_numpy(float), rtol=1e-9)
    unknown = model.predict(model.input_example.drop(columns=optional))
    np.testing.assert_allclose(predictions_without.to_numpy(float), unknown.to_numpy(float), rtol=1e-9)
    assert refused[0] == 400 and "missing inputs ['category_code']" in refused[1], refused


def without_columns(payload: str, names: list[str]) -> str:
    """A `dataframe_split` request body without the columns `names`."""
    body = json.loads(payload)
    split = body["dataframe_split"]
    keep = [i for i, name in enumerate(split["columns"]) if name not in names]
    split["columns"] = [split["columns"][i] for i in keep]
    split["data"] = [[row[i] for i in keep] for row in split["data"]]
    return json.dumps(body)


def invoke(port: int, payload: str) -> tuple[int, str]:
    """The server's status and body for a request to /invocations, a refusal's included."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=payload.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refusal:
        return refusal.code, refusal.read().decode()
