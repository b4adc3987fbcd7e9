"""Declared survey options (issue 12, item 6: "option values are strings unless the plugin
declares a type").

An entry of `SurveyPlugin.options` is a plain default or a `survey_option(default, help,
type=...)`. lcfm parses a declared option's value from the text of `--option key=value`
(`bool`: true/false/yes/no/1/0; `int`, `float`; `list`: a comma list of text) and refuses a
bad one in one line; `choices` restricts the values. See `lcfm.survey` for the rules of
plain (undeclared) options.
"""

from __future__ import annotations

from dataclasses import dataclass

from lcfm.exceptions import ConfigError

__all__ = ["OPTION_TYPES", "SurveyOption", "option_text", "parse_flag", "parse_option_pairs",
           "survey_option"]

#: option types lcfm parses itself (`survey_option(type=...)`)
OPTION_TYPES = {"str": str, "bool": bool, "int": int, "float": float, "list": list}


@dataclass(frozen=True)
class SurveyOption:
    """A declared survey option: its default, help text, type and allowed values."""

    default: object = None
    help: str = ""
    type: type = str
    choices: tuple[str, ...] | None = None

    def parse(self, survey: str, name: str, value):
        """`value` (text from the command line, or a Python value) as this option's type."""
        if value is None:
            return None
        kind = self.type
        try:
            if kind is bool:
                parsed = parse_flag(value)
            elif kind is list:
                parsed = (list(value) if isinstance(value, list | tuple)
                          else [p.strip() for p in str(value).split(",") if p.strip()])
            elif kind is str:
                parsed = option_text(value)
            elif isinstance(value, bool):
                raise ValueError(value)
            else:
                parsed = kind(value if not isinstance(value, str) else value.strip())
        except (TypeError, ValueError):
            what = {bool: "a boolean (use true or false)", int: "an int"}.get(
                kind, f"a {kind.__name__}")
            raise ConfigError(f"survey {survey!r}: option {name}={value!r} is not {what}"
                              ) from None
        if self.choices is not None:
            items = parsed if isinstance(parsed, list) else [parsed]
            bad = [v for v in items if str(v) not in self.choices]
            if bad:
                raise ConfigError(f"survey {survey!r}: option {name}={value!r} is not one "
                                  f"of {', '.join(self.choices)}")
        return parsed


def survey_option(default=None, help: str = "", *, type: type | str = str,
                  choices=None) -> SurveyOption:
    """Declare an entry of `SurveyPlugin.options`: `type` is str (default), bool, int,
    float or list (a comma list on the command line, a list of str)."""
    kind = OPTION_TYPES.get(type, None) if isinstance(type, str) else type
    if kind not in OPTION_TYPES.values():
        raise ConfigError(f"survey option type {type!r}: expected one of "
                          f"{', '.join(OPTION_TYPES)}")
    return SurveyOption(default, help, kind, tuple(str(c) for c in choices) if choices else None)


def parse_flag(value) -> bool:
    """A boolean option from its text (ValueError otherwise)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)



def option_text(value) -> str:
    """An option value as the text the user typed (a command line parsed as JSON gives
    numbers and booleans back; they are written back as text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_option_pairs(items) -> dict[str, str]:
    """`--option key=value` strings -> {key: value} with the values as typed (text): the
    survey parses declared types itself, so `labels=123` stays "123"."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {item!r}: expected key=value")
        parsed[key.strip()] = value
    return parsed
