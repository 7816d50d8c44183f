"""check_kinds reads a class's declared parameter types whether or not its module postpones annotations."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from features.parameters import check_kinds

# The same class, written once with postponed annotations (as the project writes them) and once without, as a
# contributor's module may be: there the annotations are the types themselves, and nothing was checked.
SOURCE = """{future}
class Settings:
    def __init__(self, C: float = 1.0, n: int | None = None, on: bool = True, skip: tuple[int, ...] = ()) -> None:
        self.C = C
        self.n = n
        self.on = on
        self.skip = skip
"""


@pytest.fixture(params=["postponed", "evaluated"])
def settings_class(request, tmp_path: Path) -> type:
    """`Settings` from a real module file of its own, with or without `from __future__ import annotations`."""
    future = "from __future__ import annotations\n" if request.param == "postponed" else ""
    path = tmp_path / f"{request.param}_settings.py"
    path.write_text(SOURCE.format(future=future))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"C": "x"}, "Got C='x'; expected a finite number"),
        ({"C": float("inf")}, "Got C=inf; expected a finite number"),
        ({"n": 2.5}, "Got n=2.5; expected a whole number or None"),
        ({"on": "no"}, "Got on='no'; expected True or False"),
        ({"skip": "x"}, "Got skip='x'; expected a tuple of whole numbers"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_it(settings_class, values, message):
    with pytest.raises(ValueError) as refused:
        check_kinds(settings_class(**values))
    assert str(refused.value) == message


def test_values_of_the_declared_types_pass(settings_class):
    check_kinds(settings_class())
    check_kinds(settings_class(C=2, n=3, on=False, skip=[0, 4]))
