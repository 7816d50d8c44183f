"""`creator-match match`: the batch job, locally or on Ray."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from features.contract import TABLE_FORMATS
from matcher.commands.common import (
    AsOfOption,
    Backend,
    PastCampaignsOption,
    PerformanceOption,
    ProgressOption,
    UserError,
    echo_note,
    echo_rejects,
    performance_files,
    settled_performance,
    show_progress,
)
from matcher.commands.tunables import with_settings
from matcher.settings import MatchSettings
from matcher.termination import raise_if_terminated

__all__ = ["match"]


class Engine(StrEnum):
    local = "local"
    ray = "ray"


@with_settings()
def match(
    campaigns: Annotated[Path, typer.Option(help="campaigns to match")],
    creators: Annotated[Path, typer.Option(help="creators table")],
    out: Annotated[Path, typer.Option(help=f"matches file ({TABLE_FORMATS})")],
    index: Annotated[
        Path | None,
        # A path that holds no index is refused, not built: what builds one is leaving the option out.
        typer.Option(
            help="candidate index directory (`creator-match index`); leave the option out to build one on the fly"
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="model URI")] = "models:/creator-ranker@champion",
    engine: Annotated[Engine, typer.Option(help="local or ray")] = Engine.local,
    chunk_size: Annotated[int, typer.Option(min=1, help="campaigns scored per committed chunk")] = 256,
    ray_actors: Annotated[int, typer.Option(min=1, help="with --engine ray: scoring actors in the pool")] = 2,
    embedding_backend: Annotated[
        Backend | None, typer.Option(help="embedding backend; default: the ranker's (an index must agree)")
    ] = None,
    performance: PerformanceOption = None,
    past_campaigns: PastCampaignsOption = None,
    as_of: AsOfOption = None,
    candidates_out: Annotated[
        Path | None,
        typer.Option(
            help=f"also write every scored candidate pair, on a slate or not, with its score and evidence, for model "
            f"review ({TABLE_FORMATS})"
        ),
    ] = None,
    summaries_out: Annotated[
        Path | None,
        typer.Option(
            help=f"also write one row per campaign: product type and why, slate size and why, expected orders and "
            f"commission against the budget ({TABLE_FORMATS})"
        ),
    ] = None,
    progress: ProgressOption = None,
    *,
    settings: MatchSettings,
) -> None:
    """Write the matches table for every campaign in the file.

    With --engine ray, chunks are embedded and scored on Ray (the cluster at $RAY_ADDRESS, else a local
    Ray started for the run); the matches are the same as with --engine local. Every match setting is an
    option (the fields of matcher.settings.MatchSettings and SlatePolicy).
    """
    from matcher.batch import run_match
    from matcher.ray_engine import RayUnavailable
    from training.registry import configure_tracking

    configure_tracking()
    try:
        report = run_match(
            campaigns,
            creators,
            out,
            model,
            index,
            settings,
            chunk_size=chunk_size,
            engine=engine.value,
            ray_actors=ray_actors,
            embedding_backend=embedding_backend and embedding_backend.value,
            performance=settled_performance(performance, past_campaigns, as_of),
            candidates_out=candidates_out,
            summaries_out=summaries_out,
            progress=show_progress(progress),
            inputs=performance_files(performance, past_campaigns, as_of),
            note=echo_note,
            rejects_read=_name_rejects,
        )
    except RayUnavailable as exc:
        raise UserError(str(exc)) from exc
    try:
        raise_if_terminated()  # taken during the run, its SystemExit lost in a library: the run finished all the same
        _echo_report(report, out, candidates_out, summaries_out)
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:  # the outputs are whole: `main`'s "nothing was written" would be false
            typer.echo(
                f"creator-match: match stopped by SIGTERM after its outputs were written; they are complete "
                f"(`creator-match verify --out {out}` checks them)",
                err=True,
            )
            exc.told = True
        raise


def _echo_report(report, out: Path, candidates_out: Path | None, summaries_out: Path | None) -> None:
    """What a finished run wrote, the campaigns it did not match, and its rejected rows (exit 2 when any)."""
    matched = [s for s in report.summaries if s.status == "matched"]
    typer.echo(f"matched {len(matched)} of {report.campaigns_in} campaigns into {out}")
    if candidates_out is not None:
        typer.echo(f"every scored candidate pair written to {candidates_out}")
    if summaries_out is not None:
        typer.echo(f"one summary per campaign written to {summaries_out}")
    from features.tables import shown_id  # here: --help and a usage error do without pandas

    for summary in report.summaries:
        if summary.status != "matched":
            typer.echo(f"  {shown_id(summary.campaign_id)}: {summary.status}")
    if report.rejects:
        echo_rejects(report.rejects, report.rejects_file, named=True)
        raise typer.Exit(2)


def _name_rejects(rejects) -> None:
    """The rejected rows, one line each, as soon as the tables are read: before the model loads and the campaigns
    are scored, which take minutes, and whether or not the run then finishes."""
    from features.tables import report_rejects

    report_rejects(rejects)
