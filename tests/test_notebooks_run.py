"""Both notebooks run top to bottom on small data, so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run(name: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # The notebooks work in a fresh temp folder, which a reader keeps to look at; a test run's belongs in its own.
    monkeypatch.setenv("TMPDIR", str(cwd))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return [
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]


@pytest.mark.slow
def test_walkthrough_matches_and_measures(tmp_path, monkeypatch):
    text = "\n".join(run("01_walkthrough.ipynb", tmp_path, monkeypatch))
    assert "registered version 1, champion: True" in text
    share = float(text.split("oracle share ")[1].split()[0])
    assert 0 < share <= 1
    assert list(tmp_path.glob("creator-matcher-*/world")), "the notebook's files belong in the test's own folder"


@pytest.mark.slow
def test_model_review_ends_with_a_decision(tmp_path, monkeypatch):
    text = "\n".join(run("02_model_review.ipynb", tmp_path, monkeypatch))
    assert "champion: version 1; candidate: version 2" in text
    assert "review/calibration.png" in text
    assert "decision: " in text


@pytest.mark.parametrize("name", ["01_walkthrough.ipynb", "02_model_review.ipynb"])
def test_notebooks_are_saved_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
