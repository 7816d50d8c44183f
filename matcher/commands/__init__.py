"""The `creator-match` sub-commands, one module per group; `matcher.cli` assembles them into the command line.

Each module imports only typer and the standard library at load time, so `creator-match --help` stays quick;
the work's libraries load inside the command that needs them.
"""

from __future__ import annotations

__all__: list[str] = []
