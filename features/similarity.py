"""Semantic closeness of a campaign and a creator, measured on the whole profile and tag by tag."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.embeddings import Embedder
from features.text import campaign_text

__all__ = ["SEMANTIC_FEATURES", "TagSpace", "semantic_features"]

SEMANTIC_FEATURES = ["similarity", "tag_similarity", "category_similarity"]


class TagSpace:
    """Every distinct interest tag of a creator table, embedded once, and each creator's tags as row ids.

    A profile vector averages all of a creator's interests; the best single tag says whether one of them
    is exactly what the campaign is about, which matters for creators with several topics.
    """

    def __init__(self, embedder: Embedder, interest_tags: pd.Series) -> None:
        lowered = [[tag.strip().lower() for tag in tags] for tags in interest_tags]
        vocabulary = sorted({tag for tags in lowered for tag in tags})
        position = {tag: i for i, tag in enumerate(vocabulary)}
        self.vocabulary = vocabulary  # tag id -> lower-cased tag, for reasons
        self.vectors = embedder.encode(vocabulary) if vocabulary else np.zeros((0, embedder.dimension), np.float32)
        self.tag_ids = np.array([position[tag] for tags in lowered for tag in tags], dtype=np.int64)
        counts = np.array([len(tags) for tags in lowered], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])

    def best(self, queries: np.ndarray, query_index: np.ndarray, creator_index: np.ndarray) -> np.ndarray:
        """For each pair, the highest cosine between query `query_index[i]` and a tag of creator `creator_index[i]`."""
        scores = queries @ self.vectors.T  # (n_queries, n_tags): small next to the pairs
        starts, ends = self.offsets[creator_index], self.offsets[creator_index + 1]
        lengths = ends - starts
        out = np.full(len(creator_index), np.nan, dtype=np.float32)
        has = lengths > 0
        if not has.any():
            return out
        pair_of = np.repeat(np.flatnonzero(has), lengths[has])
        within = np.arange(len(pair_of)) - np.repeat(np.cumsum(lengths[has]) - lengths[has], lengths[has])
        flat = scores[query_index[pair_of], self.tag_ids[starts[pair_of] + within]]
        out[has] = np.maximum.reduceat(flat, np.concatenate([[0], np.cumsum(lengths[has])[:-1]]))
        return out


def semantic_features(
    embedder: Embedder,
    campaigns: pd.DataFrame,
    campaign_vectors: np.ndarray,
    creator_vectors: np.ndarray,
    tags: TagSpace,
    campaign_index: np.ndarray,
    creator_index: np.ndarray,
) -> pd.DataFrame:
    """SEMANTIC_FEATURES of each pair: profile-brief cosine, best tag-brief cosine, best tag-category cosine.

    Args:
        campaign_vectors, creator_vectors: rows aligned with the campaign and creator tables.
        campaign_index, creator_index: each pair's rows in those tables.
    """
    categories = sorted(set(campaigns["category"]))
    category_vectors = embedder.encode([campaign_text(category, category) for category in categories])
    category_of = campaigns["category"].map({c: i for i, c in enumerate(categories)}).to_numpy()
    return pd.DataFrame(
        {
            "similarity": np.einsum("ij,ij->i", campaign_vectors[campaign_index], creator_vectors[creator_index]),
            "tag_similarity": tags.best(campaign_vectors, campaign_index, creator_index),
            "category_similarity": tags.best(category_vectors, category_of[campaign_index], creator_index),
        }
    )
