"""The installed `creator-match` command, as the tests call it: as a separate process, or in this one.

A test runs the command as a process where the process is what it proves (the console script, exit statuses
seen by a scheduler, kill -9, locks between processes, servers). Where it checks what the command does with
its arguments, `run_in_process` calls the same `main` the console script calls, without paying for a
new interpreter's imports and model load each time; with `warnings_on_stderr`, the command's warnings reach its
standard error as in a process of its own, where pytest would record them instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CLI", "free_port", "held_by_another_process", "match_args", "run_in_process", "run_process", "stop"]

CLI = str(Path(sys.executable).parent / "creator-match")


def match_args(world: Path, out: Path, *extra: str) -> list[str]:
    """`creator-match match` on a simulated world's new campaigns and creators, writing `out`."""
    return [
        CLI,
        "match",
        "--campaigns",
        str(world / "new_campaigns.parquet"),
        "--creators",
        str(world / "creators.parquet"),
        "--out",
        str(out),
        *extra,
    ]


def run_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`creator-match ARGS` as a separate process with this process's environment."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=dict(os.environ), cwd=cwd)


@contextlib.contextmanager
def _warnings_as_a_new_interpreter() -> Iterator[None]:
    """Python's own warning filters for the block, as a new interpreter starts with them (no -W, no
    $PYTHONWARNINGS), and each warning shown written to `sys.stderr` as then, through `warnings.formatwarning`:
    pytest records the warnings of the tests' process instead, and turns on some a new interpreter ignores. Filters
    a library set when this process imported it are dropped too, so a block shows at least a process's warnings."""

    def written(message, category, filename, lineno, file=None, line=None) -> None:
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():  # entering it also forgets which warnings were shown once already
        warnings.resetwarnings()
        for ignored in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
            warnings.simplefilter("ignore", ignored)
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
        warnings.showwarning = written
        yield


def run_in_process(
    *args: str, cwd: Path | None = None, warnings_on_stderr: bool = False
) -> subprocess.CompletedProcess:
    """`creator-match ARGS` through the console script's own `main`, in this process: its exit status, stdout and
    stderr, as `run_process` gives them. The working directory and MLflow's tracking URI are put back as they
    were, so the call leaves no more trace in this process than a separate one would. With `warnings_on_stderr`
    its warnings are filtered and written to its stderr as in a process of its own, not recorded by pytest."""
    import mlflow

    from matcher.cli import main

    out, err = io.StringIO(), io.StringIO()
    here, tracking = Path.cwd(), mlflow.get_tracking_uri()
    shown = _warnings_as_a_new_interpreter() if warnings_on_stderr else contextlib.nullcontext()
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), shown:
            code = main(list(args))
    finally:
        os.chdir(here)
        mlflow.set_tracking_uri(tracking)
    return subprocess.CompletedProcess([CLI, *args], code, out.getvalue(), err.getvalue())


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stops a server process started by a test: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_HOLDER = """
import sys
from features.safe_write import output_lock

with output_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


@contextlib.contextmanager
def held_by_another_process(path: Path):
    """`output_lock(path)` held by a separate process (this checkout's packages first) for the block, or until the
    block calls the function it is given (from any thread)."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    release = threading.Lock()

    def let_go() -> None:
        with release:
            if not holder.stdin.closed:
                holder.stdin.close()

    try:
        assert holder.stdout.readline().strip() == "held"
        yield let_go
    finally:
        let_go()
        holder.wait(timeout=60)
