"""The matches table, defined once: its columns and their types, and the typed forms the Python API returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from features.tables import Reject

__all__ = [
    "CANDIDATE_COLUMNS",
    "CANDIDATE_SCHEMA",
    "MATCH_COLUMNS",
    "MATCH_SCHEMA",
    "SUMMARY_SCHEMA",
    "CampaignSummary",
    "MatchResult",
    "SlateEntry",
    "empty_matches",
    "summaries_table",
]

# The contract's matches table: every other form of it (columns, empty frame, typed row) is derived from this.
MATCH_SCHEMA = pa.schema(
    [
        ("campaign_id", pa.string()),
        ("rank", pa.int64()),
        ("creator_id", pa.string()),
        ("score", pa.float64()),
        ("p_click", pa.float64()),
        ("p_order", pa.float64()),
        ("expected_clicks", pa.float64()),
        ("expected_orders", pa.float64()),
        ("expected_sales", pa.float64()),
        ("expected_commission", pa.float64()),
        ("funnel_stage", pa.string()),
        ("product_type", pa.string()),
        ("reasons", pa.string()),
        ("model_version", pa.string()),
    ]
)
MATCH_COLUMNS = list(MATCH_SCHEMA.names)
# Every pair a run scored, on a slate or not (`match --candidates-out`), for model review: `rank` is null off the
# slates; the evidence columns are what a reason would be written from.
CANDIDATE_SCHEMA = pa.schema(
    [
        *(MATCH_SCHEMA.field(name) for name in ("campaign_id", "creator_id", "rank")),
        # The score, the predictions behind it and the funnel stage, typed as in matches.
        *(
            MATCH_SCHEMA.field(name)
            for name in MATCH_COLUMNS[MATCH_COLUMNS.index("score") : MATCH_COLUMNS.index("funnel_stage") + 1]
        ),
        ("creator_type", pa.string()),
        ("hist_campaigns", pa.float64()),
        ("market_share", pa.float64()),
        ("fit_tag", pa.string()),
        ("fit_phrase", pa.string()),
        ("fit_similarity", pa.float64()),
        MATCH_SCHEMA.field("model_version"),
    ]
)
CANDIDATE_COLUMNS = list(CANDIDATE_SCHEMA.names)


def empty_matches() -> pd.DataFrame:
    """The matches table with no row, its columns typed as a filled one's: strings as pandas makes them (`str` from
    pandas 3; they were object, where a filled table's are `str`)."""
    return MATCH_SCHEMA.empty_table().to_pandas()


@dataclass
class CampaignSummary:
    """What happened to one campaign in a run."""

    campaign_id: str
    status: str  # matched, no eligible creator, candidates taken by capacity, out of stock
    product_type: str
    product_type_reason: str
    slate_size: int
    size_reason: str
    expected_orders: float
    expected_commission: float
    budget: float
    product_type_probability: float = float("nan")  # of non-standard; 0 or 1 when declared
    # The range of the slate's orders and commission (`training.forecast_interval`): NaN from a model without one
    # and in a category with no past campaign.
    expected_orders_low: float = float("nan")
    expected_orders_high: float = float("nan")
    expected_commission_low: float = float("nan")
    expected_commission_high: float = float("nan")


# `match --summaries-out`: one row per campaign, the columns CampaignSummary's fields, in their order.
SUMMARY_SCHEMA = pa.schema(
    [(f.name, {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}[f.type]) for f in fields(CampaignSummary)]
)


def summaries_table(summaries: list[CampaignSummary]) -> pd.DataFrame:
    """The summaries as a table of SUMMARY_SCHEMA's columns, one row per campaign in the run's order."""
    return pd.DataFrame([asdict(s) for s in summaries], columns=SUMMARY_SCHEMA.names).astype(
        {f.name: f.type.to_pandas_dtype() for f in SUMMARY_SCHEMA if not pa.types.is_string(f.type)}
    )


class SlateEntry(BaseModel):
    """One creator on a campaign's slate: a row of the contract's matches table, typed."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    rank: int
    creator_id: str
    score: float
    p_click: float
    p_order: float
    expected_clicks: float
    expected_orders: float
    expected_sales: float
    expected_commission: float
    funnel_stage: str
    product_type: str
    reasons: str
    model_version: str


@dataclass
class MatchResult:
    """The slates of a set of campaigns (the contract's matches table), a summary per valid campaign, and
    the invalid campaigns, each with its row (1-based position in the input), column and reason."""

    matches: pd.DataFrame
    summaries: list[CampaignSummary]
    rejects: list[Reject] = field(default_factory=list)
    candidates: pd.DataFrame | None = None  # every scored pair (CANDIDATE_COLUMNS), when asked for
    # What the caller should check in its input, one line each, also warned: a campaign column that is probably a
    # misspelt one (`product_typ`), a marketplace no creator reaches.
    notes: list[str] = field(default_factory=list)

    def for_campaign(self, campaign_id: object) -> pd.DataFrame:
        """One campaign's rows of the matches table, best first; `campaign_id` read as ids are read (the text, without
        the spaces around it), so the id a campaign was given with finds it: 17 was matched as "17", and `17` found
        nothing."""
        read = str(campaign_id).strip()
        return self.matches[self.matches["campaign_id"] == read].reset_index(drop=True)

    def slate(self, campaign_id: object) -> list[SlateEntry]:
        """One campaign's slate as typed entries, best first."""
        return [SlateEntry(**row) for row in self.for_campaign(campaign_id).to_dict(orient="records")]
