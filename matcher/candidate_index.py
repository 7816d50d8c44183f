"""The candidate index: creator profile vectors in FAISS, searched by inner product (cosine on unit vectors).

The kind of index follows the catalogue's size: exact `flat` search below a threshold (200,000 creators by
default, $CREATOR_MATCHER_FLAT_THRESHOLD), an inverted file (`ivf`, IndexIVFFlat) above it. `hnsw` is available
on request. Eligibility is applied inside the search with an ID selector, and an approximate search that finds
fewer than k eligible rows while more exist is widened until it does, so callers always get k.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.embeddings import resolve_backend
from features.environment import FLAT_THRESHOLD_ENV
from features.safe_write import foreign_entries, staged_directory

__all__ = [
    "DEFAULT_EF_SEARCH",
    "DEFAULT_FLAT_THRESHOLD",
    "DEFAULT_NPROBE",
    "FLAT_THRESHOLD_ENV",
    "INDEX_KINDS",
    "ArtifactMismatch",
    "CandidateIndex",
    "ivf_nlist",
    "why_not_an_index",
]

INDEX_FILE, IDS_FILE, META_FILE = "index.faiss", "creator_ids.parquet", "meta.json"
# meta.json's mark that the directory is a candidate index, which `save` may replace.
INDEX_ARTIFACT = "creator-matcher candidate index"
LEGACY_KEYS = {"embedding_model", "dimension", "creators"}
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
DEFAULT_FLAT_THRESHOLD = 200_000
# From benchmarks/ann.py (1,000 queries, clustered 384-d): at 1M, nprobe 16 searched 25x faster than Flat
# unfiltered and 20x with an 80% filter, recall@100 1.000; at 100k, where clusters are smaller, it kept 0.998.
# nprobe 8 was faster still at 1M (45x) but fell to 0.980 at 100k: 16 leaves a margin for real embeddings.
DEFAULT_NPROBE = 16
DEFAULT_EF_SEARCH = 256
HNSW_M = 32
# Filtered flat search over-fetches unfiltered rows when at least this share is allowed (else k/share is large).
OVERFETCH_MIN_SHARE = 0.2
OVERFETCH_MARGIN = 1.25
# k-means needs ~39 points per centroid; 50 keeps training quick at 1M (200k points) without starving lists.
TRAIN_POINTS_PER_LIST = 50
MIN_POINTS_PER_LIST = 39
_ADD_CHUNK = 65_536
_INDEX_TYPES = {"flat": "Flat", "ivf": "IVF{nlist},Flat", "hnsw": f"HNSW{HNSW_M},Flat"}


def why_not_an_index(directory: Path) -> str | None:
    """Why `directory` is not a candidate index this project wrote, or None if it is (so it may be replaced)."""
    foreign = foreign_entries(directory, (INDEX_FILE, IDS_FILE, META_FILE))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        return f"it is not a candidate index (it holds {shown})"
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        meta = None
    # Indexes written before the marker existed are known by the fields every index has recorded.
    if not isinstance(meta, dict) or meta.get("artifact", INDEX_ARTIFACT) != INDEX_ARTIFACT or LEGACY_KEYS - set(meta):
        return f"it is not a candidate index (no {META_FILE} describing one)"
    return None


class ArtifactMismatch(Exception):
    """An artifact made with another embedding model, dimension or feature set than the one in use."""


def ivf_nlist(n: int) -> int:
    """Inverted lists for `n` vectors: about 4·sqrt(n), but never fewer than 39 training points per list."""
    if n < 1:
        raise ValueError(f"Got n={n}; an IVF index needs at least 1 vector")
    return max(1, min(round(4 * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def _flat_threshold(threshold: int | None) -> int:
    if threshold is None:
        raw = os.environ.get(FLAT_THRESHOLD_ENV)
        try:
            threshold = int(raw) if raw else DEFAULT_FLAT_THRESHOLD
        except ValueError:
            raise ValueError(f"Got {FLAT_THRESHOLD_ENV}={raw!r}; expected a whole number of creators") from None
    if threshold < 0:
        raise ValueError(f"Got flat_threshold={threshold}; expected 0 or more")
    return threshold


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and int(value) < 1:
        raise ValueError(f"Got {name}={value}; expected at least 1")
    return None if value is None else int(value)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="vec", unit_scale=True, disable=not enabled, leave=False)


@dataclass
class CandidateIndex:
    """FAISS inner-product index over normalised creator vectors, with the creator id of every row.

    `meta` records the embedding model and dimension that made it, the kind (`flat`, `ivf`, `hnsw`) and its
    search settings (`nprobe` for ivf, `ef_search` for hnsw), so a loaded index searches as the saved one did.
    """

    index: faiss.Index
    creator_ids: np.ndarray
    meta: dict

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        creator_ids,
        embedding_model: str,
        kind: str = "auto",
        *,
        nprobe: int | None = None,
        nlist: int | None = None,
        ef_search: int | None = None,
        flat_threshold: int | None = None,
        seed: int = 0,
        progress: bool = False,
        embedding_backend: str | None = None,
    ) -> CandidateIndex:
        """Builds an index over L2-normalised float32 rows.

        Args:
            vectors: one row per creator, L2-normalised.
            creator_ids: the creator id of each row.
            embedding_model: the model that made the vectors, recorded in `meta`.
            kind: `flat` (exact), `ivf` (IndexIVFFlat), `hnsw`, or `auto`: flat up to `flat_threshold` rows,
                ivf above.
            nprobe: ivf lists searched per query; default DEFAULT_NPROBE.
            nlist: ivf lists; default `ivf_nlist(len(vectors))`.
            ef_search: hnsw search breadth; default DEFAULT_EF_SEARCH.
            flat_threshold: most rows for which `auto` stays exact; default $CREATOR_MATCHER_FLAT_THRESHOLD,
                else DEFAULT_FLAT_THRESHOLD.
            seed: seeds the ivf training sample and k-means, so a build is repeatable.
            progress: show progress bars on standard error.
            embedding_backend: the backend that ran the model (`torch`, `onnx`), recorded in `meta`; default
                features.embeddings.resolve_backend(), the one an Embedder uses when not told.
        """
        if kind not in INDEX_KINDS:
            raise ValueError(f"Got kind={kind!r}; expected one of {', '.join(INDEX_KINDS)}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"Got vectors of shape {vectors.shape}; expected (rows >= 1, dimension)")
        creator_ids = np.asarray(creator_ids, dtype=object)
        if len(creator_ids) != len(vectors):
            raise ValueError(f"Got {len(creator_ids)} creator ids for {len(vectors)} vectors; expected one per row")
        n, dimension = vectors.shape
        if kind == "auto":
            kind = "flat" if n <= _flat_threshold(flat_threshold) else "ivf"
        meta = {
            "artifact": INDEX_ARTIFACT,
            "embedding_model": embedding_model,
            "embedding_backend": resolve_backend(embedding_backend),
            "dimension": int(dimension),
            "creators": int(n),
            "kind": kind,
            "metric": "inner_product",
        }
        if kind == "flat":
            index = faiss.IndexFlatIP(dimension)
        elif kind == "ivf":
            nlist = _positive("nlist", nlist) or ivf_nlist(n)
            index = _train_ivf(vectors, nlist, seed, progress)
            meta.update(nlist=nlist, nprobe=min(_positive("nprobe", nprobe) or DEFAULT_NPROBE, nlist), seed=seed)
        else:
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            meta.update(ef_search=_positive("ef_search", ef_search) or DEFAULT_EF_SEARCH)
        meta["index_type"] = _INDEX_TYPES[kind].format(nlist=meta.get("nlist"))
        with _progress(n, "adding vectors", progress) as bar:
            for start in range(0, n, _ADD_CHUNK):
                index.add(vectors[start : start + _ADD_CHUNK])
                bar.update(min(_ADD_CHUNK, n - start))
        if kind == "ivf":
            index.make_direct_map()  # so vectors() can read rows back by position
        meta["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return cls(index, creator_ids, meta)

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
        self.meta["nprobe"] = min(_positive("nprobe", value), self.meta["nlist"])

    @property
    def ef_search(self) -> int | None:
        """Candidate list length of an hnsw search (hnsw only; None otherwise)."""
        return self.meta.get("ef_search")

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if self.kind != "hnsw":
            raise ValueError(f"Got ef_search={value} for a {self.kind} index; only hnsw indexes have ef_search")
        self.meta["ef_search"] = _positive("ef_search", value)

    def vectors(self) -> np.ndarray:
        """Every stored vector, in row order (row i belongs to `creator_ids[i]`)."""
        if len(self) == 0:
            return np.zeros((0, self.meta["dimension"]), dtype=np.float32)
        return self.index.reconstruct_n(0, len(self))

    def save(self, directory: str | Path) -> Path:
        """Writes the index, ids and metadata; the directory appears whole or not at all, durably.

        An existing candidate index there is replaced in one step; an empty directory is used. Anything else
        is refused, so nothing the index did not write is ever deleted.

        Raises:
            OutputRefused: `directory` exists and is neither empty nor a candidate index.
        """
        with staged_directory(directory, why_not_an_index) as staging:
            faiss.write_index(self.index, str(staging / INDEX_FILE))
            pq.write_table(
                pa.table({"creator_id": pa.array(self.creator_ids.tolist(), pa.string())}), staging / IDS_FILE
            )
            (staging / META_FILE).write_text(json.dumps({**self.meta, "artifact": INDEX_ARTIFACT}, indent=2))
        return Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        embedding_model: str | None = None,
        dimension: int | None = None,
        embedding_backend: str | None = None,
    ) -> CandidateIndex:
        """Reads an index; with `embedding_model`, `dimension` or `embedding_backend`, refuses a mismatch.

        Raises:
            FileNotFoundError: the directory holds no index.
            ArtifactMismatch: the index was built with another embedding model, dimension or backend.
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
        meta.setdefault("embedding_backend", "torch")  # indexes written before there was a choice used torch
        if embedding_backend is not None and meta["embedding_backend"] != embedding_backend:
            raise ArtifactMismatch(
                f"index {directory} was built with embedding backend {meta['embedding_backend']!r}; expected "
                f"{embedding_backend!r}: rebuild it with `creator-match index --embedding-backend {embedding_backend}`"
            )
        meta.setdefault("kind", "flat")  # indexes written before there was a choice were all Flat
        index = faiss.read_index(str(directory / INDEX_FILE))
        if meta["kind"] == "ivf" and faiss.extract_index_ivf(index).direct_map.type == faiss.DirectMap.NoMap:
            faiss.extract_index_ivf(index).make_direct_map()
        ids = pq.read_table(directory / IDS_FILE).column("creator_id").to_numpy(zero_copy_only=False)
        return cls(index, ids.astype(object), meta)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query by inner product, only among `allowed` rows (a boolean mask) when given.

        Flat results are exact, filtered or not. An approximate index searches 1/share-allowed wider when
        filtered, and a query that still comes back with fewer than min(k, allowed rows) is searched again wider
        (ivf: doubling nprobe up to every list, which is exact; hnsw: doubling ef_search, then an exact scan), so
        a selective filter never starves the caller.

        Returns:
            (similarities, positions), each of shape (n_queries, k); position -1 where fewer exist.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.meta["dimension"]:
            raise ValueError(f"Got queries of shape {queries.shape}; expected (n, {self.meta['dimension']})")
        k = max(1, min(k, len(self)))
        bitmap = selector = None
        wanted, share = k, 1.0
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (len(self),):
                raise ValueError(f"Got an allowed mask of shape {allowed.shape}; expected ({len(self)},)")
            wanted = min(k, int(allowed.sum()))
            share = max(float(allowed.mean()), 1 / len(self))
            bitmap = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self), faiss.swig_ptr(bitmap))
        # The selector reads `bitmap` through a raw pointer, so it stays referenced here until the search returns.
        if self.kind == "flat":
            if selector is None:
                return self.index.search(queries, k)
            if share >= OVERFETCH_MIN_SHARE:
                return self._flat_overfetch(queries, k, allowed, selector, wanted, share)
            return self.index.search(queries, k, params=faiss.SearchParameters(sel=selector))
        return self._approximate(queries, k, selector, wanted, share)

    def _approximate(self, queries: np.ndarray, k: int, selector, wanted: int, share: float):
        """ivf or hnsw search, widened for the queries that come back with fewer than `wanted` rows."""
        # ivf at nprobe = nlist scans every row, which is exact; an hnsw search as wide as the index is the limit.
        limit = self.meta["nlist"] if self.kind == "ivf" else len(self)
        # A filter hides a share of every list or neighbourhood searched; searching 1/share as wide keeps the
        # number of allowed rows seen, hence recall, about what the unfiltered search has.
        base = self.nprobe if self.kind == "ivf" else max(self.ef_search, k)
        width = min(math.ceil(base / share), max(limit, base))
        sims, positions = self.index.search(queries, k, params=self._params(selector, width))
        short = np.flatnonzero((positions >= 0).sum(axis=1) < wanted)
        while len(short) and width < limit:
            width = min(2 * width, limit)
            sims[short], positions[short] = self.index.search(queries[short], k, params=self._params(selector, width))
            short = short[(positions[short] >= 0).sum(axis=1) < wanted]
        if len(short):  # hnsw only: its graph can miss rows a selective filter leaves isolated
            storage = faiss.downcast_index(self.index.storage)
            params = None if selector is None else faiss.SearchParameters(sel=selector)
            sims[short], positions[short] = storage.search(queries[short], k, params=params)
        return sims, positions

    def _flat_overfetch(self, queries, k: int, allowed, selector, wanted: int, share: float):
        """Exact filtered top-k from an unfiltered search for extra rows, dropping those not allowed.

        FAISS checks a selector pair by pair, off its BLAS path: about 7x slower on the whole index (see
        benchmarks/ann.py). Where the unfiltered top `fetch` holds `wanted` allowed rows, they are exactly the
        filtered top rows; the queries where it does not are searched again with the selector.
        """
        fetch = min(len(self), math.ceil(k / share * OVERFETCH_MARGIN) + 16)
        sims, positions = self.index.search(queries, fetch)
        keep = (positions >= 0) & allowed[np.maximum(positions, 0)]
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # allowed rows first, in rank order
        sims, positions = np.take_along_axis(sims, order, axis=1), np.take_along_axis(positions, order, axis=1)
        missing = ~np.take_along_axis(keep, order, axis=1)
        sims[missing], positions[missing] = -np.finfo(np.float32).max, -1  # FAISS's marks for "no row"
        short = np.flatnonzero(keep.sum(axis=1) < wanted)
        if len(short):
            params = faiss.SearchParameters(sel=selector)
            sims[short], positions[short] = self.index.search(queries[short], k, params=params)
        return sims, positions

    def _params(self, selector, width: int):
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=width)
        return faiss.SearchParametersHNSW(sel=selector, efSearch=width)


def _train_ivf(vectors: np.ndarray, nlist: int, seed: int, progress: bool) -> faiss.IndexIVFFlat:
    """An untrained-then-trained IndexIVFFlat; k-means runs on a seeded sample, spherical for inner product."""
    dimension = vectors.shape[1]
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.spherical = True  # unit-norm centroids, the right centres for inner product
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    n_train = min(len(vectors), TRAIN_POINTS_PER_LIST * nlist)
    sample = np.sort(np.random.default_rng(seed).choice(len(vectors), size=n_train, replace=False))
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(f"training IVF: {nlist} lists on {n_train:,} sampled vectors")
    index.train(vectors[sample])
    return index
