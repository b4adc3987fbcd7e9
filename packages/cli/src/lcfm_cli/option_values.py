"""Option values from the command line and from `--config FILE.yaml|json` files, checked
against each option's kind, and the dataclass of a run resolved from them: defaults, then
the files in order, then what the command line gave explicitly."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from lcfm.exceptions import ConfigError

from lcfm_cli.option_specs import OptionSpec

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
CONFIG_FLAG = "config"


def parse_key_values(items, flag: str) -> dict:
    """`key=value` strings -> dict; values read as JSON where they parse (2 -> int)."""
    parsed = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected key=value")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed


def _convert_item(spec: OptionSpec, value, where: str, shown=None):
    """One value of `spec.item`'s type; errors name `shown` (the value as given)."""
    item = spec.item or str
    shown = value if shown is None else shown
    try:
        if item is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if item in (int, float) and isinstance(value, bool):
            raise ValueError
        converted = item(value.strip() if isinstance(value, str) else value)
        if item is int and isinstance(value, float) and converted != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{where} {shown!r}: expected {item.__name__} values "
                          "(repeat the option or separate them by commas)") from None
    if spec.choices and str(converted) not in spec.choices:
        raise ConfigError(f"{where} {shown!r}: expected one of {', '.join(spec.choices)}")
    return converted


def _sequence(spec: OptionSpec, value, where: str):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} {value!r}: expected a list")
    converted = []
    for v in value:
        split = isinstance(v, str) and (spec.item in (int, float) or spec.choices)
        parts = [p for p in v.split(",") if p.strip()] if split else [v]
        converted += [_convert_item(spec, p, where, shown=v) for p in parts]
    return tuple(converted) if spec.kind == "tuple" else converted


def from_command_line(spec: OptionSpec, value):
    """The field value of an option given on the command line."""
    if value is None:
        return None
    if spec.kind in ("list", "tuple"):
        return _sequence(spec, value, spec.flag)
    if spec.kind == "dict":
        return parse_key_values(value, spec.flag)
    if spec.kind == "json":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _from_file(spec: OptionSpec, value, where: str):
    """A value read from a config file, checked against the field's type."""
    if value is None:
        if spec.optional:
            return None
        raise ConfigError(f"{where}: null is not allowed")
    kind = spec.kind
    if kind in ("list", "tuple"):
        return _sequence(spec, value, where)
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of key: value, got {value!r}")
        return dict(value)
    if kind == "json":
        return value
    if kind == "path":
        if not isinstance(value, (str, PurePath)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(spec.choices)}")
        return value
    return _convert_item(dataclasses.replace(spec, item=int if kind == "int" else float),
                         value, where)


def read_config_file(path: Path) -> dict:
    """The mapping in a YAML or JSON run-configuration file."""
    path = Path(path)
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise ConfigError(f"--config {path}: expected a .yaml, .yml or .json file "
                          "(or key=value, a model configuration override)")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's, in one line
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of option: value at the top level")
    return dict(data)


def config_shorthand(specs: list[OptionSpec]) -> OptionSpec | None:
    """The dict option a `--config key=value` feeds: the one whose flag is --config, else
    the model configuration overrides (`config_overrides`)."""
    dicts = [s for s in specs if s.kind == "dict"]
    return next((s for s in dicts if s.flag == f"--{CONFIG_FLAG}"),
                next((s for s in dicts if s.name == "config_overrides"), None))


def _is_config_file(value: str) -> bool:
    return (str(value).lower().endswith(CONFIG_SUFFIXES) or "=" not in str(value)
            or Path(value).is_file())


def resolve_args(cls, specs: list[OptionSpec], given: Mapping[str, Any],
                 explicit: set[str], configs: list[str] | None = None,
                 fixed: Mapping[str, Any] | None = None, command: str = ""):
    """The dataclass instance of a run: dataclass defaults, then --config files in order,
    then the options given on the command line (`explicit`), then the command's `fixed`
    values. Dict options merge (command line keys win)."""
    by_key = {}
    for spec in specs:
        by_key[spec.name] = by_key[spec.flag[2:].replace("-", "_")] = spec
    shorthand = config_shorthand(specs)
    values: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for item in configs or []:
        if not _is_config_file(item):
            if shorthand is None:
                raise ConfigError(f"--config {item!r}: expected a .yaml, .yml or .json file")
            overrides.update(parse_key_values([item], "--config"))
            continue
        for key, value in read_config_file(Path(item)).items():
            spec = by_key.get(str(key).lstrip("-").replace("-", "_"))
            if spec is None:
                raise ConfigError(f"{item}: unknown key {key!r}: not an option of "
                                  f"`lcfm {command}` (see `lcfm {command} --help`)")
            value = _from_file(spec, value, f"{item}: {key}")
            if spec.kind == "dict":
                value = {**values.get(spec.name, {}), **value}
            values[spec.name] = value
    for spec in specs:
        if spec.name in explicit:
            value = from_command_line(spec, given.get(spec.name))
            if spec.kind == "dict":
                value = {**values.get(spec.name, {}), **value}
            values[spec.name] = value
    if shorthand is not None and overrides:
        values[shorthand.name] = {**values.get(shorthand.name, {}), **overrides}
    values.update(fixed or {})
    missing = [s.flag for s in specs if s.required and s.name not in values]
    if missing:
        raise ConfigError(f"`lcfm {command}` needs {', '.join(missing)} (on the command "
                          "line or in a --config file)")
    return cls(**values)
