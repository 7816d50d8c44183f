"""The artifacts a match run combines (ranker, embedding model, candidate index) and the checks that they agree."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.embeddings import Embedder, creator_vectors
from features.pairwise import FEATURES
from matcher.candidate_index import ArtifactMismatch, CandidateIndex
from training.registry import LoadedRanker

__all__ = ["check_features", "embedder_for", "index_for"]


def check_features(ranker: LoadedRanker) -> None:
    """Refuses a ranker trained on another feature set than this version computes."""
    trained = list(ranker.model.features)
    if trained != FEATURES:
        missing = sorted(set(FEATURES) - set(trained))
        extra = sorted(set(trained) - set(FEATURES))
        raise ArtifactMismatch(
            f"ranker {ranker.version} was trained with another feature set "
            f"({len(trained)} features; this version computes {len(FEATURES)}; "
            f"missing {missing[:3]}, unexpected {extra[:3]}): retrain it with `creator-match train`"
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
    index: CandidateIndex | str | Path | None, ranker: LoadedRanker, embedder: Embedder, creators: pd.DataFrame
) -> CandidateIndex:
    """The candidate index: given, loaded from its directory, or built from `creators`; refused unless built
    with the ranker's embedding model, backend and dimension."""
    trained_with, backend = ranker.model.embedding_model, ranker.model.embedding_backend
    dimension = ranker.model.embedding_dim
    if isinstance(index, str | Path):
        index = CandidateIndex.load(index, trained_with, dimension, backend)
    elif index is None:
        index = CandidateIndex.build(
            creator_vectors(embedder, creators),
            creators["creator_id"],
            embedder.model,
            embedding_backend=embedder.backend,
        )
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
