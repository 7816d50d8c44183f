"""What a reviewer reads of a trained version (its run's name, its card) is what docs/model-review.md says it is."""

from __future__ import annotations

import re
from pathlib import Path

from mlflow import MlflowClient

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
