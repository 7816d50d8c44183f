"""A sentence-transformers model run by ONNX Runtime: exported once from the installed model, then reused.

The export traces the whole SentenceTransformer (transformer, pooling, any dense or normalize module) with
torch.onnx, so any model the torch backend loads exports the same way; it is checked against the torch model
on probe texts before it is kept. Exports live in a directory named after the model and the exporter's
versions, so a new model file or a new exporter makes a new export and never reuses a stale one. Loading an
export imports neither torch nor sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from features.embeddings import DEFAULT_BATCH_SIZE, padded_batches

__all__ = ["EXPORT_LOCK_WAIT", "EXPORT_VERSION", "OnnxEncoder", "export_directory"]

# Bump when the export recipe below changes: old exports are then left alone and a new one is made.
EXPORT_VERSION = 1
OPSET = 17
MODEL_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "tokenizer.json", "meta.json"
# Seconds an export waits for another process exporting the same model (an export takes seconds to a minute).
EXPORT_LOCK_WAIT = 600.0
# An export must reproduce the torch model's vectors this closely on the probe texts, else it is refused.
MIN_PROBE_COSINE = 0.9999
# Token counts of short texts (up to SHORT_TEXT tokens) are padded up to a multiple of PAD_MULTIPLE (see
# OnnxEncoder).
PAD_MULTIPLE, SHORT_TEXT = 8, 16
_PROBES = [
    "Daily skincare routines and k-beauty hauls.",
    "We test USB-C chargers, cables and power banks so you do not have to; honest reviews every week.",
    "hiking",
    "  Ünïcödé, emoji 🎉 and 日本語 text  ",
    " ".join(["Long profile text that runs past the model's maximum sequence length."] * 60),
]
_FEEDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def export_directory(model_path: Path, root: Path) -> Path:
    """Where the export of the model at `model_path` lives under `root`: keyed by model and exporter versions."""
    model_path = Path(model_path)
    files = sorted(p for p in model_path.rglob("*") if p.is_file())
    stats = [(str(p.relative_to(model_path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    versions = {name: metadata.version(name) for name in ("torch", "transformers", "sentence-transformers")}
    key = json.dumps([str(model_path.resolve()), stats, versions, EXPORT_VERSION, OPSET], sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(model_path.parts[-2:])).strip("_")
    return Path(root) / f"{slug}-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"


def _export(model_path: Path, target: Path) -> None:
    """Exports the model at `model_path` into the new directory `target`, checked against the torch model."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu").eval()
    sample = model.preprocess(_PROBES[:2])
    names = [name for name in _FEEDS if name in sample]

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(dict(zip(names, inputs, strict=True)))["sentence_embedding"]

    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"sentence_embedding": {0: "batch"}}
    # The tracer warns about shape checks it freezes; the probe comparison below is what proves the graph.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter needs nothing beyond torch and onnx; the dynamo one would add onnxscript.
        torch.onnx.export(
            Wrapped(),
            tuple(sample[name] for name in names),
            str(target / MODEL_FILE),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    tokenizer = getattr(model.tokenizer, "backend_tokenizer", None)
    if tokenizer is None:
        raise ValueError(f"embedding model {model_path} has no fast tokenizer; use the torch backend")
    tokenizer.enable_truncation(max_length=model.max_seq_length)
    tokenizer.no_padding()
    tokenizer.save(str(target / TOKENIZER_FILE))
    (target / META_FILE).write_text(
        json.dumps({"inputs": names, "dimension": int(model.get_embedding_dimension()), "model": str(model_path)})
    )

    exported = OnnxEncoder(target)
    for name in names:  # the saved tokenizer must feed the graph exactly what sentence-transformers would
        expected = model.preprocess(_PROBES)[name].numpy()
        got = exported._batch(exported.tokenizer.encode_batch(_PROBES), name)
        if not np.array_equal(got, expected):
            raise RuntimeError(f"exported tokenizer of {model_path} disagrees with sentence-transformers on {name}")
    cosine = np.sum(exported.encode(_PROBES) * model.encode(_PROBES, normalize_embeddings=True), axis=1).min()
    if cosine < MIN_PROBE_COSINE:
        raise RuntimeError(f"ONNX export of {model_path} gives cosine {cosine:.6f} to the torch vectors; refused")


def _why_not_an_export(directory: Path) -> str | None:
    return None if (directory / META_FILE).is_file() else "it is not an ONNX export"


class OnnxEncoder:
    """Encodes texts with an exported model: tokenized in Rust, batched by token length, run by ONNX Runtime.

    A text is padded to its token count, a short one's rounded up to a multiple of PAD_MULTIPLE, with texts
    padded alike (`features.embeddings.padded_batches`), so its vector depends on the text alone; ONNX Runtime's
    kernels give the same bits on any number of threads. Rounding short ones up lets a request's phrases share one
    or two runs of the model instead of one per token count; longer texts (profiles, briefs) pad to their own
    count, as rounding them up too made bulk encoding about 10% slower (docs/measurements.md).

    Args:
        directory: an export, as written by `OnnxEncoder.for_model`.
    """

    def __init__(self, directory: str | Path) -> None:
        from tokenizers import Tokenizer

        self.directory = Path(directory)
        self.meta = json.loads((self.directory / META_FILE).read_text())
        self.tokenizer = Tokenizer.from_file(str(self.directory / TOKENIZER_FILE))
        self._sessions: dict[int, object] = {}

    @classmethod
    def for_model(cls, model_path: Path, root: Path) -> OnnxEncoder:
        """The export of `model_path` under `root`, made (and checked) first if there is none yet.

        An export is made holding its lock (another process exporting the same model is waited for, up to
        EXPORT_LOCK_WAIT, and its export used), and first clears the staging folder an export killed midway left
        beside it, a model half written, which would otherwise stay in the cache for good.

        Raises:
            OutputLocked: another process held the export's lock for all of EXPORT_LOCK_WAIT.
        """
        from features.safe_write import output_lock, remove_stale_temporaries, staged_directory

        directory = export_directory(model_path, root)
        if not (directory / META_FILE).is_file():
            with output_lock(directory, wait=EXPORT_LOCK_WAIT):
                remove_stale_temporaries(directory)  # held: no live export's folder is among them
                if not (directory / META_FILE).is_file():  # not made by the process this one waited for
                    with staged_directory(directory, _why_not_an_export) as staging:
                        _export(Path(model_path), staging)
        return cls(directory)

    def get_embedding_dimension(self) -> int:
        """Length of one vector (named as sentence-transformers names it)."""
        return int(self.meta["dimension"])

    def session(self, threads: int | None):
        """An inference session on `threads` intra-op threads (None: ONNX Runtime's default), made once."""
        key = threads or 0
        if key not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = key
            options.inter_op_num_threads = 1
            # Idle pool threads sleep instead of spinning: between a batch job's model runs they took a core from
            # the trees' OpenMP threads (1,000 campaigns x 100k creators: 58.6 s spinning, 39.7 s not).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[key] = ort.InferenceSession(
                str(self.directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[key]

    def _batch(self, encodings: list, name: str, length: int | None = None) -> np.ndarray:
        """One model input for a batch, padded with zeros to `length` (default: its longest text)."""
        rows = [getattr(encoding, _FEEDS[name]) for encoding in encodings]
        out = np.zeros((len(rows), length or max(map(len, rows))), dtype=np.int64)
        for number, row in enumerate(rows):
            out[number, : len(row)] = row
        return out

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """One L2-normalised float32 row per text, in order."""
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        if not len(texts):
            return out
        session = self.session(threads)
        encodings = self.tokenizer.encode_batch(list(texts))
        counts = [len(encoding.ids) for encoding in encodings]
        batches = list(padded_batches(counts, batch_size, PAD_MULTIPLE, SHORT_TEXT))
        for at, length in tqdm(batches, desc="Batches", disable=not show_progress_bar):
            batch = [encodings[i] for i in at]
            out[at] = session.run(None, {name: self._batch(batch, name, length) for name in self.meta["inputs"]})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True)
