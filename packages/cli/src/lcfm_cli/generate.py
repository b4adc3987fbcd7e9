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

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from lcfm_cli.option_specs import OptionSpec, option_specs, reflow
from lcfm_cli.option_values import (
    CONFIG_FLAG,
    config_shorthand,
    parse_key_values,
    resolve_args,
)

__all__ = ["OptionSpec", "dataclass_command", "is_main_process", "json_flag", "option_specs",
           "parse_key_values", "print_json", "reflow", "resolve_args"]

FROM_RECIPE = "(default: from the recipe)"
#: where a value counts as given by the user (typer's ParameterSource names)
_EXPLICIT = ("COMMANDLINE", "ENVIRONMENT")
_CONFIG_PARAM, _JSON_PARAM = "lcfm_config_files", "lcfm_as_json"


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
    if spec.kind == "list" and spec.choices:  # checked when the values are resolved
        metavar = "[" + "|".join(spec.choices) + "][,...]"
    if spec.kind in ("list", "dict") and help_text and "repeat" not in help_text.lower():
        help_text += " (repeatable)"
    info = typer.Option(*decls, help=help_text, show_default=_shown_default(spec),
                        metavar=metavar)
    hint = base if default is not None or spec.kind == "bool" else base | None
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[hint, info])


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
