"""One declaration per option (issue 13, "one source of truth for options").

Each command's options are fields of one dataclass (`PretrainArgs`, `FinetuneArgs`, ...)
declared with `option(...)`: the default, the help text and, for enumerated values, the
choices live here once. The CLI builds its commands from these fields, `--config FILE`
fills them from a file, and metrics.json records the resolved values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, choices: Sequence[str] | None = None,
           default_factory: Callable[[], Any] | None = None, cli: bool = True,
           flag: str | None = None) -> Any:
    """A dataclass field carrying its CLI metadata.

    `cli=False` keeps a field out of the command line (programmatic or test-only knobs);
    `flag` overrides the derived flag name (`max_steps` -> `--max-steps`)."""
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "cli": cli,
                "flag": flag}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_help(field: dataclasses.Field) -> str:
    return field.metadata.get("help", "") if field.metadata else ""


def option_choices(field: dataclasses.Field) -> tuple[str, ...] | None:
    return field.metadata.get("choices") if field.metadata else None


def on_cli(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("cli", True)) if field.metadata else True


def option_flag(field: dataclasses.Field) -> str:
    """The command-line flag of a field: `--max-steps`, or its declared `flag`."""
    name = (field.metadata.get("flag") if field.metadata else None) or field.name
    return "--" + name.replace("_", "-").lstrip("-")


def option_default(field: dataclasses.Field) -> Any:
    """A field's default value (a fresh one from its factory), or dataclasses.MISSING."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING
