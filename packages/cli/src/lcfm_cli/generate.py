"""Commands generated from option dataclasses (issue 13, "one source of truth for options").

A command's options are the fields of one dataclass declared with `lcfm.options.option`
(`PretrainArgs`, `FinetuneArgs`, `FewShotArgs`, `BaselineArgs`, ...). `dataclass_command`
turns such a dataclass into a typer command: the flag comes from the field name (or the
field's `flag`), the type from its annotation (Path, int, float, str, bool as --x/--no-x,
lists repeatable, lists of numbers or of choices also comma-separated, dicts as repeatable
key=value), the default and help text from the declaration, choices from `choices=` or a
`Literal` annotation. Fields a training recipe fills (default None) say "(default: from the
recipe)".

Every generated command also takes `--config FILE.yaml|json` (keys: the field names, or
their flags; unknown keys are a one-line error naming the file and the key; options given
on the command line win over the file) and `--json` (the run's summary as JSON on stdout).
`--config KEY=VALUE` is one model configuration override: it feeds the dict field whose
flag is `config`, else the field `config_overrides`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

import typer
from lcfm.exceptions import ConfigError
from lcfm.options import on_cli, option_choices, option_help

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
FROM_RECIPE = "(default: from the recipe)"
CONFIG_FLAG = "config"
_CONFIG_PARAM, _JSON_PARAM = "lcfm_config_files", "lcfm_as_json"
#: where a value counts as given by the user (typer's ParameterSource names)
_EXPLICIT = ("COMMANDLINE", "ENVIRONMENT")
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
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        flag = (f.metadata.get("flag") if f.metadata else None) or f.name.replace("_", "-")
        specs.append(OptionSpec(
            name=f.name, flag="--" + flag.lstrip("-"), kind=kind, item=item,
            optional=optional, default=default, help=reflow(option_help(f)),
            choices=option_choices(f) or literal,
            from_recipe=default is None and f.name in recipe))
    return specs


def _shown_default(spec: OptionSpec) -> str | bool:
    if spec.required or spec.default is None or spec.default in ({}, [], ()):
        return False
    if spec.kind in ("list", "tuple"):
        return ",".join(map(str, spec.default))
    return True


def _parameter(spec: OptionSpec) -> inspect.Parameter:
    """The typer parameter of one option (lists, tuples, dicts arrive as strings)."""
    help_text = spec.help
    if spec.from_recipe and not {"recipe", "default"} & set(re.findall(r"\w+",
                                                                      help_text.lower())):
        help_text = f"{help_text} {FROM_RECIPE}".strip()
    if spec.required and help_text:
        help_text = f"{help_text} (required: here or in --config)"
    if spec.kind == "bool":
        decls, base = (f"{spec.flag}/--no-{spec.flag[2:]}",), bool
    elif spec.kind in ("list", "dict"):
        decls, base = (spec.flag,), list[str]
    else:
        decls = (spec.flag,)
        base = {"int": int, "float": float, "path": Path}.get(spec.kind, str)
        if spec.choices and spec.kind == "str":
            base = Literal[spec.choices]
    default = None if spec.required or spec.kind in ("list", "dict", "tuple", "json") \
        else spec.default
    if spec.kind == "path" and default is not None:
        default = Path(default)
    metavar = {"list": "VALUE", "tuple": "VALUE,VALUE...", "dict": "KEY=VALUE",
               "json": "VALUE"}.get(spec.kind)
    if spec.kind == "list" and (spec.item in (int, float) or spec.choices):
        metavar = "VALUE[,VALUE...]"
    if spec.kind in ("list", "dict") and help_text and "repeat" not in help_text.lower():
        help_text += " (repeatable)"
    info = typer.Option(*decls, help=help_text, show_default=_shown_default(spec),
                        metavar=metavar)
    hint = base if default is not None or spec.kind == "bool" else base | None
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[hint, info])


# ---- values from the command line and from --config files ------------------------------

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


def is_main_process() -> bool:
    from lcfm.ranks import current_ranks

    return current_ranks().is_main


def print_json(summary) -> None:
    """A result as JSON on stdout (paths and other objects as strings)."""
    typer.echo(json.dumps(summary, indent=2, default=str))


def dataclass_command(cls, run: Callable[[Any], Any],
                      report: Callable[[Any, Any], None] | None = None, *, name: str,
                      doc: str | None = None, fixed: Mapping[str, Any] | None = None):
    """A typer command function for dataclass `cls`: its options are `option_specs(cls)`
    plus --config and --json; it builds the dataclass (`resolve_args`), calls
    `run(args)`, then prints `report(result, args)`, or the result as JSON with --json,
    on the main process only (`accelerate launch`). `fixed` sets fields the command does
    not expose (e.g. progress bars on)."""
    specs = option_specs(cls, exclude=fixed)
    shorthand = config_shorthand(specs)
    config_help = ("Run options from a YAML or JSON file, keys as the options here (with _ "
                   "or -); options given on the command line win; repeatable, later files "
                   "win.")
    if shorthand is not None and shorthand.flag == f"--{CONFIG_FLAG}":
        config_help += f" --config KEY=VALUE (repeatable): {shorthand.help}"
    elif shorthand is not None:
        config_help += f" --config KEY=VALUE is short for {shorthand.flag} KEY=VALUE."
    extra = [
        inspect.Parameter(_CONFIG_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[list[str] | None, typer.Option(
                              "--config", help=config_help, metavar="FILE")]),
        inspect.Parameter(_JSON_PARAM, inspect.Parameter.KEYWORD_ONLY, default=False,
                          annotation=Annotated[bool, typer.Option(
                              "--json", help="Print the run's summary as JSON on stdout.")]),
    ]

    def command(ctx: typer.Context, **given) -> None:
        configs = given.pop(_CONFIG_PARAM) or []
        as_json = given.pop(_JSON_PARAM)
        explicit = {k for k in given
                    if getattr(ctx.get_parameter_source(k), "name", None) in _EXPLICIT}
        args = resolve_args(cls, specs, given, explicit, configs, fixed, name)
        result = run(args)
        if not is_main_process():
            return
        if as_json:
            print_json(result)
        elif report is not None:
            report(result, args)

    command.__signature__ = inspect.Signature(
        [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                           annotation=typer.Context),
         *(_parameter(s) for s in specs if s.flag != f"--{CONFIG_FLAG}"), *extra])
    command.__name__ = command.__qualname__ = name
    command.__doc__ = reflow(doc if doc is not None else cls.__doc__)
    command.option_specs = specs
    return command


def json_flag(function: Callable) -> Callable:
    """`function` with a plain `as_json: bool` parameter exposed as `--json` (a command
    module may declare it without typer)."""
    signature = inspect.signature(function, eval_str=True)
    parameter = signature.parameters.get("as_json")
    if parameter is None or typing.get_origin(parameter.annotation) is Annotated:
        return function

    def command(*args, **kwargs):
        return function(*args, **kwargs)

    option = typer.Option("--json", help="Print the result as JSON on stdout.")
    command.__signature__ = signature.replace(parameters=[
        p.replace(annotation=Annotated[bool, option]) if p.name == "as_json" else p
        for p in signature.parameters.values()])
    command.__name__ = command.__qualname__ = function.__name__
    command.__doc__ = function.__doc__
    return command
