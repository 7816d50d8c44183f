"""Every estimator of the project against scikit-learn's conventions (tests/estimator_contract.py).

CreatorRanker is held to them through RankerContract (tests/training/test_ranker.py) and WeightedQuantileBins in
tests/training/test_weighted_bins.py; the others are here. Contract tests elsewhere are found by reading the tests
tree, so a new one counts whether or not its file was collected.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from features.affinity import TagCategoryAffinity
from features.history import CategoryPriors
from features.product_type import KIND_DESCRIPTIONS, ProductTypeModel, resolve_product_types
from simulation.world import simulate
from tests.estimator_contract import EstimatorContract

ROOT = Path(__file__).resolve().parents[1]
# Classes with a `predict` that are not estimators, and why.
NOT_ESTIMATORS = {
    # MLflow's PythonModel: predict(context, model_input) is MLflow's interface around the fitted ranker.
    ("training/pyfunc.py", "RankerModel"),
}


def performance_rows() -> tuple[pd.DataFrame, pd.Series]:
    """Settled-looking rows in three categories and the tags of each row's creator."""
    rng = np.random.default_rng(0)
    n = 240
    categories = rng.choice(["beauty", "home", "toys"], n)
    impressions = rng.integers(500, 5000, n)
    clicks = rng.binomial(impressions, 0.04)
    orders = rng.binomial(clicks, 0.05)
    tags = pd.Series([list(rng.choice(["skincare", "hiking", "deals", "lego"], 2, replace=False)) for _ in range(n)])
    rows = pd.DataFrame({"category": categories, "impressions": impressions, "clicks": clicks, "orders": orders})
    return rows, tags


class TestCategoryPriors(EstimatorContract):
    estimator_class = CategoryPriors
    params: ClassVar[dict] = {"strength_impressions": 1000.0}
    refused: ClassVar[list] = [
        # Accepted, and the rates came out negative (cvr_['automotive'] = -0.001).
        (
            {"strength_impressions": -20000, "strength_clicks": -500},
            "Got strength_impressions=-20000; expected a value above 0",
        ),
        ({"strength_clicks": 0}, "Got strength_clicks=0; expected a value above 0"),
    ]

    def fit_args(self) -> tuple:
        return (performance_rows()[0],)

    def uses(self) -> dict:
        categories = pd.Series(["beauty", "home", "garden"])
        return {"ctr": lambda priors: priors.ctr(categories), "cvr": lambda priors: priors.cvr(categories)}

    def test_fitted_on_no_rows_it_gives_the_documented_fallbacks(self):
        priors = CategoryPriors().fit(pd.DataFrame(columns=["category", "impressions", "clicks", "orders"]))
        np.testing.assert_allclose(priors.ctr(pd.Series(["beauty", "home"])), [0.07, 0.05])
        np.testing.assert_allclose(priors.cvr(pd.Series(["beauty", "home"])), [0.04, 0.04])


class TestTagCategoryAffinity(EstimatorContract):
    estimator_class = TagCategoryAffinity
    params: ClassVar[dict] = {"max_tags": 50}
    refused: ClassVar[list] = [
        ({"strength_rows": 0}, "Got strength_rows=0; expected a value above 0"),
        ({"prior_log_lift": 0}, "Got prior_log_lift=0; expected a value above 0"),
        ({"heterogeneity": -1}, "Got heterogeneity=-1; expected a value of at least 0"),
        ({"max_tags": 0}, "Got max_tags=0; expected a whole number of at least 1"),
        ({"max_tags": 2.5}, "Got max_tags=2.5; expected a whole number"),
    ]

    def fit_args(self) -> tuple:
        rows, tags = performance_rows()
        return rows, tags, CategoryPriors().fit(rows)

    def uses(self) -> dict:
        tags = pd.Series([["skincare", "deals"], ["never seen"], []])
        categories = pd.Series(["beauty", "home", "toys"])
        return {"transform": lambda affinity: affinity.transform(tags, categories)}


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class TestProductTypeModel(EstimatorContract):
    estimator_class = ProductTypeModel
    params: ClassVar[dict] = {"min_declared": 3}
    refused: ClassVar[list] = [
        ({"min_declared": 0}, "Got min_declared=0; expected a whole number of at least 1"),
        ({"neighbours": 2.5}, "Got neighbours=2.5; expected a whole number"),
        ({"C": 0}, "Got C=0; expected a value above 0"),
        ({"price_weight": -1}, "Got price_weight=-1; expected a value of at least 0 (0 turns the signal off)"),
        ({"min_neighbour_similarity": 1.5}, "Got min_neighbour_similarity=1.5; expected a cosine in [-1, 1]"),
    ]
    world = simulate(n_creators=40, n_campaigns=30, n_new_campaigns=5, seed=2)

    def fit_args(self) -> tuple:
        campaigns = self.world.campaigns
        outcomes = pd.DataFrame({"campaign_id": campaigns["campaign_id"], "lift": np.linspace(-1, 1, len(campaigns))})
        return campaigns, unit_vectors(len(campaigns), 0), outcomes

    def uses(self) -> dict:
        new = self.world.new_campaigns
        vectors = unit_vectors(len(new), 1)
        kinds = enumerate(KIND_DESCRIPTIONS.items())
        descriptions = {kind: unit_vectors(len(texts), 2 + i) for i, (kind, texts) in kinds}
        return {"evidence": lambda model: model.evidence(new, vectors, descriptions)}


def _estimator_like_classes() -> set[tuple[str, str]]:
    """(file, class) of every class in the project's packages that defines fit, predict or transform."""
    found = set()
    for folder in ("features", "matcher", "training", "simulation"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and {
                    item.name for item in node.body if isinstance(item, ast.FunctionDef)
                } & {"fit", "predict", "transform", "fit_transform", "predict_proba"}:
                    found.add((str(path.relative_to(ROOT)), node.name))
    return found


def _bases(node: ast.ClassDef) -> set[str]:
    return {
        base.id if isinstance(base, ast.Name) else base.attr
        for base in node.bases
        if isinstance(base, ast.Name | ast.Attribute)
    }


def _contract_test_modules() -> list[str]:
    """Dotted names of the test modules with a class held to the contract, found by reading the tests tree.

    Read rather than taken from the classes imported so far: those depend on which files pytest collected, so
    a ranker's new contract test (a RankerContract subclass in a file of its own) counted when the whole suite
    ran and not when this file ran alone.
    """
    classes = {}  # class name -> (module, bases), over every file of the tests tree
    for path in sorted((ROOT / "tests").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append((module, _bases(node)))
    # The mixins: EstimatorContract and every class built on it (RankerContract), however deep.
    mixins, grown = {"EstimatorContract"}, True
    while grown:
        found = {name for name, defined in classes.items() for _, bases in defined if bases & mixins}
        grown = bool(found - mixins)
        mixins |= found
    return sorted(
        {
            module
            for name, defined in classes.items()
            if name.startswith("Test")
            for module, bases in defined
            if bases & mixins
        }
    )


def _contract_classes() -> set[str]:
    """Names of the classes a test class holds to the contract, whichever test files were collected."""
    for module in _contract_test_modules():
        importlib.import_module(module)
    pending = list(EstimatorContract.__subclasses__())
    named = set()
    while pending:
        test_class = pending.pop()
        pending += test_class.__subclasses__()
        if test_class.__name__.startswith("Test"):
            named.add(test_class().estimator_class.__name__)
    return named


def test_contract_tests_are_found_by_reading_the_tests_tree():
    """This module's own, and those beside their modules' tests, found without importing any of them first."""
    assert {"tests.test_estimators", "tests.training.test_ranker", "tests.training.test_weighted_bins"} <= set(
        _contract_test_modules()
    )


def test_every_estimator_like_class_is_held_to_the_contract():
    classes = _estimator_like_classes() - NOT_ESTIMATORS
    assert {name for _, name in classes} <= _contract_classes(), sorted(classes)
    assert {"CreatorRanker", "CategoryPriors", "TagCategoryAffinity", "ProductTypeModel"} <= {n for _, n in classes}


def test_without_a_past_product_types_come_from_a_model_fitted_on_nothing(embedder):
    """No fitted model: the brief and this batch's prices decide, as before models refused to answer unfitted."""
    campaigns = simulate(n_creators=40, n_campaigns=30, n_new_campaigns=6, seed=4).new_campaigns
    out = resolve_product_types(campaigns.assign(product_type="auto"), embedder)
    assert out["product_type_probability"].between(0, 1).all() and out["product_type_reason"].str.len().gt(0).all()
