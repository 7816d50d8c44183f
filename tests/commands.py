"""The installed `creator-match` command, as the tests that run it as a separate process call it."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["CLI", "match_args"]

CLI = str(Path(sys.executable).parent / "creator-match")


def match_args(world: Path, out: Path, *extra: str) -> list[str]:
    """`creator-match match` on a simulated world's new campaigns and creators, writing `out`."""
    return [
        CLI,
        "match",
        "--campaigns",
        str(world / "new_campaigns.parquet"),
        "--creators",
        str(world / "creators.parquet"),
        "--out",
        str(out),
        *extra,
    ]
