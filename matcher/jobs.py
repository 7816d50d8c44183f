"""A match job's chunks: cut, scored on an engine, committed as checkpoints, and read back for assignment.

Each chunk's scored pairs are kept as Parquet, in memory or committed to a checkpoint folder so that a rerun
after a crash reuses them; slates are then assigned over all chunks at once from the few columns that
assignment needs, so the result depends neither on where a run was interrupted nor on the engine. A job of one
chunk scored here without checkpoints (a service's request) keeps its frame as it is: there is nothing to bound
and the Parquet round trip would be most of the job's overhead. Parquet gives back the same values.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from features.duplicate_evidence import DuplicateEvidence
from features.environment import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV
from features.memory import release_free_memory
from features.tables import atomic_path
from matcher.schema import CANDIDATE_COLUMNS, CANDIDATE_SCHEMA
from matcher.scoring import Scorer
from matcher.slate import SlatePolicy, build_slates
from matcher.slate_book import campaign_order

__all__ = [
    "ENGINES",
    "SLATE_COLUMNS",
    "assign",
    "candidates_table",
    "checkpoint_file",
    "chunked",
    "halt_at_marker",
    "scored_parts",
]

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
    "currency_log_scale",
    "funnel_stage",
    "hist_campaigns",
]


def chunked(campaigns: pd.DataFrame, chunk_size: int) -> dict[int, pd.DataFrame]:
    """The campaigns cut into chunks of `chunk_size`, numbered from 0 in order."""
    return {
        number: campaigns.iloc[start : start + chunk_size].reset_index(drop=True)
        for number, start in enumerate(range(0, len(campaigns), chunk_size))
    }


def checkpoint_file(checkpoint_dir: str | Path, chunk: int) -> Path:
    """Where chunk number `chunk`'s scored pairs are committed in `checkpoint_dir`."""
    return Path(checkpoint_dir) / f"scored-{chunk:06d}.parquet"


def scored_parts(
    scorer: Scorer,
    chunks: dict[int, pd.DataFrame],
    checkpoint_dir: str | Path | None,
    engine: str,
    ray_actors: int,
    show: bool,
    vectors: dict[int, np.ndarray],
) -> list[Path | bytes | pd.DataFrame]:
    """Every chunk's scored pairs as Parquet (a committed file or bytes), in chunk order; the frame itself for
    a single chunk scored locally without a checkpoint folder. `vectors` are each chunk's brief vectors.

    Chunks already committed in `checkpoint_dir` are reused; the others are scored on `engine` (`local`, or
    `ray` with `ray_actors` actors) and committed as they finish.
    """
    if engine == "local" and not checkpoint_dir and len(chunks) == 1:
        return [scorer.score(chunk, vectors[n]) for n, chunk in chunks.items()]
    where = {n: checkpoint_file(checkpoint_dir, n) for n in chunks} if checkpoint_dir else {}
    parts: dict[int, Path | bytes] = {n: path for n, path in where.items() if _readable_checkpoint(path)}
    todo = {n: chunk for n, chunk in chunks.items() if n not in parts}
    _halt_if_asked(len(parts))
    with tqdm(total=len(chunks), initial=len(parts), desc="scoring campaigns", unit="chunk", disable=not show) as bar:
        if engine == "ray" and todo:
            from matcher.ray_engine import ray_session, score_on_ray

            with ray_session():
                for n, payload in score_on_ray(scorer, todo, ray_actors, {n: vectors[n] for n in todo}):
                    parts[n] = _commit(payload, where.get(n))
                    bar.update()
                    _halt_if_asked(len(parts))
        else:
            for n, chunk in todo.items():
                parts[n] = _commit(scorer.score_parquet(chunk, vectors[n]), where.get(n))
                bar.update()
                _halt_if_asked(len(parts))
    return [parts[n] for n in sorted(parts)]


def assign(
    parts: list[Path | bytes | pd.DataFrame], policy: SlatePolicy, duplicate_evidence: DuplicateEvidence
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Builds every slate from the assignment columns of all chunks, then reads back the chosen rows whole.

    `duplicate_evidence` is what the near-duplicate rule compares (`Matcher.duplicate_evidence`).

    Returns:
        The chosen scored pairs with their `rank`, and why each campaign's slate has its size.
    """
    batch = _slate_columns(parts)
    if batch.empty:
        return pd.DataFrame(), {}
    chosen, size_reason = build_slates(batch, policy, duplicate_evidence)
    del batch  # the chosen rows carry their part and position: the rest is not read again
    groups = [(0, chosen)] if len(parts) == 1 else chosen.groupby("_part", sort=True)
    whole = [
        _read_part(parts[int(number)]).iloc[rows["_position"].to_numpy()].assign(rank=rows["rank"].to_numpy())
        for number, rows in groups
        if len(rows)
    ]
    return (pd.concat(whole, ignore_index=True) if whole else pd.DataFrame()), size_reason


def candidates_table(
    parts: list[Path | bytes | pd.DataFrame], matches: pd.DataFrame, model_version: str
) -> pd.DataFrame:
    """Every scored pair of the parts (CANDIDATE_COLUMNS), each campaign's best first, with its rank on the
    slates in `matches` (null for a pair left off them)."""
    read = [name for name in CANDIDATE_COLUMNS if name not in ("rank", "model_version")]
    frames = [_read_part(part, read) for part in parts]
    # No part (nothing in stock): the columns as a part read from Parquet would type them.
    frame = pd.concat(frames, ignore_index=True) if frames else CANDIDATE_SCHEMA.empty_table().select(read).to_pandas()
    on_slate = matches.set_index(["campaign_id", "creator_id"])["rank"]
    rank = on_slate.reindex(pd.MultiIndex.from_frame(frame[["campaign_id", "creator_id"]])).to_numpy()
    frame = frame.assign(rank=pd.array(rank, dtype="Int64"), model_version=model_version)
    # Floats as the schema types them (the similarity is scored in float32), so a run's table reads as its file.
    frame = frame.astype({f.name: f.type.to_pandas_dtype() for f in CANDIDATE_SCHEMA if pa.types.is_floating(f.type)})
    return frame.iloc[campaign_order(frame)][CANDIDATE_COLUMNS].reset_index(drop=True)


def _slate_columns(parts: list[Path | bytes | pd.DataFrame]) -> pd.DataFrame:
    """The columns assignment needs of every part, with `_part` and `_position` to find each row again; parts
    concatenated in the canonical order `build_slates` works in, so that it keeps this frame and no copy of it."""
    frames = []
    for number, part in enumerate(parts):
        frame = _read_part(part, SLATE_COLUMNS)
        frames.append(frame.assign(_part=number, _position=np.arange(len(frame))))
    if len(frames) <= 1:  # a service request's one chunk: build_slates orders its few hundred rows itself
        return frames[0] if frames else pd.DataFrame()
    release_free_memory()  # a batch run's scoring is over: what its chunks left behind is not needed again
    batch = pd.concat(frames, ignore_index=True)
    del frames  # the parts' own copies, before the batch is ordered
    return batch.iloc[campaign_order(batch)].reset_index(drop=True)


def _readable_checkpoint(path: Path) -> bool:
    """Whether a committed chunk is there and reads as one: its Parquet footer, with the columns assignment reads.

    Checkpoints are the job's own cache: one that cannot be read (truncated, or written over by hand) is scored
    again, with a warning naming it, rather than failing every rerun. The footer is what a truncated or foreign
    file lacks; the pages are not read here, which at a million creators would be a second read of every chunk.
    """
    if not path.exists():
        return False
    try:
        names = pq.read_schema(path).names
        if missing := [name for name in SLATE_COLUMNS if name not in names]:
            raise ValueError(f"no column {missing[0]}")
    except (OSError, ValueError, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.warn(f"{path}: a checkpoint that cannot be read ({reason}); its chunk is scored again", stacklevel=3)
        return False
    return True


def _commit(payload: bytes, path: Path | None) -> Path | bytes:
    """Keeps a scored chunk in memory, or commits it atomically to `path` (a crash leaves it whole or absent)."""
    if path is None:
        return payload
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def _halt_if_asked(committed: int) -> None:
    """Halts here (`halt_at_marker`) when $CREATOR_MATCHER_HALT_AFTER_CHUNKS equals the chunks committed so far."""
    wanted = os.environ.get(HALT_AFTER_CHUNKS_ENV)
    if wanted is not None and int(wanted) == committed:
        halt_at_marker(f"{committed}\n")


def halt_at_marker(note: str) -> None:
    """Stops here for good, after writing `note` to $CREATOR_MATCHER_HALT_MARKER, when that is set: a test kills
    the process at a point it signalled, not after a guessed delay."""
    marker = os.environ.get(HALT_MARKER_ENV)
    if marker is None:
        return
    with atomic_path(marker) as tmp:
        tmp.write_text(note)
    while True:  # until the test kills the process
        time.sleep(60)


def _read_part(part: Path | bytes | pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    if isinstance(part, pd.DataFrame):
        return part if columns is None else part[columns]
    return pd.read_parquet(io.BytesIO(part) if isinstance(part, bytes) else part, columns=columns)
