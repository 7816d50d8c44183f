"""The real-data fixtures: public product titles and creator profiles, each file's header stating its source and the
rule its labels follow. Three pairs: tests/fixtures/real_creators.csv with real_titles.csv (`FIRST`: Instagram creators
with coarse tags, electronics and kitchen titles), real_creators_2.csv with real_titles_2.csv (`SECOND`: Instagram
creators with fine categories from another dataset, six departments of titles, beauty among them) and
real_creators_3.csv with real_titles_3.csv (`THIRD`: YouTube channels with YouTube's channel categories, four
departments of titles; built after the rules were tuned on the first two, to measure whether they generalize)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from matcher.settings import SlatePolicy

__all__ = [
    "FIRST",
    "FIXTURES",
    "REAL_FIXTURES",
    "SECOND",
    "THIRD",
    "RealFixture",
    "campaigns_from_titles",
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


def read_fixture(name: str) -> pd.DataFrame:
    """A fixture CSV without its `#` header lines."""
    path = FIXTURES / name
    with path.open(encoding="utf-8") as handle:
        skip = sum(1 for line in handle if line.startswith("#"))
    return pd.read_csv(path, skiprows=skip, keep_default_na=False)


@dataclass(frozen=True)
class RealFixture:
    """One pair of real fixture files and the relevance rule written in their headers.

    Attributes:
        key: the prefix of the pair's figures in benchmarks (`real`, `real2`, `real3`).
        creators_file: the creators CSV under tests/fixtures.
        titles_file: the titles CSV under tests/fixtures (asin, title, category, price_inr, ...).
        tag_department: creator tag (lower case) -> the department it is relevant to; other tags relate to none.
        marketplace: where the titles are listed (their prices are in that marketplace's currency).
    """

    key: str
    creators_file: str
    titles_file: str
    tag_department: Mapping[str, str]
    marketplace: str = "IN"

    @property
    def departments(self) -> frozenset[str]:
        """The title categories that have relevant creators: only their titles are judged."""
        return frozenset(self.tag_department.values())

    def creators(self) -> pd.DataFrame:
        """The creators as the contract's creators table (list columns as lists)."""
        frame = read_fixture(self.creators_file)
        return frame.assign(
            platforms=frame["platforms"].str.split("|"),
            interest_tags=frame["interest_tags"].str.split("|"),
            followers=frame["followers"].astype("int64"),
        )

    def titles(self) -> pd.DataFrame:
        return read_fixture(self.titles_file)

    def campaigns(self, titles: pd.DataFrame, product_type: str = "auto") -> pd.DataFrame:
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
                "marketplaces": [[self.marketplace]] * len(titles),
                "product_type": product_type,
                "in_stock": True,
            }
        )

    def department(self, tags: list[str]) -> set[str]:
        """The departments a creator's tags map to."""
        keys = (t.strip().lower() for t in tags)
        return {self.tag_department[k] for k in keys if k in self.tag_department}

    def relevant(self, creators: pd.DataFrame) -> dict[str, set[str]]:
        """Per department, the ids of the `creators` relevant to its titles under the pair's rule."""
        departments = creators["interest_tags"].map(self.department)
        return {d: set(creators["creator_id"][departments.map(lambda own, d=d: d in own)]) for d in self.departments}


FIRST = RealFixture(
    key="real",
    creators_file="real_creators.csv",
    titles_file="real_titles.csv",
    # The relevance rule of real_creators.csv's header: which creator tags belong to which department.
    tag_department={
        "computers & gadgets": "electronics",
        "machinery & technologies": "electronics",
        "photography": "electronics",
        "science": "electronics",
        "food & cooking": "kitchen",
    },
)
SECOND = RealFixture(
    key="real2",
    creators_file="real_creators_2.csv",
    titles_file="real_titles_2.csv",
    # The relevance rule of real_creators_2.csv's header.
    tag_department={
        "beauty": "beauty",
        "pet": "pets",
        "fitness": "sports",
        "food": "grocery",
        "interior": "home",
        "family": "baby",
    },
)
THIRD = RealFixture(
    key="real3",
    creators_file="real_creators_3.csv",
    titles_file="real_titles_3.csv",
    # The relevance rule of real_creators_3.csv's header, written before any measurement and not to be tuned against:
    # this pair exists to measure whether rules tuned on the first two generalize.
    tag_department={
        "music": "music",
        "science & technology": "electronics",
        "autos & vehicles": "automotive",
        "sports": "sports",
    },
)
REAL_FIXTURES = (FIRST, SECOND, THIRD)

# The first pair's loaders, which the product-type test and benchmark read.


def real_titles() -> pd.DataFrame:
    return FIRST.titles()


def real_creators() -> pd.DataFrame:
    """The first pair's creators as the contract's creators table (list columns as lists)."""
    return FIRST.creators()


def campaigns_from_titles(titles: pd.DataFrame, product_type: str = "auto") -> pd.DataFrame:
    """One campaign per title of the first pair, the title as the brief, as a new seller would start."""
    return FIRST.campaigns(titles, product_type)


def held_out(keys: pd.Series) -> pd.Series:
    """Whether each row is in the held-out half, by a fixed rule that knows nothing of its contents: the parity of
    the SHA-256 of its key (a title's asin). Settings are chosen on the other half, the dev half, only."""
    return keys.map(lambda key: int(hashlib.sha256(str(key).encode()).hexdigest(), 16) % 2 == 1)


def topical_precision(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    """Relevant creators among the first k, over the most that could be there: min(k, relevant, listed)."""
    most = min(k, len(relevant), len(ranked))
    return sum(creator in relevant for creator in ranked[:k]) / most if most else float("nan")
