"""Creators' records as data, apart from the model that reads them.

A registered ranker carries what settled history *taught* (`HistoryModel`: category priors, what interests
sold where, the product-type model and the context model that says what an average creator would have done
on a campaign); it carries no creator's rows, so its size does not grow with the catalogue. The records it
is applied to (`CreatorRecords`) are data: written by `train` as of training, or computed by `match` from
the latest performance table as of the run date (`creator_records`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.affinity import AFFINITY_COLUMNS, TagCategoryAffinity
from features.contract import SETTLEMENT_DAYS
from features.embeddings import Embedder, campaign_vectors
from features.history import HISTORY_COLUMNS, CategoryPriors, creator_history, settled_rows
from features.pairwise import FEATURES, HISTORY_FEATURES, pair_features
from features.product_type import resolve_product_types
from features.similarity import TagSpace, semantic_features
from features.tables import InputError, Reject, Table, valid_rows, validate_performance_links

__all__ = [
    "BY_CATEGORY",
    "BY_MARKETPLACE",
    "CONTEXT_FOLDS",
    "RECORD_FILES",
    "CreatorRecords",
    "HistoryModel",
    "SettledPerformance",
    "campaign_folds",
    "context_expectations_of",
    "context_features",
    "creator_records",
    "empty_records",
    "marketplace_history_as_of",
    "per_marketplace",
]

BY_CATEGORY = ("creator_id", "category")
# A creator's record in each marketplace their campaigns ran in: where their audience buys, which a profile
# often does not say.
BY_MARKETPLACE = ("creator_id", "marketplace")
# Campaigns are split in two folds: each row's expected outcome comes from a context model that never saw
# its campaign (train) and, at match time, from the same fold's model, so old and new rows read alike.
CONTEXT_FOLDS = 2
RECORD_FILES = {
    "history": "history.parquet",
    "category_history": "category_history.parquet",
    "marketplace_history": "marketplace_history.parquet",
}


def per_marketplace(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows (settled rows, or record queries) once per marketplace in their `marketplaces`, as `marketplace`."""
    exploded = rows.explode("marketplaces", ignore_index=True).rename(columns={"marketplaces": "marketplace"})
    return exploded[exploded["marketplace"].notna()].reset_index(drop=True)


def empty_records(by: tuple[str, ...]) -> pd.DataFrame:
    """A records table with no row: the keys `by`, then HISTORY_COLUMNS."""
    keys = {key: pd.Series(dtype=object) for key in by}
    return pd.DataFrame(keys | {name: pd.Series(dtype=float) for name in HISTORY_COLUMNS})


def marketplace_history_as_of(rows: pd.DataFrame, priors: CategoryPriors, queries: pd.DataFrame) -> pd.DataFrame:
    """Each query's (`creator_id`, `marketplaces`, `as_of`) record in its marketplaces: HISTORY_COLUMNS of the
    creator's campaigns settled before `as_of`, summed over the marketplaces (zeros without one).

    A campaign that ran in two of the asked marketplaces counts in both, so its evidence weighs twice against the
    lifts' fixed pseudo-counts (`features.pairwise.record_lifts`); scoring sums the same way.
    """
    asked = per_marketplace(queries[["creator_id", "marketplaces", "as_of"]].assign(_query=np.arange(len(queries))))
    out = np.zeros((len(queries), len(HISTORY_COLUMNS)))
    events = per_marketplace(rows)
    if len(asked) and len(events):
        found = creator_history(events, priors, asked, by=BY_MARKETPLACE)
        np.add.at(out, asked["_query"].to_numpy(), found[HISTORY_COLUMNS].to_numpy(float))
    return pd.DataFrame(out, columns=HISTORY_COLUMNS)


def campaign_folds(campaign_ids: pd.Series | np.ndarray, folds: int) -> np.ndarray:
    """Each campaign's fold: a stable hash of its id, so a campaign lands in the same fold in every process."""
    return pd.util.hash_array(np.asarray(campaign_ids).astype(str)) % folds


def context_features(features: pd.DataFrame) -> pd.DataFrame:
    """FEATURES with the creator's own record blanked: what a context model (no history) reads."""
    # A constant column carries no information to a tree, so this is the same model without history.
    return features[FEATURES].assign(**{name: 0.0 for name in HISTORY_FEATURES})


@dataclass
class HistoryModel:
    """What settled history taught, without any creator's rows (its size does not grow with creators).

    Attributes:
        priors: click-through and orders per click per category.
        affinity: what interest tags sold in which categories.
        product_types: the seller's product-type model (`features.product_type.ProductTypeModel`), or None.
        context: per fold, the context model fitted without that fold's campaigns (see `campaign_folds`);
            it predicts `p_click` and `p_order` from `context_features`. None in rankers registered before
            records became data: those cannot compute records from a performance table.
    """

    priors: CategoryPriors
    affinity: TagCategoryAffinity
    product_types: object = None
    context: dict[int, object] | None = None

    def expectations(self, features: pd.DataFrame, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """Clicks and orders the context model expects of each row (`rows`: campaign_id, impressions, clicks)."""
        return context_expectations_of(self.context, features, rows)


def context_expectations_of(
    models: dict[int, object], features: pd.DataFrame, rows: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Clicks and orders each row's fold model expects (`rows`: campaign_id, impressions, clicks): in training,
    the model that never saw the row's campaign; at match time, the same fold's."""
    context = context_features(features)
    fold_of = campaign_folds(rows["campaign_id"], CONTEXT_FOLDS)
    p_click, p_order = np.zeros(len(rows)), np.zeros(len(rows))
    fallback = models[min(models)]  # a fold no model was held out for (a single campaign)
    for fold in np.unique(fold_of):
        at = fold_of == fold
        predicted = models.get(int(fold), fallback).predict(context[at])
        p_click[at], p_order[at] = predicted["p_click"], predicted["p_order"]
    return {
        "expected_clicks": rows["impressions"].to_numpy(float) * p_click,
        "expected_orders": rows["clicks"].to_numpy(float) * p_order,
    }


@dataclass
class CreatorRecords:
    """Each creator's settled record overall (`history`, per creator_id), per category (`category_history`, per
    creator_id and category) and per marketplace (`marketplace_history`, per creator_id and marketplace):
    HISTORY_COLUMNS, with `hist_prior_*` what an average creator would have done."""

    history: pd.DataFrame
    category_history: pd.DataFrame
    marketplace_history: pd.DataFrame

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, priors: CategoryPriors) -> CreatorRecords:
        """Totals of settled rows (with `category`, `marketplaces`, and `expected_clicks`/`expected_orders` when
        known)."""
        return cls(
            creator_history(rows, priors),
            creator_history(rows, priors, by=BY_CATEGORY),
            creator_history(per_marketplace(rows), priors, by=BY_MARKETPLACE),
        )

    def write(self, directory: str | Path) -> list[Path]:
        """Writes the tables as Parquet into `directory` (RECORD_FILES); returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, file in RECORD_FILES.items():
            getattr(self, name).to_parquet(directory / file, index=False)
            paths.append(directory / file)
        return paths

    @classmethod
    def read(cls, directory: str | Path) -> CreatorRecords:
        """Reads the tables `write` wrote."""
        directory = Path(directory)
        return cls(**{name: pd.read_parquet(directory / file) for name, file in RECORD_FILES.items()})

    def fingerprint(self) -> str:
        """A short digest of the tables: a checkpoint scored with other records must not be reused."""
        digest = hashlib.sha256()
        for frame in (self.history, self.category_history, self.marketplace_history):
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SettledPerformance:
    """The latest performance table and the past campaigns it refers to, read as of a date.

    Only rows settled by `as_of` count: status `settled` and the campaign 7 days past its end
    (`features.history.settled_rows`).

    Args:
        performance: the performance table: a table from `features.read_table(path, "performance")` (its
            rejects are the caller's to report) or a DataFrame, which must have no invalid row.
        campaigns: the campaigns the rows refer to (their category and end date), in the same forms.
        as_of: the run date; default today.
    """

    performance: Table | pd.DataFrame
    campaigns: Table | pd.DataFrame
    as_of: dt.date | None = None

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, list[Reject]]:
        """The valid performance and campaign rows, and the rejects: invalid rows, and performance rows whose
        campaign is not a valid past campaign. Past campaigns' rejects are named `past_campaigns`, apart from
        the campaigns being matched.

        Raises:
            ValueError: a DataFrame (not a read table) has an invalid row; the first is named.
        """
        campaigns = valid_rows(self.campaigns, "campaigns")
        performance = valid_rows(self.performance, "performance")
        # A record of a creator since removed from the creators table is not an error: it is never used.
        creators = pd.DataFrame({"creator_id": performance.frame["creator_id"]})
        performance = validate_performance_links(performance, campaigns.frame, creators)
        for given, found in ((self.campaigns, campaigns), (self.performance, performance)):
            if found.rejects and not (isinstance(given, Table) and given.validated):
                raise ValueError(f"{len(found.rejects)} invalid {found.name} rows; first: {found.rejects[0].line()}")
        rejects = [replace(r, table="past_campaigns") for r in campaigns.rejects] + list(performance.rejects)
        return performance.frame, campaigns.frame, rejects

    def rejects(self) -> list[Reject]:
        """What `tables` rejects, for a rejects file."""
        return self.tables()[2]


def _warn_no_record(performance_rows: int, settled: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Warns that a performance table given to read records from gave none: a run date before its campaigns
    settled, or another catalogue's creators, which a run would otherwise take silently for a catalogue of new
    creators."""
    if not performance_rows:
        return  # an empty table says so itself: there is no history yet
    day = as_of.date()
    if settled.empty:
        why = (
            f"none of its {performance_rows} rows is settled as of {day} (a campaign {SETTLEMENT_DAYS} days past "
            "its end)"
        )
    else:
        why = f"none of its {len(settled)} rows settled as of {day} is of a creator in the creators table"
    warnings.warn(
        f"the performance table gives no creator a record: {why}; every creator is scored as new", stacklevel=3
    )


def creator_records(
    source: SettledPerformance,
    model: HistoryModel,
    embedder: Embedder,
    creators: pd.DataFrame,
    creator_vectors: np.ndarray,
    tags: TagSpace,
) -> CreatorRecords:
    """Every creator's record from a performance table as of `source.as_of`, judged as training judged it.

    Each settled row's expected clicks and orders come from the model's context model on the row's pair
    features, so a record means here what it meant in training. Only rows of creators in `creators` are
    read; the others could never be scored.

    Args:
        source: the performance table, its past campaigns and the run date.
        model: the registered ranker's HistoryModel.
        embedder: embeds the past campaigns' briefs (pass an isolated one for reproducible records).
        creators, creator_vectors, tags: the creators table, its profile vectors and interest tags, in order.

    Raises:
        InputError: the model has no context model (registered before records were data): retrain it.
    """
    if model.context is None:
        raise InputError(
            "this ranker was registered before performance files could be read (it carries its training "
            "records); retrain it with `creator-match train` to match on newer performance"
        )
    performance, campaigns, _ = source.tables()
    as_of = pd.Timestamp(source.as_of or dt.date.today())
    settled = settled_rows(performance, campaigns, as_of)
    position = pd.Series(np.arange(len(creators)), index=creators["creator_id"])
    rows = settled[settled["creator_id"].isin(position.index)].reset_index(drop=True)
    if rows.empty:
        _warn_no_record(len(performance), settled, as_of)
        return CreatorRecords(empty_records(("creator_id",)), empty_records(BY_CATEGORY), empty_records(BY_MARKETPLACE))
    used, campaign_index = np.unique(rows["campaign_id"].to_numpy(), return_inverse=True)
    past = campaigns.set_index("campaign_id").loc[used].reset_index()
    past = resolve_product_types(past, embedder, model.product_types)
    creator_index = position.loc[rows["creator_id"]].to_numpy()
    semantic = semantic_features(
        embedder, past, campaign_vectors(embedder, past), creator_vectors, tags, campaign_index, creator_index
    )
    affinity = model.affinity.transform(creators["interest_tags"].iloc[creator_index], rows["category"], embedder)
    none = pd.DataFrame(0.0, index=np.arange(len(rows)), columns=HISTORY_COLUMNS)
    features = pair_features(
        past,
        creators,
        campaign_index,
        creator_index,
        semantic,
        affinity[AFFINITY_COLUMNS],
        none,
        none,
        none,
        model.priors,
    )
    rows = rows.assign(**model.expectations(features, rows))
    return CreatorRecords.from_rows(rows, model.priors)
