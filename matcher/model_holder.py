"""The matcher in service, and the watcher that swaps in a promoted version without dropping a request.

The ranker, index and embedding model load in the background. When the model URI is an alias
(`models:/creator-ranker@champion`), the registry is polled and a promotion is picked up: the new version is
loaded whole beside the one in service, then a single reference is swapped. A request reads that reference once,
so it finishes on the matcher it started with, and none is dropped or fails during a swap.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.records import SettledPerformance
from features.tables import Table
from matcher.api import Matcher, MatchResult, MatchSettings

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ModelHolder", "NotServing", "ServiceConfig"]

# The service's logger, whichever of its modules writes.
log = logging.getLogger("creator_matcher.service")
DEFAULT_MAX_BODY_BYTES = 1_000_000
_ALIAS = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>.+)")


@dataclass(frozen=True)
class ServiceConfig:
    """What the service serves and how.

    Args:
        model: the model URI; an alias URI is watched for promotions.
        index: the candidate index directory, or None to build one from the creators at start-up.
        settings: eligibility, retrieval and slate settings, as `creator-match match` takes them.
        poll_seconds: how often the alias is looked up in the registry.
        max_body_bytes: largest request body accepted.
        performance: the latest performance table its creators are scored on (a promoted version too);
            None: each version's records as of its training.
        encode_threads: threads that encode a request's texts (briefs); None: the backend's default (all cores).
            A service of several worker processes gives each its share of the cores.
    """

    model: str
    index: str | None = None
    settings: MatchSettings = field(default_factory=MatchSettings)
    poll_seconds: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    performance: SettledPerformance | None = None
    encode_threads: int | None = None

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0:
            raise ValueError(f"Got poll_seconds={self.poll_seconds}; expected a positive number of seconds")
        if self.max_body_bytes < 1:
            raise ValueError(f"Got max_body_bytes={self.max_body_bytes}; expected at least 1")
        if self.encode_threads is not None and self.encode_threads < 1:
            raise ValueError(f"Got encode_threads={self.encode_threads}; expected at least 1, or None")


class NotServing(Exception):
    """The service cannot answer yet (still loading) or any more (failed to load); the message says which."""


class ModelHolder:
    """The matcher in service: loaded in the background, replaced whole when the alias moves.

    `readiness`, `match` and `similar` are what the HTTP service calls, here in the same process; the service's
    worker processes (`matcher.service_workers.WorkerPool`) answer the same three.

    Args:
        creators: the creators table as read (its valid rows are served), or its path, read in the background.
        config: the service's configuration.
    """

    def __init__(self, creators: Table | str | Path, config: ServiceConfig) -> None:
        self.creators = creators
        self.config = config
        self.matcher: Matcher | None = None
        self.failure: str | None = None
        self._stop = threading.Event()
        self._refused: set[str] = set()  # versions that could not be served, not retried every poll
        self._on_serving = None

    def start(self, on_failure=None, on_serving=None) -> threading.Thread:
        """Loads in a background thread, then watches the alias until `stop`.

        Args:
            on_failure: called with the reason, in one line, if loading fails.
            on_serving: called with the matcher each time a version goes into service (the first and each
                promotion).
        """
        self._on_serving = on_serving
        thread = threading.Thread(target=self._run, args=(on_failure,), name="model-holder", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> tuple[bool, dict]:
        """(ready, the body /readyz answers)."""
        matcher = self.matcher
        if matcher is None:
            return False, {"status": "failed" if self.failure else "loading", "reason": self.failure}
        return True, {"status": "ready", "model_version": matcher.ranker.version, "creators": len(matcher.creators)}

    def serving(self) -> Matcher:
        """The matcher in service now; NotServing while loading or after a failure to load."""
        matcher = self.matcher
        if matcher is None:
            raise NotServing(self.failure or "loading")
        return matcher

    def match(self, campaigns: Table) -> tuple[str, MatchResult]:
        """(the version that answered, slates of the campaigns as one batch run)."""
        matcher = self.serving()
        return matcher.ranker.version, matcher.match_many(campaigns, progress=False)

    def similar(self, creator_ids, k, marketplaces, creator_types) -> tuple[str, pd.DataFrame]:
        """(the version that answered, lookalikes of the creators: `Matcher.similar`)."""
        matcher = self.serving()
        return matcher.ranker.version, matcher.similar(creator_ids, k, marketplaces, creator_types)

    def _run(self, on_failure) -> None:
        from features.embeddings import Embedder
        from features.tables import read_table
        from matcher.artifacts import load_for_matching

        try:
            if not isinstance(self.creators, Table):
                self.creators = read_table(self.creators, "creators")
            # A model store that is a SQLite file not there yet is a failure to load, not an empty store to create.
            ranker = load_for_matching(self.config.model, self.config.performance)
            embedder = Embedder(  # the one the ranker was trained with, as Matcher would make it
                ranker.model.embedding_model, backend=ranker.model.embedding_backend, threads=self.config.encode_threads
            )
            self.matcher = self._ready(
                Matcher(
                    self.creators,
                    ranker,
                    self.config.index,
                    embedder,
                    self.config.settings,
                    self.config.performance,
                )
            )
        except Exception as exc:  # any failure to load is reported in one line, and the service stops
            self.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if on_failure is not None:
                on_failure(self.failure)
            return
        log.warning("serving %s", self.matcher.ranker.version)
        if self._on_serving is not None:
            self._on_serving(self.matcher)
        if _ALIAS.fullmatch(self.config.model):
            while not self._stop.wait(self.config.poll_seconds):
                self.refresh()

    def refresh(self) -> bool:
        """Serves the version the alias points at now, if it moved; True when a new version went into service."""
        from matcher.artifacts import check_model_stores
        from training.registry import load_ranker, resolve_version

        current = self.matcher
        try:
            check_model_stores(self.config.model)  # a registry removed since: not recreated, empty, by polling it
            target = resolve_version(self.config.model)
        except Exception as exc:  # the registry may be briefly unreachable: keep serving, ask again next time
            log.warning("cannot resolve %s: %s", self.config.model, exc)
            return False
        if current is None or target == current.ranker.version or target in self._refused:
            return False
        try:
            # The index, creator vectors and loaded encoder are shared; what the version learned is its own.
            ranker = load_ranker(f"models:/{target}")
            replacement = self._ready(
                Matcher(
                    self.creators,
                    ranker,
                    current.index,
                    current.embedder,
                    self.config.settings,
                    self.config.performance,
                )
            )
        except Exception as exc:  # e.g. trained with another embedding model: keep serving the current one
            log.warning("not serving %s (still %s): %s", target, current.ranker.version, exc)
            self._refused.add(target)
            return False
        self.matcher = replacement  # one reference: requests already running keep the matcher they read
        if self._on_serving is not None:
            self._on_serving(replacement)
        log.warning("now serving %s (was %s)", replacement.ranker.version, current.ranker.version)
        return True

    @staticmethod
    def _ready(matcher: Matcher) -> Matcher:
        """Builds what the first requests would otherwise pay for: per-category retrieval and lookalike tables."""
        matcher.warm()
        _ = matcher.lookalikes
        return matcher
