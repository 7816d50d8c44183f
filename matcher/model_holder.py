"""The matcher in service, and the watcher that swaps in a promoted version without dropping a request.

The ranker, index and embedding model load in the background. When the model URI is an alias
(`models:/creator-ranker@champion`), the registry is polled and a promotion is picked up: the new version is
loaded whole beside the one in service, then a single reference is swapped. A request reads that reference once,
so it finishes on the matcher it started with, and none is dropped or fails during a swap.

A promoted version that cannot be loaded is told apart by why: one whose own content cannot be served here
(another embedding model or feature set, a pickle of another scikit-learn, a pickle that cannot be read, damaged
or cut short or naming code this version lacks, another project's model) is refused for good; one that failed
for a reason outside it (a file missing, the store or network) is tried again at each poll, and its failure
logged once, not at every poll. A version whose files were promoted before they were all copied in is refused:
register the complete copy as a new version.
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
from matcher.service_limits import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CAMPAIGNS,
    DEFAULT_MAX_CONNECTIONS,
)

__all__ = ["ModelHolder", "NotServing", "ServiceConfig", "is_alias"]

# The service's logger, whichever of its modules writes.
log = logging.getLogger("creator_matcher.service")
_ALIAS = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>.+)")


def is_alias(uri: str) -> bool:
    """Whether a model URI names an alias (`models:/name@alias`), which the service watches for promotions."""
    return _ALIAS.fullmatch(uri) is not None


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
        max_campaigns: most campaigns one /v1/match request may hold (more: 413).
        max_connections: open connections, or requests in progress, beyond which a request is answered 503
            (uvicorn's `limit_concurrency`); read by the HTTP process only.
        keep_alive_seconds: how long an idle kept-alive connection stays open (uvicorn's `timeout_keep_alive`).
        allowed_hosts: the host names (the `Host` header, without its port) answered; any other is answered 400,
            so that a web page whose domain was made to resolve to this machine (DNS rebinding) gets nothing.
            `("*",)`: any. Read by the HTTP process only.
    """

    model: str
    index: str | None = None
    settings: MatchSettings = field(default_factory=MatchSettings)
    poll_seconds: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    performance: SettledPerformance | None = None
    encode_threads: int | None = None
    max_campaigns: int = DEFAULT_MAX_CAMPAIGNS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    keep_alive_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS
    allowed_hosts: tuple[str, ...] = ("*",)

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0:
            raise ValueError(f"Got poll_seconds={self.poll_seconds}; expected a positive number of seconds")
        if self.max_body_bytes < 1:
            raise ValueError(f"Got max_body_bytes={self.max_body_bytes}; expected at least 1")
        if self.encode_threads is not None and self.encode_threads < 1:
            raise ValueError(f"Got encode_threads={self.encode_threads}; expected at least 1, or None")
        if not self.allowed_hosts or not all(isinstance(name, str) and name for name in self.allowed_hosts):
            raise ValueError(f"Got allowed_hosts={self.allowed_hosts!r}; expected host names, or ('*',) for any")
        for name in ("max_campaigns", "max_connections", "keep_alive_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"Got {name}={getattr(self, name)}; expected at least 1")


class NotServing(Exception):
    """The service cannot answer yet (still loading) or any more (failed to load); the message says which."""


class ModelHolder:
    """The matcher in service: loaded in the background, replaced whole when the alias moves.

    `readiness`, `match` and `similar` are what the HTTP service calls, here in the same process; with worker
    processes (`matcher.service_workers.WorkerPool`) it calls `readiness` there, and each worker's own holder
    answers `match` and `similar` (`WorkerPool.submit`).

    Args:
        creators: the creators table as read (its valid rows are served), or its path, read in the background.
        config: the service's configuration.
        first: the model URI to load first instead of `config.model`: a worker process replacing one that died
            loads the version in service, not the alias, which may point at a version that failed to load. An
            alias in `config.model` is then watched as usual.
    """

    def __init__(self, creators: Table | str | Path, config: ServiceConfig, first: str | None = None) -> None:
        self.creators = creators
        self.config = config
        self.first = first
        self.matcher: Matcher | None = None
        self.failure: str | None = None
        # The version the alias points at that is not in service, why, and whether it is tried again.
        self.not_served: dict | None = None
        self._stop = threading.Event()
        self._refused: dict[str, str] = {}  # versions that cannot be served, by their own content: never retried
        self._unresolved: str | None = None  # why the alias could not be looked up at the last poll
        self._on_change = None

    def start(self, on_failure=None, on_change=None) -> threading.Thread:
        """Loads in a background thread, then watches the alias until `stop`.

        Args:
            on_failure: called with the reason, in one line, if loading fails.
            on_change: called (no arguments) each time what `served` says changes: a version goes into service
                (the first and each promotion), or the alias's version could not be (or again can be) served.
        """
        self._on_change = on_change
        thread = threading.Thread(target=self._run, args=(on_failure,), name="model-holder", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> tuple[bool, dict]:
        """(ready, the body /readyz answers)."""
        if self.matcher is None:
            return False, {"status": "failed" if self.failure else "loading", "reason": self.failure}
        return True, {"status": "ready", **self.served()}

    def served(self) -> dict:
        """The version in service and its creators, and `not_served` while the alias points at a version that
        could not be loaded (absent otherwise, so that a service without a failed promotion answers as before)."""
        matcher = self.serving()
        body = {"model_version": matcher.ranker.version, "creators": len(matcher.creators)}
        if self.not_served is not None:
            body["not_served"] = self.not_served
        return body

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

    def similar(self, creator_ids, k, marketplaces, creator_types) -> tuple[str, pd.DataFrame, list[str]]:
        """(the version that answered, lookalikes of the creators and their notes: `Matcher.similar_with_notes`)."""
        matcher = self.serving()
        found, notes = matcher.similar_with_notes(creator_ids, k, marketplaces, creator_types)
        return matcher.ranker.version, found, notes

    def _run(self, on_failure) -> None:
        from features.embeddings import Embedder
        from features.tables import read_table
        from matcher.artifacts import load_for_matching

        try:
            if not isinstance(self.creators, Table):
                self.creators = read_table(self.creators, "creators")
            # A model store that is a SQLite file not there yet is a failure to load, not an empty store to create;
            # a mistyped index path is said before the model's seconds of loading.
            ranker = load_for_matching(self.first or self.config.model, self.config.performance, self.config.index)
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
        self._changed()
        if is_alias(self.config.model):
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
            if str(exc) != self._unresolved:  # once, not at every poll of a registry down for an hour
                log.warning("cannot resolve %s (asked again at each poll): %s", self.config.model, exc)
            self._unresolved = str(exc)
            return False
        if self._unresolved is not None:
            log.warning("resolved %s again: %s", self.config.model, target)
            self._unresolved = None
        if current is None or target == current.ranker.version:
            self._not_served(None)  # the alias moved back to the version in service
            return False
        if target in self._refused:
            self._not_served({"model_version": target, "reason": self._refused[target], "retried": False})
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
        except Exception as exc:  # keep serving the current one; try this one again only if it may load later
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            retried = not _unservable(exc)
            if not retried:
                self._refused[target] = reason
            # Logged once per failure, not at every poll: a file missing for an hour would write a line a poll.
            if self.not_served != {"model_version": target, "reason": reason, "retried": retried}:
                again = "tried again at each poll" if retried else "not tried again"
                log.warning("not serving %s (still %s; %s): %s", target, current.ranker.version, again, reason)
            self._not_served({"model_version": target, "reason": reason, "retried": retried})
            return False
        self.matcher = replacement  # one reference: requests already running keep the matcher they read
        failed = self.not_served is not None and self.not_served["model_version"] == target
        self.not_served = None
        self._changed()
        after = ", which had failed to load" if failed else ""
        log.warning("now serving %s (was %s)%s", replacement.ranker.version, current.ranker.version, after)
        return True

    def _not_served(self, state: dict | None) -> None:
        if state != self.not_served:
            self.not_served = state
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    @staticmethod
    def _ready(matcher: Matcher) -> Matcher:
        """Builds what the first requests would otherwise pay for: per-category retrieval and lookalike tables."""
        matcher.warm()
        _ = matcher.lookalikes
        return matcher


def _unservable(exc: BaseException) -> bool:
    """Whether a version failed to load because of its own content, which no later attempt changes: another
    embedding model or feature set (`ArtifactMismatch`), estimators pickled by another scikit-learn
    (`IncompatibleModel`), a file that cannot be unpickled, another project's model or files that differ from the
    digest `train` recorded (`NotARanker`, `DigestMismatch` among them), each said of the version by this code's
    own checks (a file missing from a version with a digest is such a mismatch: the digest cannot tell it from a
    changed one). A file missing from a version without one, a store or a network that failed, or anything else,
    may load later."""
    from matcher.index_files import ArtifactMismatch
    from training.registry import IncompatibleModel, NotARanker

    return isinstance(exc, ArtifactMismatch | IncompatibleModel | NotARanker)
