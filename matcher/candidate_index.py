"""The candidate index: creator profile vectors in FAISS, searched by inner product (cosine on unit vectors)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ArtifactMismatch", "CandidateIndex"]

INDEX_FILE, IDS_FILE, META_FILE = "index.faiss", "creator_ids.parquet", "meta.json"


class ArtifactMismatch(Exception):
    """An artifact made with another embedding model, dimension or feature set than the one in use."""


@dataclass
class CandidateIndex:
    """FAISS inner-product index over normalised creator vectors, with the creator id of every row."""

    index: faiss.Index
    creator_ids: np.ndarray
    meta: dict

    @classmethod
    def build(cls, vectors: np.ndarray, creator_ids, embedding_model: str) -> CandidateIndex:
        """Builds an exact inner-product index; `vectors` must be L2-normalised float32 rows."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        meta = {
            "embedding_model": embedding_model,
            "dimension": int(vectors.shape[1]),
            "creators": int(vectors.shape[0]),
            "index_type": "Flat",
            "metric": "inner_product",
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return cls(index, np.asarray(creator_ids, dtype=object), meta)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def save(self, directory: str | Path) -> Path:
        """Writes the index, ids and metadata; the directory appears whole or not at all."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            faiss.write_index(self.index, str(staging / INDEX_FILE))
            pq.write_table(
                pa.table({"creator_id": pa.array(self.creator_ids.tolist(), pa.string())}), staging / IDS_FILE
            )
            (staging / META_FILE).write_text(json.dumps(self.meta, indent=2))
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(staging, directory)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, embedding_model: str | None = None, dimension: int | None = None
    ) -> CandidateIndex:
        """Reads an index; with `embedding_model` or `dimension`, refuses one made by another model.

        Raises:
            FileNotFoundError: the directory holds no index.
            ArtifactMismatch: the index was built with another embedding model or dimension.
        """
        directory = Path(directory)
        if not (directory / META_FILE).is_file():
            raise FileNotFoundError(f"{directory}: no candidate index here (missing {META_FILE})")
        meta = json.loads((directory / META_FILE).read_text())
        if embedding_model is not None and meta["embedding_model"] != embedding_model:
            raise ArtifactMismatch(
                f"index {directory} was built with embedding model {meta['embedding_model']!r}; "
                f"expected {embedding_model!r}: rebuild it with `creator-match index`"
            )
        if dimension is not None and meta["dimension"] != dimension:
            raise ArtifactMismatch(f"index {directory} has dimension {meta['dimension']}; expected {dimension}")
        index = faiss.read_index(str(directory / INDEX_FILE))
        ids = pq.read_table(directory / IDS_FILE).column("creator_id").to_numpy(zero_copy_only=False)
        return cls(index, ids.astype(object), meta)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query by inner product, only among `allowed` rows (a boolean mask) when given.

        Returns:
            (similarities, positions), each of shape (n_queries, k); position -1 where fewer exist.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self)))
        if allowed is None:
            return self.index.search(queries, k)
        bitmap = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(self), faiss.swig_ptr(bitmap))
        return self.index.search(queries, k, params=faiss.SearchParameters(sel=selector))
