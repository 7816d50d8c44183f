"""Kept for imports written before `matcher.explain`, where the reasons sentence now lives."""

from __future__ import annotations

from matcher.explain import reason

__all__ = ["reason"]
