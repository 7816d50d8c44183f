"""A mistyped store URI is the user's setting to correct: one line naming it and what it should be, exit 2."""

from __future__ import annotations

import pytest

from tests.commands import match_args, run_in_process


@pytest.fixture
def a_sqlite_file(tmp_path):
    """A SQLite store's file, as a reviewer would point at it without `sqlite:///`."""
    import sqlite3

    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as database:
        database.execute("CREATE TABLE made (id INTEGER)")
    return path


@pytest.mark.parametrize("command", ["train", "promote", "match"])
def test_a_mistyped_scheme_is_refused_in_one_line_with_exit_2(command, world_dir, tmp_path, monkeypatch):
    """Before, `train` and `promote` printed MLflow's paragraph as `failed: RegistryUnavailable`, exit 1, as if the
    store had failed, and `match` the same paragraph with exit 2."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlte:///mlflow.db")
    done = run_in_process(*_args(command, world_dir, tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "creator-match: the MLflow store sqlte:///mlflow.db names no store: MLflow has none of the scheme 'sqlte' "
        "(did you mean sqlite:?; $MLFLOW_TRACKING_URI)"
    ]
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("command", ["train", "promote", "match"])
def test_a_sqlite_file_given_as_a_bare_path_names_the_uri_it_needs(
    command, world_dir, tmp_path, a_sqlite_file, monkeypatch
):
    """MLflow reads a bare path as a file store's folder and refused it with its file store's deprecation paragraph."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(a_sqlite_file))
    done = run_in_process(*_args(command, world_dir, tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"creator-match: the MLflow store {a_sqlite_file} is a file, which MLflow would read as a folder of runs; "
        f"a SQLite store is named sqlite:///{a_sqlite_file} ($MLFLOW_TRACKING_URI)"
    ]


def _args(command: str, world_dir, tmp_path) -> list[str]:
    if command == "train":
        return ["train", "--data", str(world_dir)]
    if command == "promote":
        return ["promote", "--version", "1"]
    return match_args(world_dir, tmp_path / "matches.parquet")[1:]


def test_a_mistyped_registry_uri_is_named_by_its_own_setting(tmp_path, monkeypatch):
    """The refusal named $MLFLOW_TRACKING_URI whichever setting held the URI: a reviewer corrected the wrong one."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlte:///registry.db")
    done = run_in_process("promote", "--version", "1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "creator-match: the MLflow store sqlte:///registry.db names no store: MLflow has none of the scheme 'sqlte' "
        "(did you mean sqlite:?; $MLFLOW_REGISTRY_URI)"
    ]
