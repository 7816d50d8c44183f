"""The promotion gate: judged on held-out campaigns neither version trained on, with the numbers shown.

Each case is built so that its verdict is known before the gate runs: a ranker that cannot tell creators
apart (every head a constant, so every ranking is a tie) against a fitted one, in both directions, and two
versions trained on the same campaigns, which leave nothing fair to compare on.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.commands import run_in_process
from training.promotion import (
    HELD_OUT_PREDICTED,
    MIN_CAMPAIGNS,
    champion_on_unseen,
    check_promotion,
    credit_rule,
    said_difference,
    unseen_by,
)
from training.ranker import CreatorRanker
from training.registry import champion_version, promote
from training.train import summarize, train

pytestmark = pytest.mark.slow
EARLY = dt.date(2026, 3, 1)


def fitted() -> CreatorRanker:
    """A smaller ranker than the default: quick to fit, and still far better than a blind one."""
    return CreatorRanker(max_iter=40)


def blind() -> CreatorRanker:
    """A ranker whose heads cannot split (no leaf may hold fewer than 10^9 rows): the same score for every pair."""
    return CreatorRanker(max_iter=1, min_samples_leaf=10**9)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, world_dir, embedder, tracking_uri, new_store, shared_training_builds):
    """Five versions of `gate`: blind and fitted, each trained on what had settled by EARLY and on everything, and a
    fitted one crediting sales by position; trainings on the same data share its build."""
    uri = new_store(tmp_path_factory.mktemp("gate") / "mlflow.db")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    versions = {
        "early_blind": train(world_dir, model_name="gate", embedder=embedder, as_of=EARLY, ranker=blind()),
        "full_fitted": train(world_dir, model_name="gate", embedder=embedder, ranker=fitted()),
        "early_fitted": train(world_dir, model_name="gate", embedder=embedder, as_of=EARLY, ranker=fitted()),
        "full_blind": train(world_dir, model_name="gate", embedder=embedder, ranker=blind()),
        "full_fitted_position": train(
            world_dir, model_name="gate", embedder=embedder, ranker=fitted(), attribution="position_based"
        ),
    }
    yield uri, versions
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)


def test_train_compares_with_the_champion_only_on_campaigns_it_never_saw(registry):
    _, versions = registry
    assert versions["early_blind"].is_champion and not versions["full_fitted"].is_champion
    full = versions["full_fitted"]
    assert full.metrics["champion_comparison_campaigns"] >= 3
    assert "champion_ndcg_at_10" in full.metrics and "challenger_ndcg_at_10" in full.metrics
    assert f"against champion version {versions['early_blind'].version}, on the" in summarize(full)
    assert "NDCG@10" in summarize(full)
    card = MlflowClient().get_model_version("gate", full.version).description
    assert "## Held-out later campaigns" in card and "champion" in card
    # The paired per-campaign comparison, as evidence beside the two means: the mean of the differences is the
    # difference of the means, inside its interval, and the card and the summary give it.
    m = full.metrics
    mean, low, high = (m[f"challenger_minus_champion_ndcg_at_10{end}"] for end in ("", "_low", "_high"))
    assert mean == pytest.approx(m["challenger_ndcg_at_10"] - m["champion_ndcg_at_10"], abs=1e-9)
    assert low <= mean <= high
    logged = MlflowClient().get_run(full.run_id).data.metrics
    assert logged["challenger_minus_champion_ndcg_at_10_low"] == pytest.approx(low)
    said = said_difference(mean, low, high)
    assert said in card and said in summarize(full)


def test_a_fitted_version_replaces_a_blind_champion(registry):
    _, versions = registry
    promote("gate", versions["early_blind"].version)
    verdict = check_promotion("gate", versions["full_fitted"].version)
    assert verdict.allowed, verdict.reason
    assert verdict.campaigns >= 3 and verdict.candidate_ndcg > verdict.champion_ndcg
    assert (
        "beats" in verdict.reason and f"{verdict.candidate_ndcg:.3f} vs {verdict.champion_ndcg:.3f}" in verdict.reason
    )
    # The version is judged as training judged it against the same champion: by its held-out fit, which never saw
    # these campaigns, not by the registered model, refitted on them.
    logged = versions["full_fitted"].metrics
    assert verdict.candidate_ndcg == pytest.approx(logged["challenger_ndcg_at_10"], rel=1e-9)
    assert verdict.champion_ndcg == pytest.approx(logged["champion_ndcg_at_10"], rel=1e-9)
    # And the paired comparison too: the same figures, in the verdict's words.
    assert verdict.difference == pytest.approx(
        tuple(logged[f"challenger_minus_champion_ndcg_at_10{end}"] for end in ("", "_low", "_high")), abs=1e-9
    )
    assert verdict.reason.endswith(f"; {said_difference(*verdict.difference)}")


def test_a_blind_version_is_refused_with_exit_2_unless_forced(registry):
    uri, versions = registry
    champion, blind_version = versions["early_fitted"].version, versions["full_blind"].version
    promote("gate", champion)
    verdict = check_promotion("gate", blind_version)
    assert not verdict.allowed and verdict.candidate_ndcg < verdict.champion_ndcg
    # The command's own `main`, on this module's store (the console script's exit 2 over a real process is
    # tests/training/test_tracking_server.py's).
    assert os.environ["MLFLOW_TRACKING_URI"] == uri
    refused = run_in_process("promote", "--model-name", "gate", "--version", blind_version)
    assert refused.returncode == 2
    assert "does not beat" in refused.stderr and f"{verdict.candidate_ndcg:.3f}" in refused.stderr
    assert champion_version("gate") == champion
    forced = run_in_process("promote", "--model-name", "gate", "--version", blind_version, "--force")
    assert forced.returncode == 0, forced.stderr
    assert champion_version("gate") == blind_version
    # The forced promotion is on record: the gate's verdict with its figures, by whom, from which version.
    client = MlflowClient()
    promoted, replaced = (client.get_model_version("gate", v).tags for v in (blind_version, champion))
    assert promoted["promotion"] == f"{verdict.reason}; forced"
    assert f"{verdict.candidate_ndcg:.3f} vs {verdict.champion_ndcg:.3f}" in promoted["promotion"]
    assert promoted["promoted_from"] == champion and promoted["promoted_by"] == getpass.getuser()
    assert replaced["demoted_for"] == blind_version and replaced["demoted_at"] == promoted["promoted_at"]
    assert client.get_registered_model("gate").tags["last_promotion"] == (
        f"version {blind_version} at {promoted['promoted_at']} by {promoted['promoted_by']}, "
        f"replacing version {champion}: {verdict.reason}; forced"
    )


def test_versions_trained_on_the_same_campaigns_cannot_be_judged_fairly(registry):
    """The blind early version is worse, but the fitted early champion trained on all its held-out campaigns:
    there is nothing fair to judge on, so it is refused for that reason, not for its score."""
    _, versions = registry
    promote("gate", versions["early_fitted"].version)
    verdict = check_promotion("gate", versions["early_blind"].version)
    assert not verdict.allowed and "no fair comparison" in verdict.reason
    assert verdict.campaigns == 0 and verdict.candidate_ndcg is None


def test_a_version_that_credits_sales_otherwise_is_not_judged_on_its_own_labels(registry):
    """A trial's version trained with position-based credit passed the gate on its held-out sales, which are
    position-based too, against a champion trained on last click: the gate refuses such a pair for that reason."""
    _, versions = registry
    promote("gate", versions["early_blind"].version)
    verdict = check_promotion("gate", versions["full_fitted_position"].version)
    champion = versions["early_blind"].version
    assert not verdict.allowed and verdict.candidate_ndcg is None
    assert verdict.reason == (
        f"version {versions['full_fitted_position'].version} credits sales by position_based within 24 h and "
        f"champion version {champion} by last_click within 24 h: its held-out sales are not the champion's; no fair "
        "comparison"
    )
    assert check_promotion("gate", versions["full_fitted"].version).allowed  # the same ranker, crediting alike


def test_train_judges_the_champion_by_the_rules_promote_does_and_names_the_one_that_failed(registry):
    """A trial's version trained with position-based credit was logged and printed against a last-click champion
    (NDCG@10 both ways, champion_* metrics, a card comparing them) which `promote` then refused to compare."""
    _, versions = registry
    champion = versions["early_blind"].version
    position = versions["full_fitted_position"]
    assert position.champion == champion and "champion_comparison_campaigns" in position.metrics
    assert not {name for name in position.metrics if name.startswith(("champion_", "challenger_"))} - {
        "champion_comparison_campaigns"
    }
    why = (
        f"this version credits sales by position_based within 24 h and champion version {champion} by last_click "
        "within 24 h: its held-out sales are not the champion's; no fair comparison"
    )
    assert position.unfair == why
    assert f"against champion version {champion}: {why}; `promote` will refuse without --force" in summarize(position)
    assert f"Not compared: {why}." in MlflowClient().get_model_version("gate", position.version).description
    # Trained on what the champion had: not one held-out campaign it never saw, in one line saying so.
    early = versions["early_fitted"]
    assert early.unfair == (
        f"only 0 of this version's held-out campaigns are unseen by champion version {champion}; no fair comparison "
        "(need 3)"
    )
    assert "champion_ndcg_at_10" not in early.metrics


def test_unseen_campaigns_without_sales_to_rank_do_not_count_towards_a_fair_comparison(registry, tmp_path):
    """A campaign with no realized sales adds nothing to NDCG@10, yet counted towards the 3 the gate needs: with
    every unseen campaign but two without sales, a trial's gate compared the versions on those two while saying
    "on N held-out campaigns", and with none left it refused "NDCG@10 nan vs nan", as if the version ranked worse."""
    _, versions = registry
    champion = versions["early_blind"].version
    promote("gate", champion)
    full = versions["full_fitted"]
    client = MlflowClient()
    logged = Path(client.download_artifacts(full.run_id, "evaluation/holdout.parquet", str(tmp_path)))
    held = pd.read_parquet(logged)
    unseen = unseen_by("gate", champion, held)["campaign_id"].unique()
    assert len(unseen) > 3
    kept = unseen[:2]
    emptied = held.assign(
        sales=held["sales"].where(~held["campaign_id"].isin(unseen) | held["campaign_id"].isin(kept), 0.0)
    )
    rewritten = tmp_path / "rewritten" / "holdout.parquet"
    rewritten.parent.mkdir()
    emptied.to_parquet(rewritten)
    client.log_artifact(full.run_id, str(rewritten), "evaluation")
    try:
        verdict = check_promotion("gate", full.version)
        assert not verdict.allowed and verdict.candidate_ndcg is None, verdict.reason
        assert verdict.campaigns == 2
        assert verdict.reason == (
            f"only 2 of version {full.version}'s held-out campaigns are unseen by champion version {champion} "
            f"({len(unseen) - 2} more are, without sales to rank); no fair comparison (need {MIN_CAMPAIGNS})"
        )
        # Training's comparison with the champion of the day counts them alike.
        _, fair, why = champion_on_unseen("gate", champion, emptied, credit_rule(client.get_run(full.run_id)))
        assert fair["campaign_id"].nunique() == len(unseen)
        assert why == verdict.reason.replace(f"version {full.version}'s", "this version's")
    finally:
        client.log_artifact(full.run_id, str(logged), "evaluation")


def test_a_run_logged_before_the_heads_predictions_is_judged_alike(registry, tmp_path):
    """Runs logged before `evaluation/holdout.parquet` held each head's prediction (`HELD_OUT_PREDICTED`) have a
    file without those columns: the gate reads it as it did, to the very same verdict."""
    _, versions = registry
    promote("gate", versions["early_blind"].version)
    full = versions["full_fitted"]
    client = MlflowClient()
    logged = Path(client.download_artifacts(full.run_id, "evaluation/holdout.parquet", str(tmp_path)))
    held = pd.read_parquet(logged)
    assert set(HELD_OUT_PREDICTED.values()) <= set(held.columns)
    now = check_promotion("gate", full.version)
    older, stored = tmp_path / "older" / "holdout.parquet", tmp_path / "stored"
    older.parent.mkdir()
    stored.mkdir()
    held.drop(columns=list(HELD_OUT_PREDICTED.values())).to_parquet(older)
    client.log_artifact(full.run_id, str(older), "evaluation")  # the run's file, as an older `train` wrote it
    try:
        stored = client.download_artifacts(full.run_id, "evaluation/holdout.parquet", str(stored))
        assert not set(HELD_OUT_PREDICTED.values()) & set(pd.read_parquet(stored).columns)
        assert now.allowed and check_promotion("gate", full.version) == now
    finally:
        client.log_artifact(full.run_id, str(logged), "evaluation")


def damaged_champion(model_name: str, versions: dict, tmp_path: Path) -> None:
    """`model_name` registered as `gate`'s early and full fitted versions (their runs, their digests), the early
    one champion with one of its files changed in the store: every load of it is refused."""
    client = MlflowClient()
    client.create_registered_model(model_name)
    for name in ("early_fitted", "full_fitted"):
        source = client.get_model_version("gate", versions[name].version)
        folder = Path(mlflow.artifacts.download_artifacts(source.source, dst_path=str(tmp_path / name)))
        client.create_model_version(model_name, source=str(folder), run_id=source.run_id, tags=source.tags)
    client.set_registered_model_alias(model_name, "champion", "1")
    damaged = Path(client.get_model_version_download_uri(model_name, "1")) / "requirements.txt"
    damaged.write_text(damaged.read_text() + "# changed in the store\n")


def test_a_champion_whose_files_changed_is_rolled_back_with_force(registry, tmp_path):
    """The champion's files damaged in the store (every `match` refused it), the documented rollback
    `promote --force` to a good version failed too: the gate loads the champion to score it, and its refusal
    (exit 2) came before --force was read. No fair comparison without the champion: a refusal --force overrides."""
    _, versions = registry
    client = MlflowClient()
    damaged_champion("rollback", versions, tmp_path)
    refused = run_in_process("promote", "--model-name", "rollback", "--version", "2")
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "creator-match: not promoted: champion version 1 cannot be loaded (model 'models:/rollback/1': its files' "
    ), lines
    assert lines[0].endswith("not loaded); no fair comparison (use --force to promote anyway)")
    assert champion_version("rollback") == "1"
    forced = run_in_process("promote", "--model-name", "rollback", "--version", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert champion_version("rollback") == "2"
    assert client.get_model_version("rollback", "2").tags["promotion"].endswith("no fair comparison; forced")


def test_train_registers_its_version_beside_a_champion_that_cannot_be_loaded(registry, world_dir, embedder, tmp_path):
    """`train` against a champion whose files changed in the store stopped after its whole work (exit 2) and
    registered nothing: no version to roll forward to. It is promote's refusal: no fair comparison, said by name."""
    _, versions = registry
    damaged_champion("retrain", versions, tmp_path)
    result = train(world_dir, model_name="retrain", embedder=embedder, ranker=fitted())
    assert result.version == "3" and not result.is_champion and champion_version("retrain") == "1"
    assert result.unfair.startswith("champion version 1 cannot be loaded (model 'models:/retrain/1': its files' ")
    assert result.unfair.endswith("not loaded); no fair comparison")
    assert "champion_ndcg_at_10" not in result.metrics and "challenger_ndcg_at_10" not in result.metrics
    assert f"against champion version 1: {result.unfair}; `promote` will refuse without --force" in summarize(result)
