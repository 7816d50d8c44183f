"""A ranker trained under other library versions is refused or loaded with a warning, naming both versions."""

from __future__ import annotations

import copy

import mlflow.pyfunc
import numpy as np
import pytest
import sklearn
import sklearn.base

from tests.commands import match_args, run_in_process
from training.registry import (
    IncompatibleModel,
    LibraryVersionWarning,
    load_ranker,
    model_code_paths,
    pip_requirements,
)


@pytest.fixture(scope="module")
def champion(trained):
    """The trained champion's python model, loaded once: each test saves an altered copy of its own."""
    return load_ranker(trained.model_uri).model


def save_copy(champion, path, **recorded: str) -> str:
    """The champion saved to `path`, claiming to have been trained under `recorded`."""
    model = copy.copy(champion)
    model.library_versions = dict(model.library_versions, **recorded)
    # Its requirements as training gives them: inferring them imports the model in a process of its own (seconds).
    mlflow.pyfunc.save_model(
        str(path), python_model=model, code_paths=model_code_paths(), pip_requirements=pip_requirements()
    )
    return str(path)


@pytest.fixture(scope="module")
def older_scikit_learn(champion, tmp_path_factory) -> str:
    """The champion saved claiming scikit-learn 1.4.2, which this environment does not have."""
    return save_copy(champion, tmp_path_factory.mktemp("scikit-learn-1.4.2") / "model", **{"scikit-learn": "1.4.2"})


def test_a_ranker_recorded_under_another_scikit_learn_is_refused_naming_both(older_scikit_learn):
    path = older_scikit_learn
    with pytest.raises(IncompatibleModel) as refused:
        load_ranker(path)
    assert f"trained with scikit-learn 1.4.2, this environment has scikit-learn {sklearn.__version__}" in str(
        refused.value
    )


def test_a_ranker_pickled_by_another_scikit_learn_is_refused_naming_both(champion, tmp_path, monkeypatch):
    """Older models record nothing themselves: scikit-learn's own record in each pickled estimator is used."""
    model = copy.copy(champion)
    del model.library_versions
    with monkeypatch.context() as patched:
        patched.setattr(sklearn.base, "__version__", "1.4.2")  # what a pickle written under 1.4.2 records
        mlflow.pyfunc.save_model(
            str(tmp_path / "model"),
            python_model=model,
            code_paths=model_code_paths(),
            pip_requirements=pip_requirements(),
        )
    with pytest.raises(IncompatibleModel, match=r"scikit-learn 1\.4\.2, this environment has scikit-learn"):
        load_ranker(str(tmp_path / "model"))


def test_the_command_refuses_it_in_one_line_with_exit_2(older_scikit_learn, world_dir, tmp_path):
    path = older_scikit_learn
    # The command's own `main` in this process: it refuses at load, as in a process of its own.
    done = run_in_process(*match_args(world_dir, tmp_path / "m.parquet", "--model", path)[1:], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and f"scikit-learn 1.4.2, this environment has scikit-learn {sklearn.__version__}" in lines[0]
    )
    assert not (tmp_path / "m.parquet").exists()


@pytest.mark.slow
def test_another_numpy_loads_with_a_warning_the_command_shows(champion, world_dir, world_index, tmp_path):
    """Not a refusal (numpy pickles carry across versions), but never muted: the command used to hide it."""
    path = save_copy(champion, tmp_path / "model", numpy="1.26.0")
    expected = f"trained with numpy 1.26.0, this environment has numpy {np.__version__}"
    with pytest.warns(LibraryVersionWarning, match=expected):
        assert load_ranker(path).model.library_versions["numpy"] == "1.26.0"
    # A model saved outside a training run carries no records of its own: the performance table gives them.
    performance = str(world_dir / "performance.parquet")
    index = ["--index", str(world_index)]  # the session's (tests/conftest.py): the warning is under test here
    done = run_in_process(
        *match_args(world_dir, tmp_path / "m.parquet", "--model", path, "--performance", performance, *index)[1:],
        cwd=tmp_path,
        warnings_on_stderr=True,
    )
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if expected in line] == [
        f"creator-match: warning: model {path!r} was {expected}; it may score differently"
    ]
    assert (tmp_path / "m.parquet").stat().st_size > 0
