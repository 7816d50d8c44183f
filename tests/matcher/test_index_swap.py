"""Loading an index directory while `creator-match index` replaces it: one build whole, never two mixed.

The two builds here hold the same creators and vectors in opposite row orders: a load of one build's vectors with
the other's ids agrees in count, and only its rows tell, each on another creator's vector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from features.safe_write import stale_temporaries
from matcher import index_files
from matcher.candidate_index import CandidateIndex, DamagedIndex
from matcher.index_files import IDS_FILE, INDEX_FILE, LOAD_ATTEMPTS, META_FILE

MODEL = "all-MiniLM-L6-v2"
CREATORS = 200


@pytest.fixture(scope="module")
def own_vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(CREATORS, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return {f"cr{i:04d}": vector for i, vector in enumerate(vectors)}


@pytest.fixture(scope="module")
def builds(own_vectors) -> dict[str, CandidateIndex]:
    ids = np.array(list(own_vectors), dtype=object)
    vectors = np.stack(list(own_vectors.values()))
    return {
        "A": CandidateIndex.build(vectors, ids, MODEL),
        "B": CandidateIndex.build(vectors[::-1].copy(), ids[::-1].copy(), MODEL),
    }


def build_of(loaded: CandidateIndex, own_vectors: dict[str, np.ndarray]) -> str:
    """Which build a load is, after checking that each of its rows holds its own creator's vector."""
    rows = loaded.vectors()
    for position, creator in enumerate(loaded.creator_ids.tolist()):
        assert np.array_equal(rows[position], own_vectors[creator]), f"{creator} loaded on another's vector"
    return "A" if loaded.creator_ids[0] == "cr0000" else "B"


def replace_when(monkeypatch, moment: str, replace, every_time: bool = False) -> None:
    """Runs `replace` (the real writer) inside `load` at `moment`: just before it opens that file, or once it has
    opened them all (`opened`); the first time only, unless `every_time`."""
    ran = []

    def replace_once():
        if every_time or not ran:
            ran.append(replace())

    if moment == "opened":
        open_files = index_files._OneBuild.open_files

        def open_then_replace(self):
            files = open_files(self)
            replace_once()
            return files

        monkeypatch.setattr(index_files._OneBuild, "open_files", open_then_replace)
    else:
        open_file = index_files._OneBuild._open

        def replace_then_open(self, name):
            if name == moment:
                replace_once()
            return open_file(self, name)

        monkeypatch.setattr(index_files._OneBuild, "_open", replace_then_open)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [(META_FILE, "B"), (INDEX_FILE, "B"), (IDS_FILE, "B"), ("opened", "A")],
)
def test_a_load_replaced_midway_gets_one_build_whole(builds, own_vectors, tmp_path, monkeypatch, moment, expected):
    """The directory replaced by B (and A deleted) after the load opened it, before it opened a file of A, is read
    again, B whole; replaced once it holds A's files open, it reads A whole, deleted as A is."""
    target = tmp_path / "index"
    builds["A"].save(target)
    replaced = []
    replace_when(monkeypatch, moment, lambda: replaced.append(builds["B"].save(target)))

    loaded = CandidateIndex.load(target, embedding_model=MODEL)

    assert replaced and build_of(loaded, own_vectors) == expected
    assert stale_temporaries(target) == []  # A's files were deleted, not left beside
    monkeypatch.undo()
    assert build_of(CandidateIndex.load(target), own_vectors) == "B"


@pytest.mark.parametrize(("moment", "expected"), [(INDEX_FILE, "B"), ("opened", "A")])
def test_a_copy_replaced_midway_is_one_build_whole(builds, own_vectors, tmp_path, monkeypatch, moment, expected):
    """`serve --workers` copies the index for the pools that replace a dead one: a copy taken while `index` replaces
    the directory is one build, as a load is."""
    target = tmp_path / "index"
    builds["A"].save(target)
    replace_when(monkeypatch, moment, lambda: builds["B"].save(target))

    copied = index_files.IndexFiles.copy(target, tmp_path / "copy")

    monkeypatch.undo()
    assert build_of(CandidateIndex.load(copied, embedding_model=MODEL), own_vectors) == expected
    assert sorted(path.name for path in copied.iterdir()) == sorted([IDS_FILE, INDEX_FILE, META_FILE])
    with pytest.raises(index_files.IndexNotFound):
        index_files.IndexFiles.copy(tmp_path / "no-such-index", tmp_path / "copy2")
    assert not (tmp_path / "copy2").exists()


def test_a_directory_replaced_under_every_load_is_refused_in_one_line(builds, tmp_path, monkeypatch):
    """Another process that replaces the index under each load: after LOAD_ATTEMPTS, one line saying so."""
    target = tmp_path / "index"
    builds["A"].save(target)
    saves = []
    replace_when(monkeypatch, INDEX_FILE, lambda: saves.append(builds["B"].save(target)), every_time=True)

    with pytest.raises(DamagedIndex) as refused:
        CandidateIndex.load(target)

    assert len(saves) == LOAD_ATTEMPTS
    assert str(refused.value) == (
        f"index {target} was replaced while it was loaded, {LOAD_ATTEMPTS} times over: another process keeps "
        "writing it; load it once that has finished"
    )


def test_the_ids_of_another_build_are_refused_though_their_count_agrees(builds, tmp_path):
    """creator_ids.parquet copied in from another build (same creators, other rows) is refused as damaged: meta.json
    and the ids record the build that wrote them. An index written before build ids (neither has one) loads."""
    a, b = builds["A"].save(tmp_path / "a"), builds["B"].save(tmp_path / "b")
    (a / IDS_FILE).write_bytes((b / IDS_FILE).read_bytes())
    a_build = json.loads((a / META_FILE).read_text())["build_id"]
    b_build = pq.read_schema(b / IDS_FILE).metadata[b"creator_matcher_build_id"].decode()

    with pytest.raises(DamagedIndex) as refused:
        CandidateIndex.load(a)

    assert str(refused.value).startswith(
        f"index {a} is damaged: {IDS_FILE} is of build {b_build}, {META_FILE} of build {a_build}"
    )
    older = builds["A"].save(tmp_path / "older")
    meta = json.loads((older / META_FILE).read_text())
    del meta["build_id"]
    (older / META_FILE).write_text(json.dumps(meta))
    pq.write_table(pq.read_table(older / IDS_FILE).replace_schema_metadata(None), older / IDS_FILE)
    assert CandidateIndex.load(older).meta == builds["A"].meta


def test_loads_during_a_writer_saving_nonstop_are_each_one_build(builds, own_vectors, tmp_path):
    """A real race: another process saves A and B in turn at one directory while this one loads it until it has
    seen each build 20 times; every load is one build whole."""
    for name, build in builds.items():
        build.save(tmp_path / name)
    target = tmp_path / "index"
    builds["A"].save(target)
    script = (
        "import sys\n"
        "from matcher.candidate_index import CandidateIndex\n"
        "sources = [CandidateIndex.load(p) for p in sys.argv[2:]]\n"
        "print('saving', flush=True)\n"
        "while True:\n"
        "    for source in sources:\n"
        "        source.save(sys.argv[1])\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(target), str(tmp_path / "A"), str(tmp_path / "B")],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "saving"
        seen = {"A": 0, "B": 0}
        # A save takes ~50 ms and a load ~2 ms: about 1,000 loads see each build 20 times. The bound is for a
        # writer that stalled, and then fails the count below rather than hang.
        for _ in range(20_000):
            seen[build_of(CandidateIndex.load(target, embedding_model=MODEL), own_vectors)] += 1
            if min(seen.values()) >= 20:
                break
        assert min(seen.values()) >= 20, seen
    finally:
        writer.kill()
        writer.wait(timeout=60)


def test_where_no_file_opens_relative_to_a_directory_an_index_loads_by_its_paths(
    builds, own_vectors, tmp_path, monkeypatch
):
    """Windows' os.open takes no dir_fd: the files are opened by path, as before, and load the same."""
    target = builds["B"].save(tmp_path / "index")
    monkeypatch.setattr(os, "supports_dir_fd", set())

    assert build_of(CandidateIndex.load(target, embedding_model=MODEL), own_vectors) == "B"
    with pytest.raises(FileNotFoundError, match="no candidate index here"):
        CandidateIndex.load(tmp_path / "never-made")
