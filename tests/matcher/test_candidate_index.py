"""The FAISS candidate index: exact top-k, masked search, and artifacts that refuse the wrong model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from features.embeddings import content_keys
from features.environment import FLAT_THRESHOLD_ENV
from features.safe_write import OutputRefused
from matcher.candidate_index import META_FILE, ArtifactMismatch, CandidateIndex, ivf_nlist
from matcher.index_files import IDS_FILE, PROFILE_KEY_COLUMN

MODEL = "all-MiniLM-L6-v2"
DIM = 32


def unit_rows(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return unit_rows(np.random.default_rng(7), 500)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return unit_rows(np.random.default_rng(8), 12)


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    return np.array([f"cr{i:04d}" for i in range(500)], dtype=object)


@pytest.fixture(scope="module")
def index(vectors, ids) -> CandidateIndex:
    return CandidateIndex.build(vectors, ids, MODEL)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
    scores = queries.astype(np.float64) @ vectors.astype(np.float64).T
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    positions = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, positions, axis=1), positions


def test_build_records_size_and_metadata(index, ids):
    """The index holds every row, their ids in order, and metadata naming model and dimension."""
    assert len(index) == 500
    assert index.creator_ids.tolist() == ids.tolist()
    assert index.meta["embedding_model"] == MODEL
    assert index.meta["dimension"] == DIM
    assert index.meta["creators"] == 500
    assert index.meta["metric"] == "inner_product"


def test_search_equals_brute_force_inner_product(index, vectors, queries):
    """Top-k positions and similarities equal an exact numpy inner-product ranking."""
    sims, positions = index.search(queries, 10)
    expected_sims, expected_positions = brute_force(vectors, queries, 10)

    assert sims.shape == positions.shape == (12, 10)
    np.testing.assert_array_equal(positions, expected_positions)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-7).all()


@pytest.mark.parametrize("allowed_share", [None, 0.9, 0.3, 0.1])
def test_a_lone_query_gets_the_bits_it_gets_among_others(allowed_share):
    """A campaign matched alone (a service's request) is retrieved with the similarities it gets in a batch, to the
    bit, with and without a mask. On several threads FAISS splits a lone query's scan over the rows and its last
    bits differ (at 20,000 rows here); fewer than SERIAL_QUERIES queries are searched on one thread."""
    rng = np.random.default_rng(11)
    vectors, queries = unit_rows(rng, 20000, 384), unit_rows(rng, 30, 384)
    index = CandidateIndex.build(vectors, np.array([f"c{i}" for i in range(20000)], dtype=object), MODEL)
    allowed = None if allowed_share is None else rng.random(20000) < allowed_share
    batch = index.search(queries, 100, allowed=allowed)
    for n in (0, 17):
        alone = index.search(queries[n : n + 1], 100, allowed=allowed)
        np.testing.assert_array_equal(alone[0][0], batch[0][n])
        np.testing.assert_array_equal(alone[1][0], batch[1][n])


def test_search_of_a_stored_vector_finds_itself_first(index, vectors):
    """A creator's own vector is its nearest neighbour with similarity 1."""
    sims, positions = index.search(vectors[[3, 42, 499]], 1)

    assert positions[:, 0].tolist() == [3, 42, 499]
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)


def test_k_above_size_is_capped_at_the_number_of_rows(vectors, queries):
    """Asking for more neighbours than rows returns every row once."""
    small = CandidateIndex.build(vectors[:5], [f"c{i}" for i in range(5)], MODEL)

    _, positions = small.search(queries[:2], 50)

    assert positions.shape == (2, 5)
    assert sorted(positions[0].tolist()) == [0, 1, 2, 3, 4]


def test_masked_search_equals_brute_force_over_allowed_rows(index, vectors, queries):
    """With an `allowed` mask the result is the exact top-k among allowed rows and no disallowed row appears."""
    allowed = np.random.default_rng(9).random(len(vectors)) < 0.3

    sims, positions = index.search(queries, 15, allowed=allowed)
    expected_sims, expected_positions = brute_force(vectors, queries, 15, allowed)

    assert allowed[positions].all()
    np.testing.assert_array_equal(positions, expected_positions)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)


def test_masked_search_never_returns_a_disallowed_row_even_if_it_is_the_best(index, vectors):
    """Excluding a query's own row (its best match) removes it from the results."""
    allowed = np.ones(len(vectors), dtype=bool)
    allowed[[10, 20]] = False

    _, positions = index.search(vectors[[10, 20]], 20, allowed=allowed)

    assert 10 not in positions and 20 not in positions
    _, unmasked = index.search(vectors[[10, 20]], 1)
    assert unmasked[:, 0].tolist() == [10, 20]


def test_masked_search_pads_with_minus_one_when_fewer_rows_are_allowed(index, vectors, queries):
    """When fewer rows are allowed than k, the extra positions are -1."""
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[[4, 77, 300]] = True

    _, positions = index.search(queries[:3], 6, allowed=allowed)

    assert (positions[:, 3:] == -1).all()
    assert all(sorted(row[:3].tolist()) == [4, 77, 300] for row in positions)


def test_save_then_load_round_trips_ids_metadata_and_results(index, queries, tmp_path):
    """A saved index loads with the same ids, metadata and search results."""
    directory = index.save(tmp_path / "index")

    loaded = CandidateIndex.load(directory, embedding_model=MODEL, dimension=DIM)

    assert loaded.creator_ids.tolist() == index.creator_ids.tolist()
    assert loaded.meta == index.meta
    assert len(loaded) == len(index)
    for allowed in (None, np.arange(len(index)) % 3 == 0):
        sims, positions = loaded.search(queries, 8, allowed=allowed)
        expected_sims, expected_positions = index.search(queries, 8, allowed=allowed)
        np.testing.assert_array_equal(positions, expected_positions)
        np.testing.assert_allclose(sims, expected_sims)


def test_profile_keys_round_trip_beside_the_ids_and_an_index_written_before_them_still_loads(vectors, ids, tmp_path):
    """Each row's profile key is kept in creator_ids.parquet beside its id, byte for byte (a key ending in a zero
    byte too); an index written before the column existed loads as it did, with no keys to compare."""
    keys = content_keys([f"profile {i}" for i in range(len(ids))])
    keys[3] = b"k" * 15 + b"\x00"  # numpy drops trailing zero bytes when it hands a key out: the file must not
    built = CandidateIndex.build(vectors, ids, MODEL, profile_keys=keys)
    built.save(tmp_path / "index")

    table = pq.read_table(tmp_path / "index" / IDS_FILE)
    assert table.column_names == ["creator_id", PROFILE_KEY_COLUMN]
    assert table.column(PROFILE_KEY_COLUMN)[3].as_py() == b"k" * 15 + b"\x00"
    loaded = CandidateIndex.load(tmp_path / "index")
    assert loaded.profile_keys.tobytes() == keys.tobytes()

    pq.write_table(table.select(["creator_id"]), tmp_path / "index" / IDS_FILE)  # as written before the column
    older = CandidateIndex.load(tmp_path / "index", embedding_model=MODEL, dimension=DIM)
    assert older.profile_keys is None
    assert older.creator_ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(older.vectors(), loaded.vectors())
    with pytest.raises(ValueError, match="Got 2 profile keys for 500 vectors"):
        CandidateIndex.build(vectors, ids, MODEL, profile_keys=keys[:2])


def test_load_without_expectations_accepts_any_model(index, tmp_path):
    """Load with no model or dimension named does not check them."""
    index.save(tmp_path / "index")

    assert CandidateIndex.load(tmp_path / "index").meta["embedding_model"] == MODEL


def test_load_with_another_embedding_model_raises_naming_both(index, tmp_path):
    """An index built by another model is refused, naming the model found and the one expected."""
    index.save(tmp_path / "index")

    with pytest.raises(ArtifactMismatch) as caught:
        CandidateIndex.load(tmp_path / "index", embedding_model="bge-small-en-v1.5")

    message = str(caught.value)
    assert "'all-MiniLM-L6-v2'" in message and "'bge-small-en-v1.5'" in message


def test_load_with_another_embedding_backend_raises_and_an_older_index_reads_as_torch(index, tmp_path):
    """An index records the backend that ran the model; another is refused naming both and the command that
    fixes it. An index saved before backends were recorded was made by torch, the only backend then."""
    onnx = CandidateIndex(index.index, index.creator_ids, {**index.meta, "embedding_backend": "onnx"})
    onnx.save(tmp_path / "index")
    with pytest.raises(ArtifactMismatch, match=r"'onnx'; expected 'torch'.*--embedding-backend torch"):
        CandidateIndex.load(tmp_path / "index", embedding_backend="torch")
    assert CandidateIndex.load(tmp_path / "index", embedding_backend="onnx").meta["embedding_backend"] == "onnx"

    older = {key: value for key, value in index.meta.items() if key != "embedding_backend"}
    CandidateIndex(index.index, index.creator_ids, older).save(tmp_path / "older")
    assert CandidateIndex.load(tmp_path / "older", embedding_backend="torch").meta["embedding_backend"] == "torch"


def test_load_with_another_dimension_raises_naming_both(index, tmp_path):
    """An index of another dimension is refused, naming both dimensions."""
    index.save(tmp_path / "index")

    with pytest.raises(ArtifactMismatch) as caught:
        CandidateIndex.load(tmp_path / "index", embedding_model=MODEL, dimension=384)

    assert f"dimension {DIM}" in str(caught.value) and "expected 384" in str(caught.value)


def test_load_of_a_directory_without_an_index_raises_file_not_found(tmp_path):
    """An empty or missing directory is FileNotFoundError, not a FAISS error."""
    (tmp_path / "empty").mkdir()

    with pytest.raises(FileNotFoundError, match="no candidate index"):
        CandidateIndex.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        CandidateIndex.load(tmp_path / "never-made")


def listing(directory) -> dict[str, bytes]:
    """Every file under `directory` with its bytes: what a refused save must leave exactly as it was."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("legacy", [False, True], ids=["index", "index-written-before-the-marker"])
def test_save_replaces_an_existing_index_in_one_step(vectors, tmp_path, legacy):
    """Saving over an index swaps the new one in whole; nothing is left beside it (an old-format index too)."""
    directory = tmp_path / "index"
    CandidateIndex.build(vectors[:50], [f"old{i}" for i in range(50)], "old-model").save(directory)
    if legacy:  # indexes saved before the "artifact" mark existed must stay replaceable
        meta = json.loads((directory / META_FILE).read_text())
        del meta["artifact"]
        (directory / META_FILE).write_text(json.dumps(meta))

    CandidateIndex.build(vectors[:20], [f"new{i}" for i in range(20)], MODEL).save(directory)

    assert json.loads((directory / META_FILE).read_text())["embedding_model"] == MODEL
    loaded = CandidateIndex.load(directory, embedding_model=MODEL)
    assert loaded.creator_ids.tolist() == [f"new{i}" for i in range(20)]
    assert len(loaded) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_save_into_an_empty_directory_uses_it(vectors, tmp_path):
    (tmp_path / "index").mkdir()
    CandidateIndex.build(vectors[:5], [f"c{i}" for i in range(5)], MODEL).save(tmp_path / "index")
    assert len(CandidateIndex.load(tmp_path / "index")) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


@pytest.mark.parametrize(
    "existing, reason",
    [
        ({"notes.txt": "a user's notes", "data/sales.csv": "a,b\n1,2\n"}, "it holds data, notes.txt"),
        ({"index.faiss": "x", "creator_ids.parquet": "x", "meta.json": "{}", "README": "mine"}, "it holds README"),
        ({"meta.json": '{"name": "someone else\'s project"}'}, "no meta.json describing one"),
        ({"meta.json": "not json"}, "no meta.json describing one"),
    ],
    ids=["a-folder-of-user-files", "an-index-with-a-user-file-added", "another-meta-json", "unreadable-meta"],
)
def test_save_refuses_a_directory_it_did_not_write_and_touches_nothing(vectors, tmp_path, existing, reason):
    """`--out ~/work` must never wipe the user's folder: anything but an index or an empty dir is refused."""
    directory = tmp_path / "work"
    for name, text in existing.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    before = listing(directory)

    with pytest.raises(OutputRefused, match=r"refusing to replace .*work") as refused:
        CandidateIndex.build(vectors[:5], [f"c{i}" for i in range(5)], MODEL).save(directory)

    assert reason in str(refused.value) and "\n" not in str(refused.value)
    assert listing(directory) == before
    assert [p.name for p in tmp_path.iterdir()] == ["work"]


def test_save_refuses_a_file_in_the_way(vectors, tmp_path):
    (tmp_path / "index").write_text("a user's file")
    with pytest.raises(OutputRefused, match="exists and is not a directory"):
        CandidateIndex.build(vectors[:5], [f"c{i}" for i in range(5)], MODEL).save(tmp_path / "index")
    assert (tmp_path / "index").read_text() == "a user's file"


def test_index_command_refuses_a_folder_of_user_files_before_embedding_anything(world_dir, tmp_path, capsys):
    """`creator-match index --out DIR` on a user's folder: exit 2, one line, every file kept, nothing embedded."""
    from matcher.cli import main

    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.docx").write_bytes(b"years of work")
    code = main(
        [
            "index",
            "--creators",
            str(world_dir / "creators.parquet"),
            "--out",
            str(work),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(work) in err[0] and "thesis.docx" in err[0], err
    assert (work / "thesis.docx").read_bytes() == b"years of work" and len(list(work.iterdir())) == 1
    assert not (tmp_path / "cache").exists(), "refused before any creator was embedded"


# --- Index kinds: flat, ivf and hnsw on data clustered like real profile embeddings -------------------------


def clustered_rows(rng: np.random.Generator, n: int, clusters: int = 60, dim: int = DIM, spread: float = 0.35):
    """Unit rows around `clusters` random centres on the sphere, as topic-clustered profile embeddings are."""
    centres = unit_rows(rng, clusters, dim)
    rows = centres[rng.integers(0, clusters, n)] + rng.normal(scale=spread / np.sqrt(dim), size=(n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    rows = clustered_rows(rng, 6000)
    queries = clustered_rows(np.random.default_rng(22), 40)
    ids = np.array([f"cr{i:05d}" for i in range(len(rows))], dtype=object)
    return rows, queries, ids


def assert_exact_ranking(rows, queries, sims, positions, expected_sims, allowed=None, atol=1e-5):
    """Equal to the exact ranking up to float ties: same similarities, and each row really has its similarity.

    Where fewer rows exist than asked for, the rest are position -1 (the reference has similarity -inf there).
    `atol` bounds how far a stored vector's similarity may be from its row's (0 for float32 storage).
    """
    found = positions >= 0
    np.testing.assert_array_equal(found, np.isfinite(expected_sims))
    k = positions.shape[1]
    np.testing.assert_allclose(sims[found], expected_sims[found], rtol=0, atol=atol)
    true_sims = np.take_along_axis(queries.astype(np.float64) @ rows.astype(np.float64).T, positions, axis=1)
    np.testing.assert_allclose(true_sims[found], expected_sims[found], rtol=0, atol=atol)
    assert all(len(set(row)) == len(row) for row in np.where(found, positions, -np.arange(1, k + 1)).tolist())
    if allowed is not None:
        assert allowed[positions[found]].all()


# An ivf index stores float16 residuals: one below 1 in size is rounded by at most this much per component.
IVF_ROUNDING = 2**-12


def similarity_tolerance(kind: str, queries: np.ndarray) -> float:
    """How far a search's similarities may be from the rows' own: |query|_1 x the storage's rounding, plus float32
    arithmetic."""
    return float(np.abs(queries).sum(axis=1).max()) * (IVF_ROUNDING if kind == "ivf" else 0) + 1e-5


def recall(found: np.ndarray, expected: np.ndarray) -> float:
    """Share of the exact top-k positions that the search returned."""
    return float(np.mean([len(set(f[f >= 0]) & set(e)) / len(e) for f, e in zip(found, expected, strict=True)]))


@pytest.mark.parametrize("allowed_share", [None, 0.3])
def test_ivf_probing_every_list_equals_brute_force(clustered, allowed_share):
    """An ivf index with nprobe = nlist scans every row: filtered results equal the exact ranking, up to the
    float16 rounding of the residuals it stores."""
    rows, queries, ids = clustered
    built = CandidateIndex.build(rows, ids, MODEL, kind="ivf", nlist=40, nprobe=40)
    allowed = None if allowed_share is None else np.random.default_rng(3).random(len(rows)) < allowed_share

    sims, positions = built.search(queries, 50, allowed=allowed)
    expected_sims, expected_positions = brute_force(rows, queries, 50, allowed)

    assert built.kind == "ivf" and built.nprobe == 40 and built.meta["index_type"] == "IVF40,SQfp16"
    assert 0 < np.abs(built.vectors() - rows).max() <= IVF_ROUNDING
    assert_exact_ranking(rows, queries, sims, positions, expected_sims, allowed, similarity_tolerance("ivf", queries))
    assert recall(positions, expected_positions) >= 0.99


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("allowed_share", [None, 0.3])
def test_approximate_kinds_recall_at_least_95_percent_at_default_settings(clustered, kind, allowed_share):
    """At default nprobe / ef_search, recall@100 against the exact filtered ranking is at least 0.95."""
    rows, queries, ids = clustered
    built = CandidateIndex.build(rows, ids, MODEL, kind=kind)
    allowed = None if allowed_share is None else np.random.default_rng(4).random(len(rows)) < allowed_share

    _, positions = built.search(queries, 100, allowed=allowed)
    _, expected = brute_force(rows, queries, 100, allowed)

    assert recall(positions, expected) >= 0.95
    assert (positions >= 0).all()
    if allowed is not None:
        assert allowed[positions].all()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_a_selective_filter_still_returns_every_allowed_row_asked_for(clustered, kind):
    """With 2% of rows allowed and k = their number, a narrow first search sees too few; widening finds all."""
    rows, queries, ids = clustered
    built = CandidateIndex.build(rows, ids, MODEL, kind=kind, nprobe=1, ef_search=16)
    allowed = np.random.default_rng(5).random(len(rows)) < 0.02

    sims, positions = built.search(queries, int(allowed.sum()), allowed=allowed)
    expected_sims, _ = brute_force(rows, queries, int(allowed.sum()), allowed)

    assert all(sorted(row) == np.flatnonzero(allowed).tolist() for row in positions.tolist())
    assert_exact_ranking(rows, queries, sims, positions, expected_sims, allowed, similarity_tolerance(kind, queries))
    assert (built.nprobe, built.ef_search) in ((1, None), (None, 16))  # widening is per search; settings stay


def test_flat_is_exact_and_has_no_nprobe(clustered):
    """The flat kind equals brute force with a filter, and has no ivf or hnsw settings."""
    rows, queries, ids = clustered
    built = CandidateIndex.build(rows, ids, MODEL, kind="flat")
    allowed = np.random.default_rng(6).random(len(rows)) < 0.5

    sims, positions = built.search(queries, 30, allowed=allowed)
    expected_sims, _ = brute_force(rows, queries, 30, allowed)

    assert_exact_ranking(rows, queries, sims, positions, expected_sims, allowed)
    assert built.kind == "flat" and built.nprobe is None and built.ef_search is None


def test_auto_is_flat_up_to_the_threshold_and_ivf_above(clustered, monkeypatch):
    """`auto` picks exact search for small catalogues and ivf above the threshold (argument or setting)."""
    rows, _, ids = clustered

    assert CandidateIndex.build(rows, ids, MODEL, flat_threshold=len(rows)).kind == "flat"
    above = CandidateIndex.build(rows, ids, MODEL, flat_threshold=1000)
    assert above.kind == "ivf" and above.meta["nlist"] == ivf_nlist(len(rows))
    monkeypatch.setenv(FLAT_THRESHOLD_ENV, "1000")
    assert CandidateIndex.build(rows, ids, MODEL).kind == "ivf"


def test_ivf_build_is_deterministic_for_a_seed(clustered):
    """Two ivf builds with the same seed answer identically."""
    rows, queries, ids = clustered
    first = CandidateIndex.build(rows, ids, MODEL, kind="ivf", seed=3)
    second = CandidateIndex.build(rows, ids, MODEL, kind="ivf", seed=3)

    np.testing.assert_array_equal(first.search(queries, 20)[1], second.search(queries, 20)[1])


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_vectors_returns_every_row_in_order(clustered, kind):
    """vectors() gives back the stored rows in row order, for every kind (ivf via its direct map)."""
    rows, _, ids = clustered
    built = CandidateIndex.build(rows[:2000], ids[:2000], MODEL, kind=kind)

    # ivf keeps float16 residuals: its rows come back within their rounding, and `vectors_at` reads the same values.
    np.testing.assert_allclose(built.vectors(), rows[:2000], rtol=0, atol=IVF_ROUNDING if kind == "ivf" else 0)
    positions = np.array([1999, 0, 7, 7])
    np.testing.assert_array_equal(built.vectors_at(positions), built.vectors()[positions])


@pytest.mark.parametrize(("kind", "setting"), [("ivf", {"nprobe": 5}), ("hnsw", {"ef_search": 40})])
def test_save_then_load_keeps_kind_and_search_settings(clustered, kind, setting, tmp_path):
    """A saved approximate index loads with its kind, nprobe / ef_search, vectors and identical results."""
    rows, queries, ids = clustered
    built = CandidateIndex.build(rows, ids, MODEL, kind=kind, **setting)
    built.save(tmp_path / "index")

    loaded = CandidateIndex.load(tmp_path / "index", embedding_model=MODEL, dimension=DIM)

    assert loaded.kind == kind and loaded.meta == built.meta
    assert loaded.nprobe == setting.get("nprobe") and loaded.ef_search == setting.get("ef_search")
    np.testing.assert_array_equal(loaded.vectors(), built.vectors())
    allowed = np.arange(len(rows)) % 4 == 0
    for mask in (None, allowed):
        np.testing.assert_array_equal(loaded.search(queries, 25, mask)[1], built.search(queries, 25, mask)[1])


def test_approximate_index_with_another_model_or_dimension_is_refused(clustered, tmp_path):
    """An ivf index is refused for another embedding model or dimension, as a flat one is."""
    rows, _, ids = clustered
    CandidateIndex.build(rows, ids, MODEL, kind="ivf").save(tmp_path / "index")

    with pytest.raises(ArtifactMismatch, match=r"'bge-small-en-v1\.5'"):
        CandidateIndex.load(tmp_path / "index", embedding_model="bge-small-en-v1.5")
    with pytest.raises(ArtifactMismatch, match="expected 384"):
        CandidateIndex.load(tmp_path / "index", embedding_model=MODEL, dimension=384)


def test_bad_settings_are_refused_naming_the_value(clustered):
    """An unknown kind, nprobe 0 or a mask of the wrong length is a ValueError naming what was given."""
    rows, queries, ids = clustered
    with pytest.raises(ValueError, match="kind='annoy'"):
        CandidateIndex.build(rows, ids, MODEL, kind="annoy")
    with pytest.raises(ValueError, match="nprobe=0"):
        CandidateIndex.build(rows, ids, MODEL, kind="ivf", nprobe=0)
    built = CandidateIndex.build(rows, ids, MODEL, kind="ivf")
    with pytest.raises(ValueError, match="nprobe=0"):
        built.nprobe = 0
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        built.search(queries, 5, allowed=np.ones(10, dtype=bool))


def test_nlist_is_about_four_root_n_with_enough_training_points_per_list():
    """nlist follows 4·sqrt(n) for large n and is capped so k-means has 39 points per list for small n."""
    assert ivf_nlist(1_000_000) == 4000
    assert ivf_nlist(250_000) == 2000
    assert ivf_nlist(500) == 12
    assert ivf_nlist(1) == 1


def test_index_command_builds_the_kind_asked_and_reuses_its_embedding_cache(
    world_dir, empty_cache_dir, tmp_path, capsys
):
    """`creator-match index --index-type ivf` writes an ivf index; a second run embeds nothing afresh."""
    from matcher.cli import main

    args = ["index", "--creators", str(world_dir / "creators.parquet"), "--cache-dir", str(empty_cache_dir)]

    assert main([*args, "--out", str(tmp_path / "a"), "--index-type", "ivf"]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    second = capsys.readouterr().out

    assert CandidateIndex.load(tmp_path / "a").kind == "ivf" and CandidateIndex.load(tmp_path / "b").kind == "flat"
    assert ", ivf, " in first and " 0 embedded afresh" not in first
    assert ", flat, 0 embedded afresh" in second
    assert main([*args, "--out", str(tmp_path / "c"), "--index-type", "annoy"]) == 2
    assert "--index-type 'annoy'" in capsys.readouterr().err


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.9, 1.0])
def test_flat_filtered_search_is_exact_at_any_share_allowed(vectors, queries, index, share):
    """Whether it over-fetches (most rows allowed) or uses the selector (few), flat filtered search is exact."""
    allowed = np.random.default_rng(int(share * 100)).random(len(vectors)) < share

    sims, positions = index.search(queries, 40, allowed=allowed)
    expected_sims, _ = brute_force(vectors, queries, 40, allowed)

    assert_exact_ranking(vectors, queries, sims, positions, expected_sims, allowed)


def test_flat_filtered_search_falls_back_when_the_nearest_rows_are_all_disallowed(index, vectors):
    """Over-fetching finds no allowed row when a query's 300 nearest are excluded; the selector search then does."""
    _, nearest = brute_force(vectors, vectors[:1], 300)
    allowed = np.ones(len(vectors), dtype=bool)
    allowed[nearest[0]] = False

    sims, positions = index.search(vectors[:1], 10, allowed=allowed)
    expected_sims, _ = brute_force(vectors, vectors[:1], 10, allowed)

    assert_exact_ranking(vectors, vectors[:1], sims, positions, expected_sims, allowed)


def test_load_refuses_an_index_whose_parts_disagree_or_cannot_be_read(index, ids, tmp_path):
    """A saved index cut short, given the ids of another build, or whose meta.json says another kind or size is
    refused as damaged, naming the directory and what is wrong in one line; an intact copy loads."""
    from matcher.candidate_index import DamagedIndex

    def saved(name: str, built: CandidateIndex = index):
        return built.save(tmp_path / name)

    cut = saved("cut")
    (cut / "index.faiss").write_bytes((cut / "index.faiss").read_bytes()[:1000])
    short = saved("short")
    pq.write_table(pq.read_table(short / IDS_FILE).slice(0, 159), short / IDS_FILE)
    no_ids = saved("no-ids")
    (no_ids / IDS_FILE).unlink()

    def relabelled(name: str, kind: str):
        directory = saved(name)
        (directory / META_FILE).write_text(
            json.dumps({**json.loads((directory / META_FILE).read_text()), "kind": kind})
        )
        return directory

    not_ivf, not_hnsw, unknown_kind = (
        relabelled("not-ivf", "ivf"),
        relabelled("not-hnsw", "hnsw"),
        relabelled("bogus", "bogus"),
    )
    miscounted = saved("miscounted")
    (miscounted / META_FILE).write_text(json.dumps({**json.loads((miscounted / META_FILE).read_text()), "creators": 7}))
    garbled = saved("garbled")
    (garbled / META_FILE).write_text("{not json")
    for directory, wrong in (
        (cut, "index.faiss (1000 bytes) cannot be read by faiss"),
        (short, "creator_ids.parquet holds 159 creator ids for the 500 vectors of index.faiss"),
        (no_ids, "creator_ids.parquet is missing"),
        (not_ivf, "index.faiss is faiss's IndexFlatIP, not the ivf index meta.json says"),
        (not_hnsw, "index.faiss is faiss's IndexFlatIP, not the hnsw index meta.json says"),
        (unknown_kind, "meta.json names kind 'bogus'; expected one of flat, ivf, hnsw"),
        (miscounted, "meta.json records 7 creators; index.faiss holds 500"),
        (garbled, "meta.json cannot be read"),
    ):
        with pytest.raises(DamagedIndex) as refused:
            CandidateIndex.load(directory, embedding_model=MODEL)
        message = str(refused.value)
        assert message.startswith(f"index {directory} is damaged: {wrong}") and "\n" not in message, message
        assert isinstance(refused.value, ArtifactMismatch)  # the command line's one-line refusal, exit 2
    assert CandidateIndex.load(saved("intact")).creator_ids.tolist() == ids.tolist()
