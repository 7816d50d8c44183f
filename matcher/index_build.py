"""Building the candidate index: the kind of FAISS index for the catalogue's size, and its settings.

Exact `flat` search up to a threshold (200,000 creators by default, $CREATOR_MATCHER_FLAT_THRESHOLD), an inverted
file (`ivf`, trained by seeded spherical k-means, each vector stored as its residual from its list's centre in
16-bit floats) above it, `hnsw` on request.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import TYPE_CHECKING

import faiss
import numpy as np

from features.embeddings import KEY_DTYPE, Embedder, content_keys, resolve_backend
from features.environment import FLAT_THRESHOLD_ENV
from features.tables import Table, valid_rows
from features.text import creator_texts
from matcher.index_files import INDEX_ARTIFACT

if TYPE_CHECKING:
    import pandas as pd

    from matcher.candidate_index import CandidateIndex

__all__ = [
    "DEFAULT_EF_SEARCH",
    "DEFAULT_FLAT_THRESHOLD",
    "DEFAULT_NPROBE",
    "INDEX_KINDS",
    "IndexBuilder",
    "check_positive",
    "ivf_nlist",
]

INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
DEFAULT_FLAT_THRESHOLD = 200_000
# From benchmarks/ann.py (1,000 queries, clustered 384-d), float16 lists (3 December): at 1M, nprobe 16 searched
# 26.8x faster than Flat unfiltered and 12.8x with an 80% filter, recall@100 0.9996 and 0.9997; at 100k, where
# clusters are smaller, 0.9992 and 0.9981. nprobe 8 was faster still at 1M (48.7x, 26.6x) but falls further at
# 100k (0.9795 filtered): 16 leaves a margin for real embeddings. float32 lists in the same sitting, at 1M: nprobe 16
# 20.0x and 13.5x at recall 1.0000, nprobe 8 34.4x and 22.2x.
DEFAULT_NPROBE = 16
DEFAULT_EF_SEARCH = 256
HNSW_M = 32
# k-means needs ~39 points per centroid; 50 keeps training quick at 1M (200k points) without starving lists.
TRAIN_POINTS_PER_LIST = 50
MIN_POINTS_PER_LIST = 39
_ADD_CHUNK = 65_536
# An ivf index stores residuals in float16: half the memory of float32 rows (0.77 GB instead of 1.54 GB at 1M)
# for a rounding of at most 6.1e-5 per component. Against float32 lists trained on the same sample, on 300,000 of
# the 1M benchmark's MiniLM creator profiles (500 held-out profiles as queries), recall@100 to the exact float32
# ranking went from 0.9826 to 0.9825 at nprobe 16 and from 0.9964 to 0.9963 at nprobe 32.
_INDEX_TYPES = {"flat": "Flat", "ivf": "IVF{nlist},SQfp16", "hnsw": f"HNSW{HNSW_M},Flat"}


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


def check_positive(name: str, value: int | None) -> int | None:
    """`value` as an int, refused below 1 with its name; None stays None."""
    if value is not None and int(value) < 1:
        raise ValueError(f"Got {name}={value}; expected at least 1")
    return None if value is None else int(value)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="vec", unit_scale=True, disable=not enabled, leave=False)


class IndexBuilder:
    """The constructor of CandidateIndex from vectors."""

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
        profile_keys: np.ndarray | None = None,
    ) -> CandidateIndex:
        """Builds an index over L2-normalised float32 rows.

        Args:
            vectors: one row per creator, L2-normalised.
            creator_ids: the creator id of each row.
            embedding_model: the model that made the vectors, recorded in `meta`.
            kind: `flat` (exact), `ivf` (inverted lists of float16 residuals), `hnsw`, or `auto`: flat up to
                `flat_threshold` rows, ivf above.
            nprobe: ivf lists searched per query; default DEFAULT_NPROBE.
            nlist: ivf lists; default `ivf_nlist(len(vectors))`.
            ef_search: hnsw search breadth; default DEFAULT_EF_SEARCH.
            flat_threshold: most rows for which `auto` stays exact; default $CREATOR_MATCHER_FLAT_THRESHOLD,
                else DEFAULT_FLAT_THRESHOLD.
            seed: seeds the ivf training sample and k-means, so a build is repeatable.
            progress: show progress bars on standard error.
            embedding_backend: the backend that ran the model (`torch`, `onnx`), recorded in `meta`; default
                features.embeddings.resolve_backend(), the one an Embedder uses when not told.
            profile_keys: the content key (`features.embeddings.content_keys`) of the text each row embedded, so
                that a match can tell a profile edited since (`matcher.profile_refresh`); None records none.
        """
        if kind not in INDEX_KINDS:
            raise ValueError(f"Got kind={kind!r}; expected one of {', '.join(INDEX_KINDS)}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"Got vectors of shape {vectors.shape}; expected (rows >= 1, dimension)")
        creator_ids = np.asarray(creator_ids, dtype=object)
        if len(creator_ids) != len(vectors):
            raise ValueError(f"Got {len(creator_ids)} creator ids for {len(vectors)} vectors; expected one per row")
        if profile_keys is not None:
            profile_keys = np.asarray(profile_keys, dtype=KEY_DTYPE).copy()
            if len(profile_keys) != len(vectors):
                raise ValueError(f"Got {len(profile_keys)} profile keys for {len(vectors)} vectors; expected one a row")
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
            nlist = check_positive("nlist", nlist) or ivf_nlist(n)
            index = _train_ivf(vectors, nlist, seed, progress)
            meta.update(nlist=nlist, nprobe=min(check_positive("nprobe", nprobe) or DEFAULT_NPROBE, nlist), seed=seed)
        else:
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            meta.update(ef_search=check_positive("ef_search", ef_search) or DEFAULT_EF_SEARCH)
        meta["index_type"] = _INDEX_TYPES[kind].format(nlist=meta.get("nlist"))
        with _progress(n, "adding vectors", progress) as bar:
            for start in range(0, n, _ADD_CHUNK):
                index.add(vectors[start : start + _ADD_CHUNK])
                bar.update(min(_ADD_CHUNK, n - start))
        if kind == "ivf":
            index.make_direct_map()  # so vectors() can read rows back by position
        meta["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return cls(index, creator_ids, meta, profile_keys)

    @classmethod
    def of_creators(
        cls, creators: Table | pd.DataFrame, embedder: Embedder, kind: str = "auto", **settings
    ) -> CandidateIndex:
        """Embeds the creators' profiles (only those `embedder` has not cached) and builds their index, recording
        each profile's content key beside its row.

        Args:
            creators: the creators table: a Table `read_table` made is used as it is; a DataFrame is validated
                first, as a Matcher validates it (its invalid rows warned about and left out), so that the index
                holds the ids and profiles a Matcher reads (a DataFrame's integer ids as their decimal text: as
                integers, a Matcher on the same frame found none of its creators in the index).
            embedder: the embedding model; its model and backend are recorded in `meta`.
            kind: as in `build`.
            **settings: `build`'s keyword settings (nprobe, nlist, ef_search, flat_threshold, seed, progress).
        """
        creators = valid_rows(creators, "creators").frame
        texts = list(creator_texts(creators))
        return cls.build(
            embedder.encode(texts),
            creators["creator_id"],
            embedder.model,
            kind,
            embedding_backend=embedder.backend,
            profile_keys=content_keys(texts),
            **settings,
        )


def _train_ivf(vectors: np.ndarray, nlist: int, seed: int, progress: bool) -> faiss.IndexIVFScalarQuantizer:
    """An IVF index of float16 residuals, trained: k-means runs on a seeded sample, spherical for inner product."""
    dimension = vectors.shape[1]
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dimension, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT, True
    )
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
