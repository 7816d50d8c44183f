"""`ModelHolder` watching a real MLflow store's alias: what a promoted version that fails to load does to the service.

A version whose files are missing (moved away, not yet copied in) is tried again at each poll and served once it
loads; a version whose own content cannot be served here (another embedding model) is refused for good. Each is
logged once, not at every poll, and /readyz's body names it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cloudpickle
import mlflow
import pytest
from mlflow import MlflowClient

import training.registry
from features.tables import read_table
from matcher.model_holder import ModelHolder, ServiceConfig
from training.registry import MODEL_DIGEST_TAG

pytestmark = pytest.mark.slow
MODEL_NAME = "holder-ranker"  # its own registered model: moving its alias leaves the other tests' alone
PICKLE = "python_model.pkl"


def versions_with_own_files(name: str, trained, directory: Path, count: int = 2) -> list[Path]:
    """`count` versions of `name`, each the trained ranker with a copy of its files of its own (so that a test may
    move or change one version's files), version 1 the `champion`; their folders, in version order."""
    client = MlflowClient()
    source = client.get_model_version(trained.model_name, trained.version)
    folders = []
    for number in range(1, count + 1):
        folder = Path(mlflow.artifacts.download_artifacts(source.source, dst_path=str(directory / f"v{number}")))
        made = client.create_model_version(name, source=str(folder), run_id=source.run_id)
        assert str(made.version) == str(number), "a registered model of this name existed already"
        folders.append(folder)
    client.set_registered_model_alias(name, "champion", "1")
    return folders


@pytest.fixture(scope="module")
def holder(trained, world_dir, world_index, tmp_path_factory):
    """A holder serving version 1 of MODEL_NAME, its alias watched only when the test calls `refresh`; yields
    (holder, the versions' folders, how many times a ranker was loaded from the registry)."""
    MlflowClient().create_registered_model(MODEL_NAME)
    folders = versions_with_own_files(MODEL_NAME, trained, tmp_path_factory.mktemp("holder-versions"), count=5)
    config = ServiceConfig(f"models:/{MODEL_NAME}@champion", index=str(world_index), poll_seconds=3600)
    holder = ModelHolder(read_table(world_dir / "creators.parquet", "creators"), config)
    holder.start()
    deadline = time.monotonic() + 300
    while holder.matcher is None:
        assert holder.failure is None and time.monotonic() < deadline, holder.failure
        time.sleep(0.2)
    yield holder, folders
    holder.stop()


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The model URIs `refresh` loads, in order (the real loads happen)."""
    seen: list[str] = []
    real = training.registry.load_ranker

    def counted(uri: str):
        seen.append(uri)
        return real(uri)

    monkeypatch.setattr(training.registry, "load_ranker", counted)
    return seen


def _warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "creator_matcher.service"]


def test_a_version_whose_file_is_missing_is_tried_at_each_poll_logged_once_and_served_once_it_is_back(
    holder, loads, caplog
):
    """A trial moved version 2's pickle away, promoted it, and put it back: the service kept version 1 for good."""
    holder, folders = holder
    caplog.set_level(logging.WARNING, logger="creator_matcher.service")
    (folders[1] / PICKLE).rename(folders[1] / "away.pkl")
    try:
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", "2")
        assert [holder.refresh() for _ in range(3)] == [False, False, False]
        assert loads == [f"models:/{MODEL_NAME}/2"] * 3, "tried again at each poll"
        ready, body = holder.readiness()
        assert ready and body["model_version"] == f"{MODEL_NAME}/1"
        assert body["not_served"]["model_version"] == f"{MODEL_NAME}/2" and body["not_served"]["retried"] is True
        assert f"No such file or directory: '{PICKLE}'" in body["not_served"]["reason"]
        failures = [line for line in _warnings(caplog) if line.startswith("not serving")]
        assert len(failures) == 1, f"logged once, not at every poll: {failures}"
        assert failures[0].startswith(f"not serving {MODEL_NAME}/2 (still {MODEL_NAME}/1; tried again at each poll)")
    finally:
        (folders[1] / "away.pkl").rename(folders[1] / PICKLE)
    assert holder.refresh() is True
    ready, body = holder.readiness()
    assert ready and body["model_version"] == f"{MODEL_NAME}/2" and "not_served" not in body
    assert f"now serving {MODEL_NAME}/2 (was {MODEL_NAME}/1), which had failed to load" in _warnings(caplog)


def test_a_version_made_with_another_embedding_model_is_refused_once_and_not_loaded_again(holder, loads, caplog):
    """Its own content says it cannot be served with the loaded encoder: no later poll changes that."""
    holder, folders = holder
    caplog.set_level(logging.WARNING, logger="creator_matcher.service")
    served = holder.readiness()[1]["model_version"]
    model = cloudpickle.loads((folders[2] / PICKLE).read_bytes())
    model.embedding_model = "all-mpnet-base-v2"
    (folders[2] / PICKLE).write_bytes(cloudpickle.dumps(model))
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", "3")
    assert [holder.refresh() for _ in range(3)] == [False, False, False]
    assert loads == [f"models:/{MODEL_NAME}/3"], "loaded once, then not again"
    ready, body = holder.readiness()
    assert ready and body["model_version"] == served
    assert body["not_served"]["model_version"] == f"{MODEL_NAME}/3" and body["not_served"]["retried"] is False
    assert "ArtifactMismatch" in body["not_served"]["reason"] and "all-mpnet-base-v2" in body["not_served"]["reason"]
    assert len([line for line in _warnings(caplog) if line.startswith(f"not serving {MODEL_NAME}/3")]) == 1
    # The alias back on the version in service: nothing is left unserved.
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", served.rsplit("/", 1)[1])
    assert holder.refresh() is False and "not_served" not in holder.readiness()[1]


def test_a_version_whose_pickle_is_cut_short_is_refused_once_and_not_loaded_again(holder, loads, caplog):
    """A trial's version 4 with its pickle cut to 1,000 bytes was retried at every poll, for ever: its own file
    cannot be read, which no later poll changes."""
    holder, folders = holder
    caplog.set_level(logging.WARNING, logger="creator_matcher.service")
    served = holder.readiness()[1]["model_version"]
    (folders[3] / PICKLE).write_bytes((folders[3] / PICKLE).read_bytes()[:1000])
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", "4")
    assert [holder.refresh() for _ in range(3)] == [False, False, False]
    assert loads == [f"models:/{MODEL_NAME}/4"], "loaded once, then not again"
    ready, body = holder.readiness()
    assert ready and body["model_version"] == served
    assert body["not_served"]["retried"] is False
    assert body["not_served"]["reason"] == (
        f"NotARanker: model 'models:/{MODEL_NAME}/4' cannot be read: UnpicklingError: pickle data was truncated"
    )
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", served.rsplit("/", 1)[1])
    assert holder.refresh() is False and "not_served" not in holder.readiness()[1]


def test_a_version_whose_files_differ_from_its_digest_is_refused_once_and_not_loaded_again(
    holder, trained, loads, caplog
):
    """Version 5 carries the digest `train` recorded for the files, one byte of which was then changed in the store:
    refused before it is unpickled, as a version whose own content cannot be served, and not tried again."""
    holder, folders = holder
    caplog.set_level(logging.WARNING, logger="creator_matcher.service")
    served = holder.readiness()[1]["model_version"]
    client = MlflowClient()
    digest = client.get_model_version(trained.model_name, trained.version).tags[MODEL_DIGEST_TAG]
    client.set_model_version_tag(MODEL_NAME, "5", MODEL_DIGEST_TAG, digest)
    data = bytearray((folders[4] / PICKLE).read_bytes())
    data[len(data) // 2] ^= 1
    (folders[4] / PICKLE).write_bytes(bytes(data))
    client.set_registered_model_alias(MODEL_NAME, "champion", "5")
    assert [holder.refresh() for _ in range(3)] == [False, False, False]
    assert loads == [f"models:/{MODEL_NAME}/5"], "loaded once, then not again"
    ready, body = holder.readiness()
    assert ready and body["model_version"] == served
    assert body["not_served"]["retried"] is False
    assert body["not_served"]["reason"].startswith(
        f"DigestMismatch: model 'models:/{MODEL_NAME}/5': its files' SHA-256 is "
    ), body["not_served"]["reason"]
    assert len([line for line in _warnings(caplog) if line.startswith(f"not serving {MODEL_NAME}/5")]) == 1
    client.set_registered_model_alias(MODEL_NAME, "champion", served.rsplit("/", 1)[1])
    assert holder.refresh() is False and "not_served" not in holder.readiness()[1]
