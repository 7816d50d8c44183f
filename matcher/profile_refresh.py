"""Creator profiles edited since the candidate index was built: told apart by hashing, embedded anew, and put in
the index in memory, so that a match reads the profiles it was given. The index's files are never written.

An index records the content key of the profile text each of its vectors embedded (`CandidateIndex.profile_keys`).
Comparing those with the keys of the table's profile texts costs a hash per creator; only the profiles whose text
differs are embedded, through the matcher's embedder (and its cache). What the index then holds, per kind:

- flat: the rows of the rebuilt index, in place: retrieval and every feature are what an index rebuilt from the
  table would give (the same vectors, bit for bit on onnx: a text's vector depends on the text alone; on torch
  also on the thread count, unless the embedder fixes it).
- ivf: the edited vectors moved to their nearest list (`update_vectors`), as float16 residuals like every row;
  the lists' centres stay those trained on the old sample, so retrieval is what an index trained then and filled
  with the current profiles gives, not a rebuild's (which trains again).
- hnsw: the edited vectors overwrite their stored rows, so their similarities, in search and in every feature, are
  the current ones; the graph cannot be re-linked in place, so a search may still miss them: the warning says so.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from features.embeddings import Embedder, profile_keys
from features.tables import shown_ids
from features.text import creator_texts
from matcher.candidate_index import CandidateIndex

__all__ = ["SHOWN_IDS", "changed_profiles", "refresh_profiles"]

# Creator ids a warning names before it says how many more.
SHOWN_IDS = 5
REBUILD = "`creator-match index` rebuilds it (only changed profiles are embedded again)"


def changed_profiles(index: CandidateIndex, creators: pd.DataFrame, row_of: np.ndarray) -> np.ndarray:
    """The index rows whose creator's profile text in the table differs from the one the index embedded.

    Args:
        index: a candidate index with `profile_keys`.
        creators: the creators table (valid rows, reset index).
        row_of: the creator-table row of each index row, -1 where the table lacks that creator
            (`matcher.eligibility.Eligibility.row_of`).
    """
    present = np.flatnonzero(row_of >= 0)
    keys = profile_keys(creators)
    return present[keys[row_of[present]] != index.profile_keys[present]]


def refresh_profiles(
    index: CandidateIndex,
    creators: pd.DataFrame,
    row_of: np.ndarray,
    embedder: Embedder,
    shared: bool,
    directory: str | Path | None = None,
) -> tuple[CandidateIndex, np.ndarray]:
    """The index holding the table's current profiles, and the ids of the creators whose profile was edited since
    it was built (warned about). Unchanged profiles are hashed, never embedded.

    Args:
        index: the candidate index given to the matcher.
        creators: the creators table (valid rows, reset index).
        row_of: the creator-table row of each index row, -1 where the table lacks that creator.
        embedder: embeds the edited profiles (its cache first), with the index's model and backend.
        shared: the caller holds `index` and may use it elsewhere: it is copied before anything changes, so
            another matcher built on it keeps what it read.
        directory: where `index` was loaded from; an index written there before profile keys were kept is
            warned about, once, as one whose edits cannot be noticed.

    Returns:
        (index, ids): `index` itself when nothing changed (or it has no profile keys to compare); otherwise a copy
        when `shared`, else `index` changed in place, in memory only.

    Warns:
        UserWarning: how many creators' profiles changed since the index was built, the first SHOWN_IDS ids, and
            that `creator-match index` rebuilds it; or that an index written before profile keys cannot be checked.
    """
    none = np.zeros(0, dtype=object)  # no creator found changed
    if index.profile_keys is None:
        if directory is not None:
            warnings.warn(
                f"the index {directory} was written before indexes recorded the profiles they embedded, so profiles "
                "edited since it was built cannot be noticed and would be matched as they were; `creator-match "
                "index` rebuilds it with that record",
                UserWarning,
                stacklevel=3,
            )
        return index, none
    positions = changed_profiles(index, creators, row_of)
    if not len(positions):
        return index, none
    edited = creators.iloc[row_of[positions]]
    texts = list(creator_texts(edited))
    vectors = embedder.encode(texts)
    if shared:
        index = dataclasses.replace(
            index, index=faiss.clone_index(index.index), meta=dict(index.meta), profile_keys=index.profile_keys.copy()
        )
    _store(index, positions, vectors)
    index.profile_keys[positions] = profile_keys(edited)  # the index now holds these texts: a later check is quiet
    ids = edited["creator_id"].to_numpy(dtype=object)
    warnings.warn(_changed_message(ids, index.kind), UserWarning, stacklevel=3)
    return index, ids


def _store(index: CandidateIndex, positions: np.ndarray, vectors: np.ndarray) -> None:
    """Puts `vectors` in the index's rows `positions`, in memory: see the module's docstring for each kind."""
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if index.kind == "ivf":
        # Removed from their old list and encoded again into their nearest one, under the same ids (the direct
        # map, which `build` and `load` make, keeps row i at id i).
        faiss.extract_index_ivf(index.index).update_vectors(positions, vectors)
        return
    flat = faiss.downcast_index(index.index if index.kind == "flat" else index.index.storage)
    rows = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    rows[positions] = vectors  # a view of FAISS's own storage: the loaded copy, never the file


def _changed_message(ids: np.ndarray, kind: str) -> str:
    """The warning: how many profiles changed, the first ids, what the index of this kind now holds, and the fix."""
    count = len(ids)
    shown = shown_ids(list(ids), SHOWN_IDS)
    what = f"{count} creator's profile has" if count == 1 else f"{count} creators' profiles have"
    head = f"{what} changed since the index was built ({shown})"
    if kind == "hnsw":
        return (
            f"{head}: they were embedded anew and their similarities are the current ones, but an hnsw index cannot "
            f"re-link them in its graph, so retrieval may miss them; {REBUILD}"
        )
    return f"{head}: they were embedded anew and are matched on their current profiles; {REBUILD}"
