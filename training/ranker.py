"""The ranker: expected impressions, click-through and orders per click of a (campaign, creator) pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from features.pairwise import CATEGORICAL_FEATURES, FEATURES, without_history
from features.parameters import check_kinds, refuse, whole_number
from features.threads import openmp_threads
from training.weighted_bins import WeightedQuantileBins, with_values

__all__ = [
    "HEAD_NAMES",
    "OUTCOMES",
    "PREDICTIONS",
    "CreatorRanker",
    "expected_outcomes",
    "expected_sales",
    "flat_heads",
    "heads_besides",
]

OUTCOMES = ["impressions", "clicks", "orders"]
# What `CreatorRanker.predict` returns, one column per head: the reach, click and order heads'.
PREDICTIONS = ["expected_impressions", "p_click", "p_order"]
# Each head as a reader of a warning knows it.
HEAD_NAMES = {"expected_impressions": "reach", "p_click": "click-through", "p_order": "orders-per-click"}
# Fewer rows than this are predicted on one thread: every tree of a head is its own OpenMP parallel region,
# whose start-up outweighs a few thousand rows of work (features.threads). Per-row results are the same bits.
_SERIAL_ROWS = 10_000
# The seeds numpy and the boosters take are below _SEEDS; one drawn from a RandomState (or, for None, from fresh
# entropy) is below _DRAWN_SEEDS, as scikit-learn's ensembles draw their members' seeds.
_SEEDS = 2**32
_DRAWN_SEEDS = np.iinfo(np.int32).max
# Signs that hold wherever the data come from: a better record (overall, in the category or in the campaign's
# marketplaces), or interests that sold better in the category, never lower the rate; more of the audience
# where the campaign runs, or interests closer in meaning to the product, never lower it either.
MONOTONE = {
    "click": {
        "hist_ctr_lift": 1,
        "hist_ctr_shrunk": 1,
        "hist_cat_ctr_lift": 1,
        "hist_market_ctr_lift": 1,
        "tag_model_ctr": 1,
        "expected_market_share": 1,
        "tag_fit": 1,
    },
    "order": {
        "hist_cvr_lift": 1,
        "hist_cvr_shrunk": 1,
        "hist_cat_cvr_lift": 1,
        "hist_market_cvr_lift": 1,
        "tag_model_cvr": 1,
        "expected_market_share": 1,
        "tag_fit": 1,
    },
}


class CreatorRanker(BaseEstimator):
    """Three gradient-boosted heads over pair features.

    - reach: expected impressions of the creator's content for the campaign (Poisson loss);
    - click: click-through per impression, fit on impressions as trials and clicks as successes;
    - order: orders per click, fit on clicks as trials and orders as successes.

    Trials can be capped per row so that a few huge creators weigh less; the success share of each row is
    kept, so the heads still estimate rates. By default they are not capped (the maximum-likelihood fit),
    which measured slightly better on simulated worlds.

    Cold start is learned, not assumed: a share of the rows of creators with a record are added once more with
    their history features as a creator without one would have them (`features.pairwise.without_history`), so
    the heads learn what reach, interests, audience and type say on their own instead of leaving every new
    creator at one flat estimate.

    By default each head is one booster that sees every feature. With `n_members` above 1 it is the average of
    that many boosters that look at a random `max_features` share of the features at every split, as a random
    forest does: a single booster splits again and again on the strongest features (reach, the creator's record),
    drawing the features makes every tree use weaker ones such as topical fit too, and averaging takes the draws'
    noise back out. Measured in docs/measurements.md: a point or two better with history, worse with none.

    Args:
        max_iter: boosting rounds per head.
        learning_rate: shrinkage per round.
        max_leaf_nodes: tree size.
        min_samples_leaf: smallest leaf, in rows.
        l2_regularization: leaf-value penalty.
        max_features: share of the features each split may choose from (1.0: all of them).
        n_members: boosters averaged per head, each drawing its features with its own seed.
        max_impressions_weight: impressions counted per row at most, for the click head; None: all.
        max_clicks_weight: clicks counted per row at most, for the order head; None: all.
        monotone: constrain the click and order heads to rise with the features in MONOTONE.
        cold_share: share of rows with a record added again without it (0: none).
        random_state: seed for the heads and for which rows are added without their record: a whole number
            (member i of a head gets random_state + i); or, as scikit-learn takes it, a numpy RandomState or None,
            from which each fit draws its whole-number seed (None: a new one every fit, so fits differ).
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 30,
        l2_regularization: float = 1.0,
        max_features: float = 1.0,
        n_members: int = 1,
        max_impressions_weight: float | None = None,
        max_clicks_weight: float | None = None,
        monotone: bool = True,
        cold_share: float = 0.3,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.n_members = n_members
        self.max_impressions_weight = max_impressions_weight
        self.max_clicks_weight = max_clicks_weight
        self.monotone = monotone
        self.cold_share = cold_share
        self.random_state = random_state

    def _head(self, kind: str, seed: int, weighted: bool = True):
        """The `kind` head's estimator; `weighted`, behind the bins it would find itself from the weights."""
        params = dict(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            max_features=self.max_features,
            categorical_features=[FEATURES.index(name) for name in CATEGORICAL_FEATURES],
            early_stopping=False,
            random_state=seed,
        )
        if self.monotone and kind in MONOTONE:
            params["monotonic_cst"] = [MONOTONE[kind].get(name, 0) for name in FEATURES]
        if kind == "reach":
            booster = self._averaged(HistGradientBoostingRegressor(loss="poisson", **params), seed)
        else:
            booster = self._averaged(HistGradientBoostingClassifier(**params), seed)
        if not weighted:
            return booster
        # Given weights, the booster bins them slowly on its own (training.weighted_bins); the fit is the same.
        bins = WeightedQuantileBins(skip=tuple(params["categorical_features"]))
        return Pipeline([("bins", bins), ("boost", booster)])

    def _averaged(self, booster, seed: int):
        """`booster` alone, or the average of `n_members` copies with their own seeds (probabilities, for rates)."""
        if self.n_members == 1:
            return booster
        members = [(f"member{i}", clone(booster).set_params(random_state=seed + i)) for i in range(self.n_members)]
        if isinstance(booster, HistGradientBoostingClassifier):
            return VotingClassifier(members, voting="soft")
        return VotingRegressor(members)

    def _fit_weighted(self, kind: str, seed: int, X: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> Pipeline:
        """The `kind` head fitted on rows of these weights, its bins found once per column."""
        X = with_values(X, weights)
        return self._head(kind, seed).fit(X, labels, bins__sample_weight=weights, boost__sample_weight=weights)

    @staticmethod
    def _binomial(X: np.ndarray, trials: np.ndarray, successes: np.ndarray, cap: float | None, rows: np.ndarray):
        keep = trials > 0
        X, trials, successes = X[keep], trials[keep], successes[keep]
        scale = np.minimum(trials, cap) / trials if cap is not None else np.ones(len(trials))
        scale = scale * rows[keep]
        weights = np.concatenate([successes * scale, (trials - successes) * scale])
        labels = np.concatenate([np.ones(len(X)), np.zeros(len(X))])
        stacked = np.vstack([X, X])
        nonzero = weights > 0
        return stacked[nonzero], labels[nonzero], weights[nonzero] / weights[nonzero].mean()

    def _with_cold_rows(
        self, X: pd.DataFrame, y: pd.DataFrame, weights: np.ndarray, seed: int
    ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        """X, y and the rows' weights, plus `cold_share` of the rows with a record once more as if the creator had
        none (with their own weights)."""
        known = np.flatnonzero(X["hist_campaigns"].to_numpy(float) > 0)
        n = round(self.cold_share * len(known))
        if n == 0:
            return X, y, weights
        picked = np.sort(np.random.default_rng(seed).choice(known, n, replace=False))
        cold = without_history(X.iloc[picked])
        return (
            pd.concat([X, cold], ignore_index=True),
            pd.concat([y, y.iloc[picked]], ignore_index=True),
            np.concatenate([weights, weights[picked]]),
        )

    def _check_params(self) -> None:
        """Refuses a parameter of the wrong type or range, naming it: the boosters' own checks named their
        parameters as HistGradientBoostingRegressor's, and a cap of 0 left a head no rows to fit."""
        check_kinds(self)
        for name, least in (("max_iter", 1), ("max_leaf_nodes", 2), ("min_samples_leaf", 1), ("n_members", 1)):
            if getattr(self, name) < least:
                raise refuse(name, getattr(self, name), f"a whole number of at least {least}")
        if self.learning_rate <= 0:
            raise refuse("learning_rate", self.learning_rate, "a value above 0")
        if self.l2_regularization < 0:
            raise refuse("l2_regularization", self.l2_regularization, "a value of at least 0")
        if not 0 < self.max_features <= 1:
            raise refuse("max_features", self.max_features, "a share in (0, 1]")
        for name in ("max_impressions_weight", "max_clicks_weight"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise refuse(name, getattr(self, name), "a value above 0, or None for no cap")
        if not 0 <= self.cold_share <= 1:
            raise refuse("cold_share", self.cold_share, "a value in [0, 1]")
        # A whole number is every member's seed once i is added, so the last member's must still be one.
        whole = whole_number(self.random_state)
        if whole and not 0 <= self.random_state <= _SEEDS - self.n_members:
            expected = f"a whole number from 0 to {_SEEDS - self.n_members} (2**32 - n_members)"
            raise refuse("random_state", self.random_state, expected)
        if not (whole or self.random_state is None or isinstance(self.random_state, np.random.RandomState)):
            raise refuse("random_state", self.random_state, "a whole number, a numpy RandomState or None")

    def _seed(self) -> int:
        """This fit's seed: `random_state` when it is a whole number, so a given seed fits as it always has; else
        drawn from it as scikit-learn's ensembles draw their members' seeds (`check_random_state`)."""
        if whole_number(self.random_state):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(_DRAWN_SEEDS))

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, sample_weight: np.ndarray | None = None) -> CreatorRanker:
        """Fits the three heads.

        Args:
            X: FEATURES columns, one row per past (campaign, creator) pair.
            y: `impressions`, `clicks` and `orders` of each pair.
            sample_weight: how much each pair counts (e.g. `training.selection`'s weights); None: alike. A rate
                head counts a pair's trials times its weight.

        Raises:
            ValueError: naming a parameter of the wrong type or range, the columns X or y lacks, an outcome that is
                not a count (how many rows), or weights of the wrong shape or sign.
        """
        self._check_params()
        seed = self._seed()
        X, y = _columns(X, "X", FEATURES, "feature"), _columns(y, "y", OUTCOMES, "outcome")
        if len(X) != len(y):
            raise ValueError(f"Got {len(X)} feature rows and {len(y)} outcome rows; expected the same number")
        _check_counts(y)
        weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if weights.shape != (len(X),) or not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise ValueError(f"Got sample_weight of shape {weights.shape}; expected {len(X)} finite values >= 0")
        X, y, weights = self._with_cold_rows(X.reset_index(drop=True), y.reset_index(drop=True), weights, seed)
        data = X.to_numpy(float)
        impressions, clicks, orders = (y[name].to_numpy(float) for name in OUTCOMES)
        if (clicks > impressions).any() or (orders > clicks).any():
            raise ValueError("Got clicks above impressions or orders above clicks; expected a funnel")
        if sample_weight is None:
            # Unweighted, the reach head is the bare booster fitted exactly as before weights existed. A ranker
            # pickled before its weighted reach head was binned has a bare one too: `predict` takes either.
            self.reach_ = self._head("reach", seed, weighted=False).fit(with_values(data, weights), impressions)
        else:
            self.reach_ = self._fit_weighted("reach", seed, data, impressions, weights)
        clicked = self._binomial(data, impressions, clicks, self.max_impressions_weight, weights)
        self.click_ = self._fit_weighted("click", seed, *clicked)
        ordered = self._binomial(data, clicks, orders, self.max_clicks_weight, weights)
        self.order_ = self._fit_weighted("order", seed, *ordered)
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        self.n_features_in_ = len(FEATURES)
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Returns `expected_impressions`, `p_click` (per impression) and `p_order` (per click) per row.

        Raises:
            ValueError: X is not a DataFrame, or lacks feature columns (named), as `fit` says.
        """
        check_is_fitted(self, "click_")
        data = _columns(X, "X", FEATURES, "feature").to_numpy(float)
        if not len(data):  # the heads refuse zero rows; a campaign with no candidate has nothing to predict
            return pd.DataFrame({name: np.zeros(0) for name in PREDICTIONS}, index=X.index)
        # The heads take missing values as they are and their parameters were checked when they were fitted:
        # scikit-learn's own finiteness and parameter checks cost a service request about a millisecond for nothing.
        with (
            openmp_threads(1 if len(data) < _SERIAL_ROWS else None),
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
        ):
            rates = (head.predict_proba(data)[:, 1] for head in (self.click_, self.order_))
            heads = (self.reach_.predict(data), *rates)
            return pd.DataFrame(dict(zip(PREDICTIONS, heads, strict=True)), index=X.index)


def _columns(data: pd.DataFrame, name: str, columns: list[str], kind: str) -> pd.DataFrame:
    """`data`'s `columns`, in that order, for fitting or predicting.

    Raises:
        ValueError: `data` is not a DataFrame (columns are matched by name, never by position), or lacks some of
            `columns` (named).
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"Got {name} as {type(data).__name__}; expected a DataFrame with the {kind} columns by name")
    missing = [column for column in columns if column not in data.columns]
    if missing:
        raise ValueError(f"{name} lacks {kind} columns {missing}")
    return data[columns]


def _check_counts(outcomes: pd.DataFrame) -> None:
    """Refuses outcomes that are not counts. A missing one is not taken as no row: the rate heads left out rows
    whose trials or successes were NaN, so half the clicks missing trained on the other half without a word, on
    whichever pairs happened to have them; which pairs to leave out is the caller's to decide.

    Raises:
        ValueError: naming the first such column, how many rows and the first row's label and value.
    """
    for column in outcomes.columns:
        values = pd.to_numeric(outcomes[column], errors="coerce").to_numpy(float, na_value=np.nan)
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            first = np.flatnonzero(bad)[0]
            raise ValueError(
                f"Got {bad.sum()} of {len(values)} rows whose {column} is not a count (the first: row "
                f"{outcomes.index[first]}, {outcomes[column].iloc[first]}); expected a finite number of at least 0 "
                f"in every row: leave out the pairs whose {column} is unknown"
            )


def expected_outcomes(predicted: pd.DataFrame, price: np.ndarray) -> dict[str, np.ndarray]:
    """Each pair's expected clicks, orders and sales from the heads' predictions (`CreatorRanker.predict`).

    Clicks are expected impressions x click-through, orders clicks x orders per click, sales orders x price:
    the one place this product is written, so that training's scores and the matcher's are the same numbers.
    """
    clicks = predicted["expected_impressions"].to_numpy() * predicted["p_click"].to_numpy()
    orders = clicks * predicted["p_order"].to_numpy()
    return {"expected_clicks": clicks, "expected_orders": orders, "expected_sales": orders * np.asarray(price, float)}


def expected_sales(predicted: pd.DataFrame, price: np.ndarray) -> np.ndarray:
    """The score: expected impressions x click-through x orders per click x price (see `expected_outcomes`)."""
    return expected_outcomes(predicted, price)["expected_sales"]


def flat_heads(ranker: BaseEstimator, X: pd.DataFrame) -> list[str]:
    """The heads of a fitted ranker that predict one value for every row of X, by `HEAD_NAMES`.

    A booster that found no split (too few rows for `min_samples_leaf` on each side: a seller's first few dozen
    pairs) predicts its training mean everywhere; when every head does, a match gives all of a campaign's
    candidates the same expected sales and cannot tell them apart.
    """
    predicted = ranker.predict(X)
    return [HEAD_NAMES[name] for name in PREDICTIONS if len(X) > 1 and np.ptp(predicted[name].to_numpy(float)) == 0]


def heads_besides(flat: list[str]) -> list[str]:
    """The heads, by `HEAD_NAMES`, that `flat` (some of `flat_heads`) does not name: what scores then rest on."""
    return [HEAD_NAMES[name] for name in PREDICTIONS if HEAD_NAMES[name] not in flat]
