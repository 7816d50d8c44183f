"""`creator-match train`: fit the ranker on settled history, evaluate it on later campaigns, register it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from features.duplicate_evidence import DuplicateEvidence
from features.embeddings import Embedder, resolve_model_path
from features.pairwise import FEATURES
from features.parameters import refuse, whole_number
from features.tables import InputError, Reject, write_rejects
from features.threads import openmp_threads
from training.dataset import (
    DEFAULT_WINDOW,
    build_with_holdout,
    data_fingerprint,
    read_training_tables,
    settled_training_rows,
    window_hours,
)
from training.evaluate import (
    BASELINES,
    COLD_SCORE,
    HOLDOUT,
    cold_metrics,
    cold_scores,
    evaluate_ranking,
    expected_sales,
    ranked_campaigns,
    time_split,
)
from training.forecast_interval import campaign_orders, fit_with_check
from training.promotion import (
    HELD_OUT_PREDICTED,
    HELD_OUT_SCORE,
    challenger_metrics,
    champion_metrics,
    champion_on_unseen,
    difference_metrics,
    logged_difference,
    rule_of,
    said_difference,
)
from training.pyfunc import RankerModel
from training.ranker import OUTCOMES, PREDICTIONS, CreatorRanker, flat_heads, heads_besides
from training.registry import (
    CHAMPION,
    DEFAULT_MODEL_NAME,
    MODEL_ARTIFACT,
    MODEL_DIGEST_TAG,
    RegistrationIncomplete,
    RegistryUnavailable,
    champion_version,
    check_server_reachable,
    code_tags,
    configure_tracking,
    create_store,
    finish_registration,
    first_line,
    logged_digest,
    model_code_paths,
    model_digest,
    pip_requirements,
    register,
    tracking_store,
    use_experiment,
)
from training.review import (
    SLATE_BASELINE,
    SlateBuilder,
    by_category,
    by_product_type,
    captured_by_k,
    model_card,
    not_evaluated,
    plot_calibration,
    plot_captured,
    plot_importance,
    plot_slates,
    slate_candidates,
    slate_members,
    slate_metrics,
)
from training.selection import DEFAULT_SELECTION_POWER, effective_share, row_weights

__all__ = ["REGISTRATION_TAG", "TrainResult", "train", "training_threads"]

# The run tag that says how registering its model went: `pending`, `<name> version <v>` or `incomplete: <why>`.
REGISTRATION_TAG = "registration"

# What the run's pair files (evaluation/holdout.parquet, evaluation/cold.parquet) hold of each pair before its scores.
LOGGED_PAIR_COLUMNS = ["campaign_id", "creator_id", "start_date", "price", *OUTCOMES, "sales", *FEATURES]


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    model_name: str
    version: str
    is_champion: bool
    metrics: dict[str, float]
    n_pairs: int
    rejects: list[Reject] = field(default_factory=list)
    champion: str | None = None  # the version that held `champion` when training started
    unfair: str | None = None  # why this version could not be compared with that champion (`promotion.unfair`)
    # The version holding `champion` once this one was registered, looked up when neither this one nor a champion at
    # the start did: the model's first version, registered meanwhile by a training that ran at the same time.
    champion_now: str | None = None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def _check_attribution(tables, data_dir: str | Path, attribution: str, window: dt.timedelta) -> None:
    """Refuses an attribution the tables cannot give: orders are only re-credited from the event-level touches and
    purchases, and without them the run trained on the performance table's 24-hour last-click orders while its
    tags, parameters and model card named the attribution asked for. One of the two tables alone is a warning."""
    import warnings

    has_touches, has_purchases = tables.touches is not None, tables.purchases is not None
    if has_touches != has_purchases:
        present, missing = ("touches", "purchases") if has_touches else ("purchases", "touches")
        warnings.warn(
            f"{data_dir}: a {present} table without {missing}: event-level labels need both; "
            "training on the performance table's last-click orders",
            UserWarning,
            stacklevel=3,
        )
    if (attribution, window) != ("last_click", DEFAULT_WINDOW) and not (has_touches and has_purchases):
        raise InputError(
            f"Got attribution={attribution!r} with a {window_hours(window)} h window; expected the touches and "
            f"purchases tables in {data_dir} to re-credit orders from (the performance table holds 24-hour "
            "last-click orders)"
        )


def _interval(metrics: dict[str, float], name: str) -> str:
    """` (90% interval a to b)` of a metric logged with its `_low` and `_high`, or nothing."""
    low, high = metrics.get(f"{name}_low"), metrics.get(f"{name}_high")
    if low is None or high is None or not np.isfinite([low, high]).all():
        return ""
    return f" (90% interval {low:.3f} to {high:.3f})"


def training_threads(threads: int | None) -> int | None:
    """The OpenMP threads `train` fits on: `threads` where given; else None (OpenMP's own setting) where
    `OMP_NUM_THREADS` is set, else 1.

    A fit is dozens of boosters of a few thousand small OpenMP regions each; a team of threads waits at every region
    for its last thread to get a core, so on a machine shared with other work `train` ran 4.5 to 5.6 times slower on
    every core than on one, while on an idle one two threads gained about a tenth (docs/measurements.md, "Training
    beside other work"). Its printed metrics were the same to the digit on one thread and on two.
    """
    if threads is not None:
        return threads
    return None if os.environ.get("OMP_NUM_THREADS") else 1


def train(
    data_dir: str | Path,
    model_name: str = DEFAULT_MODEL_NAME,
    embedder: Embedder | None = None,
    as_of: dt.date | None = None,
    ranker: CreatorRanker | None = None,
    attribution: str = "last_click",
    window: dt.timedelta = DEFAULT_WINDOW,
    slate_builder: SlateBuilder | None = None,
    holdout: float = HOLDOUT,
    selection_power: float = DEFAULT_SELECTION_POWER,
    rejects_read: Callable[[list[Reject]], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Trains on DIR/creators, DIR/campaigns, DIR/performance; logs the run and registers a version.

    The model is evaluated on the latest campaigns after being fitted on the earlier ones, next to the
    baselines and the current champion on the same held-out pairs; the registered model is then refitted
    on everything. The first version of a model name becomes `champion`; later ones wait for `promote`.
    With `slate_builder` (see `training.review.SlateBuilder`; the `creator-match train` command passes
    matcher.slate's), the held-out campaigns also get slates, reviewed against the champion's. `holdout` is the
    share of campaigns, the latest by start date, held out for that evaluation. `ranker` (default `CreatorRanker()`)
    is copied with `sklearn.base.clone` for each fit, so its class and parameters are what every fit uses; any
    estimator that passes the ranker contract (docs/contributing.md) will do. `selection_power` weighs the
    past pairs toward the creators a match would have scored for their campaigns (`training.selection`; 0: alike).
    `rejects_read` is given the tables' rejected rows, if any, as soon as the tables are read and checked, before
    any training (the command names them then: training takes minutes, and may fail); they are also returned.
    `threads` is the OpenMP threads of the fits and the review's predictions; None: `OMP_NUM_THREADS` where it is
    set, else 1 (`training_threads`).
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature, infer_signature

    if not 0 < holdout < 1:
        raise ValueError(f"Got holdout={holdout}; expected a share of the campaigns in (0, 1)")
    if not 0 <= selection_power <= 1:
        raise ValueError(f"Got selection_power={selection_power}; expected a value in [0, 1]")
    if threads is not None and (not whole_number(threads) or threads < 1):
        raise refuse("threads", threads, "a whole number of at least 1, or None")
    limit = training_threads(threads)
    # The input's own refusals come before the store is opened, which creates a SQLite one that is not there yet.
    tables = read_training_tables(data_dir)
    settled_training_rows(tables, as_of)
    _check_attribution(tables, data_dir, attribution, window)
    if tables.rejects and rejects_read is not None:
        rejects_read(list(tables.rejects))
    embedder = embedder or Embedder()
    resolve_model_path(embedder.model)
    configure_tracking()
    check_server_reachable()
    create_store()
    # Then, before any work: a registry that cannot be read stops the run rather than passing for empty.
    champion = champion_version(model_name)
    # The held-out fit learns from features built without the held-out campaigns' outcomes: built on every row,
    # they leaked into its training rows through the priors, affinity and context models.
    # The cold-start check's, likewise, without any row of the creators it holds out: their past spoke for them.
    with openmp_threads(limit):
        data, held_out_data, cold_data = build_with_holdout(
            tables, embedder, as_of, attribution, window, selection_power, holdout
        )
        ranker = CreatorRanker() if ranker is None else ranker
        # No held-out data: every campaign is held out (there is a single one), and nothing is fitted on the split.
        train_pairs, test_pairs = time_split((held_out_data or data).pairs, holdout)
        test_pairs = _priced(test_pairs, tables.campaigns)
        metrics: dict[str, float] = {
            "n_pairs": float(len(data.pairs)),
            "n_train_pairs": float(len(train_pairs)),
            "n_test_pairs": float(len(test_pairs)),
            "n_test_campaigns": float(test_pairs["campaign_id"].nunique()),
            # What the NDCG figures average over: a reviewer read them as the mean over every held-out campaign.
            "n_ranked_test_campaigns": float(ranked_campaigns(test_pairs)),
            "n_campaigns": float(data.pairs["campaign_id"].nunique()),
            "n_rejected_rows": float(len({(r.table, r.row) for r in tables.rejects})),
            "selection_effective_share": effective_share(data.pairs["selection_weight"].to_numpy()),
        }
        held_out = champion_ranker = why_unfair = orders_interval = cold = None
        champion_pairs = test_pairs.iloc[0:0]
        if len(train_pairs) and len(test_pairs):
            held_out = clone(ranker).fit(train_pairs[FEATURES], train_pairs[OUTCOMES], row_weights(train_pairs))
            metrics |= evaluate_ranking(held_out, test_pairs, test_pairs["price"].to_numpy())
            orders_interval, checked = fit_with_check(campaign_orders(held_out, test_pairs))
            metrics |= checked
            if cold_data is not None:
                cold_train, cold_test = time_split(cold_data.pairs, holdout)
                cold = cold_scores(ranker, cold_train, _priced(cold_test, tables.campaigns))
                metrics |= cold_metrics(cold)
            if champion is not None:
                champion_ranker, champion_pairs, why_unfair = champion_on_unseen(
                    model_name, champion, test_pairs, rule_of(attribution, window_hours(window))
                )
                theirs = None if champion_ranker is None else champion_ranker.predict(champion_pairs)
                metrics |= champion_metrics(theirs, champion_pairs)
                if theirs is not None:  # this version's held-out fit, on the very campaigns the champion is
                    ours = held_out.predict(champion_pairs)
                    metrics |= challenger_metrics(ours, champion_pairs)
                    price = champion_pairs["price"].to_numpy()
                    sales = expected_sales(ours, price), expected_sales(theirs, price)
                    metrics |= difference_metrics(*sales, champion_pairs)
        final = clone(ranker).fit(data.pairs[FEATURES], data.pairs[OUTCOMES], row_weights(data.pairs))
        _warn_if_flat(final, data.pairs)
    python_model = RankerModel(
        final, data.model, embedder.model, embedder.dimension, embedder.backend, orders_interval=orders_interval
    )
    example = data.pairs[FEATURES].head(5).astype(float)
    # Declared by the model, not inferred from a few rows: a feature those rows happened to fill would be required.
    signature = ModelSignature(python_model.input_schema(), infer_signature(example, final.predict(example)).outputs)
    fingerprint, table_fingerprints = data_fingerprint(tables)
    tags = {
        "embedding_model": embedder.model,
        # The weights themselves: a name, or a path, says nothing of which files were there when it ran.
        "embedding_model_sha256": model_digest(resolve_model_path(embedder.model)),
        "embedding_backend": embedder.backend,
        "embedding_dim": str(embedder.dimension),
        "data_fingerprint": fingerprint,
        # Each table's too: which one differs.
        **{f"data_fingerprint.{name}": value for name, value in table_fingerprints.items()},
        "training_window": " to ".join(data.window),
        "attribution": attribution,
        "attribution_window_hours": window_hours(window),
        "features": ",".join(FEATURES),
    } | code_tags()

    use_experiment(model_name)
    with (
        # The model's name and the second: runs of the same minute, or of two models, read apart in the UI's list.
        mlflow.start_run(run_name=f"train {model_name} {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}") as run,
        tempfile.TemporaryDirectory() as tmp,
        openmp_threads(limit),
    ):
        mlflow.log_params({f"ranker.{k}": v for k, v in ranker.get_params().items()})
        mlflow.log_params(
            {
                "embedding_model": embedder.model,
                "embedding_backend": embedder.backend,
                "embedding_dim": embedder.dimension,
                "data_dir": str(Path(data_dir).resolve()),
                "n_features": len(FEATURES),
                "attribution": attribution,
                "attribution_window_hours": window_hours(window),
                "holdout": holdout,
                "selection_power": selection_power,
                # The day campaigns counted as settled by (`--as-of`, default the day of the run).
                "as_of": str(as_of or dt.date.today()),
                "event_level_labels": tables.touches is not None and tables.purchases is not None,
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(tags | {REGISTRATION_TAG: "pending"})
        if tables.rejects:
            # Which rows this version learned without, not only how many: the rejects file `match` writes, as is.
            mlflow.log_artifact(str(write_rejects(list(tables.rejects), Path(tmp) / "training")), "data")
        importance = slates_against = None
        if held_out is not None:
            importance = _log_review(
                held_out, test_pairs, Path(tmp), tables.campaigns.set_index("campaign_id")["category"]
            )
            if cold is not None and len(cold):
                _log_cold(cold, Path(tmp))
            if slate_builder is not None:
                found, slates_against = _log_slates(
                    slate_builder,
                    held_out,
                    test_pairs,
                    *slate_candidates(test_pairs, tables.creators, embedder),
                    champion,
                    champion_ranker,
                    champion_pairs,
                    Path(tmp),
                )
                metrics |= found
        # The creators' records as of training, beside the model rather than in it: match's default;
        # logged before the model is registered, so no registered version lacks them.
        for path in data.records.write(Path(tmp) / "records"):
            mlflow.log_artifact(str(path), "records")
        # MLflow prints its logging chatter straight to stderr; the summary says the same in one line.
        with contextlib.redirect_stderr(io.StringIO()):
            logged = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=python_model,
                signature=signature,
                input_example=example,
                code_paths=model_code_paths(),
                pip_requirements=pip_requirements(),
            )
        # Hashed from the store, not from a folder saved here and logged: what a load compares with is then the
        # bytes the store holds, read by the download `load_ranker` uses, whatever MLflow adds while logging.
        # Tagged on the run (for `runs:/` URIs) before it ends, and given to the version as it is registered.
        digest = logged_digest(logged.model_uri)
        mlflow.set_tag(MODEL_DIGEST_TAG, digest)
    # Registered only once its run has finished: a training killed before that leaves a run that never
    # finished and no version, never a version (let alone a champion) whose run is still `RUNNING` for ever. The
    # run's `registration` tag says how registering went: `pending` until it is done (only a kill in between
    # leaves it), then the version, or `incomplete:` and why, whichever step failed (the card's writing and its
    # logging to the run included: they left `pending` beside a registered version).
    client = MlflowClient()
    version = None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            version = register(logged.model_uri, model_name, {MODEL_DIGEST_TAG: digest})
        registered = f"registered {model_name} version {version} in {tracking_store()}"
        try:
            card = model_card(model_name, version, tags, metrics, importance, champion, slates_against, why_unfair)
        except Exception as exc:
            raise RegistrationIncomplete(
                f"{registered}, but could not write its model card: {first_line(exc)}; it has no description and "
                f"the `{CHAMPION}` alias was not moved"
            ) from exc
        is_champion = finish_registration(model_name, version, card, make_champion=champion is None)
        try:
            client.log_text(run.info.run_id, card, "review/model_card.md")
        except Exception as exc:
            raise RegistrationIncomplete(
                f"{registered} with its model card{f' as `{CHAMPION}`' if is_champion else ''}, but could not log "
                f"the card to run {run.info.run_id} (review/model_card.md): {first_line(exc)}"
            ) from exc
    except Exception as exc:
        why = str(exc) if isinstance(exc, RegistrationIncomplete) else f"{type(exc).__name__}: {first_line(exc)}"
        if version is not None and not isinstance(exc, RegistrationIncomplete):
            why = f"registered {model_name} version {version}, then failed: {why}"
        client.set_tag(run.info.run_id, REGISTRATION_TAG, f"incomplete: {why}"[:5000])
        raise
    client.set_tag(run.info.run_id, REGISTRATION_TAG, f"{model_name} version {version}")
    champion_now = None
    if not is_champion and champion is None:
        # Only for the summary, once the version is registered: a store unreadable by now leaves it unnamed.
        with contextlib.suppress(RegistryUnavailable):
            champion_now = champion_version(model_name)
    return TrainResult(
        run.info.run_id,
        model_name,
        version,
        is_champion,
        metrics,
        len(data.pairs),
        list(tables.rejects),
        champion,
        why_unfair,
        champion_now,
    )


def _warn_if_flat(final, pairs: pd.DataFrame) -> None:
    """Says which heads of the registered ranker learned nothing from the pairs: it is still registered (and, as a
    first version, made champion), but a seller's first few dozen pairs gave one that scored every candidate alike,
    whose slates then followed creator id while their reasons spoke of interest fit and reach."""
    import warnings

    flat = flat_heads(final, pairs[FEATURES])
    if not flat:
        return
    leaf = final.get_params().get("min_samples_leaf")
    why = "" if leaf is None else f" (a split needs at least min_samples_leaf={leaf} rows on each side)"
    if len(flat) == len(PREDICTIONS):
        said = (
            f"the ranker learned nothing from {len(pairs)} settled pairs: its {', '.join(flat[:-1])} and {flat[-1]} "
            f"heads each predict one value for every pair{why}, so a match gives all of a "
            "campaign's candidates the same expected sales and cannot tell them apart"
        )
    else:
        rest = heads_besides(flat)
        said = (
            f"the ranker's {' and '.join(flat)} head{'s' if len(flat) > 1 else ''} learned nothing from {len(pairs)} "
            f"settled pairs: {'each predicts' if len(flat) > 1 else 'it predicts'} one value for every pair{why}, so "
            f"its scores rest on its {' and '.join(rest)} head{'s' if len(rest) > 1 else ''} alone"
        )
    warnings.warn(f"{said}; train again once more campaigns have settled", stacklevel=2)


def _priced(pairs: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """`pairs` with their campaigns' `price` and `budget`, which expected sales and slates read."""
    by_id = campaigns.set_index("campaign_id")
    return pairs.assign(
        price=by_id["price"].reindex(pairs["campaign_id"]).to_numpy(),
        budget=by_id["budget"].reindex(pairs["campaign_id"]).to_numpy(),
    )


def _log_cold(cold: pd.DataFrame, tmp: Path) -> None:
    """Logs the cold-start check's rows as scored (`training.evaluate.cold_scores`), from which its `cold_*` figures
    are recomputed: `evaluation/cold.parquet`."""
    import mlflow

    path = tmp / "cold.parquet"
    scores = [COLD_SCORE, *(f"baseline_{name}" for name in BASELINES)]
    cold[[*LOGGED_PAIR_COLUMNS, *scores]].to_parquet(path)
    mlflow.log_artifact(str(path), "evaluation")


def _log_review(held_out: CreatorRanker, test_pairs: pd.DataFrame, tmp: Path, category: pd.Series) -> pd.Series:
    """Logs the held-out pairs, the review plots and the tables per category (`by_category`, campaigns' `category`
    by campaign_id) and per product type (`by_product_type`) to the active run; returns the feature importance."""
    import mlflow

    holdout = tmp / "holdout.parquet"
    predicted = held_out.predict(test_pairs)
    price = test_pairs["price"].to_numpy()
    # The held-out fit's own scores: what the promotion gate judges this version by, since the registered model
    # is refitted on these very campaigns; and, for the reviewer, what each of its heads predicted.
    logged = test_pairs[LOGGED_PAIR_COLUMNS]
    logged.assign(
        **{HELD_OUT_SCORE: expected_sales(predicted, price)},
        **{column: predicted[name].to_numpy() for name, column in HELD_OUT_PREDICTED.items()},
    ).to_parquet(holdout)
    mlflow.log_artifact(str(holdout), "evaluation")
    scores = {"model": expected_sales(predicted, price)} | {
        name: baseline(test_pairs) for name, baseline in BASELINES.items()
    }
    captured = captured_by_k(test_pairs, scores)
    by_category(test_pairs, predicted, scores, category).to_csv(tmp / "by_category.csv", index=False)
    by_product_type(test_pairs, predicted, scores).to_csv(tmp / "by_product_type.csv", index=False)
    for table in ("by_category.csv", "by_product_type.csv"):
        mlflow.log_artifact(str(tmp / table), "review")
    for k in (1, 5, 10):
        if k in captured.index:
            mlflow.log_metrics({f"captured_at_{k}_{name}": float(captured.loc[k, name]) for name in captured.columns})
    mlflow.log_artifact(str(plot_calibration(predicted, test_pairs, tmp / "calibration.png")), "review")
    mlflow.log_artifact(str(plot_captured(captured, tmp / "captured_by_k.png")), "review")
    importance = plot_importance(held_out, test_pairs, price, tmp / "importance.png")
    mlflow.log_artifact(str(tmp / "importance.png"), "review")
    mlflow.log_dict(importance.sort_values(ascending=False).to_dict(), "review/importance.json")
    return importance


def _log_slates(
    build: SlateBuilder,
    held_out: CreatorRanker,
    test_pairs: pd.DataFrame,
    candidates: pd.DataFrame,
    evidence: DuplicateEvidence,
    champion: str | None,
    champion_ranker: CreatorRanker | None,
    champion_pairs: pd.DataFrame,
    tmp: Path,
) -> tuple[dict[str, float], str]:
    """Slates of the held-out campaigns by this version, the sellers' hand pick (SLATE_BASELINE) and the champion,
    logged as metrics and `review/slates_vs_champion.png`; returns the metrics and what the plot compares with."""
    import mlflow

    sales = expected_sales(held_out.predict(test_pairs), test_pairs["price"].to_numpy())
    ours = slate_members(build, candidates, evidence, sales, sales)
    # Ranks keep the baseline's order with positive scores (the builder drops scores <= 0).
    hand_pick = pd.Series(BASELINES[SLATE_BASELINE](test_pairs)).rank(method="first").to_numpy()
    theirs = slate_members(build, candidates, evidence, hand_pick, sales)
    found = slate_metrics(ours, candidates) | slate_metrics(theirs, candidates, f"baseline_{SLATE_BASELINE}_")
    path = tmp / "slates_vs_champion.png"
    if champion_ranker is not None:
        fair = test_pairs.index.isin(champion_pairs.index)  # `unseen_by` keeps the held-out row labels
        judged = candidates[fair].reset_index(drop=True)
        rival = expected_sales(champion_ranker.predict(champion_pairs), champion_pairs["price"].to_numpy())
        mine = slate_members(build, judged, evidence, sales[fair], sales[fair])
        champions = slate_members(build, judged, evidence, rival, rival)
        found |= slate_metrics(mine, judged, "versus_champion_") | slate_metrics(champions, judged, "champion_")
        n = judged["campaign_id"].nunique()
        against = f"champion version {champion}'s on the {n} held-out campaigns it never trained on"
        plot_slates(
            mine,
            champions,
            judged,
            f"champion v{champion}",
            f"slates: this version vs champion version {champion}",
            path,
        )
    else:
        why = "no champion yet" if champion is None else f"champion version {champion} cannot be judged fairly here"
        # Named, not called the best: it is the hand pick the plot draws, whichever baseline scored higher.
        against = f"the {SLATE_BASELINE} baseline's, the sellers' hand pick ({why})"
        plot_slates(ours, theirs, candidates, SLATE_BASELINE, f"slates: this version vs {SLATE_BASELINE} ({why})", path)
    mlflow.log_artifact(str(path), "review")
    mlflow.log_metrics({k: v for k, v in found.items() if np.isfinite(v)})
    return found, against


def summarize(result: TrainResult) -> str:
    """A few readable lines about a training run."""
    m = result.metrics
    if result.is_champion:
        status = " (champion)"
    elif result.champion is None and result.champion_now is not None:
        status = (
            f" (not champion: version {result.champion_now} is, registered first by a training that ran at the same "
            "time; this one was not compared with it: `creator-match promote` to use it)"
        )
    elif result.champion is None:  # only a model's first version is made champion: the alias was deleted
        name = "" if result.model_name == DEFAULT_MODEL_NAME else f" --model-name {result.model_name}"
        status = (
            f" (not champion: no version holds `{CHAMPION}`, and only a model's first version is made champion "
            f"without review; `creator-match promote{name} --version {result.version}` makes this one champion)"
        )
    else:
        status = " (not champion; `creator-match promote` to use it)"
    lines = [
        f"registered {result.model_name} version {result.version}{status}",
        f"trained on {result.n_pairs} settled (campaign, creator) pairs",
    ]
    if (unevaluated := not_evaluated(m)) is not None:
        lines.append(f"not evaluated: {unevaluated}; train again once more campaigns have settled")
    if "ndcg_at_10" in m:
        lines.append(
            f"held-out later campaigns: click AUC {m['click_auc']:.3f}, order AUC {m['order_auc']:.3f}, "
            f"NDCG@10 of sales {m['ndcg_at_10']:.3f}{_interval(m, 'ndcg_at_10')} (followers "
            f"{m['baseline_followers_ndcg_at_10']:.3f}, tags then followers "
            f"{m['baseline_tags_then_followers_ndcg_at_10']:.3f})"
        )
    if "forecast_low_multiple" in m:
        checked = m.get("forecast_later_half_coverage")
        lines.append(
            f"range of a slate's orders, from {m['forecast_campaigns']:.0f} held-out campaigns: "
            f"{m['forecast_low_multiple']:.2f}x to {m['forecast_high_multiple']:.2f}x (expected orders + 1), less 1"
            + ("" if checked is None else f"; the earlier half's range held {checked:.0%} of the later half")
        )
    elif "forecast_campaigns" in m:
        lines.append(
            f"no range for a slate's orders: {m['forecast_campaigns']:.0f} held-out campaigns are too few to set one"
        )
    n = int(m.get("champion_comparison_campaigns", 0))
    if "challenger_ndcg_at_10" in m:
        lines.append(
            f"against champion version {result.champion}, on the {n} held-out campaigns it never trained on that "
            "have sales to rank: "
            f"NDCG@10 {m['challenger_ndcg_at_10']:.3f} vs {m['champion_ndcg_at_10']:.3f}"
            + ("" if (paired := logged_difference(m)) is None else f"; {said_difference(*paired)}")
            + " (`creator-match promote` decides)"
        )
    elif result.unfair is not None:
        lines.append(
            f"against champion version {result.champion}: {result.unfair}; `promote` will refuse without --force"
        )
    return "\n".join(lines)


__all__ += ["summarize"]
