"""What a reviewer sees in MLflow: plots, the champion on the same held-out data, and a model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.pairwise import FEATURES
from training.evaluate import expected_sales, ndcg_by_campaign

__all__ = ["captured_by_k", "model_card", "plot_calibration", "plot_captured", "plot_importance"]


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


def captured_by_k(pairs: pd.DataFrame, scores: dict[str, np.ndarray], max_k: int = 15) -> pd.DataFrame:
    """Share of each held-out campaign's best realized sales that the top-k by each score captures, averaged."""
    sales = pairs["sales"].to_numpy(float)
    rows = []
    for _, index in pairs.groupby("campaign_id").indices.items():
        realized = sales[index]
        if realized.sum() <= 0:
            continue
        best = np.cumsum(np.sort(realized)[::-1])
        for name, score in scores.items():
            got = np.cumsum(realized[np.argsort(-np.nan_to_num(score[index], nan=-np.inf), kind="stable")])
            for k in range(1, min(max_k, len(index)) + 1):
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


def plot_importance(ranker, pairs: pd.DataFrame, price: np.ndarray, path: Path, seed: int = 0) -> pd.Series:
    """Permutation importance of each feature for held-out NDCG@10 of realized sales; plots the top 15."""
    from sklearn.inspection import permutation_importance

    def ndcg_of(estimator, X: pd.DataFrame, _y) -> float:
        return ndcg_by_campaign(pairs, expected_sales(estimator.predict(X), price), 10)

    result = permutation_importance(
        ranker, pairs[FEATURES], np.zeros(len(pairs)), scoring=ndcg_of, n_repeats=3, random_state=seed
    )
    importance = pd.Series(result.importances_mean, index=FEATURES).sort_values()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    importance.tail(15).plot.barh(ax=ax)
    ax.set(title="permutation importance (drop in held-out NDCG@10)", xlabel="NDCG@10 lost when shuffled")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return importance


def model_card(
    name: str,
    version: str,
    tags: dict[str, str],
    metrics: dict[str, float],
    importance: pd.Series | None,
    champion: str | None,
) -> str:
    """A markdown review summary for the model version's description and the run's artifacts."""

    def fmt(key: str) -> str:
        value = metrics.get(key)
        return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"

    lines = [
        f"# {name} version {version}",
        "",
        "## Training data",
        f"- window: {tags['training_window']}; fingerprint `{tags['data_fingerprint']}`",
        f"- {int(metrics['n_pairs'])} settled (campaign, creator) pairs from {int(metrics['n_campaigns'])} campaigns; "
        f"{int(metrics['n_rejected_rows'])} input rows rejected",
        f"- labels: {tags['attribution']} attribution, {tags['attribution_window_hours']} h window",
        f"- embedding model: {tags['embedding_model']} ({tags['embedding_dim']}-d)",
        "",
        "## Held-out later campaigns (latest 20% by start date)",
        "| measure | this version | followers | tags then followers | similarity | champion |",
        "|---|---|---|---|---|---|",
        f"| NDCG@10 of realized sales | {fmt('ndcg_at_10')} | {fmt('baseline_followers_ndcg_at_10')} | "
        f"{fmt('baseline_tags_then_followers_ndcg_at_10')} | {fmt('baseline_similarity_ndcg_at_10')} | "
        f"{fmt('champion_ndcg_at_10')} |",
        f"| click AUC / log loss | {fmt('click_auc')} / {fmt('click_log_loss')} | | | | "
        f"{fmt('champion_click_auc')} / {fmt('champion_click_log_loss')} |",
        f"| order AUC / log loss | {fmt('order_auc')} / {fmt('order_log_loss')} | | | | "
        f"{fmt('champion_order_auc')} / {fmt('champion_order_log_loss')} |",
        "",
        f"Champion at training time: {champion or 'none (this version becomes champion)'}; compared on "
        f"{int(metrics.get('champion_comparison_campaigns', 0))} held-out campaigns it had not trained on "
        "(n/a when fewer than 3).",
        "",
        "## Plots",
        "- `review/calibration.png`: predicted vs observed click-through and orders per click",
        "- `review/captured_by_k.png`: realized sales captured by the top k, model vs baselines",
        "- `review/importance.png`: which features the ranking leans on",
    ]
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
