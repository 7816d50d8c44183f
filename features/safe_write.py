"""Writing outputs without losing anything: durable atomic replaces, and locks that keep two writers apart.

Every file or directory the project writes appears whole or not at all, and survives a power cut once the
writer has returned: the new content is written beside the target, flushed to disk (`fsync`), renamed into
place, and the rename itself flushed by an `fsync` of the parent directory. A directory is only ever replaced
or removed when it is empty or recognisably the project's own; anything else is refused, so an output path
pointed at a folder of the user's files never deletes them. `output_lock` makes a second process that would
write the same output refuse (or wait, boundedly) instead of interleaving with the first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import glob
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = [
    "OWNER_LOCK",
    "OutputLocked",
    "OutputRefused",
    "atomic_path",
    "check_output_path",
    "check_outputs",
    "check_replaceable",
    "foreign_entries",
    "fsync_path",
    "lock_path",
    "output_lock",
    "private_temp_dir",
    "put_back",
    "release_temp_dir",
    "remove_directory",
    "remove_stale_temporaries",
    "set_aside",
    "staged_directory",
    "stale_temporaries",
    "temp_dir",
]

# Says why a directory is not the project's own to replace or remove, or None when it is.
WhyNotOurs = Callable[[Path], str | None]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2

# An `atomic_path` temporary is `.<name>.<marker>-<random>.tmp`: a shape of the project's own, so that clearing
# what a killed write left removes none of the user's files (`.m.parquet.before-upgrade.tmp`).
_TEMPORARY_MARKER = "creator-match-partial"
_TEMPORARY_RANDOM = 16  # hex digits
_TEMPORARY = re.compile(rf"\.(.+)\.{_TEMPORARY_MARKER}-[0-9a-f]{{{_TEMPORARY_RANDOM}}}\.tmp")  # group 1: the name


class OutputRefused(Exception):
    """An output that cannot be written safely: it holds what the project did not write, another run holds it, or
    it would be written over one of the command's own inputs or outputs."""


class OutputLocked(OutputRefused):
    """An output another process is writing: it holds the output's lock. Told apart from the other refusals so
    that a caller may leave such an output to its writer, while a lock that cannot be made at all still stops it."""


def _same_place(one: Path, other: Path) -> bool:
    """Whether two resolved paths name one file: equal, or two names of one existing file (a hard link)."""
    if one == other:
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:  # either is not there yet: only equal paths are the same place
        return False


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """`path` if an output may be written there: not a symbolic link (one may lead anywhere, a dangling one
    somewhere to be created, so a job writing through it could replace any file its user may write), and not a
    file system root, which has no name to write beside. Folders above it may be links.

    Raises:
        OutputRefused: one line naming the path and why.
    """
    path = Path(path).expanduser()
    if path.is_symlink():
        raise OutputRefused(
            f"refusing to write the {what} to {path}: it is a symbolic link (to {os.readlink(path)}); "
            "outputs are never written through a link: remove it, or give the path it leads to"
        )
    if not Path(os.path.abspath(path)).name:
        raise OutputRefused(f"refusing to write the {what} to {path}: a file system root is never an output")
    return path


def check_outputs(outputs: Iterable[tuple[str | Path, str]], inputs: Iterable[tuple[str | Path, str]]) -> None:
    """Refuses, in one line naming both, an output that would be written over what the same command reads or
    writes: an input file, anything inside an input directory (an index), a folder holding an input, or an
    earlier output of the same command. Paths are compared resolved, so a symbolic link (or a second name of a
    file, a hard link) to an input is that input.

    Args:
        outputs: each path the command writes, in order, with what it holds (`"matches"`, `"rejects"`); an output
            clashing with an earlier one is named as that output's file.
        inputs: each file or directory the command reads, with what it is (`"creators file"`, `"index
            directory"`).

    Raises:
        OutputRefused: `<output>: the <what> cannot be written over the <input> <its path>`, or `inside` an
            input directory; or an output is a symbolic link or a root (`check_output_path`).
    """
    taken = [(Path(path), Path(path).expanduser().resolve(), what) for path, what in inputs]
    for path, what in outputs:
        target = Path(path).expanduser().resolve()
        for given, source, kind in taken:
            if _same_place(target, source):
                where = "over"
            elif source in target.parents:
                where = "inside"
            elif target in source.parents:
                where = "over a folder holding"
            else:
                continue
            raise OutputRefused(f"{path}: the {what} cannot be written {where} the {kind} {given}")
        check_output_path(path, what)  # after: a link to an input is named as that input
        taken.append((Path(path), target, f"{what} file"))


def _umask() -> int:
    """The process's umask, read where the system says it (Linux's /proc) rather than set and set back: for that
    moment the umask is 0, and a file another thread creates then is writable by anyone."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o077)  # no /proc: the only way; 0o077 rather than 0 for the moment it is in force
    os.umask(umask)
    return umask


def _default_mode(kind: int) -> int:
    """The permissions a plain `open` or `mkdir` would give (`kind` 0o666 or 0o777, less the umask)."""
    return kind & ~_umask()


def _replacing_mode(path: Path, kind: int) -> int:
    """The permissions for what replaces `path`: those of what is there (a user who made last night's output
    private keeps it private), else those a plain `open` or `mkdir` would give."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777  # not set-id bits, which a new file is not to get
    except FileNotFoundError:
        return _default_mode(kind)


def _temporary_name(name: str) -> str:
    return f".{name}.{_TEMPORARY_MARKER}-{secrets.token_hex(_TEMPORARY_RANDOM // 2)}.tmp"


def _temporary_of(entry: str) -> str | None:
    """The name whose `atomic_path` temporary `entry` is, by its exact shape; None for any other entry."""
    found = _TEMPORARY.fullmatch(entry)
    return found.group(1) if found else None


def fsync_path(path: str | Path) -> None:
    """Flushes a file, or a directory's entries, to disk (directories only where the OS can open them: POSIX)."""
    path = Path(path)
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _made_folders(folder: Path) -> list[Path]:
    """Makes `folder` and its missing parents; returns those it made, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.is_dir()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; moves it into place, durably, only if the block succeeds.

    What replaces an existing file keeps its permissions; a new one gets those a plain `open` would give. A write
    that fails removes its temporary file, and the folders it made for it.

    Raises:
        OutputRefused: `path` is a symbolic link or a root (`check_output_path`); nothing is written.
        OSError: writing failed (a full disk): one line naming `path`, of the type the failure's errno gives.
    """
    path = check_output_path(path)
    made = _made_folders(path.parent)
    tmp = None
    try:
        while tmp is None:
            candidate = path.with_name(_temporary_name(path.name))
            with contextlib.suppress(FileExistsError):  # another write's name: draw again
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                tmp = candidate
        try:
            os.fchmod(fd, _replacing_mode(path, 0o666))  # 0600 here would hide a new output from the user's group
        finally:
            os.close(fd)
        yield tmp
        fsync_path(tmp)  # else a crash soon after the rename can leave `path` empty
        os.replace(tmp, path)
        fsync_path(path.parent)  # else a crash can forget the rename itself
    except BaseException as exc:
        if tmp is not None and tmp.exists():
            tmp.unlink()
        for folder in made:  # left empty, a checkpoint folder would be taken for a killed run's
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):
            raise _failed_write(path, exc) from exc
        raise


def _failed_write(path: Path, exc: OSError) -> OSError:
    """`exc` as one line naming the output (a full disk's error from a library names no file, or the temporary)."""
    if exc.errno is None:
        return OSError(f"{path} could not be written: {(str(exc).splitlines() or [type(exc).__name__])[0]}")
    return OSError(exc.errno, f"{path} could not be written: {os.strerror(exc.errno)}")  # errno picks the subclass


def set_aside(path: str | Path) -> Path | None:
    """Moves the file at `path`, durably, to a temporary name beside it (as `atomic_path`'s: one a killed run
    leaves is cleared as theirs are); returns where, or None when there was nothing. `put_back` undoes it. The
    file itself is kept: a rename needs no room on a full disk, and keeps its permissions."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    aside = path.with_name(_temporary_name(path.name))
    os.replace(path, aside)  # the random name is this call's: no other writer draws it
    fsync_path(path.parent)
    return aside


def put_back(aside: Path, path: str | Path) -> None:
    """Moves a file `set_aside` moved back to `path`, durably."""
    os.replace(aside, path)
    fsync_path(Path(path).parent)


def stale_temporaries(path: str | Path) -> list[Path]:
    """The temporary files `atomic_path` (or folders `staged_directory`) left beside `path` (a killed write's, or a
    live one's), by their shape."""
    path = Path(path).expanduser().resolve()
    if not path.parent.is_dir():
        return []
    return sorted(entry for entry in path.parent.iterdir() if _temporary_of(entry.name) == path.name)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Removes the temporary files `atomic_path` (or folders `staged_directory`) left beside `path` when its process
    was killed mid-write; call it holding `output_lock(path)`, so that no live writer's is among them. Returns what
    it removed."""
    stale = stale_temporaries(path)
    for leftover in stale:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return stale


# Held, with an exclusive flock, by the process that made a `private_temp_dir` for as long as it lives: the kernel
# releases it when the process dies however it dies, which a process id (reused, or another PID namespace's
# over a shared /tmp) cannot say.
OWNER_LOCK = ".owner.lock"
_owned: dict[Path, int] = {}


def private_temp_dir(prefix: str) -> Path:
    """A new private directory in the temporary folder, `<prefix><host>-<pid>-<random>`, that this process owns
    until `release_temp_dir`. First removes the directories of the same prefix whose owner died: one killed
    outright (a worker killed while loading a model, a server killed with SIGKILL) cannot remove its own, and
    each would stay.
    """
    import fcntl

    _remove_abandoned(prefix)
    directory = Path(tempfile.mkdtemp(prefix=f"{prefix}{socket.gethostname()}-{os.getpid()}-"))
    descriptor = os.open(directory / OWNER_LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    _owned[directory] = descriptor
    return directory


def release_temp_dir(directory: str | Path, remove: bool = True) -> None:
    """Gives up this process's ownership of a `private_temp_dir` and, unless told not to, removes it."""
    directory = Path(directory)
    descriptor = _owned.pop(directory, None)
    if remove:
        shutil.rmtree(directory, ignore_errors=True)
    if descriptor is not None:
        os.close(descriptor)


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A `private_temp_dir` for the block, removed after it."""
    directory = private_temp_dir(prefix)
    try:
        yield directory
    finally:
        release_temp_dir(directory)


def _remove_abandoned(prefix: str) -> None:
    """Removes this user's `private_temp_dir`s of `prefix` whose owner lock no process holds. One without the lock
    file (made by an earlier version, or caught between its making and its lock) is left unless its named
    process is gone from this host and it is over a minute old."""
    import fcntl
    import time

    host = socket.gethostname()
    for entry in Path(tempfile.gettempdir()).glob(f"{glob.escape(prefix + host)}-*-*"):
        owner, pid, _ = entry.name.rsplit("-", 2)
        if owner != prefix + host or not pid.isdigit() or entry in _owned:
            continue
        with contextlib.suppress(OSError):
            if not entry.is_dir() or entry.is_symlink() or entry.stat().st_uid != os.getuid():
                continue
            lock = entry / OWNER_LOCK
            if lock.exists():
                descriptor = os.open(lock, os.O_WRONLY)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner runs
                finally:
                    os.close(descriptor)
            elif _runs(int(pid)) or time.time() - entry.stat().st_mtime < 60:
                continue
            shutil.rmtree(entry, ignore_errors=True)


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def foreign_entries(directory: str | Path, names: Iterable[str]) -> list[str]:
    """Entries of `directory` matching none of the glob patterns `names` (nor an unfinished `atomic_path` of one)."""
    patterns = list(names)

    def ours(name: str) -> bool:
        return any(fnmatch.fnmatchcase(_temporary_of(name) or name, p) for p in patterns)

    return sorted(name for name in (entry.name for entry in Path(directory).iterdir()) if not ours(name))


def _why_not_replaceable(target: Path, why_not_ours: WhyNotOurs | None) -> str | None:
    if not target.exists() and not target.is_symlink():
        return None
    if not target.is_dir():
        return "it exists and is not a directory"
    if not any(target.iterdir()):
        return None
    if why_not_ours is None:
        return "it exists and is not empty"
    return why_not_ours(target)


def check_replaceable(target: str | Path, why_not_ours: WhyNotOurs | None = None) -> Path:
    """The target directory, resolved, if `staged_directory` may write it.

    Raises:
        OutputRefused: it exists and is neither empty nor recognisably the project's (per `why_not_ours`).
    """
    target = check_output_path(target).resolve()
    reason = _why_not_replaceable(target, why_not_ours)
    if reason is not None:
        raise OutputRefused(f"refusing to replace {target}: {reason}; nothing was written")
    return target


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without exchange
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


@contextlib.contextmanager
def staged_directory(target: str | Path, why_not_ours: WhyNotOurs | None = None) -> Iterator[Path]:
    """Yields an empty directory beside `target` to fill; on success it becomes `target`, durably, in one step.

    A `target` that exists is replaced only if it is empty or `why_not_ours(target)` returns None (the project
    wrote it); the old one is swapped out whole and then removed. Anything else is refused before the block
    runs and again before the swap, and nothing is written.

    Raises:
        OutputRefused: `target` exists and is neither empty nor the project's own.
    """
    target = check_replaceable(target, why_not_ours)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Named as `atomic_path` names its files, so that what a write killed here leaves (a whole index's size) is
    # known for a killed write's by `remove_stale_temporaries`, and nothing of the user's is.
    staging = target.with_name(_temporary_name(target.name))
    staging.mkdir(mode=0o700)
    staging.chmod(_replacing_mode(target, 0o777))  # 0700 would become the output's permissions
    try:
        yield staging
        for root, _, files in os.walk(staging):
            for name in files:
                fsync_path(Path(root) / name)
        fsync_path(staging)
        check_replaceable(target, why_not_ours)  # the block may have run long
        if not target.exists() or not any(target.iterdir()):
            os.replace(staging, target)  # POSIX rename replaces an empty directory in one step
        elif not _exchange(staging, target):
            # No exchange on this system: for a moment `target` is missing, never half-written.
            old = target.with_name(_temporary_name(target.name))
            os.replace(target, old)
            os.replace(staging, target)
            os.replace(old, staging)  # so the cleanup below removes it
        fsync_path(target.parent)
    finally:
        # `staging` is now what this call created, or the replaced directory, which was checked to be ours.
        shutil.rmtree(staging, ignore_errors=True)


def remove_directory(directory: str | Path, why_not_ours: WhyNotOurs) -> str | None:
    """Removes `directory` if it is the project's own (`why_not_ours` returns None); else leaves it and says why."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    reason = why_not_ours(directory)
    if reason is None:
        shutil.rmtree(directory, ignore_errors=True)
    return reason


def _probe_folder(target: Path) -> None:
    """Creates and removes an empty file beside `target`, named as `atomic_path`'s temporaries (one a kill leaves is
    cleared as theirs are): the folder takes new files, or the OSError says why not."""
    probe = target.with_name(_temporary_name(target.name))
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except OSError as exc:  # named as the folder: the probe's random name means nothing to the user
        raise OSError(exc.errno, exc.strerror, str(target.parent)) from None
    probe.unlink()


def lock_path(target: str | Path) -> Path:
    """The lock file guarding `target`: a hidden `.<name>.lock` beside it, kept between runs."""
    target = Path(target).expanduser().resolve()
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def output_lock(target: str | Path, wait: float = 0.0) -> Iterator[Path]:
    """Holds the lock on `target` for the block: one writer at a time across processes.

    Args:
        target: the file or directory about to be written.
        wait: seconds to wait for another holder; 0 refuses at once.

    Raises:
        OutputLocked: another process held the lock for all of `wait`.
        OutputRefused: the target's folder cannot be made or written (a file in the path, a read-only file system,
            no permission): one line naming the output.
    """
    from filelock import FileLock, Timeout

    target = Path(target).expanduser().resolve()
    path = check_output_path(lock_path(target), "lock file")  # opened to write, truncated: never through a link
    # One instance per path in a process, so a holder may take it again (re-entrant) instead of blocking itself.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path, is_singleton=True)
        lock.acquire(timeout=wait)
        try:
            # Last night's lock file opens in a folder that no longer takes new files (made read-only since): the
            # lock alone does not say the output can be written, and the run would fail at its first write.
            _probe_folder(target)
        except BaseException:
            lock.release()
            raise
    except Timeout:
        if not path.exists():  # filelock reports a lock file it could not create as a lock it could not take
            raise OutputRefused(f"{target} cannot be written: {path} cannot be created there") from None
        waited = f"; waited {wait:g} s" if wait > 0 else ""
        raise OutputLocked(
            f"{target} is being written by another process (it holds {path}{waited}); "
            "wait for it to finish or write elsewhere"
        ) from None
    except (FileExistsError, NotADirectoryError) as exc:
        named = Path(exc.filename)
        blocker = next((p for p in (named, *named.parents) if p.exists() and not p.is_dir()), named)
        raise OutputRefused(f"{target} cannot be written: {blocker} is a file, not a folder") from None
    except OSError as exc:
        if not isinstance(exc, PermissionError) and exc.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        raise OutputRefused(f"{target} cannot be written: {exc.strerror} ({exc.filename})") from None
    try:
        yield path
    finally:
        lock.release()
