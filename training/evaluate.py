"""Held-out evaluation: later campaigns, the model's heads, and its ranking against simple baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

from training.ranker import CreatorRanker

__all__ = ["BASELINES", "evaluate_ranking", "expected_sales", "head_metrics", "ndcg_by_campaign", "time_split"]

# What sellers do by hand, and the simplest signals: each maps pair rows to a score, higher first. A seller's
# hand pick is creators whose interests fit the product (by meaning, `fitting_tags`), then the biggest.
BASELINES = {
    "followers": lambda pairs: pairs["log_followers"].to_numpy(float),
    "tags_then_followers": lambda pairs: (
        pairs["fitting_tags"].to_numpy(float) * 100 + np.nan_to_num(pairs["log_followers"].to_numpy(float))
    ),
    "similarity": lambda pairs: pairs["similarity"].to_numpy(float),
}


def time_split(pairs: pd.DataFrame, holdout: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on earlier campaigns, evaluate on the latest `holdout` share of them (by start date)."""
    starts = pairs.groupby("campaign_id")["start_date"].first().sort_values(kind="stable")
    n_test = max(1, round(len(starts) * holdout))
    test_ids = set(starts.index[-n_test:])
    is_test = pairs["campaign_id"].isin(test_ids)
    return pairs[~is_test].reset_index(drop=True), pairs[is_test].reset_index(drop=True)


def _binomial_metrics(p: np.ndarray, trials: np.ndarray, successes: np.ndarray) -> tuple[float, float]:
    keep = trials > 0
    p, trials, successes = p[keep], trials[keep], successes[keep]
    y = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    w = np.concatenate([successes, trials - successes])
    scores = np.concatenate([p, p])
    nonzero = w > 0
    if len(np.unique(y[nonzero])) < 2:
        return float("nan"), float("nan")
    return (
        float(roc_auc_score(y[nonzero], scores[nonzero], sample_weight=w[nonzero])),
        float(log_loss(y[nonzero], np.clip(scores[nonzero], 1e-7, 1 - 1e-7), sample_weight=w[nonzero])),
    )


def head_metrics(predictions: pd.DataFrame, pairs: pd.DataFrame) -> dict[str, float]:
    """AUC and log loss of the click head (per impression) and the order head (per click)."""
    click_auc, click_ll = _binomial_metrics(
        predictions["p_click"].to_numpy(),
        pairs["impressions"].to_numpy(float),
        pairs["clicks"].to_numpy(float),
    )
    order_auc, order_ll = _binomial_metrics(
        predictions["p_order"].to_numpy(), pairs["clicks"].to_numpy(float), pairs["orders"].to_numpy(float)
    )
    return {
        "click_auc": click_auc,
        "click_log_loss": click_ll,
        "order_auc": order_auc,
        "order_log_loss": order_ll,
    }


def ndcg_by_campaign(pairs: pd.DataFrame, scores: np.ndarray, k: int) -> float:
    """Mean over campaigns (with some realized sales) of NDCG@k of realized sales ordered by `scores`."""
    values = []
    for _, index in pairs.groupby("campaign_id").indices.items():
        realized = pairs["sales"].to_numpy(float)[index]
        if len(index) < 2 or realized.sum() <= 0:
            continue
        values.append(ndcg_score(realized[None, :], np.nan_to_num(scores[index], nan=-1e9)[None, :], k=k))
    return float(np.mean(values)) if values else float("nan")


def expected_sales(predicted: pd.DataFrame, price: np.ndarray) -> np.ndarray:
    """The score: expected impressions x click-through x orders per click x price."""
    return (predicted["expected_impressions"] * predicted["p_click"] * predicted["p_order"]).to_numpy() * price


def evaluate_ranking(ranker: CreatorRanker, pairs: pd.DataFrame, price: np.ndarray, k: int = 10) -> dict[str, float]:
    """Head metrics, and NDCG@k of realized sales for the model's expected sales and every baseline."""
    predicted = ranker.predict(pairs)
    metrics = head_metrics(predicted, pairs)
    expected_sales = (
        predicted["expected_impressions"] * predicted["p_click"] * predicted["p_order"]
    ).to_numpy() * price
    metrics[f"ndcg_at_{k}"] = ndcg_by_campaign(pairs, expected_sales, k)
    for name, baseline in BASELINES.items():
        metrics[f"baseline_{name}_ndcg_at_{k}"] = ndcg_by_campaign(pairs, baseline(pairs), k)
    return metrics
