"""`lcfm reproduce PAPER --output DIR`: one paper's headline experiment end to end on
simulated data (issue 11), generated from `ReproduceArgs` (`lcfm.engine.reproduce`), with
PAPER as a positional argument."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Literal

import typer

from lcfm_cli.generate import dataclass_command

DOC = """Run a paper's headline experiment end to end on simulated data of its survey, with
the paper's configuration and recipe: astrafier (Kepler, then Kepler + TESS scored on the
TESS holdout with MC dropout), astromer-2 / astromer-1 (MACHO pretraining, reconstruction
RMSE/R2, few-shot classification), astroco (MACHO R pretraining of AstroCo-S,
reconstruction, frozen encoder + linear head), atcat (ELAsTiCC pretraining, fine-tuning with
the model's objective, class-balanced F1 per cut-off from the alert). Writes
OUTPUT/reproduce.json (commands, recipes, numbers beside the paper's) and
OUTPUT/REPORT.md."""


def report_reproduce(record: dict, args) -> None:
    """One line per headline number, then where the reports are."""
    for row in record["headline"]:
        obtained = row["obtained"]
        shown = f"{obtained:.4f}" if isinstance(obtained, float) else str(obtained)
        paper = "" if row["reported"] is None else f" (paper: {row['reported']})"
        typer.echo(f"{row['metric']}: {shown}{paper}")
    if not record["comparable_with_paper"]:
        typer.echo(f"note: {record['comparability']}")
    typer.echo(f"results in {Path(args.output) / 'reproduce.json'} and "
               f"{Path(args.output) / 'REPORT.md'}")


def reproduce_command():
    """The typer command function: the generated options of `ReproduceArgs`, PAPER taken
    as the first positional argument instead of --paper."""
    from lcfm.engine.reproduce import PAPERS, ReproduceArgs, run_reproduce

    command = dataclass_command(ReproduceArgs, run_reproduce, report_reproduce,
                                name="reproduce", doc=DOC)
    signature = inspect.signature(command)
    params = list(signature.parameters.values())
    paper = inspect.Parameter(
        "paper", inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[Literal[PAPERS], typer.Argument(
            help="Paper: " + ", ".join(PAPERS) + ".", show_default=False,
            metavar="PAPER")])
    rest = [p for p in params if p.name not in ("ctx", "paper")]
    command.__signature__ = signature.replace(parameters=[params[0], paper, *rest])
    command.option_specs = [s for s in command.option_specs if s.name != "paper"]
    return command


__all__ = ["DOC", "report_reproduce", "reproduce_command"]
