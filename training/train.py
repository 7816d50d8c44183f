"""`creator-match train`: fit the ranker on settled history, evaluate it on later campaigns, register it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.embeddings import Embedder
from features.pairwise import FEATURES
from features.tables import Reject
from training.dataset import DEFAULT_WINDOW, build_training_data, read_training_tables
from training.evaluate import BASELINES, evaluate_ranking, expected_sales, time_split
from training.promotion import compare_with_champion
from training.pyfunc import RankerModel
from training.ranker import OUTCOMES, CreatorRanker
from training.registry import (
    CHAMPION,
    DEFAULT_MODEL_NAME,
    champion_version,
    configure_tracking,
    pip_requirements,
)
from training.review import captured_by_k, model_card, plot_calibration, plot_captured, plot_importance

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    model_name: str
    version: str
    is_champion: bool
    metrics: dict[str, float]
    n_pairs: int
    rejects: list[Reject] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def train(
    data_dir: str | Path,
    model_name: str = DEFAULT_MODEL_NAME,
    embedder: Embedder | None = None,
    as_of: dt.date | None = None,
    ranker: CreatorRanker | None = None,
    attribution: str = "last_click",
    window: dt.timedelta = DEFAULT_WINDOW,
) -> TrainResult:
    """Trains on DIR/creators, DIR/campaigns, DIR/performance; logs the run and registers a version.

    The model is evaluated on the latest campaigns after being fitted on the earlier ones, next to the
    baselines and the current champion on the same held-out pairs; the registered model is then refitted
    on everything. The first version of a model name becomes `champion`; later ones wait for `promote`.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    configure_tracking()
    embedder = embedder or Embedder()
    tables = read_training_tables(data_dir)
    data = build_training_data(tables, embedder, as_of, attribution, window)
    ranker = ranker or CreatorRanker()
    train_pairs, test_pairs = time_split(data.pairs)
    price = tables.campaigns.set_index("campaign_id")["price"]
    test_pairs = test_pairs.assign(price=price.reindex(test_pairs["campaign_id"]).to_numpy())
    metrics: dict[str, float] = {
        "n_pairs": float(len(data.pairs)),
        "n_train_pairs": float(len(train_pairs)),
        "n_test_pairs": float(len(test_pairs)),
        "n_campaigns": float(data.pairs["campaign_id"].nunique()),
        "n_rejected_rows": float(len({(r.table, r.row) for r in tables.rejects})),
    }
    champion = champion_version(model_name)
    held_out = None
    if len(train_pairs) and len(test_pairs):
        held_out = CreatorRanker(**ranker.get_params()).fit(train_pairs[FEATURES], train_pairs[OUTCOMES])
        metrics |= evaluate_ranking(held_out, test_pairs, test_pairs["price"].to_numpy())
        if champion is not None:
            metrics |= compare_with_champion(model_name, champion, test_pairs)
    final = CreatorRanker(**ranker.get_params()).fit(data.pairs[FEATURES], data.pairs[OUTCOMES])
    python_model = RankerModel(final, data.past, embedder.model, embedder.dimension)
    example = data.pairs[FEATURES].head(5).astype(float)
    signature = infer_signature(example, final.predict(example))
    tags = {
        "embedding_model": embedder.model,
        "embedding_dim": str(embedder.dimension),
        "data_fingerprint": data.fingerprint,
        "training_window": " to ".join(data.window),
        "attribution": attribution,
        "attribution_window_hours": f"{window.total_seconds() / 3600:g}",
        "features": ",".join(FEATURES),
    }

    mlflow.set_experiment(model_name)
    with (
        mlflow.start_run(run_name=f"train {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params({f"ranker.{k}": v for k, v in ranker.get_params().items()})
        mlflow.log_params(
            {
                "embedding_model": embedder.model,
                "embedding_dim": embedder.dimension,
                "data_dir": str(Path(data_dir).resolve()),
                "n_features": len(FEATURES),
                "attribution": attribution,
                "attribution_window_hours": window.total_seconds() / 3600,
                "event_level_labels": tables.touches is not None and tables.purchases is not None,
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(tags)
        importance = None
        if held_out is not None:
            importance = _log_review(held_out, test_pairs, Path(tmp))
        # MLflow prints its registration chatter straight to stderr; the summary says the same in one line.
        with contextlib.redirect_stderr(io.StringIO()):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                signature=signature,
                input_example=example,
                registered_model_name=model_name,
                pip_requirements=pip_requirements(),
            )
        version = str(info.registered_model_version)
        card = model_card(model_name, version, tags, metrics, importance, champion)
        mlflow.log_text(card, "review/model_card.md")
    client = MlflowClient()
    client.update_model_version(model_name, version, description=card)
    is_champion = champion is None
    if is_champion:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    return TrainResult(
        run.info.run_id, model_name, version, is_champion, metrics, len(data.pairs), list(tables.rejects)
    )


def _log_review(held_out: CreatorRanker, test_pairs: pd.DataFrame, tmp: Path) -> pd.Series:
    """Logs the held-out pairs and the review plots to the active run; returns the feature importance."""
    import mlflow

    holdout = tmp / "holdout.parquet"
    test_pairs[["campaign_id", "creator_id", "start_date", "price", *OUTCOMES, "sales", *FEATURES]].to_parquet(holdout)
    mlflow.log_artifact(str(holdout), "evaluation")
    predicted = held_out.predict(test_pairs)
    price = test_pairs["price"].to_numpy()
    scores = {"model": expected_sales(predicted, price)} | {
        name: baseline(test_pairs) for name, baseline in BASELINES.items()
    }
    captured = captured_by_k(test_pairs, scores)
    for k in (1, 5, 10):
        if k in captured.index:
            mlflow.log_metrics({f"captured_at_{k}_{name}": float(captured.loc[k, name]) for name in captured.columns})
    mlflow.log_artifact(str(plot_calibration(predicted, test_pairs, tmp / "calibration.png")), "review")
    mlflow.log_artifact(str(plot_captured(captured, tmp / "captured_by_k.png")), "review")
    importance = plot_importance(held_out, test_pairs, price, tmp / "importance.png")
    mlflow.log_artifact(str(tmp / "importance.png"), "review")
    mlflow.log_dict(importance.sort_values(ascending=False).to_dict(), "review/importance.json")
    return importance


def summarize(result: TrainResult) -> str:
    """A few readable lines about a training run."""
    m = result.metrics
    lines = [
        f"registered {result.model_name} version {result.version}"
        + (" (champion)" if result.is_champion else " (not champion; `creator-match promote` to use it)"),
        f"trained on {result.n_pairs} settled (campaign, creator) pairs",
    ]
    if "ndcg_at_10" in m:
        lines.append(
            f"held-out later campaigns: click AUC {m['click_auc']:.3f}, order AUC {m['order_auc']:.3f}, "
            f"NDCG@10 of sales {m['ndcg_at_10']:.3f} (followers {m['baseline_followers_ndcg_at_10']:.3f}, "
            f"tags then followers {m['baseline_tags_then_followers_ndcg_at_10']:.3f})"
        )
    return "\n".join(lines)


__all__ += ["summarize"]
