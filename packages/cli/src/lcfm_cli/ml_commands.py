"""`lcfm finetune`, `evaluate`, `predict` and `embed`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.main import app, parse_options


def _main_process() -> bool:
    """Only the main process of an `accelerate launch` run prints the result line."""
    from lcfm.ranks import current_ranks

    return current_ranks().is_main


Folder = Annotated[Path, typer.Option(help="Folder of canonical shards.")]


@app.command()
def finetune(
    data: Folder,
    model: Annotated[str, typer.Option(
        help="Configuration name (see `lcfm models`) or a pretrained checkpoint folder.")],
    output: Annotated[Path, typer.Option(help="Folder for the fine-tuned model.")],
    lora: Annotated[bool, typer.Option(help="Train LoRA adapters (peft) and the head.")] = False,
    merge_lora: Annotated[bool, typer.Option(help="Also save the merged LoRA model.")] = False,
    freeze_encoder: Annotated[bool, typer.Option(help="Train the head only.")] = False,
    spc: Annotated[int, typer.Option(
        help="Few-shot: training samples per class (Astromer 2 uses 20, 100, 500).")] = 0,
    folds: Annotated[int, typer.Option(help="Few-shot folds (mean and spread reported).")] = 1,
    max_steps: Annotated[int, typer.Option()] = 500,
    batch_size: Annotated[int, typer.Option()] = 32,
    loss: Annotated[str, typer.Option(
        help="weighted_ce (w_c = N/N_c), ce, soft_f1 or focal.")] = "weighted_ce",
    balanced: Annotated[bool, typer.Option(help="Class-balanced batches.")] = False,
    augment: Annotated[list[str] | None, typer.Option(
        help="ATCAT augmentation: subsample, scale, shift, redshift, noise (repeatable).")]
    = None,
    lr_encoder: Annotated[float, typer.Option()] = 1e-4,
    lr_head: Annotated[float, typer.Option()] = 1e-3,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (evaluations).")] = 5,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUTPUT/checkpoint.")] = False,
    metadata: Annotated[bool, typer.Option(
        help="Feed each object's metadata to models with a metadata token (ATCAT).")] = False,
    config: Annotated[list[str] | None, typer.Option(
        help="Config override key=value (repeatable).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="DataLoader processes that read and collate batches (default: none on a "
             "machine of 1-2 cores, else min(4, cores - 1)); batches do not depend on it.")]
    = None,
    eval_every: Annotated[int, typer.Option(
        help="Evaluate (validation macro F1, early stopping) every N steps (default 0: ten "
             "evaluations, the last at the end).")] = 0,
    checkpoint_every: Annotated[int, typer.Option(
        help="Checkpoint every N steps (default 0: at every evaluation). Ctrl-C or SIGTERM "
             "checkpoints the step in progress before stopping.")] = 0,
) -> None:
    """Fine-tune a classifier: full, frozen encoder, or LoRA; few-shot with --spc/--folds."""
    from lcfm.engine.finetune import FinetuneArgs
    from lcfm.engine.finetune import finetune as run

    summary = run(FinetuneArgs(
        data=data, model=model, output=output, lora=lora, merge_lora=merge_lora,
        freeze_encoder=freeze_encoder, samples_per_class=spc, folds=folds,
        max_steps=max_steps, batch_size=batch_size, loss=loss, balanced=balanced,
        augment=augment or [], lr_encoder=lr_encoder, lr_head=lr_head, patience=patience,
        seed=seed, resume=resume, metadata=metadata, config_overrides=parse_options(config or []),
        workers=workers, eval_every=eval_every, checkpoint_every=checkpoint_every))
    if "test_macro_f1_mean" in summary:
        typer.echo(f"{folds} folds, {spc} per class: test macro F1 "
                   f"{summary['test_macro_f1_mean']:.3f} +- {summary['test_macro_f1_std']:.3f}")
    elif summary.get("test"):
        t = summary["test"]
        typer.echo(f"{summary['steps']} steps; test accuracy {t['accuracy']:.3f}, macro F1 "
                   f"{t['macro_f1']:.3f}, ECE {t['ece']:.3f}; model in {output}")
    else:
        typer.echo(f"{summary['steps']} steps; model in {output}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Fine-tuned model folder.")],
    data: Folder,
    output: Annotated[Path, typer.Option(help="Folder for metrics, plots and tables.")],
    batch_size: Annotated[int, typer.Option()] = 64,
) -> None:
    """Accuracy, per-class and macro P/R/F1, class-balanced F1, confusion matrix,
    reliability diagram and ECE, per-class threshold table, on held-out objects: the
    model's training and validation objects and rows without one of its classes are
    left out and counted."""
    from lcfm.engine.evaluate import evaluate as run

    r = run(model, data, output, batch_size)
    if not _main_process():
        return
    excluded = r["excluded_training_objects"]
    held_out = ("no split record in the model folder: training objects not checked"
                if excluded is None else f"{excluded} training/validation objects excluded")
    typer.echo(f"{r['n_objects']} held-out objects scored ({held_out}; skipped: "
               f"{r['n_skipped_unlabeled']} unlabeled, {r['n_skipped_foreign_label']} with "
               f"other labels): accuracy {r['accuracy']:.3f}, macro F1 {r['macro_f1']:.3f}, "
               f"class-balanced F1 {r['class_balanced_f1']:.3f}, ECE {r['ece']:.3f}; "
               f"details in {output}")


@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="Fine-tuned model folder.")],
    data: Folder,
    output: Annotated[Path, typer.Option(help="Parquet catalog to write.")],
    mc_samples: Annotated[int, typer.Option(
        help="Monte-Carlo dropout passes with the model's own dropout (ASTRAFier uses 20); "
             "0 = one deterministic pass. A model without dropout refuses it.")]
    = 0,
    batch_size: Annotated[int, typer.Option()] = 64,
    seed: Annotated[int, typer.Option()] = 0,
    cutoffs: Annotated[str | None, typer.Option(
        help="Causal models: also classify at these days since the first observation, "
             "e.g. 1,3,10,30 (written to <output>_early.parquet).")] = None,
    early: Annotated[bool, typer.Option(
        help="Causal models: probabilities after every observation (<output>_early.parquet)."
    )] = False,
    resume: Annotated[bool, typer.Option(
        help="Keep the shards a killed run finished (OUTPUT.parts/) and do the rest; refused "
             "when the model, data or options differ.")] = False,
) -> None:
    """Classify every object, labeled or not, over all its observations: a Parquet catalog
    with probabilities per class and n_observations_used, and <output stem>.json (counts,
    speed, num_processes). Shards are shared among `accelerate launch` processes and
    written as parts before the merge; one progress line per shard off a terminal."""
    from lcfm.engine.evaluate import predict as run
    from lcfm.exceptions import ConfigError

    try:
        days = [float(x) for x in cutoffs.split(",")] if cutoffs else None
    except ValueError:
        raise ConfigError(f"--cutoffs {cutoffs!r}: expected numbers separated by commas"
                          ) from None
    catalog = run(model, data, output, mc_samples, batch_size, seed, cutoffs=days,
                  early=early, resume=resume)
    if _main_process():
        typer.echo(f"{catalog.height} objects classified -> {output}")


@app.command()
def embed(
    model: Annotated[Path, typer.Option(help="Pretrained or fine-tuned model folder.")],
    data: Folder,
    output: Annotated[Path, typer.Option(help="Parquet file of embeddings.")],
    plot: Annotated[Path | None, typer.Option(help="Also draw a 2-D projection PNG.")] = None,
    batch_size: Annotated[int, typer.Option()] = 64,
    resume: Annotated[bool, typer.Option(
        help="Keep the shards a killed run finished (OUTPUT.parts/) and do the rest.")]
    = False,
) -> None:
    """One embedding vector per object, and <output stem>.json (counts, speed,
    num_processes); shards are shared among `accelerate launch` processes."""
    from lcfm.engine.evaluate import embed as run

    table = run(model, data, output, batch_size, plot, resume=resume)
    if _main_process():
        typer.echo(f"{table.height} embeddings of size {len(table['embedding'][0])} -> {output}")
