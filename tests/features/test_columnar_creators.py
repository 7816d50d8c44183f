"""The creators table validated a column at a time gives exactly what the row model gives row by row.

Generated creator tables mix valid rows with every kind of doubtful cell (ids and tags with surrounding
whitespace, null and NaN shares, empty maps, counts stored as floats or text, huge integers, NaN and infinity,
repeated ids, nullable integer and boolean columns, unknown extra columns); each is written to real Parquet
(in several Arrow encodings), CSV and JSON Lines files and read both ways. The frames must be identical (columns,
order, dtypes, every value and its Python type) and so must the rejects.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import tables
from features.column_validation import column_fields, validate_columns
from features.contract import CREATOR_TYPES, KNOWN_MARKETPLACES, PLATFORMS
from features.rows import SHARE_SUM_TOLERANCE, CampaignRow, CreatorRow, PerformanceRow
from features.tables import read_table

# Characters pydantic's strip_whitespace, Python's str.strip or neither remove: the column path must agree with
# the row path whichever it is.
EDGES = [" ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\x1c", "\x1f", "\u200b", "\u180e", "\ufeff", "\x85"]
EXTRA = "note"


def padded(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    edge = st.sampled_from(["", *EDGES])
    return st.tuples(edge, text, edge).map("".join)


words = st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=6)
tags = st.one_of(st.sampled_from(["skincare", "k-beauty", "diy", "NA", "None"]), padded(words))
huge = st.sampled_from([2**53, 2**53 + 1, 2**62, 2**63 - 1, -(2**63)])
counts = st.one_of(st.integers(0, 10**7), st.integers(-5, -1), huge)
odd_floats = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, 1e20, 2.0**53 + 2, 0.5, -1e-9])
shares = st.one_of(st.floats(0.0, 1.0), st.sampled_from([1.0000001, -0.0, 1.0, 1.5, -0.1]), odd_floats)
codes = st.one_of(st.sampled_from([*KNOWN_MARKETPLACES, "NA"]), st.sampled_from(["us", "USA", "U", "US\n", " DE", "É"]))


@st.composite
def audience(draw, valid: bool = False) -> list[tuple[str, float | None]] | None:
    kind = draw(st.sampled_from(["none", "empty", "valid"] + ([] if valid else ["any", "edge_sum"])))
    if kind == "none":
        return None
    if kind == "empty":
        return []
    if kind == "edge_sum":  # the sum exactly at, just below and just above the tolerance
        total = draw(st.sampled_from([1.0, 1.0 + SHARE_SUM_TOLERANCE, 1.0051, 1.00499999, 1.0050000001]))
        return [("US", 0.5), ("DE", total - 0.5)]
    if kind == "valid":
        keys = draw(st.lists(st.sampled_from(KNOWN_MARKETPLACES), unique=True, max_size=4))
        return [(key, draw(st.one_of(st.floats(0.0, 0.2), st.none(), st.just(math.nan)))) for key in keys]
    return draw(st.lists(st.tuples(codes, st.one_of(st.none(), shares)), max_size=4))  # repeated keys too


@st.composite
def valid_creator(draw, i: int) -> dict:
    """A row the contract accepts, with the cells the row model changes (ids and tags to strip, null shares)."""
    return {
        "creator_id": draw(padded(st.just(f"u{i}"))),
        "handle": draw(st.one_of(st.none(), words)),
        "creator_type": draw(st.sampled_from(CREATOR_TYPES)),
        "platforms": draw(st.lists(st.sampled_from(PLATFORMS), min_size=1, max_size=3)),
        "interest_tags": draw(st.lists(padded(st.sampled_from(["skincare", "diy", "NA"])), min_size=1, max_size=3)),
        "bio": draw(st.one_of(st.none(), words)),
        "followers": draw(st.integers(0, 2**53)),
        "avg_views": draw(st.one_of(st.integers(0, 10**6), st.none())),
        "audience_marketplaces": draw(audience(valid=True)),
        "audience_mobile_share": draw(st.one_of(st.floats(0.0, 1.0), st.none())),
        "avg_dwell_seconds": draw(st.one_of(st.floats(0.0, 1e4), st.none())),
        "storefront_followers_30d": draw(st.one_of(st.integers(0, 10**4), st.none())),
        "storefront_return_rate": draw(st.one_of(st.floats(0.0, 1.0), st.none())),
        "disclosure_violations": draw(st.one_of(st.integers(0, 5), st.none())),
        "accepts_campaigns": draw(st.one_of(st.booleans(), st.none())),
        EXTRA: draw(st.one_of(st.none(), words)),
    }


@st.composite
def creator(draw, i: int) -> dict:
    """A row whose every cell may be doubtful."""
    ident = draw(st.one_of(st.just(f"u{i}"), padded(st.just(f"u{i}")), st.sampled_from(["", " ", "u0", " u1"])))
    return {
        "creator_id": draw(st.one_of(st.just(ident), st.none())) if draw(st.booleans()) else ident,
        "handle": draw(st.one_of(st.none(), words)),
        "creator_type": draw(st.one_of(st.sampled_from(CREATOR_TYPES), padded(st.just("review_site")), st.none())),
        "platforms": draw(
            st.one_of(
                st.lists(st.sampled_from(PLATFORMS), min_size=1, max_size=3),
                st.lists(st.one_of(st.sampled_from(["tiktok", "TikTok", " x", ""]), st.none()), max_size=2),
                st.none(),
            )
        ),
        "interest_tags": draw(st.one_of(st.lists(st.one_of(tags, st.none()), max_size=3), st.none())),
        "bio": draw(st.one_of(st.none(), words)),
        "followers": draw(st.one_of(counts, st.none())),
        "avg_views": draw(st.one_of(counts, st.none())),
        "audience_marketplaces": draw(audience()),
        "audience_mobile_share": draw(st.one_of(shares, st.none())),
        "avg_dwell_seconds": draw(st.one_of(st.floats(0.0, 1e4), odd_floats, st.none())),
        "storefront_followers_30d": draw(st.one_of(counts, st.none())),
        "storefront_return_rate": draw(st.one_of(shares, st.none())),
        "disclosure_violations": draw(st.one_of(st.integers(0, 5), st.integers(-2, -1), st.none())),
        "accepts_campaigns": draw(st.one_of(st.booleans(), st.none())),
        EXTRA: draw(st.one_of(st.none(), words)),
    }


INTS = ("followers", "avg_views", "storefront_followers_30d", "disclosure_violations")
FLOATS = ("audience_mobile_share", "avg_dwell_seconds", "storefront_return_rate")


@st.composite
def creator_tables(draw) -> tuple[list[dict], dict[str, str]]:
    rows = [draw(st.one_of(valid_creator(i), creator(i))) for i in range(draw(st.integers(1, 12)))]
    encoding = {name: draw(st.sampled_from(["int64", "float64", "string"])) for name in INTS}
    encoding |= {name: draw(st.sampled_from(["float64", "float32", "int64"])) for name in FLOATS}
    encoding |= {name: draw(st.sampled_from(["list", "large_list", "json"])) for name in ("platforms", "interest_tags")}
    encoding["audience_marketplaces"] = draw(st.sampled_from(["map", "struct", "json"]))
    encoding["creator_id"] = draw(st.sampled_from(["string", "large_string", "dictionary"]))
    return rows, encoding


def _number(value: object, kind: str) -> object:
    """`value` as a column of `kind` holds it, or the text of it where that kind cannot."""
    if value is None:
        return None
    if kind == "string":
        return repr(value) if isinstance(value, float) else str(value)
    if kind == "int64":
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value) or abs(value) >= 2**63):
            return None
        return int(value)
    return float(value)


def _arrow(name: str, values: list, encoding: dict[str, str]) -> pa.Array:
    kind = encoding.get(name)
    if name in INTS or name in FLOATS:
        return pa.array([_number(v, kind) for v in values], pa.string() if kind == "string" else kind)
    if name in ("platforms", "interest_tags"):
        if kind == "json":
            return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())
        return pa.array(values, pa.list_(pa.string()) if kind == "list" else pa.large_list(pa.large_string()))
    if name == "audience_marketplaces":
        if kind == "json":
            return pa.array([None if v is None else json.dumps(dict(v)) for v in values], pa.string())
        keys = sorted({key for v in values if v for key, _ in v})
        if kind == "struct" and keys:
            struct = pa.struct([(key, pa.float64()) for key in keys])
            return pa.array([None if v is None else {k: dict(v).get(k) for k in keys} for v in values], struct)
        return pa.array(values, pa.map_(pa.string(), pa.float64()))
    if name == "creator_id" and kind != "string":
        array = pa.array(values, pa.large_string() if kind == "large_string" else pa.string())
        return array.dictionary_encode() if kind == "dictionary" else array
    return pa.array(values)


def write_parquet(rows: list[dict], encoding: dict[str, str], path: Path) -> Path:
    pq.write_table(pa.table({name: _arrow(name, [row[name] for row in rows], encoding) for name in rows[0]}), path)
    return path


def _plain(value: object) -> object:
    """A map's (key, share) pairs as the JSON object CSV and JSON Lines spell it."""
    return dict(value) if isinstance(value, list) and value and isinstance(value[0], tuple) else value


def _csv_cell(value: object) -> str:
    """Text as it is, lists and maps as JSON, numbers as Python writes them, booleans as true/false."""
    value = _plain(value)
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else json.dumps(value)


def write_csv(rows: list[dict], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(rows[0]))
    writer.writerows([_csv_cell(value) for value in row.values()] for row in rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text(
        "".join(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n" for row in rows), encoding="utf-8"
    )
    return path


def rowwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validates the creators table row by row from now on (as before column-wise validation)."""
    monkeypatch.setitem(tables.TABLES, "creators", dataclasses.replace(tables.TABLES["creators"], columnar=False))


def cells(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Every cell of `frame` with its Python type: tells 1 from 1.0, -0.0 from 0.0, None from NaN."""
    return {name: [repr((type(v).__name__, v)) for v in frame[name].tolist()] for name in frame.columns}


def assert_same(fast: tables.Table, slow: tables.Table) -> None:
    assert fast.validated and slow.validated
    pd.testing.assert_frame_equal(fast.frame, slow.frame, check_dtype=True, check_exact=True)
    assert cells(fast.frame) == cells(slow.frame)
    assert fast.rejects == slow.rejects


# Rows read, and rows the row model saw, on the columnar path: the property must exercise both.
SEEN = {"rows": 0, "row_model": 0}


def read_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[tables.Table, tables.Table]:
    valid_records = tables._valid_records

    def counting(records, *args):
        SEEN["row_model"] += len(records)
        return valid_records(records, *args)

    with monkeypatch.context() as patch:
        patch.setattr(tables, "_valid_records", counting)
        fast = read_table(path, "creators")
    SEEN["rows"] += len(fast.frame) + len({reject.row for reject in fast.rejects})
    with monkeypatch.context() as patch:
        rowwise(patch)
        slow = read_table(path, "creators")
    return fast, slow


@pytest.mark.parametrize("block", [3, tables.VALIDATION_BLOCK])
def test_columnar_and_rowwise_validation_give_identical_frames_and_rejects(block, monkeypatch):
    """Any generated creators table, in every format and encoding, in blocks of 3 rows or one block."""
    monkeypatch.setattr(tables, "VALIDATION_BLOCK", block)

    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=creator_tables())
    def prop(case) -> None:
        rows, encoding = case
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            paths = [
                write_parquet(rows, encoding, directory / "creators.parquet"),
                write_csv(rows, directory / "creators.csv"),
                write_jsonl(rows, directory / "creators.jsonl"),
            ]
            for path in paths:
                assert_same(*read_both(path, monkeypatch))

    SEEN.update(rows=0, row_model=0)
    prop()
    # Most rows are valid; the row model sees those the columns reject, and only those.
    assert 0.1 < SEEN["row_model"] / SEEN["rows"] < 0.8, SEEN


def test_pandas_written_parquet_with_nullable_and_extension_dtypes_reads_the_same_both_ways(tmp_path, monkeypatch):
    """A file written by pandas carries its dtypes (nullable integers, booleans and strings) in its metadata;
    whatever pandas then makes of them, both ways read the same frame and rejects."""
    frame = pd.DataFrame(
        {
            "creator_id": pd.array(["u1", " u2", "u3", None], dtype="string[python]"),
            "creator_type": ["review_site", "community", "review_site", "blog"],
            "platforms": [["x"], ["blog"], [], ["tiktok"]],
            "interest_tags": [["a"], ["b "], ["c"], ["d"]],
            "followers": pd.array([1, None, 3, 4], dtype="Int64"),
            "avg_views": pd.array([None, 5, 6, 7], dtype="Int64"),
            "accepts_campaigns": pd.array([True, None, False, True], dtype="boolean"),
            "audience_marketplaces": [{"US": 0.5}, None, {}, {"DE": 0.25}],
            EXTRA: pd.array([1, None, 3, None], dtype="Int64"),
        }
    )
    frame.to_parquet(tmp_path / "creators.parquet")
    fast, slow = read_both(tmp_path / "creators.parquet", monkeypatch)
    assert_same(fast, slow)


def test_a_large_valid_table_reads_the_same_both_ways_and_the_row_model_sees_no_row(tmp_path, monkeypatch):
    """A simulated catalogue's creators, over several blocks: identical frames, and no row needs the row model."""
    from simulation.world import simulate, write_table

    creators = simulate(n_creators=300, n_campaigns=10, n_new_campaigns=1, seed=3).creators
    path = write_table(creators, tmp_path / "creators.parquet")
    monkeypatch.setattr(tables, "VALIDATION_BLOCK", 128)
    seen: list[int] = []
    valid_records = tables._valid_records

    def counting(records, *args):
        seen.append(len(records))
        return valid_records(records, *args)

    with monkeypatch.context() as patch:
        patch.setattr(tables, "_valid_records", counting)
        fast = read_table(path, "creators")
    assert sum(seen) == 0 and len(fast.frame) == len(creators)
    _, slow = read_both(path, monkeypatch)
    assert_same(fast, slow)


def test_only_the_rows_that_fail_a_column_go_through_the_row_model(monkeypatch):
    """Two bad rows of five: the row model sees those two, names their rejects, and the rest are kept."""
    rows = [
        {
            "creator_id": f"u{i}",
            "creator_type": "review_site",
            "platforms": ["blog"],
            "interest_tags": ["t"],
            "followers": 1,
        }
        for i in range(5)
    ]
    rows[1]["followers"] = -1
    rows[3]["platforms"] = ["fax"]
    seen: list[int] = []
    valid_records = tables._valid_records

    def counting(records, *args):
        seen.append(len(records))
        return valid_records(records, *args)

    monkeypatch.setattr(tables, "_valid_records", counting)
    result = tables.validate_frame(pd.DataFrame(rows), "creators")
    assert seen == [2]
    assert result.frame["row"].tolist() == [1, 3, 5]
    assert [(r.row, r.column) for r in result.rejects] == [(2, "followers"), (4, "platforms")]


def test_only_a_model_whose_rules_each_read_one_field_is_validated_by_columns():
    """Creators' share-sum rule reads its own field; a campaign's end date and a performance row's funnel read
    others, so those tables cannot be validated a column at a time."""
    assert column_fields(CreatorRow) is not None
    assert column_fields(CampaignRow) is None and column_fields(PerformanceRow) is None
    assert validate_columns(CampaignRow, {}, 0) is None


def test_the_share_sum_rule_of_the_row_model_applies_to_the_column():
    """The model's own validator runs on the column: a sum above 1 plus the tolerance fails there too."""
    shares = [{"US": 0.5, "DE": 0.5 + SHARE_SUM_TOLERANCE / 2}, {"US": 0.6, "DE": 0.5}, {}, None]
    column = {"audience_marketplaces": shares}
    valid, typed = validate_columns(CreatorRow, column, 4)
    assert not valid.any()  # the required columns are absent
    rows = {name: [None] * 4 for name in CreatorRow.model_fields} | column
    base = {
        "creator_id": "u",
        "creator_type": "review_site",
        "platforms": ["x"],
        "interest_tags": ["t"],
        "followers": 0,
    }
    rows |= {name: [value] * 4 for name, value in base.items()}
    valid, typed = validate_columns(CreatorRow, rows, 4)
    assert valid.tolist() == [True, False, True, True]
    assert typed["audience_marketplaces"][2] == {} and typed["audience_marketplaces"][3] is None
    assert typed["disclosure_violations"] == [0] * 4 and typed["accepts_campaigns"] == [True] * 4
    assert np.asarray(typed["followers"]).dtype.kind == "i"
