"""`lcfm fewshot`: Astromer 2's few-shot classification protocol (paper sect. 5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.main import app, parse_options


@app.command()
def fewshot(
    data: Annotated[Path, typer.Option(help="Folder of labeled canonical shards.")],
    model: Annotated[str, typer.Option(
        help="Pretrained checkpoint folder, or a configuration name (see `lcfm models`).")],
    output: Annotated[Path, typer.Option(
        help="Folder for fewshot.json, fewshot.png and one model per scenario "
             "(spc-N/fold-K).")],
    spc: Annotated[str, typer.Option(
        help="Training samples per class, comma-separated (paper: 20,100,500); drawn with "
             "replacement when a class has fewer objects.")] = "20,100,500",
    folds: Annotated[int, typer.Option(
        help="Folds per SPC, each with its own balanced test set (paper: 3).")] = 3,
    test_per_class: Annotated[int, typer.Option(
        help="Test objects per class and fold (paper: 1000), at most half of a class's "
             "objects.")] = 1000,
    mode: Annotated[str, typer.Option(
        help="frozen (encoder frozen, MLP head trained: the paper's classifier), full or "
             "lora.")] = "frozen",
    validation_fraction: Annotated[float, typer.Option(
        help="Validation objects per class as a fraction of SPC (0: the best step is "
             "chosen on the training objects).")] = 0.0,
    max_steps: Annotated[int, typer.Option()] = 500,
    batch_size: Annotated[int, typer.Option()] = 32,
    lr_encoder: Annotated[float, typer.Option()] = 1e-4,
    lr_head: Annotated[float, typer.Option()] = 1e-3,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (evaluations).")] = 5,
    eval_every: Annotated[int, typer.Option(
        help="Evaluate every N steps (default 0: ten evaluations per run).")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    config: Annotated[list[str] | None, typer.Option(
        help="Config override key=value (repeatable).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="DataLoader processes that read and collate batches.")] = None,
) -> None:
    """Few-shot classification (Astromer 2 sect. 5.1): per SPC and fold, a balanced test
    set disjoint from training, SPC training objects per class, a classifier trained on
    them; test macro F1 per scenario, mean and spread per SPC, in OUTPUT/fewshot.json."""
    from lcfm.engine.fewshot import FewShotArgs, parse_spc
    from lcfm.engine.fewshot import fewshot as run

    report = run(FewShotArgs(
        data=data, model=model, output=output, spc=parse_spc(spc), folds=folds,
        test_per_class=test_per_class, mode=mode, validation_fraction=validation_fraction,
        max_steps=max_steps, batch_size=batch_size, lr_encoder=lr_encoder, lr_head=lr_head,
        patience=patience, eval_every=eval_every, seed=seed, workers=workers,
        config_overrides=parse_options(config or [])))
    for row in report["summary"]:
        typer.echo(f"{row['spc']} per class, {row['folds']} folds: test macro F1 "
                   f"{row['macro_f1_mean']:.3f} +- {row['macro_f1_std']:.3f}")
    typer.echo(f"results in {Path(output) / 'fewshot.json'}")
