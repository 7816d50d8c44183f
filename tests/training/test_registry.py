"""The registry's failures are errors that say what happened and what was left behind, never a silent default."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import time

import mlflow
import pytest
from mlflow import MlflowClient

from tests.commands import CLI, run_in_process
from training.registry import (
    CHAMPION,
    MODEL_DIGEST_TAG,
    RegistrationIncomplete,
    RegistryUnavailable,
    champion_version,
    check_server_reachable,
    create_store,
    finish_registration,
    git_state,
    model_digest,
    register,
    use_experiment,
)
from training.train import TrainResult, summarize


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def store(tmp_path, monkeypatch, new_store):
    """A fresh SQLite store, made current for this test only."""
    uri = new_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def use(monkeypatch, uri: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


def test_no_model_and_no_alias_mean_no_champion(store, tmp_path):
    client = MlflowClient(store)
    assert champion_version("never-registered") is None
    client.create_registered_model("m")
    client.create_model_version("m", source=str(tmp_path))
    assert champion_version("m") is None
    client.set_registered_model_alias("m", CHAMPION, "1")
    assert champion_version("m") == "1"


def test_a_sqlite_stores_new_experiment_keeps_its_artifacts_beside_the_database(tmp_path, monkeypatch):
    """Not in `./mlruns` of whatever directory the command ran in (MLflow's default): a nightly job started
    elsewhere than the first `train` split the store's runs in two. An experiment made before keeps its place."""
    shared = tmp_path / "models"
    shared.mkdir()
    elsewhere = tmp_path / "cron-home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    use(monkeypatch, f"sqlite:///{shared}/mlflow.db")
    create_store()
    MlflowClient().create_experiment("made-before", artifact_location=(tmp_path / "old").as_uri())

    use_experiment("creator-ranker")
    use_experiment("made-before")
    with mlflow.start_run() as run:
        mlflow.log_text("logged", "note.txt")

    assert MlflowClient().get_experiment_by_name("creator-ranker").artifact_location == str(shared / "mlruns")
    assert MlflowClient().get_experiment_by_name("made-before").artifact_location == (tmp_path / "old").as_uri()
    assert (tmp_path / "old" / run.info.run_id / "artifacts" / "note.txt").read_text() == "logged"
    assert not list(elsewhere.iterdir())


def test_an_unreachable_registry_is_an_error_naming_it(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = f"http://127.0.0.1:{closed_port()}"
    use(monkeypatch, uri)
    with pytest.raises(RegistryUnavailable, match=re.escape(f"cannot read model 'm' from the registry at {uri}")):
        champion_version("m")


def test_a_server_that_takes_no_connection_is_given_up_in_seconds(store, monkeypatch):
    """With MLflow's own retries as they are, which kept at a refused connection for about 4 minutes."""
    uri = f"http://127.0.0.1:{closed_port()}"
    use(monkeypatch, uri)
    started = time.monotonic()
    expected = f"the MLflow server at {uri} takes no connection (Connection refused for 3 s)"
    with pytest.raises(RegistryUnavailable, match=re.escape(expected)):
        check_server_reachable(wait=3.0)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("given", "shown"),
    [("dapiSECRETTOKEN@", "***@"), ("reader:SECRETTOKEN@", "reader:***@"), (":SECRETTOKEN@", ":***@")],
)
def test_a_servers_credentials_are_masked_in_messages_a_bare_token_too(store, monkeypatch, given, shown):
    """A token given as the whole userinfo (`http://TOKEN@host`, as Databricks' are) was printed in full."""
    port = closed_port()
    use(monkeypatch, f"http://{given}127.0.0.1:{port}")
    with pytest.raises(RegistryUnavailable) as refused:
        check_server_reachable(wait=1.0)
    assert "SECRETTOKEN" not in str(refused.value)
    assert f"the MLflow server at http://{shown}127.0.0.1:{port} takes no connection" in str(refused.value)


def test_a_corrupt_store_is_an_error_naming_it(store, tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database " * 100)
    use(monkeypatch, f"sqlite:///{corrupt}")
    with pytest.raises(RegistryUnavailable, match=r"corrupt\.db: .*not a database"):
        champion_version("m")


def test_train_against_an_unreachable_registry_exits_1_before_any_work(world_dir, tmp_path, monkeypatch):
    """The command stops at once with one line naming the store; before, it trained and crowned blindly.

    The command's own `main` in this process (the registry's answer, not the process, is under test; the console
    script's exit statuses are tests/matcher/test_cli.py's and tests/training/test_tracking_server.py's)."""
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    done = run_in_process("train", "--data", str(world_dir), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"the MLflow server at {uri} takes no connection" in lines[0]
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # no local store or artifacts appeared
    # Seconds to fail, against the minute of embedding and fitting the world takes.
    assert time.monotonic() - started < 60


def test_promoting_a_version_without_a_training_run_is_refused_in_one_line_unless_forced(store, tmp_path):
    """A version registered by hand (`create_model_version(name, source=path)`, no run) failed `promote --force`
    with `TypeError: expected string or bytes-like object, got 'NoneType'`: it has nothing to be judged by."""
    client = MlflowClient(store)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source=str(tmp_path))
    client.set_registered_model_alias("m", CHAMPION, "1")
    refused = run_in_process("promote", "--model-name", "m", "--version", "2", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        "creator-match: not promoted: version 2 has no training run (not registered by `train`); no fair "
        "comparison (use --force to promote anyway)\n"
    )
    assert champion_version("m") == "1"
    forced = run_in_process("promote", "--model-name", "m", "--version", "2", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert champion_version("m") == "2" and "no training run" in forced.stdout and "forced" in forced.stdout


def test_a_version_whose_stored_files_changed_is_not_promoted_even_forced(store, tmp_path):
    """`promote --force` moved `champion` to a version whose files no longer had the digest `train` recorded: every
    batch `match` and `serve` then refused it (exit 2) until someone rolled back. Its files are checked first."""
    client = MlflowClient(store)
    client.create_registered_model("m")
    for number in ("1", "2"):
        folder = tmp_path / f"v{number}"
        folder.mkdir()
        (folder / "MLmodel").write_text(f"version {number}\n")
        client.create_model_version("m", source=str(folder), tags={MODEL_DIGEST_TAG: model_digest(folder)})
    client.set_registered_model_alias("m", CHAMPION, "1")
    recorded = model_digest(tmp_path / "v2")
    (tmp_path / "v2" / "MLmodel").write_text("replaced in the artifact store\n")
    refused = run_in_process("promote", "--model-name", "m", "--version", "2", "--force", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        f"creator-match: model 'models:/m/2': its files' SHA-256 is {model_digest(tmp_path / 'v2')[:12]}, the "
        f"{MODEL_DIGEST_TAG} tag of m version 2 says {recorded[:12]}: the files differ from what `train` registered "
        "(changed in the artifact store, or damaged); not promoted: `match` and `serve` would refuse to load it\n"
    )
    assert champion_version("m") == "1" and "promoted_at" not in client.get_model_version("m", "2").tags
    # Its files put back as registered, it is promoted (forced: a version registered by hand has no run to judge).
    (tmp_path / "v2" / "MLmodel").write_text("version 2\n")
    forced = run_in_process("promote", "--model-name", "m", "--version", "2", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert champion_version("m") == "2"


def forbid(store: str, trigger: str) -> None:
    """Makes the SQLite store refuse one kind of write, as a read-only or failing store would."""
    with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
        db.execute(trigger)


def registered(store: str, tmp_path) -> str:
    MlflowClient(store).create_registered_model("m")
    return str(MlflowClient(store).create_model_version("m", source=str(tmp_path)).version)


def test_a_promotion_whose_tags_fail_after_the_alias_moved_says_so_and_how_to_roll_back(store, tmp_path):
    """The store refusing the promotion's tags, after the alias had moved, was reported as "cannot promote m
    version 2" (exit 2) while the alias pointed at version 2: it says where the alias points, why the record
    failed and how to roll back, exit 1 (a store's failure, not bad input); the rollback it names works."""
    client = MlflowClient(store)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source=str(tmp_path))
    client.set_registered_model_alias("m", CHAMPION, "1")
    forbid(store, "CREATE TRIGGER frozen BEFORE INSERT ON model_version_tags BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    failed = run_in_process("promote", "--model-name", "m", "--version", "2", "--force", cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert len(failed.stderr.splitlines()) == 1 and failed.stdout == ""
    line = failed.stderr
    assert line.startswith(
        "creator-match: `champion` of m now points at version 2 (before: version 1), but recording the promotion in "
        "tags failed: "
    )
    assert "frozen" in line and "cannot promote" not in line
    rollback = "creator-match promote --model-name m --version 1 --force"
    assert f"roll back with `{rollback}`" in line
    assert champion_version("m") == "2"
    assert "promoted_at" not in client.get_model_version("m", "2").tags
    # Once the store takes tags again, the rollback it names moves the alias back and records itself.
    forbid(store, "DROP TRIGGER frozen")
    done = run_in_process(*rollback.split()[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert champion_version("m") == "1"
    assert client.get_model_version("m", "1").tags["promoted_from"] == "2"
    # A model's first champion has no version to roll back to: the line says how to undo the alias instead.
    client.create_registered_model("n")
    client.create_model_version("n", source=str(tmp_path))
    forbid(store, "CREATE TRIGGER frozen BEFORE INSERT ON model_version_tags BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    first = run_in_process("promote", "--model-name", "n", "--version", "1", cwd=tmp_path)
    assert first.returncode == 1 and champion_version("n") == "1", first.stderr
    assert "`champion` of n now points at version 1 (before: none)" in first.stderr
    assert "no version held it before: `MlflowClient().delete_registered_model_alias('n', 'champion')`" in first.stderr


def test_only_a_models_first_version_is_made_champion(store, tmp_path):
    """A trial deleted the alias with versions 1-6 registered, and the next `train` made version 7 champion
    unreviewed. Only `promote` moves the alias after the first version: deleted, or gone with its version."""
    client = MlflowClient(store)
    assert finish_registration("m", registered(store, tmp_path), "card", make_champion=True)
    for _ in range(5):
        client.create_model_version("m", source=str(tmp_path))
    client.delete_registered_model_alias("m", CHAMPION)
    seventh = str(client.create_model_version("m", source=str(tmp_path)).version)
    assert not finish_registration("m", seventh, "card", make_champion=True)
    assert champion_version("m") is None and client.get_model_version("m", seventh).description == "card"
    client.set_registered_model_alias("m", CHAMPION, seventh)
    client.delete_model_version("m", seventh)
    assert champion_version("m") is None
    eighth = str(client.create_model_version("m", source=str(tmp_path)).version)
    assert not finish_registration("m", eighth, "card", make_champion=True)
    assert champion_version("m") is None
    said = summarize(TrainResult("run", "m", eighth, False, {}, 10, champion=None))
    assert said.splitlines()[0] == (
        f"registered m version {eighth} (not champion: no version holds `champion`, and only a model's first version "
        f"is made champion without review; `creator-match promote --model-name m --version {eighth}` makes this one "
        "champion)"
    )


def test_a_model_name_with_a_quote_gets_its_first_champion(store, tmp_path):
    """MLflow registers a name such as `o'brien-ranker`, but the first version's crowning searched its versions with
    the name pasted between single quotes (`Invalid clause(s) in filter string`): `train` ended, exit 1, with the
    version registered and no champion."""
    client = MlflowClient(store)
    client.create_registered_model("o'brien-ranker")
    first = str(client.create_model_version("o'brien-ranker", source=str(tmp_path)).version)
    assert finish_registration("o'brien-ranker", first, "card", make_champion=True)
    assert champion_version("o'brien-ranker") == first


def test_a_failed_alias_says_the_version_is_registered_with_its_card_but_not_champion(store, tmp_path):
    version = registered(store, tmp_path)
    forbid(
        store,
        "CREATE TRIGGER frozen BEFORE INSERT ON registered_model_aliases BEGIN SELECT RAISE(ABORT, 'frozen'); END",
    )
    with pytest.raises(RegistrationIncomplete) as failed:
        finish_registration("m", version, "the card", make_champion=True)
    message = str(failed.value)
    assert f"registered m version {version} in {store} with its model card" in message
    assert "could not make it `champion`" in message and "frozen" in message and "alias is not set" in message
    client = MlflowClient(store)
    assert client.get_model_version("m", version).description == "the card"
    assert champion_version("m") is None


def test_a_failed_description_says_the_version_is_registered_and_the_alias_untouched(store, tmp_path):
    version = registered(store, tmp_path)
    forbid(
        store,
        "CREATE TRIGGER frozen BEFORE UPDATE OF description ON model_versions BEGIN SELECT RAISE(ABORT, 'frozen'); END",
    )
    with pytest.raises(RegistrationIncomplete) as failed:
        finish_registration("m", version, "the card", make_champion=True)
    assert f"registered m version {version} in {store}, but could not set its description" in str(failed.value)
    assert "alias was not moved" in str(failed.value)
    assert champion_version("m") is None


def test_a_failed_registration_says_nothing_was_registered(store, tmp_path):
    MlflowClient(store).create_registered_model("m")
    forbid(store, "CREATE TRIGGER frozen BEFORE INSERT ON model_versions BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    with pytest.raises(RegistrationIncomplete, match="no version was registered"):
        register(str(tmp_path), "m")
    assert MlflowClient(store).search_model_versions("name='m'") == []


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["card", "card's logging"])
def test_a_registration_failing_after_the_version_exists_is_tagged_incomplete_with_the_version(
    failing, store, world_dir, embedder, tmp_path, monkeypatch, shared_training_builds
):
    """The run's `registration` tag says `pending` only while registering (docs/model-review.md: a train killed
    then); once a version exists, any failure leaves `incomplete:` with the version's number. A card that could
    not be written, or one MLflow could not log to the run, left `pending` beside a registered version.

    Nothing a train is given makes the card fail, so both cases go through monkeypatch on the project's
    `training.train.model_card`: for "card" it raises, as a card missing a tag would; for "card's logging" it
    writes the real card, then puts a file where the run's `review/` artifacts folder is, so that MLflow's own
    `log_text` of `review/model_card.md` into this real SQLite store's artifacts fails, after the version has
    its description and the champion alias.
    """
    import importlib
    import shutil
    from pathlib import Path
    from urllib.parse import urlparse

    from training.ranker import CreatorRanker
    from training.train import REGISTRATION_TAG, train

    module = importlib.import_module("training.train")  # the package's `train` attribute is the function
    real_card = module.model_card

    def failing_card(name, version, *args):
        if failing == "card":
            raise KeyError("training_window")
        card = real_card(name, version, *args)
        client = MlflowClient()
        run = client.get_run(client.get_model_version(name, version).run_id)
        review = Path(urlparse(run.info.artifact_uri).path) / "review"
        shutil.rmtree(review)
        review.write_text("not a folder")
        return card

    monkeypatch.setattr(module, "model_card", failing_card)
    with pytest.raises(Exception) as failed:  # what was raised is checked after the tag
        # What is checked is the run's tag and the version, not the ranker: a lighter one keeps the run short.
        train(world_dir, embedder=embedder, ranker=CreatorRanker(max_iter=20))
    client = MlflowClient(store)
    (version,) = client.search_model_versions("name='creator-ranker'")
    run = client.get_run(version.run_id)
    tag = run.data.tags[REGISTRATION_TAG]
    assert run.info.status == "FINISHED"
    assert tag != "pending" and failed.type is RegistrationIncomplete, (tag, failed.value)
    assert tag == f"incomplete: {failed.value}", tag
    assert tag.startswith(f"incomplete: registered creator-ranker version {version.version} in {store}"), tag
    if failing == "card":
        assert "could not write its model card: 'training_window'" in tag and "alias was not moved" in tag, tag
        assert not version.description and champion_version("creator-ranker") is None
    else:
        assert "with its model card as `champion`, but could not log the card to run" in tag, tag
        assert version.description.startswith(f"# creator-ranker version {version.version}")
        assert champion_version("creator-ranker") == str(version.version)


@pytest.mark.slow
def test_two_first_trainings_at_once_on_a_new_store_make_one_champion(small_world_dir, tmp_path):
    """Two `train` processes started together on a store that does not exist yet: the store's tables are set up
    once (one run failed on the other's "duplicate column name"), both versions register, and only one takes the
    `champion` alias (both did: each had seen no champion when it started) and says so.

    On a world smaller than the session's: what races is the store's set-up before the work and the registration
    after it, so each training need only take longer than the two processes' start-up differs (seconds)."""
    world = small_world_dir
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    runs = [
        subprocess.Popen(
            [CLI, "train", "--data", str(world)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    said = [line for out, err in outputs for line in (out + err).splitlines() if "registered creator-ranker" in line]
    assert len(said) == 2 and sum("(champion)" in line for line in said) == 1, said
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    champion = client.get_registered_model("creator-ranker").aliases[CHAMPION]
    assert f"version {champion} (champion)" in next(line for line in said if "(champion)" in line)
    assert sorted(str(v.version) for v in client.search_model_versions("name='creator-ranker'")) == ["1", "2"]


@pytest.fixture
def locked_store(tmp_path, monkeypatch, new_store):
    """A real MLflow SQLite store held by another connection in an exclusive transaction, as a long write by another
    process holds it. The URI lowers SQLite's busy timeout (the driver's `timeout`, 5 s by default) to 0.2 s
    through SQLAlchemy's own URL setting, so each command gives up at once instead of waiting."""
    path = tmp_path / "store" / "mlflow.db"
    new_store(path)  # the tables, made as MLflow makes them
    uri = f"sqlite:///{path}?timeout=0.2"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield uri
    holder.execute("ROLLBACK")
    holder.close()


@pytest.mark.parametrize("command", ["train", "match", "similar", "promote"])
def test_a_locked_store_stops_each_command_with_one_line_naming_it(locked_store, world_dir, tmp_path, command):
    """Exit 1 and one line naming the store, as docs/cli.md promises; `train` and `match` printed only
    `failed: OperationalError: (sqlite3.OperationalError) database is locked`, naming no store. Each command's
    own `main` in this process: the store's answer is under test, not the process."""
    creators = str(world_dir / "creators.parquet")
    args = {
        "train": ["--data", str(world_dir)],
        "match": ["--campaigns", str(world_dir / "new_campaigns.parquet"), "--creators", creators],
        "similar": ["--like", "cr000000", "--creators", creators],
        "promote": ["--version", "1"],
    }[command]
    if command == "match":
        args += ["--out", str(tmp_path / "out" / "matches.parquet")]
    started = time.monotonic()
    done = run_in_process(command, *args, cwd=tmp_path)
    assert time.monotonic() - started < 60, "a locked store is given up, not waited on"
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"the registry at {locked_store}: " in lines[0] and "database is locked" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_a_runs_code_is_dirty_with_an_edit_or_an_untracked_module_not_with_an_output(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start")
    (tmp_path / "matcher").mkdir()
    (tmp_path / "matcher" / "api.py").write_text("x = 1\n")
    git("add", "matcher/api.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "code")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert git_state(tmp_path) == {"git_commit": head.stdout.strip(), "git_dirty": "false"}
    # Outputs beside the code are not code.
    (tmp_path / "mlflow.db").write_bytes(b"")
    (tmp_path / "slates").mkdir()
    (tmp_path / "slates" / "slates.parquet").write_bytes(b"")
    assert git_state(tmp_path)["git_dirty"] == "false"
    # A module no commit holds, inside a package, ran as much as a committed one.
    (tmp_path / "matcher" / "scoring_patch.py").write_text("y = 2\n")
    assert git_state(tmp_path)["git_dirty"] == "true"
    (tmp_path / "matcher" / "scoring_patch.py").unlink()
    (tmp_path / "matcher" / "api.py").write_text("x = 2\n")
    assert git_state(tmp_path)["git_dirty"] == "true"


def test_a_folder_that_is_no_checkout_has_no_git_state(tmp_path, monkeypatch):
    # Wherever the temporary folder lies (inside a checkout too), git looks no higher than it.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_state(tmp_path) == {}
