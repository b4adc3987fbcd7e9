"""The `lcfm` command (DESIGN.md, "CLI").

Every user error is an `LcfmError` (or an OS error about a path); `main` prints it as one
line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Light-curve foundation models: ingest surveys, pretrain, fine-tune, "
                       "evaluate, predict, embed, publish.")

Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON list.")]


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)


@app.command()
def surveys(as_json: Json = False) -> None:
    """List installed survey plugins: bands, taxonomy, formats."""
    from lcfm.registry import get_survey, survey_names

    described = [get_survey(n).describe() for n in survey_names()]
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    _print_table(["survey", "bands (Angstrom)", "taxonomy", "formats", "window", "options"], [
        [d["name"], ", ".join(f"{b} {w:.0f}" for b, w in d["bands"].items()),
         ", ".join(d["taxonomy"]), ", ".join(d["formats"]), str(d["default_window"]),
         ", ".join(f"{k}={v}" for k, v in d["options"].items())]
        for d in described])


@app.command()
def models(as_json: Json = False) -> None:
    """List installed model plugins and their paper configurations with parameter counts."""
    from lcfm.registry import get_model, model_names

    described = [get_model(n).describe() for n in model_names()]
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    _print_table(["model", "configuration", "parameters", "pretraining", "paper"], [
        [d["name"], c["name"], f"{c['parameters']:,}", d["pretraining"] or "-", d["paper"]]
        for d in described for c in d["configurations"]])


def parse_options(options: list[str]) -> dict:
    from lcfm.exceptions import ConfigError

    parsed = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r}: expected key=value")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


@app.command()
def ingest(
    survey: Annotated[str, typer.Option(help="Survey plugin name (see `lcfm surveys`).")],
    output: Annotated[Path, typer.Option(help="Folder for the shards and report.json.")],
    input: Annotated[Path | None, typer.Option(
        help="Native file or folder (default: the survey's bundled sample).")] = None,
    format: Annotated[str | None, typer.Option(help="Force one input format.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Label catalogue joined at ingest, where the survey supports it.")] = None,
    option: Annotated[list[str] | None, typer.Option(
        help="Survey option key=value (repeatable).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Abort on the first file that cannot be read (default: reject it, "
                         "list it in report.json and ingest the rest).")] = False,
    workers: Annotated[int, typer.Option(
        help="Processes reading and preprocessing files in parallel; the shards and "
             "report.json are those of one process.")] = 1,
) -> None:
    """Native survey files -> canonical Parquet shards + report.json.

    A file that cannot be read is rejected (named with its reason in report.json under
    files_rejected) and the rest is ingested; --strict aborts instead. A light curve seen
    twice is rejected as a duplicate object_id, or merged where the format says so. The
    folder is marked while it is written: readers refuse it, a second ingest into it fails
    at once, and rerunning a killed ingest restarts it cleanly. Under `accelerate launch`
    the processes share the files (i mod n) and the main process writes the dataset."""
    from lcfm.ingest import ingest as run_ingest
    from lcfm.registry import get_survey

    options = parse_options(option or [])
    if labels is not None:
        options["labels"] = str(labels)
    plugin = get_survey(survey)
    if options:
        plugin = plugin.with_options(**options)
    report = run_ingest(plugin, input, output, fmt=format, progress=True, strict=strict,
                        workers=workers)
    from lcfm.ranks import current_ranks

    if not current_ranks().is_main:  # `accelerate launch`: the main process reports
        return
    summary = report.to_dict()
    notes = []
    if report.duplicate_object_ids:
        notes.append(f"{report.duplicate_object_ids} duplicate light curve(s) rejected")
    if report.light_curves_merged:
        notes.append(f"{report.light_curves_merged} merged into others of the same object")
    n_bad = len(report.files_rejected)
    notes.append(f"{n_bad} file{'' if n_bad == 1 else 's'} rejected"
                 + (" (see report.json)" if n_bad else ""))
    typer.echo(f"{summary['light_curves_written']} light curves, "
               f"{summary['points_written']} of {summary['points_read']} points written "
               f"to {output} (rejected: {summary['points_rejected'] or 'none'}); "
               + "; ".join(notes))


@app.command()
def pretrain(
    survey: Annotated[str, typer.Option(help="Survey plugin name.")],
    output: Annotated[Path, typer.Option(help="Checkpoint folder.")] = Path("runs/pretrain"),
    data: Annotated[Path | None, typer.Option(
        help="Folder of canonical shards (default: the survey's bundled sample).")] = None,
    model: Annotated[str | None, typer.Option(
        help="Model configuration (see `lcfm models`; default astromer-v2, or the --init "
             "checkpoint's model).")] = None,
    init: Annotated[Path | None, typer.Option(
        help="Start from this pretrained checkpoint's weights, with a new optimiser and "
             "schedule (Astromer 2 sect. 5.1: reconstruction fine-tuning before "
             "classification); it must be of --model's type.")] = None,
    max_steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 200,
    batch_size: Annotated[int, typer.Option()] = 32,
    learning_rate: Annotated[float, typer.Option()] = 1e-3,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(
        help="Continue from OUTPUT/checkpoint; refused unless model, data, batch size, seed, "
             "max steps and learning rate are those of the checkpoint.")] = False,
    metadata: Annotated[bool, typer.Option(
        help="Feed each object's metadata to models with a metadata token (ATCAT).")] = False,
    config: Annotated[list[str] | None, typer.Option(
        help="Config override key=value (repeatable), e.g. num_layers=2.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="DataLoader processes that read and collate batches (default: none on a "
             "machine of 1-2 cores, else min(4, cores - 1)); batches do not depend on it.")]
    = None,
    eval_every: Annotated[int, typer.Option(
        help="Evaluate every N steps (default 0: five evaluations, the last at the end).")]
    = 0,
    checkpoint_every: Annotated[int, typer.Option(
        help="Checkpoint every N steps (default 0: at every evaluation). Ctrl-C or SIGTERM "
             "checkpoints the step in progress before stopping.")] = 0,
    eval_light_curves: Annotated[int | None, typer.Option(
        help="Validation light curves scored per evaluation, the same ones each time "
             "(default: 5% of those trained on between two evaluations, at least 128; "
             "0: all).")]
    = None,
) -> None:
    """Self-supervised pretraining; writes a Hugging Face checkpoint to OUTPUT. The data must
    be of --survey (the checkpoint is stamped with its name and bands)."""
    from lcfm.engine import PretrainArgs
    from lcfm.engine import pretrain as run_pretrain

    metrics = run_pretrain(PretrainArgs(
        survey=survey, output=output, data=data, model=model, max_steps=max_steps,
        batch_size=batch_size, learning_rate=learning_rate, seed=seed, resume=resume,
        metadata=metadata, config_overrides=parse_options(config or []), workers=workers,
        eval_every=eval_every, checkpoint_every=checkpoint_every,
        eval_light_curves=eval_light_curves, init=init))
    val = metrics["validation"][-1]["loss"] if metrics["validation"] else None
    typer.echo(f"{metrics['steps']} steps: loss {metrics['first_loss']:.4f} -> "
               f"{metrics['final_loss']:.4f}" + (f", validation {val:.4f}" if val else "")
               + f"; checkpoint in {output}")


# the other command groups register themselves on `app`
from lcfm_cli import (  # noqa: E402,F401
    bench_command,
    features_command,
    fewshot_command,
    ml_commands,
    push_command,
    simulate_command,
)


def main() -> None:
    from lcfm.exceptions import LcfmError

    warnings.filterwarnings("ignore", category=FutureWarning)
    # lcfm shows its own bars; no "Writing model shards". Through the environment, because
    # importing transformers here to switch them off would cost every command torch's
    # start-up (transformers and huggingface_hub read it when they are imported)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except LcfmError as exc:
        message = "; ".join(p.strip() for p in str(exc).splitlines() if p.strip())
        typer.echo(f"lcfm: error: {message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
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


if __name__ == "__main__":  # the commands register on lcfm_cli.main's app, not __main__'s
    from lcfm_cli.main import main as entry

    entry()
