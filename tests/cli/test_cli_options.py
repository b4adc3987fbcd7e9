"""One source of truth for options (issue 13, items 3, 7 and 8): commands generated from
option dataclasses, --config files, --version, --json, help on every option, one-line
transformers load reports."""

from __future__ import annotations

import dataclasses
import json
import logging
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import pytest
from lcfm.exceptions import ConfigError
from lcfm.load_report import expand, one_line, parse_report, quiet_load_reports
from lcfm.options import on_cli, option, option_help
from lcfm_cli.generate import dataclass_command, option_specs, reflow, resolve_args
from lcfm_cli.main import GENERATED, command_group

# (command, "module:class") of every generated command
ARGS = {
    "pretrain": "lcfm.engine.pretrain:PretrainArgs",
    "finetune": "lcfm.engine.finetune:FinetuneArgs",
    "fewshot": "lcfm.engine.fewshot:FewShotArgs",
    "evaluate": "lcfm.engine.evaluate:EvaluateArgs",
    "predict": "lcfm.engine.evaluate:PredictArgs",
    "embed": "lcfm.engine.evaluate:EmbedArgs",
    "baseline": "lcfm.baseline:BaselineArgs",
    "simulate": "lcfm.simulate:SimulateArgs",
    "combine": "lcfm.combined:CombineArgs",
    "ensemble": "lcfm.engine.ensemble:EnsembleArgs",
    "push": "lcfm.hub:PushArgs",
}
#: commands that must print their result as JSON with --json
PRINTING = ("ingest", "features", "bench", "reproduce", *ARGS)


def _class(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.fixture(scope="module")
def labeled_dir(tmp_path_factory):
    """40 simulated, labeled MACHO light curves."""
    from lcfm.registry import get_survey
    from lcfm.simulate import simulate

    path = tmp_path_factory.mktemp("options") / "macho"
    simulate(get_survey("macho"), 40, path, seed=0)
    return path


@pytest.fixture(scope="module")
def group():
    return command_group()


def _command(group, name):
    command = group.command_named(None, name)
    assert command is not None, name
    return command


def _choices(param) -> list[str]:
    """The choices of a generated option (a Literal annotation), [] without."""
    import typing

    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)] \
        if typing.get_origin(annotation) is not Literal else [annotation]
    for candidate in (annotation, *args):
        if typing.get_origin(candidate) is Literal:
            return [str(a) for a in typing.get_args(candidate)]
    # a list of choices (comma-separated too) shows them as its metavar "[a|b|c][,...]"
    metavar = getattr(param, "metavar", None) or ""
    if metavar.startswith("[") and "|" in metavar:
        return metavar[1:metavar.index("]")].split("|")
    return []


def _options(command) -> dict:
    return {opt: p for p in command.params for opt in getattr(p, "opts", [])}


@dataclasses.dataclass
class Toy:
    """A toy run."""

    data: Path = option(help="Input folder.")
    steps: int | None = option(None, "Optimiser steps.")
    rate: float = option(1e-3, "Learning rate.")
    loss: str = option("ce", "Loss.", choices=("ce", "focal"))
    mode: Literal["a", "b"] = option("a", "Mode.")
    lora: bool = option(False, "Use LoRA.")
    augment: list[str] = option(default_factory=list, help="Augmentations.",
                                choices=("shift", "scale"))
    spc: list[int] = option(default_factory=lambda: [20, 100], help="Samples per class.")
    config_overrides: dict = option(default_factory=dict, help="Model config key=value.",
                                    flag="config")
    progress: bool = option(True, "Progress bars.", cli=False)


def test_toy_options_follow_the_fields():
    specs = {s.name: s for s in option_specs(Toy)}
    assert "progress" not in specs  # cli=False
    assert specs["data"].required and specs["data"].kind == "path"
    assert specs["steps"].optional and specs["steps"].default is None
    assert specs["loss"].choices == ("ce", "focal") and specs["mode"].choices == ("a", "b")
    assert specs["spc"].kind == "list" and specs["spc"].item is int
    assert specs["spc"].default == [20, 100]
    assert specs["config_overrides"].flag == "--config"


def test_config_file_then_command_line(tmp_path):
    specs = option_specs(Toy)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: d\nsteps: 7\nrate: 5e-5\nloss: focal\nspc: 4,2\n"
                   "config_overrides: {num_layers: 2, dropout: 0.1}\n")
    args = resolve_args(Toy, specs, {"steps": 3, "augment": ["shift,scale"]},
                        {"steps", "augment"}, [str(cfg), "dropout=0.2"], command="toy")
    # the command line wins over the file, the file over the defaults
    assert args.steps == 3 and args.loss == "focal" and args.rate == 5e-5
    assert args.data == Path("d") and args.spc == [4, 2] and args.augment == ["shift", "scale"]
    assert args.config_overrides == {"num_layers": 2, "dropout": 0.2}
    assert args.lora is False and args.progress is True


@pytest.mark.parametrize(("text", "fragment"), [
    ("data: d\nstep: 3\n", "unknown key 'step'"),
    ("data: d\nloss: hinge\n", "'hinge' is not one of ce, focal"),
    ("data: d\nsteps: many\n", "steps 'many': expected int"),
    ("data: d\nprogress: false\n", "unknown key 'progress'"),  # cli=False: not an option
    ("steps: 2\n", "needs --data"),
    ("[1, 2]\n", "expected a mapping"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, text, fragment):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        resolve_args(Toy, option_specs(Toy), {}, set(), [str(cfg)], command="toy")
    message = str(info.value)
    assert fragment in message and "\n" not in message
    if "unknown key" in fragment:
        assert str(cfg) in message


def test_bad_list_values_name_the_option():
    with pytest.raises(ConfigError, match="--spc '20,x'"):
        resolve_args(Toy, option_specs(Toy), {"data": "d", "spc": ["20,x"]}, {"data", "spc"},
                     command="toy")
    with pytest.raises(ConfigError, match="--augment 'twist': expected one of shift, scale"):
        resolve_args(Toy, option_specs(Toy), {"data": "d", "augment": ["twist"]},
                     {"data", "augment"}, command="toy")


def test_generated_toy_command_runs_through_typer(tmp_path, monkeypatch, capsys):
    """The generated function as typer sees it: flags, explicit-vs-default, --json."""
    import typer

    seen = {}

    def run(args):
        seen["args"] = args
        return {"steps": args.steps, "data": args.data}

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"data": "x", "steps": 9, "rate": 0.5}))
    app = typer.Typer()
    app.command("toy")(dataclass_command(Toy, run, name="toy"))
    app(["--config", str(cfg), "--rate", "0.001", "--lora", "--spc", "5", "--json"],
        standalone_mode=False)
    args = seen["args"]
    # --rate 0.001 equals the default but was given explicitly: it beats the file's 0.5
    assert args.rate == 0.001 and args.steps == 9 and args.lora and args.spc == [5]
    assert json.loads(capsys.readouterr().out) == {"steps": 9, "data": "x"}


@pytest.mark.parametrize("name", list(ARGS))
def test_generated_options_match_the_dataclass(group, name):
    cls = _class(ARGS[name])
    command = _command(group, name)
    options = _options(command)
    for f in dataclasses.fields(cls):
        if not on_cli(f):
            assert "--" + f.name.replace("_", "-") not in options, f.name
            continue
        spec = next(s for s in option_specs(cls) if s.name == f.name)
        if spec.flag == "--config":
            assert "--config" in options
            continue
        assert spec.flag in options, (name, spec.flag)
        param = options[spec.flag]
        assert option_help(f) and reflow(option_help(f)) in param.help, \
            f"lcfm {name} {spec.flag}: the field {cls.__name__}.{f.name} has no help text"
        if spec.kind in ("int", "float", "str", "bool") and not spec.required:
            assert param.default == spec.default, (name, spec.flag)
        if spec.choices:
            assert _choices(param) == list(spec.choices), (name, spec.flag)
    assert {"--config", "--json"} <= set(options)


def test_every_option_of_every_command_has_help(group):
    missing = []
    for name in group.list_commands(None):
        command = _command(group, name)
        assert command.help and "\n" not in command.help.split("\n\n")[0], name
        for paragraph in command.help.split("\n\n"):  # reflowed: no hard line breaks
            assert "\n" not in paragraph, (name, paragraph)
        for param in command.params:
            if not (getattr(param, "help", "") or "").strip():
                missing.append(f"lcfm {name} {'/'.join(param.opts)}")
    assert not missing, "options without help: " + ", ".join(missing)


@pytest.mark.parametrize(("name", "flag"), [
    ("finetune", "--loss"), ("finetune", "--mixed-precision"), ("finetune", "--report-to"),
    ("finetune", "--selection"), ("pretrain", "--mixed-precision"), ("pretrain", "--report-to"),
    ("pretrain", "--optimizer"), ("fewshot", "--mode"), ("baseline", "--classifier")])
def test_enumerated_options_are_choices(group, name, flag):
    options = _options(_command(group, name))
    assert flag in options and _choices(options[flag]), f"lcfm {name} {flag} has no choices"


def test_a_loss_outside_the_choices_is_a_one_line_error(lcfm_cli, tmp_path):
    code, _, err = lcfm_cli("finetune", "--data", tmp_path, "--model", "astromer",
                            "--output", tmp_path / "o", "--loss", "ce,hinge")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "hinge" in err and "soft_f1" in err


def test_every_printing_command_has_json(group):
    for name in PRINTING:
        assert "--json" in _options(_command(group, name)), name


def test_generated_commands_are_listed_without_building_them():
    group = command_group()
    assert set(GENERATED) <= set(group.list_commands(None))
    assert not set(GENERATED) & set(group.commands)  # help lists placeholders only


def test_version(lcfm_cli):
    code, out, _ = lcfm_cli("--version")
    assert code == 0
    for package in ("lcfm", "lcfm-models", "lcfm-surveys", "lcfm-cli"):
        assert f"{package} {version(package)}" in out


def test_json_output_parses(lcfm_cli, tmp_path, labeled_dir):
    code, out, err = lcfm_cli("simulate", "--survey", "macho", "--n", 12, "--output",
                              tmp_path / "sim", "--json")
    assert code == 0, err
    assert json.loads(out)["light_curves"] == 12
    code, out, err = lcfm_cli("ingest", "--survey", "macho", "--output", tmp_path / "ing",
                              "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report == json.loads((tmp_path / "ing" / "report.json").read_text())
    code, out, err = lcfm_cli("features", "--data", labeled_dir, "--output",
                              tmp_path / "f.parquet", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["light_curves"] == 40
    assert summary == json.loads((tmp_path / "f.json").read_text())


def test_baseline_from_a_config_file_with_an_override(lcfm_cli, tmp_path, labeled_dir):
    cfg = tmp_path / "baseline.yaml"
    cfg.write_text(f"data: {labeled_dir}\nn_estimators: 7\nclassifier: random_forest\n"
                   "seed: 3\n")
    code, out, err = lcfm_cli("baseline", "--config", cfg, "--output", tmp_path / "b",
                              "--seed", 1, "--json")
    assert code == 0, err
    summary = json.loads(out)
    recorded = json.loads((tmp_path / "b" / "metrics.json").read_text())["args"]
    assert recorded["n_estimators"] == 7 and recorded["seed"] == 1
    assert recorded["data"] == str(labeled_dir) and summary["test"] == \
        json.loads((tmp_path / "b" / "metrics.json").read_text())["test"]


def test_unknown_config_key_is_one_line_exit_2(lcfm_cli, tmp_path):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"data": "x", "n_trees": 5}))
    code, out, err = lcfm_cli("baseline", "--config", cfg, "--output", tmp_path / "b")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(cfg) in lines[0] and "'n_trees'" in lines[0]


def test_pretrain_records_the_resolved_config(lcfm_cli, tmp_path, labeled_dir):
    from lcfm.registry import get_model

    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(json.dumps({"survey": "macho", "data": str(labeled_dir), "max_steps": 3,
                               "batch_size": 4, "config_overrides": get_model("astromer").tiny,
                               "model": "astromer-v2", "seed": 5}))
    code, out, err = lcfm_cli("pretrain", "--config", cfg, "--output", tmp_path / "p",
                              "--max-steps", 2, "--json")
    assert code == 0, err
    args = json.loads((tmp_path / "p" / "metrics.json").read_text())["args"]
    assert args["max_steps"] == 2 and args["batch_size"] == 4 and args["seed"] == 5
    assert args["config_overrides"] == json.loads(json.dumps(get_model("astromer").tiny))
    assert json.loads(out)["steps"] == 2


# ---- transformers' load report ------------------------------------------------------------

REPORT = """\x1b[1mAstromerForSequenceClassification LOAD REPORT\x1b[0m from: /no/such/folder
Key                         | Status     | 
----------------------------+------------+-
reconstruction_norm.bias    | UNEXPECTED | 
reconstruction_head.weight  | UNEXPECTED | 
classifier.{0, 3, 6}.weight | MISSING    | 
classifier.{0, 3, 6}.bias   | MISSING    | 

Notes:
- UNEXPECTED:\tcan be ignored when loading from different task/architecture.
- MISSING:\tthose params were newly initialized because missing from the checkpoint."""


def test_load_report_table_becomes_one_line():
    assert expand("classifier.{0, 3}.{weight, bias}") == [
        "classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"]
    model, source, rows = parse_report(REPORT)
    assert model == "AstromerForSequenceClassification" and source == "/no/such/folder"
    assert len(rows["MISSING"]) == 6 and len(rows["UNEXPECTED"]) == 2
    line = one_line(REPORT)
    assert "\n" not in line and "new classification head" in line
    assert "6 newly initialised (classifier)" in line
    assert "2 in the checkpoint but unused (reconstruction_head, reconstruction_norm)" in line


def test_new_head_on_a_pretrained_encoder_logs_one_line(tmp_path, caplog):
    from lcfm.engine.loading import classification_model
    from lcfm.registry import get_model
    from safetensors import safe_open
    from transformers import AutoConfig

    plugin = get_model("astromer")
    plugin.pretraining_class(plugin.make_config("astromer-v2", **plugin.tiny)) \
        .save_pretrained(tmp_path)
    quiet_load_reports()
    with caplog.at_level(logging.WARNING, logger="transformers.modeling_utils"):
        model = classification_model(plugin, AutoConfig.from_pretrained(tmp_path), tmp_path,
                                     ["a", "b", "c"])
    reports = [r.getMessage() for r in caplog.records if "classification head" in
               r.getMessage()]
    assert len(reports) == 1 and "\n" not in reports[0], caplog.text
    with safe_open(tmp_path / "model.safetensors", "pt") as fh:
        stored = set(fh.keys())
    new = {k for k in model.state_dict() if k not in stored}
    loaded = len(stored & set(model.state_dict()))
    assert f"{loaded} tensors loaded" in reports[0]
    assert f"{len(new)} newly initialised" in reports[0]
