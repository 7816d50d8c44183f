"""The creator-facing commands: `similar` (lookalikes) and `serve` (matching and lookalikes over HTTP)."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Annotated

import typer

from features.contract import TABLE_FORMATS, TABLE_SUFFIXES
from matcher.commands.common import (
    PastCampaignsOption,
    PerformanceOption,
    UserError,
    echo_rejects,
    settled_performance,
)
from matcher.commands.tunables import with_settings
from matcher.service_limits import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CAMPAIGNS,
    DEFAULT_MAX_CONNECTIONS,
)
from matcher.settings import MatchSettings

__all__ = ["serve", "similar"]


@with_settings(
    ("allow_cashback", "min_market_share", "violations"),
    described={
        "min_market_share": "least share of a creator's audience in the asked --marketplace codes; creators who give "
        "no audience split are not excluded by it"
    },
)
def similar(
    like: Annotated[list[str], typer.Option(help="a seed creator id; repeat for several")],
    creators: Annotated[Path, typer.Option(help="creators table")],
    index: Annotated[
        Path | None,
        # A path that holds no index is refused, not built: what builds one is leaving the option out.
        typer.Option(
            help="candidate index directory (`creator-match index`); leave the option out to build one on the fly"
        ),
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="how many lookalikes")] = 20,
    marketplace: Annotated[
        list[str] | None,
        typer.Option(
            help=f"only creators with at least --min-market-share ({MatchSettings.min_market_share:.0%} by default) "
            "of their audience in this marketplace, or none stated; repeatable"
        ),
    ] = None,
    creator_type: Annotated[list[str] | None, typer.Option(help="only creators of this type; repeatable")] = None,
    out: Annotated[Path | None, typer.Option(help=f"lookalikes file ({TABLE_FORMATS}); else printed")] = None,
    model: Annotated[str, typer.Option(help="model URI (its history gives the shape of each record)")] = (
        "models:/creator-ranker@champion"
    ),
    *,
    settings: MatchSettings,
) -> None:
    """Creators like the given ones: by profile meaning, audience markets and what they sell in."""
    from features.safe_write import check_outputs, lock_path, output_lock, remove_stale_temporaries
    from features.tables import (
        check_own_table,
        check_rejects_path,
        read_table,
        rejects_path,
        rejects_turn,
        require_valid_rows,
        settle_rejects,
    )
    from matcher.api import Matcher
    from matcher.artifacts import artifact_inputs, load_for_matching
    from matcher.batch import write_matches
    from matcher.similar import LOOKALIKE_SCHEMA
    from training.registry import configure_tracking

    if out is not None:
        if lock_path(out).exists():  # another `similar` writing it: refused before any work
            with output_lock(out):
                pass
        if out.is_dir():
            raise UserError(f"{out}: is a directory; expected a file for the lookalikes")
        if out.suffix.lower() not in TABLE_SUFFIXES:
            raise UserError(f"{out}: unknown output format {out.suffix!r}; expected {TABLE_FORMATS}")
        read = [(creators, "creators file"), *artifact_inputs(model, index)]
        check_outputs([(out, "lookalikes"), (rejects_path(out), "rejects")], read)
        check_own_table(out, LOOKALIKE_SCHEMA.names, "lookalikes")
    configure_tracking()
    table = read_table(creators, "creators")
    if out is not None and table.rejects:
        check_rejects_path(out)  # a user's own file there stops the run before any work
    outcome = f"no lookalike was searched{f', and {out} was left as it was' if out is not None else ''}"
    require_valid_rows(table, creators, outcome, out=out)
    # Refused, not created, when the model's SQLite store does not exist; --out's folders are made only to write.
    matcher = Matcher(table, model=load_for_matching(model, index=index), index=index, settings=settings)
    try:
        found = matcher.similar(like, k=k, marketplaces=marketplace, creator_types=creator_type)
    except ValueError as exc:  # a seed not among the valid rows (UnknownCreator), a bad filter
        # Refused as a table without a valid row is (require_valid_rows): --out is left as it was, and the
        # rejected rows are reported as any run's first, a rejected seed's among them.
        written = settle_rejects(table.rejects, out) if out is not None and table.rejects else None
        echo_rejects(table.rejects, written)
        raise UserError(f"{exc}; {outcome}") from exc
    written = None
    if out is None:
        for row in found.itertuples(index=False):
            typer.echo(f"{row.rank:>3} {row.creator_id} {row.score:.3f} {row.reasons}")
    else:
        # One writer of --out at a time, as for match and index: a second `similar` on it waits for nothing and
        # is refused in one line rather than interleave its files with the first's.
        with output_lock(out), rejects_turn(table.rejects, out) as written:  # the rejects claimed before the write
            remove_stale_temporaries(out)  # a killed run's half-written file beside it
            write_matches(found, out, LOOKALIKE_SCHEMA)
        typer.echo(f"wrote {len(found)} lookalikes of {', '.join(like)} to {out}")
    if table.rejects:
        echo_rejects(table.rejects, written)
        raise typer.Exit(2)


def _listen(host: str, port: int) -> list[socket.socket]:
    """The sockets the server will listen on, bound now: an address it could not listen on (another process holds
    the port, the host is not this machine's) is refused in one line before anything loads, where uvicorn would find
    out only once everything had, and port 0's port, which the system chooses, is known for the "serving on" line.

    One socket per address the host resolves to (`localhost` may be both 127.0.0.1 and ::1), as uvicorn binds them,
    all on the first one's port.

    Raises:
        UserError: naming the address, the system's reason and what to change.
    """
    listeners: list[socket.socket] = []
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, protocol, _, address in dict.fromkeys(found):
            listener = socket.socket(family, kind, protocol)
            listeners.append(listener)
            # As uvicorn binds: a closed port's wait is no use.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio binds: ::1 beside 127.0.0.1, not over it
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind((address[0], port, *address[2:]))
            port = port or listener.getsockname()[1]  # port 0: the other addresses on the port the system chose
    except OSError as exc:
        for listener in listeners:
            listener.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {_advice(exc, host)}") from None
    return listeners


def _allowed_hosts(host: str, given: str | None) -> tuple[str, ...]:
    """The `Host` names the service answers: those `given`, else for a loopback `host` the loopback names (a page
    whose domain resolves to 127.0.0.1 sends its own name, and is refused), else any."""
    if given is not None:
        names = tuple(name.strip().lower() for name in given.split(",") if name.strip())
        if not names:
            raise UserError(f"Got --allowed-hosts {given!r}; expected host names separated by commas, or '*'")
        return ("*",) if "*" in names else names
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if not loopback:
        return ("*",)
    bound = f"[{host}]" if ":" in host else host  # a Host header writes an IPv6 address in brackets
    return tuple(dict.fromkeys(("localhost", "127.0.0.1", "[::1]", bound.lower())))


def _advice(exc: OSError, host: str) -> str:
    """What to change when the address cannot be listened on, by the system's reason."""
    if isinstance(exc, socket.gaierror):
        return f"{host} is not a host name or address this machine can resolve: choose another --host"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: choose another --host (127.0.0.1, or 0.0.0.0 for all)"
    if exc.errno == errno.EADDRINUSE:
        return "stop what holds it, or choose another --port"
    if exc.errno == errno.EACCES:
        return "a port below 1024 needs privileges: choose another --port"
    return "choose another --host or --port"


@with_settings()
def serve(
    creators: Annotated[Path, typer.Option(help="creators table")],
    index: Annotated[
        Path | None,
        typer.Option(
            help="candidate index directory (`creator-match index`); leave the option out to build one at start-up"
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="model URI; an alias is watched for promotions")] = (
        "models:/creator-ranker@champion"
    ),
    host: Annotated[str, typer.Option(help="address to bind; 0.0.0.0 exposes the service to the network")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="TCP port; 0: a free one the system chooses (the serving-on line names it)"
        ),
    ] = 8000,
    poll_seconds: Annotated[float, typer.Option(min=0.1, help="how often the model alias is looked up")] = 30.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="largest request body accepted")] = DEFAULT_MAX_BODY_BYTES,
    max_campaigns: Annotated[
        int,
        typer.Option(min=1, help="most campaigns one /v1/match request may hold (more: 413); larger batches: `match`"),
    ] = DEFAULT_MAX_CAMPAIGNS,
    max_connections: Annotated[
        int,
        typer.Option(
            min=1,
            help="open connections (or requests in progress) beyond which a request is answered 503 at once; "
            "header timeouts and per-client limits need a reverse proxy (docs/service.md)",
        ),
    ] = DEFAULT_MAX_CONNECTIONS,
    keep_alive_seconds: Annotated[
        int, typer.Option(min=1, help="how long an idle kept-alive connection stays open")
    ] = DEFAULT_KEEP_ALIVE_SECONDS,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            help="host names the service answers to, comma-separated ('*': any), others get 400; default: the "
            "loopback names when --host is a loopback address (a web page cannot reach it by DNS rebinding), else any"
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="worker processes, each with its own loaded matcher; about one per core")
    ] = 1,
    performance: PerformanceOption = None,
    past_campaigns: PastCampaignsOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD: records settled by this day; default: the day each version is loaded"),
    ] = None,
    *,
    settings: MatchSettings,
) -> None:
    """Serve matching and lookalikes over HTTP (POST /v1/match, POST /v1/similar; OpenAPI at /openapi.json).

    /healthz answers at once; /readyz once the model and index are loaded. A promotion (the alias moved) is
    picked up within --poll-seconds and swapped in without dropping requests. Every match setting is an option,
    as for `match`; a capacity applies within one request.
    """
    import uvicorn

    # Before anything loads: a busy port ended the command after "serving on", exit 3.
    listeners = _listen(host, port)
    try:
        from features.tables import read_table, require_valid_rows
        from features.threads import hold_blas_threads
        from matcher.artifacts import check_model_stores
        from matcher.index_files import require_index
        from matcher.service import ModelHolder, ServiceConfig, server_config
        from training.registry import configure_tracking

        configure_tracking()
        if index is not None:  # as `match` does, before the model: the same refusal, in seconds
            require_index(index)
        check_model_stores(model)  # a registry that does not exist: refused at once, not created by the first look-up
        table = read_table(creators, "creators")
        require_valid_rows(table, creators, "nothing to serve")
        if table.rejects:
            echo_rejects(table.rejects)
            typer.echo(
                f"{len(table.rejects)} creator rows rejected; serving the {len(table.frame)} valid ones", err=True
            )
        settled = settled_performance(performance, past_campaigns, as_of)
        if settled is not None and settled.rejects():
            echo_rejects(settled.rejects())
            typer.echo(
                f"{len(settled.rejects())} performance or past campaign rows rejected; using the valid ones", err=True
            )
        where = None if index is None else str(index)
        # The cores shared among the worker processes: one worker per core encodes on one thread.
        threads = max(1, (os.cpu_count() or 1) // workers)
        config = ServiceConfig(
            model,
            where,
            settings,
            poll_seconds,
            max_body_bytes,
            settled,
            threads,
            max_campaigns=max_campaigns,
            max_connections=max_connections,
            keep_alive_seconds=keep_alive_seconds,
            allowed_hosts=_allowed_hosts(host, allowed_hosts),
        )
        if workers > 1:
            from matcher.service_workers import WorkerPlan, WorkerPool

            del table  # each worker reads its own; the HTTP process holds no creator
            backend = WorkerPool(WorkerPlan(str(creators), config, workers))
        else:
            backend = ModelHolder(table, config)
        uvicorn_config = server_config(backend, host, port)
        server = uvicorn.Server(uvicorn_config)
        failed: list[str] = []

        def give_up(reason: str) -> None:
            failed.append(reason)
            server.should_exit = True

        # Requests overlap on a thread pool: one BLAS thread throughout, so no request's products change another's.
        hold_blas_threads(1)
        backend.start(on_failure=give_up)
        processes = f", {workers} worker processes" if workers > 1 else ""
        for listener in listeners:  # connections are taken from here on, so the line below is true when read
            listener.listen(uvicorn_config.backlog)
        # The port bound, not the one asked for: --port 0 lets the system choose one.
        bound = listeners[0].getsockname()[1]
        address = f"[{host}]" if ":" in host else host
        typer.echo(
            f"serving on http://{address}:{bound} (OpenAPI at /openapi.json){processes}; loading {model}", err=True
        )
        if threading.current_thread() is threading.main_thread():
            # Serving, uvicorn takes SIGTERM for a graceful shutdown and raises it again once done: left to its default
            # action the process then ends by the signal, which a service manager (systemd) reads as a clean stop,
            # where exit status 143 (the command line's own handler, `matcher.cli.main`) reads as a failure.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.run(sockets=listeners)
        if failed:
            raise UserError(f"cannot serve: {failed[0]}")
    finally:
        for listener in listeners:  # uvicorn closes them once it ran; here when serve stopped before it
            listener.close()
