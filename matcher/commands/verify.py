"""`creator-match verify`: whether the files beside a `match` output are one complete run's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from features.contract import TABLE_FORMATS, TABLE_SUFFIXES
from matcher.commands.common import UserError

__all__ = ["verify"]


def verify(
    out: Annotated[Path, typer.Option(help=f"the matches file `match --out` wrote ({TABLE_FORMATS})")],
) -> None:
    """Check the files of the run that wrote --out against its run record (<out>.run.json).

    Exit 0, with one line naming the run and what it read, when the matches, the candidates and summaries it
    wrote, and its rows of the rejects file are all as the run left them, no candidates or summaries of an earlier
    run that it did not write again are still beside them, and no run started since; exit 1, with one line, when
    that is not so: a run is writing them (its pid), one started and did not finish (killed?), naming whether the
    files are still the earlier run's; or a file differs, naming it; or there is no record.
    """
    from matcher.run_record import RunMismatch, verify_run

    if out.is_dir():
        raise UserError(f"{out}: is a directory; expected the matches file a run wrote")
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"{out}: unknown output format {out.suffix!r}; expected {TABLE_FORMATS}")
    try:
        record = verify_run(out)
    except RunMismatch as exc:
        typer.echo(f"creator-match: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(record.line())
