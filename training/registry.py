"""MLflow: where runs are tracked, how rankers are registered, promoted and loaded. The one place that loads them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import version as package_version

__all__ = [
    "CHAMPION",
    "DEFAULT_MODEL_NAME",
    "LoadedRanker",
    "ModelNotFound",
    "champion_version",
    "configure_tracking",
    "load_ranker",
    "pip_requirements",
    "promote",
]

DEFAULT_MODEL_NAME = "creator-ranker"
CHAMPION = "champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


class ModelNotFound(Exception):
    """A model URI that does not resolve to a registered or logged ranker."""


def configure_tracking() -> str:
    """Points MLflow at $MLFLOW_TRACKING_URI, or a SQLite file in the working directory; returns the URI."""
    import mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri


def pip_requirements() -> list[str]:
    """What a process needs to load the registered pyfunc; given explicitly so MLflow need not infer it."""
    return [
        f"{name}=={package_version(name)}"
        for name in ("creator-matcher", "mlflow", "scikit-learn", "pandas", "numpy", "cloudpickle")
    ]


@dataclass
class LoadedRanker:
    """A ranker loaded from the registry or a path: the pyfunc's python model and where it came from."""

    model: object  # training.pyfunc.RankerModel
    uri: str
    version: str  # e.g. "creator-ranker/3", or the URI for unregistered models


def champion_version(name: str) -> str | None:
    """The version the `champion` alias points at, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _resolve_version(uri: str) -> str:
    from mlflow import MlflowClient

    if not uri.startswith("models:/"):
        return uri
    ref = uri[len("models:/") :]
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name}/{MlflowClient().get_model_version_by_alias(name, alias).version}"
    return ref


def load_ranker(uri: str) -> LoadedRanker:
    """Loads a ranker from a model URI (`models:/name@alias`, `models:/name/3`, `runs:/...` or a path).

    Raises:
        ModelNotFound: the URI does not resolve, with the reason in one line.
    """
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        version = _resolve_version(uri)
        pyfunc = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFound(f"model {uri!r} cannot be loaded from {mlflow.get_tracking_uri()}: {first}") from exc
    return LoadedRanker(pyfunc.unwrap_python_model(), uri, version)


def promote(name: str, version: str) -> None:
    """Points the `champion` alias at a version of a registered model."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.get_model_version(name, str(version))  # raises if the version does not exist
    client.set_registered_model_alias(name, CHAMPION, str(version))
