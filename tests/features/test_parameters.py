"""check_kinds reads a class's declared parameter types whether or not its module postpones annotations, and
however a union with None is spelt."""

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


def settings_from(source: str, annotations: str, folder: Path) -> type:
    """`Settings` from a real module file of its own, `source` with or without `from __future__ import annotations`
    (`annotations`: postponed or evaluated)."""
    future = "from __future__ import annotations\n" if annotations == "postponed" else ""
    path = folder / f"{annotations}_settings.py"
    path.write_text(source.format(future=future))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Settings


@pytest.fixture(params=["postponed", "evaluated"])
def settings_class(request, tmp_path: Path) -> type:
    return settings_from(SOURCE, request.param, tmp_path)


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


@pytest.mark.parametrize("annotations", ["postponed", "evaluated"])
@pytest.mark.parametrize(
    "spelling", ["Optional[int]", "typing.Optional[int]", "t.Optional[int]", "Union[int, None]", "Union[None, int]"]
)
def test_a_union_with_none_is_checked_however_it_is_spelt(spelling, annotations, tmp_path):
    """`Optional[int]` and the other spellings of `int | None` were matched as text against `int | None` only, so
    a value of another type passed unchecked."""
    source = (
        "{future}import typing\nimport typing as t\nfrom typing import Optional, Union\n\n\n"
        f"class Settings:\n    def __init__(self, n: {spelling} = None, C: Optional[float] = None) -> None:\n"
        "        self.n = n\n        self.C = C\n"
    )
    settings = settings_from(source, annotations, tmp_path)
    with pytest.raises(ValueError) as refused:
        check_kinds(settings(n=2.5))
    assert str(refused.value) == "Got n=2.5; expected a whole number or None"
    with pytest.raises(ValueError) as refused:
        check_kinds(settings(C="x"))
    assert str(refused.value) == "Got C='x'; expected a finite number or None"
    check_kinds(settings())
    check_kinds(settings(n=3, C=0.5))
