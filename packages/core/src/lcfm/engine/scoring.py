"""What `lcfm evaluate` reports beside the per-object classification metrics: the same
metrics per light curve, Monte-Carlo dropout spread, and the classical baseline's held-out
macro F1 on the same objects (issue 11, item 4; issue 12, item 3).

* Per light curve and per object (issue 11, item 4): a Kepler star's quarters or a
  survey's bands are several light curves of one object. `per_light_curve` scores each row
  on its own probabilities; `per_object` scores each object once, its rows' probabilities
  averaged with weights = observations (`lcfm.engine.catalog`), as the catalog of
  `lcfm predict` gives them. The papers report per light curve where one object is one
  light curve (ELAsTiCC, MACHO, ASTRAFier's TESS sectors), so both are given, named.
* `baseline_macro_f1` (issue 12, item 3): `lcfm.baseline.baseline_macro_f1` trained on the
  model's training objects (the model folder's splits.parquet, else the training part of
  the split file given to evaluate) and scored on exactly the objects the model is scored
  on; null, with `baseline_reason`, when it cannot be computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import LcfmError
from lcfm.metrics import classification_report

ROW_SCHEMA = {"object_id": pl.String, "label": pl.String, "n_observations_used": pl.Int64,
              "probabilities": pl.List(pl.Float64)}


def row_table(frame: pl.DataFrame, probs: np.ndarray, observations: np.ndarray
              ) -> pl.DataFrame:
    """One entry per light curve: object_id, label, observations used, probabilities."""
    return pl.DataFrame({"object_id": frame["object_id"], "label": frame["label"],
                         "n_observations_used": np.asarray(observations, np.int64),
                         "probabilities": np.asarray(probs, np.float64).tolist()},
                        schema=ROW_SCHEMA)


def brief(report: dict) -> dict:
    """The headline numbers of a `classification_report` and its per-class table."""
    keys = ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1",
            "class_balanced_f1", "ece", "per_class", "confusion_matrix")
    return {k: report[k] for k in keys}


def per_light_curve(rows: pl.DataFrame, classes: list[str]) -> dict:
    """`brief` of the classification report over light curves (`row_table` rows)."""
    y = np.array([classes.index(label) for label in rows["label"]])
    probs = np.array(rows["probabilities"].to_list(), dtype=np.float64).reshape(-1,
                                                                              len(classes))
    return {"light_curves": rows.height, **brief(classification_report(y, probs, classes))}


def mc_spread(object_passes: np.ndarray) -> dict:
    """Monte-Carlo dropout spread of (objects, passes, classes) probabilities: the mean
    over objects of the standard deviation over passes of the predicted class's
    probability, and its largest value."""
    mean = object_passes.mean(1)
    top = mean.argmax(1)
    spread = object_passes.std(1)[np.arange(top.size), top]
    return {"passes": int(object_passes.shape[1]),
            "mean_std_predicted_class": float(spread.mean()) if spread.size else None,
            "max_std_predicted_class": float(spread.max()) if spread.size else None}


def baseline_score(data: Path, summaries: pl.DataFrame, train_ids: pl.Series | None,
                   scored_ids: list[str], *, features: Path | None = None,
                   source: str = "") -> dict:
    """{"baseline_macro_f1": F1 or None, "baseline_reason": why None (else None),
    "baseline_train_objects", "baseline_test_objects"} (module docstring)."""
    result = {"baseline_macro_f1": None, "baseline_reason": None,
              "baseline_train_objects": 0, "baseline_test_objects": len(scored_ids)}
    if train_ids is None:
        result["baseline_reason"] = ("no record of the model's training objects (no "
                                     f"splits.parquet in {source} and no split file)")
        return result
    labeled = summaries.filter(pl.col("label").is_not_null())
    train = labeled.filter(pl.col("object_id").is_in(train_ids.cast(pl.String).implode()))
    result["baseline_train_objects"] = train["object_id"].n_unique()
    if train.height == 0:
        result["baseline_reason"] = (f"none of the model's training objects is in {data}, "
                                     "so the baseline has nothing to train on")
        return result
    test = labeled.filter(pl.col("object_id").is_in(pl.Series(scored_ids,
                                                               dtype=pl.String).implode()))
    from lcfm.baseline import baseline_macro_f1

    try:
        score = baseline_macro_f1(data, {"train": train, "test": test}, features=features)
    except (LcfmError, ImportError, ValueError) as exc:
        result["baseline_reason"] = f"{type(exc).__name__}: {exc}"
        return result
    if score is None:
        result["baseline_reason"] = "no held-out object has a class the baseline trained on"
    result["baseline_macro_f1"] = score
    return result
