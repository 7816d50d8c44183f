"""Every environment variable the project reads or sets, named once.

The project's own settings share one prefix, CREATOR_MATCHER_. This module imports nothing heavy, so an entry
point can apply the offline defaults before any model library reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = [
    "CACHE_DIR_ENV",
    "DEBUG_ENV",
    "DEPRECATED_DEBUG_ENV",
    "EMBEDDING_BACKEND_ENV",
    "EMBEDDING_MODEL_ENV",
    "ENV_PREFIX",
    "FLAT_THRESHOLD_ENV",
    "HALT_AFTER_CHUNKS_ENV",
    "HALT_BEFORE_REJECTS_ENV",
    "HALT_MARKER_ENV",
    "OFFLINE_ENVIRONMENT",
    "QUIET_ENVIRONMENT",
    "RAY_ADDRESS_ENV",
    "REGISTRY_URI_ENV",
    "SETTINGS",
    "TRACKING_URI_ENV",
    "debug_enabled",
    "unset_defaults",
]

ENV_PREFIX = "CREATOR_MATCHER_"
EMBEDDING_MODEL_ENV = f"{ENV_PREFIX}EMBEDDING_MODEL"
EMBEDDING_BACKEND_ENV = f"{ENV_PREFIX}EMBEDDING_BACKEND"
CACHE_DIR_ENV = f"{ENV_PREFIX}CACHE_DIR"
FLAT_THRESHOLD_ENV = f"{ENV_PREFIX}FLAT_THRESHOLD"
DEBUG_ENV = f"{ENV_PREFIX}DEBUG"
# The debug switch's name before the prefix was made one; still honoured, documented as deprecated.
DEPRECATED_DEBUG_ENV = "CREATOR_MATCH_DEBUG"
# Crash-safety tests set these: once N chunks are committed, the job writes the marker file and waits there,
# so that it is killed at a point it signalled rather than after a guessed delay.
HALT_AFTER_CHUNKS_ENV = f"{ENV_PREFIX}HALT_AFTER_CHUNKS"
HALT_MARKER_ENV = f"{ENV_PREFIX}HALT_MARKER"
# Set (to anything), a batch run halts the same way once its outputs are written, before its rejects are settled.
HALT_BEFORE_REJECTS_ENV = f"{ENV_PREFIX}HALT_BEFORE_REJECTS"
# Other libraries' names the project reads.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_URI_ENV = "MLFLOW_REGISTRY_URI"  # the demo's own store sets it aside
RAY_ADDRESS_ENV = "RAY_ADDRESS"

# The settings a user may set, as docs/cli.md lists them (the HALT_* ones are for tests only).
SETTINGS = (
    TRACKING_URI_ENV,
    EMBEDDING_MODEL_ENV,
    EMBEDDING_BACKEND_ENV,
    CACHE_DIR_ENV,
    FLAT_THRESHOLD_ENV,
    RAY_ADDRESS_ENV,
    DEBUG_ENV,
)

# Models are never downloaded at run time, and tokenizers must not fork threads into worker processes.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# What the command line adds: no progress bars or library chatter between its own lines.
QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "ERROR",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # "View run ... at" on stdout, with a tracking server
}


def unset_defaults(values: Mapping[str, str] = OFFLINE_ENVIRONMENT) -> dict[str, str]:
    """The variables of `values` that are not set yet: `os.environ.update(unset_defaults())` applies them.

    A user's own setting wins. The update is one statement that linters accept above a script's imports.
    """
    return {name: value for name, value in values.items() if name not in os.environ}


def debug_enabled() -> bool:
    """Whether $CREATOR_MATCHER_DEBUG (or the deprecated $CREATOR_MATCH_DEBUG) asks for tracebacks."""
    return bool(os.environ.get(DEBUG_ENV) or os.environ.get(DEPRECATED_DEBUG_ENV))
