"""The papers' headline protocols run by `lcfm reproduce` (`lcfm.engine.reproduce`).

Each protocol chains the engine's public functions with the paper's configuration and
recipe, one `Recorder.stage` per `lcfm` command, and records its headline numbers beside
the paper's (ASTRAFier Tables 2 and 4; Astromer 2 sect. 5 and AstroCo Table 1; ATCAT
Tables 1 and 3). Numbers a paper shows only in a figure are recorded as None with the
figure named.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lcfm.engine.reproduce import Recorder, Size, tiny_overrides, training_overrides

ASTRAFIER_PAPER = "ASTRAFier (Gregory et al.)"
ASTROMER_PAPER = "Astromer 2 (Donoso-Oliva et al.)"
ASTROCO_PAPER = "AstroCo (Tan et al.)"
ATCAT_PAPER = "ATCAT (Tung)"


@dataclass(frozen=True)
class Protocol:
    title: str
    survey: str
    experiment: str
    sizes: dict[str, Size]
    run_stages: Callable[[Recorder], None]

    def describe(self) -> dict:
        return {"title": self.title, "survey": self.survey, "experiment": self.experiment}

    def run(self, recorder: Recorder) -> None:
        self.run_stages(recorder)


# ---- shared stages ----------------------------------------------------------------------

def simulate_stage(rec: Recorder, name: str, survey: str, n: int, folder: Path, seed: int,
                   options: tuple[str, ...] = ()) -> Path:
    from lcfm.simulate import SimulateArgs, run_simulate

    args = SimulateArgs(survey=survey, n=n, output=folder, seed=seed,
                        survey_options=list(options), progress=rec.args.progress)
    rec.stage(name, "simulate", args, run_simulate, lambda r: {
        "light_curves": r["light_curves"], "per_class": r["per_class"],
        "rejected_by_preprocessing": r["light_curves_rejected_by_preprocessing"]})
    return folder


def _test(summary: dict) -> dict:
    test = summary.get("test") or {}
    return {"steps": summary.get("steps"), "best_step": summary.get("best_step"),
            "selection": summary.get("selection"),
            "train_light_curves": summary.get("train_light_curves"),
            "test_light_curves": summary.get("test_light_curves"),
            **{f"test_{k}": v for k, v in test.items()},
            "baseline_macro_f1": summary.get("baseline_macro_f1")}


def _pretrain_metrics(summary: dict) -> dict:
    validation = summary.get("validation") or []
    return {"steps": summary.get("steps"), "first_loss": summary.get("first_loss"),
            "final_loss": summary.get("final_loss"),
            "last_validation_loss": validation[-1].get("loss") if validation else None,
            "train_light_curves": summary.get("train_light_curves"),
            "validation_light_curves": summary.get("validation_light_curves")}


def _classification(report: dict) -> dict:
    keys = ("accuracy", "macro_f1", "class_balanced_f1", "ece", "n_objects", "light_curves",
            "excluded_training_objects", "mc_samples", "baseline_macro_f1")
    out = {k: report.get(k) for k in keys}
    if report.get("mc_dropout"):
        out["mc_dropout"] = {k: v for k, v in report["mc_dropout"].items()
                             if not isinstance(v, list | dict)}
    out["per_light_curve"] = report.get("per_light_curve")
    return out


def pretrain_stage(rec: Recorder, model: str, recipe: str, survey: str, data: Path,
                   output: Path) -> Path:
    from lcfm.engine.pretrain import PretrainArgs, pretrain
    from lcfm.registry import find_model_configuration

    size, plugin = rec.size, find_model_configuration(model)[0].name
    args = PretrainArgs(survey=survey, output=output, data=data, model=model, recipe=recipe,
                        seed=rec.args.seed, progress=rec.args.progress,
                        config_overrides=tiny_overrides(plugin, classifier=False)
                        if size.tiny else {},
                        **training_overrides(size, rec.args.scale))
    rec.stage("pretrain", "pretrain", args, pretrain, _pretrain_metrics)
    return output


def reconstruction_stage(rec: Recorder, model: Path, data: Path, output: Path) -> dict:
    from lcfm.engine.evaluate import EvaluateArgs, run_evaluate

    args = EvaluateArgs(model=model, data=data, output=output, seed=rec.args.seed,
                        batch_size=rec.size.batch_size or 64)
    return rec.stage("reconstruction", "evaluate", args, run_evaluate, lambda r: {
        k: r.get(k) for k in ("rmse", "r2", "rmse_window_mean", "n_objects", "weighted",
                              "reported")})


def fewshot_stage(rec: Recorder, model: Path, data: Path, output: Path, recipe_name: str,
                  plugin: str) -> dict:
    """Few-shot classification with the paper's classifier (frozen encoder + head), its
    head's learning rate and batch size from the fine-tuning recipe."""
    from lcfm.engine.fewshot import FewShotArgs, fewshot
    from lcfm.recipes import get_recipe

    size, recipe = rec.size, get_recipe(recipe_name)
    steps = size.classifier_steps or recipe.max_steps or 500
    args = FewShotArgs(
        data=data, model=str(model), output=output, spc=list(size.spc), folds=size.folds,
        test_per_class=size.test_per_class, mode=recipe.classifier,
        adapt_steps=size.adapt_steps, max_steps=steps,
        batch_size=size.batch_size or recipe.batch_size,
        lr_encoder=recipe.lr_encoder or 1e-4, lr_head=recipe.lr_head or 1e-3,
        seed=rec.args.seed, progress=rec.args.progress,
        config_overrides={k: v for k, v in tiny_overrides(plugin).items()
                          if k == "classifier_hidden_sizes"} if size.tiny else {})
    result = rec.stage("fewshot", "fewshot", args, fewshot, lambda r: {
        "summary": r["summary"], "mode": r["mode"], "adapt_steps": r["adapt_steps"],
        "scenarios": len(r["results"])})
    rec.stages[-1]["recipe"] = {"name": recipe.name, "values": recipe.values(),
                                "sources": dict(recipe.sources),
                                "used": ["classifier", "lr_encoder", "lr_head",
                                         "batch_size", "max_steps"]}
    rec.save()
    return result


# ---- ASTRAFier ----------------------------------------------------------------------------

def run_astrafier(rec: Recorder) -> None:
    """ASTRAFier sect. 6.1 (Kepler alone: 80/20 split by object, 10% validation, selection
    on accuracy) and sect. 6.3 (Kepler + TESS training, scored on the TESS holdout with
    20 MC-dropout passes, sect. 3.6)."""
    from lcfm.combined import combine
    from lcfm.engine.evaluate import EvaluateArgs, run_evaluate
    from lcfm.engine.finetune import FinetuneArgs, finetune
    out, size, seed = rec.output, rec.size, rec.args.seed
    kepler = simulate_stage(rec, "simulate kepler", "kepler", size.n, out / "data-kepler",
                            seed)
    tess = simulate_stage(rec, "simulate tess", "tess_qlp", size.n_second or size.n,
                          out / "data-tess", seed + 1)
    common = dict(model="astrafier", recipe="astrafier", seed=seed,
                  progress=rec.args.progress, baseline=size.baseline,
                  # tiny: longer windows than the tiny 64 (fewer windows per Kepler row)
                  config_overrides={**tiny_overrides("astrafier"), "max_length": 512}
                  if size.tiny else {},
                  **training_overrides(size, rec.args.scale))
    kepler_only = rec.stage("kepler-only", "finetune", FinetuneArgs(
        data=kepler, output=out / "kepler-only", test_fraction=0.2, validation_fraction=0.1,
        **common), finetune, _test)
    combined = out / "data-kepler+tess"
    rec.stage("combine", "combine", [kepler, tess], lambda d: combine(d, combined),
              lambda r: {"survey": r["survey"], "light_curves": r["light_curves_written"]},
              line=f"lcfm combine --data {kepler} --data {tess} --output {combined}")
    split_file = out / "splits-tess-holdout.csv"
    rec.stage("split file", "split", combined, lambda d: _tess_holdout(d, split_file, seed),
              lambda r: r, line=f"# lcfm reproduce writes {split_file}: TESS objects "
              "72/8/20 train/validation/test by class, Kepler objects 90/10 train/"
              "validation (sect. 6.3: scored on the TESS holdout)")
    both = rec.stage("kepler+tess", "finetune", FinetuneArgs(
        data=combined, output=out / "kepler+tess", splits=split_file, **common),
        finetune, _test)
    scored = rec.stage("evaluate tess holdout", "evaluate", EvaluateArgs(
        model=out / "kepler+tess", data=combined, output=out / "evaluate-tess-holdout",
        splits=split_file, mc_samples=size.mc_samples, seed=seed,
        batch_size=size.batch_size or 64, baseline=size.baseline),
        run_evaluate, _classification)
    kt, bt = kepler_only.get("test") or {}, both.get("test") or {}
    rec.number("Kepler holdout accuracy", kt.get("accuracy"), 0.9426, "sect. 6.1, Table 2",
               "kepler-only")
    rec.number("Kepler holdout macro F1", kt.get("macro_f1"), 0.9121, "Table 2",
               "kepler-only")
    rec.number("TESS holdout accuracy (Kepler+TESS, MC dropout)", scored.get("accuracy"),
               0.8822, "sect. 6.3, Table 4", "evaluate tess holdout")
    rec.number("TESS holdout macro F1 (Kepler+TESS, MC dropout)", scored.get("macro_f1"),
               0.8920, "Tables 4-5", "evaluate tess holdout")
    rec.number("TESS holdout macro F1 (Kepler+TESS, one pass)", bt.get("macro_f1"), None,
               "", "kepler+tess")


def _tess_holdout(combined: Path, path: Path, seed: int) -> dict:
    from lcfm.splits import stratified_object_split

    summaries = read_summaries_labeled(combined)
    parts = {"tess": stratified_object_split(
        summaries.filter(pl.col("survey") == "tess_qlp"),
        {"train": 0.72, "validation": 0.08, "test": 0.2}, seed),
        "kepler": stratified_object_split(
        summaries.filter(pl.col("survey") != "tess_qlp"),
        {"train": 0.9, "validation": 0.1}, seed)}
    rows = [pl.DataFrame({"object_id": part["object_id"].cast(pl.String).unique(),
                          "split": name})
            for survey in parts.values() for name, part in survey.items() if part.height]
    table = pl.concat(rows).unique("object_id", keep="first").sort("object_id")
    table.write_csv(path)
    counts = table.group_by("split").len().sort("split")
    return {"file": str(path), "objects": dict(zip(counts["split"].to_list(),
                                                   counts["len"].to_list(), strict=True)),
            "test_objects_tess": int(parts["tess"]["test"]["object_id"].n_unique())}


def read_summaries_labeled(data: Path) -> pl.DataFrame:
    from lcfm.shards import read_summaries

    return read_summaries(data).filter(pl.col("label").is_not_null())


# ---- Astromer 1 and 2, AstroCo ------------------------------------------------------------

def _masked(model: str, recipe: str, finetune_recipe: str, plugin: str, corpus_options,
            reported: dict) -> Callable[[Recorder], None]:
    def run(rec: Recorder) -> None:
        out, size, seed = rec.output, rec.size, rec.args.seed
        corpus = simulate_stage(rec, "simulate pretraining corpus", "macho",
                                size.n_pretrain, out / "data-pretrain", seed, corpus_options)
        labeled = simulate_stage(rec, "simulate labeled", "macho", size.n,
                                 out / "data-labeled", seed + 1, ("band=R",))
        pretrained = pretrain_stage(rec, model, recipe, "macho", corpus, out / "pretrained")
        recon = reconstruction_stage(rec, pretrained, labeled, out / "reconstruction")
        shots = fewshot_stage(rec, pretrained, labeled, out / "fewshot", finetune_recipe,
                              plugin)
        rec.number("reconstruction RMSE (probed points, unweighted)", recon.get("rmse"),
                   reported.get("rmse"), reported.get("where", ""), "reconstruction")
        rec.number("reconstruction R2 (probed points)", recon.get("r2"), reported.get("r2"),
                   reported.get("where", ""), "reconstruction")
        for row in shots["summary"]:
            rec.number(f"few-shot macro F1, {row['spc']} per class (mean of "
                       f"{row['folds']} folds)", row["macro_f1_mean"], None,
                       reported.get("fewshot", ""), "fewshot")
    return run


# ---- ATCAT ----------------------------------------------------------------------------------

def run_atcat(rec: Recorder) -> None:
    """ATCAT sect. 2.5 (next-flux pretraining) and sect. 3.2 (fine-tuning the pretrained
    model on fewer labels with its own objective), scored with the class-balanced F1
    (sect. 2.3.1) and per cut-off in days from the alert (sect. 3.3, Fig. 7)."""
    from lcfm.engine.evaluate import EARLY_METRICS, EvaluateArgs, run_evaluate
    from lcfm.engine.finetune import FinetuneArgs, finetune

    out, size, seed = rec.output, rec.size, rec.args.seed
    corpus = simulate_stage(rec, "simulate pretraining corpus", "elasticc", size.n_pretrain,
                            out / "data-pretrain", seed)
    labeled = simulate_stage(rec, "simulate labeled", "elasticc", size.n,
                             out / "data-labeled", seed + 1)
    pretrained = pretrain_stage(rec, "atcat", "atcat-pretrain", "elasticc", corpus,
                                out / "pretrained")
    tuned = rec.stage("finetune", "finetune", FinetuneArgs(
        data=labeled, model=str(pretrained), output=out / "finetuned",
        recipe="atcat-finetune-small", seed=seed, progress=rec.args.progress,
        baseline=size.baseline, **training_overrides(size, rec.args.scale)), finetune, _test)
    scored = rec.stage("evaluate", "evaluate", EvaluateArgs(
        model=out / "finetuned", data=labeled, output=out / "evaluate",
        cutoffs=list(size.cutoffs), seed=seed, batch_size=size.batch_size or 64,
        baseline=size.baseline), run_evaluate,
        lambda r: {**_classification(r), "early": _early(out / "evaluate" / EARLY_METRICS)})
    rec.number("class-balanced F1 (LC only)", scored.get("class_balanced_f1"), 0.6744,
               "Table 3 (d): pretrained ensemble, 10% of labels; Table 1: 71.79 with all "
               "labels", "evaluate")
    rec.number("macro F1 (LC only)", scored.get("macro_f1"), None, "", "evaluate")
    rec.number("test class-balanced F1 at fine-tuning", (tuned.get("test") or {}).get(
        "class_balanced_f1"), None, "", "finetune")
    for row in _early(out / "evaluate" / EARLY_METRICS):
        rec.number(f"class-balanced F1, {row['days']:g} days after the alert",
                   row["class_balanced_f1"], None, "Fig. 7 (figure only)", "evaluate")


def _early(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    return [{k: row.get(k) for k in ("days", "n_objects", "macro_f1", "class_balanced_f1")}
            for row in report["cutoffs"]]


# ---- sizes --------------------------------------------------------------------------------

ASTRAFIER_SIZES = {
    "test": Size(n=32, steps=3, batch_size=8, tiny=True, mc_samples=2, baseline=False),
    # the paper's 8.8 M-parameter model on 1171-cadence windows: ~15 s a step on one core
    "small": Size(n=160, steps=12, batch_size=8, mc_samples=5),
    # Table 1: 8328 Kepler and 9343 TESS QLP light curves; sect. 5 batch 128; 20 passes
    "paper": Size(n=8328, n_second=9343, mc_samples=20),
}
MASKED_SIZES = {
    "test": Size(n=120, n_pretrain=60, steps=3, batch_size=8, tiny=True, spc=(4,), folds=1,
                 test_per_class=4, adapt_steps=2, classifier_steps=3, baseline=False),
    "small": Size(n=480, n_pretrain=400, steps=40, batch_size=32, spc=(10, 40), folds=2,
                  test_per_class=30, adapt_steps=10, classifier_steps=20),
    # sect. 4: ~1.5 million MACHO light curves, Alcock's 20,894 labeled; sect. 5.1
    "paper": Size(n=20_894, n_pretrain=1_500_000, spc=(20, 100, 500), folds=3,
                  test_per_class=1000, adapt_steps=1000),
}
ATCAT_SIZES = {
    "test": Size(n=80, n_pretrain=40, steps=3, batch_size=8, tiny=True, cutoffs=(8.0, 32.0),
                 baseline=False),
    "small": Size(n=400, n_pretrain=400, steps=40, batch_size=32,
                  cutoffs=(8.0, 16.0, 32.0, 64.0, 128.0)),
    # Table 1: ATAT's split, 1.5M training light curves; Table 3: 10% of them labeled
    "paper": Size(n=165_000, n_pretrain=1_500_000),
}


def _astroco_sizes() -> dict[str, Size]:
    # AstroCo trains a linear head on the frozen encoder: no reconstruction adaptation
    return {k: dataclasses.replace(v, adapt_steps=0) for k, v in MASKED_SIZES.items()}


PROTOCOLS = {
    "astrafier": Protocol(
        ASTRAFIER_PAPER, "kepler + tess_qlp",
        "Kepler-only classification (sect. 6.1), then Kepler + TESS training scored on the "
        "TESS holdout with MC dropout (sect. 6.3)", ASTRAFIER_SIZES, run_astrafier),
    "astromer-2": Protocol(
        ASTROMER_PAPER, "macho",
        "MACHO R pretraining with the moment filter (sect. 4.1), reconstruction RMSE/R2 "
        "on probed points (sect. 5), few-shot SPC x 3 folds after reconstruction "
        "adaptation, frozen encoder + MLP (sect. 5.1)", MASKED_SIZES,
        _masked("astromer-v2", "astromer-2-pretrain", "astromer-2-finetune", "astromer",
                ("band=R", "moment_filter=true"),
                {"rmse": 0.113, "r2": 0.732, "where": "sect. 5 (pretraining)",
                 "fewshot": "Fig. 11 (figure only)"})),
    "astromer-1": Protocol(
        "Astromer 1 (Donoso-Oliva et al., as re-run in Astromer 2)", "macho",
        "MACHO R pretraining of Astromer 1, reconstruction RMSE on probed points, few-shot "
        "SPC x 3 folds, frozen encoder + MLP", MASKED_SIZES,
        _masked("astromer-v1", "astromer-1-pretrain", "astromer-2-finetune", "astromer",
                ("band=R",), {"rmse": 0.148, "where": "Astromer 2 sect. 5; AstroCo Table 1",
                              "fewshot": "Astromer 2 Fig. 11 (figure only)"})),
    "astroco": Protocol(
        ASTROCO_PAPER, "macho",
        "MACHO R pretraining of AstroCo-S (sect. 4, appendix A), reconstruction RMSE/R2 "
        "(Table 1), frozen encoder + linear head on SPC x 3 folds (sect. 4-5.2)",
        _astroco_sizes(),
        _masked("astroco-s", "astroco-s", "astroco-finetune", "astroco", ("band=R",),
                {"rmse": 0.060, "r2": 0.922, "where": "Table 1 (AstroCo-S)",
                 "fewshot": "Fig. 3 (figure only)"})),
    "atcat": Protocol(
        ATCAT_PAPER, "elasticc",
        "ELAsTiCC next-flux pretraining (sect. 2.5), fine-tuning with the model's own "
        "objective (sect. 2.3-2.6, 3.2), class-balanced F1 and early classification from "
        "the alert (sect. 3.3)", ATCAT_SIZES, run_atcat),
}

__all__ = ["PROTOCOLS", "Protocol", "fewshot_stage", "pretrain_stage",
           "reconstruction_stage", "simulate_stage"]
