"""`creator-match`: the contract's commands."""

from __future__ import annotations

import os

from features.contract import TABLE_FORMATS, TABLE_SUFFIXES
from features.environment import (
    CACHE_DIR_ENV,
    EMBEDDING_BACKEND_ENV,
    FLAT_THRESHOLD_ENV,
    OFFLINE_ENVIRONMENT,
    QUIET_ENVIRONMENT,
    debug_enabled,
    unset_defaults,
)

# Quiet, offline defaults before any library reads them; users can still override each.
os.environ.update(unset_defaults({**OFFLINE_ENVIRONMENT, **QUIET_ENVIRONMENT}))

import datetime as dt
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "main", "run"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Which creators to invite to a commission campaign, and how many.",
)


class Engine(StrEnum):
    local = "local"
    ray = "ray"


class Attribution(StrEnum):
    last_click = "last_click"
    position_based = "position_based"
    linear = "linear"


class World(StrEnum):
    main = "main"
    alt = "alt"


class Backend(StrEnum):
    torch = "torch"
    onnx = "onnx"


BACKEND_HELP = f"embedding backend; default ${EMBEDDING_BACKEND_ENV}, else onnx"


class UserError(Exception):
    """Ends a command with one line on standard error and exit status 2."""


def _backend(option: Backend | None) -> str:
    """The backend the option, else the environment, names; a bad environment value is a user error."""
    from features.embeddings import resolve_backend

    try:
        return resolve_backend(option and option.value)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _quiet_libraries() -> None:
    # Loggers only. Warnings keep Python's filters, which already hide libraries' own deprecations; what is
    # left (a ranker from another library version, a fit that did not converge) is the user's to see.
    for name in ("mlflow", "alembic", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _echo_rejects(rejects) -> None:
    from features.tables import report_rejects

    report_rejects(rejects)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="directory for the Parquet tables")],
    creators: Annotated[int, typer.Option(min=10, help="number of creators")] = 3000,
    campaigns: Annotated[int, typer.Option(min=10, help="number of past campaigns")] = 400,
    new_campaigns: Annotated[int | None, typer.Option(min=1, help="campaigns to match")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    world: Annotated[World, typer.Option(help="generator: main, or alt (written to disagree with main)")] = World.main,
) -> None:
    """Write a synthetic world in the contract's format, with the truth evaluation needs."""
    from simulation import WORLDS, write_world

    make_world = WORLDS[world.value]
    paths = write_world(
        make_world(n_creators=creators, n_campaigns=campaigns, n_new_campaigns=new_campaigns, seed=seed), out
    )
    typer.echo(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="directory with creators, campaigns and performance tables")],
    model_name: Annotated[str, typer.Option(help="registered model name")] = "creator-ranker",
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD: settle campaigns as of this day")] = None,
    embedding_model: Annotated[str | None, typer.Option(help="sentence-transformers model name or path")] = None,
    embedding_backend: Annotated[Backend | None, typer.Option(help=BACKEND_HELP)] = None,
    attribution: Annotated[
        Attribution, typer.Option(help="how orders are credited where touches and purchases exist")
    ] = Attribution.last_click,
    window_hours: Annotated[float, typer.Option(min=0.01, help="attribution window; 336 = 14 days")] = 24.0,
) -> None:
    """Train the ranker on settled history, log the run to MLflow and register a version."""
    from features.embeddings import Embedder
    from matcher.slate import default_slates
    from training.train import summarize
    from training.train import train as run_training

    day = _parse_date(as_of) if as_of else None
    result = run_training(
        data,
        model_name=model_name,
        embedder=Embedder(embedding_model, backend=_backend(embedding_backend)),
        as_of=day,
        attribution=attribution.value,
        window=dt.timedelta(hours=window_hours),
        slate_builder=default_slates,
    )
    typer.echo(summarize(result))
    if result.rejects:
        _echo_rejects(result.rejects)
        raise typer.Exit(2)


@app.command()
def promote(
    model_name: Annotated[str, typer.Option(help="registered model name")] = "creator-ranker",
    version: Annotated[str, typer.Option(help="the version to make champion")] = ...,
    force: Annotated[bool, typer.Option(help="promote even if it does not beat the champion")] = False,
) -> None:
    """Make a reviewed version the one batch jobs use (alias `champion`).

    Refused (exit 2) unless the version ranks at least as well as the champion on held-out campaigns that
    neither has trained on; --force overrides, e.g. for a rollback.
    """
    from mlflow.exceptions import MlflowException

    from training.promotion import check_promotion
    from training.registry import configure_tracking
    from training.registry import promote as set_champion

    configure_tracking()
    try:
        check = check_promotion(model_name, version)
        if not check.allowed and not force:
            raise UserError(f"not promoted: {check.reason} (use --force to promote anyway)")
        set_champion(model_name, version)
    except MlflowException as exc:
        raise UserError(f"cannot promote {model_name} version {version}: {str(exc).splitlines()[0]}") from exc
    typer.echo(f"{model_name} version {version} is now champion ({check.reason}{'; forced' if force else ''})")


@app.command()
def index(
    creators: Annotated[Path, typer.Option(help="creators table")],
    out: Annotated[Path, typer.Option(help="directory for the index")],
    embedding_model: Annotated[str | None, typer.Option(help="sentence-transformers model name or path")] = None,
    embedding_backend: Annotated[Backend | None, typer.Option(help=BACKEND_HELP)] = None,
    index_type: Annotated[
        str,
        typer.Option(
            metavar="[auto|flat|ivf|hnsw]",
            help=f"auto: exact flat search up to ${FLAT_THRESHOLD_ENV} creators (200,000), IVF above",
        ),
    ] = "auto",
    cache_dir: Annotated[
        Path | None,
        typer.Option(help=f"embedding cache; default ${CACHE_DIR_ENV}, else ~/.cache/creator-matcher"),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="embed every creator afresh")] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="progress bars; default: when stderr is a terminal")
    ] = None,
) -> None:
    """Embed creators (only those whose profile changed since the cache saw them) and write the candidate index."""
    from features.embeddings import Embedder, creator_vectors, default_cache_dir
    from features.safe_write import check_replaceable, output_lock
    from features.tables import read_table
    from matcher.candidate_index import INDEX_KINDS, CandidateIndex, why_not_an_index

    if index_type not in INDEX_KINDS:
        raise UserError(f"Got --index-type {index_type!r}; expected one of {', '.join(INDEX_KINDS)}")
    progress = sys.stderr.isatty() if progress is None else progress
    table = read_table(creators, "creators")
    embedder = Embedder(
        embedding_model,
        cache_dir=None if no_cache else cache_dir or default_cache_dir(),
        show_progress=progress,
        backend=_backend(embedding_backend),
    )
    # A second run on the same --out is refused at once; a target that is not an index, before any embedding.
    with output_lock(out):
        check_replaceable(out, why_not_an_index)
        built = CandidateIndex.build(
            creator_vectors(embedder, table.frame),
            table.frame["creator_id"],
            embedder.model,
            kind=index_type,
            progress=progress,
            embedding_backend=embedder.backend,
        )
        built.save(out)
    typer.echo(
        f"indexed {len(built)} creators with {embedder.model} on {embedder.backend} "
        f"({built.meta['dimension']}-d, {built.kind}, "
        f"{embedder.encoded_count_} embedded afresh) into {out}"
    )
    if table.rejects:
        _echo_rejects(table.rejects)
        raise typer.Exit(2)


@app.command()
def match(
    campaigns: Annotated[Path, typer.Option(help="campaigns to match")],
    creators: Annotated[Path, typer.Option(help="creators table")],
    out: Annotated[Path, typer.Option(help=f"matches file ({TABLE_FORMATS})")],
    index: Annotated[Path | None, typer.Option(help="candidate index directory; built on the fly if absent")] = None,
    model: Annotated[str, typer.Option(help="model URI")] = "models:/creator-ranker@champion",
    engine: Annotated[Engine, typer.Option(help="local or ray")] = Engine.local,
    allow_cashback: Annotated[bool, typer.Option(help="allow cashback sites")] = False,
    candidates: Annotated[int, typer.Option(min=1, help="candidates retrieved per campaign")] = 200,
    capacity: Annotated[int, typer.Option(min=0, help="most campaigns per creator in this run; 0: no limit")] = 5,
    chunk_size: Annotated[int, typer.Option(min=1, help="campaigns scored per committed chunk")] = 256,
    ray_actors: Annotated[int, typer.Option(min=1, help="with --engine ray: scoring actors in the pool")] = 2,
    embedding_backend: Annotated[
        Backend | None, typer.Option(help="embedding backend; default: the ranker's (an index must agree)")
    ] = None,
    performance: Annotated[
        Path | None, typer.Option(help="latest performance table; default: the records as of the ranker's training")
    ] = None,
    past_campaigns: Annotated[
        Path | None, typer.Option(help="campaigns --performance refers to; default: campaigns.* beside it")
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD: records settled by this day; default today")] = None,
) -> None:
    """Write the matches table for every campaign in the file.

    With --engine ray, chunks are embedded and scored on Ray (the cluster at $RAY_ADDRESS, else a local
    Ray started for the run); the matches are the same as with --engine local.
    """
    from matcher.api import MatchSettings
    from matcher.batch import run_match
    from matcher.ray_engine import RayUnavailable
    from matcher.slate import SlatePolicy
    from training.registry import configure_tracking

    configure_tracking()
    settings = MatchSettings(
        candidates=candidates, allow_cashback=allow_cashback, slate=SlatePolicy(capacity=capacity or None)
    )
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
            performance=_settled_performance(performance, past_campaigns, as_of),
        )
    except RayUnavailable as exc:
        raise UserError(str(exc)) from exc
    matched = [s for s in report.summaries if s.status == "matched"]
    typer.echo(f"matched {len(matched)} of {report.campaigns_in} campaigns into {out}")
    for summary in report.summaries:
        if summary.status != "matched":
            typer.echo(f"  {summary.campaign_id}: {summary.status}")
    if report.rejects:
        _echo_rejects(report.rejects)
        typer.echo(
            f"{len({(r.table, r.row) for r in report.rejects})} rows rejected; see {report.rejects_file}",
            err=True,
        )
        raise typer.Exit(2)


@app.command()
def similar(
    like: Annotated[list[str], typer.Option(help="a seed creator id; repeat for several")],
    creators: Annotated[Path, typer.Option(help="creators table")],
    index: Annotated[Path | None, typer.Option(help="candidate index directory; built on the fly if absent")] = None,
    k: Annotated[int, typer.Option(min=1, help="how many lookalikes")] = 20,
    marketplace: Annotated[
        list[str] | None, typer.Option(help="only creators with audience in this marketplace; repeatable")
    ] = None,
    creator_type: Annotated[list[str] | None, typer.Option(help="only creators of this type; repeatable")] = None,
    out: Annotated[Path | None, typer.Option(help=f"lookalikes file ({TABLE_FORMATS}); else printed")] = None,
    model: Annotated[str, typer.Option(help="model URI (its history gives the shape of each record)")] = (
        "models:/creator-ranker@champion"
    ),
    allow_cashback: Annotated[bool, typer.Option(help="allow cashback sites")] = False,
) -> None:
    """Creators like the given ones: by profile meaning, audience markets and what they sell in."""
    from features.tables import read_table
    from matcher.api import Matcher, MatchSettings
    from matcher.batch import write_matches
    from matcher.similar import LOOKALIKE_SCHEMA
    from training.registry import configure_tracking

    if out is not None and out.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"{out}: unknown output format {out.suffix!r}; expected {TABLE_FORMATS}")
    configure_tracking()
    table = read_table(creators, "creators")
    matcher = Matcher(table, model=model, index=index, settings=MatchSettings(allow_cashback=allow_cashback))
    try:
        found = matcher.similar(like, k=k, marketplaces=marketplace, creator_types=creator_type)
    except ValueError as exc:  # UnknownCreator among them
        raise UserError(str(exc)) from exc
    if out is None:
        for row in found.itertuples(index=False):
            typer.echo(f"{row.rank:>3} {row.creator_id} {row.score:.3f} {row.reasons}")
    else:
        write_matches(found, out, LOOKALIKE_SCHEMA)
        typer.echo(f"wrote {len(found)} lookalikes of {', '.join(like)} to {out}")
    if table.rejects:
        _echo_rejects(table.rejects)
        raise typer.Exit(2)


@app.command()
def serve(
    creators: Annotated[Path, typer.Option(help="creators table")],
    index: Annotated[Path | None, typer.Option(help="candidate index directory; built at start-up if absent")] = None,
    model: Annotated[str, typer.Option(help="model URI; an alias is watched for promotions")] = (
        "models:/creator-ranker@champion"
    ),
    host: Annotated[str, typer.Option(help="address to bind; 0.0.0.0 exposes the service to the network")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 8000,
    poll_seconds: Annotated[float, typer.Option(min=0.1, help="how often the model alias is looked up")] = 30.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="largest request body accepted")] = 1_000_000,
    allow_cashback: Annotated[bool, typer.Option(help="allow cashback sites")] = False,
    candidates: Annotated[int, typer.Option(min=1, help="candidates retrieved per campaign")] = 200,
    capacity: Annotated[int, typer.Option(min=0, help="most campaigns per creator in one request; 0: no limit")] = 5,
    performance: Annotated[
        Path | None, typer.Option(help="latest performance table; default: the records as of the ranker's training")
    ] = None,
    past_campaigns: Annotated[
        Path | None, typer.Option(help="campaigns --performance refers to; default: campaigns.* beside it")
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD: records settled by this day; default today")] = None,
) -> None:
    """Serve matching and lookalikes over HTTP (POST /v1/match, POST /v1/similar; OpenAPI at /docs).

    /healthz answers at once; /readyz once the model and index are loaded. A promotion (the alias moved) is
    picked up within --poll-seconds and swapped in without dropping requests.
    """
    import uvicorn

    from features.tables import read_table
    from matcher.api import MatchSettings
    from matcher.service import ModelHolder, ServiceConfig, create_app
    from matcher.slate import SlatePolicy
    from training.registry import configure_tracking

    configure_tracking()
    table = read_table(creators, "creators")
    if table.rejects:
        _echo_rejects(table.rejects)
        typer.echo(f"{len(table.rejects)} creator rows rejected; serving the {len(table.frame)} valid ones", err=True)
    if index is not None and not index.is_dir():
        raise UserError(f"{index}: no candidate index here")
    settings = MatchSettings(
        candidates=candidates, allow_cashback=allow_cashback, slate=SlatePolicy(capacity=capacity or None)
    )
    settled = _settled_performance(performance, past_campaigns, as_of)
    if settled is not None and settled.rejects():
        _echo_rejects(settled.rejects())
        typer.echo(
            f"{len(settled.rejects())} performance or past campaign rows rejected; using the valid ones", err=True
        )
    holder = ModelHolder(
        table,
        ServiceConfig(model, None if index is None else str(index), settings, poll_seconds, max_body_bytes, settled),
    )
    server = uvicorn.Server(uvicorn.Config(create_app(holder), host=host, port=port, log_level="warning"))
    failed: list[str] = []

    def give_up(reason: str) -> None:
        failed.append(reason)
        server.should_exit = True

    holder.start(on_failure=give_up)
    typer.echo(f"serving on http://{host}:{port} (OpenAPI at /docs); loading {model}", err=True)
    server.run()
    if failed:
        raise UserError(f"cannot serve: {failed[0]}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="working directory for the demo's files")] = Path("demo-output"),
    creators: Annotated[int, typer.Option(min=50)] = 600,
    campaigns: Annotated[int, typer.Option(min=20)] = 120,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Simulate a world, train and register a ranker, build the index, match, and print the slates."""
    from matcher.demo import run_demo

    run_demo(out, n_creators=creators, n_campaigns=campaigns, seed=seed)


def _settled_performance(performance: Path | None, past_campaigns: Path | None, as_of: str | None):
    """`--performance` with its past campaigns (default: the campaigns table beside it) and `--as-of`, read."""
    from features.contract import TABLE_SUFFIXES
    from features.records import SettledPerformance
    from features.tables import read_table

    if performance is None:
        if past_campaigns is not None or as_of is not None:
            raise UserError("--past-campaigns and --as-of need --performance")
        return None
    if past_campaigns is None:
        beside = [performance.with_name(f"campaigns{suffix}") for suffix in TABLE_SUFFIXES]
        past_campaigns = next((path for path in beside if path.is_file()), None)
        if past_campaigns is None:
            raise UserError(f"{performance.parent}: no campaigns table beside --performance; give --past-campaigns")
    return SettledPerformance(
        read_table(performance, "performance"),
        read_table(past_campaigns, "campaigns"),
        _parse_date(as_of) if as_of else None,
    )


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from exc


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 1 anything else)."""
    from features.safe_write import OutputRefused
    from features.tables import InputError

    _quiet_libraries()
    try:
        # Without standalone mode click returns the code of a typer.Exit rather than raising it.
        code = app(args=argv, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        return 1
    except typer.TyperException as exc:  # usage errors: unknown option, missing or malformed value
        print(f"creator-match: {exc.format_message()}", file=sys.stderr)
        return 2
    except (UserError, InputError, OutputRefused) as exc:
        print(f"creator-match: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from matcher.candidate_index import ArtifactMismatch
        from training.registry import ModelNotFound

        if isinstance(exc, ArtifactMismatch | ModelNotFound | FileNotFoundError):
            print(f"creator-match: {exc}", file=sys.stderr)
            return 2
        if debug_enabled():
            raise
        print(
            f"creator-match: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
