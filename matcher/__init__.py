"""Run time: the candidate index, scoring and slates, reasons, the Python API, the batch job and the CLI.

Names load on first use, so `creator-match --help` does not pay for FAISS, MLflow or the ranker.
"""

from __future__ import annotations

import importlib

__all__ = ["CandidateIndex", "MatchResult", "MatchSettings", "Matcher", "SlateEntry", "SlatePolicy", "run_match"]

_HOME = {
    "CandidateIndex": "matcher.candidate_index",
    "MatchResult": "matcher.api",
    "MatchSettings": "matcher.api",
    "Matcher": "matcher.api",
    "SlateEntry": "matcher.api",
    "SlatePolicy": "matcher.settings",
    "run_match": "matcher.batch",
}


def __getattr__(name: str) -> object:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'matcher' has no attribute {name!r}")
