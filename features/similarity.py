"""Semantic closeness of a campaign and a creator: the whole profile, and each interest tag against the brief's
phrases and the category, so that topical fit never hangs on a tag appearing verbatim in the brief."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.embeddings import Embedder, fixed_vectors
from features.text import brief_phrases, campaign_text, normalized_tags

__all__ = [
    "EVIDENCE_COLUMNS",
    "RIVAL_CATEGORY_MARGIN",
    "SAME_CATEGORY_SIMILARITY",
    "SEMANTIC_FEATURES",
    "TAG_FIT_THRESHOLD",
    "CampaignPhrases",
    "TagSpace",
    "matrix_product_rows",
    "semantic_features",
]

SEMANTIC_FEATURES = [
    "similarity",
    "tag_similarity",
    "category_similarity",
    "tag_fit",
    "fitting_tags",
    "fitting_tag_share",
]
# What reasons quote: the best-fitting tag, the brief phrase (or category) it fits, and how closely.
EVIDENCE_COLUMNS = ["fit_tag", "fit_phrase", "fit_similarity"]
# Cosine of all-MiniLM-L6-v2 from which an interest tag counts as fitting a brief phrase. Measured on the real
# fixture (tests/fixtures/real_creators.csv tags x real_titles.csv titles, `benchmarks/real_data.py`): of the
# related tag-title pairs 77% reach 0.40 (median 0.50), of the unrelated ones 3% (median 0.28, 90th centile 0.38).
TAG_FIT_THRESHOLD = 0.40
# A campaign's category name fits a tag only where no other category the ranker knows is closer to the tag by more
# than this: a broad name ("beauty & personal care", "pets") is close to tags of its neighbours ("car care" 0.48,
# "food" 0.43), which are closer still to their own category ("automotive", "grocery").
RIVAL_CATEGORY_MARGIN = 0.05
# Two category names at least this close are one category named twice, not rivals: "Pet Supplies" and "pets" 0.71,
# "Clothing, Shoes & Jewelry" and "fashion" 0.57. Of the contract's own names only kitchen and grocery (0.56) are.
SAME_CATEGORY_SIMILARITY = 0.55


class TagSpace:
    """Every distinct interest tag of a creator table, embedded once, and each creator's tags as row ids.

    A profile vector averages all of a creator's interests; the best single tag says whether one of them
    is exactly what the campaign is about, which matters for creators with several topics.
    """

    def __init__(self, embedder: Embedder, interest_tags: pd.Series) -> None:
        counts = np.fromiter(map(len, interest_tags), dtype=np.int64, count=len(interest_tags))
        # Each distinct tag is normalised once: a list of lower-cased lists for a million creators was about a
        # gigabyte of Python objects, for a vocabulary of a few thousand.
        flat = np.fromiter(itertools.chain.from_iterable(interest_tags), dtype=object, count=int(counts.sum()))
        codes, distinct = pd.factorize(flat, use_na_sentinel=False)
        (lowered,) = normalized_tags([distinct])
        self.vocabulary = sorted(set(lowered))
        position = {tag: i for i, tag in enumerate(self.vocabulary)}
        self.vectors = (
            embedder.encode(self.vocabulary) if self.vocabulary else np.zeros((0, embedder.dimension), np.float32)
        )
        # Kept for matrix_product_rows, which would otherwise convert the vocabulary on every chunk.
        self.vectors64 = self.vectors.astype(np.float64)
        self.tag_ids = np.array([position[tag] for tag in lowered], dtype=np.int64)[codes]
        self.offsets = np.concatenate([[0], np.cumsum(counts)])

    def _flat(self, query_index: np.ndarray, creator_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per (pair, tag) rows: which pair, which query row, which vocabulary tag; pairs' tags are contiguous."""
        starts, ends = self.offsets[creator_index], self.offsets[creator_index + 1]
        lengths = ends - starts
        pair_of = np.repeat(np.arange(len(creator_index)), lengths)
        within = np.arange(len(pair_of)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return pair_of, query_index[pair_of], self.tag_ids[starts[pair_of] + within]

    def best(self, queries: np.ndarray, query_index: np.ndarray, creator_index: np.ndarray) -> np.ndarray:
        """For each pair, the highest cosine between query `query_index[i]` and a tag of creator `creator_index[i]`."""
        return self.tag_fit(matrix_product_rows(queries, self.vectors64), query_index, creator_index)[0]

    def tag_fit(
        self, scores: np.ndarray, query_index: np.ndarray, creator_index: np.ndarray, threshold: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pair, from a (query x vocabulary) score table: the best tag's score, its vocabulary row (-1: no
        tags) and how many of the creator's tags score at least `threshold`."""
        pair_of, query_of, tag_of = self._flat(query_index, creator_index)
        flat = scores[query_of, tag_of]
        n = len(creator_index)
        best = np.full(n, np.nan, dtype=np.float32)
        which = np.full(n, -1, dtype=np.int64)
        lengths = np.diff(self.offsets)[creator_index]
        has = lengths > 0
        if has.any():
            starts = np.concatenate([[0], np.cumsum(lengths[has])[:-1]])
            best[has] = np.maximum.reduceat(flat, starts)
            # The first of a pair's tags reaching its maximum: reversed assignment leaves the first one standing.
            hit = np.flatnonzero(flat >= best[pair_of])[::-1]
            which[pair_of[hit]] = tag_of[hit]
        count = np.bincount(pair_of, flat >= threshold, minlength=n).astype(float)
        return best, which, count


def matrix_product_rows(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """`queries @ vectors.T` as float32, each row the same bits however many queries there are.

    BLAS splits a float32 product by its shape (one row is a matrix-vector product; small products have kernels
    of their own), which moves a row's last bits: one campaign scored alone and in a batch got tag similarities
    3e-8 apart, and a tree's split can turn on that. Summed in float64 and rounded to float32, a row no longer
    depends on the shape, unless a float64 sum lies within about 1e-16 of a float32 rounding point (odds of the
    order of 1e-9 per value; none of 1,079,568 values checked across shapes differed).
    """
    products = queries.astype(np.float64, copy=False) @ vectors.astype(np.float64, copy=False).T
    return products.astype(np.float32)


class CampaignPhrases:
    """Each campaign's brief cut into phrases plus its category, embedded once: the units a tag can fit.

    A whole brief's vector blurs its topics; a tag such as "gaming" is close to the phrase "wireless
    controller for PC and console" even when the brief also talks about price and shipping.

    Args:
        known_categories: the categories the ranker was trained on (`CategoryPriors.fitted_categories`): the rivals
            of a campaign's category name in `specific_tag_scores`; none: the name fits every tag as its cosine says.
    """

    def __init__(self, embedder: Embedder, campaigns: pd.DataFrame, known_categories: Sequence[str] = ()) -> None:
        self.texts: list[list[str]] = [
            [*brief_phrases(brief), str(category)]
            for brief, category in zip(campaigns["brief"], campaigns["category"], strict=True)
        ]
        flat = [text for texts in self.texts for text in texts]
        self.vectors = embedder.encode(flat) if flat else np.zeros((0, embedder.dimension), np.float32)
        counts = np.array([len(texts) for texts in self.texts], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        names = sorted({str(name) for name in known_categories})
        self.known = fixed_vectors(embedder, names) if names else np.zeros((0, embedder.dimension), np.float32)

    def tag_scores(self, tags: TagSpace) -> tuple[np.ndarray, np.ndarray]:
        """(campaign x vocabulary) best phrase cosine of each tag, and which phrase of the campaign it was."""
        (scores, which), _ = self._scores(tags, specific=False)
        return scores, which

    def specific_tag_scores(
        self, tags: TagSpace
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """`tag_scores`, and the same where the category's name is no phrase for a tag that another known category
        fits better by more than RIVAL_CATEGORY_MARGIN (`outfitted_by_rivals`)."""
        return self._scores(tags, specific=True)

    def _scores(
        self, tags: TagSpace, specific: bool
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        n, width = len(self.texts), len(tags.vocabulary)
        scores, which = np.zeros((n, width), dtype=np.float32), np.zeros((n, width), dtype=np.int16)
        specific = specific and len(self.known) > 0  # without known categories a name has no rival: the same scores
        apart = (np.zeros_like(scores), np.zeros_like(which)) if specific else (scores, which)
        rivalled: dict[str, np.ndarray] = {}
        columns = np.arange(width)
        for k in range(n):
            block = self.vectors[self.offsets[k] : self.offsets[k + 1]] @ tags.vectors.T
            which[k] = block.argmax(axis=0)
            scores[k] = block[which[k], columns]
            if specific:
                category = self.texts[k][-1]
                if category not in rivalled:
                    name = self.vectors[self.offsets[k + 1] - 1]
                    rivalled[category] = self.outfitted_by_rivals(name, block[-1], tags)
                block[-1, rivalled[category]] = -np.inf
                apart[1][k] = block.argmax(axis=0)
                apart[0][k] = block[apart[1][k], columns]
        return (scores, which), apart

    def outfitted_by_rivals(self, category: np.ndarray, fits: np.ndarray, tags: TagSpace) -> np.ndarray:
        """Per vocabulary tag, whether a known category other than `category` (a category name's vector, whose
        cosines to the tags are `fits`) is closer to it by more than RIVAL_CATEGORY_MARGIN."""
        rivals = self.known[self.known @ category < SAME_CATEGORY_SIMILARITY]
        if not len(rivals) or not len(fits):
            return np.zeros(len(fits), dtype=bool)
        return (rivals @ tags.vectors.T).max(axis=0) > fits + RIVAL_CATEGORY_MARGIN


def semantic_features(
    embedder: Embedder,
    campaigns: pd.DataFrame,
    campaign_vectors: np.ndarray,
    creator_vectors: np.ndarray,
    tags: TagSpace,
    campaign_index: np.ndarray,
    creator_index: np.ndarray,
    known_categories: Sequence[str] = (),
) -> pd.DataFrame:
    """SEMANTIC_FEATURES of each pair, plus EVIDENCE_COLUMNS for reasons.

    - `similarity`: profile-brief cosine; `tag_similarity`: best tag against the whole campaign text;
      `category_similarity`: best tag against the category;
    - `tag_fit`: best cosine of any of the creator's tags to any phrase of the brief or to its category;
      `fitting_tags` and `fitting_tag_share`: how many of its tags (and which share) reach TAG_FIT_THRESHOLD.

    Args:
        campaign_vectors, creator_vectors: rows aligned with the campaign and creator tables.
        campaign_index, creator_index: each pair's rows in those tables.
        known_categories: the categories the ranker was trained on: EVIDENCE_COLUMNS count the category's name
            only for the tags none of them fits better (`CampaignPhrases.specific_tag_scores`); the features count
            it as the ranker learned them.
    """
    categories = sorted(set(campaigns["category"]))
    category_vectors = fixed_vectors(embedder, [campaign_text(category, category) for category in categories])
    category_of = campaigns["category"].map({c: i for i, c in enumerate(categories)}).to_numpy(np.int64)
    phrases = CampaignPhrases(embedder, campaigns, known_categories)
    (scores, _), (specific, which_phrase) = phrases.specific_tag_scores(tags)
    fit, _, fitting = tags.tag_fit(scores, campaign_index, creator_index, TAG_FIT_THRESHOLD)
    # What reasons quote and the relation rule reads: a tag's fit with no rival category's help.
    evidence, tag_row, _ = tags.tag_fit(specific, campaign_index, creator_index)
    n_tags = np.diff(tags.offsets)[creator_index].astype(float)
    has = tag_row >= 0
    phrase_row = np.where(has, which_phrase[campaign_index, np.maximum(tag_row, 0)], 0)
    return pd.DataFrame(
        {
            "similarity": np.einsum("ij,ij->i", campaign_vectors[campaign_index], creator_vectors[creator_index]),
            "tag_similarity": tags.best(campaign_vectors, campaign_index, creator_index),
            "category_similarity": tags.best(category_vectors, category_of[campaign_index], creator_index),
            "tag_fit": fit,
            "fitting_tags": fitting,
            "fitting_tag_share": fitting / np.maximum(n_tags, 1.0),
            "fit_tag": np.where(has, np.asarray([*tags.vocabulary, ""], dtype=object)[tag_row], ""),
            "fit_phrase": [
                phrases.texts[k][p] if ok else "" for k, p, ok in zip(campaign_index, phrase_row, has, strict=True)
            ],
            "fit_similarity": evidence,
        }
    )
