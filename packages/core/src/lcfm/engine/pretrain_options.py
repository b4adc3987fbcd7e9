"""Options of `lcfm pretrain` (`PretrainArgs`, one declaration each: `lcfm.options`; the
options it shares with finetune come from `lcfm.engine.run_options`) and the recipe field
each one overrides (`RECIPE_OPTIONS`). Re-exported by `lcfm.engine.pretrain`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lcfm.engine.run_options import RECIPE_DEFAULT, config_overrides_option, run_option
from lcfm.options import option

#: the model pretrained when neither --model nor --init names one
DEFAULT_MODEL = "astromer-v2"

@dataclass
class PretrainArgs:
    survey: str = option(help="Survey of the data (its bands and sample; see `lcfm surveys`).")
    output: Path = option(help="Folder for the pretrained checkpoint.")
    data: Path | None = option(None, "Dataset folder (default: the survey's bundled sample).")
    model: str | None = option(None, f"Model configuration (default: {DEFAULT_MODEL}, or the "
                                     "model of --init).")
    recipe: str | None = run_option("recipe")
    max_steps: int | None = run_option("max_steps")
    batch_size: int | None = run_option("batch_size")
    learning_rate: float | None = option(None, "Learning rate" + RECIPE_DEFAULT + ".")
    weight_decay: float | None = run_option("weight_decay")
    optimizer: str | None = run_option("optimizer")
    schedule: str | None = run_option("schedule")
    warmup_steps: int | None = run_option("warmup_steps")
    max_grad_norm: float | None = run_option("max_grad_norm")
    patience: int | None = option(None, "Early stopping: steps without a lower validation "
                                        "loss" + RECIPE_DEFAULT + ".")
    min_steps: int | None = run_option("min_steps")
    seed: int = option(0, "Random seed.")
    validation_fraction: float = option(0.2, "Fraction of light curves held out for "
                                             "validation.")
    eval_every: int | None = option(None, "Evaluate every N steps (default: the recipe's, "
                                          "else five evaluations a run).")
    checkpoint_every: int = run_option("checkpoint_every")
    eval_light_curves: int | None = option(None, "Validation light curves per evaluation, the "
                                                 "same each time (default: a bound keeping "
                                                 "evaluation under 10% of training; 0: all).")
    resume: bool = run_option("resume")
    metadata: bool = run_option("metadata")
    workers: int | None = run_option("workers")
    length_buckets: bool = run_option("length_buckets")
    init: Path | None = option(None, "Start from this pretrained checkpoint's weights (new "
                                     "optimiser and schedule).")
    grad_accum: int = run_option("grad_accum")
    mixed_precision: str | None = run_option("mixed_precision")
    report_to: str = run_option("report_to")
    config_overrides: dict = config_overrides_option()
    stop_after: int = run_option("stop_after")
    progress: bool = run_option("progress")


#: PretrainArgs field -> recipe field it overrides
RECIPE_OPTIONS = {
    "max_steps": "max_steps", "batch_size": "batch_size", "learning_rate": "learning_rate",
    "weight_decay": "weight_decay", "optimizer": "optimizer", "schedule": "schedule",
    "warmup_steps": "warmup_steps", "max_grad_norm": "max_grad_norm",
    "eval_every": "eval_every", "patience": "patience_steps", "min_steps": "min_steps",
}


__all__ = ["DEFAULT_MODEL", "RECIPE_OPTIONS", "PretrainArgs"]
