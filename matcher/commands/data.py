"""The data commands: simulate a world, train and promote a ranker, build the candidate index, run the demo."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from features.environment import CACHE_DIR_ENV, FLAT_THRESHOLD_ENV
from matcher.commands.common import (
    BACKEND_HELP,
    Backend,
    ProgressOption,
    UserError,
    echo_rejects,
    parse_date,
    resolve_backend_option,
    show_progress,
)
from matcher.termination import raise_if_terminated

__all__ = ["demo", "index", "promote", "simulate", "train"]


class Attribution(StrEnum):
    last_click = "last_click"
    position_based = "position_based"
    linear = "linear"


class World(StrEnum):
    main = "main"
    alt = "alt"


def simulate(
    out: Annotated[Path, typer.Option(help="directory for the Parquet tables")],
    creators: Annotated[int, typer.Option(min=10, help="number of creators")] = 3000,
    campaigns: Annotated[int, typer.Option(min=10, help="number of past campaigns")] = 400,
    new_campaigns: Annotated[
        int | None,
        # The generators' own default (SimulationConfig.new_campaigns), said here: None shows no default in --help.
        typer.Option(min=1, help="campaigns to match; default: an eighth of --campaigns, at least 10"),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    world: Annotated[World, typer.Option(help="generator: main, or alt (written to disagree with main)")] = World.main,
) -> None:
    """Write a synthetic world in the contract's format, with the truth evaluation needs."""
    from features.contract import TABLE_SUFFIXES
    from features.safe_write import check_output_path
    from simulation import WORLD_TABLES, WORLDS, write_world

    # A new world goes into a new or empty-of-tables folder: what is there may be the user's own data; and not
    # through a link, which may lead anywhere.
    check_output_path(out, "world")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a folder for the world's tables")
    # In any of the formats a table is read in: a creators.csv there, given a creators.parquet beside it, is a table
    # held in two, which `train` refuses.
    taken = [
        f"{name}{suffix}" for name in WORLD_TABLES for suffix in TABLE_SUFFIXES if (out / f"{name}{suffix}").exists()
    ]
    if taken:
        raise UserError(f"{out} already holds {', '.join(taken)}; write the world into another folder")
    make_world = WORLDS[world.value]
    paths = write_world(
        make_world(n_creators=creators, n_campaigns=campaigns, n_new_campaigns=new_campaigns, seed=seed), out
    )
    typer.echo(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


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
    holdout: Annotated[
        float | None,
        typer.Option(help="share of campaigns, the latest by start date, held out to evaluate on; default 0.2"),
    ] = None,
    members: Annotated[
        int, typer.Option(min=1, help="boosters averaged per head, each drawing its own features (3: 3x the time)")
    ] = 1,
    max_features: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="share of the features each split may choose from")
    ] = 1.0,
    selection_power: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="weigh past pairs toward the creators a match would have scored: 0 off, 1 the full odds; on "
            "simulated worlds 0.5 moved single seeds both ways (docs/measurements.md); default 0",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="OpenMP threads of the fits; default: OMP_NUM_THREADS where set, else 1 (every core ran 4.5 to 5.6x "
            "slower beside other work, about a tenth faster on an idle machine: docs/measurements.md)",
        ),
    ] = None,
) -> None:
    """Train the ranker on settled history, log the run to MLflow and register a version."""
    from features.embeddings import Embedder
    from features.tables import report_rejects
    from matcher.slate import default_slates
    from training.ranker import CreatorRanker
    from training.train import summarize
    from training.train import train as run_training

    day = parse_date(as_of) if as_of else None
    if holdout is not None and not 0 < holdout < 1:
        raise UserError(f"Got --holdout {holdout}; expected a share of the campaigns in (0, 1)")
    result = run_training(
        data,
        model_name=model_name,
        embedder=Embedder(embedding_model, backend=resolve_backend_option(embedding_backend)),
        as_of=day,
        attribution=attribution.value,
        window=dt.timedelta(hours=window_hours),
        slate_builder=default_slates,
        ranker=CreatorRanker(max_features=max_features, n_members=members),
        # Not given: training's own default (training.evaluate.HOLDOUT), which the command does not import to start.
        **({} if holdout is None else {"holdout": holdout}),
        **({} if selection_power is None else {"selection_power": selection_power}),
        # Named as soon as the tables are read and checked: training takes minutes, and may fail.
        rejects_read=report_rejects,
        threads=threads,
    )
    typer.echo(summarize(result))
    if result.rejects:
        echo_rejects(result.rejects, named=True)
        raise typer.Exit(2)


# `promote --help` keeps the line breaks of the docstring's second paragraph, hence its short lines.
def promote(
    model_name: Annotated[str, typer.Option(help="registered model name")] = "creator-ranker",
    version: Annotated[str, typer.Option(help="the version to make champion")] = ...,
    force: Annotated[
        bool, typer.Option(help="promote even if it does not beat the champion or there is no fair comparison")
    ] = False,
) -> None:
    """Make a reviewed version the one batch jobs use (alias `champion`).

    Refused (exit 2) unless the version, as fitted without its held-out campaigns,
    ranks at least as well (NDCG@10 of realized sales) as the champion
    on those of them that the champion never trained on.
    Also refused when fewer than 3 are unseen by the champion: no fair comparison.
    --force overrides either refusal, e.g. for a rollback.
    Promoting the version that is already champion changes nothing.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from matcher.artifacts import missing_store_reason
    from training.promotion import check_promotion
    from training.registry import PromotionUnrecorded, champion_version, check_server_reachable, configure_tracking
    from training.registry import promote as set_champion

    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise UserError(f"Got --version {version!r}; expected a version number (1, 2, ...)")
    configure_tracking()
    check_server_reachable()
    # MLflow would create a store that is not there, empty, to find no version in it.
    if reason := missing_store_reason([mlflow.get_registry_uri(), mlflow.get_tracking_uri()]):
        raise UserError(f"cannot promote {model_name} version {version}: {reason}")
    try:
        # Before the gate, which lets the champion through, so the message does not say a version "is now" what
        # it already was; and --force has nothing to force.
        if champion_version(model_name) == version:
            typer.echo(f"{model_name} version {version} is already champion; nothing changed")
            return
        check = check_promotion(model_name, version)
        if not check.allowed and not force:
            raise UserError(f"not promoted: {check.reason} (use --force to promote anyway)")
        forced = "; forced" if force and not check.allowed else ""
        set_champion(model_name, version, f"{check.reason}{forced}")
    except PromotionUnrecorded as exc:  # the alias did move: no bad input, and "cannot promote" would be untrue
        typer.echo(f"creator-match: {exc}", err=True)
        raise typer.Exit(1) from None
    except MlflowException as exc:
        raise UserError(f"cannot promote {model_name} version {version}: {str(exc).splitlines()[0]}") from exc
    typer.echo(f"{model_name} version {version} is now champion ({check.reason}{forced})")


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
    progress: ProgressOption = None,
) -> None:
    """Embed creators (only those whose profile changed since the cache saw them) and write the candidate index."""
    from features.embeddings import Embedder, default_cache_dir, resolve_model_path
    from features.safe_write import check_outputs, check_replaceable, output_lock, remove_stale_temporaries
    from features.tables import (
        check_rejects_path,
        read_table,
        rejects_path,
        rejects_turn,
        report_rejects,
        require_valid_rows,
    )
    from matcher.candidate_index import INDEX_KINDS, CandidateIndex, why_not_an_index

    if index_type not in INDEX_KINDS:
        raise UserError(f"Got --index-type {index_type!r}; expected one of {', '.join(INDEX_KINDS)}")
    progress = show_progress(progress)
    # An output that can never be written (a link, a root, over the creators) is refused before any reading.
    check_outputs([(out, "index"), (rejects_path(out), "rejects")], [(creators, "creators file")])
    table = read_table(creators, "creators")
    embedder = Embedder(
        embedding_model,
        cache_dir=None if no_cache else cache_dir or default_cache_dir(),
        show_progress=progress,
        backend=resolve_backend_option(embedding_backend),
    )
    # What refuses the run does so before the lock file (and any missing folder above --out) is made: a target
    # that is not an index, an embedding model that is not there. A second run on the same --out is refused at
    # once; the target is checked again under the lock, before any embedding.
    check_replaceable(out, why_not_an_index)
    if table.rejects:  # a user's own file where they go stops the run here
        check_rejects_path(out)
    # An index of no creator is no index: the one at --out (if any) is kept, not replaced by nothing.
    require_valid_rows(table, creators, f"no index was written, and {out} was left as it was", out=out)
    if table.rejects:  # named now, before the embedding takes minutes (and whether or not it then succeeds)
        report_rejects(table.rejects)
    resolve_model_path(embedder.model)
    # A SIGTERM taken while the libraries loaded, its SystemExit lost in one of them, stops the run here, before its
    # lock and folders: else the index was written, and only then the command ended 143.
    raise_if_terminated()
    with ExitStack() as locks:
        locks.enter_context(output_lock(out))
        remove_stale_temporaries(out)  # a killed run's staged index beside it
        if table.rejects:  # again: a user's file put there since stops the run before the embedding
            check_rejects_path(out)
        check_replaceable(out, why_not_an_index)
        built = CandidateIndex.of_creators(table, embedder, index_type, progress=progress)
        raise_if_terminated()  # taken during the embedding and lost there: the index at --out is left as it was
        with rejects_turn(table.rejects, out) as written:  # claimed first: a run refused it leaves the old index
            built.save(out)
    typer.echo(
        f"indexed {len(built)} creators with {embedder.model} on {embedder.backend} "
        f"({built.meta['dimension']}-d, {built.kind}, "
        f"{embedder.encoded_count_} embedded afresh) into {out}"
    )
    if table.rejects:
        echo_rejects(table.rejects, written, named=True)
        raise typer.Exit(2)


def demo(
    out: Annotated[Path, typer.Option(help="working directory for the demo's files")] = Path("demo-output"),
    creators: Annotated[int, typer.Option(min=50, help="creators in the sample world")] = 600,
    campaigns: Annotated[int, typer.Option(min=20, help="past campaigns in the sample world")] = 120,
    seed: Annotated[int, typer.Option(help="the sample world's random seed")] = 7,
) -> None:
    """Simulate a world, train and register a ranker, build the index, match, and print the slates."""
    from matcher.demo import run_demo

    run_demo(out, n_creators=creators, n_campaigns=campaigns, seed=seed)
