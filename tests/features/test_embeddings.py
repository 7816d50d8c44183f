"""The real embedding model: offline resolution, normalised vectors, meaning, and the content-hash cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.embeddings import (
    Embedder,
    VectorCache,
    campaign_vectors,
    content_keys,
    creator_vectors,
    fixed_vectors,
    padded_batches,
    resolve_model_path,
)
from features.environment import EMBEDDING_BACKEND_ENV, EMBEDDING_MODEL_ENV
from features.tables import read_table
from features.text import campaign_text, creator_text


def test_vectors_are_unit_length_384_dimensional_and_repeatable(embedder):
    """Same text, same vector; every vector has unit norm."""
    texts = ["skincare and k-beauty routines", "usb-c cables in bulk", "skincare and k-beauty routines"]
    vectors = embedder.encode(texts)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_profiles_are_closest_to_briefs_of_their_topic(embedder):
    """A skincare creator is nearer a serum brief than a cable brief, and a tech reviewer the reverse."""
    beauty = creator_text("social_creator", ["skincare", "k-beauty", "makeup"], "Daily skincare routines.")
    tech = creator_text("review_site", ["tech reviews", "gadgets"], "We test chargers and cables.")
    serum = campaign_text("Launch of our vitamin C serum for glowing skin.", "beauty")
    cable = campaign_text("Durable braided USB-C charging cables, 3-pack.", "electronics")
    c_beauty, c_tech, b_serum, b_cable = embedder.encode([beauty, tech, serum, cable])
    assert c_beauty @ b_serum > c_beauty @ b_cable
    assert c_tech @ b_cable > c_tech @ b_serum


def test_cached_vectors_are_reused_without_loading_the_model(tmp_path, embedder):
    """A second embedder with the same cache directory answers known texts without loading the model."""
    texts = ["hiking and camping gear", "espresso at home"]
    first = Embedder(cache_dir=tmp_path)
    first._encoder = embedder.encoder  # share the loaded model; the cache file is what is under test
    expected = first.encode(texts)
    second = Embedder(cache_dir=tmp_path)
    np.testing.assert_array_equal(second.encode(list(reversed(texts))), expected[::-1])
    assert second._encoder is None


def test_unknown_model_is_a_clear_error_and_never_downloaded():
    """A model that is neither a directory nor packaged is refused with its name in the message."""
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        resolve_model_path("no-such-model")


def test_model_is_a_setting(monkeypatch, tmp_path):
    """The model comes from the environment setting when not given, and a directory path is accepted."""
    packaged = resolve_model_path("all-MiniLM-L6-v2")
    monkeypatch.setenv(EMBEDDING_MODEL_ENV, str(packaged))
    assert Embedder().model == str(packaged)
    assert resolve_model_path(str(packaged)) == packaged


# --- The persistent cache: per model, append-only shards, re-indexing encodes only what changed -----------------


def sharing(embedder: Embedder, cache_dir) -> Embedder:
    """A fresh Embedder on `cache_dir` that reuses the session's loaded model (loading it is not under test)."""
    fresh = Embedder(cache_dir=cache_dir)
    fresh._encoder = embedder.encoder
    return fresh


def test_reindex_after_changing_two_creators_encodes_exactly_two_texts(embedder, world_dir, tmp_path):
    """A second run over the same cache sends only the 2 changed profiles to the model; vectors equal a cold run's."""
    creators = read_table(world_dir / "creators.parquet", "creators").frame.head(120)
    first = sharing(embedder, tmp_path / "cache")
    creator_vectors(first, creators)
    changed = creators.copy()
    changed.loc[[5, 90], "bio"] = ["Now reviewing espresso grinders.", "Trail running shoes, tested on mud."]

    warm = sharing(embedder, tmp_path / "cache")
    warm_vectors = creator_vectors(warm, changed)
    cold = sharing(embedder, tmp_path / "cold-cache")
    cold_vectors = creator_vectors(cold, changed)

    assert warm.encoded_count_ == 2
    assert cold.encoded_count_ == len(
        {
            creator_text(*row)
            for row in zip(changed["creator_type"], changed["interest_tags"], changed["bio"], strict=True)
        }
    )
    # Batches pad nothing, so a text encoded beside other texts is the same bits as encoded beside its own.
    np.testing.assert_array_equal(warm_vectors, cold_vectors)


def test_cache_is_per_model(embedder, tmp_path):
    """Vectors cached for one model are not served for another: each model has its own shard directory."""
    first = sharing(embedder, tmp_path)
    first.encode(["espresso at home"])
    other = Embedder(model=str(resolve_model_path("all-MiniLM-L6-v2")), cache_dir=tmp_path)

    assert len(other.cache) == 0 and len(first.cache) == 1
    assert first.cache.directory != other.cache.directory


def test_each_call_appends_a_shard_and_never_rewrites_one(embedder, tmp_path):
    """New texts land in a new shard; shards already written are left byte for byte; known texts add none."""
    cached = sharing(embedder, tmp_path)
    cached.encode(["camping stoves", "trail maps"])
    before = {p.name: (p / "vectors.npy").read_bytes() for p in cached.cache.directory.iterdir()}
    cached.encode(["camping stoves", "kayak paddles"])
    cached.encode(["trail maps", "kayak paddles"])

    after = {p.name: (p / "vectors.npy").read_bytes() for p in cached.cache.directory.iterdir()}
    assert len(before) == 1 and len(after) == 2 and cached.encoded_count_ == 3
    assert all(after[name] == data for name, data in before.items())
    assert not [p for p in cached.cache.directory.iterdir() if p.name.startswith(".")]


def random_rows(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("on_disk", [True, False])
def test_vector_cache_finds_every_key_across_shards_and_after_compaction(tmp_path, on_disk):
    """Keys put in many shards are all found with their vectors, before and after merging, on disk or not."""
    cache = VectorCache(tmp_path / "c" if on_disk else None, max_shards=4)
    keys = content_keys([f"text {i}" for i in range(300)])
    rows = random_rows(300, 1)
    for start in range(0, 300, 30):  # 10 puts: merges happen on the way
        cache.put(keys[start : start + 30], rows[start : start + 30])
    assert len(cache.shards) <= 4

    order = np.random.default_rng(2).permutation(300)
    query = np.concatenate([keys[order], content_keys(["never cached"])])
    shard_of, row_of = cache.find(query)
    assert (shard_of[:-1] >= 0).all() and shard_of[-1] == -1
    np.testing.assert_array_equal(cache.gather(shard_of, row_of, 8)[:-1], rows[order])

    cache.compact()
    assert len(cache.shards) == 1 and len(cache) == 300
    reopened = VectorCache(tmp_path / "c") if on_disk else cache
    np.testing.assert_array_equal(reopened.gather(*reopened.find(keys), 8), rows)


def test_vector_cache_keeps_the_first_vector_of_a_key_and_refuses_another_dimension(tmp_path):
    """Putting a cached key again changes nothing; vectors of another length are refused naming both."""
    cache = VectorCache(tmp_path)
    keys = content_keys(["a", "b"])
    cache.put(keys, random_rows(2, 3))
    cache.put(keys, random_rows(2, 4))

    assert len(cache) == 2 and len(cache.shards) == 1
    np.testing.assert_array_equal(cache.gather(*cache.find(keys), 8), random_rows(2, 3))
    with pytest.raises(ValueError, match="dimension 3; the cache holds 8"):
        cache.put(content_keys(["c"]), np.ones((1, 3), dtype=np.float32))


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    """The same model run by sentence-transformers on torch, loaded once for this module."""
    return Embedder(backend="torch")


def test_padded_batches_pad_by_the_text_alone_and_cover_every_text_once():
    """Each batch pads its texts to one length, their count (rounded up when short); two to `batch_size`
    texts, a lone one paired with itself; no input, no batch; a batch size under 1 is refused by name."""
    counts = [5, 9, 5, 5, 12, 9, 5, 7, 5, 30]
    exact = list(padded_batches(counts, batch_size=3))
    assert all({counts[i] for i in batch} == {length} and 2 <= len(batch) <= 3 for batch, length in exact)
    assert sorted(int(batch[0]) for batch, _ in exact if len(set(batch)) == 1) == [4, 7, 9]
    covered = np.concatenate([np.unique(batch) for batch, _ in exact])
    assert sorted(covered.tolist()) == list(range(len(counts)))
    assert [length for _, length in exact] == sorted((length for _, length in exact), reverse=True)

    rounded = list(padded_batches(counts, batch_size=32, multiple=8, up_to=12))
    assert [(sorted(batch.tolist()), length) for batch, length in rounded] == [
        ([9, 9], 30),
        ([1, 4, 5], 16),
        ([0, 2, 3, 6, 7, 8], 8),
    ]
    assert list(padded_batches([], batch_size=32)) == []
    with pytest.raises(ValueError, match="Got batch_size=0; expected an integer >= 1"):
        list(padded_batches(counts, batch_size=0))
    with pytest.raises(ValueError, match="Got batch_size=-4; expected an integer >= 1"):
        Embedder(batch_size=-4)  # refused when made, not at its first encode


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_texts_vector_is_the_same_bits_whatever_it_is_encoded_beside(backend, embedder, torch_embedder):
    """Alone, among texts of its length, among longer and shorter ones, or read from a cache that other batches
    filled: one text, one vector to the bit. Before batches were unpadded, the cache kept whichever bits came first
    and a benchmark's figures moved in the third decimal with what earlier runs had cached."""
    model = torch_embedder if backend == "torch" else embedder
    text = campaign_text("Insulated steel water bottle that keeps drinks cold for a day.", "sports_outdoors")
    others = [
        campaign_text("Insulated steel lunch box that keeps food warm for a day.", "home_kitchen"),
        "hiking",
        " ".join(["A long brief about trail shoes, tents and stoves for a week in the hills."] * 8),
        creator_text("deal_site", ["coupons", "kitchen deals"], "Daily markdowns on cookware and small appliances."),
    ]
    # Distinct texts of exactly `text`'s token count (one word swapped for another of one token), so that they
    # share its batches on either backend.
    words = "warm cool hot fresh clean dry wet cheap nice good fine safe full light dark soft hard quiet sweet bold"
    words += " calm busy easy free happy lucky plain rich simple smart solid strong thin thick tiny young old new"
    count = len(embedder.encoder.tokenizer.encode(text).ids)
    alike = [text.replace("cold", word) for word in words.split()]
    alike = [other for other in alike if len(embedder.encoder.tokenizer.encode(other).ids) == count]
    assert len(alike) >= 20
    alone = model.isolated().encode([text])[0]
    beside = [model.isolated().encode([*others[:n], text, *others[n:]])[n] for n in range(len(others) + 1)]
    many = model.isolated().encode([*alike[:10], text, *alike[10:], *others])[10]
    assert all(np.array_equal(alone, vector) for vector in [*beside, many])
    for size in (2, 3, 7):  # and the texts beside it are each the same bits in batches of other sizes
        narrow = Embedder(model.model, batch_size=size, backend=backend).isolated()
        narrow._encoder = model.encoder
        np.testing.assert_array_equal(narrow.encode(alike), model.isolated().encode(alike))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_an_isolated_embedder_gives_the_same_bits_whatever_the_thread_count_and_history(
    backend, embedder, torch_embedder
):
    """Scoring embeds a chunk's texts with `isolated()`: its vectors may not depend on torch's threads (a Ray
    actor runs one, a local job two) nor on what the process encoded before. Plain batched encoding of these
    short texts does differ in the last bits between one and two threads on torch, which once changed a score."""
    import torch

    from features.contract import CATEGORIES

    model = torch_embedder if backend == "torch" else embedder
    assert model.backend == backend
    texts = [campaign_text(category, category) for category in CATEGORIES]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = model.isolated().encode(texts)
        assert torch.get_num_threads() == 2, "encoding on one thread leaves the process's setting as it was"
        model.isolated().encode(texts[:3])  # other batches first: no memory of them may leak in
        torch.set_num_threads(1)
        one = model.isolated().encode(texts)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, two)


def test_a_kept_batch_is_the_bits_a_fresh_isolated_embedder_encodes(embedder):
    """Kind descriptions and category names are encoded once per process: what a request then reads is exactly
    what encoding them afresh gives, and the embedder's cache holds them as if it had encoded them."""
    from features.contract import CATEGORIES

    texts = [campaign_text(category, category) for category in CATEGORIES[:5]]
    first = fixed_vectors(embedder.isolated(), texts)
    again = embedder.isolated()
    kept = fixed_vectors(again, texts)
    assert kept is first and not kept.flags.writeable
    assert again.encoded_count_ == 0, "a kept batch is not sent to the model again"
    assert np.array_equal(again.encode(texts), kept)  # now from its cache
    assert np.array_equal(embedder.isolated().encode(texts), kept)  # and the same bits as a fresh encode
    # An embedder that has some of the texts cached, or no fixed thread count, encodes as it always did.
    partly = embedder.isolated()
    partly.encode(texts[:1])
    assert fixed_vectors(partly, texts) is not kept and partly.encoded_count_ == len(texts)
    assert np.array_equal(fixed_vectors(embedder, texts[:2]), embedder.encode(texts[:2]))


# --- The ONNX Runtime backend: the same neighbours as torch, its own cache, an export made once ----------------


def test_onnx_vectors_match_torch_and_find_the_same_neighbours(embedder, torch_embedder, world_dir):
    """On the world's real profiles and briefs, the ONNX vectors are within cosine 0.9999 of torch's and every
    brief's 20 nearest creators are the same, in the same order."""
    creators = read_table(world_dir / "creators.parquet", "creators").frame
    campaigns = read_table(world_dir / "campaigns.parquet", "campaigns").frame
    onnx_profiles, torch_profiles = creator_vectors(embedder, creators), creator_vectors(torch_embedder, creators)
    onnx_briefs, torch_briefs = campaign_vectors(embedder, campaigns), campaign_vectors(torch_embedder, campaigns)

    assert embedder.backend == "onnx" and torch_embedder.backend == "torch"
    assert np.sum(onnx_profiles * torch_profiles, axis=1).min() >= 0.9999
    assert np.sum(onnx_briefs * torch_briefs, axis=1).min() >= 0.9999
    onnx_top = np.argsort(-(onnx_briefs @ onnx_profiles.T), axis=1, kind="stable")[:, :20]
    torch_top = np.argsort(-(torch_briefs @ torch_profiles.T), axis=1, kind="stable")[:, :20]
    assert (onnx_top == torch_top).all(axis=1).mean() >= 0.95


def test_onnx_vectors_are_the_same_bits_on_one_or_two_threads(embedder, world_dir):
    """ONNX Runtime splits work by output, not by sum: a batch gives the same bits on any number of threads."""
    creators = read_table(world_dir / "creators.parquet", "creators").frame.head(200)
    vectors = []
    for threads in (1, 2):
        model = Embedder(threads=threads, show_progress=False)
        model._encoder = embedder.encoder  # the export is shared; its sessions are per thread count
        vectors.append(creator_vectors(model, creators))
    assert np.array_equal(*vectors)


def test_each_backend_caches_its_own_vectors(embedder, torch_embedder, tmp_path):
    """A text cached by torch is encoded afresh by onnx (and the reverse): the bits differ, so sharing a
    cache would make a run depend on which backend cached a text first."""
    on_torch = Embedder(backend="torch", cache_dir=tmp_path)
    on_torch._encoder = torch_embedder.encoder
    on_onnx = sharing(embedder, tmp_path)
    cached = on_torch.encode(["espresso at home"])
    fresh = on_onnx.encode(["espresso at home"])

    assert on_onnx.encoded_count_ == 1 and on_torch.cache.directory != on_onnx.cache.directory
    assert float(cached[0] @ fresh[0]) >= 0.9999


def test_backend_is_a_setting_and_an_unknown_one_is_refused_by_name(monkeypatch):
    """The backend comes from the environment when not given; an unknown one is refused naming it."""
    monkeypatch.setenv(EMBEDDING_BACKEND_ENV, "torch")
    assert Embedder().backend == "torch" and Embedder(backend="onnx").backend == "onnx"
    with pytest.raises(ValueError, match="'tensorflow'; expected one of torch, onnx"):
        Embedder(backend="tensorflow")


def test_the_export_is_made_once_and_keyed_by_model_files_and_exporter_version(embedder, tmp_path, monkeypatch):
    """A second process finds the export (it does not import torch to use it); a changed model file or a new
    export recipe gets a directory of its own rather than a stale export."""
    import subprocess
    import sys

    from features import onnx_encoder

    exported = embedder.encoder.directory
    assert (exported / "model.onnx").is_file() and exported.parent.name == "onnx"
    code = (
        "import sys; from features.embeddings import Embedder; "
        "v = Embedder(show_progress=False).encode(['trail running shoes']); "
        "print(v.shape[1], 'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["384", "False", "False"]
    assert [p.name for p in exported.parent.iterdir() if not p.name.startswith(".")] == [exported.name]

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = onnx_encoder.export_directory(model, tmp_path)
    monkeypatch.setattr(onnx_encoder, "EXPORT_VERSION", onnx_encoder.EXPORT_VERSION + 1)
    newer_recipe = onnx_encoder.export_directory(model, tmp_path)
    (model / "config.json").write_text('{"hidden_size": 384}')
    newer_model = onnx_encoder.export_directory(model, tmp_path)
    assert len({before, newer_recipe, newer_model}) == 3


_KILLED_EXPORT = """
import sys, time
from pathlib import Path
from features.safe_write import staged_directory

with staged_directory(sys.argv[1]) as staging:
    (Path(staging) / "model.onnx").write_bytes(bytes(4096))  # half written when the process is killed
    print(staging, flush=True)
    time.sleep(600)
"""


def test_an_export_first_clears_the_folder_a_killed_export_left(tmp_path):
    """A first export killed midway (a time limit on the first run) left its staging folder, a model half written,
    in the cache for good. The next export of that model clears it first, holding the export's lock, so that no
    live export's folder is taken; here that export then fails (no model), and leaves nothing of its own either."""
    import os
    import subprocess
    import sys

    from features import onnx_encoder
    from features.safe_write import stale_temporaries

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    root = tmp_path / "onnx"
    target = onnx_encoder.export_directory(model, root)
    checkout = str(Path(__file__).resolve().parents[2])  # this checkout's packages first, as in this process
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])))
    killed = subprocess.Popen(
        [sys.executable, "-c", _KILLED_EXPORT, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    left = Path(killed.stdout.readline().strip())
    killed.kill()
    killed.wait(timeout=60)
    assert stale_temporaries(target) == [left] and (left / "model.onnx").is_file()

    with pytest.raises(ValueError, match="Unrecognized model"):
        onnx_encoder.OnnxEncoder.for_model(model, root)
    assert stale_temporaries(target) == [] and not target.exists()


def test_a_campaign_is_embedded_once_for_its_product_type_and_its_scores(embedder):
    """`auto` product types read the campaign vectors scoring reads: a request's second call is served from the
    kept batch, bit for bit, and no batch run's chunks pile up past FIXED_BYTES."""
    from features import embeddings
    from features.product_type import resolve_product_types
    from simulation.world import simulate

    world = simulate(n_creators=20, n_campaigns=4, n_new_campaigns=3, seed=5)
    campaigns = world.new_campaigns.assign(product_type="auto").reset_index(drop=True)
    typing = embedder.isolated()
    resolve_product_types(campaigns, typing)
    scoring = embedder.isolated()
    vectors = campaign_vectors(scoring, campaigns)
    assert scoring.encoded_count_ == 0, "the product type's batch is the scoring batch: not encoded twice"
    texts = [campaign_text(b, c) for b, c in zip(campaigns["brief"], campaigns["category"], strict=True)]
    assert np.array_equal(vectors, embedder.isolated().encode(texts))
    # A bound on bytes as well as batches: the memo drops its oldest batches past FIXED_BYTES.
    kept = embeddings.FIXED_BYTES
    try:
        embeddings.FIXED_BYTES = 2 * vectors.nbytes
        for k in range(4):
            campaign_vectors(embedder.isolated(), campaigns.assign(brief=campaigns["brief"] + f" #{k}"))
        assert sum(v.nbytes for v in embeddings._fixed.values()) <= embeddings.FIXED_BYTES
    finally:
        embeddings.FIXED_BYTES = kept


def test_a_long_encode_draws_no_bar_when_stderr_is_not_a_terminal(capfd):
    """A thousand texts in a job whose standard error is a log file: no progress bar in it."""
    embedder = Embedder()
    embedder.encode(["warm up"])  # loading the model (its own bar is the HF_HUB_DISABLE_PROGRESS_BARS the CLI sets)
    capfd.readouterr()
    embedder.encode([f"item {i}" for i in range(1000)])
    assert "Batches" not in capfd.readouterr().err
