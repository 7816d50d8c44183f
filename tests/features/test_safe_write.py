"""Durable atomic writes: a replace is whole or absent, flushed to disk, and never removes what it did not write."""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

import features.safe_write as safe_write
from features.embeddings import VectorCache
from features.safe_write import (
    OutputRefused,
    atomic_path,
    private_temp_dir,
    release_temp_dir,
    remove_directory,
    staged_directory,
)
from features.tables import Reject, write_rejects
from matcher.batch import write_matches
from matcher.candidate_index import CandidateIndex
from simulation.world import write_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "matcher", "training", "simulation")
# Renaming or removing a path commits or destroys data; only the helper module does either, by its rules.
GUARDED = {("os", "replace"), ("os", "rename"), ("os", "renames"), ("shutil", "move"), ("shutil", "rmtree")}
ALLOWED = {
    "features/safe_write.py": "the helper itself",
    # Ray's own session directory, made by mkdtemp in the same function for sockets and logs: never an output.
    "matcher/ray_engine.py": "Ray's private temp dir",
}


def _dotted(func: ast.expr) -> tuple[str, str] | None:
    """`module.function` of a call such as `os.replace(...)`, else None."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id, func.attr
    return None


def test_only_the_helper_renames_or_removes_a_path():
    """Every commit of an output goes through features.safe_write (so it is fsynced and checked)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                called = _dotted(node.func) if isinstance(node, ast.Call) else None
                if called in GUARDED:
                    found.append(f"{relative}:{node.lineno} {'.'.join(called)}")
    assert not found, f"renames or removals outside features/safe_write.py: {found}"


@pytest.fixture
def fsynced(monkeypatch) -> list[str]:
    """Every path flushed with os.fsync, in order (the real fsync still runs)."""
    calls: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def _write_matches(target: Path) -> None:
    write_matches(pd.DataFrame({"campaign_id": ["c1"], "rank": [1]}), target)


def _write_rejects(target: Path) -> None:
    write_rejects([Reject("creators", 3, "cr-1", "bio", "too long")], target.with_name("out.parquet"))


WRITERS = {
    "matches.csv": _write_matches,
    "matches.jsonl": _write_matches,
    "out.rejects.csv": _write_rejects,
    "creators.parquet": lambda target: write_table(pd.DataFrame({"creator_id": ["a", "b"]}), target),
}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names file descriptors through /proc")
@pytest.mark.parametrize("name", list(WRITERS))
def test_every_file_output_is_flushed_before_and_after_its_rename(tmp_path, fsynced, name):
    """The temporary file is fsynced before the rename and the directory after, so "done" survives a power cut."""
    target = tmp_path / name
    WRITERS[name](target)
    assert target.exists()
    temp = [i for i, p in enumerate(fsynced) if Path(p).parent == tmp_path and Path(p).name.startswith(f".{name}.")]
    directory = [i for i, p in enumerate(fsynced) if p == str(tmp_path)]
    assert temp and directory and temp[0] < directory[-1], fsynced
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names file descriptors through /proc")
def test_directory_outputs_flush_every_file_then_the_directory_then_its_parent(tmp_path, fsynced):
    """An index and a cache shard: each file and the staged directory are fsynced, then the parent after the swap."""
    rows = np.eye(4, dtype=np.float32)
    CandidateIndex.build(rows, list("abcd"), "m").save(tmp_path / "index")
    VectorCache(tmp_path / "cache").put(np.array([b"k" * 16], dtype="S16"), rows[:1])
    names = [Path(p).name for p in fsynced]
    for file in ("index.faiss", "creator_ids.parquet", "meta.json", "keys.npy", "vectors.npy"):
        assert file in names, fsynced
    assert fsynced.index(str(tmp_path)) > names.index("meta.json")  # the swap is flushed after the files
    assert str(tmp_path / "cache") in fsynced


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "matches.csv"
    target.write_text("the old matches")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "the old matches"
    assert [p.name for p in tmp_path.iterdir()] == ["matches.csv"]
    with atomic_path(target) as tmp:
        tmp.write_text("the new matches")
    assert target.read_text() == "the new matches"
    assert [p.name for p in tmp_path.iterdir()] == ["matches.csv"]


def _ours(directory: Path) -> str | None:
    return None if json.loads((directory / "meta.json").read_text()).get("ours") else "not ours"


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_directory_is_swapped_whole_or_not_at_all(tmp_path, monkeypatch, exchange):
    """A failure while staging leaves the old directory as it was; success swaps and removes only the old one."""
    if not exchange:  # the path taken on systems without renameat2
        monkeypatch.setattr(safe_write, "_exchange", lambda a, b: False)
    target = tmp_path / "out"
    target.mkdir()
    (target / "meta.json").write_text(json.dumps({"ours": True, "n": 1}))
    with pytest.raises(RuntimeError), staged_directory(target, _ours) as staging:
        (staging / "meta.json").write_text(json.dumps({"ours": True, "n": 2}))
        raise RuntimeError("crash while staging")
    assert json.loads((target / "meta.json").read_text())["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    with staged_directory(target, _ours) as staging:
        (staging / "meta.json").write_text(json.dumps({"ours": True, "n": 2}))
    assert json.loads((target / "meta.json").read_text())["n"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_directory_is_not_swapped_if_it_stopped_being_ours_while_staging(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "meta.json").write_text(json.dumps({"ours": True}))
    with pytest.raises(OutputRefused, match="not ours"), staged_directory(target, _ours) as staging:
        (staging / "meta.json").write_text(json.dumps({"ours": True}))
        (target / "meta.json").write_text(json.dumps({"ours": False}))  # someone else's now
    assert json.loads((target / "meta.json").read_text()) == {"ours": False}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_removal_leaves_a_directory_that_holds_anything_it_did_not_write(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for directory in (ours, theirs):
        directory.mkdir()
        (directory / "meta.json").write_text(json.dumps({"ours": directory == ours}))
    assert remove_directory(ours, _ours) is None and not ours.exists()
    assert remove_directory(theirs, _ours) == "not ours" and (theirs / "meta.json").exists()


def test_a_match_run_removes_its_own_leftovers_and_nothing_that_only_looks_like_them(
    world_dir, trained, world_index, tmp_path
):
    """Old checkpoints and an old rejects file go; a user's folder or file under the same names stays, intact."""
    from matcher.batch import run_match

    args = (world_dir / "new_campaigns.parquet", world_dir / "creators.parquet")

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder in (ours, theirs):
        folder.mkdir()
    write_rejects([Reject("campaigns", 2, "c-9", "price", "must be positive")], ours / "matches.parquet")
    (ours / ".matches.parquet.parts-0123456789abcdef").mkdir()
    (ours / ".matches.parquet.parts-0123456789abcdef" / "scored-000000.parquet").write_bytes(b"from a crashed run")
    (theirs / "matches.rejects.csv").write_text("ideas I rejected\n")
    (theirs / ".matches.parquet.parts-mine").mkdir()
    (theirs / ".matches.parquet.parts-mine" / "notes.txt").write_text("mine")

    for folder in (ours, theirs):
        report = run_match(*args, folder / "matches.parquet", trained.model_uri, world_index, chunk_size=4)
        assert not report.rejects and (folder / "matches.parquet").exists()
    # The old rejects file was removed holding its lock (another output of the same stem may share it).
    assert sorted(p.name for p in ours.iterdir()) == [
        ".matches.parquet.lock",
        ".matches.rejects.csv.lock",
        "matches.parquet",
        "matches.parquet.run.json",
    ]
    assert (theirs / "matches.rejects.csv").read_text() == "ideas I rejected\n"
    assert (theirs / ".matches.parquet.parts-mine" / "notes.txt").read_text() == "mine"


def test_outputs_get_the_permissions_a_plain_write_would_give(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "matches.csv") as tmp:
            tmp.write_text("campaign_id\n")
        with staged_directory(tmp_path / "index") as staging:
            (staging / "meta.json").write_text("{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "matches.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "index").stat().st_mode & 0o777 == 0o755


def test_an_output_path_that_is_a_link_is_refused_and_nothing_is_written_through_it(tmp_path):
    """`--out m.parquet` a link to the user's private file, or a dangling link into a folder that is not there:
    a job (root's, in a shared folder) wrote through either, replacing the file with Parquet and making the folder.
    Both are refused in one line naming the link; the file, its permissions and the folders stay as they were."""
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    precious.chmod(0o600)
    (tmp_path / "m.parquet").symlink_to(precious)
    (tmp_path / "dangling.parquet").symlink_to(tmp_path / "sub" / "created-by-link.parquet")
    (tmp_path / "index").symlink_to(tmp_path / "sub", target_is_directory=True)
    for link in ("m.parquet", "dangling.parquet"):
        refused = rf"^refusing to write the output to .*{link}: it is a symbolic link"
        with pytest.raises(OutputRefused, match=refused), atomic_path(tmp_path / link) as staged:
            staged.write_text("new")
    with pytest.raises(OutputRefused, match="index: it is a symbolic link"), staged_directory(tmp_path / "index") as d:
        (d / "meta.json").write_text("{}")
    with pytest.raises(OutputRefused, match="lock: it is a symbolic link"):  # filelock opens it to truncate
        (tmp_path / ".out.parquet.lock").symlink_to(precious)
        with safe_write.output_lock(tmp_path / "out.parquet"):
            pass
    assert precious.read_text() == "mine" and precious.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.parquet.lock",
        "dangling.parquet",
        "index",
        "m.parquet",
        "precious.txt",
    ]


def test_a_replaced_output_keeps_its_permissions(tmp_path):
    """A user's output made private (0600) came back 0644 from the next run; a file or index replaced keeps its
    mode, and a new one gets the umask's."""
    previous = os.umask(0o022)
    try:
        for name in ("own.parquet", "own.csv"):
            (tmp_path / name).write_text("last night")
            (tmp_path / name).chmod(0o600)
            with atomic_path(tmp_path / name) as tmp:
                tmp.write_text("tonight")
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
            assert (tmp_path / name).read_text() == "tonight"
        (tmp_path / "index").mkdir(mode=0o700)
        with staged_directory(tmp_path / "index") as staging:
            (staging / "meta.json").write_text("{}")
        assert (tmp_path / "index").stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(previous)


def test_reading_the_umask_never_changes_it(tmp_path):
    """`os.umask(0)` then back: for that moment a file another thread creates is writable by anyone (0666). The
    umask is read without being set where the system says it (Linux), so no file is ever made so."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc: the umask can only be read by setting it")
    previous = os.umask(0o022)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # a thread switch between the two umask calls, as under load
    modes: set[int] = set()
    done = threading.Event()

    def make_files() -> None:
        for number in range(3000):
            path = tmp_path / f"f{number}"
            path.touch()
            modes.add(path.stat().st_mode & 0o777)
        done.set()

    try:
        maker = threading.Thread(target=make_files)
        maker.start()
        while not done.is_set():
            assert safe_write._default_mode(0o666) == 0o644
        maker.join()
    finally:
        sys.setswitchinterval(interval)
        os.umask(previous)
    assert modes == {0o644}


def test_stale_temporaries_of_one_output_are_removed_and_nothing_else(tmp_path):
    """Only names of the shape `atomic_path` makes are a killed write's: the user's `.m.parquet.before-upgrade.tmp`
    was removed by the next run as one."""
    out = tmp_path / "matches.parquet"
    with atomic_path(out) as staged:
        made = staged.name
    assert made.startswith(".matches.parquet.creator-match-partial-") and made.endswith(".tmp")
    shape = ".matches.parquet.creator-match-partial-{}.tmp"
    stale = [tmp_path / shape.format("0123456789abcdef"), tmp_path / shape.format("fedcba9876543210")]
    others = [
        tmp_path / ".matches.parquet.before-upgrade.tmp",
        tmp_path / ".matches.parquet.abc123.tmp",
        tmp_path / shape.format("0123"),
        tmp_path / ".other.parquet.creator-match-partial-0123456789abcdef.tmp",
        tmp_path / "matches.parquet.tmp",
        tmp_path / "notes.tmp",
        out,
    ]
    for path in stale + others:
        path.write_text("x")
    assert safe_write.remove_stale_temporaries(out) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in others)


def fill_disk(folder: Path, leave: int) -> None:
    """Fills the file system holding `folder` (the `small_disk` fixture's) until `leave` bytes are free."""
    free = os.statvfs(folder)
    room = free.f_bavail * free.f_frsize - leave
    if room > 0:
        (folder / "ballast").write_bytes(b"\0" * room)


def test_a_csv_output_writes_a_computed_share_as_it_reads_and_the_other_formats_keep_it_exact(tmp_path):
    """A new-user trial's candidates CSV gave a creator's market share in US and CA (0.55 + 0.4) as
    0.9500000000000001. A CSV output's floats are written to 15 significant digits, so it reads 0.95; Parquet and
    JSON Lines still hold the exact values, from which a CSV value differs by at most half a unit of its 15th digit."""
    share = 0.55 + 0.4
    scores = np.random.default_rng(0).random(50)
    table = pd.DataFrame(
        {"campaign_id": [f"c{n}" for n in range(50)], "market_share": [share] * 50, "score": scores, "rank": 1}
    )
    written = {suffix: write_matches(table, tmp_path / f"m{suffix}", schema=None) for suffix in (".csv", ".jsonl")}
    write_matches(table, tmp_path / "m.parquet", schema=None)
    as_text = pd.read_csv(written[".csv"], dtype=str)
    assert set(as_text["market_share"]) == {"0.95"} and as_text["rank"].eq("1").all()
    assert as_text["score"].map(lambda text: len(text.lstrip("0.").replace(".", "").split("e")[0]) <= 15).all()
    csv = pd.read_csv(written[".csv"])
    np.testing.assert_allclose(csv["score"], scores, rtol=5e-15, atol=0)  # half a unit of the 15th digit
    for exact in (
        pd.read_parquet(tmp_path / "m.parquet"),
        pd.read_json(written[".jsonl"], lines=True, precise_float=True),
    ):
        assert exact["market_share"].eq(share).all() and exact["score"].eq(scores).all()


def test_a_write_that_fills_the_disk_names_the_output_and_leaves_what_was_there(small_disk):
    """pyarrow's `[Errno 28] Error writing bytes to file` named no file. The failure names the output in one line
    (an OSError of its errno); the file it would have replaced is as it was, and no temporary file, nor the
    folder the write made for its output (a checkpoint folder, left empty, would look like a killed run's), stays."""
    table = pd.DataFrame(
        {"campaign_id": [f"c{n}" for n in range(20_000)], "score": np.random.default_rng(0).random(20_000)}
    )
    kept = small_disk / "m.parquet"
    write_matches(table.head(10), kept, schema=None)
    before = kept.read_bytes()
    fill_disk(small_disk, 64 * 1024)
    for out in (kept, small_disk / ".m.parquet.parts-0123" / "scored-000001.parquet"):
        with pytest.raises(OSError) as failed:
            write_matches(table, out, schema=None)
        assert failed.value.errno == errno.ENOSPC
        assert str(failed.value) == f"[Errno 28] {out} could not be written: No space left on device"
    assert kept.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast", "m.parquet"]


def test_an_output_under_a_file_is_refused_in_one_line_naming_it(tmp_path):
    """A folder of the output's path that is a file (or one that cannot be written) is a refusal naming the
    output, not an OS error's name; nothing is made."""
    (tmp_path / "a-file").write_text("mine")
    target = tmp_path / "a-file" / "out" / "matches.parquet"
    refused = r"cannot be written: .*a-file is a file, not a folder$"
    with pytest.raises(OutputRefused, match=refused), safe_write.output_lock(target):
        pass
    assert (tmp_path / "a-file").read_text() == "mine"


def test_an_output_whose_folder_takes_no_new_files_is_refused_though_its_lock_file_opens(tmp_path, make_unwritable):
    """Last night's lock file still opened for writing in a folder made read-only since, so the lock was taken and
    the first write failed as an OS error. Taking the lock now tries the folder: a refusal in one line naming the
    output and the folder, the lock let go, and nothing made there."""
    target = tmp_path / "out" / "m.parquet"
    with safe_write.output_lock(target):
        pass
    folder = make_unwritable(target.parent)
    before = sorted(os.listdir(folder))
    refused = rf"^{re.escape(str(target))} cannot be written: .+ \({re.escape(str(folder))}\)$"
    with pytest.raises(OutputRefused, match=refused), safe_write.output_lock(target):
        pass
    assert sorted(os.listdir(folder)) == before
    assert not FileLock(safe_write.lock_path(target), is_singleton=True).is_locked


def test_a_dead_owner_temporary_directories_are_removed_by_the_next_and_no_others(tmp_path, monkeypatch):
    """A worker killed while loading a model, or a server killed outright, cannot remove its temporary directory;
    the next of its kind does. A directory whose owner still holds its lock stays, whatever its process id says
    (reused, or another PID namespace's over a shared /tmp), and so do other kinds', other hosts' and old ones."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    host = socket.gethostname()
    # A real owner that dies: a process that makes one, holds it, and is killed.
    script = (
        "import sys, time, tempfile; tempfile.tempdir = sys.argv[1]\n"
        "from features.safe_write import private_temp_dir\n"
        "print(private_temp_dir('creator-match-model-'), flush=True); time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    abandoned = Path(owner.stdout.readline().strip())
    (abandoned / "MLmodel").write_text("x")
    alive = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    held = Path(alive.stdout.readline().strip())
    try:
        # Its lock is held: kept even when its process id is made to look like a dead one's.
        disguised = held.with_name(f"creator-match-model-{host}-999999999-abcdef")
        held.rename(disguised)
        owner.kill()
        owner.wait(timeout=60)
        kept = [
            disguised,
            tmp_path / f"creator-match-model-otherhost-{owner.pid}-abc123",  # another machine's, in a shared folder
            tmp_path / f"creator-match-serve-{host}-{owner.pid}-abc123",  # another kind
            tmp_path / "creator-match-model-u5_werxn",  # named before owners were: unknown
        ]
        for path in kept[1:]:
            path.mkdir()

        made = private_temp_dir("creator-match-model-")

        assert not abandoned.exists()
        assert all(path.is_dir() for path in kept)
        assert made.name.startswith(f"creator-match-model-{host}-{os.getpid()}-")
        release_temp_dir(made)
        assert not made.exists()
    finally:
        alive.kill()
        alive.wait(timeout=60)


def test_an_output_over_an_input_by_any_of_its_names_is_refused_naming_both(tmp_path):
    """`check_outputs` compares where paths lead: a hard link or a symbolic link to an input, a file inside an
    input directory, or a folder holding an input is that input; distinct paths pass."""
    from features.safe_write import check_outputs

    table = tmp_path / "performance.parquet"
    table.write_bytes(b"the user's table")
    os.link(table, tmp_path / "hard.parquet")
    (tmp_path / "soft.parquet").symlink_to(table)
    (tmp_path / "idx").mkdir()
    inputs = [(table, "performance file"), (tmp_path / "idx", "index directory")]
    for output, where in (
        (tmp_path / "hard.parquet", f"over the performance file {table}"),
        (tmp_path / "soft.parquet", f"over the performance file {table}"),
        (tmp_path / "idx" / "m.parquet", f"inside the index directory {tmp_path / 'idx'}"),
        (tmp_path, f"over a folder holding the performance file {table}"),
    ):
        with pytest.raises(OutputRefused) as refused:
            check_outputs([(output, "summaries")], inputs)
        assert str(refused.value) == f"{output}: the summaries cannot be written {where}"
    with pytest.raises(OutputRefused, match="the candidates cannot be written over the matches file"):
        check_outputs([(tmp_path / "m.csv", "matches"), (tmp_path / "m.csv", "candidates")], inputs)
    check_outputs([(tmp_path / "m.csv", "matches"), (tmp_path / "c.csv", "candidates")], inputs)
    assert table.read_bytes() == b"the user's table"


def test_an_index_write_killed_with_sigkill_leaves_nothing_the_next_index_run_keeps(world_dir, world_index, tmp_path):
    """A nightly `index` killed with SIGKILL while it stages the new index (a time limit, the OOM killer) leaves
    its staging folder, a whole index's size; the next `index` on that --out removes it, as `match` removes a
    killed run's half-written files, and nothing else beside the index: not the user's own folder of a like name."""
    from tests.commands import run_in_process

    out = tmp_path / "index"
    shutil.copytree(world_index, out)
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from features.safe_write import staged_directory\n"
        "from matcher.candidate_index import why_not_an_index\n"
        "with staged_directory(Path(sys.argv[1]), why_not_an_index) as staging:\n"
        "    (staging / 'index.faiss').write_bytes(b'half an index')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert len(list(tmp_path.iterdir())) == 2, "the killed write left its staging folder beside the index"
    users = tmp_path / ".index.backup01"
    users.mkdir()
    (users / "notes.txt").write_text("mine")

    done = run_in_process("index", "--creators", str(world_dir / "creators.parquet"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.backup01", ".index.lock", "index"]
    assert (users / "notes.txt").read_text() == "mine"
