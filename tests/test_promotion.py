"""The promotion gate: judged on held-out campaigns neither version trained on, with the numbers shown."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from training.promotion import check_promotion
from training.ranker import CreatorRanker
from training.train import train

CLI = str(Path(sys.executable).parent / "creator-match")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, world_dir, embedder, tracking_uri):
    """v1 trained on what had settled by 2026-03-01; v2 on everything; v3 on everything with a crippled ranker."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('gate')}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    early = train(world_dir, model_name="gate", embedder=embedder, as_of=dt.date(2026, 3, 1))
    full = train(world_dir, model_name="gate", embedder=embedder)
    crippled = train(
        world_dir, model_name="gate", embedder=embedder, ranker=CreatorRanker(max_iter=1, learning_rate=0.01)
    )
    yield uri, early, full, crippled
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)


def test_train_compares_with_the_champion_only_on_campaigns_it_never_saw(registry):
    _, early, full, _ = registry
    assert early.is_champion and not full.is_champion
    assert full.metrics["champion_comparison_campaigns"] >= 3
    assert "champion_ndcg_at_10" in full.metrics
    card = MlflowClient().get_model_version("gate", full.version).description
    assert "## Held-out later campaigns" in card and "champion" in card


def test_a_better_version_passes_with_its_numbers(registry):
    _, _, full, _ = registry
    verdict = check_promotion("gate", full.version)
    assert verdict.campaigns >= 3
    assert verdict.candidate_ndcg is not None and verdict.champion_ndcg is not None
    assert verdict.allowed == (verdict.candidate_ndcg >= verdict.champion_ndcg)
    assert f"{verdict.candidate_ndcg:.3f}" in verdict.reason


def test_a_worse_version_is_refused_with_exit_2_unless_forced(registry):
    uri, _, _, crippled = registry
    verdict = check_promotion("gate", crippled.version)
    assert not verdict.allowed and verdict.candidate_ndcg < verdict.champion_ndcg
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    done = subprocess.run(
        [CLI, "promote", "--model-name", "gate", "--version", crippled.version], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert "does not beat" in done.stderr and f"{verdict.candidate_ndcg:.3f}" in done.stderr
    assert MlflowClient(uri).get_model_version_by_alias("gate", "champion").version != int(crippled.version)
    forced = subprocess.run(
        [CLI, "promote", "--model-name", "gate", "--version", crippled.version, "--force"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert forced.returncode == 0, forced.stderr
    assert str(MlflowClient(uri).get_model_version_by_alias("gate", "champion").version) == crippled.version


def test_same_data_versions_cannot_be_judged_fairly(registry, world_dir, embedder):
    """A version trained on the champion's own campaigns has nothing fair to compare on: refused, with why."""
    twin = train(world_dir, model_name="gate", embedder=embedder, as_of=dt.date(2026, 3, 1))
    verdict = check_promotion("gate", twin.version)
    assert not verdict.allowed and "no fair comparison" in verdict.reason
