"""The FAISS candidate index: exact top-k, masked search, and artifacts that refuse the wrong model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.candidate_index import META_FILE, ArtifactMismatch, CandidateIndex

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


def test_save_replaces_an_existing_directory_whole(vectors, tmp_path):
    """Saving over an old index leaves only the new files: stale ones are gone, no staging dir is left."""
    directory = tmp_path / "index"
    CandidateIndex.build(vectors[:50], [f"old{i}" for i in range(50)], "old-model").save(directory)
    (directory / "stale.txt").write_text("left from an older build")

    CandidateIndex.build(vectors[:20], [f"new{i}" for i in range(20)], MODEL).save(directory)

    assert not (directory / "stale.txt").exists()
    assert json.loads((directory / META_FILE).read_text())["embedding_model"] == MODEL
    loaded = CandidateIndex.load(directory, embedding_model=MODEL)
    assert loaded.creator_ids.tolist() == [f"new{i}" for i in range(20)]
    assert len(loaded) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
