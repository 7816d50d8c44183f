"""The artifacts a match run combines (ranker, embedding model, candidate index) and the checks that they agree;
and the stores the ranker is read from, which must exist before MLflow opens them."""

from __future__ import annotations

from pathlib import Path

from features.embeddings import Embedder
from features.environment import TRACKING_URI_ENV
from features.pairwise import FEATURES
from features.tables import Table
from matcher.candidate_index import ArtifactMismatch, CandidateIndex
from matcher.index_files import require_index
from training.registry import (
    LoadedRanker,
    ModelNotFound,
    check_server_reachable,
    load_ranker,
    sqlite_store_path,
)

__all__ = [
    "artifact_inputs",
    "check_features",
    "check_model_stores",
    "embedder_for",
    "index_for",
    "load_for_matching",
    "missing_store",
    "missing_store_reason",
]


def artifact_inputs(
    model: str | LoadedRanker, index: str | Path | CandidateIndex | None = None
) -> list[tuple[Path, str]]:
    """The artifacts among a run's inputs, which no output may be written over or into
    (`features.safe_write.check_outputs`), each named as such: the index directory, when the run is given one,
    and the model when it is a directory (a path that exists); not a model URI, nor a ranker or index already
    loaded."""
    read = [(Path(index), "index directory")] if isinstance(index, str | Path) else []
    if isinstance(model, str) and Path(model).exists():
        read.append((Path(model), "model directory"))
    return read


def missing_store(uri: str) -> Path | None:
    """The file a SQLite tracking or registry URI names, when there is no such file yet; else None (the file
    exists, or the store is not a SQLite file: a server, an in-memory database).

    MLflow creates the SQLite file of a store it opens, tables and all: a command that only reads a registry
    asks this first, so that a mistyped path or the wrong working directory does not leave an empty one behind.
    """
    path = sqlite_store_path(uri)
    if path is None:
        return None
    return None if path.exists() else path.absolute()


def missing_store_reason(uris: list[str]) -> str | None:
    """The first of `uris` that is a SQLite file not there yet (`missing_store`), as one line saying how to get one;
    None when every store exists or is not such a file."""
    for uri in dict.fromkeys(uris):
        path = missing_store(uri)
        if path is not None:
            return (
                f"no registry exists at {path} ({uri}): `creator-match train` creates it, "
                f"or ${TRACKING_URI_ENV} names one that exists"
            )
    return None


def check_model_stores(model: str) -> None:
    """Refuses a model URI whose registry or tracking store is a SQLite file that does not exist, before MLflow
    opens (and so creates) it: `models:/` reads both, `runs:/` the tracking store, a model directory neither.

    Raises:
        ModelNotFound: naming the path, in one line.
        RegistryUnavailable: the tracking server takes no connection (`check_server_reachable`).
    """
    import mlflow

    if model.startswith("models:/"):
        stores = [mlflow.get_registry_uri(), mlflow.get_tracking_uri()]
    elif model.startswith("runs:/"):
        stores = [mlflow.get_tracking_uri()]
    else:
        return
    if reason := missing_store_reason(stores):
        raise ModelNotFound(f"model {model!r} cannot be loaded: {reason}, or a model directory as the model (--model)")
    check_server_reachable()  # exit 1, as every command whose store cannot be read


def load_for_matching(
    model: str | LoadedRanker,
    performance: object | None = None,
    index: str | Path | CandidateIndex | None = None,
) -> LoadedRanker:
    """The ranker a match scores with, loaded without creating a store that does not exist, once the index
    directory the match is given, if any, is known to hold an index: a mistyped path is refused before the load.

    Args:
        model: a model URI or model directory (`training.registry.load_ranker`), or a ranker already loaded.
        performance: the latest performance the match scores creators on, if any; without it, the creators'
            records are read from the ranker's training run, in the tracking store, which must then exist.
        index: the match's candidate index; a directory is checked (`require_index`), not read.

    Raises:
        IndexNotFound: `index` is a directory that holds no candidate index.
        ModelNotFound: the model cannot be loaded, or a store it needs is a SQLite file that does not exist.
    """
    import mlflow

    if isinstance(index, str | Path):
        require_index(index)
    if isinstance(model, LoadedRanker):
        ranker = model
    else:
        check_model_stores(model)
        ranker = load_ranker(model)
    if performance is None and getattr(ranker.model, "embedded_records", None) is None and ranker.run_id:
        uri = mlflow.get_tracking_uri()
        path = missing_store(uri)
        if path is not None:
            raise ModelNotFound(
                f"model {ranker.uri!r}: the creators' records of its training run ({ranker.run_id}) are in its "
                f"tracking store, and none exists at {path} ({uri}): give --performance, or "
                f"${TRACKING_URI_ENV} the store it was trained in"
            )
    return ranker


def _trained_code(ranker: LoadedRanker) -> str:
    """Which creator-matcher trained `ranker`, as its training run's tags record it (`code_version`, `git_commit`).

    Read only from a store that exists: opening a SQLite store that does not would create an empty one.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    unknown = "its training run's code_version and git_commit tags say which"
    if not ranker.run_id or missing_store(mlflow.get_tracking_uri()) is not None:
        return unknown
    try:
        tags = MlflowClient().get_run(ranker.run_id).data.tags
    except MlflowException:
        return unknown
    recorded = [
        f"{name} {tags[name]}" for name in ("code_version", "git_commit") if tags.get(name, "unknown") != "unknown"
    ]
    return ", ".join(recorded) or unknown


def check_features(ranker: LoadedRanker) -> None:
    """Refuses a ranker trained on another feature set than this version computes.

    A ranker with features this code does not compute, and none it lacks, was trained by a newer creator-matcher:
    the way to use it is the code it was trained with. One that lacks some of this code's features is older than
    the code, and is retrained; one that both lacks some and has others (a feature renamed or dropped) is told both.
    """
    trained = list(ranker.model.features)
    if trained != FEATURES:
        missing = sorted(set(FEATURES) - set(trained))
        extra = sorted(set(trained) - set(FEATURES))
        trained_with = f"match with the creator-matcher it was trained with ({_trained_code(ranker)})"
        if extra and not missing:
            remedy = f"it needs features this code does not compute: {trained_with}"
        elif extra:  # features renamed or dropped: an older ranker, or a newer one
            remedy = f"retrain it with `creator-match train`, or {trained_with}"
        else:
            remedy = "retrain it with `creator-match train`"
        raise ArtifactMismatch(
            f"ranker {ranker.version} was trained with another feature set "
            f"({len(trained)} features; this version computes {len(FEATURES)}; "
            f"missing {missing[:3]}, unexpected {extra[:3]}): {remedy}"
        )


def embedder_for(ranker: LoadedRanker, embedder: Embedder | None) -> Embedder:
    """The embedding model and backend the ranker was trained with; a given embedder must be that one."""
    trained_with, backend = ranker.model.embedding_model, ranker.model.embedding_backend
    embedder = embedder or Embedder(trained_with, backend=backend)
    if (embedder.model, embedder.backend) != (trained_with, backend):
        raise ArtifactMismatch(
            f"ranker {ranker.version} was trained with embedding model {trained_with!r} on {backend}; "
            f"the matcher uses {embedder.model!r} on {embedder.backend}"
        )
    return embedder


def index_for(
    index: CandidateIndex | str | Path | None, ranker: LoadedRanker, embedder: Embedder, creators: Table
) -> CandidateIndex:
    """The candidate index: given, loaded from its directory, or built from `creators`; refused unless built
    with the ranker's embedding model, backend and dimension."""
    trained_with, backend = ranker.model.embedding_model, ranker.model.embedding_backend
    dimension = ranker.model.embedding_dim
    if isinstance(index, str | Path):
        index = CandidateIndex.load(index, trained_with, dimension, backend)
    elif index is None:
        index = CandidateIndex.of_creators(creators, embedder)
    if index.meta.get("embedding_backend", "torch") != backend:
        raise ArtifactMismatch(
            f"index built with embedding backend {index.meta.get('embedding_backend', 'torch')!r}; "
            f"ranker {ranker.version} expects {backend!r}"
        )
    if index.meta["embedding_model"] != trained_with or index.meta["dimension"] != dimension:
        raise ArtifactMismatch(
            f"index built with {index.meta['embedding_model']!r} "
            f"({index.meta['dimension']}-d); ranker expects {trained_with!r} ({dimension}-d)"
        )
    return index
