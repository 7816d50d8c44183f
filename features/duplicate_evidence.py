"""What the slates' near-duplicate rule compares: creators' profile vectors, which of them hold a bio, and which
are one person under two creator ids (the same handle on a platform both list)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.text import has_bio

__all__ = ["DuplicateEvidence", "handle_key", "shared_people"]


def handle_key(handle: object) -> str | None:
    """A handle as the same-person rule compares it: stripped, lower-case, leading "@" removed; None when nothing is
    left (no handle, a blank one)."""
    if not isinstance(handle, str):
        return None
    return handle.strip().lower().lstrip("@").strip() or None


def shared_people(handles: Iterable[object], platforms: Iterable[Iterable[str]]) -> list[list[int]]:
    """The rows of each person under two creator ids or more: rows of one handle key (`handle_key`) joined wherever
    their platforms meet, directly or through a third row (an id on Instagram and TikTok joins one on each); each
    person's rows in row order, people in order of first row.

    `handles` and `platforms` are per creator row (the creators table's `handle` and `platforms` columns).
    """
    keys = pd.Series([handle_key(handle) for handle in handles], dtype=object)
    repeated = keys[keys.notna() & keys.duplicated(keep=False)]
    if repeated.empty:
        return []
    listed = list(platforms)
    people: list[list[int]] = []
    for rows in repeated.groupby(repeated, sort=False).groups.values():
        joined: list[tuple[set[str], list[int]]] = []
        for row in rows:
            held, ids = set(listed[row]), [int(row)]
            for other in [person for person in joined if person[0] & held]:
                joined.remove(other)
                held |= other[0]
                ids = other[1] + ids
            joined.append((held, sorted(ids)))
        people += [ids for _, ids in joined if len(ids) > 1]
    return sorted(people)


class DuplicateEvidence:
    """Creators' profile vectors by creator row, per row whether the profile holds a bio, and the rows that hold a
    handle another row holds too.

    The rule compares only two creators who both hold a bio. Without one a profile is its type and interest tags: what
    a creator posts about, not who follows them. A seller's table holding a category per creator and nothing else
    gives every creator of a category the same profile text, and the rule kept one of them per slate (a real pair of
    files: 30 creators a category, slates of one creator per category). Two creators whose whole profiles, bios
    included, nearly coincide are the copies the rule is for.

    Two creators are also one person, whatever their profiles, when they hold the same handle (`handle_key`: case,
    spaces and a leading "@" aside) and list a platform in common: a seller's table listed @glowwithmaya under two
    creator ids on Instagram, and both were proposed on one slate. A handle alone is a display name, not an identity
    (the contract's), so two creators of one handle on different platforms stay two. One person is one person
    through any of their ids: an id that shares a platform with each of two others joins all three (`people`), and
    one person's ids share one capacity (`matcher.slate_book.SlateBook.person`). Near-duplicate profiles are not
    one person: they only keep off each other's slates.

    Args:
        vectors: unit profile vectors by creator row: an array, or anything read as `vectors[rows]` with a `len`
            (`matcher.eligibility.VectorsByRow`, which reads them from the index on demand).
        has_bio: per creator row, whether the profile holds a bio.
        handles, platforms: per creator row, its handle and its platforms; None: no two creators share a handle.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        has_bio: np.ndarray,
        handles: Iterable[object] | None = None,
        platforms: Iterable[Iterable[str]] | None = None,
    ) -> None:
        has_bio = np.asarray(has_bio, dtype=bool)
        if has_bio.shape != (len(vectors),):
            raise ValueError(f"Got has_bio of shape {has_bio.shape}; expected one value per vector ({len(vectors)})")
        self.vectors = vectors
        self.has_bio = has_bio
        # The rows of each person with two ids or more (`shared_people`); per row, the person it is (the lowest row
        # among that person's ids, its own row for a creator with one id) and whether it has other ids.
        self.people = [] if handles is None or platforms is None else shared_people(handles, platforms)
        self.person = np.arange(len(vectors), dtype=np.int64)
        self.has_other_ids = np.zeros(len(vectors), dtype=bool)
        for ids in self.people:
            self.person[ids] = ids[0]
            self.has_other_ids[ids] = True

    @classmethod
    def of(cls, vectors: np.ndarray, creators: pd.DataFrame) -> DuplicateEvidence:
        """The evidence of a validated creators table (its `bio`, `handle` and `platforms` columns) and its profile
        vectors, in table order."""
        bio = creators["bio"].map(has_bio).to_numpy(bool)
        return cls(vectors, bio, creators.get("handle"), creators["platforms"])

    @classmethod
    def of_vectors(cls, vectors: np.ndarray) -> DuplicateEvidence:
        """Every row compared: vectors of profiles known to be each creator's own (hand-made cases, benchmarks)."""
        return cls(vectors, np.ones(len(vectors), dtype=bool))

    def same_person(self, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Whether each creator row of `rows` is one person with each of `others` (a `len(rows)` x `len(others)`
        matrix): the same shared handle, and a platform in common (directly, or through another id of theirs)."""
        return self.has_other_ids[rows][:, None] & (self.person[rows][:, None] == self.person[others][None, :])
