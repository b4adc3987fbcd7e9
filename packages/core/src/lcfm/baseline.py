"""`lcfm baseline`: a classical classifier on `lcfm.features`, trained and tested on the same
objects as `lcfm finetune` (issue 12, item 3: "a gradient-boosted or random-forest
classifier on those features, same splits as finetune, a metrics.json of the same form as
finetune's"), so a user sees whether a foundation model beats period + amplitude + colours.

The splits are finetune's own: `lcfm.splits.stratified_object_split` on the dataset's row
summaries with `FinetuneArgs`' fractions and seed, through the function finetune itself
calls. The classifier trains on the training objects (validation objects are held out as in
finetune and scored separately), with class weights N / (K N_c) like finetune's weighted
cross-entropy. Scikit-learn's forests and histogram gradient boosting take NaN features
(a band an object lacks, a period of a 3-point curve) natively, so no imputation is made up.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import ConfigError, DataError, PluginNotFoundError
from lcfm.features import FeatureConfig
from lcfm.features_io import extract_features
from lcfm.metrics import classification_report
from lcfm.options import option
from lcfm.shards import read_summaries

__all__ = ["CLASSIFIERS", "BaselineArgs", "baseline", "baseline_macro_f1", "finetune_splits",
           "fit_baseline", "load_features"]

CLASSIFIERS = ("random_forest", "gradient_boosting")
#: features of an object, not of its light curve: kept out of the classifier
ID_COLUMNS = ("object_id", "label")


@dataclass
class BaselineArgs:
    """Options of `lcfm baseline` (one declaration each, `lcfm.options`)."""

    data: Path = option(help="Folder of canonical shards (the data `lcfm finetune` uses).")
    output: Path = option(help="Folder for metrics.json, splits.parquet and "
                          "test_predictions.parquet.")
    features: Path | None = option(None, "Features file of `lcfm features` (default: "
                                   "computed into OUTPUT/features.parquet).")
    classifier: str = option("random_forest", "Classifier on the features.",
                             choices=CLASSIFIERS)
    n_estimators: int = option(500, "Trees (random forest) or boosting iterations.")
    workers: int = option(1, "Processes computing features and fitting the classifier.")
    seed: int | None = option(None, "Split and classifier seed (default: finetune's, so the "
                              "splits are finetune's).")
    test_fraction: float | None = option(None, "Share of objects held out for testing "
                                         "(default: finetune's).")
    validation_fraction: float | None = option(None, "Share of objects for validation "
                                               "(default: finetune's).")
    min_period: float = option(0.1, "Shortest period searched by the Lomb-Scargle "
                               "periodogram, in days (when the features are computed here).")
    progress: bool = option(False, cli=False)


def finetune_splits(data: Path, *, seed: int | None = None, test_fraction: float | None = None,
                    validation_fraction: float | None = None) -> dict[str, pl.DataFrame]:
    """The train / validation / test row summaries `lcfm finetune --data data` uses (with
    the same seed and fractions, finetune's defaults when None)."""
    from lcfm.engine.finetune import FinetuneArgs, _splits

    defaults = FinetuneArgs(data=Path(data), model="", output=Path("."))
    args = FinetuneArgs(
        data=Path(data), model="", output=Path("."),
        seed=defaults.seed if seed is None else int(seed),
        test_fraction=defaults.test_fraction if test_fraction is None else test_fraction,
        validation_fraction=(defaults.validation_fraction if validation_fraction is None
                             else validation_fraction))
    return _splits(read_summaries(data), args)


def load_features(path: Path) -> pl.DataFrame:
    """A features file of `lcfm features`, checked: object_id and label columns, one row per
    object, numeric features."""
    path = Path(path)
    try:
        frame = pl.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such features file") from None
    except Exception as exc:  # polars raises several types for a corrupt file
        raise DataError(f"{path}: unreadable features file ({exc})") from None
    missing = [c for c in ID_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a features file of `lcfm features` (no column "
                        f"{missing[0]!r})")
    duplicated = frame.filter(pl.col("object_id").is_duplicated())
    if duplicated.height:
        raise DataError(f"{path}: object {duplicated['object_id'][0]!r} has more than one "
                        "row")
    for name, dtype in frame.schema.items():
        if name not in ID_COLUMNS and not dtype.is_numeric():
            raise DataError(f"{path}: column {name!r} is {dtype}, not a numeric feature")
    return frame


def _class_names(summaries: pl.DataFrame, train_labels: list[str]) -> list[str]:
    """Classes of the training objects, in the survey's taxonomy order (as finetune)."""
    from lcfm.registry import get_survey

    taxonomy: list[str] = []
    surveys = summaries["survey"].unique().to_list()
    if len(surveys) == 1:
        try:
            taxonomy = list(get_survey(surveys[0]).taxonomy.classes)
        except PluginNotFoundError:
            pass
    present = set(train_labels)
    return [c for c in taxonomy if c in present] + sorted(present - set(taxonomy))


def _matrix(features: pl.DataFrame, ids: pl.Series, columns: list[str], source
            ) -> tuple[np.ndarray, int]:
    """Feature matrix of the objects `ids` (in that order) and how many infinite values
    became NaN (the classifiers take NaN, not inf)."""
    rows = pl.DataFrame({"object_id": ids}).join(features, on="object_id", how="left",
                                                 maintain_order="left")
    absent = rows.filter(pl.col("_present").is_null()) if "_present" in rows.columns else None
    if absent is not None and absent.height:
        raise DataError(f"{source}: no features for object {absent['object_id'][0]!r} "
                        f"({absent.height} objects of the split lack them)")
    x = rows.select(columns).to_numpy().astype(np.float64)
    infinite = ~np.isfinite(x) & ~np.isnan(x)
    x[infinite] = np.nan
    return x, int(infinite.sum())


def _classifier(name: str, n_estimators: int, seed: int, workers: int):
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=n_estimators, class_weight="balanced",
                                      n_jobs=workers, random_state=seed)
    if name == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=n_estimators, learning_rate=0.05,
                                              class_weight="balanced", early_stopping=False,
                                              random_state=seed)
    raise ConfigError(f"--classifier {name!r}: expected one of {', '.join(CLASSIFIERS)}")


def fit_baseline(features: pl.DataFrame, parts: dict[str, pl.DataFrame], *,
                 classifier: str = "random_forest", n_estimators: int = 500, seed: int = 0,
                 workers: int = 1, source: str = "features") -> dict:
    """Train on the objects of parts["train"] and score the others; `parts` are split
    frames with object_id and label (rows or objects). Returns the classifier, class names,
    feature columns and, per held-out split, (object ids, true class ids, probabilities)."""
    columns = [c for c in features.columns if c not in ID_COLUMNS]
    features = features.with_columns(_present=pl.lit(True))
    objects = {name: part.filter(pl.col("label").is_not_null()).group_by(
        "object_id", maintain_order=True).agg(pl.col("label").first()).sort("object_id")
        for name, part in parts.items()}
    train = objects["train"]
    class_names = _class_names(parts["train"], train["label"].to_list()) \
        if "survey" in parts["train"].columns else sorted(set(train["label"].to_list()))
    if len(class_names) < 2:
        raise DataError(f"{source}: training needs at least two classes, found {class_names}")
    index = {c: i for i, c in enumerate(class_names)}
    x, infinite = _matrix(features, train["object_id"], columns, source)
    # a feature with no value on any training object (a colour when every object has one
    # band) tells nothing, and histogram gradient boosting cannot bin it: left out, listed
    empty = np.isnan(x).all(axis=0)
    dropped = [c for c, e in zip(columns, empty, strict=True) if e]
    columns = [c for c, e in zip(columns, empty, strict=True) if not e]
    x = x[:, ~empty]
    model = _classifier(classifier, n_estimators, seed, workers)
    model.fit(x, np.array([index[c] for c in train["label"]]))
    result = {"model": model, "classes": class_names, "columns": columns,
              "features_without_training_values": dropped, "infinite_values": infinite,
              "objects": {n: o.height for n, o in objects.items()},
              "scored": {}}
    for name, part in objects.items():
        if name == "train":
            continue
        known = part.filter(pl.col("label").is_in(class_names))
        if known.height == 0:
            continue
        x, infinite = _matrix(features, known["object_id"], columns, source)
        result["infinite_values"] += infinite
        probs = np.zeros((known.height, len(class_names)))
        probs[:, model.classes_] = model.predict_proba(x)
        result["scored"][name] = (known["object_id"], np.array([index[c] for c in
                                                                known["label"]]), probs)
    return result


def baseline_macro_f1(data: Path, parts: dict[str, pl.DataFrame], *,
                      features: pl.DataFrame | Path | None = None, workers: int = 1,
                      classifier: str = "random_forest", n_estimators: int = 500,
                      seed: int = 0) -> float | None:
    """Held-out (parts["test"]) macro F1 of the classical baseline trained on parts["train"]:
    the number `finetune` and `evaluate` reports show as `baseline_macro_f1`. `features` is
    a frame or file of `lcfm features`; None computes them from `data` (all objects)."""
    if features is None:
        with tempfile.TemporaryDirectory(prefix="lcfm-features-") as tmp:
            extract_features(data, Path(tmp) / "features.parquet", workers=workers)
            features = load_features(Path(tmp) / "features.parquet")
    elif not isinstance(features, pl.DataFrame):
        features = load_features(features)
    fitted = fit_baseline(features, parts, classifier=classifier, n_estimators=n_estimators,
                          seed=seed, workers=workers, source=str(data))
    if "test" not in fitted["scored"]:
        return None
    _, y, probs = fitted["scored"]["test"]
    return classification_report(y, probs, fitted["classes"])["macro_f1"]


def baseline(args: BaselineArgs) -> dict:
    """`lcfm baseline`: features (computed or read), finetune's splits, the classifier;
    writes metrics.json, splits.parquet, test_predictions.parquet (and features.parquet
    when computed here) into `args.output`. Returns the metrics."""
    if args.classifier not in CLASSIFIERS:
        raise ConfigError(f"--classifier {args.classifier!r}: expected one of "
                          f"{', '.join(CLASSIFIERS)}")
    if args.n_estimators < 1 or args.workers < 1:
        raise ConfigError("--n-estimators and --workers must be at least 1")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output}: is an existing file; give a folder")
    started = time.perf_counter()
    # a features file given is checked first: a wrong file fails before the engine (torch)
    # is imported for finetune's splits
    features = load_features(args.features) if args.features is not None else None
    from lcfm.engine.evaluate import SPLITS_FILE, write_splits

    output.mkdir(parents=True, exist_ok=True)
    parts = finetune_splits(args.data, seed=args.seed, test_fraction=args.test_fraction,
                            validation_fraction=args.validation_fraction)
    feature_summary = None
    args_features = Path(args.features) if args.features else output / "features.parquet"
    if features is None:
        feature_summary = extract_features(args.data, args_features, workers=args.workers,
                                           config=FeatureConfig(min_period=args.min_period),
                                           progress=args.progress)
        features = load_features(args_features)
    seed = args.seed if args.seed is not None else _finetune_seed()
    fitted = fit_baseline(features, parts, classifier=args.classifier,
                          n_estimators=args.n_estimators, seed=seed, workers=args.workers,
                          source=str(args_features))
    write_splits(output, parts)
    reports = {name: classification_report(y, probs, fitted["classes"])
               for name, (_, y, probs) in fitted["scored"].items()}
    if "test" in fitted["scored"]:
        ids, y, probs = fitted["scored"]["test"]
        names = np.array(fitted["classes"])
        pl.DataFrame({"object_id": ids, "label": names[y], "predicted": names[probs.argmax(1)],
                      **{f"p_{c}": probs[:, i] for i, c in enumerate(fitted["classes"])}}
                     ).write_parquet(output / "test_predictions.parquet")
    importances = getattr(fitted["model"], "feature_importances_", None)
    top = ([{"feature": fitted["columns"][i], "importance": float(importances[i])}
            for i in np.argsort(importances)[::-1][:20]] if importances is not None else None)
    surveys = parts["train"]["survey"].unique().to_list()
    summary = {
        "model": args.classifier, "plugin": "baseline",
        "survey": surveys[0] if len(surveys) == 1 else surveys,
        "classes": fitted["classes"],
        **{f"{name}_light_curves": part.height for name, part in parts.items()},
        **{f"{name}_objects": part["object_id"].n_unique() for name, part in parts.items()},
        "splits": SPLITS_FILE,
        "features": str(args_features), "n_features": len(fitted["columns"]),
        "non_finite_feature_values": fitted["infinite_values"],
        "features_without_training_values": fitted["features_without_training_values"],
        "validation": _brief(reports.get("validation")),
        "test": _brief(reports.get("test")),
        "test_report": ({k: reports["test"][k] for k in ("per_class", "confusion_matrix")}
                        if "test" in reports else None),
        "feature_importances": top,
        "feature_summary": feature_summary,
        "seconds": time.perf_counter() - started,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
    }
    (output / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _brief(report: dict | None) -> dict | None:
    """The four numbers finetune's metrics.json gives per split."""
    if report is None:
        return None
    return {k: report[k] for k in ("accuracy", "macro_f1", "class_balanced_f1", "ece")}


def _finetune_seed() -> int:
    from lcfm.engine.finetune import FinetuneArgs

    return FinetuneArgs(data=Path("."), model="", output=Path(".")).seed
