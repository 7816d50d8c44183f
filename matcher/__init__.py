"""Run time: the candidate index, scoring and slates, reasons, the Python API, the batch job and the CLI.

Names load on first use, so `creator-match --help` does not pay for FAISS, MLflow or the ranker.
"""

from __future__ import annotations

import importlib

__all__ = [
    "ENGINES",
    "MATCH_COLUMNS",
    "ArtifactMismatch",
    "CampaignRejected",
    "CampaignSummary",
    "CandidateIndex",
    "DamagedIndex",
    "DigestMismatch",
    "IncompatibleModel",
    "IndexNotFound",
    "MatchResult",
    "MatchSettings",
    "Matcher",
    "MatcherError",
    "ModelNotFound",
    "NotARanker",
    "RayUnavailable",
    "RegistryUnavailable",
    "SettledPerformance",
    "SlateEntry",
    "SlatePolicy",
    "UnknownCreator",
    "no_campaigns_matched",
    "run_match",
]

# Where each name is found: matcher.api's public names (the errors and records re-exported there) are all these.
_HOME = {
    "CandidateIndex": "matcher.candidate_index",
    "SlatePolicy": "matcher.settings",
    "run_match": "matcher.batch",
} | dict.fromkeys(
    [name for name in __all__ if name not in ("CandidateIndex", "SlatePolicy", "run_match")], "matcher.api"
)


def __getattr__(name: str) -> object:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'matcher' has no attribute {name!r}")
