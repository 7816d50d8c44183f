"""The promotion gate: a new version replaces the champion only if it ranks better on data neither has seen."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.pairwise import FEATURES
from training.dataset import DEFAULT_WINDOW, window_hours
from training.evaluate import evaluate_predictions, ndcg_by_campaign, paired_difference, ranked_campaigns
from training.ranker import PREDICTIONS, CreatorRanker, expected_sales
from training.registry import ModelNotFound, champion_version, first_line, load_ranker

if TYPE_CHECKING:  # mlflow is imported where it is used, not with this module
    from training.pyfunc import RankerModel

__all__ = [
    "DIFFERENCE",
    "HELD_OUT_PREDICTED",
    "HELD_OUT_SCORE",
    "MIN_CAMPAIGNS",
    "PromotionCheck",
    "challenger_metrics",
    "champion_metrics",
    "champion_on_unseen",
    "check_promotion",
    "compare_with_champion",
    "credit_rule",
    "difference_metrics",
    "logged_difference",
    "rule_of",
    "said_difference",
    "unfair",
    "unseen_by",
]

MIN_CAMPAIGNS = 3
# The window of a run that logged none: it was trained on the default, last click within 24 hours.
DEFAULT_HOURS = window_hours(DEFAULT_WINDOW)
# The column of evaluation/holdout.parquet holding the expected sales of the version's held-out fit (trained
# without those campaigns): the registered model was refitted on them and cannot be judged on them.
HELD_OUT_SCORE = "held_out_score"
# The columns of the same file holding what each head of the held-out fit predicted, by the column of
# `CreatorRanker.predict` each holds: which head is off where, which the score, their product, cannot say. For the
# reviewer: the gate reads none of them, so a run's file from before they were logged is judged alike.
HELD_OUT_PREDICTED = {name: f"predicted_{name}" for name in PREDICTIONS}


@dataclass
class PromotionCheck:
    """The gate's verdict, with the numbers behind it."""

    allowed: bool
    reason: str
    candidate_ndcg: float | None = None
    champion_ndcg: float | None = None
    campaigns: int = 0
    # The paired per-campaign comparison: mean of the version's minus the champion's NDCG@10, 90% interval.
    difference: tuple[float, float, float] | None = None


def _version_of(model_name: str, version: str):
    from mlflow import MlflowClient

    return MlflowClient().get_model_version(model_name, version)


def _run_of(model_name: str, version: str):
    from mlflow import MlflowClient

    return MlflowClient().get_run(_version_of(model_name, version).run_id)


def credit_rule(run) -> str:
    """How a run's sales labels credit orders to creators: its attribution and window (a run that logged neither
    was trained on the default, last click within 24 hours)."""
    tags = run.data.tags
    return rule_of(tags.get("attribution", "last_click"), tags.get("attribution_window_hours", DEFAULT_HOURS))


def rule_of(attribution: str, hours: str) -> str:
    """A credit rule as `credit_rule` words it, from an attribution and a window in hours (`window_hours`)."""
    return f"{attribution} within {hours} h"


def unfair(
    challenger: str,
    champion: str,
    rules: tuple[str, str],
    campaigns: int,
    champion_features: list[str],
    unranked: int = 0,
) -> str | None:
    """Why `challenger` ("version 3", "this version") cannot be judged fairly against champion version `champion`,
    or None when it can: the one set of rules of `promote` and of `train`'s comparison at training time.

    Args:
        rules: the challenger's credit rule and the champion's (`credit_rule`).
        campaigns: how many of the challenger's held-out campaigns started after the champion's training data ended
            and have sales to rank (`training.evaluate.ranked_campaigns`): the campaigns NDCG@10 averages over.
        champion_features: the features the champion reads.
        unranked: how many more started after it ended, without sales to rank (or with a single pair).
    """
    ours, theirs = rules
    # The held-out sales are the challenger's own labels: a champion trained to another credit rule would be judged
    # by the challenger's, and a version could pass by crediting sales otherwise.
    if ours != theirs:
        return (
            f"{challenger} credits sales by {ours} and champion version {champion} by {theirs}: its held-out sales "
            "are not the champion's; no fair comparison"
        )
    if campaigns < MIN_CAMPAIGNS:
        more = f" ({unranked} more {'is' if unranked == 1 else 'are'}, without sales to rank)" if unranked else ""
        return (
            f"only {campaigns} of {challenger}'s held-out campaigns {'is' if campaigns == 1 else 'are'} unseen by "
            f"champion version {champion}{more}; no fair comparison (need {MIN_CAMPAIGNS})"
        )
    if list(champion_features) != FEATURES:
        return f"champion version {champion} uses another feature set; no fair comparison"
    return None


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


def _judged_campaigns(fair: pd.DataFrame) -> tuple[int, int]:
    """How many campaigns of `fair` NDCG@10 can judge the two versions on, and how many more it cannot (no sales,
    or a single pair): those add nothing to either figure, so they do not count towards a fair comparison."""
    ranked = ranked_campaigns(fair)
    return ranked, int(fair["campaign_id"].nunique()) - ranked


def champion_on_unseen(
    model_name: str, champion: str, pairs: pd.DataFrame, rule: str
) -> tuple[CreatorRanker | None, pd.DataFrame, str | None]:
    """The champion's ranker, the held-out pairs of campaigns it never trained on, and why they cannot be compared
    (`unfair`; None when they can).

    The ranker is None when no fair comparison is possible. `rule` is this version's credit rule (`rule_of`).
    """
    fair = unseen_by(model_name, champion, pairs)
    loaded, broken = _champion_model(model_name, champion)
    if loaded is None:
        return None, fair, broken
    rules = (rule, credit_rule(_run_of(model_name, champion)))
    ranked, unranked = _judged_campaigns(fair)
    why = unfair("this version", champion, rules, ranked, loaded.features, unranked)
    return (None if why else loaded.ranker), fair, why


def _champion_model(model_name: str, champion: str) -> tuple[RankerModel | None, str | None]:
    """The champion's registered model, or None and why it cannot be loaded (its files changed in the store, say).

    No batch job can load it either: the very case a rollback (`promote --force`) or a new version is for, so
    no fair comparison, a refusal --force overrides, rather than an error that stops `promote` or `train`.
    """
    try:
        return load_ranker(f"models:/{model_name}/{champion}").model, None
    except ModelNotFound as exc:
        return None, f"champion version {champion} cannot be loaded ({first_line(exc)}); no fair comparison"


def champion_metrics(predicted: pd.DataFrame | None, fair: pd.DataFrame) -> dict[str, float]:
    """The champion's metrics on `fair` (see `champion_on_unseen`) from what it `predicted` for them, prefixed
    `champion_`, and how many campaigns of `fair` they judge on: those with sales to rank, as `promote` counts
    them (`_judged_campaigns`).

    Only the count when there is no ranker to judge (`predicted` None).
    """
    count = {"champion_comparison_campaigns": float(ranked_campaigns(fair))}
    if predicted is None:
        return count
    found = evaluate_predictions(predicted, fair, fair["price"].to_numpy())
    return {f"champion_{k}": v for k, v in found.items() if not k.startswith("baseline_")} | count


def challenger_metrics(predicted: pd.DataFrame, fair: pd.DataFrame) -> dict[str, float]:
    """The new version's held-out fit on the same pairs as `champion_metrics`, from what it `predicted` for them,
    prefixed `challenger_`."""
    found = evaluate_predictions(predicted, fair, fair["price"].to_numpy())
    return {f"challenger_{k}": v for k, v in found.items() if not k.startswith("baseline_")}


DIFFERENCE = "challenger_minus_champion_ndcg_at_10"


def difference_metrics(ours: np.ndarray, theirs: np.ndarray, fair: pd.DataFrame) -> dict[str, float]:
    """The paired comparison on `fair` of this version's expected sales (`ours`) with the champion's, as metrics:
    `challenger_minus_champion_ndcg_at_10` and its 90% interval's `..._low` and `..._high`."""
    mean, low, high = paired_difference(fair, ours, theirs, 10)
    return {DIFFERENCE: mean, f"{DIFFERENCE}_low": low, f"{DIFFERENCE}_high": high}


def logged_difference(metrics: dict[str, float]) -> tuple[float, float, float] | None:
    """The paired comparison `difference_metrics` put in `metrics`, or None when it is not there (or undefined)."""
    found = tuple(metrics.get(f"{DIFFERENCE}{end}", np.nan) for end in ("", "_low", "_high"))
    return found if all(np.isfinite(found)) else None


def said_difference(mean: float, low: float, high: float) -> str:
    """The paired comparison in words, as `promote` and the model card give it."""
    return (
        f"per campaign, this version minus the champion {mean:+.3f} NDCG@10 "
        f"(90% bootstrap interval {low:+.3f} to {high:+.3f})"
    )


def compare_with_champion(model_name: str, champion: str, pairs: pd.DataFrame, rule: str) -> dict[str, float]:
    """The champion's metrics on the held-out pairs it has not seen, prefixed `champion_`, and their count.

    Only the count when there is no fair comparison (`unfair`).
    """
    ranker, fair, _ = champion_on_unseen(model_name, champion, pairs, rule)
    return champion_metrics(None if ranker is None else ranker.predict(fair), fair)


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
    # A version registered by hand (`create_model_version` without a run) has no held-out set and no credit rule:
    # nothing to judge it, or a champion, by. A refusal like the others, which --force overrides, as it is for
    # a version whose run logged no held-out set.
    for which, number in ((f"version {version}", str(version)), (f"champion version {champion}", champion)):
        if _version_of(model_name, number).run_id is None:
            return PromotionCheck(False, f"{which} has no training run (not registered by `train`); no fair comparison")
    run = _run_of(model_name, str(version))
    rules = (credit_rule(run), credit_rule(_run_of(model_name, champion)))
    # The rules in `unfair`'s order, each as soon as what it reads is at hand (the champion's features last).
    if rules[0] != rules[1]:  # refused before any download
        return PromotionCheck(False, unfair(f"version {version}", champion, rules, 0, FEATURES))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="evaluation/holdout.parquet", dst_path=tmp
            )
        except Exception:  # an older run without a logged held-out set
            return PromotionCheck(False, f"version {version} has no logged held-out set to compare on")
        pairs = pd.read_parquet(path)
    fair = unseen_by(model_name, champion, pairs)
    n, unranked = _judged_campaigns(fair)
    if n < MIN_CAMPAIGNS:  # refused before the champion is loaded
        return PromotionCheck(False, unfair(f"version {version}", champion, rules, n, FEATURES, unranked), campaigns=n)
    if HELD_OUT_SCORE not in fair:
        return PromotionCheck(
            False,
            f"version {version}'s run logged no scores of its held-out fit (trained before they were logged), and "
            "the registered model was refitted on those campaigns; retrain it to compare",
            campaigns=n,
        )
    champ, broken = _champion_model(model_name, champion)
    if champ is None:
        return PromotionCheck(False, broken, campaigns=n)
    why = unfair(f"version {version}", champion, rules, n, champ.features, unranked)
    if why is not None:
        return PromotionCheck(False, why, campaigns=n)
    scores = fair[HELD_OUT_SCORE].to_numpy(float)
    champion_scores = expected_sales(champ.ranker.predict(fair), fair["price"].to_numpy())
    ours, theirs = ndcg_by_campaign(fair, scores, 10), ndcg_by_campaign(fair, champion_scores, 10)
    # Evidence beside the rule, not a new rule: the gate stays the comparison of the two means.
    difference = paired_difference(fair, scores, champion_scores)
    verdict = "beats" if ours >= theirs else "does not beat"
    return PromotionCheck(
        ours >= theirs,
        f"version {version} {verdict} champion version {champion}: NDCG@10 "
        f"{ours:.3f} vs {theirs:.3f} on {n} held-out campaigns neither trained on; {said_difference(*difference)}",
        ours,
        theirs,
        n,
        difference,
    )
