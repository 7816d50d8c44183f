"""`creator-match train`: fit the ranker on settled history, evaluate it on later campaigns, register it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.embeddings import Embedder
from features.pairwise import FEATURES
from features.tables import Reject
from training.dataset import build_training_data, read_training_tables
from training.evaluate import evaluate_ranking, time_split
from training.pyfunc import RankerModel
from training.ranker import OUTCOMES, CreatorRanker
from training.registry import (
    CHAMPION,
    DEFAULT_MODEL_NAME,
    champion_version,
    configure_tracking,
    pip_requirements,
)

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
) -> TrainResult:
    """Trains on DIR/creators, DIR/campaigns, DIR/performance; logs the run and registers a version.

    The first version of a model name becomes `champion`; later ones wait for `promote`.
    """
    import mlflow
    from mlflow.models import infer_signature

    configure_tracking()
    embedder = embedder or Embedder()
    tables = read_training_tables(data_dir)
    data = build_training_data(tables, embedder, as_of)
    ranker = ranker or CreatorRanker()
    train_pairs, test_pairs = time_split(data.pairs)
    campaign_price = tables.campaigns.set_index("campaign_id")["price"]
    metrics: dict[str, float] = {
        "n_pairs": float(len(data.pairs)),
        "n_train_pairs": float(len(train_pairs)),
        "n_test_pairs": float(len(test_pairs)),
        "n_campaigns": float(data.pairs["campaign_id"].nunique()),
        "n_rejected_rows": float(len({(r.table, r.row) for r in tables.rejects})),
    }
    if len(train_pairs) and len(test_pairs):
        held_out = CreatorRanker(**ranker.get_params()).fit(train_pairs[FEATURES], train_pairs[OUTCOMES])
        metrics |= evaluate_ranking(held_out, test_pairs, campaign_price.reindex(test_pairs["campaign_id"]).to_numpy())
    final = CreatorRanker(**ranker.get_params()).fit(data.pairs[FEATURES], data.pairs[OUTCOMES])
    python_model = RankerModel(final, data.priors, data.history, data.affinity, embedder.model, embedder.dimension)
    example = data.pairs[FEATURES].head(5).astype(float)
    signature = infer_signature(example, final.predict(example))

    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"train {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}") as run:
        mlflow.log_params({f"ranker.{k}": v for k, v in ranker.get_params().items()})
        mlflow.log_params(
            {
                "embedding_model": embedder.model,
                "embedding_dim": embedder.dimension,
                "data_dir": str(Path(data_dir).resolve()),
                "n_features": len(FEATURES),
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(
            {
                "embedding_model": embedder.model,
                "embedding_dim": str(embedder.dimension),
                "data_fingerprint": data.fingerprint,
                "training_window": " to ".join(data.window),
                "features": ",".join(FEATURES),
            }
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            signature=signature,
            input_example=example,
            registered_model_name=model_name,
            pip_requirements=pip_requirements(),
        )
    version = str(info.registered_model_version)
    is_champion = False
    if champion_version(model_name) is None:
        from mlflow import MlflowClient

        MlflowClient().set_registered_model_alias(model_name, CHAMPION, version)
        is_champion = True
    return TrainResult(
        run.info.run_id, model_name, version, is_champion, metrics, len(data.pairs), list(tables.rejects)
    )


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
