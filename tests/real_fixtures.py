"""The real-data fixtures: public product titles and creator profiles, each file's header stating its source and the
rule its labels follow (tests/fixtures/real_titles.csv, tests/fixtures/real_creators.csv)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd

from matcher.settings import SlatePolicy

__all__ = [
    "FIXTURES",
    "TAG_DEPARTMENT",
    "campaigns_from_titles",
    "department",
    "held_out",
    "pure_ranking",
    "read_fixture",
    "real_creators",
    "real_titles",
    "topical_precision",
]

FIXTURES = Path(__file__).parent / "fixtures"


def pure_ranking(size: int) -> SlatePolicy:
    """Slates as a pure ranking: `size` per campaign whatever the product type, no run-wide capacity, no cap on
    creators without a record, no budget closing them early."""
    return SlatePolicy(
        standard_size=size,
        non_standard_size=size,
        min_size=size,
        min_non_standard_size=size,
        capacity=None,
        funnel_coverage=False,
        duplicate_similarity=1.0,
        max_unproven_standard=size,
        budget_overrun=1e9,
    )


# The relevance rule of real_creators.csv's header: which creator tags belong to which department.
TAG_DEPARTMENT = {
    "computers & gadgets": "electronics",
    "machinery & technologies": "electronics",
    "photography": "electronics",
    "science": "electronics",
    "food & cooking": "kitchen",
}


def read_fixture(name: str) -> pd.DataFrame:
    """A fixture CSV without its `#` header lines."""
    path = FIXTURES / name
    with path.open(encoding="utf-8") as handle:
        skip = sum(1 for line in handle if line.startswith("#"))
    return pd.read_csv(path, skiprows=skip, keep_default_na=False)


def real_titles() -> pd.DataFrame:
    return read_fixture("real_titles.csv")


def held_out(keys: pd.Series) -> pd.Series:
    """Whether each row is in the held-out half, by a fixed rule that knows nothing of its contents: the parity of
    the SHA-256 of its key (a title's asin). Settings are chosen on the other half, the dev half, only."""
    return keys.map(lambda key: int(hashlib.sha256(str(key).encode()).hexdigest(), 16) % 2 == 1)


def real_creators() -> pd.DataFrame:
    """The creators as the contract's creators table (list columns as lists)."""
    frame = read_fixture("real_creators.csv")
    return frame.assign(
        platforms=frame["platforms"].str.split("|"),
        interest_tags=frame["interest_tags"].str.split("|"),
        followers=frame["followers"].astype("int64"),
    )


def campaigns_from_titles(titles: pd.DataFrame, product_type: str = "auto") -> pd.DataFrame:
    """One campaign per title, the title as the brief, as a new seller would start."""
    return pd.DataFrame(
        {
            "campaign_id": [f"real-{asin}" for asin in titles["asin"]],
            "brand": titles["title"].str.split().str[0],
            "brief": titles["title"],
            "category": titles["category"],
            "asins": [[asin] for asin in titles["asin"]],
            "price": titles["price_inr"].astype(float),
            "commission_rate": 0.15,
            "budget": titles["price_inr"].astype(float) * 0.15 * 100,
            "start_date": dt.date(2026, 12, 1),
            "end_date": dt.date(2026, 12, 31),
            "marketplaces": [["IN"]] * len(titles),
            "product_type": product_type,
            "in_stock": True,
        }
    )


def department(tags: list[str]) -> set[str]:
    """The departments a creator's tags map to."""
    return {TAG_DEPARTMENT[t.strip().lower()] for t in tags if t.strip().lower() in TAG_DEPARTMENT}


def topical_precision(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    """Relevant creators among the first k, over the most that could be there: min(k, relevant, listed)."""
    most = min(k, len(relevant), len(ranked))
    return sum(creator in relevant for creator in ranked[:k]) / most if most else float("nan")
