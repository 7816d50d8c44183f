"""`creator-match`: the contract's commands, assembled from `matcher.commands` into one command line."""

from __future__ import annotations

import os

from features.environment import OFFLINE_ENVIRONMENT, QUIET_ENVIRONMENT, debug_enabled, unset_defaults

# Quiet, offline defaults before any library reads them; users can still override each.
os.environ.update(unset_defaults({**OFFLINE_ENVIRONMENT, **QUIET_ENVIRONMENT}))

import logging
import sys
import warnings

import typer

from matcher.commands.common import UserError, echo_rejects
from matcher.commands.data import demo, index, promote, simulate, train
from matcher.commands.match import match
from matcher.commands.serve import serve, similar
from matcher.commands.verify import verify

__all__ = ["app", "main", "run"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Which creators to invite to a commission campaign, and how many.",
)
# Listed in --help in this order: the data's life cycle, then what uses it.
for _command in (simulate, train, promote, index, match, verify, similar, serve, demo):
    app.command()(_command)


def _quiet_libraries() -> None:
    # Loggers only. Warnings keep Python's filters, which already hide libraries' own deprecations; what is
    # left (a ranker from another library version, a fit that did not converge) is the user's to see.
    for name in ("mlflow", "alembic", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _one_line(message, category, filename, lineno, line=None) -> str:
    # A warning is for the user of the command, not a developer: what and why on one line, not a source line, and
    # "warning", not the class Python files it under ("UserWarning"), which says nothing to the user.
    return f"creator-match: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 1 anything else)."""
    _quiet_libraries()
    formatted, warnings.formatwarning = warnings.formatwarning, _one_line
    try:
        # Without standalone mode click returns the code of a typer.Exit rather than raising it.
        code = app(args=argv, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        return 1
    except typer.TyperException as exc:  # usage errors: unknown option, missing or malformed value
        print(f"creator-match: {exc.format_message()}", file=sys.stderr)
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
        from training.registry import ModelNotFound

        if isinstance(exc, NoValidRows):  # its rejected rows named as any run's, then the refusal's one line
            echo_rejects(exc.rejects, exc.rejects_file)
        if isinstance(exc, InputError | OutputRefused | ArtifactMismatch | ModelNotFound | FileNotFoundError):
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
