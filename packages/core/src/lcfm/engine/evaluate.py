"""`lcfm evaluate`: the metrics the papers report, on held-out objects (issue 11, item 4).

A fine-tuned classifier folder is scored on objects with one of the model's classes that the
model was not trained or validated on (the fine-tuning run's `splits.parquet`); with
`splits` (a fixed split file, `lcfm.splits.read_split_file`, and its `fold`) only the
file's test objects are scored. metrics.json holds, per object, accuracy, macro P/R/F1,
ATCAT's class-balanced F1 (sect. 2.3.1), ECE, reliability and the threshold table, and:

* `per_object` and `per_light_curve`: the headline metrics at both levels
  (`lcfm.engine.scoring`); the top-level numbers are the per-object ones;
* `mc_dropout` with `mc_samples` > 0: probabilities are the mean of that many passes with
  the model's own dropout active (ASTRAFier sect. 3.6: "keeping dropout active during
  inference with a probability of 0.2 and performing 20 forward passes, taking the mean"),
  and the spread of the passes;
* `baseline_macro_f1`: the classical baseline trained on the model's training objects and
  scored on the same held-out objects (issue 12, item 3), or null with `baseline_reason`;
* with `cutoffs`: `early_metrics.json`, macro F1 and class-balanced F1 per
  cut-off in days since the first alert (ATCAT sect. 3.3; `lcfm.engine.early`).

A pretrained masked-reconstruction folder (Astromer, AstroCo) gets unweighted `rmse` and
`r2` on the probed points instead (`lcfm.engine.reconstruction`; Astromer 2 reports 0.113
and 0.732).

Which objects are scored is decided from the rows' ids and labels alone
(`read_summaries`: no observation sequences in memory); each rank then classifies its
shards' scored rows and the main process scores the gathered probabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.engine.catalog import CatalogRun, merge_parts, object_part
from lcfm.engine.inference import (  # re-exported: the commands' shared helpers live there
    SEEN_SPLITS,
    SPLITS_FILE,
    EmbedArgs,
    PredictArgs,
    band_summary,
    check_mc_samples,
    embed,
    feature_inputs,
    file_output,
    folder_output,
    inference_collator,
    input_bands,
    load_classifier_parts,
    model_key,
    parse_cutoffs,
    predict,
    read_splits,
    run_embed,
    run_predict,
    seen_objects,
    summary_path,
    write_splits,
)
from lcfm.engine.metadata import with_metadata
from lcfm.engine.predict import predict_frame
from lcfm.engine.scoring import baseline_score, brief, mc_spread, per_light_curve, row_table
from lcfm.exceptions import ConfigError, DataError
from lcfm.metrics import classification_report
from lcfm.options import option
from lcfm.plots import plot_confusion, plot_reliability
from lcfm.ranks import current_ranks
from lcfm.shards import read_summaries

EARLY_METRICS = "early_metrics.json"


@dataclass
class EvaluateArgs:
    model: Path = option(help="Fine-tuned classifier folder, or a pretrained masked-"
                              "reconstruction model folder (rmse and r2 on probed points).")
    data: Path = option(help="Folder of canonical shards.")
    output: Path = option(help="Folder for metrics, plots and tables.")
    batch_size: int = option(64, "Light curves per batch.")
    mc_samples: int = option(0, "Monte-Carlo dropout passes with the model's own dropout "
                                "(ASTRAFier sect. 3.6 uses 20); 0: one deterministic pass.")
    seed: int = option(0, "Seed of MC-dropout passes and of the probed points of a "
                          "reconstruction evaluation.")
    cutoffs: list[float] | None = option(None, "Also score the light curves cut at these "
                                               "days since the first alert (first "
                                               "observation where the survey records "
                                               "none), e.g. 8,16,32,64 (early_metrics.json).")
    splits: Path | None = option(None, "Fixed split file (object_id -> split[, fold]): "
                                       "score only its test objects.")
    fold: int | None = option(None, "Fold of a split file with a fold column.")
    baseline: bool = option(True, "Also report the classical baseline's macro F1 on the same "
                                  "held-out objects (baseline_macro_f1).")
    features: Path | None = option(None, "Features file of `lcfm features` for the baseline "
                                         "and for a model fine-tuned with --features "
                                         "(default: computed from --data).")


def _split_file_selection(args: EvaluateArgs, summaries: pl.DataFrame):
    """(test object ids or None, training ids of the split file or None, report entry)."""
    if args.splits is None:
        if args.fold is not None:
            raise ConfigError(f"--fold {args.fold}: needs --splits FILE")
        return None, None, {}
    from lcfm.splits import read_split_file, split_by_file

    parts, info = split_by_file(summaries, read_split_file(args.splits), args.fold)
    return (parts["test"]["object_id"].cast(pl.String).unique(),
            parts["train"]["object_id"].cast(pl.String).unique(),
            {"split_file": {"path": str(args.splits), **info}})


def run_evaluate(args: EvaluateArgs) -> dict:
    """Metrics on held-out objects (module docstring); returns metrics.json. Keys beyond
    `lcfm.metrics.classification_report`: n_objects (objects scored), light_curves,
    n_observations_used, excluded_training_objects (None when the model folder has no
    split record), n_skipped_unlabeled, n_skipped_foreign_label (objects),
    not_in_split_test (with `splits`), per_object, per_light_curve, mc_dropout,
    baseline_macro_f1 and baseline_reason, early (with `cutoffs`), num_processes."""
    from lcfm.engine.reconstruction import evaluate_reconstruction, is_pretraining_folder

    output = folder_output(args.output)
    cutoffs = parse_cutoffs(args.cutoffs)
    check_mc_samples(args.mc_samples)
    summaries = read_summaries(args.data).with_columns(pl.col("object_id").cast(pl.String))
    test_ids, file_train, selection = _split_file_selection(args, summaries)
    if is_pretraining_folder(args.model):
        return evaluate_reconstruction(args.model, args.data, output,
                                       batch_size=args.batch_size, seed=args.seed,
                                       objects=test_ids, selection=selection)
    plugin, model, classes, encoder = load_classifier_parts(args.model)
    wrap, encoder = feature_inputs(args.model, model.config, encoder, args.data, args.features)
    if args.mc_samples:
        from lcfm.engine.predict import enable_mc_dropout

        enable_mc_dropout(model, plugin)  # fails before any shard is read
        model.eval()
    input_bands(plugin, model.config, band_summary(args.data), args.data, encoder)
    splits = read_splits(args.model)
    seen = seen_objects(args.model)
    candidates = summaries
    if test_ids is not None:
        candidates = summaries.filter(pl.col("object_id").is_in(test_ids.implode()))
        selection["not_in_split_test"] = (summaries["object_id"].n_unique()
                                          - candidates["object_id"].n_unique())
    in_training = candidates["object_id"].is_in(seen.implode())
    known = candidates["label"].is_in(classes).fill_null(False) & ~in_training
    scored = candidates.filter(known)
    scored_ids = scored["object_id"].unique().implode()
    rest = candidates.filter(~in_training & ~known & ~pl.col("object_id").is_in(scored_ids))
    counts = {
        "excluded_training_objects": candidates.filter(in_training)["object_id"].n_unique()
        if splits is not None else None,
        "n_skipped_unlabeled": rest.filter(pl.col("label").is_null())["object_id"].n_unique(),
        "n_skipped_foreign_label": rest.filter(pl.col("label").is_not_null())[
            "object_id"].n_unique(),
    }
    if scored.height == 0:
        raise DataError(f"{args.data}: no held-out object to score: "
                        f"{counts['excluded_training_objects'] or 0} are the model's training "
                        f"or validation objects, {counts['n_skipped_unlabeled']} unlabeled, "
                        f"{counts['n_skipped_foreign_label']} with labels outside {classes}")
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("evaluate", Path(args.data), output / ".evaluate.parts",
                     {"model": model_key(args.model), "mc_samples": args.mc_samples,
                      "seed": args.seed, "cutoffs": cutoffs}, ranks=ranks)
    passes = max(int(args.mc_samples), 1)

    def work(unit, frame):
        frame = frame.filter(pl.col("object_id").cast(pl.String).is_in(scored_ids))
        if frame.height == 0:
            return {"": object_part(frame, np.zeros((0, passes, len(classes))), np.zeros(0)),
                    ".rows": row_table(frame, np.zeros((0, len(classes))), np.zeros(0))}
        bands = input_bands(plugin, model.config, frame, unit.path, encoder)
        collate = wrap(inference_collator(plugin, model.config, bands, args.seed))
        frame = with_metadata(frame, encoder, model.config)
        tables = {}
        if cutoffs:
            from lcfm.engine.early import cutoff_probabilities

            tables[".early"] = cutoff_probabilities(model, plugin, frame, collate, classes,
                                                   cutoffs, args.batch_size)
        rows = predict_frame(model, plugin, frame, collate, len(classes), args.batch_size,
                             mc_samples=args.mc_samples, seed=args.seed)
        tables[".rows"] = row_table(frame, rows.probs, rows.observations)
        tables[""] = object_part(frame, rows.passes.transpose(1, 0, 2), rows.observations)
        return tables

    output.mkdir(parents=True, exist_ok=True)
    run.run(work)
    if ranks.is_main:
        merged = merge_parts(run.parts())
        object_passes = merged.means.reshape(len(merged.objects), passes, len(classes))
        y_true = np.array([classes.index(label) for label in merged.labels])
        report = classification_report(y_true, object_passes.mean(1), classes)
        report.update(n_objects=len(merged.objects), objects=len(merged.objects),
                      light_curves=int(merged.rows.sum()),
                      n_observations_used=int(merged.observations.sum()), **counts,
                      **selection, num_processes=ranks.count, mc_samples=args.mc_samples)
        report["per_object"] = {"objects": len(merged.objects), **brief(report)}
        report["per_light_curve"] = per_light_curve(pl.concat(run.parts(".rows")), classes)
        report["mc_dropout"] = mc_spread(object_passes) if args.mc_samples else None
        if args.baseline:
            train_ids = (splits.filter(pl.col("split") == "train")["object_id"]
                         if splits is not None else file_train)
            report.update(baseline_score(args.data, summaries, train_ids, merged.objects,
                                         features=args.features, source=str(args.model)))
        else:
            report.update(baseline_macro_f1=None, baseline_reason="not asked for (--no-baseline)")
        if cutoffs:
            from lcfm.engine.early import write_early_metrics

            early = write_early_metrics(
                output / EARLY_METRICS, pl.concat(run.parts(".early"), how="diagonal_relaxed"),
                classes, cutoffs, dict(zip(merged.objects, merged.labels, strict=True)))
            report["early"] = {"file": EARLY_METRICS, "cutoffs": early["cutoffs"],
                               "counted_from": early["counted_from"]}
        _write_evaluation(output, report, classes)
    run.finish()
    return json.loads((output / "metrics.json").read_text())


def _write_evaluation(output: Path, report: dict, classes: list[str]) -> None:
    (output / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "confusion_matrix.json").write_text(
        json.dumps(report["confusion_matrix"], indent=2) + "\n")
    (output / "calibration.json").write_text(json.dumps(report["reliability"], indent=2) + "\n")
    (output / "thresholds.json").write_text(json.dumps(report["thresholds"], indent=2) + "\n")
    plot_confusion(np.array(report["confusion_matrix"]["rows_true_columns_predicted"]),
                   classes, output / "confusion_matrix.png")
    plot_reliability(report["reliability"], output / "reliability.png")


def evaluate(model_dir, data: Path | None = None, output: Path | None = None,
             batch_size: int = 64, **options) -> dict:
    """`run_evaluate` with positional options (or an `EvaluateArgs` as the only argument);
    further `EvaluateArgs` fields as keywords."""
    if isinstance(model_dir, EvaluateArgs):
        return run_evaluate(model_dir)
    return run_evaluate(EvaluateArgs(model=Path(model_dir), data=Path(data),
                                     output=Path(output), batch_size=batch_size, **options))


__all__ = ["EARLY_METRICS", "SEEN_SPLITS", "SPLITS_FILE", "EmbedArgs", "EvaluateArgs",
           "PredictArgs", "embed", "evaluate", "file_output", "folder_output", "input_bands",
           "predict", "read_splits", "run_embed", "run_evaluate", "run_predict",
           "summary_path", "write_splits"]
