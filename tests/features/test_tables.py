"""Reading contract tables: every row rule names table, row, id and column; all three file formats agree."""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.rows import MAX_PRICE
from features.tables import (
    UNPAIRED,
    InputError,
    Table,
    read_frame,
    read_table,
    records_frame,
    rejects_path,
    report_rejects,
    valid_rows,
    validate_frame,
    validate_performance_links,
    write_rejects,
)


def campaign(**overrides) -> dict:
    row = {
        "campaign_id": "c1",
        "brand": "Lumora",
        "brief": "A hydrating serum for dry skin; looking for skincare creators.",
        "category": "beauty",
        "asins": ["B0ABCDEFGH", "B012345678"],
        "price": 24.5,
        "commission_rate": 0.15,
        "budget": 500.0,
        "start_date": "2026-01-01",
        "end_date": "2026-02-01",
        "marketplaces": ["US", "CA"],
    }
    return row | overrides


def creator(**overrides) -> dict:
    row = {
        "creator_id": "u1",
        "creator_type": "social_creator",
        "platforms": ["instagram", "tiktok"],
        "interest_tags": ["skincare", "k-beauty"],
        "followers": 12000,
    }
    return row | overrides


def performance(**overrides) -> dict:
    row = {
        "campaign_id": "c1",
        "creator_id": "u1",
        "impressions": 1000,
        "clicks": 50,
        "orders": 4,
        "sales": 98.0,
    }
    return row | overrides


ROW_MAKERS = {"campaigns": campaign, "creators": creator, "performance": performance}
ID_OF = {"campaigns": "campaign_id", "creators": "creator_id"}

RULES = [
    ("campaigns", {"price": 0.0}, "price", "greater than 0"),
    ("campaigns", {"price": -3.0}, "price", "greater than 0"),
    # Beyond any product's price, and beyond what the slate assignment's solver can take (it failed at 1e18).
    ("campaigns", {"price": 1e18}, "price", "got 1e+18; input should be less than or equal to 1000000000"),
    ("campaigns", {"price": math.nextafter(MAX_PRICE, math.inf)}, "price", "less than or equal to 1000000000"),
    # A flag is not an amount: pydantic alone read True as 1.0.
    ("campaigns", {"price": True}, "price", "got True; input should be a number, not a boolean"),
    ("campaigns", {"commission_rate": True}, "commission_rate", "not a boolean"),
    ("campaigns", {"budget": False}, "budget", "got False; input should be a number, not a boolean"),
    ("campaigns", {"commission_rate": 1.7}, "commission_rate", "less than or equal to 1"),
    ("campaigns", {"commission_rate": 0.0}, "commission_rate", "greater than 0"),
    ("campaigns", {"budget": 0.0}, "budget", "greater than 0"),
    ("campaigns", {"end_date": "2025-12-31"}, "end_date", "before start_date"),
    ("campaigns", {"asins": [f"B{k:09d}" for k in range(1201)]}, "asins", "1201 distinct ASINs; expected at most 1200"),
    ("campaigns", {"asins": []}, "asins", "at least 1"),
    ("campaigns", {"asins": ["B0ABCDEFGH", "b0abc"]}, "asins", "'b0abc' is not an ASIN"),
    ("campaigns", {"marketplaces": ["usa"]}, "marketplaces", "'usa' is not a marketplace code"),
    ("campaigns", {"marketplaces": []}, "marketplaces", "at least 1"),
    ("campaigns", {"brief": ""}, "brief", "at least 1 character"),
    ("campaigns", {"brief": "   "}, "brief", "at least 1 character"),
    ("campaigns", {"brief": "x" * 5001}, "brief", "at most 5000"),
    ("campaigns", {"product_type": "luxury"}, "product_type", "standard"),
    ("campaigns", {"start_date": "not a date"}, "start_date", "date"),
    ("campaigns", {"price": math.nan}, "price", "required value is missing"),
    ("campaigns", {"price": math.inf}, "price", "finite number"),
    ("campaigns", {"budget": -math.inf}, "budget", "finite number"),
    ("campaigns", {"brand": None}, "brand", "required value is missing"),
    ("creators", {"creator_type": "influencer"}, "creator_type", "social_creator"),
    ("creators", {"platforms": []}, "platforms", "at least 1 item"),
    ("creators", {"platforms": ["myspace"]}, "platforms", "instagram"),
    ("creators", {"interest_tags": []}, "interest_tags", "at least 1 item"),
    ("creators", {"followers": -1}, "followers", "greater than or equal to 0"),
    ("creators", {"followers": None}, "followers", "required value is missing"),
    ("creators", {"audience_marketplaces": {"US": 0.7, "UK": 0.5}}, "audience_marketplaces", "expected at most 1"),
    ("creators", {"audience_marketplaces": {"US": 1.5}}, "audience_marketplaces", "less than or equal to 1"),
    ("creators", {"audience_marketplaces": {"US": -0.1}}, "audience_marketplaces", "greater than or equal to 0"),
    ("creators", {"audience_marketplaces": {"usa": 0.5}}, "audience_marketplaces", "not a marketplace code"),
    # A map's key is named as one: pydantic's place for it read `['us']['[key]']`.
    ("creators", {"audience_marketplaces": {"us": 0.5}}, "audience_marketplaces", "key 'us': 'us' is not a market"),
    ("creators", {"audience_mobile_share": 1.2}, "audience_mobile_share", "less than or equal to 1"),
    ("creators", {"storefront_return_rate": -0.2}, "storefront_return_rate", "greater than or equal to 0"),
    ("creators", {"avg_dwell_seconds": math.inf}, "avg_dwell_seconds", "finite number"),
    ("creators", {"disclosure_violations": -2}, "disclosure_violations", "greater than or equal to 0"),
    ("creators", {"creator_id": "  "}, "creator_id", "at least 1 character"),
    ("performance", {"clicks": 2000}, "clicks", "clicks 2000 exceed impressions 1000"),
    ("performance", {"orders": 51}, "orders", "orders 51 exceed clicks 50"),
    ("performance", {"impressions": -5, "clicks": 0, "orders": 0}, "impressions", "greater than or equal to 0"),
    ("performance", {"sales": math.nan}, "sales", "required value is missing"),
    ("performance", {"sales": math.inf}, "sales", "finite number"),
    ("performance", {"status": "refunded"}, "status", "settled"),
]


@pytest.mark.parametrize(
    ("table", "bad", "column", "fragment"), RULES, ids=[f"{t}-{c}-{i}" for i, (t, _, c, _) in enumerate(RULES)]
)
def test_each_rule_rejects_the_row_naming_table_row_id_and_column(table, bad, column, fragment):
    """A row breaking one rule becomes one Reject (1-based row, its id, the column); the valid row is kept."""
    make = ROW_MAKERS[table]
    good = make() if table != "performance" else make(creator_id="u0")
    key = {"campaign_id": "c9"} if table == "campaigns" else {"creator_id": "u9"}
    if table == "creators" and "creator_id" in bad:
        key = {}
    frame = pd.DataFrame([good, make(**(key | bad))])

    result = validate_frame(frame, table)

    assert len(result.rejects) == 1, result.rejects
    reject = result.rejects[0]
    assert (reject.table, reject.row, reject.column) == (table, 2, column)
    expected_id = {"campaigns": "c9", "creators": "u9", "performance": "c1/u9"}[table]
    if table == "creators" and "creator_id" in bad:
        expected_id = "  "  # the raw id, as the file had it
    assert reject.id == expected_id
    assert fragment in reject.reason
    assert result.frame["row"].tolist() == [1]


def test_the_largest_price_and_any_finite_budget_are_valid():
    """The price bound is inclusive, and the budget has none: a budget no slate could spend never binds."""
    frame = pd.DataFrame([campaign(price=MAX_PRICE, budget=sys.float_info.max, commission_rate=1.0)])

    result = validate_frame(frame, "campaigns")

    assert result.rejects == []
    assert result.frame.loc[0, ["price", "budget"]].tolist() == [MAX_PRICE, sys.float_info.max]


def test_an_asin_listed_twice_counts_once_toward_the_limit():
    """A seller's export of 1,250 rows that hold 1,200 products was refused as "at most 1200 items, not 1250",
    though an ASIN listed twice counts once; the products are kept once each, in their first order."""
    asins = [f"B{k:09d}" for k in range(1200)]
    frame = pd.DataFrame([campaign(asins=asins + asins[:50]), campaign(campaign_id="c2", asins=[*asins, "BX00000000"])])

    result = validate_frame(frame, "campaigns")

    assert result.frame["asins"].tolist() == [asins]
    assert [(r.row, r.reason[-42:]) for r in result.rejects] == [(2, "1201 distinct ASINs; expected at most 1200")]


def test_a_time_of_day_is_dropped_however_the_date_is_given():
    """A timestamp object and an ISO date-time string name the same day (a string was refused, an object taken)."""
    import datetime as dt

    rows = [
        campaign(campaign_id="text", start_date="2026-01-01T10:30:00", end_date="2026-02-01T23:59:59Z"),
        campaign(
            campaign_id="object", start_date=dt.datetime(2026, 1, 1, 10, 30), end_date="2026-02-01T23:59:59-08:00"
        ),
        campaign(campaign_id="space", start_date="2026-01-01 00:00", end_date="2026-02-01"),
    ]
    result = validate_frame(pd.DataFrame(rows), "campaigns")
    assert result.rejects == []
    assert set(result.frame["start_date"]) == {dt.date(2026, 1, 1)}
    assert set(result.frame["end_date"]) == {dt.date(2026, 2, 1)}
    bad = validate_frame(pd.DataFrame([campaign(start_date="2026-01-01T25:00")]), "campaigns").rejects
    assert [reject.column for reject in bad] == ["start_date"]
    for written in ("12/01/2026", "2026-12-1"):
        (bad,) = validate_frame(pd.DataFrame([campaign(start_date=written)]), "campaigns").rejects
        assert bad.reason == f"got '{written}'; input should be a date as YYYY-MM-DD"
    (number,) = validate_frame(pd.DataFrame([campaign(start_date=20260101)]), "campaigns").rejects
    assert number.column == "start_date" and number.reason.endswith("should be a date as YYYY-MM-DD, not a number")


def test_audience_share_sum_reason_states_the_sum():
    """The share-sum reason gives the actual total, so a data team can see by how much it is off."""
    frame = pd.DataFrame([creator(audience_marketplaces={"US": 0.7, "UK": 0.5})])
    frame = pd.concat([pd.DataFrame([creator(creator_id="u0")]), frame], ignore_index=True)

    (reject,) = validate_frame(frame, "creators").rejects

    assert "1.200" in reject.reason, reject.reason


def test_missing_optional_float_is_not_a_reject():
    """NaN in an optional float column means 'no value'; the row stays valid with None."""
    frame = pd.DataFrame([creator(avg_dwell_seconds=math.nan), creator(creator_id="u2", avg_dwell_seconds=31.5)])

    result = validate_frame(frame, "creators")

    assert result.rejects == []
    assert result.frame["avg_dwell_seconds"].isna().tolist() == [True, False]


def test_duplicate_ids_keep_the_first_and_reject_later_ones():
    """A repeated id is rejected at its own row, naming the row where it was first seen."""
    frame = pd.DataFrame(
        [campaign(), campaign(campaign_id="c2"), campaign(price=99.0), campaign(campaign_id="c3"), campaign()]
    )

    result = validate_frame(frame, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1", "c2", "c3"]
    assert result.frame["row"].tolist() == [1, 2, 4]
    assert result.frame.loc[0, "price"] == 24.5
    assert [(r.row, r.id, r.column) for r in result.rejects] == [(3, "c1", "campaign_id"), (5, "c1", "campaign_id")]
    assert all("first seen at row 1" in r.reason for r in result.rejects)


@pytest.mark.parametrize("table", ["campaigns", "creators"])
def test_an_id_whose_first_row_was_rejected_is_not_taken_by_a_later_row(table):
    """A seller's row 1 refused (a price written "$29.99"), and a later row given the same id by mistake: that row
    was matched under the id the rejects file names as refused. Now it is refused too, naming the first row."""
    if table == "campaigns":
        rows = [campaign(price="$29.99"), campaign(campaign_id="c2"), campaign(brief="another product")]
    else:
        rows = [creator(followers=-5), creator(creator_id="u2"), creator(bio="another creator")]
    frame = pd.DataFrame(rows)

    result = validate_frame(frame, table)

    first_id = rows[0]["campaign_id" if table == "campaigns" else "creator_id"]
    assert result.frame["row"].tolist() == [2]
    assert [(r.row, r.id) for r in result.rejects] == [(1, first_id), (3, first_id)]
    assert result.rejects[1].reason == "duplicate id; first seen at row 1, which was rejected"


def test_a_rejected_row_that_repeats_an_earlier_id_says_so_beside_its_other_reasons():
    """docs/contract.md: every bad column of a row is reported. A row refused for its price whose id repeats an
    earlier row's named only the price: fixing it brought up the duplicate id on the next run. The id's reason is
    there whether the earlier row was kept or refused, and whichever the order of rows within a block."""
    rows = [
        campaign(),
        campaign(campaign_id="c2", price="$5"),
        campaign(price="x"),
        campaign(campaign_id="c2", price=-1),
    ]

    result = validate_frame(pd.DataFrame(rows), "campaigns")

    assert result.frame["row"].tolist() == [1]
    assert [(r.row, r.id, r.column, r.reason.split(";")[0]) for r in result.rejects] == [
        (2, "c2", "price", "got '$5'"),
        (3, "c1", "campaign_id", "duplicate id"),
        (3, "c1", "price", "got 'x'"),
        (4, "c2", "campaign_id", "duplicate id"),
        (4, "c2", "price", "got -1"),
    ]
    assert result.rejects[1].reason == "duplicate id; first seen at row 1"
    assert result.rejects[3].reason == "duplicate id; first seen at row 2, which was rejected"


def test_duplicate_performance_pair_is_rejected_but_same_campaign_other_creator_is_not():
    """Performance is unique per (campaign, creator); the id names both."""
    frame = pd.DataFrame([performance(), performance(creator_id="u2"), performance(clicks=10, orders=1)])

    result = validate_frame(frame, "performance")

    assert result.frame["creator_id"].tolist() == ["u1", "u2"]
    assert [(r.row, r.id) for r in result.rejects] == [(3, "c1/u1")]


def test_valid_rows_next_to_invalid_ones_are_kept_and_every_row_is_accounted_for():
    """Valid rows plus rejected rows equal the rows read; valid rows keep their order and file row numbers."""
    rows = [
        campaign(campaign_id="c1"),
        campaign(campaign_id="c2", price=-1.0),
        campaign(campaign_id="c3"),
        campaign(campaign_id="c4", commission_rate=2.0, marketplaces=["usa"]),
        campaign(campaign_id="c5"),
        campaign(campaign_id="c6", end_date="2025-01-01"),
        campaign(campaign_id="c7", category="home"),
    ]

    result = validate_frame(pd.DataFrame(rows), "campaigns")

    rejected_rows = {r.row for r in result.rejects}
    assert len(result.frame) + len(rejected_rows) == len(rows)
    assert result.frame["campaign_id"].tolist() == ["c1", "c3", "c5", "c7"]
    assert result.frame["row"].tolist() == [1, 3, 5, 7]
    assert rejected_rows == {2, 4, 6}
    assert {r.column for r in result.rejects if r.row == 4} == {"commission_rate", "marketplaces"}


def test_all_rows_invalid_gives_an_empty_table_and_the_rejects():
    """A file whose every row is bad still reads: zero valid rows and one reject per row, no crash."""
    frame = pd.DataFrame([campaign(price=0.0), campaign(campaign_id="c2", brief="")])

    result = validate_frame(frame, "campaigns")

    assert len(result.frame) == 0
    assert [r.row for r in result.rejects] == [1, 2]


def test_header_only_csv_reads_as_an_empty_table(tmp_path):
    """A table with columns but no rows reads as zero valid rows and no rejects."""
    path = tmp_path / "campaigns.csv"
    path.write_text(",".join(campaign()) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert len(result.frame) == 0 and result.rejects == []


# --- the three file formats -------------------------------------------------------------------------------------

CREATOR_ROWS = [
    creator(
        creator_id="u1",
        handle="@glow",
        bio="Skincare routines for dry skin.",
        audience_marketplaces={"US": 0.6, "CA": 0.25},
        audience_mobile_share=0.8,
        accepts_campaigns=True,
        notes="from crm",
    ),
    creator(
        creator_id="u2",
        creator_type="deals_site",
        platforms=["website"],
        interest_tags=["deals", "kitchen gadgets"],
        followers=300000,
        handle=None,
        bio=None,
        audience_marketplaces=None,
        audience_mobile_share=None,
        accepts_campaigns=False,
        notes="",
    ),
    creator(
        creator_id="u3",
        creator_type="podcaster",
        handle="@bad",
        bio=None,
        audience_marketplaces={"UK": 0.9},
        audience_mobile_share=0.5,
        accepts_campaigns=True,
        notes="bad type",
    ),
    creator(
        creator_id="u4",
        creator_type="review_site",
        platforms=["website", "youtube"],
        interest_tags=["trail running"],
        followers=0,
        handle="@trail",
        bio="Reviews of trail shoes.",
        audience_marketplaces={"DE": 0.5, "FR": 0.2, "IT": 0.1},
        audience_mobile_share=None,
        accepts_campaigns=True,
        notes="x",
    ),
]
CREATOR_COLUMNS = list(CREATOR_ROWS[0])


def write_parquet_creators(path, rows, audience_type=None, audience=None) -> None:
    columns = {name: [row[name] for row in rows] for name in CREATOR_COLUMNS}
    types = {
        "platforms": pa.list_(pa.string()),
        "interest_tags": pa.list_(pa.string()),
        "audience_marketplaces": pa.map_(pa.string(), pa.float64()),
        "followers": pa.int64(),
        "audience_mobile_share": pa.float64(),
        "accepts_campaigns": pa.bool_(),
    }
    columns["audience_marketplaces"] = [
        None if m is None else list(m.items()) for m in columns["audience_marketplaces"]
    ]
    if audience_type is not None:
        types["audience_marketplaces"] = audience_type
        columns["audience_marketplaces"] = audience
    arrays = {name: pa.array(values, type=types.get(name, pa.string())) for name, values in columns.items()}
    pq.write_table(pa.table(arrays), path)


def write_csv_creators(path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CREATOR_COLUMNS)
        for row in rows:
            cells = []
            for name in CREATOR_COLUMNS:
                value = row[name]
                if value is None:
                    cells.append("")
                elif isinstance(value, list):
                    cells.append("|".join(value))
                elif isinstance(value, dict):
                    cells.append(json.dumps(value))
                elif isinstance(value, bool):
                    cells.append("true" if value else "false")
                else:
                    cells.append(str(value))
            writer.writerow(cells)


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def model_columns(table) -> pd.DataFrame:
    return table.frame.drop(columns=["notes"], errors="ignore")


def test_parquet_csv_and_jsonl_creators_read_to_the_same_valid_rows(tmp_path):
    """Lists and maps in each format's own spelling give identical typed rows and identical rejects."""
    write_parquet_creators(tmp_path / "creators.parquet", CREATOR_ROWS)
    write_csv_creators(tmp_path / "creators.csv", CREATOR_ROWS)
    write_jsonl(tmp_path / "creators.jsonl", CREATOR_ROWS)

    tables = {ext: read_table(tmp_path / f"creators.{ext}", "creators") for ext in ("parquet", "csv", "jsonl")}

    parquet = tables["parquet"]
    assert parquet.frame["creator_id"].tolist() == ["u1", "u2", "u4"]
    assert parquet.frame["platforms"].tolist() == [["instagram", "tiktok"], ["website"], ["website", "youtube"]]
    assert parquet.frame["audience_marketplaces"].tolist() == [
        {"US": 0.6, "CA": 0.25},
        None,
        {"DE": 0.5, "FR": 0.2, "IT": 0.1},
    ]
    assert parquet.frame["accepts_campaigns"].tolist() == [True, False, True]
    assert parquet.frame["followers"].tolist() == [12000, 300000, 0]
    for ext in ("csv", "jsonl"):
        pd.testing.assert_frame_equal(model_columns(tables[ext]), model_columns(parquet), obj=ext)
        assert [(r.row, r.id, r.column) for r in tables[ext].rejects] == [(3, "u3", "creator_type")]
    assert [(r.row, r.id, r.column) for r in parquet.rejects] == [(3, "u3", "creator_type")]


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_pandas_missing_value_of_nullable_columns_is_missing_as_none_and_nan_are(tmp_path, backend):
    """A DataFrame of nullable columns (`convert_dtypes`, `dtype_backend=...`) holds its missing values as pd.NA:
    a creator whose `handle`, `bio` or `audience_mobile_share` was NA was rejected ("got <NA>; input should be a
    valid integer"), and the Python API left 239 of 300 valid creators out."""
    write_parquet_creators(tmp_path / "creators.parquet", CREATOR_ROWS)
    nullable = pd.read_parquet(tmp_path / "creators.parquet", dtype_backend=backend)
    assert nullable["bio"].isna().any() and nullable["bio"].dtype != object
    plain = validate_frame(pd.read_parquet(tmp_path / "creators.parquet"), "creators")

    read = validate_frame(nullable, "creators")

    pd.testing.assert_frame_equal(model_columns(read), model_columns(plain), check_dtype=False)
    assert [(r.row, r.id, r.column) for r in read.rejects] == [(3, "u3", "creator_type")]
    rows = [campaign(product_type=pd.NA, in_stock=pd.NA), performance(sales=pd.NA)]
    assert validate_frame(records_frame(rows[:1]), "campaigns").frame.loc[0, ["product_type", "in_stock"]].tolist() == [
        "auto",
        True,
    ]
    assert validate_frame(records_frame(rows[1:]), "performance").rejects[0].column == "sales"


def test_parquet_csv_and_jsonl_campaigns_read_to_the_same_valid_rows(tmp_path):
    """Campaign lists and dates (Parquet date32, ISO strings elsewhere) read the same in every format."""
    rows = [
        campaign(campaign_id="c1", product_type="non_standard", in_stock=True),
        campaign(campaign_id="c2", asins=["B000000001"], marketplaces=["UK"], product_type="auto", in_stock=False),
        campaign(campaign_id="c3", end_date="2025-06-01", product_type="standard", in_stock=True),
    ]
    types = {
        "asins": pa.list_(pa.string()),
        "marketplaces": pa.list_(pa.string()),
        "price": pa.float64(),
        "commission_rate": pa.float64(),
        "budget": pa.float64(),
        "start_date": pa.date32(),
        "end_date": pa.date32(),
        "in_stock": pa.bool_(),
    }
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    for name in ("start_date", "end_date"):
        columns[name] = [pd.Timestamp(v).date() for v in columns[name]]
    pq.write_table(
        pa.table({n: pa.array(v, type=types.get(n, pa.string())) for n, v in columns.items()}),
        tmp_path / "campaigns.parquet",
    )
    with open(tmp_path / "campaigns.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        for row in rows:
            writer.writerow(
                [
                    "|".join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v
                    for v in row.values()
                ]
            )
    write_jsonl(tmp_path / "campaigns.jsonl", rows)

    tables = {ext: read_table(tmp_path / f"campaigns.{ext}", "campaigns") for ext in ("parquet", "csv", "jsonl")}

    parquet = tables["parquet"]
    assert parquet.frame["campaign_id"].tolist() == ["c1", "c2"]
    assert parquet.frame["start_date"].tolist() == [pd.Timestamp("2026-01-01").date()] * 2
    assert parquet.frame["in_stock"].tolist() == [True, False]
    for ext in ("csv", "jsonl"):
        pd.testing.assert_frame_equal(tables[ext].frame, parquet.frame, obj=ext)
        assert [(r.row, r.column) for r in tables[ext].rejects] == [(3, "end_date")]


def test_parquet_struct_map_column_is_accepted(tmp_path):
    """A Parquet struct for audience_marketplaces reads as a map; absent marketplaces are dropped."""
    rows = CREATOR_ROWS[:2]
    audience_type = pa.struct([("US", pa.float64()), ("UK", pa.float64())])
    audience = [{"US": 0.6, "UK": None}, {"US": 0.3, "UK": 0.5}]
    path = tmp_path / "creators.parquet"
    write_parquet_creators(path, rows, audience_type, audience)

    result = read_table(path, "creators")

    assert result.rejects == []
    assert result.frame["audience_marketplaces"].tolist() == [{"US": 0.6}, {"US": 0.3, "UK": 0.5}]


def test_parquet_json_object_string_map_column_is_accepted(tmp_path):
    """A JSON object string in a Parquet string column reads as a map; a bad one is rejected by column."""
    rows = [creator(creator_id="u1"), creator(creator_id="u2"), creator(creator_id="u3")]
    for row, audience in zip(rows, ['{"US": 0.6, "JP": 0.1}', None, '{"US": 0.9, "UK": 0.9}'], strict=True):
        row["audience_marketplaces"] = audience
    frame = pd.DataFrame(rows)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert table.schema.field("audience_marketplaces").type in (pa.string(), pa.large_string())
    path = tmp_path / "creators.parquet"
    pq.write_table(table, path)

    result = read_table(path, "creators")

    assert result.frame["audience_marketplaces"].tolist() == [{"US": 0.6, "JP": 0.1}, None]
    assert [(r.row, r.id, r.column) for r in result.rejects] == [(3, "u3", "audience_marketplaces")]


def test_csv_list_written_as_json_array_is_accepted(tmp_path):
    """A CSV list cell holding a JSON array reads like the pipe form."""
    path = tmp_path / "creators.csv"
    path.write_text(
        "creator_id,creator_type,platforms,interest_tags,followers\n"
        'u1,social_creator,"[""instagram"", ""x""]",skincare|k-beauty,10\n',
        encoding="utf-8",
    )

    result = read_table(path, "creators")

    assert result.rejects == []
    assert result.frame.loc[0, "platforms"] == ["instagram", "x"]
    assert result.frame.loc[0, "interest_tags"] == ["skincare", "k-beauty"]


def test_csv_numbers_and_ids_are_typed_by_the_row_model(tmp_path):
    """CSV is read as text: ids like '007' stay strings; 'inf', 'nan' and words in a float column are rejected."""
    path = tmp_path / "campaigns.csv"
    header = list(campaign())
    lines = [",".join(header)]
    for campaign_id, budget in (("007", "500"), ("c2", "inf"), ("c3", "nan"), ("c4", "lots")):
        row = campaign(campaign_id=campaign_id, budget=budget)
        lines.append(",".join("|".join(v) if isinstance(v, list) else f'"{v}"' for v in row.values()))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["007"]
    assert result.frame["budget"].tolist() == [500.0]
    assert [(r.row, r.id, r.column) for r in result.rejects] == [
        (2, "c2", "budget"),
        (3, "c3", "budget"),
        (4, "c4", "budget"),
    ]
    assert "finite number" in result.rejects[0].reason
    assert result.rejects[1].reason == "got 'nan'; input should be a finite number"  # a value, not a blank
    assert "valid number" in result.rejects[2].reason


def test_unknown_extra_columns_are_kept_aligned_with_the_valid_rows(tmp_path):
    """Extra columns survive validation, row by row, even when rows before them were rejected."""
    rows = [
        campaign(campaign_id="c1", owner="ana", priority=1),
        campaign(campaign_id="c2", owner="ben", priority=2, price=0.0),
        campaign(campaign_id="c3", owner="cai", priority=3),
    ]
    path = tmp_path / "campaigns.jsonl"
    write_jsonl(path, rows)

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1", "c3"]
    assert result.frame["owner"].tolist() == ["ana", "cai"]
    assert result.frame["priority"].tolist() == [1, 3]


def test_csv_with_non_utf8_bytes_is_still_read(tmp_path):
    """Latin-1 bytes in a CSV are replaced, not fatal; valid rows are kept and bad ones still rejected."""
    path = tmp_path / "creators.csv"
    path.write_bytes(
        b"creator_id,creator_type,platforms,interest_tags,followers,bio\n"
        b"u1,social_creator,instagram,skincare,10,Caf\xe9 cr\xe8me lover\n"
        b"u2,review_site,website,trail running,20,plain\n"
        b"u3,social_creator,instagram,skincare,-4,\xff\xfe\n"
    )

    # Said, naming the first line that is not UTF-8 (Excel's plain "CSV" writes Windows-1252): it was silent.
    with pytest.warns(UserWarning, match=r"creators\.csv: not UTF-8 from line 2 \(byte 0xe9 at offset 105\)"):
        result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == ["u1", "u2"]
    assert "\ufffd" in result.frame.loc[0, "bio"]
    assert result.frame.loc[0, "bio"].startswith("Caf")
    assert [(r.row, r.id, r.column) for r in result.rejects] == [(3, "u3", "followers")]


def test_private_bio_and_handle_values_are_never_echoed_in_a_reason():
    """A bad bio or handle is named by column, but its value does not appear in the reason."""
    frame = pd.DataFrame(
        [
            creator(creator_id="u1", bio=[1234567, 7654321]),
            creator(creator_id="u2", handle=5550199),
            creator(creator_id="u3", bio="fine"),
        ]
    )

    result = validate_frame(frame, "creators")

    assert result.frame["creator_id"].tolist() == ["u3"]
    assert [(r.row, r.column) for r in result.rejects] == [(1, "bio"), (2, "handle")]
    for reject in result.rejects:
        assert "1234567" not in reject.reason and "7654321" not in reject.reason
        assert "5550199" not in reject.reason
        assert "1234567" not in reject.line() and "5550199" not in reject.line()


def test_public_values_are_echoed_to_help_fix_the_row():
    """For ordinary columns the reason shows the offending value."""
    frame = pd.DataFrame([campaign(campaign_id="c1", commission_rate=1.7)])
    frame = pd.concat([pd.DataFrame([campaign(campaign_id="c0")]), frame], ignore_index=True)

    (reject,) = validate_frame(frame, "campaigns").rejects

    assert "1.7" in reject.reason


# --- errors, rejects file and stderr ------------------------------------------------------------------------------


def test_read_frame_missing_file_raises_a_one_line_input_error(tmp_path):
    """A missing file is an InputError with one line naming the path."""
    path = tmp_path / "absent.parquet"

    with pytest.raises(InputError) as caught:
        read_frame(path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "no such file" in message


def test_read_frame_unknown_extension_raises_a_one_line_input_error(tmp_path):
    """An unknown extension is refused by name, whether or not the file exists."""
    path = tmp_path / "creators.xlsx"
    path.write_bytes(b"PK\x03\x04")

    with pytest.raises(InputError) as caught:
        read_frame(path)

    message = str(caught.value)
    assert "\n" not in message
    assert "'.xlsx'" in message and ".parquet" in message


def test_read_frame_unparseable_parquet_raises_a_one_line_input_error(tmp_path):
    """A file that is not Parquet despite its name is an InputError, not a parser traceback."""
    path = tmp_path / "creators.parquet"
    path.write_text("creator_id\nu1\nu2\n", encoding="utf-8")

    with pytest.raises(InputError) as caught:
        read_frame(path)

    assert "\n" not in str(caught.value) and "cannot read as parquet" in str(caught.value)


def test_write_rejects_writes_the_contract_file_beside_the_output(tmp_path):
    """`<stem>.rejects.csv` beside the output holds table,row,id,column,reason for every reject, and the output's
    name (the file it belongs to)."""
    frame = pd.DataFrame([campaign(), campaign(campaign_id="c2", price=0.0), campaign(campaign_id="c3", brief="")])
    rejects = validate_frame(frame, "campaigns").rejects
    out = tmp_path / "out" / "matches.parquet"

    path = write_rejects(rejects, out)

    assert path == tmp_path / "out" / "matches.rejects.csv" == rejects_path(out)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["table", "row", "id", "column", "reason", "output"]
        written = list(reader)
    assert {r["output"] for r in written} == {"matches.parquet"}
    assert [(r["table"], r["row"], r["id"], r["column"]) for r in written] == [
        ("campaigns", "2", "c2", "price"),
        ("campaigns", "3", "c3", "brief"),
    ]
    assert written[0]["reason"] == rejects[0].reason
    assert sorted(p.name for p in path.parent.iterdir()) == ["matches.rejects.csv"]


def test_write_rejects_with_no_rejects_writes_only_the_header(tmp_path):
    """An empty rejects list still gives a well-formed file."""
    path = write_rejects([], tmp_path / "matches.csv")

    assert path.read_text(encoding="utf-8").splitlines() == ["table,row,id,column,reason,output"]


def test_report_rejects_writes_one_line_per_reject_to_stderr(capsys):
    """Each reject is one stderr line naming table, row, id, column and reason."""
    frame = pd.DataFrame([performance(), performance(creator_id="u2", clicks=5000), performance(creator_id="")])
    rejects = validate_frame(frame, "performance").rejects

    report_rejects(rejects)

    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == len(rejects) == 2
    assert lines[0].startswith("performance row 2 (id c1/u2): column clicks: ")
    assert "exceed impressions" in lines[0]
    assert lines[1].startswith("performance row 3 (id c1/): column creator_id: ")


def test_report_rejects_writes_to_a_given_stream():
    """report_rejects honours an explicit stream."""
    frame = pd.DataFrame([creator(), creator(creator_id="u2", followers=-1)])
    stream = io.StringIO()

    report_rejects(validate_frame(frame, "creators").rejects, stream)

    assert stream.getvalue() == (
        "creators row 2 (id u2): column followers: got -1; input should be greater than or equal to 0\n"
    )


def test_validate_performance_links_rejects_unknown_campaigns_and_creators():
    """Performance rows pointing at no valid campaign or creator are rejected with that column named."""
    campaigns = validate_frame(
        pd.DataFrame([campaign(campaign_id="c1"), campaign(campaign_id="cX", price=0)]), "campaigns"
    )
    creators = validate_frame(pd.DataFrame([creator(creator_id="u1"), creator(creator_id="u2")]), "creators")
    perf = validate_frame(
        pd.DataFrame(
            [
                performance(campaign_id="c1", creator_id="u1"),
                performance(campaign_id="cX", creator_id="u1"),
                performance(campaign_id="c1", creator_id="u9"),
                performance(campaign_id="c1", creator_id="u2", orders=999),
                performance(campaign_id="c1", creator_id="u2"),
                performance(campaign_id="c7", creator_id="u8"),
            ]
        ),
        "performance",
    )

    linked = validate_performance_links(perf, campaigns.frame, creators.frame)

    # Row 5 repeats row 4's pair, which was refused: the pair is not trained on under the key the rejects name.
    assert linked.frame["row"].tolist() == [1]
    assert [(r.row, r.id, r.column) for r in linked.rejects] == [
        (2, "cX/u1", "campaign_id"),
        (3, "c1/u9", "creator_id"),
        (4, "c1/u2", "orders"),
        (5, "c1/u2", "creator_id"),
        (6, "c7/u8", "campaign_id"),
    ]
    assert "'cX' is not a valid row of the campaigns table" in linked.rejects[0].reason
    assert "'u9' is not a valid row of the creators table" in linked.rejects[1].reason
    assert len(linked.frame) + len({r.row for r in linked.rejects}) == 6


# --- regressions found by tests/features/test_fuzz_tables.py ------------------------------------------------------


def test_asin_and_marketplace_with_a_trailing_newline_are_rejected():
    """`$` in the contract patterns matched before a final newline, so 'US\\n' and 'B0ABCDEFGH\\n' passed."""
    frame = pd.DataFrame(
        [
            campaign(campaign_id="c1"),
            campaign(campaign_id="c2", asins=["B0ABCDEFGH\n"]),
            campaign(campaign_id="c3", marketplaces=["US\n"]),
        ]
    )
    creators = pd.DataFrame([creator(audience_marketplaces={"US\n": 0.5})])

    result = validate_frame(frame, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1"]
    assert [(r.row, r.column) for r in result.rejects] == [(2, "asins"), (3, "marketplaces")]
    assert [r.column for r in validate_frame(creators, "creators").rejects] == ["audience_marketplaces"]


def test_reasons_stay_on_one_line_and_short_whatever_the_bad_code_holds():
    """A malformed ASIN or marketplace is shown escaped and cut, so its reason is one short line."""
    frame = pd.DataFrame(
        [
            campaign(campaign_id="c1", asins=["B0AB\nCDEFGH"]),
            campaign(campaign_id="c2", marketplaces=["U\rS"]),
            campaign(campaign_id="c3", asins=["X" * 5000]),
        ]
    )

    rejects = validate_frame(frame, "campaigns").rejects

    assert [r.column for r in rejects] == ["asins", "marketplaces", "asins"]
    for reject in rejects:
        assert "\n" not in reject.reason and "\r" not in reject.reason, reject.reason
        assert len(reject.reason) < 120, reject.reason
    assert "'B0AB\\nCDEFGH' is not an ASIN" in rejects[0].reason
    assert "'U\\rS' is not a marketplace code" in rejects[1].reason


def test_jsonl_floats_are_read_exactly(tmp_path):
    """pandas' JSON reader rounded floats: 9.87654321e-05 changed, and a tiny positive price became 0.0."""
    path = tmp_path / "campaigns.jsonl"
    write_jsonl(path, [campaign(price=5e-324, commission_rate=9.87654321e-05, budget=0.30000000000000004)])

    result = read_table(path, "campaigns")

    assert result.rejects == []
    assert result.frame.loc[0, "price"] == 5e-324
    assert result.frame.loc[0, "commission_rate"] == 9.87654321e-05
    assert result.frame.loc[0, "budget"] == 0.30000000000000004


def test_stderr_line_escapes_line_breaks_in_the_id():
    """An id holding '\\r' or '\\n' is valid, but its stderr record must still be one line."""
    frame = pd.DataFrame([campaign(campaign_id="c2\r0"), campaign(campaign_id="c2\r0"), campaign(campaign_id="a\nb")])
    frame.loc[2, "price"] = 0.0
    stream = io.StringIO()

    report_rejects(validate_frame(frame, "campaigns").rejects, stream)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("campaigns row 2 (id c2\\r0): column campaign_id: duplicate id")
    assert lines[1].startswith("campaigns row 3 (id a\\nb): column price: ")


def test_parquet_null_timestamp_is_a_missing_value(tmp_path):
    """A null Parquet timestamp reads as NaT, which pydantic took for a datetime; it is a missing value."""
    path = tmp_path / "touches.parquet"
    pq.write_table(
        pa.table(
            {
                "shopper_id": ["s1", "s2"],
                "campaign_id": ["c1", "c1"],
                "creator_id": ["u1", "u2"],
                "ts": pa.array([pd.Timestamp("2026-01-02 10:00").to_pydatetime(), None], pa.timestamp("us")),
            }
        ),
        path,
    )

    result = read_table(path, "touches")

    assert result.frame["shopper_id"].tolist() == ["s1"]
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (2, "s2/c1/u2", "ts", "required value is missing")
    ]


def test_a_null_audience_share_means_the_same_in_a_parquet_map_as_in_json(tmp_path):
    """A null share was dropped from a struct or JSON object but rejected in a Parquet map; now dropped in all."""
    rows = [creator(creator_id="u1"), creator(creator_id="u2")]
    shares = [[("US", 0.6), ("UK", None)], [("DE", float("nan")), ("FR", 0.2)]]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    types = {"platforms": pa.list_(pa.string()), "interest_tags": pa.list_(pa.string()), "followers": pa.int64()}
    arrays = {name: pa.array(values, type=types.get(name, pa.string())) for name, values in columns.items()}
    arrays["audience_marketplaces"] = pa.array(shares, pa.map_(pa.string(), pa.float64()))
    pq.write_table(pa.table(arrays), tmp_path / "creators.parquet")
    as_json = [row | {"audience_marketplaces": dict(pairs)} for row, pairs in zip(rows, shares, strict=True)]
    write_jsonl(tmp_path / "creators.jsonl", as_json)

    for ext in ("parquet", "jsonl"):
        result = read_table(tmp_path / f"creators.{ext}", "creators")

        assert result.rejects == [], ext
        assert result.frame["audience_marketplaces"].tolist() == [{"US": 0.6}, {"FR": 0.2}], ext


def test_audience_shares_rounded_to_a_little_over_one_are_kept():
    """Exports round each share; 0.6001 + 0.2 + 0.2 is rounding, not a creator to drop (seen in simulated data)."""
    frame = pd.DataFrame(
        [
            creator(creator_id="rounded", audience_marketplaces={"US": 0.6001, "CA": 0.2, "MX": 0.2}),
            creator(creator_id="over", audience_marketplaces={"US": 0.61, "CA": 0.2, "MX": 0.2}),
        ]
    )
    table = validate_frame(frame, "creators")
    assert list(table.frame["creator_id"]) == ["rounded"]
    assert [(r.id, r.column) for r in table.rejects] == [("over", "audience_marketplaces")]
    assert "1.0100" in table.rejects[0].reason


def test_csv_words_that_pandas_calls_missing_are_values(tmp_path):
    """In CSV only an empty cell is missing: brand 'None', bio 'N/A', handle 'null' and Namibia's 'NA' are values."""
    campaigns = tmp_path / "campaigns.csv"
    header = [*campaign(), "notes"]
    with open(campaigns, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in (
            campaign(campaign_id="c1", brand="None", marketplaces=["NA", "US"], notes="N/A"),
            campaign(campaign_id="c2", brand="", notes="NULL"),  # the one empty cell: brand missing
        ):
            writer.writerow(["|".join(v) if isinstance(v, list) else v for v in row.values()])
    creators = tmp_path / "creators.csv"
    row = creator(handle="null", bio="N/A", interest_tags=["NA", "nan"], audience_marketplaces={"NA": 0.4})
    write_csv_creators(creators, [row | {name: None for name in CREATOR_COLUMNS if name not in row}])

    read_campaigns = read_table(campaigns, "campaigns")
    read_creators = read_table(creators, "creators")

    assert read_campaigns.frame["brand"].tolist() == ["None"]
    assert read_campaigns.frame["marketplaces"].tolist() == [["NA", "US"]]
    assert read_campaigns.frame["notes"].tolist() == ["N/A"]
    assert [(r.row, r.column, r.reason) for r in read_campaigns.rejects] == [(2, "brand", "required value is missing")]
    assert read_creators.rejects == []
    got = read_creators.frame.iloc[0]
    assert (got["handle"], got["bio"], got["interest_tags"]) == ("null", "N/A", ["NA", "nan"])
    assert got["audience_marketplaces"] == {"NA": 0.4}
    assert pd.isna(got["audience_mobile_share"])  # an empty optional cell is still "no value"


def test_a_validated_frame_validates_again_numbered_by_position():
    """Its `row` column is replaced, not a reason to skip or to fail; only the validators' Table is trusted."""
    first = validate_frame(
        pd.DataFrame([campaign(campaign_id="c1", price=0.0), campaign(campaign_id="c2"), campaign(campaign_id="c3")]),
        "campaigns",
    )
    assert first.frame["row"].tolist() == [2, 3]

    again = validate_frame(first.frame, "campaigns")

    assert again.rejects == [] and again.frame["row"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(again.frame.drop(columns="row"), first.frame.drop(columns="row"))
    assert valid_rows(first, "campaigns") is first
    hand_made = Table("campaigns", first.frame.assign(price=-1.0), [])
    assert not hand_made.validated
    assert [(r.row, r.column) for r in valid_rows(hand_made, "campaigns").rejects] == [(1, "price"), (2, "price")]
    with pytest.raises(ValueError, match="Got the campaigns table; expected the creators table"):
        valid_rows(first, "creators")


def test_a_validated_table_stays_validated_through_pickle_and_a_hand_made_one_does_not():
    """The service sends each request's validated campaigns to a worker process, which takes them as they are."""
    rows = [campaign(campaign_id="c1", price=0.0), campaign(campaign_id="c2")]
    first = validate_frame(pd.DataFrame(rows), "campaigns")

    sent = pickle.loads(pickle.dumps(first))

    assert sent.validated and valid_rows(sent, "campaigns") is sent
    assert [(r.row, r.column) for r in sent.rejects] == [(1, "price")]
    pd.testing.assert_frame_equal(sent.frame, first.frame)
    hand_made = pickle.loads(pickle.dumps(Table("campaigns", first.frame.assign(price=-1.0), [])))
    assert not hand_made.validated
    assert [(r.row, r.column) for r in valid_rows(hand_made, "campaigns").rejects] == [(1, "price")]


@pytest.mark.parametrize("table", ["campaigns", "creators", "performance"])
def test_validating_in_blocks_gives_the_rows_and_rejects_of_the_whole_table(table, monkeypatch):
    """Tables are validated a block of rows at a time to bound memory: every rule's bad row, repeated ids
    whose first occurrence is in another block, and rows with two defects give the same rejects, in the same
    order, and the same valid frame (values, dtypes, extra columns) as one block holding the whole table."""
    make, id_column = ROW_MAKERS[table], ID_OF.get(table, "creator_id")
    rules = [rule for rule in RULES if rule[0] == table]
    rows, expected = [], {}
    for i, (_, bad, column, _) in enumerate(rules):
        rows.append(make(**{id_column: f"good{i}"}))
        rows.append(make(**({id_column: f"bad{i}"} | bad)))
        expected[len(rows)] = column
    rows.append(make(**{id_column: "good0"}))  # a repeat of row 1's id, several blocks later
    expected[len(rows)] = "creator_id" if table == "performance" else id_column
    rows.append(make(**({id_column: "two"} | rules[0][1] | rules[-1][1])))  # two defects, two rejects
    frame = pd.DataFrame(rows).assign(note=[f"n{i}" for i in range(len(rows))])
    whole = validate_frame(frame, table)

    for block in (1, 2, 5):
        monkeypatch.setattr("features.tables.VALIDATION_BLOCK", block)
        blocked = validate_frame(frame, table)
        pd.testing.assert_frame_equal(blocked.frame, whole.frame)
        assert blocked.rejects == whole.rejects
    assert {r.row: r.column for r in whole.rejects if r.row in expected} == expected
    assert {r.column for r in whole.rejects if r.row == len(rows)} == {rules[0][2], rules[-1][2]}
    assert whole.frame["note"].tolist() == [f"n{row - 1}" for row in whole.frame["row"]]
    assert set(whole.frame["row"]) | {r.row for r in whole.rejects} == set(range(1, len(rows) + 1))


def test_a_parquet_file_read_in_blocks_gives_what_the_whole_frame_gives(tmp_path, monkeypatch):
    """read_table converts a Parquet file a block at a time: a column with a null in one block only (integers
    then read as floats, so a bad count is quoted as the whole file shows it), a dictionary-encoded column,
    extra columns and an empty file give the rows and rejects of validating the whole frame."""
    followers = [12000, None, -1, 50, 7, -2, 30]
    rows = [creator(creator_id=f"u{i}", followers=n) for i, n in enumerate(followers)]
    columns = {name: [row.get(name) for row in rows] for name in rows[0]}
    table = pa.table(columns).set_column(1, "creator_type", pa.array(columns["creator_type"]).dictionary_encode())
    table = table.append_column("note", pa.array([1, 2, 3, 4, None, 6, 7], pa.int64()))
    table = table.append_column("flag", pa.array([True, False, True, False, True, None, True]))
    pq.write_table(table, tmp_path / "creators.parquet")
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    monkeypatch.setattr("features.tables.VALIDATION_BLOCK", 2)

    for name in ("creators.parquet", "empty.parquet"):
        whole = validate_frame(read_frame(tmp_path / name), "creators")
        blocked = read_table(tmp_path / name, "creators")
        pd.testing.assert_frame_equal(blocked.frame, whole.frame)
        assert blocked.rejects == whole.rejects
    assert [r.line() for r in read_table(tmp_path / "creators.parquet", "creators").rejects] == [
        "creators row 2 (id u1): column followers: required value is missing",
        "creators row 3 (id u2): column followers: got -1.0; input should be greater than or equal to 0",
        "creators row 6 (id u5): column followers: got -2.0; input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize(
    ("ids", "kind", "read", "reasons"),
    [
        ([100, None, 7], pa.int64(), ["100", "7"], ["required value is missing"]),
        ([100, 2**40, 7], pa.uint64(), ["100", "1099511627776", "7"], []),
    ],
)
def test_integer_ids_in_parquet_are_read_as_their_decimal_text(tmp_path, ids, kind, read, reasons):
    """A database export writes ids as int64: every row was rejected, "got 100; input should be a valid string".
    A null among them is still a missing id."""
    path = tmp_path / "creators.parquet"
    rows = [creator() for _ in ids]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    types = {"platforms": pa.list_(pa.string()), "interest_tags": pa.list_(pa.string()), "followers": pa.int64()}
    arrays = {name: pa.array(values, type=types.get(name, pa.string())) for name, values in columns.items()}
    pq.write_table(pa.table(arrays | {"creator_id": pa.array(ids, kind)}), path)

    result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == read
    assert [r.reason for r in result.rejects] == reasons


def test_integer_ids_in_json_lines_and_data_frames_are_read_as_their_decimal_text(tmp_path):
    """A JSON number as an id, or a frame's int64 id column, was refused ("got 101; input should be a valid
    string") where the same ids in Parquet were read. A null beside them is still a missing id, not a float."""
    path = tmp_path / "creators.jsonl"
    rows = [creator(creator_id=101), creator(creator_id=None), creator(creator_id=2.5), creator(creator_id=True)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    from_file = read_table(path, "creators")
    from_frame = validate_frame(pd.DataFrame([creator(creator_id=7), creator(creator_id=8)]), "creators")

    assert from_file.frame["creator_id"].tolist() == ["101"]
    assert [(r.row, r.reason) for r in from_file.rejects] == [
        (2, "required value is missing"),
        (3, "got 2.5; input should be a valid string"),
        (4, "got True; input should be a valid string"),
    ]
    assert from_frame.frame["creator_id"].tolist() == ["7", "8"]
    assert from_frame.rejects == []


def test_half_of_a_character_rejects_its_row_and_keeps_its_neighbours(tmp_path):
    """JSON can spell half of a UTF-16 surrogate pair ("\\ud83d": a text cut inside an emoji). The JSON Lines file
    holding one was refused whole ("surrogates not allowed"); now its row is rejected naming the column, a pair
    written whole (json.dumps writes the emoji as "\\ud83d\\ude00") is read, and a key no table reads may hold one."""
    path = tmp_path / "creators.jsonl"
    rows = [
        creator(creator_id="a\ud800"),
        creator(creator_id="b", interest_tags=["skin\udc00care", "tea"]),
        creator(creator_id="c", bio="cut \ud83d"),
        creator(creator_id="d", interest_tags=["smiles \N{GRINNING FACE}"]) | {"team\ud800": "x\ud83d"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == ["d"]
    assert result.frame["interest_tags"].tolist() == [["smiles \N{GRINNING FACE}"]]
    assert [r.line() for r in result.rejects] == [
        f"creators row 1 (id a\\ud800): column creator_id: got 'a\\ud800'; {UNPAIRED}",
        f"creators row 2 (id b): column interest_tags: [0]: got 'skin\\udc00care'; {UNPAIRED}",
        f"creators row 3 (id c): column bio: {UNPAIRED}",  # a bio is never echoed
    ]
    assert records_frame(rows).pipe(validate_frame, "creators").rejects == result.rejects


def test_integer_ids_of_every_id_column_are_read_as_text_and_float_ones_are_still_refused(tmp_path):
    """The performance table's campaign ids as int64 read as text; its creator ids as floats are refused, whole
    or not: which text a float id stands for is a guess. A whole one says why and what to do: pandas makes a
    whole-number id column with one missing id floats, and every row was refused, "got 100.0; input should be a
    valid string", without a word on why 100 was no id."""
    path = tmp_path / "performance.parquet"
    rows = [performance(campaign_id=3, creator_id=100.0), performance(campaign_id=3, creator_id=2.5)]
    pd.DataFrame(rows).to_parquet(path)

    result = read_table(path, "performance")

    assert result.frame.empty
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (
            1,
            "3/100.0",
            "creator_id",
            "got 100.0; input should be a valid string (an id stored as a float; ids are text or whole numbers: "
            "pandas stores a whole-number column that has a missing value as floats, so store the ids as text)",
        ),
        (2, "3/2.5", "creator_id", "got 2.5; input should be a valid string"),
    ]


@pytest.mark.parametrize("table", sorted(ROW_MAKERS))
def test_a_frames_row_index_written_by_pandas_is_not_a_column_and_a_named_one_is(tmp_path, table, monkeypatch):
    """A filtered or concatenated frame's `to_parquet` stores its row labels as column `__index_level_0__`: a read
    failed on it (KeyError, exit 1). It is pandas' bookkeeping and is dropped; a named index holds the user's
    values (an id set as the index) and is read as its column; a team's own column beside it is kept, as ever."""
    make, id_column = ROW_MAKERS[table], ID_OF.get(table, "creator_id")
    rows = [make(**{id_column: f"x{i}"}, note=f"n{i}") for i in range(5)]
    frame = pd.DataFrame(rows)
    filtered = frame[frame["note"] != "n1"]  # labels 0, 2, 3, 4
    filtered.to_parquet(tmp_path / "filtered.parquet")
    pd.concat([filtered, filtered.iloc[:0]]).to_parquet(tmp_path / "concatenated.parquet")
    filtered.set_index(id_column).to_parquet(tmp_path / "named.parquet")
    monkeypatch.setattr("features.tables.VALIDATION_BLOCK", 2)  # the index read a block at a time too

    for name in ("filtered.parquet", "concatenated.parquet", "named.parquet"):
        got = read_table(tmp_path / name, table)
        assert got.rejects == [], name
        assert got.frame[id_column].tolist() == ["x0", "x2", "x3", "x4"], name
        assert got.frame["row"].tolist() == [1, 2, 3, 4], name
        assert "__index_level_0__" not in got.frame.columns, name
        assert got.frame["note"].tolist() == ["n0", "n2", "n3", "n4"], name
        assert "__index_level_0__" not in read_frame(tmp_path / name).columns, name
