"""The Python API campaign tools call: construct a Matcher once, then match one campaign or many."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path

import faiss  # noqa: F401  (imported before torch, so FAISS keeps its own thread settings)
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from features.affinity import AFFINITY_FEATURES
from features.contract import CASHBACK_TYPE, FUNNEL_STAGE
from features.embeddings import Embedder, campaign_vectors, creator_vectors
from features.environment import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV
from features.history import HISTORY_COLUMNS
from features.pairwise import FEATURES, pair_features
from features.product_type import resolve_product_types
from features.records import SettledPerformance, creator_records
from features.rows import CampaignRow
from features.similarity import EVIDENCE_COLUMNS, TagSpace, semantic_features
from features.tables import Table, atomic_path, valid_rows
from matcher.candidate_index import ArtifactMismatch, CandidateIndex
from matcher.reasons import reason
from matcher.retrieval import proven_value
from matcher.schema import MATCH_COLUMNS, CampaignSummary, MatchResult, SlateEntry, empty_matches
from matcher.settings import MatchSettings
from matcher.similar import LookalikeSpace
from matcher.slate import build_slates
from training.registry import DEFAULT_MODEL_NAME, LoadedRanker, load_ranker, training_records

__all__ = [
    "ENGINES",
    "HALT_AFTER_CHUNKS_ENV",
    "HALT_MARKER_ENV",
    "MATCH_COLUMNS",
    "CampaignSummary",
    "MatchResult",
    "MatchSettings",
    "Matcher",
    "SlateEntry",
]

CHAMPION_URI = f"models:/{DEFAULT_MODEL_NAME}@champion"
ENGINES = ("local", "ray")
# What slate assignment reads of every scored pair; the rest is read back only for the chosen pairs.
SLATE_COLUMNS = [
    "campaign_id",
    "creator_id",
    "creator_row",
    "score",
    "expected_commission",
    "product_type",
    "product_type_probability",
    "budget",
    "funnel_stage",
    "hist_campaigns",
]




class Matcher:
    """Scores creators for campaigns with a registered ranker and builds slates.

    Args:
        creators: the creators: a table from `features.read_table(path, "creators")`, whose valid rows are
            used as they are, or a DataFrame, which is validated here and must have no invalid row.
        model: a model URI (default: the `champion` of `creator-ranker`) or an already loaded ranker.
        index: a candidate index, or its directory; built from `creators` when None.
        embedder: the embedding model; defaults to the model and backend the ranker was trained with.
        settings: eligibility, retrieval and slate settings.
        performance: the latest performance table, its past campaigns and the run date: creators are scored
            on their records settled by then. Default: their records as of the ranker's training.

    Raises:
        ArtifactMismatch: the index, ranker and embedder disagree on the embedding model, backend or dimension.
        ValueError: a creators DataFrame has an invalid row (the first is named: row, id, column, reason).
    """

    def __init__(
        self,
        creators: Table | pd.DataFrame,
        model: str | LoadedRanker = CHAMPION_URI,
        index: CandidateIndex | str | Path | None = None,
        embedder: Embedder | None = None,
        settings: MatchSettings | None = None,
        performance: SettledPerformance | None = None,
    ) -> None:
        self.settings = settings or MatchSettings()
        table = valid_rows(creators, "creators")
        if table.rejects and table is not creators:
            raise ValueError(f"{len(table.rejects)} invalid creator rows; first: {table.rejects[0].line()}")
        self.creators = table.frame.reset_index(drop=True)
        self.ranker = model if isinstance(model, LoadedRanker) else load_ranker(model)
        if list(self.ranker.model.features) != FEATURES:
            missing = sorted(set(FEATURES) - set(self.ranker.model.features))
            extra = sorted(set(self.ranker.model.features) - set(FEATURES))
            raise ArtifactMismatch(
                f"ranker {self.ranker.version} was trained with another feature set "
                f"({len(self.ranker.model.features)} features; this version computes {len(FEATURES)}; "
                f"missing {missing[:3]}, unexpected {extra[:3]}): retrain it with `creator-match train`"
            )
        trained_with = self.ranker.model.embedding_model
        backend = self.ranker.model.embedding_backend
        self.embedder = embedder or Embedder(trained_with, backend=backend)
        if (self.embedder.model, self.embedder.backend) != (trained_with, backend):
            raise ArtifactMismatch(
                f"ranker {self.ranker.version} was trained with embedding model {trained_with!r} on {backend}; "
                f"the matcher uses {self.embedder.model!r} on {self.embedder.backend}"
            )
        if isinstance(index, str | Path):
            index = CandidateIndex.load(index, trained_with, self.ranker.model.embedding_dim, backend)
        elif index is None:
            index = CandidateIndex.build(
                creator_vectors(self.embedder, self.creators),
                self.creators["creator_id"],
                self.embedder.model,
                embedding_backend=self.embedder.backend,
            )
        if index.meta.get("embedding_backend", "torch") != backend:
            raise ArtifactMismatch(
                f"index built with embedding backend {index.meta.get('embedding_backend', 'torch')!r}; "
                f"ranker {self.ranker.version} expects {backend!r}"
            )
        if index.meta["embedding_model"] != trained_with or index.meta["dimension"] != self.ranker.model.embedding_dim:
            raise ArtifactMismatch(
                f"index built with {index.meta['embedding_model']!r} "
                f"({index.meta['dimension']}-d); ranker expects {trained_with!r} "
                f"({self.ranker.model.embedding_dim}-d)"
            )
        self.index = index
        # Index rows may cover creators missing from this table; those are never proposed.
        position = pd.Series(np.arange(len(self.creators)), index=self.creators["creator_id"])
        self._row_of = position.reindex(index.creator_ids).fillna(-1).to_numpy(np.int64)
        self._eligible = self._row_of >= 0
        rows = self.creators.iloc[self._row_of[self._eligible]]
        ok = rows["accepts_campaigns"].astype(bool).to_numpy(copy=True)
        if not self.settings.allow_cashback:
            ok &= (rows["creator_type"] != CASHBACK_TYPE).to_numpy()
        if self.settings.violations == "exclude":
            ok &= (rows["disclosure_violations"] == 0).to_numpy()
        self._eligible[np.flatnonzero(self._eligible)[~ok]] = False
        self._eligible_rows = np.zeros(len(self.creators), dtype=bool)
        self._eligible_rows[self._row_of[self._eligible]] = True
        self._proven_cache: dict[str, np.ndarray] = {}
        self._topical_cache: dict[str, np.ndarray] = {}
        self._creator_vectors = self._vectors_by_row(index)
        self._tags = TagSpace(self.embedder, self.creators["interest_tags"])
        self._past = self.ranker.model.past
        # What the ranker learned is applied to records that are data: the latest performance's, else training's.
        self.records = (
            training_records(self.ranker)
            if performance is None
            else creator_records(
                performance, self._past, self.embedder.isolated(), self.creators, self._creator_vectors, self._tags
            )
        )
        history = self.records.history.set_index("creator_id")[HISTORY_COLUMNS]
        self._history = history.reindex(self.creators["creator_id"]).fillna(0.0).reset_index(drop=True)
        self._category_history = self.records.category_history.set_index(["creator_id", "category"])[HISTORY_COLUMNS]

    def _vectors_by_row(self, index: CandidateIndex) -> np.ndarray:
        """Creator vectors in table order, read back from the index (no re-embedding)."""
        stored = index.vectors()
        if len(stored) == len(self.creators) and np.array_equal(self._row_of, np.arange(len(stored))):
            return stored  # the usual case, an index built from this table: no second copy of every vector
        vectors = np.zeros((len(self.creators), index.meta["dimension"]), dtype=np.float32)
        present = np.flatnonzero(self._row_of >= 0)
        vectors[self._row_of[present]] = stored[present]
        return vectors

    def similar(
        self,
        creator_ids: Iterable[str],
        k: int = 20,
        marketplaces: Iterable[str] | None = None,
        creator_types: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The k eligible creators most like the given ones, best first, with reasons; see `matcher.similar`.

        Args:
            creator_ids: the seeds (ids of this matcher's creators); never returned themselves.
            k: how many lookalikes.
            marketplaces: only creators with at least `min_market_share` of their audience there (or none stated).
            creator_types: only creators of these types.
        """
        return self.lookalikes.similar(list(creator_ids), k, marketplaces, creator_types)

    @cached_property
    def lookalikes(self) -> LookalikeSpace:
        """What lookalike search reads of every creator, built on first use."""
        return LookalikeSpace(
            self.creators,
            self._creator_vectors,
            self.index,
            self._row_of,
            self._eligible_rows,
            self._tags,
            self._category_history,
            self.settings.min_market_share,
        )

    def warm(self, categories: Iterable[str] | None = None) -> None:
        """Computes each category's retrieval tables now rather than on its first campaign (default: every
        category the ranker's history knows), so that a service's first requests are as quick as the rest."""
        for category in self._past.priors.ctr_ if categories is None else categories:
            self._proven(category)

    def match(self, campaign: CampaignRow | Mapping[str, object]) -> MatchResult:
        """Matches one campaign (a CampaignRow or a mapping with the contract's campaign columns).

        Raises:
            ValueError: the campaign is invalid; the message is its reject line (column and reason).
        """
        table = _campaign_table([campaign])
        if table.rejects:
            raise ValueError(f"invalid campaign: {table.rejects[0].line()}")
        return self.match_many(table)

    def match_many(
        self,
        campaigns: Table | pd.DataFrame | Iterable[CampaignRow | Mapping[str, object]],
        checkpoint_dir: str | Path | None = None,
        chunk_size: int = 256,
        progress: bool | None = None,
        engine: str = "local",
        ray_actors: int = 2,
    ) -> MatchResult:
        """Matches many campaigns; invalid ones come back as `rejects`, as the command line's rejects file.

        A table from `features.read_table(path, "campaigns")` is used as validated (its rejects are passed
        on); a DataFrame or the campaigns of an iterable are validated here, numbered by position from 1.

        Campaigns are scored in chunks, each kept as Parquet: in memory, or with `checkpoint_dir` committed
        there so that a rerun after a crash reuses it. Slates are then assigned over all chunks at once from
        the few columns that assignment needs, so memory stays bounded and the result does not depend on
        where a run was interrupted nor on the engine.

        Args:
            campaigns: the campaigns to match: a read table, a DataFrame, or CampaignRows and mappings.
            checkpoint_dir: where scored chunks are committed; None keeps them in memory.
            chunk_size: campaigns scored together.
            progress: a progress bar over chunks; None shows one when there is more than one chunk.
            engine: `local` scores chunks in this process; `ray` on a pool of Ray actors (the cluster at
                $RAY_ADDRESS, else a local Ray started for the call), with the same result.
            ray_actors: size of the actor pool with `engine="ray"`.
        """
        if engine not in ENGINES:
            raise ValueError(f"Got engine={engine!r}; expected one of {', '.join(ENGINES)}")
        if chunk_size < 1:
            raise ValueError(f"Got chunk_size={chunk_size}; expected at least 1")
        table = _campaign_table(campaigns)
        # An isolated embedder: the resolved type depends on the briefs alone, not on what this process encoded before.
        campaigns = resolve_product_types(
            table.frame.reset_index(drop=True), self.embedder.isolated(), getattr(self._past, "product_types", None)
        )
        active = campaigns[campaigns["in_stock"].astype(bool)].reset_index(drop=True)
        chunks = {
            number: active.iloc[start : start + chunk_size].reset_index(drop=True)
            for number, start in enumerate(range(0, len(active), chunk_size))
        }
        show = progress if progress is not None else len(chunks) > 1
        parts = self._scored_parts(chunks, checkpoint_dir, engine, ray_actors, show)
        chosen, size_reason = self._assign(parts)
        matches = self._finish(chosen, active)
        return MatchResult(matches, self._summaries(campaigns, matches, size_reason), list(table.rejects))

    def _scored_parts(
        self,
        chunks: dict[int, pd.DataFrame],
        checkpoint_dir: str | Path | None,
        engine: str,
        ray_actors: int,
        show: bool,
    ) -> list[Path | bytes]:
        """Every chunk's scored pairs as Parquet (a committed file or bytes), in chunk order."""
        where = {n: Path(checkpoint_dir) / f"scored-{n:06d}.parquet" for n in chunks} if checkpoint_dir else {}
        parts: dict[int, Path | bytes] = {n: path for n, path in where.items() if path.exists()}
        todo = {n: chunk for n, chunk in chunks.items() if n not in parts}
        _halt_if_asked(len(parts))
        with tqdm(
            total=len(chunks), initial=len(parts), desc="scoring campaigns", unit="chunk", disable=not show
        ) as bar:
            if engine == "ray" and todo:
                from matcher.ray_engine import ray_session, score_on_ray

                with ray_session():
                    for n, payload in score_on_ray(self, todo, ray_actors):
                        parts[n] = _commit(payload, where.get(n))
                        bar.update()
                        _halt_if_asked(len(parts))
            else:
                for n, chunk in todo.items():
                    parts[n] = _commit(self._score_to_parquet(chunk), where.get(n))
                    bar.update()
                    _halt_if_asked(len(parts))
        return [parts[n] for n in sorted(parts)]

    def _score_to_parquet(self, chunk: pd.DataFrame) -> bytes:
        """One chunk's scored pairs as Parquet bytes: what either engine commits."""
        buffer = io.BytesIO()
        self._score(chunk).to_parquet(buffer, index=False)
        return buffer.getvalue()

    def _assign(self, parts: list[Path | bytes]) -> tuple[pd.DataFrame, dict[str, str]]:
        """Builds every slate from the assignment columns of all chunks, then reads back the chosen rows whole."""
        frames = []
        for number, part in enumerate(parts):
            frame = _read_part(part, SLATE_COLUMNS)
            frames.append(frame.assign(_part=number, _position=np.arange(len(frame))))
        if not frames or not sum(len(f) for f in frames):
            return pd.DataFrame(), {}
        chosen, size_reason = build_slates(
            pd.concat(frames, ignore_index=True), self.settings.slate, self._creator_vectors
        )
        whole = [
            _read_part(parts[int(number)]).iloc[rows["_position"].to_numpy()].assign(rank=rows["rank"].to_numpy())
            for number, rows in chosen.groupby("_part", sort=True)
        ]
        return (pd.concat(whole, ignore_index=True) if whole else pd.DataFrame()), size_reason

    def _proven(self, category: str) -> np.ndarray:
        """Table rows of the eligible creators with the best proven value in a category (cached per run)."""
        if category not in self._proven_cache:
            value = np.where(
                self._eligible_rows,
                proven_value(
                    self.creators, self._history, pd.DataFrame(self._topical(category), columns=AFFINITY_FEATURES)
                ),
                -np.inf,
            )
            k = min(self.settings.proven_candidates, int(self._eligible_rows.sum()))
            top = np.argpartition(-value, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
            self._proven_cache[category] = top[np.isfinite(value[top])]
        return self._proven_cache[category]

    def _topical(self, category: str) -> np.ndarray:
        """What history says of every creator's interests in a category (AFFINITY_FEATURES), once per run.

        A creator's affinity depends on its tags and the category alone, so it is computed once per category
        for the whole table and gathered for each pair: one pass per category rather than one per pair.
        """
        if category not in self._topical_cache:
            frame = self._past.affinity.transform(
                self.creators["interest_tags"], pd.Series([category] * len(self.creators), dtype=object)
            )
            self._topical_cache[category] = frame[AFFINITY_FEATURES].to_numpy(float)
        return self._topical_cache[category]

    def _affinity(self, categories: np.ndarray, creator_index: np.ndarray) -> pd.DataFrame:
        """AFFINITY_FEATURES of (category, creator row) pairs, gathered from the per-category tables."""
        values = np.empty((len(creator_index), len(AFFINITY_FEATURES)))
        for category in np.unique(categories):
            pairs = np.flatnonzero(categories == category)
            values[pairs] = self._topical(category)[creator_index[pairs]]
        return pd.DataFrame(values, columns=AFFINITY_FEATURES)

    def _candidates(self, campaigns: pd.DataFrame, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(campaign row, creator table row) pairs: the semantic top-k from FAISS united with proven creators."""
        _, positions = self.index.search(vectors, self.settings.candidates, self._eligible)
        campaign_rows, creator_rows = [], []
        for k, category in enumerate(campaigns["category"]):
            found = positions[k][positions[k] >= 0]
            rows = np.union1d(self._row_of[found], self._proven(category))
            campaign_rows.append(np.full(len(rows), k, dtype=np.int64))
            creator_rows.append(rows)
        return np.concatenate(campaign_rows), np.concatenate(creator_rows)

    def _score(self, campaigns: pd.DataFrame) -> pd.DataFrame:
        # The chunk's texts are embedded on their own, so its scores are a function of the chunk alone.
        embedder = self.embedder.isolated()
        vectors = campaign_vectors(embedder, campaigns)
        campaign_index, creator_index = self._candidates(campaigns, vectors)
        semantic = semantic_features(
            embedder, campaigns, vectors, self._creator_vectors, self._tags, campaign_index, creator_index
        )
        features = pair_features(
            campaigns,
            self.creators,
            campaign_index,
            creator_index,
            semantic,
            self._affinity(campaigns["category"].to_numpy()[campaign_index], creator_index),
            self._history.iloc[creator_index],
            self._category_history.reindex(
                pd.MultiIndex.from_arrays(
                    [
                        self.creators["creator_id"].to_numpy()[creator_index],
                        campaigns["category"].to_numpy()[campaign_index],
                    ]
                )
            ).fillna(0.0),
            self._past.priors,
        )
        predicted = self.ranker.model.ranker.predict(features)
        c = campaigns.iloc[campaign_index].reset_index(drop=True)
        r = self.creators.iloc[creator_index].reset_index(drop=True)
        expected_clicks = predicted["expected_impressions"].to_numpy() * predicted["p_click"].to_numpy()
        expected_orders = expected_clicks * predicted["p_order"].to_numpy()
        expected_sales = expected_orders * c["price"].to_numpy(float)
        score = expected_sales.copy()
        if self.settings.violations == "demote":
            score[r["disclosure_violations"].to_numpy() > 0] *= 0.5
        market = features["market_share"].to_numpy()
        keep = ~(market < self.settings.min_market_share)  # NaN (not stated) passes
        frame = pd.DataFrame(
            {
                "campaign_id": c["campaign_id"],
                "creator_id": r["creator_id"],
                "creator_row": creator_index,
                "score": score,
                "p_click": predicted["p_click"].to_numpy(),
                "p_order": predicted["p_order"].to_numpy(),
                "expected_clicks": expected_clicks,
                "expected_orders": expected_orders,
                "expected_sales": expected_sales,
                "expected_commission": expected_sales * c["commission_rate"].to_numpy(float),
                "funnel_stage": r["creator_type"].map(FUNNEL_STAGE),
                "creator_type": r["creator_type"],
                "product_type": c["product_type"],
                "product_type_probability": c["product_type_probability"].to_numpy(float),
                "budget": c["budget"].to_numpy(float),
                "marketplaces": c["marketplaces"],
                "market_share": market,
                **{name: features[name] for name in EVIDENCE_COLUMNS},
                "hist_campaigns": features["hist_campaigns"],
                "hist_ctr": features["hist_ctr_shrunk"],
                "hist_cvr": features["hist_cvr_shrunk"],
                "hist_clicks": self._history["hist_clicks"].to_numpy()[creator_index],
                "hist_impressions": self._history["hist_impressions"].to_numpy()[creator_index],
                "hist_orders": self._history["hist_orders"].to_numpy()[creator_index],
            }
        )
        return frame[keep].reset_index(drop=True)

    def _finish(self, chosen: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
        if chosen.empty:
            return empty_matches()
        raw_ctr = chosen["hist_clicks"] / chosen["hist_impressions"].where(chosen["hist_impressions"] > 0)
        raw_cvr = chosen["hist_orders"] / chosen["hist_clicks"].where(chosen["hist_clicks"] > 0)
        chosen = chosen.assign(
            reasons=[
                reason(tag, phrase, fit, m, list(mk), n, ctr, cvr, stage, kind)
                for tag, phrase, fit, m, mk, n, ctr, cvr, stage, kind in zip(
                    chosen["fit_tag"],
                    chosen["fit_phrase"],
                    chosen["fit_similarity"],
                    chosen["market_share"],
                    chosen["marketplaces"],
                    chosen["hist_campaigns"],
                    raw_ctr.fillna(0.0),
                    raw_cvr.fillna(0.0),
                    chosen["funnel_stage"],
                    chosen["creator_type"],
                    strict=True,
                )
            ],
            model_version=self.ranker.version,
        )
        order = pd.Series(np.arange(len(campaigns)), index=campaigns["campaign_id"])
        chosen = chosen.assign(_order=chosen["campaign_id"].map(order)).sort_values(["_order", "rank"])
        return chosen[MATCH_COLUMNS].astype({"rank": "int64"}).reset_index(drop=True)

    def _summaries(
        self, campaigns: pd.DataFrame, matches: pd.DataFrame, size_reason: dict[str, str]
    ) -> list[CampaignSummary]:
        totals = matches.groupby("campaign_id")[["expected_orders", "expected_commission"]].sum()
        sizes = matches.groupby("campaign_id").size()
        out = []
        for row in campaigns.itertuples(index=False):
            size = int(sizes.get(row.campaign_id, 0))
            if not row.in_stock:
                status, why = "out of stock", "0: out-of-stock campaigns get no slate"
            elif size == 0:
                status, why = "no eligible creator", "0: no eligible candidate with positive expected sales"
            else:
                status, why = "matched", size_reason.get(row.campaign_id, "")
            total = totals.loc[row.campaign_id] if row.campaign_id in totals.index else None
            out.append(
                CampaignSummary(
                    row.campaign_id,
                    status,
                    row.product_type,
                    row.product_type_reason,
                    size,
                    why,
                    float(total["expected_orders"]) if total is not None else 0.0,
                    float(total["expected_commission"]) if total is not None else 0.0,
                    float(row.budget),
                    float(row.product_type_probability),
                )
            )
        return out


def _campaign_table(campaigns: Table | pd.DataFrame | Iterable[CampaignRow | Mapping[str, object]]) -> Table:
    """The campaigns' valid rows and rejects, validated once whatever form they came in."""
    if not isinstance(campaigns, Table | pd.DataFrame):
        records = [c.model_dump() if isinstance(c, CampaignRow) else dict(c) for c in campaigns]
        campaigns = pd.DataFrame.from_records(records)
    return valid_rows(campaigns, "campaigns")


def _commit(payload: bytes, path: Path | None) -> Path | bytes:
    """Keeps a scored chunk in memory, or commits it atomically to `path` (a crash leaves it whole or absent)."""
    if path is None:
        return payload
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def _halt_if_asked(committed: int) -> None:
    """Stops here for good, after writing $CREATOR_MATCHER_HALT_MARKER, when $CREATOR_MATCHER_HALT_AFTER_CHUNKS
    equals the chunks committed so far."""
    wanted, marker = os.environ.get(HALT_AFTER_CHUNKS_ENV), os.environ.get(HALT_MARKER_ENV)
    if wanted is None or marker is None or int(wanted) != committed:
        return
    with atomic_path(marker) as tmp:
        tmp.write_text(f"{committed}\n")
    while True:  # until the test kills the process
        time.sleep(60)


def _read_part(part: Path | bytes, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(part) if isinstance(part, bytes) else part, columns=columns)
