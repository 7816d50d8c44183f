"""The HTTP service's request and response bodies (the matches rows are `matcher.api.SlateEntry`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from matcher.api import CampaignSummary, SlateEntry

__all__ = ["LookalikeEntry", "MatchResponse", "Problem", "SimilarRequest", "SimilarResponse"]


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
