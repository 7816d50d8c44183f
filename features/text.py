"""The text that represents a creator or a campaign to the embedding model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

__all__ = [
    "MAX_PHRASES",
    "brief_phrases",
    "campaign_text",
    "creator_text",
    "creator_texts",
    "has_bio",
    "normalized_tags",
]

# Sentence ends (not the dot of "1.5m"), commas, brackets, bars, slashes and spaced dashes separate phrases.
_BREAK = re.compile(r"[.!?;:](?=\s|$)|[,()\[\]{}|/\u2013\u2014]|\s-\s")
# Phrases kept per brief: sellers are advised to keep briefs short, and titles list a few attributes at most.
MAX_PHRASES = 12


def creator_text(creator_type: str, interest_tags: Sequence[str], bio: str | None = None) -> str:
    """A creator profile: interests first (they carry the match), then the kind of creator, then the bio."""
    text = f"Interests: {', '.join(interest_tags)}. {creator_type.replace('_', ' ')}."
    return f"{text} {bio.strip()}" if has_bio(bio) else text


def has_bio(bio: object) -> bool:
    """Whether a creator's `bio` value holds text the profile carries (not null, not blank)."""
    return isinstance(bio, str) and bool(bio.strip())


def creator_texts(creators) -> Iterator[str]:
    """Each creator's profile text (`creator_text`) in table order, one at a time: a million of them need not be
    held at once to be hashed (`features.embeddings.profile_keys`)."""
    columns = (creators["creator_type"], creators["interest_tags"], creators["bio"])
    return (creator_text(kind, tags, bio) for kind, tags, bio in zip(*columns, strict=True))


def campaign_text(brief: str, category: str) -> str:
    """A campaign as the embedding model sees it: category, then brief."""
    return f"Category: {category}. {brief.strip()}"


def brief_phrases(brief: str) -> list[str]:
    """The brief's phrases, first ones first, each once; the brief itself when it has no break."""
    seen: dict[str, None] = {}
    for part in _BREAK.split(brief):
        phrase = " ".join(part.split())
        if len(phrase) >= 3 and any(ch.isalpha() for ch in phrase):
            seen.setdefault(phrase, None)
    phrases = list(seen)[:MAX_PHRASES]
    return phrases or [" ".join(brief.split()) or brief]


def normalized_tags(interest_tags: Iterable[Sequence[str]]) -> list[list[str]]:
    """Each creator's interest tags as compared everywhere: stripped and lower-cased, in their order."""
    return [[tag.strip().lower() for tag in tags] for tags in interest_tags]
