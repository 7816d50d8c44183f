"""`creator-match serve`: the matcher over HTTP, for campaign tools in any language.

The creators table is read and validated before the server starts; the ranker, index and embedding model load in
the background while `/healthz` already answers and `/readyz` says 503 until they are in place. A promotion of the
model's alias is swapped in without dropping a request (`matcher.model_holder`); the bodies are in
`matcher.service_models`.

Bad input is answered 422 with the reasons the command line gives for the same rows (the same row models and
table validation), oversized bodies 413; nothing the caller sent produces a 500.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from features.rows import CampaignRow
from features.tables import validate_frame
from matcher.api import MATCH_COLUMNS, SlateEntry
from matcher.model_holder import ModelHolder, NotServing, ServiceConfig
from matcher.service_models import LookalikeEntry, MatchResponse, Problem, SimilarRequest, SimilarResponse

__all__ = ["LookalikeEntry", "ModelHolder", "ServiceConfig", "SimilarRequest", "create_app"]

if TYPE_CHECKING:
    from matcher.service_workers import WorkerPool


_CAMPAIGNS_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/CampaignRow"},
        {"type": "array", "items": {"$ref": "#/components/schemas/CampaignRow"}, "minItems": 1},
    ]
}


def create_app(backend: ModelHolder | WorkerPool) -> FastAPI:
    """The FastAPI application over the matcher in service: in this process (`ModelHolder`) or in worker
    processes (`matcher.service_workers.WorkerPool`). The backend is stopped with the app's lifespan."""
    limit = backend.config.max_body_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        backend.stop()

    app = FastAPI(
        title="creator-matcher",
        summary="Which creators to invite to a commission campaign, and creators like the ones that sold.",
        version="1",
        lifespan=lifespan,
    )

    async def answer(call, *args):
        """`call(*args)` on a worker thread; 503 (with Retry-After) while the backend is not serving."""
        try:
            return await run_in_threadpool(call, *args)
        except NotServing as exc:
            raise HTTPException(503, detail=str(exc), headers={"Retry-After": "5"}) from exc

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "model or index still loading, or failed to load"}})
    def readyz() -> JSONResponse:
        """Ready once the model and index are loaded (in every worker process)."""
        ready, body = backend.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.post(
        "/v1/match",
        response_model=MatchResponse,
        responses={422: {"model": list[Problem]}, 413: {"description": "body too large"}},
        openapi_extra=_body(_CAMPAIGNS_SCHEMA),
    )
    async def match(request: Request) -> Response:
        """Slates for one campaign or a list (the contract's campaign fields): the matches rows and a summary each.

        A list is matched as one batch run, like `creator-match match` on the same rows, so a creator's
        capacity is shared across it. If any campaign is invalid, none is matched: 422 names every bad field.
        """
        payload = await _json_body(request, limit)
        records = payload if isinstance(payload, list) else [payload]
        if not records or not all(isinstance(record, dict) for record in records):
            raise _refused("campaigns", "(body)", "expected a campaign object or a non-empty list of them")
        table = validate_frame(pd.DataFrame.from_records(records), "campaigns")
        if table.rejects:
            problems = [asdict(reject) | {"message": reject.line()} for reject in table.rejects]
            raise HTTPException(422, detail=problems)
        version, result = await answer(backend.match, table)
        # The matcher's own rows, typed by the matches table: not validated again field by field, and written
        # once (a response returned as such skips FastAPI's second validation; /docs still shows MatchResponse).
        # The rows from the table's column lists (Python values): to_dict(orient="records") boxed cell by cell.
        rows = zip(*(result.matches[name].tolist() for name in MATCH_COLUMNS), strict=True)
        reply = MatchResponse.model_construct(
            model_version=version,
            matches=[SlateEntry.model_construct(**dict(zip(MATCH_COLUMNS, row, strict=True))) for row in rows],
            summaries=result.summaries,
        )
        return Response(reply.model_dump_json(), media_type="application/json")

    @app.post(
        "/v1/similar",
        response_model=SimilarResponse,
        responses={422: {"model": list[Problem]}, 413: {"description": "body too large"}},
        openapi_extra=_body({"$ref": "#/components/schemas/SimilarRequest"}),
    )
    async def similar(request: Request) -> SimilarResponse:
        """Creators like the given ones, best first, with what they share with them; the seeds are excluded."""
        payload = await _json_body(request, limit)
        try:
            ask = SimilarRequest.model_validate(payload)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            column = ".".join(str(part) for part in error["loc"]) or "(body)"
            raise _refused("similar", column, error["msg"]) from exc
        try:
            version, found = await answer(backend.similar, ask.creator_ids, ask.k, ask.marketplaces, ask.creator_types)
        except ValueError as exc:
            raise _refused("similar", _column_of(str(exc)), str(exc)) from exc
        rows = [
            {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
            for row in found.to_dict(orient="records")
        ]
        return SimilarResponse(model_version=version, lookalikes=rows)

    def _openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (CampaignRow, SimilarRequest):
                components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = _openapi
    return app


def _body(schema: dict) -> dict:
    """The OpenAPI request body of an endpoint that reads and validates its JSON itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _json_body(request: Request, limit: int) -> Any:
    """The request's JSON, refused with 413 past `limit` bytes (declared or streamed) and 422 when not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"request body of {declared} bytes; expected at most {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, detail=f"request body over {limit} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refused("request", "(body)", f"not JSON: {exc}") from exc


def _refused(table: str, column: str, reason: str) -> HTTPException:
    line = f"{table}: column {column}: {reason}"
    return HTTPException(
        422, detail=[{"table": table, "row": 1, "id": "", "column": column, "reason": reason, "message": line}]
    )


def _column_of(message: str) -> str:
    """The request field a lookalike error is about ("Got creator_type 'x'; ..." -> creator_types)."""
    found = re.match(r"Got (\w+)", message)
    name = found.group(1) if found else ""
    return {"creator_id": "creator_ids", "creator_type": "creator_types", "marketplace": "marketplaces"}.get(name, name)
