"""CreatorRanker against the contract every ranker must pass."""

from __future__ import annotations

from typing import ClassVar

from tests.ranker_contract import RankerContract
from training.ranker import CreatorRanker


class TestCreatorRanker(RankerContract):
    ranker_class = CreatorRanker
    params: ClassVar[dict] = {"max_iter": 60}


class TestAveragedCreatorRanker(RankerContract):
    """Heads averaged over boosters that draw half the features at each split."""

    ranker_class = CreatorRanker
    params: ClassVar[dict] = {"max_iter": 30, "max_features": 0.5, "n_members": 3}


def test_averaged_heads_predict_the_members_mean_and_refuse_a_bad_member_count():
    import numpy as np
    import pytest

    from tests.ranker_contract import synthetic_pairs

    X, y = synthetic_pairs(3000, seed=2)
    averaged = CreatorRanker(max_iter=30, max_features=0.5, n_members=3, cold_share=0).fit(X, y)
    members = [
        CreatorRanker(max_iter=30, max_features=0.5, cold_share=0, random_state=seed).fit(X, y) for seed in range(3)
    ]
    together, alone = averaged.predict(X), [member.predict(X) for member in members]
    for column in together.columns:
        np.testing.assert_allclose(together[column], np.mean([a[column] for a in alone], axis=0), rtol=1e-9)
    assert not alone[0].equals(alone[1])  # each member drew its own features
    with pytest.raises(ValueError, match=r"Got n_members=0; expected a whole number of at least 1"):
        CreatorRanker(n_members=0).fit(X, y)


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
