"""A batch job killed with SIGKILL at any point and run again writes the same bytes, with no duplicates.

The killed jobs are real processes (the kill is the point). The damaged-checkpoint and rebuilt-index tests resume,
each from a copy of its own, from what one such process left (`killed_after_4`): their subject is what the rerun
does with the leftovers, which are the same files whichever folder holds them. A rerun that resumes from what they
left runs the command's own `main` in this process (tests/commands.py): what it reads is the files a killed process
left, which are the same whoever reads them, and a new interpreter would add only its imports and model load. One
rerun, the damaged checkpoint's, runs through the console script: the suite's match that exits 0 so and writes a
run's bytes made in another process. The uninterrupted reference run and the candidate index every run reads (the
session's, tests/conftest.py) are made in this process too, which is not what is under test here.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from matcher.api import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV
from tests.commands import match_args, run_in_process


def checkpoint_folders(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.parts-*"))


def parts_of(out: Path) -> list[Path]:
    return [p for d in checkpoint_folders(out) for p in d.glob("scored-*.parquet")]


def job_args(world_dir: Path, index: Path, out: Path) -> list[str]:
    """The batch job under test: one campaign per committed chunk, so there are many points to be killed at."""
    return match_args(world_dir, out, "--chunk-size", "1", "--index", str(index))


@pytest.fixture(scope="module")
def reference(world_dir, trained, world_index, tmp_path_factory):
    """An uninterrupted run's bytes."""
    out = tmp_path_factory.mktemp("reference") / "matches.parquet"
    done = run_in_process(*job_args(world_dir, world_index, out)[1:])
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "it/s" not in done.stderr, "a log file (stderr not a terminal) gets no bars"
    assert not parts_of(out), "checkpoints are removed once the matches are written"
    return out.read_bytes()


def renamed_creators(world_dir: Path, ids: set[str], folder: Path) -> Path:
    """The world's creators with `ids` renamed (`gone-<id>`), as many rows as before, written to `folder`; through
    Arrow, as a pandas round trip would not write the audience maps back as they were."""
    creators = pq.read_table(world_dir / "creators.parquet")
    column = creators.column("creator_id")
    renamed = pa.array([f"gone-{i}" if i in ids else i for i in column.to_pylist()], column.type)
    path = folder / "other-creators.parquet"
    pq.write_table(creators.set_column(creators.column_names.index("creator_id"), "creator_id", renamed), path)
    return path


def kill_when_halted(
    world_dir: Path, index: Path, out: Path, chunks: int, marker: Path, how: signal.Signals = signal.SIGKILL
) -> tuple[int, str]:
    """Runs the job until it has committed `chunks` chunks and says so (the marker file), then sends it `how`
    (SIGKILL) and waits for it to end; returns its status and what it wrote on standard error."""
    log = marker.with_suffix(".err")
    with open(log, "w", encoding="utf-8") as stderr:  # the process has its own descriptor of it
        job = subprocess.Popen(
            job_args(world_dir, index, out),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, HALT_AFTER_CHUNKS_ENV: str(chunks), HALT_MARKER_ENV: str(marker)},
        )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert job.poll() is None, f"the job ended (status {job.returncode}) before it reached {chunks} chunks"
            assert time.monotonic() < deadline, f"the job did not reach {chunks} chunks within 300 s"
            time.sleep(0.05)
        job.send_signal(how)
        job.wait(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return job.returncode, log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_killed_at_every_stage_and_rerun_gives_the_same_bytes(world_dir, world_index, reference, tmp_path):
    """One output, stopped again and again: killed once the models and index are loaded and nothing is scored,
    stopped by SIGTERM after 3 chunks, killed with all but the last and with all of them (the matches not yet
    written). Each run resumes from what the stopped one committed, so every kind of partial state is resumed from
    once; the run that is finally let finish writes the uninterrupted run's bytes.

    The SIGTERM is a new-user trial's: `kill -TERM` during scoring ended the run with 143 and not a line on stderr.
    Now one line says it was stopped, after how many chunks, where the files beside the output stand and that a
    rerun resumes; the run leaves no half-written file, and the rerun (the next stage's) says it resumes. One run
    of the stages rather than a SIGTERM test of its own: each stop is a process's imports and model load."""
    out = tmp_path / "matches.parquet"
    n_chunks = len(pd.read_parquet(world_dir / "new_campaigns.parquet").query("in_stock"))
    stages = [0, 3, n_chunks - 1, n_chunks]
    assert stages == sorted(set(stages)), f"the world needs more than 4 in-stock campaigns; got {n_chunks}"
    for stage in stages:
        # The job itself says when it got there, and waits to be stopped: no guessed delay.
        how = signal.SIGTERM if stage == 3 else signal.SIGKILL
        status, stderr = kill_when_halted(world_dir, world_index, out, stage, tmp_path / f"halted-{stage}", how)
        assert not out.exists(), f"no partial output may appear before the run completes (stopped at {stage})"
        assert len(parts_of(out)) == stage, f"stopped at {stage} chunks"
        if how == signal.SIGTERM:
            assert status == 143, stderr[-2000:]
            assert "Traceback" not in stderr
            assert stderr.splitlines()[-1] == (
                f"creator-match: stopped by SIGTERM after scoring 3 of {n_chunks} chunks; nothing beside {out} was "
                "replaced; creator-match verify exits 1 until a run finishes: the same command resumes from the 3 "
                "chunks kept"
            )
            # No half-written file: the lock, the chunks kept, and the marker that says the run did not finish.
            left = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".matches.parquet"))
            kept = checkpoint_folders(out)[0].name
            assert left == [".matches.parquet.lock", kept, ".matches.parquet.run-started.json"]
        elif stage == n_chunks - 1:  # the run after the SIGTERM's
            resumed = f"creator-match: resuming: 3 of {n_chunks} chunks were scored by a run that did not finish"
            assert resumed in stderr, stderr[-2000:]
    done = run_in_process(*job_args(world_dir, world_index, out)[1:])
    assert done.returncode == 0, done.stderr
    # It resumed silently; it says so now, in one line, before scoring.
    resumed = [line for line in done.stderr.splitlines() if "resum" in line]
    assert len(resumed) == 1 and resumed[0].startswith(
        f"creator-match: resuming: {n_chunks} of {n_chunks} chunks were scored by a run that did not finish (the "
        "last one started at "
    ), done.stderr
    assert out.read_bytes() == reference
    matches = pd.read_parquet(out)
    assert not matches.duplicated(["campaign_id", "creator_id"]).any()
    assert not checkpoint_folders(out), "the checkpoints are removed once the matches are written"


@pytest.fixture(scope="module")
def killed_after_4(world_dir, trained, world_index, tmp_path_factory) -> Path:
    """The folder of a run of the job on the session's index killed (SIGKILL) after 4 chunks: what it left beside
    its `matches.parquet`, which each test that resumes from it copies (`left_by_the_killed_run`). One killed
    process for the tests whose subject is what a rerun does with such leftovers, not the kill."""
    folder = tmp_path_factory.mktemp("killed-after-4")
    kill_when_halted(world_dir, world_index, folder / "matches.parquet", 4, tmp_path_factory.mktemp("halted") / "4")
    return folder


def left_by_the_killed_run(killed: Path, folder: Path) -> Path:
    """The killed run's leftovers (lock file, run marker, checkpoint folder) copied beside `folder`'s
    `matches.parquet`, which is returned: the same state, since nothing in it names the folder it is in."""
    for path in killed.iterdir():
        if path.is_dir():
            shutil.copytree(path, folder / path.name)
        else:
            shutil.copy2(path, folder / path.name)
    return folder / "matches.parquet"


@pytest.mark.slow
def test_a_damaged_checkpoint_is_scored_again_with_a_warning_naming_it(
    world_dir, world_index, reference, killed_after_4, tmp_path
):
    """Killed after 4 chunks, one of them then cut short (`truncate -s 100`): every rerun failed with `ArrowInvalid:
    ... Parquet magic bytes not found`. Checkpoints are the job's own cache: the chunk is scored again, with one
    warning line naming it, and the run writes the uninterrupted run's bytes."""
    out = left_by_the_killed_run(killed_after_4, tmp_path)
    assert len(parts_of(out)) == 4
    damaged = sorted(parts_of(out))[2]
    with open(damaged, "r+b") as handle:
        handle.truncate(100)
    # Through the console script: the suite's match that exits 0 so, its bytes against a run made in another process.
    done = subprocess.run(job_args(world_dir, world_index, out), capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if str(damaged) in line]
    assert len(warned) == 1, done.stderr
    assert warned[0].startswith(f"creator-match: warning: {damaged}: a checkpoint that cannot be read (")
    assert "magic bytes not found" in warned[0] and warned[0].endswith("); its chunk is scored again")
    assert out.read_bytes() == reference
    assert not checkpoint_folders(out)


@pytest.mark.slow
def test_a_rerun_after_the_index_was_rebuilt_in_place_scores_on_the_rebuilt_index(
    world_dir, world_index, reference, killed_after_4, tmp_path
):
    """Killed after 4 chunks; `creator-match index --out` then rebuilds the same directory from other creators
    (as many: an index records its count); the same command run again writes an uninterrupted run's bytes on the
    rebuilt index. Before, the checkpoint folder was named after the index's model and kind only, so the rerun
    kept the 4 chunks scored on the old index and wrote slates it would never have made.

    The killed run read the session's index; this test's is a copy of it with its files' times kept, which names
    the same checkpoint folder (`test_the_checkpoint_folder_is_named_after_what_the_index_holds_not_where_it_is`),
    so that before the rebuild the killed run's chunks are this index's (the damaged-checkpoint test resumes them)."""
    index = tmp_path / "index"
    shutil.copytree(world_index, index)  # copy2: modification times kept
    assert (index / "index.faiss").stat().st_mtime_ns == (world_index / "index.faiss").stat().st_mtime_ns
    out = left_by_the_killed_run(killed_after_4, tmp_path)
    assert len(parts_of(out)) == 4
    # Every creator the old index put on a slate leaves it, replaced by another id: same count, other holdings.
    other = renamed_creators(world_dir, set(pd.read_parquet(io.BytesIO(reference))["creator_id"]), tmp_path)
    rebuilt = run_in_process("index", "--creators", str(other), "--out", str(index))
    assert rebuilt.returncode == 0, rebuilt.stderr

    resumed = run_in_process(*job_args(world_dir, index, out)[1:])
    assert resumed.returncode == 0, resumed.stderr
    fresh = tmp_path / "fresh.parquet"
    uninterrupted = run_in_process(*job_args(world_dir, index, fresh)[1:])
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert fresh.read_bytes() != reference, "the rebuilt index gives other slates"
    assert out.read_bytes() == fresh.read_bytes()
    assert not checkpoint_folders(out), "the old index's checkpoints are removed with the run's own"


def test_the_checkpoint_folder_is_named_after_what_the_index_holds_not_where_it_is(
    world_dir, trained, world_index, embedder, tmp_path
):
    """A copy of the index elsewhere, its files' times kept, names the same checkpoint folder, so a run given it
    resumes; an index of other creators names another. An index built on the fly names the same folder on every
    run (its build time is not part of the name) and another for a creators file with other bytes. Every matcher
    here embeds with the session's model (tests/conftest.py), whose vectors each build on the fly after the first
    reads from memory: the names are the subject, not the embedding."""
    from features.tables import read_table
    from matcher.api import Matcher
    from matcher.batch import _fingerprint
    from training.registry import load_ranker

    ranker = load_ranker("models:/creator-ranker@champion")
    campaigns, creators = world_dir / "new_campaigns.parquet", world_dir / "creators.parquet"
    table = read_table(creators, "creators")

    def folder(index: Path | None, creators_file: Path = creators) -> str:
        source = table if creators_file == creators else read_table(creators_file, "creators")
        matcher = Matcher(source, model=ranker, index=index, embedder=embedder)
        return _fingerprint(campaigns, creators_file, matcher, 1, index)

    copy = tmp_path / "copy"
    shutil.copytree(world_index, copy)  # copy2: modification times kept
    other = tmp_path / "other"
    others = renamed_creators(world_dir, set(table.frame["creator_id"].iloc[:50]), tmp_path)
    assert run_in_process("index", "--creators", str(others), "--out", str(other)).returncode == 0
    assert folder(copy) == folder(world_index)
    assert folder(other) != folder(world_index)
    built = folder(None)
    assert folder(None) == built
    assert folder(None, others) != built
