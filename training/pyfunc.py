"""The registered model: an MLflow pyfunc that scores pair features, carrying what scoring needs."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from features.affinity import PastPerformance
from features.pairwise import FEATURES
from features.records import BY_MARKETPLACE, CreatorRecords, HistoryModel, empty_records
from training.ranker import CreatorRanker
from training.registry import installed_versions

__all__ = ["RankerModel"]


class RankerModel(mlflow.pyfunc.PythonModel):
    """Predicts `expected_impressions`, `p_click` and `p_order` from FEATURES columns.

    Besides the fitted ranker it carries what settled history taught at training time (`past`: category
    priors, interest-category affinities, the product-type and context models) but no creator's record, so
    its size does not grow with the catalogue: the records are data (`features.records`), logged beside it
    by `train`. It names the embedding model, backend and dimension that the similarity features came from,
    and the versions of the libraries it was trained under (`training.registry.load_ranker` compares them
    with the installed ones).

    Rankers registered before records were data pickled them inside (`PastPerformance`); they load with
    those as `embedded_records` and a `past` without a context model.
    """

    def __init__(
        self,
        ranker: CreatorRanker,
        past: HistoryModel,
        embedding_model: str,
        embedding_dim: int,
        embedding_backend: str = "torch",
    ) -> None:
        self.ranker = ranker
        self.past = past
        self.embedded_records: CreatorRecords | None = None
        self.embedding_model = embedding_model
        self.embedding_dim = embedding_dim
        self.embedding_backend = embedding_backend
        self.features = list(FEATURES)
        self.library_versions = installed_versions()

    def __setstate__(self, state: dict) -> None:
        # Rankers pickled before there was a choice of backend were trained on torch's vectors.
        self.__dict__.update({"embedding_backend": "torch", "embedded_records": None, **state})
        old = self.__dict__["past"]
        if isinstance(old, PastPerformance):  # registered before records were data: its records are inside
            # Such rankers predate marketplace records: they have none.
            self.embedded_records = CreatorRecords(old.history, old.category_history, empty_records(BY_MARKETPLACE))
            self.past = HistoryModel(old.priors, old.affinity, getattr(old, "product_types", None))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        missing = [name for name in self.features if name not in model_input.columns]
        if missing:
            raise ValueError(f"model input lacks feature columns {missing}")
        return self.ranker.predict(model_input[self.features])
