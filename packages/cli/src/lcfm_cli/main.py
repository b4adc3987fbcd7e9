"""The `lcfm` command (DESIGN.md, "CLI"): the one module that assembles the app.

Command modules define plain functions and import nothing from here. The commands whose
options are a dataclass of the engine (`PretrainArgs`, `FinetuneArgs`, ...) are generated
from it (`lcfm_cli.generate`) when they are invoked, so `lcfm surveys` or `lcfm --help` do
not import torch.

Every user error is an `LcfmError` (or an OS error about a path); `main` prints it as one
line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import warnings
from typing import Annotated

import typer
from typer.core import TyperGroup

from lcfm_cli.bench_command import bench
from lcfm_cli.features_command import features
from lcfm_cli.generate import json_flag, reflow
from lcfm_cli.info_commands import models, show_version, surveys
from lcfm_cli.ingest_command import ingest

#: command -> (one-line help for `lcfm --help`, "module:factory" returning the command
#: function); built on first use
GENERATED = {
    "simulate": ("Labeled synthetic light curves in a survey's cadence and noise.",
                 "lcfm_cli.simulate_command:simulate_command"),
    "pretrain": ("Self-supervised pretraining; writes a Hugging Face checkpoint.",
                 "lcfm_cli.training_commands:pretrain_command"),
    "finetune": ("Fine-tune a classifier: full, frozen encoder or LoRA; few-shot with "
                 "--spc/--folds.", "lcfm_cli.training_commands:finetune_command"),
    "fewshot": ("Few-shot classification, Astromer 2's protocol (sect. 5.1).",
                "lcfm_cli.fewshot_command:fewshot_command"),
    "evaluate": ("Metrics of a model on held-out objects (or rmse/r2 of a pretrained one).",
                 "lcfm_cli.ml_commands:evaluate_command"),
    "predict": ("Classify every object: a Parquet catalog of probabilities.",
                "lcfm_cli.ml_commands:predict_command"),
    "embed": ("One embedding vector per object, as Parquet.",
              "lcfm_cli.ml_commands:embed_command"),
    "fold": ("Fold every light curve at its object's period (Lomb-Scargle or a table).",
             "lcfm_cli.features_command:fold_command"),
    "baseline": ("A random forest on classical features, on finetune's splits.",
                 "lcfm_cli.features_command:baseline_command"),
    "push": ("Publish a model or a dataset folder, with its card, on the Hugging Face Hub.",
             "lcfm_cli.push_command:push_command"),
    "reproduce": ("A paper's headline experiment end to end on simulated data.",
                  "lcfm_cli.reproduce_command:reproduce_command"),
    "combine": ("Combine dataset folders of several surveys into one.",
                "lcfm_cli.combine_command:combine_command"),
    "ensemble": ("Train an ensemble of classifiers on resampled training objects.",
                 "lcfm_cli.combine_command:ensemble_command"),
}
ORDER = ("surveys", "models", "recipes", "ingest", "simulate", "combine", "pretrain",
         "finetune", "ensemble", "fewshot", "evaluate", "predict", "embed", "features",
         "fold", "baseline", "bench", "push", "reproduce")


class Interrupted(Exception):
    """Ctrl-C during a command (raised past the command parser, which would otherwise print
    a bare "Aborted")."""


def interruptible(function):
    """`function` with Ctrl-C turned into `Interrupted` (same signature for typer)."""
    @functools.wraps(function)
    def command(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    return command


def _single(name: str, function, help_text: str | None = None, short: str | None = None):
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name, help=help_text if help_text is not None else function.__doc__,
                   short_help=short)(function)
    return typer.main.get_command(single)


def build_command(name: str, factory: str):
    """The command object of a generated command function."""
    module, _, attribute = factory.partition(":")
    function = getattr(importlib.import_module(module), attribute)()
    return _single(name, interruptible(function))


def _placeholder(name: str, short: str):
    return _single(name, lambda: None, short, short)


class LcfmGroup(TyperGroup):
    """The command group: hand-written commands, and generated ones built on first use (a
    placeholder carrying the one-line help stands in for them in `lcfm --help`)."""

    def list_commands(self, ctx) -> list[str]:
        names = [*super().list_commands(ctx), *(n for n in GENERATED if n not in self.commands)]
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))

    def command_named(self, ctx, name: str):
        """The full command `name`, generated now if it is not yet."""
        if name not in self.commands and name in GENERATED:
            self.commands[name] = build_command(name, GENERATED[name][1])
        return self.commands.get(name)

    def get_command(self, ctx, name: str):
        if name in self.commands or name not in GENERATED:
            return super().get_command(ctx, name)
        return _placeholder(name, GENERATED[name][0])

    def resolve_command(self, ctx, args: list[str]):
        if args:
            self.command_named(ctx, args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=LcfmGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Light-curve foundation models: ingest surveys, pretrain, fine-tune, "
                       "evaluate, predict, embed, publish.")


@app.callback()
def _lcfm(version: Annotated[bool, typer.Option(
        "--version", callback=show_version, is_eager=True,
        help="Print the versions of lcfm, lcfm-models, lcfm-surveys and lcfm-cli.")] = False,
          ) -> None:
    """Light-curve foundation models: ingest surveys, pretrain, fine-tune, evaluate, predict,
    embed, publish."""


def _short(text: str | None) -> str:
    """The first sentence of a docstring, for `lcfm --help`."""
    first = reflow(text).split("\n\n")[0]
    return first.split(". ")[0].rstrip(".") + "."


for _function in (surveys, models, ingest, features, bench):
    app.command(help=reflow(_function.__doc__), short_help=_short(_function.__doc__))(
        interruptible(_function))


def _register_optional() -> None:
    """Commands whose modules other parts of lcfm provide: registered when present."""
    for name, module, attribute in (("recipes", "lcfm_cli.recipes_command", "recipes"),):
        try:
            function = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            continue
        if callable(function):
            app.command(name, help=reflow(function.__doc__), short_help=_short(
                function.__doc__))(interruptible(json_flag(function)))


_register_optional()


def command_group() -> LcfmGroup:
    """The assembled click group (what `lcfm` runs)."""
    return typer.main.get_command(app)


def main() -> None:
    from lcfm.exceptions import LcfmError
    from lcfm.load_report import quiet_load_reports

    warnings.filterwarnings("ignore", category=FutureWarning)
    # lcfm shows its own bars; no "Writing model shards". Through the environment, because
    # importing transformers here to switch them off would cost every command torch's
    # start-up (transformers and huggingface_hub read it when they are imported)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    quiet_load_reports()
    try:
        command_group()(prog_name="lcfm")
    except LcfmError as exc:
        message = "; ".join(p.strip() for p in str(exc).splitlines() if p.strip())
        typer.echo(f"lcfm: error: {message}", err=True)
        sys.exit(2)
    except Interrupted:
        typer.echo("lcfm: interrupted; pretrain/finetune continue from their last checkpoint "
                   "with the same command and --resume; ingest/simulate restart cleanly when "
                   "run again into the same folder", err=True)
        sys.exit(130)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
            FileExistsError) as exc:
        # about a path the user gave (an --output that is a file, a missing folder); one
        # without a file name is not about user input: keep its traceback
        if exc.filename is None:
            raise
        typer.echo(f"lcfm: error: {exc.filename}: {exc.strerror or exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
