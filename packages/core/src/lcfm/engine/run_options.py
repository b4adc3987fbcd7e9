"""The options `pretrain` and `finetune` share, declared once.

`run_option(name)` makes a fresh dataclass field (each dataclass needs its own) with the
default, help and choices below, so both commands, their `--config` files and their docs
say the same thing about the same option. Options whose meaning differs between the two
(validation fraction, patience, evaluation interval, learning rates) stay in their
dataclass."""

from __future__ import annotations

from typing import Any

from lcfm.engine.training import REPORT_TO
from lcfm.options import option
from lcfm.recipes import OPTIMIZERS, PRECISIONS, SCHEDULES

RECIPE_DEFAULT = " (default: the recipe's)"

#: name -> (default, help, extra option() keywords)
RUN_OPTIONS: dict[str, tuple[Any, str, dict]] = {
    "recipe": (None, "Training recipe (see `lcfm recipes`); default: the model "
                     "configuration's own paper recipe.", {}),
    "max_steps": (None, "Optimiser steps" + RECIPE_DEFAULT + ".", {}),
    "batch_size": (None, "Light curves per micro-batch" + RECIPE_DEFAULT + ".", {}),
    "weight_decay": (None, "Weight decay" + RECIPE_DEFAULT + ".", {}),
    "optimizer": (None, "Optimiser" + RECIPE_DEFAULT + ".", {"choices": OPTIMIZERS}),
    "schedule": (None, "Learning-rate schedule after the warm-up" + RECIPE_DEFAULT + ".",
                 {"choices": SCHEDULES}),
    "warmup_steps": (None, "Linear warm-up steps (at least 50, at most half the run)"
                     + RECIPE_DEFAULT + ".", {}),
    "max_grad_norm": (None, "Gradient clipping norm, 0 for none" + RECIPE_DEFAULT + ".", {}),
    "min_steps": (None, "No early stop and no kept model before this step" + RECIPE_DEFAULT + ".",
                  {}),
    "checkpoint_every": (0, "Checkpoint every N steps (0: at every evaluation); Ctrl-C or "
                            "SIGTERM checkpoints before stopping.", {}),
    "resume": (False, "Continue from OUTPUT/checkpoint.", {}),
    "metadata": (False, "Give each object's encoded metadata to models with a metadata "
                        "token (ATCAT).", {}),
    "workers": (None, "DataLoader processes that read and collate batches (default: none "
                      "on 1-2 cores, else min(4, cores-1)).", {}),
    "length_buckets": (True, "Length-aware batching (less padding).", {}),
    "grad_accum": (1, "Micro-batches per optimiser step (gradient accumulation).", {}),
    "mixed_precision": (None, "bf16, fp16 or no (default: bf16 on a CUDA GPU that supports "
                              "it, else no).", {"choices": PRECISIONS}),
    "report_to": ("none", "Experiment tracker.", {"choices": REPORT_TO}),
    # stop (with a checkpoint) after this global step, keeping the schedule of max_steps:
    # trains a long run in chunks, and is how tests interrupt a run
    "stop_after": (0, "Stop with a checkpoint after this step (tests).", {"cli": False}),
    "progress": (True, "Show a progress bar.", {"cli": False}),
}


def run_option(name: str) -> Any:
    """A new dataclass field for the shared option `name`."""
    default, help_text, extra = RUN_OPTIONS[name]
    return option(default, help_text, **extra)


def config_overrides_option() -> Any:
    return option(default_factory=dict, help="Model configuration values to change "
                                             "(key=value).")


__all__ = ["RECIPE_DEFAULT", "RUN_OPTIONS", "config_overrides_option", "run_option"]
