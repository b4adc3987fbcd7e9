"""Training recipes as data (issue 11, "Named recipes"; issue 12, "Defaults that work on a
few hundred labels").

A `Recipe` holds everything a paper says about how it trained: optimiser and its betas/eps,
learning rates (one for pretraining; encoder and head for fine-tuning), schedule, warm-up,
decay, clipping, batch size, steps or epochs, loss (a name of `lcfm.losses`, a weighted
combination, or "model": the plugin's own objective), label smoothing, the validation metric
that selects the kept model, early stopping, augmentations, dropout, mixed precision and the
classifier mode of the paper's protocol. `sources` maps each of these fields to the paper
section it comes from, or to "paper silent: chose X because ...".

Each model plugin ships its papers' recipes (`ModelPlugin.recipes`, from
`lcfm_models/<model>/recipes_<model>.py`) and says which recipe each of its configurations
uses by default (`ModelPlugin.default_recipe`: (configuration, stage) -> recipe name). Core
adds "lcfm-default" (fine-tuning) and "lcfm-default-pretrain". `pretrain` and `finetune`
resolve a recipe (`--recipe`, or the configuration's default), let any explicitly given
option override one field (`apply_overrides`), and record the result in metrics.json.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lcfm.exceptions import ConfigError

STAGES = ("pretrain", "finetune")
OPTIMIZERS = ("adamw", "adam", "nadam")
SCHEDULES = ("cosine", "linear", "constant", "constant_then_exponential")
SELECTIONS = ("macro_f1", "accuracy", "class_balanced_f1", "loss")
CLASSIFIERS = ("full", "frozen", "lora")
PRECISIONS = ("bf16", "fp16", "no")
#: warm-up never shorter than this many steps (issue 12: int(0.05 x steps) gave a 30-step
#: run one warm-up step at lr 1e-3, and losses jumped from ~3 to ~44) ...
MIN_WARMUP_STEPS = 50
#: ... nor longer than this fraction of the run (a paper's 1000-step warm-up in a 40-step run
#: would never reach the learning rate)
MAX_WARMUP_FRACTION = 0.5
#: fields every recipe of a stage must cite (a None value is cited too: "no clipping" is a
#: choice); `OPTIONAL` fields need a source only when set
COMMON_FIELDS = ("optimizer", "betas", "eps", "weight_decay", "schedule", "warmup_steps",
                 "max_grad_norm", "batch_size", "loss", "min_steps", "dropout",
                 "mixed_precision")
STAGE_FIELDS = {
    "pretrain": COMMON_FIELDS + ("learning_rate",),
    "finetune": COMMON_FIELDS + ("lr_encoder", "lr_head", "label_smoothing", "selection",
                                 "balanced_batches", "augmentations", "classifier"),
}
OPTIONAL = ("decay_start", "half_life", "max_steps", "max_epochs", "patience_steps",
            "patience_epochs", "eval_every", "fallback_loss", "survey_options")


@dataclass(frozen=True)
class Recipe:
    """One paper's training recipe for one stage; see the module docstring."""

    name: str
    stage: str
    paper: str
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    learning_rate: float | None = None
    lr_encoder: float | None = None
    lr_head: float | None = None
    schedule: str = "cosine"
    warmup_steps: int = MIN_WARMUP_STEPS
    #: constant_then_exponential: the step where decay starts and its half-life in steps
    decay_start: int | None = None
    half_life: int | None = None
    #: None: no clipping
    max_grad_norm: float | None = None
    batch_size: int = 32
    #: one of max_steps / max_epochs (epochs become steps once the training set is known)
    max_steps: int | None = None
    max_epochs: float | None = None
    #: a name of lcfm.losses.LOSSES, {name: weight, ...}, or "model" (pretraining: the
    #: model's own loss; fine-tuning: ModelPlugin.finetune_loss, else `fallback_loss`)
    loss: str | Mapping[str, float] = "weighted_ce"
    fallback_loss: str | Mapping[str, float] | None = None
    label_smoothing: float = 0.0
    selection: str = "macro_f1"
    #: early stopping: evaluations without a better selection metric for this many steps
    #: (or epochs) stop the run, never before `min_steps`; None: no early stopping
    patience_steps: int | None = None
    patience_epochs: float | None = None
    #: no model is kept, and no run stopped early, before this step
    min_steps: int = 0
    #: evaluate every N steps (None or 0: the engine's cadence, 5-10 evaluations a run)
    eval_every: int | None = None
    #: batches balanced among classes (ATCAT sect. 2.4): True, False, or "auto" (on when
    #: the training classes are imbalanced, issue 12)
    balanced_batches: bool | str = "auto"
    augmentations: tuple[str, ...] = ()
    #: model configuration values set for a model built from scratch (dropout rates)
    dropout: Mapping[str, float] = field(default_factory=dict)
    #: bf16 | fp16 | no; None: bf16 on a CUDA GPU that supports it, else no
    mixed_precision: str | None = None
    #: the paper's classifier protocol (full fine-tuning, frozen encoder + head, LoRA);
    #: `lcfm fewshot` and other protocols read it, `finetune` follows its own flags
    classifier: str = "full"
    #: survey -> ingest options the paper's corpus needs (MACHO R band only, Astromer 2's
    #: moment filter); applied where lcfm builds the corpus itself (pretraining on a
    #: survey's bundled sample or simulator, `lcfm reproduce`) and recorded in metrics.json;
    #: data ingested beforehand keeps the options it was ingested with
    survey_options: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self):
        where = f"recipe {self.name!r}"
        checks = (("stage", self.stage, STAGES), ("optimizer", self.optimizer, OPTIMIZERS),
                  ("schedule", self.schedule, SCHEDULES),
                  ("selection", self.selection, SELECTIONS),
                  ("classifier", self.classifier, CLASSIFIERS))
        for name, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{where}: {name} {value!r}; expected one of "
                                  f"{', '.join(allowed)}")
        if self.mixed_precision not in (None, *PRECISIONS):
            raise ConfigError(f"{where}: mixed_precision {self.mixed_precision!r}; expected "
                              f"one of {', '.join(PRECISIONS)}")
        if self.schedule == "constant_then_exponential" and (
                not self.decay_start or not self.half_life):
            raise ConfigError(f"{where}: schedule constant_then_exponential needs "
                              "decay_start and half_life")
        from lcfm.losses import check_loss

        check_loss(self.loss, where=f"{where}: loss", allow_model=True)
        if self.fallback_loss is not None:
            check_loss(self.fallback_loss, where=f"{where}: fallback_loss")
        required = set(STAGE_FIELDS[self.stage])
        required |= {f for f in OPTIONAL if getattr(self, f) is not None}
        missing = sorted(required - set(self.sources))
        if missing:
            raise ConfigError(f"{where}: no source for {', '.join(missing)} (cite the "
                              "paper section, or say 'paper silent: chose ... because ...')")

    def values(self) -> dict[str, Any]:
        """The recipe's training values (JSON-ready), without name, paper and sources."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name in ("name", "stage", "paper", "sources"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def record(self, overrides: Mapping[str, Any] | None = None) -> dict:
        """What metrics.json stores under "recipe"."""
        return {"name": self.name, "stage": self.stage, "paper": self.paper,
                "values": self.values(), "sources": dict(self.sources),
                "overrides": dict(overrides or {})}

    def survey_plugin(self, survey):
        """`survey` with the ingest options this recipe asks for it (or as it is)."""
        options = dict((self.survey_options or {}).get(survey.name, {}))
        return survey.with_options(**options) if options else survey

    def loss_terms(self, use_fallback: bool = False) -> dict[str, float]:
        """The loss as {name: weight}; "model" is {"model": 1.0}."""
        loss = self.fallback_loss if use_fallback and self.fallback_loss else self.loss
        if use_fallback and loss == "model":
            loss = "weighted_ce"
        return dict(loss) if isinstance(loss, Mapping) else {str(loss): 1.0}

    def warmup(self, max_steps: int) -> int:
        """Warm-up steps of a run of `max_steps`: at least MIN_WARMUP_STEPS (or the
        recipe's, if longer), at most MAX_WARMUP_FRACTION of the run."""
        cap = max(1, int(MAX_WARMUP_FRACTION * max_steps))
        return min(max(int(self.warmup_steps), MIN_WARMUP_STEPS), cap)

    def steps(self, steps_per_epoch: int) -> tuple[int, int | None]:
        """(max_steps, patience in steps) once an epoch's length in steps is known."""
        per_epoch = max(1, int(steps_per_epoch))
        if self.max_steps is not None:
            max_steps = int(self.max_steps)
        elif self.max_epochs is not None:
            max_steps = max(1, math.ceil(self.max_epochs * per_epoch))
        else:
            raise ConfigError(f"recipe {self.name!r}: neither max_steps nor max_epochs")
        patience = self.patience_steps
        if patience is None and self.patience_epochs is not None:
            patience = max(1, math.ceil(self.patience_epochs * per_epoch))
        return max_steps, patience


_LCFM = "lcfm defaults (issue 12: training that works on a few hundred labels)"
_SHARED = {
    "optimizer": "lcfm choice: AdamW, the optimiser of most of the papers (ASTRAFier sect. 5, "
                 "AstroCo appendix A)",
    "betas": "ASTRAFier sect. 5 (0.9, 0.95)", "eps": "ASTRAFier sect. 5 (1e-8)",
    "schedule": "lcfm choice: cosine decay after the warm-up, so the last steps refine "
                "rather than move",
    "warmup_steps": f"lcfm choice: at least {MIN_WARMUP_STEPS} steps (issue 12: a one-step "
                    "warm-up made losses jump from ~3 to ~44)",
    "max_grad_norm": "lcfm choice: clip at 1.0, a guard against the early loss spikes of "
                     "issue 12",
    "dropout": "lcfm choice: the configuration's own rates (each paper's)",
    "mixed_precision": "lcfm choice: bf16 on a CUDA GPU that supports it, fp32 elsewhere "
                       "(bf16 measured 6-8x slower on CPU, issue 13)",
}
#: lcfm's own recipes: what a run uses when its configuration names none
CORE_RECIPES = (
    Recipe(
        name="lcfm-default", stage="finetune", paper=_LCFM, betas=(0.9, 0.95),
        weight_decay=1e-5, lr_encoder=1e-4, lr_head=1e-3, schedule="cosine",
        warmup_steps=MIN_WARMUP_STEPS, max_grad_norm=1.0, batch_size=32, max_steps=500,
        loss="weighted_ce", selection="macro_f1", patience_steps=200, min_steps=200,
        balanced_batches="auto",
        sources={**_SHARED,
                 "weight_decay": "ASTRAFier sect. 5 (1e-5)",
                 "lr_encoder": "ASTRAFier sect. 5 (1e-4 for the encoder blocks)",
                 "lr_head": "ASTRAFier sect. 5 (1e-3 for the classification head)",
                 "batch_size": "lcfm choice: 32, several batches per epoch on a few hundred "
                               "labels",
                 "max_steps": "lcfm choice: 500 steps, tens of epochs of a few hundred labels",
                 "loss": "ASTRAFier sect. 5: class-weighted cross-entropy, w_c = N/N_c",
                 "label_smoothing": "lcfm choice: none (ATCAT sect. 2.7 found it shifts "
                                    "scores without separating them)",
                 "selection": "lcfm choice: validation macro F1, the metric every paper "
                              "reports",
                 "patience_steps": "lcfm choice: 200 steps without a better validation "
                                   "metric (counted in steps, issue 12)",
                 "min_steps": "lcfm choice: no stop and no kept model before step 200 (issue "
                              "12: a model from step 3-4 was kept)",
                 "balanced_batches": "lcfm choice: balanced batches when classes are "
                                     "imbalanced (issue 12; ATCAT sect. 2.4 samples so)",
                 "augmentations": "lcfm choice: none unless asked (--augment)",
                 "classifier": "lcfm choice: full fine-tuning"}),
    Recipe(
        name="lcfm-default-pretrain", stage="pretrain", paper=_LCFM, betas=(0.9, 0.999),
        weight_decay=0.01, learning_rate=1e-3, schedule="cosine",
        warmup_steps=MIN_WARMUP_STEPS, max_grad_norm=1.0, batch_size=32, max_steps=1000,
        loss="model", min_steps=0,
        sources={**_SHARED,
                 "betas": "lcfm choice: Adam's defaults (0.9, 0.999)",
                 "weight_decay": "lcfm choice: AdamW's usual 0.01",
                 "learning_rate": "lcfm choice: 1e-3 for models of a few million parameters",
                 "batch_size": "lcfm choice: 32 light curves, fits a CPU",
                 "max_steps": "lcfm choice: 1000 steps, a short run on the bundled samples",
                 "loss": "the model's own self-supervised loss",
                 "min_steps": "lcfm choice: no early stopping without a patience"}),
)


def _core_recipes() -> list[Recipe]:
    return list(CORE_RECIPES)


def _all() -> dict[str, Recipe]:
    from lcfm.registry import get_model, model_names

    recipes = {r.name: r for r in _core_recipes()}
    for name in model_names():
        for recipe in getattr(get_model(name), "recipes", ()) or ():
            if recipe.name in recipes and recipes[recipe.name] != recipe:
                raise ConfigError(f"recipe {recipe.name!r} is defined twice (model {name})")
            recipes[recipe.name] = recipe
    return recipes


def recipe_names() -> list[str]:
    return sorted(_all())


def get_recipe(name: str) -> Recipe:
    recipes = _all()
    if name not in recipes:
        raise ConfigError(f"--recipe {name!r}: no such recipe; recipes: "
                          f"{', '.join(sorted(recipes))}")
    return recipes[name]


def describe_recipes() -> list[dict]:
    """Every recipe as a record (`lcfm recipes --json`)."""
    return [get_recipe(n).record() for n in recipe_names()]


def default_recipe(plugin, config_name: str | None, stage: str) -> Recipe:
    """The recipe a run uses without --recipe: the plugin's for this configuration and
    stage (`plugin.default_recipe[(config_name, stage)]`, then `[(None, stage)]`), else
    lcfm's default for the stage."""
    table = getattr(plugin, "default_recipe", None) or {}
    for key in ((config_name, stage), (None, stage)):
        if key in table:
            return get_recipe(table[key])
    return get_recipe("lcfm-default" if stage == "finetune" else "lcfm-default-pretrain")


def resolve_recipe(name: str | None, plugin, config_name: str | None, stage: str) -> Recipe:
    recipe = get_recipe(name) if name else default_recipe(plugin, config_name, stage)
    if recipe.stage != stage:
        raise ConfigError(f"--recipe {recipe.name!r} is a {recipe.stage} recipe; "
                          f"{stage} needs a {stage} recipe")
    return recipe


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any]) -> tuple[Recipe, dict]:
    """The recipe with each explicitly given (not None) value replacing its field, and
    the overrides that changed something (recorded in metrics.json)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in given:
        if not hasattr(recipe, key) or key in ("name", "stage", "paper", "sources"):
            raise ConfigError(f"recipe override {key!r}: not a recipe field")
    if "augmentations" in given:
        given["augmentations"] = tuple(given["augmentations"])
    if "betas" in given:
        given["betas"] = tuple(given["betas"])
    changed = {k: v for k, v in given.items() if getattr(recipe, k) != v}
    if not changed:
        return recipe, {}
    sources = dict(recipe.sources)
    sources.update({k: "given on the command line" for k in changed})
    if "max_steps" in changed:  # steps given: epochs no longer apply
        changed.setdefault("max_epochs", None)
    if "patience_steps" in changed:
        changed.setdefault("patience_epochs", None)
    updated = dataclasses.replace(recipe, sources=sources, **changed)
    return updated, {k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()
                     if k in given}


def build_optimizer(recipe: Recipe, groups, learning_rate: float | None = None):
    """The recipe's torch optimiser over parameter `groups` (dicts with params, lr,
    weight_decay) or plain parameters at `learning_rate`."""
    import torch

    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam,
           "nadam": torch.optim.NAdam}[recipe.optimizer]
    kwargs = {"betas": tuple(recipe.betas), "eps": recipe.eps,
              "weight_decay": recipe.weight_decay}
    if learning_rate is not None:
        kwargs["lr"] = learning_rate
    if recipe.optimizer == "nadam":  # decoupled decay, as AdamW (ATCAT sect. 2.4)
        kwargs["decoupled_weight_decay"] = True
    return cls(groups, **kwargs)


def lr_factor(recipe: Recipe, step: int, max_steps: int) -> float:
    """The multiplier of the base learning rate after `step` scheduler steps."""
    warmup = recipe.warmup(max_steps)
    if step < warmup:
        return step / max(1, warmup)
    if recipe.schedule == "constant":
        return 1.0
    if recipe.schedule == "constant_then_exponential":
        return 0.5 ** (max(0, step - recipe.decay_start) / recipe.half_life)
    progress = (step - warmup) / max(1, max_steps - warmup)
    if recipe.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def build_scheduler(recipe: Recipe, optimizer, max_steps: int):
    """A LambdaLR following `lr_factor` (linear warm-up, then the recipe's schedule)."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(recipe, step, max_steps))


__all__ = ["MIN_WARMUP_STEPS", "Recipe", "apply_overrides", "build_optimizer",
           "build_scheduler", "default_recipe", "describe_recipes", "get_recipe",
           "lr_factor", "recipe_names", "resolve_recipe"]
