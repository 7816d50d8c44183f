"""Project conventions: one place for every constant and environment variable, and how the packages ship."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest

from features import environment
from features.contract import CREATOR_TYPES, FUNNEL_STAGE, FUNNEL_STAGES, REJECTS_SUFFIX, TABLE_SUFFIXES
from features.tables import READERS, rejects_path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("features", "matcher", "training", "simulation", "benchmarks", "tests")
PACKAGES = ("features", "matcher", "training", "simulation")


def _python_files() -> list[Path]:
    return sorted(path for folder in SOURCES for path in (ROOT / folder).rglob("*.py"))


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module that is not a docstring, with its line (f-string parts included)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _notebook_code() -> list[tuple[str, str]]:
    return [
        (path.name, "".join(cell["source"]))
        for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for cell in json.loads(path.read_text())["cells"]
        if cell["cell_type"] == "code"
    ]


def test_environment_variables_are_named_only_in_features_environment():
    """No code outside features/environment.py spells a name of the project's own settings or of the offline
    defaults (other libraries' own settings, such as MLFLOW_TRACKING_URI, are the libraries' to name)."""
    names = {
        *(value for key, value in vars(environment).items() if key.endswith("_ENV") and "CREATOR_MATCH" in value),
        *environment.OFFLINE_ENVIRONMENT,
        *environment.QUIET_ENVIRONMENT,
    }
    pattern = re.compile(r"\b(" + "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True)) + r")\b")
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in _python_files()
        if path not in (ROOT / "features" / "environment.py", Path(__file__).resolve())
        for line, text in _strings(path)
        if pattern.search(text)
    ]
    found += [f"notebooks/{name}" for name, code in _notebook_code() if pattern.search(code)]
    assert not found, "environment variable names spelled outside features/environment.py:\n" + "\n".join(found)


def test_every_project_setting_shares_one_prefix():
    own = [
        value
        for key, value in vars(environment).items()
        if key.endswith("_ENV") and key != "DEPRECATED_DEBUG_ENV" and "CREATOR" in value
    ]
    assert own and all(name.startswith(environment.ENV_PREFIX) for name in own), own
    assert environment.ENV_PREFIX == "CREATOR_MATCHER_"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, False),
        ({"CREATOR_MATCHER_DEBUG": "1"}, True),
        ({"CREATOR_MATCH_DEBUG": "1"}, True),  # deprecated, still honoured
        ({"CREATOR_MATCHER_DEBUG": ""}, False),
    ],
)
def test_debug_switch_honours_its_name_and_the_deprecated_one(monkeypatch, variables, expected):
    monkeypatch.delenv(environment.DEBUG_ENV, raising=False)
    monkeypatch.delenv(environment.DEPRECATED_DEBUG_ENV, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert environment.debug_enabled() is expected


@pytest.mark.parametrize("name", [environment.DEBUG_ENV, environment.DEPRECATED_DEBUG_ENV])
def test_cli_raises_an_unexpected_failure_only_when_debug_is_asked(monkeypatch, tmp_path, capsys, name):
    """A real failure (the output folder lies under a file) gives one line; under either debug name, the error."""
    from matcher.cli import main

    (tmp_path / "a-file").write_text("")
    args = ["simulate", "--out", str(tmp_path / "a-file" / "world"), "--creators", "10", "--campaigns", "10"]
    monkeypatch.delenv(environment.DEBUG_ENV, raising=False)
    monkeypatch.delenv(environment.DEPRECATED_DEBUG_ENV, raising=False)
    assert main([*args, "--new-campaigns", "1"]) == 1
    assert capsys.readouterr().err.startswith("creator-match: failed: NotADirectoryError")
    monkeypatch.setenv(name, "1")
    with pytest.raises(NotADirectoryError):
        main([*args, "--new-campaigns", "1"])


def test_cli_doc_lists_every_setting_and_the_deprecated_debug_name():
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [name for name in environment.SETTINGS if f"| `{name}` |" not in text]
    assert not missing, f"docs/cli.md does not list {missing}"
    row = next(line for line in text.splitlines() if line.startswith(f"| `{environment.DEBUG_ENV}` |"))
    assert environment.DEPRECATED_DEBUG_ENV in row and "deprecated" in row
    for name, value in environment.OFFLINE_ENVIRONMENT.items():
        assert f"`{name}={value}`" in text


def test_contract_vocabularies_agree_with_the_rows_and_tables():
    from features.rows import CreatorRow

    assert set(FUNNEL_STAGE) == set(CREATOR_TYPES) and set(FUNNEL_STAGE.values()) == set(FUNNEL_STAGES)
    annotation = CreatorRow.model_fields["creator_type"].annotation
    assert tuple(annotation.__args__) == CREATOR_TYPES
    assert tuple(READERS) == TABLE_SUFFIXES
    assert rejects_path("out/matches.parquet").name == f"matches{REJECTS_SUFFIX}"


def _suffix_collections(path: Path) -> list[int]:
    """Lines of tuples, lists, sets or dict keys that hold both ".parquet" and ".csv"."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict) or items is None:
            continue
        values = {item.value for item in items if isinstance(item, ast.Constant)}
        if {".parquet", ".csv"} <= values:
            lines.append(node.lineno)
    return lines


def test_table_suffixes_are_spelled_only_in_the_contract():
    """The table formats and the rejects file's suffix are written once, in features.contract."""
    spelled = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _python_files()
        if path.parts[len(ROOT.parts)] in PACKAGES and path != ROOT / "features" / "contract.py"
        for line in [
            *_suffix_collections(path),
            *(line for line, text in _strings(path) if ".parquet, .csv" in text or text.endswith(".rejects.csv")),
        ]
    ]
    assert not spelled, spelled


def test_tests_are_not_a_package_of_the_distribution():
    """`tests` stays out of the wheel: package discovery names the project's packages only."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(include) == sorted(f"{name}*" for name in PACKAGES)
    from setuptools import find_packages

    found = find_packages(str(ROOT), include=include)
    assert {name.split(".")[0] for name in found} == set(PACKAGES), found
    assert not [name for name in found if name == "tests" or name.startswith("tests.")]
