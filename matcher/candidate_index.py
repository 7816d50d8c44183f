"""The candidate index: creator profile vectors in FAISS, searched by inner product (cosine on unit vectors).

The kind of index follows the catalogue's size: exact `flat` search below a threshold (200,000 creators by
default, $CREATOR_MATCHER_FLAT_THRESHOLD), an inverted file (`ivf`, float16 residuals) above it. `hnsw` is available
on request. Eligibility is applied inside the search with an ID selector, and an approximate search that finds
fewer than k eligible rows while more exist is widened until it does, so callers always get k.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from features.environment import FLAT_THRESHOLD_ENV
from matcher.index_build import (
    DEFAULT_EF_SEARCH,
    DEFAULT_FLAT_THRESHOLD,
    DEFAULT_NPROBE,
    INDEX_KINDS,
    IndexBuilder,
    check_positive,
    ivf_nlist,
)
from matcher.index_files import META_FILE, ArtifactMismatch, DamagedIndex, IndexFiles, why_not_an_index
from matcher.index_search import FilteredSearch

__all__ = [
    "DEFAULT_EF_SEARCH",
    "DEFAULT_FLAT_THRESHOLD",
    "DEFAULT_NPROBE",
    "FLAT_THRESHOLD_ENV",
    "INDEX_KINDS",
    "META_FILE",
    "ArtifactMismatch",
    "CandidateIndex",
    "DamagedIndex",
    "ivf_nlist",
    "why_not_an_index",
]


@dataclass
class CandidateIndex(IndexBuilder, IndexFiles, FilteredSearch):
    """FAISS inner-product index over normalised creator vectors, with the creator id of every row.

    `meta` records the embedding model and dimension that made it, the kind (`flat`, `ivf`, `hnsw`) and its
    search settings (`nprobe` for ivf, `ef_search` for hnsw), so a loaded index searches as the saved one did.
    `profile_keys` holds, per row, the content key of the profile text its vector embedded (16-byte BLAKE2b,
    `features.embeddings.profile_keys`); None for an index built without them or written before they were kept.
    """

    index: faiss.Index
    creator_ids: np.ndarray
    meta: dict
    profile_keys: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        """`flat`, `ivf` or `hnsw`."""
        return self.meta["kind"]

    @property
    def nprobe(self) -> int | None:
        """Inverted lists searched per query (ivf only; None otherwise)."""
        return self.meta.get("nprobe")

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self.kind != "ivf":
            raise ValueError(f"Got nprobe={value} for a {self.kind} index; only ivf indexes have nprobe")
        self.meta["nprobe"] = min(check_positive("nprobe", value), self.meta["nlist"])

    @property
    def ef_search(self) -> int | None:
        """Candidate list length of an hnsw search (hnsw only; None otherwise)."""
        return self.meta.get("ef_search")

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if self.kind != "hnsw":
            raise ValueError(f"Got ef_search={value} for a {self.kind} index; only hnsw indexes have ef_search")
        self.meta["ef_search"] = check_positive("ef_search", value)

    def vectors(self) -> np.ndarray:
        """Every stored vector, in row order (row i belongs to `creator_ids[i]`): a full copy."""
        if len(self) == 0:
            return np.zeros((0, self.meta["dimension"]), dtype=np.float32)
        return self.index.reconstruct_n(0, len(self))

    def vectors_at(self, positions: np.ndarray) -> np.ndarray:
        """The stored vectors of these index rows, in their order: the values `vectors()[positions]` holds,
        read from the index alone (an ivf index keeps a direct map from row to list, see `build` and `load`)."""
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        if not len(positions):
            return np.zeros((0, self.meta["dimension"]), dtype=np.float32)
        return self.index.reconstruct_batch(positions)
