"""The held-out evaluation sees nothing of the held-out campaigns' outcomes but their labels.

A trial changed only the held-out campaigns' orders and sales and found the held-out fit's training features
changed (the priors, tag affinity and context models had been fitted on every settled row). Here the same change
must leave the held-out fit's features, and its scores of the held-out pairs, exactly as they were.
"""

from __future__ import annotations

import os
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.pairwise import FEATURES
from training.dataset import build_training_data, read_training_tables, settled_training_rows
from training.evaluate import time_split
from training.ranker import OUTCOMES, CreatorRanker
from training.selection import row_weights
from training.train import train

pytestmark = pytest.mark.slow
KEY = ["campaign_id", "creator_id"]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """A small world, and a copy whose held-out campaigns sold nothing; and the held-out campaigns."""
    from simulation.world import simulate, write_world

    real = tmp_path_factory.mktemp("leak-real")
    write_world(simulate(n_creators=150, n_campaigns=25, n_new_campaigns=2, seed=5), real)
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


def test_train_scores_the_held_out_pairs_alike_whatever_they_sold(worlds, embedder, tracking_uri, tmp_path):
    """What `train` logs of its held-out fit (the held-out pairs' features and scores, which `promote` judges the
    version by) does not move when only the held-out campaigns' outcomes do."""
    real, changed, _ = worlds
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlflow.db"
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
