"""Does pretraining on a large simulated corpus in a survey's cadence help fine-tuning on few
labels? The recipe of docs/multiband.md ("Pretraining in a survey's cadence"), run end to
end and scored:

1. `lcfm simulate` a pretraining corpus of `--corpus` light curves (default 100,000) in the
   survey's cadence and noise (`--cadence-from DIR` borrows those of real files instead);
2. `lcfm pretrain` the model on it for `--pretrain-steps` (one pass over the corpus by
   default) with its paper recipe;
3. with `--supervised`, also `lcfm finetune` the model on the simulated corpus's own labels
   (a classifier trained on simulations, the same number of steps);
4. `lcfm finetune --spc K --folds F` on a separate labeled set, for each K, from scratch and
   from each checkpoint (all weights, and the frozen encoder); the same fixed test objects
   for every run, and the classical baseline on the same K training objects.

With `--fold`, the corpus is folded at its simulated periods and the labeled set at its
Lomb-Scargle periods (`lcfm fold`, docs/multiband.md "Folding sparse light curves") before
steps 2-4, and an unfolded from-scratch run on the same objects is added (finetune's
baseline needs the unfolded times, so the baseline column comes from that run).

    python benchmarks/pretrain_transfer.py --output OUT [--survey fiveband] [--model astromer]
        [--corpus 100000] [--labeled 1000] [--spc 20,100] [--folds 3] [--scale cpu|paper]
        [--fold]

Every stage is skipped when its output exists, so a killed run resumes where it stopped
(pretraining resumes from its last checkpoint). Writes OUT/pretrain_transfer.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from multiband_f1 import CPU_CONFIGS


def _scores(summary: dict) -> tuple[float, float, float | None]:
    """(mean, std) test macro F1 over folds, and the baseline's mean on the same objects."""
    runs = summary.get("runs") or [summary]
    f1 = np.array([r["test"]["macro_f1"] for r in runs])
    base = [r["baseline_macro_f1"] for r in runs if r.get("baseline_macro_f1") is not None]
    return float(f1.mean()), float(f1.std()), (float(np.mean(base)) if base else None)


def _folded(out: Path, corpus: Path, labeled: Path, workers: int, fold, FoldArgs):
    """(folded corpus, folded labeled set): the corpus at its simulated periods, the
    labeled set at its Lomb-Scargle periods, each folded once."""
    import polars as pl
    from lcfm.shards import read_summaries

    corpus_folded, labeled_folded = out / "corpus-folded", out / "labeled-folded"
    if not (corpus_folded / "report.json").exists():
        periods = out / "corpus-periods.parquet"
        read_summaries(corpus).select(
            "object_id", period=pl.col("meta").struct.field("sim_period")).write_parquet(periods)
        fold(FoldArgs(data=corpus, output=corpus_folded, periods=periods, workers=workers))
    if not (labeled_folded / "report.json").exists():
        fold(FoldArgs(data=labeled, output=labeled_folded, workers=workers))
    return corpus_folded, labeled_folded


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from lcfm.engine.finetune import FinetuneArgs, finetune
    from lcfm.engine.pretrain import PretrainArgs, pretrain
    from lcfm.fold import FoldArgs, fold
    from lcfm.registry import get_model, get_survey
    from lcfm.simulate import simulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--survey", default="fiveband")
    parser.add_argument("--model", default="astromer")
    parser.add_argument("--corpus", type=int, default=100_000)
    parser.add_argument("--cadence-from", type=Path)
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--spc", default="20,100", help="Samples per class, comma-separated"
                        " (0: every training object).")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--pretrain-steps", type=int, default=None,
                        help="Default: one pass over the corpus.")
    parser.add_argument("--steps", type=int, default=200, help="Fine-tuning steps per run.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--scale", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--supervised", action="store_true",
                        help="Also train a classifier on the corpus's simulated labels.")
    parser.add_argument("--fold", action="store_true",
                        help="Fold the corpus and the labeled set first (lcfm fold).")
    parser.add_argument("--workers", type=int, default=2, help="Processes for lcfm fold.")
    args = parser.parse_args()
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    survey = get_survey(args.survey)
    plugin = get_model(args.model)
    overrides = dict(CPU_CONFIGS.get(args.model, {})) if args.scale == "cpu" else {}
    corpus, labeled, pre = out / "corpus", out / "labeled", out / f"{args.model}-pretrained"
    record = {"survey": args.survey, "model": args.model, "scale": args.scale,
              "config_overrides": overrides, "corpus": args.corpus, "labeled": args.labeled,
              "folds": args.folds, "steps": args.steps, "batch_size": args.batch_size,
              "rows": []}
    cadence = {"cadence_from": args.cadence_from} if args.cadence_from else {}
    if not (corpus / "simulation.json").exists():
        simulate(survey, args.corpus, corpus, seed=1, **cadence)
    if not (labeled / "simulation.json").exists():  # another seed: no object in both
        simulate(survey, args.labeled, labeled, seed=2, **cadence)
    raw_labeled = labeled
    if args.fold:
        corpus, labeled = _folded(out, corpus, labeled, args.workers, fold, FoldArgs)
        pre = out / f"{args.model}-pretrained-folded"
    validation_fraction = 0.02
    steps = args.pretrain_steps or -(-int(args.corpus * (1 - validation_fraction))
                                     // args.batch_size)
    started = time.perf_counter()
    if not (pre / "metrics.json").exists():
        pretrain(PretrainArgs(survey=args.survey, output=pre, data=corpus,
                              model=plugin.default_configuration, max_steps=steps,
                              batch_size=args.batch_size,
                              validation_fraction=validation_fraction,
                              eval_every=max(steps // 4, 1), eval_light_curves=1000,
                              resume=(pre / "checkpoint").exists(),
                              config_overrides=overrides))
    metrics = json.loads((pre / "metrics.json").read_text())
    record["pretraining"] = {"steps": metrics.get("steps"),
                             "light_curves_seen": (metrics.get("steps") or 0) * args.batch_size,
                             "first_loss": metrics.get("first_loss"),
                             "final_loss": metrics.get("final_loss"),
                             "validation": metrics.get("validation"),
                             "seconds": metrics.get("seconds")
                             or round(time.perf_counter() - started, 1)}
    variants = {"from scratch": {"model": plugin.default_configuration,
                                 "config_overrides": overrides},
                "pretrained, all weights": {"model": str(pre)},
                "pretrained, frozen encoder": {"model": str(pre), "freeze_encoder": True}}
    if args.fold:  # the same objects unfolded: the baseline's column
        variants = {"from scratch, unfolded": {**variants["from scratch"], "data": raw_labeled,
                                               "baseline": True},
                    **{k: {**v, "baseline": False} for k, v in variants.items()}}
    if args.supervised:
        simulated = out / f"{args.model}-simulation-classifier"
        started = time.perf_counter()
        if not (simulated / "metrics.json").exists():
            finetune(FinetuneArgs(data=corpus, model=plugin.default_configuration,
                                  output=simulated, max_steps=steps,
                                  batch_size=args.batch_size, test_fraction=0.02,
                                  validation_fraction=validation_fraction, baseline=False,
                                  progress=False, config_overrides=overrides))
        summary = json.loads((simulated / "metrics.json").read_text())
        record["simulation_classifier"] = {
            "steps": summary.get("steps"), "test_macro_f1": (summary.get("test") or {}).get(
                "macro_f1"), "seconds": round(time.perf_counter() - started, 1)}
        variants["trained on simulated labels, all weights"] = {"model": str(simulated)}
        variants["trained on simulated labels, frozen encoder"] = {
            "model": str(simulated), "freeze_encoder": True}
    for spc in (int(s) for s in args.spc.split(",")):
        for variant, extra in variants.items():
            folder = out / f"spc{spc}-{variant.replace(', ', '-').replace(' ', '-')}"
            started = time.perf_counter()
            if (folder / "metrics.json").exists():
                summary = json.loads((folder / "metrics.json").read_text())
            else:
                summary = finetune(FinetuneArgs(**{
                    "data": labeled, "output": folder, "max_steps": args.steps,
                    "batch_size": args.batch_size, "samples_per_class": spc,
                    "folds": args.folds if spc > 0 else 1, "progress": False, **extra}))
            mean, std, base = _scores(summary)
            if base is None and args.fold:  # from the unfolded run on the same objects
                base = next((r["baseline_macro_f1"] for r in record["rows"]
                             if r["spc"] == spc and r["variant"] == "from scratch, unfolded"),
                            None)
            record["rows"].append({"spc": spc, "variant": variant, "macro_f1_mean": mean,
                                   "macro_f1_std": std, "baseline_macro_f1": base,
                                   "seconds": round(time.perf_counter() - started, 1)})
            (out / "pretrain_transfer.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["| labels per class | variant | test macro F1 (mean +- std over folds) | "
             "baseline on the same objects |", "|---|---|---|---|"]
    for row in record["rows"]:
        base = row["baseline_macro_f1"]
        lines.append(f"| {row['spc'] or 'all'} | {row['variant']} | {row['macro_f1_mean']:.3f}"
                     f" +- {row['macro_f1_std']:.3f} | "
                     f"{'-' if base is None else f'{base:.3f}'} |")
    (out / "pretrain_transfer.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(record["pretraining"], indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
