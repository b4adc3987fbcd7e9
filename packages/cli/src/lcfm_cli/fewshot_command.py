"""`lcfm fewshot`: Astromer 2's few-shot classification protocol (paper sect. 5.1),
generated from `FewShotArgs`."""

from __future__ import annotations

from pathlib import Path

import typer

from lcfm_cli.generate import dataclass_command


def report_fewshot(report: dict, args) -> None:
    for row in report["summary"]:
        typer.echo(f"{row['spc']} per class, {row['folds']} folds: test macro F1 "
                   f"{row['macro_f1_mean']:.3f} +- {row['macro_f1_std']:.3f}")
    typer.echo(f"results in {Path(args.output) / 'fewshot.json'}")


def fewshot_command():
    from lcfm.engine.fewshot import FewShotArgs, fewshot

    return dataclass_command(
        FewShotArgs, fewshot, report_fewshot, name="fewshot",
        doc="""Few-shot classification (Astromer 2 sect. 5.1): per SPC and fold, a balanced
        test set disjoint from training, SPC training objects per class, a classifier
        trained on them; test macro F1 per scenario, mean and spread per SPC, in
        OUTPUT/fewshot.json.""")
