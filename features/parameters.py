"""Refusing a bad setting or hyper-parameter the one way: `Got name=value; expected ...`, checked against the type
its class declares before any range.

Nothing here imports more than the standard library, so `matcher.settings` (read by `creator-match --help`) stays
light.
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers

__all__ = ["check_kinds", "refuse", "refuse_type", "whole_number"]


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def refuse(name: str, value: object, expected: str) -> ValueError:
    """The error for parameter `name` holding `value`, saying what was `expected` instead."""
    return ValueError(f"Got {name}={_shown(value)}; expected {expected}")


def refuse_type(name: str, value: object, expected: str) -> TypeError:
    """The error for argument `name` given as a value of the wrong type, naming its type and what was `expected`."""
    return TypeError(f"Got {name} as {type(value).__name__}; expected {expected}")


def whole_number(value: object) -> bool:
    """Whether `value` is a whole number (an int or numpy integer, not True or False)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# Each parameter type as postponed annotations write it (`_written` puts an evaluated one in the same words), what a
# value of it is, and how to say so. Checked before any range: a string is truthy, so allow_cashback="no" allowed
# cashback (and monotone="no" constrained a ranker), and "3" < 1 is a TypeError.
_KINDS = {
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "int": (whole_number, "a whole number"),
    "int | None": (lambda v: v is None or whole_number(v), "a whole number or None"),
    "float": (_finite, "a finite number"),
    "float | None": (lambda v: v is None or _finite(v), "a finite number or None"),
    "str": (lambda v: isinstance(v, str), "a string"),
    # Column indices: a string's characters are no column, and `0 in "x"` is a TypeError.
    "tuple[int, ...]": (
        lambda v: isinstance(v, tuple | list) and all(map(whole_number, v)),
        "a tuple of whole numbers",
    ),
}


def _written(annotation: object) -> str:
    """`annotation` in the words `from __future__ import annotations` keeps it in: `float`, not `<class 'float'>`;
    a union as `int | None` however it is spelt (`Optional[int]`, `typing.Optional[int]`, `Union[None, int]`).

    Without that import a module's annotations are the types themselves, and matched as text against `_KINDS`
    none was found, so nothing was checked; nor was a union spelt the older way, as a type or as text.
    """
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    try:
        members = _members(ast.parse(text, mode="eval").body)
    except SyntaxError:  # not an expression: matches no kind, as before
        return text
    # None last, as `int | None` is written; a member written twice counts once.
    return " | ".join(dict.fromkeys([*(m for m in members if m != "None"), *(m for m in members if m == "None")]))


def _members(node: ast.expr) -> list[str]:
    """The types a (possibly union) annotation's expression allows, each as text; `None` for None's type."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _members(node.left) + _members(node.right)
    if isinstance(node, ast.Subscript):
        # `Optional`, `typing.Optional`, `t.Optional`: typing's names, however the module was imported.
        name = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", None)
        if name in ("Optional", "Union"):
            arguments = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            found = [member for argument in arguments for member in _members(argument)]
            return [*found, "None"] if name == "Optional" else found
    text = ast.unparse(node)
    return ["None" if text == "NoneType" else text]


def check_kinds(owner: object) -> None:
    """Refuses the first parameter of `owner`'s class (its `__init__` arguments, held as attributes of the same
    name: a dataclass's fields, an estimator's parameters) whose value is not of the declared type, naming parameter
    and value, whether or not the class's module postpones its annotations. A parameter of another type (a nested
    settings object) is its own class's to check.

    Raises:
        ValueError: `Got name=value; expected <the type>`.
    """
    for name, parameter in inspect.signature(type(owner)).parameters.items():
        kind = _KINDS.get(_written(parameter.annotation))
        if kind is not None:
            ok, expected = kind
            if not ok(getattr(owner, name)):
                raise refuse(name, getattr(owner, name), expected)
