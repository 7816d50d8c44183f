"""Training on settled history, evaluation on later campaigns, and the ranker's life in a real MLflow store."""

from __future__ import annotations

import ast
import datetime as dt
import getpass
import io
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sklearn.metrics import ndcg_score

from features.contract import SETTLEMENT_DAYS
from features.embeddings import resolve_model_path
from features.pairwise import FEATURES, OPTIONAL_FEATURES
from features.threads import openmp_threads
from training.dataset import build_training_data, data_fingerprint, read_training_tables, settled_training_rows
from training.evaluate import cold_metrics, ndcg_by_campaign, paired_difference, random_order_ndcg, time_split
from training.promotion import HELD_OUT_PREDICTED, HELD_OUT_SCORE
from training.ranker import OUTCOMES, CreatorRanker, expected_sales
from training.registry import FIRST_VERSION, load_ranker, model_digest, promote


def test_only_settled_campaigns_give_labels(world_dir, embedder):
    """Pending rows and campaigns under 7 days past their end never become training pairs."""
    tables = read_training_tables(world_dir)
    data = build_training_data(tables, embedder, as_of=pd.Timestamp("2026-11-01").date())
    perf = tables.performance
    pending = perf[perf["status"] == "pending"]
    assert len(pending) > 0
    used = set(zip(data.pairs["campaign_id"], data.pairs["creator_id"], strict=True))
    assert not used & set(zip(pending["campaign_id"], pending["creator_id"], strict=True))
    ends = tables.campaigns.set_index("campaign_id")["end_date"]
    assert (
        pd.to_datetime(data.pairs["campaign_id"].map(ends)) + pd.Timedelta(days=SETTLEMENT_DAYS)
        <= pd.Timestamp("2026-11-01")
    ).all()


def test_a_table_in_two_formats_is_refused_naming_both_files(world_dir, tmp_path):
    """An updated creators.csv dropped beside the old creators.parquet: which one is meant is the user's to say, so
    neither is read; the refusal names both files, and both are left as they were."""
    from features.tables import InputError

    for name in ("creators", "campaigns", "performance"):
        (tmp_path / f"{name}.parquet").write_bytes((world_dir / f"{name}.parquet").read_bytes())
    pd.read_parquet(tmp_path / "creators.parquet").to_csv(tmp_path / "creators.csv", index=False)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    with pytest.raises(InputError) as refused:
        read_training_tables(tmp_path)

    assert str(refused.value) == f"{tmp_path}: both creators.parquet and creators.csv; keep one of them"
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_missing_table_is_named_in_every_format(tmp_path):
    from features.tables import InputError

    with pytest.raises(InputError) as refused:
        read_training_tables(tmp_path)

    assert str(refused.value) == f"{tmp_path}: no creators.parquet, creators.csv or creators.jsonl"


def test_a_data_path_that_is_a_file_and_a_day_before_any_settlement_are_refused_saying_so(world_dir):
    """`train --data world/creators.parquet` was refused as "no such directory", of a file that is there; and a day
    with nothing settled by it did not name the day (`--as-of`, or today by default)."""
    from features.tables import InputError

    table = world_dir / "creators.parquet"
    with pytest.raises(InputError) as refused:
        read_training_tables(table)
    assert str(refused.value) == (
        f"{table}: a file; expected the directory holding the creators, campaigns and performance tables"
    )
    with pytest.raises(InputError) as refused:
        settled_training_rows(read_training_tables(world_dir), dt.date(2020, 1, 1))
    assert str(refused.value) == (
        "no settled performance rows to learn from as of 2020-01-01 (status settled and 7 days past end_date)"
    )


def test_an_attribution_the_tables_cannot_give_is_refused_before_any_work(world_dir, tmp_path):
    """Without touches and purchases, orders stay the performance table's 24-hour last-click ones: a run asked for
    position-based credit once trained on those and was tagged, logged and described as position-based. One of
    the two event tables alone is said in one line; the refusal is one line, exit 2, with no store created."""
    from tests.commands import run_in_process

    for name in ("creators", "campaigns", "performance", "purchases"):
        (tmp_path / f"{name}.parquet").write_bytes((world_dir / f"{name}.parquet").read_bytes())
    with pytest.warns(UserWarning, match="a purchases table without touches: event-level labels need both"):
        done = run_in_process("train", "--data", str(tmp_path), "--attribution", "position_based", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "creator-match: Got attribution='position_based' with a 24 h window; expected the touches and purchases "
        f"tables in {tmp_path} to re-credit orders from (the performance table holds 24-hour last-click orders)"
    ]
    with pytest.warns(UserWarning):
        done = run_in_process("train", "--data", str(tmp_path), "--window-hours", "336", cwd=tmp_path)
    assert done.returncode == 2 and "Got attribution='last_click' with a 336 h window" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.fixture(scope="module")
def training_data(world_dir, embedder, shared_training_builds):
    """The world's training pairs as of today, built once for the tests that only read them.

    They are `build_training_data` of the world, which is the first of what `build_with_holdout` builds: taken from
    the run's build of it (`shared_training_builds`), which the session's ranker (`trained`) trains on, called as
    `train` calls it so that the run builds them once. The build's own behaviour is tested above and in
    tests/training/test_held_out.py.
    """
    import importlib

    from training.dataset import DEFAULT_WINDOW
    from training.evaluate import HOLDOUT
    from training.selection import DEFAULT_SELECTION_POWER

    build = importlib.import_module("training.train").build_with_holdout  # the run's, within shared_training_builds
    tables = read_training_tables(world_dir)
    return build(tables, embedder, None, "last_click", DEFAULT_WINDOW, DEFAULT_SELECTION_POWER, HOLDOUT)[0]


def test_history_features_never_see_the_pairs_own_outcome(training_data):
    """A creator's first campaign has no history; history counts only campaigns settled before the start."""
    pairs = training_data.pairs.sort_values("start_date")
    first = pairs.groupby("creator_id").head(1)
    assert (first["hist_campaigns"] == 0).all()
    assert (pairs["hist_campaigns"] < pairs.groupby("creator_id").cumcount() + 1).all()


def test_ndcg_by_campaign_is_the_mean_of_each_campaigns_own_ndcg():
    """Campaigns of different sizes scored in one call give each campaign's NDCG as if scored alone."""
    rng = np.random.default_rng(3)
    n = 400
    pairs = pd.DataFrame({"campaign_id": rng.integers(0, 15, n), "sales": np.where(rng.random(n) < 0.6, 0.0, 20.0)})
    pairs.loc[pairs["campaign_id"] == 0, "sales"] = 0.0  # no sales: left out
    pairs.loc[len(pairs)] = {"campaign_id": 99, "sales": 5.0}  # one row: left out
    scores = np.round(rng.normal(size=len(pairs)), 1)  # ties
    scores[:20] = np.nan
    alone = [
        ndcg_score(pairs["sales"].to_numpy()[index][None], np.nan_to_num(scores[index], nan=-1e9)[None], k=5)
        for campaign, index in pairs.groupby("campaign_id").indices.items()
        if campaign not in (0, 99)
    ]
    assert ndcg_by_campaign(pairs, scores, 5) == pytest.approx(np.mean(alone), abs=1e-12)


def _campaigns_with_sales(seed: int) -> pd.DataFrame:
    """Pairs of 30 campaigns of 2 to 25 creators, some with realized sales, for the ranking measures alone."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 26, 30)
    return pd.DataFrame(
        {
            "campaign_id": np.repeat(np.arange(30), sizes),
            "sales": np.where(rng.random(sizes.sum()) < 0.5, 0.0, rng.gamma(2.0, 30.0, sizes.sum())),
        }
    )


def test_the_random_baseline_is_the_expected_ndcg_of_a_random_order():
    """Computed exactly, it agrees with the mean over many seeded random orders; it stays well below 1 on tens of
    candidates, and near 1 on a few, which is why the cold figures (about 5 per campaign) sit high."""
    pairs = _campaigns_with_sales(7)
    draws = 4000
    # The draws in one call, each a copy of the campaigns under ids of its own: the mean over all their campaigns is
    # the mean of the draws' means (each draw counts the same campaigns), on the same seeded orders as a call a draw.
    every = pd.DataFrame(
        {
            "campaign_id": np.tile(pairs["campaign_id"], draws) + np.repeat(np.arange(draws), len(pairs)) * 100,
            "sales": np.tile(pairs["sales"], draws),
        }
    )
    drawn = ndcg_by_campaign(every, np.random.default_rng(1).random(len(every)), 10)
    assert random_order_ndcg(pairs, 10) == pytest.approx(drawn, abs=0.005)
    few = pairs.groupby("campaign_id").head(5)
    assert random_order_ndcg(few, 10) > random_order_ndcg(pairs, 10)


def test_the_paired_difference_is_the_difference_of_the_means_with_a_seeded_interval():
    pairs = _campaigns_with_sales(8)
    rng = np.random.default_rng(2)
    ours = pairs["sales"].to_numpy() + rng.normal(0, 40, len(pairs))  # sees the outcome through noise
    theirs = rng.random(len(pairs))
    mean, low, high = paired_difference(pairs, ours, theirs, 10)
    assert mean == pytest.approx(ndcg_by_campaign(pairs, ours, 10) - ndcg_by_campaign(pairs, theirs, 10), abs=1e-12)
    assert low < mean < high and low > 0  # a ranking that sees the outcome beats a random one, clearly
    assert paired_difference(pairs, ours, theirs, 10) == (mean, low, high)  # seeded: the same every run
    assert paired_difference(pairs, ours, ours, 10) == (0.0, 0.0, 0.0)


def test_split_is_by_time(training_data):
    """Every held-out campaign starts no earlier than every training campaign."""
    train, test = time_split(training_data.pairs)
    assert train["start_date"].max() <= test["start_date"].min()
    assert not set(train["campaign_id"]) & set(test["campaign_id"])


CORE = ("creators", "campaigns", "performance")


def test_the_data_fingerprint_is_of_every_table_s_content(world_dir, tmp_path):
    """A trial copied a world with creators' followers x10 and got the same fingerprint: it hashed only the
    performance rows. Each table now has its own, of its validated rows: the same rows in another order or as
    JSON Lines give the same; one column of creators changed changes creators' and the whole, and no other."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    assert set(data_fingerprint(read_training_tables(world_dir))[1]) == {*CORE, "touches", "purchases"}
    # The events' times are to the nanosecond, which a text file is read to the microsecond of: the tables
    # without them.
    core, shuffled, as_json, tenfold = (tmp_path / name for name in ("core", "shuffled", "json", "tenfold"))
    for folder in (core, shuffled, as_json, tenfold):
        folder.mkdir()
    for name in CORE:
        table = pq.read_table(world_dir / f"{name}.parquet")
        pq.write_table(table, core / f"{name}.parquet")
        pq.write_table(table.take(np.random.default_rng(5).permutation(table.num_rows)), shuffled / f"{name}.parquet")
        table.to_pandas(maps_as_pydicts="strict").to_json(
            as_json / f"{name}.jsonl", orient="records", lines=True, date_format="iso"
        )
        if name == "creators":
            at = table.column_names.index("followers")
            table = table.set_column(at, "followers", pc.multiply(table["followers"], 10))
        pq.write_table(table, tenfold / f"{name}.parquet")
    together, each = data_fingerprint(read_training_tables(core))
    assert set(each) == set(CORE)
    assert data_fingerprint(read_training_tables(shuffled)) == (together, each)
    assert data_fingerprint(read_training_tables(as_json)) == (together, each)
    changed, changed_each = data_fingerprint(read_training_tables(tenfold))
    assert changed != together
    assert {name for name in each if changed_each[name] != each[name]} == {"creators"}


def test_train_logs_registers_and_crowns_the_first_version(trained, tracking_uri, world_dir):
    """Version 1 is registered with its metrics, tags and signature, and becomes champion."""
    client = MlflowClient(tracking_uri)
    assert trained.version == "1" and trained.is_champion
    assert str(client.get_model_version_by_alias("creator-ranker", "champion").version) == "1"
    run = client.get_run(trained.run_id)
    assert re.fullmatch(r"train creator-ranker \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", run.info.run_name)
    for metric in ("click_auc", "order_auc", "ndcg_at_10", "baseline_followers_ndcg_at_10"):
        assert metric in run.data.metrics
    assert run.data.tags["embedding_model"] == "all-MiniLM-L6-v2"
    assert run.data.tags["embedding_model_sha256"] == model_digest(resolve_model_path("all-MiniLM-L6-v2"))
    assert run.data.tags["embedding_dim"] == "384"
    assert len(run.data.tags["data_fingerprint"]) == 16
    # Each table training read has its own fingerprint, and they make the whole.
    together, each = data_fingerprint(read_training_tables(world_dir))
    assert run.data.tags["data_fingerprint"] == together
    assert {k: v for k, v in run.data.tags.items() if k.startswith("data_fingerprint.")} == {
        f"data_fingerprint.{name}": value for name, value in each.items()
    }
    # The code it ran: this checkout's commit and the installed distribution's version.
    project = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert run.data.tags["git_commit"] == head.stdout.strip()
    assert run.data.tags["git_dirty"] in ("true", "false")
    assert run.data.tags["code_version"] == package_version("creator-matcher")
    assert run.data.params["as_of"] == str(dt.date.today())
    # A random order's expected NDCG@10, beside the other baselines, and the cold rows' own.
    metrics = run.data.metrics
    assert 0 < metrics["baseline_random_ndcg_at_10"] < metrics["ndcg_at_10"]
    # How far NDCG@10 may move with which campaigns were held out: a bootstrap over them, around the figure.
    assert metrics["ndcg_at_10_low"] < metrics["ndcg_at_10"] < metrics["ndcg_at_10_high"]
    assert metrics["cold_baseline_random_ndcg_at_10"] > metrics["baseline_random_ndcg_at_10"]
    # Its crowning is on record, as a promotion's would be.
    tags = client.get_model_version("creator-ranker", "1").tags
    assert tags["promotion"] == FIRST_VERSION and tags["promoted_from"] == "none"
    assert tags["promoted_by"] == getpass.getuser()
    assert dt.datetime.fromisoformat(tags["promoted_at"]) <= dt.datetime.now(dt.UTC)
    assert " to " in run.data.tags["training_window"]
    # Past pairs weigh alike unless `--selection-power` asks otherwise, and the run says so.
    assert run.data.params["selection_power"] == "0.0"
    assert run.data.metrics["selection_effective_share"] == 1.0
    model = mlflow.pyfunc.load_model(trained.model_uri)
    assert [spec.name for spec in model.metadata.signature.inputs] == FEATURES
    # The optional creator fields' features may be left out; every other column is required, as predict says.
    optional = [spec.name for spec in model.metadata.signature.inputs if not spec.required]
    assert optional == OPTIONAL_FEATURES
    # Any value may be missing (an optional creator field, no record yet): a row with nothing known still gets
    # finite predictions.
    unknown = model.predict(pd.DataFrame([dict.fromkeys(FEATURES, float("nan"))]))
    assert np.isfinite(unknown.to_numpy(float)).all()


def held_out_file(run_id: str, into: Path) -> pd.DataFrame:
    """The run's `evaluation/holdout.parquet`, as the gate downloads it."""
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="evaluation/holdout.parquet", dst_path=str(into)
    )
    return pd.read_parquet(path)


def test_the_logged_model_takes_its_optional_columns_absent_as_unknown_and_names_a_missing_required_one(
    trained, tmp_path
):
    """The signature declared every feature optional while predict refused any absent column. Through MLflow's own
    loading and schema enforcement: the optional features left out score exactly as every row holding no value
    for them; a required one left out is refused, named, by MLflow and, past it, by the model itself."""
    features = held_out_file(trained.run_id, tmp_path)[FEATURES]
    model = mlflow.pyfunc.load_model(trained.model_uri)
    without = model.predict(features.drop(columns=OPTIONAL_FEATURES))
    pd.testing.assert_frame_equal(without, model.predict(features.assign(**dict.fromkeys(OPTIONAL_FEATURES, np.nan))))
    assert np.isfinite(without.to_numpy(float)).all()
    # The optional columns do change the predictions: leaving them out is not ignoring them.
    assert not model.predict(features).equals(without)
    # Nulls in a required column pass MLflow's enforcement (it checks that the column is there): no value, as NaN.
    nulls = features.assign(category_code=None)
    pd.testing.assert_frame_equal(
        model.predict(nulls), model.predict(features.assign(category_code=np.nan)), check_exact=True
    )
    with pytest.raises(MlflowException, match=r"missing inputs \['category_code'\]"):
        model.predict(features.drop(columns=["category_code", "log_avg_views"]))
    with pytest.raises(ValueError, match=r"lacks required feature columns \['category_code'\]; only \['log_avg_views'"):
        model.unwrap_python_model().predict(None, features.drop(columns=["category_code", "log_avg_views"]))


def test_the_run_reviews_each_category_apart(trained, tmp_path):
    """A reviewer trial: only the notebook broke the held-out figures down by category, where an overall NDCG@10
    hides a category the ranker serves no better than followers. The run logs the table: per category its
    campaigns, each score's NDCG@10 (together, the run's own figure) and each head's realized over predicted."""
    client = MlflowClient()
    table = pd.read_csv(client.download_artifacts(trained.run_id, "review/by_category.csv", str(tmp_path)))
    held = pd.read_parquet(client.download_artifacts(trained.run_id, "evaluation/holdout.parquet", str(tmp_path)))
    assert table["campaigns"].sum() == held["campaign_id"].nunique() and table["pairs"].sum() == len(held)
    assert table["category"].is_unique and len(table) > 1
    counted = table["ranked_campaigns"]
    for score in ("model", "followers", "tags_then_followers"):
        column = table[f"ndcg_at_10_{score}"]
        assert column[counted > 0].between(0, 1).all()
        overall = (column[counted > 0] * counted[counted > 0]).sum() / counted.sum()
        logged = trained.metrics["ndcg_at_10" if score == "model" else f"baseline_{score}_ndcg_at_10"]
        assert overall == pytest.approx(logged, abs=1e-9)
    clicks = table["clicks_realized_over_predicted"]
    assert (clicks > 0).all() and np.isfinite(clicks).all()


def test_the_run_reviews_each_product_type_apart(trained, tmp_path):
    """A reviewer trial: standard and non-standard campaigns take slates of different widths and sell through
    different creators, and nothing showed how the ranker serves each. Per resolved type: its held-out campaigns,
    each score's NDCG@10 (together, the run's own figure) and each head's realized over predicted."""
    client = MlflowClient()
    table = pd.read_csv(client.download_artifacts(trained.run_id, "review/by_product_type.csv", str(tmp_path)))
    held = pd.read_parquet(client.download_artifacts(trained.run_id, "evaluation/holdout.parquet", str(tmp_path)))
    assert set(table["product_type"]) == {"standard", "non_standard"}
    assert table["campaigns"].sum() == held["campaign_id"].nunique() and table["pairs"].sum() == len(held)
    counted = table["ranked_campaigns"]
    for score in ("model", "followers"):
        column = table[f"ndcg_at_10_{score}"]
        overall = (column[counted > 0] * counted[counted > 0]).sum() / counted.sum()
        logged = trained.metrics["ndcg_at_10" if score == "model" else f"baseline_{score}_ndcg_at_10"]
        assert overall == pytest.approx(logged, abs=1e-9)
    for head in ("impressions", "clicks", "orders"):
        assert np.isfinite(table[f"{head}_realized_over_predicted"]).all()


def test_the_held_out_file_holds_what_each_head_predicted(trained, tmp_path):
    """A reviewer asking which head is off on a category reads each head's prediction beside the outcomes; every
    column the gate and older readers take by name stays as it was, and `held_out_score` is the heads' product."""
    held = held_out_file(trained.run_id, tmp_path)
    before = ["campaign_id", "creator_id", "start_date", "price", *OUTCOMES, "sales", *FEATURES, HELD_OUT_SCORE]
    assert list(held.columns) == [*before, *HELD_OUT_PREDICTED.values()]
    heads = held[list(HELD_OUT_PREDICTED.values())].rename(columns={v: k for k, v in HELD_OUT_PREDICTED.items()})
    np.testing.assert_allclose(expected_sales(heads, held["price"].to_numpy()), held[HELD_OUT_SCORE], rtol=1e-12)
    assert (heads["expected_impressions"] >= 0).all()
    assert heads[["p_click", "p_order"]].apply(lambda p: p.between(0, 1)).all().all()


def test_a_version_is_registered_only_after_its_run_has_finished(trained, tracking_uri, tmp_path):
    """A training killed between logging and registering must not leave a registered (and crowned) version whose
    run stays `RUNNING` for ever: the run ends first, and the version, its model card included, comes after."""
    client = MlflowClient(tracking_uri)
    run = client.get_run(trained.run_id)
    version = client.get_model_version("creator-ranker", trained.version)
    assert run.info.status == "FINISHED"
    assert run.info.end_time <= version.creation_timestamp
    assert run.data.tags["registration"] == f"creator-ranker version {trained.version}"
    assert version.run_id == trained.run_id
    card = client.download_artifacts(trained.run_id, "review/model_card.md", dst_path=str(tmp_path))
    assert Path(card).read_text() == version.description


def test_ranker_beats_the_sellers_hand_pick_on_later_campaigns(trained):
    """On held-out later campaigns the ranker orders realized sales better than follower count."""
    m = trained.metrics
    assert m["ndcg_at_10"] > m["baseline_followers_ndcg_at_10"]
    assert m["ndcg_at_10"] > m["baseline_tags_then_followers_ndcg_at_10"]
    assert m["click_auc"] > 0.6 and m["order_auc"] > 0.6


# Someone else's code a user may have beside this project, first on the path: a `features` module that fails
# on import, or `features` and `training` packages that define other things and lack (or break) our modules.
SHADOWS = {
    "module": {"features.py": "raise ImportError('an unrelated features module was imported')\n"},
    "packages": {
        "features/__init__.py": "raise ImportError('an unrelated features package was imported')\n",
        "training/__init__.py": "WHAT = 'an unrelated training package'\n",
        "training/pyfunc.py": "raise ImportError('an unrelated training.pyfunc was imported')\n",
    },
}


@pytest.mark.parametrize("shadow_kind", sorted(SHADOWS))
def test_plain_mlflow_process_loads_the_champion(trained, tracking_uri, tmp_path, shadow_kind):
    """A process that imports nothing of this project, started outside the repository with unrelated `features`
    and `training` first on its path, loads the champion and scores as this process does: the model carries its
    code (`training.registry.model_code_paths`), which MLflow puts ahead of everything else on the path."""
    shadow = tmp_path / "shadow"
    for name, text in SHADOWS[shadow_kind].items():
        (shadow / name).parent.mkdir(parents=True, exist_ok=True)
        (shadow / name).write_text(text)
    model = mlflow.pyfunc.load_model("models:/creator-ranker@champion")
    x = pd.DataFrame([{c.name: 0.5 for c in model.metadata.signature.inputs}])
    code = (
        "import sys, mlflow, pandas as pd; m = mlflow.pyfunc.load_model('models:/creator-ranker@champion');"
        "out = m.predict(pd.read_json(sys.stdin, orient='split'));"
        "print(out.to_json(orient='split', double_precision=15))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=x.to_json(orient="split", double_precision=15),
        capture_output=True,
        text=True,
        # TMPDIR: MLflow downloads the model into a temp folder it keeps; the test's own, not the machine's.
        env={
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(shadow),
            "TMPDIR": str(tmp_path),
        },
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-500:]
    there = pd.read_json(io.StringIO(done.stdout.strip().splitlines()[-1]), orient="split")
    assert list(there.columns) == ["expected_impressions", "p_click", "p_order"]
    np.testing.assert_allclose(there.to_numpy(), model.predict(x).to_numpy(), rtol=1e-9)


def module_level_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports a module runs when it is imported."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_registered_model_requires_only_published_libraries(trained, tracking_uri):
    """Its code travels inside it; its requirements name the libraries it imports, pinned, and not this project
    (a name nobody has published, which an installer would take from whoever publishes it)."""
    local = Path(mlflow.artifacts.download_artifacts(f"{trained.model_uri}"))
    requirements = (local / "requirements.txt").read_text().split()
    assert all("==" in line for line in requirements)
    names = {line.split("==")[0] for line in requirements}
    assert "creator-matcher" not in names
    assert (local / "code" / "features" / "pairwise.py").is_file()
    assert (local / "code" / "training" / "pyfunc.py").is_file()
    # Whatever the shipped code imports when loaded (module level; heavier imports are deferred to the
    # functions that need them) is a required distribution, the standard library, or the shipped code itself.
    shipped = {path.name for path in (local / "code").iterdir()}
    imported = {name for path in (local / "code").rglob("*.py") for name in module_level_imports(path)}
    third_party = imported - shipped - set(sys.stdlib_module_names) - {"__future__"}
    installed_with = {canonicalize_name(Requirement(line).name) for name in names for line in requires(name) or []}
    allowed = {canonicalize_name(name) for name in names} | installed_with
    owners = packages_distributions()
    unlisted = {name for name in third_party if not {canonicalize_name(d) for d in owners[name]} & allowed}
    assert not unlisted, f"the model's code imports {unlisted}; add them to training.registry.MODEL_LIBRARIES"


class LighterRanker(CreatorRanker):
    """A ranker of a contributor's own: a subclass `train` must keep, not fit as a `CreatorRanker`."""


@pytest.mark.slow
def test_later_versions_wait_for_promotion(trained, world_dir, embedder, tracking_uri, shared_training_builds):
    """A second version, of the ranker class train was given, is not champion until promoted; promotion moves
    the alias. Its training data are the session ranker's build (tests/conftest.py)."""
    from training.train import train

    # What is checked is the registry's versions and alias, not the ranker: a lighter one keeps the run short.
    second = train(world_dir, embedder=embedder, ranker=LighterRanker(max_iter=40))
    client = MlflowClient(tracking_uri)
    assert second.version == "2" and not second.is_champion
    registered = load_ranker("models:/creator-ranker/2").model.ranker
    assert type(registered) is LighterRanker and registered.max_iter == 40
    assert str(client.get_model_version_by_alias("creator-ranker", "champion").version) == "1"
    promote("creator-ranker", "2")
    assert load_ranker("models:/creator-ranker@champion").version == "creator-ranker/2"
    promote("creator-ranker", "1")
    assert load_ranker("models:/creator-ranker@champion").version == "creator-ranker/1"
    # The promotion and the rollback are both on record: each version keeps its latest of each.
    two, one = (client.get_model_version("creator-ranker", v).tags for v in ("2", "1"))
    assert two["promoted_from"] == "1" and two["demoted_for"] == "1"
    assert two["promoted_at"] <= two["demoted_at"] == one["promoted_at"]
    assert one["promoted_from"] == "2" and one["promotion"] == "no gate (promoted through the library)"
    latest = client.get_registered_model("creator-ranker").tags["last_promotion"]
    assert latest.startswith(f"version 1 at {one['promoted_at']} by {getpass.getuser()}, replacing version 2: ")


def test_the_run_keeps_which_rows_it_rejected_not_only_how_many(small_world_dir, embedder, tracking_uri, tmp_path):
    """A reviewer trial: a version trained on a table with bad rows logged only `n_rejected_rows`; which rows it
    learned without was on the terminal of whoever ran it. The run now holds the rejects file `match` writes. On
    the small world: the rows' number is not the point."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.train import train

    data = tmp_path / "data"
    shutil.copytree(small_world_dir, data)
    table = pq.read_table(data / "creators.parquet")
    followers = table.column("followers").to_pylist()
    followers[1], followers[4] = -5, -6
    typed = pa.array(followers, type=table.schema.field("followers").type)
    pq.write_table(
        table.set_column(table.schema.get_field_index("followers"), "followers", typed), data / "creators.parquet"
    )
    creators = table.to_pandas()
    result = train(data, embedder=embedder, ranker=CreatorRanker(max_iter=20), model_name="with-rejects")
    path = mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="data/training.rejects.csv", dst_path=str(tmp_path / "got")
    )
    rejects = pd.read_csv(path)
    assert list(rejects.columns) == ["table", "row", "id", "column", "reason", "output"]
    assert rejects[rejects["table"] == "creators"][["row", "id", "column"]].values.tolist() == [
        [2, creators["creator_id"][1], "followers"],
        [5, creators["creator_id"][4], "followers"],
    ]
    # Every row the run counted, each once whatever its reasons (their performance rows go with them).
    assert len(rejects[["table", "row"]].drop_duplicates()) == result.metrics["n_rejected_rows"] > 2
    assert set(rejects["output"]) == {"training"}


def test_cold_start_is_learned_and_measured_on_creators_held_out_entirely(trained, tmp_path):
    """The run logs cold_* metrics: creators never seen in training, scored without a record, beat followers; and
    the rows they were computed from, as scored, so that a reviewer recomputes every one of them (the figures were
    logged alone and could not be checked)."""
    m = trained.metrics
    assert m["cold_n_creators"] >= 5
    for name in ("cold_ndcg_at_10", "cold_captured_sales", "cold_baseline_followers_ndcg_at_10"):
        assert 0 <= m[name] <= 1
    assert m["cold_ndcg_at_10"] >= m["cold_baseline_similarity_ndcg_at_10"] - 0.02
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="evaluation/cold.parquet", dst_path=str(tmp_path)
    )
    cold = pd.read_parquet(path)
    assert (cold["hist_campaigns"] == 0).all() and cold["creator_id"].nunique() == m["cold_n_creators"]
    logged = {k: v for k, v in MlflowClient().get_run(trained.run_id).data.metrics.items() if k.startswith("cold_")}
    recomputed = {k: v for k, v in cold_metrics(cold).items() if np.isfinite(v)}  # the run logs finite ones
    assert recomputed == pytest.approx(logged)
    assert ndcg_by_campaign(cold, cold["cold_score"].to_numpy(), 10) == pytest.approx(m["cold_ndcg_at_10"])


def test_flat_heads_names_the_heads_that_found_no_split(training_data):
    """A booster given fewer rows than a split needs on each side predicts one value everywhere; the check names
    each such head, and none of a ranker fitted on the whole world."""
    from training.ranker import flat_heads

    pairs = training_data.pairs
    for rows, flat in ((20, ["reach", "click-through", "orders-per-click"]), (40, ["reach"])):
        few = pairs.head(rows)
        assert flat_heads(CreatorRanker().fit(few[FEATURES], few[OUTCOMES]), pairs[FEATURES]) == flat
    fitted_on_all = CreatorRanker().fit(pairs[FEATURES], pairs[OUTCOMES])
    assert flat_heads(fitted_on_all, pairs[FEATURES]) == []


def test_the_reviews_permutation_importance_is_scikit_learns(training_data, monkeypatch):
    """The review scores the shuffled copies of the held-out pairs many to a `predict` call (a call's own cost was
    most of a small hold-out's review), where scikit-learn's `permutation_importance` makes one call a copy: the
    same figures to the bit, the copies split over calls of 5 (the last one part full)."""
    from sklearn.inspection import permutation_importance

    from training import review

    fit_on, held = time_split(training_data.pairs)
    held = held[held["campaign_id"].isin(held["campaign_id"].unique()[:3])]
    price = np.full(len(held), 20.0)
    ranker = CreatorRanker(max_iter=10).fit(fit_on[FEATURES], fit_on[OUTCOMES])

    def ndcg_of(estimator, X, _y) -> float:
        return ndcg_by_campaign(held, expected_sales(estimator.predict(X), price), 10)

    expected = permutation_importance(
        ranker, held[FEATURES], np.zeros(len(held)), scoring=ndcg_of, n_repeats=2, random_state=4
    ).importances_mean
    assert (expected != 0).any()
    monkeypatch.setattr(review, "_PERMUTED_ROWS_PER_PREDICT", 5 * len(held))
    np.testing.assert_array_equal(review.permutation_importances(ranker, held, price, seed=4, n_repeats=2), expected)


def test_train_on_a_few_dozen_pairs_warns_that_the_ranker_learned_nothing(
    small_world_dir, embedder, new_store, tmp_path, monkeypatch
):
    """A seller's first history, a few dozen pairs, gave a ranker whose heads found no split: registered as
    champion without a word, it scored every candidate of a campaign alike, and its slates followed creator id
    while their reasons spoke of interest fit and reach. Training says so in one warning."""
    from training.train import train

    data = tmp_path / "data"
    data.mkdir()
    for name in ("creators", "campaigns"):
        (data / f"{name}.parquet").write_bytes((small_world_dir / f"{name}.parquet").read_bytes())
    performance = pd.read_parquet(small_world_dir / "performance.parquet")
    settled = performance[performance["status"] == "settled"]
    first_two = settled[settled["campaign_id"].isin(settled["campaign_id"].unique()[:2])]
    first_two.groupby("campaign_id").head(10).to_parquet(data / "performance.parquet", index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(tmp_path / "mlflow.db"))

    with pytest.warns(UserWarning, match="the ranker learned nothing from") as warned:
        result = train(data, model_name="first-history", embedder=embedder)

    said = [str(w.message) for w in warned if "learned nothing" in str(w.message)]
    assert said == [
        f"the ranker learned nothing from {result.n_pairs} settled pairs: its reach, click-through and "
        "orders-per-click heads each predict one value for every pair (a split needs at least min_samples_leaf=30 "
        "rows on each side), so a match gives all of a campaign's candidates the same expected sales and cannot "
        "tell them apart; train again once more campaigns have settled"
    ]


def test_a_ranker_fitted_on_two_threads_is_the_one_fitted_on_one(training_data):
    """`train` fits on one OpenMP thread unless told otherwise (every core ran 4.5 to 5.6 times slower beside other
    work: docs/measurements.md): the threads change how fast a ranker is fitted, not the ranker."""
    pairs = training_data.pairs
    predicted = []
    for threads in (1, 2):
        with openmp_threads(threads):
            ranker = CreatorRanker(max_iter=30).fit(pairs[FEATURES], pairs[OUTCOMES])
        predicted.append(ranker.predict(pairs[FEATURES]))
    pd.testing.assert_frame_equal(*predicted, check_exact=True)


def test_train_fits_on_one_thread_unless_told_otherwise(world_dir, monkeypatch):
    from training.train import train, training_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert (training_threads(None), training_threads(2)) == (1, 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # OpenMP's own setting, where the user made one, stands
    assert training_threads(None) is None
    with pytest.raises(ValueError, match=r"^Got threads=0; expected a whole number of at least 1, or None$"):
        train(world_dir, threads=0)
