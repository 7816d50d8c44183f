"""Whether a campaign's products are standard (commodity) or non-standard (high decision cost), as a probability.

Four kinds of evidence a real seller has, each read as log-odds of non-standard and added:

- the brief's closeness to general descriptions of the two kinds (zero-shot, with the embedding model);
- the seller's own past campaigns that declared a type: a classifier on brief embeddings, when there are enough;
- the price against the prices of the seller's campaigns in the same category;
- how content creators converted against deal and coupon sites on the seller's most similar past campaigns.

No signal is a word list: "set", "kit" or "pack" appear on both kinds of product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from features.contract import CONTENT_STAGES, FUNNEL_STAGE, PRODUCT_TYPES
from features.embeddings import Embedder, fixed_vectors

__all__ = [
    "KIND_DESCRIPTIONS",
    "UNCERTAIN",
    "ProductTypeModel",
    "content_conversion_lift",
    "price_table",
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
    found = {str(c): g.to_numpy(float) for c, g in campaigns.groupby("category")["price"]}
    empty = np.zeros(0)
    return {c: np.sort(np.concatenate([past.get(c, empty), found.get(c, empty)])) for c in set(past) | set(found)}


class ProductTypeModel(BaseEstimator):
    """What a seller's campaigns say about which of their products are non-standard.

    Args:
        min_declared: declared campaigns of each kind needed before the brief classifier is used.
        C: inverse regularisation strength of the brief classifier.
        zero_shot_scale: log-odds per unit of cosine by which the brief is closer to one kind's descriptions.
        price_weight: log-odds at the top (or, negated, the bottom) of the category's price range.
        min_category_prices: campaigns in a category needed before price counts.
        outcome_weight: log-odds per unit of log-lift of content creators over conversion creators.
        neighbours: most similar past campaigns whose outcomes are averaged.
        min_neighbour_similarity: cosine below which a past campaign is not similar enough to count.
    """

    def __init__(
        self,
        min_declared: int = 10,
        C: float = 1.0,
        zero_shot_scale: float = 12.0,
        price_weight: float = 1.5,
        min_category_prices: int = 5,
        outcome_weight: float = 1.5,
        neighbours: int = 10,
        min_neighbour_similarity: float = 0.5,
    ) -> None:
        self.min_declared = min_declared
        self.C = C
        self.zero_shot_scale = zero_shot_scale
        self.price_weight = price_weight
        self.min_category_prices = min_category_prices
        self.outcome_weight = outcome_weight
        self.neighbours = neighbours
        self.min_neighbour_similarity = min_neighbour_similarity

    def fit(
        self, campaigns: pd.DataFrame, vectors: np.ndarray, outcomes: pd.DataFrame | None = None
    ) -> ProductTypeModel:
        """Learns from past campaigns.

        Args:
            campaigns: campaign rows (product_type declared or `auto`, category, price, campaign_id).
            vectors: each campaign's brief vector (`Embedder.encode` of the brief), in row order.
            outcomes: `content_conversion_lift` of settled campaigns, or None.
        """
        if len(vectors) != len(campaigns):
            raise ValueError(f"Got {len(vectors)} brief vectors for {len(campaigns)} campaigns; expected one each")
        self.prices_ = price_table(campaigns)
        declared = campaigns["product_type"].isin(PRODUCT_TYPES).to_numpy()
        labels = campaigns["product_type"].to_numpy()[declared] == "non_standard"
        counts = (int(labels.sum()), int((~labels).sum()))
        self.n_declared_ = counts
        self.classifier_ = None
        if min(counts) >= self.min_declared:
            self.classifier_ = LogisticRegression(C=self.C, max_iter=1000).fit(vectors[declared], labels)
        self.outcome_vectors_ = np.zeros((0, vectors.shape[1]), np.float32)
        self.outcome_lifts_ = np.zeros(0)
        if outcomes is not None and len(outcomes):
            position = pd.Series(np.arange(len(campaigns)), index=campaigns["campaign_id"])
            found = outcomes[outcomes["campaign_id"].isin(position.index)]
            self.outcome_vectors_ = vectors[position[found["campaign_id"]].to_numpy()]
            self.outcome_lifts_ = found["lift"].to_numpy(float)
        return self

    def evidence(
        self,
        campaigns: pd.DataFrame,
        vectors: np.ndarray,
        descriptions: dict[str, np.ndarray],
        prices: dict[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """Each signal's log-odds of non-standard per campaign (0 where a signal has nothing to say).

        Args:
            campaigns: the campaigns (category, price).
            vectors: their brief vectors.
            descriptions: KIND_DESCRIPTIONS embedded, per kind.
            prices: sorted campaign prices per category; default: those seen in `fit`.
        """
        check_is_fitted(self, "prices_")
        zero_shot = self.zero_shot_scale * (
            (vectors @ descriptions["non_standard"].T).max(axis=1) - (vectors @ descriptions["standard"].T).max(axis=1)
        )
        classifier = (
            self.classifier_.decision_function(vectors) if self.classifier_ is not None else np.zeros(len(vectors))
        )
        return pd.DataFrame(
            {
                "zero_shot": zero_shot,
                "classifier": np.clip(classifier, -4.0, 4.0),
                "price": self._price_evidence(campaigns, self.prices_ if prices is None else prices),
                "outcomes": self._outcome_evidence(vectors),
            },
            index=campaigns.index,
        )

    def _price_evidence(self, campaigns: pd.DataFrame, prices: dict[str, np.ndarray]) -> np.ndarray:
        out = np.zeros(len(campaigns))
        for i, (category, price) in enumerate(zip(campaigns["category"], campaigns["price"], strict=True)):
            known = prices.get(str(category))
            if known is None or len(known) < self.min_category_prices:
                continue
            below = np.searchsorted(known, price, side="left")
            at_or_below = np.searchsorted(known, price, side="right")
            share = (below + at_or_below) / (2.0 * len(known))  # mid-rank: a price equal to all others is 0.5
            out[i] = self.price_weight * (2.0 * share - 1.0)
        return out

    def _outcome_evidence(self, vectors: np.ndarray) -> np.ndarray:
        past = self.outcome_vectors_
        if not len(past):
            return np.zeros(len(vectors))
        similarity = vectors @ past.T
        k = min(self.neighbours, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weight = np.take_along_axis(similarity, nearest, axis=1)
        weight = np.where(weight >= self.min_neighbour_similarity, weight, 0.0)
        lift = self.outcome_lifts_[nearest]
        mean = (weight * lift).sum(axis=1) / np.maximum(weight.sum(axis=1), 1e-9)
        return np.where(weight.sum(axis=1) > 0, np.clip(self.outcome_weight * mean, -3.0, 3.0), 0.0)


def _describe(evidence: pd.Series, probability: float) -> str:
    """One sentence: the call, the probability, and the signals that moved it most."""
    kind = "non-standard" if probability >= 0.5 else "standard"
    low, high = UNCERTAIN
    head = f"uncertain, leaning {kind}" if low <= probability <= high else kind
    phrases = {
        "zero_shot": ("the brief reads like a considered, taste-driven purchase", "the brief reads like a commodity"),
        "classifier": (
            "the seller's declared non-standard campaigns have briefs like it",
            "the seller's declared standard campaigns have briefs like it",
        ),
        "price": ("priced high for its category", "priced low for its category"),
        "outcomes": (
            "content creators out-converted deal sites on similar past campaigns",
            "deal sites out-converted content creators on similar past campaigns",
        ),
    }
    moved = evidence[evidence.abs() >= 0.25].abs().sort_values(ascending=False, kind="stable")
    cues = [phrases[name][0 if evidence[name] > 0 else 1] for name in moved.index[:3]]
    because = f": {'; '.join(cues)}" if cues else ": no signal either way"
    tail = " (slate sized between the two)" if low <= probability <= high else ""
    return f"{head} (p_non_standard {probability:.2f}){because}{tail}"


def resolve_product_types(
    campaigns: pd.DataFrame, embedder: Embedder | None = None, model: ProductTypeModel | None = None
) -> pd.DataFrame:
    """Adds `product_type` (standard or non_standard), `product_type_probability` (of non-standard) and
    `product_type_reason`.

    A declared type wins. For `auto`, the evidence of `model` (fitted on past campaigns; None: no past) is
    added up; the prices of this batch's campaigns join the past ones as the category's price range.

    Args:
        campaigns: campaign rows.
        embedder: embeds briefs; needed when some campaign is `auto`.
        model: a fitted ProductTypeModel, or None.
    """
    declared = campaigns["product_type"].isin(PRODUCT_TYPES).to_numpy()
    kind = campaigns["product_type"].to_numpy(dtype=object).copy()
    probability = np.where(kind == "non_standard", 1.0, 0.0)
    reason = np.array(["declared by the seller"] * len(campaigns), dtype=object)
    auto = np.flatnonzero(~declared)
    if len(auto):
        if embedder is None:
            raise ValueError("Got campaigns with product_type 'auto' and no embedder; expected an Embedder")
        rows = campaigns.iloc[auto]
        vectors = embedder.encode([str(b) for b in rows["brief"]])
        # No past: a model fitted on no campaigns, whose only evidence is the briefs and this batch's prices.
        here = ProductTypeModel().fit(campaigns.iloc[:0], vectors[:0]) if model is None else model
        descriptions = {k: fixed_vectors(embedder, texts) for k, texts in KIND_DESCRIPTIONS.items()}
        prices = price_table(campaigns, here.prices_)
        evidence = here.evidence(rows, vectors, descriptions, prices)
        p = 1.0 / (1.0 + np.exp(-evidence.sum(axis=1).to_numpy()))
        probability[auto] = p
        kind[auto] = np.where(p >= 0.5, "non_standard", "standard")
        reason[auto] = [_describe(evidence.iloc[i], float(p[i])) for i in range(len(auto))]
    return campaigns.assign(product_type=kind, product_type_probability=probability, product_type_reason=reason)
