"""The options of a command, read from its dataclass (issue 13, "one source of truth for
options"): one `OptionSpec` per field declared with `lcfm.options.option` and cli=True,
with its flag (the field name, or the field's `flag`), kind (from the type annotation),
default, help text and choices (`choices=` or a `Literal` annotation)."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Literal

from lcfm.options import on_cli, option_choices, option_default, option_flag, option_help

_SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}


def reflow(text: str | None) -> str:
    """Join the hard line breaks of a docstring or help text, keeping paragraphs, so the
    terminal wraps it to its own width."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text or ""))
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines() if line.strip())
                       for p in paragraphs if p.strip())




@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One command-line option derived from one dataclass field."""

    name: str                  # the field (and the Python parameter) name
    flag: str                  # e.g. "--max-steps"
    kind: str                  # bool, int, float, str, path, list, tuple, dict or json
    item: type | None          # element type of a list or tuple
    optional: bool             # None is a valid value
    default: Any               # the dataclass default; dataclasses.MISSING when required
    help: str
    choices: tuple[str, ...] | None
    from_recipe: bool

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def __str__(self) -> str:
        return self.flag


def _recipe_fields() -> frozenset[str]:
    try:
        from lcfm.recipes import Recipe
    except ImportError:  # recipes not installed: no field is filled by one
        return frozenset()
    return frozenset(f.name for f in dataclasses.fields(Recipe))


def _classify(hint) -> tuple[str, type | None, bool, tuple[str, ...] | None]:
    """(kind, item type, optional, Literal choices) of a field's type annotation."""
    optional = False
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) != 1:
            return "json", None, optional, None
        hint = rest[0]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "str", None, optional, tuple(str(a) for a in args)
    if hint in _SCALARS:
        return _SCALARS[hint], None, optional, None
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return "path", None, optional, None
    if hint is list or origin is list or hint is tuple or origin is tuple:
        item = next((a for a in args if a is not Ellipsis), str)
        choices = None
        if typing.get_origin(item) is Literal:
            choices, item = tuple(str(a) for a in typing.get_args(item)), str
        return ("list" if list in (hint, origin) else "tuple"), item, optional, choices
    if hint is dict or origin is dict:
        return "dict", None, optional, None
    return "json", None, optional, None


def option_specs(cls, exclude: Mapping[str, Any] | None = None) -> list[OptionSpec]:
    """The command-line options of dataclass `cls`: every field with cli=True (and not in
    `exclude`, the values a command fixes), in declaration order."""
    hints = typing.get_type_hints(cls)
    recipe = _recipe_fields() if any(f.name == "recipe" for f in dataclasses.fields(cls)) \
        else frozenset()
    specs = []
    for f in dataclasses.fields(cls):
        if not on_cli(f) or f.name in (exclude or {}):
            continue
        kind, item, optional, literal = _classify(hints[f.name])
        default = option_default(f)
        specs.append(OptionSpec(
            name=f.name, flag=option_flag(f), kind=kind, item=item,
            optional=optional, default=default, help=reflow(option_help(f)),
            choices=option_choices(f) or literal,
            from_recipe=default is None and f.name in recipe))
    return specs
