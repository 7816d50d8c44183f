"""Who may be proposed: the creator rules of a run, and the map between index rows and creator-table rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CASHBACK_TYPE
from matcher.candidate_index import CandidateIndex

__all__ = ["Eligibility", "VectorsByRow"]


@dataclass(frozen=True)
class Eligibility:
    """Which creators a run may propose, by index row and by table row.

    An index may cover creators missing from the table (an index built from an older or larger table): those
    are never proposed, and `row_of` says -1 for them.

    Attributes:
        row_of: the creator-table row of each index row, -1 where the table lacks that creator.
        in_index: per index row, whether the creator may be proposed (what FAISS filters on).
        in_table: per table row, whether the creator may be proposed (what the proven channel and lookalikes use).
    """

    row_of: np.ndarray
    in_index: np.ndarray
    in_table: np.ndarray

    @classmethod
    def of(
        cls, creators: pd.DataFrame, index_ids: np.ndarray | pd.Series, allow_cashback: bool, violations: str
    ) -> Eligibility:
        """The rules: accepts campaigns; no cashback site unless allowed; no disclosure violation with `exclude`.

        Args:
            creators: the creator table (valid rows, reset index).
            index_ids: the candidate index's creator ids, in index order.
            allow_cashback: whether cashback sites may be proposed.
            violations: `demote` (scored lower, see `matcher.scoring`) or `exclude` (never proposed).
        """
        position = pd.Series(np.arange(len(creators)), index=creators["creator_id"])
        row_of = position.reindex(index_ids).fillna(-1).to_numpy(np.int64)
        in_index = row_of >= 0
        rows = creators.iloc[row_of[in_index]]
        ok = rows["accepts_campaigns"].astype(bool).to_numpy(copy=True)
        if not allow_cashback:
            ok &= (rows["creator_type"] != CASHBACK_TYPE).to_numpy()
        if violations == "exclude":
            ok &= (rows["disclosure_violations"] == 0).to_numpy()
        in_index[np.flatnonzero(in_index)[~ok]] = False
        in_table = np.zeros(len(creators), dtype=bool)
        in_table[row_of[in_index]] = True
        return cls(row_of, in_index, in_table)


class VectorsByRow:
    """Creator vectors by creator-table row, gathered from the index when asked (no re-embedding, and no second
    copy of every vector: at a million creators that copy was 1.5 GB beside the index's own); zeros for rows
    the index lacks.

    `vectors[rows]` takes an integer array (or one row) and returns float32 rows, the index's stored values.

    Args:
        index: the candidate index.
        row_of: the creator-table row of each index row, -1 where the table lacks that creator.
        n_rows: rows in the creator table.
    """

    def __init__(self, index: CandidateIndex, row_of: np.ndarray, n_rows: int) -> None:
        self.index = index
        self.position = np.full(n_rows, -1, dtype=np.int64)  # the index row of each table row, -1: none
        present = np.flatnonzero(row_of >= 0)
        self.position[row_of[present]] = present
        self.shape = (n_rows, int(index.meta["dimension"]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray | int) -> np.ndarray:
        if np.ndim(rows) == 0:
            position = int(self.position[rows])
            return self.index.index.reconstruct(position) if position >= 0 else np.zeros(self.shape[1], np.float32)
        positions = self.position[np.asarray(rows, dtype=np.int64)]
        present = positions >= 0
        if present.all():
            return self.index.vectors_at(positions)
        vectors = np.zeros((len(positions), self.shape[1]), dtype=np.float32)
        vectors[present] = self.index.vectors_at(positions[present])
        return vectors
