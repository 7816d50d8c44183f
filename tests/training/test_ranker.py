"""CreatorRanker against the contract every ranker must pass."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from tests.ranker_contract import RankerContract, synthetic_pairs
from training.ranker import CreatorRanker

# What fit refuses, whatever the other parameters.
REFUSED = [
    # A string is truthy: "no" constrained the heads.
    ({"monotone": "no"}, "Got monotone='no'; expected True or False"),
    # A cap of 0 or below left a head no rows ("Found array with 0 sample(s)").
    ({"max_impressions_weight": -5}, "Got max_impressions_weight=-5; expected a value above 0, or None for no cap"),
    ({"max_clicks_weight": 0}, "Got max_clicks_weight=0; expected a value above 0, or None for no cap"),
    # These were refused as parameters of HistGradientBoostingRegressor.
    ({"learning_rate": -1}, "Got learning_rate=-1; expected a value above 0"),
    ({"max_iter": 0}, "Got max_iter=0; expected a whole number of at least 1"),
    ({"max_iter": 2.5}, "Got max_iter=2.5; expected a whole number"),
    ({"max_features": 1.5}, "Got max_features=1.5; expected a share in (0, 1]"),
    ({"max_features": 0}, "Got max_features=0; expected a share in (0, 1]"),
    ({"n_members": 0}, "Got n_members=0; expected a whole number of at least 1"),
    ({"random_state": True}, "Got random_state=True; expected a whole number, a numpy RandomState or None"),
]


class TestCreatorRanker(RankerContract):
    ranker_class = CreatorRanker
    params: ClassVar[dict] = {"max_iter": 60}
    refused: ClassVar[list] = REFUSED


class TestAveragedCreatorRanker(RankerContract):
    """Heads averaged over boosters that draw half the features at each split."""

    ranker_class = CreatorRanker
    params: ClassVar[dict] = {"max_iter": 30, "max_features": 0.5, "n_members": 3}
    refused: ClassVar[list] = REFUSED


def test_averaged_heads_predict_the_members_mean_and_refuse_a_bad_member_count():
    import numpy as np
    import pytest

    from tests.ranker_contract import synthetic_pairs

    X, y = synthetic_pairs(1000, seed=2)
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


def test_a_seed_that_a_member_could_not_take_is_refused_naming_the_bound():
    """Member i of a head is seeded random_state + i, which numpy and the boosters take only below 2**32: -1 failed
    in numpy ("expected non-negative integer") and the last member's 2**32 as HistGradientBoostingRegressor's."""
    X, y = synthetic_pairs(200)
    for params, bound in (
        ({"random_state": -1}, 4294967295),
        ({"random_state": 2**32 - 2, "n_members": 3}, 4294967293),
    ):
        with pytest.raises(ValueError) as refused:
            CreatorRanker(**params).fit(X, y)
        expected = (
            f"Got random_state={params['random_state']}; expected a whole number from 0 to {bound} (2**32 - n_members)"
        )
        assert str(refused.value) == expected


def test_outcomes_that_are_not_counts_are_refused_naming_the_column_and_how_many_rows():
    """Half the click labels NaN trained on the other half without a word (the rate heads dropped those rows)."""
    X, y = synthetic_pairs(200)
    y = y.astype(float)
    y.loc[:99, "clicks"] = np.nan
    with pytest.raises(ValueError, match=r"^Got 100 of 200 rows whose clicks is not a count \(the first: row 0, nan\)"):
        CreatorRanker(max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match=r"^Got 1 of 200 rows whose orders is not a count \(the first: row 7, -1"):
        CreatorRanker(max_iter=5).fit(X, y.fillna(0).assign(orders=np.where(X.index == 7, -1, 0)))


def test_predict_names_the_feature_columns_it_lacks_as_fit_does():
    """predict raised a bare KeyError without a column and an IndexError on an array."""
    X, y = synthetic_pairs(300)
    fitted = CreatorRanker(max_iter=5).fit(X, y)
    for method in (fitted.predict, lambda data: CreatorRanker(max_iter=5).fit(data, y)):
        with pytest.raises(ValueError, match=r"^X lacks feature columns \['similarity'\]$"):
            method(X.drop(columns="similarity"))
        with pytest.raises(ValueError, match=r"^Got X as ndarray; expected a DataFrame with the feature columns"):
            method(X.to_numpy())


def test_a_feature_with_no_value_is_fitted_and_never_used():
    """An optional creator column absent or empty in the whole table is a feature with no value at all, which
    scikit-learn 1.9's binner failed on ("window shape cannot be larger than input array shape"); so did one whose
    values are all on rows the rate heads leave out. Such a feature takes no part in any tree: what scoring later
    finds there changes nothing."""
    import numpy as np
    import pandas as pd

    from tests.ranker_contract import synthetic_pairs
    from training.selection import SELECTION_FEATURES, selection_weights

    X, y = synthetic_pairs(2000, seed=7)
    X["avg_dwell_seconds"] = np.nan
    X["storefront_return_rate"] = np.where(y["clicks"] == 0, 0.5, np.nan)  # none where the order head fits
    fitted = CreatorRanker(max_iter=20).fit(X, y, sample_weight=np.ones(len(X)))
    filled = X.assign(avg_dwell_seconds=np.linspace(0, 600, len(X)))
    pd.testing.assert_frame_equal(fitted.predict(X), fitted.predict(filled))

    rows = X.assign(campaign_id=[f"c{i % 40}" for i in range(len(X))])[["campaign_id", *SELECTION_FEATURES]]
    weights = selection_weights(rows.iloc[:1000], rows.iloc[1000:], power=0.5)
    assert np.isfinite(weights).all() and weights.mean() == pytest.approx(1.0)


@pytest.mark.parametrize("params", [{}, {"n_members": 3, "max_features": 0.5}], ids=["one booster", "averaged"])
def test_a_weighted_reach_head_predicts_the_bits_of_the_booster_binning_on_its_own(params):
    """Given weights, the reach head bins through `WeightedQuantileBins` as the rate heads do; the booster binned
    the weights itself before, slowly (7.8 s of a 9.3 s fit on 3,000 rows). Its predictions are the same bits, and
    a ranker pickled then, whose reach head is that bare booster, still predicts."""
    import copy

    from training.weighted_bins import with_values

    # 400 rows: more distinct values in every continuous feature than the booster's 255 bins, so that it draws
    # their edges as weighted quantiles (fewer, and it would take the values themselves), and the bare booster's
    # weighted binning, the slow part, costs a third of 1,000 rows'.
    X, y = synthetic_pairs(400, seed=8)
    X.loc[X.index % 7 == 0, "log_avg_views"] = np.nan
    rng = np.random.default_rng(8)
    weights = np.where(rng.random(len(X)) < 0.05, 0.0, rng.lognormal(0, 1, len(X)))  # some rows weigh nothing
    fitted = CreatorRanker(max_iter=20, cold_share=0, **params).fit(X, y, sample_weight=weights)
    assert type(fitted.reach_).__name__ == "Pipeline"
    on_its_own = fitted._head("reach", 0, weighted=False)
    data = with_values(X.to_numpy(float), weights)
    before = copy.copy(fitted)
    before.reach_ = on_its_own.fit(data, y["impressions"].to_numpy(float), sample_weight=weights)
    new = X.sample(frac=1, random_state=9).assign(log_followers=lambda frame: frame["log_followers"] * 1.5)
    for rows in (X, new):  # beyond the training range too
        pd.testing.assert_frame_equal(fitted.predict(rows), before.predict(rows), check_exact=True)
    unweighted = CreatorRanker(max_iter=20, cold_share=0, **params).fit(X, y)
    assert type(unweighted.reach_).__name__ == type(on_its_own).__name__  # no bins without weights
