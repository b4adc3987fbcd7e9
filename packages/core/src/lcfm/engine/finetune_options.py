"""Options of `lcfm finetune` (`FinetuneArgs`, one declaration each: `lcfm.options`; the
options it shares with pretrain come from `lcfm.engine.run_options`) and the recipe field
each one overrides (`RECIPE_OPTIONS`). Re-exported by `lcfm.engine.finetune`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lcfm.engine.run_options import RECIPE_DEFAULT, config_overrides_option, run_option
from lcfm.losses import LOSSES
from lcfm.options import option
from lcfm.recipes import SELECTIONS


@dataclass
class FinetuneArgs:
    data: Path = option(help="Dataset folder of labeled light curves (lcfm ingest).")
    model: str = option(help="Configuration name (see `lcfm models`) or a pretrained "
                             "checkpoint folder.")
    output: Path = option(help="Folder for the fine-tuned model and its reports.")
    recipe: str | None = run_option("recipe")
    lora: bool = option(False, "Train LoRA adapters (peft) and the head.")
    lora_rank: int = option(8, "Rank of the LoRA adapters.")
    merge_lora: bool = option(False, "Also save the merged LoRA model (merged/).")
    freeze_encoder: bool = option(False, "Train the head only (frozen encoder).")
    samples_per_class: int = option(0, "Few-shot: training objects per class (0: all).",
                                    flag="spc")
    folds: int = option(1, "Few-shot folds (mean and spread reported).")
    max_steps: int | None = run_option("max_steps")
    batch_size: int | None = run_option("batch_size")
    lr_encoder: float | None = option(None, "Encoder learning rate" + RECIPE_DEFAULT + ".")
    lr_head: float | None = option(None, "Head learning rate" + RECIPE_DEFAULT + ".")
    weight_decay: float | None = run_option("weight_decay")
    optimizer: str | None = run_option("optimizer")
    schedule: str | None = run_option("schedule")
    warmup_steps: int | None = run_option("warmup_steps")
    max_grad_norm: float | None = run_option("max_grad_norm")
    loss: list[str] | None = option(None, "Loss terms, summed with equal weights when "
                                          "several (--loss ce --loss soft_f1): weighted_ce "
                                          "(w_c = N/N_c), ce, soft_f1, focal, or model (the "
                                          "model's own objective); weighted sums in a --config "
                                          "file as 'ce:1,soft_f1:0.5'" + RECIPE_DEFAULT + ".",
                                    choices=(*LOSSES, "model"))
    label_smoothing: float | None = option(None, "Label smoothing of the cross-entropies"
                                           + RECIPE_DEFAULT + ".")
    selection: str | None = option(None, "Validation metric that selects the kept model"
                                   + RECIPE_DEFAULT + ".", choices=SELECTIONS)
    balanced: bool | None = option(None, "Class-balanced batches (default: the recipe's; "
                                         "lcfm-default balances imbalanced classes).")
    augment: list[str] | None = option(None, "Augmentations: subsample, scale, shift, "
                                             "redshift, noise (repeatable)" + RECIPE_DEFAULT + ".")
    test_fraction: float = option(0.2, "Fraction of objects held out for testing.")
    validation_fraction: float = option(0.1, "Fraction of the rest used for validation.")
    splits: Path | None = option(None, "Split file (Parquet or CSV: object_id, split, "
                                       "optional fold) instead of random splits.")
    fold: int | None = option(None, "Fold of a split file with folds.")
    eval_every: int | None = option(None, "Evaluate every N steps (default: the recipe's, "
                                          "else ten evaluations a run).")
    checkpoint_every: int = run_option("checkpoint_every")
    patience: int | None = option(None, "Early stopping: steps without a better validation "
                                        "metric" + RECIPE_DEFAULT + ".")
    min_steps: int | None = run_option("min_steps")
    seed: int = option(0, "Random seed (splits, batches, initialisation).")
    resume: bool = run_option("resume")
    metadata: bool = run_option("metadata")
    workers: int | None = run_option("workers")
    length_buckets: bool = run_option("length_buckets")
    grad_accum: int = run_option("grad_accum")
    mixed_precision: str | None = run_option("mixed_precision")
    report_to: str = run_option("report_to")
    features: bool = option(False, "Feed each object's classical features (lcfm features: "
                                   "periods, amplitudes, moments, colours per band) to the "
                                   "model: into the classification head of Astromer, AstroCo "
                                   "and ASTRAFier, through ATCAT's metadata token.")
    features_file: Path | None = option(None, "Features file of `lcfm features` for "
                                              "--features (default: computed into "
                                              "OUTPUT/features.parquet).")
    baseline: bool = option(True, "Also score the classical baseline (features + random "
                                  "forest) on the same objects (baseline_macro_f1).")
    config_overrides: dict = config_overrides_option()
    stop_after: int = run_option("stop_after")
    progress: bool = run_option("progress")


#: FinetuneArgs field -> recipe field it overrides
RECIPE_OPTIONS = {
    "max_steps": "max_steps", "batch_size": "batch_size", "lr_encoder": "lr_encoder",
    "lr_head": "lr_head", "weight_decay": "weight_decay", "optimizer": "optimizer",
    "schedule": "schedule", "warmup_steps": "warmup_steps", "max_grad_norm": "max_grad_norm",
    "loss": "loss", "label_smoothing": "label_smoothing", "selection": "selection",
    "balanced": "balanced_batches", "augment": "augmentations", "eval_every": "eval_every",
    "patience": "patience_steps", "min_steps": "min_steps",
}


__all__ = ["RECIPE_OPTIONS", "FinetuneArgs"]
