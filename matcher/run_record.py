"""The run record: which files beside a `match` output belong to one complete run, and a check that they still do.

`creator-match match --out m.parquet` replaces its outputs one at a time (candidates, summaries, the matches),
then settles its rows of the rejects file, which `m.csv` may share. A run killed in between leaves tonight's
matches beside last night's rejects, and nothing in the files says so. So the run first removes its earlier record,
`m.parquet.run.json`, writes every file, and only then writes a new record naming each file with its size and
SHA-256 (and, for the shared rejects file, a digest over this output's rows alone). A record present and agreeing
with the files means they are one complete run's; no record means a run is writing them or one was killed.

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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from features.safe_write import OutputRefused, atomic_path, put_back, set_aside
from features.tables import REJECTS_COLUMNS, recorded_rows, rejects_path

__all__ = [
    "RUN_RECORD_FORMAT",
    "RUN_RECORD_SUFFIX",
    "RUN_RECORD_VERSION",
    "EarlierFile",
    "RecordedFile",
    "RecordedRejects",
    "RunMismatch",
    "RunRecord",
    "check_run_record_path",
    "record_run",
    "rejects_digest",
    "replacing_run",
    "run_record_path",
    "verify_run",
]

# How the tool recognises its own record: a JSON object whose "format" is this, at a version it reads.
RUN_RECORD_FORMAT = "creator-match run record"
RUN_RECORD_VERSION = 1
RUN_RECORD_SUFFIX = ".run.json"
# A record is a few hundred bytes; a larger file at its path is a user's, and is not read whole to find out.
_LARGEST_RECORD = 1 << 20


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

    def line(self) -> str:
        """One line saying which run the files are from."""
        rejects = f"{self.rejects.rows} rejects rows" if self.rejects else "no rejects"
        return (
            f"{self.output}: {len(self.files)} file{'s' if len(self.files) != 1 else ''} and {rejects} from the run "
            f"finished at {self.finished_at} (model {self.model_version or 'none: no valid campaign'}): "
            f"{self.campaigns_matched} of {self.campaigns_read} campaigns matched, {self.rows_rejected} rows rejected"
        )


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


def _file_digest(path: Path) -> str:
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
    }
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        check_run_record_path(out)  # a file the user put there while the run worked is not replaced
    return record


def _read_record(out: Path) -> RunRecord:
    """The record beside `out`, parsed; RunMismatch naming what is wrong with it."""
    target = run_record_path(out)
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
        )
    except (KeyError, TypeError) as exc:
        raise RunMismatch(f"{target}: a run record without a usable {exc}") from None


def verify_run(out: str | Path) -> RunRecord:
    """Checks that the files beside `out` are the complete run its record describes; returns the record.

    Every file the record names must be there with the recorded size and SHA-256, and the rejects file must hold
    exactly the recorded rows for `out` (none, when the run had no rejects). Other outputs' rows of a shared
    rejects file are not checked: they are their own records' to check. No earlier run's file the record names
    may still be there: a reader who finds last night's summaries beside tonight's matches would take them for
    tonight's, so they fail the check as a changed file does, until the user moves them away.

    Raises:
        RunMismatch: one line naming the file and what differs, or the missing record.
    """
    out = Path(out)
    record = _read_record(out)
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
    return record
