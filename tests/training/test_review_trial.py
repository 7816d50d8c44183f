"""What a reviewer reads of a trained version (its run's name, its card) is what docs/model-review.md says it is."""

from __future__ import annotations

import re
from pathlib import Path

from mlflow import MlflowClient

from tests.commands import run_in_process

REVIEW_DOC = Path(__file__).resolve().parents[2] / "docs" / "model-review.md"


def test_the_run_is_named_as_the_review_doc_says(trained):
    """The doc gave `train YYYY-MM-DD HH:MM`; the runs are named with the model and the seconds as well."""
    named = re.search(r"one run per `train`, named `([^`]+)` \(UTC\)", " ".join(REVIEW_DOC.read_text().split()))
    assert named, "docs/model-review.md no longer says how a run is named"
    placeholders = {"<model name>": re.escape(trained.model_name), "YYYY": r"\d{4}", "MM": r"\d{2}", "DD": r"\d{2}"}
    placeholders |= {"HH": r"\d{2}", "SS": r"\d{2}"}
    form = re.escape(named.group(1))
    for placeholder, pattern in placeholders.items():
        form = form.replace(re.escape(placeholder), pattern)
    run_name = MlflowClient().get_run(trained.run_id).info.run_name
    assert re.fullmatch(form, run_name), (named.group(1), run_name)


def test_the_card_gives_a_random_orders_ndcg_beside_each_ndcg(trained):
    """The cold-start row ranks about 5 creators per campaign, where almost any order scores high: the card showed
    its 0.918 above the held-out 0.662 with nothing to say that a random order scored 0.705 on those rows (the
    floor the doc says to read it against), so a reviewer took a new creator's case for the ranker's best."""
    card = MlflowClient().get_model_version(trained.model_name, trained.version).description
    table = [line for line in card.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    random = header.index("random order")
    rows = {
        row.split("|")[1].strip().split(" (")[0]: [cell.strip() for cell in row.strip("|").split("|")] for row in table
    }
    metrics = trained.metrics
    assert rows["NDCG@10 of realized sales"][random] == f"{metrics['baseline_random_ndcg_at_10']:.3f}"
    assert metrics["cold_n_creators"] > 0
    cold = rows["NDCG@10 of creators held out of training entirely"]
    assert cold[random] == f"{metrics['cold_baseline_random_ndcg_at_10']:.3f}"
    assert rows["click AUC / log loss"][random] == ""  # a random order has no click-through to judge


def test_promoting_a_version_whose_files_cannot_be_checked_says_so(trained):
    """A version registered by hand from a folder of files, naming no run, has no digest to check its files against
    (one registered from `train`'s run is checked against the run's: tests/training/test_model_digest.py). `promote`
    made it champion without a word; the first `match` of it warned that its files were loaded unchecked."""
    client = MlflowClient()
    name = "registered-by-hand"
    folder = client.get_model_version_download_uri(trained.model_name, trained.version)
    client.create_registered_model(name)
    version = client.create_model_version(name, source=folder).version
    done = run_in_process("promote", "--model-name", name, "--version", str(version), warnings_on_stderr=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"creator-match: warning: {name} version {version} has no model_sha256 tag and names no run, so its files "
        "cannot be checked against what train wrote; promoted unchecked, and every load of it says so"
    ]
    assert done.stdout.startswith(f"{name} version {version} is now champion")


def test_make_mlflow_ui_opens_the_store_the_commands_use(tmp_path):
    """`make mlflow-ui` served the checkout's `mlflow.db` whatever $MLFLOW_TRACKING_URI named: a reviewer whose
    trainings logged to the store it names saw none of their versions, and an empty `mlflow.db` appeared. A server's
    address (the UI itself) is no store to serve."""
    import os
    import subprocess

    def served(uri: str | None) -> str:
        env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
        env |= {} if uri is None else {"MLFLOW_TRACKING_URI": uri}
        shown = subprocess.run(
            ["make", "-n", "mlflow-ui"], cwd=REVIEW_DOC.parents[1], env=env, capture_output=True, text=True, check=True
        ).stdout
        return re.search(r"--backend-store-uri (\S+)", shown).group(1)

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert served(store) == store
    assert served(None) == "sqlite:///mlflow.db"
    assert served("http://127.0.0.1:5000") == "sqlite:///mlflow.db"


def test_a_model_name_mlflow_cannot_register_is_refused_as_the_arguments_fault(world_dir, tracking_uri, tmp_path):
    """`--model-name a:b` was reported as the store failing (`failed: RegistryUnavailable: cannot read model 'a:b'
    from the registry at ...`, exit 1): the store was fine, the name was not."""
    trained = run_in_process("train", "--data", str(world_dir), "--model-name", "a:b", cwd=tmp_path)
    promoted = run_in_process("promote", "--model-name", "bad/name", "--version", "1", cwd=tmp_path)
    for done, name in ((trained, "a:b"), (promoted, "bad/name")):
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [
            f"creator-match: model name {name!r} cannot be registered: Invalid model name {name!r}. Names cannot "
            "contain '/' or ':'."
        ]
    assert not (tmp_path / "mlruns").exists()
