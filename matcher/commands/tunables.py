"""The match settings as command-line options, made from `MatchSettings` and `SlatePolicy` themselves.

Each field is an option of the same name, dashes for underscores (`min_market_share` is `--min-market-share`),
with the field's default and its description from the class docstring; `None` is spelled 0 (`--capacity 0`: no
limit). The values are checked by the dataclasses, and a bad one ends the command with their one-line message.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

import typer

from matcher.commands.common import UserError
from matcher.settings import CHOICES, MatchSettings, SlatePolicy

__all__ = ["TUNABLES", "Tunable", "settings_from", "with_settings"]

PANEL = "Match settings"
# What 0 means on the command line for each field whose None cannot be typed there, for the settings' messages.
_NONE_MEANS = {"capacity": "no limit"}
# Field types as written in the dataclasses (postponed annotations), and the option type of each.
_TYPES: dict[str, tuple[type, bool]] = {
    "int": (int, False),
    "float": (float, False),
    "bool": (bool, False),
    "str": (str, False),
    "int | None": (int, True),
}


@dataclasses.dataclass(frozen=True)
class Tunable:
    """One field of MatchSettings or SlatePolicy, as the command line offers it."""

    owner: type
    name: str
    kind: type
    optional: bool  # None is spelled 0
    default: Any
    description: str
    choices: tuple[str, ...] | None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


def _descriptions(cls: type) -> dict[str, str]:
    """Each field's description in the class docstring's Args section, on one line."""
    text = inspect.getdoc(cls).split("Args:", 1)[1]
    found = re.findall(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", text, flags=re.M | re.S)
    return {name: " ".join(body.split()) for name, body in found}


def _tunables() -> tuple[Tunable, ...]:
    out = []
    for cls in (MatchSettings, SlatePolicy):
        described = _descriptions(cls)
        for field in dataclasses.fields(cls):
            if field.name == "slate":  # the nested SlatePolicy: its own fields follow
                continue
            if field.type not in _TYPES:
                raise TypeError(f"{cls.__name__}.{field.name}: no command-line option for type {field.type!r}")
            kind, optional = _TYPES[field.type]
            if optional and field.name not in _NONE_MEANS:
                raise TypeError(f"{cls.__name__}.{field.name}: say in _NONE_MEANS what 0 (None) means for it")
            default = 0 if optional and field.default is None else field.default
            out.append(
                Tunable(cls, field.name, kind, optional, default, described[field.name], CHOICES.get(field.name))
            )
    return tuple(out)


TUNABLES = _tunables()


def settings_from(values: dict[str, Any]) -> MatchSettings:
    """MatchSettings from option values by field name (absent ones keep their defaults); bad values are user errors."""
    by_owner: dict[type, dict[str, Any]] = {MatchSettings: {}, SlatePolicy: {}}
    for tunable in TUNABLES:
        if tunable.name in values:
            value = values[tunable.name]
            by_owner[tunable.owner][tunable.name] = None if tunable.optional and value == 0 else value
    try:
        return MatchSettings(**by_owner[MatchSettings], slate=SlatePolicy(**by_owner[SlatePolicy]))
    except ValueError as exc:
        raise UserError(_as_typed(str(exc))) from exc


def _as_typed(message: str) -> str:
    """A settings message as typed on the command line: `None`, which cannot be typed there, is its option's 0
    (`Got capacity=-1; expected at least 1 or None` asked for a value no option takes)."""
    for tunable in TUNABLES:
        if tunable.optional and message.startswith(f"Got {tunable.name}=") and message.endswith(" or None"):
            return f"{message.removesuffix(' or None')}, or {tunable.option} 0 for {_NONE_MEANS[tunable.name]}"
    return message


def _parameter(tunable: Tunable, description: str | None = None) -> inspect.Parameter:
    kind = Literal[tunable.choices] if tunable.choices else tunable.kind
    option = typer.Option(help=description or tunable.description, rich_help_panel=PANEL)
    return inspect.Parameter(
        tunable.name, inspect.Parameter.KEYWORD_ONLY, default=tunable.default, annotation=Annotated[kind, option]
    )


def with_settings(
    names: Iterable[str] | None = None, described: Mapping[str, str] | None = None
) -> Callable[[Callable], Callable]:
    """Gives a command one option per tunable (or per tunable in `names`) and calls it with `settings=`.

    The decorated command takes `settings: MatchSettings` instead of the options themselves. `described` gives a
    tunable's help where the command reads it otherwise than a match does (`similar`'s market share is of its
    asked marketplaces, not of a campaign's).
    """
    described = described or {}
    chosen = [t for t in TUNABLES if names is None or t.name in set(names)]

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "settings"]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            settings = settings_from({t.name: values.pop(t.name) for t in chosen})
            return command(settings=settings, **values)

        # typer reads the options from the signature and the annotations, so both describe the options.
        run.__signature__ = signature.replace(
            parameters=[*own, *(_parameter(t, described.get(t.name)) for t in chosen)]
        )
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
        return run

    return decorate
