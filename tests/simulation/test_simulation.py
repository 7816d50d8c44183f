"""The synthetic world: reproducible, in the contract's format, and grounded in the figures it claims."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.contract import CONTENT_STAGES, FUNNEL_STAGE, SETTLEMENT_DAYS
from features.pairwise import audience_share
from features.tables import read_table, validate_performance_links
from simulation.world import (
    UNITS_PER_DOLLAR,
    WORLD_TABLES,
    SimulationConfig,
    World,
    pair_truth,
    simulate,
    write_table,
    write_world,
)
from simulation.world_alt import simulate_alt
from tests.commands import CLI, run_in_process
from training.dataset import read_training_tables

CONFIG = SimulationConfig(n_creators=600, n_campaigns=80, n_new_campaigns=40, seed=2)


@pytest.fixture(scope="module")
def world() -> World:
    """About 600 creators, 80 past and 40 new campaigns."""
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def written(world, tmp_path_factory) -> dict:
    return write_world(world, tmp_path_factory.mktemp("sim"))


def small_world(seed: int) -> World:
    return simulate(n_creators=150, n_campaigns=20, n_new_campaigns=5, seed=seed)


def test_same_seed_gives_identical_tables():
    """Two runs with one seed produce the same world, table by table."""
    first, second = small_world(5), small_world(5)

    for name in WORLD_TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), obj=name)


def test_different_seed_gives_a_different_world():
    """Another seed changes the creators, the campaigns and the results."""
    first, other = small_world(5), small_world(6)

    for name in ("creators", "campaigns", "performance"):
        assert not getattr(first, name).equals(getattr(other, name)), name


def test_write_world_writes_every_table_as_parquet(world, written):
    """write_world returns a Parquet path per table, each holding that table's rows."""
    assert sorted(written) == sorted(WORLD_TABLES)
    for name, path in written.items():
        assert path.suffix == ".parquet" and path.is_file()
        assert len(pd.read_parquet(path)) == len(getattr(world, name)), name


def test_a_whole_number_column_with_missing_values_is_written_as_nulls(world, tmp_path):
    """A nullable integer column (pandas' Int64, as the 1M benchmark's replicas carry `avg_views`) writes its
    missing values as nulls; `pd.NA`'s comparison has no truth value and used to stop the write."""
    creators = world.creators.head(6).copy()
    creators["avg_views"] = pd.array([1200, None, 35, None, 7, 0], dtype="Int64")
    path = write_table(creators, tmp_path / "creators.parquet")
    assert pq.read_table(path).column("avg_views").to_pylist() == [1200, None, 35, None, 7, 0]
    assert not read_table(path, "creators").rejects


# Each contract table a world writes, and the contract table it is read as.
CONTRACT_TABLES = [
    ("creators", "creators"),
    ("campaigns", "campaigns"),
    ("new_campaigns", "campaigns"),
    ("performance", "performance"),
    ("touches", "touches"),
    ("purchases", "purchases"),
]


@pytest.mark.parametrize(("name", "table"), CONTRACT_TABLES)
def test_every_written_table_passes_the_contract_with_zero_rejects(world, written, name, table):
    """The simulator's output is valid contract input: nothing is rejected and every row is kept."""
    result = read_table(written[name], table)

    assert result.rejects == []
    assert len(result.frame) == len(getattr(world, name)) > 0


def test_written_performance_links_to_written_campaigns_and_creators(written):
    """Every performance row names a campaign and a creator of the written tables."""
    creators = read_table(written["creators"], "creators").frame
    campaigns = read_table(written["campaigns"], "campaigns").frame
    performance = read_table(written["performance"], "performance")

    linked = validate_performance_links(performance, campaigns, creators)

    assert linked.rejects == []
    assert len(linked.frame) == len(performance.frame)


# --- grounded figures ---------------------------------------------------------------------------------------------


def one_pair(creator_type="social_creator", creator_categories=("beauty",), tags=("makeup",), audience=None):
    """pair_truth for one beauty campaign in the US and one creator of average traits."""
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["c1"],
            "category": ["beauty"],
            "marketplaces": [["US"]],
            "commission_rate": [0.15],
            "price": [25.0],
        }
    )
    campaign_truth = pd.DataFrame({"campaign_id": ["c1"], "product_type": ["non_standard"], "interest": ["skincare"]})
    creators = pd.DataFrame(
        {
            "creator_id": ["u1"],
            "creator_type": [creator_type],
            "interest_tags": [list(tags)],
            "accepts_campaigns": [True],
            "disclosure_violations": [0],
        }
    )
    creator_truth = pd.DataFrame(
        {
            "creator_id": ["u1"],
            "categories": [list(creator_categories)],
            "audience": [audience or {"US": 1.0}],
            "true_views": [10_000.0],
            "click_appeal": [1.0],
            "conversion_skill": [1.0],
            "activity": [1.0],
        }
    )
    index = np.array([0])
    return pair_truth(SimulationConfig(), campaigns, campaign_truth, creators, creator_truth, index, index).iloc[0]


def test_average_well_fitting_beauty_creator_has_seven_percent_click_through():
    """A typical beauty creator whose audience is all in the campaign's market clicks through at 7%."""
    assert one_pair()["ctr"] == pytest.approx(0.07)


def test_click_through_rises_with_subtopic_and_falls_with_mismatch_and_foreign_audience():
    """Subtopic fit lifts click-through, an off-topic creator gets a fifth, an audience abroad a quarter."""
    assert one_pair(tags=("skincare",))["ctr"] == pytest.approx(0.07 * 1.35)
    assert one_pair(creator_categories=("tools",))["ctr"] == pytest.approx(0.07 * 0.2)
    assert one_pair(audience={"UK": 1.0})["ctr"] == pytest.approx(0.07 * 0.25)


def test_beauty_click_through_of_typical_fitting_creators_in_the_world_is_near_seven_percent(world):
    """In the truth, beauty social creators who fit, corrected for audience share and subtopic, median ~7%."""
    cfg = CONFIG
    creators = world.creators.set_index("creator_id")
    traits = world.creator_truth.set_index("creator_id")
    campaigns = world.new_campaigns.set_index("campaign_id")
    interest = world.campaign_truth.set_index("campaign_id")["interest"]
    truth = world.truth[world.truth["campaign_id"].map(campaigns["category"]).eq("beauty")]
    fits = [
        kind == "social_creator" and "beauty" in cats
        for kind, cats in zip(
            truth["creator_id"].map(creators["creator_type"]),
            truth["creator_id"].map(traits["categories"]),
            strict=True,
        )
    ]
    truth = truth[fits]
    share = np.array(
        [
            audience_share(creators.at[c, "audience_marketplaces"], campaigns.at[k, "marketplaces"])
            for c, k in zip(truth["creator_id"], truth["campaign_id"], strict=True)
        ]
    )
    subtopic = np.array(
        [
            interest[k] in creators.at[c, "interest_tags"]
            for c, k in zip(truth["creator_id"], truth["campaign_id"], strict=True)
        ]
    )
    known = ~np.isnan(share)
    adjusted = truth["ctr"].to_numpy()[known] / (0.25 + 0.75 * share[known])
    adjusted /= np.where(subtopic[known], cfg.subtopic_lift, 1.0)

    assert truth["campaign_id"].nunique() >= 3 and known.sum() >= 50
    assert 0.05 <= np.median(adjusted) <= 0.09


def test_commission_rates_are_mostly_ten_to_twenty_percent(world):
    """Most campaigns pay 10-20% commission; every rate is a valid share."""
    rates = pd.concat([world.campaigns["commission_rate"], world.new_campaigns["commission_rate"]])

    assert rates.between(0.10, 0.20).mean() >= 0.6
    assert ((rates > 0) & (rates <= 1)).all()


def test_pending_rows_exist_only_for_campaigns_not_yet_settled(world):
    """A row is pending exactly when its campaign's end date + 7 days is after as_of, and some are."""
    end = world.performance["campaign_id"].map(world.campaigns.set_index("campaign_id")["end_date"])
    unsettled = (end + dt.timedelta(days=SETTLEMENT_DAYS)) > CONFIG.as_of

    pending = world.performance["status"].eq("pending")
    assert pending.any() and (~pending).any()
    assert (pending == unsettled).all()


def test_cashback_sites_and_creators_with_disclosure_violations_exist(world):
    """The world holds the creators the matcher must handle specially."""
    creators = world.creators

    assert creators["creator_type"].eq("cashback_site").sum() > 0
    assert creators["disclosure_violations"].gt(0).sum() > 0
    assert (~creators["accepts_campaigns"]).sum() > 0
    assert set(creators["creator_type"]) == set(FUNNEL_STAGE)


def test_product_type_shapes_which_creators_convert(world):
    """Content creators convert better on non-standard products; deals and coupon sites on standard ones."""
    product_type = world.campaign_truth.set_index("campaign_id")["product_type"]
    kind = world.creators.set_index("creator_id")["creator_type"]
    truth = world.truth.assign(
        product_type=world.truth["campaign_id"].map(product_type), kind=world.truth["creator_id"].map(kind)
    )
    truth["group"] = np.where(
        truth["kind"].map(FUNNEL_STAGE).isin(CONTENT_STAGES),
        "content",
        np.where(truth["kind"].isin(["deals_site", "coupon_site"]), "deals", "other"),
    )
    cvr = truth.groupby(["product_type", "group"])["cvr"].mean()

    assert set(product_type[world.new_campaigns["campaign_id"]]) == {"standard", "non_standard"}
    assert cvr["non_standard", "content"] > 1.2 * cvr["standard", "content"]
    assert cvr["standard", "deals"] > cvr["non_standard", "deals"]
    deals_vs_content_standard = cvr["standard", "deals"] / cvr["standard", "content"]
    deals_vs_content_non_standard = cvr["non_standard", "deals"] / cvr["non_standard", "content"]
    assert deals_vs_content_standard > 2 * deals_vs_content_non_standard


def test_truth_holds_every_eligible_creator_and_no_other(world):
    """Truth pairs only creators that accept campaigns and are not cashback sites, all of them per campaign."""
    creators = world.creators
    eligible = set(
        creators.loc[creators["accepts_campaigns"] & creators["creator_type"].ne("cashback_site"), "creator_id"]
    )

    assert set(world.truth["creator_id"]) <= eligible
    per_campaign = world.truth.groupby("campaign_id")["creator_id"].nunique()
    assert per_campaign.index.tolist() == sorted(world.new_campaigns["campaign_id"])
    assert (per_campaign == len(eligible)).all()  # 600 creators is below truth_top: nobody is cut


def test_truth_is_ordered_by_expected_sales_within_each_campaign(world):
    """Each campaign's truth lists its best creators first."""
    for _, group in world.truth.groupby("campaign_id"):
        assert group["expected_sales"].is_monotonic_decreasing


# --- event logs -------------------------------------------------------------------------------------------------


def last_click_24h(touches: pd.DataFrame, purchases: pd.DataFrame) -> pd.DataFrame:
    """Orders, units and sales per (campaign, creator): each purchase to the shopper's last prior click within 24h."""
    clicks = touches.rename(columns={"ts": "click_ts"}).sort_values("click_ts", kind="stable")
    merged = pd.merge_asof(
        purchases.sort_values("ts", kind="stable"),
        clicks,
        left_on="ts",
        right_on="click_ts",
        by=["shopper_id", "campaign_id"],
        direction="backward",
    )
    credited = merged[merged["click_ts"].notna() & ((merged["ts"] - merged["click_ts"]) <= pd.Timedelta(hours=24))]
    return credited.groupby(["campaign_id", "creator_id"]).agg(
        orders=("sales", "size"), units=("units", "sum"), sales=("sales", "sum")
    )


@pytest.fixture(scope="module")
def event_campaigns(world):
    """Performance rows of the campaigns with event logs, next to the 24-hour last-click recount of the events."""
    campaigns = sorted(set(world.touches["campaign_id"]))
    rows = world.performance[world.performance["campaign_id"].isin(campaigns)].set_index(["campaign_id", "creator_id"])
    recount = last_click_24h(world.touches, world.purchases).reindex(rows.index).fillna(0)
    return campaigns, rows, recount


def test_touches_and_purchases_exist_for_some_settled_campaigns_only(world, event_campaigns):
    """Event logs cover a share of campaigns, all of them settled."""
    campaigns, rows, _ = event_campaigns

    assert 0 < len(campaigns) < len(world.campaigns)
    assert set(world.purchases["campaign_id"]) <= set(campaigns)
    assert rows["status"].eq("settled").all()
    assert len(world.purchases) > 0


def test_event_campaign_sales_and_units_are_the_24h_last_click_attribution(event_campaigns):
    """For campaigns with events, performance sales and units equal a last-click 24-hour recount of them."""
    _, rows, recount = event_campaigns

    np.testing.assert_allclose(rows["sales"].to_numpy(), recount["sales"].to_numpy(), atol=0.011)
    np.testing.assert_array_equal(rows["units"].to_numpy(), recount["units"].to_numpy())


def test_event_campaign_touches_are_the_clicks_of_the_performance_rows(world, event_campaigns):
    """A touch is a click on a creator's link, so touches per (campaign, creator) equal performance clicks."""
    _, rows, _ = event_campaigns

    touches = world.touches.groupby(["campaign_id", "creator_id"]).size().reindex(rows.index).fillna(0)

    np.testing.assert_array_equal(touches.to_numpy(), rows["clicks"].to_numpy())


def test_event_campaign_orders_match_the_attribution_wherever_clicks_allow(event_campaigns):
    """Orders equal the recount except where the recount exceeds the row's clicks (the row rule orders <= clicks)."""
    _, rows, recount = event_campaigns

    np.testing.assert_array_equal(
        rows["orders"].to_numpy(), np.minimum(recount["orders"].to_numpy(), rows["clicks"].to_numpy())
    )


# --- the second world -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alt_world() -> World:
    """The second generator: about 800 creators, 100 past and 40 new campaigns."""
    return simulate_alt(n_creators=800, n_campaigns=100, n_new_campaigns=40, seed=1)


def test_alt_world_is_reproducible_and_seed_dependent():
    """One seed gives the same tables; another seed another world."""
    first, second = (simulate_alt(n_creators=150, n_campaigns=20, n_new_campaigns=5, seed=3) for _ in range(2))
    other = simulate_alt(n_creators=150, n_campaigns=20, n_new_campaigns=5, seed=4)

    for name in WORLD_TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), obj=name)
    assert not first.creators.equals(other.creators)


@pytest.fixture(scope="module")
def alt_written(alt_world, tmp_path_factory) -> dict:
    return write_world(alt_world, tmp_path_factory.mktemp("alt"))


@pytest.mark.parametrize(("name", "table"), CONTRACT_TABLES)
def test_alt_world_tables_pass_the_contract(alt_world, alt_written, name, table):
    """Every table the second world writes is read back with zero rejects."""
    result = read_table(alt_written[name], table)

    assert result.rejects == []
    assert len(result.frame) == len(getattr(alt_world, name)) > 0


def test_alt_world_truth_has_the_first_worlds_columns(world, alt_world):
    """Benchmarks read both worlds' truth the same way: same columns, eligible creators only, best first."""
    assert list(alt_world.truth.columns) == list(world.truth.columns)
    assert set(world.creator_truth.columns) <= set(alt_world.creator_truth.columns)
    assert {"campaign_id", "product_type"} <= set(alt_world.campaign_truth.columns)
    for _, sales in alt_world.truth.groupby("campaign_id")["expected_sales"]:
        assert sales.is_monotonic_decreasing
    eligible = alt_world.creators[
        alt_world.creators["accepts_campaigns"].map(lambda v: v is not False)
        & (alt_world.creators["creator_type"] != "cashback_site")
    ]
    assert alt_world.truth.groupby("campaign_id").size().eq(len(eligible)).all()


def test_alt_briefs_never_quote_a_creator_tag(alt_world):
    """Briefs paraphrase interests: no interest tag of any creator appears verbatim in any brief."""
    tags = {tag.lower() for tags in alt_world.creators["interest_tags"] for tag in tags}
    briefs = pd.concat([alt_world.campaigns["brief"], alt_world.new_campaigns["brief"]]).str.lower()

    quoted = {tag for tag in tags if briefs.str.contains(tag, regex=False).any()}
    assert quoted == set()


def test_alt_world_has_new_creators_and_categories_without_history(alt_world):
    """A share of creators never took part, and some categories to be matched have no past campaign."""
    took_part = set(alt_world.performance["creator_id"])
    never = ~alt_world.creators["creator_id"].isin(took_part)
    assert never.mean() > 0.2
    cold = set(alt_world.new_campaigns["category"]) - set(alt_world.campaigns["category"])
    assert cold


def test_alt_world_leaves_many_optional_fields_empty(alt_world):
    """Optional profile fields are missing for a large share of creators, as on real exports."""
    for column in ("avg_views", "audience_marketplaces", "avg_dwell_seconds", "bio"):
        assert 0.3 < alt_world.creators[column].isna().mean() < 0.6, column


def test_alt_product_type_does_not_follow_the_product_name(alt_world):
    """The same product noun is standard in some campaigns and non-standard in others."""
    kinds = alt_world.campaign_truth.groupby("product")["product_type"].agg(["nunique", "size"])
    frequent = kinds[kinds["size"] >= 4]
    assert len(frequent) >= 5
    assert (frequent["nunique"] == 2).mean() > 0.6


def test_alt_world_reach_is_heavier_tailed_than_the_first(world, alt_world):
    """The top 1% of creators by followers hold a larger share of all followers than in the first world."""

    def top_share(followers: pd.Series) -> float:
        ranked = followers.sort_values(ascending=False)
        return ranked.head(max(1, len(ranked) // 100)).sum() / ranked.sum()

    assert top_share(alt_world.creators["followers"]) > top_share(world.creators["followers"])


def test_simulate_command_writes_the_alt_world(tmp_path):
    """`creator-match simulate --world alt` writes the second world's tables, the same as simulate_alt."""
    sizes = ["--creators", "120", "--campaigns", "15", "--seed", "2"]
    done = subprocess.run(
        [CLI, "simulate", "--out", str(tmp_path), *sizes, "--world", "alt"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    expected = simulate_alt(n_creators=120, n_campaigns=15, seed=2)
    written = pd.read_parquet(tmp_path / "creators.parquet")
    assert written["creator_id"].tolist() == expected.creators["creator_id"].tolist()
    assert written["interest_tags"].map(list).tolist() == expected.creators["interest_tags"].tolist()


@pytest.mark.parametrize("generated", ["world", "alt_world"])
def test_performance_rows_are_drawn_from_the_past_truth(generated, request):
    """Each performance row has the expectations it was drawn from (`past_truth`): clicks and orders follow
    its click-through and orders per click, and impressions scatter around its expected impressions. Campaigns
    with event logs are left out: their clicks also count the closing clicks that deals sites get."""
    world = request.getfixturevalue(generated)
    rows = world.performance.merge(world.past_truth, on=["campaign_id", "creator_id"], validate="one_to_one")
    assert len(rows) == len(world.performance) == len(world.past_truth)
    rows = rows[~rows["campaign_id"].isin(world.touches["campaign_id"])]

    assert rows["clicks"].sum() / (rows["impressions"] * rows["ctr"]).sum() == pytest.approx(1, abs=0.03)
    assert rows["orders"].sum() / (rows["clicks"] * rows["cvr"]).sum() == pytest.approx(1, abs=0.05)
    assert np.corrcoef(np.log1p(rows["impressions"]), np.log(rows["expected_impressions"]))[0, 1] > 0.8
    assert not (rows["impressions"] == rows["expected_impressions"]).all()


def test_simulate_never_writes_over_a_folder_holding_tables_nor_into_a_file(tmp_path):
    """A folder holding a creators table (perhaps the user's own) is refused, and nothing in it changes; an --out
    that is a file is a usage error (exit 2), not a failure."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "creators.parquet").write_bytes(b"the user's own table")
    (folder / "notes.txt").write_text("keep me")
    sizes = ["--creators", "20", "--campaigns", "10", "--new-campaigns", "2"]
    done = run_in_process("simulate", "--out", str(folder), *sizes)
    assert done.returncode == 2 and "already holds creators.parquet; write the world into another folder" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["creators.parquet", "notes.txt"]
    assert (folder / "creators.parquet").read_bytes() == b"the user's own table"
    done = run_in_process("simulate", "--out", str(folder / "notes.txt"), *sizes)
    assert done.returncode == 2 and "is a file; expected a folder" in done.stderr


def test_simulate_never_writes_beside_tables_held_as_csv_or_json_lines(tmp_path):
    """A user's own creators.csv was not seen: the world's creators.parquet went in beside it, and `train` then
    refused that folder for a table held in two."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "creators.csv").write_text("creator_id\ncr1\n")
    (folder / "performance.jsonl").write_text('{"campaign_id": "c1"}\n')
    done = run_in_process("simulate", "--out", str(folder), "--creators", "20", "--campaigns", "10")
    assert done.returncode == 2
    assert "already holds creators.csv, performance.jsonl; write the world into another folder" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["creators.csv", "performance.jsonl"]


@pytest.mark.parametrize("generator", ["main", "alt"])
def test_counts_are_written_as_integers_even_with_missing_values(tmp_path, generator):
    """avg_views and storefront_followers_30d are counts (integers in the contract) with missing values, which
    pandas holds as floats: the Parquet files type them as integers all the same."""
    from simulation import WORLDS

    write_world(WORLDS[generator](n_creators=80, n_campaigns=10, seed=3), tmp_path)
    schema = pq.read_schema(tmp_path / "creators.parquet")
    for name in ("followers", "avg_views", "storefront_followers_30d", "disclosure_violations"):
        assert str(schema.field(name).type) == "int64", name
    assert pq.read_table(tmp_path / "creators.parquet").column("avg_views").null_count > 0


# --- local currencies ---------------------------------------------------------------------------------------------


def world_digest(world: World) -> str:
    """Every table's columns, types and values, exactly (floats by repr), as one SHA-256."""

    def canonical(value):
        if isinstance(value, dict):
            return sorted((str(key), canonical(item)) for key, item in value.items())
        if isinstance(value, list | tuple | np.ndarray):
            return [canonical(item) for item in value]
        if isinstance(value, float | np.floating):
            return repr(float(value))
        return int(value) if isinstance(value, np.integer) else repr(value)

    digest = hashlib.sha256()
    for name in WORLD_TABLES:
        frame = getattr(world, name)
        digest.update(repr([name, list(frame.columns), [str(kind) for kind in frame.dtypes]]).encode())
        for column in frame.columns:
            digest.update(repr([canonical(value) for value in frame[column].tolist()]).encode())
    return digest.hexdigest()


def test_the_default_world_is_the_one_before_local_currencies():
    """The `currencies` setting is opt-in: a default world is, bit for bit, the one every measured figure came from
    (digest taken before the setting; a numpy that draws other numbers from a seed changes it too)."""
    assert world_digest(small_world(5)) == DEFAULT_WORLD_DIGEST
    assert world_digest(simulate(n_creators=150, n_campaigns=20, n_new_campaigns=5, seed=5, currencies="dollars")) == (
        DEFAULT_WORLD_DIGEST
    )


DEFAULT_WORLD_DIGEST = "bff98b7ffcd9ea48fa287f72286175d3391315238e2d3f6e621920bfdb22ee89"


@pytest.fixture(scope="module")
def local_world() -> World:
    """The `world` fixture's world priced in each campaign's own currency."""
    return simulate(CONFIG, currencies="local")


def test_a_local_currency_world_is_the_dollar_world_priced_in_its_marketplaces_currencies(world, local_world):
    """Same draws, same truth (in dollars); each campaign's price, budget, sales, commission and purchases in its first
    marketplace's currency: a JP campaign's price 150x its dollar price (whole yen), a US one's unchanged."""
    for name in ("creators", "touches", "truth", "past_truth", "creator_truth"):
        pd.testing.assert_frame_equal(getattr(world, name), getattr(local_world, name), obj=name)
    campaigns = pd.concat([world.campaigns, world.new_campaigns], ignore_index=True)
    local = pd.concat([local_world.campaigns, local_world.new_campaigns], ignore_index=True)
    first = campaigns["marketplaces"].map(lambda codes: codes[0])
    rate = first.map(UNITS_PER_DOLLAR)
    assert {"US", "JP", "UK"} <= set(first)
    for column in ("price", "budget"):
        assert local[column].to_numpy() == pytest.approx(campaigns[column] * rate, rel=0.01), column
    assert (local["price"] / campaigns["price"])[first == "JP"].to_numpy() == pytest.approx(150, rel=0.01)
    assert (local["price"][first == "JP"] % 1 == 0).all()
    assert local["price"][first == "US"].equals(campaigns["price"][first == "US"])
    truth = local_world.campaign_truth.set_index("campaign_id")
    assert truth["units_per_dollar"].reindex(campaigns["campaign_id"]).tolist() == rate.tolist()
    assert set(truth["currency"][truth["units_per_dollar"] == 150]) == {"JPY"}

    by_campaign = dict(zip(campaigns["campaign_id"], rate, strict=True))
    rows = world.performance.merge(local_world.performance, on=["campaign_id", "creator_id"], suffixes=("", "_local"))
    sold = rows["sales"] > 0
    for column in ("impressions", "clicks", "orders", "units"):
        assert rows[column].equals(rows[f"{column}_local"]), column
    for column in ("sales", "commission"):
        local_over_dollars = (rows[f"{column}_local"] / rows[column])[sold & (rows[column] >= 1)]
        assert local_over_dollars.to_numpy() == pytest.approx(
            rows["campaign_id"][local_over_dollars.index].map(by_campaign), rel=0.05
        ), column
    bought = local_world.purchases["sales"] / world.purchases["sales"]
    assert bought.to_numpy() == pytest.approx(world.purchases["campaign_id"].map(by_campaign), rel=0.01)


def test_a_local_currency_world_passes_the_contract(local_world, tmp_path):
    """Written and read back through the training reader and the contract's readers: nothing rejected."""
    written = write_world(local_world, tmp_path)
    tables = read_training_tables(tmp_path)

    assert tables.rejects == []
    assert len(tables.performance) == len(local_world.performance)
    assert len(tables.purchases) == len(local_world.purchases) > 0
    new = read_table(written["new_campaigns"], "campaigns")
    assert new.rejects == [] and len(new.frame) == len(local_world.new_campaigns)


def test_the_alt_world_prices_its_marketplaces_in_their_currencies_too():
    """The second generator takes the same setting: its AU campaigns in Australian dollars, the truth unchanged."""
    sizes = {"n_creators": 120, "n_campaigns": 30, "n_new_campaigns": 5, "seed": 3}
    dollars, local = simulate_alt(**sizes), simulate_alt(**sizes, currencies="local")
    first = dollars.campaigns["marketplaces"].map(lambda codes: codes[0])

    assert "AU" in set(first)
    ratio = local.campaigns["price"] / dollars.campaigns["price"]
    assert ratio.to_numpy() == pytest.approx(first.map(UNITS_PER_DOLLAR), rel=0.01)
    pd.testing.assert_frame_equal(dollars.truth, local.truth)


def test_an_unknown_currencies_setting_is_refused_by_name():
    """A misspelt setting is not silently dollars."""
    with pytest.raises(ValueError, match="Got currencies='yen'; expected one of dollars, local"):
        simulate(n_creators=20, n_campaigns=10, currencies="yen")
