"""Both notebooks run top to bottom on small data, so they never rot."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
START = "kernel-start"  # the folder under the test's own that the kernel starts in


def run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # The notebooks work in a fresh temp folder, which a reader keeps to look at; a test run's belongs in its own.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    # The kernel starts in an empty folder of its own, apart from the temp folder where libraries leave files too,
    # so that `scratch_folder` can tell what the notebook wrote relative to its working directory.
    start = tmp_path / START
    start.mkdir()
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(start)}}).execute()
    return [
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]


def scratch_folder(tmp_path: Path) -> Path:
    """The notebook's scratch folder (`work`, under $TMPDIR), having checked that it holds what the notebook wrote.

    What a notebook writes relative to its working directory lands in the folder the kernel started in unless it
    works from `work`: MLflow's run artifacts did once (`./mlruns` of the working directory). That folder
    must be left empty, and every artifact location the notebook's store records must be inside `work`.
    """
    assert not list((tmp_path / START).iterdir()), "the notebook wrote into the folder it was started in"
    (work,) = tmp_path.glob("creator-matcher-*")
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    experiments = client.search_experiments()
    ids = [experiment.experiment_id for experiment in experiments]
    locations = [
        *(experiment.artifact_location for experiment in experiments),
        *(run.info.artifact_uri for run in client.search_runs(ids)),
        *(model.artifact_location for model in client.search_logged_models(ids)),
    ]
    outside = [uri for uri in locations if not Path(urlsplit(uri).path).is_relative_to(work)]
    assert locations and not outside, f"artifacts outside the notebook's folder {work}: {outside}"
    return work


@pytest.mark.slow
def test_walkthrough_matches_and_measures(tmp_path, monkeypatch):
    text = "\n".join(run("01_walkthrough.ipynb", tmp_path, monkeypatch))
    assert "registered version 1, champion: True" in text
    share = float(text.split("oracle share ")[1].split()[0])
    assert 0 < share <= 1
    assert (scratch_folder(tmp_path) / "world").is_dir()


@pytest.mark.slow
def test_model_review_ends_with_a_decision(tmp_path, monkeypatch):
    text = "\n".join(run("02_model_review.ipynb", tmp_path, monkeypatch))
    assert "champion: version 1; candidate: version 2" in text
    assert "review/calibration.png" in text
    # Each head's prediction on the held-out pairs, realized over predicted per category: which head is off where.
    per_head = text.split("realized over predicted, per head and category")[1]
    assert all(head in per_head for head in ("reach head", "click head", "order head"))
    # And per product type as resolved.
    assert "non_standard" in per_head
    assert "decision: " in text
    assert (scratch_folder(tmp_path) / "mlruns").is_dir()


@pytest.mark.parametrize("name", ["01_walkthrough.ipynb", "02_model_review.ipynb"])
def test_notebooks_are_saved_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
