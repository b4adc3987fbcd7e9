"""`lcfm evaluate`, `predict` and `embed`, generated from `EvaluateArgs`, `PredictArgs` and
`EmbedArgs` (lcfm.engine.evaluate)."""

from __future__ import annotations

import json

import typer

from lcfm_cli.generate import dataclass_command


def report_evaluate(r: dict, args) -> None:
    if "rmse" in r and "macro_f1" not in r:  # a masked-reconstruction (pretraining) model
        typer.echo(f"reconstruction of probed points: rmse {r['rmse']:.4f}, r2 "
                   f"{r['r2']:.4f}; details in {args.output}")
        return
    excluded = r.get("excluded_training_objects")
    held_out = ("no split record in the model folder: training objects not checked"
                if excluded is None else f"{excluded} training/validation objects excluded")
    baseline = r.get("baseline_macro_f1")
    typer.echo(f"{r['n_objects']} held-out objects scored ({held_out}; skipped: "
               f"{r['n_skipped_unlabeled']} unlabeled, {r['n_skipped_foreign_label']} with "
               f"other labels): accuracy {r['accuracy']:.3f}, macro F1 {r['macro_f1']:.3f}, "
               f"class-balanced F1 {r['class_balanced_f1']:.3f}, ECE {r['ece']:.3f}"
               + (f"; classical baseline macro F1 {baseline:.3f}" if baseline is not None
                  else "") + f"; details in {args.output}")


def _with_summary(run):
    """`run(args)` writing a Parquet file -> the JSON summary it writes beside it."""
    def summarised(args) -> dict:
        from lcfm.engine.evaluate import summary_path

        table = run(args)
        path = summary_path(args.output)
        summary = json.loads(path.read_text()) if path.is_file() else {}
        return {"output": str(args.output), "rows": table.height, **summary}

    return summarised


def report_predict(summary: dict, args) -> None:
    typer.echo(f"{summary['rows']} objects classified -> {args.output}")


def report_embed(summary: dict, args) -> None:
    size = summary.get("embedding_size")
    typer.echo(f"{summary['rows']} embeddings" + (f" of size {size}" if size else "")
               + f" -> {args.output}")


def evaluate_command():
    from lcfm.engine.evaluate import EvaluateArgs, run_evaluate

    return dataclass_command(
        EvaluateArgs, run_evaluate, report_evaluate, name="evaluate",
        doc="""Accuracy, per-class and macro P/R/F1, class-balanced F1, confusion matrix,
        reliability diagram and ECE, per-class threshold table, on held-out objects: the
        model's training and validation objects and rows without one of its classes are
        left out and counted. A pretrained masked-reconstruction model gets rmse and r2 on
        its probed points.""")


def predict_command():
    from lcfm.engine.evaluate import PredictArgs, run_predict

    return dataclass_command(
        PredictArgs, _with_summary(run_predict), report_predict, name="predict",
        doc="""Classify every object, labeled or not, over all its observations: a Parquet
        catalog with probabilities per class and n_observations_used, and <output
        stem>.json (counts, speed, num_processes). Shards are shared among `accelerate
        launch` processes and written as parts before the merge; one progress line per
        shard off a terminal.""")


def embed_command():
    from lcfm.engine.evaluate import EmbedArgs, run_embed

    return dataclass_command(
        EmbedArgs, _with_summary(run_embed), report_embed, name="embed",
        doc="""One embedding vector per object, and <output stem>.json (counts, speed,
        num_processes); shards are shared among `accelerate launch` processes.""")
