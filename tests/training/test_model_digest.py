"""A registered ranker's files are checked against the digest `train` recorded before anything of them is unpickled:
files changed in the artifact store are refused in one line (exit 2), a version registered without the digest loads
with a warning. Nothing checked them before: a replaced pickle ran as it was loaded."""

from __future__ import annotations

import pickle
import subprocess
import warnings
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus

from tests.commands import match_args, run_in_process
from training.registry import (
    MODEL_DIGEST_TAG,
    DigestMismatch,
    UncheckedModelWarning,
    check_stored_files,
    load_ranker,
    model_digest,
)

pytestmark = pytest.mark.slow
MODEL_NAME = "digest-ranker"  # its own registered model, whose versions' files the tests change
# docs/model-review.md's command for checking a version's digest by hand, in its folder.
DOCUMENTED_DIGEST = (
    "find . -type f ! -path ./registered_model_meta ! -path '*/__pycache__/*' -printf '%P\\0' | LC_ALL=C sort -z "
    "| xargs -0 sha256sum | sha256sum"
)


class Marker:
    """A pickle whose unpickling creates the file `path`: what a crafted `python_model.pkl` would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


@pytest.fixture(scope="module")
def versions(trained, tmp_path_factory) -> dict[str, Path]:
    """Versions of MODEL_NAME, each the trained ranker's files in a folder of its own with the digest `train`
    recorded for them, as `train` registers it: `intact`, `one_byte` and `marker` (to be changed by the tests), and
    `untagged` (its tag removed, as a version registered by an earlier release); their folders by name."""
    client = MlflowClient()
    source = client.get_model_version(trained.model_name, trained.version)
    client.create_registered_model(MODEL_NAME)
    folders = {}
    for name in ("intact", "one_byte", "marker", "untagged"):
        folder = tmp_path_factory.mktemp(f"digest-{name}")
        folder = Path(mlflow.artifacts.download_artifacts(source.source, dst_path=str(folder)))
        made = client.create_model_version(
            MODEL_NAME, source=str(folder), run_id=source.run_id, tags={MODEL_DIGEST_TAG: source.tags[MODEL_DIGEST_TAG]}
        )
        client.set_registered_model_alias(MODEL_NAME, name.replace("_", "-"), made.version)
        folders[name] = folder
    client.delete_model_version_tag(
        MODEL_NAME, client.get_model_version_by_alias(MODEL_NAME, "untagged").version, MODEL_DIGEST_TAG
    )
    return folders


def test_train_records_the_digest_of_the_files_it_registered_on_the_version_and_the_run(trained):
    client = MlflowClient()
    version = client.get_model_version(trained.model_name, trained.version)
    stored = Path(client.get_model_version_download_uri(trained.model_name, trained.version))
    assert stored.is_dir() and (stored / "python_model.pkl").is_file()
    digest = model_digest(stored)
    assert version.tags[MODEL_DIGEST_TAG] == digest
    assert client.get_run(trained.run_id).data.tags[MODEL_DIGEST_TAG] == digest


def test_the_digest_is_the_one_sha256sum_gives_as_documented(trained):
    stored = MlflowClient().get_model_version_download_uri(trained.model_name, trained.version)
    done = subprocess.run(["sh", "-c", DOCUMENTED_DIGEST], cwd=stored, capture_output=True, text=True, check=True)
    assert done.stdout.split()[0] == model_digest(Path(stored))


def test_the_documented_digest_holds_in_a_download_as_a_server_store_reviewer_gets_it(trained, tmp_path):
    """Behind `mlflow server` the version's download URI is `mlflow-artifacts:/...`, no folder: the reviewer checks a
    download, which MLflow adds `registered_model_meta` to, and the documented command gives the recorded digest."""
    uri = f"models:/{trained.model_name}/{trained.version}"
    folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    assert (folder / "registered_model_meta").is_file()
    done = subprocess.run(["sh", "-c", DOCUMENTED_DIGEST], cwd=folder, capture_output=True, text=True, check=True)
    recorded = MlflowClient().get_model_version(trained.model_name, trained.version).tags[MODEL_DIGEST_TAG]
    assert done.stdout.split()[0] == recorded


def test_an_intact_version_loads_by_alias_and_its_run_by_runs_uri(versions, trained):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedModelWarning)
        assert load_ranker(f"models:/{MODEL_NAME}@intact").version == f"{MODEL_NAME}/1"
        assert load_ranker(f"runs:/{trained.run_id}/model").run_id == trained.run_id


def test_bytecode_a_plain_import_wrote_beside_the_stored_code_is_no_change(versions):
    """A process that imports the model's code where the store keeps it (plain MLflow loading a local store's
    model does) writes `__pycache__` there; the version stayed as `train` made it, and the next `train` refused
    the champion."""
    import os
    import sys

    code = versions["intact"] / "code"
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(code)!r}); import training.pyfunc"],
        env=environment,
        check=True,
    )
    assert list(code.rglob("__pycache__/*.pyc"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedModelWarning)
        assert load_ranker(f"models:/{MODEL_NAME}@intact").version == f"{MODEL_NAME}/1"


def test_one_byte_changed_in_the_store_is_refused_naming_both_digests(versions):
    changed = versions["one_byte"] / "MLmodel"
    data = bytearray(changed.read_bytes())
    data[-2] ^= 1
    changed.write_bytes(bytes(data))
    expected = MlflowClient().get_model_version(MODEL_NAME, "2").tags[MODEL_DIGEST_TAG]
    with pytest.raises(DigestMismatch) as refused:
        load_ranker(f"models:/{MODEL_NAME}/2")
    assert str(refused.value) == (
        f"model 'models:/{MODEL_NAME}/2': its files' SHA-256 is {model_digest(versions['one_byte'])[:12]}, the "
        f"{MODEL_DIGEST_TAG} tag of {MODEL_NAME} version 2 says {expected[:12]}: the files differ from what `train` "
        "registered (changed in the artifact store, or damaged); not loaded"
    )


def test_a_replaced_pickle_is_refused_before_it_is_unpickled_by_load_and_by_match(versions, world_dir, tmp_path):
    marker = tmp_path / "the pickle ran"
    (versions["marker"] / "python_model.pkl").write_bytes(pickle.dumps(Marker(marker)))
    with pytest.raises(DigestMismatch, match=r"^model 'models:/digest-ranker@marker' \(digest-ranker/3\): its files"):
        load_ranker(f"models:/{MODEL_NAME}@marker")
    assert not marker.exists()

    args = match_args(world_dir, tmp_path / "m.parquet", "--model", f"models:/{MODEL_NAME}@marker")
    done = run_in_process(*args[1:], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"creator-match: model 'models:/{MODEL_NAME}@marker' ({MODEL_NAME}/3): its files' SHA-256 is "
    ), lines
    assert lines[0].endswith(
        "the files differ from what `train` registered (changed in the artifact store, or damaged); not loaded"
    )
    assert not marker.exists() and not (tmp_path / "m.parquet").exists()


def test_a_version_without_the_tag_whose_files_are_not_its_runs_model_loads_with_a_warning(versions, trained):
    """Its run's digest is of the `model` `train` logged there, not of a folder the version was registered from."""
    with pytest.warns(UncheckedModelWarning) as warned:
        loaded = load_ranker(f"models:/{MODEL_NAME}@untagged")
    assert loaded.version == f"{MODEL_NAME}/4"
    assert [str(warning.message) for warning in warned if warning.category is UncheckedModelWarning] == [
        f"model 'models:/{MODEL_NAME}@untagged' ({MODEL_NAME}/4): {MODEL_NAME} version 4 has no {MODEL_DIGEST_TAG} "
        f"tag, and its files ({versions['untagged']}) are not the `model` run {trained.run_id} logged, so its files "
        "cannot be checked against what train wrote; loading them unchecked"
    ]


def test_a_version_registered_from_trains_run_by_hand_is_checked_against_the_runs_digest(trained, tmp_path):
    """`mlflow.register_model("runs:/<run>/model", name)`, as a reviewer promoting a run by hand does (or the UI's
    "Register model"), records no digest on the version: every load warned that its files were unchecked, though
    `train`'s run holds the digest of those very files. They are checked against it: the version loads and is
    promoted without a warning, and one byte changed is refused. The byte is changed in a run of its own holding a
    copy of the trained model and the run's digest, as `train` leaves them: the trained ranker's own files are read
    by every test of the session (and every worker)."""
    client = MlflowClient()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedModelWarning)
        registered = mlflow.register_model(f"runs:/{trained.run_id}/model", "digest-from-run").version
        # MLflow 3 registers the run's logged model by its id (the run's own artifacts hold no `model/`).
        assert client.get_model_version("digest-from-run", registered).source.startswith("models:/m-")
        assert load_ranker(f"models:/digest-from-run/{registered}").run_id == trained.run_id
        check_stored_files("digest-from-run", registered)
        # The logged model itself, by its id: the run's `model`, so checked against the run's digest as well.
        source = client.get_model_version(trained.model_name, trained.version).source
        assert load_ranker(source).run_id == trained.run_id

    trained_run = client.get_run(trained.run_id)
    (tmp_path / "files").mkdir()
    files = mlflow.artifacts.download_artifacts(source, dst_path=str(tmp_path / "files"))
    run = client.create_run(client.create_experiment("digest-run-copy", artifact_location=str(tmp_path / "copy")))
    client.set_tag(run.info.run_id, MODEL_DIGEST_TAG, trained_run.data.tags[MODEL_DIGEST_TAG])
    model = client.create_logged_model(run.info.experiment_id, name="model", source_run_id=run.info.run_id)
    client.log_model_artifacts(model.model_id, files)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    copied = mlflow.register_model(f"runs:/{run.info.run_id}/model", "digest-from-run-copy").version
    stored = Path(client.get_model_version_download_uri("digest-from-run-copy", copied)) / "MLmodel"
    data = bytearray(stored.read_bytes())
    data[-2] ^= 1
    stored.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch) as refused:
        load_ranker(f"models:/digest-from-run-copy/{copied}")
    assert str(refused.value) == (
        f"model 'models:/digest-from-run-copy/{copied}': its files' SHA-256 is {model_digest(stored.parent)[:12]}, "
        f"the {MODEL_DIGEST_TAG} tag of run {run.info.run_id} (whose `model` digest-from-run-copy version {copied} "
        f"registers) says {trained_run.data.tags[MODEL_DIGEST_TAG][:12]}: the files differ from what `train` "
        "registered (changed in the artifact store, or damaged); not loaded"
    )
