"""Candidate retrieval, two channels: creators whose profile reads like the brief (FAISS), and creators with a
proven record in the campaign's category."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

import numpy as np
import pandas as pd

from features.affinity import AFFINITY_COLUMNS, TagCategoryAffinity, TagLists
from features.embeddings import Embedder
from features.pairwise import record_lifts
from matcher.candidate_index import CandidateIndex
from matcher.eligibility import Eligibility

__all__ = ["ALLOWED_CACHE_SETS", "TOPICAL_BLOCK", "TOPICAL_CACHE_VALUES", "Retrieval", "proven_value"]

# Most values of the per-category tables Retrieval keeps (float64): 16 categories of 200,000 creators. Beyond it
# a category's table is computed for its proven channel and dropped: at a million creators the 16 tables were
# 0.9 GB, while a chunk's pairs are a few hundred thousand rows.
TOPICAL_CACHE_VALUES = 16 * 200_000 * len(AFFINITY_COLUMNS)
# Creators whose affinities are computed at once (each row's are its own): the (tag, category) keys and looked-up
# values of a whole million-creator table were a transient of most of a gigabyte.
TOPICAL_BLOCK = 100_000
# Sets of marketplaces whose search masks are kept (one boolean per indexed creator each: 1 MB at a million).
ALLOWED_CACHE_SETS = 16


def proven_value(creators: pd.DataFrame, history: pd.DataFrame, topical: pd.DataFrame) -> np.ndarray:
    """A campaign-agnostic estimate of each creator's value in a category, for retrieval only.

    Typical reach (past impressions per campaign, else stated average views, else a share of followers)
    x the creator's click and order lift over expectation x the best interest-tag lift for the category.
    Embedding similarity finds creators who sound like the brief; this finds those who have sold.

    Args:
        creators: the creator table.
        history: each creator's record (HISTORY_COLUMNS), in table order.
        topical: each creator's AFFINITY_COLUMNS for the category (`TagCategoryAffinity.transform`).
    """
    campaigns = history["hist_campaigns"].to_numpy(float)
    stated = pd.to_numeric(creators["avg_views"], errors="coerce").to_numpy(float)
    fallback = np.where(np.isnan(stated), creators["followers"].to_numpy(float) * 0.1, stated)
    reach = np.where(campaigns > 0, history["hist_impressions"].to_numpy(float) / np.maximum(campaigns, 1), fallback)
    ctr_lift, cvr_lift = record_lifts(history)
    return reach * ctr_lift * cvr_lift * topical["tag_affinity_ctr"].to_numpy() * topical["tag_affinity_cvr"].to_numpy()


class Retrieval:
    """Both channels over one creator table, with the per-category tables they compute once per run.

    Args:
        creators: the creator table (valid rows, reset index).
        history: each creator's record (HISTORY_COLUMNS), in table order.
        affinity: what the ranker's history teaches of interest tags per category.
        index: the candidate index.
        eligibility: who may be proposed.
        semantic_k: creators taken from the index per campaign by embedding similarity.
        proven_k: creators added per campaign for their proven value in its category.
        min_market_share: least audience share in a campaign's marketplaces for the similarity channel's search;
            creators who state no split pass. Scoring applies the same rule to every candidate; applied inside the
            search too, a campaign in a marketplace few creators reach still gets `semantic_k` who may be proposed.
        embedder: embeds the interest tags history never saw, to read them through a close known one
            (`TagCategoryAffinity.with_stand_ins`); None reads them as unknown.
    """

    def __init__(
        self,
        creators: pd.DataFrame,
        history: pd.DataFrame,
        affinity: TagCategoryAffinity,
        index: CandidateIndex,
        eligibility: Eligibility,
        semantic_k: int,
        proven_k: int,
        min_market_share: float = 0.0,
        embedder: Embedder | None = None,
    ) -> None:
        self.creators = creators
        self.history = history
        self.affinity = affinity
        self.index = index
        self.eligibility = eligibility
        self.semantic_k = semantic_k
        self.proven_k = proven_k
        self.min_market_share = min_market_share
        self.embedder = embedder
        self._allowed: dict[tuple[str, ...], np.ndarray] = {}
        self._proven: dict[str, np.ndarray] = {}
        self._topical: dict[str, np.ndarray] = {}

    def warm(self, categories: Iterable[str]) -> None:
        """Computes these categories' tables now rather than on their first campaign."""
        for category in categories:
            self.proven(category)

    def proven(self, category: str) -> np.ndarray:
        """Table rows of the eligible creators with the best proven value in a category (cached per run)."""
        if category not in self._proven:
            eligible = self.eligibility.in_table
            value = np.where(
                eligible,
                proven_value(
                    self.creators, self.history, pd.DataFrame(self.topical(category), columns=AFFINITY_COLUMNS)
                ),
                -np.inf,
            )
            k = min(self.proven_k, int(eligible.sum()))
            top = np.argpartition(-value, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
            self._proven[category] = top[np.isfinite(value[top])]
        return self._proven[category]

    @cached_property
    def tag_lists(self) -> TagLists:
        """The creators' interest tags, coded once for every category's and chunk's lookups, with the stand-ins of
        those history never saw."""
        coded = TagLists.of(self.creators["interest_tags"])
        return coded if self.embedder is None else self.affinity.with_stand_ins(coded, self.embedder)

    def topical(self, category: str) -> np.ndarray:
        """What history says of every creator's interests in a category (AFFINITY_COLUMNS).

        A creator's affinity depends on its tags and the category alone, so it is computed for the whole table
        and kept, to be gathered for each pair, while the kept tables hold at most TOPICAL_CACHE_VALUES values.
        """
        if category in self._topical:
            return self._topical[category]
        n = len(self.tag_lists)
        blocks = [np.arange(start, min(start + TOPICAL_BLOCK, n)) for start in range(0, max(n, 1), TOPICAL_BLOCK)]
        table = np.concatenate(
            [
                self.affinity.transform_lists(self.tag_lists.take(rows), np.full(len(rows), category, dtype=object))[
                    AFFINITY_COLUMNS
                ].to_numpy(float)
                for rows in blocks
            ]
        )
        if (len(self._topical) + 1) * table.size <= TOPICAL_CACHE_VALUES:
            self._topical[category] = table
        return table

    def topical_pairs(self, categories: np.ndarray, creator_index: np.ndarray) -> pd.DataFrame:
        """AFFINITY_COLUMNS of (category, creator row) pairs: gathered from the kept per-category tables, and
        computed for the pairs alone in the other categories (the same values: each row's are its own)."""
        values = np.empty((len(creator_index), len(AFFINITY_COLUMNS)))
        kept = np.isin(categories, list(self._topical))
        for category in np.unique(categories[kept]):
            pairs = np.flatnonzero(categories == category)
            values[pairs] = self._topical[category][creator_index[pairs]]
        if not kept.all():
            pairs = np.flatnonzero(~kept)
            frame = self.affinity.transform_lists(
                self.tag_lists.take(creator_index[pairs]), np.asarray(categories, dtype=object)[pairs]
            )
            values[pairs] = frame[AFFINITY_COLUMNS].to_numpy(float)
        return pd.DataFrame(values, columns=AFFINITY_COLUMNS)

    @cached_property
    def audience(self) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        """Each creator's stated audience share per marketplace: (column of each code, shares, whether stated)."""
        audiences = self.creators["audience_marketplaces"].to_numpy(object)
        stated = np.array([isinstance(a, dict) and bool(a) for a in audiences], dtype=bool)
        column = {code: j for j, code in enumerate(sorted({c for a in audiences[stated] for c in a}))}
        shares = np.zeros((len(audiences), len(column)), dtype=np.float64)
        for i in np.flatnonzero(stated):
            for code, share in audiences[i].items():
                shares[i, column[code]] = share
        return column, shares, stated

    def reaching(self, marketplaces: Iterable[str]) -> np.ndarray:
        """Per creator-table row, whether the creator's audience in these marketplaces is not under
        `min_market_share` (a creator who states no split passes, as in scoring)."""
        column, shares, stated = self.audience
        share = np.zeros(len(stated))
        for code in marketplaces:  # a column at a time: a million creators' rows of several columns are a copy
            if code in column:
                share += shares[:, column[code]]
        return ~stated | (share >= self.min_market_share)

    def _similar(self, campaigns: pd.DataFrame, vectors: np.ndarray) -> np.ndarray:
        """Index positions of each campaign's `semantic_k` most similar creators who may be proposed there."""
        if self.min_market_share <= 0:
            return self.index.search(vectors, self.semantic_k, self.eligibility.in_index)[1]
        # One search per set of marketplaces, with that set's audience rule in the search's mask.
        keys = [tuple(sorted(markets)) for markets in campaigns["marketplaces"]]
        positions = np.full((len(keys), max(1, min(self.semantic_k, len(self.index)))), -1, dtype=np.int64)
        for key in sorted(set(keys)):
            rows = np.array([k for k, other in enumerate(keys) if other == key])
            positions[rows] = self.index.search(vectors[rows], self.semantic_k, self._allowed_in(key))[1]
        return positions

    def _allowed_in(self, marketplaces: tuple[str, ...]) -> np.ndarray:
        """Per index row, whether the creator may be proposed in these marketplaces (kept per run: a batch's
        chunks meet the same few sets of marketplaces again and again)."""
        if marketplaces not in self._allowed:
            if len(self._allowed) >= ALLOWED_CACHE_SETS:
                self._allowed.pop(next(iter(self._allowed)))
            in_index, row_of = self.eligibility.in_index, self.eligibility.row_of
            allowed = in_index.copy()
            allowed[in_index] = self.reaching(marketplaces)[row_of[in_index]]
            self._allowed[marketplaces] = allowed
        return self._allowed[marketplaces]

    def candidates(self, campaigns: pd.DataFrame, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(campaign row, creator table row) pairs: the semantic top-k from FAISS united with proven creators."""
        positions = self._similar(campaigns, vectors)
        campaign_rows, creator_rows = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for k, category in enumerate(campaigns["category"]):
            found = positions[k][positions[k] >= 0]
            rows = np.union1d(self.eligibility.row_of[found], self.proven(category))
            campaign_rows.append(np.full(len(rows), k, dtype=np.int64))
            creator_rows.append(rows)
        return np.concatenate(campaign_rows), np.concatenate(creator_rows)
