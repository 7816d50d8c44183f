"""The contract's vocabularies: creator types, funnel stages, platforms, marketplaces, categories."""

from __future__ import annotations

import re

__all__ = [
    "ASIN_PATTERN",
    "CATEGORIES",
    "CREATOR_TYPES",
    "FUNNEL_STAGE",
    "FUNNEL_STAGES",
    "KNOWN_MARKETPLACES",
    "MARKETPLACE_PATTERN",
    "MAX_ASINS",
    "PLATFORMS",
    "PRODUCT_TYPES",
    "SETTLEMENT_DAYS",
]

CREATOR_TYPES = (
    "social_creator",
    "content_publisher",
    "review_site",
    "community",
    "deals_site",
    "coupon_site",
    "cashback_site",
    "loyalty_referral",
)
FUNNEL_STAGES = ("awareness", "consideration", "conversion", "retention")
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
PLATFORMS = ("instagram", "youtube", "tiktok", "facebook", "x", "pinterest", "blog", "podcast", "website")
KNOWN_MARKETPLACES = ("US", "CA", "MX", "UK", "DE", "FR", "IT", "ES", "JP", "AU")
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
PRODUCT_TYPES = ("standard", "non_standard")
# A campaign's figures stop changing this many days after its end date; only then is it a label.
SETTLEMENT_DAYS = 7
