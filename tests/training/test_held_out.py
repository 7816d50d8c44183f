"""The held-out evaluation sees nothing of the held-out campaigns' outcomes but their labels.

A trial changed only the held-out campaigns' orders and sales and found the held-out fit's training features
changed (the priors, tag affinity and context models had been fitted on every settled row). Here the same change
must leave the held-out fit's features, and its scores of the held-out pairs, exactly as they were. Likewise the
cold-start check learns nothing from the creators it holds out: its pairs are those of a world they never took
part in before.
"""

from __future__ import annotations

import os
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.pairwise import FEATURES
from training.dataset import build_training_data, build_with_holdout, read_training_tables, settled_training_rows
from training.evaluate import cold_scores, creator_split, time_split
from training.ranker import OUTCOMES, CreatorRanker
from training.selection import row_weights
from training.train import train

pytestmark = pytest.mark.slow
KEY = ["campaign_id", "creator_id"]


@pytest.fixture(scope="module")
def worlds(small_world_dir, tmp_path_factory):
    """The small world, and a copy whose held-out campaigns sold nothing; and the held-out campaigns."""
    real = small_world_dir
    _, held = time_split(settled_training_rows(read_training_tables(real)))
    held_out = set(held["campaign_id"])
    changed = tmp_path_factory.mktemp("leak-changed")
    for path in real.glob("*.parquet"):
        shutil.copy(path, changed / path.name)
    performance = pd.read_parquet(real / "performance.parquet")
    at = performance["campaign_id"].isin(held_out)
    performance.loc[at, "orders"] = 0
    performance.loc[at, [c for c in ("sales", "commission") if c in performance]] = 0.0
    performance.loc[at, [c for c in ("units",) if c in performance]] = 0
    performance.to_parquet(changed / "performance.parquet")
    return real, changed, held_out


def _sorted(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs.sort_values(KEY).reset_index(drop=True)


def test_held_out_outcomes_reach_no_feature_of_the_held_out_fit(worlds, embedder):
    real, changed, held_out = worlds
    built = {}
    for name, where in (("real", real), ("changed", changed)):
        tables = read_training_tables(where)
        earlier = set(settled_training_rows(tables)["campaign_id"]) - held_out
        built[name] = time_split(build_training_data(tables, embedder, learn_from=earlier).pairs)
    (real_train, real_test), (changed_train, changed_test) = built["real"], built["changed"]
    assert set(real_test["campaign_id"]) == held_out and len(real_train)
    pd.testing.assert_frame_equal(_sorted(real_train)[KEY + FEATURES], _sorted(changed_train)[KEY + FEATURES])
    pd.testing.assert_frame_equal(_sorted(real_test)[KEY + FEATURES], _sorted(changed_test)[KEY + FEATURES])
    assert real_test["sales"].sum() > 0 and changed_test["sales"].sum() == 0  # the change did reach the labels
    scores = [
        CreatorRanker(max_iter=40)
        .fit(fit_on[FEATURES], fit_on[OUTCOMES], row_weights(fit_on))
        .predict(_sorted(real_test)[FEATURES])
        for fit_on in (_sorted(real_train), _sorted(changed_train))
    ]
    pd.testing.assert_frame_equal(*scores)


def test_train_scores_the_held_out_pairs_alike_whatever_they_sold(worlds, embedder, tracking_uri, new_store, tmp_path):
    """What `train` logs of its held-out fit (the held-out pairs' features and scores, which `promote` judges the
    version by) does not move when only the held-out campaigns' outcomes do."""
    real, changed, _ = worlds
    os.environ["MLFLOW_TRACKING_URI"] = new_store(tmp_path / "mlflow.db")
    try:
        logged = []
        for where in (real, changed):
            run = train(where, model_name="leak", embedder=embedder, ranker=CreatorRanker(max_iter=40)).run_id
            path = mlflow.artifacts.download_artifacts(
                run_id=run, artifact_path="evaluation/holdout.parquet", dst_path=str(tmp_path / run)
            )
            logged.append(_sorted(pd.read_parquet(path)))
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
    ours, theirs = logged
    pd.testing.assert_frame_equal(ours[KEY + FEATURES], theirs[KEY + FEATURES])
    np.testing.assert_allclose(ours["held_out_score"], theirs["held_out_score"], rtol=1e-12)


def test_the_cold_check_learns_nothing_from_the_creators_it_holds_out(worlds, embedder, tmp_path):
    """The cold-start check's pairs (its fit's and the held-out creators' later ones) are those built from a world
    where the held-out creators never took part in an earlier campaign. The held-out evaluation's pairs, built
    from a history holding their past rows, differed from them in the priors and tag affinity, and `cold_scores`
    refuses those."""
    real, _, held_out = worlds
    tables = read_training_tables(real)
    _, evaluation, cold = build_with_holdout(tables, embedder)
    cold_train, cold_test = time_split(cold.pairs)
    held = creator_split(cold_test)
    performance = pd.read_parquet(real / "performance.parquet")
    past = creator_split(performance) & ~performance["campaign_id"].isin(held_out)
    # The held-out creators had earlier rows for their past to speak through, also those scored here.
    assert past.sum() >= 10 and performance.loc[past, "creator_id"].isin(cold_test.loc[held, "creator_id"]).any()
    for path in real.glob("*.parquet"):
        shutil.copy(path, tmp_path / path.name)
    performance[~past].to_parquet(tmp_path / "performance.parquet")
    never = read_training_tables(tmp_path)
    earlier = set(settled_training_rows(never)["campaign_id"]) - held_out
    never_train, never_test = time_split(build_training_data(never, embedder, learn_from=earlier).pairs)
    assert set(never_test["campaign_id"]) == held_out

    theirs = _sorted(never_test[creator_split(never_test)])[KEY + FEATURES]
    pd.testing.assert_frame_equal(_sorted(cold_test[held])[KEY + FEATURES], theirs)
    learned = _sorted(never_train[~creator_split(never_train)])[KEY + FEATURES]
    pd.testing.assert_frame_equal(_sorted(cold_train[~creator_split(cold_train)])[KEY + FEATURES], learned)
    leaked = _sorted(time_split(evaluation.pairs)[1].pipe(lambda p: p[creator_split(p)]))[KEY + FEATURES]
    assert not np.allclose(leaked[["prior_ctr", "tag_affinity_ctr"]], theirs[["prior_ctr", "tag_affinity_ctr"]])
    with pytest.raises(ValueError, match="with a record in the cold-start pairs"):
        cold_scores(CreatorRanker(max_iter=5), *time_split(evaluation.pairs))
