"""History as data: the registered model carries no creator's record; match reads the latest performance."""

from __future__ import annotations

import datetime as dt
import warnings

import cloudpickle
import pandas as pd
import pytest

from features.affinity import PastPerformance
from features.contract import SETTLEMENT_DAYS
from features.history import settled_rows
from features.pairwise import FEATURES
from features.records import HistoryModel, SettledPerformance
from features.tables import InputError, read_table
from matcher.api import Matcher
from matcher.cli import main
from simulation.world import simulate, write_world
from training.dataset import build_training_data, read_training_tables
from training.pyfunc import RankerModel
from training.ranker import OUTCOMES, CreatorRanker
from training.registry import (
    ModelNotFound,
    UncheckedModelWarning,
    load_ranker,
    model_code_paths,
    pip_requirements,
    register,
    training_records,
    use_experiment,
)

TODAY = dt.date.today()


def _sales(followers: int) -> dict:
    """A settled campaign at 7.5% click-through and 20% orders per click, reaching a fifth of the followers."""
    k = max(followers // 1000, 1) * 5
    return {"impressions": 40 * k, "clicks": 3 * k, "orders": k * 3 // 5, "sales": 50.0 * k, "status": "settled"}


@pytest.fixture(scope="module")
def default_matcher(creators, ranker, embedder):
    return Matcher(creators, model=ranker, embedder=embedder)


@pytest.fixture(scope="module")
def newcomer(world_dir, creators, default_matcher):
    """An eligible creator with no record at training, its category, and a newer performance file in which it
    sold well on three settled campaigns of that category, and the rows it sold in."""
    frame = creators
    known = set(default_matcher.records.history["creator_id"])
    ok = (
        frame["accepts_campaigns"].astype(bool)
        & (frame["creator_type"] != "cashback_site")
        & (frame["disclosure_violations"] == 0)
        & ~frame["creator_id"].isin(known)
        & frame["audience_marketplaces"].map(lambda shares: not shares or shares.get("US", 0.0) >= 0.5)
    )
    campaigns = pd.read_parquet(world_dir / "campaigns.parquet")
    settled = campaigns[
        pd.to_datetime(campaigns["end_date"]) + pd.Timedelta(days=SETTLEMENT_DAYS) <= pd.Timestamp(TODAY)
    ]
    category = settled["category"].value_counts().index[0]
    # A newcomer of wide reach whose interests sold well in that category: one a seller would want to know about.
    candidates = frame[ok].reset_index(drop=True)
    lift = default_matcher.ranker.model.past.affinity.transform(
        candidates["interest_tags"], pd.Series([category] * len(candidates), dtype=object)
    )["tag_model_ctr"]
    best = int((lift.to_numpy() * candidates["followers"].to_numpy()).argmax())
    creator_id, sales = candidates["creator_id"].iloc[best], _sales(int(candidates["followers"].iloc[best]))
    chosen = settled[settled["category"] == category]["campaign_id"].head(3)
    performance = pd.read_parquet(world_dir / "performance.parquet")
    newer = pd.concat(
        [performance, pd.DataFrame([{"campaign_id": c, "creator_id": creator_id, **sales} for c in chosen])],
        ignore_index=True,
    )
    folder = world_dir.parent / "newer-performance"
    folder.mkdir(exist_ok=True)
    newer.to_parquet(folder / "performance.parquet", index=False)
    campaigns.to_parquet(folder / "campaigns.parquet", index=False)
    return creator_id, category, len(chosen), folder, sales


def _campaign(category: str) -> dict:
    return {
        "campaign_id": "newer-1",
        "brand": "Lumora",
        "brief": f"Our best-selling {category} line for the new season.",
        "category": category,
        "asins": ["B0ABCDEFGH"],
        "price": 40.0,
        "commission_rate": 0.15,
        "budget": 20_000.0,
        "start_date": TODAY,
        "end_date": TODAY + dt.timedelta(days=30),
        "marketplaces": ["US"],
        "product_type": "non_standard",
    }


def test_a_creator_new_at_training_is_scored_on_its_record_in_a_newer_performance_file(
    creators, ranker, embedder, default_matcher, newcomer
):
    """Given the newer file, the newcomer's three settled campaigns are its record, and its reasons say so."""
    creator_id, category, n, folder, sales = newcomer
    source = SettledPerformance(
        read_table(folder / "performance.parquet", "performance"),
        read_table(folder / "campaigns.parquet", "campaigns"),
        TODAY,
    )
    newer = Matcher(creators, model=ranker, index=default_matcher.index, embedder=embedder, performance=source)
    record = newer.records.history.set_index("creator_id").loc[creator_id]
    assert record["hist_campaigns"] == n and record["hist_orders"] == n * sales["orders"]
    assert record["hist_prior_clicks"] > 0  # judged against the context model, as training judges records
    assert creator_id not in set(default_matcher.records.history["creator_id"])
    slate = newer.match(_campaign(category)).for_campaign("newer-1")
    mine = slate[slate["creator_id"] == creator_id]
    assert len(mine) == 1, "a creator with this record must make the slate"
    assert (
        f"record of {n} campaigns ({n} in this category) at 7.5% click-through and 20.0% orders per click"
        in (mine["reasons"].iloc[0])
    )
    before = default_matcher.match(_campaign(category)).for_campaign("newer-1")
    assert not before["reasons"][before["creator_id"] == creator_id].str.contains("record of").any()
    # As of a day before those campaigns settled, the newcomer is new again, and so is everyone: the run says so
    # rather than take the table silently for a catalogue of new creators.
    early = SettledPerformance(source.performance, source.campaigns, dt.date(2000, 1, 1))
    rows = len(source.performance.frame)
    with pytest.warns(UserWarning) as warned:
        empty = Matcher(creators, model=ranker, index=default_matcher.index, embedder=embedder, performance=early)
    assert [str(w.message) for w in warned if "no creator a record" in str(w.message)] == [
        f"the performance table gives no creator a record: none of its {rows} rows is settled as of 2000-01-01 (a "
        "campaign 7 days past its end); every creator is scored as new"
    ]
    assert (
        empty.records.history.empty
        and empty.match(_campaign(category)).matches["reasons"].str.contains("no record yet").all()
    )


def test_a_pairs_marketplace_record_is_the_creators_settled_campaigns_in_the_campaigns_marketplaces(
    world_dir, default_matcher
):
    """Scoring reads, per pair, the creator's campaigns that ran in each of the campaign's marketplaces, summed:
    what training computed as of each campaign's start (`marketplace_history_as_of`), here from the records."""
    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    pairs = default_matcher.candidate_features(campaigns)
    past = pd.read_parquet(world_dir / "campaigns.parquet")
    rows = settled_rows(pd.read_parquet(world_dir / "performance.parquet"), past, pd.Timestamp(TODAY))
    ran = rows.explode("marketplaces").groupby(["creator_id", "marketplaces"]).size()
    markets = campaigns.set_index("campaign_id")["marketplaces"]
    expected = [
        sum(ran.get((creator_id, m), 0) for m in markets[campaign_id])
        for campaign_id, creator_id in pairs[["campaign_id", "creator_id"]].itertuples(index=False)
    ]
    assert pairs["hist_market_campaigns"].tolist() == expected
    assert pairs["hist_market_campaigns"].gt(0).mean() > 0.1 and pairs["hist_market_campaigns"].eq(0).any()
    share = pairs["hist_market_share"]
    known = pairs["hist_campaigns"] > 0
    assert share[known].between(0, 1).all() and share[~known].isna().all() and (~known).any()


def test_match_command_reads_the_newer_file_and_rejects_its_bad_rows(
    world_dir, trained, world_index, newcomer, tmp_path
):
    """`--performance` (campaigns beside it) and `--as-of`; a bad performance row goes to the rejects file."""
    creator_id, category, n, folder, _ = newcomer
    performance = pd.read_parquet(folder / "performance.parquet")
    bad = pd.DataFrame([{**performance.iloc[0].to_dict(), "creator_id": "c-bad", "clicks": 10**9}])
    pd.concat([performance, bad], ignore_index=True).to_parquet(tmp_path / "performance.parquet", index=False)
    (tmp_path / "campaigns.parquet").write_bytes((folder / "campaigns.parquet").read_bytes())
    pd.DataFrame([_campaign(category)]).to_parquet(tmp_path / "new.parquet", index=False)
    args = ["match", "--campaigns", str(tmp_path / "new.parquet"), "--creators", str(world_dir / "creators.parquet")]
    args += ["--index", str(world_index)]  # the session's (tests/conftest.py): the records are under test here
    out = tmp_path / "matches.csv"
    code = main(
        [*args, "--out", str(out), "--performance", str(tmp_path / "performance.parquet"), "--as-of", str(TODAY)]
    )
    assert code == 2
    rejects = pd.read_csv(tmp_path / "matches.rejects.csv")
    assert rejects[["table", "row", "column"]].values.tolist() == [["performance", len(performance) + 1, "clicks"]]
    matches = pd.read_csv(out)
    assert matches.loc[matches["creator_id"] == creator_id, "reasons"].str.contains(f"record of {n} campaigns").all()
    assert main([*args, "--out", str(tmp_path / "m2.csv"), "--as-of", str(TODAY)]) == 2  # --as-of alone


def test_records_are_logged_beside_the_model_not_in_it(trained, ranker):
    """The run holds the records (`records/`); the registered model holds no creator's rows."""
    records = training_records(ranker)
    assert len(records.history) > 100 and {"creator_id", "category"} <= set(records.category_history.columns)
    assert ranker.model.embedded_records is None and isinstance(ranker.model.past, HistoryModel)
    assert not any(
        isinstance(value, pd.DataFrame) and "creator_id" in value for value in vars(ranker.model.past).values()
    )


def test_a_copy_under_another_name_matches_alike_and_one_logged_anew_names_the_records_it_lacks(
    trained, ranker, creators, embedder, default_matcher
):
    """What a match reads is the model's files and the records of the run its MLmodel names, never the name or
    version it is registered under, which only labels the rows. A ranker logged anew in a run of its own has no
    records there: refused in one line naming the version and what it lacks (MLflow's "Failed to download
    artifacts from path 'records'" before)."""
    import mlflow
    from mlflow import MlflowClient

    campaign = _campaign("beauty")
    expected = default_matcher.match(campaign).matches.drop(columns="model_version")
    other = mlflow.register_model(f"runs:/{trained.run_id}/model", "creator-ranker-renamed").version
    copied = MlflowClient().copy_model_version(trained.model_uri, "creator-ranker-copied").version
    for uri in (f"models:/creator-ranker-renamed/{other}", f"models:/creator-ranker-copied/{copied}"):
        with warnings.catch_warnings():  # both checked: against the run's digest, and the copied version tag
            warnings.simplefilter("error", UncheckedModelWarning)
            matcher = Matcher(creators, model=uri, index=default_matcher.index, embedder=embedder)
        found = matcher.match(campaign).matches
        assert found["model_version"].iloc[0] == matcher.ranker.version != ranker.version
        pd.testing.assert_frame_equal(found.drop(columns="model_version"), expected)

    use_experiment("creator-ranker-logged-anew")
    with mlflow.start_run() as run:
        logged = mlflow.pyfunc.log_model(
            name="model", python_model=ranker.model, code_paths=model_code_paths(), pip_requirements=pip_requirements()
        )
    uri = f"models:/creator-ranker-logged-anew/{register(logged.model_uri, 'creator-ranker-logged-anew')}"
    with pytest.warns(UncheckedModelWarning), pytest.raises(ModelNotFound) as refused:
        Matcher(creators, model=uri, index=default_matcher.index, embedder=embedder)
    assert str(refused.value) == (
        f"model {uri!r}: its run {run.info.run_id} holds no records/, the creators' records as of training that "
        "`train` logs beside the model it registers (a model logged anew in another run has none, whatever it was "
        "copied from); give a performance file"
    )


@pytest.mark.slow
def test_the_registered_model_does_not_grow_with_the_number_of_creators(embedder, tmp_path):
    """Two worlds, 4x apart in creators: the pickled models are within 5% in size."""
    sizes = []
    for n_creators in (150, 600):
        write_world(
            simulate(n_creators=n_creators, n_campaigns=30, n_new_campaigns=2, seed=3), tmp_path / str(n_creators)
        )
        data = build_training_data(read_training_tables(tmp_path / str(n_creators)), embedder)
        final = CreatorRanker(max_iter=50).fit(data.pairs[FEATURES], data.pairs[OUTCOMES])
        model = RankerModel(final, data.model, embedder.model, embedder.dimension, embedder.backend)
        sizes.append(len(cloudpickle.dumps(model)))
        assert data.records.history["creator_id"].nunique() > n_creators / 3  # the records did grow
    assert abs(sizes[1] - sizes[0]) / sizes[0] < 0.05, sizes


def test_a_ranker_registered_with_its_records_inside_matches_on_them_and_refuses_a_performance_file(
    creators, ranker, embedder, default_matcher, newcomer, tracking_uri
):
    """A pickled `PastPerformance` (before records were data) loads; with --performance it says to retrain."""
    import mlflow

    records = training_records(ranker)
    old = RankerModel.__new__(RankerModel)
    state = {k: v for k, v in vars(ranker.model).items() if k != "embedded_records"}
    past = ranker.model.past
    state["past"] = PastPerformance(
        past.priors, records.history, records.category_history, past.affinity, past.product_types
    )
    old.__dict__.update(state)
    # A run of its own experiment in this store: the experiment MLflow last made active on this worker may be
    # another store's (its id then names nothing here).
    use_experiment("old-layout-ranker")
    with mlflow.start_run():
        logged = mlflow.pyfunc.log_model(
            name="model", python_model=old, code_paths=model_code_paths(), pip_requirements=pip_requirements()
        )
    version = register(logged.model_uri, "old-layout-ranker")
    loaded = load_ranker(f"models:/old-layout-ranker/{version}")
    assert loaded.model.past.context is None
    pd.testing.assert_frame_equal(loaded.model.embedded_records.history, records.history)
    matcher = Matcher(creators, model=loaded, index=default_matcher.index, embedder=embedder)
    pd.testing.assert_frame_equal(matcher.records.history, records.history)
    assert len(matcher.match(_campaign("beauty")).matches) > 0
    folder = newcomer[3]
    source = SettledPerformance(
        read_table(folder / "performance.parquet", "performance"),
        read_table(folder / "campaigns.parquet", "campaigns"),
    )
    with pytest.raises(InputError, match=r"retrain it with `creator-match train`"):
        Matcher(creators, model=loaded, index=default_matcher.index, embedder=embedder, performance=source)


def test_a_performance_frame_with_an_invalid_row_is_refused_naming_it(world_dir):
    """DataFrames are validated as the contract says; the first bad row is named."""
    performance = pd.read_parquet(world_dir / "performance.parquet")
    performance.loc[2, "clicks"] = performance.loc[2, "impressions"] + 1
    source = SettledPerformance(performance, pd.read_parquet(world_dir / "campaigns.parquet"))
    with pytest.raises(ValueError, match=r"invalid performance rows; first: performance row 3 .*column clicks"):
        source.tables()
