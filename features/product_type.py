"""Whether a campaign's products are standard (commodity) or non-standard (high decision cost), as a probability.

Kinds of evidence a real seller has, each read as log-odds of non-standard:

- the brief's closeness to general descriptions of the two kinds (zero-shot, with the embedding model);
- the seller's own past campaigns that declared a type: a classifier on brief embeddings, when there are enough;
- the price against the prices of the seller's campaigns in the same category;
- the price against all the seller's campaigns: a product that costs enough to be researched is non-standard;
- the kinds the seller declared in the same category (the same category holds both kinds, in shares of its own);
- how content creators converted against deal and coupon sites on the seller's most similar past campaigns.

With no declared campaigns the signals are added with fixed weights. When the seller declared enough campaigns of
each kind, the weights (and a base rate) are learned from those campaigns instead, by a logistic regression on the
signals, the classifier's taken out of fold: how much each signal says differs from one seller to the next.

No signal is a word list: "set", "kit" or "pack" appear on both kinds of product.

A price is only compared with prices in its currency. The contract has no currency column; a campaign's marketplaces
are the closest it comes to one, so both price signals read a campaign's price only against campaigns sold in its
price zone: the marketplaces whose prices in the same categories agree (`price_zones`; `ProductTypeModel.past_prices`,
`resolve_product_types`). A ranker fitted on a world priced like US dollars read every rupee price of a seller's
campaigns in IN as dear, a 75-rupee eyebrow pencil included; read by marketplace alone, a seller's US and CA
campaigns, or a world that prices every marketplace alike, split into pools too small to place a price in.

A brief is read with its category, as one vector (`features.embeddings.campaign_vectors`): the vector scoring reads
too, so a request embeds its campaign once. Measured against the brief alone (benchmarks/product_type.py): real
titles 0.895 against 0.888; `auto` campaigns, seeds 0-3, 0.794 against 0.787 on `alt`, 0.985 against 0.989 on `main`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from features.contract import CONTENT_STAGES, FUNNEL_STAGE, PRODUCT_TYPES
from features.embeddings import Embedder, campaign_vectors, fixed_vectors
from features.parameters import check_kinds, refuse
from features.similarity import matrix_product_rows

__all__ = [
    "KIND_DESCRIPTIONS",
    "UNCERTAIN",
    "ProductTypeModel",
    "content_conversion_lift",
    "kind_vectors",
    "price_reference",
    "price_table",
    "price_zones",
    "reference_prices",
    "resolve_product_types",
]

# The two kinds as DOMAIN.md defines them, in general words (several per kind, so no single phrasing decides).
KIND_DESCRIPTIONS = {
    "standard": (
        "A commodity defined by its specification, one unit as good as another from a rival brand.",
        "An everyday basic bought on price and convenience and reordered without a second thought.",
        "A replacement part, refill or consumable supply.",
        "A cheap accessory such as a cable, charger, adapter or battery.",
        "Office and household supplies such as paper, staples, tape and storage boxes.",
    ),
    "non_standard": (
        "A product chosen by taste, style and personal look.",
        "A considered purchase that shoppers research and compare before buying.",
        "An expensive device or appliance with features worth explaining, such as a laptop, phone or television.",
        "Apparel, beauty, home decor or collectibles where design, fit and trust matter.",
        "Premium gear from a brand people trust, worth showing in a review.",
    ),
}
# Probabilities of non-standard between these bounds are reported as uncertain.
UNCERTAIN = (0.35, 0.65)
# The evidence columns, in the order the learned combination reads them.
SIGNALS = ("zero_shot", "classifier", "price", "price_level", "category_kinds", "outcomes")


def kind_vectors(embedder: Embedder) -> dict[str, np.ndarray]:
    """KIND_DESCRIPTIONS embedded, per kind (what `ProductTypeModel.fit` and `evidence` compare briefs with)."""
    return {kind: fixed_vectors(embedder, texts) for kind, texts in KIND_DESCRIPTIONS.items()}


def _mid_rank(known: np.ndarray, price: float) -> float:
    """Where `price` sits among the sorted `known` prices, from -1 (below all) to 1 (above all); ties count half."""
    below = np.searchsorted(known, price, side="left")
    at_or_below = np.searchsorted(known, price, side="right")
    return (below + at_or_below) / len(known) - 1.0


def content_conversion_lift(rows: pd.DataFrame, creators: pd.DataFrame, strength: float = 2.0) -> pd.DataFrame:
    """Per past campaign, log of content creators' orders per click over conversion creators' (deals, coupons).

    Both rates are shrunk toward the campaign's overall rate by `strength` pseudo-orders, so a campaign with
    few clicks says little. Campaigns without clicks from both kinds are left out.

    Args:
        rows: settled performance rows (campaign_id, creator_id, clicks, orders).
        creators: the creator table (creator_id, creator_type).
    """
    stage = rows["creator_id"].map(creators.set_index("creator_id")["creator_type"]).map(FUNNEL_STAGE)
    group = np.where(stage.isin(CONTENT_STAGES), "content", np.where(stage.eq("conversion"), "conversion", ""))
    frame = rows.assign(group=group)[lambda f: f["group"] != ""]
    sums = frame.groupby(["campaign_id", "group"])[["clicks", "orders"]].sum().unstack("group", fill_value=0)
    if sums.empty or "content" not in sums["clicks"] or "conversion" not in sums["clicks"]:
        return pd.DataFrame({"campaign_id": [], "lift": []})
    clicks, orders = sums["clicks"], sums["orders"]
    both = (clicks["content"] > 0) & (clicks["conversion"] > 0)
    clicks, orders = clicks[both], orders[both]
    rate = (orders.sum(axis=1) + 0.5) / (clicks.sum(axis=1) + 1.0)

    def shrunk(kind: str) -> pd.Series:
        return (orders[kind] + strength) / (clicks[kind] + strength / rate)

    lift = np.log(shrunk("content") / shrunk("conversion"))
    return pd.DataFrame({"campaign_id": lift.index.to_numpy(), "lift": lift.to_numpy(float)})


def price_table(campaigns: pd.DataFrame, past: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Sorted prices per category of `campaigns`, joined with `past` ones."""
    past = past or {}
    # Numpy, not a pandas groupby: a service request's one campaign paid about half a millisecond for it.
    category = campaigns["category"].to_numpy(dtype=object)
    price = campaigns["price"].to_numpy(float)
    known = pd.notna(category)
    found = {str(c): price[known & (category == c)] for c in pd.unique(category[known])}
    empty = np.zeros(0)
    return {c: np.sort(np.concatenate([past.get(c, empty), found.get(c, empty)])) for c in set(past) | set(found)}


def reference_prices(
    campaigns: pd.DataFrame, past: dict[str, np.ndarray], enough: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The prices a run's campaigns are read against: per category, and all of them (the price level).

    The past campaigns' prices alone wherever they number at least `enough` (a category the seller has run
    campaigns in, or the seller's history as a whole), so that a campaign resolves the same alone, in the service,
    as among any other campaigns of a nightly file; where they are fewer, this run's prices join them, as a
    catalogue with no history (or a category new to it) has nothing else to place a price in. Both are those of one
    currency: `resolve_product_types` passes the campaigns, run and past, that share a marketplace with those read.
    """
    joined = price_table(campaigns, past)
    by_category = {c: past[c] if len(past.get(c, ())) >= enough else prices for c, prices in joined.items()}
    known = np.sort(np.concatenate([np.zeros(0), *past.values()]))
    level = known if len(known) >= enough else np.sort(np.concatenate([np.zeros(0), *joined.values()]))
    return by_category, level


def price_reference(past: dict[str, np.ndarray], enough: int, marketplaces: Sequence[str] | None = None) -> str:
    """The products `reference_prices` reads the price level against, as a reason names them: those sold in
    `marketplaces` (the campaign's, whose prices alone were read), or, with None, all of them."""
    known = sum(map(len, past.values()))
    where = "" if marketplaces is None else f" sold in {_one_of(marketplaces)}"
    if known >= enough:
        return f"the products the ranker learned from{where}"
    if known:
        return f"the products{where} of this run and of the past campaigns the ranker learned from"
    return f"this run's products{where}"


def _one_of(codes: Sequence[str]) -> str:
    """`US`, `US or CA`, `UK, DE or FR`."""
    return f"{', '.join(codes[:-1])} or {codes[-1]}" if len(codes) > 1 else codes[0]


def _marketplace_rows(marketplaces: Iterable[Iterable[str]]) -> dict[str, np.ndarray]:
    """Per marketplace code, which of the campaigns (whose `marketplaces` these are, in order) are sold there."""
    sets = [set(codes) for codes in marketplaces]
    return {code: np.array([code in own for own in sets], bool) for code in sorted(set().union(*sets))}


# How far apart (as a factor) two marketplaces' prices in the same categories may lie and still be read as one
# currency. The contract's marketplaces price in USD, CAD, AUD, GBP and EUR, within 1.9 of each other, and in MXN and
# JPY, 17 and 150 to the dollar; real amazon.in listings of one coarse category drawn from two independent scrapes
# (tests/fixtures/real_titles*.csv, all in rupees) differ by 1.9 (sports) and 2.8 (electronics), and by 10.6 in
# "home" (appliances in one, decor in the other), which stays apart: read apart, a price is read as without this.
SAME_CURRENCY_FACTOR = 3.0
# Campaigns on each side, over the categories both sell in, before two marketplaces' prices are compared at all.
MIN_SHARED_PRICES = 3


def price_zones(rows: pd.DataFrame, settled: Iterable[frozenset[str]] = ()) -> dict[str, frozenset[str]]:
    """Marketplaces whose prices are read as one currency, per marketplace code of `rows`.

    The contract names no currency. Two groups of marketplaces join when, over the categories both sell in, the
    median of their per-category median prices' ratios lies within `SAME_CURRENCY_FACTOR` (each side with at least
    `MIN_SHARED_PRICES` campaigns there): a seller's US and CA campaigns read together, its JP or IN ones apart. The
    closest pair joins first, then the pairs are compared again.

    Args:
        rows: campaigns (category, price, marketplaces).
        settled: groups decided before (the past's, `ProductTypeModel.price_zones_`): kept whole, and never joined
            with each other, so that a run changes no zone its history decided; a marketplace outside them may
            join one.
    """
    codes = [sorted(set(own)) for own in rows["marketplaces"]]
    counts = [len(own) for own in codes]
    exploded = pd.DataFrame(
        {
            "row": np.repeat(np.arange(len(rows)), counts),
            "code": [code for own in codes for code in own],
            "category": np.repeat(rows["category"].to_numpy(dtype=object), counts),
            "log_price": np.repeat(np.log(rows["price"].to_numpy(float)), counts),
        }
    )
    fixed = [frozenset(zone) for zone in settled]
    seen = set().union(*fixed) if fixed else set()
    groups = fixed + [frozenset([code]) for code in sorted(set(exploded["code"]) - seen)]
    closed = [bool(zone & seen) for zone in groups]
    while True:
        best = None
        for i, j in itertools.combinations(range(len(groups)), 2):
            if closed[i] and closed[j]:
                continue
            gap = _log_price_gap(exploded, groups[i], groups[j])
            if gap is not None and gap <= math.log(SAME_CURRENCY_FACTOR) and (best is None or gap < best[0]):
                best = (gap, i, j)
        if best is None:
            break
        _, i, j = best
        groups[i], closed[i] = groups[i] | groups[j], closed[i] or closed[j]
        del groups[j], closed[j]
    return {code: zone for zone in groups for code in zone}


def _log_price_gap(exploded: pd.DataFrame, one: frozenset[str], other: frozenset[str]) -> float | None:
    """|median over shared categories of the difference of median log prices| of two groups of marketplaces;
    None with fewer than MIN_SHARED_PRICES campaigns on a side in the categories they share."""
    medians = []
    for zone in (one, other):
        # A campaign sold in several of a group's marketplaces is one price, counted once.
        sold = exploded[exploded["code"].isin(zone)].drop_duplicates("row")
        medians.append(sold.groupby("category")["log_price"].agg(["median", "size"]))
    shared = medians[0].index.intersection(medians[1].index)
    if min(side.loc[shared, "size"].sum() for side in medians) < MIN_SHARED_PRICES:
        return None
    return abs(_median_category_gap(medians[0]["median"], medians[1]["median"]))


def _median_category_gap(one: pd.Series, other: pd.Series) -> float | None:
    """The median, over the categories both index, of `one`'s median log price less `other`'s; None with none
    shared."""
    shared = one.index.intersection(other.index)
    return float(np.median(one[shared] - other[shared])) if len(shared) else None


class ProductTypeModel(BaseEstimator):
    """What a seller's campaigns say about which of their products are non-standard.

    Args:
        min_declared: declared campaigns of each kind needed before the brief classifier is used.
        C: inverse regularisation strength of the brief classifier.
        combiner_C: inverse regularisation strength of the learned combination of the signals.
        zero_shot_scale: log-odds per unit of cosine by which the brief is closer, on average, to one kind's
            descriptions.
        price_weight: log-odds at the top (or, negated, the bottom) of the category's price range.
        price_level_weight: log-odds at the top (or, negated, the bottom) of the prices of all the seller's campaigns.
        min_category_prices: campaigns in a category (or, for the price level, in all) needed before price counts.
        outcome_weight: log-odds per unit of log-lift of content creators over conversion creators.
        neighbours: most similar past campaigns whose outcomes are averaged.
        min_neighbour_similarity: cosine below which a past campaign is not similar enough to count.
    """

    def __init__(
        self,
        min_declared: int = 10,
        C: float = 1.0,
        combiner_C: float = 10.0,
        zero_shot_scale: float = 12.0,
        price_weight: float = 0.75,
        price_level_weight: float = 4.0,
        min_category_prices: int = 5,
        outcome_weight: float = 1.5,
        neighbours: int = 10,
        min_neighbour_similarity: float = 0.5,
    ) -> None:
        self.min_declared = min_declared
        self.C = C
        self.combiner_C = combiner_C
        self.zero_shot_scale = zero_shot_scale
        self.price_weight = price_weight
        self.price_level_weight = price_level_weight
        self.min_category_prices = min_category_prices
        self.outcome_weight = outcome_weight
        self.neighbours = neighbours
        self.min_neighbour_similarity = min_neighbour_similarity

    def fit(
        self,
        campaigns: pd.DataFrame,
        vectors: np.ndarray,
        outcomes: pd.DataFrame | None = None,
        descriptions: dict[str, np.ndarray] | None = None,
    ) -> ProductTypeModel:
        """Learns from past campaigns.

        Args:
            campaigns: campaign rows (product_type declared or `auto`, category, price, campaign_id).
            vectors: each campaign's vector (`features.embeddings.campaign_vectors`: the brief with its category,
                as scoring embeds it), in row order.
            outcomes: `content_conversion_lift` of settled campaigns, or None.
            descriptions: `kind_vectors` of the embedder, so that the learned combination weighs the zero-shot
                signal too; None leaves it at its fixed weight.

        Raises:
            ValueError: naming a parameter of the wrong type or range, or vectors that are not one per campaign.
        """
        self._check_params()
        if len(vectors) != len(campaigns):
            raise ValueError(f"Got {len(vectors)} brief vectors for {len(campaigns)} campaigns; expected one each")
        self.prices_ = price_table(campaigns)
        # Each past campaign's price with where it was sold, so that a price is read only against those of
        # campaigns of its price zone (`past_prices`, `price_zones`): the zone stands for the currency.
        self.price_rows_ = pd.DataFrame(
            {"category": campaigns["category"].to_numpy(dtype=object), "price": campaigns["price"].to_numpy(float)}
        )
        self.price_marketplaces_ = _marketplace_rows(campaigns["marketplaces"])
        self.price_zones_ = price_zones(campaigns)
        declared = campaigns["product_type"].isin(PRODUCT_TYPES).to_numpy()
        labels = campaigns["product_type"].to_numpy()[declared] == "non_standard"
        counts = (int(labels.sum()), int((~labels).sum()))
        self.n_declared_ = counts
        kinds = pd.crosstab(campaigns["category"].to_numpy()[declared].astype(str), labels)
        self.category_kinds_ = {
            str(c): (int(kinds.loc[c].get(True, 0)), int(kinds.loc[c].get(False, 0))) for c in kinds.index
        }
        self.classifier_ = None
        self.weights_ = {name: 1.0 for name in SIGNALS}
        self.base_rate_ = 0.0
        # What a reason reads the brief's closeness against: the two kinds' general descriptions are not equally
        # close to a brief of either kind (on a simulated world every past brief was closer to the non-standard
        # ones), so the sign of the difference alone said "taste-driven" of a sandpaper brief.
        self.zero_shot_typical_ = (
            float(self._zero_shot(vectors, descriptions).mean()) if descriptions is not None and len(vectors) else 0.0
        )
        self.outcome_vectors_ = np.zeros((0, vectors.shape[1]), np.float32)
        self.outcome_lifts_ = np.zeros(0)
        own = np.full(len(campaigns), -1)  # each campaign's own row among the outcomes, left out of its evidence
        if outcomes is not None and len(outcomes):
            position = pd.Series(np.arange(len(campaigns)), index=campaigns["campaign_id"])
            found = outcomes[outcomes["campaign_id"].isin(position.index)]
            rows = position[found["campaign_id"]].to_numpy()
            self.outcome_vectors_ = vectors[rows]
            self.outcome_lifts_ = found["lift"].to_numpy(float)
            own[rows] = np.arange(len(rows))
        if min(counts) < self.min_declared:
            return self
        self.classifier_ = LogisticRegression(C=self.C, max_iter=1000).fit(vectors[declared], labels)
        if min(counts) < 2:  # too few of a kind to hold one out of each fold
            return self
        # The combination is learned on the declared campaigns with the classifier's scores out of fold, so it
        # does not trust the classifier for having seen the very campaigns it is scored on.
        folds = StratifiedKFold(n_splits=min(5, *counts), shuffle=True, random_state=0)
        unseen = cross_val_predict(
            LogisticRegression(C=self.C, max_iter=1000), vectors[declared], labels, cv=folds, method="decision_function"
        )
        rows, row_vectors, row_own = campaigns[declared], vectors[declared], own[declared]
        # Each declared campaign's price read as a run's would be: against the past campaigns in its zone.
        parts, order = [], []
        for positions, _, codes in _zone_groups(rows, np.arange(len(rows)), self.price_zones_):
            prices = self.past_prices(codes)
            parts.append(
                self._signals(rows.iloc[positions], row_vectors[positions], descriptions, prices, row_own[positions])
            )
            order.append(positions)
        signals = _in_row_order(parts, order)
        signals["classifier"] = np.clip(unseen, -4.0, 4.0)
        # A campaign's own declaration is left out of its category's count, as the classifier's scores are.
        signals["category_kinds"] = self._category_evidence(rows, np.where(labels, 1, -1))
        used = [name for name in SIGNALS if descriptions is not None or name != "zero_shot"]
        combiner = LogisticRegression(C=self.combiner_C, max_iter=1000).fit(signals[used].to_numpy(), labels)
        self.weights_ |= dict(zip(used, combiner.coef_[0].tolist(), strict=True))
        self.base_rate_ = float(combiner.intercept_[0])
        return self

    def _check_params(self) -> None:
        """Refuses a parameter of the wrong type or range, naming it: LogisticRegression named its own C, and a
        negative weight or scale turned its signal's evidence around."""
        check_kinds(self)
        for name in ("min_declared", "min_category_prices", "neighbours"):
            if getattr(self, name) < 1:
                raise refuse(name, getattr(self, name), "a whole number of at least 1")
        for name in ("C", "combiner_C"):
            if getattr(self, name) <= 0:
                raise refuse(name, getattr(self, name), "a value above 0")
        for name in ("zero_shot_scale", "price_weight", "price_level_weight", "outcome_weight"):
            if getattr(self, name) < 0:
                raise refuse(name, getattr(self, name), "a value of at least 0 (0 turns the signal off)")
        if not -1 <= self.min_neighbour_similarity <= 1:
            raise refuse("min_neighbour_similarity", self.min_neighbour_similarity, "a cosine in [-1, 1]")

    def __setstate__(self, state: dict) -> None:
        # A model pickled before the price level and the learned weights existed reads as it did then.
        if "prices_" in state:
            fitted = {
                "weights_": {name: 1.0 for name in SIGNALS},
                "base_rate_": 0.0,
                "category_kinds_": {},
                "n_declared_": (0, 0),
            }
            state = {"price_level_weight": 0.0, "combiner_C": 10.0} | fitted | state
            # Pickled before reasons read the brief against its typical closeness: read as they were then.
            state = {"zero_shot_typical_": 0.0} | state
            # Pickled before prices were read by marketplace: against all of them, as then (`past_prices`).
            state = {"price_rows_": None, "price_marketplaces_": None} | state
            # Pickled before marketplaces whose prices agree were read together: each marketplace apart, as then.
            if state["price_marketplaces_"] is not None:
                state = {"price_zones_": {code: frozenset([code]) for code in state["price_marketplaces_"]}} | state
            else:
                state = {"price_zones_": None} | state
        super().__setstate__(state)

    def past_prices(self, marketplaces: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Sorted prices per category of the past campaigns sold in at least one of `marketplaces` (taken for one
        currency: the contract names none); None, or a model pickled before marketplaces were kept: all of them."""
        check_is_fitted(self, "prices_")
        if marketplaces is None or self.price_marketplaces_ is None:
            return self.prices_
        return price_table(self.price_rows_[self._sold_in(marketplaces)])

    def _sold_in(self, marketplaces: Iterable[str]) -> np.ndarray:
        """Which past campaigns were sold in at least one of `marketplaces`."""
        sold = np.zeros(len(self.price_rows_), bool)
        for code in set(marketplaces):
            sold |= self.price_marketplaces_.get(code, False)
        return sold

    def run_price_zones(self, campaigns: pd.DataFrame) -> dict[str, frozenset[str]] | None:
        """`price_zones` of a run's campaigns beside the past: the past's zones as they are, a marketplace the past
        never sold in joining one where its prices agree; None for a model pickled before marketplaces were kept."""
        check_is_fitted(self, "prices_")
        if self.price_zones_ is None:
            return None
        if set().union(*map(set, campaigns["marketplaces"])) <= set(self.price_zones_):
            return self.price_zones_
        codes = sorted(self.price_marketplaces_)
        past = self.price_rows_.assign(
            marketplaces=[
                [code for code in codes if self.price_marketplaces_[code][row]] for row in range(len(self.price_rows_))
            ]
        )
        joined = pd.concat([past, campaigns[["category", "price", "marketplaces"]]], ignore_index=True)
        return price_zones(joined, set(self.price_zones_.values()))

    def typical_log_price(self, marketplaces: Iterable[str] | None = None) -> float | None:
        """The median log price of the past campaigns sold in at least one of `marketplaces` (one price zone: one
        currency), the price a ranker reads a campaign's own against; None with fewer than `min_category_prices` of
        them. None for `marketplaces`: all past campaigns."""
        check_is_fitted(self, "prices_")
        if self.price_rows_ is None:  # pickled before prices were kept by campaign: never fitted with this ranker
            return None
        prices = self.price_rows_["price"].to_numpy(float)
        if marketplaces is not None and self.price_marketplaces_ is not None:
            prices = prices[self._sold_in(marketplaces)]
        if len(prices) < self.min_category_prices:
            return None
        return float(np.median(np.log(prices)))

    @property
    def marketplaces(self) -> list[str] | None:
        """The marketplaces of the past campaigns, sorted; None for a model pickled before they were kept."""
        check_is_fitted(self, "prices_")
        return None if self.price_marketplaces_ is None else sorted(self.price_marketplaces_)

    def evidence(
        self,
        campaigns: pd.DataFrame,
        vectors: np.ndarray,
        descriptions: dict[str, np.ndarray],
        prices: dict[str, np.ndarray] | None = None,
        level_prices: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Each signal's log-odds of non-standard per campaign (0 where a signal has nothing to say), weighted as
        learned, and the seller's base rate (0 when nothing was learned); their sum is the log-odds.

        Args:
            campaigns: the campaigns (category, price).
            vectors: their vectors (`features.embeddings.campaign_vectors`).
            descriptions: `kind_vectors` of the embedder.
            prices: sorted campaign prices per category; default: those seen in `fit`.
            level_prices: sorted prices the price level is read against; default: all of `prices`.
        """
        check_is_fitted(self, "prices_")
        prices = self.prices_ if prices is None else prices
        signals = self._signals(campaigns, vectors, descriptions, prices, level_prices=level_prices)
        if self.classifier_ is not None:
            # decision_function's own product would follow how many campaigns there are in its last bits.
            decision = matrix_product_rows(vectors, self.classifier_.coef_)[:, 0] + self.classifier_.intercept_[0]
            signals["classifier"] = np.clip(decision, -4.0, 4.0)
        weighted = signals * pd.Series(self.weights_)[list(SIGNALS)].to_numpy()
        return weighted.assign(base_rate=self.base_rate_)

    def reasoned(self, evidence: pd.DataFrame) -> pd.DataFrame:
        """`evidence` as a reason reads it: the brief's closeness against its typical value over the seller's past
        campaigns (unchanged for a model that saw none).

        The difference of a brief's closeness to the two kinds' descriptions has no meaningful zero: every brief may
        be closer to one kind's general words, so its sign alone named the same kind for a sandpaper brief as for a
        face cream. The other signals' zero is a point of their own (the middle price, as many declarations of each
        kind, as many orders per click), so they are read as they are. The probability is the sum of `evidence`
        itself; only what the reasons say of it changes.
        """
        return evidence.assign(zero_shot=evidence["zero_shot"] - self.weights_["zero_shot"] * self.zero_shot_typical_)

    def _zero_shot(self, vectors: np.ndarray, descriptions: dict[str, np.ndarray]) -> np.ndarray:
        """Log-odds from the brief's closeness to each kind's descriptions, at the fixed scale."""
        # Mean over each kind's descriptions: every phrasing counts, so no single one decides.
        closeness = {kind: matrix_product_rows(vectors, d).mean(axis=1) for kind, d in descriptions.items()}
        return self.zero_shot_scale * (closeness["non_standard"] - closeness["standard"])

    def _signals(
        self,
        campaigns: pd.DataFrame,
        vectors: np.ndarray,
        descriptions: dict[str, np.ndarray] | None,
        prices: dict[str, np.ndarray],
        own: np.ndarray | None = None,
        level_prices: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """The signals at their fixed weights, the classifier's left at 0."""
        zero = np.zeros(len(vectors))
        zero_shot = zero if descriptions is None else self._zero_shot(vectors, descriptions)
        category, level = self._price_evidence(campaigns, prices, level_prices)
        return pd.DataFrame(
            {
                "zero_shot": zero_shot,
                "classifier": zero,
                "price": category,
                "price_level": level,
                "category_kinds": self._category_evidence(campaigns),
                "outcomes": self._outcome_evidence(vectors, own),
            },
            index=campaigns.index,
        )

    def _price_evidence(
        self, campaigns: pd.DataFrame, prices: dict[str, np.ndarray], everything: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log-odds from the price within its category and among all the seller's campaigns (`everything`,
        sorted; default: all of `prices`)."""
        if everything is None:
            everything = np.sort(np.concatenate([np.zeros(0), *prices.values()]))
        category, level = np.zeros(len(campaigns)), np.zeros(len(campaigns))
        for i, (name, price) in enumerate(zip(campaigns["category"], campaigns["price"], strict=True)):
            known = prices.get(str(name))
            if known is not None and len(known) >= self.min_category_prices:
                category[i] = self.price_weight * _mid_rank(known, price)
            if len(everything) >= self.min_category_prices:
                level[i] = self.price_level_weight * _mid_rank(everything, price)
        return category, level

    def _category_evidence(self, campaigns: pd.DataFrame, own: np.ndarray | None = None) -> np.ndarray:
        """Log-odds of the seller's declared kinds in the campaign's category, one pseudo-campaign of each kind
        added (a category with few declarations says little); `own`: +1 or -1 to take a campaign's own
        declaration (non-standard or standard) out, 0 to leave the counts whole."""
        own = np.zeros(len(campaigns)) if own is None else own
        counts = np.array([self.category_kinds_.get(str(c), (0, 0)) for c in campaigns["category"]], float)
        non_standard = counts[:, 0] - (own > 0)
        standard = counts[:, 1] - (own < 0)
        return np.log((non_standard + 1.0) / (standard + 1.0))

    def _outcome_evidence(self, vectors: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
        past = self.outcome_vectors_
        if not len(past):
            return np.zeros(len(vectors))
        similarity = matrix_product_rows(vectors, past)
        if own is not None:
            has = np.flatnonzero(own >= 0)
            similarity[has, own[has]] = -np.inf
        k = min(self.neighbours, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weight = np.take_along_axis(similarity, nearest, axis=1)
        weight = np.where(weight >= self.min_neighbour_similarity, weight, 0.0)
        lift = self.outcome_lifts_[nearest]
        mean = (weight * lift).sum(axis=1) / np.maximum(weight.sum(axis=1), 1e-9)
        return np.where(weight.sum(axis=1) > 0, np.clip(self.outcome_weight * mean, -3.0, 3.0), 0.0)


# The two kinds as reasons name them, non-standard first as the signals' log-odds read.
KINDS = ("non-standard", "standard")


def _describe(
    evidence: pd.Series,
    probability: float,
    category_kinds: tuple[int, int],
    declared: tuple[int, int],
    price_reference: str = "the products the ranker learned from",
    brief_reference: str | None = None,
) -> str:
    """One sentence: the call, the probability, and the signals that moved it most, with the counts behind the
    seller's declarations (one declaration in a category is not "most").

    Args:
        evidence: the weighted signals of `ProductTypeModel.evidence`, one campaign's.
        probability: of non-standard.
        category_kinds: (non-standard, standard) past campaigns declared in the campaign's category, in the data
            the ranker learned from (the seller's own history, or whatever it was trained on).
        declared: (non-standard, standard) past campaigns declared in all.
        price_reference: the products the price level was read against (`reference_prices`).
        brief_reference: the briefs the zero-shot signal was read against (`ProductTypeModel.reasoned`); None: it
            was read on its own.
    """
    kind = KINDS[0] if probability >= 0.5 else KINDS[1]
    low, high = UNCERTAIN
    head = f"uncertain, leaning {kind}" if low <= probability <= high else kind

    def in_category(counts: tuple[int, int]) -> tuple[str, ...]:
        total = sum(counts)
        if total == 1:
            return tuple(
                f"the only past campaign in this category the ranker learned from that declared a type declared {side}"
                for side in KINDS
            )
        return tuple(
            f"{n} of the {total} past campaigns in this category the ranker learned from that declared a type "
            f"declared {side}"
            for n, side in zip(counts, KINDS, strict=True)
        )

    phrases = {
        "zero_shot": (
            ("the brief reads like a considered, taste-driven purchase", "the brief reads like a commodity")
            if brief_reference is None
            else (
                f"the brief reads more like a considered, taste-driven purchase than {brief_reference}",
                f"the brief reads more like a commodity than {brief_reference}",
            )
        ),
        "classifier": (
            "past campaigns declared non-standard have briefs like it",
            "past campaigns declared standard have briefs like it",
        ),
        "price": ("priced high for its category", "priced low for its category"),
        "price_level": (f"priced high among {price_reference}", f"priced low among {price_reference}"),
        "category_kinds": in_category(category_kinds),
        # The learned combination's intercept, not the declarations' majority: it is what remains once the other
        # signals are counted, so 17 standard of 35 may still lean standard.
        "base_rate": tuple(
            f"the baseline learned from {sum(declared)} declared past campaigns leans {side}" for side in KINDS
        ),
        "outcomes": (
            "content creators out-converted deal sites on similar past campaigns",
            "deal sites out-converted content creators on similar past campaigns",
        ),
    }
    moved = evidence[evidence.abs() >= 0.25].abs().sort_values(ascending=False, kind="stable").index[:3]
    toward = (evidence[moved] > 0) == (probability >= 0.5)
    cues = [phrases[name][0 if evidence[name] > 0 else 1] for name in moved[toward]]
    against = [phrases[name][0 if evidence[name] > 0 else 1] for name in moved[~toward]]
    because = f": {'; '.join(cues)}" if cues else ""
    if against:
        because += f"{'; ' if cues else ': '}against it, {'; '.join(against)}"
    because = because or ": no signal either way"
    tail = " (slate sized between the two)" if low <= probability <= high else ""
    return f"{head} (probability of non-standard {_shown_probability(probability)}){because}{tail}"


def _shown_probability(probability: float) -> str:
    """`probability` to 2 decimals, or 3 where 2 would put it on the other side of an UNCERTAIN bound, or of 0.5,
    than the call (0.3483, standard, read "0.35", which the docs call uncertain; 0.4996 read "0.50"); within a
    thousandth of a bound, cut toward the side decided, so the value shown never contradicts the words beside it."""
    low, high = UNCERTAIN

    def side(value: float) -> tuple[bool, bool]:
        return low <= value <= high, value >= 0.5

    for digits in (2, 3):
        shown = f"{probability:.{digits}f}"
        if side(float(shown)) == side(probability):
            return shown
    cut = math.floor if probability < 0.5 else math.ceil
    return f"{cut(probability * 1000) / 1000:.3f}"


def resolve_product_types(
    campaigns: pd.DataFrame,
    embedder: Embedder | None = None,
    model: ProductTypeModel | None = None,
    vectors: np.ndarray | None = None,
) -> pd.DataFrame:
    """Adds `product_type` (standard or non_standard), `product_type_probability` (of non-standard) and
    `product_type_reason`, `log_price_in_zone`, the price as the ranker reads it (`_log_prices_in_zone`), and
    `currency_log_scale`, how much dearer its currency reads than the batch's main one (`_currency_log_scales`).

    A declared type wins. For `auto`, the evidence of `model` (fitted on past campaigns; None: no past) is
    added up. A price is read only against campaigns sold in its campaign's price zones (`price_zones`; the past's
    zones as fitted, a marketplace new to it joining one where its prices agree): the past campaigns' where there
    are enough of them (`reference_prices`), so such a campaign resolves the same alone as in any batch; in a
    category with too few past prices, or with no history there, this batch's prices in those zones join them as
    the range. A model pickled before marketplaces were kept reads every price against all of them, as it did.

    Args:
        campaigns: campaign rows.
        embedder: embeds briefs; needed when some campaign is `auto`.
        model: a fitted ProductTypeModel, or None.
        vectors: the campaigns' brief vectors (`campaign_vectors`) by row, where they are already embedded; else
            the `auto` campaigns' briefs are embedded here, as one batch.
    """
    zones = None if model is None else model.run_price_zones(campaigns)
    declared = campaigns["product_type"].isin(PRODUCT_TYPES).to_numpy()
    kind = campaigns["product_type"].to_numpy(dtype=object).copy()
    probability = np.where(kind == "non_standard", 1.0, 0.0)
    reason = np.array(["declared by the seller"] * len(campaigns), dtype=object)
    auto = np.flatnonzero(~declared)
    if len(auto):
        if embedder is None:
            raise ValueError("Got campaigns with product_type 'auto' and no embedder; expected an Embedder")
        rows = campaigns.iloc[auto]
        vectors = campaign_vectors(embedder, rows) if vectors is None else vectors[auto]
        # No past: a model fitted on no campaigns, whose only evidence is the briefs and this batch's prices.
        here = ProductTypeModel().fit(campaigns.iloc[:0], vectors[:0]) if model is None else model
        descriptions = kind_vectors(embedder)
        parts, order, log_odds = [], [], np.zeros(len(auto))
        reference = np.empty(len(auto), dtype=object)
        enough = here.min_category_prices
        run_zones = zones if model is not None else here.run_price_zones(campaigns)
        for positions, sharing, codes in _zone_groups(campaigns, auto, run_zones):
            past = here.past_prices(codes)
            prices, level = reference_prices(campaigns[sharing], past, enough)
            reference[positions] = price_reference(past, enough, codes)
            parts.append(here.evidence(rows.iloc[positions], vectors[positions], descriptions, prices, level))
            order.append(positions)
            # Summed per group as evidence gives it: a frame joined from several sums in another order of blocks,
            # which moved a campaign's last bits with the other marketplaces of its run.
            log_odds[positions] = parts[-1].sum(axis=1).to_numpy()
        evidence = _in_row_order(parts, order)
        p = 1.0 / (1.0 + np.exp(-log_odds))
        reasoned = here.reasoned(evidence)
        # A model that saw no past brief has nothing to read a brief against. Those briefs are the ranker's training
        # data, a seller's own only when it has a history (a new seller's ranker learned from a simulated world).
        briefs = "the past briefs the ranker learned from" if here.zero_shot_typical_ else None
        probability[auto] = p
        kind[auto] = np.where(p >= 0.5, "non_standard", "standard")
        kinds = [here.category_kinds_.get(str(category), (0, 0)) for category in rows["category"]]
        reason[auto] = [
            _describe(reasoned.iloc[i], float(p[i]), kinds[i], here.n_declared_, reference[i], briefs)
            for i in range(len(auto))
        ]
    return campaigns.assign(
        product_type=kind,
        product_type_probability=probability,
        product_type_reason=reason,
        log_price_in_zone=_log_prices_in_zone(campaigns, model, zones),
        currency_log_scale=_currency_log_scales(campaigns, model, zones),
    )


def _log_prices_in_zone(
    campaigns: pd.DataFrame, model: ProductTypeModel | None, zones: dict[str, frozenset[str]] | None
) -> np.ndarray:
    """Each campaign's log price less the typical log price of the past campaigns in its price zone
    (`ProductTypeModel.typical_log_price`): a price read in its own currency, as the ranker reads it. NaN where the
    past has too few campaigns there, or there is no past, and for a campaign sold in two zones, whose price is in
    one of two currencies the contract does not say: the price level is then unknown, not guessed from a currency
    the ranker never learned in, or from two pooled."""
    relative = np.full(len(campaigns), np.nan)
    if model is None:
        return relative
    log_price = np.log(campaigns["price"].to_numpy(float))
    for positions, _, codes in _zone_groups(campaigns, np.arange(len(campaigns)), zones):
        # A group's marketplaces are the union of its campaigns' zones: more than one zone, each sold in two.
        if codes is not None and len({zones.get(code, frozenset([code])) for code in codes}) > 1:
            continue
        typical = model.typical_log_price(codes)
        if typical is not None:
            relative[positions] = log_price[positions] - typical
    return relative


def _currency_log_scales(
    campaigns: pd.DataFrame, model: ProductTypeModel | None, zones: dict[str, frozenset[str]] | None
) -> np.ndarray:
    """Per campaign, the log of the factor slate assignment divides its predicted sales by to add them to the
    batch's other campaigns' (`matcher.slate_book.common_scale`): how much dearer its price zone's prices are than
    those of the batch's main zone (the one with the most prices to read), taken as the two currencies' ratio.

    Prices are compared category by category where the two zones share categories (the median of the gaps of
    their median log prices), else as wholes, among the prices `reference_prices` reads a price level against (the
    past campaigns' in the zone where they are enough, else those with this run's there). A gap within
    `SAME_CURRENCY_FACTOR` is 0: zones kept apart only for want of prices to compare, or whose products differ in
    range, are read as one currency, as `price_zones` would join them, so a batch in one currency is assigned as
    its sales are, bit for bit. A campaign sold in two zones, whose price is in one of their currencies, takes the
    zone whose prices its own lies closest to (in its category where the zone has it). NaN with no price zones known
    (no past, or a model pickled before marketplaces were kept) and for a campaign sold nowhere.
    """
    scale = np.full(len(campaigns), np.nan)
    if model is None or zones is None:
        return scale
    sold = [[zones.get(code, frozenset([code])) for code in codes] for codes in campaigns["marketplaces"]]
    read = {}
    for zone in sorted(set().union(*map(set, sold)), key=sorted):
        sharing = np.array([zone in own for own in sold], bool)
        by_category, level = reference_prices(
            campaigns[sharing], model.past_prices(sorted(zone)), model.min_category_prices
        )
        if len(level):
            medians = {category: float(np.median(np.log(p))) for category, p in by_category.items() if len(p)}
            read[zone] = (medians, float(np.median(np.log(level))), len(level))
    if not read:
        return scale
    main_medians, main_level, _ = max(read.values(), key=lambda zone: zone[2])  # ties: the first by codes
    zone_scale = {}
    for zone, (medians, level, _) in read.items():
        gap = _median_category_gap(pd.Series(medians, dtype=float), pd.Series(main_medians, dtype=float))
        gap = level - main_level if gap is None else gap
        zone_scale[zone] = gap if abs(gap) > math.log(SAME_CURRENCY_FACTOR) else 0.0
    log_price = np.log(campaigns["price"].to_numpy(float))
    category = campaigns["category"].to_numpy(dtype=object)

    def distance(row: int, zone: frozenset[str]) -> float:
        medians, level, _ = read[zone]
        return abs(log_price[row] - medians.get(str(category[row]), level))

    for row, own in enumerate(sold):
        candidates = sorted({zone for zone in own if zone in read}, key=sorted)
        if candidates:
            scale[row] = zone_scale[min(candidates, key=lambda zone: distance(row, zone))]
    return scale


def _in_row_order(parts: list[pd.DataFrame], order: list[np.ndarray]) -> pd.DataFrame:
    """The frames computed per `_zone_groups` group, joined back into the rows' order (`order`: each part's
    positions)."""
    return pd.concat(parts).iloc[np.argsort(np.concatenate(order), kind="stable")]


def _zone_groups(
    campaigns: pd.DataFrame, chosen: np.ndarray, zones: dict[str, frozenset[str]] | None
) -> Iterator[tuple[np.ndarray, np.ndarray, list[str] | None]]:
    """The `chosen` rows of `campaigns` by the price zones (`price_zones`) of their marketplaces: each group's
    positions among them, which of `campaigns` share a zone with it (whose prices may place theirs), and the zones'
    marketplaces, sorted. With no `zones` (a model pickled before), one group, every campaign sharing, no
    marketplaces."""
    if zones is None:
        yield np.arange(len(chosen)), np.ones(len(campaigns), bool), None
        return
    sold = [frozenset(codes) for codes in campaigns["marketplaces"]]
    groups: dict[frozenset[str], list[int]] = {}
    for position, row in enumerate(chosen):
        key = frozenset().union(*(zones.get(code, frozenset([code])) for code in sold[row]))
        groups.setdefault(key, []).append(position)
    for codes, positions in groups.items():
        sharing = np.array([not codes.isdisjoint(own) for own in sold], bool)
        yield np.array(positions), sharing, sorted(codes)
