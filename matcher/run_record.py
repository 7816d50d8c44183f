"""The run record: which files beside a `match` output belong to one complete run, and a check that they still do.

`creator-match match --out m.parquet` replaces its outputs one at a time (candidates, summaries, the matches),
then settles its rows of the rejects file, which `m.csv` may share. A run killed in between leaves tonight's
matches beside last night's rejects, and nothing in the files says so. So the run first removes its earlier record,
`m.parquet.run.json`, writes every file, and only then writes a new record naming each file with its size and
SHA-256 (and, for the shared rejects file, a digest over this output's rows alone). A record present and agreeing
with the files means they are one complete run's; no record means a run is writing them or one was killed.

The record alone cannot tell a run that is writing, or was killed before it replaced anything, from none: until
its first write last night's record stands, still true of last night's files. So a run also marks its start: the
moment it holds the output's lock, it writes `.<out name>.run-started.json` (`run_marker_path`: when it started,
its process id and host), atomically, and holds an exclusive `flock` on that file for as long as it lives. The
kernel releases the flock when the process ends however it ends (SIGKILL included), and the lock is on the file
each run creates, so `verify_run` tells the three cases apart without taking any lock a run waits for: a marker
whose flock is held is a run writing now; one whose flock is free is a run that started and did not finish
(killed, or failed midway), whatever the record beside it says; no marker, no run since the record was written.
The run removes its marker once its outputs and rejects are written, just before it writes its record. A run
refused before it goes ahead (bad inputs, a model that is not there) puts back what it found, so a refusal
leaves the marker of a killed run, and the file system, as they were.

A run that writes fewer files than the one before it (no `--summaries-out` tonight) does not remove last night's
summaries: they are the user's to remove. Its record names them instead, as files of the run it replaced that it
did not write again (read from that run's record before removing it, with those that record named likewise), so
that `verify_run` can say they sit beside the output without being this run's.

The rejects digest is the SHA-256 of this output's rows of the rejects file, in the file's order, each row written
as the JSON array of its `REJECTS_COLUMNS` values as strings (as the csv module reads them back), compact
(separators `,` and `:`, non-ASCII kept), UTF-8, each followed by a newline. Another output rewriting the shared
file keeps those rows and their order (`features.tables.write_rejects`), so their digest stays valid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from features.safe_write import (
    OutputRefused,
    atomic_path,
    fsync_path,
    put_back,
    remove_stale_temporaries,
    set_aside,
)
from features.tables import REJECTS_COLUMNS, recorded_rows, rejects_path

__all__ = [
    "RUN_MARKER_FORMAT",
    "RUN_RECORD_FORMAT",
    "RUN_RECORD_SUFFIX",
    "RUN_RECORD_VERSION",
    "EarlierFile",
    "RecordedFile",
    "RecordedIndex",
    "RecordedInput",
    "RecordedRejects",
    "RunMarker",
    "RunMismatch",
    "RunRecord",
    "RunStart",
    "check_run_marker_path",
    "check_run_record_path",
    "read_record",
    "record_run",
    "rejects_digest",
    "replacing_run",
    "run_marker_path",
    "run_record_path",
    "run_started",
    "verify_run",
]

# How the tool recognises its own record: a JSON object whose "format" is this, at a version it reads.
RUN_RECORD_FORMAT = "creator-match run record"
RUN_RECORD_VERSION = 1
RUN_RECORD_SUFFIX = ".run.json"
# A record is a few hundred bytes; a larger file at its path is a user's, and is not read whole to find out.
_LARGEST_RECORD = 1 << 20
# The marker a run writes when it starts and removes when it has written its outputs (module docstring).
RUN_MARKER_FORMAT = "creator-match run started"
_RUN_MARKER_VERSION = 1


class RunMismatch(Exception):
    """The files beside an output are not the complete run its record describes (or there is no record)."""


@dataclass(frozen=True)
class RecordedFile:
    """One file a run wrote: what it holds, its path as recorded, size in bytes and SHA-256."""

    role: str  # "matches", "candidates" or "summaries"
    path: str  # relative to the record's folder, or absolute when the file is elsewhere
    size: int
    sha256: str


@dataclass(frozen=True)
class EarlierFile:
    """A file an earlier run wrote beside the output that the recorded run did not write again: what it held, its
    path as recorded, and when the run that wrote it finished."""

    role: str  # "candidates" or "summaries": the matches are written by every run
    path: str
    finished_at: str


@dataclass(frozen=True)
class RecordedRejects:
    """The run's rows of the rejects file: the file's name, how many rows name the output, their digest."""

    path: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class RecordedInput:
    """One input file the run read: what it is, its path as recorded, size in bytes and SHA-256, as the run hashed
    it (the bytes its checkpoints' fingerprint was taken of)."""

    role: str  # "campaigns", "creators", "performance" or "past campaigns"
    path: str  # as RecordedFile's
    size: int
    sha256: str


@dataclass(frozen=True)
class RecordedIndex:
    """The candidate index directory the run read: its path as recorded, and when it was built (its meta.json)."""

    path: str
    built_at: str | None


@dataclass(frozen=True)
class RunRecord:
    """What one complete `match` run wrote (see the module docstring for the rejects digest).

    Attributes:
        output: the matches file's name.
        finished_at: when the run finished, UTC, ISO 8601.
        model_version: the ranker's version (`creator-ranker/3`, or its URI when unregistered); None when no
            campaign was valid, so no model was loaded.
        campaigns_read: campaign rows in the campaigns file, valid or rejected.
        campaigns_matched: campaigns with a slate.
        rows_rejected: input rows rejected (a row with several bad columns counts once).
        files: the matches, and the candidates and summaries when asked, in the order written.
        rejects: the run's rows of the rejects file, or None when the run had no rejects.
        earlier_files: files of the runs before it that it did not write again, still there when it finished.
        started_at: when the run started, UTC, ISO 8601; None in a record written before the field.
        inputs: the campaigns and creators files (and the performance files, when given) the run read, with their
            sizes and SHA-256; () in a record written before the field.
        index: the index directory the run read; None when it built one from the creators (or loaded none), and
            in a record written before the field.
        as_of: the day the creators' records were settled by (YYYY-MM-DD): `--as-of` with `--performance`, else
            the day the run started; None when the run scored on the records logged at the ranker's training (no
            `--performance`: as of its training run's `as_of` parameter), and in a record written before the field.
    """

    output: str
    finished_at: str
    model_version: str | None
    campaigns_read: int
    campaigns_matched: int
    rows_rejected: int
    files: tuple[RecordedFile, ...]
    rejects: RecordedRejects | None
    earlier_files: tuple[EarlierFile, ...] = ()
    started_at: str | None = None
    inputs: tuple[RecordedInput, ...] = ()
    index: RecordedIndex | None = None
    as_of: str | None = None

    def line(self) -> str:
        """One line saying which run the files are from, and what it read."""
        rejects = f"{self.rejects.rows} rejects rows" if self.rejects else "no rejects"
        read = [f"{i.role} {i.path} (sha256 {i.sha256[:12]})" for i in self.inputs]
        if self.index is not None:
            read.append(f"index {self.index.path} (built at {self.index.built_at})")
        if self.as_of is not None:
            read.append(f"records as of {self.as_of}")
        return (
            f"{self.output}: {len(self.files)} file{'s' if len(self.files) != 1 else ''} and {rejects} from the run "
            f"finished at {self.finished_at} (model {self.model_version or 'none: no valid campaign'}): "
            f"{self.campaigns_matched} of {self.campaigns_read} campaigns matched, {self.rows_rejected} rows rejected"
            + (f"; read {', '.join(read)}" if read else "")
        )


@dataclass(frozen=True)
class RunStart:
    """What a run's marker says (`RunMarker`): the output, when the run started (UTC, ISO 8601), its process."""

    output: str
    started_at: str
    pid: int
    host: str

    def process(self) -> str:
        """`pid 4242`, with the host when it is another than this one (the output on a shared file system)."""
        here = socket.gethostname()
        return f"pid {self.pid}" + ("" if self.host == here else f" on {self.host}")


def _present(path: Path) -> bool:
    """Whether anything is at `path`: a file, a directory, or a link (a dangling one too)."""
    return path.exists() or path.is_symlink()


def run_record_path(out: str | Path) -> Path:
    """The run record beside an output: `<out name>.run.json` (the full name: `m.csv` and `m.parquet` share a stem)."""
    out = Path(out)
    return out.with_name(f"{out.name}{RUN_RECORD_SUFFIX}")


def _record_content(path: Path) -> tuple[dict | None, str | None]:
    """The run record at `path`, parsed, or None and why the file there is not a run record of the project."""
    if path.is_dir():
        return None, "it is a directory"
    try:
        if path.stat().st_size > _LARGEST_RECORD:
            return None, "it is too large to be a run record of creator-match"
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        content = None
    if not isinstance(content, dict) or content.get("format") != RUN_RECORD_FORMAT:
        return None, f'it is not a run record of creator-match (no "format": "{RUN_RECORD_FORMAT}")'
    return content, None


def check_run_record_path(out: str | Path) -> Path:
    """The run record's path beside `out`, if the tool may replace or remove what is there: nothing, or a record.

    Raises:
        OutputRefused: a user's file (or a directory) is at that path; it is left as it is.
    """
    target = run_record_path(out)
    if not _present(target):
        return target
    if why := _record_content(target)[1]:
        raise OutputRefused(f"refusing to replace {target}: {why}; move it, or write the output elsewhere")
    return target


def run_marker_path(out: str | Path) -> Path:
    """The marker of a started run beside an output: `.<out name>.run-started.json`, hidden as its lock file is."""
    out = Path(out)
    return out.with_name(f".{out.name}.run-started.json")


def _marker_of(data: bytes) -> RunStart | None:
    """The marker's content, parsed; None when it is not a run marker of the project."""
    try:
        content = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(content, dict) or content.get("format") != RUN_MARKER_FORMAT:
        return None
    try:
        return RunStart(str(content["output"]), str(content["started_at"]), int(content["pid"]), str(content["host"]))
    except (KeyError, TypeError, ValueError):
        return None


def _read_marker(descriptor: int) -> RunStart | None:
    if os.fstat(descriptor).st_size > _LARGEST_RECORD:
        return None
    data = b""
    while chunk := os.read(descriptor, 1 << 16):
        data += chunk
    return _marker_of(data)


def check_run_marker_path(out: str | Path) -> Path:
    """The run marker's path beside `out`, if a run may write and remove what is there: nothing, or a marker.

    Raises:
        OutputRefused: a user's file (a directory, a link) is at that path; it is left as it is.
    """
    _marker_found(out)
    return run_marker_path(out)


def _marker_found(out: str | Path) -> RunStart | None:
    """The marker beside `out`, parsed, if a run may write and remove what is there; None when there is none.

    Raises:
        OutputRefused: as `check_run_marker_path`.
    """
    target = run_marker_path(out)
    if not _present(target):
        return None
    why = found = None
    if target.is_symlink() or not target.is_file():
        why = "it is not a regular file"
    else:
        try:
            descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise OutputRefused(f"refusing to replace {target}: it cannot be read ({exc.strerror})") from None
        try:
            if (found := _read_marker(descriptor)) is None:
                why = f'it is not a run marker of creator-match (no "format": "{RUN_MARKER_FORMAT}")'
        finally:
            os.close(descriptor)
    if why:
        raise OutputRefused(f"refusing to replace {target}: {why}; move it, or write the output elsewhere")
    return found


def run_started(out: str | Path) -> tuple[RunStart, bool] | None:
    """The marker of the last run that started on `out` and has not finished, and whether that run is alive (it
    holds the marker's flock); None when there is none (or a file there that is not a marker, or cannot be read).

    Nothing is written and no lock a run waits for is taken: the probe takes a shared flock on the marker, which
    only this run's own file carries, for an instant. A marker found free is checked to be still the one at the
    path (a run that finished at that instant removed it; a new one replaced it), else read again.
    """
    import fcntl

    target = run_marker_path(out)
    for _ in range(5):
        try:
            descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # none, a link, a directory, or unreadable: no marker this tool can speak of
            return None
        try:
            start = _read_marker(descriptor)
            if start is None:
                return None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return start, True
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            opened = os.fstat(descriptor)
            try:
                there = os.stat(target, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (there.st_dev, there.st_ino) == (opened.st_dev, opened.st_ino):
                return start, False
        finally:
            os.close(descriptor)
    return None


class RunMarker:
    """The marker a `match` run writes beside its output when it starts and removes when its outputs are written
    (module docstring). The caller holds the output's lock from `start` to the end.

    `start` sets aside the marker of a run that did not finish (read first: `previous`), writes this run's and
    holds its flock. Then exactly one of: `finish` (the outputs and rejects are written: the marker goes, before
    the record is written), `abandon` (refused before it went ahead: the marker goes, the set-aside one comes
    back) or `leave` (stopped after it went ahead, or by a signal: the marker stays, saying the run did not
    finish). `begin` says the run goes ahead: the set-aside marker is dropped, this one supersedes it.
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.path = run_marker_path(out)
        self.started: RunStart | None = None
        self.previous: RunStart | None = None
        self._aside: Path | None = None
        self._descriptor: int | None = None

    def start(self) -> RunStart:
        """Writes this run's marker, atomically and durably, locked from before it appears under its name.

        Raises:
            OutputRefused: a user's file is at the marker's path (left as it is).
        """
        import fcntl

        if self.started is not None:
            return self.started
        # Read once, as it is checked: no run holds it alive, since the caller holds the output's lock.
        self.previous = _marker_found(self.out)
        remove_stale_temporaries(self.path)  # a killed run's half-written marker
        self._aside = set_aside(self.path)
        start = RunStart(
            self.out.name, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), os.getpid(), socket.gethostname()
        )
        content = {"format": RUN_MARKER_FORMAT, "version": _RUN_MARKER_VERSION, **asdict(start)}
        descriptor = None
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
                descriptor = os.open(tmp, os.O_RDWR | os.O_NOFOLLOW)
                fcntl.flock(descriptor, fcntl.LOCK_EX)  # before the rename: no reader sees it unlocked
        except BaseException:
            if descriptor is not None:
                os.close(descriptor)
            self._restore()
            raise
        self._descriptor, self.started = descriptor, start
        return start

    def begin(self) -> None:
        """The run goes ahead: the marker of the run that did not finish before it is dropped."""
        if self._aside is not None:
            self._aside.unlink(missing_ok=True)
            self._aside = None

    def finish(self) -> None:
        """The run's outputs and rejects are written: its marker is removed, durably."""
        if self.started is not None and self.path.exists():
            self.path.unlink()
            fsync_path(self.path.parent)
        self.begin()
        self._release()

    def abandon(self) -> None:
        """The run was refused before it went ahead: its marker is removed and the one it set aside put back."""
        if self.started is not None:
            self.path.unlink(missing_ok=True)
        self._restore()
        self._release()

    def leave(self) -> None:
        """The run stopped after it went ahead (or by a signal): its marker stays, its flock is released."""
        self.begin()
        self._release()

    def _restore(self) -> None:
        if self._aside is not None:
            put_back(self._aside, self.path)
            self._aside = None
        elif self.started is not None:
            fsync_path(self.path.parent)

    def _release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # the flock goes with it
            self._descriptor = None


def _identity(path: Path) -> tuple[int, ...] | None:
    """What tells a file from the one that replaces it: a replace (a rename) brings another inode."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


@contextlib.contextmanager
def replacing_run(out: str | Path, files: Iterable[str | Path]) -> Iterator[RunRecord | None]:
    """Takes the earlier run record beside `out` away, durably, for a block that replaces the run's `files`: from
    then until the new record is written they are not a complete set, and a crash must not bring the old record
    back beside new files. A block that fails having replaced none of them (a full disk on the first write) puts
    the record back, still true of the files it describes; once one is replaced, the record is gone. The caller
    holds `out`'s lock.

    Yields:
        The record taken away, read first (`record_run` names the files of that run this one does not write
        again); None when there was none, or one this version does not read.

    Raises:
        OutputRefused: a user's file is at the record's path (left as it is).
    """
    target = check_run_record_path(out)
    replaced = None
    if _present(target):
        with contextlib.suppress(RunMismatch):
            replaced = _read_record(Path(out))
    before = {Path(path): _identity(Path(path)) for path in files}
    aside = set_aside(target)  # not removed yet: a rename needs no room on a full disk to undo
    try:
        yield replaced
    except BaseException:
        if aside is not None and all(_identity(path) == known for path, known in before.items()):
            put_back(aside, target)
        raise
    finally:
        if aside is not None and aside.exists():
            aside.unlink()


def _recorded_path(path: Path, folder: Path) -> str:
    """`path` relative to `folder` when inside it, else absolute; links kept as named (not resolved)."""
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def _file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def rejects_digest(out: str | Path) -> tuple[int, str] | None:
    """The rows of the rejects file beside `out` that name `out`, and their digest (the module's canonical form);
    None when there is no rejects file of the project there that records its outputs.

    Raises:
        OutputRefused: the file starts as a rejects file but cannot be read back.
    """
    target = rejects_path(out)
    rows = recorded_rows(target) if target.is_file() else None
    if rows is None:
        return None
    output, digest = Path(out).name, hashlib.sha256()
    own = [row for row in rows if row["output"] == output]
    for row in own:
        values = [row[column] for column in REJECTS_COLUMNS]
        digest.update(json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return len(own), digest.hexdigest()


def record_run(
    out: str | Path,
    written: Iterable[tuple[str | Path, str]],
    model_version: str | None,
    campaigns_read: int,
    campaigns_matched: int,
    rows_rejected: int,
    had_rejects: bool,
    replaced: RunRecord | None = None,
    started_at: str | None = None,
    inputs: Iterable[RecordedInput] = (),
    index: RecordedIndex | None = None,
    as_of: dt.date | None = None,
) -> RunRecord:
    """Writes the run record beside `out`, atomically and durably, once every file of the run and its rejects are
    written; the caller holds `out`'s lock. Each file is read back for its digest: the record says what is on disk.

    Args:
        out: the matches file.
        written: every file the run wrote, in the order written, each with its role (`"candidates"`); the
            matches, `out`, last.
        model_version: the ranker's version; None when none was loaded.
        campaigns_read, campaigns_matched, rows_rejected: the run's counts (`RunRecord`).
        had_rejects: whether the run wrote rejects; without, the record says it had none.
        replaced: the record of the run before (`replacing_run`), whose files this run did not write again
            are named as earlier files while they are still there.
        started_at: when the run started (its `RunMarker`).
        inputs: the files the run read, with their sizes and digests; each path is recorded as the files' are.
        index: the index directory the run read, if any; its path is recorded likewise.
        as_of: the day the records the run scored on were settled by, when it read `--performance`.

    Raises:
        OutputRefused: a user's file was put at the record's path while the run worked (it is left as it is).
    """
    out = Path(out)
    target = run_record_path(out)
    files = tuple(
        RecordedFile(role, _recorded_path(Path(path), target.parent), Path(path).stat().st_size, _file_digest(path))
        for path, role in written
    )
    earlier = ()
    if replaced is not None:
        rewritten = {file.path for file in files}
        named = [EarlierFile(f.role, f.path, replaced.finished_at) for f in replaced.files]
        earlier = tuple(
            file
            for file in [*named, *replaced.earlier_files]
            if file.path not in rewritten and _present(target.parent / file.path)
        )
    rejects = None
    if had_rejects:
        # No rejects file here although the run wrote one (removed since by hand): zero rows are recorded, and
        # `verify_run` reports the file missing.
        rows, digest = rejects_digest(out) or (0, hashlib.sha256().hexdigest())
        rejects = RecordedRejects(_recorded_path(rejects_path(out), target.parent), rows, digest)
    inputs = tuple(
        RecordedInput(read.role, _recorded_path(Path(read.path), target.parent), read.size, read.sha256)
        for read in inputs
    )
    if index is not None:
        index = RecordedIndex(_recorded_path(Path(index.path), target.parent), index.built_at)
    record = RunRecord(
        output=out.name,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        model_version=model_version,
        campaigns_read=campaigns_read,
        campaigns_matched=campaigns_matched,
        rows_rejected=rows_rejected,
        files=files,
        rejects=rejects,
        earlier_files=earlier,
        started_at=started_at,
        inputs=inputs,
        index=index,
        as_of=None if as_of is None else as_of.isoformat(),
    )
    content = {
        "format": RUN_RECORD_FORMAT,
        "version": RUN_RECORD_VERSION,
        "output": record.output,
        "finished_at": record.finished_at,
        "model_version": record.model_version,
        "counts": {
            "campaigns_read": campaigns_read,
            "campaigns_matched": campaigns_matched,
            "rows_rejected": rows_rejected,
        },
        "files": [asdict(file) for file in files],
        "rejects": None if rejects is None else asdict(rejects),
        "earlier_files": [asdict(file) for file in earlier],
        "started_at": started_at,
        "inputs": [asdict(read) for read in inputs],
        "index": None if index is None else asdict(index),
        "as_of": record.as_of,
    }
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        check_run_record_path(out)  # a file the user put there while the run worked is not replaced
    return record


def _read_record(out: Path) -> RunRecord:
    """The record beside `out`, parsed; RunMismatch naming what is wrong with it."""
    target = run_record_path(out)
    if not target.parent.is_dir():
        # A mistyped path reads as a first run that has not made its folder yet; the line says both.
        raise RunMismatch(
            f"no folder {target.parent} for {out.name}: no run has written there (is the path right?), or the first "
            "is still loading its model"
        )
    if not target.exists():
        raise RunMismatch(f"no run record beside {out}: a run is writing it, or one was killed before it finished")
    content, why = _record_content(target)
    if why:
        raise RunMismatch(f"{target}: {why}")
    if content.get("version") != RUN_RECORD_VERSION:
        raise RunMismatch(
            f"{target}: run record version {content.get('version')!r}; this creator-match reads {RUN_RECORD_VERSION}"
        )
    try:
        counts, rejects = content["counts"], content["rejects"]
        return RunRecord(
            output=content["output"],
            finished_at=content["finished_at"],
            model_version=content["model_version"],
            campaigns_read=counts["campaigns_read"],
            campaigns_matched=counts["campaigns_matched"],
            rows_rejected=counts["rows_rejected"],
            files=tuple(RecordedFile(**file) for file in content["files"]),
            rejects=None if rejects is None else RecordedRejects(**rejects),
            # A record written before the field names none.
            earlier_files=tuple(EarlierFile(**file) for file in content.get("earlier_files", [])),
            # Nor these.
            started_at=content.get("started_at"),
            inputs=tuple(RecordedInput(**read) for read in content.get("inputs", [])),
            index=None if content.get("index") is None else RecordedIndex(**content["index"]),
            as_of=content.get("as_of"),
        )
    except (KeyError, TypeError) as exc:
        raise RunMismatch(f"{target}: a run record without a usable {exc}") from None


def read_record(out: str | Path) -> RunRecord | None:
    """The run record beside `out` as it reads, its files unchecked; None when there is none this version reads."""
    try:
        return _read_record(Path(out))
    except RunMismatch:
        return None


def _after(finished_at: str, started_at: str) -> bool:
    """Whether a run that finished at `finished_at` did so after one started at `started_at` (ISO 8601 times)."""
    try:
        return dt.datetime.fromisoformat(finished_at) > dt.datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return False


def verify_run(out: str | Path) -> RunRecord:
    """Checks that the files beside `out` are the complete run its record describes, and that no run started
    since; returns the record.

    A run writing `out` now (its marker's flock is held: `RunMarker`) fails the check whatever the files say, and
    so does one that started and did not finish (killed, or failed midway): its marker stays, free. The files it
    left are still checked, so the line says whether they are still the complete run recorded before it (which
    they are unless it was stopped while replacing them). A marker older than the record (a run that finished
    since, of a version that writes none) is not counted.

    Every file the record names must be there with the recorded size and SHA-256, and the rejects file must hold
    exactly the recorded rows for `out` (none, when the run had no rejects). Other outputs' rows of a shared
    rejects file are not checked: they are their own records' to check. No earlier run's file the record names
    may still be there: a reader who finds last night's summaries beside tonight's matches would take them for
    tonight's, so they fail the check as a changed file does, until the user moves them away.

    Raises:
        RunMismatch: one line naming the run writing `out`, or the run that did not finish, or the file and what
            differs, or the missing record.
    """
    out = Path(out)
    found = run_started(out)
    if found is not None and found[1]:
        start = found[0]
        raise RunMismatch(
            f"a run is writing {out} ({start.process()}, started at {start.started_at}); verify again once it has "
            "finished"
        )
    unfinished = found[0] if found else None
    try:
        record = _read_record(out)  # once: what it says of the run that did not finish and of the files agrees
        if unfinished is not None and _after(record.finished_at, unfinished.started_at):
            unfinished = None  # a run has finished since that one started
        _check_files(out, record)
    except RunMismatch as exc:
        if unfinished is None:
            raise
        did_not = f"a run started at {unfinished.started_at} ({unfinished.process()}) did not finish (killed?)"
        if not run_record_path(out).exists():
            raise RunMismatch(
                f"{out}: {did_not} while replacing its files: they are not one complete run's; rerun match"
            ) from None
        raise RunMismatch(f"{exc}; and {did_not}: rerun match") from None
    if unfinished is not None:
        raise RunMismatch(
            f"{out}: a run started at {unfinished.started_at} ({unfinished.process()}) did not finish (killed?); "
            f"the files are still those of the run finished at {record.finished_at}, whole and unchanged: rerun "
            "match"
        )
    return record


def _check_files(out: Path, record: RunRecord) -> None:
    """Checks the files beside `out` against its `record` (`verify_run`, the marker aside)."""
    folder = run_record_path(out).parent
    if record.output != out.name:
        raise RunMismatch(f"{run_record_path(out)}: records the run of {record.output}, not of {out.name}")
    for file in record.files:
        path = folder / file.path  # an absolute recorded path stays as it is
        if not path.is_file():
            raise RunMismatch(f"{path}: the {file.role} file of the run recorded beside {out} is missing")
        if (size := path.stat().st_size) != file.size:
            raise RunMismatch(
                f"{path}: {size} bytes; the run recorded beside {out} wrote {file.size}: it was changed since"
            )
        if _file_digest(path) != file.sha256:
            raise RunMismatch(
                f"{path}: its SHA-256 differs from the one recorded beside {out}: it was changed since the run"
            )
    try:
        found = rejects_digest(out)
    except OutputRefused as exc:  # a rejects file that cannot be read back
        raise RunMismatch(str(exc).split("; move it")[0]) from None
    rows, digest = found if found else (0, None)
    rejects = rejects_path(out)
    if record.rejects is None:
        if rows:
            raise RunMismatch(
                f"{rejects}: holds {rows} rows for {out.name}; the run recorded beside {out} had no rejects"
            )
    elif found is None:
        raise RunMismatch(f"{rejects}: missing; the run recorded beside {out} wrote {record.rejects.rows} rows there")
    elif rows != record.rejects.rows or digest != record.rejects.sha256:
        raise RunMismatch(
            f"{rejects}: its {rows} rows for {out.name} differ from the {record.rejects.rows} the run recorded "
            f"beside {out} wrote: they were written since, by another run"
        )
    for file in record.earlier_files:
        path = folder / file.path
        if _present(path):
            tonight = [folder / f.path for f in record.files if f.role == file.role]
            wrote = f"wrote its {file.role} to {tonight[0]}" if tonight else f"wrote no {file.role}"
            raise RunMismatch(
                f"{path}: the {file.role} of an earlier run (finished at {file.finished_at}), not of the run "
                f"recorded beside {out}, which {wrote}; move it away, or rerun match with --{file.role}-out {path}"
            )
