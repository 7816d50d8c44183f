"""A model that is no ranker of this project is refused in one line naming it, exit 2: a damaged pickle, another
project's python model, a model of another MLflow flavour. Each was `failed: <exception>` (exit 1) before."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from tests.commands import match_args, run_in_process
from training.registry import NotARanker, load_ranker


class Other(mlflow.pyfunc.PythonModel):
    """Another project's python model: a valid pyfunc, with none of a ranker's attributes."""

    def __init__(self) -> None:
        self.weights = list(range(2000))  # its pickle is a few kilobytes, to cut short

    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Three saved models that are not rankers, by what is wrong with them."""
    folder = tmp_path_factory.mktemp("not-rankers")
    other, truncated, sklearn_model = (str(folder / name) for name in ("other", "truncated", "sklearn"))
    # What they would need installed is not what is refused: left to infer it, MLflow imports each model in a
    # process of its own (4 to 7 s a model).
    unstated = {"pip_requirements": []}
    mlflow.pyfunc.save_model(other, python_model=Other(), **unstated)
    mlflow.pyfunc.save_model(truncated, python_model=Other(), **unstated)
    pickled = Path(truncated) / "python_model.pkl"
    pickled.write_bytes(pickled.read_bytes()[:1000])
    mlflow.sklearn.save_model(LinearRegression().fit(np.eye(3), np.arange(3.0)), sklearn_model, **unstated)
    return {"other": other, "truncated": truncated, "sklearn": sklearn_model}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "cannot be read: UnpicklingError: pickle data was truncated"),
        ("other", f"not a creator-matcher ranker (its python model is a {__name__}.Other)"),
        ("sklearn", "not a creator-matcher ranker (an MLflow model loaded by mlflow.sklearn)"),
    ],
)
def test_a_model_that_is_no_ranker_is_refused_naming_why(models, kind, reason):
    with pytest.raises(NotARanker) as refused:
        load_ranker(models[kind])
    assert str(refused.value) == f"model {models[kind]!r}{'' if reason.startswith('cannot') else ':'} {reason}"


@pytest.mark.parametrize("kind", ["truncated", "other", "sklearn"])
def test_match_refuses_it_in_one_line_with_exit_2(models, kind, world_dir, tmp_path):
    done = run_in_process(*match_args(world_dir, tmp_path / "m.parquet", "--model", models[kind])[1:], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"creator-match: model {models[kind]!r}"), lines
    assert not (tmp_path / "m.parquet").exists()
