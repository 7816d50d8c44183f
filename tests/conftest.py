"""Shared fixtures: one small simulated world, the real embedding model, and a real SQLite MLflow store."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import pickle
import sqlite3
from pathlib import Path

from features.environment import unset_defaults

os.environ.update(unset_defaults())
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: each worker, and every process it starts, computes on one thread.
    # Two teams of OpenMP threads spinning on the same two cores are far slower than one thread each.
    os.environ.update(unset_defaults({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}))

import faiss  # noqa: F401  (before torch, as everywhere in the project)
import pytest

from features.embeddings import CACHE_DIR_ENV, Embedder, default_cache_dir, resolve_backend
from features.safe_write import atomic_path, output_lock
from simulation.world import simulate, write_world


@pytest.fixture(scope="session", autouse=True)
def embedding_cache(tmp_path_factory):
    """Commands that cache embeddings by default (`creator-match index`) cache into the run's temp dir, not ~.

    The workers of one `make test` run each keep their own vectors but share one ONNX export of the model, made
    by the first worker to get here while the other waits: an export is the same files whichever cache it sits
    in, and making it costs each process that does seconds and torch's imports.
    """
    previous = os.environ.get(CACHE_DIR_ENV)
    cache = tmp_path_factory.mktemp("embedding-cache")
    os.environ[CACHE_DIR_ENV] = str(cache)
    if os.environ.get("PYTEST_XDIST_WORKER") and resolve_backend() == "onnx":
        shared = tmp_path_factory.getbasetemp().parent / "onnx"  # the run's folder, above each worker's own
        shared.mkdir(exist_ok=True)
        (cache / "onnx").symlink_to(shared, target_is_directory=True)
        with output_lock(shared, wait=600):
            Embedder().encoder  # noqa: B018  (loading the encoder makes the export if there is none yet)
    yield
    if previous is None:
        os.environ.pop(CACHE_DIR_ENV, None)
    else:
        os.environ[CACHE_DIR_ENV] = previous


@pytest.fixture(scope="module", autouse=True)
def tracking_follows_the_environment():
    """After each module MLflow points where $MLFLOW_TRACKING_URI says again.

    A module may point its own fixtures at a store of their own; a model URI such as `models:/creator-ranker/1`
    means a different model in each store, so a module that leaves MLflow pointing at its store makes the next
    module on the same worker load the wrong model.
    """
    yield
    from training.registry import configure_tracking

    if os.environ.get("MLFLOW_TRACKING_URI"):
        configure_tracking()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2, loaded once for the whole run."""
    return Embedder()


@pytest.fixture
def empty_cache_dir(tmp_path, embedder) -> Path:
    """An embedding cache of this test's own with no vectors in it, and the session's ONNX export of the model.

    An export depends only on the model and the exporter, not on the cache it sits in; making it again for each
    cache a test starts from would cost seconds and torch's imports each time, and prove nothing that
    tests/features/test_embeddings.py does not (the export, its reuse and its keying are tested there).
    """
    cache = tmp_path / "cache"
    cache.mkdir()
    if embedder.backend == "onnx":
        exports = embedder.encoder.directory.parent  # made (once) under the session's cache directory
        assert exports == default_cache_dir() / "onnx"
        (cache / "onnx").symlink_to(exports, target_is_directory=True)
    return cache


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    """A small world written as Parquet: 400 creators, 60 past and 12 new campaigns."""
    out = tmp_path_factory.mktemp("world")
    write_world(simulate(n_creators=400, n_campaigns=60, n_new_campaigns=12, seed=11), out)
    return out


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory):
    """A smaller world written as Parquet: 150 creators, 25 past and 2 new campaigns, every optional column filled.

    For trainings whose subject is not the world's size (the store, the registry, a changed copy of the tables): a
    training on it takes a fraction of one on `world_dir`. Read it, never write into it: copy it to change it.
    """
    out = tmp_path_factory.mktemp("small-world")
    write_world(simulate(n_creators=150, n_campaigns=25, n_new_campaigns=2, seed=5), out)
    return out


@pytest.fixture(scope="session")
def world_index(world_dir, tmp_path_factory) -> Path:
    """The world's candidate index, built once per worker by `creator-match index` (its `main`, in this process).

    For the match runs whose subject is not the index (locks, kill -9, leftovers, library versions, performance
    files): with `--index` each run reads these vectors instead of embedding the 400 creators again, in a process
    of its own or in this one. Matches that build their index on the fly are tests/matcher/test_ray_engine.py's.
    """
    from tests.commands import run_in_process

    out = tmp_path_factory.mktemp("world-index") / "index"
    done = run_in_process("index", "--creators", str(world_dir / "creators.parquet"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """A fresh SQLite tracking store for the session, exported so every process of the run uses it."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{path}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def training_builds(tmp_path_factory) -> Path:
    """Where the run keeps the training data `train` built (`builds_shared_across_the_run`): under `make test` the
    run's folder above the workers' own, which every worker reads, else the session's."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "training-builds"
    folder.mkdir(exist_ok=True)
    return folder


@contextlib.contextmanager
def builds_shared_across_the_run(folder: Path):
    """Within the block, `train` builds its training data once per run for each set of inputs, not once per training.

    The data are built by `build_with_holdout` itself, keyed by the tables' fingerprint, the embedding model and
    backend, and every other argument it takes, and kept pickled in `folder`, each under a lock of its own: the
    first training (of any worker) to need them builds them while another that needs the same waits, and each
    training gets a copy of its own (unpickled).
    """
    import importlib

    from training.dataset import data_fingerprint

    module = importlib.import_module("training.train")  # the package's `train` attribute is the function
    build = module.build_with_holdout

    def build_once(tables, embedder, *args, **kwargs):
        # An `as_of` of None is today's date, which a run that crosses midnight must not share with the day before.
        as_of = (args[0] if args else kwargs.get("as_of")) or dt.date.today()
        fingerprint = data_fingerprint(tables)[0]
        inputs = (fingerprint, embedder.model, embedder.backend, as_of, args[1:], sorted(kwargs.items()))
        kept = folder / f"{hashlib.blake2b(repr(inputs).encode(), digest_size=16).hexdigest()}.pickle"
        with output_lock(kept, wait=1800):
            if not kept.is_file():
                with atomic_path(kept) as made:  # in place once whole: a killed run leaves no half a build
                    made.write_bytes(pickle.dumps(build(tables, embedder, *args, **kwargs)))
            return pickle.loads(kept.read_bytes())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "build_with_holdout", build_once)
        yield


def _copy_store(source: Path, target: Path) -> None:
    """The SQLite tracking store `source` copied into `target`, page by page through SQLite itself, so that a store
    this process already has open reads the copy as it would its own writes."""
    with sqlite3.connect(source) as reading, sqlite3.connect(target) as writing:
        reading.backup(writing)


def _same_tables(one: Path, other: Path) -> bool:
    """Whether two worlds' folders hold the same tables, byte for byte."""
    names = sorted(path.name for path in one.glob("*.parquet"))
    return names == sorted(path.name for path in other.glob("*.parquet")) and all(
        (one / name).read_bytes() == (other / name).read_bytes() for name in names
    )


@pytest.fixture(scope="session")
def new_store(tmp_path_factory):
    """Makes a new SQLite tracking store at a path and returns its URI: a copy of an empty one MLflow set up once
    for the session (its tables, through its own migrations, and its default experiment), as a store that was
    never used is, without the seconds MLflow's migrations take every time. For tests of what a store holds, not of
    how a new one is set up (`training.registry.create_store`, tests/training/test_registry.py's first trainings).
    """
    from mlflow import MlflowClient

    template = tmp_path_factory.mktemp("empty-store") / "mlflow.db"

    def new(path: Path) -> str:
        if not template.is_file():
            client = MlflowClient(f"sqlite:///{template}")
            client.search_experiments(max_results=1)  # the tracking tables
            client.search_registered_models(max_results=1)  # and the registry's
        path.parent.mkdir(parents=True, exist_ok=True)
        _copy_store(template, path)
        return f"sqlite:///{path}"

    return new


@pytest.fixture(scope="session")
def trained(world_dir, embedder, tracking_uri, tmp_path_factory, training_builds):
    """The first ranker trained on the world: registered as version 1 of `creator-ranker`, the champion.

    Trained once per run. Under `make test` the first worker to need it trains it into a store of its own beside
    the workers' folders; each worker, that one included, then copies that store (the run, the registered version
    and its alias; the artifacts are files both point to) into the session's store, if its world has the same
    bytes, instead of training the same ranker again. What a worker's store held before is replaced: the module
    that wrote it has finished. Its training data are the run's build for these tables (`builds_shared_across_the_run`),
    which other modules' trainings of the world read too.
    """
    from training.train import train

    def train_on_the_world():
        with builds_shared_across_the_run(training_builds):
            return train(world_dir, embedder=embedder)

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return train_on_the_world()
    shared = tmp_path_factory.getbasetemp().parent / "trained"
    shared.mkdir(exist_ok=True)
    store, result, world = shared / "mlflow.db", shared / "result.pickle", shared / "world"
    with output_lock(shared, wait=1800):
        if not result.is_file():
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
            try:
                made = train_on_the_world()
            finally:
                os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
            world.write_text(str(world_dir))
            result.write_bytes(pickle.dumps(made))
        if _same_tables(Path(world.read_text()), world_dir):
            _copy_store(store, Path(tracking_uri.removeprefix("sqlite:///")))
            made = pickle.loads(result.read_bytes())
        else:  # not the world the shared ranker learned from: a ranker of its own
            made = train_on_the_world()
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return made


@pytest.fixture(scope="module")
def shared_training_builds(training_builds):
    """Within the module, `train` builds its training data once per run for each set of inputs
    (`builds_shared_across_the_run`), not once per training.

    For modules that train versions on the session's world, as of the same day and credited alike, to test what
    training and the registry do with the versions (the gate, the cards, the registration): each such training
    would build the same pairs again, over half of a training's time, as the session's ranker (`trained`) and the
    other modules do. Fitting, review and registration still run each time. The build's own behaviour is tested
    where it is called directly (tests/training/test_held_out.py and others).
    """
    with builds_shared_across_the_run(training_builds):
        yield


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A folder on a file system of its own, 2 MB: a disk that fills up. A tmpfs mounted for the test (root only),
    unmounted after it whatever it does; skipped where mounting is not permitted."""
    import subprocess

    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, text=True
        )
    except OSError as exc:
        pytest.skip(f"cannot mount a small file system: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _takes_new_files(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.touch(exist_ok=False)
    except PermissionError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def make_unwritable():
    """Makes a folder take no new files for the test, its files still writable: read-only permissions, or for
    root, whom those do not stop, the immutable attribute (`chattr +i`); undone after the test. Skipped where
    neither stops this process."""
    import subprocess

    made: list[Path] = []

    def make(folder: Path) -> Path:
        folder.chmod(0o555)
        made.append(folder)
        if _takes_new_files(folder):
            try:
                why = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True).stderr.strip()
            except OSError as exc:  # no chattr
                why = str(exc)
            if _takes_new_files(folder):
                pytest.skip(f"cannot make a folder unwritable here: {why}")
        return folder

    yield make
    for folder in made:
        with contextlib.suppress(OSError):
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


@pytest.fixture(scope="module")
def creators(world_dir):
    """The world's creators table, validated, read once per module (a module may change its copy)."""
    from features.tables import read_table

    return read_table(world_dir / "creators.parquet", "creators").frame


@pytest.fixture(scope="module")
def campaigns(world_dir):
    """The world's new campaigns, validated, read once per module."""
    from features.tables import read_table

    return read_table(world_dir / "new_campaigns.parquet", "campaigns").frame


@pytest.fixture(scope="module")
def ranker(trained):
    """The first trained ranker, loaded from the MLflow store."""
    from training.registry import load_ranker

    return load_ranker(trained.model_uri)


def pytest_collection_modifyitems(config, items):
    """Files holding a `slow` test first, each file's tests kept together and in their own order.

    `make test` hands whole files to its workers in collection order (`--no-loadscope-reorder`): the end-to-end
    files, at a minute or more each, start first and the many quick files fill in behind them, so the workers
    finish together rather than one waiting on a long file handed out last. Of the slow files, one that needs the
    session's trained ranker goes first and those that do not need it next: the first worker trains it (once per
    run, see `trained`) while the other starts on work that does not wait for it.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    needs_ranker = {item.path for item in items if "trained" in item.fixturenames}
    first = next((item.path for item in items if item.path in slow & needs_ranker), None)

    def turn(item) -> int:
        if item.path not in slow:
            return 3
        return 0 if item.path == first else 1 if item.path not in needs_ranker else 2

    items.sort(key=turn)
