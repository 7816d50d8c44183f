"""Column names a table does not know that are probably one it does, written another way or misspelt.

Columns the contract does not name are kept and ignored, so that a team can hand over its own wider export. A
misspelt optional column (`product_typ`, `comission_rate`) is then ignored too, and its field silently takes its
default; these are the names said back to the user instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["likely_meant", "normalized"]

# How alike (difflib's ratio, 2 x matching characters / both lengths) an unknown name must be to a known one to
# be called a misspelling of it: one letter dropped, doubled or swapped in a name of eight or more letters
# (`comission_rate` 0.97, `avg_view` 0.94) is; a team's own column sharing a word with one (`campaign_name`
# beside `campaign_id`, 0.83; `brand_id` beside `brand`, 0.77) is not.
MIN_LIKENESS = 0.85

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")


def normalized(name: str) -> str:
    """`name` as the contract writes column names: snake case, lower case, no spaces (`Commission Rate`,
    `commission-rate` and `commissionRate` are all `commission_rate`)."""
    return _SEPARATORS.sub("_", _CAMEL_HUMP.sub("_", name.strip())).lower().strip("_")


def likely_meant(columns: Iterable[object], known: Iterable[str], missing_only: bool = True) -> dict[str, str]:
    """The known name each unknown column probably stands for, by column.

    Args:
        columns: the names a file or request used.
        known: the names the table reads.
        missing_only: only known names the columns lack (what a missing required column was probably called);
            else any (a misspelt copy beside the right one still lost its values).

    Returns:
        `{column: known name}`, in the columns' order, for each column not among `known` that is one of the
        known names written another way (case, spaces, hyphens, camel case) or misspelt (at least MIN_LIKENESS
        alike once normalized). A known name is claimed by one column at most, the likeliest.
    """
    present = [str(column) for column in columns]
    known = list(known)
    missing = [name for name in known if name not in present] if missing_only else known
    candidates: list[tuple[float, int, str, str]] = []
    for position, column in enumerate(present):
        if column in known:
            continue
        written = normalized(column)
        for name in missing:
            likeness = 1.0 if written == name else difflib.SequenceMatcher(None, written, name).ratio()
            if likeness >= MIN_LIKENESS:
                candidates.append((likeness, position, column, name))
    meant: dict[str, str] = {}
    claimed: set[str] = set()
    # The likeliest pairs first, then the earlier column: each name goes to one column, whatever the order.
    for _, _, column, name in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if column not in meant and name not in claimed:
            meant[column] = name
            claimed.add(name)
    return {column: meant[column] for column in present if column in meant}
