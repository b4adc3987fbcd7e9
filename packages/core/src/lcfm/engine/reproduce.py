"""`lcfm reproduce PAPER --output DIR`: one paper's headline experiment, end to end, on
simulated data of the paper's survey (issue 11, "Done when": "Each paper's headline
experiment runs end to end on simulated data at small size with one documented command").

Each paper's protocol (`lcfm.engine.reproduce_papers`) chains the public engine functions
(simulate, combine, pretrain, finetune, fewshot, evaluate) with the paper's model
configuration and its recipe (`lcfm.recipes`):

* astrafier (ASTRAFier sect. 6.1 and 6.3): Kepler-only classification, then Kepler + TESS
  combined training scored on the TESS holdout with MC-dropout predictions (sect. 3.6);
* astromer-2 / astromer-1 (Astromer 2 sect. 4-5): MACHO pretraining, reconstruction rmse
  and r2 on held-out light curves, few-shot 20/100/500 samples per class x 3 folds with a
  frozen encoder + MLP after reconstruction adaptation (sect. 5.1);
* astroco (AstroCo sect. 4-5, appendix A): MACHO R pretraining of AstroCo-S, reconstruction
  rmse and r2 (Table 1), frozen encoder + linear head on 20/100/500 labels per class;
* atcat (ATCAT sect. 2.5, 3.2-3.3): ELAsTiCC next-flux pretraining, fine-tuning with the
  model's own objective, class-balanced F1 and early classification per cut-off in days
  from the alert.

Scales: "small" (default; a few hundred simulated light curves and a few dozen to a few
hundred steps, minutes on two CPU cores), "paper" (the paper's corpus sizes and the
recipes' own steps and batch sizes: documented, meant for GPUs) and "test" (each
plugin's `tiny` configuration, a handful of steps; the test suite's). DIR/reproduce.json
holds every stage's equivalent `lcfm ...` command line, the resolved recipes, the metrics
of every stage and the headline numbers beside the paper's reported ones (labelled; at
small and test scale they are not comparable, and the file says so); DIR/REPORT.md shows
the same as tables.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcfm.exceptions import ConfigError, DataError, LcfmError
from lcfm.options import on_cli, option, option_default, option_flag

PAPERS = ("astrafier", "astromer-2", "astromer-1", "astroco", "atcat")
SCALES = ("small", "paper", "test")
RESULTS_FILE, REPORT_FILE = "reproduce.json", "REPORT.md"
NOT_COMPARABLE = ("simulated light curves at {scale} scale: the numbers show that every "
                  "stage of the protocol runs, they are not comparable with the paper's, "
                  "which come from real survey data and full-length training")


@dataclass
class ReproduceArgs:
    """Options of `lcfm reproduce`."""

    paper: str = option(help="Paper whose headline experiment runs.", choices=PAPERS)
    output: Path = option(help="Empty folder (or one of an earlier run of the same paper) "
                               "for the data, models, reproduce.json and REPORT.md.")
    scale: str = option("small", "small: a few hundred simulated light curves, minutes on "
                                 "a CPU; paper: the paper's corpus sizes, steps and batch "
                                 "sizes (GPU); test: tiny models, a handful of steps.",
                        choices=SCALES)
    steps: int | None = option(None, "Optimiser steps of every training stage (default: the "
                                     "scale's; at paper scale the recipes').")
    n: int | None = option(None, "Simulated light curves per dataset (default: the "
                                 "scale's).")
    batch_size: int | None = option(None, "Light curves per batch of every stage (default: "
                                          "the scale's; at paper scale the recipes').")
    adapt_steps: int | None = option(None, "Astromer: reconstruction adaptation steps per "
                                           "few-shot scenario (default: the scale's).")
    mc_samples: int | None = option(None, "ASTRAFier: MC-dropout passes at evaluation "
                                          "(default: the scale's; the paper uses 20).")
    seed: int = option(0, "Seed of the simulations, splits and training.")
    progress: bool = option(False, "Progress bars.", cli=False)


@dataclass(frozen=True)
class Size:
    """How large one paper's experiment runs at one scale. None: the recipe's value."""

    n: int                      # simulated light curves per labeled dataset
    n_second: int = 0           # a second labeled survey (ASTRAFier's TESS); 0: n
    n_pretrain: int = 0         # simulated light curves of the pretraining corpus
    steps: int | None = None
    batch_size: int | None = None
    tiny: bool = False
    spc: tuple[int, ...] = (20, 100, 500)
    folds: int = 3
    test_per_class: int = 1000
    adapt_steps: int = 0
    classifier_steps: int | None = None
    mc_samples: int = 20
    cutoffs: tuple[float, ...] = (8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
    baseline: bool = True


def resolve_size(args: ReproduceArgs, sizes: dict[str, Size]) -> Size:
    """The paper's `Size` at `args.scale`, with the options given replacing fields."""
    size = sizes[args.scale]
    given = {"n": args.n, "steps": args.steps, "batch_size": args.batch_size,
             "adapt_steps": args.adapt_steps, "mc_samples": args.mc_samples}
    for name, value in given.items():
        least = 0 if name in ("adapt_steps", "mc_samples") else 1
        if value is not None and int(value) < least:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least {least}")
    given = {k: int(v) for k, v in given.items() if v is not None}
    if "n" in given:
        given.update(n_second=given["n"] if size.n_second else 0,
                     n_pretrain=given["n"] if size.n_pretrain else 0)
    if "steps" in given and size.classifier_steps is not None:
        given["classifier_steps"] = given["steps"]
    return dataclasses.replace(size, **given)


def training_overrides(size: Size, scale: str) -> dict[str, Any]:
    """Options of a training stage at this size: steps and batch size; below paper scale
    also an evaluation cadence of four evaluations a run (one at test scale) and no
    minimum step (a recipe's `min_steps` of 200-4000 would keep no model in a 40-step
    run)."""
    out = {"max_steps": size.steps, "batch_size": size.batch_size}
    if scale != "paper" and size.steps:
        every = size.steps if scale == "test" else max(1, size.steps // 4)
        out.update(eval_every=every, min_steps=0)
    return out


def tiny_overrides(model: str, *, classifier: bool = True) -> dict[str, Any]:
    """The model plugin's `tiny` configuration values (test scale), without the ones a run
    sets itself (number of labels)."""
    from lcfm.registry import get_model

    values = dict(get_model(model).tiny)
    values.pop("num_labels", None)
    if not classifier:
        values.pop("classifier_hidden_sizes", None)
    return values


# ---- command lines ----------------------------------------------------------------------

def _text(value) -> str:
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return json.dumps(value) if (not value or any(c in value for c in " '\"$")) else value
    return json.dumps(value, separators=(",", ":"))


def command_line(command: str, args) -> str:
    """The `lcfm COMMAND ...` line equivalent to calling the command's function with the
    dataclass `args`: every command-line field whose value differs from its default
    (required fields always), flags as the generated CLI names them (`lcfm.options`)."""
    parts = ["lcfm", command]
    for field in dataclasses.fields(args):
        if not on_cli(field):
            continue
        value = getattr(args, field.name)
        default = option_default(field)
        if value is None or (default is not dataclasses.MISSING and value == default):
            continue
        flag = option_flag(field)
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, dict):
            parts += [f"--config {key}={_text(item)}" for key, item in value.items()]
        elif isinstance(value, list | tuple):
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                parts.append(f"{flag} {','.join(_number(v) for v in value)}")
            else:
                parts += [f"{flag} {_text(v)}" for v in value]
        else:
            parts.append(f"{flag} {_text(value)}")
    return " ".join(parts)


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ---- one run: stages, headline numbers, reports -------------------------------------------

class Recorder:
    """Runs a paper's stages, recording each one's command line, seconds, metrics and
    resolved recipe, and rewrites reproduce.json after every stage (an interrupted run
    shows how far it got)."""

    def __init__(self, args: ReproduceArgs, size: Size, output: Path, paper: dict):
        self.args, self.size, self.output, self.paper = args, size, output, paper
        self.stages: list[dict] = []
        self.headline: list[dict] = []
        self.notes: list[str] = []
        self.started = time.perf_counter()

    def stage(self, name: str, command: str, args, call: Callable[[Any], Any],
              metrics: Callable[[Any], dict], *, line: str | None = None) -> Any:
        """Run `call(args)` as stage `name` (`lcfm COMMAND` with `args`); returns its
        result."""
        started = time.perf_counter()
        result = call(args)
        seconds = round(time.perf_counter() - started, 2)
        recipe = result.get("recipe") if isinstance(result, dict) else None
        self.stages.append({
            "stage": name, "command": line or command_line(command, args),
            "seconds": seconds, "metrics": _finite(metrics(result)),
            "recipe": recipe})
        self.save()
        if isinstance(result, dict) and result.get("interrupted"):
            raise LcfmError(f"lcfm reproduce {self.args.paper}: stage {name!r} was "
                            f"interrupted at step {result.get('steps')}; rerun the command")
        return result

    def number(self, metric: str, obtained, reported=None, source: str = "",
               stage: str = "") -> None:
        """One headline number beside the paper's (None where the paper gives none)."""
        self.headline.append(_finite({"metric": metric, "stage": stage,
                                      "obtained": obtained, "reported": reported,
                                      "reported_in": source}))

    def record(self) -> dict:
        comparable = self.args.scale == "paper"
        return {
            "paper": self.args.paper, "title": self.paper["title"],
            "experiment": self.paper["experiment"], "scale": self.args.scale,
            "data": "simulated", "survey": self.paper["survey"],
            "size": dataclasses.asdict(self.size), "seed": self.args.seed,
            "comparable_with_paper": False,
            "comparability": NOT_COMPARABLE.format(scale=self.args.scale) if not comparable
            else "paper-sized protocol on simulated light curves: the protocol and sizes are "
                 "the paper's, the data is not (real data: ingest the survey and run the "
                 "same commands on it)",
            "commands": [s["command"] for s in self.stages],
            "recipes": {s["stage"]: s["recipe"] for s in self.stages if s["recipe"]},
            "stages": self.stages, "headline": self.headline, "notes": self.notes,
            "seconds": round(time.perf_counter() - self.started, 2),
        }

    def save(self) -> dict:
        record = self.record()
        (self.output / RESULTS_FILE).write_text(json.dumps(record, indent=2, default=str)
                                                + "\n")
        (self.output / REPORT_FILE).write_text(report_markdown(record))
        return record


def _finite(value):
    """JSON-safe copy: NaN and infinities become None (json.dumps would write NaN)."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return _finite(value.item())
        except (TypeError, ValueError):
            return value
    return value


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def report_markdown(record: dict) -> str:
    """REPORT.md: headline numbers beside the paper's, then the stages' commands."""
    lines = [f"# lcfm reproduce {record['paper']}: {record['title']}", "",
             f"{record['experiment']}", "",
             f"Scale **{record['scale']}**, simulated {record['survey']} light curves, "
             f"seed {record['seed']}, {record['seconds']} s.", "",
             f"> Comparability: {record['comparability']}.", "",
             "| metric | stage | obtained (lcfm, simulated) | reported (paper, real data) "
             "| where |", "|---|---|---|---|---|"]
    for row in record["headline"]:
        lines.append(f"| {row['metric']} | {row['stage']} | {_cell(row['obtained'])} | "
                     f"{_cell(row['reported'])} | {row['reported_in'] or '-'} |")
    lines += ["", "| stage | seconds | command |", "|---|---|---|"]
    for stage in record["stages"]:
        lines.append(f"| {stage['stage']} | {stage['seconds']} | `{stage['command']}` |")
    recipes = record["recipes"]
    if recipes:
        lines += ["", "Resolved recipes (reproduce.json has every field and its source):", ""]
        for stage, recipe in recipes.items():
            overrides = recipe.get("overrides") or {}
            lines.append(f"- {stage}: `{recipe.get('name')}`"
                         + (f", overridden: {json.dumps(overrides, default=str)}"
                            if overrides else ""))
    if record["notes"]:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in record["notes"]]
    return "\n".join(lines) + "\n"


def run_reproduce(args: ReproduceArgs) -> dict:
    """Run `args.paper`'s headline experiment at `args.scale` into `args.output`; returns
    the content of reproduce.json (module docstring)."""
    from lcfm.engine.reproduce_papers import PROTOCOLS

    if args.paper not in PROTOCOLS:
        raise ConfigError(f"--paper {args.paper!r}: expected one of {', '.join(PAPERS)}")
    if args.scale not in SCALES:
        raise ConfigError(f"--scale {args.scale!r}: expected one of {', '.join(SCALES)}")
    if int(args.seed) < 0:
        raise ConfigError(f"--seed {args.seed}: must be a non-negative integer")
    protocol = PROTOCOLS[args.paper]
    size = resolve_size(args, protocol.sizes)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise DataError(f"{output}: exists and is not a folder")
    previous = output / RESULTS_FILE
    if output.is_dir() and any(output.iterdir()):
        if not previous.is_file() or json.loads(previous.read_text()).get("paper") != args.paper:
            raise DataError(f"{output}: not empty and not a `lcfm reproduce {args.paper}` "
                            "folder; give an empty or new folder")
        import shutil

        for child in output.iterdir():  # an earlier run of the same paper: start again
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    output.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(args, size, output, protocol.describe())
    protocol.run(recorder)
    return recorder.save()


def reproduce(paper: str, output: Path, scale: str = "small", **options) -> dict:
    """`run_reproduce` with positional options; further `ReproduceArgs` fields as
    keywords."""
    return run_reproduce(ReproduceArgs(paper=paper, output=Path(output), scale=scale,
                                       **options))


__all__ = ["PAPERS", "REPORT_FILE", "RESULTS_FILE", "SCALES", "Recorder", "ReproduceArgs",
           "Size", "command_line", "report_markdown", "reproduce", "resolve_size",
           "run_reproduce", "tiny_overrides", "training_overrides"]
