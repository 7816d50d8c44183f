"""Who may be proposed: the creator rules of a run, and the map between index rows and creator-table rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CASHBACK_TYPE
from matcher.candidate_index import CandidateIndex

__all__ = ["Eligibility", "vectors_by_row"]


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


def vectors_by_row(index: CandidateIndex, row_of: np.ndarray, n_rows: int) -> np.ndarray:
    """Creator vectors in table order, read back from the index (no re-embedding); zeros for rows it lacks."""
    stored = index.vectors()
    if len(stored) == n_rows and np.array_equal(row_of, np.arange(len(stored))):
        return stored  # the usual case, an index built from this table: no second copy of every vector
    vectors = np.zeros((n_rows, index.meta["dimension"]), dtype=np.float32)
    present = np.flatnonzero(row_of >= 0)
    vectors[row_of[present]] = stored[present]
    return vectors
