"""Lookalikes: creators like a seller's chosen ones, by profile meaning, audience markets and record shape.

Three views of "alike", each in [0, 1] where defined:

- profile: cosine of the creator's profile vector with the seeds' centroid (the FAISS index, searched among
  eligible creators only);
- markets: overlap of audience_marketplaces (each normalised to shares of the stated audience, then the
  sum over markets of the smaller share), against the seeds' mean audience;
- record: cosine of the creator's per-category order shares with the seeds' (what kind of campaigns they sell
  in), from the settled history the ranker carries.

A lookalike's score is the mean of the views that are defined for it (a creator who states no audience, or has
no record yet, is judged on what is known rather than scored zero). Candidates come from two channels, like
matching: the creators closest to the centroid in the index, and, where the seeds have a record, the creators
whose record is shaped most like theirs.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import CREATOR_TYPES, MARKETPLACE_PATTERN, marketplace_hint
from features.errors import MatcherError
from features.parameters import refuse_type
from features.rows import vocabulary_word
from features.similarity import TagSpace
from features.tables import Reject, rejected_row_line
from matcher.candidate_index import CandidateIndex
from matcher.lookalike_views import audience_matrix, cosine, lookalike_reason, mean_defined, overlap, record_matrix

__all__ = ["LOOKALIKE_COLUMNS", "LOOKALIKE_SCHEMA", "LookalikeSpace", "UnknownCreator", "listed"]

LOOKALIKE_COLUMNS = [
    "rank",
    "creator_id",
    "score",
    "profile_similarity",
    "market_overlap",
    "record_similarity",
    "creator_type",
    "reasons",
]
LOOKALIKE_SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("creator_id", pa.string()),
        ("score", pa.float64()),
        ("profile_similarity", pa.float64()),
        ("market_overlap", pa.float64()),
        ("record_similarity", pa.float64()),
        ("creator_type", pa.string()),
        ("reasons", pa.string()),
    ]
)
# Candidates per channel: at least this many, or 4k for large k, so re-scoring has room to reorder.
MIN_POOL = 200
POOL_PER_RESULT = 4
# Creators a lookalike's profile similarity is ranked among, for its reason.
PROFILE_REFERENCE = 2_000


class UnknownCreator(ValueError, MatcherError):
    """A seed id that is not a valid row of the creators table: not in it at all, or in a row that was rejected."""


def listed(values: str | Iterable[str]) -> list[str]:
    """The values as a list; a single string is one value, not its characters. Each string is read without the
    spaces around it, as the creators table's ids and codes are: `--like " cr000053"` (a pasted id, a shell
    script's) was "not in the creators table", which holds it."""
    return [
        value.strip() if isinstance(value, str) else value
        for value in ([values] if isinstance(values, str) else values)
    ]


@dataclass
class LookalikeSpace:
    """What lookalike search reads of every creator, computed once per matcher.

    Args:
        creators: the creator table (valid rows).
        vectors: profile vectors in table order.
        index: the candidate index.
        row_of: table row of each index position (-1: not in the table).
        eligible_rows: creators that may be proposed at all (accepts campaigns, settings).
        tags: the table's interest tags, embedded.
        category_history: per (creator_id, category) HISTORY_COLUMNS of settled history.
        min_market_share: least audience share in the requested marketplaces (creators who state none pass).
        creator_rejects: the table's rejected rows, so that a seed among them is refused with its row's reasons
            rather than as an id the table does not hold.
    """

    creators: pd.DataFrame
    vectors: np.ndarray
    index: CandidateIndex
    row_of: np.ndarray
    eligible_rows: np.ndarray
    tags: TagSpace
    category_history: pd.DataFrame
    min_market_share: float
    creator_rejects: Sequence[Reject] = ()

    def __post_init__(self) -> None:
        ids = self.creators["creator_id"]
        self._position = pd.Series(np.arange(len(ids)), index=ids)
        self.markets_, self.audience_ = audience_matrix(self.creators["audience_marketplaces"])
        self.categories_, self.record_ = record_matrix(ids, self.category_history)

    def similar(
        self,
        creator_ids: str | Iterable[str],
        k: int = 20,
        marketplaces: str | Iterable[str] | None = None,
        creator_types: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The k creators most like the seeds, best first (LOOKALIKE_COLUMNS); the seeds themselves excluded.

        `creator_ids`, `marketplaces` and `creator_types` each take one value (a string) or several.

        Raises:
            UnknownCreator: a seed is not a valid row of the creators table (not in it, or its row rejected).
            ValueError: k, a marketplace code or a creator type is not usable.
            TypeError: `creator_ids` is neither a string nor an iterable of them, naming its type.
        """
        if not isinstance(creator_ids, str | Iterable):  # similar(5) failed as "'int' object is not iterable"
            raise refuse_type("creator_ids", creator_ids, "a creator_id or a list of them")
        seeds = self._seed_rows(listed(creator_ids))
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"Got k={k!r}; expected a whole number of at least 1")
        markets = None if marketplaces is None else listed(marketplaces)
        allowed = self._allowed(seeds, markets, None if creator_types is None else listed(creator_types))
        centroid = self.vectors[seeds].mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        seed_audience = mean_defined(self.audience_[seeds])
        seed_record = mean_defined(self.record_[seeds])
        pool = max(MIN_POOL, POOL_PER_RESULT * k)
        rows = self._by_profile(centroid, allowed, pool)
        if seed_record is not None:
            rows = np.union1d(rows, self._by_record(seed_record, allowed, pool))
        if not len(rows):
            return pd.DataFrame({name: pd.Series(dtype=object) for name in LOOKALIKE_COLUMNS})
        profile = self.vectors[rows] @ centroid
        market = overlap(self.audience_[rows], seed_audience)
        record = cosine(self.record_[rows], seed_record)
        score = np.nanmean(np.column_stack([profile, market, record]), axis=1)
        # Gathered before converting: converting every creator's id or type took milliseconds a request.
        ids = self.creators["creator_id"].iloc[rows].to_numpy()
        order = np.lexsort((ids, -score))[:k]  # ties by id: the same seeds always give the same list
        rows = rows[order]
        seed_tags = np.unique(np.concatenate([self.tags_of(s) for s in seeds]))
        standing = self._profile_standing(centroid, allowed, profile[order])
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(rows) + 1, dtype=np.int64),
                "creator_id": ids[order],
                "score": score[order],
                "profile_similarity": profile[order].astype(float),
                "market_overlap": market[order],
                "record_similarity": record[order],
                "creator_type": self.creators["creator_type"].iloc[rows].to_numpy(),
                "reasons": [
                    lookalike_reason(self, row, seed_tags, seed_audience, seed_record, m, r, (p, q), markets)
                    for row, m, r, p, q in zip(
                        rows, market[order], record[order], profile[order], standing, strict=True
                    )
                ],
            }
        )

    def _seed_rows(self, creator_ids: list[str]) -> np.ndarray:
        creator_ids = list(dict.fromkeys(creator_ids))
        if not creator_ids:
            raise ValueError("Got no seed creator; expected at least one creator_id")
        unknown = [cid for cid in creator_ids if cid not in self._position.index]
        if unknown:
            raise UnknownCreator(self._not_a_seed(unknown[0]))
        return self._position.loc[creator_ids].to_numpy(np.int64)

    def _not_a_seed(self, creator_id: str) -> str:
        """Why `creator_id` cannot be a seed: the table has no such id, or holds it in a rejected row (whose
        reasons are what the user has to fix; a table may hold an id in several rejected rows)."""
        rows: dict[int, list[Reject]] = {}
        for reject in self.creator_rejects:
            if reject.id == creator_id:
                rows.setdefault(reject.row, []).append(reject)
        if not rows:
            return f"Got creator_id {creator_id!r}; it is not in the creators table"
        reasons = "; ".join(rejected_row_line(row) for row in rows.values())
        return f"Got creator_id {creator_id!r}; it is in the creators table, but its row was rejected ({reasons})"

    def _allowed(
        self, seeds: np.ndarray, marketplaces: Iterable[str] | None, creator_types: Iterable[str] | None
    ) -> np.ndarray:
        """Table rows that may be returned: eligible, of the asked types and markets, not a seed."""
        allowed = self.eligible_rows.copy()
        allowed[seeds] = False
        if creator_types is not None:
            types = [vocabulary_word(t) for t in creator_types]  # `Social_Creator`, as a table's rows are read
            bad = [t for t in types if t not in CREATOR_TYPES]
            if bad:
                raise ValueError(f"Got creator_type {bad[0]!r}; expected one of {', '.join(CREATOR_TYPES)}")
            allowed &= self.creators["creator_type"].isin(types).to_numpy()
        if marketplaces is not None:
            codes = list(marketplaces)
            bad = [code for code in codes if not isinstance(code, str) or not MARKETPLACE_PATTERN.fullmatch(code)]
            if bad:
                raise ValueError(f"Got marketplace {bad[0]!r}; expected a code of two upper-case letters")
            unknown = [code for code in codes if code not in self.markets_ and marketplace_hint(code)]
            if unknown:  # a typo, not a market: searched, it would quietly keep only creators who state no split
                code = unknown[0]
                raise ValueError(
                    f"Got marketplace {code!r}; expected one of the contract's marketplace codes or one a creator "
                    f"states an audience in: no creator states an audience there ({marketplace_hint(code)})"
                )
            stated = ~np.isnan(self.audience_).all(axis=1)
            columns = [self.markets_.index(code) for code in codes if code in self.markets_]
            share = np.nansum(self.audience_[:, columns], axis=1) if columns else np.zeros(len(allowed))
            allowed &= ~stated | (share >= self.min_market_share)
        return allowed

    def unstated(self, marketplaces: str | Iterable[str] | None) -> list[str]:
        """The asked marketplace codes no creator states an audience in, each once, in the order asked."""
        codes = [] if marketplaces is None else listed(marketplaces)
        return [code for code in dict.fromkeys(codes) if code not in self.markets_]

    def _profile_standing(self, centroid: np.ndarray, allowed: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        """The share of the allowed creators whose profile is less like the seeds' than each `similarity`.

        What a cosine means depends on how profiles are written (a shared template lifts every pair), so a reason
        says where a lookalike stands among the catalogue instead of calling a raw cosine close. Measured on up
        to PROFILE_REFERENCE allowed creators, evenly spaced in table order, so the same seeds give the same words.
        """
        rows = np.flatnonzero(allowed)
        if not len(rows):
            return np.full(len(similarity), np.nan)
        rows = rows[np.linspace(0, len(rows) - 1, min(len(rows), PROFILE_REFERENCE)).astype(np.int64)]
        reference = np.sort(self.vectors[rows] @ centroid)
        return np.searchsorted(reference, similarity, side="left") / len(reference)

    def _by_profile(self, centroid: np.ndarray, allowed: np.ndarray, pool: int) -> np.ndarray:
        """Table rows of the allowed creators nearest the centroid, from the index."""
        present = self.row_of >= 0
        mask = present & allowed[np.maximum(self.row_of, 0)]
        if not mask.any():
            return np.array([], dtype=np.int64)
        _, positions = self.index.search(centroid[None, :], pool, mask)
        found = positions[0][positions[0] >= 0]
        return np.unique(self.row_of[found])

    def _by_record(self, seed_record: np.ndarray, allowed: np.ndarray, pool: int) -> np.ndarray:
        """Table rows of the allowed creators whose record is shaped most like the seeds'."""
        similarity = np.where(allowed, np.nan_to_num(self.record_ @ seed_record, nan=-1.0), -1.0)
        candidates = np.flatnonzero(similarity > 0)
        if len(candidates) > pool:
            candidates = candidates[np.argpartition(-similarity[candidates], pool - 1)[:pool]]
        return candidates

    def tags_of(self, row: int) -> np.ndarray:
        """Vocabulary ids of table row `row`'s interest tags."""
        return self.tags.tag_ids[self.tags.offsets[row] : self.tags.offsets[row + 1]]
