"""The run record beside a `match` output says which files are one complete run's, and `verify` checks them.

The runs are real `creator-match match` runs on the session's world, index and ranker (tests/conftest.py); the one
killed between its matches and its rejects is a real process, stopped where it says it is and killed with SIGKILL.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.environment import HALT_AFTER_CHUNKS_ENV, HALT_BEFORE_REJECTS_ENV, HALT_MARKER_ENV
from matcher.batch import write_matches
from matcher.run_record import (
    RUN_MARKER_FORMAT,
    RUN_RECORD_FORMAT,
    RunMismatch,
    record_run,
    replacing_run,
    run_marker_path,
    run_record_path,
    verify_run,
)
from tests.commands import match_args, run_in_process
from tests.features.test_safe_write import fill_disk


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def own_rows_digest(rejects: Path, output: str) -> tuple[int, str]:
    """The documented canonical form, computed here on its own: `output`'s rows in file order, each the compact
    JSON array of its columns' text, one a line, UTF-8."""
    digest, rows = hashlib.sha256(), 0
    with open(rejects, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        for row in reader:
            if row[header.index("output")] == output:
                digest.update(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
                rows += 1
    return rows, digest.hexdigest()


@pytest.fixture(scope="module")
def bad_campaigns(world_dir, tmp_path_factory) -> Path:
    """The world's new campaigns with one bad row (a negative price): a run of them has rejects to write."""
    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    campaigns.loc[1, "price"] = -1.0
    path = tmp_path_factory.mktemp("bad") / "bad-campaigns.parquet"
    campaigns.to_parquet(path)
    return path


def match(world_dir: Path, world_index: Path, trained, out: Path, *extra: str, campaigns: Path | None = None):
    """`creator-match match` on the session's world (or `campaigns`), index and ranker, in this process."""
    args = match_args(world_dir, out, "--index", str(world_index), "--model", trained.model_uri, *extra)[1:]
    if campaigns is not None:
        args[args.index("--campaigns") + 1] = str(campaigns)
    return run_in_process(*args)


def verify(out: Path):
    return run_in_process("verify", "--out", str(out))


@pytest.mark.slow
def test_a_complete_run_writes_a_record_whose_digests_are_those_of_the_files_on_disk(
    world_dir, world_index, trained, bad_campaigns, tmp_path
):
    """Every file the run wrote is named with its size and SHA-256 (relative beside the record, absolute
    elsewhere), its rows of the rejects file with their count and digest; `verify` agrees, in one line."""
    out, elsewhere = tmp_path / "out" / "m.parquet", tmp_path / "review"
    candidates, summaries = elsewhere / "candidates.parquet", out.with_name("summaries.csv")
    done = match(
        world_dir,
        world_index,
        trained,
        out,
        "--candidates-out",
        str(candidates),
        "--summaries-out",
        str(summaries),
        campaigns=bad_campaigns,
    )
    assert done.returncode == 2, done.stderr  # the bad row's exit status; every output was written
    record = json.loads(run_record_path(out).read_text(encoding="utf-8"))
    assert run_record_path(out).name == "m.parquet.run.json"

    assert record["format"] == RUN_RECORD_FORMAT and record["version"] == 1 and record["output"] == "m.parquet"
    assert dt.datetime.fromisoformat(record["finished_at"]).utcoffset() == dt.timedelta(0)
    assert record["model_version"] == f"{trained.model_name}/{trained.version}"
    matched = pd.read_parquet(out)["campaign_id"].nunique()
    campaigns_read = len(pd.read_parquet(bad_campaigns))
    assert record["counts"] == {"campaigns_read": campaigns_read, "campaigns_matched": matched, "rows_rejected": 1}
    assert [(f["role"], f["path"]) for f in record["files"]] == [
        ("candidates", str(candidates)),
        ("summaries", "summaries.csv"),
        ("matches", "m.parquet"),
    ]
    for entry, path in zip(record["files"], (candidates, summaries, out), strict=True):
        assert (entry["size"], entry["sha256"]) == (path.stat().st_size, sha256(path)), path
    rejects = out.with_name("m.rejects.csv")
    rows, digest = own_rows_digest(rejects, "m.parquet")
    assert record["rejects"] == {"path": "m.rejects.csv", "rows": 1, "sha256": digest} and rows == 1
    # Which inputs made the outputs: added fields, each file with its size and digest, the index with its build.
    assert dt.datetime.fromisoformat(record["started_at"]) <= dt.datetime.fromisoformat(record["finished_at"])
    creators = world_dir / "creators.parquet"
    assert record["inputs"] == [
        {"role": "campaigns", "path": str(bad_campaigns), "size": bad_campaigns.stat().st_size,
         "sha256": sha256(bad_campaigns)},
        {"role": "creators", "path": str(creators), "size": creators.stat().st_size, "sha256": sha256(creators)},
    ]  # fmt: skip
    built_at = json.loads((world_index / "meta.json").read_text(encoding="utf-8"))["built_at"]
    assert record["index"] == {"path": str(world_index), "built_at": built_at}
    assert record["as_of"] is None  # scored on the records logged at training, which no day of this run settled

    checked = verify(out)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count("\n") == 1 and record["finished_at"] in checked.stdout, checked.stdout
    assert f"read campaigns {bad_campaigns} (sha256 {sha256(bad_campaigns)[:12]})" in checked.stdout
    assert verify_run(out).files[-1].sha256 == sha256(out)

    clean = tmp_path / "clean" / "m.parquet"
    assert match(world_dir, world_index, trained, clean).returncode == 0
    assert json.loads(run_record_path(clean).read_text(encoding="utf-8"))["rejects"] is None, "no rejects: said so"
    assert verify(clean).returncode == 0


def test_the_record_names_the_day_the_runs_records_were_settled_by_given_or_not(
    world_dir, world_index, trained, tmp_path
):
    """A new-user trial's `match --performance` rerun after midnight gave other slates, the records being settled as
    of another day, and nothing on record said why. The record names the day the run read the records as of:
    `--as-of` when given, else the day the run took (today, resolved once), and `verify`'s line says it."""
    performance = str(world_dir / "performance.parquet")
    given = tmp_path / "given" / "m.parquet"
    assert (
        match(world_dir, world_index, trained, given, "--performance", performance, "--as-of", "2026-06-01").returncode
        == 0
    )
    assert json.loads(run_record_path(given).read_text(encoding="utf-8"))["as_of"] == "2026-06-01"
    assert verify_run(given).as_of == "2026-06-01" and "records as of 2026-06-01" in verify(given).stdout

    today = tmp_path / "today" / "m.parquet"
    before = dt.date.today()
    assert match(world_dir, world_index, trained, today, "--performance", performance).returncode == 0
    days = {before.isoformat(), dt.date.today().isoformat()}  # a run across midnight took one of the two
    assert json.loads(run_record_path(today).read_text(encoding="utf-8"))["as_of"] in days


def kill_before_rejects(
    world_dir: Path, world_index: Path, out: Path, marker: Path, how: signal.Signals = signal.SIGKILL
) -> subprocess.Popen:
    """Runs a clean match of the world as a process until it has written its matches and says so, before its
    rejects are settled; then sends it `how` (SIGKILL) and waits for it to end. Returns the ended process, its
    standard error read into `stderr`."""
    job = subprocess.Popen(
        match_args(world_dir, out, "--index", str(world_index)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, HALT_BEFORE_REJECTS_ENV: "1", HALT_MARKER_ENV: str(marker)},
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert job.poll() is None, f"the job ended (status {job.returncode}) before it wrote its matches"
            assert time.monotonic() < deadline, "the job did not write its matches within 300 s"
            time.sleep(0.05)
        job.send_signal(how)
        job.stderr = job.communicate(timeout=120)[1]
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return job


@pytest.mark.slow
def test_a_run_killed_after_its_matches_before_its_rejects_leaves_no_record(
    world_dir, world_index, trained, bad_campaigns, tmp_path
):
    """Last night's run had a bad row; tonight's clean run is killed once its matches are replaced, before it drops
    last night's rejects. The new matches now stand beside the old rejects, and there is no record: `verify`
    says so (exit 1). A run let finish brings the record back, and the rejects with it."""
    out = tmp_path / "m.parquet"
    assert match(world_dir, world_index, trained, out, campaigns=bad_campaigns).returncode == 2
    last_night = out.read_bytes()
    assert verify(out).returncode == 0

    pid = kill_before_rejects(world_dir, world_index, out, tmp_path / "halted").pid
    assert out.read_bytes() != last_night, "the killed run had replaced the matches"
    assert out.with_name("m.rejects.csv").exists(), "and not yet settled its rejects"
    assert not run_record_path(out).exists()
    started = json.loads(run_marker_path(out).read_text(encoding="utf-8"))["started_at"]
    checked = verify(out)
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"creator-match: {out}: a run started at {started} (pid {pid}) did not finish (killed?) while replacing its "
        "files: they are not one complete run's; rerun match"
    ]

    assert match(world_dir, world_index, trained, out).returncode == 0
    assert not out.with_name("m.rejects.csv").exists()
    assert verify(out).returncode == 0


@pytest.mark.slow
def test_sigterm_while_replacing_the_outputs_says_they_are_no_complete_runs(
    world_dir, world_index, trained, bad_campaigns, tmp_path
):
    """Stopped by SIGTERM once its matches are replaced, before its rejects are settled: exit 143 and one line
    saying the files beside the output are not one complete run's (last night's rejects beside tonight's
    matches); `verify` says the run did not finish while replacing them."""
    out = tmp_path / "m.parquet"
    assert match(world_dir, world_index, trained, out, campaigns=bad_campaigns).returncode == 2
    job = kill_before_rejects(world_dir, world_index, out, tmp_path / "halted", signal.SIGTERM)
    assert job.returncode == 143, job.stderr[-2000:]
    assert job.stderr.splitlines()[-1] == (  # the world's 12 campaigns are one chunk of 256
        f"creator-match: stopped by SIGTERM while replacing its outputs; some of its outputs were replaced: the "
        f"files beside {out} are not one complete run's; creator-match verify exits 1 until a run finishes: the "
        "same command resumes from the 1 chunk kept"
    )
    assert out.with_name("m.rejects.csv").exists() and not run_record_path(out).exists()
    checked = verify(out)
    assert checked.returncode == 1
    assert checked.stderr.endswith(
        "did not finish (killed?) while replacing its files: they are not one complete run's; rerun match\n"
    )


def nightly(world_dir: Path, world_index: Path, out: Path, *extra: str) -> list[str]:
    """The nightly job of the trial: the world's match, one campaign per committed chunk."""
    return match_args(world_dir, out, "--index", str(world_index), "--chunk-size", "1", *extra)


def halted_run(world_dir: Path, world_index: Path, out: Path, chunks: int, halted: Path, *extra: str):
    """A clean match of the world as a process, one campaign per chunk, stopped where it says it has committed
    `chunks` chunks (its marker file), and left there for the caller to signal; its stderr goes to a file."""
    log = halted.with_suffix(".err")
    with open(log, "w", encoding="utf-8") as stderr:  # the process has its own descriptor of it
        job = subprocess.Popen(
            nightly(world_dir, world_index, out, *extra),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, HALT_AFTER_CHUNKS_ENV: str(chunks), HALT_MARKER_ENV: str(halted)},
        )
    deadline = time.monotonic() + 300
    while not halted.exists():
        if job.poll() is not None or time.monotonic() > deadline:
            job.kill()
            job.wait()
            pytest.fail(f"the job did not reach {chunks} chunks (status {job.returncode}): {log.read_text()[-2000:]}")
        time.sleep(0.05)
    return job, log


def ended(job: subprocess.Popen, how: signal.Signals) -> int:
    """Sends `how` and waits for the process to end, boundedly; its status as the shell gives it (143, 137)."""
    job.send_signal(how)
    try:
        code = job.wait(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return 128 - code if code < 0 else code


@pytest.mark.slow
def test_verify_says_a_run_is_writing_and_that_a_stopped_one_did_not_finish_while_the_files_stay_last_nights(
    world_dir, world_index, trained, tmp_path
):
    """A new-user trial: 12 s into a nightly run, still scoring, `verify` said exit 0 naming the run before; after
    the run's SIGTERM (143), and after kill -9 while scoring, too. Now, while a run holds the output, `verify` says
    a run is writing it, with its pid; once it is stopped, that a run started then did not finish, and that the
    files are still the last complete run's, which are left whole. A run refused meanwhile leaves that said; the
    run let finish resumes, and `verify` passes again."""
    out = tmp_path / "m.parquet"
    assert run_in_process(*nightly(world_dir, world_index, out)[1:]).returncode == 0
    night1 = {path: path.read_bytes() for path in (out, run_record_path(out))}
    finished = json.loads(night1[run_record_path(out)])["finished_at"]
    assert not run_marker_path(out).exists(), "a finished run leaves no marker"

    job, log = halted_run(world_dir, world_index, out, 2, tmp_path / "halted-2")
    marker = json.loads(run_marker_path(out).read_text(encoding="utf-8"))
    assert marker["format"] == RUN_MARKER_FORMAT and (marker["output"], marker["pid"]) == ("m.parquet", job.pid)
    checked = verify(out)
    assert (checked.returncode, checked.stdout) == (1, "")
    assert checked.stderr.splitlines() == [
        f"creator-match: a run is writing {out} (pid {job.pid}, started at {marker['started_at']}); verify again "
        "once it has finished"
    ]
    with pytest.raises(RunMismatch, match="a run is writing"):
        verify_run(out)

    assert ended(job, signal.SIGTERM) == 143
    n_chunks = len(pd.read_parquet(world_dir / "new_campaigns.parquet").query("in_stock"))
    assert log.read_text().splitlines()[-1] == (
        f"creator-match: stopped by SIGTERM after scoring 2 of {n_chunks} chunks; the files beside {out} are still "
        f"those of the run finished at {finished}; creator-match verify exits 1 until a run finishes: the same "
        "command resumes from the 2 chunks kept"
    )
    did_not_finish = (
        f"creator-match: {out}: a run started at {marker['started_at']} (pid {job.pid}) did not finish (killed?); "
        f"the files are still those of the run finished at {finished}, whole and unchanged: rerun match"
    )
    checked = verify(out)
    assert (checked.returncode, checked.stderr.splitlines()) == (1, [did_not_finish])
    assert {path: path.read_bytes() for path in night1} == night1, "last night's files and record are left whole"

    # A run refused (no such model) puts back the marker it found: the run that did not finish is still told.
    kept = run_marker_path(out).read_bytes()
    refused = match(world_dir, world_index, trained, out, "--model", str(tmp_path / "no-such-model"))
    assert refused.returncode == 2, refused.stderr
    assert run_marker_path(out).read_bytes() == kept
    assert verify(out).stderr.splitlines() == [did_not_finish]

    # kill -9 while scoring: the rerun said nothing of the chunks it took over; it names them now, in one line.
    job, log = halted_run(world_dir, world_index, out, 4, tmp_path / "halted-4")
    resumed = [line for line in log.read_text().splitlines() if "resuming" in line]
    assert resumed == [
        f"creator-match: resuming: 2 of {n_chunks} chunks were scored by a run that did not finish (the last one "
        f"started at {marker['started_at']}), kept in {next(tmp_path.glob('.m.parquet.parts-*'))}"
    ]
    second = json.loads(run_marker_path(out).read_text(encoding="utf-8"))
    assert ended(job, signal.SIGKILL) == 137
    checked = verify(out)
    assert checked.returncode == 1
    assert checked.stderr.startswith(
        f"creator-match: {out}: a run started at {second['started_at']} (pid {job.pid}) did not finish (killed?); "
        f"the files are still those of the run finished at {finished}"
    ), checked.stderr
    assert {path: path.read_bytes() for path in night1} == night1

    # The run let finish, by the command's own `main` in this process: the killed runs above were the processes.
    done = run_in_process(*nightly(world_dir, world_index, out)[1:])
    assert done.returncode == 0, done.stderr
    assert f"creator-match: resuming: 4 of {n_chunks} chunks were scored" in done.stderr
    assert out.read_bytes() == night1[out], "the same inputs: the same bytes, however often interrupted"
    assert not run_marker_path(out).exists()
    checked = verify(out)
    assert checked.returncode == 0, checked.stderr
    record = json.loads(run_record_path(out).read_text(encoding="utf-8"))
    assert record["finished_at"] != finished and record["finished_at"] in checked.stdout


@pytest.mark.slow
def test_a_changed_file_fails_verify_naming_it(world_dir, world_index, trained, tmp_path):
    """The matches rewritten by hand (a row dropped), or a summaries file changed in place to the same size."""
    out, summaries = tmp_path / "m.parquet", tmp_path / "s.csv"
    assert match(world_dir, world_index, trained, out, "--summaries-out", str(summaries)).returncode == 0
    assert verify(out).returncode == 0

    text = summaries.read_bytes()
    summaries.write_bytes(text[:-2] + (b"x" if text[-2:-1] != b"x" else b"y") + text[-1:])
    checked = verify(out)
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"creator-match: {summaries}: its SHA-256 differs from the one recorded beside {out}: it was changed since "
        "the run"
    ]
    summaries.write_bytes(text)

    matches = pd.read_parquet(out)
    matches.iloc[1:].to_parquet(out, index=False)
    checked = verify(out)
    assert checked.returncode == 1 and len(checked.stderr.splitlines()) == 1
    assert checked.stderr.startswith(f"creator-match: {out}: ") and "Traceback" not in checked.stderr
    with pytest.raises(RunMismatch, match="changed since"):
        verify_run(out)


@pytest.mark.slow
def test_an_earlier_runs_summaries_and_candidates_left_beside_the_matches_fail_verify_until_moved(
    world_dir, world_index, trained, tmp_path
):
    """A new-user trial: night 1 wrote m.parquet with --summaries-out and --candidates-out, night 2 without, and
    `verify` said exit 0 "1 file" with night 1's summaries and candidates still beside night 2's matches. They stay
    where they are (nothing of the user's is deleted); the record names them as an earlier run's, and `verify`
    fails naming each while it is there, until it is moved away."""
    out, summaries, candidates = tmp_path / "m.parquet", tmp_path / "summaries.csv", tmp_path / "candidates.parquet"
    extra = ("--summaries-out", str(summaries), "--candidates-out", str(candidates))
    assert match(world_dir, world_index, trained, out, *extra).returncode == 0
    night1 = json.loads(run_record_path(out).read_text(encoding="utf-8"))["finished_at"]
    kept = {path: sha256(path) for path in (summaries, candidates)}

    assert match(world_dir, world_index, trained, out).returncode == 0
    assert {path: sha256(path) for path in kept} == kept, "night 1's files are left as they were"
    record = json.loads(run_record_path(out).read_text(encoding="utf-8"))
    assert [file["role"] for file in record["files"]] == ["matches"]
    assert record["earlier_files"] == [
        {"role": "candidates", "path": "candidates.parquet", "finished_at": night1},
        {"role": "summaries", "path": "summaries.csv", "finished_at": night1},
    ]
    checked = verify(out)
    assert checked.returncode == 1 and not checked.stdout
    assert checked.stderr.splitlines() == [
        f"creator-match: {candidates}: the candidates of an earlier run (finished at {night1}), not of the run "
        f"recorded beside {out}, which wrote no candidates; move it away, or rerun match with --candidates-out "
        f"{candidates}"
    ]
    candidates.rename(tmp_path / "night1-candidates.parquet")
    checked = verify(out)
    assert checked.returncode == 1
    earlier = f"creator-match: {summaries}: the summaries of an earlier run (finished at {night1})"
    assert checked.stderr.startswith(earlier), checked.stderr

    # Night 3 writes its summaries elsewhere: night 1's, still there, are named again, carried from night 2's record.
    elsewhere = tmp_path / "s3.csv"
    assert match(world_dir, world_index, trained, out, "--summaries-out", str(elsewhere)).returncode == 0
    record = json.loads(run_record_path(out).read_text(encoding="utf-8"))
    assert record["earlier_files"] == [{"role": "summaries", "path": "summaries.csv", "finished_at": night1}]
    checked = verify(out)
    assert checked.returncode == 1 and f"which wrote its summaries to {elsewhere}; move it away" in checked.stderr

    summaries.rename(tmp_path / "night1-summaries.csv")
    checked = verify(out)
    assert checked.returncode == 0, checked.stderr
    assert "2 files" in checked.stdout


def all_rejected_creators(world_dir: Path, folder: Path) -> Path:
    """The world's creators, every one with a negative follower count: a table with no valid row."""
    creators = pq.read_table(world_dir / "creators.parquet")
    column = creators.column_names.index("followers")
    negative = pa.array([-5] * len(creators), creators.schema.field("followers").type)
    path = folder / "rejected-creators.parquet"
    pq.write_table(creators.set_column(column, "followers", negative), path)
    return path


@pytest.mark.slow
def test_the_rejects_file_shared_with_another_output_keeps_each_record_valid(
    world_dir, world_index, trained, bad_campaigns, tmp_path
):
    """`m.csv` rewriting `m.rejects.csv` with its own rows, and dropping them, leaves `m.parquet`'s rows and their
    digest as they were. A run of `m.parquet` refused for want of a valid creator leaves its outputs and their
    record, but writes its rejects: `verify` then reports that the rejects are not those of the recorded run."""
    parquet, text = tmp_path / "m.parquet", tmp_path / "m.csv"
    shared = tmp_path / "m.rejects.csv"
    assert match(world_dir, world_index, trained, parquet, campaigns=bad_campaigns).returncode == 2
    before = shared.read_bytes()

    assert match(world_dir, world_index, trained, text, campaigns=bad_campaigns).returncode == 2
    assert shared.read_bytes() != before and set(pd.read_csv(shared)["output"]) == {"m.csv", "m.parquet"}
    assert verify(parquet).returncode == 0, verify(parquet).stderr
    assert verify(text).returncode == 0, verify(text).stderr

    assert match(world_dir, world_index, trained, text).returncode == 0  # a clean run drops m.csv's rows
    assert shared.read_bytes() == before
    assert verify(parquet).returncode == 0 and verify(text).returncode == 0

    matches = parquet.read_bytes()
    creators = all_rejected_creators(world_dir, tmp_path)
    refused = run_in_process(
        "match",
        "--campaigns",
        str(world_dir / "new_campaigns.parquet"),
        "--creators",
        str(creators),
        "--out",
        str(parquet),
        "--index",
        str(world_index),
    )
    assert refused.returncode == 2 and "no valid creator rows" in refused.stderr, refused.stderr
    assert parquet.read_bytes() == matches, "the matches were left as they were"
    checked = verify(parquet)
    assert checked.returncode == 1
    rows = len(pd.read_csv(shared).query("output == 'm.parquet'"))
    assert checked.stderr.splitlines() == [
        f"creator-match: {shared}: its {rows} rows for m.parquet differ from the 1 the run recorded beside "
        f"{parquet} wrote: they were written since, by another run"
    ]
    assert verify(text).returncode == 0, "m.csv's run, which has no rejects, is still whole"


def test_an_empty_batch_is_recorded_without_a_model(world_dir, world_index, trained, tmp_path):
    """A campaigns table with a header alone is matched without loading a model: the record says none was."""
    campaigns = tmp_path / "none.parquet"
    pd.read_parquet(world_dir / "new_campaigns.parquet").iloc[:0].to_parquet(campaigns)
    out = tmp_path / "m.jsonl"
    assert match(world_dir, world_index, trained, out, campaigns=campaigns).returncode == 0
    record = verify_run(out)
    assert (record.model_version, record.campaigns_read, record.campaigns_matched) == (None, 0, 0)
    assert record.files[0].size == 0 and record.rejects is None
    checked = verify(out)
    assert checked.returncode == 0 and "model none: no valid campaign" in checked.stdout, checked.stdout


@pytest.mark.parametrize("foreign", [b"my notes\n", b'{"format": "someone else\'s"}\n', b"\xff\xfe"])
def test_a_users_file_at_the_record_path_is_refused_and_left_as_it_was(
    world_dir, world_index, trained, tmp_path, foreign
):
    """Refused in one line before anything is written; `verify` names it too."""
    out = tmp_path / "m.parquet"
    theirs = run_record_path(out)
    theirs.write_bytes(foreign)

    done = match(world_dir, world_index, trained, out)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f'creator-match: refusing to replace {theirs}: it is not a run record of creator-match (no "format": '
        f'"{RUN_RECORD_FORMAT}"); move it, or write the output elsewhere'
    ]
    assert theirs.read_bytes() == foreign
    assert sorted(path.name for path in tmp_path.iterdir()) == [theirs.name], "refused before writing anything"

    checked = verify(out)
    assert checked.returncode == 1 and len(checked.stderr.splitlines()) == 1
    assert str(theirs) in checked.stderr and "not a run record" in checked.stderr


def test_a_run_whose_first_write_fills_the_disk_keeps_the_record_of_the_files_it_left(small_disk):
    """A complete run's files, then a rerun on a disk with 200 KB free: its first write failed (`[Errno 28] Error
    writing bytes to file`, naming no file), replacing nothing, yet the record was gone and `verify` rejected the
    intact files. The record is put back; once a file is replaced and a later write fails, there is none."""
    out, summaries = small_disk / "m.parquet", small_disk / "s.csv"
    write_matches(pd.DataFrame({"campaign_id": ["c1"]}), summaries, schema=None)
    write_matches(pd.DataFrame({"campaign_id": ["c1"]}), out, schema=None)
    record_run(out, [(summaries, "summaries"), (out, "matches")], "creator-ranker/1", 1, 1, 0, had_rejects=False)
    record = run_record_path(out).read_bytes()
    fill_disk(small_disk, 200 * 1024)
    tonight = pd.DataFrame({"campaign_id": [f"c{n}" for n in range(100_000)]})
    failed = f"^\\[Errno 28\\] {summaries} could not be written: No space left on device$"
    with pytest.raises(OSError, match=failed), replacing_run(out, [summaries, out]):
        write_matches(tonight, summaries, schema=None)
    assert run_record_path(out).read_bytes() == record
    assert verify_run(out).output == "m.parquet"
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast", "m.parquet", "m.parquet.run.json", "s.csv"]
    with pytest.raises(OSError, match="No space left on device"), replacing_run(out, [summaries, out]):
        write_matches(tonight.head(2), summaries, schema=None)
        write_matches(tonight, out, schema=None)
    assert not run_record_path(out).exists()
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast", "m.parquet", "s.csv"]


def test_verify_refuses_unusable_arguments_with_exit_status_2(tmp_path):
    for out, why in [(tmp_path, "is a directory"), (tmp_path / "m.txt", "unknown output format '.txt'")]:
        done = verify(out)
        assert done.returncode == 2
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"creator-match: {out}: {why}"), lines
    missing = verify(tmp_path / "never.parquet")
    assert missing.returncode == 1 and "no run record beside" in missing.stderr
    # A mistyped folder could still be a first run's that has not made it yet (exit 1, as a run writing), but the
    # line says that no folder is there, which a run record's absence alone did not.
    nowhere = verify(tmp_path / "nothere" / "m.parquet")
    assert nowhere.returncode == 1
    assert nowhere.stderr.splitlines() == [
        f"creator-match: no folder {tmp_path / 'nothere'} for m.parquet: no run has written there (is the path "
        "right?), or the first is still loading its model"
    ]


@pytest.mark.slow
def test_a_campaigns_file_replaced_after_the_run_read_it_is_refused_not_recorded_or_resumed(
    world_dir, world_index, trained, bad_campaigns, tmp_path
):
    """The upstream export replacing tonight's campaigns file while the run loads its model, after the run read
    it: the run scored the campaigns it read but recorded the new file's digest, and filed its chunks under the new
    file's fingerprint, so a rerun after a kill resumed them into a mix of two files' campaigns that verify passed.
    Now the run is refused in one line naming the file, before it scores anything."""
    from features.tables import InputError
    from matcher.batch import checkpoint_directories, run_match

    campaigns = tmp_path / "campaigns.parquet"
    campaigns.write_bytes(bad_campaigns.read_bytes())
    changed = pd.read_parquet(bad_campaigns)
    changed.loc[0, "brief"] = "Dog food, chew toys and cat trees for every pet in the house."
    tonight = tmp_path / "tonight.parquet"
    changed.to_parquet(tonight)

    def export_lands(rejects) -> None:  # called once the tables are read, before the model loads
        os.replace(tonight, campaigns)

    out = tmp_path / "m.parquet"
    with pytest.raises(InputError, match=f"{campaigns}: changed while the run read it"):
        run_match(
            campaigns,
            world_dir / "creators.parquet",
            out,
            trained.model_uri,
            world_index,
            chunk_size=1,
            rejects_read=export_lands,
        )
    assert not out.exists() and not out.with_name(f"{out.name}.run.json").exists()
    assert not [part for folder in checkpoint_directories(out) for part in folder.iterdir()], "nothing was scored"
