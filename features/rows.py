"""One pydantic model per contract table: the rules a single row must satisfy."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import decimal
import math
import numbers
import re
from typing import Annotated, Literal

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from features.contract import ASIN_PATTERN, MARKETPLACE_PATTERN, MAX_ASINS, CreatorType, Platform, ProductType

__all__ = [
    "MAX_PRICE",
    "CampaignRow",
    "CreatorRow",
    "PerformanceRow",
    "PurchaseRow",
    "TouchRow",
    "several_in_one",
    "vocabulary_word",
]


def _whole(value: object) -> object:
    # A count in scientific notation, as a spreadsheet exports a large one (`1.23E+05`), is read when whole, as
    # `90998.0` is; a fractional one is left to be refused as any other. Up to 18 digits: a wider one is no count.
    if isinstance(value, str) and ("e" in value or "E" in value):
        with contextlib.suppress(ArithmeticError):  # decimal.InvalidOperation for text that is no number
            number = decimal.Decimal(value.strip())
            if number.is_finite() and number.adjusted() < 18 and number == number.to_integral_value():
                return int(number)
    return value


def vocabulary_word(value: object) -> object:
    """A vocabulary's word as the contract writes it: trimmed, lower case (anything else as it is)."""
    # A vocabulary's word as a person or a spreadsheet writes it (`Instagram`, `Standard`, `review_site `) is
    # the contract's word, which is what is kept. A Python call per cell: about 0.1 s for a million creators.
    return value.strip().lower() if isinstance(value, str) else value


NonEmptyId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0), BeforeValidator(_whole)]
# The highest price a campaign may state, in its currency: a billion is beyond any product sold through creators
# in the contract's marketplaces (in yen, the currency of least value among them, about 6 million dollars), so a
# larger price is a data error (a misplaced exponent, a price in the wrong unit). It also keeps the slate
# assignment's numbers where HiGHS solves them: scores are expected sales (orders x price), and the programme's
# costs and budget rows, at a few times a score, must stay below HiGHS's infinite cost (1e20) and largest matrix
# value (1e15). At a price of 1e15 a budget row broke the solve, and with it the whole batch; 1e9 leaves a
# million-fold margin. A budget needs no such bound: it enters a row only when below what a slate could spend.
MAX_PRICE = 1e9
# Shares are usually exported rounded (to 4 decimals, or whole percents), so three of them that truly sum
# to 1 can add up to 1.0001 or 1.015; only a sum above 1 by more than rounding is a bad row.
SHARE_SUM_TOLERANCE = 0.005


def _shown(value: str) -> str:
    # repr keeps a reason on one line whatever the value holds; the cut keeps it short.
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def several_in_one(item: object) -> str:
    """For a list item that holds several items joined by commas or semicolons (`US, CA`, `instagram;tiktok`), how
    a CSV list is written, as advice to add to its reason; "" for any other.

    The CSV reader splits a list cell on `|` alone, so a seller's `US, CA` was one item, refused as "not a
    marketplace code" without a word on why two good codes were not read as two.
    """
    if not isinstance(item, str) or not _JOINERS.search(item):
        return ""
    parts = [part for part in _JOINERS.split(item.strip()) if part]
    return f"several in one item? a CSV list is written a|b|c: {_shown('|'.join(parts))}" if len(parts) > 1 else ""


_JOINERS = re.compile(r"\s*[,;]\s*")


def _marketplace(code: str) -> str:
    # fullmatch: with match, `$` also matches before a trailing newline, so "US\n" passed.
    if not MARKETPLACE_PATTERN.fullmatch(code):
        advice = f"; {several}" if (several := several_in_one(code)) else ""
        raise PydanticCustomError(
            "marketplace",
            "{code} is not a marketplace code (two upper-case letters{advice})",
            {"code": _shown(code), "advice": advice},
        )
    return code


def _asin(asin: str) -> str:
    if not ASIN_PATTERN.fullmatch(asin):
        advice = f"; {several}" if (several := several_in_one(asin)) else ""
        raise PydanticCustomError(
            "asin",
            "{asin} is not an ASIN (10 upper-case letters or digits{advice})",
            {"asin": _shown(asin), "advice": advice},
        )
    return asin


def _not_a_bool(value: object) -> object:
    # pydantic's lax mode reads True as 1.0: a flag in a money or rate field is a mistake, not a price of 1.
    if isinstance(value, bool):
        raise PydanticCustomError("bool_number", "Input should be a number, not a boolean")
    return value


def _stripped(value: object) -> object:
    # pydantic reads a number padded with spaces (" 10.79 ") but not a flag (" false"), which rejected the row. A
    # Python call per cell: about 0.05 s for a million creators' flags, against a whole row lost.
    return value.strip() if isinstance(value, str) else value


def _distinct(values: list) -> list:
    # A code listed twice is the same marketplace (or product): counted twice, a campaign's expected audience share
    # summed the same market twice.
    return list(dict.fromkeys(values))


def _few_enough_asins(asins: list[str]) -> list[str]:
    # After `_distinct`: an ASIN listed twice counts once, so 1,250 rows holding 1,200 products are a valid list.
    if len(asins) > MAX_ASINS:
        raise PydanticCustomError(
            "asin_count", "{count} distinct ASINs; expected at most {limit}", {"count": len(asins), "limit": MAX_ASINS}
        )
    return asins


Marketplace = Annotated[str, AfterValidator(_marketplace)]
Asin = Annotated[str, AfterValidator(_asin)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# A yes/no column: true or false, as a boolean or as text (any case; also yes/no, on/off, 1/0), spaces around it
# ignored as a number's are.
Flag = Annotated[bool, BeforeValidator(_stripped)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class CreatorRow(_Row):
    """A creator as the contract describes it."""

    creator_id: NonEmptyId
    handle: str | None = None
    creator_type: Annotated[CreatorType, BeforeValidator(vocabulary_word)]
    platforms: Annotated[list[Annotated[Platform, BeforeValidator(vocabulary_word)]], Field(min_length=1)]
    interest_tags: Annotated[list[Tag], Field(min_length=1)]
    bio: str | None = None
    followers: Count
    avg_views: Count | None = None
    audience_marketplaces: dict[Marketplace, Share] | None = None
    audience_mobile_share: Share | None = None
    avg_dwell_seconds: Annotated[float, Field(ge=0.0)] | None = None
    storefront_followers_30d: Count | None = None
    storefront_return_rate: Share | None = None
    disclosure_violations: Count = 0
    accepts_campaigns: Flag = True

    @field_validator("audience_marketplaces")
    @classmethod
    def _shares_sum_to_at_most_one(cls, shares: dict[str, float] | None) -> dict[str, float] | None:
        if shares and sum(shares.values()) > 1.0 + SHARE_SUM_TOLERANCE:
            raise PydanticCustomError(
                "share_sum",
                "audience shares sum to {total}; expected at most 1",
                {"total": f"{sum(shares.values()):.4f}"},
            )
        return shares


class CampaignRow(_Row):
    """A campaign as a seller creates it."""

    campaign_id: NonEmptyId
    brand: NonEmptyId
    brief: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, to_lower=True)]
    asins: Annotated[list[Asin], Field(min_length=1), AfterValidator(_distinct), AfterValidator(_few_enough_asins)]
    # Amounts and rate: numbers, given as numbers or as text (CSV), never as booleans (the creators table keeps
    # pydantic's plain numbers: it is validated a column at a time, and a Python check per cell would cost its
    # million rows seconds). The bounds come before the bool check: so placed, the schema states them in JSON
    # Schema's words (exclusiveMinimum, maximum); after it, pydantic wrote gt and le, which validators ignore.
    price: Annotated[float, Field(gt=0.0, le=MAX_PRICE), BeforeValidator(_not_a_bool)]
    commission_rate: Annotated[float, Field(gt=0.0, le=1.0), BeforeValidator(_not_a_bool)]
    budget: Annotated[float, Field(gt=0.0), BeforeValidator(_not_a_bool)]
    start_date: dt.date
    end_date: dt.date
    marketplaces: Annotated[list[Marketplace], Field(min_length=1), AfterValidator(_distinct)]
    product_type: Annotated[Literal[ProductType, "auto"], BeforeValidator(vocabulary_word)] = "auto"
    in_stock: Flag = True

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _date_only(cls, value: object) -> object:
        # Parquet timestamps and pandas Timestamps arrive as datetimes; the contract speaks of dates. A time of day,
        # however given, is dropped: the day as written (in its own time zone) is the campaign's day.
        if isinstance(value, dt.datetime):
            return value.date()
        # pydantic reads a number as seconds since 1970, so 20261201 was "should have zero time", not a bad date.
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            raise PydanticCustomError("date_type", "Input should be a date as YYYY-MM-DD, not a number")
        if isinstance(value, str):
            text = value.strip()
            with contextlib.suppress(ValueError):
                return dt.date.fromisoformat(text)
            with contextlib.suppress(ValueError):
                return dt.datetime.fromisoformat(text).date()
            if why := _no_such_day(text):  # written as asked: "should be a date as YYYY-MM-DD" misled
                raise PydanticCustomError("date_day", "{why}", {"why": why})
            # pydantic's own words ("invalid character in year" for 12/01/2026) did not say what is expected.
            raise PydanticCustomError("date_format", "Input should be a date as YYYY-MM-DD")
        return value

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, end: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start_date")
        if start is not None and end < start:
            raise PydanticCustomError(
                "date_order",
                "end_date {end} is before start_date {start}",
                {"end": end.isoformat(), "start": start.isoformat()},
            )
        return end


# A date written YYYY-MM-DD, with or without a time of day after it.
_WRITTEN_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?", re.DOTALL)


def _no_such_day(text: str) -> str | None:
    """Why `text`, a date written YYYY-MM-DD, is no day of the calendar (2026-02-30, 2026-13-01); None when it is
    one, or is not so written."""
    written = _WRITTEN_DAY.fullmatch(text)
    if written is None:
        return None
    year, month, day = map(int, written.groups())
    if not 1 <= month <= 12:
        return "No such month (months are 01 to 12)"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return f"No such day ({calendar.month_name[month]} has {days} days in {year})"
    return None


class PerformanceRow(_Row):
    """Past results of one (campaign, creator) pair."""

    campaign_id: NonEmptyId
    creator_id: NonEmptyId
    impressions: Count
    clicks: Count
    orders: Count
    units: Count | None = None
    sales: Annotated[float, Field(ge=0.0)]
    commission: Annotated[float, Field(ge=0.0)] | None = None
    status: Annotated[Literal["settled", "pending"], BeforeValidator(vocabulary_word)] = "settled"

    @field_validator("clicks")
    @classmethod
    def _clicks_within_impressions(cls, clicks: int, info: ValidationInfo) -> int:
        impressions = info.data.get("impressions")
        if impressions is not None and clicks > impressions:
            raise PydanticCustomError(
                "funnel",
                "clicks {clicks} exceed impressions {impressions}",
                {"clicks": clicks, "impressions": impressions},
            )
        return clicks

    @field_validator("orders")
    @classmethod
    def _orders_within_clicks(cls, orders: int, info: ValidationInfo) -> int:
        clicks = info.data.get("clicks")
        if clicks is not None and orders > clicks:
            raise PydanticCustomError(
                "funnel", "orders {orders} exceed clicks {clicks}", {"orders": orders, "clicks": clicks}
            )
        return orders


class TouchRow(_Row):
    """One click of a shopper on a creator's link."""

    shopper_id: NonEmptyId
    campaign_id: NonEmptyId
    creator_id: NonEmptyId
    ts: dt.datetime


class PurchaseRow(_Row):
    """One purchase of a shopper in a campaign."""

    shopper_id: NonEmptyId
    campaign_id: NonEmptyId
    ts: dt.datetime
    sales: Annotated[float, Field(ge=0.0)]
    units: Count = 1


def is_missing(value: object) -> bool:
    """True for None, float NaN and pandas' NaT and NA, the ways a table says 'no value'."""
    if value is None or value is pd.NA:  # NA: the missing value of pandas' nullable columns (Int64, string, boolean)
        return True
    if isinstance(value, float):
        return math.isnan(value)
    # A null Parquet timestamp reads as NaT, which is a datetime (so pydantic took it) unequal to itself.
    return isinstance(value, dt.datetime) and value != value
