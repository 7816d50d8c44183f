"""Reading contract tables from Parquet, CSV or JSON Lines, keeping the valid rows and naming the bad ones."""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import gc
import itertools
import json
import os
import pickle
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, TypeAdapter, ValidationError

from features.column_names import likely_meant, normalized
from features.column_validation import validate_columns
from features.contract import REJECTS_SUFFIX, TABLE_FORMATS, TABLE_SUFFIXES
from features.memory import release_free_memory
from features.rows import CampaignRow, CreatorRow, PerformanceRow, PurchaseRow, TouchRow, is_missing, several_in_one
from features.safe_write import (
    OutputLocked,
    OutputRefused,
    atomic_path,
    check_output_path,
    output_lock,
    remove_stale_temporaries,
    stale_temporaries,
)

__all__ = [
    "TABLES",
    "UNPAIRED",
    "InputError",
    "NoValidRows",
    "Reject",
    "Table",
    "atomic_path",
    "check_own_table",
    "check_rejects_path",
    "checked_rows",
    "error_reason",
    "header_names",
    "is_rejects_file",
    "missing_columns",
    "misspelt_columns",
    "no_valid_rows",
    "read_frame",
    "read_table",
    "recorded_rows",
    "records_frame",
    "rejected_row_line",
    "rejects_path",
    "rejects_turn",
    "repeat_noting_decoder",
    "report_rejects",
    "require_valid_rows",
    "settle_rejects",
    "shown_id",
    "shown_ids",
    "shown_value",
    "unknown_column_note",
    "unknown_column_notes",
    "valid_rows",
    "validate_frame",
    "validate_performance_links",
    "validate_records",
    "write_rejects",
]

READERS = {suffix: suffix[1:] for suffix in TABLE_SUFFIXES}
# Rows validated at once: their records and row models exist for one block at a time (for a million creators at
# once they were gigabytes of Python objects); a block's rows are checked exactly as a whole table's.
VALIDATION_BLOCK = 20_000


class InputError(Exception):
    """A user error that stops a command: an unusable argument, a missing or unreadable file."""


class NoValidRows(InputError):
    """A table that leaves a command nothing to work on: it has no row, or every row was rejected.

    Attributes:
        rejects: every reject of the run so far, which the command reports as for any run before refusing.
        rejects_file: the rejects file written beside the output, if any.
    """

    def __init__(self, message: str, rejects: list[Reject] | None = None, rejects_file: Path | None = None) -> None:
        super().__init__(message)
        self.rejects = list(rejects or [])
        self.rejects_file = rejects_file


# The column of a reject no one column is at fault for (a CSV line wider than the header, a line that is not JSON):
# the rejects file records it so, and its line on standard error names none.
WHOLE_LINE = "?"


@dataclass(frozen=True, slots=True)
class Reject:
    """One invalid row: the contract's rejects-file record."""

    table: str
    row: int
    id: str
    column: str
    reason: str

    def line(self) -> str:
        column = "" if self.column == WHOLE_LINE else f"column {self.column}: "
        return f"{self.table} row {self.row} (id {shown_id(self.id) or '?'}): {column}{self.reason}"


# The rejects file's columns, in order: its header row is how an earlier one of ours is told from a user's file. The
# last, `output`, names the output the file belongs to: `m.parquet` and `m.csv` share `m.rejects.csv`, and a clean run
# of one must not remove the other's rejects. A file written before that column (the header without it) is still
# one of ours, of no recorded output.
REJECTS_COLUMNS = (*(f.name for f in fields(Reject)), "output")
_RECORDLESS_REJECTS_COLUMNS = REJECTS_COLUMNS[:-1]
# Seconds a run waits for another run sharing its rejects file to write its outputs and rejects (not its work):
# writing 1.85M candidate rows as CSV takes about 35 s, and a run refused here has done all its scoring.
REJECTS_LOCK_WAIT = 600.0


def shown_id(text: object) -> str:
    """An id (or other user text) as a line of standard error or a note shows it: its control characters escaped
    (`c-77\\nserving ...`), so that an id holding a line break cannot start a line of its own that reads as the
    service's or the command's."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(text))


def shown_ids(ids: list[object], limit: int = 5) -> str:
    """Ids as one line names them: the first `limit`, each as `shown_id` shows it, then how many more."""
    shown = ", ".join(shown_id(one) for one in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


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
    # Validated a column at a time (features.column_validation), only the rows that fail going through the row
    # model: the creators table, the one with a million rows.
    columnar: bool = False


TABLES: dict[str, TableSpec] = {
    "creators": TableSpec(
        "creators",
        CreatorRow,
        ("creator_id",),
        ("platforms", "interest_tags"),
        ("audience_marketplaces",),
        private_columns=("bio", "handle"),
        columnar=True,
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

    A CSV line with more fields than the header or where a stray quote opened (`_stray_quote`), or a JSON Lines
    line that is not a JSON object, reads as a row of missing values, in its place (`read_table` rejects it,
    saying so); the lines a stray quote took in are rows of their own. A key a JSON Lines line repeats keeps its
    last value here; `read_table` rejects the line when its table reads that key.

    Raises:
        InputError: the file is missing, has an unknown extension or cannot be parsed.
    """
    return _read_file(path)[0]


@dataclass(frozen=True, slots=True)
class _BadLine:
    """Why a JSON Lines line, or a CSV line wider than the header or where a stray quote opened, is read as a row of
    missing values (its id kept, for some): the column at fault (WHOLE_LINE for none), the reason,
    and the row's id as far as it can be read."""

    column: str
    reason: str
    id: str = ""


def _read_file(path: str | Path, spec: TableSpec | None = None) -> tuple[pd.DataFrame, dict[int, _BadLine]]:
    """`read_frame`, and why each unreadable line is, by its row position in the frame: a CSV line too wide for the
    header or where a stray quote opened, or a JSON Lines line that is not a JSON object, or (given
    the table read, `spec`) that repeats a key the table reads (why not)."""
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown table format {path.suffix!r}; expected {TABLE_FORMATS}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if kind == "parquet":
            frame, bad = _read_parquet(path).to_pandas(), {}
        else:
            frame, bad = _read_jsonl(path, spec) if kind == "jsonl" else _read_csv(path, spec)
        frame.columns = header_names(frame.columns)
        return frame, bad
    except InputError:
        raise
    except Exception as exc:  # the parsers raise many types; the user needs one line
        raise InputError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from exc


# How pandas names an index level it stores as a column when the level has no name of its own.
_UNNAMED_INDEX = re.compile(r"__index_level_\d+__")


def _read_parquet(path: Path) -> pa.Table:
    """A Parquet file's columns, as `read_table` and `read_frame` both read it: what pandas.read_parquet reads,
    but a DataFrame's index stored by `DataFrame.to_parquet` is not made the frame's index.

    An index level without a name (`__index_level_0__`, the row labels of any filtered or concatenated frame) is
    pandas' bookkeeping, not the user's column, and is dropped; a named one (`set_index("creator_id")`) holds the
    user's values and is read as the column it names. Made the index, the first vanished from the frame but not
    from Arrow's column names, and a read failed on it; the second hid a required column.
    """
    arrow = pq.read_table(path, use_pandas_metadata=True)
    metadata = arrow.schema.pandas_metadata
    if not metadata or not metadata.get("index_columns"):
        return arrow
    unnamed = [name for name in metadata["index_columns"] if isinstance(name, str) and _UNNAMED_INDEX.fullmatch(name)]
    pandas = json.dumps(metadata | {"index_columns": []}).encode()
    return arrow.drop_columns(unnamed).replace_schema_metadata(arrow.schema.metadata | {b"pandas": pandas})


# Everything as text: the row models do the typing, so "007" stays an id and bad numbers are named. Only an empty
# cell is missing: pandas' default list would turn brand "None", bio "N/A" and Namibia's marketplace code "NA"
# into nothing. Never an index: given a first data line one field wider than the header, pandas would make the
# first column an index and shift every value one column left.
_CSV_OPTIONS = {
    "dtype": str,
    "keep_default_na": False,
    "na_values": [""],
    "encoding": "utf-8",
    "encoding_errors": "replace",
    "index_col": False,
}


def _line_count(path: Path) -> int:
    """The number of lines of a CSV file, warning, naming the first line, when it is not UTF-8 (what Excel's plain
    "CSV" format writes): its other bytes are read as U+FFFD, and a name or an id read that way no longer matches
    the same one elsewhere."""
    decoder: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()
    lines, offset, last = 0, 0, b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            try:
                if decoder is not None:
                    decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                decoder = None
                line = lines + chunk.count(b"\n", 0, max(0, exc.start)) + 1
                warnings.warn(
                    f"{path}: not UTF-8 from line {line} (byte 0x{chunk[exc.start]:02x} at offset "
                    f"{offset + exc.start}); such bytes were read as U+FFFD: save the file as UTF-8",
                    UserWarning,
                    stacklevel=5,
                )
            lines += chunk.count(b"\n")
            offset += len(chunk)
            last = chunk[-1:]
    return lines + (last != b"\n")


def _read_csv(path: Path, spec: TableSpec | None = None) -> tuple[pd.DataFrame, dict[int, _BadLine]]:
    """A CSV file's frame, and each line that is no row of it, by row position (`_csv_records`).

    Read by pandas' C parser, which stops at a line too wide or a quote never closed, and takes a stray quote for
    the start of a quoted cell: the lines up to the next quote became part of one cell. Such a file, and one whose
    quoted cells span lines where a stray quote's might (`_no_stray_quote`), is read again record by record, each
    record's lines known: several times as slow, so a file without such a flaw never pays for it.
    """
    lines = _line_count(path)
    with warnings.catch_warnings():
        # With index_col=False pandas drops the extra field of a too-wide first data line, warning only.
        warnings.filterwarnings("error", message="Length of header", category=pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, **_CSV_OPTIONS)
        except (pd.errors.ParserError, pd.errors.ParserWarning):
            frame = None
    text = functools.cache(lambda: _csv_lines(path))  # read once, and only when a check needs each record's lines
    if frame is not None and (lines == len(frame) + 1 or _no_stray_quote(text, frame)):
        return frame, {}
    names = list(pd.read_csv(path, nrows=0, **_CSV_OPTIONS).columns)  # pandas' names: "a.1" for a second "a"
    rows, bad = _csv_records(text(), names, spec)
    return pd.DataFrame(rows, columns=names, index=pd.RangeIndex(len(rows)), dtype=str), bad


def _csv_lines(path: Path) -> list[str]:
    """A CSV file's physical lines, with their line ends, as its records are read."""
    with _long_fields(), open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        return handle.readlines()


def _no_stray_quote(text: Callable[[], list[str]], frame: pd.DataFrame) -> bool:
    """Whether the C parser's `frame` of a file (whose lines `text` gives) holds no cell that a stray quote made
    (`_stray_quote`): none spans lines, or each row is on as many lines as its cells hold line breaks (no blank
    line between) and none of those that span lines is a stray quote's."""
    spanning = np.zeros(len(frame), dtype=bool)
    for name in frame.columns:
        spanning |= frame[name].str.contains("[\r\n]", regex=True, na=False).to_numpy()
    if not spanning.any():
        return True
    # A file's lines end at \r\n, \n or \r, as Python reads them: so many lines does each row's text take.
    cells = frame[spanning].fillna("")
    breaks = sum(
        cells[name].str.count("\n") + cells[name].str.count("\r") - cells[name].str.count("\r\n") for name in cells
    )
    spans = np.ones(len(frame), dtype=np.int64)
    spans[spanning] += breaks.to_numpy(dtype=np.int64)
    lines = text()
    if len(lines) != 1 + spans.sum():
        return False  # a blank line, or a header over lines: the rows' lines are not known
    starts = 1 + np.cumsum(spans) - spans
    width = len(frame.columns)
    for first, span in zip(starts[spanning].tolist(), spans[spanning].tolist(), strict=True):
        taken = [(number + 1, lines[number]) for number in range(first, first + span)]
        try:
            fields, error = next(csv.reader([line for _, line in taken], strict=True)), None
        except csv.Error as exc:
            fields, error = None, str(exc)
        if _stray_quote(taken, fields, error, width):
            return False
    return True


def _fields(line: str) -> list[str]:
    """One physical line's fields, read on its own as pandas reads a line (a quote left open ends with the line)."""
    return next(csv.reader([line]), [])


def _csv_records(
    lines: list[str], names: list[str], spec: TableSpec | None
) -> tuple[list[list[str | None]], dict[int, _BadLine]]:
    """A CSV file's rows read from its physical `lines` (None for an empty cell; a row shorter than the header is
    padded as pandas pads it), and why each line that is no row is not, by row position: a line wider than the
    header, or the line where a stray quote opened (`_stray_quote`). Such lines are rows of missing values in their
    place, but a stray quote's row keeps the id read before the quote, so that a later row of that id is taken for a
    duplicate.

    After a stray quote, the lines its cell took in are read again on their own, as the rows they are: a quote
    never closed, or closed by an inch mark lines later, cost every row after it or the rows between.
    """
    width = len(names)
    read_as = header_names(names)
    at = [read_as.index(name) for name in spec.id_columns if name in read_as] if spec else []
    rows: list[list[str | None]] = []
    bad: dict[int, _BadLine] = {}
    header, start, ended = True, 0, False
    while not ended:
        # Strict, so that a quote that does not close as a cell ends is an error rather than read on.
        reader = csv.reader(itertools.islice(lines, start, None), strict=True)
        read = 0  # lines the reader read before this record
        while True:
            try:
                fields: list[str] | None = next(reader)
                error = None
            except StopIteration:
                ended = True
                break
            except csv.Error as exc:
                fields, error = None, str(exc)
            first, last, read = start + read, start + reader.line_num, reader.line_num  # the record's lines
            if error is not None or last - first > 1:
                taken = [(number + 1, lines[number]) for number in range(first, last)]
                if not header and (why := _stray_quote(taken, fields, error, width)):
                    opened = _fields(lines[first])  # its last field is the one the quote opened
                    column = names[len(opened) - 1] if len(opened) <= width else WHOLE_LINE
                    known = _line_id(opened[:-1], at, spec)  # not the field the quote opened
                    bad[len(rows)] = _BadLine(column, why, known)
                    rows.append([opened[i].strip() if known and i in at else None for i in range(width)])
                    start = first + 1
                    break
            if error is not None:  # text after a closing quote, on one line: read on as pandas reads it
                fields, start = next(csv.reader(lines[first:last]), []), last
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                pass  # a blank line, skipped as pandas skips it
            elif header:
                header = False
            elif len(fields) > width:
                why = f"line {first + 1} has {len(fields)} fields where the header has {width}"
                bad[len(rows)] = _BadLine(
                    WHOLE_LINE, f"{why} (a comma in a value not quoted?)", _line_id(fields, at, spec)
                )
                rows.append([None] * width)
            else:
                rows.append([cell or None for cell in fields])
            if error is not None:
                break  # the strict reader stopped inside the line: a new one reads on from the next
    return rows, bad


def _line_id(fields: list[str], at: list[int], spec: TableSpec | None) -> str:
    """The row's id from a CSV line's `fields` (its id columns at `at`), or "" when any of them cannot be read."""
    ids = [fields[i].strip() for i in at if i < len(fields)]
    return "/".join(ids) if spec and len(ids) == len(spec.id_columns) and all(ids) else ""


def _stray_quote(taken: list[tuple[int, str]], fields: list[str] | None, error: str | None, width: int) -> str | None:
    """Why the quote that opened a record's cell on its first line (of the numbered `taken`) is taken for a stray
    one, or None when the record is read as it stands (one line, or a quoted cell with a line break in it).

    Such a quote is never closed; or its cell spans lines and is closed by a quote that text follows (`12" screen`),
    or makes the record wider than the header; or each line it took in reads on its own as a row of the header's
    width, as its first line does with the quote read as a character. A quoted line break of a real cell (a bio
    of two lines) is none of these, unless its lines are each a row's worth of fields.
    """
    first, last = taken[0][0], taken[-1][0]
    if error is not None and "end of data" in error:
        after = "; the lines after it were read as rows" if last > first else ""
        return f"a quote opened in this cell on line {first} is never closed{after}"
    if len(taken) < 2:
        return None
    opened = f"a quote opened in this cell on line {first} closes on line {last}"
    again = f"lines {first + 1}-{last} were read as rows" if last > first + 1 else f"line {last} was read as a row"
    if error is not None:
        return f"{opened} with text after it; {again}"
    if fields is not None and len(fields) > width:
        return f"{opened}, making a row of {len(fields)} fields, not {width}; {again}"
    alone = _fields(taken[0][1])
    as_character = len(alone) - 1 + len(_fields(alone[-1].rstrip("\r\n")))
    if as_character == width and all(len(_fields(line)) == width for _, line in taken[1:]):
        return f"{opened}, taking in lines that are rows of their own; {again}"
    return None


def _warn_comma_lists(table: Table, spec: TableSpec, path: Path) -> None:
    """One warning when a CSV's list cells hold commas or semicolons: lists there are written `a|b|c`, so the
    seller's "nail art, gel nails, beauty" was read, without a word, as one tag (a list of codes so written is
    refused by the codes' own rules)."""
    if not len(table.frame):
        return
    for column in spec.list_columns:
        if column not in table.frame.columns:
            continue
        joined = table.frame[column].map(lambda items: next((i for i in items or () if "," in i or ";" in i), None))
        found = joined.dropna()
        if len(found):
            row = int(table.frame.loc[found.index[0], "row"])
            rows, each = ("1 row's", "it") if len(found) == 1 else (f"{len(found)} rows'", "each")
            warnings.warn(
                f"{path}: {rows} {column} hold a comma or semicolon (row {row}: {found.iloc[0]!r}); "
                f"lists in CSV are written a|b|c, so {each} was read as one item",
                UserWarning,
                stacklevel=3,
            )


def _without_blank_rows(validated: Table, frame: pd.DataFrame, wide: dict, path: Path) -> Table:
    """The table less the rejects of CSV rows whose every cell is empty (`,,,,`, what a spreadsheet leaves below
    its data), said in one warning: each gave a reject per required column and exit status 2 for a clean file."""
    if not len(frame) or not len(frame.columns):
        return validated
    blank = set(np.flatnonzero(frame.isna().all(axis=1).to_numpy()).tolist()) - set(wide)
    if not blank:
        return validated
    rows = f"{len(blank)} empty row{'s' if len(blank) != 1 else ''}"
    warnings.warn(f"{path}: {rows} (every cell blank) skipped", UserWarning, stacklevel=3)
    rejects = [reject for reject in validated.rejects if reject.row - 1 not in blank]
    return Table(validated.name, validated.frame, rejects, _VALIDATED)


def _with_line_rejects(validated: Table, bad: dict[int, _BadLine], spec: TableSpec) -> Table:
    """`validated` with a reject for each unreadable line (`bad`, by row position) in place of the rejects its row of
    missing values gave: the reject says what was wrong instead of those."""
    if not bad:
        return validated
    lines = {at: Reject(spec.name, at + 1, line.id, line.column, line.reason) for at, line in bad.items()}
    rejects = [r for r in validated.rejects if r.row - 1 not in lines] + list(lines.values())
    rejects.sort(key=lambda r: (r.row, r.column))
    return Table(validated.name, validated.frame, rejects, _VALIDATED)


def _check_required_columns(path: Path, columns: Iterable[str], spec: TableSpec) -> None:
    """Refuses a file that lacks a required column (none of its rows could be valid), or that names a column the
    table reads another way (`Product Type`, `inStock`), whose values would be lost.

    Raises:
        InputError: naming the file, the table and each required column it lacks, or each column so written.
    """
    if refusal := missing_columns(columns, spec.name, "nothing was read"):
        raise InputError(f"{path}: {refusal}")
    present = [str(column) for column in columns]
    named = spec.row_model.model_fields
    # A column the table reads written another way (`Product Type`): the seller's values, certainly, not a team's
    # own column; ignored with a warning, a batch exited 0 with every campaign's product type `auto`. A column
    # only alike letter for letter (`product_typ`) may be a team's own and is still warned about.
    renamed = [
        (column, normalized(column)) for column in present if column not in named and normalized(column) in named
    ]
    if renamed:
        written = " and ".join(
            repr(column) + (f" (beside {name} itself)" if name in present else "") for column, name in renamed
        )
        names = " and ".join(name for _, name in renamed)
        are, some, their = ("are", "columns", "their") if len(renamed) > 1 else ("is", "column", "its")
        raise InputError(
            f"{path}: {written} {are} the {spec.name} table's {names} {some} written another way, and {their} values "
            "would be lost; nothing was read (column names are exact, lower case and without spaces)"
        )


def missing_columns(columns: Iterable[object], table: str, outcome: str) -> str | None:
    """The one line that refuses a table of `columns` for the columns `table` requires that it lacks: `no
    creator_id, followers columns, required in the creators table; <outcome>`, then what a misspelt header
    probably meant; None when it has them all."""
    present = [str(column) for column in columns]
    fields = TABLES[table].row_model.model_fields
    missing = [name for name, info in fields.items() if info.is_required() and name not in present]
    if not missing:
        return None
    plural = "s" if len(missing) > 1 else ""
    return f"no {', '.join(missing)} column{plural}, required in the {table} table; {outcome}" + _header_hint(
        present, missing
    )


def _check_repeated_columns(path: Path, columns: Iterable[str], spec: TableSpec) -> None:
    """Refuses a file whose header names a column the table reads (or one written another way, `Price`) more than
    once, spaces around a name not counting (`price` and `price `, `header_names`): which of them holds the
    values would be a guess. pandas read a second `price` as `price.1` and ignored it, and a blank first `budget`
    rejected every row. A team's own column named twice harms nothing: kept, as pandas names it (`notes`,
    `notes.1`).

    Raises:
        InputError: naming the file, the table, and each such column with how many there are (and how each is
            written, when they differ in spaces).
    """
    read = spec.row_model.model_fields
    written: dict[str, list[str]] = {}
    for column in map(str, columns):
        written.setdefault(column.strip(), []).append(column)
    repeated = [
        f"{len(forms)} {name!r} columns" + ("" if len(set(forms)) == 1 else f" ({_listed(list(map(repr, forms)))})")
        for name, forms in written.items()
        if len(forms) > 1 and normalized(name) in read
    ]
    if repeated:
        raise InputError(
            f"{path}: {_listed(repeated)}, where the {spec.name} table reads one: which holds its values is unclear; "
            "nothing was read"
        )


def _listed(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return f"{', '.join(items[:-1])} and {items[-1]}" if len(items) > 1 else items[0]


def header_names(columns: Iterable[object]) -> list[str]:
    """Column names (or a record's keys) as read: without the spaces around them (a spreadsheet's `product_type `
    lost every campaign's product type, ignored as a column the table does not read), as values and ids are read.
    Names that would then be one are left as written: in a file, one the table reads is refused
    (`_check_repeated_columns`), and a team's own are kept apart."""
    names = [str(column) for column in columns]
    counts = Counter(name.strip() for name in names)
    return [name.strip() if counts[name.strip()] == 1 else name for name in names]


def _csv_header(path: Path) -> list[str]:
    """A CSV file's header as it is written ([] when it cannot be read): pandas names a second `price` `price.1`,
    as a team may name a column of its own."""
    try:
        with _long_fields(), open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            return next(csv.reader(handle), [])
    except (OSError, csv.Error):
        return []  # the whole read says what is wrong


def _header_hint(present: list[str], missing: list[str]) -> str:
    """What a header that names the columns almost right probably got wrong, for the refusal's line."""
    if close := _meant_hint(present, missing):
        return close
    if len(present) == 1 and any(mark in present[0] for mark in ";\t"):
        return " (its header is one column: fields separated by ';' or tabs; expected commas)"
    if present and present[0].lstrip().startswith("#"):  # source notes above the header, as a dataset ships them
        return (
            f" (its first line, {shown_value(present[0].strip())}, is a comment: the header must be the first line; "
            "remove the lines above it)"
        )
    return ""


def _meant_hint(present: list[str], missing: list[str]) -> str:
    """` (found 'Commission_Rate' for commission_rate: ...)` for the names among `present` that probably stand for
    the `missing` ones the table requires; "" for none. A file's refusal and a row's reject say it alike."""
    close = [f"{column!r} for {name}" for column, name in likely_meant(present, missing).items()]
    return f" (found {', '.join(close)}: column names are exact, lower case and without spaces)" if close else ""


def misspelt_columns(columns: Iterable[object], table: str) -> dict[str, str]:
    """`{column: name}` for each of `columns` the table does not read that probably stands for a name it does read:
    an optional one, whether or not it is among `columns` too, or a required one that is (beside `marketplaces`, a
    `marketplace` key's values are lost as a misspelt optional column's are). A required column that is missing is
    refused instead, naming the column it probably is (`missing_columns`, `validate_frame`)."""
    named = TABLES[table].row_model.model_fields
    present = [str(column) for column in columns]
    unknown = [column for column in present if column not in named]
    meant = [name for name, info in named.items() if not info.is_required() or name in present]
    return likely_meant(unknown, meant, missing_only=False)


def unknown_column_note(where: str, kind: str, column: str, table: str, name: str) -> str:
    """The line that says a column (or a request's field, `kind`) was ignored and which one it probably is."""
    return f"{where}: {kind} {column!r} is not in the {table} table and was ignored; did you mean {name}?"


def unknown_column_notes(columns: Iterable[object], table: str, where: str, kind: str = "column") -> list[str]:
    """One line per column the table does not read that probably stands for one it does (`misspelt_columns`): such
    a column is ignored like any other the contract does not name, so its values are lost (a `product_typ` column
    leaves every campaign's product type at its default, or at what a `product_type` beside it says)."""
    return [
        unknown_column_note(where, kind, column, table, name)
        for column, name in misspelt_columns(columns, table).items()
    ]


def _warn_unknown_columns(path: Path, columns: Iterable[object], table: str) -> None:
    for note in unknown_column_notes(columns, table, str(path)):
        warnings.warn(note, UserWarning, stacklevel=3)


def _read_jsonl(path: Path, spec: TableSpec | None = None) -> tuple[pd.DataFrame, dict[int, _BadLine]]:
    """A JSON Lines file's frame, and why each line that is not a JSON object is not, by row position: such a line
    is a row of missing values in its place, rejected (it refused the whole file, naming a line of the record).

    So is a line repeating a key that `spec`'s table reads, in the object or in a map it holds (`{"price": 1,
    "price": 2}`): which value was meant is a guess, where json keeps the last. Its id is kept, when not the key
    repeated, so that a later row of that id is not matched in its place. A key the table does not read may
    repeat, as a team's own column in a CSV may; without `spec`, every repeat is read as json reads it.
    """
    # The standard json module, not pandas' reader: that one parses floats imprecisely (9.87654321e-05 came
    # back as 9.876543210000001e-05, 5e-324 as 0.0), silently changing prices and rates.
    decoder, repeats = repeat_noting_decoder()  # one decoder: json.loads made one per line
    records: list[dict] = []
    bad: dict[int, _BadLine] = {}
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            repeats.clear()
            try:
                record = decoder.decode(line)
                problem = None if isinstance(record, dict) else "is not a JSON object"
            except ValueError as exc:
                problem = f"is not JSON ({str(exc).split(':', 1)[0]})"
                if (after := _object_then_text(decoder, line)) is not None:
                    record, extra = after
                    problem = f"is not JSON: its object is followed by {shown_value(extra)}; expected one object a line"
                    if spec is not None:  # its id still counts as seen, as a line repeating a key's does
                        record = {name: record.get(name) for name in spec.id_columns if name in record}
                        bad[len(records)] = _BadLine(WHOLE_LINE, f"line {number} {problem}", _row_id(record, spec))
                        records.append(record | {n: _id_text(record[n]) for n in record})
                        continue
            if problem is not None:
                bad[len(records)] = _BadLine(WHOLE_LINE, f"line {number} {problem}")
                record = {}
            elif spec is not None:
                record, rejected = _read_record(record, repeats, spec, "this line")
                if rejected is not None:
                    bad[len(records)] = rejected
            if _ESCAPED_SURROGATE.search(line):  # a line without the escape has no surrogate to make
                record = _record_as_text(record)
            records.append(record)
    return pd.DataFrame.from_records(records), bad


def _object_then_text(decoder: json.JSONDecoder, line: str) -> tuple[dict, str] | None:
    """A line's JSON object and the text after it (`{...},`: a comma left from an array of objects), or None when the
    line does not start with a whole object: json said only "Extra data", and the row's id, readable, was `?`."""
    text = line.strip()
    try:
        found, end = decoder.raw_decode(text)
    except ValueError:
        return None
    return (found, text[end:].strip()) if isinstance(found, dict) and text[end:].strip() else None


def repeat_noting_decoder() -> tuple[json.JSONDecoder, list[tuple[dict, Counter]]]:
    """A JSON decoder that keeps, in the list it returns with it, each object that repeats a key (the object as json
    keeps it, the last value, and how many times each key appears); empty that list between documents. A whole
    number of more digits than Python converts is refused with a reason of its own (Python's ends "use
    sys.set_int_max_str_digits() to increase the limit", advice for a programmer, not for whoever sent it)."""
    repeats: list[tuple[dict, Counter]] = []

    def noting_repeats(pairs: list[tuple[str, object]]) -> dict:
        record = dict(pairs)
        if len(record) < len(pairs):
            repeats.append((record, Counter(key for key, _ in pairs)))
        return record

    return json.JSONDecoder(object_pairs_hook=noting_repeats, parse_int=_whole_number), repeats


def _whole_number(text: str) -> int:
    limit = sys.get_int_max_str_digits()
    digits = len(text.lstrip("-"))
    if limit and digits > limit:
        raise ValueError(f"got a number of {digits} digits; expected at most {limit}")
    return int(text)


def _read_record(
    record: dict, repeats: list[tuple[dict, Counter]], spec: TableSpec, place: str
) -> tuple[dict, _BadLine | None]:
    """A decoded JSON record as the table reads it (integer ids as their text), and why it is rejected if it repeats
    a key the table reads (`_repeated_key`; `place` names the record in the reason, "this line")."""
    line = None
    if repeats and (repeated := _repeated_key(record, repeats, spec, place)):
        # Its keys kept, as columns, but no value other than its id: a file of that line alone still has every
        # column it names (so is not refused as lacking one), and the row is rejected.
        kept = set(spec.id_columns) - {repeated[0]}
        record = {name: value if name in kept else None for name, value in record.items()}
        line = _BadLine(*repeated, _row_id(record, spec))
    # Before the frame, which reads a column of numbers and nulls as floats.
    record = record | {name: _id_text(record[name]) for name in spec.id_columns if name in record}
    return record, line


def _repeated_key(
    record: dict, repeats: list[tuple[dict, Counter]], spec: TableSpec, place: str = "this line"
) -> tuple[str, str] | None:
    """The column a record's repeated key makes ambiguous, and the reason: a key the table reads (or one written
    another way) repeated in the record's object, else one repeated in a map such a key holds; None for none.
    Objects of `repeats` that are neither are another record's, or deeper than any column reads."""
    read = spec.row_model.model_fields
    holders = {id(value): key for key, value in record.items() if isinstance(value, dict)}
    found = []
    for within, counts in repeats:
        column = None if within is record else holders.get(id(within))
        if within is not record and column is None:
            continue  # deeper than a map a column holds: no column reads it
        for key, count in counts.items():
            name = key if column is None else column
            if count < 2 or normalized(name) not in read:
                continue
            times = "twice" if count == 2 else f"{count} times"
            where = place if column is None else f"{place}'s {column}"
            found.append((column is not None, name, f"key {key!r} appears {times} in {where}; expected each key once"))
    return sorted(found, key=lambda repeat: repeat[0])[0][1:] if found else None


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


def _frame_cells(frame: pd.DataFrame, spec: TableSpec) -> dict[str, list]:
    """The record values of the model's columns that `frame` has, a list per column (None: no value)."""
    converters = {name: _as_list for name in spec.list_columns} | {name: _as_map for name in spec.map_columns}
    cells = {}
    for name in spec.row_model.model_fields:
        if name not in frame.columns:
            continue
        column, convert = frame[name], converters.get(name)
        if spec.columnar and convert is None and _flat(column):
            cells[name] = _flat_cells(column)
        else:
            cells[name] = _cells(column.astype(object).tolist(), convert)
        if name in spec.id_columns:
            cells[name] = [_id_text(value) for value in cells[name]]
    return cells


def _id_text(value: object) -> object:
    """An integer id as its decimal text (a database export's ids, or a JSON number), anything else as it is: a
    float id is left to the row model to refuse, which text it stands for being a guess."""
    return str(value) if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_) else value


def _flat(column: pd.Series | pd.DataFrame) -> bool:
    """True for a column of numpy numbers or booleans, or pandas' default strings: its only missing value is NaN,
    and its values are Python numbers, booleans or strings once converted to objects."""
    if not isinstance(column, pd.Series):  # a repeated column name
        return False
    dtype = column.dtype
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iufb"
    return isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan


def _flat_cells(column: pd.Series) -> list:
    """`_cells` of a `_flat` column, its missing values found at once."""
    values = column.to_numpy().tolist() if isinstance(column.dtype, np.dtype) else column.astype(object).tolist()
    for i in np.flatnonzero(column.isna().to_numpy()).tolist():
        values[i] = None
    return values


def _cells(values: list, convert: Callable[[object], object] | None) -> list:
    """One column's record values: converted, None when missing, numpy scalars as Python ones."""
    cells = []
    for value in values:
        value = convert(value) if convert else (None if is_missing(value) else value)
        if isinstance(value, np.generic):
            value = value.item()
        cells.append(value)
    return cells


def _record(cells: dict[str, list], i: int) -> dict[str, object]:
    """Row `i`'s record: its values, without the missing ones (the row model then applies its defaults)."""
    return {name: values[i] for name, values in cells.items() if values[i] is not None}


def shown_value(value: object) -> str:
    """A bad value as a reason shows it: its repr, cut to one short line."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def error_reason(error: dict, private: bool = False, position: int = 2) -> str:
    """A pydantic error as a reject's reason: "got 0; input should be ...", after where in the cell it is.

    Args:
        error: one of `ValidationError.errors()`.
        private: the cell is not echoed (bios, handles).
        position: how many leading parts of the error's `loc` name the cell rather than a place inside it
            (2 for a table's (row, column), 1 for a request model's field).
    """
    where = _place(error["loc"][position:])
    message = error["msg"]
    if error["type"] == "missing":
        return "required value is missing"
    if isinstance(error.get("input"), _Unpaired):
        shown = "" if private else f"got {shown_value(error['input'].text)}; "
        return f"{where + ': ' if where else ''}{shown}{UNPAIRED}"
    if private or error["type"] in {"funnel", "date_order", "share_sum", "asin", "marketplace"}:
        return f"{where + ': ' if where else ''}{message}"
    column = error["loc"][position - 1] if 0 < position <= len(error["loc"]) else None
    hint = (
        _percent_hint(error, column)
        or _separator_hint(error)
        or _currency_hint(error)
        or _several_words_hint(error, where)
        or _float_id_hint(error, column)
    )
    reason = f"got {shown_value(error['input'])}; {message[0].lower()}{message[1:]}{hint}"
    return f"{where + ': ' if where else ''}{reason}"


def _place(parts: tuple) -> str:
    """Where in a cell an error is: `[0]` for a list's first item, `['US']` for a map's value at US, and `key 'us'`
    for a map's key, which pydantic places at `('us', '[key]')` and read `['us']['[key]']`."""
    if len(parts) >= 2 and parts[-1] == "[key]":
        return _place(parts[:-2]) + ("" if len(parts) == 2 else " ") + f"key {parts[-2]!r}"
    return "".join(f"[{part!r}]" if isinstance(part, str) else f"[{part}]" for part in parts)


def _several_words_hint(error: dict, where: str) -> str:
    """For a list item of a vocabulary's words that holds several (`instagram, tiktok` in a CSV's platforms), how a
    CSV list is written: it was only "input should be 'instagram', 'youtube', ..." (codes say it in their own
    refusals, `features.rows.several_in_one`)."""
    several = several_in_one(error["input"]) if where and error["type"] == "literal_error" else ""
    return f" ({several})" if several else ""


def _float_id_hint(error: dict, column: object) -> str:
    """For an id given as a whole float (`1031.0`), why it is refused and how to give it: pandas stores a numeric id
    column with one missing value as floats (and so writes it to Parquet and JSON Lines), and every row was then
    refused as "got 1031.0; input should be a valid string", without a word on why an id of 1031 was not one."""
    given = error["input"]
    if error["type"] != "string_type" or not isinstance(given, float) or not given.is_integer():
        return ""
    if column not in _id_columns():
        return ""
    return (
        " (an id stored as a float; ids are text or whole numbers: pandas stores a whole-number column that has a "
        "missing value as floats, so store the ids as text)"
    )


@functools.cache
def _id_columns() -> frozenset[str]:
    """Every table's id columns."""
    return frozenset(name for spec in TABLES.values() for name in spec.id_columns)


def _percent_hint(error: dict, column: object = None) -> str:
    """For a rate or share (at most 1) given between 1 and 100, or given as a percentage (`15%`), the fraction it
    probably means: a commission of 15% written `15` was only "should be less than or equal to 1", and one written
    `15%` only "unable to parse string as a number". Neither is read as 0.15: which was meant is the seller's to
    say. A percentage in a column that is not a share (a price of `15%`) gets no such advice."""
    given, written = error["input"], None
    if (
        isinstance(given, str)
        and error["type"] == "float_parsing"
        and column in _share_columns()
        and (written := _PERCENTAGE.fullmatch(given))
    ):
        given = written[1]
    elif error["type"] != "less_than_equal" or error.get("ctx", {}).get("le") != 1 or isinstance(given, bool):
        return ""
    try:
        given = float(given)
    except (TypeError, ValueError):
        return ""
    fits = 0 <= given <= 100 if written else 1 < given <= 100  # 0.5 is a share, and 0.5% one of 0.005
    return f" (written as a percentage? write {given / 100:g} for {given:g}%)" if fits else ""


_PERCENTAGE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*%\s*")


def _separator_hint(error: dict) -> str:
    """For a number written with commas (`1,234`, `1,299.00`, `12,99`), what it is without them: it was only
    "unable to parse string as a number". It is not read either way: a comma groups thousands in some locales and
    is the decimal separator in others, so `1,234` may be 1234 or 1.234 (but a count 1234), the seller's to say."""
    given = error["input"]
    if not isinstance(given, str) or error["type"] not in {"float_parsing", "int_parsing"}:
        return ""
    written = given.strip()
    if grouped := _GROUPED.fullmatch(written):
        plain = written.replace(",", "")
        if grouped[2] or grouped[1].count(",") > 1 or error["type"] == "int_parsing":  # a count has no fraction
            return f" (a thousands separator? write {plain} for {written}: numbers are written without one)"
        decimal = written.replace(",", ".")
        return f" (a thousands separator or a decimal comma? write {plain} or {decimal} for {written})"
    if _DECIMAL_COMMA.fullmatch(written):
        return f" (a decimal comma? write {written.replace(',', '.')} for {written}: numbers take a decimal point)"
    return ""


def _currency_hint(error: dict) -> str:
    """For an amount written with its currency (`$39.99`, `€12,99`, `12.99 USD`), as a seller's listing or
    spreadsheet shows a price: it was only "unable to parse string as a number". The amount without the currency
    is given when it is a plain number; it is not read as one, the currency being the seller's to check."""
    given = error["input"]
    if not isinstance(given, str) or error["type"] != "float_parsing":
        return ""
    written = given.strip()
    amount = _WITH_CURRENCY.fullmatch(written)
    if amount is None:
        return ""
    number = amount["number"] or amount["before"]
    if _PLAIN_NUMBER.fullmatch(number):
        return f" (a currency sign or code? write {number} for {written}: amounts are plain numbers)"
    return " (a currency sign or code? amounts are plain numbers, such as 1299.00)"


# A number with a currency sign or an ISO code before or after it: `$39.99`, `€ 12,99`, `12.99 USD`, `USD 1,500`;
# and `Rs. 999`, how Indian sheets write the rupee.
_WITH_CURRENCY = re.compile(
    r"(?:[$€£¥₹]|Rs\.?|[A-Z]{3}\s)\s*(?P<number>[0-9][0-9.,]*)|(?P<before>[0-9][0-9.,]*)\s*(?:[$€£¥₹]|\s[A-Z]{3})"
)
_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


# `1,234`, `-12,345,678.90`: commas every three digits, then perhaps a fraction; `12,99`: a comma for a point.
_GROUPED = re.compile(r"[+-]?([0-9]{1,3}(?:,[0-9]{3})+)(\.[0-9]+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]*,[0-9]+")


@functools.cache
def _share_columns() -> frozenset[str]:
    """The tables' columns whose values (or, for a map, each value) are shares of at most 1, as the row models'
    JSON schemas state them."""
    found = set()
    for spec in TABLES.values():
        for name, schema in spec.row_model.model_json_schema()["properties"].items():
            parts = [schema, *schema.get("anyOf", [])]
            parts += [part.get("additionalProperties") or {} for part in parts]
            if any(1 in (part.get("maximum"), part.get("exclusiveMaximum")) for part in parts):
                found.add(name)
    return frozenset(found)


def records_frame(records: list[Mapping[str, object]]) -> pd.DataFrame:
    """Mappings as a frame of one row each, their keys read as a file's header is (`header_names`, record by record:
    a service's `"product_type "` was ignored where the command line read the column): `DataFrame.from_records`
    makes no row of an empty mapping, which was then never validated and vanished instead of being rejected for its
    missing columns. A text holding half of a character is `_record_as_text`'s."""
    return pd.DataFrame(
        [_record_as_text(dict(zip(header_names(record), record.values(), strict=True))) for record in records],
        index=pd.RangeIndex(len(records)),
    )


# Half of a UTF-16 surrogate pair: JSON may spell one (a tool that cut a text at a length in UTF-16 units, inside
# an emoji, writes "\ud83d"), Python keeps it in a str, and no UTF-8 writer, Arrow's included, takes it.
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
UNPAIRED = "holds half of a character (an unpaired UTF-16 surrogate), which is not text: was it cut in two?"


class _Unpaired:
    """A text that holds an unpaired surrogate, in place of it: not a str, so a field that reads text refuses it
    (naming the row and column) rather than the frame's Arrow strings failing the whole table on it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)

    def __str__(self) -> str:
        return self.text.encode("utf-8", "backslashreplace").decode("utf-8")


def _record_as_text(record: Mapping[str, object]) -> dict[str, object]:
    """A record whose texts are `_as_text`'s; a key holding an unpaired surrogate names a column no table reads,
    and gets U+FFFD in its place, so that a note can name it."""
    return {
        (_SURROGATE.sub("\ufffd", name) if isinstance(name, str) else name): _as_text(value)
        for name, value in record.items()
    }


def _as_text(value: object) -> object:
    """`value` with each text that holds an unpaired surrogate, in lists and maps too, as an `_Unpaired`."""
    if isinstance(value, str):
        return _Unpaired(value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    if isinstance(value, dict):
        return {_as_text(name): _as_text(item) for name, item in value.items()}
    return value


def _row_id(record: dict[str, object], spec: TableSpec) -> str:
    # `_as_text`: an id holding half of a character is shown escaped, as a reject's line must be written.
    return "/".join(str(_as_text(record[column])) for column in spec.id_columns if record.get(column) is not None)


def _valid_values(
    cells: dict[str, list], n: int, start: int, spec: TableSpec, rejects: dict[tuple[int, str], Reject]
) -> tuple[list[int], dict[str, list]]:
    """The valid rows of one block of `n` rows (frame positions from `start`): their positions and typed values,
    a list per model field; adds the others' rejects, one per (row, column).

    A columnar table's rows are validated a column at a time first; only the rows that fail there go through the
    row model, which names their rejects (and would keep any the columns got wrong).
    """
    names = list(spec.row_model.model_fields)
    checked = validate_columns(spec.row_model, cells, n) if spec.columnar else None
    valid, typed = checked or (np.zeros(n, dtype=bool), {name: [None] * n for name in names})
    slow = np.flatnonzero(~valid).tolist()
    for i, row in _valid_records([_record(cells, i) for i in slow], slow, start, spec, rejects):
        valid[i] = True
        values = row.__dict__
        for name in names:
            typed[name][i] = values[name]
    kept = np.flatnonzero(valid).tolist()
    if len(kept) < n:
        typed = {name: [values[i] for i in kept] for name, values in typed.items()}
    return [start + i for i in kept], typed


def _valid_records(
    records: list[dict[str, object]],
    rows: list[int],
    start: int,
    spec: TableSpec,
    rejects: dict[tuple[int, str], Reject],
) -> Iterator[tuple[int, BaseModel]]:
    """The valid ones of `records` (rows `rows` of the block at `start`) as (row, row model); adds the others'
    rejects, one per (row, column)."""
    adapter = _rows_adapter(spec.row_model)
    try:
        return zip(rows, adapter.validate_python(records), strict=True)
    except ValidationError as exc:
        bad = set()
        for error in exc.errors(include_url=False):
            index, column = error["loc"][0], str(error["loc"][1]) if len(error["loc"]) > 1 else WHOLE_LINE
            bad.add(index)
            position = start + rows[index]
            if (position, column) in rejects:
                continue
            rejects[position, column] = Reject(
                spec.name,
                position + 1,
                _row_id(records[index], spec),
                column,
                error_reason(error, column in spec.private_columns),
            )
        kept = [i for i in range(len(records)) if i not in bad]
        return zip([rows[i] for i in kept], adapter.validate_python([records[i] for i in kept]), strict=True)


@functools.cache
def _rows_adapter(row_model: type[BaseModel]) -> TypeAdapter:
    """The validator of a list of rows, built once per row model: building it took about half a millisecond, as
    long as validating a service request's one campaign."""
    return TypeAdapter(list[row_model])


def _share_strings(cells: list, start: int, shared: dict[str, str]) -> None:
    """Makes the strings of list and map cells from `start` on one object per distinct text: a million
    creators name a few thousand tags, platforms and marketplaces, and each copy cost about 50 bytes."""
    share = shared.setdefault
    for i in range(start, len(cells)):
        cell = cells[i]
        if isinstance(cell, list):
            cells[i] = [share(item, item) if isinstance(item, str) else item for item in cell]
        elif isinstance(cell, dict):
            cells[i] = {share(key, key) if isinstance(key, str) else key: v for key, v in cell.items()}


def validate_frame(frame: pd.DataFrame, table: str) -> Table:
    """Validates every row of a contract table; returns the valid rows, typed, and a reject per bad row.

    Unknown extra columns are kept. Repeated ids after the first occurrence are rejected. Rows are numbered
    by position in `frame`: a `row` column it already has (as a validated frame does) is replaced.
    """
    frame = _without_row(frame)
    spec = TABLES[table]
    # At least one block, so that an empty table still has its columns (extra ones are kept).
    blocks = (
        _Block(list(block.columns), len(block), _frame_cells(block, spec))
        for block in (
            frame.iloc[start : start + VALIDATION_BLOCK] for start in range(0, max(len(frame), 1), VALIDATION_BLOCK)
        )
    )
    with _collector_paused(len(frame)):
        validated = _validate_blocks(blocks, table, lambda kept, extra: frame.iloc[kept][extra])
    return _with_meant_columns(validated, frame)


_MISSING = "required value is missing"


def _with_meant_columns(validated: Table, frame: pd.DataFrame) -> Table:
    """`validated` with each reject of a missing required value that the row holds under another name
    (`Commission_Rate`, `startDate`) saying so, as a file that lacks the column is refused (`missing_columns`):
    "required value is missing" alone left a campaign tool to guess why a field it sent was not read."""
    named = TABLES[validated.name].row_model.model_fields
    # A column named twice (a team's own, kept as written) is left out: frame[name] would be two columns.
    counts = Counter(frame.columns)
    unknown = [column for column, n in counts.items() if n == 1 and str(column) not in named and column != "row"]
    if not unknown or not any(reject.reason == _MISSING for reject in validated.rejects):
        return validated
    extra = frame[unknown]
    rejects = []
    for reject in validated.rejects:
        if reject.reason == _MISSING:
            cells = extra.iloc[reject.row - 1].tolist()
            present = [str(column) for column, cell in zip(unknown, cells, strict=True) if not is_missing(cell)]
            reject = replace(reject, reason=_MISSING + _meant_hint(present, [reject.column]))
        rejects.append(reject)
    return Table(validated.name, validated.frame, rejects, _VALIDATED)


def validate_records(
    records: list[dict], table: str, repeats: list[tuple[dict, Counter]], place: str = "this record"
) -> Table:
    """Validates records decoded from JSON by `repeat_noting_decoder`, with the `repeats` it noted, as `read_table`
    validates a JSON Lines file's lines: a record that repeats a key the table reads is rejected for that alone,
    naming its row and the key "in `place`" (the service's "this campaign")."""
    spec = TABLES[table]
    read = [_read_record(record, repeats, spec, place) for record in records]
    validated = validate_frame(records_frame([record for record, _ in read]), table)
    return _with_line_rejects(validated, {i: line for i, (_, line) in enumerate(read) if line is not None}, spec)


@contextlib.contextmanager
def _collector_paused(rows: int) -> Iterator[None]:
    """Python's cycle collector paused while a table of more than one block is validated, then restored.

    Each block's cells, records and validated values are millions of short-lived lists and dicts, after which
    the collector scanned every live object of the process: 113 full collections took 19.5 of the 50 seconds
    of a million creators. Validation makes no reference cycles of its own; any other code makes meanwhile
    waits for the next collection.
    """
    pause = rows > VALIDATION_BLOCK and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


@dataclass(frozen=True, slots=True)
class _Block:
    """Consecutive rows of a table: its columns (less `row`), its length, and its record values by model field."""

    columns: list[str]
    length: int
    cells: dict[str, list]


def _validate_blocks(
    blocks: Iterable[_Block], table: str, extra_columns: Callable[[list[int], list[str]], pd.DataFrame]
) -> Table:
    """`validate_frame` over a table given as consecutive blocks of rows (the same columns in each);
    `extra_columns(kept, names)` gives the named columns of the kept rows (positions in the table)."""
    spec = TABLES[table]
    names = list(spec.row_model.model_fields)
    columns: list[str] = []
    # The valid rows' typed values, a pickle per block and column: a block's records, row models and cells live
    # for that block only, and the frame's own objects are made at the end (see _valid_frame).
    packed: dict[str, list[bytes]] = {name: [] for name in names}
    rejects: dict[tuple[int, str], Reject] = {}
    kept: list[int] = []
    first_seen: dict[tuple, int] = {}
    rejected_first: set[int] = set()
    start = 0
    for block in blocks:
        columns = [column for column in block.columns if column != "row"]
        positions, values = _valid_values(block.cells, block.length, start, spec, rejects)
        unique = list(range(len(positions)))
        if spec.unique:
            # In row order, a rejected row's id is taken too: a later row with the same id is then not the campaign
            # or creator the rejects file names (it was matched as that id while the rejects file listed it as
            # refused). A rejected row that repeats an earlier id is told so beside its other reasons, so that
            # fixing those does not bring up a new one on the next run.
            valid_at = {index: k for k, index in enumerate(positions)}
            ids = [values[column] for column in spec.id_columns]
            unique = []
            for index in range(start, start + block.length):
                k = valid_at.get(index)
                if k is None:
                    key = _raw_key(block.cells, spec.id_columns, index - start)
                    if key is None:
                        continue
                else:
                    key = tuple(column[k] for column in ids)
                seen = first_seen.setdefault(key, index)
                if seen == index:
                    if k is None:
                        rejected_first.add(index)
                    else:
                        unique.append(k)
                    continue
                which = ", which was rejected" if seen in rejected_first else ""
                # A row whose id is itself invalid keeps that reason for the column.
                rejects.setdefault(
                    (index, spec.id_columns[-1]),
                    Reject(
                        table,
                        index + 1,
                        "/".join(key),
                        spec.id_columns[-1],
                        f"duplicate id; first seen at row {seen + 1}{which}",
                    ),
                )
        kept.extend(positions[k] for k in unique)
        for name in names:
            column = values.pop(name)
            if len(unique) < len(positions):
                column = [column[k] for k in unique]
            packed[name].append(pickle.dumps(column, protocol=pickle.HIGHEST_PROTOCOL))
            del column
        start += block.length
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


def _raw_key(cells: dict[str, list], id_columns: tuple[str, ...], offset: int) -> tuple | None:
    """A rejected row's id as the valid rows' ids read (text, trimmed), or None where a part is missing."""
    key = []
    for column in id_columns:
        value = cells[column][offset] if column in cells else None
        if is_missing(value):
            return None
        text = str(value).strip()
        if not text:
            return None
        key.append(text)
    return tuple(key)


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
    values: list = []
    for blob in blobs:
        values.extend(pickle.loads(blob))
    return values


def read_table(path: str | Path, table: str) -> Table:
    """Reads and validates one contract table from a .parquet, .csv or .jsonl file.

    A Parquet file is converted to pandas a block of rows at a time, as `read_frame` would have converted it
    whole: at a million creators, a frame of every list and map cell as Python objects was over a gigabyte.
    """
    path = Path(path)
    spec = TABLES[table]
    kind = READERS.get(path.suffix.lower())
    if kind != "parquet" or not path.is_file():
        if kind == "csv":
            _check_repeated_columns(path, _csv_header(path), spec)
        frame, wide = _read_file(path, spec)
        if kind == "jsonl":  # keys that differ only in spaces around them
            _check_repeated_columns(path, frame.columns, spec)
        if len(frame.columns) or len(frame):  # an empty JSON Lines file names no columns, and has no rows to lose
            _check_required_columns(path, frame.columns, spec)
            _warn_unknown_columns(path, frame.columns, table)
        validated = validate_frame(frame, table)
        if kind == "csv":
            validated = _without_blank_rows(validated, frame, wide, path)
            _warn_comma_lists(validated, spec, path)
        return _with_line_rejects(validated, wide, spec)
    try:
        # Before the read, which fails on a repeated column as "Multiple matches for FieldRef.Name(price)".
        _check_repeated_columns(path, pq.read_schema(path).names, spec)
        arrow = _read_parquet(path)
    except InputError:
        raise
    except Exception as exc:
        read_frame(path)  # raises the InputError a whole read gives
        raise InputError(f"{path}: cannot read as parquet: {exc!r}") from exc
    arrow = _ids_as_text(arrow.rename_columns(header_names(arrow.column_names)), spec)
    _check_required_columns(path, arrow.column_names, spec)
    _warn_unknown_columns(path, arrow.column_names, table)
    with _collector_paused(arrow.num_rows):
        validated = _validate_blocks(
            _arrow_blocks(arrow, TABLES[table]), table, lambda kept, extra: read_frame(path)[extra].iloc[kept]
        )
    del arrow
    # Arrow's allocator keeps freed pages for reuse: the decoded file (about 0.5 GB for a million creators)
    # would stay resident for the whole run.
    pa.default_memory_pool().release_unused()
    return validated


def _ids_as_text(arrow: pa.Table, spec: TableSpec) -> pa.Table:
    """`arrow` with its integer id columns as their decimal text: a database export writes ids as int64, and each
    row was rejected ("got 100; input should be a valid string"). An id of another type is left to the row model
    (a float one is refused, its text being a guess)."""
    for name in spec.id_columns:
        if arrow.column_names.count(name) == 1 and pa.types.is_integer(arrow.schema.field(name).type):
            at = arrow.column_names.index(name)
            arrow = arrow.set_column(at, name, pc.cast(arrow.column(name), pa.string()))
    return arrow


def _arrow_blocks(arrow: pa.Table, spec: TableSpec) -> Iterator[_Block]:
    """The table in blocks of VALIDATION_BLOCK rows, each with the cells the whole table's pandas conversion has.

    Only the presence of nulls makes a column's conversion differ by rows: integers with nulls become float64
    and booleans with nulls objects, so a block without one is given that column's whole-table dtype. A
    columnar table's lists of strings and maps of strings to doubles are read from Arrow as Python lists and
    (key, value) pairs, as pandas gives them, without pandas' array per cell.
    """
    nulls = {name: arrow.column(name).null_count > 0 for name in arrow.column_names}
    empty = arrow.slice(0, 0).to_pandas()
    columns = list(empty.columns)
    direct = [name for name in (*spec.list_columns, *spec.map_columns) if spec.columnar and _plain(arrow, empty, name)]
    converters = {name: _as_list for name in spec.list_columns} | {name: _as_map for name in spec.map_columns}
    for start in range(0, max(arrow.num_rows, 1), VALIDATION_BLOCK):
        part = arrow.slice(start, VALIDATION_BLOCK)
        block = part.drop_columns(direct).to_pandas()
        for name in block.columns:
            dtype = block[name].dtype
            if nulls.get(name) and isinstance(dtype, np.dtype) and dtype.kind in "iub":
                block[name] = block[name].astype(float if dtype.kind in "iu" else object)
        cells = _frame_cells(block, spec)
        del block
        for name in direct:
            cells[name] = _direct_cells(part.column(name), converters[name])
        yield _Block(columns, part.num_rows, cells)


def _direct_cells(column: pa.ChunkedArray, convert: Callable[[object], object]) -> list:
    """`_cells` of a `_plain` list or map column, from Arrow: what its pandas cells convert to.

    A list cell comes as a Python list, which `_as_list` keeps as it is. A map cell comes as (key, value) pairs,
    which `_as_map` turns into a dict of them, less the missing values: a cell without a missing value is
    simply `dict(pairs)`, and the others are left to `_as_map`. Each distinct text is one Python string, as
    pandas' conversion makes it: a string per item made the block's pickles and the heap larger.
    """
    cells: list = []
    for chunk in column.chunks:
        offsets = chunk.offsets.to_numpy()
        base = int(offsets[0])
        texts = _texts((chunk.keys if convert is _as_map else chunk.values).slice(base, int(offsets[-1]) - base))
        starts, ends = (offsets[:-1] - base).tolist(), (offsets[1:] - base).tolist()
        spans = zip(starts, ends, chunk.is_valid().to_pylist(), strict=True)
        if convert is _as_list:
            cells.extend(texts[a:b] if present else None for a, b, present in spans)
            continue
        values = chunk.items.slice(base, int(offsets[-1]) - base)
        missing = np.flatnonzero(pc.is_null(values, nan_is_null=True).to_numpy(zero_copy_only=False))
        lacking = set((np.searchsorted(offsets - base, missing, side="right") - 1).tolist())  # rows with one
        shares = values.to_pylist()
        cells.extend(
            None
            if not present
            else convert(list(zip(texts[a:b], shares[a:b], strict=True)))
            if i in lacking
            else dict(zip(texts[a:b], shares[a:b], strict=True))
            for i, (a, b, present) in enumerate(spans)
        )
    return cells


def _texts(array: pa.Array) -> list:
    """The Python strings of a string array (None for nulls), one object per distinct text."""
    encoded = pc.dictionary_encode(array)
    lookup = [*encoded.dictionary.to_pylist(), None]
    return list(map(lookup.__getitem__, pc.fill_null(encoded.indices, len(lookup) - 1).to_numpy().tolist()))


def _plain(arrow: pa.Table, empty: pd.DataFrame, name: str) -> bool:
    """True if column `name` is a list of strings or a map of strings to doubles that pandas converts to plain
    object cells (not an extension type named by the file's pandas metadata): its Python values are then
    the pandas cells' own, and Arrow can give them directly."""
    if arrow.column_names.count(name) != 1 or list(empty.columns).count(name) != 1 or empty[name].dtype != object:
        return False
    kind = arrow.schema.field(name).type
    strings = (pa.string(), pa.large_string())
    if pa.types.is_map(kind):
        return kind.key_type in strings and kind.item_type == pa.float64()
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and kind.value_type in strings


def valid_rows(data: Table | pd.DataFrame, table: str) -> Table:
    """A contract table's valid rows and rejects: a Table the validators made is taken as it is, once;
    anything else (a DataFrame, whatever its columns, or a Table built by hand) is validated now, with a warning
    for each column that looks like a misspelt optional one (`unknown_column_notes`).

    Raises:
        ValueError: `data` is a validated table of another kind.
    """
    checked, notes = checked_rows(data, table)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return checked


def checked_rows(data: Table | pd.DataFrame, table: str) -> tuple[Table, list[str]]:
    """`valid_rows`, its notes on misspelt columns returned rather than warned (none for a validated Table): for a
    caller that hands them on as data (`Matcher.match_many`'s `notes`).

    Raises:
        ValueError: `data` is a validated table of another kind.
    """
    if isinstance(data, Table) and data.validated:
        if data.name != table:
            raise ValueError(f"Got the {data.name} table; expected the {table} table")
        return data, []
    frame = data.frame if isinstance(data, Table) else data
    # `frame.set_index("campaign_id")`, pandas' way of keying a table, lost the ids: every row was rejected as
    # "campaign_id: required value is missing". A named index level the table reads, and no column holds, is it.
    fields = TABLES[table].row_model.model_fields
    indexed = [name for name in frame.index.names if name in fields and name not in frame.columns]
    if indexed:
        frame = frame.reset_index(level=indexed)
    if (names := header_names(frame.columns)) != list(frame.columns):
        frame = frame.set_axis(names, axis=1)  # as a file's header is read
    return validate_frame(frame, table), unknown_column_notes(frame.columns, table, f"the {table} given")


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


def no_valid_rows(table: Table, path: str | Path) -> str | None:
    """Why a table read from `path` leaves a command nothing to work on, as the start of one line: it has no row,
    or every row was rejected; None when it has a valid row."""
    if len(table.frame):
        return None
    rejected = len({reject.row for reject in table.rejects})  # a row with several bad columns has a reject for each
    held = f"{rejected} row{'s' if rejected != 1 else ''}, all rejected" if rejected else "it holds none"
    return f"no valid {table.name.removesuffix('s')} rows in {path}: {held}"


def require_valid_rows(
    table: Table,
    path: str | Path,
    outcome: str,
    rejects: list[Reject] | None = None,
    out: str | Path | None = None,
) -> None:
    """Refuses a run whose `table` (read from `path`) has no valid row, the one way every command does.

    Nothing can be done with no row, so the run's outputs (yesterday's, say) are left as they are rather than
    replaced by nothing; its rejected rows are still reported as any run's: written to the rejects file beside
    `out` (when the run has one; `settle_rejects`) and carried by the error, which the command line reports as
    for any run before the refusal's one line, `<why>; <outcome>` (exit status 2).

    Args:
        table: the table read.
        path: the file it was read from, as the refusal names it.
        outcome: what the refusal says of the run: `"nothing to serve"`, `"no index was written, and idx was left
            as it was"`.
        rejects: every reject of the run so far (default: the table's own).
        out: the output whose rejects file the rejects are written to; None for a run that writes none.

    Raises:
        NoValidRows: the table has no valid row.
        OutputRefused: the rejects could not be written beside `out` (`settle_rejects`).
    """
    if empty := no_valid_rows(table, path):
        rejects = table.rejects if rejects is None else rejects
        rejects_file = settle_rejects(rejects, out) if out is not None and rejects else None
        raise NoValidRows(f"{empty}; {outcome}", rejects, rejects_file)


def _named(out: str | Path) -> Path:
    """`out`, or for `.` and `..` (an index written into the working directory) the folder it names, absolute.

    Raises:
        OutputRefused: `out` is a file system root, which names no file to write beside.
    """
    out = Path(out)
    return check_output_path(os.path.abspath(out)) if out.name in ("", "..") else out


def rejects_path(out: str | Path) -> Path:
    """The contract's rejects file beside an output: `<out stem>.rejects.csv`."""
    out = _named(out)
    return out.with_name(f"{out.stem}{REJECTS_SUFFIX}")


def _header(path: Path) -> tuple[str, ...] | None:
    """A file's first line split at commas; None when it cannot be read as UTF-8 text (or is a directory)."""
    try:
        with open(path, "rb") as handle:  # the first line alone is decoded, not the text buffered after it
            return tuple(handle.readline().decode("utf-8").rstrip("\r\n").split(","))
    except (OSError, UnicodeDecodeError):
        return None


def check_own_table(path: str | Path, columns: Iterable[str], what: str) -> None:
    """Refuses to replace a file at an output's path unless it holds a table of this output's kind: absent, empty,
    or with only columns of `columns` (all of them, or an earlier release's). `--summaries-out keep.csv` replaced a
    seller's own spreadsheet of that name without a word, where the rejects file and the run record were kept.

    Raises:
        OutputRefused: one line naming the file, the columns it holds and what to do; nothing is written.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return  # nothing there, or nothing to lose; a directory is refused by the caller's own check
    found = _table_columns(path)
    if found and set(found) <= set(columns):
        return
    held = "cannot be read as a table" if found is None else f"holds the columns {shown_value(list(found))}"
    raise OutputRefused(
        f"refusing to replace {path}: it is not a {what} table of creator-match (it {held}); move it, or write the "
        f"{what} elsewhere; nothing was written"
    )


def _table_columns(path: Path) -> tuple[str, ...] | None:
    """The column names of a Parquet, CSV or JSON Lines file (its first object's keys), by its suffix; None when it
    cannot be read as one."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _header(path)  # as a rejects file's: the project writes no name with a comma or a quote
    try:
        if suffix == ".parquet":
            return tuple(pq.read_schema(path).names)
        with open(path, "rb") as handle:  # the first line alone: a table of millions of rows is not read
            record = json.loads(handle.readline().decode("utf-8"))
        return tuple(record) if isinstance(record, dict) else None
    except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException):
        return None


def is_rejects_file(path: Path) -> bool:
    """Whether `path` is a rejects file this project wrote (its header row), not a user's file of the same name."""
    return _header(path) in (REJECTS_COLUMNS, _RECORDLESS_REJECTS_COLUMNS)


@contextlib.contextmanager
def _long_fields() -> Iterator[None]:
    """Lets the csv module read fields as long as the rejects file may hold (a rejected id or value of any length;
    its default limit is 128 KiB), for the block."""
    before = csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def recorded_rows(path: Path) -> list[dict[str, str]] | None:
    """The rows of the project's rejects file at `path`, each naming its output; None when the file records no
    output (written before the `output` column) or is not a rejects file at all.

    Raises:
        OutputRefused: the file starts as a rejects file but cannot be read back: rewriting it would lose the
            other outputs' rows it holds, so it is left as it is.
    """
    if _header(path) != REJECTS_COLUMNS:
        return None
    try:
        with _long_fields(), open(path, encoding="utf-8", newline="") as handle:
            return [{column: row.get(column) or "" for column in REJECTS_COLUMNS} for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise OutputRefused(
            f"{path} cannot be read back as a rejects file ({exc}); move it, or write the output elsewhere"
        ) from None


def check_rejects_path(out: str | Path) -> Path:
    """The rejects file beside `out`, if the tool may write it: absent, or an earlier rejects file of the project
    (of `out`, of another output with the same stem, whose rows are kept, or of no recorded output).

    Raises:
        OutputRefused: something else is at that path: a user's file of the same name, or a directory.
    """
    target = rejects_path(out)
    if not target.exists() and not target.is_symlink():
        return target
    if target.is_dir():
        why = "it is a directory"
    elif is_rejects_file(target):
        return target
    else:
        why = f"it is not a rejects file of creator-match (its first line is not {','.join(REJECTS_COLUMNS)})"
    raise OutputRefused(f"refusing to replace {target}: {why}; move it, or write the output elsewhere")


def _write_rows(target: Path, rows: Iterable[Mapping[str, object]], out: str | Path) -> None:
    """Writes a rejects file of `rows` at `target` atomically, after checking the path is still the tool's."""
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REJECTS_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
        check_rejects_path(out)  # a file the user put there while this run worked is not replaced either


def write_rejects(rejects: list[Reject], out: str | Path) -> Path:
    """Writes the rejects file beside `out` (atomically), each row naming `out` as its output, and returns its path.

    `m.parquet` and `m.csv` share `m.rejects.csv`: the rows an earlier file holds for another output are kept (one
    bad row of one output must not stop, nor erase, the other's run), and only `out`'s are replaced. A file that
    records no output (written before the `output` column) is replaced whole, as it was before. The caller holds
    the rejects file's `output_lock` (`settle_rejects` takes it), so no other run rewrites it in between.

    Raises:
        OutputRefused: a file other than an earlier rejects file of the project is at that path (it is left as is).
    """
    target = check_rejects_path(out)
    output = _named(out).name
    others = [row for row in recorded_rows(target) or [] if row["output"] != output]
    own = [{**asdict(reject), "output": output} for reject in rejects]
    # By output, each output's rows in their own order: the file's bytes do not depend on which run came last, and
    # an output's rows, the only ones its run record digests (matcher.run_record), stay as that run wrote them.
    _write_rows(target, sorted([*others, *own], key=lambda row: row["output"]), out)
    return target


def _remove_own_rejects(target: Path, out: str | Path) -> None:
    """Drops `out`'s rows from the rejects file at `target`, removing the file once no row remains (or when it
    records no output: the rule before outputs were recorded). The caller holds its lock."""
    if not is_rejects_file(target):
        return
    rows = recorded_rows(target)
    output = _named(out).name
    others = None if rows is None else [row for row in rows if row["output"] != output]
    if others is None or not others:
        target.unlink()
    elif len(others) < len(rows):
        _write_rows(target, others, out)
    remove_stale_temporaries(target)


def settle_rejects(rejects: list[Reject], out: str | Path) -> Path | None:
    """The rejects of a run that wrote `out`: written beside it, or, when there are none, `out`'s earlier rejects
    removed from the file there (a clean rerun must not leave old rejects beside a fresh output); the path
    written, if any. A `rejects_turn` around no output's writes.

    Raises:
        OutputRefused: as `rejects_turn`.
    """
    with rejects_turn(rejects, out) as written:
        pass
    return written


def _changes_rejects(rejects: list[Reject], out: str | Path) -> bool:
    """Whether settling `rejects` for `out` writes or changes the rejects file: there are rejects, or the file holds
    rows of `out` (or records no output, or cannot be read, so may)."""
    target = rejects_path(out)
    if rejects:
        return True
    if not is_rejects_file(target):
        return False
    try:
        rows = recorded_rows(target)
    except OutputRefused:
        return True  # refused under the lock, before the run's outputs are written
    return not rows or _named(out).name in {row["output"] for row in rows}


def _clear_killed_write(target: Path) -> None:
    """Removes what a rejects write killed midway left beside `target`, when no live run is writing it (a run
    that changes nothing in the file would otherwise leave it there for good); makes no lock file for it."""
    if not stale_temporaries(target):
        return
    with contextlib.suppress(OutputLocked), output_lock(target):
        remove_stale_temporaries(target)


@contextlib.contextmanager
def rejects_turn(rejects: list[Reject], out: str | Path) -> Iterator[Path | None]:
    """A run's turn at the rejects file beside `out`: the block writes the run's outputs, then the rejects are
    settled (`settle_rejects`: written, or `out`'s earlier rows dropped). Yields the path they are written to, if
    any.

    The file's `output_lock` is held for the block and the settling when they change the file, taken before the
    outputs are replaced, so that a refusal leaves every output as it was; and only then, not during the run's
    work, so that another output sharing the file (`m.csv` beside `m.parquet`) never waits on this run's work, nor
    this run on its: each waits up to REJECTS_LOCK_WAIT for the other's writes. Another output's rows are kept;
    the file is removed only once no row remains.

    Raises:
        OutputRefused, before the block runs: a file other than an earlier rejects file of the project is at that
            path (it is left as is), or one that cannot be read back; another process held its lock for all of
            REJECTS_LOCK_WAIT; or the lock cannot be made (a read-only folder, no permission), which would leave
            stale rejects beside a fresh output.
    """
    target = rejects_path(out)
    if not _changes_rejects(rejects, out):  # nothing of this output's to remove: no lock file is made for it
        _clear_killed_write(target)
        yield None
        return
    with output_lock(target, wait=REJECTS_LOCK_WAIT):
        if rejects:
            check_rejects_path(out)
        recorded_rows(target)  # one that cannot be read back is refused now
        yield target if rejects else None
        if rejects:
            remove_stale_temporaries(target)  # a killed run's half-written rejects file
            write_rejects(rejects, out)
        else:
            _remove_own_rejects(target, out)  # read again under the lock: another run may have written it since


def rejected_row_line(rejects: Iterable[Reject]) -> str:
    """One rejected row in one line: its first reject's line, then every other bad column with its reason."""
    first, *more = rejects
    return "; ".join([first.line(), *(f"column {r.column}: {r.reason}" for r in more)])


def report_rejects(rejects: list[Reject], stream=None) -> None:
    """Writes one line per reject to standard error."""
    stream = stream or sys.stderr
    for reject in rejects:
        print(reject.line(), file=stream)
