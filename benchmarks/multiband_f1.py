"""Macro F1 on a multi-band labeled set in a real survey's cadence, for the classical
baseline and every model from scratch, after pretraining, with --features, and after
pretraining with --features (`--variants`).

The labeled set is the five-band example survey (`tests/plugin_fiveband`, ugriz magnitudes,
~38 sparse points per band over 6-8 years, RR Lyrae vs Cepheids told apart by period, the
issue's scenario) simulated by its plugin; pretraining uses a larger simulated corpus of the
same survey. All runs share finetune's splits (the baseline uses them too), so every number
is macro F1 on the same held-out objects.

    python benchmarks/multiband_f1.py --output /tmp/mb [--labeled 500] [--pretrain 5000]
        [--steps 300] [--pretrain-steps 400] [--pretrain-batch-size 64] [--scale cpu|paper]

`--scale cpu` (default) trains reduced configurations (below) so that the whole table runs
on a 2-core machine in about half an hour; `--scale paper` uses each paper configuration.
Writes OUTPUT/multiband_f1.json and OUTPUT/multiband_f1.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import polars as pl

#: reduced configurations for CPU runs (the architectures' own options, smaller sizes)
CPU_CONFIGS = {
    "astromer": {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
                 "intermediate_size": 128, "window_size": 200},
    "astroco": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "max_length": 200},
    "astrafier": {"hidden_size": 32, "num_blocks": 1, "lstm_hidden_size": 32,
                  "projection_size": 64, "num_attention_heads": 4, "feed_forward_size": 64,
                  "cnn_glu_size": 64, "max_length": 200},
    "atcat": {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
              "attention_dim": 32, "intermediate_size": 128, "max_length": 200},
}


def _f1(summary: dict) -> float | None:
    test = summary.get("test") or {}
    return test.get("macro_f1")


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from lcfm.baseline import BaselineArgs, baseline
    from lcfm.engine.finetune import FinetuneArgs, finetune
    from lcfm.engine.pretrain import PretrainArgs, pretrain
    from lcfm.fold import FoldArgs, fold
    from lcfm.registry import get_model, get_survey, model_names
    from lcfm.shards import read_summaries
    from lcfm.simulate import simulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--labeled", type=int, default=500)
    parser.add_argument("--pretrain", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--scale", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="Light curves per batch (default: each recipe's).")
    parser.add_argument("--pretrain-batch-size", type=int, default=None,
                        help="Light curves per pretraining batch (default: --batch-size).")
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--variants", default="scratch,pretrained,features",
                        help="Which rows per model: scratch, pretrained, features, "
                             "pretrained-features, folded, pretrained-folded (`lcfm fold`: "
                             "the labeled set folded at its Lomb-Scargle periods; the corpus "
                             "at its simulated periods).")
    parser.add_argument("--workers", type=int, default=2, help="Processes for lcfm fold.")
    args = parser.parse_args()
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    survey = get_survey("fiveband")
    labeled, corpus = out / "labeled", out / "corpus"
    if not (labeled / "simulation.json").exists():
        simulate(survey, args.labeled, labeled, seed=0)
    if not (corpus / "simulation.json").exists():
        simulate(survey, args.pretrain, corpus, seed=1)
    wanted = set(args.variants.split(","))
    folded_labeled, folded_corpus = out / "labeled-folded", out / "corpus-folded"
    if wanted & {"folded", "pretrained-folded"} and not (folded_labeled / "report.json").exists():
        fold(FoldArgs(data=labeled, output=folded_labeled, workers=args.workers))
    if "pretrained-folded" in wanted and not (folded_corpus / "report.json").exists():
        periods = out / "corpus-periods.parquet"  # a simulated corpus knows its periods
        read_summaries(corpus).select(
            "object_id", period=pl.col("meta").struct.field("sim_period")).write_parquet(periods)
        fold(FoldArgs(data=corpus, output=folded_corpus, periods=periods,
                      workers=args.workers))
    results = {"labeled": args.labeled, "pretrain_corpus": args.pretrain,
               "steps": args.steps, "pretrain_steps": args.pretrain_steps,
               "scale": args.scale, "rows": []}
    record = out / "multiband_f1.json"

    def save():
        record.write_text(json.dumps(results, indent=2) + "\n")

    started = time.perf_counter()
    base = baseline(BaselineArgs(data=labeled, output=out / "baseline"))
    results["rows"].append({"model": "baseline (features + random forest)", "variant": "-",
                            "macro_f1": (base.get("test") or {}).get("macro_f1"),
                            "seconds": round(time.perf_counter() - started, 1)})
    save()
    for name in args.models.split(","):
        plugin = get_model(name)
        overrides = dict(CPU_CONFIGS.get(name, {})) if args.scale == "cpu" else {}
        variants = [v for v, key in ((("from scratch", {}), "scratch"),
                                     (("with --features", {"features": True}), "features"),
                                     (("folded", {"data": folded_labeled}), "folded"))
                    if key in wanted]
        for suffix, data, needs in (("", corpus, {"pretrained", "pretrained-features"}),
                                    ("-folded", folded_corpus, {"pretrained-folded"})):
            if plugin.pretraining_class is None or not wanted & needs:
                continue
            started = time.perf_counter()
            pre = out / f"{name}-pretrained{suffix}"
            if not (pre / "metrics.json").exists():
                pretrain(PretrainArgs(survey="fiveband", output=pre, data=data,
                                      model=plugin.default_configuration,
                                      max_steps=args.pretrain_steps, progress=False,
                                      batch_size=args.pretrain_batch_size or args.batch_size,
                                      validation_fraction=0.02, eval_light_curves=1000,
                                      config_overrides=overrides))
            loss = json.loads((pre / "metrics.json").read_text())
            results["rows"].append({"model": name, "variant": f"pretraining{suffix}",
                                    "first_loss": loss.get("first_loss"),
                                    "final_loss": loss.get("final_loss"),
                                    "seconds": round(time.perf_counter() - started, 1)})
            if suffix:
                variants.append(("after pretraining, folded",
                                 {"model": str(pre), "data": folded_labeled}))
                continue
            if "pretrained" in wanted:
                variants.insert(1, ("after pretraining", {"model": str(pre)}))
            if "pretrained-features" in wanted:
                variants.append(("after pretraining, with --features",
                                 {"model": str(pre), "features": True}))
        for variant, extra in variants:
            started = time.perf_counter()
            folder = out / f"{name}-{variant.replace(',', '').replace(' ', '-').strip('-')}"
            model = extra.pop("model", plugin.default_configuration)
            summary = finetune(FinetuneArgs(
                data=extra.pop("data", labeled), model=model, output=folder, max_steps=args.steps,
                batch_size=args.batch_size, progress=False, baseline=False,
                config_overrides={} if model != plugin.default_configuration else overrides,
                **extra))
            predicted = json.loads((folder / "metrics.json").read_text())
            results["rows"].append({
                "model": name, "variant": variant, "macro_f1": _f1(summary),
                "accuracy": (summary.get("test") or {}).get("accuracy"),
                "steps": summary.get("steps"), "kept_step": predicted.get("best_step"),
                "stopped": (summary.get("stopped") or {}).get("message"),
                "seconds": round(time.perf_counter() - started, 1)})
            save()
    lines = ["| model | variant | test macro F1 | seconds |", "|---|---|---|---|"]
    for row in results["rows"]:
        f1 = row.get("macro_f1")
        shown = f"{f1:.3f}" if isinstance(f1, float) else (
            f"loss {row['first_loss']:.3f} -> {row['final_loss']:.3f}"
            if row.get("final_loss") is not None else "-")
        lines.append(f"| {row['model']} | {row['variant']} | {shown} | {row['seconds']} |")
    (out / "multiband_f1.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
