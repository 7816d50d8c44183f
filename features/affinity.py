"""What history says about interests and categories: how creators with a tag do on a category's campaigns."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import sparse, stats
from sklearn.base import BaseEstimator
from sklearn.linear_model import PoissonRegressor
from sklearn.utils.validation import check_is_fitted

from features.embeddings import Embedder
from features.history import CategoryPriors
from features.parameters import check_kinds, refuse
from features.similarity import TAG_FIT_THRESHOLD
from features.text import normalized_tags

__all__ = [
    "AFFINITY_COLUMNS",
    "AFFINITY_FEATURES",
    "PARTICIPATION_CONFIDENCE",
    "PastPerformance",
    "TagCategoryAffinity",
    "TagLists",
]

AFFINITY_FEATURES = [
    "tag_affinity_ctr",
    "tag_affinity_ctr_mean",
    "tag_affinity_cvr",
    "tag_affinity_evidence",
    "tag_model_ctr",
    "tag_model_cvr",
    "tag_participation",
]
# What `TagCategoryAffinity.transform` gives: the ranker's features, and the participation lift at the lower bound of
# PARTICIPATION_CONFIDENCE, for the rule that a creator's interests relate.
AFFINITY_COLUMNS = [*AFFINITY_FEATURES, "tag_participation_floor"]
# A (tag, category) pair's participation counts as above chance when its rows' one-sided Poisson lower bound at
# this confidence is above what chance gives: a tag seen in 3 of a category's rows where chance gives 3 is not, 4
# where chance gives 3.5 is. The bound is the median's, not a significance test's: what it decides is a hard
# demotion (`matcher.scoring.unrelated_after_related`: below every related creator, whatever the reach), which should
# fall only where history shows no sign of the relation. At 0.95 three history-free worlds of each generator lost up
# to 30 points of the oracle's sales (docs/measurements.md), where chance-level counts still do not pass.
PARTICIPATION_CONFIDENCE = 0.5
# What a fitted table holds per (tag, category): the lifts read, and the sums they come from.
LIFT_COLUMNS = ["ctr", "cvr", "evidence", "participation", "participation_floor"]
SUM_COLUMNS = ["clicks", "orders", "prior_clicks", "prior_orders", "rows"]
# Unknown tags compared with the known vocabulary at once, in `with_stand_ins`: bounds the cosine matrix's memory.
STAND_IN_BLOCK = 1024


@dataclass(frozen=True)
class TagLists:
    """Interest-tag lists as codes into their distinct tags, normalised as everywhere (`normalized_tags`).

    What `TagCategoryAffinity.transform_lists` reads: a table's lists coded once serve every lookup after (each
    category of a million creators, each chunk's pairs), and only the distinct tags are normalised and looked up.

    Attributes:
        starts: where each list's codes begin in `codes`, and where the last ends (one more than the lists).
        codes: each tag's position in `names`, list after list.
        names: the distinct normalised tags.
        neighbours: per name (rows) and known tag of the table (columns, `tag_rows_`'s order), how much of that
            tag's history a name history never saw takes (`TagCategoryAffinity.with_stand_ins`); None, or an empty
            row, reads the name as itself.
    """

    starts: np.ndarray
    codes: np.ndarray
    names: np.ndarray
    neighbours: sparse.csr_matrix | None = None

    @classmethod
    def of(cls, interest_tags: Iterable[Sequence[str]]) -> TagLists:
        """The coded lists, in order."""
        lists = list(interest_tags)
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=object, count=int(lengths.sum()))
        raw_codes, raw = pd.factorize(flat)
        (normalised,) = normalized_tags([list(raw)])
        name_codes, names = pd.factorize(np.array(normalised, dtype=object))
        starts = np.concatenate([[0], np.cumsum(lengths)])
        return cls(starts, name_codes[raw_codes].astype(np.int64), np.asarray(names, dtype=object))

    def __len__(self) -> int:
        return len(self.starts) - 1

    def take(self, rows: np.ndarray) -> TagLists:
        """The lists of these rows, in this order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.diff(self.starts)[rows]
        starts = np.concatenate([[0], np.cumsum(lengths)])
        at = np.repeat(self.starts[:-1][rows] - starts[:-1], lengths) + np.arange(starts[-1])
        return replace(self, starts=starts, codes=self.codes[at])


def _joint_lifts(
    tags: list[list[str]], trials: np.ndarray, successes: np.ndarray, prior: float, heterogeneity: float, max_tags: int
) -> tuple[float, pd.Series]:
    """Log-lift of each tag in one category, fitted jointly: tags that co-occur share the credit.

    A Poisson model of successes with the prior expectation as exposure and one indicator per tag, so a
    generic tag ("deals") carried by creators who also have the category's own interests does not take
    their credit. Each tag's log-lift has a normal prior with standard deviation `prior`; rows weigh their
    expected successes, saturating at 1 / `heterogeneity` because creators differ beyond their tags. Only
    the `max_tags` most frequent tags get a lift, which keeps the solve small on open vocabularies.
    """
    keep = np.flatnonzero(trials > 0)
    if len(keep) < 2:
        return 0.0, pd.Series(dtype=float)
    rows = [tags[i] for i in keep]
    counts = pd.Series([t for r in rows for t in r]).value_counts(sort=False)
    vocabulary = sorted(counts.sort_values(ascending=False, kind="stable").index[:max_tags])
    position = {t: i for i, t in enumerate(vocabulary)}
    cells = [(i, position[t]) for i, r in enumerate(rows) for t in r if t in position]
    row_of, column_of = (np.array(v, dtype=np.int64) for v in zip(*cells, strict=True)) if cells else ([], [])
    design = sparse.csr_matrix((np.ones(len(row_of)), (row_of, column_of)), shape=(len(rows), len(vocabulary)))
    trials, successes = trials[keep], successes[keep]
    if not successes.any():
        # What the fit gives (a rate of 0: intercept -inf, no lift), without its log(0) start and solver fallback,
        # which warned twice per category of a small world on every build.
        return -np.inf, pd.Series(0.0, index=vocabulary)
    weights = trials / (1.0 + heterogeneity * trials)
    # The penalty is relative to the weighted mean deviance: alpha = 1 / (prior variance x total weight).
    model = PoissonRegressor(alpha=1.0 / (prior**2 * weights.sum()), solver="newton-cholesky", max_iter=100)
    model.fit(design, successes / trials, sample_weight=weights)
    return float(model.intercept_), pd.Series(model.coef_, index=vocabulary)


class TagCategoryAffinity(BaseEstimator):
    """Click-through and orders-per-click lift of (interest tag, category) pairs over the category prior.

    Embeddings say which interests sound close to a brief; this says which interests actually sold in a
    category, and it scores a creator with no record of their own through their tags.

    Besides each pair's own lift, a joint model per category says what a creator's tags predict together
    (`tag_model_ctr`, `tag_model_cvr`): a generic tag worn by creators of many categories gets no credit
    for the category tags it travels with.

    Participation says the same without outcomes (`tag_participation`): creators choose the campaigns they
    join, so an interest whose creators join a category's campaigns more often than chance belongs to it,
    while a generic one is spread over many categories.

    Args:
        strength_clicks: pseudo-clicks pulling a pair's click lift toward 1.
        strength_orders: pseudo-orders pulling a pair's order lift toward 1.
        prior_log_lift: prior standard deviation of a tag's log-lift in the joint model.
        heterogeneity: in the joint model a row counts at most 1 / heterogeneity expected successes.
        max_tags: the joint model's vocabulary per category, most frequent tags first.
        strength_rows: pseudo-rows pulling a pair's participation lift toward 1.
    """

    def __init__(
        self,
        strength_clicks: float = 50.0,
        strength_orders: float = 10.0,
        prior_log_lift: float = 1.0,
        heterogeneity: float = 1.0,
        max_tags: int = 2000,
        strength_rows: float = 5.0,
    ) -> None:
        self.strength_clicks = strength_clicks
        self.strength_orders = strength_orders
        self.prior_log_lift = prior_log_lift
        self.heterogeneity = heterogeneity
        self.max_tags = max_tags
        self.strength_rows = strength_rows

    def fit(
        self, rows: pd.DataFrame, interest_tags: pd.Series, priors: CategoryPriors, embedder: Embedder | None = None
    ) -> TagCategoryAffinity:
        """Learns from settled rows (with `category`) and each row's creator tags (aligned with `rows`).

        With an `embedder`, the tags learned are embedded too (`tag_vectors_`), so that a tag history never saw can
        be read through the known tag closest to it in meaning (`with_stand_ins`).

        Raises:
            ValueError: naming a parameter of the wrong type or range.
        """
        self._check_params()
        lowered = normalized_tags(interest_tags)
        exploded = pd.DataFrame(
            {
                "tag": lowered,
                "category": rows["category"].to_numpy(),
                "clicks": rows["clicks"].to_numpy(float),
                "orders": rows["orders"].to_numpy(float),
                "prior_clicks": rows["impressions"].to_numpy(float) * priors.ctr(rows["category"]),
                "prior_orders": rows["clicks"].to_numpy(float) * priors.cvr(rows["category"]),
            }
        ).explode("tag")
        grouped = exploded.groupby(["tag", "category"])
        sums = grouped[["clicks", "orders", "prior_clicks", "prior_orders"]].sum().assign(rows=grouped.size())
        # Participation expected by chance: the tag's rows spread like all rows over categories.
        self.tag_rows_ = exploded["tag"].value_counts().astype(float)
        self.category_share_ = rows["category"].value_counts(normalize=True)
        # The sums are kept: a stand-in's lifts are those of its sums counted in part (`transform_lists`).
        sums = sums.astype(float)
        self.table_ = pd.DataFrame(self._lifts(sums[SUM_COLUMNS], self._chance_rows(sums.index)), index=sums.index)
        self.table_ = self.table_.join(sums)
        coefficients = self._fit_joint(rows, lowered, priors)
        self.table_ = self.table_.join(coefficients).fillna({"ctr_coef": 0.0, "cvr_coef": 0.0})
        self.tag_vectors_ = None if embedder is None else embedder.encode(list(self.tag_rows_.index))
        return self

    def with_stand_ins(self, tag_lists: TagLists, embedder: Embedder) -> TagLists:
        """The lists with stand-ins for each tag history never saw: the known tags close to it in meaning (cosine at
        least TAG_FIT_THRESHOLD), whose history it takes in part.

        Creators name their interests in their own words ("pet", "interior"), and a history that learned "pet care"
        or "interior design" has nothing under those exact strings: without stand-ins such a creator reads as one
        whose interests history knows nothing of, below creators whose tag history happened to spell the same
        way, whatever they relate to. Each close known tag weighs its cosine's distance above the threshold over
        what is left to 1 (0 at the threshold, 1 for the same meaning); the unknown tag's rows, clicks and orders in
        a category are the weighted mean of theirs, counted at the part the closest one weighs, then shrunk and
        bounded as any pair's (`_lifts`); its joint-model log-lift likewise. A mean over the whole neighbourhood,
        not the nearest tag alone: what one neighbour's history owes to the meaning the two do not share ("cat mom"
        for "pet") is diluted by the others'.

        Unchanged when every tag is known, when none is close, or for a table fitted without an embedder.
        """
        check_is_fitted(self, "table_")
        known = getattr(self, "tag_vectors_", None)  # absent in rankers trained before stand-ins
        unknown = np.flatnonzero(self.tag_rows_.index.get_indexer(tag_lists.names) < 0)
        if known is None or not len(known) or not len(unknown):
            return tag_lists
        blocks = []
        for start in range(0, len(unknown), STAND_IN_BLOCK):
            cosine = embedder.encode(list(tag_lists.names[unknown[start : start + STAND_IN_BLOCK]])) @ known.T
            weight = np.clip((cosine - TAG_FIT_THRESHOLD) / (1.0 - TAG_FIT_THRESHOLD), 0.0, 1.0)
            total = weight.sum(axis=1, keepdims=True)
            part = weight.max(axis=1, keepdims=True)
            blocks.append(
                sparse.csr_matrix(np.divide(weight * part, total, out=np.zeros_like(weight), where=total > 0))
            )
        # Each unknown name's row put at its place among all names; known names' rows stay empty.
        placed = sparse.csr_matrix(
            (np.ones(len(unknown)), (unknown, np.arange(len(unknown)))), shape=(len(tag_lists.names), len(unknown))
        )
        return replace(tag_lists, neighbours=(placed @ sparse.vstack(blocks, format="csr")).tocsr())

    def _check_params(self) -> None:
        """Refuses a parameter of the wrong type or range, naming it: a pseudo-count of 0 left a pair with no prior
        clicks at 0 / 0 and a negative one below, a prior of 0 divided by zero, and a negative heterogeneity weighed
        a row's successes below zero."""
        check_kinds(self)
        for name in ("strength_clicks", "strength_orders", "strength_rows", "prior_log_lift"):
            if getattr(self, name) <= 0:
                raise refuse(name, getattr(self, name), "a value above 0")
        if self.heterogeneity < 0:
            raise refuse("heterogeneity", self.heterogeneity, "a value of at least 0")
        if self.max_tags < 1:
            raise refuse("max_tags", self.max_tags, "a whole number of at least 1")

    def _participation(self, joined: np.ndarray, chance: np.ndarray) -> np.ndarray:
        """Rows of (tag, category) over the rows chance would give, shrunk toward 1 by `strength_rows`."""
        return (joined + self.strength_rows) / (chance + self.strength_rows)

    def _lifts(self, sums: np.ndarray, chance: np.ndarray) -> dict[str, np.ndarray]:
        """LIFT_COLUMNS of (tag, category) pairs from their SUM_COLUMNS (one row each) and the rows chance gives
        them: shrunk toward 1 by the pseudo-counts, the participation floor at the one-sided lower confidence bound
        of the rows' count (exact Poisson, `PARTICIPATION_CONFIDENCE`: above 1 only where the count is above
        chance's)."""
        clicks, orders, prior_clicks, prior_orders, rows = np.asarray(sums, dtype=float).T
        lowest = np.where(rows > 0, stats.chi2.ppf(1 - PARTICIPATION_CONFIDENCE, 2 * rows) / 2, 0.0)
        return {
            "ctr": (clicks + self.strength_clicks) / (prior_clicks + self.strength_clicks),
            "cvr": (orders + self.strength_orders) / (prior_orders + self.strength_orders),
            "evidence": np.log1p(prior_clicks),
            "participation": self._participation(rows, chance),
            "participation_floor": lowest / np.maximum(chance, np.finfo(float).tiny),
        }

    def _borrowed(self, neighbours: sparse.csr_matrix, category: str) -> pd.DataFrame:
        """LIFT_COLUMNS and the joint model's log-lifts in a category for each row of `neighbours` (weights over
        the known tags, `with_stand_ins`): the weighted sums of the known tags' sums and chance rows there."""
        vocabulary = self.tag_rows_.index
        keys = pd.MultiIndex.from_arrays([vocabulary, np.full(len(vocabulary), category, dtype=object)])
        known = self.table_.reindex(keys)  # a known tag never seen with the category took part 0 times there
        sums = neighbours @ known[SUM_COLUMNS].fillna(0.0).to_numpy(float)
        chance = neighbours @ self._chance_rows(keys)
        coefficients = neighbours @ known[["ctr_coef", "cvr_coef"]].fillna(0.0).to_numpy(float)
        return pd.DataFrame(
            {**self._lifts(sums, chance), "ctr_coef": coefficients[:, 0], "cvr_coef": coefficients[:, 1]}
        )

    def _chance_rows(self, keys: pd.MultiIndex) -> np.ndarray:
        """The rows each (tag, category) would have if the tag's rows spread over categories like all rows."""
        return self.tag_rows_.reindex(keys.get_level_values(0)).fillna(0.0).to_numpy() * (
            self.category_share_.reindex(keys.get_level_values(1)).fillna(0.0).to_numpy()
        )

    def _fit_joint(self, rows: pd.DataFrame, lowered: list[list[str]], priors: CategoryPriors) -> pd.DataFrame:
        categories = rows["category"].to_numpy()
        prior_clicks = rows["impressions"].to_numpy(float) * priors.ctr(rows["category"])
        prior_orders = rows["clicks"].to_numpy(float) * priors.cvr(rows["category"])
        clicks, orders = rows["clicks"].to_numpy(float), rows["orders"].to_numpy(float)
        settings = (self.prior_log_lift, self.heterogeneity, self.max_tags)
        coefficients, intercepts = [], {}
        for category in pd.unique(categories):
            at = np.flatnonzero(categories == category)
            tags = [lowered[i] for i in at]
            ctr0, ctr = _joint_lifts(tags, prior_clicks[at], clicks[at], *settings)
            cvr0, cvr = _joint_lifts(tags, prior_orders[at], orders[at], *settings)
            intercepts[category] = (ctr0, cvr0)
            both = pd.DataFrame({"ctr_coef": ctr, "cvr_coef": cvr}).fillna(0.0)
            both.index = pd.MultiIndex.from_arrays([both.index, [category] * len(both)], names=["tag", "category"])
            coefficients.append(both)
        self.intercepts_ = pd.DataFrame.from_dict(intercepts, orient="index", columns=["ctr", "cvr"])
        return pd.concat(coefficients) if coefficients else pd.DataFrame(columns=["ctr_coef", "cvr_coef"])

    def transform(
        self, interest_tags: pd.Series, categories: pd.Series, embedder: Embedder | None = None
    ) -> pd.DataFrame:
        """Per pair: the best and mean click lift and the best order lift of the creator's tags for the category.

        Unseen (tag, category) pairs count as lift 1 with no evidence. `tag_model_*` is the lift that the
        creator's tags together predict (see `_joint_lifts`). With an `embedder`, a tag history never saw is read
        through its stand-in (`with_stand_ins`). Columns: AFFINITY_COLUMNS.
        """
        tag_lists = TagLists.of(interest_tags)
        if embedder is not None:
            tag_lists = self.with_stand_ins(tag_lists, embedder)
        return self.transform_lists(tag_lists, categories)

    def transform_lists(self, tag_lists: TagLists, categories: pd.Series | np.ndarray) -> pd.DataFrame:
        """`transform` of coded tag lists (`TagLists`), one per pair, with each pair's category."""
        check_is_fitted(self, "table_")
        lengths = np.diff(tag_lists.starts)
        category_codes, category_names = pd.factorize(np.asarray(categories, dtype=object), use_na_sentinel=False)
        width = max(len(category_names), 1)
        # Each distinct (tag, category) is looked up once, then spread over the tags that carry it.
        pair_keys, distinct = pd.factorize(tag_lists.codes * width + np.repeat(category_codes, lengths))
        keys = pd.MultiIndex.from_arrays(
            [tag_lists.names[distinct // width], np.asarray(category_names, dtype=object)[distinct % width]]
        )
        found = (
            self.table_.reindex(keys)
            if len(self.table_)
            else pd.DataFrame(
                index=keys,
                columns=[*LIFT_COLUMNS, *SUM_COLUMNS, "ctr_coef", "cvr_coef"],
            )
        )
        if tag_lists.neighbours is not None:
            # Tags history never saw read through their stand-ins (`with_stand_ins`), category by category.
            name_of, category_of = distinct // width, distinct % width
            has_stand_ins = np.diff(tag_lists.neighbours.indptr) > 0
            borrowed = np.flatnonzero(has_stand_ins[name_of])
            if len(borrowed):
                found = found.copy()
                for code in np.unique(category_of[borrowed]):
                    here = borrowed[category_of[borrowed] == code]
                    values = self._borrowed(tag_lists.neighbours[name_of[here]], category_names[code])
                    for column in values.columns:
                        found.iloc[here, found.columns.get_loc(column)] = values[column].to_numpy()
        # A (tag, category) never seen together took part 0 times; an unknown tag has no evidence (lift 1).
        participation = np.array(found["participation"], dtype=float)
        unseen = np.isnan(participation)
        participation[unseen] = self._participation(np.zeros(unseen.sum()), self._chance_rows(keys[unseen]))
        # A table learned before the floor existed relates interests by the shrunk lift above 1, as it did then.
        floor_column = "participation_floor" if "participation_floor" in found else "participation"
        # A (tag, category) never seen together, or an unknown tag, is no evidence of relation.
        floor = np.nan_to_num(np.array(found[floor_column], dtype=float), nan=0.0)
        participation, floor = participation[pair_keys], floor[pair_keys]
        pair = np.repeat(np.arange(len(lengths)), lengths)
        has = lengths > 0
        starts = (np.cumsum(lengths) - lengths)[has]

        def per_pair(values: np.ndarray, missing: float, reduce: np.ufunc = np.maximum) -> np.ndarray:
            """Each pair's tags reduced in one pass (a pair's tags are contiguous); `missing` fills gaps."""
            out = np.full(len(lengths), missing)
            if has.any():
                out[has] = reduce.reduceat(np.nan_to_num(values, nan=missing), starts)
            return out

        def per_tag(column: str) -> np.ndarray:
            return found[column].to_numpy(float)[pair_keys]

        ctr = per_tag("ctr")
        best = {
            "ctr": per_pair(ctr, 1.0),
            "ctr_mean": np.where(has, per_pair(ctr, 1.0, np.add) / np.maximum(lengths, 1), 1.0),
            "cvr": per_pair(per_tag("cvr"), 1.0),
            "evidence": per_pair(per_tag("evidence"), 0.0),
            "participation": per_pair(participation, 1.0),
            "participation_floor": per_pair(floor, 0.0),
        }
        base = self.intercepts_.reindex(np.asarray(category_names, dtype=object)).fillna(0.0)
        model = {
            kind: np.exp(
                np.bincount(pair, np.nan_to_num(per_tag(f"{kind}_coef")), minlength=len(lengths))
                + base[kind].to_numpy(float)[category_codes]
            )
            for kind in ("ctr", "cvr")
        }
        return pd.DataFrame(
            {
                "tag_affinity_ctr": best["ctr"],
                "tag_affinity_ctr_mean": best["ctr_mean"],
                "tag_affinity_cvr": best["cvr"],
                "tag_affinity_evidence": best["evidence"],
                "tag_model_ctr": model["ctr"],
                "tag_model_cvr": model["cvr"],
                "tag_participation": best["participation"],
                "tag_participation_floor": best["participation_floor"],
            }
        )


@dataclass
class PastPerformance:
    """What settled history says, as scoring needs it: category priors, each creator's record overall and
    per category, and which interests sold in which categories."""

    priors: CategoryPriors
    history: pd.DataFrame  # per creator_id: HISTORY_COLUMNS
    category_history: pd.DataFrame  # per (creator_id, category): HISTORY_COLUMNS
    affinity: TagCategoryAffinity
    # Which of the seller's products are non-standard (`features.product_type.ProductTypeModel`); None in
    # models trained before it existed.
    product_types: object = None
