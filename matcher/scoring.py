"""Scoring: a chunk of campaigns -> candidates -> pair features -> ranker heads -> expected outcomes per pair.

`Scorer` holds only what scoring reads (the ranker's heads, the creator table and vectors, the candidate
index, the creators' records), so that an engine can copy it to another process and call `score_parquet`.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from features.contract import FUNNEL_STAGE
from features.embeddings import Embedder, campaign_vectors
from features.history import HISTORY_COLUMNS, CategoryPriors
from features.pairwise import pair_features, typical_audience
from features.records import BY_CATEGORY, BY_MARKETPLACE, CreatorRecords
from features.similarity import EVIDENCE_COLUMNS, TAG_FIT_THRESHOLD, TagSpace, semantic_features
from matcher.retrieval import Retrieval
from training.ranker import CreatorRanker, expected_outcomes

__all__ = [
    "SCORED_LAYOUT",
    "UNRELATED_MARGIN",
    "VIOLATION_FACTOR",
    "Scorer",
    "in_table_order",
    "interests_relate",
    "unrelated_after_related",
]

# What a scored pair holds, numbered: a batch's checkpointed chunks of another layout are scored again, not read.
SCORED_LAYOUT = 2
# With violations="demote", the score of a creator with disclosure violations is multiplied by this.
VIOLATION_FACTOR = 0.5
# With related_first, a campaign's unrelated creators without a record score at most this share of its lowest
# related one's.
UNRELATED_MARGIN = 0.5


def interests_relate(features: pd.DataFrame) -> np.ndarray:
    """Per pair, whether the creator's interests relate to the campaign: a tag fits the brief or its category by
    meaning (`fit_similarity`: cosine at least TAG_FIT_THRESHOLD, the category's name counting only where no other
    category the ranker knows fits the tag better; reasons quote the same), or the seller's history
    shows that creators with one of its tags take part in the category's campaigns more often than chance
    (`tag_participation_floor` above 1: more rows than chance gives, at the count's median lower bound; a tag the
    history never saw counts through the known tags close to it in meaning, `TagCategoryAffinity.with_stand_ins`,
    and is no evidence without them), or the creator is not a content creator
    (deal, coupon, cashback and loyalty sites sell across categories)."""
    by_meaning, by_history = _relation(features)
    return by_meaning | by_history | (features["content_creator"].to_numpy() == 0)


def _relation(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, whether a tag fits by meaning, and whether the category's history relates the creator's tags."""
    by_meaning = features["fit_similarity"].to_numpy(float) >= TAG_FIT_THRESHOLD
    return by_meaning, features["tag_participation_floor"].to_numpy() > 1.0


def unrelated_after_related(
    score: np.ndarray, campaign_index: np.ndarray, no_record: np.ndarray, related: np.ndarray
) -> np.ndarray:
    """Scores in which, per campaign, every pair of a creator with no record whose interests do not fit the brief
    (`related` False) is below every such pair whose interests do, whatever the reach.

    What a new creator will sell rests on the ranker's reading of reach, audience and interests, learned from other
    creators; how much weight interests get is whatever the seller's history taught, and a world where reach sold
    teaches little. That a creator's interests relate to the product is what the seller can check, so it comes
    first. The unrelated pairs' scores are scaled by one factor per campaign: their order among themselves stays.
    """
    # A related pair worth nothing cannot have anything placed under it and still be proposed.
    unrelated, fitting = no_record & ~related, no_record & related & (score > 0)
    if not unrelated.any() or not fitting.any():
        return score
    n = int(campaign_index.max()) + 1
    lowest, highest = np.full(n, np.inf), np.zeros(n)
    np.minimum.at(lowest, campaign_index[fitting], score[fitting])
    np.maximum.at(highest, campaign_index[unrelated], score[unrelated])
    # Only campaigns whose best unrelated pair reaches their lowest fitting one are scaled; dividing elsewhere
    # would overflow on the campaigns without an unrelated pair.
    factor = np.ones(n)
    scaled = highest >= lowest
    factor[scaled] = UNRELATED_MARGIN * lowest[scaled] / highest[scaled]
    return np.where(unrelated, score * factor[campaign_index], score)


def in_table_order(records: CreatorRecords, creator_ids: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Creators' records (`features.records.CreatorRecords`: HISTORY_COLUMNS per creator, per category and per
    marketplace) as scoring reads them: per creator in table order, zero without one, then indexed by
    (creator_id, category) and by (creator_id, marketplace)."""
    history = records.history.set_index("creator_id")[HISTORY_COLUMNS]
    overall = history.reindex(creator_ids).fillna(0.0).reset_index(drop=True)
    return (
        overall,
        records.category_history.set_index(list(BY_CATEGORY))[HISTORY_COLUMNS],
        records.marketplace_history.set_index(list(BY_MARKETPLACE))[HISTORY_COLUMNS],
    )


class _KeyedRecords:
    """Records indexed by (creator_id, key), a category or a marketplace, found per (creator table row, key) by an
    integer key.

    A request's few hundred pairs look up their creators' records this way: a reindex on (creator_id, category),
    which converted all 100,000 ids each time, took 3 to 10 ms (load 12-13).
    """

    def __init__(self, records: pd.DataFrame, creator_ids: np.ndarray) -> None:
        self.names = pd.Index(records.index.levels[1])
        creator_codes, key_codes = records.index.codes
        table_row = pd.Index(creator_ids).get_indexer(records.index.levels[0])
        row = table_row[creator_codes] if len(creator_codes) else np.zeros(0, dtype=np.int64)
        present = row >= 0
        keys = row[present].astype(np.int64) * len(self.names) + key_codes[present]
        order = np.argsort(keys, kind="stable")
        self.keys, self.rows = keys[order], np.flatnonzero(present)[order]
        self.values = records.to_numpy(float)

    def get(self, creator_index: np.ndarray, names: np.ndarray) -> np.ndarray:
        """HISTORY_COLUMNS of each (creator row, key name); zeros without a record."""
        out = np.zeros((len(creator_index), len(HISTORY_COLUMNS)))
        if len(self.keys):
            code = self.names.get_indexer(names)
            key = creator_index * len(self.names) + code
            at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
            found = (code >= 0) & (self.keys[at] == key)
            values = self.values[self.rows[at[found]]]
            out[found] = np.where(np.isnan(values), 0.0, values)  # as a reindex filled with zeros
        return out


class Scorer:
    """Turns campaigns into scored (campaign, creator) pairs: what slates are then assigned from.

    Args:
        ranker: the fitted ranker heads.
        embedder: the embedding model the ranker was trained with.
        creators: the creator table (valid rows, reset index).
        creator_vectors: the creators' profile vectors, in table order.
        tags: the creators' interest tags, embedded.
        history: each creator's record, in table order (`in_table_order`).
        category_history: each creator's record per category (`in_table_order`).
        marketplace_history: each creator's record per marketplace (`in_table_order`).
        priors: category priors of the ranker's history.
        retrieval: both candidate channels.
        violations: `demote` multiplies the score of creators with disclosure violations by VIOLATION_FACTOR.
        min_market_share: least audience share in the campaign's marketplaces (creators stating none pass).
        related_first: creators with no record whose interests do not fit the brief score below those whose do
            (`unrelated_after_related`).
    """

    def __init__(
        self,
        ranker: CreatorRanker,
        embedder: Embedder,
        creators: pd.DataFrame,
        creator_vectors: np.ndarray,
        tags: TagSpace,
        history: pd.DataFrame,
        category_history: pd.DataFrame,
        marketplace_history: pd.DataFrame,
        priors: CategoryPriors,
        retrieval: Retrieval,
        violations: str,
        min_market_share: float,
        related_first: bool,
    ) -> None:
        self.ranker = ranker
        self.embedder = embedder
        self.creators = creators
        self.creator_vectors = creator_vectors
        self.tags = tags
        self.history = history
        self.category_history = category_history
        self.creator_ids = creators["creator_id"].to_numpy()
        self._by_category = _KeyedRecords(category_history, self.creator_ids)
        self._by_marketplace = _KeyedRecords(marketplace_history, self.creator_ids)
        self.priors = priors
        self.retrieval = retrieval
        self.violations = violations
        self.min_market_share = min_market_share
        self.related_first = related_first
        # Once per run rather than per chunk: it reads every creator's audience.
        self.typical_audience = typical_audience(creators)
        self.funnel_stage = creators["creator_type"].map(FUNNEL_STAGE).array  # each creator's, by table row

    def category_records(self, creator_index: np.ndarray, categories: np.ndarray) -> pd.DataFrame:
        """HISTORY_COLUMNS of each (creator row, category) pair's record in that category; zeros without one."""
        return pd.DataFrame(self._by_category.get(creator_index, categories), columns=HISTORY_COLUMNS)

    def marketplace_records(
        self, creator_index: np.ndarray, campaign_index: np.ndarray, campaigns: pd.DataFrame
    ) -> pd.DataFrame:
        """HISTORY_COLUMNS of each pair's creator in the pair's campaign's marketplaces, summed over them (as
        `features.records.marketplace_history_as_of` sums them in training); zeros without a record."""
        markets = campaigns["marketplaces"].to_numpy(object)
        lengths = np.fromiter(map(len, markets), dtype=np.int64, count=len(markets))
        names = np.concatenate([np.asarray(m, dtype=object) for m in markets]) if len(markets) else np.zeros(0, object)
        per_pair = lengths[campaign_index]
        pair_starts = np.cumsum(per_pair) - per_pair
        # Each pair's marketplaces are its campaign's, laid out pair after pair.
        campaign_starts = (np.cumsum(lengths) - lengths)[campaign_index]
        at = np.repeat(campaign_starts - pair_starts, per_pair) + np.arange(per_pair.sum())
        values = self._by_marketplace.get(np.repeat(creator_index, per_pair), names[at])
        out = np.zeros((len(campaign_index), len(HISTORY_COLUMNS)))
        has = per_pair > 0
        if has.any():
            out[has] = np.add.reduceat(values, pair_starts[has], axis=0)
        return pd.DataFrame(out, columns=HISTORY_COLUMNS)

    def score_parquet(self, campaigns: pd.DataFrame, vectors: np.ndarray | None = None) -> bytes:
        """One chunk's scored pairs as Parquet bytes: what either engine commits."""
        buffer = io.BytesIO()
        self.score(campaigns, vectors).to_parquet(buffer, index=False)
        return buffer.getvalue()

    def score(self, campaigns: pd.DataFrame, vectors: np.ndarray | None = None) -> pd.DataFrame:
        """Every candidate pair of a chunk of campaigns (product types resolved), with its expected outcomes,
        score and the evidence its reason is written from; pairs under `min_market_share` are left out."""
        features, campaign_index, creator_index = self.features(campaigns, vectors)
        return self._scored(campaigns, features, campaign_index, creator_index)

    def features(
        self, campaigns: pd.DataFrame, vectors: np.ndarray | None = None
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Every candidate pair of a chunk of campaigns (product types resolved): the ranker's FEATURES with
        EVIDENCE_COLUMNS and `market_share` (`features.pairwise.pair_features`), each pair's campaign row and its
        creator's table row. Pairs under `min_market_share` are still in.

        `vectors` are the chunk's brief vectors when already embedded (`Matcher.match_many` embeds them once for
        product types and scoring); else they are embedded here, by an isolated embedder.
        """
        # An isolated embedder: its memory cache is the chunk's alone, and on torch it encodes on one thread.
        embedder = self.embedder.isolated()
        vectors = campaign_vectors(embedder, campaigns) if vectors is None else vectors
        campaign_index, creator_index = self.retrieval.candidates(campaigns, vectors)
        categories = campaigns["category"].to_numpy()[campaign_index]
        semantic = semantic_features(
            embedder,
            campaigns,
            vectors,
            self.creator_vectors,
            self.tags,
            campaign_index,
            creator_index,
            self.priors.fitted_categories(),
        )
        features = pair_features(
            campaigns,
            self.creators,
            campaign_index,
            creator_index,
            semantic,
            self.retrieval.topical_pairs(categories, creator_index),
            self.history.iloc[creator_index],
            self.category_records(creator_index, categories),
            self.marketplace_records(creator_index, campaign_index, campaigns),
            self.priors,
            self.typical_audience,
        )
        return features, campaign_index, creator_index

    def _scored(
        self, campaigns: pd.DataFrame, features: pd.DataFrame, campaign_index: np.ndarray, creator_index: np.ndarray
    ) -> pd.DataFrame:
        predicted = self.ranker.predict(features)
        # Each pair's campaign and creator values, taken column by column (dtypes kept) for the columns read:
        # taking every column of the 100,000 creators' table and of the campaigns cost more than the rest here.
        c = {name: campaigns[name].array.take(campaign_index) for name in _CAMPAIGN_COLUMNS}
        r = {name: self.creators[name].array.take(creator_index) for name in _CREATOR_COLUMNS}
        expected = expected_outcomes(predicted, np.asarray(c["price"], float))
        score = expected["expected_sales"].copy()
        violations = np.asarray(r["disclosure_violations"], dtype=np.int64)
        demoted = (violations > 0) & (self.violations == "demote")
        score[demoted] *= VIOLATION_FACTOR
        by_meaning, by_history = _relation(features)
        if self.related_first:
            no_record = features["hist_campaigns"].to_numpy() == 0
            score = unrelated_after_related(score, campaign_index, no_record, interests_relate(features))
        market = features["market_share"].to_numpy()
        keep = ~(market < self.min_market_share)  # NaN (not stated) passes
        frame = pd.DataFrame(
            {
                "campaign_id": c["campaign_id"],
                "creator_id": r["creator_id"],
                "creator_row": creator_index,
                "score": score,
                "p_click": predicted["p_click"].to_numpy(),
                "p_order": predicted["p_order"].to_numpy(),
                **expected,
                "expected_commission": expected["expected_sales"] * np.asarray(c["commission_rate"], float),
                "funnel_stage": self.funnel_stage.take(creator_index),
                "creator_type": r["creator_type"],
                "product_type": c["product_type"],
                "product_type_probability": np.asarray(c["product_type_probability"], float),
                "budget": np.asarray(c["budget"], float),
                "currency_log_scale": np.asarray(c["currency_log_scale"], float),
                "marketplaces": c["marketplaces"],
                "market_share": market,
                **{name: features[name] for name in EVIDENCE_COLUMNS},
                "hist_campaigns": features["hist_campaigns"],
                "hist_cat_campaigns": features["hist_cat_campaigns"],
                "category_known": self.priors.known(campaigns["category"])[campaign_index],
                "related_by_history": ~by_meaning & by_history,
                "disclosure_violations": violations,
                "demoted": demoted,
                "hist_ctr": features["hist_ctr_shrunk"],
                "hist_cvr": features["hist_cvr_shrunk"],
                "hist_clicks": self.history["hist_clicks"].to_numpy()[creator_index],
                "hist_impressions": self.history["hist_impressions"].to_numpy()[creator_index],
                "hist_orders": self.history["hist_orders"].to_numpy()[creator_index],
            }
        )
        return frame if keep.all() else frame[keep].reset_index(drop=True)


# What scoring writes of each pair's campaign and creator.
_CAMPAIGN_COLUMNS = (
    "campaign_id",
    "price",
    "commission_rate",
    "product_type",
    "product_type_probability",
    "budget",
    "currency_log_scale",
    "marketplaces",
)
_CREATOR_COLUMNS = ("creator_id", "creator_type", "disclosure_violations")
