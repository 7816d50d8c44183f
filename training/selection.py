"""Who took part in past campaigns is not whom a match scores: weights that make the one look like the other.

The ranker learns from the creators who took part in the seller's past campaigns: invited, and accepting, for
reasons of their own (reach, topic, the seller's habits). A match scores every creator retrieval finds for a new
campaign, most of whom took part in nothing like it. Where the two populations differ, the heads spend their fit
on the participants' kind of pair and extrapolate to the rest. Each training row is therefore weighted by how
much more common its kind of pair is among the candidates retrieval would have found for the same campaigns than
among the participants: the odds of a classifier that tells the two apart, a density ratio as in covariate-shift
correction, read on what is known of a pair before any record (profile, audience, topical fit, the campaign).
A power under 1 of those odds (0.5, the square root, is the measured setting), clipped, keeps a few rows from
taking the fit.

Off by default (`DEFAULT_SELECTION_POWER` 0): on simulated worlds it moved the ranking and the slates up on some
seeds and down on others by more than it moved their means (docs/measurements.md, "Weighing past pairs toward the
candidates"). `creator-match train --selection-power 0.5` turns it on for a seller whose past participants were
chosen very unlike the catalogue; the run's `selection_effective_share` says how far the weights reach.

The candidates of a past campaign are found as the similarity channel of retrieval finds them with the default
settings: the creators closest in meaning to the brief among those who accept campaigns, are not cashback sites
and whose stated audience in its marketplaces is not under the least share (`CANDIDATES_PER_CAMPAIGN` and
`MIN_MARKET_SHARE` are `matcher.settings.MatchSettings`' defaults, which a test keeps equal). The proven channel
(creators with a record in the category) is left out: what it adds are creators with records, whom the
participants already resemble. At most `MAX_CREATORS` creators are searched: every participant, then others in
an order set by a hash of their id, so that training on a catalogue of a million does not embed it all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from features.affinity import TagCategoryAffinity
from features.contract import CASHBACK_TYPE
from features.embeddings import Embedder, campaign_vectors, creator_vectors
from features.history import HISTORY_COLUMNS, CategoryPriors
from features.pairwise import CATEGORICAL_FEATURES, FEATURES, HISTORY_FEATURES, pair_features, typical_audience
from features.records import campaign_folds
from features.similarity import TagSpace, semantic_features
from training.weighted_bins import with_values

__all__ = [
    "CANDIDATES_PER_CAMPAIGN",
    "DEFAULT_SELECTION_POWER",
    "MAX_CREATORS",
    "MIN_MARKET_SHARE",
    "SELECTION_FEATURES",
    "WEIGHT_CLIP",
    "candidate_pairs",
    "effective_share",
    "participation_weights",
    "row_weights",
    "searched_creators",
    "selection_weights",
]

CANDIDATES_PER_CAMPAIGN = 200
MIN_MARKET_SHARE = 0.05
MAX_CREATORS = 20_000
DEFAULT_SELECTION_POWER = 0.0
# Weights are kept within [1 / WEIGHT_CLIP, WEIGHT_CLIP] times the median row's before they are scaled to mean 1.
WEIGHT_CLIP = 10.0
# What the classifier reads: everything but the creator's own record, which the candidates' rows would have as of
# today and the participants' as of their campaign.
SELECTION_FEATURES = [name for name in FEATURES if name not in HISTORY_FEATURES]
_FOLDS = 5
_BLOCK = 256  # campaigns scored against every searched creator at once


def searched_creators(creator_ids: pd.Series, participants: np.ndarray, limit: int = MAX_CREATORS) -> np.ndarray:
    """Table rows of the creators whose candidacy is searched: every participant, then the others in the order of
    a hash of their id (the same in every process), up to `limit` in all; sorted."""
    chosen = np.unique(participants)
    if len(creator_ids) <= limit:
        return np.arange(len(creator_ids))
    others = np.setdiff1d(np.arange(len(creator_ids)), chosen)
    order = np.argsort(pd.util.hash_array(creator_ids.to_numpy(dtype=object)[others].astype(str)), kind="stable")
    return np.sort(np.concatenate([chosen, others[order[: max(0, limit - len(chosen))]]]))


def candidate_pairs(
    campaign_vectors: np.ndarray,
    campaign_markets: pd.Series,
    creator_vectors: np.ndarray,
    audience: pd.Series,
    k: int = CANDIDATES_PER_CAMPAIGN,
    min_market_share: float = MIN_MARKET_SHARE,
    eligible: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each campaign's `k` creators closest in meaning to its brief among those who may be proposed there.

    Args:
        campaign_vectors: normalised brief vectors, one row per campaign.
        campaign_markets: each campaign's list of marketplaces.
        creator_vectors: normalised profile vectors, one row per creator.
        audience: each creator's stated audience share by marketplace (a dict; empty or missing: not stated,
            which passes, as in retrieval).
        k: creators per campaign.
        min_market_share: least stated audience share in the campaign's marketplaces.
        eligible: per creator, whether it may be proposed at all; None: all.

    Returns:
        (campaign rows, creator rows) of the pairs, campaign by campaign.
    """
    codes = sorted({code for markets in campaign_markets for code in markets})
    column = {code: i for i, code in enumerate(codes)}
    shares = np.zeros((len(audience), len(codes)))
    stated = np.zeros(len(audience), dtype=bool)
    for row, split in enumerate(audience):
        if isinstance(split, dict) and split:
            stated[row] = True
            for code, share in split.items():
                if code in column:
                    shares[row, column[code]] = share
    runs_in = np.zeros((len(campaign_markets), len(codes)))
    for row, markets in enumerate(campaign_markets):
        runs_in[row, [column[code] for code in markets]] = 1.0
    k = min(k, len(creator_vectors))
    campaign_rows, creator_rows = [], []
    for start in range(0, len(campaign_vectors), _BLOCK):
        block = slice(start, start + _BLOCK)
        similarity = campaign_vectors[block] @ creator_vectors.T
        allowed = ~stated | (runs_in[block] @ shares.T >= min_market_share)
        if eligible is not None:
            allowed &= eligible
        similarity = np.where(allowed, similarity, -np.inf)
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k] if k else np.zeros((len(similarity), 0), int)
        for offset, row in enumerate(top):
            row = np.sort(row[np.isfinite(similarity[offset, row])])
            campaign_rows.append(np.full(len(row), start + offset, dtype=np.int64))
            creator_rows.append(row.astype(np.int64))
    if not campaign_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(campaign_rows), np.concatenate(creator_rows)


def selection_weights(
    participants: pd.DataFrame,
    candidates: pd.DataFrame,
    power: float = DEFAULT_SELECTION_POWER,
    random_state: int = 0,
) -> np.ndarray:
    """A weight per participant row: (odds that a pair like it is a candidate rather than a participant) ** power.

    The classifier is fitted by campaign folds, so no row's weight comes from a model that saw its campaign.

    Args:
        participants: `campaign_id` and SELECTION_FEATURES of each training row.
        candidates: the same of the candidate pairs that did not take part.
        power: 0 weighs every row alike; 1 is the full density ratio.
        random_state: the classifier's seed.

    Returns:
        Weights in participants' order, mean 1.
    """
    if not 0 <= power <= 1:
        raise ValueError(f"Got selection power={power}; expected a value in [0, 1]")
    n = len(participants)
    if power == 0 or n == 0 or candidates.empty:
        return np.ones(n)
    X = pd.concat([participants[SELECTION_FEATURES], candidates[SELECTION_FEATURES]]).to_numpy(float)
    is_participant = np.r_[np.ones(n), np.zeros(len(candidates))]
    fold = campaign_folds(pd.concat([participants["campaign_id"], candidates["campaign_id"]]).to_numpy(), _FOLDS)
    p = np.full(n, np.nan)
    for held in np.unique(fold[:n]):
        learn = fold != held
        if len(np.unique(is_participant[learn])) < 2:
            learn = np.ones(len(fold), dtype=bool)  # too few campaigns to hold one out
        classifier = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.05,
            max_leaf_nodes=15,
            min_samples_leaf=50,
            categorical_features=[SELECTION_FEATURES.index(name) for name in CATEGORICAL_FEATURES],
            random_state=random_state,
        ).fit(with_values(X[learn]), is_participant[learn])
        rows = np.flatnonzero(fold[:n] == held)
        p[rows] = classifier.predict_proba(X[rows])[:, 1]
    p = np.clip(p, 1e-4, 1 - 1e-4)
    odds = (1 - p) / p
    weights = np.clip((odds / np.median(odds)) ** power, 1 / WEIGHT_CLIP, WEIGHT_CLIP)
    return weights / weights.mean()


def effective_share(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted rows, as a share of the rows: 1 when all weigh alike."""
    weights = np.asarray(weights, float)
    return float(weights.sum() ** 2 / (len(weights) * (weights**2).sum())) if len(weights) else float("nan")


def participation_weights(
    campaigns: pd.DataFrame,
    creators: pd.DataFrame,
    campaign_rows: np.ndarray,
    creator_rows: np.ndarray,
    embedder: Embedder,
    priors: CategoryPriors,
    affinity: TagCategoryAffinity,
    power: float = DEFAULT_SELECTION_POWER,
) -> np.ndarray:
    """The weight of each training row (`selection_weights`), its pair given by table rows.

    Args:
        campaigns: the campaigns, product types resolved.
        creators: the creators table.
        campaign_rows, creator_rows: each training row's campaign and creator, as rows of those tables.
        embedder: embeds briefs and the searched creators' profiles (its cache first).
        priors: category priors.
        affinity: what the rows teach of interest tags per category, read alike for both populations.
        power: as in `selection_weights`; 0 embeds nothing and weighs every row 1.
    """
    if power == 0 or not len(campaign_rows):
        return np.ones(len(campaign_rows))
    used = np.unique(campaign_rows)
    searched = searched_creators(creators["creator_id"], creator_rows)
    some_campaigns = campaigns.iloc[used].reset_index(drop=True)
    some_creators = creators.iloc[searched].reset_index(drop=True)
    brief_vectors = campaign_vectors(embedder, some_campaigns)
    profile_vectors = creator_vectors(embedder, some_creators)
    found_campaign, found_creator = candidate_pairs(
        brief_vectors,
        some_campaigns["marketplaces"],
        profile_vectors,
        some_creators["audience_marketplaces"],
        # matcher.eligibility's rules under the default settings (cashback sites not allowed, violations demoted).
        eligible=(
            some_creators["accepts_campaigns"].astype(bool) & (some_creators["creator_type"] != CASHBACK_TYPE)
        ).to_numpy(),
    )
    took_campaign, took_creator = np.searchsorted(used, campaign_rows), np.searchsorted(searched, creator_rows)
    took_part = np.isin(found_campaign * len(searched) + found_creator, took_campaign * len(searched) + took_creator)
    pair_campaign = np.concatenate([took_campaign, found_campaign[~took_part]])
    pair_creator = np.concatenate([took_creator, found_creator[~took_part]])
    semantic = semantic_features(
        embedder,
        some_campaigns,
        brief_vectors,
        profile_vectors,
        TagSpace(embedder, some_creators["interest_tags"]),
        pair_campaign,
        pair_creator,
    )
    topical = affinity.transform(
        some_creators["interest_tags"].iloc[pair_creator].reset_index(drop=True),
        some_campaigns["category"].iloc[pair_campaign].reset_index(drop=True),
        embedder,
    )
    no_record = pd.DataFrame(0.0, index=np.arange(len(pair_campaign)), columns=HISTORY_COLUMNS)  # not read
    features = pair_features(
        some_campaigns,
        some_creators,
        pair_campaign,
        pair_creator,
        semantic,
        topical,
        no_record,
        no_record,
        no_record,
        priors,
        typical_audience(creators),
    ).assign(campaign_id=some_campaigns["campaign_id"].to_numpy()[pair_campaign])
    n = len(campaign_rows)
    return selection_weights(features.iloc[:n], features.iloc[n:], power)


def row_weights(pairs: pd.DataFrame) -> np.ndarray | None:
    """The `selection_weight` column of training pairs for `CreatorRanker.fit`; None where every row weighs alike
    (or there is no such column), so that the heads are fitted exactly as without weights."""
    if "selection_weight" not in pairs:
        return None
    weights = pairs["selection_weight"].to_numpy(float)
    return None if (weights == 1).all() else weights
