"""The contract's vocabularies and fixed values: creator types, funnel stages, platforms, marketplaces,
categories, table formats and the settlement lag. Every other module imports them from here."""

from __future__ import annotations

import re
from typing import Literal, get_args

__all__ = [
    "AMAZON_CODES",
    "ASIN_PATTERN",
    "CASHBACK_TYPE",
    "CATEGORIES",
    "CONTENT_STAGES",
    "COVERED_STAGES",
    "CREATOR_TYPES",
    "FUNNEL_STAGE",
    "FUNNEL_STAGES",
    "KNOWN_MARKETPLACES",
    "MARKETPLACE_PATTERN",
    "MAX_ASINS",
    "PLATFORMS",
    "PRODUCT_TYPES",
    "REJECTS_SUFFIX",
    "SETTLEMENT_DAYS",
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "CreatorType",
    "Platform",
    "ProductType",
    "marketplace_hint",
]

# The Literal types validate rows (features.rows); the tuples are the same values for everything else.
CreatorType = Literal[
    "social_creator",
    "content_publisher",
    "review_site",
    "community",
    "deals_site",
    "coupon_site",
    "cashback_site",
    "loyalty_referral",
]
CREATOR_TYPES: tuple[str, ...] = get_args(CreatorType)
# The marketplace's creator programme does not support cashback affiliates: never proposed unless allowed.
CASHBACK_TYPE = "cashback_site"
FUNNEL_STAGES = ("awareness", "consideration", "conversion", "retention")
# Creators who persuade with content, as opposed to those who close a sale (conversion) or keep a buyer.
CONTENT_STAGES = FUNNEL_STAGES[:2]
# The stages a non-standard product's slate should cover: a buyer is made aware, persuaded, then converted.
COVERED_STAGES = FUNNEL_STAGES[:3]
FUNNEL_STAGE = {
    "social_creator": "awareness",
    "content_publisher": "awareness",
    "review_site": "consideration",
    "community": "consideration",
    "deals_site": "conversion",
    "coupon_site": "conversion",
    "cashback_site": "conversion",
    "loyalty_referral": "retention",
}
Platform = Literal["instagram", "youtube", "tiktok", "facebook", "x", "pinterest", "blog", "podcast", "website"]
PLATFORMS: tuple[str, ...] = get_args(Platform)
KNOWN_MARKETPLACES = ("US", "CA", "MX", "UK", "DE", "FR", "IT", "ES", "JP", "AU")
# Country codes (ISO 3166) that Amazon writes otherwise: the United Kingdom's marketplace is UK, not GB.
AMAZON_CODES = {"GB": "UK"}
MARKETPLACE_PATTERN = re.compile(r"^[A-Z]{2}$")
ASIN_PATTERN = re.compile(r"^[A-Z0-9]{10}$")
MAX_ASINS = 1200
CATEGORIES = (
    "beauty",
    "fashion",
    "home",
    "kitchen",
    "electronics",
    "sports",
    "outdoors",
    "toys",
    "pets",
    "baby",
    "health",
    "automotive",
    "tools",
    "office",
    "garden",
    "grocery",
)
ProductType = Literal["standard", "non_standard"]
PRODUCT_TYPES: tuple[str, ...] = get_args(ProductType)
# A campaign's figures stop changing this many days after its end date; only then is it a label.
SETTLEMENT_DAYS = 7
# The formats of every table read or written, by file suffix; and the rejects file beside an output.
TABLE_SUFFIXES = (".parquet", ".csv", ".jsonl")
TABLE_FORMATS = f"{', '.join(TABLE_SUFFIXES[:-1])} or {TABLE_SUFFIXES[-1]}"  # for messages
REJECTS_SUFFIX = ".rejects.csv"


def marketplace_hint(code: str) -> str:
    """What a line naming `code` adds when it is not one of the contract's marketplace codes (most often a typo, or a
    country's ISO code: `GB` for `UK`): the codes, and the one meant where known; "" for one of them."""
    if code in KNOWN_MARKETPLACES:
        return ""
    meant = f"; did you mean {AMAZON_CODES[code]}?" if code in AMAZON_CODES else ""
    return f"{code} is not one of the contract's marketplace codes, {' '.join(KNOWN_MARKETPLACES)}{meant}"
