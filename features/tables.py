"""Reading contract tables from Parquet, CSV or JSON Lines, keeping the valid rows and naming the bad ones."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, TypeAdapter, ValidationError

from features.contract import REJECTS_SUFFIX, TABLE_FORMATS, TABLE_SUFFIXES
from features.memory import release_free_memory
from features.rows import CampaignRow, CreatorRow, PerformanceRow, PurchaseRow, TouchRow, is_missing
from features.safe_write import atomic_path

__all__ = [
    "TABLES",
    "InputError",
    "Reject",
    "Table",
    "atomic_path",
    "read_frame",
    "read_table",
    "rejects_path",
    "report_rejects",
    "valid_rows",
    "validate_frame",
    "validate_performance_links",
    "write_rejects",
]

READERS = {suffix: suffix[1:] for suffix in TABLE_SUFFIXES}
# Rows validated at once: their records and row models exist for one block at a time (for a million creators at
# once they were gigabytes of Python objects); a block's rows are checked exactly as a whole table's.
VALIDATION_BLOCK = 20_000


class InputError(Exception):
    """A user error that stops a command: an unusable argument, a missing or unreadable file."""


@dataclass(frozen=True, slots=True)
class Reject:
    """One invalid row: the contract's rejects-file record."""

    table: str
    row: int
    id: str
    column: str
    reason: str

    def line(self) -> str:
        return f"{self.table} row {self.row} (id {_printable(self.id) or '?'}): column {self.column}: {self.reason}"


def _printable(text: str) -> str:
    # An id may hold line breaks or other control characters; escaped, the stderr record stays one line.
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one contract table is read: its row model, id columns, and which columns hold lists or maps."""

    name: str
    row_model: type[BaseModel]
    id_columns: tuple[str, ...]
    list_columns: tuple[str, ...] = ()
    map_columns: tuple[str, ...] = ()
    unique: bool = True
    # Columns whose values are personal or free text and must never be echoed in a reason.
    private_columns: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    "creators": TableSpec(
        "creators",
        CreatorRow,
        ("creator_id",),
        ("platforms", "interest_tags"),
        ("audience_marketplaces",),
        private_columns=("bio", "handle"),
    ),
    "campaigns": TableSpec("campaigns", CampaignRow, ("campaign_id",), ("asins", "marketplaces")),
    "performance": TableSpec("performance", PerformanceRow, ("campaign_id", "creator_id")),
    "touches": TableSpec("touches", TouchRow, ("shopper_id", "campaign_id", "creator_id"), unique=False),
    "purchases": TableSpec("purchases", PurchaseRow, ("shopper_id", "campaign_id"), unique=False),
}


# Held only by this module's validators: a Table built by hand, or a frame that merely has their `row` column,
# is not taken for validated.
_VALIDATED = object()


@dataclass(frozen=True, slots=True)
class Table:
    """The valid rows of a table (original order, `row` column = 1-based row in the file) and its rejects.

    `validated` is true only for a Table that `validate_frame` (or `read_table`) made.
    """

    name: str
    frame: pd.DataFrame
    rejects: list[Reject]
    _seal: object = field(default=None, repr=False, compare=False)

    @property
    def validated(self) -> bool:
        return self._seal is _VALIDATED

    def __reduce__(self):
        # The seal is this process's object: unpickled as it is, a validated table sent to another process (the
        # service's worker processes) would come back unvalidated and be validated all over again there.
        return _unpickled_table, (self.name, self.frame, self.rejects, self.validated)


def _unpickled_table(name: str, frame: pd.DataFrame, rejects: list[Reject], validated: bool) -> Table:
    return Table(name, frame, rejects, _VALIDATED if validated else None)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Reads a file into a DataFrame by its extension, without validating it.

    Raises:
        InputError: the file is missing, has an unknown extension or cannot be parsed.
    """
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown table format {path.suffix!r}; expected {TABLE_FORMATS}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "jsonl":
            return _read_jsonl(path)
        # Everything as text: the row models do the typing, so "007" stays an id and bad numbers are named.
        # Only an empty cell is missing: pandas' default list would turn brand "None", bio "N/A" and
        # Namibia's marketplace code "NA" into nothing.
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8", encoding_errors="replace"
        )
    except Exception as exc:  # the parsers raise many types; the user needs one line
        raise InputError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from exc


def _read_jsonl(path: Path) -> pd.DataFrame:
    # The standard json module, not pandas' reader: that one parses floats imprecisely (9.87654321e-05 came
    # back as 9.876543210000001e-05, 5e-324 as 0.0), silently changing prices and rates.
    records = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"line {number} is not a JSON object")
            records.append(record)
    return pd.DataFrame.from_records(records)


def _as_list(value: object) -> object:
    if is_missing(value):
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(text)
        return [part.strip() for part in text.split("|") if part.strip()] if text else []
    return value


def _as_map(value: object) -> object:
    if is_missing(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return value  # the row model names it
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list) and all(isinstance(item, tuple | list) and len(item) == 2 for item in value):
        value = {str(key): share for key, share in value}  # a Parquet map reads as (key, value) pairs
    if isinstance(value, dict):
        # A null share means no figure for that marketplace, in every encoding: a Parquet struct carries every
        # marketplace as a field (absent ones come back as None), and a map or JSON object may hold a null.
        return {key: share for key, share in value.items() if not is_missing(share)}
    return value


def _records(frame: pd.DataFrame, spec: TableSpec) -> list[dict[str, object]]:
    columns = [name for name in spec.row_model.model_fields if name in frame.columns]
    records: list[dict[str, object]] = []
    converters = {name: _as_list for name in spec.list_columns} | {name: _as_map for name in spec.map_columns}
    values = {name: frame[name].astype(object).tolist() for name in columns}
    for i in range(len(frame)):
        record: dict[str, object] = {}
        for name in columns:
            value = values[name][i]
            convert = converters.get(name)
            value = convert(value) if convert else (None if is_missing(value) else value)
            if isinstance(value, np.generic):
                value = value.item()
            if value is not None:
                record[name] = value
        records.append(record)
    return records


def _reason(error: dict, private: bool) -> str:
    where = "".join(f"[{part!r}]" if isinstance(part, str) else f"[{part}]" for part in error["loc"][2:])
    message = error["msg"]
    if error["type"] == "missing":
        return "required value is missing"
    if private or error["type"] in {"funnel", "date_order", "share_sum", "asin", "marketplace"}:
        return f"{where + ': ' if where else ''}{message}"
    shown = repr(error["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{where + ': ' if where else ''}got {shown}; {message[0].lower()}{message[1:]}"


def _row_id(record: dict[str, object], spec: TableSpec) -> str:
    return "/".join(str(record.get(column, "")) for column in spec.id_columns if record.get(column) is not None)


def _valid_block(
    block: pd.DataFrame, start: int, spec: TableSpec, rejects: dict[tuple[int, str], Reject]
) -> Iterator[tuple[int, BaseModel]]:
    """The valid rows of one block (frame positions from `start`) as (position, row model); adds the others'
    rejects, one per (row, column)."""
    records = _records(block, spec)
    adapter = _rows_adapter(spec.row_model)
    try:
        return zip(range(start, start + len(records)), adapter.validate_python(records), strict=True)
    except ValidationError as exc:
        bad_rows = set()
        for error in exc.errors(include_url=False):
            index, column = error["loc"][0], str(error["loc"][1]) if len(error["loc"]) > 1 else "?"
            bad_rows.add(index)
            if (start + index, column) in rejects:
                continue
            rejects[start + index, column] = Reject(
                spec.name,
                start + index + 1,
                _row_id(records[index], spec),
                column,
                _reason(error, column in spec.private_columns),
            )
        kept = [i for i in range(len(records)) if i not in bad_rows]
        rows = adapter.validate_python([records[i] for i in kept])
        return zip([start + i for i in kept], rows, strict=True)


@functools.cache
def _rows_adapter(row_model: type[BaseModel]) -> TypeAdapter:
    """The validator of a list of rows, built once per row model: building it took about half a millisecond, as
    long as validating a service request's one campaign."""
    return TypeAdapter(list[row_model])


def _share_strings(cells: list, start: int, shared: dict[str, str]) -> None:
    """Makes the strings of list and map cells from `start` on one object per distinct text: a million
    creators name a few thousand tags, platforms and marketplaces, and each copy cost about 50 bytes."""
    for i in range(start, len(cells)):
        cell = cells[i]
        if isinstance(cell, list):
            cells[i] = [shared.setdefault(item, item) if isinstance(item, str) else item for item in cell]
        elif isinstance(cell, dict):
            cells[i] = {shared.setdefault(key, key) if isinstance(key, str) else key: v for key, v in cell.items()}


def validate_frame(frame: pd.DataFrame, table: str) -> Table:
    """Validates every row of a contract table; returns the valid rows, typed, and a reject per bad row.

    Unknown extra columns are kept. Repeated ids after the first occurrence are rejected. Rows are numbered
    by position in `frame`: a `row` column it already has (as a validated frame does) is replaced.
    """
    frame = _without_row(frame)
    # At least one block, so that an empty table still has its columns (extra ones are kept).
    blocks = (frame.iloc[start : start + VALIDATION_BLOCK] for start in range(0, max(len(frame), 1), VALIDATION_BLOCK))
    return _validate_blocks(blocks, table, lambda kept, extra: frame.iloc[kept][extra])


def _validate_blocks(
    blocks: Iterable[pd.DataFrame], table: str, extra_columns: Callable[[list[int], list[str]], pd.DataFrame]
) -> Table:
    """`validate_frame` over a table given as consecutive blocks of rows (the same columns in each);
    `extra_columns(kept, names)` gives the named columns of the kept rows (positions in the table)."""
    spec = TABLES[table]
    names = list(spec.row_model.model_fields)
    columns: list[str] = []
    # The valid rows' typed values, a pickle per block and column: a row model and its record live for one
    # block only, and the frame's own objects are made at the end (see _valid_frame).
    packed: dict[str, list[bytes]] = {name: [] for name in names}
    rejects: dict[tuple[int, str], Reject] = {}
    kept: list[int] = []
    first_seen: dict[tuple, int] = {}
    start = 0
    for block in blocks:
        block = _without_row(block)
        columns = list(block.columns)
        values: dict[str, list] = {name: [] for name in names}
        for index, row in _valid_block(block, start, spec, rejects):
            if spec.unique:
                key = tuple(getattr(row, column) for column in spec.id_columns)
                if key in first_seen:
                    rejects[index, spec.id_columns[-1]] = Reject(
                        table,
                        index + 1,
                        "/".join(key),
                        spec.id_columns[-1],
                        f"duplicate id; first seen at row {first_seen[key] + 1}",
                    )
                    continue
                first_seen[key] = index
            kept.append(index)
            cells = row.__dict__
            for name in names:
                values[name].append(cells[name])
        for name in names:
            packed[name].append(pickle.dumps(values[name], protocol=pickle.HIGHEST_PROTOCOL))
        del values
        start += len(block)
    del first_seen
    # Built as the rows' records were: no valid row gives object columns, as a frame of no records has.
    cell_columns = (*spec.list_columns, *spec.map_columns)
    valid = _valid_frame(packed, names, cell_columns) if kept else pd.DataFrame([], columns=names)
    extra = [column for column in columns if column not in valid.columns]
    if extra:
        valid = pd.concat([valid, extra_columns(kept, extra).reset_index(drop=True)], axis=1)
    valid.insert(0, "row", np.asarray(kept, dtype=np.int64) + 1)
    if start > VALIDATION_BLOCK:  # after a large table only: a service request's few rows leave nothing to trim
        release_free_memory()
    return Table(table, valid, sorted(rejects.values(), key=lambda r: (r.row, r.column)), _VALIDATED)


def _without_row(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` less its `row` column, if it has one (a drop that finds nothing still copies the frame)."""
    return frame.drop(columns="row") if "row" in frame.columns else frame


def _valid_frame(packed: dict[str, list[bytes]], names: list[str], cell_columns: tuple[str, ...]) -> pd.DataFrame:
    """The valid rows' frame from their pickled values: the plain columns first, each converted from its
    values as a frame of the rows' records would be; then the list and map cells, whose strings are shared.

    Made in this order, the cells (the frame's only lasting Python objects) are not interleaved with the
    plain values' short-lived ones, whose freed memory the allocator could then not give back: 200,000
    creators took 0.26 GiB after validation instead of 0.37.
    """
    plain = [name for name in names if name not in cell_columns]
    valid = pd.DataFrame({name: _unpacked(packed.pop(name)) for name in plain}, columns=plain)
    shared: dict[str, str] = {}
    for name in names:
        if name in cell_columns:
            cells = _unpacked(packed.pop(name))
            _share_strings(cells, 0, shared)
            valid[name] = pd.Series(cells, dtype=object)
    return valid[names]


def _unpacked(blobs: list[bytes]) -> list:
    """One column's values from its pickled blocks, in order."""
    return [value for blob in blobs for value in pickle.loads(blob)]


def read_table(path: str | Path, table: str) -> Table:
    """Reads and validates one contract table from a .parquet, .csv or .jsonl file.

    A Parquet file is converted to pandas a block of rows at a time, as `read_frame` would have converted it
    whole: at a million creators, a frame of every list and map cell as Python objects was over a gigabyte.
    """
    path = Path(path)
    if READERS.get(path.suffix.lower()) != "parquet" or not path.is_file():
        return validate_frame(read_frame(path), table)
    try:
        arrow = pq.read_table(path, use_pandas_metadata=True)  # what pandas.read_parquet reads
    except Exception as exc:
        read_frame(path)  # raises the InputError a whole read gives
        raise InputError(f"{path}: cannot read as parquet: {exc!r}") from exc
    validated = _validate_blocks(_pandas_blocks(arrow), table, lambda kept, extra: read_frame(path)[extra].iloc[kept])
    del arrow
    # Arrow's allocator keeps freed pages for reuse: the decoded file (about 0.5 GB for a million creators)
    # would stay resident for the whole run.
    pa.default_memory_pool().release_unused()
    return validated


def _pandas_blocks(arrow: pa.Table) -> Iterator[pd.DataFrame]:
    """The table as pandas frames of VALIDATION_BLOCK rows, each with the cells the whole table's conversion has.

    Only the presence of nulls makes a column's conversion differ by rows: integers with nulls become float64
    and booleans with nulls objects, so a block without one is given that column's whole-table dtype.
    """
    nulls = {name: arrow.column(name).null_count > 0 for name in arrow.column_names}
    for start in range(0, max(arrow.num_rows, 1), VALIDATION_BLOCK):
        block = arrow.slice(start, VALIDATION_BLOCK).to_pandas()
        for name in block.columns:
            dtype = block[name].dtype
            if nulls.get(name) and isinstance(dtype, np.dtype) and dtype.kind in "iub":
                block[name] = block[name].astype(float if dtype.kind in "iu" else object)
        yield block


def valid_rows(data: Table | pd.DataFrame, table: str) -> Table:
    """A contract table's valid rows and rejects: a Table the validators made is taken as it is, once;
    anything else (a DataFrame, whatever its columns, or a Table built by hand) is validated now.

    Raises:
        ValueError: `data` is a validated table of another kind.
    """
    if isinstance(data, Table) and data.validated:
        if data.name != table:
            raise ValueError(f"Got the {data.name} table; expected the {table} table")
        return data
    return validate_frame(data.frame if isinstance(data, Table) else data, table)


def validate_performance_links(performance: Table, campaigns: pd.DataFrame, creators: pd.DataFrame) -> Table:
    """Rejects performance rows whose campaign or creator is not a valid row of its table."""
    known_campaigns = set(campaigns["campaign_id"])
    known_creators = set(creators["creator_id"])
    frame = performance.frame
    unknown_campaign = ~frame["campaign_id"].isin(known_campaigns)
    unknown_creator = ~frame["creator_id"].isin(known_creators) & ~unknown_campaign
    rejects = list(performance.rejects)
    for mask, column, table in (
        (unknown_campaign, "campaign_id", "campaigns"),
        (unknown_creator, "creator_id", "creators"),
    ):
        for row, campaign_id, creator_id in frame.loc[mask, ["row", "campaign_id", "creator_id"]].itertuples(
            index=False
        ):
            value = campaign_id if column == "campaign_id" else creator_id
            rejects.append(
                Reject(
                    performance.name,
                    int(row),
                    f"{campaign_id}/{creator_id}",
                    column,
                    f"{value!r} is not a valid row of the {table} table",
                )
            )
    keep = ~(unknown_campaign | unknown_creator)
    return Table(
        performance.name, frame[keep].reset_index(drop=True), sorted(rejects, key=lambda r: r.row), performance._seal
    )


def rejects_path(out: str | Path) -> Path:
    """The contract's rejects file beside an output: `<out stem>.rejects.csv`."""
    out = Path(out)
    return out.with_name(f"{out.stem}{REJECTS_SUFFIX}")


def write_rejects(rejects: list[Reject], out: str | Path) -> Path:
    """Writes the rejects file beside `out` (atomically) and returns its path."""
    target = rejects_path(out)
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["table", "row", "id", "column", "reason"])
        writer.writeheader()
        writer.writerows(asdict(reject) for reject in rejects)
    return target


def report_rejects(rejects: list[Reject], stream=None) -> None:
    """Writes one line per reject to standard error."""
    stream = stream or sys.stderr
    for reject in rejects:
        print(reject.line(), file=stream)
