"""`lcfm pretrain` and `lcfm finetune`, generated from `PretrainArgs` and `FinetuneArgs`
(every option is a field of the dataclass; see `lcfm_cli.generate`)."""

from __future__ import annotations

import typer

from lcfm_cli.generate import dataclass_command


def stopped_line(summary: dict) -> str:
    """`stopped at step S: REASON; kept step K` when the run says why it stopped."""
    stopped = summary.get("stopped")
    if not isinstance(stopped, dict) or stopped.get("reason") is None:
        return ""
    kept = stopped.get("kept_step")
    return (f"stopped at step {stopped.get('step')}: {stopped['reason']}"
            + (f"; kept step {kept}" if kept is not None else ""))


def report_pretrain(metrics: dict, args) -> None:
    val = metrics["validation"][-1]["loss"] if metrics.get("validation") else None
    typer.echo(f"{metrics['steps']} steps: loss {metrics['first_loss']:.4f} -> "
               f"{metrics['final_loss']:.4f}" + (f", validation {val:.4f}" if val else "")
               + f"; checkpoint in {args.output}")
    if line := stopped_line(metrics):
        typer.echo(line)


#: a model this far below the classical baseline gets a hint (macro F1)
HINT_GAP = 0.2


def report_finetune(summary: dict, args) -> None:
    if "test_macro_f1_mean" in summary:
        model, baseline = summary["test_macro_f1_mean"], summary.get("baseline_macro_f1_mean")
        typer.echo(f"{args.folds} folds, {args.samples_per_class} per class: test macro F1 "
                   f"{model:.3f} +- {summary['test_macro_f1_std']:.3f}{_beside(baseline)}")
    elif summary.get("test"):
        t = summary["test"]
        model, baseline = t["macro_f1"], summary.get("baseline_macro_f1")
        typer.echo(f"{summary['steps']} steps; test accuracy {t['accuracy']:.3f}, macro F1 "
                   f"{model:.3f}{_beside(baseline)}, ECE {t['ece']:.3f}; model in "
                   f"{args.output}")
    else:
        model = baseline = None
        typer.echo(f"{summary['steps']} steps; model in {args.output}")
    if line := stopped_line(summary):
        typer.echo(line)
    if model is not None and baseline is not None and baseline - model > HINT_GAP \
            and not (args.features or args.features_file):
        typer.echo(f"hint: the classical baseline beats the model by {baseline - model:.2f} "
                   "on the same objects. In sparse data the models cannot see periods "
                   "shorter than the gaps between nights: fold the light curves (lcfm fold) "
                   "or add --features (docs/multiband.md)")


def _beside(baseline: float | None) -> str:
    return "" if baseline is None else f" (classical baseline {baseline:.3f})"


def pretrain_command():
    from lcfm.engine.pretrain import PretrainArgs, pretrain

    return dataclass_command(
        PretrainArgs, pretrain, report_pretrain, name="pretrain",
        doc="""Self-supervised pretraining; writes a Hugging Face checkpoint to OUTPUT.

        The data must be of --survey (the checkpoint is stamped with its name and bands).
        Options may come from a --config FILE.yaml|json; metrics.json records the resolved
        values.""")


def finetune_command():
    from lcfm.engine.finetune import FinetuneArgs, finetune

    return dataclass_command(
        FinetuneArgs, finetune, report_finetune, name="finetune",
        doc="""Fine-tune a classifier: full, frozen encoder, or LoRA; few-shot with
        --spc/--folds.

        Options may come from a --config FILE.yaml|json; metrics.json records the resolved
        values.""")


__all__ = ["finetune_command", "pretrain_command", "report_finetune",
           "report_pretrain", "stopped_line"]
