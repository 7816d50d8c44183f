"""What every sub-command shares: the user-error type, the embedding backend option, rejects and dates."""

from __future__ import annotations

import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from features.environment import EMBEDDING_BACKEND_ENV

__all__ = [
    "BACKEND_HELP",
    "AsOfOption",
    "Backend",
    "PastCampaignsOption",
    "PerformanceOption",
    "ProgressOption",
    "UserError",
    "echo_note",
    "echo_rejects",
    "parse_date",
    "performance_files",
    "resolve_backend_option",
    "settled_performance",
    "show_progress",
]


class Backend(StrEnum):
    torch = "torch"
    onnx = "onnx"


BACKEND_HELP = f"embedding backend; default ${EMBEDDING_BACKEND_ENV}, else onnx"

# The records a match scores creators on, as `match` and `serve` both take them.
PerformanceOption = Annotated[
    Path | None, typer.Option(help="latest performance table; default: the records as of the ranker's training")
]
PastCampaignsOption = Annotated[
    Path | None, typer.Option(help="campaigns --performance refers to; default: campaigns.* beside it")
]
AsOfOption = Annotated[str | None, typer.Option(help="YYYY-MM-DD: records settled by this day; default today")]
ProgressOption = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="progress bars; default: when stderr is a terminal")
]


def show_progress(progress: bool | None) -> bool:
    """--progress as given, else whether standard error is a terminal (a scheduler's log file gets no bars)."""
    return sys.stderr.isatty() if progress is None else progress


class UserError(Exception):
    """Ends a command with one line on standard error and exit status 2."""


def resolve_backend_option(option: Backend | None) -> str:
    """The backend the option, else the environment, names; a bad environment value is a user error."""
    from features.embeddings import resolve_backend

    try:
        return resolve_backend(option and option.value)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def echo_rejects(rejects, written: Path | None = None, named: bool = False) -> None:
    """Reports rejected rows on standard error, one line each, then how many rows and the rejects file written.

    `named`: the lines were written already, as soon as the tables were read (a command that then works for
    minutes, or fails, has named them): only the count is written, with the file, or saying they are named above.
    """
    from features.tables import report_rejects

    if not named:
        report_rejects(rejects)
    rejected = len({(r.table, r.row) for r in rejects})  # a row with several bad columns has a reject for each
    if written is not None:
        typer.echo(f"{rejected} row{'s' if rejected != 1 else ''} rejected; see {written}", err=True)
    elif named:
        typer.echo(f"{rejected} row{'s' if rejected != 1 else ''} rejected (named above)", err=True)


def echo_note(line: str) -> None:
    """A line on standard error about the run itself (`creator-match: resuming: ...`), as it happens."""
    typer.echo(f"creator-match: {line}", err=True)


def parse_date(text: str) -> dt.date:
    """The --as-of day; anything but YYYY-MM-DD is a user error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from exc


def performance_files(
    performance: Path | None, past_campaigns: Path | None, as_of: str | None
) -> list[tuple[Path, str]]:
    """`--performance` and its past campaigns' file (given, else the campaigns table beside it), each with what it
    is, as `matcher.batch.run_match` takes the inputs no output may be written over; none without `--performance`.
    """
    from features.table_files import find_table

    if performance is None:
        if past_campaigns is not None or as_of is not None:
            raise UserError("--past-campaigns and --as-of need --performance")
        return []
    if past_campaigns is not None:
        return [(performance, "performance file"), (past_campaigns, "past campaigns file")]
    beside = find_table(performance.parent, "campaigns", required=False)
    if beside is None:
        raise UserError(f"{performance.parent}: no campaigns table beside --performance; give --past-campaigns")
    # Named as what the user did not type: the file read by default.
    return [(performance, "performance file"), (beside, "default --past-campaigns file")]


def settled_performance(performance: Path | None, past_campaigns: Path | None, as_of: str | None):
    """`--performance` with its past campaigns (default: the campaigns table beside it) and `--as-of`, read."""
    from features.records import SettledPerformance
    from features.tables import read_table

    files = performance_files(performance, past_campaigns, as_of)
    if not files:
        return None
    (performance, _), (past_campaigns, _) = files
    return SettledPerformance(
        read_table(performance, "performance"),
        read_table(past_campaigns, "campaigns"),
        parse_date(as_of) if as_of else None,
    )
