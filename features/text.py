"""The text that represents a creator or a campaign to the embedding model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["campaign_text", "creator_text", "shared_interests", "tokens"]

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def creator_text(creator_type: str, interest_tags: Sequence[str], bio: str | None = None) -> str:
    """A creator profile: interests first (they carry the match), then the kind of creator, then the bio."""
    text = f"Interests: {', '.join(interest_tags)}. {creator_type.replace('_', ' ')}."
    return f"{text} {bio.strip()}" if isinstance(bio, str) and bio.strip() else text


def campaign_text(brief: str, category: str) -> str:
    """A campaign as the embedding model sees it: category, then brief."""
    return f"Category: {category}. {brief.strip()}"


def tokens(text: str) -> set[str]:
    """Lower-case word tokens, hyphenated words kept whole and also split."""
    words = set(_WORD.findall(text.lower()))
    return words | {part for word in words if "-" in word for part in word.split("-")}


def shared_interests(interest_tags: Iterable[str], campaign_tokens: set[str]) -> list[str]:
    """The creator's tags all of whose words occur in the campaign's text."""
    shared = []
    for tag in interest_tags:
        words = _WORD.findall(tag.lower())
        if words and all(word in campaign_tokens for word in words):
            shared.append(tag)
    return shared
