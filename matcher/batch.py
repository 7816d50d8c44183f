"""The batch match job: contract files in, the matches table and its rejects file out."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import signal
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import TABLE_FORMATS, TABLE_SUFFIXES
from features.embeddings import Embedder
from features.environment import HALT_BEFORE_REJECTS_ENV
from features.records import SettledPerformance
from features.safe_write import (
    check_outputs,
    foreign_entries,
    lock_path,
    output_lock,
    remove_directory,
    remove_stale_temporaries,
)
from features.tables import (
    InputError,
    Reject,
    atomic_path,
    check_own_table,
    check_rejects_path,
    read_table,
    rejects_path,
    rejects_turn,
    require_valid_rows,
)
from matcher.api import Matcher, MatchSettings, no_campaigns_matched
from matcher.artifacts import artifact_inputs, load_for_matching
from matcher.index_files import IDS_FILE, INDEX_FILE
from matcher.jobs import checkpoint_file, halt_at_marker
from matcher.run_record import (
    RecordedIndex,
    RecordedInput,
    RunMarker,
    RunStart,
    check_run_marker_path,
    check_run_record_path,
    read_record,
    record_run,
    replacing_run,
    run_marker_path,
    run_record_path,
)
from matcher.schema import CANDIDATE_SCHEMA, MATCH_SCHEMA, SUMMARY_SCHEMA, CampaignSummary, summaries_table
from matcher.scoring import SCORED_LAYOUT
from matcher.termination import raise_if_terminated, terminated_as_exit
from training.registry import LoadedRanker

__all__ = ["CSV_FLOAT_FORMAT", "BatchReport", "checkpoint_directories", "run_match", "write_matches"]

# A CSV output's floats, to 15 significant digits: every decimal of up to 15 digits survives a double (a share typed
# as 0.95 reads 0.95), while the last bits of a computed sum do not (0.55 + 0.4 was written 0.9500000000000001).
# Parquet and JSON Lines keep the exact values; nothing reads a CSV output back for its numbers.
CSV_FLOAT_FORMAT = "%.15g"

# The columns of each file a run writes: what one of them may hold for the run to replace it (`check_own_table`).
OUTPUT_COLUMNS = {
    "matches": MATCH_SCHEMA.names,
    "candidates": CANDIDATE_SCHEMA.names,
    "summaries": SUMMARY_SCHEMA.names,
}


@dataclass
class BatchReport:
    """What one batch run did."""

    out: Path
    summaries: list[CampaignSummary]
    rejects: list[Reject] = field(default_factory=list)
    campaigns_in: int = 0

    @property
    def rejects_file(self) -> Path | None:
        return rejects_path(self.out) if self.rejects else None


def _write_json_lines(table: pd.DataFrame, path: Path) -> None:
    """One JSON object per row, every float as Python writes it (the shortest text that reads back as the same
    number, as Parquet and the service give it; pandas' to_json kept 10 significant digits); NaN and a
    nullable column's missing value (the candidates' rank off a slate) as null."""
    columns = list(table.columns)
    with open(path, "w", encoding="utf-8") as out:
        for row in zip(*(table[name].tolist() for name in columns), strict=True):
            values = (
                None if value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value for value in row
            )
            out.write(json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False, allow_nan=False))
            out.write("\n")


def write_matches(matches: pd.DataFrame, out: str | Path, schema: pa.Schema = MATCH_SCHEMA) -> Path:
    """Writes the matches table (or a table of `schema`) atomically, as Parquet, CSV or JSON Lines by extension.

    Parquet and JSON Lines hold every float exactly; CSV, for people and spreadsheets, to 15 significant digits
    (`CSV_FLOAT_FORMAT`).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            pq.write_table(pa.Table.from_pandas(matches, schema=schema, preserve_index=False), tmp)
        elif suffix == ".csv":
            matches.to_csv(tmp, index=False, float_format=CSV_FLOAT_FORMAT)
        elif suffix == ".jsonl":
            _write_json_lines(matches, tmp)
        else:
            raise InputError(f"{out}: unknown output format {out.suffix!r}; expected {TABLE_FORMATS}")
    return out


def checkpoint_directories(out: str | Path) -> list[Path]:
    """The scored-chunk directories beside `out`: this run's to resume from, or ones left by an interrupted run."""
    out = Path(out)
    return sorted(out.parent.glob(f".{out.name}.parts-*"))


def _why_not_checkpoints(directory: Path) -> str | None:
    foreign = foreign_entries(directory, ["*.parquet"])  # the chunks Matcher.match_many commits
    return f"it holds {', '.join(foreign)}, which no checkpoint does" if foreign else None


def _index_identity(index: str | Path | None, matcher: Matcher) -> tuple:
    """What the run's candidate index holds, by content rather than by path, for the run's fingerprint.

    An index built on the fly (`index` None) is a function of the creators file, whose bytes the fingerprint
    hashes, and of its build settings: its meta without `built_at`, which is this very run's clock and would make
    every rerun a stranger to its own checkpoints. An index directory is identified by its meta as loaded (with
    `built_at`: every build writes a new one), a digest of `creator_ids.parquet` (each row's id and profile key)
    and the size and modification time of `index.faiss`. The vectors file is not hashed: at a million creators it
    is 1.5 GB, seconds of hashing on every run, and every build goes through `CandidateIndex.save`, which writes a
    new `built_at` and ids file beside it; its size and mtime catch one replaced by other means. A copy of the
    directory elsewhere (mtimes kept) resumes the same run; one that does not keep them starts afresh, which costs
    time, never a wrong result. The meta comes from the loaded index and the files are read after it was loaded:
    an index rebuilt in between gives a mix no other run has, so it too starts afresh.
    """
    if index is None:
        return tuple(sorted((k, v) for k, v in matcher.index.meta.items() if k != "built_at"))
    directory = Path(index)
    with open(directory / IDS_FILE, "rb") as handle:
        ids = hashlib.file_digest(handle, "sha256").hexdigest()
    vectors = (directory / INDEX_FILE).stat()
    return (tuple(sorted(matcher.index.meta.items())), ids, vectors.st_size, vectors.st_mtime_ns)


def _file_states(files: Sequence[tuple[str | Path, str]]) -> list[tuple[int, ...] | None]:
    """Each file's identity (device, inode: a replace by rename gives another) and size and modification time (a
    rewrite in place changes them): what says, without reading it again, that it still holds the bytes read. None
    for a file that cannot be found, which reading it then names."""
    states = []
    for path, _ in files:
        try:
            found = os.stat(path)
        except OSError:
            states.append(None)
        else:
            states.append((found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))
    return states


def _check_unchanged(files: Sequence[tuple[str | Path, str]], as_read: list[tuple[int, ...] | None]) -> None:
    """The input files are still the ones the run read its tables from, when it has hashed them.

    The hashes fingerprint the run's checkpoints and go into its record; taken of a file the upstream export
    replaced after the tables were read (the model loads in between), they named bytes the run never scored, and a
    rerun after a kill resumed the old campaigns' chunks as the new file's.

    Raises:
        InputError: a file changed since it was read.
    """
    for (path, role), before, now in zip(files, as_read, _file_states(files), strict=True):
        if now != before:
            raise InputError(
                f"{path}: changed while the run read it (the {role} file was replaced or rewritten: is another job "
                "still writing it?); nothing was scored: run again once it is written"
            )


def _hash_files(files: Sequence[tuple[str | Path, str]], combined=None) -> list[RecordedInput]:
    """Each file's size and SHA-256, read once; each block also fed to `combined`, when given."""
    hashed = []
    for path, role in files:
        own, size = hashlib.sha256(), 0
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                own.update(block)
                size += len(block)
                if combined is not None:
                    combined.update(block)
        hashed.append(RecordedInput(role, str(path), size, own.hexdigest()))
    return hashed


def _fingerprint(
    campaigns: str | Path,
    creators: str | Path,
    matcher: Matcher,
    chunk_size: int,
    index: str | Path | None,
    hashed: list[RecordedInput] | None = None,
) -> str:
    """Identifies a run: the input files' bytes, the model version, what the index holds (`_index_identity`), the
    settings and chunking; `index` is the directory the run was given, or None for one built on the fly. The
    campaigns' and creators' own sizes and digests, read in the same pass, are appended to `hashed`."""
    digest = hashlib.sha256()
    read = _hash_files([(campaigns, "campaigns"), (creators, "creators")], digest)
    if hashed is not None:
        hashed.extend(read)
    run = (matcher.ranker.version, _index_identity(index, matcher), matcher.settings, chunk_size, SCORED_LAYOUT)
    digest.update(repr(run).encode())
    digest.update(matcher.records.fingerprint().encode())  # chunks scored on other records are not reused
    return digest.hexdigest()[:16]


def run_match(
    campaigns: str | Path,
    creators: str | Path,
    out: str | Path,
    model: str | LoadedRanker,
    index: str | Path | None,
    settings: MatchSettings | None = None,
    chunk_size: int = 256,
    engine: str = "local",
    ray_actors: int = 2,
    embedding_backend: str | None = None,
    performance: SettledPerformance | None = None,
    candidates_out: str | Path | None = None,
    summaries_out: str | Path | None = None,
    progress: bool | None = None,
    inputs: Sequence[tuple[str | Path, str]] = (),
    note: Callable[[str], None] | None = None,
    rejects_read: Callable[[list[Reject]], None] | None = None,
) -> BatchReport:
    """Validates both tables, matches every valid in-stock campaign, writes matches and rejects.

    Scored chunks are committed beside the output (in a hidden folder named after a fingerprint of the
    inputs, model, settings and what the index holds) so that a rerun after a crash resumes, on either engine; a
    rerun on an index rebuilt since starts afresh. The folder is removed once the matches are written. The same
    inputs give the same bytes however often the run was interrupted, and on either engine (`local`, or `ray` with
    `ray_actors` scoring actors). The embedding backend is the ranker's; `embedding_backend`, when given, must
    agree with it and with the index's. Creators are scored on their records in `performance` (read tables; their
    rejects are reported with the others; without its `as_of`, as of the day the run starts, which the run record
    names), else on those as of the ranker's training.

    With `candidates_out`, every scored pair of the run, on a slate or not, is written there too
    (`matcher.schema.CANDIDATE_SCHEMA`), for model review. With `summaries_out`, each matched or skipped
    campaign's summary (`matcher.schema.SUMMARY_SCHEMA`: product type and why, slate size and why, expected
    orders and commission against the budget). `progress`: a bar over chunks (None: when there are several).
    `inputs`: the other files the run reads, each with what it is (`(path, "performance file")`: the command passes
    `--performance` and its past campaigns), which no output may be written over, as the tables and index may not.

    `rejects_read`, when given, is called once with every rejected row as soon as the tables are read and the
    creators found to have valid rows, before the model is loaded and anything scored (the command names them then,
    whether or not the run finishes); they are also in the report. `note`, when given, is called with one line
    (without the `creator-match: ` prefix) when the run resumes from another's checkpoints, or finds that a run
    that did not finish scored nothing it can reuse, and when a signal stops it: SIGTERM (a scheduler's time
    limit), which in the main thread ends the run as SystemExit(143) so that it unwinds, or Ctrl-C; the line says
    where the run stood, where the files beside `out` stand, and that the same command resumes. The exception then
    carries `told = True`, so that the command line (`matcher.cli.main`) adds no line of its own.

    One run at a time writes a given output: a second one while the first runs is refused at once.

    From the moment it holds `out`'s lock (at once, when its lock file exists; else once the model is loaded) until
    its outputs and rejects are written, the run's marker, `.<out name>.run-started.json`, is beside `out`, its
    flock held (`matcher.run_record.RunMarker`): `verify_run` says a run is writing `out`. A run stopped once it
    went ahead (past every refusal: a signal, SIGKILL, a failure while scoring or writing) leaves its marker, and
    `verify_run` says a run started then did not finish, naming whether the files are still the complete run
    recorded before it; a signal stops it with the same result before it went ahead. A refused run removes its
    marker and puts back the one it found.

    Once every output and the rejects are written, a run record, `<out name>.run.json`, is written beside `out`
    (`matcher.run_record`): each file's size and SHA-256, a digest of `out`'s rows of the rejects file, when the
    run started, and the input files with their sizes and SHA-256 (those of the campaigns and creators read in the
    pass that fingerprints the run) and the index directory with when it was built. The earlier record is removed
    (durably) before the first output is replaced, so from then until the run finishes there is none, and
    `verify_run` says the files are not a complete run's. The other ways out: a refused run, one that fails before
    its writes (scoring, say), or one whose writes fail before the first file is replaced (a full disk), replaces
    nothing and leaves the record (`matcher.run_record.replacing_run`), still true of the files it describes (and
    the marker says whether the run went ahead). A run whose creators have no valid row (NoValidRows) leaves the
    outputs and their record as they were but writes its rejects: the record is left too, and being last night's,
    it disagrees with the new rejects wherever they differ, which `verify_run` reports (removing it would claim a
    run was writing or was killed; rewriting it would claim these rejects came with those matches). A run that
    fails midway through its writes leaves no record.

    A refused run leaves the file system as it was: the inputs, the model and the index are all read before
    the outputs' missing folders and lock files are made, and a SQLite model store that does not exist is
    refused rather than created (`matcher.artifacts.load_for_matching`).

    Raises:
        InputError: a file is missing or unreadable, an output's format is unknown or it is a directory (nothing
            is written).
        NoValidRows: the creators have no valid row (none at all, or every one rejected): no output is written or
            replaced; the rejects, if any, are written beside `out` and carried by the error. Campaigns with no
            valid row are not refused: the outputs are written, empty, beside the rejects file, without loading the
            model or the index, which such a batch does not need (neither is checked then).
        ModelNotFound: the model, or a store it is read from, does not exist (nothing is written).
        ArtifactMismatch: the ranker, index and embedding backend disagree (nothing is written).
        OutputRefused: an output would be written over an input (the tables, `inputs`, the index directory or
            anything in it, a model directory), over the rejects file, the run record or marker or another output;
            a user's file is at the run record's path (`<out name>.run.json`) or the marker's; the run has rejects
            and the
            rejects path holds a user's file (another output's rejects there are kept beside this run's); another
            process is writing `out`, `candidates_out` or `summaries_out`; or, when the run changes the rejects
            file, another process held its lock for all of REJECTS_LOCK_WAIT, or it cannot be read back (nothing
            is written: the rejects file is claimed before the outputs are replaced).
    """
    out = Path(out)
    if performance is not None and performance.as_of is None:
        # The day is taken once, here: the records are settled by the day the run record names, also when the run
        # ends after midnight.
        performance = replace(performance, as_of=dt.date.today())
    outputs = [(out, "matches")] + [
        (Path(path), what) for path, what in ((candidates_out, "candidates"), (summaries_out, "summaries")) if path
    ]
    for path, what in outputs:
        # A directory first: `--out results` (or `.`) is a directory to the user, not a file with no format.
        if path.is_dir():
            raise InputError(f"{path}: is a directory; expected a file for the {what}")
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise InputError(f"{path}: unknown output format {path.suffix!r}; expected {TABLE_FORMATS}")
    # Nothing the run reads may be written over: the tables, the index (or anything in it), a model directory;
    # nor one output over another or over the rejects file, which comes right after the matches it belongs to.
    read = [(campaigns, "campaigns file"), (creators, "creators file"), *inputs, *artifact_inputs(model, index)]
    check_outputs(
        [
            outputs[0],
            (rejects_path(out), "rejects"),
            (run_record_path(out), "run record"),
            (run_marker_path(out), "run marker"),
            *outputs[1:],
        ],
        read,
    )
    # The run record and marker beside `out` are this run's to remove and rewrite: a user's file there stops the
    # run now.
    check_run_record_path(out)
    check_run_marker_path(out)
    # An output is replaced only where it holds that output's table: a user's own file of that name stops the run.
    for path, what in outputs:
        check_own_table(path, OUTPUT_COLUMNS[what], what)
    marker, state = RunMarker(out), _RunState(out)
    # SIGTERM (a scheduler's time limit) unwinds the run as SystemExit(143), as Ctrl-C does as KeyboardInterrupt:
    # its half-written files are removed, a record set aside is put back while nothing was replaced, and one line
    # says where the run stood.
    with terminated_as_exit(), ExitStack() as locks:
        try:
            # An output another run is writing is refused at once, before any work: its lock file exists then. One
            # that does not is made below, once the run goes ahead, so a refused run leaves no lock file (nor the
            # folders it would sit in) behind.
            for path, _ in outputs:
                if lock_path(path).exists():
                    locks.enter_context(output_lock(path))
            if lock_path(out).exists():  # held: from here `verify` says a run is writing (`RunMarker`)
                marker.start()
            read_files = [(campaigns, "campaigns"), (creators, "creators"), *_input_roles(inputs)]
            as_read = _file_states(read_files)
            creator_table = read_table(creators, "creators")
            campaign_table = read_table(campaigns, "campaigns")
            rejects = [
                *creator_table.rejects,
                *campaign_table.rejects,
                *(performance.rejects() if performance else []),
            ]
            # A run with rejects writes the rejects file, which another output of the same stem shares (`m.csv`
            # beside `m.parquet`, whose rows it keeps): it is checked before any work (a user's own file there
            # stops the run) and locked only while the outputs and it are written (`rejects_turn`), so that neither
            # output's run waits on the other's.
            if rejects:
                check_rejects_path(out)
            # Nothing can be matched against no creator: the outputs (last night's matches, say) are left as they
            # are, not replaced by an empty table, and the rows rejected are reported as any run's, in the rejects
            # file beside the output. A campaigns table with no valid row is matched as any: its matches are empty,
            # and written, so that the matches and the rejects file beside them always describe the same run.
            require_valid_rows(
                creator_table, creators, f"nothing was matched, and {out} was left as it was", rejects, out
            )
            if rejects and rejects_read is not None:  # named now, not after the long work (nor never, if it fails)
                rejects_read(rejects)
            if engine == "ray":
                from matcher.ray_engine import RAY_ADDRESS_ENV, check_reachable, import_ray

                import_ray()  # RayUnavailable without Ray, or with a cluster that does not answer, before any write
                if os.environ.get(RAY_ADDRESS_ENV):
                    check_reachable(os.environ[RAY_ADDRESS_ENV])
            # Everything that can refuse the run (the model, its stores, the index) is loaded before the first
            # output folder or lock file is made. A batch with no valid campaign needs none of them: its outputs
            # are empty whatever the model, so it is written without one (an MLflow load takes seconds).
            matcher = None
            if len(campaign_table.frame):
                ranker = load_for_matching(model, performance, index)
                embedder = None
                if embedding_backend is not None:  # asserted: Matcher refuses one the ranker was not trained on
                    embedder = Embedder(ranker.model.embedding_model, backend=embedding_backend)
                matcher = Matcher(
                    creator_table,
                    model=ranker,
                    index=index,
                    settings=settings,
                    embedder=embedder,
                    performance=performance,
                )
            # Held from before the checkpoints are read until the rejects are written: a second run on the same
            # output would otherwise score into, and then delete, the first one's checkpoints. Missing folders are
            # made here.
            for path, _ in outputs:
                locks.enter_context(output_lock(path))
                remove_stale_temporaries(path)  # a killed run's half-written file beside it
            remove_stale_temporaries(run_record_path(out))  # and its record's, written or set aside under out's lock
            marker.start()
            if rejects:
                # Checked again once the model is loaded: a user's file put there since must stop the run before
                # scoring, not after the matches are written (the write checks it a last time, and never replaces
                # it).
                check_rejects_path(out)
            check_run_record_path(out)  # likewise
            # A SIGTERM taken while the model and index loaded whose SystemExit a library lost stops the run here.
            raise_if_terminated()
            # Past every refusal: the run goes ahead, and from here it either finishes or leaves its marker.
            marker.begin()
            state.began = True
            if matcher is None:
                hashed = _hash_files(read_files)
                _check_unchanged(read_files, as_read)
                result = no_campaigns_matched(campaign_table.rejects, with_candidates=candidates_out is not None)
            else:
                hashed = []
                fingerprint = _fingerprint(campaigns, creators, matcher, chunk_size, index, hashed)
                hashed += _hash_files(read_files[2:])
                _check_unchanged(read_files, as_read)  # what was hashed is what was read
                state.checkpoints = out.with_name(f".{out.name}.parts-{fingerprint}")
                in_stock = int(campaign_table.frame["in_stock"].astype(bool).sum())
                state.chunks = -(-in_stock // chunk_size)
                if note is not None and (line := state.resuming_line(marker.previous)):
                    note(line)
                result = matcher.match_many(
                    campaign_table,
                    checkpoint_dir=state.checkpoints,
                    chunk_size=chunk_size,
                    engine=engine,
                    ray_actors=ray_actors,
                    with_candidates=candidates_out is not None,
                    progress=progress,
                )
            # The matches last: once a reader sees tonight's matches, the summaries and candidates beside them are
            # tonight's too (a run killed in between leaves last night's matches with them). The rejects file is
            # claimed first, so that a run refused it replaces none of them.
            # The run record goes first and comes back last: from before the first file is replaced until the
            # rejects are settled there is none, so a run killed in between leaves files that `verify_run` says are
            # not one run's. It is one of `out`'s writes, under `out`'s lock, taken before the rejects file's as
            # for the others.
            written = [*outputs[1:], outputs[0]]  # in the order they are written
            # A write that fails before it replaces anything (a full disk) puts the record back (`replacing_run`).
            with rejects_turn(rejects, out), replacing_run(out, [path for path, _ in written]) as replaced:
                state.writing = True
                if candidates_out is not None:
                    write_matches(result.candidates, candidates_out, CANDIDATE_SCHEMA)
                if summaries_out is not None:
                    write_matches(summaries_table(result.summaries), summaries_out, SUMMARY_SCHEMA)
                write_matches(result.matches, out)
                if os.environ.get(HALT_BEFORE_REJECTS_ENV):
                    halt_at_marker("outputs written, rejects not settled\n")
            # Its marker goes before its record comes: killed in between, the run leaves neither, which `verify`
            # reports as no record (a run writing, or killed), never as a complete run.
            marker.finish()
            built_at = None if matcher is None else matcher.index.meta.get("built_at")
            n_in = len(campaign_table.frame) + len({r.row for r in campaign_table.rejects})
            record_run(
                out,
                written,
                model_version=None if matcher is None else matcher.ranker.version,
                campaigns_read=n_in,
                campaigns_matched=sum(summary.status == "matched" for summary in result.summaries),
                rows_rejected=len({(reject.table, reject.row) for reject in rejects}),
                had_rejects=bool(rejects),
                replaced=replaced,
                started_at=marker.started.started_at,
                inputs=hashed,
                index=None if index is None else RecordedIndex(str(index), built_at),
                as_of=None if performance is None else performance.as_of,
            )
            for stale in checkpoint_directories(out):  # this run's and any left by other inputs
                remove_directory(stale, _why_not_checkpoints)
        except BaseException as exc:
            stopped = _stopped_by(exc)
            if stopped and note is not None:
                note(state.stopped_line(stopped))
                exc.told = True  # the command line's own line (`matcher.cli.main`) would be a second one
            # The locks are still held: what a refusal puts back is back before another run may look.
            if state.began or stopped:
                marker.leave()  # the run did not finish: its marker stays to say so
            else:
                marker.abandon()  # refused: the marker, and the file system, as they were
            raise
    return BatchReport(out, result.summaries, rejects, n_in)


def _input_roles(inputs: Sequence[tuple[str | Path, str]]) -> list[tuple[str | Path, str]]:
    """The other files the run reads (`--performance`, its past campaigns), each with its role in the record: what
    the caller calls it, less ` file` (`performance`, `past campaigns`, the default past campaigns' too)."""
    roles = []
    for path, what in inputs:
        role = what.removesuffix(" file").removeprefix("default ")
        roles.append((path, "past campaigns" if role == "--past-campaigns" else role))
    return roles


def _stopped_by(exc: BaseException) -> str | None:
    """The signal an exception stands for (`SIGTERM` for `terminated_as_exit`'s SystemExit(143), `SIGINT` for
    Ctrl-C's KeyboardInterrupt), or None for any other failure."""
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    if isinstance(exc, SystemExit) and isinstance(exc.code, int) and exc.code > 128:
        with contextlib.suppress(ValueError):
            return signal.Signals(exc.code - 128).name
    return None


def _chunks(count: int) -> str:
    return f"{count} chunk{'' if count == 1 else 's'}"


@dataclass
class _RunState:
    """Where a run stands, for the lines that say so: resuming, or stopped by a signal."""

    out: Path
    began: bool = False  # past every refusal: the run goes ahead
    checkpoints: Path | None = None  # known once the run fingerprinted its inputs
    chunks: int = 0
    writing: bool = False  # replacing its outputs

    def scored(self) -> int:
        """The chunks of this run committed in its checkpoint folder."""
        if self.checkpoints is None or not self.checkpoints.is_dir():
            return 0
        return sum(checkpoint_file(self.checkpoints, n).exists() for n in range(self.chunks))

    def resuming_line(self, previous: RunStart | None) -> str | None:
        """What the run takes over from one that did not finish, if anything: the chunks it scored, or none."""
        if kept := self.scored():
            last = f" (the last one started at {previous.started_at})" if previous else ""
            return (
                f"resuming: {kept} of {_chunks(self.chunks)} {'was' if kept == 1 else 'were'} scored by a run that "
                f"did not finish{last}, kept in {self.checkpoints}"
            )
        if previous is not None:
            return (
                f"the run started at {previous.started_at} did not finish; it scored no chunk of these inputs, "
                f"model and settings: scoring all {self.chunks}"
            )
        return None

    def stopped_line(self, by: str) -> str:
        """One line: the signal, where the run was, where the files beside its output stand, and what to do."""
        scored = self.scored()
        if self.writing:
            where = "while replacing its outputs"
        elif self.checkpoints is not None:
            where = f"after scoring {scored} of {_chunks(self.chunks)}"
        else:
            where = "before scoring"
        record = read_record(self.out)
        if record is not None:
            standing = f"the files beside {self.out} are still those of the run finished at {record.finished_at}"
        elif self.writing:
            standing = f"some of its outputs were replaced: the files beside {self.out} are not one complete run's"
        else:
            standing = f"nothing beside {self.out} was replaced"
        again = f"the same command resumes from the {_chunks(scored)} kept" if scored else "run the same command again"
        return f"stopped by {by} {where}; {standing}; creator-match verify exits 1 until a run finishes: {again}"
