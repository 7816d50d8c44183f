"""The registered model: an MLflow pyfunc that scores pair features, carrying what scoring needs."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.types.schema import ColSpec, Schema

from features.affinity import PastPerformance
from features.pairwise import FEATURES, OPTIONAL_FEATURES
from features.records import BY_MARKETPLACE, CreatorRecords, HistoryModel, empty_records
from training.forecast_interval import OrdersInterval
from training.ranker import CreatorRanker
from training.registry import installed_versions

__all__ = ["RankerModel"]


class RankerModel(mlflow.pyfunc.PythonModel):
    """Predicts `expected_impressions`, `p_click` and `p_order` from FEATURES columns.

    The columns of `optional_features` (`features.pairwise.OPTIONAL_FEATURES`: a creator's optional profile
    fields) may be left out, as unknown for every row; every other feature column is required. Any value may be
    missing (NaN or null): the heads send it its own way. `input_schema` declares exactly this to MLflow.

    Besides the fitted ranker it carries what settled history taught at training time (`past`: category
    priors, interest-category affinities, the product-type and context models) but no creator's record, so
    its size does not grow with the catalogue: the records are data (`features.records`), logged beside it
    by `train`. `orders_interval` (`training.forecast_interval.OrdersInterval`, None when training held out no
    campaign) gives a slate's expected orders their range. It names the embedding model, backend and dimension
    that the similarity features came from, and the versions of the libraries it was trained under
    (`training.registry.load_ranker` compares them with the installed ones).

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
        orders_interval: OrdersInterval | None = None,
    ) -> None:
        self.ranker = ranker
        self.past = past
        self.embedded_records: CreatorRecords | None = None
        self.embedding_model = embedding_model
        self.embedding_dim = embedding_dim
        self.embedding_backend = embedding_backend
        self.orders_interval = orders_interval
        self.features = list(FEATURES)
        self.optional_features = [name for name in FEATURES if name in OPTIONAL_FEATURES]
        self.library_versions = installed_versions()

    def input_schema(self) -> Schema:
        """The model signature's inputs: every feature a double, required unless it is in `optional_features`.

        MLflow's schema enforcement refuses an input lacking a required column, naming it, passes one lacking an
        optional column on without it, and lets any column hold nulls; `predict` takes the absent ones as unknown.
        """
        return Schema([ColSpec("double", name, required=name not in self.optional_features) for name in self.features])

    def __setstate__(self, state: dict) -> None:
        # Rankers pickled before there was a choice of backend were trained on torch's vectors.
        # Those pickled before optional features refused any absent column; today's rule is theirs when loaded here.
        optional = [name for name in state.get("features", FEATURES) if name in OPTIONAL_FEATURES]
        self.__dict__.update(
            {
                "embedding_backend": "torch",
                "embedded_records": None,
                "optional_features": optional,
                "orders_interval": None,  # registered before slates' orders had a range
                **state,
            }
        )
        old = self.__dict__["past"]
        if isinstance(old, PastPerformance):  # registered before records were data: its records are inside
            # Such rankers predate marketplace records: they have none.
            self.embedded_records = CreatorRecords(old.history, old.category_history, empty_records(BY_MARKETPLACE))
            self.past = HistoryModel(old.priors, old.affinity, getattr(old, "product_types", None))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """The heads' predictions per row; an absent optional feature column is a missing value in every row.

        Raises:
            ValueError: naming the required feature columns `model_input` lacks.
        """
        missing = [name for name in self.features if name not in model_input.columns]
        required = [name for name in missing if name not in self.optional_features]
        if required:
            raise ValueError(
                f"model input lacks required feature columns {required}; only {self.optional_features} may be left out"
            )
        # reindex adds each absent optional column as NaN, as the heads saw for a creator who did not state it.
        return self.ranker.predict(model_input.reindex(columns=self.features))
