"""The installed `creator-match` command, as the tests that run it as a separate process call it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

__all__ = ["CLI", "free_port", "match_args", "stop"]

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


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stops a server process started by a test: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
