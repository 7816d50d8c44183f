"""The registered model: an MLflow pyfunc that scores pair features, carrying what scoring needs."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from features.affinity import PastPerformance
from features.pairwise import FEATURES
from training.ranker import CreatorRanker
from training.registry import installed_versions

__all__ = ["RankerModel"]


class RankerModel(mlflow.pyfunc.PythonModel):
    """Predicts `expected_impressions`, `p_click` and `p_order` from FEATURES columns.

    Besides the fitted ranker it carries what settled history said at training time (category priors,
    creators' records overall and per category, interest-category affinities) and names the embedding
    model, backend and dimension that the similarity features came from, and the versions of the libraries it
    was trained under (`training.registry.load_ranker` compares them with the installed ones).
    """

    def __init__(
        self,
        ranker: CreatorRanker,
        past: PastPerformance,
        embedding_model: str,
        embedding_dim: int,
        embedding_backend: str = "torch",
    ) -> None:
        self.ranker = ranker
        self.past = past
        self.embedding_model = embedding_model
        self.embedding_dim = embedding_dim
        self.embedding_backend = embedding_backend
        self.features = list(FEATURES)
        self.library_versions = installed_versions()

    def __setstate__(self, state: dict) -> None:
        # Rankers pickled before there was a choice of backend were trained on torch's vectors.
        self.__dict__.update({"embedding_backend": "torch", **state})

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        missing = [name for name in self.features if name not in model_input.columns]
        if missing:
            raise ValueError(f"model input lacks feature columns {missing}")
        return self.ranker.predict(model_input[self.features])
