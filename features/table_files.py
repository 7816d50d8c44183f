"""A table named in a directory (`DIR/creators`): the one file holding it, in whichever of the contract's formats."""

from __future__ import annotations

from pathlib import Path

from features.contract import TABLE_SUFFIXES
from features.tables import InputError

__all__ = ["find_table"]


def find_table(directory: Path, name: str, *, required: bool = True) -> Path | None:
    """`directory`'s file of table `name` (`name.parquet`, `name.csv` or `name.jsonl`).

    Two formats of one table are refused, naming both, rather than one preferred: an updated CSV dropped beside
    the Parquet of an earlier export would otherwise go unread without a word. A missing table is None, or an
    `InputError` when `required`.
    """
    candidates = [directory / f"{name}{suffix}" for suffix in TABLE_SUFFIXES]
    found = [path.name for path in candidates if path.is_file()]
    if len(found) > 1:
        listed = f"{', '.join(found[:-1])} and {found[-1]}"
        raise InputError(f"{directory}: {'both' if len(found) == 2 else 'all of'} {listed}; keep one of them")
    if found:
        return directory / found[0]
    if required:
        names = [path.name for path in candidates]
        raise InputError(f"{directory}: no {', '.join(names[:-1])} or {names[-1]}")
    return None
