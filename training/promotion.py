"""The promotion gate: a new version replaces the champion only if it ranks better on data neither has seen."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pandas as pd

from features.pairwise import FEATURES
from training.dataset import DEFAULT_WINDOW, window_hours
from training.evaluate import evaluate_ranking, ndcg_by_campaign
from training.ranker import CreatorRanker
from training.registry import champion_version, load_ranker

__all__ = [
    "HELD_OUT_SCORE",
    "MIN_CAMPAIGNS",
    "PromotionCheck",
    "challenger_metrics",
    "champion_metrics",
    "champion_on_unseen",
    "check_promotion",
    "compare_with_champion",
    "credit_rule",
    "unseen_by",
]

MIN_CAMPAIGNS = 3
# The column of evaluation/holdout.parquet holding the expected sales of the version's held-out fit (trained
# without those campaigns): the registered model was refitted on them and cannot be judged on them.
HELD_OUT_SCORE = "held_out_score"


@dataclass
class PromotionCheck:
    """The gate's verdict, with the numbers behind it."""

    allowed: bool
    reason: str
    candidate_ndcg: float | None = None
    champion_ndcg: float | None = None
    campaigns: int = 0


def _run_of(model_name: str, version: str):
    from mlflow import MlflowClient

    client = MlflowClient()
    return client.get_run(client.get_model_version(model_name, version).run_id)


def credit_rule(run) -> str:
    """How a run's sales labels credit orders to creators: its attribution and window (a run that logged neither
    was trained on the default, last click within 24 hours)."""
    tags = run.data.tags
    hours = tags.get("attribution_window_hours", window_hours(DEFAULT_WINDOW))
    return f"{tags.get('attribution', 'last_click')} within {hours} h"


def unseen_by(model_name: str, version: str, pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs of campaigns that started after the version's training data ended (it cannot have seen them)."""
    window = _run_of(model_name, version).data.tags.get("training_window", "")
    if " to " not in window:
        return pairs.iloc[0:0]
    trained_until = pd.Timestamp(window.split(" to ")[1])
    starts = pd.to_datetime(pairs["start_date"]) if "start_date" in pairs else None
    if starts is None:
        return pairs.iloc[0:0]
    return pairs[starts > trained_until]


def champion_on_unseen(
    model_name: str, champion: str, pairs: pd.DataFrame
) -> tuple[CreatorRanker | None, pd.DataFrame]:
    """The champion's ranker and the held-out pairs of campaigns it never trained on.

    The ranker is None when no fair comparison is possible: the champion uses other features, or fewer
    than MIN_CAMPAIGNS held-out campaigns are unseen by it.
    """
    fair = unseen_by(model_name, champion, pairs)
    loaded = load_ranker(f"models:/{model_name}/{champion}")
    if list(loaded.model.features) != FEATURES or fair["campaign_id"].nunique() < MIN_CAMPAIGNS:
        return None, fair
    return loaded.model.ranker, fair


def champion_metrics(ranker: CreatorRanker | None, fair: pd.DataFrame) -> dict[str, float]:
    """The champion's metrics on `fair` (see `champion_on_unseen`), prefixed `champion_`, and their count.

    Only the count when there is no ranker to judge.
    """
    count = {"champion_comparison_campaigns": float(fair["campaign_id"].nunique())}
    if ranker is None:
        return count
    found = evaluate_ranking(ranker, fair, fair["price"].to_numpy())
    return {f"champion_{k}": v for k, v in found.items() if not k.startswith("baseline_")} | count


def challenger_metrics(held_out: CreatorRanker, fair: pd.DataFrame) -> dict[str, float]:
    """The new version's held-out fit on the same pairs as `champion_metrics`, prefixed `challenger_`."""
    found = evaluate_ranking(held_out, fair, fair["price"].to_numpy())
    return {f"challenger_{k}": v for k, v in found.items() if not k.startswith("baseline_")}


def compare_with_champion(model_name: str, champion: str, pairs: pd.DataFrame) -> dict[str, float]:
    """The champion's metrics on the held-out pairs it has not seen, prefixed `champion_`, and their count.

    Only the count when the champion uses other features or has seen too many held-out campaigns.
    """
    return champion_metrics(*champion_on_unseen(model_name, champion, pairs))


def check_promotion(model_name: str, version: str) -> PromotionCheck:
    """Compares a version with the champion on the version's held-out campaigns the champion never saw.

    The version is judged by its held-out fit's logged scores (`HELD_OUT_SCORE`), the champion by its registered
    model: neither trained on those campaigns. The registered version itself was refitted on them.
    """
    import mlflow

    champion = champion_version(model_name)
    if champion is None:
        return PromotionCheck(True, "there is no champion yet")
    if champion == str(version):
        return PromotionCheck(True, f"version {version} is already champion")
    run = _run_of(model_name, str(version))
    # The held-out sales are the version's own labels: a champion trained to another credit rule would be judged
    # by the challenger's, and a version could pass by crediting sales otherwise.
    ours_rule, theirs_rule = credit_rule(run), credit_rule(_run_of(model_name, champion))
    if ours_rule != theirs_rule:
        return PromotionCheck(
            False,
            f"version {version} credits sales by {ours_rule} and champion version {champion} by {theirs_rule}: "
            "its held-out sales are not the champion's; no fair comparison",
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="evaluation/holdout.parquet", dst_path=tmp
            )
        except Exception:  # an older run without a logged held-out set
            return PromotionCheck(False, f"version {version} has no logged held-out set to compare on")
        pairs = pd.read_parquet(path)
    fair = unseen_by(model_name, champion, pairs)
    n = int(fair["campaign_id"].nunique())
    if n < MIN_CAMPAIGNS:
        return PromotionCheck(
            False,
            f"only {n} of version {version}'s held-out campaigns are unseen by champion "
            f"version {champion}; no fair comparison (need {MIN_CAMPAIGNS})",
            campaigns=n,
        )
    if HELD_OUT_SCORE not in fair:
        return PromotionCheck(
            False,
            f"version {version}'s run logged no scores of its held-out fit (trained before they were logged), and "
            "the registered model was refitted on those campaigns; retrain it to compare",
            campaigns=n,
        )
    champ = load_ranker(f"models:/{model_name}/{champion}").model
    if list(champ.features) != FEATURES:
        return PromotionCheck(False, f"champion version {champion} uses another feature set", campaigns=n)
    ours = ndcg_by_campaign(fair, fair[HELD_OUT_SCORE].to_numpy(float), 10)
    theirs = evaluate_ranking(champ.ranker, fair, fair["price"].to_numpy())["ndcg_at_10"]
    verdict = "beats" if ours >= theirs else "does not beat"
    return PromotionCheck(
        ours >= theirs,
        f"version {version} {verdict} champion version {champion}: NDCG@10 "
        f"{ours:.3f} vs {theirs:.3f} on {n} held-out campaigns neither trained on",
        ours,
        theirs,
        n,
    )
