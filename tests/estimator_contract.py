"""scikit-learn's estimator conventions, for every class with fit, predict or transform in the project.

A test class inherits EstimatorContract, names `estimator_class` (and `params`), says how to fit one
(`fit_args`), how it is used once fitted (`uses`), and which parameters `fit` refuses (`refused`).
tests/test_estimators.py checks that no such class is left without one.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

__all__ = ["EstimatorContract", "same"]


def same(first: object, second: object) -> None:
    """Asserts two outputs of an estimator are equal: frames, arrays, or tuples of them."""
    if isinstance(first, pd.DataFrame):
        pd.testing.assert_frame_equal(first, second)
    elif isinstance(first, tuple):
        assert len(first) == len(second)
        for a, b in zip(first, second, strict=True):
            same(a, b)
    else:
        np.testing.assert_array_equal(first, second)


class EstimatorContract:
    """Mix into a test class to hold an estimator to scikit-learn's conventions:

    - it is a scikit-learn BaseEstimator, so `get_params`, `clone` and `check_is_fitted` are the library's;
    - `__init__` stores its parameters and nothing else (`clone` round-trips them, no attribute ends in `_`);
    - `fit` returns self, leaves the parameters as they were, and what it learns ends in `_`;
    - `fit` refuses a parameter of the wrong type or range with a ValueError whose message is exactly the project's
      `Got C='x'; expected ...` (`features.parameters.check_kinds` gives it for the types `__init__` declares, and
      `features.parameters.refuse` for a range; `refused` lists each range's whole message);
    - a `random_state` takes what scikit-learn's do: a whole number, a numpy RandomState or None;
    - unfitted, every use refuses with scikit-learn's NotFittedError naming the class;
    - fitted, it pickles and the copy gives the same answers.
    """

    estimator_class: ClassVar[type]
    params: ClassVar[dict] = {}
    # Parameters (over `params`) that `fit` must refuse for their range, each with the whole message it must give.
    refused: ClassVar[list[tuple[dict, str]]] = []
    # `fitted_once`'s estimators, by test class.
    _fitted_by_class: ClassVar[dict[type, object]] = {}

    def make(self):
        return self.estimator_class(**self.params)

    def fit_args(self) -> tuple:
        """The arguments of `fit`."""
        raise NotImplementedError

    def uses(self) -> dict[str, Callable]:
        """What a fitted estimator is for, by name: each takes the estimator and returns its answer."""
        raise NotImplementedError

    def fitted_once(self):
        """The test class's one estimator fitted on `fit_args()`, shared by the tests that only read a fitted one
        (a ranker's fit takes seconds, and they ask different things of the same fit); none may change it."""
        kept = EstimatorContract._fitted_by_class
        if type(self) not in kept:
            kept[type(self)] = self.fitted()
        return kept[type(self)]

    def fitted(self, *args, **kwargs):
        """A new estimator fitted on `args` (`fit_args()` when none), whose `fit` must have returned it."""
        estimator = self.make()
        returned = estimator.fit(*(args or self.fit_args()), **kwargs)
        # Said where every test fits: otherwise a fit returning None failed each as "'NoneType' has no attribute".
        assert returned is estimator, f"fit must return self; got {returned!r}"
        return estimator

    def test_is_a_scikit_learn_estimator(self):
        assert issubclass(self.estimator_class, BaseEstimator)

    def test_init_stores_only_its_parameters(self):
        estimator = self.make()
        assert not [name for name in vars(estimator) if name.endswith("_")]
        assert set(vars(estimator)) == set(estimator.get_params())
        assert clone(estimator).get_params() == estimator.get_params()
        for name, value in self.params.items():
            assert estimator.get_params()[name] == value

    def test_fit_returns_self_keeps_its_parameters_and_learns_attributes_ending_in_underscore(self):
        before = dict(self.make().get_params())
        estimator = self.fitted_once()
        assert estimator.get_params() == before
        learned = set(vars(estimator)) - set(before)
        assert learned, "fit learned nothing"
        unmarked = sorted(name for name in learned if not name.endswith("_"))
        assert not unmarked, f"what fit learns must end in _; these do not: {unmarked}"

    def test_unfitted_refuses_with_not_fitted_error_naming_the_class(self):
        name = self.estimator_class.__name__
        for call in self.uses().values():
            with pytest.raises(NotFittedError, match=rf"\b{name}\b"):
                call(self.make())

    def test_a_pickled_copy_answers_the_same(self):
        estimator = self.fitted_once()
        copy = pickle.loads(pickle.dumps(estimator))
        for call in self.uses().values():
            same(call(estimator), call(copy))

    def test_a_parameter_of_the_wrong_type_is_refused_naming_it(self):
        """A string in any parameter: CategoryPriors(strength_clicks="x") failed in pandas' arithmetic naming none."""
        args = self.fit_args()
        for name in self.make().get_params():
            with pytest.raises(ValueError, match=rf"^Got {name}='x'; expected "):
                self.estimator_class(**{**self.params, name: "x"}).fit(*args)

    def test_a_parameter_out_of_range_is_refused_naming_it(self):
        assert self.refused, "name at least one parameter value that fit refuses, with its message"
        args = self.fit_args()
        for params, message in self.refused:
            with pytest.raises(ValueError) as refused:
                self.estimator_class(**{**self.params, **params}).fit(*args)
            assert str(refused.value) == message, params

    def test_random_state_takes_what_scikit_learn_takes(self):
        """None and a numpy RandomState as well as a whole number; the same RandomState seed fits the same."""
        if "random_state" not in self.make().get_params():
            pytest.skip(f"{self.estimator_class.__name__} draws nothing at random")
        args = self.fit_args()
        self.estimator_class(**{**self.params, "random_state": None}).fit(*args)
        first, second = (
            self.estimator_class(**{**self.params, "random_state": np.random.RandomState(7)}).fit(*args)
            for _ in range(2)
        )
        for call in self.uses().values():
            same(call(first), call(second))
