"""MLflow: where runs are tracked, how rankers are registered, promoted and loaded. The one place that loads them."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from urllib.parse import urlsplit

from features.environment import QUIET_ENVIRONMENT, REGISTRY_URI_ENV, TRACKING_URI_ENV, unset_defaults
from features.errors import MatcherError
from features.safe_write import WhyNotOurs, remove_directory, temp_dir

__all__ = [
    "CHAMPION",
    "DEFAULT_MODEL_NAME",
    "DISTRIBUTION",
    "FIRST_VERSION",
    "MODEL_ARTIFACT",
    "MODEL_DIGEST_TAG",
    "MODEL_LIBRARIES",
    "DigestMismatch",
    "IncompatibleModel",
    "LibraryVersionWarning",
    "LoadedRanker",
    "ModelNotFound",
    "NotARanker",
    "PromotionUnrecorded",
    "RegistrationIncomplete",
    "RegistryUnavailable",
    "StoreMisnamed",
    "UncheckedModelWarning",
    "champion_version",
    "check_libraries",
    "check_server_reachable",
    "check_stored_files",
    "code_tags",
    "configure_tracking",
    "create_store",
    "finish_registration",
    "first_line",
    "git_state",
    "has_earlier_version",
    "installed_versions",
    "load_ranker",
    "logged_digest",
    "model_code_paths",
    "model_digest",
    "pip_requirements",
    "promote",
    "register",
    "resolve_version",
    "sqlite_store_path",
    "tracking_store",
    "training_records",
    "use_experiment",
]

DEFAULT_MODEL_NAME = "creator-ranker"
CHAMPION = "champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


# Where `train` logs the ranker in its run (`runs:/<run id>/model`).
MODEL_ARTIFACT = "model"
# The tag, on a registered version and on the run that logged it, holding `model_digest` of the model's files as
# `train` logged them; `load_ranker` compares the files it downloads with it before unpickling any (with the run's
# for a version registered from the run otherwise than by `train`: `_recorded_digest`).
MODEL_DIGEST_TAG = "model_sha256"
# Written by MLflow beside a model it downloads by a `models:/` or `runs:/` URI (the name and version it was
# downloaded as, replacing any such file the store holds): no file of the store, and not the same at train and load.
_DOWNLOAD_NOTE = "registered_model_meta"

# What the registered pyfunc imports to load and score (its code travels with it as `code_paths`); their
# versions are recorded at training and compared when the model is loaded.
MODEL_LIBRARIES = ("mlflow", "cloudpickle", "scikit-learn", "scipy", "numpy", "pandas", "pydantic")
# A pickled estimator is only guaranteed to predict the same under the scikit-learn that fitted it.
STRICT_LIBRARIES = ("scikit-learn",)


class ModelNotFound(MatcherError):
    """A model URI that does not resolve to a registered or logged ranker."""


class IncompatibleModel(ModelNotFound):
    """A ranker fitted under another version of a library whose pickles do not carry across versions."""


class NotARanker(ModelNotFound):
    """A model whose own content is no ranker this code can load: a file that cannot be unpickled (truncated,
    damaged, naming code that is not here) or another project's model. No later attempt loads it."""


class DigestMismatch(NotARanker):
    """A model whose files are not those `train` registered: their digest is not the one recorded with the version
    (or run). Refused before anything of it is unpickled; as a NotARanker, `serve` does not try it again."""


class UncheckedModelWarning(UserWarning):
    """A model from the store whose files no recorded digest covers (logged by hand, or by an earlier release):
    loaded unchecked."""


class LibraryVersionWarning(UserWarning):
    """A ranker trained under another version of one of its libraries; it loads, but may score differently."""


class RegistryUnavailable(MatcherError):
    """The model registry could not be read; the message names the store."""


class StoreMisnamed(MatcherError):
    """A tracking or registry URI that names no store MLflow can read (a mistyped scheme, a SQLite file without
    `sqlite:///`): a setting to correct, not a store that failed; the message names the URI and what it should be."""


class RegistrationIncomplete(Exception):
    """A registration step failed after earlier ones succeeded; the message says what was left behind."""


class PromotionUnrecorded(Exception):
    """`promote` moved the champion alias, then could not record the promotion in tags; the message says where the
    alias points, why the tags failed and how to roll back."""


def tracking_store() -> str:
    """The tracking URI in use, without any secret it carries (`_shown`), for messages."""
    import mlflow

    return _shown(mlflow.get_tracking_uri())


def _shown(uri: str) -> str:
    """`uri` without any secret it carries, for messages: a password (`user:***@`), or a userinfo without a colon
    whole (`***@`), which is how a token is given (`http://TOKEN@host`) and so is no user name to show."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, colon, _ = userinfo.partition(":")
    return parts._replace(netloc=f"{user + ':' if colon else ''}***@{host}").geturl()


def first_line(exc: BaseException) -> str:
    """An exception's message's first line, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _store_failed(exc: BaseException) -> bool:
    """Whether `exc` is the store's database failing (locked, corrupt, unreadable), raised by SQLAlchemy as MLflow
    opens the store or wrapped by MLflow's sessions, rather than an answer from a store that was read (no such
    model, version or run)."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError) or isinstance(exc.__cause__, SQLAlchemyError)


def _unreadable(what: str, exc: BaseException) -> RegistryUnavailable:
    """The one line for a store that cannot be read: what could not be done, the store (no password) and why."""
    reason = first_line(exc)
    if "database is locked" in reason:  # SQLite's busy timeout ran out: another connection holds the file
        reason += " (another process holds it; run again once that one has finished)"
    return RegistryUnavailable(f"cannot {what} from the registry at {tracking_store()}: {reason}")


def configure_tracking() -> str:
    """Points MLflow at $MLFLOW_TRACKING_URI, or a SQLite file in the working directory; returns the URI."""
    import mlflow

    uri = os.environ.get(TRACKING_URI_ENV) or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri


def create_store() -> None:
    """Sets up the SQLite store MLflow points at (or checks it is), one process at a time: two first trainings at
    once both set up its tables, and one failed on the other's ("duplicate column name"). Only what writes to the
    store calls it: a command that only reads refuses a store that is not there rather than creating it empty.

    Raises:
        RegistryUnavailable: the store cannot be read (locked, corrupt), naming it in one line.
    """
    import mlflow
    from mlflow import MlflowClient

    # Not skipped when the file exists: SQLite creates it a second before the tables are all there, and a second
    # process that saw it then set the tables up again beside the first.
    if sqlite_store_path(mlflow.get_tracking_uri()) is None:
        return
    with store_lock():
        try:
            client = MlflowClient()
            client.search_experiments(max_results=1)  # the tracking tables
            client.search_registered_models(max_results=1)  # and the registry's, in the same file
        except Exception as exc:
            if _store_failed(exc):
                raise _unreadable("read the experiments and models", exc) from exc
            raise


def use_experiment(name: str) -> None:
    """Makes `name` the active experiment, creating it if need be; a SQLite store's new experiment keeps its runs'
    artifacts in `mlruns` beside the database file.

    MLflow's own default for a `sqlite:` store is `./mlruns` of whatever directory the command runs in, fixed when
    the experiment is created: a nightly job started from another directory than the first `train` (cron starts
    in the home directory) kept the store's runs and models in two places, and a store on a shared volume had its
    artifacts on the local disk of whichever host trained first. A server's store keeps its own default.

    Raises:
        RegistryUnavailable: the store cannot be read (locked, corrupt), naming it in one line.
    """
    import mlflow

    path = sqlite_store_path(mlflow.get_tracking_uri())
    if path is not None:
        with store_lock():  # of two first trainings at once, one creates it and the other finds it
            try:
                if mlflow.get_experiment_by_name(name) is None:
                    artifacts = path.resolve().parent / "mlruns"
                    mlflow.create_experiment(name, artifact_location=str(artifacts))
            except Exception as exc:
                if _store_failed(exc):
                    raise _unreadable(f"create experiment {name!r}", exc) from exc
                raise
    mlflow.set_experiment(name)


def check_server_reachable(wait: float = 10.0) -> None:
    """Refuses a tracking or registry URI that names no store MLflow reads, and a server that takes no connection
    within `wait` seconds in all: MLflow retried a refused connection for about four minutes before the same error.
    Called once, at a command's start (later, MLflow's retries ride out a server's restart). A server behind a
    proxy, or reached otherwise than by HTTP, is left to MLflow.

    Raises:
        StoreMisnamed: a URI of a scheme MLflow has no store for, or a bare path to a file (`_check_named`).
        RegistryUnavailable: nothing accepted a connection at one of the servers' addresses for `wait` seconds.
    """
    import mlflow

    uris = list(dict.fromkeys([mlflow.get_tracking_uri(), mlflow.get_registry_uri()]))
    for uri in uris:
        _check_named(uri)
    for uri in uris:
        _check_reachable(uri, wait)


def _check_named(uri: str) -> None:
    """Refuses a store URI MLflow would fail on with a paragraph (a scheme it has no store for, exit 1 as if the
    store had failed), or read as something else than meant: a bare path to a file, which MLflow takes for the
    folder of a file store, is a SQLite database given without `sqlite:///`."""
    import difflib

    from mlflow.tracking._model_registry.utils import _get_store_registry
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    parts = urlsplit(uri)
    # The setting to correct: the registry's own when it holds this URI and the tracking one does not.
    named_by_registry = os.environ.get(REGISTRY_URI_ENV) == uri != os.environ.get(TRACKING_URI_ENV)
    setting = REGISTRY_URI_ENV if named_by_registry else TRACKING_URI_ENV
    if parts.scheme in ("", "file") and Path(parts.path).is_file():
        raise StoreMisnamed(
            f"the MLflow store {_shown(uri)} is a file, which MLflow would read as a folder of runs; "
            f"a SQLite store is named sqlite:///{Path(parts.path).absolute()} (${setting})"
        )
    stores = _get_store_registry()
    try:
        stores.get_store_builder(uri)  # the schemes MLflow has a store for, plugins included; opens nothing
    except UnsupportedModelRegistryStoreURIException:
        known = sorted(scheme for scheme in stores._registry if scheme)
        meant = difflib.get_close_matches(parts.scheme, known, n=1)
        hint = f"did you mean {meant[0]}:?" if meant else f"it reads {', '.join(known)}"
        raise StoreMisnamed(
            f"the MLflow store {_shown(uri)} names no store: MLflow has none of the scheme {parts.scheme!r} "
            f"({hint}; ${setting})"
        ) from None


def _check_reachable(uri: str, wait: float) -> None:
    import socket
    import time
    import urllib.request

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(parts.hostname):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((parts.hostname, port), timeout=max(0.5, min(5.0, left))):
                return
        except OSError as exc:
            if time.monotonic() + 1.0 >= deadline:
                reason = exc.strerror or type(exc).__name__
                raise RegistryUnavailable(
                    f"the MLflow server at {_shown(uri)} takes no connection ({reason} for {wait:g} s)"
                ) from None
            time.sleep(1.0)


def sqlite_store_path(uri: str) -> Path | None:
    """The file a SQLite tracking or registry URI names, whether or not it exists yet; None for a store that is
    not a SQLite file (a server, an in-memory database, not a database URL at all)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(uri)
    except Exception:  # not a database URL (e.g. `databricks`): not a SQLite file
        return None
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if url.query.get("uri") == "true" and database.startswith("file:"):  # sqlite:///file:path?uri=true
        database = urlsplit(database).path
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


@contextlib.contextmanager
def store_lock(wait: float = 600.0) -> Iterator[None]:
    """Holds the store for the block, against other processes, where the store is a local SQLite file (a lock
    file beside it); a tracking server orders its own requests, and there this holds nothing."""
    import mlflow

    from features.safe_write import output_lock

    path = sqlite_store_path(mlflow.get_tracking_uri())
    if path is None:
        yield
        return
    with output_lock(path, wait=wait):
        yield


def installed_versions() -> dict[str, str]:
    """The installed version of each of MODEL_LIBRARIES."""
    return {name: package_version(name) for name in MODEL_LIBRARIES}


# The distribution this project installs as (pyproject.toml's name), whose version a run records.
DISTRIBUTION = "creator-matcher"
# The packages pyproject.toml installs: an untracked file there is code a run may have imported.
CODE_PACKAGES = ("matcher", "training", "features", "simulation")
GIT_TIMEOUT = 5.0  # seconds for each git command: a hung git must not hold up a training
# The `promotion` tag of a model's first version, crowned by `train` without a gate to pass.
FIRST_VERSION = "the model's first version, made champion by train (no champion to compare with)"


def _git(project: Path, *args: str) -> str | None:
    """`git -C project ARGS`'s output, or None when git is missing, fails, or is slow."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(project), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def code_tags() -> dict[str, str]:
    """Which code a run ran: `code_version` (the installed distribution's version, `unknown` if not installed) and,
    when the imported code is a git checkout, `git_commit` and `git_dirty` (`git_state`). Never raises.

    MLflow's own `mlflow.source.git.commit` looks beside the entry point, the virtualenv's `creator-match` script,
    which is no checkout (or not the one whose code was imported): it is usually not set.
    """
    try:
        found = {"code_version": package_version(DISTRIBUTION)}
    except PackageNotFoundError:
        found = {"code_version": "unknown"}
    project = Path(__file__).resolve().parent.parent
    # Only a checkout of this project: installed into a virtualenv inside some repository, the code is not that
    # repository's, whose commit `git -C` would give.
    top = _git(project, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != project:
        return found
    return found | git_state(project)


def git_state(checkout: Path) -> dict[str, str]:
    """`git_commit`, the checkout's HEAD, and `git_dirty`: `true` when a tracked file differs from that commit or
    the project's packages (CODE_PACKAGES) hold an untracked file, code that ran but no commit holds; other
    untracked files, such as outputs, do not count. Empty where git cannot tell; never raises."""
    commit = _git(checkout, "rev-parse", "HEAD")
    if commit is None or not commit.strip():
        return {}
    found = {"git_commit": commit.strip()}
    changed = _git(checkout, "status", "--porcelain", "--untracked-files=no")
    added = _git(checkout, "ls-files", "--others", "--exclude-standard", "--", *CODE_PACKAGES)
    if changed is not None and added is not None:
        found["git_dirty"] = "true" if changed.strip() or added.strip() else "false"
    return found


def pip_requirements() -> list[str]:
    """What a process needs to load the registered pyfunc, pinned; given explicitly so MLflow need not infer it.

    The project's own code is not among them: it is shipped inside the model (`code_paths`), so serving the
    model never installs a distribution by this project's name from a package index.
    """
    return [f"{name}=={version}" for name, version in installed_versions().items()]


@dataclass
class LoadedRanker:
    """A ranker loaded from the registry or a path: the pyfunc's python model and where it came from."""

    model: object  # training.pyfunc.RankerModel
    uri: str
    version: str  # e.g. "creator-ranker/3", or the URI for unregistered models
    run_id: str | None = None  # the training run, which holds the creators' records as of training


def model_code_paths() -> list[str]:
    """The project's packages the pyfunc imports, shipped inside the logged model (MLflow's `code_paths`).

    Loading puts them first on `sys.path`, so a served or loaded model runs the code it was trained with,
    needs no distribution of this project installed, and is not shadowed by another `features` module.
    """
    import features
    import training

    return [str(Path(package.__file__).parent) for package in (features, training)]


def champion_version(name: str) -> str | None:
    """The version the `champion` alias points at; None when the model is not registered or has no champion.

    Raises:
        ModelNotFound: `name` is no name MLflow registers (empty, or holding `/` or `:`); the store was read.
        RegistryUnavailable: the store cannot be read (unreachable, locked, corrupt), naming the store: a
            registry that cannot be read must not pass for one without a champion.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

    try:
        model = MlflowClient().get_registered_model(name)
    except Exception as exc:
        if _does_not_exist(exc):
            return None
        # The name is the only parameter: the argument's fault, which `train` and `promote` read first of all.
        if isinstance(exc, MlflowException) and exc.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE):
            raise ModelNotFound(f"model name {name!r} cannot be registered: {first_line(exc)}") from None
        raise _unreadable(f"read model {name!r}", exc) from exc
    version = model.aliases.get(CHAMPION)
    return None if version is None else str(version)


def _does_not_exist(exc: BaseException) -> bool:
    """Whether MLflow raised `exc` for a model, version or run that is not in the store (the store was read)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    return isinstance(exc, MlflowException) and exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def has_earlier_version(name: str, version: str) -> bool:
    """Whether model `name` has a version registered before `version` (deleted ones are gone)."""
    from mlflow import MlflowClient

    # Quoted as Python quotes it: a name with an apostrophe (which MLflow registers) is put between double quotes.
    found = MlflowClient().search_model_versions(f"name = {name!r}")
    return any(int(other.version) < int(version) for other in found)


def register(model_uri: str, name: str, tags: dict[str, str] | None = None) -> str:
    """Registers a logged model as a new version of `name`, with `tags` (set as the version is created, so no
    version is ever without them); returns the version.

    Raises:
        RegistrationIncomplete: registration failed; the model stays logged at `model_uri`, nothing is registered.
    """
    import mlflow

    try:
        return str(mlflow.register_model(model_uri, name, tags=tags).version)
    except Exception as exc:
        raise RegistrationIncomplete(
            f"logged the model at {model_uri}, but registering it as {name} in {tracking_store()} failed: "
            f"{first_line(exc)}; no version was registered and the `{CHAMPION}` alias was not moved"
        ) from exc


def finish_registration(name: str, version: str, description: str, make_champion: bool) -> bool:
    """Gives a freshly registered version its description (the model card) and, if asked, the champion alias;
    returns whether it is now champion.

    The alias is only set on the model's first version (no earlier one exists) while no version holds it, looked
    up again with the store held where it is a local file: after that only `promote` moves it, so a version
    registered once the alias was deleted (or its version was) does not crown itself unreviewed; and of two first
    trainings at once, which both saw no champion when they started, only the first registered takes it.

    Raises:
        RegistrationIncomplete: a step failed; the message says which version is registered, whether it has
            its description and where the alias points.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    registered = f"registered {name} version {version} in {tracking_store()}"
    try:
        client.update_model_version(name, version, description=description)
    except Exception as exc:
        raise RegistrationIncomplete(
            f"{registered}, but could not set its description (the model card): {first_line(exc)}; "
            f"the `{CHAMPION}` alias was not moved"
        ) from exc
    if not make_champion:
        return False
    try:
        with store_lock():
            if champion_version(name) is not None or has_earlier_version(name, version):
                return False
            client.set_registered_model_alias(name, CHAMPION, version)
        # A tracking server has no lock to hold: the alias may have been set meanwhile; the one whose setting
        # stayed is champion, and only it says so.
        crowned = champion_version(name) == str(version)
    except Exception as exc:
        raise RegistrationIncomplete(
            f"{registered} with its model card, but could not make it `{CHAMPION}`: {first_line(exc)}; "
            f"the alias is not set (`creator-match promote --model-name {name} --version {version}` sets it)"
        ) from exc
    if crowned:
        try:
            _record_promotion(name, str(version), None, FIRST_VERSION)
        except Exception as exc:
            raise RegistrationIncomplete(
                f"{registered} with its model card as `{CHAMPION}`, but could not record its promotion in tags: "
                f"{first_line(exc)}"
            ) from exc
    return crowned


def resolve_version(uri: str) -> str:
    """`name/version` of a `models:/` URI (an alias is resolved to the version it points at now); else the URI."""
    from mlflow import MlflowClient

    if not uri.startswith("models:/"):
        return uri
    ref = uri[len("models:/") :]
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name}/{MlflowClient().get_model_version_by_alias(name, alias).version}"
    return ref


# MLflow's artifact progress bar, off as the command line's quiet defaults have it: it is read at each download, so
# setting it where rankers and their records are downloaded quiets the Python API too, which otherwise drew a bar
# on standard error for every Matcher built from a model URI. Named by QUIET_ENVIRONMENT, not here.
_NO_DOWNLOAD_BARS = {
    name: value for name, value in QUIET_ENVIRONMENT.items() if name.startswith("MLFLOW_") and "PROGRESS_BAR" in name
}


def _quiet_downloads() -> None:
    """Turns MLflow's download progress bars off, unless the user set them either way."""
    os.environ.update(unset_defaults(_NO_DOWNLOAD_BARS))


def model_digest(directory: Path) -> str:
    """The SHA-256 digest (hex) of a model directory's files: of one line `<file's SHA-256 hex>  <path>\\n` per
    regular file, its path relative to `directory` with `/` separators, in the order of the paths' code points,
    the lines `sha256sum` prints. So, in the directory, `find . -type f ! -path ./registered_model_meta ! -path
    '*/__pycache__/*' -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum` gives the same digest.
    Left out: the note MLflow writes into each download (`registered_model_meta`) and Python's bytecode caches
    (`__pycache__`), which any process that imports the model's code where the store keeps it (plain MLflow
    loading a local store's model) writes beside it; empty directories are not counted."""
    files = {
        path.relative_to(directory).as_posix(): path
        for path in directory.rglob("*")
        if path.is_file() and _BYTECODE not in path.relative_to(directory).parts
    }
    files.pop(_DOWNLOAD_NOTE, None)
    whole = hashlib.sha256()
    for name in sorted(files):
        with files[name].open("rb") as file:
            whole.update(f"{hashlib.file_digest(file, 'sha256').hexdigest()}  {name}\n".encode())
    return whole.hexdigest()


def _download_model(uri: str, into: Path) -> Path:
    """Downloads the model at `uri` into a new folder under `into` (not `into` itself, which may hold other files,
    as a `temp_dir` holds its owner lock); returns the model's directory there."""
    import mlflow.artifacts

    folder = into / "download"
    folder.mkdir()
    model = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    # Bytecode is not in the digest, so none is kept to be imported: Python compiles the checked sources again.
    for cache in [path for path in model.rglob(_BYTECODE) if path.is_dir()]:
        remove_directory(cache, _download_cache(folder))
    return model


# Python's bytecode caches: written beside the model's code by whichever process imports it there.
_BYTECODE = "__pycache__"


def _download_cache(folder: Path) -> WhyNotOurs:
    """What `remove_directory` may remove of a download: a bytecode cache inside that download's own folder."""

    def why_not(path: Path) -> str | None:
        ours = path.name == _BYTECODE and path.resolve().is_relative_to(folder.resolve())
        return None if ours else f"{path} is not a bytecode cache of the download in {folder}"

    return why_not


def logged_digest(model_uri: str) -> str:
    """`model_digest` of a logged model's files as the store holds them, downloaded by the same function that
    `load_ranker` downloads them with: what is recorded is what a load finds in the store when nothing changed."""
    _quiet_downloads()
    with temp_dir("creator-match-model-") as download:
        return model_digest(_download_model(model_uri, download))


@dataclass(frozen=True)
class _RecordedDigest:
    """The digest recorded for a model's files and what records it, as messages name it (`name version N`, `run
    ID`); or, when none covers them, `digest` None and `owner` why not, one clause."""

    digest: str | None
    owner: str


def _recorded_digest(uri: str, version: str) -> _RecordedDigest:
    """The digest recorded for the model at `uri` (resolved to `version`, `name/N`), the one place it is looked up:
    a version's `model_sha256` tag, or for a version with none, its run's when its files are the `model` `train`
    logged in that run (registered from the run by hand, or with the UI's "Register model"); a `runs:/<run>/model`
    URI's run's; a logged model's (`models:/m-...`) run's when it is that run's `model`.

    Raises:
        MlflowException: the store failed while read (the caller says so in one line).
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    if uri.startswith("models:/") and "/" in version:
        name, number = version.rsplit("/", 1)
        found = client.get_model_version(name, number)
        owner = f"{name} version {number}"
        if MODEL_DIGEST_TAG in found.tags:
            return _RecordedDigest(found.tags[MODEL_DIGEST_TAG], owner)
        if not found.run_id:
            return _RecordedDigest(None, f"{owner} has no {MODEL_DIGEST_TAG} tag and names no run")
        digest, why_not = _run_model_digest(found.source or "", found.run_id)
        if digest is None:
            return _RecordedDigest(None, f"{owner} has no {MODEL_DIGEST_TAG} tag, and {why_not}")
        return _RecordedDigest(digest, f"run {found.run_id} (whose `{MODEL_ARTIFACT}` {owner} registers)")
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if uri.startswith("runs:/") and path.strip("/") == MODEL_ARTIFACT:
        digest, why_not = _run_model_digest(uri, run_id)
        return _RecordedDigest(digest, f"run {run_id}" if digest else why_not)
    model_id = uri.removeprefix("models:/")
    if uri.startswith("models:/") and model_id == version:  # a logged model by its id, `models:/m-...`
        run_id = client.get_logged_model(model_id).source_run_id
        if not run_id:
            return _RecordedDigest(None, f"{model_id} names no run")
        digest, why_not = _run_model_digest(uri, run_id)
        return _RecordedDigest(digest, f"run {run_id} (which logged {model_id})" if digest else why_not)
    return _RecordedDigest(
        None, f"only a registered version, a run's `{MODEL_ARTIFACT}` or a logged model has a recorded digest"
    )


def _run_model_digest(source: str, run_id: str) -> tuple[str | None, str]:
    """Run `run_id`'s `model_sha256` tag, when `source` names the model `train` logged in that run
    (`runs:/<run>/model`, `models:/<its id>` or its artifact location); else None and why not, one clause.
    Another source (a folder, another model of that run) holds files the tag does not describe: they are left
    unchecked, not refused as changed.

    Raises:
        MlflowException: the store failed while read (a run that is gone is a reason, not a failure).
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        if not _does_not_exist(exc):
            raise
        return None, f"run {run_id} is not in the store"
    digest = run.data.tags.get(MODEL_DIGEST_TAG)
    if digest is None:
        return None, f"run {run_id} has no {MODEL_DIGEST_TAG} tag (a model logged by hand, or by an earlier release)"
    if _same_location(source, f"runs:/{run_id}/{MODEL_ARTIFACT}"):
        return digest, ""
    # `train` logs one model named `model` in its run, and the tag is its digest: of two, which it is of is unknown.
    logged = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"name = '{MODEL_ARTIFACT}' AND source_run_id = '{run_id}'",
        max_results=2,
    )
    if len(logged) != 1:
        return None, f"run {run_id} logged {len(logged)} models named `{MODEL_ARTIFACT}`, not one"
    model = logged[0]
    if _same_location(source, f"models:/{model.model_id}") or _same_location(source, model.artifact_location):
        return digest, ""
    return None, f"its files ({source}) are not the `{MODEL_ARTIFACT}` run {run_id} logged"


def _same_location(one: str, other: str) -> bool:
    """Whether two artifact URIs name the same place, a local path and its `file:` URI alike."""

    def plain(uri: str) -> str:
        parts = urlsplit(uri)
        return parts.path.rstrip("/") if parts.scheme in ("", "file") else uri.rstrip("/")

    return plain(one) == plain(other)


def _label(uri: str, version: str) -> str:
    """A model URI as messages name it: quoted, with the version it resolved to when the URI does not say it (an
    alias, `models:/name@champion` as `'models:/name@champion' (name/3)`)."""
    return repr(uri) if version in (uri, uri.removeprefix("models:/")) else f"{uri!r} ({version})"


def _check_digest(
    uri: str, version: str, directory: Path, refused: str = "not loaded", recorded: _RecordedDigest | None = None
) -> None:
    """Compares the downloaded model's files with the digest recorded when `train` logged them (`_recorded_digest`,
    unless the caller has looked it up); `refused` ends the refusal's message (what was not done).

    Raises:
        DigestMismatch: the files' digest is another, in one line naming both (their first 12 hex digits).

    Warns:
        UncheckedModelWarning: no digest covers the model's files, saying why; it is loaded unchecked.
    """
    recorded = recorded or _recorded_digest(uri, version)
    label = _label(uri, version)
    if recorded.digest is None:
        warnings.warn(
            f"model {label}: {recorded.owner}, so its files cannot be checked against what train wrote; loading "
            "them unchecked",
            UncheckedModelWarning,
            stacklevel=3,
        )
        return
    found = model_digest(directory)
    if found != recorded.digest:
        raise DigestMismatch(
            f"model {label}: its files' SHA-256 is {found[:12]}, the {MODEL_DIGEST_TAG} tag of {recorded.owner} says "
            f"{recorded.digest[:12]}: the files differ from what `train` registered (changed in the artifact store, "
            f"or damaged); {refused}"
        )


def check_stored_files(name: str, version: str) -> None:
    """Refuses a version whose files in the store are not those `train` logged, before it is promoted: every
    `match` and `serve` would refuse to load it. A version whose files no digest covers passes, with the warning
    each of its loads gives: promoted in silence, it was the first `match` that told the reviewer.

    Raises:
        DigestMismatch: the files' digest is not the recorded one (`_recorded_digest`), naming both.

    Warns:
        UncheckedModelWarning: no digest covers the version's files, saying why; promoted unchecked.
    """
    uri = f"models:/{name}/{version}"
    recorded = _recorded_digest(uri, f"{name}/{version}")
    if recorded.digest is None:
        warnings.warn(
            f"{recorded.owner}, so its files cannot be checked against what train wrote; promoted unchecked, and "
            "every load of it says so",
            UncheckedModelWarning,
            stacklevel=2,
        )
        return
    _quiet_downloads()
    with temp_dir("creator-match-model-") as download:
        refused = "not promoted: `match` and `serve` would refuse to load it"
        _check_digest(uri, f"{name}/{version}", _download_model(uri, download), refused, recorded)


def load_ranker(uri: str) -> LoadedRanker:
    """Loads a ranker from a model URI (`models:/name@alias`, `models:/name/3`, `runs:/...` or a path).

    A model from the store is downloaded to a temporary folder, its files are checked against the digest `train`
    recorded with its version (`models:/`) or run (`runs:/<run id>/model`, and a version registered from the run
    by hand), and only then is it unpickled, from that copy. A model directory given as a path is loaded where it
    is, unchecked: no record says what it held.

    Raises:
        ModelNotFound: the URI does not resolve, with the reason in one line.
        DigestMismatch: the downloaded files are not those `train` registered (a `NotARanker`, exit 2).
        RegistryUnavailable: the store cannot be read (locked, corrupt), naming it in one line.

    Warns:
        UncheckedModelWarning: a model from the store whose files no digest covers (saying why), loaded unchecked.
    """
    with _library_deprecations_ignored():
        return _load_ranker(uri)


@contextlib.contextmanager
def _library_deprecations_ignored() -> Iterator[None]:
    """The libraries' deprecation and future warnings ignored for the block: an app whose tests turn warnings into
    errors (`-W error`, `filterwarnings = error`) got `NotARanker` for a healthy model from SQLAlchemy's
    `SADeprecationWarning` raised inside MLflow's store. Other warnings (this project's own) pass as ever."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        yield


def _load_ranker(uri: str) -> LoadedRanker:
    """`load_ranker`'s work, which it runs with the libraries' deprecation warnings ignored."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from sklearn.exceptions import InconsistentVersionWarning

    _quiet_downloads()
    _check_local_model(uri)
    search_path = list(sys.path)
    local = None
    try:
        version = resolve_version(uri)
        # A download of the model goes to a folder removed once it is loaded: else each load, a service's every
        # promotion and a nightly job's every run, leaves a copy of the model behind. The version an alias
        # resolved to is the one downloaded, so the files are checked against its digest even if the alias moves.
        with temp_dir("creator-match-model-") as download:
            if _is_local(uri):
                local = uri
            else:
                local = str(_download_model(f"models:/{version}" if uri.startswith("models:/") else uri, download))
                _check_digest(uri, version, Path(local))
            with warnings.catch_warnings():
                # Raised, not shown: unpickling stops at the first estimator from another scikit-learn.
                warnings.simplefilter("error", InconsistentVersionWarning)
                pyfunc = mlflow.pyfunc.load_model(local)
    except ModelNotFound:  # the digest's refusal, already one line
        raise
    except InconsistentVersionWarning as exc:
        raise _refusal(uri, "scikit-learn", exc.original_sklearn_version, exc.current_sklearn_version) from exc
    except (MlflowException, OSError) as exc:
        if _store_failed(exc):  # a store that cannot be read is no answer about the model (exit 1, not 2)
            raise _unreadable(f"read model {uri!r}", exc) from exc
        reason = first_line(exc)
        if local not in (None, uri):  # a file missing from the model is named by the model's own path, not the
            reason = reason.replace(f"{local}/", "")  # folder it was downloaded into, removed and new at every load
        raise ModelNotFound(f"model {uri!r} cannot be loaded from {tracking_store()}: {reason}") from exc
    except Exception as exc:
        if _store_failed(exc):  # raised by SQLAlchemy itself as MLflow opens the store
            raise _unreadable(f"read model {uri!r}", exc) from exc
        # What is left was raised by unpickling the model's own file (MLflow lets it through): its content.
        raise NotARanker(f"model {uri!r} cannot be read: {type(exc).__name__}: {first_line(exc)}") from exc
    finally:
        # MLflow put the model's copy of this project's code first on the path; this process runs its own
        # (imported already), and a long-lived service would gain an entry per load.
        sys.path[:] = search_path
    model = _ranker_of(uri, pyfunc)
    check_libraries(uri, getattr(model, "library_versions", {}))
    return LoadedRanker(model, uri, version, pyfunc.metadata.run_id)


# The class `train` logs, named rather than imported: the model's own copy of the code (`code_paths`) may define
# it, a class object other than this process's.
_RANKER_CLASS = "training.pyfunc.RankerModel"


def _ranker_of(uri: str, pyfunc) -> object:
    """The ranker (`training.pyfunc.RankerModel`) a loaded pyfunc wraps.

    Raises:
        NotARanker: the model is of another flavour (a scikit-learn model), or another project's python model.
    """
    from mlflow.exceptions import MlflowException

    try:
        model = pyfunc.unwrap_python_model()
    except MlflowException as exc:  # a flavour with no python model: MLflow's "Unable to retrieve base model"
        loader = pyfunc.metadata.flavors.get("python_function", {}).get("loader_module", "unknown")
        raise NotARanker(f"model {uri!r}: not a creator-matcher ranker (an MLflow model loaded by {loader})") from exc
    found = f"{type(model).__module__}.{type(model).__qualname__}"
    if found != _RANKER_CLASS:
        raise NotARanker(f"model {uri!r}: not a creator-matcher ranker (its python model is a {found})")
    return model


def _is_local(uri: str) -> bool:
    """Whether a model URI is a path on this host (or a `file:` URI): a model directory, not one from the store."""
    return urlsplit(uri).scheme in ("", "file")


def _check_local_model(uri: str) -> None:
    """A model given as a path (or `file:` URI) that is not a saved model, refused by what the path holds: MLflow's
    own message named the tracking store, which plays no part, and the path's parent."""
    if not _is_local(uri):
        return
    parts = urlsplit(uri)
    path = Path(parts.path if parts.scheme else uri)
    if not path.is_dir():
        raise ModelNotFound(f"model {uri!r}: no directory {path}")
    if not (path / "MLmodel").is_file():
        raise ModelNotFound(f"model {uri!r}: {path} holds no MLmodel file (not a saved model)")


def training_records(ranker: LoadedRanker):
    """The creators' records as of the ranker's training (`features.records.CreatorRecords`): the Parquet
    tables `train` logged in its run under `records/`, or those inside a ranker registered before that.

    Raises:
        ModelNotFound: the run or its records cannot be read, in one line; a run that holds none (a ranker logged
            anew in a run of its own, not by `train`) is named as such.
        RegistryUnavailable: the store cannot be read (locked, corrupt), naming it in one line.
    """
    import mlflow.artifacts

    from features.records import CreatorRecords

    embedded = getattr(ranker.model, "embedded_records", None)
    if embedded is not None:
        return embedded
    where = f"model {ranker.uri!r}: the creators' records of its training run"
    if ranker.run_id is None:
        raise ModelNotFound(f"{where} are unknown (no run recorded); give a performance file")
    _quiet_downloads()
    with _library_deprecations_ignored(), tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=ranker.run_id, artifact_path="records", dst_path=tmp)
            return CreatorRecords.read(path)
        except Exception as exc:  # a missing run, artifact or file: one line, as for the model itself
            if _store_failed(exc):
                raise _unreadable(f"read the records of run {ranker.run_id}", exc) from exc
            if _holds_no_records(ranker.run_id):
                # A copy of a ranker logged anew in a run of its own (`mlflow.pyfunc.log_model` of a loaded one):
                # its MLmodel names that run, which `train` never logged records in. MLflow's own reason was
                # "Failed to download artifacts from path 'records'", which said neither why nor what it lacks.
                raise ModelNotFound(
                    f"model {_label(ranker.uri, ranker.version)}: its run {ranker.run_id} holds no records/, the "
                    "creators' records as of training that `train` logs beside the model it registers (a model "
                    "logged anew in another run has none, whatever it was copied from); give a performance file"
                ) from exc
            raise ModelNotFound(
                f"{where} ({ranker.run_id}, records/) cannot be read from {tracking_store()}: {first_line(exc)}; "
                "give a performance file"
            ) from exc


def _holds_no_records(run_id: str) -> bool:
    """Whether run `run_id` is in the store and holds nothing under `records/`; False when it cannot be read."""
    from mlflow import MlflowClient

    try:
        return not MlflowClient().list_artifacts(run_id, "records")
    except Exception:  # no such run, or a store that failed meanwhile: the caller's own reason stands
        return False


def _refusal(uri: str, name: str, then: str, now: str) -> IncompatibleModel:
    return IncompatibleModel(
        f"model {uri!r} was trained with {name} {then}, this environment has {name} {now}: its pickled "
        f"estimators may not load or predict the same; retrain it here, or install {name}=={then}"
    )


def check_libraries(uri: str, recorded: dict[str, str]) -> None:
    """Compares the library versions a model was trained under with the installed ones.

    Raises:
        IncompatibleModel: a library of STRICT_LIBRARIES differs, naming both versions.

    Warns:
        LibraryVersionWarning: another library differs, naming both versions.
    """
    for name, then in sorted(recorded.items()):
        try:
            now = package_version(name)
        except PackageNotFoundError:
            now = "none"
        if then == now:
            continue
        if name in STRICT_LIBRARIES:
            raise _refusal(uri, name, then, now)
        warnings.warn(
            f"model {uri!r} was trained with {name} {then}, this environment has {name} {now}; "
            "it may score differently",
            LibraryVersionWarning,
            stacklevel=3,
        )


def _operator() -> str:
    """The OS user running this process, or `unknown` when it cannot be told (no login name in a container)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError, KeyError or ImportError depending on the platform
        return "unknown"


def promote(name: str, version: str, verdict: str = "") -> None:
    """Points the `champion` alias at a version of a registered model, and records the promotion in tags.

    The new champion gets `promoted_at` (UTC, ISO 8601), `promoted_by` (the OS user), `promoted_from` (the
    version it replaces, `none`) and `promotion` (`verdict`: the gate's, figures and `forced` included); the one
    replaced gets `demoted_at` and `demoted_for`; the registered model's `last_promotion` says the latest in one
    line. A version keeps its latest promotion and demotion: the history is read from the versions' tags.

    Raises:
        DigestMismatch: the version's files are not those `train` registered (`check_stored_files`); not promoted.
        PromotionUnrecorded: the alias was moved, and then writing the tags failed (some may be written).
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    client.get_model_version(name, str(version))  # raises if the version does not exist
    # Whatever the gate said or --force overrode: a champion no batch job or service can load is no champion.
    check_stored_files(name, str(version))
    with store_lock():  # not between a first training's look at the alias and its setting it
        previous = champion_version(name)
        client.set_registered_model_alias(name, CHAMPION, str(version))
        if previous == str(version):  # already champion: nothing happened to record
            return
        try:
            _record_promotion(name, str(version), previous, verdict)
        except Exception as exc:
            # Not "cannot be promoted": the alias points at it, and batch jobs and `serve` load it from now on.
            back = (
                f"roll back with `creator-match promote --model-name {name} --version {previous} --force`, which "
                f"records its own tags, and promote version {version} again to record this promotion"
                if previous is not None
                else f"no version held it before: `MlflowClient().delete_registered_model_alias({name!r}, "
                f"{CHAMPION!r})` undoes it"
            )
            raise PromotionUnrecorded(
                f"`{CHAMPION}` of {name} now points at version {version} (before: "
                f"{f'version {previous}' if previous else 'none'}), but recording the promotion in tags failed: "
                f"{first_line(exc)}; its tags may be partly written (docs/model-review.md, Promotions on record); "
                f"{back}"
            ) from exc


def _record_promotion(name: str, version: str, previous: str | None, verdict: str) -> None:
    """The tags `promote` (and a first version's crowning) leave on the versions and the registered model: now, by
    this process's OS user."""
    from mlflow import MlflowClient

    client = MlflowClient()
    when, by = dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), _operator()
    verdict = verdict or "no gate (promoted through the library)"
    record = {"promoted_at": when, "promoted_by": by, "promoted_from": previous or "none", "promotion": verdict}
    for key, value in record.items():
        client.set_model_version_tag(name, version, key, value)
    if previous is not None:
        client.set_model_version_tag(name, previous, "demoted_at", when)
        client.set_model_version_tag(name, previous, "demoted_for", version)
    replaced = f"version {previous}" if previous else "no champion"
    line = f"version {version} at {when} by {by}, replacing {replaced}: {verdict}"
    client.set_registered_model_tag(name, "last_promotion", line)
