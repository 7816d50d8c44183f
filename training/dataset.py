"""Training sets from the contract tables: settled campaigns only, history as of each campaign's start."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.affinity import AFFINITY_COLUMNS, TagCategoryAffinity
from features.attribution import attribute
from features.contract import SETTLEMENT_DAYS
from features.embeddings import Embedder, campaign_vectors, creator_vectors
from features.history import CategoryPriors, creator_history, settled_rows
from features.pairwise import pair_features
from features.product_type import ProductTypeModel, content_conversion_lift, kind_vectors, resolve_product_types
from features.records import (
    BY_CATEGORY,
    CONTEXT_FOLDS,
    CreatorRecords,
    HistoryModel,
    campaign_folds,
    context_expectations_of,
    context_features,
    marketplace_history_as_of,
)
from features.similarity import TagSpace, semantic_features
from features.table_files import find_table
from features.tables import InputError, Reject, read_table, validate_performance_links
from training.evaluate import HOLDOUT, creator_split, held_out_campaigns
from training.ranker import OUTCOMES, CreatorRanker
from training.selection import DEFAULT_SELECTION_POWER, participation_weights

# The dashboard's settlement rule: an order counts for the last click within 24 hours before it.
DEFAULT_WINDOW = dt.timedelta(hours=24)


def window_hours(window: dt.timedelta) -> str:
    """An attribution window as a run's tag and parameter both show it: `24`, `336`, `1.5`."""
    return f"{window.total_seconds() / 3600:g}"


__all__ = [
    "TrainingData",
    "TrainingTables",
    "build_training_data",
    "build_with_holdout",
    "data_fingerprint",
    "read_training_tables",
    "settled_training_rows",
    "window_hours",
]


@dataclass
class TrainingTables:
    """The valid rows of a training data directory, and what was rejected on the way."""

    creators: pd.DataFrame
    campaigns: pd.DataFrame
    performance: pd.DataFrame
    touches: pd.DataFrame | None
    purchases: pd.DataFrame | None
    rejects: list[Reject]


@dataclass
class TrainingData:
    """Pairs with features and outcomes, plus what scoring new pairs needs later."""

    # campaign_id, creator_id, start_date, FEATURES..., impressions, clicks, orders, sales, selection_weight
    pairs: pd.DataFrame
    model: HistoryModel  # what every settled row taught, registered with the ranker
    records: CreatorRecords  # every creator's record as of training: match's default
    window: tuple[str, str]


def read_training_tables(data_dir: str | Path) -> TrainingTables:
    """Reads creators, campaigns, performance (and touches, purchases when present) from a directory."""
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(
            f"{data_dir}: a file; expected the directory holding the creators, campaigns and performance tables"
        )
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such directory")
    creators = read_table(find_table(data_dir, "creators"), "creators")
    campaigns = read_table(find_table(data_dir, "campaigns"), "campaigns")
    performance = validate_performance_links(
        read_table(find_table(data_dir, "performance"), "performance"), campaigns.frame, creators.frame
    )
    rejects = [*creators.rejects, *campaigns.rejects, *performance.rejects]
    events = {}
    for name in ("touches", "purchases"):
        path = find_table(data_dir, name, required=False)
        if path is not None:
            table = read_table(path, name)
            rejects += table.rejects
            events[name] = table.frame
    return TrainingTables(
        creators.frame,
        campaigns.frame,
        performance.frame,
        events.get("touches"),
        events.get("purchases"),
        rejects,
    )


def _canonical(cell: object) -> object:
    """A list, map or date cell as JSON text: hashable, and alike whichever file format it was read from."""
    if isinstance(cell, str) or cell is None:
        return cell
    if cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
        return None
    if isinstance(cell, np.ndarray):
        cell = cell.tolist()
    return json.dumps(cell, sort_keys=True, default=str)


def _table_fingerprint(frame: pd.DataFrame) -> str:
    """16 hex digits of a validated table's content: its columns by name and its rows in any order.

    The reader's `row` (a line number) is left out, and the sorted row hashes are hashed, so the same rows in
    another order, or from another file format, fingerprint alike.
    """
    columns = sorted(c for c in frame.columns if c != "row")
    content = frame[columns].copy()
    for name in columns:
        if content[name].dtype == object:
            content[name] = content[name].map(_canonical)
        elif content[name].dtype.kind == "M":  # a text file's times are read to the microsecond, Parquet's to the ns
            content[name] = content[name].astype("datetime64[ns]")
    rows = np.sort(pd.util.hash_pandas_object(content, index=False).to_numpy())
    digest = hashlib.sha256(json.dumps(columns).encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()[:16]


def data_fingerprint(tables: TrainingTables) -> tuple[str, dict[str, str]]:
    """The fingerprint of the tables training read, together, and of each (`creators`, `campaigns`,
    `performance`, and `touches` and `purchases` when given): the run's `data_fingerprint` tags.

    Computed on the validated rows (rejected ones are not trained on), not the files' bytes. It is the tables'
    alone: `as_of`, the attribution and the hold-out are the run's parameters.
    """
    each = {
        name: _table_fingerprint(frame)
        for name in ("creators", "campaigns", "performance", "touches", "purchases")
        if (frame := getattr(tables, name)) is not None
    }
    return hashlib.sha256(json.dumps(each, sort_keys=True).encode()).hexdigest()[:16], each


def cross_fitted_affinity(
    rows: pd.DataFrame, tags: pd.Series, priors: CategoryPriors, embedder: Embedder, folds: int = 5
) -> pd.DataFrame:
    """AFFINITY_COLUMNS of each row from a table learned without that row's campaign.

    Five folds: each table learns from 80% of the rows, so its shrinkage is close to that of the table
    scoring uses (learned from all of them); with two, training saw lifts shrunk as on half the data. A tag only
    the held-out campaigns have is read through its stand-in, as at match time (`TagCategoryAffinity.with_stand_ins`).
    """
    fold_of = campaign_folds(rows["campaign_id"], folds)
    out = pd.DataFrame(index=np.arange(len(rows)), columns=AFFINITY_COLUMNS, dtype=float)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        learn = ~held if (~held).any() else held
        table = TagCategoryAffinity().fit(rows[learn], tags[learn], priors, embedder)
        out.loc[held, AFFINITY_COLUMNS] = table.transform(tags[held], rows["category"][held], embedder).to_numpy()
    return out


def context_expectations(
    features: pd.DataFrame, rows: pd.DataFrame, learn: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], dict[int, CreatorRanker]]:
    """Clicks and orders a context model (no creator history) expects for each row, cross-fitted by campaign;
    and the models, by the fold each was held out of (`features.records.HistoryModel.context`).

    Each row's expectation comes from a model that never saw that row's campaign, so a creator's lift
    (actual over expected) is not flattered by the model having memorised the outcome. The models learn from the
    `learn` rows only (default all); every row is then judged by its fold's, as at match time.
    """
    context = context_features(features)
    outcomes = rows[OUTCOMES].reset_index(drop=True)
    # CONTEXT_FOLDS, as match time assigns them: each row is then judged by the model of its own fold.
    fold_of = campaign_folds(rows["campaign_id"], CONTEXT_FOLDS)
    learn = np.ones(len(rows), bool) if learn is None else learn
    models = {}
    for fold in np.unique(fold_of[learn]):
        held = fold_of == fold
        fit_on = learn & ~held if (learn & ~held).any() else learn & held  # one campaign: nothing else to learn
        models[int(fold)] = CreatorRanker(max_iter=100).fit(context[fit_on], outcomes[fit_on])
    return context_expectations_of(models, features, rows), models


def relabel(
    rows: pd.DataFrame, touches: pd.DataFrame | None, purchases: pd.DataFrame | None, model: str, window: dt.timedelta
) -> pd.DataFrame:
    """Orders, units and sales of campaigns with event logs, re-credited under `model` and `window`.

    The performance table already holds the dashboard's 24-hour last-click view; campaigns without events
    keep it. Credit is fractional under multi-touch models and never exceeds a row's clicks.
    """
    if touches is None or purchases is None or touches.empty or purchases.empty:
        return rows
    if model == "last_click" and window == DEFAULT_WINDOW:
        return rows
    covered = rows["campaign_id"].isin(set(touches["campaign_id"]))
    credit = attribute(touches, purchases, model, window).set_index(["campaign_id", "creator_id"])
    keys = pd.MultiIndex.from_frame(rows.loc[covered, ["campaign_id", "creator_id"]])
    found = credit.reindex(keys).fillna(0.0)
    rows = rows.astype({"orders": float, "sales": float})
    rows.loc[covered, "orders"] = np.minimum(found["orders"].to_numpy(), rows.loc[covered, "clicks"].to_numpy())
    rows.loc[covered, "sales"] = found["sales"].to_numpy()
    return rows


def settled_training_rows(tables: TrainingTables, as_of: dt.date | None = None) -> pd.DataFrame:
    """The performance rows settled by `as_of` (default today), with their campaigns' columns.

    Raises:
        InputError: there are none to learn from.
    """
    day = as_of or dt.date.today()
    rows = settled_rows(tables.performance, tables.campaigns, pd.Timestamp(day))
    if rows.empty:
        raise InputError(
            f"no settled performance rows to learn from as of {day} (status settled and {SETTLEMENT_DAYS} days past "
            "end_date)"
        )
    return rows


@dataclass
class _Settled:
    """The settled rows and what their features need that no history model changes: built once for any split."""

    rows: pd.DataFrame
    campaign_rows: np.ndarray  # each row's campaign, as a row of the campaigns table
    creator_rows: np.ndarray  # and its creator, of the creators table
    semantic: pd.DataFrame
    tags: pd.Series
    brief_vectors: np.ndarray  # every campaign's (`campaign_vectors`), by row of the campaigns table


def _settled(
    tables: TrainingTables, embedder: Embedder, as_of: dt.date | None, attribution: str, window: dt.timedelta
) -> _Settled:
    rows = relabel(settled_training_rows(tables, as_of), tables.touches, tables.purchases, attribution, window)
    camp_pos = pd.Series(np.arange(len(tables.campaigns)), index=tables.campaigns["campaign_id"])
    creator_pos = pd.Series(np.arange(len(tables.creators)), index=tables.creators["creator_id"])
    ci, ri = camp_pos[rows["campaign_id"]].to_numpy(), creator_pos[rows["creator_id"]].to_numpy()
    # Embed only the campaigns and creators that appear in settled rows. Briefs and categories, not product
    # types, are read here: these do not change with what the history models learn from.
    used_campaigns, campaign_of = np.unique(ci, return_inverse=True)
    used_creators, creator_of = np.unique(ri, return_inverse=True)
    some_campaigns = tables.campaigns.iloc[used_campaigns].reset_index(drop=True)
    some_creators = tables.creators.iloc[used_creators].reset_index(drop=True)
    semantic = semantic_features(
        embedder,
        some_campaigns,
        campaign_vectors(embedder, some_campaigns),
        creator_vectors(embedder, some_creators),
        TagSpace(embedder, some_creators["interest_tags"]),
        campaign_of,
        creator_of,
    )
    tags = tables.creators["interest_tags"].iloc[ri].reset_index(drop=True)
    return _Settled(rows, ci, ri, semantic, tags, campaign_vectors(embedder, tables.campaigns))


def build_training_data(
    tables: TrainingTables,
    embedder: Embedder,
    as_of: dt.date | None = None,
    attribution: str = "last_click",
    window: dt.timedelta = DEFAULT_WINDOW,
    selection_power: float = DEFAULT_SELECTION_POWER,
    learn_from: Collection[str] | None = None,
) -> TrainingData:
    """Builds one row per settled (campaign, creator) pair with features as of the campaign's start.

    Each row also gets a `selection_weight` (mean 1): how much more common a pair like it is among the creators a
    match would have scored for its campaign than among those who took part (`training.selection`).

    Args:
        tables: the validated tables.
        embedder: embeds briefs and profiles for the similarity feature.
        as_of: campaigns count as settled when their end date + 7 days is on or before it; default today.
        attribution: how orders are credited where touches and purchases exist (see `relabel`).
        window: how long after a click an order still counts for it.
        selection_power: the power of the weights' odds; 0 weighs every row alike.
        learn_from: the campaigns whose rows everything fitted on outcomes learns from (default: every settled
            one): the category priors, the tag affinity, the context models, the product types' outcome evidence,
            the selection weights and the creators' records. The other rows get their features from those, as a
            match would; their outcomes reach no feature. The held-out evaluation passes the earlier campaigns.

    Raises:
        InputError: no settled performance rows to learn from.
    """
    settled = _settled(tables, embedder, as_of, attribution, window)
    learn = np.ones(len(settled.rows), bool)
    if learn_from is not None:
        learn = settled.rows["campaign_id"].isin(set(learn_from)).to_numpy()
        if not learn.any():
            raise ValueError("Got learn_from naming no settled campaign; expected some to learn from")
    return _build(tables, embedder, settled, selection_power, learn)


def build_with_holdout(
    tables: TrainingTables,
    embedder: Embedder,
    as_of: dt.date | None = None,
    attribution: str = "last_click",
    window: dt.timedelta = DEFAULT_WINDOW,
    selection_power: float = DEFAULT_SELECTION_POWER,
    holdout: float = HOLDOUT,
) -> tuple[TrainingData, TrainingData | None, TrainingData | None]:
    """The training data on every settled campaign, the held-out evaluation's and the cold-start check's.

    The held-out evaluation's is built as `build_training_data` with `learn_from` the campaigns `time_split`
    trains on (None when there are none), so no feature of the held-out fit's training rows, nor of the held-out
    rows, is learned from a held-out campaign's outcomes. The cold-start check's (`cold_scores`) learns from
    those rows less every row of the creators `creator_split` holds out (`CREATOR_HOLDOUT`; None when that leaves
    nothing or there is no held-out data): the priors, tag affinity, context models, product types and selection
    weights then never saw a held-out creator's past, which spoke for it through them as no new creator's can.

    What does not depend on the split (the settled rows, embeddings, similarity features) is built once.
    """
    settled = _settled(tables, embedder, as_of, attribution, window)
    everything = _build(tables, embedder, settled, selection_power, np.ones(len(settled.rows), bool))
    learn = ~settled.rows["campaign_id"].isin(held_out_campaigns(settled.rows, holdout)).to_numpy()
    if not learn.any():
        return everything, None, None
    held_out = _build(tables, embedder, settled, selection_power, learn)
    cold_learn = learn & ~creator_split(settled.rows)
    cold = _build(tables, embedder, settled, selection_power, cold_learn) if cold_learn.any() else None
    return everything, held_out, cold


def _build(
    tables: TrainingTables, embedder: Embedder, settled: _Settled, selection_power: float, learn: np.ndarray
) -> TrainingData:
    """The pairs of every settled row, with everything fitted on outcomes learned from the `learn` rows only."""
    rows, ci, ri, tags = settled.rows, settled.campaign_rows, settled.creator_rows, settled.tags
    learned = rows[learn]
    # Product types are learned from what the seller declared and how creators sold, then resolved for all.
    product_types = ProductTypeModel().fit(
        tables.campaigns,
        settled.brief_vectors,
        content_conversion_lift(learned, tables.creators),
        kind_vectors(embedder),
    )
    campaigns = resolve_product_types(tables.campaigns, embedder, product_types, settled.brief_vectors)
    priors = CategoryPriors().fit(learned)
    learned_affinity = TagCategoryAffinity().fit(learned, tags[learn], priors, embedder)
    # Rows learned from get the affinity of a table that never saw their campaign; the others that of the
    # table learned from all of those, as at match time.
    affinity = pd.DataFrame(index=np.arange(len(rows)), columns=AFFINITY_COLUMNS, dtype=float)
    affinity.loc[learn, AFFINITY_COLUMNS] = cross_fitted_affinity(
        learned.reset_index(drop=True), tags[learn].reset_index(drop=True), priors, embedder
    ).to_numpy()
    if not learn.all():
        affinity.loc[~learn, AFFINITY_COLUMNS] = learned_affinity.transform(
            tags[~learn], rows["category"][~learn], embedder
        ).to_numpy()
    # Only the rows learned from are weighed (the others are not fitted on), as if they were all there was.
    weights = np.ones(len(rows))
    weights[learn] = participation_weights(
        campaigns, tables.creators, ci[learn], ri[learn], embedder, priors, learned_affinity, selection_power
    )
    queries = rows[["creator_id", "category", "marketplaces"]].assign(as_of=rows["start_date"])

    def features_from(history: pd.DataFrame) -> pd.DataFrame:
        # A record holds only the rows learned from: the records a model is registered with are as of its training.
        history = history[learn]
        by_creator = creator_history(history, priors, queries)
        in_category = creator_history(history, priors, queries, by=BY_CATEGORY)
        in_markets = marketplace_history_as_of(history, priors, queries)
        return pair_features(
            campaigns, tables.creators, ci, ri, settled.semantic, affinity, by_creator, in_category, in_markets, priors
        )

    # Records are judged against what a model without them expects, then the features are rebuilt.
    expected, context = context_expectations(features_from(rows), rows, learn)
    rows = rows.assign(**expected)
    features = features_from(rows)
    pairs = pd.concat(
        [
            rows[["campaign_id", "creator_id", "start_date", "impressions", "clicks", "orders", "sales"]].reset_index(
                drop=True
            ),
            features,
        ],
        axis=1,
    ).assign(selection_weight=weights)
    learned = rows[learn]
    window = (str(learned["start_date"].min().date()), str(learned["settled_on"].max().date()))
    model = HistoryModel(priors, learned_affinity, product_types, context)
    return TrainingData(pairs, model, CreatorRecords.from_rows(learned, priors), window)
