"""Training: time-ordered training sets, the ranker, its evaluation, and its life in MLflow."""

from __future__ import annotations

from training.ranker import CreatorRanker
from training.registry import DEFAULT_MODEL_NAME, LoadedRanker, load_ranker, promote
from training.train import TrainResult, train

__all__ = [
    "DEFAULT_MODEL_NAME",
    "CreatorRanker",
    "LoadedRanker",
    "TrainResult",
    "load_ranker",
    "promote",
    "train",
]
