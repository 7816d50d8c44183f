"""The Python API campaign tools call: construct a Matcher once, then match one campaign or many.

`Matcher` composes the rooms of a run: `matcher.eligibility` (who may be proposed), `matcher.retrieval`
(candidates), `matcher.scoring` (expected outcomes per pair), `matcher.jobs` (chunks, checkpoints, engines),
`matcher.slate` (assignment) and `matcher.explain` (reasons and summaries); `matcher.schema` defines the table.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from pathlib import Path

import faiss  # noqa: F401  (imported before torch, so FAISS keeps its own thread settings)
import numpy as np
import pandas as pd

from features.contract import AMAZON_CODES, PRODUCT_TYPES, marketplace_hint
from features.duplicate_evidence import DuplicateEvidence
from features.embeddings import Embedder, campaign_vectors
from features.environment import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV  # noqa: F401  (crash tests' hooks)
from features.errors import MatcherError
from features.parameters import refuse, refuse_type, whole_number
from features.product_type import ProductTypeModel, resolve_product_types
from features.records import SettledPerformance, creator_records
from features.rows import CampaignRow
from features.similarity import TagSpace
from features.tables import (
    Reject,
    Table,
    checked_rows,
    missing_columns,
    records_frame,
    rejected_row_line,
    shown_ids,
    valid_rows,
)
from matcher.artifacts import check_features, embedder_for, index_for, load_for_matching
from matcher.candidate_index import ArtifactMismatch, CandidateIndex
from matcher.eligibility import Eligibility, VectorsByRow
from matcher.explain import matches_table, summaries
from matcher.index_files import DamagedIndex, IndexNotFound
from matcher.jobs import ENGINES, assign, candidates_table, chunked, scored_parts
from matcher.profile_refresh import refresh_profiles
from matcher.ray_engine import RayUnavailable
from matcher.retrieval import Retrieval
from matcher.schema import MATCH_COLUMNS, CampaignSummary, MatchResult, SlateEntry, empty_matches
from matcher.scoring import Scorer, in_table_order
from matcher.settings import MatchSettings
from matcher.similar import LookalikeSpace, UnknownCreator, listed
from training.ranker import PREDICTIONS, flat_heads, heads_besides
from training.registry import (
    DEFAULT_MODEL_NAME,
    DigestMismatch,
    IncompatibleModel,
    LoadedRanker,
    ModelNotFound,
    NotARanker,
    RegistryUnavailable,
    training_records,
)

__all__ = [
    "ENGINES",
    "MATCH_COLUMNS",
    "ArtifactMismatch",
    "CampaignRejected",
    "CampaignSummary",
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
    "UnknownCreator",
    "no_campaigns_matched",
]

CHAMPION_URI = f"models:/{DEFAULT_MODEL_NAME}@champion"
# What `warm` encodes: a short brief; its vector is discarded.
_WARM_BRIEF = "Warm-up brief: skincare serum for glowing skin."
# What each of Matcher's arguments may be, and how to say so: another type failed deep inside, settings={"capacity":
# 3} as "'dict' object has no attribute 'allow_cashback'" and model=42 as "'int' object has no attribute 'startswith'".
_ARGUMENTS = {
    "creators": ((Table, pd.DataFrame), "a DataFrame, or a table from features.read_table"),
    "model": ((str, Path, LoadedRanker), "a model URI or directory, or a LoadedRanker"),
    "index": ((CandidateIndex, str, Path, type(None)), "a CandidateIndex, its directory, or None"),
    "embedder": ((Embedder, type(None)), "an Embedder, or None"),
    "settings": (
        (MatchSettings, type(None)),
        "a MatchSettings, or None (slate sizes and capacity are its SlatePolicy: "
        "MatchSettings(slate=SlatePolicy(capacity=3)))",
    ),
    "performance": ((SettledPerformance, type(None)), "a SettledPerformance, or None"),
}


class CampaignRejected(ValueError, MatcherError):
    """Campaigns given to `Matcher.match` (or to `candidate_features`, `scored_candidates`) with an invalid row:
    the message names the first, and `rejects` holds them all, the same `Reject` records `match_many(...).rejects`
    gives.

    Attributes:
        rejects: every bad column of every invalid row, with its reason.
    """

    def __init__(self, message: str, rejects: Iterable[Reject]) -> None:
        super().__init__(message)
        self.rejects: list[Reject] = list(rejects)

    def __reduce__(self) -> tuple:
        # Made again from both arguments: a pickled error (a worker process's) keeps its rejects.
        return type(self), (str(self), self.rejects)


class Matcher:
    """Scores creators for campaigns with a registered ranker and builds slates.

    Invalid rows are left out, as the command line leaves them out: nothing valid is lost because of an
    invalid neighbour. A table from `features.read_table` comes with its rejects, which its reader has; a
    DataFrame is validated here, and a `UserWarning` names how many of its rows were left out and the first
    reason. Either way the rejects are `creator_rejects` and `performance_rejects`, the same `Reject` records
    the command line writes to its rejects file.

    Args:
        creators: the creators: a table from `features.read_table(path, "creators")`, whose valid rows are
            used as they are, or a DataFrame, which is validated here.
        model: a model URI or model directory (default: the `champion` of `creator-ranker`), or an already loaded
            ranker.
        index: a candidate index, or its directory; built from `creators` when None. Profiles edited since it
            was built are embedded anew and used (a given index object is copied first; files are never written).
        embedder: the embedding model; defaults to the model and backend the ranker was trained with.
        settings: eligibility, retrieval and slate settings.
        performance: the latest performance table, its past campaigns and the run date: creators are scored
            on their records settled by then. Default: their records as of the ranker's training.

    Attributes:
        creator_rejects: the creators' invalid rows, left out.
        performance_rejects: the invalid rows of the performance table and of its past campaigns (`table`
            `past_campaigns`), and performance rows whose campaign is not a valid past one, left out.
        creators_not_in_index: creators of the table the index lacks, never proposed (warned about).
        profiles_changed_since_index: creators whose profile text (interest tags, type, bio) differs from the one
            the given index embedded: embedded anew and matched on the table's profile (warned about; see
            `matcher.profile_refresh` for what each kind of index then holds).
        eligibility: who may be proposed, by index row and by table row.
        scorer: what scoring reads (ranker heads, creators, vectors, index, records) and does.

    Raises:
        TypeError: an argument is not of a type named here, naming it, its type and what it may be.
        ValueError: the creators table has no valid row (none at all, or every one rejected); one that lacks a
            required column names the columns.
        ModelNotFound: the model URI or directory does not resolve to a model (the message names it and the
            store); its subclasses `NotARanker` (a model that is not a ranker this code can read, or whose files
            are not those registered: `DigestMismatch`) and `IncompatibleModel` (fitted under another
            scikit-learn).
        RegistryUnavailable: the tracking store cannot be read (locked, corrupt, or a server that does not
            answer within about 10 s), naming the store.
        ArtifactMismatch: the index, ranker and embedder disagree on the embedding model, backend or dimension,
            or the index holds none of the table's creators; `DamagedIndex`, an index directory that cannot be
            read, naming it.
        IndexNotFound: `index` is a directory that holds no candidate index (a FileNotFoundError), naming it.

        Each of these but TypeError and ValueError is a `MatcherError`.

    Warns:
        UserWarning: a DataFrame given had invalid rows, left out (how many, and the first reason); the index
            lacks some of the table's creators (how many); some profiles changed since the index was built (how
            many, the first ids); an index directory written before indexes recorded their profiles cannot be
            checked for that.
    """

    def __init__(
        self,
        creators: Table | pd.DataFrame,
        model: str | Path | LoadedRanker = CHAMPION_URI,
        index: CandidateIndex | str | Path | None = None,
        embedder: Embedder | None = None,
        settings: MatchSettings | None = None,
        performance: SettledPerformance | None = None,
    ) -> None:
        arguments = dict(
            creators=creators, model=model, index=index, embedder=embedder, settings=settings, performance=performance
        )
        for name, value in arguments.items():
            kinds, expected = _ARGUMENTS[name]
            if not isinstance(value, kinds):
                raise refuse_type(name, value, expected)
        model = str(model) if isinstance(model, Path) else model
        self.settings = MatchSettings() if settings is None else settings
        table = valid_rows(creators, "creators")
        self.creator_rejects: list[Reject] = list(table.rejects)
        if _given_unvalidated(creators):
            _warn_left_out(self.creator_rejects, "creator_rejects")
        self.creators = table.frame.reset_index(drop=True)
        if self.creators.empty:  # else a model load later, an index of no vectors (or a search of none) failed
            given = creators.frame if isinstance(creators, Table) else creators
            # A table without a required column has every row rejected for it, or none to reject ("0 rejected").
            if refusal := missing_columns(given.columns, "creators", "a matcher needs at least one"):
                raise ValueError(f"Got no valid creator row: {refusal}")
            rejected = len({reject.row for reject in self.creator_rejects})
            first = f"; the first: {self.creator_rejects[0].line()}" if self.creator_rejects else ""
            raise ValueError(f"Got no valid creator row ({rejected} rejected{first}); a matcher needs at least one")
        self.performance_rejects: list[Reject] = []
        if performance is not None:
            given = (performance.performance, performance.campaigns)
            # Validated tables: SettledPerformance would refuse a DataFrame with an invalid row outright.
            performance = dataclasses.replace(
                performance,
                performance=valid_rows(performance.performance, "performance"),
                campaigns=valid_rows(performance.campaigns, "campaigns"),
            )
            self.performance_rejects = performance.rejects()
            if any(map(_given_unvalidated, given)):
                _warn_left_out(self.performance_rejects, "performance_rejects")
        # A SQLite store that is not there is refused, not created empty by MLflow (matcher.artifacts).
        self.ranker = load_for_matching(model, performance, index)
        check_features(self.ranker)
        self.embedder = embedder_for(self.ranker, embedder)
        given = index
        index = index_for(index, self.ranker, self.embedder, table)
        self.creators_not_in_index = _check_coverage(self.creators, index)
        self.eligibility = Eligibility.of(
            self.creators, index.creator_ids, self.settings.allow_cashback, self.settings.violations
        )
        self.profiles_changed_since_index = 0
        if given is not None:  # an index built here from the table holds its profiles already
            # Profiles edited since the index was built are embedded anew and matched as they are now; a caller's
            # index object is copied first, and the files are never written.
            index, changed = refresh_profiles(
                index,
                self.creators,
                self.eligibility.row_of,
                self.embedder,
                shared=isinstance(given, CandidateIndex),
                directory=None if isinstance(given, CandidateIndex) else given,
            )
            self.profiles_changed_since_index = len(changed)
        self.index = index
        past = self.ranker.model.past
        vectors = VectorsByRow(index, self.eligibility.row_of, len(self.creators))
        tags = TagSpace(self.embedder, self.creators["interest_tags"])
        # What the ranker learned is applied to records that are data: the latest performance's, else training's.
        self.records = (
            training_records(self.ranker)
            if performance is None
            else creator_records(performance, past, self.embedder.isolated(), self.creators, vectors, tags)
        )
        history, category_history, marketplace_history = in_table_order(self.records, self.creators["creator_id"])
        self.scorer = Scorer(
            ranker=self.ranker.model.ranker,
            embedder=self.embedder,
            creators=self.creators,
            creator_vectors=vectors,
            tags=tags,
            history=history,
            category_history=category_history,
            marketplace_history=marketplace_history,
            priors=past.priors,
            retrieval=Retrieval(
                self.creators,
                history,
                past.affinity,
                index,
                self.eligibility,
                self.settings.candidates,
                self.settings.proven_candidates,
                self.settings.min_market_share,
                self.embedder,
            ),
            violations=self.settings.violations,
            min_market_share=self.settings.min_market_share,
            related_first=self.settings.related_first,
        )
        self._product_types = getattr(past, "product_types", None)  # None in rankers trained before it existed
        self._flat_heads: list[str] | None = None  # known from the first campaign with two candidates or more
        self._unpriced_said: set[str] = set()  # the marketplaces `_unpriced_line` was warned of
        # Creators of one handle on a shared platform are one person to the slates (`DuplicateEvidence`): said once.
        self._one_person = _one_person_lines(self.duplicate_evidence.people, self.creators["creator_id"])
        for note in self._one_person:
            warnings.warn(note, UserWarning, stacklevel=2)
        self._categories = list(past.priors.ctr_)

    def similar(
        self,
        creator_ids: str | Iterable[str],
        k: int = 20,
        marketplaces: str | Iterable[str] | None = None,
        creator_types: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The k eligible creators most like the given ones, best first, with reasons; see `matcher.similar`.

        Args:
            creator_ids: the seeds (ids of this matcher's creators; one id or several); never returned themselves.
            k: how many lookalikes, a whole number of at least 1.
            marketplaces: only creators with at least `min_market_share` of their audience there (or none stated);
                one code or several.
            creator_types: only creators of these types; one type or several.

        Raises:
            UnknownCreator: a seed is not one of this matcher's creators: not in the table, or its row rejected
                (the message says which, with the row's reasons).
            ValueError: k, a marketplace code or a creator type is not usable, named (a code that is not one of
                Amazon's and that no creator states an audience in among them).
            TypeError: `creator_ids` is neither a string nor an iterable of them, naming its type.

        Warns:
            UserWarning: `lookalike_notes`, one line per marketplace code no creator states an audience in.
        """
        found, notes = self.similar_with_notes(creator_ids, k, marketplaces, creator_types)
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        return found

    def similar_with_notes(
        self,
        creator_ids: str | Iterable[str],
        k: int,
        marketplaces: str | Iterable[str] | None,
        creator_types: str | Iterable[str] | None,
    ) -> tuple[pd.DataFrame, list[str]]:
        """(`similar`'s lookalikes, its `lookalike_notes`), the notes returned rather than warned: what `similar`
        warns with and a service answers with (`matcher.model_holder`), computed once.

        Raises:
            UnknownCreator, ValueError, TypeError: as `similar`.
        """
        # Read once: a generator of codes would be spent by the search before the notes read it.
        marketplaces = None if marketplaces is None else listed(marketplaces)
        found = self.lookalikes.similar(creator_ids, k, marketplaces, creator_types)
        return found, self.lookalike_notes(marketplaces)

    def lookalike_notes(self, marketplaces: str | Iterable[str] | None) -> list[str]:
        """A line per asked marketplace code no creator states an audience in, saying what the filter then does
        (only creators who state no split remain, when no asked code is stated), as `match_many`'s notes say it
        of a campaign's marketplaces: the search runs, and the line says why its list is what it is."""
        asked = listed(marketplaces or ())
        column, shares, stated = self.scorer.retrieval.audience
        subjects = dict.fromkeys(asked, "the lookalike search")
        aliased = _aliased_marketplaces(subjects, column, shares, self.scorer.retrieval.creators["creator_id"])
        codes = self.lookalikes.unstated(asked)
        if not codes or not column:  # without a stated audience anywhere, no code is compared with one
            return aliased
        alone = not any(code in column for code in asked)
        share = self.settings.min_market_share
        return [_unreached_line(code, "the lookalike search", "its", alone, stated, share) for code in codes] + aliased

    @cached_property
    def duplicate_evidence(self) -> DuplicateEvidence:
        """What the slates' near-duplicate rule compares: profile vectors, which creators hold a bio, and which are
        one person under two ids (the same handle on a platform both list), who also share one capacity."""
        return DuplicateEvidence.of(self.scorer.creator_vectors, self.creators)

    @cached_property
    def lookalikes(self) -> LookalikeSpace:
        """What lookalike search reads of every creator, built on first use."""
        return LookalikeSpace(
            self.creators,
            self.scorer.creator_vectors,
            self.index,
            self.eligibility.row_of,
            self.eligibility.in_table,
            self.scorer.tags,
            self.scorer.category_history,
            self.settings.min_market_share,
            self.creator_rejects,
        )

    def warm(self, categories: str | Iterable[str] | None = None) -> None:
        """Computes each category's retrieval tables now rather than on its first campaign (default: every
        category the ranker's history knows), and runs the encoder once as a brief is encoded, so that a service's
        first requests are as quick as the rest.

        Args:
            categories: one category or several, read as a campaign's are (stripped, lower-case).
        """
        # A string was warmed letter by letter, and "Beauty" as no campaign's category ("beauty").
        asked = None if categories is None else [category.lower() for category in listed(categories)]
        self.scorer.retrieval.warm(self._categories if asked is None else asked)
        # A brief's first encoding paid ONNX Runtime's first runs (~150 ms). Briefs are encoded by an isolated
        # embedder, a lone text beside a copy of itself (features.embeddings.padded_batches): the same here, and
        # its memory-only cache is dropped, so no cache a result reads holds this text.
        self.embedder.isolated().encode([_WARM_BRIEF])

    def candidate_features(self, campaigns: Table | pd.DataFrame, chunk_size: int = 256) -> pd.DataFrame:
        """The candidate pairs of valid in-stock campaigns with the ranker's features exactly as `match_many` with
        the same `chunk_size` scores them, for model review: `campaign_id`, `creator_id`, then FEATURES,
        EVIDENCE_COLUMNS and `market_share`.

        The campaigns are cut, embedded and scored in the same chunks as matching them would be.

        Raises:
            CampaignRejected: a campaigns DataFrame has an invalid row (the first is named; `rejects`, all).
            TypeError: as `match_many`.
            ValueError: `chunk_size` is not a whole number of at least 1, named.
        """
        return self._each_chunk(campaigns, chunk_size, self._keyed_features)

    def scored_candidates(self, campaigns: Table | pd.DataFrame, chunk_size: int = 256) -> pd.DataFrame:
        """Every candidate pair of valid in-stock campaigns as `match_many` with the same `chunk_size` scores it,
        before any slate rule (pairs under `min_market_share` are left out, as matching leaves them out;
        `candidate_features` keeps them): its score, expected outcomes and the evidence its reason is written
        from. For model review: what a creator who is not on a slate scored, or the slates the same rules build
        from other scores (`matcher.slate.build_slates`).

        Raises:
            CampaignRejected: a campaigns DataFrame has an invalid row (the first is named; `rejects`, all).
            TypeError: as `match_many`.
            ValueError: `chunk_size` is not a whole number of at least 1, named.
        """
        return self._each_chunk(campaigns, chunk_size, self.scorer.score)

    def _each_chunk(
        self,
        campaigns: Table | pd.DataFrame,
        chunk_size: int,
        pairs_of: Callable[[pd.DataFrame, np.ndarray | None], pd.DataFrame],
    ) -> pd.DataFrame:
        """`pairs_of(chunk, brief vectors)` for each chunk of the valid in-stock campaigns, as `match_many` cuts
        them, in one frame."""
        _check_chunk_size(chunk_size)
        table, _ = _campaign_table(campaigns)
        if table.rejects:
            raise CampaignRejected(
                f"{len(table.rejects)} invalid campaign rows; first: {table.rejects[0].line()}", table.rejects
            )
        resolved, chunks, vectors = self._chunks(table, chunk_size)
        # An empty chunk gives the columns when no campaign is in stock.
        parts = [] if chunks else [pairs_of(resolved.iloc[:0].reset_index(drop=True), None)]
        parts += [pairs_of(chunk, vectors[number]) for number, chunk in chunks.items()]
        return pd.concat(parts, ignore_index=True)

    def _keyed_features(self, chunk: pd.DataFrame, vectors: np.ndarray | None) -> pd.DataFrame:
        """A chunk's candidate pairs: `campaign_id`, `creator_id` and their features."""
        features, campaign_index, creator_index = self.scorer.features(chunk, vectors)
        keys = {
            "campaign_id": chunk["campaign_id"].to_numpy()[campaign_index],
            "creator_id": self.creators["creator_id"].to_numpy()[creator_index],
        }
        return pd.concat([pd.DataFrame(keys), features], axis=1)

    def _resolved(self, campaigns: pd.DataFrame, vectors: np.ndarray | None = None) -> pd.DataFrame:
        """Valid campaigns with their product types resolved, from their brief vectors when given."""
        # An isolated embedder: the resolved type depends on the briefs alone, not on what this process encoded before.
        return resolve_product_types(campaigns, self.embedder.isolated(), self._product_types, vectors)

    def _chunks(
        self, table: Table, chunk_size: int
    ) -> tuple[pd.DataFrame, dict[int, pd.DataFrame], dict[int, np.ndarray]]:
        """The table's valid campaigns with their product types resolved, the in-stock ones in chunks, and each
        chunk's brief vectors.

        Each chunk's briefs are embedded by an isolated embedder, and product types read the same vectors: each
        brief is embedded once (out-of-stock `auto` campaigns' as one batch more).
        """
        frame = table.frame.reset_index(drop=True)
        embedder = self.embedder.isolated()
        in_stock = frame["in_stock"].astype(bool).to_numpy()
        vectors = np.zeros((len(frame), self.embedder.dimension), dtype=np.float32)
        by_chunk = {n: campaign_vectors(embedder, chunk) for n, chunk in chunked(frame[in_stock], chunk_size).items()}
        if by_chunk:
            vectors[in_stock] = np.concatenate(list(by_chunk.values()))
        idle = np.flatnonzero(~in_stock & ~frame["product_type"].isin(PRODUCT_TYPES).to_numpy())
        if len(idle):
            vectors[idle] = campaign_vectors(embedder, frame.iloc[idle])
        campaigns = self._resolved(frame, vectors)
        return campaigns, chunked(campaigns[in_stock], chunk_size), by_chunk

    def match(self, campaign: CampaignRow | Mapping[str, object]) -> MatchResult:
        """Matches one campaign (a CampaignRow or a mapping with the contract's campaign columns).

        Raises:
            TypeError: `campaign` is not a mapping or a CampaignRow (a table of campaigns is `match_many`'s).
            CampaignRejected: the campaign is invalid; the message is its reject line, with every bad column and
                reason, and `rejects` its `Reject` records, as `match_many` returns them.
        """
        if not isinstance(campaign, CampaignRow | Mapping):
            several = isinstance(campaign, Iterable) and not isinstance(campaign, str)  # a frame, a Series
            many = "; match_many takes a table or a list of campaigns" if several else ""
            raise refuse_type("campaign", campaign, f"one campaign, a mapping or a CampaignRow{many}")
        table, column_notes = _campaign_table([campaign])
        if table.rejects:
            raise CampaignRejected(f"invalid campaign: {rejected_row_line(table.rejects)}", table.rejects)
        result = self.match_many(table)
        result.notes[:0] = column_notes
        return result

    def match_many(
        self,
        campaigns: Table | pd.DataFrame | Iterable[CampaignRow | Mapping[str, object]],
        checkpoint_dir: str | Path | None = None,
        chunk_size: int = 256,
        progress: bool | None = None,
        engine: str = "local",
        ray_actors: int = 2,
        with_candidates: bool = False,
    ) -> MatchResult:
        """Matches many campaigns; invalid ones come back as `rejects`, as the command line's rejects file.

        A table from `features.read_table(path, "campaigns")` is used as validated (its rejects are passed
        on); a DataFrame or the campaigns of an iterable are validated here, numbered by position from 1.

        Campaigns are scored in chunks, each kept as Parquet: in memory, or with `checkpoint_dir` committed
        there so that a rerun after a crash reuses it (a single chunk scored locally without `checkpoint_dir`,
        such as one campaign, is kept as it is: the same values without the round trip). Slates are then
        assigned over all chunks at once from the few columns that assignment needs, so memory stays bounded
        and the result does not depend on where a run was interrupted nor on the engine.

        Args:
            campaigns: the campaigns to match: a read table, a DataFrame, or CampaignRows and mappings.
            checkpoint_dir: where scored chunks are committed; None keeps them in memory.
            chunk_size: campaigns scored together.
            progress: a progress bar over chunks; None shows one when there is more than one chunk.
            engine: `local` scores chunks in this process; `ray` on a pool of Ray actors (the cluster at
                $RAY_ADDRESS, else a local Ray started for the call), with the same result.
            ray_actors: size of the actor pool with `engine="ray"`.
            with_candidates: also return every scored pair, on a slate or not, as `MatchResult.candidates`
                (`matcher.schema.CANDIDATE_COLUMNS`): the same scores, read back from the scored chunks.

        Raises:
            ValueError: `engine` or `chunk_size` is not usable, named.
            TypeError: `campaigns` is one campaign, a path or no iterable, naming its type; an item of an iterable of
                campaigns is neither a mapping nor a CampaignRow, naming its place.
            RayUnavailable: `engine="ray"` and Ray is not installed, or the cluster at $RAY_ADDRESS does not answer.
        """
        if engine not in ENGINES:
            raise ValueError(f"Got engine={engine!r}; expected one of {', '.join(ENGINES)}")
        _check_chunk_size(chunk_size)
        table, notes = _campaign_table(campaigns)
        if table.frame.empty:  # nothing to embed, score or assign
            return dataclasses.replace(no_campaigns_matched(table.rejects, with_candidates), notes=notes)
        column, shares, stated = self.scorer.retrieval.audience
        unreached = _unreached_marketplaces(table.frame, column, stated, self.settings.min_market_share)
        ids = self.scorer.retrieval.creators["creator_id"]
        by_marketplace = _campaigns_by_marketplace(table.frame)
        unreached += _aliased_marketplaces(by_marketplace, column, shares, ids)
        for note in unreached:
            warnings.warn(note, UserWarning, stacklevel=2)
        unpriced = _unpriced_marketplaces(table.frame, by_marketplace, self._product_types)
        # Warned of once per matcher and marketplace: a service, matching a campaign a call, said it on every call.
        if first_said := [code for code in unpriced if code not in self._unpriced_said]:
            self._unpriced_said.update(first_said)
            warnings.warn(_unpriced_line(first_said, table.frame, self._product_types), UserWarning, stacklevel=2)
        notes += unreached + ([_unpriced_line(unpriced, table.frame, self._product_types)] if unpriced else [])
        campaigns, chunks, vectors = self._chunks(table, chunk_size)
        notes += self._flat_ranker_notes(chunks, vectors) + self._one_person
        active = campaigns[campaigns["in_stock"].astype(bool)].reset_index(drop=True)
        show = progress if progress is not None else len(chunks) > 1
        parts = scored_parts(self.scorer, chunks, checkpoint_dir, engine, ray_actors, show, vectors)
        chosen, size_reason = assign(parts, self.settings.slate, self.duplicate_evidence)
        matches = matches_table(chosen, active, self.ranker.version)
        scored = candidates_table(parts, matches, self.ranker.version) if with_candidates else None
        model = self.ranker.model
        known = model.past.priors.known(campaigns["category"])
        summary = summaries(campaigns, matches, size_reason, model.orders_interval, known)
        return MatchResult(matches, summary, list(table.rejects), scored, notes)

    def _flat_ranker_notes(self, chunks: dict[int, pd.DataFrame], vectors: dict[int, np.ndarray]) -> list[str]:
        """The line saying which of the ranker's heads predict one value for every pair (`training.ranker.flat_heads`,
        as `train` warns of them), warned once per matcher and a note of every result.

        A ranker trained on a seller's first few dozen pairs can have heads that found no split; with all three
        flat, every candidate of a campaign gets the same expected sales and slates follow creator id. Its heads
        are read once, on the candidates of the first campaign with two or more.
        """
        if self._flat_heads is None:
            for number, chunk in chunks.items():
                probe = chunk.iloc[:1]
                features, _, _ = self.scorer.features(probe, vectors[number][:1])
                if len(features) > 1:
                    self._flat_heads = flat_heads(self.scorer.ranker, features)
                    if self._flat_heads:
                        warnings.warn(_flat_line(self._flat_heads, self.ranker.version), UserWarning, stacklevel=3)
                    break
        return [_flat_line(self._flat_heads, self.ranker.version)] if self._flat_heads else []


def _flat_line(flat: list[str], version: str) -> str:
    """What a match says of a ranker whose `flat` heads (`HEAD_NAMES`) predict one value for every pair."""
    heads = f"{', '.join(flat[:-1])} and {flat[-1]} heads each predict" if len(flat) > 1 else f"{flat[0]} head predicts"
    if len(flat) == len(PREDICTIONS):
        effect = (
            "so every candidate of a campaign gets the same expected sales and its slate follows creator id, not fit"
        )
    else:
        rest = heads_besides(flat)
        effect = f"so its scores rest on its {' and '.join(rest)} head{'s' if len(rest) > 1 else ''} alone"
    return (
        f"ranker {version}: its {heads} one value for every pair (found no split in training: too few settled "
        f"pairs), {effect}; train it again once more campaigns have settled"
    )


def _one_person_lines(people: list[list[int]], creator_ids: pd.Series) -> list[str]:
    """The line naming the creators the slates take for one person (`DuplicateEvidence.people`), if any: by their
    ids alone, as handles are never echoed (docs/contract.md)."""
    if not people:
        return []
    ids = creator_ids.to_numpy()
    named = [f"({shown_ids([ids[row] for row in rows])})" for rows in people[:5]]
    more = f" and {len(people) - 5} more groups" if len(people) > 5 else ""
    return [
        "creators with the same handle on a platform they both list are taken for one person: a slate holds at "
        f"most one of each group, and their campaigns count together towards capacity: {', '.join(named)}{more}"
    ]


def no_campaigns_matched(rejects: Iterable[Reject] = (), with_candidates: bool = False) -> MatchResult:
    """What `Matcher.match_many` gives for campaigns with no valid row, which needs no model: no slate, no summary,
    and with `with_candidates` no scored pair (`matcher.schema.CANDIDATE_COLUMNS`, typed as ever); `rejects`, the
    campaigns' own. The batch job writes an empty batch from it without loading a model at all."""
    matches = empty_matches()
    return MatchResult(matches, [], list(rejects), candidates_table([], matches, "") if with_candidates else None)


# What match_many, candidate_features and scored_candidates take as their campaigns.
_CAMPAIGNS_TAKEN = "a table from features.read_table, a DataFrame, or an iterable of mappings and CampaignRows"


def _campaign_table(
    campaigns: Table | pd.DataFrame | Iterable[CampaignRow | Mapping[str, object]],
) -> tuple[Table, list[str]]:
    """The campaigns' valid rows and rejects, validated once whatever form they came in, and a line per column (a
    record's field) that the table does not read but that probably stands for one it does, also warned (to the
    Matcher method's caller): a misspelt `product_typ` left a seller's declared type unread.

    Raises:
        TypeError: `campaigns` is one campaign, a string or not iterable (naming its type), or an item is neither a
            mapping nor a CampaignRow (naming its place).
    """
    # One campaign was iterated as its keys and a path as its letters, each refused as "Got campaigns[0] as str".
    if isinstance(campaigns, Mapping | CampaignRow):
        raise refuse_type("campaigns", campaigns, f"{_CAMPAIGNS_TAKEN}; one campaign is match's (or a list of one)")
    if isinstance(campaigns, str | bytes | Path):
        read = "read a file with features.read_table(path, 'campaigns')"
        raise refuse_type("campaigns", campaigns, f"{_CAMPAIGNS_TAKEN}; {read}")
    if not isinstance(campaigns, Table | pd.DataFrame | Iterable):
        raise refuse_type("campaigns", campaigns, _CAMPAIGNS_TAKEN)
    if not isinstance(campaigns, Table | pd.DataFrame):
        campaigns = records_frame([_campaign_record(campaign, i) for i, campaign in enumerate(campaigns)])
    table, notes = checked_rows(campaigns, "campaigns")
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return table, notes


def _check_chunk_size(chunk_size: object) -> None:
    """Refuses a chunk size that is not a whole number of at least 1: "10" failed as "'<' not supported between
    instances of 'str' and 'int'", and 0 as "range() arg 3 must not be zero" where nothing checked it.

    Raises:
        ValueError: naming the value.
    """
    if not whole_number(chunk_size) or chunk_size < 1:
        raise refuse("chunk_size", chunk_size, "a whole number of at least 1")


def _campaign_record(campaign: object, position: int) -> dict:
    """One campaign of an iterable as a record. Anything but a mapping or a CampaignRow is refused: a list of
    DataFrames was read as campaigns whose fields each held a whole column, every one rejected, and nothing matched.

    Raises:
        TypeError: naming the item's position and type.
    """
    if isinstance(campaign, CampaignRow):
        return campaign.model_dump()
    if isinstance(campaign, Mapping):
        return dict(campaign)
    hint = "; pass one table (pandas.concat the frames)" if isinstance(campaign, Table | pd.DataFrame) else ""
    raise refuse_type(f"campaigns[{position}]", campaign, f"a mapping or a CampaignRow{hint}")


def _given_unvalidated(data: Table | pd.DataFrame) -> bool:
    """Whether the Matcher validates `data` itself (a DataFrame, or a Table built by hand): its rejects are news."""
    return not (isinstance(data, Table) and data.validated)


def _check_coverage(creators: pd.DataFrame, index: CandidateIndex) -> int:
    """How many creators of the table the index lacks (never proposed: retrieval searches the index), warned
    about; an index holding none of them is another table's, refused rather than matched to empty slates.

    Raises:
        ArtifactMismatch: the index holds none of the table's creators.
    """
    missing = int((~creators["creator_id"].isin(index.creator_ids)).sum())
    rebuild = "rebuild it from this table with `creator-match index` (or leave --index out)"
    if len(creators) and missing == len(creators):
        raise ArtifactMismatch(
            f"the index ({len(index)} creators) holds none of the creators table's {len(creators)}: it was built "
            f"from another table; {rebuild}"
        )
    if missing:
        warnings.warn(
            f"{missing} of the {len(creators)} creators are not in the index and are never proposed; {rebuild}",
            UserWarning,
            stacklevel=3,
        )
    return missing


def _unreached_marketplaces(
    campaigns: pd.DataFrame, column: Mapping[str, int], stated: np.ndarray, min_market_share: float
) -> list[str]:
    """A line per campaign marketplace where no creator states any audience, naming its campaigns and what that does
    to them (`_unreached_line`).

    Args:
        campaigns: the run's valid campaigns.
        column: the marketplace codes some creator states an audience in.
        stated: per creator, whether it states an audience split.
        min_market_share: the run's least share of audience in a campaign's marketplaces.
    """
    if not column:  # no creator states an audience anywhere: nothing to compare a code with
        return []
    by_code: dict[tuple[str, bool], list[str]] = {}
    for campaign_id, codes in zip(campaigns["campaign_id"], campaigns["marketplaces"], strict=True):
        alone = not any(code in column for code in codes)
        for code in codes:
            if code not in column:
                by_code.setdefault((code, alone), []).append(str(campaign_id))
    notes = []
    for (code, alone), ids in by_code.items():
        subject = _campaigns_named(ids)
        whose = "their" if len(ids) > 1 else "its"
        notes.append(_unreached_line(code, subject, whose, alone, stated, min_market_share))
    return notes


def _aliased_marketplaces(
    subjects: Mapping[str, str], column: Mapping[str, int], shares: np.ndarray, creator_ids: pd.Series
) -> list[str]:
    """A line per asked marketplace that creators state an audience in under another name (`GB`, the country's ISO
    code, for Amazon's `UK`), naming what asked for it and those creators.

    That share counts in no marketplace asked: a creator stating `{"GB": 0.9}` read as having none of its audience
    in a UK campaign, and was left out of it (under the minimum market share) without a word whenever some other
    creator stated UK, the campaign's code then being one a creator states.

    Args:
        subjects: per asked marketplace code, what asked for it (`campaigns c7, c9`; `the lookalike search`).
        column: the marketplace codes some creator states an audience in, and their columns in `shares`.
        shares: per creator and code, the stated share of its audience.
        creator_ids: the creators' ids, in the rows of `shares`.
    """
    notes = []
    for alias, code in AMAZON_CODES.items():
        if alias not in column or code not in subjects:
            continue
        holders = creator_ids[shares[:, column[alias]] > 0].astype(str).tolist()
        if not holders:  # stated at 0: nothing of theirs is lost
            continue
        n = len(holders)
        notes.append(
            f"marketplace {code} of {subjects[code]}: {n} creator{'s state' if n > 1 else ' states'} an audience in "
            f"{alias} ({shown_ids(holders)}), which is not read as audience in {code} ({marketplace_hint(alias)}): "
            f"write {code} in audience_marketplaces; until then that share is none of a creator's audience in {code}, "
            "and a creator can be left out for it"
        )
    return notes


def _unpriced_marketplaces(
    campaigns: pd.DataFrame, by_marketplace: dict[str, str], product_types: ProductTypeModel | None
) -> list[str]:
    """The run's marketplaces whose prices the ranker's training campaigns do not place, sorted: fewer than
    `min_category_prices` (5) of them were sold there or in a marketplace whose prices agree with the run's there
    (one price zone), too few for a typical price (`ProductTypeModel.typical_log_price`).

    Prices are compared only within a price zone (the contract names no currency; marketplaces whose prices agree
    stand for one, `features.product_type.price_zones`), so an `auto` campaign sold only in such a marketplace has
    its price placed among this run's campaigns there alone (`features.product_type.resolve_product_types`), and
    the ranker's `log_price_in_zone`, a price against the typical one of its training campaigns in that zone, is
    unknown (missing) for it. A new-user trial's campaigns in IN, priced in rupees, were all read as dear against a
    ranker trained on dollar prices, without a word: `_unpriced_line` says so.

    Args:
        campaigns: the run's valid campaigns.
        by_marketplace: their `_campaigns_by_marketplace`.
        product_types: the ranker's product-type model; None, or one that kept no marketplaces (registered before),
            says nothing.
    """
    known = None if product_types is None else product_types.marketplaces
    if not known:
        return []
    zones = product_types.run_price_zones(campaigns)
    return sorted(
        code for code in by_marketplace if product_types.typical_log_price(zones.get(code, frozenset([code]))) is None
    )


def _unpriced_line(codes: list[str], campaigns: pd.DataFrame, product_types: ProductTypeModel) -> str:
    """The line naming `codes` (`_unpriced_marketplaces`) and the campaigns of `campaigns` sold there."""
    ids = [
        str(campaign_id)
        for campaign_id, sold in zip(campaigns["campaign_id"], campaigns["marketplaces"], strict=True)
        if not set(codes).isdisjoint(sold)
    ]
    return (
        f"marketplace{'s' if len(codes) > 1 else ''} {', '.join(codes)} of {_campaigns_named(ids)}: the ranker learned "
        f"from fewer than {product_types.min_category_prices} campaigns sold there, so the price of a campaign sold "
        "only there is placed, for its product type, among this run's campaigns there (and those few), and the "
        "ranker, which reads a price against its training campaigns' in the same currency (log_price_in_zone), has "
        f"too few there (it learned from campaigns sold in {', '.join(product_types.marketplaces)}): a campaign sold "
        "only there is scored with its price unknown"
    )


def _campaigns_by_marketplace(campaigns: pd.DataFrame) -> dict[str, str]:
    """Per marketplace code, the campaigns sold there as a line names them (`campaigns c7, c9`)."""
    by_code: dict[str, list[str]] = {}
    for campaign_id, codes in zip(campaigns["campaign_id"], campaigns["marketplaces"], strict=True):
        for code in codes:
            by_code.setdefault(code, []).append(str(campaign_id))
    return {code: _campaigns_named(ids) for code, ids in by_code.items()}


def _campaigns_named(ids: list[str]) -> str:
    """Campaigns as a warning's line names them (`campaign c7`, `campaigns c7, c9`); an id holding a line break would
    start a line of its own on standard error, so ids are shown as `shown_ids` shows them."""
    return f"campaign{'s' if len(ids) > 1 else ''} {shown_ids(ids)}"


def _unreached_line(
    code: str, subject: str, whose: str, alone: bool, stated: np.ndarray, min_market_share: float
) -> str:
    """The line for a marketplace where no creator states any audience; the code is often a typo for a marketplace
    (`GB`, the country's ISO code, for Amazon's `UK`) rather than a market nobody reaches.

    A creator's share of audience there is 0, so a search in such codes alone leaves out every creator who states
    an audience split (under `min_market_share`, when it is above 0) and keeps those who state none; one in other
    marketplaces too reads those.

    Args:
        code: the marketplace.
        subject: what asked for it (`campaigns c7, c9`; `the lookalike search`).
        whose: how the line refers to the subject's marketplaces (`its`, `their`).
        alone: whether none of the subject's marketplaces is one some creator states an audience in.
        stated: per creator, whether it states an audience split.
        min_market_share: the least share of audience in the marketplaces.
    """
    if not alone:
        effect = f"only {whose} other marketplaces count in a creator's audience share"
    elif min_market_share > 0:
        effect = (
            f"every creator who states an audience split has none of it in {whose} marketplaces, under the minimum "
            f"market share ({min_market_share:.0%}), and is left out: only creators who state no split "
            f"({int((~stated).sum())} of the {len(stated)}) can be proposed"
        )
    else:
        effect = "audience fit is unknown for every creator"
    hint = marketplace_hint(code)
    hint = f" ({hint})" if hint else ""
    return f"marketplace {code} of {subject}: no creator states an audience there, so {effect}{hint}"


def _warn_left_out(rejects: list[Reject], attribute: str) -> None:
    """Warns that the Matcher left these rows of a DataFrame out, naming how many and the first reason."""
    if rejects:
        rows = len({(r.table, r.row) for r in rejects})  # a row with several bad columns has a reject for each
        warnings.warn(
            f"{rows} invalid row{'s' if rows > 1 else ''} left out (Matcher.{attribute}); first: {rejects[0].line()}",
            UserWarning,
            stacklevel=3,
        )
