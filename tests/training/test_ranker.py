"""CreatorRanker against the contract every ranker must pass."""

from __future__ import annotations

from typing import ClassVar

from tests.ranker_contract import RankerContract
from training.ranker import CreatorRanker


class TestCreatorRanker(RankerContract):
    ranker_class = CreatorRanker
    params: ClassVar[dict] = {"max_iter": 60}


def test_scores_without_a_record_follow_what_is_known_of_the_creator():
    """Rows added without their record teach the heads history-free scoring: reach and fit still rank."""
    import numpy as np

    from features.pairwise import without_history
    from tests.ranker_contract import synthetic_pairs

    X, y = synthetic_pairs(4000, seed=3)
    X["hist_campaigns"] = np.abs(X["hist_campaigns"]) + 1  # everyone has a record in training
    cold = without_history(X)
    predicted = CreatorRanker(max_iter=60, cold_share=0.3).fit(X, y).predict(cold)
    sales = predicted["expected_impressions"] * predicted["p_click"] * predicted["p_order"]
    truth = np.exp(X["log_followers"] * 0.3) * (0.01 + 0.03 * X["similarity"]) * (0.02 + 0.05 * X["similarity"])
    assert sales.std() > 0.1 * sales.mean()  # not one flat estimate for every new creator
    assert np.corrcoef(sales.rank(), truth.rank())[0, 1] >= 0.5


def test_a_small_prediction_runs_on_one_thread_with_the_same_bits(monkeypatch):
    """Fewer than _SERIAL_ROWS rows are predicted on one OpenMP thread (a team per tree costs more than the work)."""
    from threadpoolctl import threadpool_info

    from tests.ranker_contract import synthetic_pairs
    from training import ranker as module

    X, y = synthetic_pairs(3000, seed=5)
    fitted = CreatorRanker(max_iter=30).fit(X, y)
    seen = []
    booster = fitted.click_.named_steps["boost"]
    predict = booster._raw_predict

    def spy(data):
        seen.append(max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp"))
        return predict(data)

    booster._raw_predict = spy
    small = fitted.predict(X.head(400))
    assert seen == [1]
    monkeypatch.setattr(module, "_SERIAL_ROWS", 10)  # the same rows, now "large": every thread OpenMP has
    large = fitted.predict(X.head(400))
    assert seen[1] == max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp")
    assert small.equals(large)
