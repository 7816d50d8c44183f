"""What history says about interests and categories: how creators with a tag do on a category's campaigns."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats
from sklearn.base import BaseEstimator
from sklearn.linear_model import PoissonRegressor
from sklearn.utils.validation import check_is_fitted

from features.history import CategoryPriors
from features.parameters import check_kinds, refuse
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


@dataclass(frozen=True)
class TagLists:
    """Interest-tag lists as codes into their distinct tags, normalised as everywhere (`normalized_tags`).

    What `TagCategoryAffinity.transform_lists` reads: a table's lists coded once serve every lookup after (each
    category of a million creators, each chunk's pairs), and only the distinct tags are normalised and looked up.

    Attributes:
        starts: where each list's codes begin in `codes`, and where the last ends (one more than the lists).
        codes: each tag's position in `names`, list after list.
        names: the distinct normalised tags.
    """

    starts: np.ndarray
    codes: np.ndarray
    names: np.ndarray

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
        return TagLists(starts, self.codes[at], self.names)


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

    def fit(self, rows: pd.DataFrame, interest_tags: pd.Series, priors: CategoryPriors) -> TagCategoryAffinity:
        """Learns from settled rows (with `category`) and each row's creator tags (aligned with `rows`).

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
        totals = grouped[["clicks", "orders", "prior_clicks", "prior_orders"]].sum()
        # Participation expected by chance: the tag's rows spread like all rows over categories.
        self.tag_rows_ = exploded["tag"].value_counts().astype(float)
        self.category_share_ = rows["category"].value_counts(normalize=True)
        joined = grouped.size().astype(float)
        self.table_ = pd.DataFrame(
            {
                "ctr": (totals["clicks"] + self.strength_clicks) / (totals["prior_clicks"] + self.strength_clicks),
                "cvr": (totals["orders"] + self.strength_orders) / (totals["prior_orders"] + self.strength_orders),
                "evidence": np.log1p(totals["prior_clicks"]),
                "participation": self._participation(joined, joined.index),
                "participation_floor": self._participation_floor(joined, joined.index),
            }
        )
        coefficients = self._fit_joint(rows, lowered, priors)
        self.table_ = self.table_.join(coefficients).fillna({"ctr_coef": 0.0, "cvr_coef": 0.0})
        return self

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

    def _participation(self, joined: pd.Series | np.ndarray, keys: pd.MultiIndex) -> np.ndarray:
        """Rows of (tag, category) over the rows chance would give, shrunk toward 1 by `strength_rows`."""
        return (np.asarray(joined, dtype=float) + self.strength_rows) / (self._chance_rows(keys) + self.strength_rows)

    def _participation_floor(self, joined: pd.Series, keys: pd.MultiIndex) -> np.ndarray:
        """Rows of (tag, category) over the rows chance would give, at the one-sided lower confidence bound of the
        rows' count (exact Poisson, `PARTICIPATION_CONFIDENCE`): above 1 only where the count is above chance's."""
        count = np.asarray(joined, dtype=float)
        lowest = np.where(count > 0, stats.chi2.ppf(1 - PARTICIPATION_CONFIDENCE, 2 * count) / 2, 0.0)
        return lowest / np.maximum(self._chance_rows(keys), np.finfo(float).tiny)

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

    def transform(self, interest_tags: pd.Series, categories: pd.Series) -> pd.DataFrame:
        """Per pair: the best and mean click lift and the best order lift of the creator's tags for the category.

        Unseen (tag, category) pairs count as lift 1 with no evidence. `tag_model_*` is the lift that the
        creator's tags together predict (see `_joint_lifts`). Columns: AFFINITY_COLUMNS.
        """
        return self.transform_lists(TagLists.of(interest_tags), categories)

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
                columns=["ctr", "cvr", "evidence", "participation", "participation_floor", "ctr_coef", "cvr_coef"],
            )
        )
        # A (tag, category) never seen together took part 0 times; an unknown tag has no evidence (lift 1).
        participation = np.array(found["participation"], dtype=float)
        unseen = np.isnan(participation)
        participation[unseen] = self._participation(np.zeros(unseen.sum()), keys[unseen])
        participation = participation[pair_keys]
        # A table learned before the floor existed relates interests by the shrunk lift above 1, as it did then.
        floor_column = "participation_floor" if "participation_floor" in found else "participation"
        # A (tag, category) never seen together, or an unknown tag, is no evidence of relation.
        floor = np.nan_to_num(np.array(found[floor_column], dtype=float), nan=0.0)[pair_keys]
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
