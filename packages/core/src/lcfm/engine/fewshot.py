"""Astromer 2's few-shot protocol (`lcfm fewshot`, issue 11 item 3; paper sect. 5.1).

"We construct three training scenarios with limited data by randomly sampling 20, 100,
and 500 SPC ... When the number of available labels is insufficient, sampling is
performed with replacement ... we evaluate all models on a shared three-fold test dataset
consisting of 1000 SPC per fold."

For every (samples per class, fold): the fold's balanced test objects and the training
objects come from `lcfm.splits.few_shot_split` (test objects depend on the fold only, so
every SPC of a fold is scored on the same objects, disjoint from its training objects);
then the paper's classifier is trained through the fine-tuning engine
(`finetune_parts`): by default a frozen encoder with the model's MLP head
(`freeze_encoder`), or `mode="full"` / `mode="lora"`. Results go to `fewshot.json` and a
plot of test macro F1 against SPC with its spread over folds (`fewshot.png`).

Differences from the paper, on purpose: a class never gives more than half of its objects
to the test set (the published code fails on a class with fewer than 1000 objects), and
without a validation fraction the best checkpoint is chosen on the training objects (the
paper reports no validation set for the few-shot classifiers).

Astromer 2's first downstream stage, "we fine-tune the pretrained model on the
reconstruction task using the labeled subset" (sect. 5.1), runs with `adapt_steps` > 0:
per scenario, the distinct training objects are written to `<run>/adapt-data/` and
`lcfm pretrain --init <model>` trains the masked-reconstruction objective on them for
`adapt_steps` steps into `<run>/adapted/`, from which the classifier is then trained. The
model must then be a pretrained checkpoint folder (a configuration name has no weights to
adapt).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.engine.evaluate import folder_output
from lcfm.engine.finetune import FinetuneArgs, finetune_parts
from lcfm.exceptions import ConfigError, DataError
from lcfm.options import option
from lcfm.shards import write_frame_atomic
from lcfm.splits import TEST_PER_CLASS, FewShotSplit, few_shot_split, take_objects
from lcfm.stream import ShardIndex, read_frame

MODES = ("frozen", "full", "lora")
#: Astromer 2 sect. 5.1 scenarios
PAPER_SPC = (20, 100, 500)
RESULTS_FILE, PLOT_FILE = "fewshot.json", "fewshot.png"


@dataclass
class FewShotArgs:
    data: Path = option(help="Folder of canonical shards with labeled light curves.")
    model: str = option(help="Pretrained checkpoint folder (or a configuration name: the "
                             "encoder then starts untrained).")
    output: Path = option(help="Folder for fewshot.json, fewshot.png and one model per "
                               "(spc, fold).")
    spc: list[int] = option(default_factory=lambda: list(PAPER_SPC),
                            help="Training samples per class, e.g. 20,100,500 (Astromer 2 "
                                 "sect. 5.1); drawn with replacement when a class is short.")
    folds: int = option(3, "Folds: each has its own balanced test set, disjoint from its "
                           "training objects.")
    test_per_class: int = option(TEST_PER_CLASS, "Test objects per class and fold (at most "
                                                 "half of a class).")
    mode: str = option("frozen", "Classifier: frozen encoder + MLP head (the paper's), full "
                                 "fine-tuning, or LoRA adapters.", choices=MODES)
    validation_fraction: float = option(0.0, "Validation objects per class as a fraction of "
                                             "spc (0: select on the training objects).")
    adapt_steps: int = option(0, "Reconstruction fine-tuning steps on each scenario's "
                                 "training objects before classification (Astromer 2 "
                                 "sect. 5.1; 0: skip).")
    recipe: str | None = option(None, "Fine-tuning recipe of the classifier (see `lcfm "
                                      "recipes`; default: the model's paper recipe).")
    max_steps: int | None = option(None, "Classifier optimiser steps per scenario (default: "
                                         "the recipe's).")
    batch_size: int | None = option(None, "Light curves per batch (default: the recipe's).")
    lr_encoder: float | None = option(None, "Encoder learning rate, full and LoRA modes "
                                            "(default: the recipe's).")
    lr_head: float | None = option(None, "Head learning rate (default: the recipe's).")
    patience: int | None = option(None, "Early-stopping patience in steps (default: the "
                                        "recipe's).")
    eval_every: int | None = option(None, "Evaluate every N steps (default: the recipe's or "
                                          "ten evaluations per run).")
    lora_rank: int = option(8, "LoRA rank (mode lora).")
    seed: int = option(0, "Seed of splits, sampling and training.")
    progress: bool = option(True, "Progress bars.", cli=False)
    workers: int | None = option(None, "DataLoader processes collating batches (default: "
                                       "none on 1-2 cores).")
    config_overrides: dict = option(default_factory=dict,
                                    help="Model config override key=value (repeatable).",
                                    flag="config")


def parse_spc(text: str) -> list[int]:
    """`--spc 20,100,500` -> [20, 100, 500]; ConfigError in one line otherwise."""
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigError(f"--spc {text!r}: expected positive samples per class separated "
                          "by commas, e.g. 20,100,500")
    return sorted(set(values))


def _check(args: FewShotArgs) -> None:
    if args.mode not in MODES:
        raise ConfigError(f"--mode {args.mode!r}: expected one of {', '.join(MODES)}")
    if int(args.folds) < 1:
        raise ConfigError(f"--folds {args.folds}: must be at least 1")
    if int(args.test_per_class) < 1:
        raise ConfigError(f"--test-per-class {args.test_per_class}: must be at least 1")
    if not args.spc or min(args.spc) < 1:
        raise ConfigError(f"--spc {args.spc}: expected positive samples per class")
    if int(args.adapt_steps) < 0:
        raise ConfigError(f"--adapt-steps {args.adapt_steps}: must be 0 or more")
    if args.adapt_steps and not (Path(args.model) / "config.json").is_file():
        raise ConfigError(f"--adapt-steps {args.adapt_steps} with --model {args.model}: "
                          "reconstruction adaptation needs a pretrained checkpoint folder")


def _finetune_args(args: FewShotArgs, output: Path, model: str | None = None
                   ) -> FinetuneArgs:
    return FinetuneArgs(
        data=Path(args.data), model=model or args.model, output=output,
        freeze_encoder=args.mode == "frozen", lora=args.mode == "lora",
        lora_rank=args.lora_rank, recipe=args.recipe, max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr_encoder=args.lr_encoder, lr_head=args.lr_head, patience=args.patience,
        eval_every=args.eval_every, seed=args.seed, progress=args.progress, workers=args.workers,
        config_overrides=dict(args.config_overrides))


def scenario_parts(summaries: pl.DataFrame, split: FewShotSplit) -> dict[str, pl.DataFrame]:
    """The summary rows of each part of a scenario. A training object drawn k times
    appears k times (the engine then trains on it k times per epoch). Without validation
    objects, the distinct training objects stand in for validation (best-step selection)."""
    parts = split.frames(summaries)
    if parts["validation"].height == 0:
        parts["validation"] = take_objects(summaries, sorted(set(split.train_ids)))
    return parts


def adapt(args: FewShotArgs, index: ShardIndex, summaries: pl.DataFrame,
          split: FewShotSplit, run_dir: Path) -> Path:
    """Astromer 2's reconstruction fine-tuning on one scenario's distinct training objects
    (sect. 5.1), starting from `args.model`; returns the adapted checkpoint folder."""
    from lcfm.engine.pretrain import PretrainArgs, pretrain

    adapted = run_dir / "adapted"
    if (adapted / "config.json").is_file() and (adapted / "metrics.json").is_file():
        return adapted  # a finished adaptation of an interrupted few-shot run
    rows = take_objects(summaries, sorted(set(split.train_ids)))["row"].to_numpy()
    frame = read_frame(index, rows)
    data_dir = run_dir / "adapt-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    write_frame_atomic(frame, data_dir / "part-00000.parquet")
    pretrain(PretrainArgs(survey=str(frame["survey"][0]), output=adapted, data=data_dir,
                          init=Path(args.model), max_steps=int(args.adapt_steps),
                          batch_size=args.batch_size, seed=args.seed,
                          progress=args.progress, workers=args.workers))
    return adapted


def fewshot(args: FewShotArgs) -> dict:
    """Run every (spc, fold) scenario; write and return the `fewshot.json` content."""
    _check(args)
    args = replace(args, spc=sorted({int(x) for x in args.spc}))  # `--spc 500,20,20`
    output = folder_output(Path(args.output))
    output.mkdir(parents=True, exist_ok=True)
    index = ShardIndex(args.data)
    summaries = index.summaries()
    if summaries["label"].drop_nulls().n_unique() < 2:
        raise DataError(f"{args.data}: few-shot classification needs labeled light curves "
                        "of at least two classes")
    unlabeled = int(summaries["label"].null_count())
    results = []
    for spc in args.spc:
        for fold in range(int(args.folds)):
            split = few_shot_split(summaries, spc, fold, test_per_class=args.test_per_class,
                                   validation_fraction=args.validation_fraction,
                                   seed=args.seed)
            run_dir = output / f"spc-{spc}" / f"fold-{fold}"
            model = (str(adapt(args, index, summaries, split, run_dir))
                     if args.adapt_steps else None)
            run = finetune_parts(_finetune_args(args, run_dir, model),
                                 scenario_parts(summaries, split), run_dir, index=index)
            test = run.get("test") or {}
            results.append({
                "spc": spc, "fold": fold,
                "macro_f1": test.get("macro_f1", float("nan")),
                "accuracy": test.get("accuracy", float("nan")),
                "class_balanced_f1": test.get("class_balanced_f1", float("nan")),
                "steps": run.get("steps"), "best_step": run.get("best_step"),
                "train_counts": split.train_counts,
                "train_unique_counts": split.train_unique_counts,
                "replaced": split.replaced,
                "validation_counts": split.validation_counts,
                "test_counts": split.test_counts,
                "train_ids": split.train_ids, "validation_ids": split.validation_ids,
                "test_ids": split.test_ids,
                "test_light_curves": run.get("test_light_curves"),
                "adapted_from": args.model if args.adapt_steps else None,
                "model_dir": str(run_dir)})
    report = {
        "protocol": "Astromer 2 sect. 5.1 few-shot classification",
        "model": args.model, "mode": args.mode, "spc": list(args.spc), "folds": args.folds,
        "adapt_steps": args.adapt_steps,
        "test_per_class": args.test_per_class, "seed": args.seed,
        # objects without a label take no part in any scenario
        "unlabeled_light_curves_unused": unlabeled,
        "summary": summarise(results), "results": results,
        "plot": PLOT_FILE,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
    }
    (output / RESULTS_FILE).write_text(json.dumps(report, indent=2, default=_json) + "\n")
    plot_fewshot(report["summary"], results, output / PLOT_FILE, title=f"{args.model} "
                 f"({args.mode})")
    return report


def _json(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def summarise(results: list[dict]) -> list[dict]:
    """Mean and standard deviation (over folds) of test macro F1 per SPC."""
    out = []
    for spc in sorted({r["spc"] for r in results}):
        f1 = np.array([r["macro_f1"] for r in results if r["spc"] == spc], float)
        out.append({"spc": spc, "folds": int(f1.size), "macro_f1_mean": float(np.nanmean(f1)),
                    "macro_f1_std": float(np.nanstd(f1)), "macro_f1": f1.tolist()})
    return out


def plot_fewshot(summary: list[dict], results: list[dict], path: Path, title: str = "") -> Path:
    """Test macro F1 against samples per class: mean over folds with a +-1 std band and
    each fold as a point."""
    from lcfm.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    spc = np.array([s["spc"] for s in summary], float)
    mean = np.array([s["macro_f1_mean"] for s in summary])
    std = np.array([s["macro_f1_std"] for s in summary])
    ax.fill_between(spc, mean - std, mean + std, alpha=0.25, label="+-1 std over folds")
    ax.plot(spc, mean, "o-", label="mean")
    ax.plot([r["spc"] for r in results], [r["macro_f1"] for r in results], "k.", ms=4,
            label="fold")
    if spc.size > 1 and spc.max() / spc.min() >= 10:  # the paper's 20..500 spans decades
        ax.set_xscale("log")
    ax.set_xticks(spc, [str(int(s)) for s in spc])
    ax.set_xlabel("samples per class")
    ax.set_ylabel("test macro F1")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


__all__ = ["FewShotArgs", "MODES", "PAPER_SPC", "adapt", "fewshot", "parse_spc", "plot_fewshot",
           "scenario_parts", "summarise"]
