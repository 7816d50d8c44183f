"""The HTTP service's request and response bodies (the matches rows are `matcher.api.SlateEntry`).

Every body the service answers with is one of these, refusals included: /openapi.json declares them, and the
tests check real answers against what it declares.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from features.contract import CREATOR_TYPES, MARKETPLACE_PATTERN
from matcher.api import CampaignSummary, SlateEntry

__all__ = [
    "MAX_LOOKALIKES",
    "LookalikeEntry",
    "MatchResponse",
    "Message",
    "NotServed",
    "Problem",
    "Readiness",
    "Refusal",
    "SimilarRequest",
    "SimilarResponse",
    "WorkerCount",
]

# The most lookalikes one request may ask for: a bound on one request's work, not a property of the search.
MAX_LOOKALIKES = 1000

# Shown in the schema only: the codes and types are checked by `Matcher.similar`, whose reasons the 422 carries.
_MarketplaceCode = Annotated[str, WithJsonSchema({"type": "string", "pattern": MARKETPLACE_PATTERN.pattern})]
_CreatorTypeName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(CREATOR_TYPES)})]


class SimilarRequest(BaseModel):
    """Creators like these: seed ids and optional filters."""

    model_config = ConfigDict(extra="forbid")

    creator_ids: Annotated[list[str], Field(min_length=1)]
    k: Annotated[int, Field(ge=1, le=MAX_LOOKALIKES, strict=True)] = 20
    # An empty list would filter to no marketplace or type at all: null or absent means no filter.
    marketplaces: Annotated[list[_MarketplaceCode], Field(min_length=1)] | None = None
    creator_types: Annotated[list[_CreatorTypeName], Field(min_length=1)] | None = None


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
    notes: list[str] = Field(
        default_factory=list,
        description="what the client should check in its request, one line each: a field the campaigns table "
        "does not read that looks like one it does, misspelt (ignored, so that field took its default), or a "
        "marketplace no creator states an audience in (creators who state one are then left out of a campaign sold "
        "only there)",
    )


class SimilarResponse(BaseModel):
    model_version: str
    lookalikes: list[LookalikeEntry]
    notes: list[str] = Field(
        default_factory=list,
        description="what the client should check in its request, one line each: an asked marketplace no creator "
        "states an audience in (creators who state one are then left out when no asked marketplace is stated)",
    )


class Problem(BaseModel):
    """One reason a request was refused: the rejects file's fields, and its one-line form."""

    table: str
    row: int
    id: str
    column: str
    reason: str
    message: str


class Refusal(BaseModel):
    """A 422: every reason the request was refused."""

    detail: list[Problem]


class Message(BaseModel):
    """A 413, 415 or 503: why, in one line."""

    detail: str


class WorkerCount(BaseModel):
    """`serve --workers N`: how many of the N worker processes serve."""

    serving: int
    of: int
    replacement_failure: str | None = Field(
        default=None,
        description="present while the replacement of a worker process that died could not load (it is tried again, "
        "1 s to 60 s apart): why the last attempt failed",
    )


class NotServed(BaseModel):
    """The version the model alias points at that could not be loaded: the service keeps the one it has."""

    model_version: str
    reason: str
    retried: bool = Field(
        description="true: it failed for a reason outside it (a file missing or unreadable, the registry) and is "
        "tried again at each poll; false: its own content cannot be served here (another embedding model, an "
        "incompatible pickle), and it is not tried again"
    )


class Readiness(BaseModel):
    """/readyz: `ready` (200) with the version in service, else `loading` or `failed` (503) with the reason; `ready`
    has a reason too while some of the worker processes (`serve --workers N`) are being replaced."""

    status: Literal["ready", "loading", "failed"]
    reason: str | None = None
    model_version: str | None = None
    creators: int | None = None
    workers: WorkerCount | None = None
    not_served: NotServed | None = Field(
        default=None,
        description="present while the alias points at a version that could not be loaded (model_version is then "
        "the version still in service)",
    )
