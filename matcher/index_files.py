"""The candidate index on disk: its files, the mark that a directory is one, and saving and loading it.

A saved index appears whole or not at all, and only a directory that is empty or already a candidate index is
ever replaced (`features.safe_write`). Loading refuses an index made with another embedding model, dimension or
backend than the one in use, and one whose files cannot be read or disagree with each other (`DamagedIndex`).

`creator-match index` may replace the directory while `match`, `similar` or `serve` loads it. A load opens the
directory once and every file through that descriptor (`_OneBuild`), so its files are all of one build: the one
the descriptor holds, even if it is replaced and deleted meanwhile, or, when a file of it is already gone, the
build read afresh. Each save also records a build id in meta.json and in creator_ids.parquet, which a load
requires to agree. Where the system opens no file relative to a directory (Windows), files are opened by path, as
before, and a load during a replace can still mix two builds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.embeddings import KEY_DTYPE
from features.errors import MatcherError
from features.safe_write import foreign_entries, staged_directory

if TYPE_CHECKING:
    from matcher.candidate_index import CandidateIndex

__all__ = [
    "IDS_FILE",
    "INDEX_FILE",
    "LOAD_ATTEMPTS",
    "META_FILE",
    "PROFILE_KEY_COLUMN",
    "ArtifactMismatch",
    "DamagedIndex",
    "IndexFiles",
    "IndexNotFound",
    "require_index",
    "why_not_an_index",
]

INDEX_FILE, IDS_FILE, META_FILE = "index.faiss", "creator_ids.parquet", "meta.json"
# The column of IDS_FILE beside `creator_id` that holds the content key of the profile text each row embedded
# (16 bytes); indexes written before it have `creator_id` alone.
PROFILE_KEY_COLUMN = "profile_key"
# meta.json's mark that the directory is a candidate index, which `save` may replace.
INDEX_ARTIFACT = "creator-matcher candidate index"
LEGACY_KEYS = {"embedding_model", "dimension", "creators"}
# The id of one save's files: in meta.json, and in creator_ids.parquet's schema metadata under BUILD_ID_METADATA.
# Indexes written before it have neither.
BUILD_ID_KEY = "build_id"
BUILD_ID_METADATA = b"creator_matcher_build_id"
# Loads of an index directory that was replaced under each of them before `load` gives up: each replace is a whole
# `creator-match index` run, so a second within one load is rare, a fifth means another process writes it nonstop.
LOAD_ATTEMPTS = 5


def why_not_an_index(directory: Path) -> str | None:
    """Why `directory` is not a candidate index this project wrote, or None if it is (so it may be replaced)."""
    foreign = foreign_entries(directory, (INDEX_FILE, IDS_FILE, META_FILE))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        return f"it is not a candidate index (it holds {shown})"
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        meta = None
    # Indexes written before the marker existed are known by the fields every index has recorded.
    if not isinstance(meta, dict) or meta.get("artifact", INDEX_ARTIFACT) != INDEX_ARTIFACT or LEGACY_KEYS - set(meta):
        return f"it is not a candidate index (no {META_FILE} describing one)"
    return None


class ArtifactMismatch(MatcherError):
    """An artifact that does not fit: made with another embedding model, dimension or feature set than the one in
    use, or damaged."""


class DamagedIndex(ArtifactMismatch):
    """An index directory whose files cannot be read, or whose parts disagree (a truncated `index.faiss`, a
    `creator_ids.parquet` of another length than the index): refused like a mismatch, in one line naming the
    directory and what is wrong."""


class IndexNotFound(FileNotFoundError, MatcherError):
    """A directory that holds no candidate index (missing, or without its meta.json): a FileNotFoundError as ever,
    and a MatcherError, so that an app's one `except` for refusals catches a wrong index path as it catches a wrong
    model directory (`ModelNotFound`)."""


def require_index(directory: str | Path) -> Path:
    """`directory` if it holds a candidate index (its meta.json), checked without reading it: a match checks this
    before its model loads, which a mistyped path would waste (seconds; with MLflow, a server's round trip).

    Raises:
        IndexNotFound: naming the directory.
    """
    directory = Path(directory)
    if not (directory / META_FILE).is_file():
        raise _no_index(directory)
    return directory


def _no_index(directory: Path) -> IndexNotFound:
    """The refusal of a directory that holds no candidate index."""
    return IndexNotFound(f"{directory}: no candidate index here (missing {META_FILE})")


def _damaged(directory: Path, what: str) -> DamagedIndex:
    """The refusal, with the fix that works: `creator-match index --out` replaces only what it recognises as an
    index (`why_not_an_index`), so one whose meta.json is what is damaged must be moved away before rebuilding."""
    try:
        refused = why_not_an_index(directory)
    except OSError as exc:
        refused = f"it cannot be read ({_first_line(exc)})"
    if refused is None:
        return DamagedIndex(f"index {directory} is damaged: {what}; rebuild it with `creator-match index`")
    return DamagedIndex(
        f"index {directory} is damaged: {what}; `creator-match index` will not replace it, as {refused}: "
        "move it away (or give another --out) and rebuild it with `creator-match index`"
    )


def _first_line(exc: BaseException) -> str:
    """An exception's message as one line: its last non-blank line (pyarrow's and json's are one already)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class IndexFiles:
    """Saving and loading, for CandidateIndex (which holds `index`, `creator_ids` and `meta`)."""

    def save(self, directory: str | Path) -> Path:
        """Writes the index, ids and metadata; the directory appears whole or not at all, durably.

        An existing candidate index there is replaced in one step; an empty directory is used. Anything else
        is refused, so nothing the index did not write is ever deleted.

        Raises:
            OutputRefused: `directory` exists and is neither empty nor a candidate index.
        """
        build_id = secrets.token_hex(8)
        with staged_directory(directory, why_not_an_index) as staging:
            faiss.write_index(self.index, str(staging / INDEX_FILE))
            columns = {"creator_id": pa.array(self.creator_ids.tolist(), pa.string())}
            if self.profile_keys is not None:
                columns[PROFILE_KEY_COLUMN] = _key_array(self.profile_keys)
            table = pa.table(columns).replace_schema_metadata({BUILD_ID_METADATA: build_id})
            pq.write_table(table, staging / IDS_FILE)
            meta = {**self.meta, "artifact": INDEX_ARTIFACT, BUILD_ID_KEY: build_id}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2))
        return Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        embedding_model: str | None = None,
        dimension: int | None = None,
        embedding_backend: str | None = None,
    ) -> CandidateIndex:
        """Reads an index; with `embedding_model`, `dimension` or `embedding_backend`, refuses a mismatch.

        Raises:
            IndexNotFound: the directory holds no index (a FileNotFoundError).
            ArtifactMismatch: the index was built with another embedding model, dimension or backend.
            DamagedIndex: a file of the index cannot be read, or its parts disagree (the ids' count, the vectors'
                dimension or the kind against meta.json, the build id of meta.json and the ids); or the directory
                was replaced under each of LOAD_ATTEMPTS loads.
        """
        directory = Path(directory)
        with _one_build(directory) as files:
            return cls._read(directory, files, embedding_model, dimension, embedding_backend)

    @staticmethod
    def copy(source: str | Path, destination: str | Path) -> Path:
        """Copies the index files at `source`, all of one build (as `load` reads them), into the new directory
        `destination`, byte for byte, without reading the index into memory.

        Raises:
            IndexNotFound: `source` holds no index.
            DamagedIndex: `source` was replaced under each of LOAD_ATTEMPTS tries.
            FileExistsError: `destination` exists.
        """
        source, destination = Path(source), Path(destination)
        with _one_build(source) as files:
            destination.mkdir()
            for name, file in files.items():
                if file is not None:
                    with (destination / name).open("wb") as copy:
                        shutil.copyfileobj(file, copy)
        return destination

    @classmethod
    def _read(
        cls,
        directory: Path,
        files: dict[str, IO[bytes] | None],
        embedding_model: str | None,
        dimension: int | None,
        embedding_backend: str | None,
    ) -> CandidateIndex:
        """`load`'s reading and checking of one build's files, opened (None: missing) by `_one_build`."""
        meta = _read_meta(directory, files[META_FILE])
        if embedding_model is not None and meta["embedding_model"] != embedding_model:
            raise ArtifactMismatch(
                f"index {directory} was built with embedding model {meta['embedding_model']!r}; "
                f"expected {embedding_model!r}: rebuild it with `creator-match index`"
            )
        if dimension is not None and meta["dimension"] != dimension:
            raise ArtifactMismatch(f"index {directory} has dimension {meta['dimension']}; expected {dimension}")
        meta.setdefault("embedding_backend", "torch")  # indexes written before there was a choice used torch
        if embedding_backend is not None and meta["embedding_backend"] != embedding_backend:
            raise ArtifactMismatch(
                f"index {directory} was built with embedding backend {meta['embedding_backend']!r}; expected "
                f"{embedding_backend!r}: rebuild it with `creator-match index --embedding-backend {embedding_backend}`"
            )
        meta.setdefault("kind", "flat")  # indexes written before there was a choice were all Flat
        index = _read_vectors(directory, files[INDEX_FILE], meta)
        ids, keys, build_id = _read_ids(directory, files[IDS_FILE])
        # Only `save` writes these files, all at once; one of them copied in from another build is damage.
        if build_id != meta.get(BUILD_ID_KEY):
            raise _damaged(
                directory,
                f"{IDS_FILE} is of build {build_id or 'none'}, {META_FILE} of build {meta.get(BUILD_ID_KEY) or 'none'}",
            )
        meta.pop(BUILD_ID_KEY, None)  # the files', not the index's: a loaded index saved again gets a new one
        # Each part read whole is not enough: a copy interrupted, or files of two builds mixed, give an index whose
        # rows no longer belong to the ids beside them (a search then failed deep inside, or named the wrong ones).
        if len(ids) != index.ntotal:
            raise _damaged(
                directory, f"{IDS_FILE} holds {len(ids)} creator ids for the {index.ntotal} vectors of {INDEX_FILE}"
            )
        if meta.get("creators", index.ntotal) != index.ntotal:
            raise _damaged(
                directory, f"{META_FILE} records {meta['creators']} creators; {INDEX_FILE} holds {index.ntotal}"
            )
        return cls(index, ids.astype(object), meta, keys)


# The faiss class each kind of saved index is (or derives from): `build` makes IndexFlatIP, IndexIVFScalarQuantizer
# and IndexHNSWFlat.
_KIND_CLASSES = {"flat": faiss.IndexFlat, "ivf": faiss.IndexIVF, "hnsw": faiss.IndexHNSW}


@contextlib.contextmanager
def _one_build(directory: Path) -> Iterator[dict[str, IO[bytes] | None]]:
    """The index files at `directory`, open for reading (None: missing; meta.json never), all of one build
    (`_OneBuild`).

    A replace swaps the new build in and then deletes the old one, which this may hold half-opened: its next file is
    gone, and the build now there is opened whole from the start.

    Raises:
        IndexNotFound: `directory` is not a directory, or holds no meta.json.
        DamagedIndex: the directory was replaced under each of LOAD_ATTEMPTS tries.
    """
    for _ in range(LOAD_ATTEMPTS):
        with _OneBuild(directory) as build:
            try:
                files = build.open_files()
            except _Replaced:
                continue
        try:
            if files[META_FILE] is None:
                raise _no_index(directory)
            yield files
        finally:
            _close(files)
        return
    raise DamagedIndex(
        f"index {directory} was replaced while it was loaded, {LOAD_ATTEMPTS} times over: another process "
        "keeps writing it; load it once that has finished"
    )


def _close(files: dict[str, IO[bytes] | None]) -> None:
    for file in files.values():
        if file is not None:
            file.close()


class _Replaced(Exception):
    """A file of the build being loaded was deleted: `creator-match index` replaced the directory meanwhile."""


class _OneBuild:
    """An index directory opened once, so that every file opened through it is of the build it held then.

    The open descriptor keeps that directory, even once replaced and deleted, from being another's (its inode cannot
    be reused while held, as a path's identity can); a file of it deleted meanwhile fails to open, and that is told
    from a file that was never there by the path now naming another directory. Without directory descriptors
    (Windows) files are opened by path and a replace goes unseen.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.descriptor: int | None = None

    def __enter__(self) -> _OneBuild:
        if os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY"):
            try:
                self.descriptor = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                raise _no_index(self.directory) from None
        return self

    def __exit__(self, *exc_info) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)

    def open_files(self) -> dict[str, IO[bytes] | None]:
        """Each file of an index, open for reading, or None where there is none (or it is not a file).

        Raises:
            _Replaced: a file is gone because the directory was replaced since it was opened; none is left open.
        """
        files: dict[str, IO[bytes] | None] = {}
        try:
            for name in (META_FILE, INDEX_FILE, IDS_FILE):
                files[name] = self._open(name)
        except BaseException:
            _close(files)
            raise
        return files

    def _open(self, name: str) -> IO[bytes] | None:
        try:
            if self.descriptor is None:  # Windows, where a descriptor opened without O_BINARY translates line ends
                descriptor = os.open(self.directory / name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            else:
                descriptor = os.open(name, os.O_RDONLY, dir_fd=self.descriptor)
        except (FileNotFoundError, NotADirectoryError):
            if self._replaced():
                raise _Replaced(name) from None
            return None
        file = os.fdopen(descriptor, "rb")
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            file.close()
            return None
        return file

    def _replaced(self) -> bool:
        if self.descriptor is None:
            return False
        try:
            now = os.stat(self.directory)
        except OSError:  # gone: mid-replace where the system cannot swap two directories in one step
            return True
        held = os.fstat(self.descriptor)
        return (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)


def _read_meta(directory: Path, file: IO[bytes]) -> dict:
    """meta.json, refused as damaged when it is not a JSON object naming the embedding model and dimension."""
    try:
        meta = json.loads(file.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise _damaged(directory, f"{META_FILE} cannot be read ({_first_line(exc)})") from exc
    if not isinstance(meta, dict) or not {"embedding_model", "dimension"} <= set(meta):
        raise _damaged(directory, f"{META_FILE} does not name the embedding model and dimension")
    return meta


def _read_vectors(directory: Path, file: IO[bytes] | None, meta: dict) -> faiss.Index:
    """index.faiss, refused as damaged when faiss cannot read it or it is not the kind and dimension meta.json says."""
    if file is None:
        raise _damaged(directory, f"{INDEX_FILE} is missing")
    try:
        # From the open file, not its path, which may name another build by now; read in faiss's 1 MiB chunks, so
        # the index is in memory once (as from a path, at the same speed), never also as one bytes object.
        index = faiss.read_index(faiss.PyCallbackIOReader(file.read))
    except RuntimeError as exc:  # faiss's reason names its C++ source line and sizes, not the user's problem
        size = os.fstat(file.fileno()).st_size
        raise _damaged(
            directory, f"{INDEX_FILE} ({size} bytes) cannot be read by faiss: cut short, or not an index"
        ) from exc
    if index.d != meta["dimension"]:
        raise _damaged(directory, f"{INDEX_FILE} holds {index.d}-d vectors; {META_FILE} says {meta['dimension']}")
    kind = meta["kind"]
    if kind not in _KIND_CLASSES:
        raise _damaged(directory, f"{META_FILE} names kind {kind!r}; expected one of {', '.join(_KIND_CLASSES)}")
    # Search, and the edited-profile refresh, take each kind's own path: a file of another kind fails deep inside.
    if not isinstance(faiss.downcast_index(index), _KIND_CLASSES[kind]):
        found = type(index).__name__
        raise _damaged(directory, f"{INDEX_FILE} is faiss's {found}, not the {kind} index {META_FILE} says")
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:
            ivf.make_direct_map()
    return index


def _read_ids(directory: Path, file: IO[bytes] | None) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """creator_ids.parquet's ids, profile keys (None without the column) and build id (None for a file written
    before there was one), refused as damaged when unreadable."""
    if file is None:
        raise _damaged(directory, f"{IDS_FILE} is missing")
    try:
        # Its bytes (21 MB at a million creators) read on this thread: Arrow's pool, used on a file that is not a
        # path, sometimes aborted the process as it exited (`terminate called without an active exception`, 4 of
        # 20 runs of 3,000 reads; apache/arrow#50482), and one thread reads the file as fast (0.06 s at 1M).
        table = pq.read_table(pa.BufferReader(file.read()), use_threads=False)
        ids = table.column("creator_id").to_numpy(zero_copy_only=False)
        keys = _keys_of(table.column(PROFILE_KEY_COLUMN)) if PROFILE_KEY_COLUMN in table.column_names else None
    except Exception as exc:  # pyarrow's errors are many types: a truncated file, no such column, another type
        raise _damaged(directory, f"{IDS_FILE} cannot be read ({_first_line(exc)})") from exc
    if keys is not None and len(keys) != len(ids):
        raise _damaged(directory, f"{IDS_FILE} holds {len(keys)} profile keys for {len(ids)} creator ids")
    build_id = (table.schema.metadata or {}).get(BUILD_ID_METADATA)
    return ids, keys, None if build_id is None else build_id.decode("ascii", "replace")


def _key_array(keys: np.ndarray) -> pa.FixedSizeBinaryArray:
    """Keys as 16-byte Arrow values, from their bytes: `tolist()` would drop a key's trailing zero bytes."""
    keys = np.ascontiguousarray(keys, dtype=KEY_DTYPE)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(KEY_DTYPE.itemsize), len(keys), [None, pa.py_buffer(keys.tobytes())]
    )


def _keys_of(column: pa.ChunkedArray) -> np.ndarray:
    """A 16-byte key column as a numpy `S16` array, read from its buffer rather than as a million Python bytes."""
    array = column.combine_chunks()
    width = KEY_DTYPE.itemsize
    return np.frombuffer(array.buffers()[1], dtype=KEY_DTYPE, count=len(array), offset=array.offset * width).copy()
