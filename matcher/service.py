"""`creator-match serve`: the matcher over HTTP, for campaign tools in any language.

The creators table is read and validated before the server starts; the ranker, index and embedding model load in
the background while `/healthz` already answers and `/readyz` says 503 until they are in place. A promotion of the
model's alias is swapped in without dropping a request (`matcher.model_holder`); the bodies are in
`matcher.service_models`.

Bad input is answered 422 with the reasons the command line gives for the same rows (the same row models and
table validation, a repeated key included), oversized bodies 413, bodies not sent as JSON (or sent compressed)
415, a body not whole within 30 s 408, one whose client hung up 400, more campaigns than `max_campaigns` 413;
nothing the caller sent produces a 500 or a traceback. A request whose client went away before its work started is
not run (one line in the log, status 499, which no one reads); work a worker process has started runs to its end.
Beyond `max_connections` open connections a request is answered 503 at once by uvicorn (`server_config`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from features.contract import ASIN_PATTERN, MARKETPLACE_PATTERN
from features.rows import CampaignRow
from features.tables import (
    Table,
    error_reason,
    header_names,
    misspelt_columns,
    repeat_noting_decoder,
    shown_ids,
    shown_value,
    unknown_column_note,
    validate_records,
)
from matcher.api import MATCH_COLUMNS, SlateEntry
from matcher.model_holder import ModelHolder, NotServing, ServiceConfig, log
from matcher.service_models import (
    LookalikeEntry,
    MatchResponse,
    Message,
    Readiness,
    Refusal,
    SimilarRequest,
    SimilarResponse,
)

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "CLIENT_CLOSED_REQUEST",
    "DISCONNECT_POLL_SECONDS",
    "MAX_JSON_DEPTH",
    "LookalikeEntry",
    "ModelHolder",
    "ServiceConfig",
    "SimilarRequest",
    "create_app",
    "server_config",
]

if TYPE_CHECKING:
    from matcher.service_workers import WorkerPool

# A list of campaigns is 3 deep (the list, a campaign, its asins): a body nested far deeper is refused before
# validation and pandas walk it; Python's parser gives up by itself near 1,000 levels (RecursionError), refused alike.
MAX_JSON_DEPTH = 32
_TOO_DEEP = f"JSON nested more than {MAX_JSON_DEPTH} levels deep; a request needs at most 3"
_RETRY_AFTER_SECONDS = 5
# How long a request's body may take to arrive whole.
BODY_TIMEOUT_SECONDS = 30.0
# How often a request waiting for a worker process asks whether its client is still there.
DISCONNECT_POLL_SECONDS = 0.25
# The status logged for a request dropped because its client went away (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499
_JSON = "application/json"
# A 415's headers: the media type expected, and no content encoding (RFC 7694).
_UNCOMPRESSED_JSON = {"Accept": _JSON, "Accept-Encoding": "identity"}
_REF_TEMPLATE = "#/components/schemas/{model}"

_CAMPAIGNS_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/CampaignRow"},
        {"type": "array", "items": {"$ref": "#/components/schemas/CampaignRow"}, "minItems": 1},
    ]
}
# What /v1/match and /v1/similar answer besides 200: each body exactly as `HTTPException` writes it.
_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The client hung up before its body was whole (no one reads this answer)."},
    408: {"model": Message, "description": "The body did not arrive whole within `BODY_TIMEOUT_SECONDS` (30 s)."},
    413: {
        "model": Message,
        "description": "The body is over `--max-body-bytes` (declared or streamed), or holds more campaigns than "
        "`--max-campaigns` (/v1/match).",
    },
    415: {
        "model": Message,
        "description": "The Content-Type is not JSON (`application/json`, or `application/*+json`), or is missing; "
        "or the body has a Content-Encoding (gzip, ...): bodies are read as sent.",
        "headers": {
            "Accept": {"description": "the media type expected", "schema": {"type": "string"}},
            "Accept-Encoding": {"description": "`identity`: no content encoding", "schema": {"type": "string"}},
        },
    },
    422: {
        "model": Refusal,
        "description": "The body is not JSON, is nested too deep, or holds invalid fields: every reason.",
    },
    503: {
        "model": Message,
        "description": "The model or index is still loading (or failed to load, or no worker process serves, or the "
        "worker process answering the request stopped).",
        "headers": {
            "Retry-After": {"description": "seconds to wait before asking again", "schema": {"type": "integer"}}
        },
    },
}


def server_config(backend: ModelHolder | WorkerPool, host: str = "127.0.0.1", port: int = 0) -> uvicorn.Config:
    """uvicorn's configuration of the service over `backend`: its app, and the connection limits of its config.

    uvicorn bounds open connections only by answering 503 to a request that arrives beyond `max_connections`, and
    times out neither a request's headers nor a connection that sends nothing: docs/service.md says which proxy
    settings do.
    """
    config = backend.config
    return uvicorn.Config(
        create_app(backend),
        host=host,
        port=port,
        log_level="warning",
        limit_concurrency=config.max_connections,
        timeout_keep_alive=config.keep_alive_seconds,
    )


def create_app(backend: ModelHolder | WorkerPool) -> FastAPI:
    """The FastAPI application over the matcher in service: in this process (`ModelHolder`) or in worker
    processes (`matcher.service_workers.WorkerPool`). The backend is stopped with the app's lifespan."""
    limit = backend.config.max_body_bytes
    most_campaigns = backend.config.max_campaigns

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        backend.stop()

    app = FastAPI(
        title="creator-matcher",
        summary="Which creators to invite to a commission campaign, and creators like the ones that sold.",
        version="1",
        lifespan=lifespan,
        # A path with a trailing slash is not found: starlette's redirect names the Host the request did, which
        # behind a proxy passing its own is the proxy's upstream (http://127.0.0.1:8000), where a client that
        # follows it posts its campaigns to its own machine.
        redirect_slashes=False,
    )
    if backend.config.allowed_hosts != ("*",):
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(backend.config.allowed_hosts))

    async def answer(request: Request, work: str, *args):
        """The backend's `work` ("match" or "similar") on `args`, without a thread waiting on a worker process; 503
        (with Retry-After) while the backend is not serving. A request whose client went away before its answer is
        dropped (`_dropped`): its work is not started if it has not been, which is checked before it starts and,
        while it waits for a worker process, every `DISCONNECT_POLL_SECONDS`."""
        try:
            if await request.is_disconnected():
                raise _dropped(request, started=False)
            if isinstance(backend, ModelHolder):  # a call begun on a thread cannot be stopped: it is not watched
                return await run_in_threadpool(getattr(backend, work), *args)
            call = backend.submit(work, *args)
            waiting = asyncio.wrap_future(call)
            # Its outcome is read from `call` (or by no one, the client gone): asyncio would log an exception of
            # `waiting` that nobody retrieved.
            waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
            while not (await asyncio.wait([waiting], timeout=DISCONNECT_POLL_SECONDS))[0]:
                if await request.is_disconnected():
                    started = not call.cancel()  # refused once a worker process has the call: it runs to its end
                    raise _dropped(request, started)
            return backend.outcome(call)
        except NotServing as exc:
            headers = {"Retry-After": str(_RETRY_AFTER_SECONDS)}
            raise HTTPException(503, detail=str(exc), headers=headers) from exc

    # HEAD too: health checkers that ask with HEAD were answered 405.
    @app.get("/healthz")
    @app.head("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    not_ready = {503: {"model": Readiness, "description": "model or index still loading, or failed to load"}}

    @app.get("/readyz", response_model=Readiness, responses=not_ready)
    @app.head("/readyz", response_model=Readiness, responses=not_ready)
    def readyz() -> JSONResponse:
        """Ready once the model and index are loaded (in every worker process)."""
        ready, body = backend.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.post("/v1/match", response_model=MatchResponse, responses=_REFUSALS, openapi_extra=_body(_CAMPAIGNS_SCHEMA))
    async def match(request: Request) -> Response:
        """Slates for one campaign or a list (the contract's campaign fields): the matches rows and a summary each.

        A list is matched as one batch run, like `creator-match match` on the same rows, so a creator's
        capacity is shared across it. If any campaign is invalid, none is matched: 422 names every bad field.
        """
        payload, repeats = await _json_body(request, limit)
        if not isinstance(payload, dict) and not (isinstance(payload, list) and payload):
            reason = f"got {shown_value(payload)}; expected a campaign object or a non-empty list of them"
            raise _refused("campaigns", "(body)", reason)
        records = payload if isinstance(payload, list) else [payload]
        if len(records) > most_campaigns:  # before validation, which is work too
            detail = (
                f"got {len(records):,} campaigns; expected at most {most_campaigns:,} a request: "
                "match larger batches with `creator-match match`"
            )
            raise HTTPException(413, detail=detail)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise _refused("campaigns", "(body)", f"[{i}]: got {shown_value(record)}; expected a campaign object")
        table = validate_records(records, "campaigns", repeats, "this campaign")
        if table.rejects:
            problems = [asdict(reject) | {"message": reject.line()} for reject in table.rejects]
            raise HTTPException(422, detail=problems)
        version, result = await answer(request, "match", table)
        # The matcher's own rows, typed by the matches table: not validated again field by field, and written
        # once (a response returned as such skips FastAPI's second validation; /docs still shows MatchResponse).
        # The rows from the table's column lists (Python values): to_dict(orient="records") boxed cell by cell.
        rows = zip(*(result.matches[name].tolist() for name in MATCH_COLUMNS), strict=True)
        reply = MatchResponse.model_construct(
            model_version=version,
            matches=[SlateEntry.model_construct(**dict(zip(MATCH_COLUMNS, row, strict=True))) for row in rows],
            summaries=result.summaries,
            notes=[*_field_notes(records, table), *result.notes],
        )
        return Response(reply.model_dump_json(), media_type=_JSON)

    @app.post(
        "/v1/similar",
        response_model=SimilarResponse,
        responses=_REFUSALS,
        openapi_extra=_body({"$ref": "#/components/schemas/SimilarRequest"}),
    )
    async def similar(request: Request) -> SimilarResponse:
        """Creators like the given ones, best first, with what they share with them; the seeds are excluded."""
        payload, repeats = await _json_body(request, limit)
        if not isinstance(payload, dict):
            raise _refused("similar", "(body)", f"got {shown_value(payload)}; expected an object with creator_ids")
        # Which of a repeated field's values was meant is a guess, as in a campaign: json would keep the last.
        for key in (key for within, counts in repeats if within is payload for key, n in counts.items() if n > 1):
            if key in SimilarRequest.model_fields:
                raise _refused("similar", key, f"key {key!r} appears twice in this request; expected each key once")
        try:
            ask = SimilarRequest.model_validate(payload)
        except ValidationError as exc:
            raise HTTPException(422, detail=_field_problems("similar", exc)) from exc
        try:
            version, found, notes = await answer(
                request, "similar", ask.creator_ids, ask.k, ask.marketplaces, ask.creator_types
            )
        except ValueError as exc:
            raise _lookalike_refusal(str(exc)) from exc
        rows = [
            {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
            for row in found.to_dict(orient="records")
        ]
        return SimilarResponse(model_version=version, lookalikes=rows, notes=notes)

    def _openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["CampaignRow"] = _campaign_schema()
            components["SimilarRequest"] = SimilarRequest.model_json_schema(ref_template=_REF_TEMPLATE)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = _openapi
    return app


def _campaign_schema() -> dict:
    """CampaignRow's JSON schema with the ASIN and marketplace patterns, which its validators check in code where
    pydantic cannot see them."""
    schema = CampaignRow.model_json_schema(ref_template=_REF_TEMPLATE)
    schema["properties"]["asins"]["items"]["pattern"] = ASIN_PATTERN.pattern
    schema["properties"]["marketplaces"]["items"]["pattern"] = MARKETPLACE_PATTERN.pattern
    return schema


def _body(schema: dict) -> dict:
    """The OpenAPI request body of an endpoint that reads and validates its JSON itself."""
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": schema}}}}


async def _json_body(request: Request, limit: int) -> tuple[Any, list]:
    """The request's JSON, and the objects in it that repeat a key (`repeat_noting_decoder`, as the command line
    reads a JSON Lines line): refused with 415 unless sent as JSON and uncompressed, 413 past `limit` bytes
    (declared or streamed), and 422 when not JSON or nested more than MAX_JSON_DEPTH deep."""
    content_type = request.headers.get("content-type")
    if not _is_json(content_type):
        got = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        raise HTTPException(415, detail=f"got {got}; expected {_JSON}", headers=_UNCOMPRESSED_JSON)
    encoding = request.headers.get("content-encoding", "identity")
    if encoding.strip().lower() != "identity":
        # Read as it came, a gzip body was refused as "'utf-8' codec can't decode byte 0x8b": nothing said why.
        detail = f"got Content-Encoding {encoding!r}; content encodings are not accepted: send the JSON uncompressed"
        raise HTTPException(415, detail=detail, headers=_UNCOMPRESSED_JSON)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"request body of {declared} bytes; expected at most {limit}")
    body = bytearray()
    try:
        # A client that sends part of a body and waits would hold a connection and its buffer for ever.
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise HTTPException(413, detail=f"request body over {limit} bytes")
    # Closed after the answer: the body was never finished, and a client that trickled on past the 408 held the
    # connection, kept alive, for good.
    except TimeoutError as exc:
        detail = f"request body not whole within {BODY_TIMEOUT_SECONDS:g} s"
        raise HTTPException(408, detail=detail, headers={"Connection": "close"}) from exc
    except ClientDisconnect as exc:  # uncaught, a traceback in the service's log for a client's hang-up
        detail = "the client hung up before its body was whole"
        raise HTTPException(400, detail=detail, headers={"Connection": "close"}) from exc
    decoder, repeats = repeat_noting_decoder()
    try:
        # Decoded as json.loads decodes bytes (UTF-8, -16 or -32), for the decoder that notes repeated keys.
        payload = decoder.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError as exc:
        raise _refused("request", "(body)", _TOO_DEEP) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _refused("request", "(body)", f"not JSON: {exc}") from exc
    except ValueError as exc:  # a number of more digits than Python converts: the decoder's own plain reason
        raise _refused("request", "(body)", str(exc)) from exc
    if _nested_deeper(payload, MAX_JSON_DEPTH):
        raise _refused("request", "(body)", _TOO_DEEP)
    return payload, repeats


def _field_notes(records: list[dict], table: Table) -> list[str]:
    """A note per field of the request that the campaigns table does not read but that probably stands for one it
    does (`misspelt_columns`, the command line's rule), naming the campaigns that sent it: by id, or by row (their
    position, from 1) for one without."""
    ids = dict(zip(table.frame["row"].tolist(), table.frame["campaign_id"].tolist(), strict=True))
    sent: dict[tuple[str, str], list[str]] = {}
    for row, record in enumerate(records, start=1):
        for field, name in misspelt_columns(header_names(record), "campaigns").items():
            sent.setdefault((field, name), []).append(ids.get(row) or f"row {row}")
    return [
        unknown_column_note(
            f"campaign{'s' if len(which) > 1 else ''} {shown_ids(which)}", "field", field, "campaigns", name
        )
        for (field, name), which in sent.items()
    ]


def _is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type, with any parameters: what FastAPI reads as JSON. Not a missing type nor
    `text/plain` or a form: those are what a web page may send to this port without the browser asking first."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


def _nested_deeper(value: Any, depth: int) -> bool:
    """True if arrays and objects nest more than `depth` levels in `value`; level by level, without recursion."""
    level = [value] if isinstance(value, list | dict) else []
    for _ in range(depth):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, list | dict)
        ]
        if not level:
            return False
    return True


def _field_problems(table: str, error: ValidationError) -> list[dict]:
    """A 422's problems for a request model's errors: one per field, worded as table validation words a bad cell
    ("got 0; input should be greater than or equal to 1"), its position in a list first ("[1]: ")."""
    problems: dict[str, dict] = {}
    for item in error.errors(include_url=False):
        column = str(item["loc"][0]) if item["loc"] else "(body)"
        if column in problems:
            continue
        problems[column] = _problem(table, column, error_reason(item, position=1))
    return list(problems.values())


def _problem(table: str, column: str, reason: str) -> dict:
    return {
        "table": table,
        "row": 1,
        "id": "",
        "column": column,
        "reason": reason,
        "message": f"{table}: column {column}: {reason}",
    }


def _refused(table: str, column: str, reason: str) -> HTTPException:
    return HTTPException(422, detail=[_problem(table, column, reason)])


def _dropped(request: Request, started: bool) -> HTTPException:
    """The answer of a request whose client went away before it: one line in the log, and status 499 (nginx's
    "client closed request"), which no client sees and which leaves no traceback."""
    work = "had started and runs to its end, its answer dropped" if started else "had not started and never runs"
    log.warning(
        "%s %s: the client went away before its answer; its work %s (%d)",
        request.method,
        request.url.path,
        work,
        CLIENT_CLOSED_REQUEST,
    )
    return HTTPException(CLIENT_CLOSED_REQUEST, detail="the client closed the request", headers={"Connection": "close"})


def _lookalike_refusal(message: str) -> HTTPException:
    """The 422 of a lookalike error ("Got creator_type 'x'; ..."): the request field it is about (creator_types),
    and the message as the reason, led by a lower-case "got" as every other reason of the service is (the error
    itself starts a sentence: the Python API's exception, the command line's refusal)."""
    found = re.match(r"Got (\w+)", message)
    name = found.group(1) if found else ""
    fields = {"creator_id": "creator_ids", "creator_type": "creator_types", "marketplace": "marketplaces"}
    reason = f"got{message.removeprefix('Got')}" if found else message
    return _refused("similar", fields.get(name, name), reason)
