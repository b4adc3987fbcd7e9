"""What `lcfm finetune` measures and writes besides training: validation scores for model
selection (macro F1, accuracy, class-balanced F1 as ATCAT sect. 2.3.1 defines it, and the
validation log-loss), the held-out test report, the classical baseline's macro F1 on the same
objects (issue 12, "Every finetune report shows the baseline's held-out macro F1"), the
loss and validation-metric plots (issue 13, "Training observability"), and metrics.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.engine.checkpoint import save_checkpoint
from lcfm.engine.inference import SPLITS_FILE, write_splits
from lcfm.engine.predict import predict_frame
from lcfm.exceptions import LcfmError
from lcfm.metrics import classification_report

#: trees of the baseline reported beside each fine-tuning run (kept cheap)
BASELINE_TREES = 100


def _ids(frame: pl.DataFrame, label2id: dict) -> np.ndarray:
    return np.array([label2id.get(x, -1) for x in frame["label"]])


def scores(y: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """The selection metrics of one evaluation; "loss" is the mean negative log
    probability of the true class."""
    report = classification_report(y, probs, class_names)
    known = y >= 0
    true = probs[np.flatnonzero(known), y[known]] if known.any() else np.ones(1)
    return {"macro_f1": report["macro_f1"], "accuracy": report["accuracy"],
            "class_balanced_f1": report["class_balanced_f1"],
            "loss": float(-np.log(np.clip(true, 1e-12, 1.0)).mean())}


def validation_scores(accelerator, model, plugin, frame: pl.DataFrame, collate,
                      class_names: list[str], label2id: dict, batch_size: int
                      ) -> tuple[dict, list[int]]:
    """Validation scores and the number of rows each rank scored. Rank r scores rows
    r, r + n, ... of the validation frame and the pieces are gathered to every rank, so
    each rank does 1/n of the work and all ranks take the same early-stopping decision."""
    n, rank, n_classes = accelerator.num_processes, accelerator.process_index, len(class_names)
    rows = np.arange(frame.height)[rank::n]
    share = frame.with_row_index("_row").filter(pl.col("_row") % n == rank).drop("_row")
    probs = (predict_frame(model, plugin, share, collate, n_classes, batch_size).probs
             if share.height else np.zeros((0, n_classes), np.float32))
    per_rank = [int(rows.size)]
    if n > 1:
        from accelerate.utils import gather_object

        gathered, per_rank = np.zeros((frame.height, n_classes), np.float32), []
        for indices, piece in gather_object([(rows, probs)]):  # in rank order
            gathered[indices] = piece
            per_rank.append(int(indices.size))
        probs = gathered
    return scores(_ids(frame, label2id), probs, class_names), per_rank


def write_interrupted(accelerator, output: Path, state: dict, saved: int, stopped: bool
                      ) -> dict:
    """An interrupted run keeps its checkpoint only (Ctrl-C re-raises after it)."""
    if saved != state["step"]:
        save_checkpoint(accelerator, output, state)
    if stopped:
        raise KeyboardInterrupt
    return {"steps": state["step"], "interrupted": True}


def few_shot_summary(args, results: list[dict]) -> dict:
    f1 = np.array([r["test"]["macro_f1"] if r.get("test") else np.nan for r in results])
    base = [r["baseline_macro_f1"] for r in results if r.get("baseline_macro_f1") is not None]
    summary = {"samples_per_class": args.samples_per_class, "folds": args.folds,
               "test_macro_f1_mean": float(f1.mean()), "test_macro_f1_std": float(f1.std()),
               "test_macro_f1": f1.tolist(),
               "baseline_macro_f1_mean": float(np.mean(base)) if base else None,
               "runs": results}
    (Path(args.output) / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def baseline_score(args, parts: dict, features: pl.DataFrame | None = None
                   ) -> tuple[float | None, str | None]:
    """(held-out macro F1 of the classical baseline on the same objects, or None with the
    reason it could not be computed); `features`: those --features computed, reused."""
    if not args.baseline:
        return None, "not asked (--no-baseline)"
    from lcfm.baseline import baseline_macro_f1

    try:
        value = baseline_macro_f1(Path(args.data), parts, n_estimators=BASELINE_TREES,
                                  seed=args.seed, features=features)
    except (LcfmError, ValueError, ImportError) as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return value, None if value is not None else "no labeled test objects"


def plot_validation(validation: list[dict], metric: str, kept: int, path: Path,
                    title: str) -> Path:
    """The validation selection metric per evaluation, the kept step marked."""
    from lcfm.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    steps = [v["step"] for v in validation]
    ax.plot(steps, [v[metric] for v in validation], "o-", label=f"validation {metric}")
    ax.axvline(kept, color="grey", ls="--", lw=0.8, label=f"kept (step {kept})")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def finish(args, model, plugin, parts, class_names, label2id, state, output, best_dir,
           base_parameters, survey_name, frame_of, *, recipe: dict,
           split_info: dict | None = None, num_processes: int = 1, workers: int = 0,
           wrap_collate=None, features: pl.DataFrame | None = None) -> dict:
    """Save the kept model, score the test objects and the baseline, write metrics.json,
    loss_history.json and the plots; returns the summary."""
    from lcfm.engine.save import save_classifier
    from lcfm.plots import plot_loss_curve

    model = save_classifier(model, output, best_dir, lora=args.lora, merge=args.merge_lora,
                            survey=survey_name)
    # every model folder of the run records its objects, so that `lcfm evaluate` scores
    # held-out objects only (issue 9, "Held-out evaluation")
    for folder in (output, output / "base", output / "merged"):
        if (folder / "config.json").exists() or folder == output:
            write_splits(folder, parts)
    collate = plugin.collator(model.config, task="classify", train=False,
                              bands=model.config.lcfm_bands, label2id=None, seed=args.seed)
    if wrap_collate is not None:  # --features: each batch carries its objects' features
        collate = wrap_collate(collate)
    test = parts["test"].filter(pl.col("label").is_in(class_names))
    report = None
    if test.height:
        test = frame_of(test)
        probs = predict_frame(model, plugin, test, collate, len(class_names),
                              args.batch_size).probs
        report = classification_report(_ids(test, label2id), probs, class_names)
    baseline, why = baseline_score(args, parts, features)
    metric = recipe["values"]["selection"]
    summary = {
        "model": args.model, "plugin": plugin.name, "survey": survey_name,
        "classes": class_names, "steps": state["step"], "best_step": state["best_step"],
        "selection": metric, "best_validation": state.get("best_value"),
        "best_validation_macro_f1": next((v["macro_f1"] for v in state["validation"]
                                          if v["step"] == state["best_step"]), None),
        "validation": state["validation"], "stopped": state["stopped"],
        "recipe": recipe,
        "train_light_curves": parts["train"].height,
        "validation_light_curves": parts["validation"].height,
        "test_light_curves": test.height,
        **{f"{name}_objects": part["object_id"].n_unique() for name, part in parts.items()},
        "splits": SPLITS_FILE, "split_file": split_info,
        "parameters": base_parameters,
        "num_processes": num_processes,
        "validation_rows_per_rank": state.get("validation_rows_per_rank"),
        "workers": workers,
        "test": {k: report[k] for k in ("accuracy", "macro_f1", "class_balanced_f1", "ece")}
        if report else None,
        "baseline_macro_f1": baseline, "baseline_note": why,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
    }
    (output / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output / "loss_history.json").write_text(json.dumps(state["history"]) + "\n")
    title = f"{args.model} fine-tuned on {survey_name} (N={parts['train'].height})"
    plot_loss_curve(state["history"], state["validation"], output / "loss.png", title=title)
    if state["validation"]:
        plot_validation(state["validation"], metric, state["stopped"]["kept_step"],
                        output / "validation.png", title)
    if test.height:
        test.write_parquet(output / "test_split.parquet")
    return summary
