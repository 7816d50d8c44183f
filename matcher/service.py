"""`creator-match serve`: the matcher over HTTP, for campaign tools in any language.

The creators table is read and validated before the server starts; the ranker, index and embedding model load in
the background while `/healthz` already answers and `/readyz` says 503 until they are in place. When the model
URI is an alias (`models:/creator-ranker@champion`), the registry is polled and a promotion is picked up: the new
version is loaded whole beside the one in service, then a single reference is swapped. A request reads that
reference once, so it finishes on the matcher it started with, and none is dropped or fails during a swap.

Bad input is answered 422 with the reasons the command line gives for the same rows (the same row models and
table validation), oversized bodies 413; nothing the caller sent produces a 500.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.records import SettledPerformance
from features.rows import CampaignRow
from features.tables import Table, validate_frame
from matcher.api import CampaignSummary, Matcher, MatchSettings, SlateEntry

__all__ = ["LookalikeEntry", "ModelHolder", "ServiceConfig", "SimilarRequest", "create_app"]

log = logging.getLogger("creator_matcher.service")
DEFAULT_MAX_BODY_BYTES = 1_000_000
_ALIAS = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>.+)")


@dataclass(frozen=True)
class ServiceConfig:
    """What the service serves and how.

    Args:
        model: the model URI; an alias URI is watched for promotions.
        index: the candidate index directory, or None to build one from the creators at start-up.
        settings: eligibility, retrieval and slate settings, as `creator-match match` takes them.
        poll_seconds: how often the alias is looked up in the registry.
        max_body_bytes: largest request body accepted.
        performance: the latest performance table its creators are scored on (a promoted version too);
            None: each version's records as of its training.
    """

    model: str
    index: str | None = None
    settings: MatchSettings = field(default_factory=MatchSettings)
    poll_seconds: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    performance: SettledPerformance | None = None

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0:
            raise ValueError(f"Got poll_seconds={self.poll_seconds}; expected a positive number of seconds")
        if self.max_body_bytes < 1:
            raise ValueError(f"Got max_body_bytes={self.max_body_bytes}; expected at least 1")


class ModelHolder:
    """The matcher in service: loaded in the background, replaced whole when the alias moves.

    Args:
        creators: the creators table as read (its valid rows are served).
        config: the service's configuration.
    """

    def __init__(self, creators: Table, config: ServiceConfig) -> None:
        self.creators = creators
        self.config = config
        self.matcher: Matcher | None = None
        self.failure: str | None = None
        self._stop = threading.Event()
        self._refused: set[str] = set()  # versions that could not be served, not retried every poll

    def start(self, on_failure=None) -> threading.Thread:
        """Loads in a background thread, then watches the alias until `stop`; `on_failure(reason)` if loading fails."""
        thread = threading.Thread(target=self._run, args=(on_failure,), name="model-holder", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self, on_failure) -> None:
        try:
            self.matcher = self._ready(
                Matcher(
                    self.creators,
                    self.config.model,
                    self.config.index,
                    None,
                    self.config.settings,
                    self.config.performance,
                )
            )
        except Exception as exc:  # any failure to load is reported in one line, and the service stops
            self.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if on_failure is not None:
                on_failure(self.failure)
            return
        log.warning("serving %s", self.matcher.ranker.version)
        if _ALIAS.fullmatch(self.config.model):
            while not self._stop.wait(self.config.poll_seconds):
                self.refresh()

    def refresh(self) -> bool:
        """Serves the version the alias points at now, if it moved; True when a new version went into service."""
        from training.registry import load_ranker, resolve_version

        current = self.matcher
        try:
            target = resolve_version(self.config.model)
        except Exception as exc:  # the registry may be briefly unreachable: keep serving, ask again next time
            log.warning("cannot resolve %s: %s", self.config.model, exc)
            return False
        if current is None or target == current.ranker.version or target in self._refused:
            return False
        try:
            # The index, creator vectors and loaded encoder are shared; what the version learned is its own.
            ranker = load_ranker(f"models:/{target}")
            replacement = self._ready(
                Matcher(
                    self.creators,
                    ranker,
                    current.index,
                    current.embedder,
                    self.config.settings,
                    self.config.performance,
                )
            )
        except Exception as exc:  # e.g. trained with another embedding model: keep serving the current one
            log.warning("not serving %s (still %s): %s", target, current.ranker.version, exc)
            self._refused.add(target)
            return False
        self.matcher = replacement  # one reference: requests already running keep the matcher they read
        log.warning("now serving %s (was %s)", replacement.ranker.version, current.ranker.version)
        return True

    @staticmethod
    def _ready(matcher: Matcher) -> Matcher:
        """Builds what the first requests would otherwise pay for: per-category retrieval and lookalike tables."""
        matcher.warm()
        _ = matcher.lookalikes
        return matcher


class SimilarRequest(BaseModel):
    """Creators like these: seed ids and optional filters."""

    model_config = ConfigDict(extra="forbid")

    creator_ids: Annotated[list[str], Field(min_length=1)]
    k: Annotated[int, Field(ge=1, le=1000)] = 20
    marketplaces: list[str] | None = None
    creator_types: list[str] | None = None


class LookalikeEntry(BaseModel):
    """One lookalike: scores in [0, 1] (null where a view is not defined) and why."""

    rank: int
    creator_id: str
    score: float
    profile_similarity: float
    market_overlap: float | None
    record_similarity: float | None
    creator_type: str
    reasons: str


class MatchResponse(BaseModel):
    model_version: str
    matches: list[SlateEntry]
    summaries: list[CampaignSummary]


class SimilarResponse(BaseModel):
    model_version: str
    lookalikes: list[LookalikeEntry]


class Problem(BaseModel):
    """One reason a request was refused: the rejects file's fields, and its one-line form."""

    table: str
    row: int
    id: str
    column: str
    reason: str
    message: str


_CAMPAIGNS_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/CampaignRow"},
        {"type": "array", "items": {"$ref": "#/components/schemas/CampaignRow"}, "minItems": 1},
    ]
}


def create_app(holder: ModelHolder) -> FastAPI:
    """The FastAPI application over a ModelHolder (started by the app's lifespan, stopped with it)."""
    limit = holder.config.max_body_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        holder.stop()

    app = FastAPI(
        title="creator-matcher",
        summary="Which creators to invite to a commission campaign, and creators like the ones that sold.",
        version="1",
        lifespan=lifespan,
    )

    def serving() -> Matcher:
        matcher = holder.matcher
        if matcher is None:
            raise HTTPException(503, detail=holder.failure or "loading", headers={"Retry-After": "5"})
        return matcher

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "model or index still loading, or failed to load"}})
    def readyz() -> JSONResponse:
        """Ready once the model and index are loaded."""
        matcher = holder.matcher
        if matcher is None:
            status = "failed" if holder.failure else "loading"
            return JSONResponse({"status": status, "reason": holder.failure}, status_code=503)
        return JSONResponse(
            {"status": "ready", "model_version": matcher.ranker.version, "creators": len(matcher.creators)}
        )

    @app.post(
        "/v1/match",
        response_model=MatchResponse,
        responses={422: {"model": list[Problem]}, 413: {"description": "body too large"}},
        openapi_extra=_body(_CAMPAIGNS_SCHEMA),
    )
    async def match(request: Request) -> MatchResponse:
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
        matcher = serving()
        result = await run_in_threadpool(matcher.match_many, table, progress=False)
        return MatchResponse(
            model_version=matcher.ranker.version,
            matches=[SlateEntry(**row) for row in result.matches.to_dict(orient="records")],
            summaries=result.summaries,
        )

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
        matcher = serving()
        try:
            found = await run_in_threadpool(
                matcher.similar, ask.creator_ids, ask.k, ask.marketplaces, ask.creator_types
            )
        except ValueError as exc:
            raise _refused("similar", _column_of(str(exc)), str(exc)) from exc
        rows = [
            {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
            for row in found.to_dict(orient="records")
        ]
        return SimilarResponse(model_version=matcher.ranker.version, lookalikes=rows)

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
