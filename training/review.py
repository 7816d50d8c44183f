"""What a reviewer sees in MLflow: plots, the champion on the same held-out data, and a model card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import COVERED_STAGES, FUNNEL_STAGE
from features.duplicate_evidence import DuplicateEvidence
from features.embeddings import Embedder, creator_vectors
from features.pairwise import FEATURES
from training.evaluate import expected_sales, ndcg_by_campaign, ranked_campaigns
from training.forecast_interval import FORECAST_COVERAGE
from training.promotion import MIN_CAMPAIGNS, logged_difference, said_difference
from training.registry import DISTRIBUTION

__all__ = [
    "SLATE_BASELINE",
    "SlateBuilder",
    "by_category",
    "by_product_type",
    "captured_by_k",
    "model_card",
    "not_evaluated",
    "permutation_importances",
    "plot_calibration",
    "plot_captured",
    "plot_importance",
    "plot_slates",
    "review_by",
    "slate_candidates",
    "slate_capture",
    "slate_members",
    "slate_metrics",
]

# Builds slates from scored candidates and what the near-duplicate rule compares (rows indexed by `creator_row`)
# and returns the chosen rows: `matcher.slate.default_slates`, passed in because training may not import matcher.
SlateBuilder = Callable[[pd.DataFrame, DuplicateEvidence], pd.DataFrame]
# The baseline slates are compared with when there is no champion: the sellers' own hand pick.
SLATE_BASELINE = "tags_then_followers"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _reliability(p: np.ndarray, trials: np.ndarray, successes: np.ndarray, bins: int = 10) -> pd.DataFrame:
    keep = trials > 0
    frame = pd.DataFrame({"p": p[keep], "n": trials[keep], "k": successes[keep]})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    grouped = frame.assign(pn=frame["p"] * frame["n"]).groupby("bin")[["pn", "k", "n"]].sum()
    return pd.DataFrame({"predicted": grouped["pn"] / grouped["n"], "observed": grouped["k"] / grouped["n"]})


def plot_calibration(predictions: pd.DataFrame, pairs: pd.DataFrame, path: Path) -> Path:
    """Reliability of both heads on held-out pairs: predicted vs observed rate, ten equal-count bins."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, head, trials, successes, title in (
        (axes[0], "p_click", "impressions", "clicks", "click-through per impression"),
        (axes[1], "p_order", "clicks", "orders", "orders per click"),
    ):
        table = _reliability(
            predictions[head].to_numpy(), pairs[trials].to_numpy(float), pairs[successes].to_numpy(float)
        )
        top = float(max(table.max().max(), 1e-6)) * 1.1
        ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
        ax.plot(table["predicted"], table["observed"], marker="o")
        ax.set(title=title, xlabel="predicted", ylabel="observed", xlim=(0, top), ylim=(0, top))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def by_category(
    pairs: pd.DataFrame, predicted: pd.DataFrame, scores: dict[str, np.ndarray], category: pd.Series, k: int = 10
) -> pd.DataFrame:
    """The held-out review per category of the campaigns (`review_by`'s columns, keyed `category`).

    An overall figure hides a category where the ranker does no better than followers, or one whose clicks it
    overstates twofold.

    Args:
        pairs: the held-out pairs (campaign_id, impressions, clicks, orders, sales).
        predicted: the ranker's predictions for them (`PREDICTIONS`), by row.
        scores: named scores of the pairs (the model's expected sales, the baselines'), by row.
        category: each campaign's category, indexed by campaign_id.
    """
    of_pair = pairs["campaign_id"].map(category).fillna("(none)").to_numpy()
    return review_by("category", of_pair, pairs, predicted, scores, k)


def by_product_type(
    pairs: pd.DataFrame, predicted: pd.DataFrame, scores: dict[str, np.ndarray], k: int = 10
) -> pd.DataFrame:
    """The held-out review per product type of the campaigns as resolved (`review_by`'s columns, keyed
    `product_type`): the two kinds take slates of different widths and sell through different creators, and a
    ranker can serve one well and the other poorly.

    Args:
        pairs: the held-out pairs, with their `non_standard` feature (1 for a non-standard campaign).
        predicted: the ranker's predictions for them (`PREDICTIONS`), by row.
        scores: named scores of the pairs, by row.
    """
    of_pair = np.where(pairs["non_standard"].to_numpy(float) > 0.5, "non_standard", "standard")
    return review_by("product_type", of_pair, pairs, predicted, scores, k)


def review_by(
    key: str,
    of_pair: np.ndarray,
    pairs: pd.DataFrame,
    predicted: pd.DataFrame,
    scores: dict[str, np.ndarray],
    k: int = 10,
) -> pd.DataFrame:
    """The held-out review per group of pairs: how many campaigns (and how many NDCG counts: two pairs or more,
    some sales), pairs, NDCG@k of realized sales by each score, and each head's realized over predicted
    (impressions, clicks, orders; 1 is calibrated).

    Args:
        key: the name of the table's group column.
        of_pair: each pair's group, by row (a campaign's pairs share one).
        pairs, predicted, scores: as `by_category` takes them.
    """
    expected = {
        "impressions": predicted["expected_impressions"].to_numpy(float),
        "clicks": pairs["impressions"].to_numpy(float) * predicted["p_click"].to_numpy(float),
        "orders": pairs["clicks"].to_numpy(float) * predicted["p_order"].to_numpy(float),
    }
    rows = []
    for name in sorted(set(of_pair)):
        at = np.flatnonzero(of_pair == name)
        group = pairs.iloc[at]
        row = {
            key: name,
            "campaigns": group["campaign_id"].nunique(),
            "ranked_campaigns": ranked_campaigns(group),
            "pairs": len(at),
        }
        row |= {f"ndcg_at_{k}_{score}": ndcg_by_campaign(group, values[at], k) for score, values in scores.items()}
        for column, values in expected.items():
            total = values[at].sum()
            row[f"{column}_realized_over_predicted"] = group[column].sum() / total if total > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def captured_by_k(pairs: pd.DataFrame, scores: dict[str, np.ndarray], max_k: int = 15) -> pd.DataFrame:
    """Share of each held-out campaign's best realized sales that the top-k by each score captures, averaged.

    At each k, over the campaigns with sales and more than k pairs: the top k of one with k or fewer is all of it
    whatever the order (`training.evaluate.captured_sales`'s rule too).
    """
    sales = pairs["sales"].to_numpy(float)
    rows = []
    for _, index in pairs.groupby("campaign_id").indices.items():
        realized = sales[index]
        if realized.sum() <= 0:
            continue
        best = np.cumsum(np.sort(realized)[::-1])
        for name, score in scores.items():
            got = np.cumsum(realized[np.argsort(-np.nan_to_num(score[index], nan=-np.inf), kind="stable")])
            for k in range(1, min(max_k, len(index) - 1) + 1):
                rows.append((name, k, got[k - 1] / best[k - 1]))
    frame = pd.DataFrame(rows, columns=["score", "k", "captured"])
    return frame.groupby(["score", "k"])["captured"].mean().unstack("score")


def plot_captured(table: pd.DataFrame, path: Path) -> Path:
    """Captured realized sales by slate size, for the model and each baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in table.columns:
        ax.plot(table.index, table[name], marker="o" if name == "model" else None, label=name)
    ax.set(
        title="held-out campaigns: realized sales captured by the top k",
        xlabel="k (slate size)",
        ylabel="share of the best k's sales",
        ylim=(0, 1.02),
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# Rows of shuffled copies of the held-out pairs scored per call of the ranker's `predict` (`permutation_importances`).
# A call costs tens of milliseconds before its first row: 129 held-out pairs took 50 ms alone and 14 ms as one of 133
# copies in a call. Bounded, so that a large hold-out's copies are not all held in memory at once.
_PERMUTED_ROWS_PER_PREDICT = 100_000


def permutation_importances(
    ranker, pairs: pd.DataFrame, price: np.ndarray, seed: int = 0, n_repeats: int = 3
) -> np.ndarray:
    """Each feature's permutation importance for held-out NDCG@10 of realized sales, mean of `n_repeats` shuffles.

    The figures `sklearn.inspection.permutation_importance(..., n_repeats=n_repeats, random_state=seed)` gives as
    `importances_mean`, to the bit: the same shuffles of each column, drawn as it draws them, and the same scores,
    the ranker predicting each row alone (which is what makes a batch's figures those of one copy at a time); but
    the shuffled copies are predicted many to a call rather than one each, a call's own cost having been most of a
    small hold-out's review. A scikit-learn that drew its shuffles otherwise would fail the test holding the two
    equal (tests/training/test_training.py).
    """
    features = pairs[FEATURES]
    column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)

    def shuffled_copies():
        yield features
        for column in features.columns:
            shuffle, order, values = np.random.RandomState(column_seed), np.arange(len(features)), features[column]
            for _ in range(n_repeats):
                shuffle.shuffle(order)  # each repeat shuffles the column as the one before left it, as sklearn does
                values = values.iloc[order].set_axis(features.index)
                copy = features.copy()
                copy[column] = values
                yield copy

    scores: list[float] = []
    batch: list[pd.DataFrame] = []

    def score(batch: list[pd.DataFrame]) -> None:
        predicted = ranker.predict(pd.concat(batch, ignore_index=True))
        for at in range(0, len(predicted), len(features)):
            part = predicted.iloc[at : at + len(features)].set_axis(features.index)
            scores.append(ndcg_by_campaign(pairs, expected_sales(part, price), 10))

    for copy in shuffled_copies():
        batch.append(copy)
        if len(batch) * len(features) >= _PERMUTED_ROWS_PER_PREDICT:
            score(batch)
            batch = []
    if batch:
        score(batch)
    baseline, permuted = scores[0], np.array(scores[1:]).reshape(len(FEATURES), n_repeats)
    return np.mean(baseline - permuted, axis=1)


def plot_importance(ranker, pairs: pd.DataFrame, price: np.ndarray, path: Path, seed: int = 0) -> pd.Series:
    """Permutation importance of each feature for held-out NDCG@10 of realized sales; plots the top 15."""
    importance = pd.Series(permutation_importances(ranker, pairs, price, seed), index=FEATURES).sort_values()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    shown = importance.tail(15)
    shown.plot.barh(ax=ax)
    ax.set(xlabel="held-out NDCG@10 lost when shuffled")
    # Over the figure, not the axes: the feature names take half the width, and a title centred on what is left
    # ran off the right edge.
    fig.suptitle(f"permutation importance, top {len(shown)} features")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return importance


def slate_candidates(
    pairs: pd.DataFrame, creators: pd.DataFrame, embedder: Embedder
) -> tuple[pd.DataFrame, DuplicateEvidence]:
    """Held-out pairs as a slate builder's candidates, still unscored, and what its near-duplicate rule compares.

    Args:
        pairs: held-out pairs with FEATURES, `sales` and each campaign's `budget`.
        creators: the creators table (for creator type and profile text).
        embedder: embeds profiles for the builder's near-duplicate rule (cached vectors are reused).

    Returns:
        One row per pair with campaign_id, creator_id, creator_row (row in the evidence), product_type, budget,
        commission_rate, funnel_stage, hist_campaigns and realized sales; and the creators' profile vectors with
        which of them hold a bio (`features.duplicate_evidence.DuplicateEvidence`).
    """
    used = pd.unique(pairs["creator_id"])
    profiles = creators.drop_duplicates("creator_id").set_index("creator_id").loc[used].reset_index()
    creator_row = pd.Series(np.arange(len(used)), index=used)[pairs["creator_id"]].to_numpy()
    candidates = pd.DataFrame(
        {
            "campaign_id": pairs["campaign_id"].to_numpy(),
            "creator_id": pairs["creator_id"].to_numpy(),
            "creator_row": creator_row,
            # The pair feature holds the product type as resolved for the campaign at training time.
            "product_type": np.where(pairs["non_standard"].to_numpy(float) > 0, "non_standard", "standard"),
            "budget": pairs["budget"].to_numpy(float),
            "commission_rate": pairs["commission_rate"].to_numpy(float),
            "funnel_stage": profiles["creator_type"].map(FUNNEL_STAGE).to_numpy()[creator_row],
            "hist_campaigns": pairs["hist_campaigns"].to_numpy(float),
            "sales": pairs["sales"].to_numpy(float),
        }
    )
    return candidates, DuplicateEvidence.of(creator_vectors(embedder, profiles), profiles)


def slate_members(
    build: SlateBuilder,
    candidates: pd.DataFrame,
    evidence: DuplicateEvidence,
    score: np.ndarray,
    expected_sales: np.ndarray,
) -> pd.DataFrame:
    """The candidate rows `build` puts on a slate when pairs are ranked by `score`.

    The budget rule reads `expected_sales` x commission rate, so a baseline without a sales estimate of its own
    can be given the model's.
    """
    scored = candidates.assign(
        score=score, expected_commission=expected_sales * candidates["commission_rate"].to_numpy(float)
    )
    chosen = build(scored, evidence)
    keys = pd.MultiIndex.from_frame(candidates[["campaign_id", "creator_id"]])
    return candidates[keys.isin(pd.MultiIndex.from_frame(chosen[["campaign_id", "creator_id"]]))]


def slate_capture(members: pd.DataFrame, candidates: pd.DataFrame) -> pd.Series:
    """Per campaign with realized sales: the share of them earned by the creators on its slate."""
    total = candidates.groupby("campaign_id")["sales"].sum()
    total = total[total > 0]
    return members.groupby("campaign_id")["sales"].sum().reindex(total.index, fill_value=0.0) / total


def _slate_sizes(members: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    kind = candidates.groupby("campaign_id")["product_type"].first()
    size = members.groupby("campaign_id").size().reindex(kind.index, fill_value=0)
    return pd.DataFrame({"product_type": kind, "size": size})


def slate_metrics(members: pd.DataFrame, candidates: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Mean slate size by product type, funnel coverage of non-standard slates, and realized sales captured.

    Campaigns left without a slate count with size 0 and as uncovered; NaN where no campaign qualifies.
    """
    sizes = _slate_sizes(members, candidates)
    by_type = sizes.groupby("product_type")["size"].mean()
    stages = members.groupby("campaign_id")["funnel_stage"].agg(set)
    non_standard = sizes.index[sizes["product_type"] == "non_standard"]
    covered = [set(COVERED_STAGES) <= stages.get(c, set()) for c in non_standard]
    found = {
        "slate_campaigns": float(len(sizes)),
        "slate_size_standard": float(by_type.get("standard", np.nan)),
        "slate_size_non_standard": float(by_type.get("non_standard", np.nan)),
        "slate_funnel_coverage": float(np.mean(covered)) if covered else np.nan,
        "slate_captured_sales": float(slate_capture(members, candidates).mean()),
    }
    return {f"{prefix}{k}": v for k, v in found.items()}


def plot_slates(
    ours: pd.DataFrame, theirs: pd.DataFrame, candidates: pd.DataFrame, other: str, title: str, path: Path
) -> Path:
    """This version's slates against another's on the same campaigns: sales captured per campaign, mean sizes."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    kind = candidates.groupby("campaign_id")["product_type"].first()
    mine, other_share = slate_capture(ours, candidates), slate_capture(theirs, candidates)
    for product_type, marker in (("standard", "o"), ("non_standard", "s")):
        ids = mine.index[kind.reindex(mine.index) == product_type]
        axes[0].scatter(other_share[ids], mine[ids], marker=marker, label=product_type.replace("_", "-"), alpha=0.8)
    axes[0].plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    axes[0].set(
        title="share of each campaign's realized sales on its slate",
        xlabel=other,
        ylabel="this version",
        xlim=(-0.02, 1.02),
        ylim=(-0.02, 1.02),
    )
    axes[0].legend(title="product type")
    sizes = pd.DataFrame(
        {
            "this version": _slate_sizes(ours, candidates).groupby("product_type")["size"].mean(),
            other: _slate_sizes(theirs, candidates).groupby("product_type")["size"].mean(),
        }
    )
    sizes = sizes.reindex([t for t in ("standard", "non_standard") if t in sizes.index])
    sizes.index = sizes.index.str.replace("_", "-")
    sizes.plot.bar(ax=axes[1], rot=0)
    axes[1].set(title="mean slate size", xlabel="product type", ylabel="creators")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def not_evaluated(metrics: dict[str, float]) -> str | None:
    """Why a run made no held-out fit, from its counts (None when it made one): with a single settled campaign,
    the held-out share is that campaign, and no earlier one is left to fit on; nothing is then evaluated, plotted
    or compared, and the orders range is not set."""
    if "n_train_pairs" not in metrics:  # a result made without a run's counts says nothing of it
        return None
    earlier, held_out = int(metrics["n_train_pairs"]), int(metrics["n_test_pairs"])
    if earlier and held_out:
        return None
    campaigns = int(metrics["n_campaigns"])
    return (
        f"no held-out fit: {campaigns} settled campaign{'' if campaigns == 1 else 's'} left {earlier} earlier pairs "
        f"to fit on and {held_out} held-out pairs to evaluate on"
    )


def model_card(
    name: str,
    version: str,
    tags: dict[str, str],
    metrics: dict[str, float],
    importance: pd.Series | None,
    champion: str | None,
    slates_against: str | None = None,
    unfair: str | None = None,
) -> str:
    """A markdown review summary for the model version's description and the run's artifacts.

    `slates_against` says what `review/slates_vs_champion.png` compares this version's slates with; None
    when no slates were built (no slate builder given). `unfair` says why the champion could not be judged.
    """

    def fmt(key: str, count: bool = False, share: bool = False) -> str:
        value = metrics.get(key)
        if value is None or not np.isfinite(value):
            return "n/a"
        return f"{value:.0f}" if count else f"{value:.0%}" if share else f"{value:.3f}"

    lines = [
        f"# {name} version {version}",
        "",
        "## Training data",
        f"- window: {tags['training_window']}; fingerprint `{tags['data_fingerprint']}` ("
        + ", ".join(
            f"{key.removeprefix('data_fingerprint.')} `{value}`"
            for key, value in tags.items()
            if key.startswith("data_fingerprint.")
        )
        + ")",
        f"- {int(metrics['n_pairs'])} settled (campaign, creator) pairs from {int(metrics['n_campaigns'])} campaigns; "
        f"{int(metrics['n_rejected_rows'])} input rows rejected",
        f"- labels: {tags['attribution']} attribution, {tags['attribution_window_hours']} h window",
        f"- embedding model: {tags['embedding_model']} "
        f"({tags['embedding_dim']}-d, {tags['embedding_backend']} backend)",
        f"- code: {DISTRIBUTION} {tags.get('code_version', 'unknown')}"
        + (
            f", git commit `{tags['git_commit']}`"
            + {"true": " with uncommitted changes", "false": ""}.get(tags.get("git_dirty", ""), ", state unknown")
            if "git_commit" in tags
            else ", not a git checkout"
        ),
        "",
        "## Held-out later campaigns (the latest by start date: the run's `holdout` share)",
        f"{fmt('n_test_campaigns', count=True)} campaigns and {fmt('n_test_pairs', count=True)} pairs; the NDCG "
        f"figures average the {fmt('n_ranked_test_campaigns', count=True)} campaigns with two pairs or more and some "
        "realized sales"
        + (
            f", the cold row its {fmt('cold_n_ranked_campaigns', count=True)} such campaigns."
            if "cold_n_ranked_campaigns" in metrics
            else "."
        ),
        "",
        # A random order's NDCG is the floor each row starts from, and it differs by row: the cold rows' few
        # candidates per campaign put it far higher than the held-out campaigns' (0.705 against 0.259).
        "| measure | this version | followers | tags then followers | similarity | random order | "
        "this version, champion's campaigns | champion |",
        "|---|---|---|---|---|---|---|---|",
        f"| NDCG@10 of realized sales | {fmt('ndcg_at_10')} | {fmt('baseline_followers_ndcg_at_10')} | "
        f"{fmt('baseline_tags_then_followers_ndcg_at_10')} | {fmt('baseline_similarity_ndcg_at_10')} | "
        f"{fmt('baseline_random_ndcg_at_10')} | {fmt('challenger_ndcg_at_10')} | {fmt('champion_ndcg_at_10')} |",
        f"| click AUC / log loss | {fmt('click_auc')} / {fmt('click_log_loss')} | | | | | "
        f"{fmt('challenger_click_auc')} / {fmt('challenger_click_log_loss')} | "
        f"{fmt('champion_click_auc')} / {fmt('champion_click_log_loss')} |",
        f"| order AUC / log loss | {fmt('order_auc')} / {fmt('order_log_loss')} | | | | | "
        f"{fmt('challenger_order_auc')} / {fmt('challenger_order_log_loss')} | "
        f"{fmt('champion_order_auc')} / {fmt('champion_order_log_loss')} |",
        *(
            [
                f"| NDCG@10 of creators held out of training entirely ({fmt('cold_n_creators', count=True)} on "
                f"{fmt('cold_n_campaigns', count=True)} campaigns, scored without their record: a new creator's "
                f"case) | {fmt('cold_ndcg_at_10')} | {fmt('cold_baseline_followers_ndcg_at_10')} | "
                f"{fmt('cold_baseline_tags_then_followers_ndcg_at_10')} | "
                f"{fmt('cold_baseline_similarity_ndcg_at_10')} | {fmt('cold_baseline_random_ndcg_at_10')} | | |"
            ]
            if "cold_ndcg_at_10" in metrics
            else []
        ),
        "",
        "Champion at training time: none (this version is made champion only if it is the model's first version "
        "and none holds the alias once it is registered; otherwise `creator-match promote` sets the `champion` "
        "alias)."
        if champion is None
        else f"Champion at training time: version {champion}. The last two columns are on the "
        f"{int(metrics.get('champion_comparison_campaigns', 0))} held-out campaigns it had not trained on that have "
        "sales to rank (n/a when "
        f"fewer than {MIN_CAMPAIGNS}); `creator-match promote` compares their NDCG@10."
        + ("" if (paired := logged_difference(metrics)) is None else f" Paired: {said_difference(*paired)}.")
        + ("" if unfair is None else f" Not compared: {unfair}."),
        "",
        "## Plots",
    ]
    # A run without a held-out fit logged none of the review's plots or slates (`training.train`).
    unevaluated = not_evaluated(metrics)
    if unevaluated is not None:
        lines.append(f"None: {unevaluated}.")
    else:
        lines += [
            "- `review/calibration.png`: predicted vs observed click-through and orders per click",
            "- `review/captured_by_k.png`: realized sales captured by the top k, model vs baselines",
            "- `review/importance.png`: which features the ranking leans on",
        ]
    if slates_against is not None:
        lines.append(f"- `review/slates_vs_champion.png`: this version's slates vs {slates_against}")
    lines += ["", "## Slates on held-out campaigns"]
    if unevaluated is not None:
        lines.append(f"Not built in this run: {unevaluated}.")
    elif slates_against is None:
        lines.append(
            "Not built in this run: no slate builder was given (`creator-match train` passes matcher.slate's)."
        )
    else:
        columns = ("", "versus_champion_", "champion_", f"baseline_{SLATE_BASELINE}_")
        rows = (
            ("campaigns", "slate_campaigns"),
            ("mean slate size, standard", "slate_size_standard"),
            ("mean slate size, non-standard", "slate_size_non_standard"),
            ("non-standard slates with awareness, consideration and conversion", "slate_funnel_coverage"),
            ("share of realized sales on the slate", "slate_captured_sales"),
        )
        lines += [
            "Default slate policy, scores of the version fitted on earlier campaigns; a campaign's candidates are the "
            "creators who took part in it, so captured sales are a share of theirs. The champion is judged on the "
            "held-out campaigns it never trained on, next to this version on the same campaigns; the baseline's "
            "budget rule reads this version's expected sales.",
            "",
            "| measure | this version | this version, champion's campaigns | champion | tags then followers |",
            "|---|---|---|---|---|",
            *(
                f"| {label} | " + " | ".join(fmt(prefix + key, key == "slate_campaigns") for prefix in columns) + " |"
                for label, key in rows
            ),
        ]
    lines += ["", "## Range of a slate's orders"]
    if "forecast_low_multiple" in metrics:
        lines.append(
            f"From the {fmt('forecast_campaigns', True)} held-out campaigns (split conformal, "
            f"`training.forecast_interval`): a slate's orders between {fmt('forecast_low_multiple')} and "
            f"{fmt('forecast_high_multiple')} times (expected orders + 1), less 1, for {FORECAST_COVERAGE:.0%} of "
            "campaigns like those "
            "(a campaign in a category with no past campaign gets no range); the earlier half's range held "
            f"{fmt('forecast_later_half_coverage', share=True)} of the later half (n/a with fewer than 18)."
        )
    elif "forecast_campaigns" in metrics:
        lines.append(
            f"None: {fmt('forecast_campaigns', True)} held-out campaigns are too few to set one; summaries give NaN."
        )
    else:
        lines.append(f"None: {unevaluated or 'no campaign was held out'}; summaries give NaN.")
    if importance is not None:
        top = ", ".join(f"{name} ({value:.3f})" for name, value in importance.sort_values().tail(5)[::-1].items())
        lines += ["", "## Leans most on", f"{top}"]
    lines += [
        "",
        "## Known limits",
        "- creators and campaigns with no history are scored from profile, tags and category priors only;",
        "- expected impressions assume the creator posts as in past campaigns; take-up of invitations is not modelled "
        "per creator;",
        "- multi-touch labels exist only for campaigns with touch and purchase logs.",
    ]
    return "\n".join(lines)
