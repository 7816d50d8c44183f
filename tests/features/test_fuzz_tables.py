"""Property-based fuzzing of every contract table: valid rows mixed with named defects, in every file format.

Each generated table starts from rows that satisfy the contract; a corruption strategy then applies one
named defect to chosen rows, so the test knows exactly which rows must be rejected and on which column
(an oracle built from the contract, not a second validator). The table is written to real Parquet, CSV
and JSON Lines files, read back through `read_table`, and checked row by row.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pandas._libs.parsers import STR_NA_VALUES

from features.contract import CATEGORIES, CREATOR_TYPES, KNOWN_MARKETPLACES, MAX_ASINS, PLATFORMS
from features.rows import MAX_PRICE
from features.tables import (
    TABLES,
    Reject,
    Table,
    read_frame,
    read_table,
    report_rejects,
    validate_frame,
    write_rejects,
)
from training.dataset import read_training_tables

FORMATS = ("parquet", "csv", "jsonl")
# The contract's own patterns, matched against the whole value.
ASIN = re.compile(r"[A-Z0-9]{10}")
MARKETPLACE = re.compile(r"[A-Z]{2}")
# Words pandas reads as "no value" by default; the contract says that in CSV they are values like any other,
# so valid text draws them often.
NA_WORDS = sorted(word for word in STR_NA_VALUES if word)
EXTRA = "note"  # an unknown column: the contract says it is kept

KIND = {
    "creator_id": "str",
    "handle": "str",
    "creator_type": "str",
    "platforms": "list",
    "interest_tags": "list",
    "bio": "str",
    "followers": "int",
    "avg_views": "int",
    "audience_marketplaces": "map",
    "audience_mobile_share": "float",
    "avg_dwell_seconds": "float",
    "storefront_followers_30d": "int",
    "storefront_return_rate": "float",
    "disclosure_violations": "int",
    "accepts_campaigns": "bool",
    "campaign_id": "str",
    "brand": "str",
    "brief": "str",
    "category": "str",
    "asins": "list",
    "price": "float",
    "commission_rate": "float",
    "budget": "float",
    "start_date": "date",
    "end_date": "date",
    "marketplaces": "list",
    "product_type": "str",
    "in_stock": "bool",
    "impressions": "int",
    "clicks": "int",
    "orders": "int",
    "units": "int",
    "sales": "float",
    "commission": "float",
    "status": "str",
    "shopper_id": "str",
    "ts": "datetime",
    EXTRA: "str",
}

# (table, defect) -> generated rows that carried it; printed at the end of the module.
TRIED: Counter[tuple[str, str]] = Counter()


# --- valid rows -----------------------------------------------------------------------------------------------


def _clean(text: str) -> bool:
    return text == text.strip()


def free_text(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text a person might type, without surrounding whitespace (the row models strip it)."""
    typed = st.text(st.characters(exclude_categories=("Cs",)), min_size=min_size, max_size=max_size).filter(
        lambda s: _clean(s) and len(s) >= min_size
    )
    return st.one_of(typed, st.sampled_from([word for word in NA_WORDS if min_size <= len(word) <= max_size]))


def ident(prefix: str, i: int) -> st.SearchStrategy[str]:
    """A unique id: the row number makes it unique, a drawn suffix makes it odd."""
    suffix = st.text(st.characters(exclude_categories=("Cs",)), max_size=3)
    return suffix.map(lambda s: f"{prefix}{i}{s}").filter(_clean)


asins = st.from_regex(r"[A-Z0-9]{10}", fullmatch=True)
# "NA" (Namibia) is one of pandas' missing-value words.
marketplaces = st.one_of(st.sampled_from([*KNOWN_MARKETPLACES, "NA"]), st.from_regex(r"[A-Z]{2}", fullmatch=True))
tags = free_text(max_size=20)
dates = st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31))
counts = st.integers(0, 10**9)
positive = st.floats(min_value=0.0, max_value=1e6, exclude_min=True)
nonneg = st.floats(min_value=0.0, max_value=1e7)
share = st.floats(0.0, 1.0)


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


@st.composite
def audience(draw) -> dict[str, float]:
    """Shares per marketplace, each in [0, 1], summing to at most 1."""
    codes = draw(st.lists(marketplaces, unique=True, max_size=4))
    weights = [draw(st.floats(0.01, 1.0)) for _ in codes]
    total = draw(share)
    shares = {code: min(1.0, w / sum(weights) * total) for code, w in zip(codes, weights, strict=True)}
    # A null or NaN share says "no figure for this marketplace", as an absent struct field does.
    blank = draw(st.lists(st.sampled_from(KNOWN_MARKETPLACES).filter(lambda c: c not in shares), max_size=2))
    return shares | {code: draw(st.sampled_from([None, math.nan])) for code in blank}


@st.composite
def creator_row(draw, i: int) -> dict:
    return {
        "creator_id": draw(ident("u", i)),
        "handle": draw(maybe(free_text(max_size=15))),
        "creator_type": draw(st.sampled_from(CREATOR_TYPES)),
        "platforms": draw(st.lists(st.sampled_from(PLATFORMS), min_size=1, max_size=4)),
        "interest_tags": draw(st.lists(tags, min_size=1, max_size=4)),
        "bio": draw(maybe(free_text(max_size=80))),
        "followers": draw(counts),
        "avg_views": draw(maybe(counts)),
        "audience_marketplaces": draw(maybe(audience())),
        "audience_mobile_share": draw(maybe(share)),
        "avg_dwell_seconds": draw(maybe(nonneg)),
        "storefront_followers_30d": draw(maybe(counts)),
        "storefront_return_rate": draw(maybe(share)),
        "disclosure_violations": draw(maybe(st.integers(0, 20))),
        "accepts_campaigns": draw(maybe(st.booleans())),
    }


@st.composite
def campaign_row(draw, i: int) -> dict:
    start = draw(dates)
    return {
        "campaign_id": draw(ident("c", i)),
        "brand": draw(free_text(max_size=15)),
        "brief": draw(free_text(max_size=200)),
        "category": draw(st.sampled_from(CATEGORIES)),
        "asins": draw(st.lists(asins, min_size=1, max_size=5)),
        "price": draw(positive),
        "commission_rate": draw(st.floats(0.0, 1.0, exclude_min=True)),
        "budget": draw(positive),
        "start_date": start,
        "end_date": start + dt.timedelta(days=draw(st.integers(0, 400))),
        "marketplaces": draw(st.lists(marketplaces, min_size=1, max_size=3)),
        "product_type": draw(maybe(st.sampled_from(["standard", "non_standard", "auto"]))),
        "in_stock": draw(maybe(st.booleans())),
    }


@st.composite
def performance_row(draw, i: int) -> dict:
    impressions = draw(counts)
    clicks = draw(st.integers(0, impressions))
    return {
        # Unique pairs by construction; the creator repeats so one creator has several campaigns.
        "campaign_id": f"c{i}",
        "creator_id": f"u{i % 3}",
        "impressions": impressions,
        "clicks": clicks,
        "orders": draw(st.integers(0, clicks)),
        "units": draw(maybe(counts)),
        "sales": draw(nonneg),
        "commission": draw(maybe(nonneg)),
        "status": draw(maybe(st.sampled_from(["settled", "pending"]))),
    }


timestamps = st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 12, 31))


@st.composite
def touch_row(draw, i: int) -> dict:
    return {
        "shopper_id": draw(ident("s", i % 4)),
        "campaign_id": f"c{i % 3}",
        "creator_id": f"u{i % 5}",
        "ts": draw(timestamps),
    }


@st.composite
def purchase_row(draw, i: int) -> dict:
    return {
        "shopper_id": draw(ident("s", i % 4)),
        "campaign_id": f"c{i % 3}",
        "ts": draw(timestamps),
        "sales": draw(nonneg),
        "units": draw(maybe(st.integers(0, 50))),
    }


VALID: dict[str, Callable[[int], st.SearchStrategy[dict]]] = {
    "creators": creator_row,
    "campaigns": campaign_row,
    "performance": performance_row,
    "touches": touch_row,
    "purchases": purchase_row,
}


# --- defects ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defect:
    """One named way to break a row; `column` is where the reject must point."""

    name: str
    column: str
    corrupt: Callable[[Callable, dict], dict]


def setting(name: str, column: str, values: st.SearchStrategy | Callable[[dict], st.SearchStrategy]) -> Defect:
    """A defect that sets one column to a drawn bad value (`values` may depend on the row)."""

    def corrupt(draw, row: dict) -> dict:
        strategy = values(row) if callable(values) else values
        return row | {column: draw(strategy)}

    return Defect(name, column, corrupt)


def _replace_one(column: str, bad: st.SearchStrategy) -> Callable[[Callable, dict], dict]:
    def corrupt(draw, row: dict) -> dict:
        items = list(row[column])
        items[draw(st.integers(0, len(items) - 1))] = draw(bad)
        return row | {column: items}

    return corrupt


NOT_A_NUMBER = st.sampled_from(["twelve", "12 apples", "1,5", "0x1F", "--3", "1.2.3", "∞", "ten%"])
NOT_A_BOOL = st.sampled_from(["maybe", "2", "truthy", "nope", "-1", "si"])
NOT_A_DATE = st.sampled_from(["2026-13-45", "yesterday", "2026/02/30", "31.12.2026", "2026-02-30"])
NOT_A_TIME = st.sampled_from(["not a time", "2026-02-30T10:00:00", "25:00", "2026-01-01T25:61:00"])
INFINITE = st.sampled_from([math.inf, -math.inf])
negative_int = st.integers(-(10**9), -1)
negative_float = st.floats(max_value=-1e-9, min_value=-1e9)
fractional = st.integers(0, 10**6).map(lambda k: k + 0.5)


def not_in(allowed) -> st.SearchStrategy[str]:
    # Not the empty string: an empty CSV cell is a missing value, which takes the column's default. Nor an allowed
    # word in another case or with spaces around it (`Blog `), which is read as that word.
    return st.one_of(st.text(min_size=1, max_size=14), st.sampled_from(NA_WORDS)).filter(
        lambda s: s.strip().lower() not in allowed
    )


malformed_asin = st.one_of(
    asins.map(str.lower).filter(lambda s: not ASIN.fullmatch(s)),
    asins.map(lambda s: s[:9]),
    asins.map(lambda s: s + "X"),
    asins.map(lambda s: s + "\n"),
    asins.map(lambda s: " " + s),
    st.text(max_size=14),
).filter(lambda s: not ASIN.fullmatch(s))
malformed_marketplace = st.one_of(
    st.sampled_from(["usa", "us", "U", "U1", "US\n", "UK ", "É¨"]),
    marketplaces.map(lambda s: s + "\n"),
    st.text(max_size=5),
).filter(lambda s: not MARKETPLACE.fullmatch(s))


# Numbers the contract bounds below by 0 (counts, amounts, shares, rates, prices).
AT_LEAST_ZERO = frozenset(
    {
        "followers",
        "avg_views",
        "audience_mobile_share",
        "avg_dwell_seconds",
        "storefront_followers_30d",
        "storefront_return_rate",
        "disclosure_violations",
        "price",
        "commission_rate",
        "budget",
        "impressions",
        "clicks",
        "orders",
        "units",
        "sales",
        "commission",
    }
)


def generic_defects(table: str) -> list[Defect]:
    """Missing values, wrong types, NaN, infinity, negative and fractional numbers, by each column's type."""
    model = TABLES[table].row_model
    defects = []
    for name, info in model.model_fields.items():
        kind = KIND[name]
        if info.is_required():
            defects.append(setting(f"missing {name}", name, st.none()))
        if kind == "int":
            defects.append(setting(f"text in {name}", name, NOT_A_NUMBER))
            defects.append(setting(f"fraction in {name}", name, fractional))
            if name in AT_LEAST_ZERO:
                defects.append(setting(f"negative {name}", name, negative_int))
        elif kind == "float":
            defects.append(setting(f"text in {name}", name, NOT_A_NUMBER))
            defects.append(setting(f"infinite {name}", name, INFINITE))
            if info.is_required():  # NaN in an optional column only means "no value"
                defects.append(setting(f"NaN {name}", name, st.just(math.nan)))
            if name in AT_LEAST_ZERO:
                defects.append(setting(f"negative {name}", name, negative_float))
        elif kind == "bool":
            defects.append(setting(f"not a bool in {name}", name, NOT_A_BOOL))
        elif kind == "date":
            defects.append(setting(f"not a date in {name}", name, NOT_A_DATE))
        elif kind == "datetime":
            defects.append(setting(f"not a timestamp in {name}", name, NOT_A_TIME))
    for column in TABLES[table].id_columns:
        defects.append(setting(f"blank {column}", column, st.sampled_from(["", " ", "\t "])))
    if TABLES[table].unique:
        defects.append(Defect("duplicate id", TABLES[table].id_columns[-1], lambda draw, row: row))
    return defects


@st.composite
def share_sum_above_one(draw) -> dict[str, float]:
    codes = draw(st.lists(st.sampled_from(KNOWN_MARKETPLACES), unique=True, min_size=2, max_size=4))
    shares = [draw(st.floats(0.0, 1.0)) for _ in codes]
    shares[0] = draw(st.floats(0.51, 1.0))
    shares[1] = draw(st.floats(1.01 - shares[0], 1.0))
    return dict(zip(codes, shares, strict=True))


SPECIFIC: dict[str, list[Defect]] = {
    "creators": [
        setting("unknown creator_type", "creator_type", not_in(CREATOR_TYPES)),
        setting("no platforms", "platforms", st.just([])),
        Defect("unknown platform", "platforms", _replace_one("platforms", not_in(PLATFORMS))),
        setting("no interest_tags", "interest_tags", st.just([])),
        Defect("blank interest tag", "interest_tags", _replace_one("interest_tags", st.sampled_from(["", " "]))),
        setting(
            "audience share above 1",
            "audience_marketplaces",
            st.builds(lambda s: {"US": s}, st.floats(1.0, 100.0, exclude_min=True)),
        ),
        setting("negative audience share", "audience_marketplaces", st.builds(lambda s: {"DE": s}, negative_float)),
        setting("infinite audience share", "audience_marketplaces", st.builds(lambda s: {"JP": s}, INFINITE)),
        setting("audience shares sum above 1", "audience_marketplaces", share_sum_above_one()),
        setting(
            "bad audience marketplace", "audience_marketplaces", st.builds(lambda k: {k: 0.5}, malformed_marketplace)
        ),
        setting("mobile share above 1", "audience_mobile_share", st.floats(1.0, 1e6, exclude_min=True)),
        setting("return rate above 1", "storefront_return_rate", st.floats(1.0, 1e6, exclude_min=True)),
    ],
    "campaigns": [
        setting(
            "end_date before start_date",
            "end_date",
            lambda row: st.integers(1, 900).map(lambda days: row["start_date"] - dt.timedelta(days=days)),
        ),
        setting(
            "more than 1,200 ASINs",
            "asins",
            st.integers(MAX_ASINS + 1, MAX_ASINS + 50).map(lambda n: [f"B{k:09d}" for k in range(n)]),
        ),
        setting("no ASINs", "asins", st.just([])),
        Defect("malformed ASIN", "asins", _replace_one("asins", malformed_asin)),
        setting("blank brief", "brief", st.sampled_from(["", " ", "\n\t  "])),
        setting(
            "brief over 5,000 characters",
            "brief",
            st.tuples(st.integers(5001, 5300), st.sampled_from("xé日")).map(lambda t: t[1] * t[0]),
        ),
        setting("blank brand", "brand", st.sampled_from(["", "  "])),
        setting("blank category", "category", st.sampled_from(["", "  "])),
        Defect("bad marketplace code", "marketplaces", _replace_one("marketplaces", malformed_marketplace)),
        setting("no marketplaces", "marketplaces", st.just([])),
        setting("price not positive", "price", st.one_of(st.just(0.0), negative_float)),
        setting("price above MAX_PRICE", "price", st.floats(MAX_PRICE, 1e300, exclude_min=True)),
        setting("budget not positive", "budget", st.one_of(st.just(0.0), negative_float)),
        setting(
            "commission_rate outside (0, 1]",
            "commission_rate",
            st.one_of(st.just(0.0), negative_float, st.floats(1.0, 100.0, exclude_min=True)),
        ),
        setting("unknown product_type", "product_type", not_in(["standard", "non_standard", "auto"])),
    ],
    "performance": [
        setting(
            "clicks above impressions",
            "clicks",
            lambda row: st.integers(1, 10**6).map(lambda k: row["impressions"] + k),
        ),
        setting("orders above clicks", "orders", lambda row: st.integers(1, 10**6).map(lambda k: row["clicks"] + k)),
        setting("unknown status", "status", not_in(["settled", "pending"])),
    ],
    "touches": [],
    "purchases": [],
}
DEFECTS = {table: generic_defects(table) + SPECIFIC[table] for table in TABLES}


# --- a generated table and its oracle --------------------------------------------------------------------------


@dataclass
class Case:
    """Rows as the file will hold them, and the defect of each row (None: the row is valid)."""

    table: str
    rows: list[dict]
    defects: list[Defect | None]
    encoding: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*TABLES[self.table].row_model.model_fields, EXTRA]


@st.composite
def cases(
    draw,
    table: str,
    max_rows: int = 10,
    ids: Callable[[int], st.SearchStrategy[list[dict]]] | None = None,
    forced: Defect | None = None,
) -> Case:
    """A table of valid rows, some of which then get one named defect each.

    Args:
        ids: given the row count, draws the id columns of every row (e.g. references into other tables).
        forced: a defect that at least one row must carry.
    """
    n = draw(st.integers(2 if forced is not None else 1, max_rows))
    rows = [draw(VALID[table](i)) | {EXTRA: draw(maybe(free_text(max_size=10)))} for i in range(n)]
    if ids is not None:
        rows = [row | drawn for row, drawn in zip(rows, draw(ids(n)), strict=True)]
    defects = corrupt_rows(draw, table, rows, forced)
    encoding = {
        "list": draw(st.sampled_from(["list", "json"])),  # Parquet: list<string> or a JSON array string
        "map": draw(st.sampled_from(["map", "struct", "json"])),  # Parquet: map, struct or a JSON object string
        "csv_list": draw(st.sampled_from(["pipe", "json"])),  # CSV: a|b|c or a JSON array string
        "jsonl_none": draw(st.sampled_from(["null", "omit"])),
    }
    return Case(table, rows, defects, encoding)


def corrupt_rows(draw, table: str, rows: list[dict], forced: Defect | None = None) -> list[Defect | None]:
    """Gives some rows one named defect each, in place; returns each row's defect (None: still valid).

    A `forced` defect goes on one drawn row (not the first for a duplicate id, whose first row stays valid).
    """
    defects: list[Defect | None] = [None] * len(rows)
    id_columns = TABLES[table].id_columns
    duplicate = forced is not None and forced.name == "duplicate id"
    at = draw(st.integers(1 if duplicate else 0, len(rows) - 1)) if forced is not None else None
    for i in range(len(rows)):
        if i == at:
            defect = forced
        elif duplicate and i == 0:
            defect = None
        else:
            defect = draw(st.one_of(st.none(), st.sampled_from(DEFECTS[table])))
        if defect is None:
            continue
        if defect.name == "duplicate id":
            earlier = [j for j in range(i) if defects[j] is None]
            if not earlier:
                continue
            j = draw(st.sampled_from(earlier))
            rows[i] |= {column: rows[j][column] for column in id_columns}
        else:
            rows[i] = defect.corrupt(draw, rows[i])
        defects[i] = defect
    return defects


def count(case: Case) -> None:
    """Tallies the defects of a case that a test is about to check."""
    for defect in case.defects:
        if defect is not None:
            TRIED[case.table, defect.name] += 1


def expected_id(case: Case, i: int, fmt: str) -> str:
    """The id a reject names: the raw id values of the row as the reader sees them ('' is missing in CSV)."""
    row = case.rows[i]
    parts = []
    for column in TABLES[case.table].id_columns:
        value = row[column]
        if value is None or (fmt == "csv" and value == ""):
            continue
        parts.append(str(value))
    return "/".join(parts)


def expected_value(table: str, column: str, value: object) -> object:
    if value is None and column in TABLES[table].row_model.model_fields:
        return TABLES[table].row_model.model_fields[column].default
    if column == "category":
        return value.lower()
    if table in ("campaigns", "new_campaigns") and column in ("asins", "marketplaces"):
        return list(dict.fromkeys(value))  # one listed twice counts once (docs/contract.md)
    if isinstance(value, dict):
        return {key: share for key, share in value.items() if not (share is None or math.isnan(share))}
    return value


# --- writers ---------------------------------------------------------------------------------------------------


def cell(value: object, list_style: str = "pipe") -> str:
    """One CSV cell in the contract's spelling."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        text = "|".join(value)
        pipe_safe = all(item and item == item.strip() and "|" not in item for item in value)
        if list_style == "pipe" and pipe_safe and text and not text.startswith("["):
            return text
        # The pipe form cannot carry this list (empty, blank items, '|' inside, or text read as a JSON array).
        return json.dumps(value)
    return str(value)


def write_csv(case: Case, path: Path, raw: dict[tuple[int, str], bytes] | None = None) -> None:
    """Writes CSV; `raw` puts undecodable bytes at the end of chosen (row, column) cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(case.columns)
    marks = {}
    for i, row in enumerate(case.rows):
        cells = []
        for column in case.columns:
            text = cell(row[column], case.encoding["csv_list"])
            if raw and (i, column) in raw:
                mark = f"\x00{len(marks)}\x00"
                marks[mark] = raw[i, column]
                text += mark
            cells.append(text)
        writer.writerow(cells)
    data = buffer.getvalue().encode("utf-8")
    for mark, blob in marks.items():
        data = data.replace(mark.encode("utf-8"), blob)
    path.write_bytes(data)


def _json_value(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def write_jsonl(case: Case, path: Path) -> None:
    omit = case.encoding["jsonl_none"] == "omit"
    # A column null in every row is written as null, not omitted: a required column absent from the whole file
    # refuses the file (tests/features/test_table_files.py), while these cases are about rows.
    kept = {c for c in case.columns if any(row[c] is not None for row in case.rows)}
    lines = []
    for row in case.rows:
        record = {c: _json_value(row[c]) for c in case.columns if not (omit and row[c] is None and c in kept)}
        lines.append(json.dumps(record))  # NaN and Infinity as JSON's common extension spells them
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


SCALAR_TYPES = {
    "int": (pa.int64(), lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": (pa.float64(), lambda v: isinstance(v, float)),
    "bool": (pa.bool_(), lambda v: isinstance(v, bool)),
    "date": (pa.date32(), lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime)),
    "datetime": (pa.timestamp("us"), lambda v: isinstance(v, dt.datetime)),
    "str": (pa.string(), lambda v: isinstance(v, str)),
}


def parquet_column(kind: str, values: list, encoding: dict[str, str]) -> pa.Array:
    present = [v for v in values if v is not None]
    if kind == "list":
        if encoding["list"] == "list":
            return pa.array(values, pa.list_(pa.string()))
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())
    if kind == "map":
        keys = sorted({key for v in present for key in v})
        if encoding["map"] == "struct" and keys:
            struct = pa.struct([(key, pa.float64()) for key in keys])
            return pa.array([None if v is None else {k: v.get(k) for k in keys} for v in values], struct)
        if encoding["map"] == "json":
            return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())
        return pa.array([None if v is None else list(v.items()) for v in values], pa.map_(pa.string(), pa.float64()))
    arrow_type, fits = SCALAR_TYPES[kind]
    if all(fits(v) for v in present):
        return pa.array(values, arrow_type)
    # A bad value of another type: the whole column goes as text, which the reader types row by row.
    return pa.array([None if v is None else cell(v) for v in values], pa.string())


def write_parquet(case: Case, path: Path) -> None:
    arrays = {c: parquet_column(KIND[c], [row[c] for row in case.rows], case.encoding) for c in case.columns}
    pq.write_table(pa.table(arrays), path)


WRITERS = {"parquet": write_parquet, "csv": write_csv, "jsonl": write_jsonl}


def write(case: Case, directory: Path, fmt: str, name: str | None = None) -> Path:
    path = directory / f"{name or case.table}.{fmt}"
    WRITERS[fmt](case, path)
    return path


# --- the properties ----------------------------------------------------------------------------------------------


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        a = a.tolist()
    if isinstance(b, np.ndarray):
        b = b.tolist()
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    return a == b


def check_rejects_file(rejects: list[Reject], directory: Path) -> None:
    """The rejects CSV has the contract's columns, one record per reject, and one-line reasons."""
    path = write_rejects(rejects, directory / "out" / "matches.parquet")
    assert path.name == "matches.rejects.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["table", "row", "id", "column", "reason", "output"]
        written = list(reader)
    assert [(r["table"], int(r["row"]), r["id"], r["column"], r["reason"]) for r in written] == [
        (r.table, r.row, r.id, r.column, r.reason) for r in rejects
    ]
    stream = io.StringIO()
    report_rejects(rejects, stream)
    assert len(stream.getvalue().splitlines()) == len(rejects), "one stderr line per reject"


def check_table(case: Case, result, fmt: str, bad_rows: set[int] | None = None) -> None:
    """Every bad row is rejected where its defect is, every valid row is kept as written, none lost.

    Args:
        bad_rows: 0-based rows that must be rejected for a reason outside the row (e.g. an unknown reference);
            by default only the rows with a defect.
    """
    table, n = case.table, len(case.rows)
    defective = {i for i, d in enumerate(case.defects) if d is not None}
    must_reject = defective | (bad_rows or set())
    rejected = {r.row - 1 for r in result.rejects}
    kept = result.frame["row"].tolist()

    assert len(kept) + len(rejected) == n, "rows in = rows kept + distinct rows rejected"
    assert rejected == must_reject, f"{fmt}: rejected {sorted(rejected)}, expected {sorted(must_reject)}"
    assert kept == [i + 1 for i in range(n) if i not in must_reject]
    for reject in result.rejects:
        i = reject.row - 1
        assert reject.table == table
        assert reject.reason and reject.reason.strip(), reject
        assert "\n" not in reject.reason and "\r" not in reject.reason, reject
        defect = case.defects[i]
        if defect is not None and defect.name == "duplicate id":
            assert "duplicate id" in reject.reason
            assert reject.id == "/".join(str(case.rows[i][c]) for c in TABLES[table].id_columns)
        else:
            assert reject.id == expected_id(case, i, fmt), (reject, fmt)
    for i in defective:
        columns = {r.column for r in result.rejects if r.row == i + 1}
        assert case.defects[i].column in columns, (fmt, i, case.defects[i].name, result.rejects, case.rows[i])
    frame = result.frame.set_index("row")
    for i in range(n):
        if i in must_reject:
            continue
        for column in case.columns:
            want = expected_value(table, column, case.rows[i][column])
            got = frame.at[i + 1, column] if column in frame.columns else None  # an all-empty extra column
            assert same(got, want), f"{fmt}: row {i + 1} {column}: read {got!r}, wrote {want!r}"


TABLE_EXAMPLES = {"creators": 40, "campaigns": 40, "performance": 30, "touches": 15, "purchases": 15}


@pytest.mark.parametrize("table", list(TABLES))
def test_every_bad_row_is_rejected_and_every_valid_row_kept_in_every_format(table):
    """Parquet, CSV and JSON Lines files of mixed rows read back to exactly the valid rows and named rejects."""

    @settings(
        max_examples=TABLE_EXAMPLES[table],
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases(table))
    def prop(case: Case) -> None:
        count(case)
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            for fmt in FORMATS:
                result = read_table(write(case, directory, fmt), table)
                check_table(case, result, fmt)
                check_rejects_file(result.rejects, directory)

    prop()


FORCED = [(table, defect) for table in TABLES for defect in DEFECTS[table]]


@pytest.mark.parametrize(
    ("table", "defect"), FORCED, ids=[f"{table}-{defect.name.replace(' ', '-')}" for table, defect in FORCED]
)
def test_each_named_defect_is_rejected_wherever_it_lands(table, defect):
    """Every defect of every table, at least once per example, among valid and other bad rows."""

    @settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=cases(table, max_rows=6, forced=defect), fmt=st.sampled_from(FORMATS))
    def prop(case: Case, fmt: str) -> None:
        count(case)
        with tempfile.TemporaryDirectory() as tmp:
            result = read_table(write(case, Path(tmp), fmt), table)
            check_table(case, result, fmt)
            check_rejects_file(result.rejects, Path(tmp))

    prop()


@st.composite
def undecodable(draw, case: Case) -> dict[tuple[int, str], bytes]:
    """Undecodable bytes for a few text cells of valid rows."""
    text_columns = [c for c in ("bio", "handle", "brief", "brand", EXTRA) if c in case.columns]
    cells = [(i, c) for i, row in enumerate(case.rows) for c in text_columns if case.defects[i] is None and row[c]]
    if not cells:
        return {}
    chosen = draw(st.lists(st.sampled_from(cells), unique=True, min_size=1, max_size=3))
    return {key: draw(st.sampled_from([b"\xe9", b"\xff\xfe", b"\xc3", b"\x80abc"])) for key in chosen}


@pytest.mark.parametrize("table", ["creators", "campaigns"])
def test_csv_with_non_utf8_bytes_keeps_valid_rows_with_the_bytes_replaced(table):
    """Undecodable bytes in text cells are replaced (U+FFFD), never fatal, and never move a row in or out."""

    @settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def prop(data) -> None:
        case = data.draw(cases(table))
        raw = data.draw(undecodable(case))
        count(case)
        TRIED[table, "non-UTF-8 bytes in CSV"] += len(raw)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{table}.csv"
            write_csv(case, path, raw)
            # What a reader decoding with errors="replace" must give back.
            for (i, column), blob in raw.items():
                case.rows[i][column] += blob.decode("utf-8", errors="replace")
            with pytest.warns(UserWarning, match=f"{table}.csv: not UTF-8 from line") if raw else nullcontext():
                read = read_table(path, table)
            check_table(case, read, "csv")

    prop()


def valid_ids(case: Case) -> set[str]:
    """Ids of the rows that must survive validation (a duplicate row's id is its first row's id)."""
    column = TABLES[case.table].id_columns[0]
    return {row[column] for row, defect in zip(case.rows, case.defects, strict=True) if defect is None}


def usable_ids(case: Case) -> list[str]:
    column = TABLES[case.table].id_columns[0]
    return [row[column] for row in case.rows if isinstance(row[column], str) and row[column] and _clean(row[column])]


@st.composite
def linked_tables(draw) -> dict[str, Case]:
    """Creators, campaigns, performance pointing into them (valid, rejected or unknown rows), touches, purchases."""
    creators = draw(cases("creators", max_rows=6))
    campaigns = draw(cases("campaigns", max_rows=6))
    campaign_refs = st.sampled_from([*usable_ids(campaigns), "c-none"])
    creator_refs = st.sampled_from([*usable_ids(creators), "u-none"])

    def pairs(n: int) -> st.SearchStrategy[list[dict]]:
        unique_pairs = st.lists(st.tuples(campaign_refs, creator_refs), min_size=n, max_size=n, unique=True)
        return unique_pairs.map(lambda ps: [{"campaign_id": c, "creator_id": u} for c, u in ps])

    performance = draw(cases("performance", max_rows=8, ids=pairs))
    return {
        "creators": creators,
        "campaigns": campaigns,
        "performance": performance,
        "touches": draw(cases("touches", max_rows=4)),
        "purchases": draw(cases("purchases", max_rows=4)),
    }


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(tables=linked_tables(), formats=st.fixed_dictionaries({t: st.sampled_from(FORMATS) for t in TABLES}))
def test_training_tables_reject_performance_rows_of_unknown_or_rejected_campaigns_and_creators(tables, formats):
    """read_training_tables keeps a performance row only if its campaign and creator are valid rows."""
    performance = tables["performance"]
    good_campaigns, good_creators = valid_ids(tables["campaigns"]), valid_ids(tables["creators"])
    dangling: dict[int, str] = {}
    for i, (row, defect) in enumerate(zip(performance.rows, performance.defects, strict=True)):
        if defect is not None:
            continue
        if row["campaign_id"] not in good_campaigns:
            dangling[i] = "campaign_id"
        elif row["creator_id"] not in good_creators:
            dangling[i] = "creator_id"
    for case in tables.values():
        count(case)
    TRIED["performance", "unknown or rejected campaign/creator"] += len(dangling)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name, case in tables.items():
            write(case, directory, formats[name])

        read = read_training_tables(directory)

        frames = {
            "creators": read.creators,
            "campaigns": read.campaigns,
            "performance": read.performance,
            "touches": read.touches,
            "purchases": read.purchases,
        }
        for name, case in tables.items():
            result = Table(name, frames[name], [r for r in read.rejects if r.table == name])
            check_table(case, result, formats[name], set(dangling) if name == "performance" else None)
        for i, column in dangling.items():
            (reject,) = [r for r in read.rejects if r.table == "performance" and r.row == i + 1]
            assert reject.column == column
            assert f"{performance.rows[i][column]!r} is not a valid row of the" in reject.reason
        check_rejects_file(read.rejects, directory)


@pytest.mark.parametrize("table", list(TABLES))
def test_a_required_column_absent_from_the_file_rejects_every_row_on_that_column(table):
    """Without a required column no row can be valid; each is rejected naming that column."""
    required = [name for name, info in TABLES[table].row_model.model_fields.items() if info.is_required()]

    @settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=cases(table, max_rows=5), column=st.sampled_from(required), fmt=st.sampled_from(FORMATS))
    def prop(case: Case, column: str, fmt: str) -> None:
        TRIED[table, "required column absent"] += len(case.rows)
        with tempfile.TemporaryDirectory() as tmp:
            path = write(case, Path(tmp), fmt)
            frame = read_frame(path).drop(columns=[column])
            result = validate_frame(frame, table)
        assert len(result.frame) == 0
        assert {r.row for r in result.rejects} == set(range(1, len(case.rows) + 1))
        for i in range(len(case.rows)):
            assert column in {r.column for r in result.rejects if r.row == i + 1}
        assert all(r.reason == "required value is missing" for r in result.rejects if r.column == column)

    prop()


@pytest.fixture(scope="module")
def match_inputs(world_dir, trained, world_index) -> dict:
    """The session's simulated world, trained ranker and candidate index (built once by the command)."""
    base = pd.read_parquet(world_dir / "new_campaigns.parquet")
    columns = list(TABLES["campaigns"].row_model.model_fields)
    rows = [
        {c: (v.tolist() if isinstance(v, np.ndarray) else v) for c, v in row.items()}
        for row in base[columns].to_dict("records")
    ]
    return {"creators": world_dir / "creators.parquet", "index": world_index, "model": trained.model_uri, "rows": rows}


@st.composite
def bad_campaign_files(draw, rows: list[dict]) -> Case:
    """The world's new campaigns with named defects on some of them (at least one)."""
    rows = [row | {EXTRA: None} for row in rows]
    defects = corrupt_rows(draw, "campaigns", rows)
    if all(d is None for d in defects):
        defect = draw(st.sampled_from([d for d in DEFECTS["campaigns"] if d.name != "duplicate id"]))
        i = draw(st.integers(0, len(rows) - 1))
        rows[i], defects[i] = defect.corrupt(draw, rows[i]), defect
    encoding = {"list": "list", "map": "map", "csv_list": draw(st.sampled_from(["pipe", "json"])), "jsonl_none": "omit"}
    return Case("campaigns", rows, defects, encoding)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_match_command_on_bad_campaigns_rejects_them_and_accounts_for_every_campaign(match_inputs, fmt):
    """`creator-match match`: exit 2, rejects file beside the output, and each valid campaign matched or listed."""
    from matcher.cli import main

    # No shrinking: each example is a full match run, and minutes of shrinking would hide the report.
    @settings(
        max_examples=2,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=bad_campaign_files(match_inputs["rows"]))
    def prop(case: Case) -> None:
        count(case)
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            campaigns = write(case, directory, fmt)
            out = directory / "out" / f"matches.{fmt}"
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                status = main(
                    [
                        "match",
                        *("--campaigns", str(campaigns), "--creators", str(match_inputs["creators"])),
                        *("--out", str(out), "--index", str(match_inputs["index"])),
                        *("--model", match_inputs["model"]),
                    ]
                )
            assert status == 2, stderr.getvalue()
            assert "Traceback" not in stderr.getvalue()
            rejects = pd.read_csv(out.with_name("matches.rejects.csv"), dtype=str, keep_default_na=False)
            assert list(rejects.columns) == ["table", "row", "id", "column", "reason", "output"]
            assert set(rejects["table"]) == {"campaigns"}
            rejected = {int(row) - 1 for row in rejects["row"]}
            bad = {i for i, d in enumerate(case.defects) if d is not None}
            assert rejected == bad
            for i in bad:
                assert case.defects[i].column in set(rejects.loc[rejects["row"] == str(i + 1), "column"])
            for row, column in zip(rejects["row"], rejects["column"], strict=True):
                assert f"campaigns row {row} (id " in stderr.getvalue() and f"column {column}: " in stderr.getvalue()
            valid = [row["campaign_id"] for i, row in enumerate(case.rows) if i not in bad]
            if not valid:  # an empty batch: empty matches beside the rejects file (docs/contract.md)
                assert out.exists() and (not out.stat().st_size or not len(read_frame(out)))
                assert f"matched 0 of {len(case.rows)} campaigns" in stdout.getvalue()
                return
            matched = set(read_frame(out)["campaign_id"]) if out.stat().st_size else set()
            listed = {line.strip().split(":")[0] for line in stdout.getvalue().splitlines() if line.startswith("  ")}
            assert not matched & {case.rows[i]["campaign_id"] for i in bad if case.defects[i].name != "duplicate id"}
            assert all(cid in matched or cid in listed for cid in valid), (valid, matched, listed)
            assert len(case.rows) == len(valid) + len(rejected), "rows in = matched or listed + rejected"
            assert f"of {len(case.rows)} campaigns" in stdout.getvalue()

    prop()


@pytest.fixture(scope="module", autouse=True)
def _count_tried(request):
    """Prints how many generated rows carried each defect, so a run states what it tried."""
    yield
    total = sum(TRIED.values())
    lines = [f"fuzzed bad-input cases tried: {total}"]
    by_table = Counter()
    for (table, _), count in TRIED.items():
        by_table[table] += count
    lines += [f"  {table}: {count}" for table, count in sorted(by_table.items())]
    lines += [f"    {table:12} {name:42} {count}" for (table, name), count in sorted(TRIED.items())]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines))
