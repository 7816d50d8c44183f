"""What the slates' near-duplicate rule compares: creators' profile vectors, and which of them hold a bio."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.text import has_bio

__all__ = ["DuplicateEvidence"]


class DuplicateEvidence:
    """Creators' profile vectors by creator row, and per row whether the profile holds a bio.

    The rule compares only two creators who both hold a bio. Without one a profile is its type and interest tags: what
    a creator posts about, not who follows them. A seller's table holding a category per creator and nothing else
    gives every creator of a category the same profile text, and the rule kept one of them per slate (a real pair of
    files: 30 creators a category, slates of one creator per category). Two creators whose whole profiles, bios
    included, nearly coincide are the copies the rule is for.

    Args:
        vectors: unit profile vectors by creator row: an array, or anything read as `vectors[rows]` with a `len`
            (`matcher.eligibility.VectorsByRow`, which reads them from the index on demand).
        has_bio: per creator row, whether the profile holds a bio.
    """

    def __init__(self, vectors: np.ndarray, has_bio: np.ndarray) -> None:
        has_bio = np.asarray(has_bio, dtype=bool)
        if has_bio.shape != (len(vectors),):
            raise ValueError(f"Got has_bio of shape {has_bio.shape}; expected one value per vector ({len(vectors)})")
        self.vectors = vectors
        self.has_bio = has_bio

    @classmethod
    def of(cls, vectors: np.ndarray, creators: pd.DataFrame) -> DuplicateEvidence:
        """The evidence of a validated creators table (its `bio` column) and its profile vectors, in table order."""
        return cls(vectors, creators["bio"].map(has_bio).to_numpy(bool))

    @classmethod
    def of_vectors(cls, vectors: np.ndarray) -> DuplicateEvidence:
        """Every row compared: vectors of profiles known to be each creator's own (hand-made cases, benchmarks)."""
        return cls(vectors, np.ones(len(vectors), dtype=bool))
