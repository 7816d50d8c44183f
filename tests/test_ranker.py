"""CreatorRanker against the contract every ranker must pass."""

from __future__ import annotations

from typing import ClassVar

from tests.ranker_contract import RankerContract
from training.ranker import CreatorRanker


class TestCreatorRanker(RankerContract):
    ranker_class = CreatorRanker
    params: ClassVar[dict] = {"max_iter": 60}
