"""A refused command leaves the file system as it was: no empty MLflow store, no output folders, no lock file.

Every refusal here is one line on stderr and exit status 2, and the working directory lists the same before and
after: a SQLite registry that does not exist is refused rather than created (`matcher.artifacts.missing_store`),
and `match` reads everything that can refuse it (inputs, model, index) before it makes the output's folders and
lock file. The refusals without a registry need no trained ranker and run in this process (tests/commands.py),
with one through the console script, as the user ran it; those that need the session's ranker (a mismatched
index, a model directory whose records are in a store that is gone, and a match that goes ahead into folders
that do not exist yet) are marked slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from features.environment import TRACKING_URI_ENV
from tests.commands import run_in_process as run
from tests.commands import run_process

NO_REGISTRY = "no registry exists at"
NOT_OURS = "it is not a %s table of creator-match (it holds the columns ['month', 'budget'])"


def listing(root: Path) -> list[tuple[str, int | None]]:
    """Every path under `root`, hidden ones included, with each file's size."""
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else None) for p in root.rglob("*"))


def refused_in_one_line(done, *expected: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def work(tmp_path) -> Path:
    """A working directory holding only a folder of the user's own, which the commands must leave alone."""
    work = tmp_path / "work"
    (work / "mine").mkdir(parents=True)
    (work / "mine" / "notes.txt").write_text("the user's\n")
    (work / "mine" / "budget.csv").write_text("month,budget\n2026-12,5000\n")
    (work / "mine" / "notes.jsonl").write_text("not json\n")
    return work


@pytest.fixture
def no_registry(monkeypatch) -> None:
    """MLflow's store left to its default in the working directory: `sqlite:///mlflow.db`, a file not there."""
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)


def inputs(world: Path) -> list[str]:
    return ["--campaigns", str(world / "new_campaigns.parquet"), "--creators", str(world / "creators.parquet")]


@pytest.mark.usefixtures("no_registry")
def test_match_without_a_registry_creates_none_and_no_output_folders(world_dir, work):
    """The user's run, through the console script in a process of its own."""
    before = listing(work)
    done = run_process("match", *inputs(world_dir), "--out", "newdir/sub/m.parquet", cwd=work)
    line = refused_in_one_line(
        done, "models:/creator-ranker@champion", f"{NO_REGISTRY} {work / 'mlflow.db'}", "`creator-match train`"
    )
    assert "--model" in line
    assert listing(work) == before


@pytest.mark.usefixtures("no_registry")
@pytest.mark.parametrize(
    "args, expected",
    [
        (["match", "--out", "newdir/sub/m.parquet"], NO_REGISTRY),
        (["match", "--out", "newdir/m.parquet", "--candidates-out", "other/c.csv"], NO_REGISTRY),
        (["match", "--out", "newdir/m.parquet", "--model", "runs:/0123456789abcdef/model"], NO_REGISTRY),
        (["match", "--out", "newdir/m.parquet", "--model", "no-such-model-dir"], "no-such-model-dir"),
        (["match", "--out", "newdir/m.parquet", "--engine", "ray", "--ray-actors", "1"], NO_REGISTRY),
        (["match", "--out", "newdir/m.txt"], "unknown output format"),
        (["similar", "--like", "c1", "--out", "newdir/sub/l.csv"], NO_REGISTRY),
        (["similar", "--like", "c1", "--out", "mine"], "is a directory"),
        # A user's own file at an output's path is not replaced: only a file holding that output's table is.
        (["match", "--out", "mine/budget.csv"], f"refusing to replace mine/budget.csv: {NOT_OURS % 'matches'}"),
        (
            ["match", "--out", "newdir/m.parquet", "--summaries-out", "mine/budget.csv"],
            f"refusing to replace mine/budget.csv: {NOT_OURS % 'summaries'}",
        ),
        (
            ["match", "--out", "newdir/m.parquet", "--candidates-out", "mine/notes.jsonl"],
            "refusing to replace mine/notes.jsonl: it is not a candidates table of creator-match (it cannot be read",
        ),
        (["similar", "--like", "c1", "--out", "mine/budget.csv"], NOT_OURS % "lookalikes"),
        (["serve", "--port", "0"], NO_REGISTRY),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_refused_match_similar_or_serve_leaves_the_directory_as_it_was(world_dir, work, args, expected):
    command, rest = args[0], args[1:]
    creators = ["--creators", str(world_dir / "creators.parquet")]
    given = [*inputs(world_dir)] if command == "match" else creators
    before = listing(work)
    refused_in_one_line(run(command, *given, *rest, cwd=work), expected)
    assert listing(work) == before


@pytest.mark.usefixtures("no_registry")
def test_a_refused_match_with_missing_inputs_makes_no_folders(world_dir, work):
    before = listing(work)
    done = run("match", "--campaigns", "nope.parquet", "--creators", "nope.parquet", "--out", "a/b/m.csv", cwd=work)
    refused_in_one_line(done, "no such file")
    assert listing(work) == before


@pytest.mark.usefixtures("no_registry")
def test_a_match_given_no_index_at_its_index_path_is_refused_before_the_model_loads(world_dir, work):
    """The index path was checked once the model had loaded (seconds wasted, and with MLflow a server's round
    trip): here, with no registry either, the refusal named the model. It names the index path now, missing or a
    folder of the user's, before the model is looked for."""
    before = listing(work)
    for index in ("no-such-index", "mine"):
        done = run("match", *inputs(world_dir), "--out", "m.parquet", "--index", index, cwd=work)
        refused_in_one_line(done, f"{index}: no candidate index here (missing meta.json)")
    assert listing(work) == before


@pytest.mark.usefixtures("no_registry")
def test_promote_and_train_refused_before_a_registry_is_created(world_dir, work):
    before = listing(work)
    line = refused_in_one_line(run("promote", "--version", "1", cwd=work), "cannot promote creator-ranker version 1")
    assert f"{NO_REGISTRY} {work / 'mlflow.db'}" in line and "`creator-match train`" in line
    refused_in_one_line(run("train", "--data", "no-such-dir", cwd=work), "no such directory")
    refused_in_one_line(run("train", "--data", "mine", cwd=work), "no creators.parquet")
    refused_in_one_line(run("train", "--data", str(world_dir), "--embedding-model", "nope", cwd=work), "'nope'")
    assert listing(work) == before


@pytest.mark.usefixtures("no_registry")
def test_a_refused_index_makes_no_lock_file_or_folders(world_dir, work):
    creators = ["--creators", str(world_dir / "creators.parquet"), "--no-cache"]
    before = listing(work)
    done = run("index", *creators, "--out", "mine", cwd=work)
    refused_in_one_line(done, "refusing to replace", "not a candidate index")
    done = run("index", *creators, "--out", "newdir/sub/idx", "--embedding-model", "no-such-model", cwd=work)
    refused_in_one_line(done, "'no-such-model'")
    assert listing(work) == before


@pytest.mark.usefixtures("no_registry")
@pytest.mark.parametrize(
    "args, what",
    [
        (["match", "--out", "m.parquet"], "matches"),
        (["match", "--out", "dangling.parquet"], "matches"),
        (["match", "--out", "ok.parquet", "--candidates-out", "m.parquet"], "candidates"),
        (["match", "--out", "ok.parquet", "--summaries-out", "dangling.parquet"], "summaries"),
        (["match", "--out", "dangling.csv"], "rejects"),  # its rejects file, dangling.rejects.csv, is a link
        (["match", "--out", "recorded.parquet"], "run record"),
        (["index", "--out", "index"], "index"),
        (["similar", "--like", "c1", "--out", "m.parquet"], "lookalikes"),
        (["simulate", "--out", "world"], "world"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_an_output_that_is_a_symbolic_link_is_refused_before_any_work(world_dir, work, args, what):
    """A link at an output's path (to the user's private file, or dangling, into a folder not there) was written
    through: the file replaced with Parquet, the folder made. Every output is refused in one line naming the link,
    exit 2, before the inputs are read; the file and the folders stay as they were."""
    (work / "precious.txt").write_text("mine")
    (work / "precious.txt").chmod(0o600)
    for name in ("m.parquet", "dangling.rejects.csv", "recorded.parquet.run.json"):
        (work / name).symlink_to(work / "precious.txt")
    for name in ("dangling.parquet", "index", "world"):
        (work / name).symlink_to(work / "sub" / "created-by-link")
    command, rest = args[0], args[1:]
    given = {"match": inputs(world_dir), "simulate": []}.get(command, ["--creators", "nope.parquet"])
    before = listing(work)
    line = refused_in_one_line(run(command, *given, *rest, cwd=work), f"refusing to write the {what} to ")
    assert "it is a symbolic link" in line
    assert listing(work) == before and (work / "precious.txt").stat().st_mode & 0o777 == 0o600


@pytest.mark.usefixtures("no_registry")
@pytest.mark.parametrize("flag", ["--out", "--summaries-out"])
def test_a_match_into_a_folder_that_takes_no_new_files_is_refused_though_last_nights_lock_opens(
    world_dir, work, make_unwritable, flag
):
    """Last night's lock file beside the output still opened for writing in a folder made read-only since: the run
    took the lock and failed at its first write, exit 1 with an OS error's name. Now it is refused before it reads
    anything, in one line naming the output and the folder, exit 2, and the folder is left as it was."""
    target = work / "shared" / "m.parquet"
    target.parent.mkdir()
    (target.parent / ".m.parquet.lock").touch()  # last night's
    make_unwritable(target.parent)
    out = str(target) if flag == "--out" else "ok.parquet"
    extra = [] if flag == "--out" else [flag, str(target)]
    before = listing(work)
    done = run("match", *inputs(world_dir), "--out", out, *extra, cwd=work)
    refused_in_one_line(done, f"{target} cannot be written: ", f"({target.parent})")
    assert listing(work) == before


@pytest.mark.parametrize("out", ["/", ".", "/tmp/.."])
def test_an_index_at_a_root_or_over_its_inputs_folder_is_refused_in_one_line(work, out):
    """`index --out /` failed with `ValueError: PosixPath('/') has an empty name` (exit 1)."""
    (work / "creators.csv").write_text("creator_id\n")
    before = listing(work)
    done = run("index", "--creators", "creators.csv", "--out", out, cwd=work)
    expected = "the index cannot be written over a folder holding" if out == "." else "a file system root is never"
    refused_in_one_line(done, expected)
    assert listing(work) == before


def test_a_registry_that_exists_but_lacks_the_model_is_left_as_it_was(world_dir, work, tmp_path, monkeypatch):
    """Only a store that is not there is refused up front: one that is there is read, and the run still makes
    no output folder or lock file when the model is not in it."""
    store = tmp_path / "registry" / "mlflow.db"
    store.parent.mkdir()
    uri = f"sqlite:///{store}"
    mlflow.MlflowClient(uri, uri).search_registered_models()  # creates the (empty) store
    monkeypatch.setenv(TRACKING_URI_ENV, uri)
    before = listing(work)
    done = run("match", *inputs(world_dir), "--out", "newdir/sub/m.parquet", cwd=work)
    line = refused_in_one_line(done, "models:/creator-ranker@champion", "creator-ranker not found")
    assert NO_REGISTRY not in line
    assert listing(work) == before


@pytest.mark.slow
def test_a_match_goes_ahead_into_new_folders_and_a_refused_rerun_leaves_them_as_they_were(
    world_dir, trained, world_index, work
):
    """With the session's registry (tests/conftest.py): missing output folders are made when the run goes
    ahead; a rerun refused for a mismatched index keeps the matches, the lock file and everything else."""
    out = work / "newdir" / "sub" / "m.parquet"
    done = run("match", *inputs(world_dir), "--out", "newdir/sub/m.parquet", "--index", str(world_index), cwd=work)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(out)) > 0
    assert sorted(p.name for p in out.parent.iterdir()) == [".m.parquet.lock", "m.parquet", "m.parquet.run.json"]

    index = work / "mine" / "idx"
    shutil.copytree(world_index, index)
    meta = json.loads((index / "meta.json").read_text())
    (index / "meta.json").write_text(json.dumps({**meta, "embedding_model": "another-model"}))
    before, matches = listing(work), out.read_bytes()
    done = run("match", *inputs(world_dir), "--out", "newdir/sub/m.parquet", "--index", str(index), cwd=work)
    refused_in_one_line(done, "another-model")
    done = run("match", *inputs(world_dir), "--out", "newdir/other/m.parquet", "--index", str(index), cwd=work)
    refused_in_one_line(done, "another-model")
    assert listing(work) == before and out.read_bytes() == matches


@pytest.mark.slow
def test_a_model_directory_whose_records_store_is_gone_is_refused_without_creating_it(
    world_dir, trained, world_index, work, tmp_path, monkeypatch
):
    """A model directory downloaded from a run keeps its run id: without --performance, the creators' records
    are read from that run's store. Where that store is a SQLite file that is not there, the match is refused
    in one line naming it, and it is not created; with --performance the model needs no store."""
    model = mlflow.artifacts.download_artifacts(trained.model_uri, dst_path=str(tmp_path / "model"))
    gone = tmp_path / "gone" / "mlflow.db"
    gone.parent.mkdir()
    monkeypatch.setenv(TRACKING_URI_ENV, f"sqlite:///{gone}")
    before = listing(work)
    common = [*inputs(world_dir), "--index", str(world_index), "--model", model]
    done = run("match", *common, "--out", "newdir/m.parquet", cwd=work)
    refused_in_one_line(done, trained.run_id, f"none exists at {gone}", "--performance")
    assert listing(work) == before and not gone.exists()
    performance = str(world_dir / "performance.parquet")
    done = run("match", *common, "--performance", performance, "--out", "newdir/m.parquet", cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "newdir" / "m.parquet").is_file() and not gone.exists()


@pytest.fixture
def own_files(work, world_dir, world_index) -> Path:
    """The user's inputs in the working directory: the world's tables, its past campaigns beside its performance,
    a link to the performance file, a candidate index built by `creator-match index`, and a model directory (only
    its folder: a refused run never loads it)."""
    for name in ("creators", "new_campaigns", "campaigns", "performance"):
        shutil.copy(world_dir / f"{name}.parquet", work)
    (work / "perf-link.parquet").symlink_to(work / "performance.parquet")
    shutil.copytree(world_index, work / "idx")
    (work / "model").mkdir()
    (work / "model" / "MLmodel").write_text("artifact_path: model\n")
    return work


MATCH = ["match", "--campaigns", "new_campaigns.parquet", "--creators", "creators.parquet"]
WITH_PERFORMANCE = [*MATCH, "--performance", "performance.parquet"]


@pytest.mark.usefixtures("no_registry")
@pytest.mark.parametrize(
    "args, expected",
    [
        (
            [*WITH_PERFORMANCE, "--out", "m.parquet", "--summaries-out", "performance.parquet"],
            "performance.parquet: the summaries cannot be written over the performance file performance.parquet",
        ),
        (
            [*WITH_PERFORMANCE, "--out", "campaigns.parquet"],
            "campaigns.parquet: the matches cannot be written over the default --past-campaigns file ",
        ),
        (
            [*WITH_PERFORMANCE, "--past-campaigns", "campaigns.parquet", "--out", "campaigns.parquet"],
            "campaigns.parquet: the matches cannot be written over the past campaigns file campaigns.parquet",
        ),
        (
            [*WITH_PERFORMANCE, "--out", "m.parquet", "--candidates-out", "perf-link.parquet"],
            "perf-link.parquet: the candidates cannot be written over the performance file performance.parquet",
        ),
        (
            [*MATCH, "--index", "idx", "--out", "idx/creator_ids.parquet"],
            "idx/creator_ids.parquet: the matches cannot be written inside the index directory idx",
        ),
        (
            [*MATCH, "--index", "idx", "--out", "m.parquet", "--summaries-out", "./idx/../idx/new.csv"],
            "idx/../idx/new.csv: the summaries cannot be written inside the index directory idx",
        ),
        ([*MATCH, "--out", "."], ".: is a directory; expected a file for the matches"),
        (
            ["similar", "--like", "c1", "--creators", "creators.parquet", "--index", "idx", "--out", "idx/l.parquet"],
            "idx/l.parquet: the lookalikes cannot be written inside the index directory idx",
        ),
        (
            [*MATCH, "--model", "model", "--out", "model/m.parquet"],
            "model/m.parquet: the matches cannot be written inside the model directory model",
        ),
        (
            ["similar", "--like", "c1", "--creators", "creators.parquet", "--model", "model", "--out", "model/l.csv"],
            "model/l.csv: the lookalikes cannot be written inside the model directory model",
        ),
    ],
    ids=[
        "summaries over --performance",
        "matches over the default --past-campaigns",
        "matches over --past-campaigns",
        "candidates over a link to --performance",
        "matches inside --index",
        "summaries inside --index, by another name",
        "matches at .",
        "lookalikes inside --index",
        "matches inside a --model directory",
        "lookalikes inside a --model directory",
    ],
)
def test_no_output_is_written_over_an_input_of_the_command(own_files, args, expected):
    """Every input of the command, given or read by default, named directly, through a link or by another name of
    its folder, is refused as an output in one line naming both, and the directory is left as it was (a trial's
    `--summaries-out performance.parquet` replaced the performance file and exited 0)."""
    before = listing(own_files)
    refused_in_one_line(run(*args, cwd=own_files), expected)
    assert listing(own_files) == before
