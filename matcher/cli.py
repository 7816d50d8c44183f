"""`creator-match`: the contract's commands, assembled from `matcher.commands` into one command line."""

from __future__ import annotations

import os

from features.environment import OFFLINE_ENVIRONMENT, QUIET_ENVIRONMENT, debug_enabled, unset_defaults

# Quiet, offline defaults before any library reads them; users can still override each.
os.environ.update(unset_defaults({**OFFLINE_ENVIRONMENT, **QUIET_ENVIRONMENT}))

import functools
import logging
import signal
import sys
import warnings

from matcher.termination import terminated_as_exit

__all__ = ["app", "main", "one_line_warning", "run"]  # noqa: F822 (`app` comes from the module's __getattr__)


def __getattr__(name: str):
    # `app` is built on first use, not on import: `main` takes SIGTERM before typer and the commands load.
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _app():
    """The command line: typer's app with the contract's commands."""
    import typer

    from matcher.commands.data import demo, index, promote, simulate, train
    from matcher.commands.match import match
    from matcher.commands.serve import serve, similar
    from matcher.commands.verify import verify

    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Which creators to invite to a commission campaign, and how many.",
    )
    # Listed in --help in this order: the data's life cycle, then what uses it.
    for command in (simulate, train, promote, index, match, verify, similar, serve, demo):
        app.command()(command)
    return app


def _quiet_libraries() -> None:
    # Loggers only. Warnings keep Python's filters, which already hide libraries' own deprecations; what is
    # left (a ranker from another library version, a fit that did not converge) is the user's to see.
    for name in ("mlflow", "alembic", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """How every process of the command shows a warning (`warnings.formatwarning`): `serve`'s worker processes too."""
    # A warning is for the user of the command, not a developer: what and why on one line, not a source line, and
    # "warning", not the class Python files it under ("UserWarning"), which says nothing to the user.
    return f"creator-match: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 1 anything else, 143 stopped by SIGTERM).

    SIGTERM (a scheduler's time limit) ends any command as SystemExit(143) from here on, before typer and the
    commands load, not only once a run went ahead: the work libraries and the model load in the command take
    seconds, in which the signal's default action would end the process with no line. The command unwinds
    (half-written files removed, locks released) and one line on standard error says it stopped: a match run that
    got as far as its checks says where it stood (`matcher.batch.run_match`); before them, that nothing was
    written; any other command, that it was stopped.
    """
    # Main thread only, where Python takes signals (a test may call main from another); the handler found is put
    # back, so that a caller in this process (a test) keeps its own.
    try:
        with terminated_as_exit():
            return _main(argv)
    except SystemExit as exc:
        if exc.code != 128 + signal.SIGTERM or getattr(exc, "told", False):
            raise
        command = next((arg for arg in argv or sys.argv[1:] if not arg.startswith("-")), "the command")
        print(f"creator-match: {command} stopped by SIGTERM{_standing(command)}", file=sys.stderr)
        raise


def _standing(command: str) -> str:
    """Where a command stopped by SIGTERM stood, when nothing closer to the work said so (`main`)."""
    # A match run says where it stood itself from its checks until its outputs are written (`told`); before them it
    # writes nothing. What else a command leaves is its own: each says so where it writes.
    return " before it went ahead; nothing was written" if command == "match" else ""


def _usage_line(exc: Exception) -> str:
    """A usage error's line, naming the value given where the check that refused it does not: typer's range and
    type checks say "Input should be greater than or equal to 1" of `--chunk-size 0`; their cause, pydantic's
    validation error, holds what was typed."""
    message = exc.format_message()
    errors = getattr(exc.__cause__, "errors", None)
    given = [error["input"] for error in errors() if "input" in error] if callable(errors) else []
    return f"{message} (got {given[0]!r})" if given else message


def _main(argv: list[str] | None) -> int:
    import typer

    from matcher.commands.common import UserError, echo_rejects

    _quiet_libraries()
    formatted, warnings.formatwarning = warnings.formatwarning, one_line_warning
    try:
        # Without standalone mode click returns the code of a typer.Exit rather than raising it.
        code = _app()(args=argv, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        return 1
    except typer.TyperException as exc:  # usage errors: unknown option, missing or malformed value
        print(f"creator-match: {_usage_line(exc)}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"creator-match: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # The other user errors' modules load here, not before the command: features.tables loads pandas, which
        # `--help` and a usage error do without (a third of their time), and a command that raised one of them
        # has loaded its module already.
        from features.safe_write import OutputRefused
        from features.tables import InputError, NoValidRows
        from matcher.candidate_index import ArtifactMismatch
        from training.registry import ModelNotFound, StoreMisnamed

        if isinstance(exc, NoValidRows):  # its rejected rows named as any run's, then the refusal's one line
            echo_rejects(exc.rejects, exc.rejects_file)
        if isinstance(
            exc, InputError | OutputRefused | ArtifactMismatch | ModelNotFound | StoreMisnamed | FileNotFoundError
        ):
            print(f"creator-match: {exc}", file=sys.stderr)
            return 2
        if debug_enabled():
            raise
        print(
            f"creator-match: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.formatwarning = formatted


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
