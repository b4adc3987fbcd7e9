"""What the pretraining and fine-tuning loops share: the resolved recipe (`lcfm.recipes`),
the Accelerator (mixed precision, gradient accumulation, experiment trackers), and model
selection with early stopping (issue 12, "Defaults that work on a few hundred labels";
issue 13, "Training observability").

Early stopping is counted in steps: after an evaluation at step s the run stops when the
selection metric last improved at step k and s - k >= patience; no run stops
and no model is kept before `min_steps` (or the middle of a shorter run), so a model
from the first few steps is never the one saved. The run's summary says when and why it
stopped and which step was kept (`Selection.stopped`).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcfm.exceptions import ConfigError
from lcfm.losses import combined_loss
from lcfm.recipes import PRECISIONS, Recipe, apply_overrides, resolve_recipe

REPORT_TO = ("none", "tensorboard", "wandb")
#: largest / smallest class count above which "auto" balances the batches
IMBALANCE_RATIO = 1.5


def run_recipe(stage: str, name: str | None, plugin, config_name: str | None,
               overrides: Mapping[str, Any]) -> tuple[Recipe, dict]:
    """The recipe of a run (`name`, or the configuration's default) with the explicitly
    given values of `overrides` (recipe field -> value, None: not given) applied."""
    recipe = resolve_recipe(name, plugin, config_name, stage)
    return apply_overrides(recipe, overrides)


def resolve_precision(requested: str | None, recipe: Recipe) -> tuple[str, str]:
    """(mixed precision, why): an explicit `requested` value wins; otherwise the recipe's
    (or bf16 when it names none) on a CUDA GPU that supports it, and fp32 ("no") elsewhere:
    bf16 measured 6-8x slower than fp32 on CPU (issue 13)."""
    if requested is not None:
        if requested not in PRECISIONS:
            raise ConfigError(f"--mixed-precision {requested!r}: expected one of "
                              f"{', '.join(PRECISIONS)}")
        return requested, "given"
    import torch

    wanted = recipe.mixed_precision or "bf16"
    if wanted == "no":
        return "no", f"recipe {recipe.name}"
    if not torch.cuda.is_available():
        asked = f" (recipe {recipe.name} asks for {wanted})" if recipe.mixed_precision else ""
        return "no", "no CUDA GPU" + asked
    if wanted == "bf16" and not torch.cuda.is_bf16_supported():
        return "fp16", "the GPU has no bf16"
    return wanted, f"recipe {recipe.name}" if recipe.mixed_precision else "CUDA GPU"


def check_report_to(report_to: str) -> None:
    if report_to not in REPORT_TO:
        raise ConfigError(f"--report-to {report_to!r}: expected one of {', '.join(REPORT_TO)}")
    needs = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}
    if report_to in needs and not any(importlib.util.find_spec(m) for m in needs[report_to]):
        raise ConfigError(f"--report-to {report_to} needs the {needs[report_to][0]} package "
                          f"(pip install {needs[report_to][0]})")


def make_accelerator(output: Path, *, mixed_precision: str, grad_accum: int,
                     report_to: str):
    """An Accelerator with the run's precision, gradient accumulation and trackers. The
    schedule is stepped by the loop once per optimiser step (not once per process)."""
    from accelerate import Accelerator

    check_report_to(report_to)
    if int(grad_accum) < 1:
        raise ConfigError(f"--grad-accum {grad_accum}: must be at least 1")
    return Accelerator(mixed_precision=mixed_precision,
                       gradient_accumulation_steps=int(grad_accum),
                       log_with=None if report_to == "none" else report_to,
                       project_dir=str(output), step_scheduler_with_optimizer=False)


def start_tracking(accelerator, report_to: str, project: str, values: Mapping) -> None:
    """Open the run's trackers with its flat scalar settings (TensorBoard hparams)."""
    if report_to == "none":
        return
    config = {k: v for k, v in values.items()
              if isinstance(v, (int, float, str, bool)) and v is not None}
    accelerator.init_trackers(project, config=config)


def stop_tracking(accelerator) -> None:
    """Close the trackers (not `Accelerator.end_training`, which also ends the process
    group that the rest of the run still synchronises on)."""
    if accelerator.is_main_process:
        for tracker in accelerator.trackers:
            tracker.finish()


def balanced_batches(setting: bool | str, counts) -> bool:
    """Whether to balance the batches: the recipe's True/False, or ("auto") whether the
    training classes are imbalanced (largest / smallest > IMBALANCE_RATIO)."""
    if setting != "auto":
        return bool(setting)
    counts = np.asarray(counts)
    counts = counts[counts > 0]
    return bool(counts.size and counts.max() > IMBALANCE_RATIO * counts.min())


def evaluation_interval(recipe: Recipe, max_steps: int, given: bool) -> int:
    """Steps between evaluations: the recipe's (ATCAT: every 4000 steps), unless a run
    shortened by --max-steps would then evaluate only at its end (0: the engine's
    cadence); a value given on the command line is kept as it is."""
    every = int(recipe.eval_every or 0)
    return every if given or every <= max_steps // 2 else 0


def steps_per_epoch(train_rows: int, batch_size: int, grad_accum: int = 1) -> int:
    return max(1, math.ceil(int(train_rows) / (int(batch_size) * int(grad_accum))))


def recipe_loss(plugin, model, outputs, labels, batch, recipe, weights, n_classes):
    """The recipe's loss: the model's own objective when the recipe says "model" and the
    plugin has one (`ModelPlugin.finetune_loss`), else the generic (weighted) losses."""
    if recipe.loss == "model" or "model" in recipe.loss_terms():
        own = plugin.finetune_loss(model, outputs, labels, batch, recipe=recipe,
                                   class_weights=weights)
        if own is not None:
            return own
    return combined_loss(recipe.loss_terms(use_fallback=True), outputs.logits[:, :n_classes],
                         labels, weights, label_smoothing=recipe.label_smoothing)


def first_eligible_step(min_steps: int, max_steps: int) -> int:
    """The first step whose model may be kept: min_steps, but never past the middle of the
    run (a 200-step run with min_steps 200 would otherwise keep its last model, whatever
    the validation said)."""
    return min(int(min_steps), int(max_steps) // 2)


@dataclass
class Selection:
    """The kept model and early stopping; its state lives in the training state dict
    (best_value, best_step: the kept evaluation; improved_step: the last strict
    improvement, from which patience counts), so a resumed run continues it."""

    metric: str
    patience: int | None
    min_steps: int
    max_steps: int

    @property
    def lower_is_better(self) -> bool:
        return self.metric == "loss"

    @property
    def first_eligible(self) -> int:
        return first_eligible_step(self.min_steps, self.max_steps)

    def update(self, state: dict, step: int, value: float) -> bool:
        """Record an evaluation; True when it becomes the kept model (at or after
        min_steps; a tie keeps the later model but does not reset the patience)."""
        if step < self.first_eligible or not np.isfinite(value):
            return False
        best = state.get("best_value")
        sign = -1.0 if self.lower_is_better else 1.0
        if best is not None and sign * (value - best) < 0:
            return False
        if best is None or sign * (value - best) > 0:
            state["improved_step"] = int(step)
        state.update(best_value=float(value), best_step=int(step))
        return True

    def should_stop(self, state: dict, step: int) -> bool:
        improved = state.get("improved_step")
        if self.patience is None or step < self.first_eligible or not improved:
            return False
        return step - improved >= self.patience

    def stopped(self, state: dict, step: int, early: bool, kept: int | None = None) -> dict:
        """metrics.json["stopped"]: the step, why, and which step's model was kept (the
        best evaluation's, or `kept`)."""
        kept = kept or state.get("best_step") or step
        if early:
            best = state.get("improved_step") or kept
            reason = (f"early stopping: validation {self.metric} did not improve for "
                      f"{step - best} steps (patience {self.patience}) after step {best}")
        else:
            reason = f"reached max_steps ({self.max_steps})"
        value = state.get("best_value") if kept == state.get("best_step") else None
        message = (f"stopped at step {step} of {self.max_steps}: {reason}; kept the model "
                   f"of step {kept}" + (f" (validation {self.metric} {value:.4f})"
                                         if value is not None else ""))
        return {"step": int(step), "reason": "early_stopping" if early else "max_steps",
                "detail": reason, "kept_step": int(kept), "message": message}


def schedule_record(recipe: Recipe, max_steps: int, patience: int | None,
                    steps_per_epoch: int, grad_accum: int, precision: tuple[str, str]
                    ) -> dict:
    """The values the loop actually used, derived from the recipe for this run."""
    return {"max_steps": int(max_steps), "warmup_steps": recipe.warmup(max_steps),
            "patience_steps": patience,
            "min_steps": first_eligible_step(recipe.min_steps, max_steps),
            "steps_per_epoch": int(steps_per_epoch), "grad_accum": int(grad_accum),
            "effective_batch_size": int(recipe.batch_size) * int(grad_accum),
            "mixed_precision": precision[0], "mixed_precision_reason": precision[1]}
