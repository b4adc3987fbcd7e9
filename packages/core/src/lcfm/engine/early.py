"""Early classification (ATCAT sect. 2.6 and 3.3): class probabilities at given days since
the first alert, after each observation, and their scores.

At a cut-off of d days a light curve is cut to its points up to the reference time + d and
classified like any light curve (`lcfm.engine.predict.predict_frame`: consecutive windows,
observation-weighted), which is what the model would have said at that moment, for any
model and any length; ATAT's and ATCAT's early-detection curves (ATCAT Figure 7) score the
light curves truncated at each cut-off the same way. Light curves with no point yet are
left out. Without cut-offs, a causal model (its output at a point depends only on that
point and earlier ones) gives the prediction after every observation from one forward pass
(`step_probabilities`); that table covers each light curve's first `inference_window`
points (ATCAT: 243, the longest ELAsTiCC light curve).

Cut-offs count days from the first alert where the survey records one, else from the
first observation (`reference_times`): ATCAT's Figure 7 (after ATAT) scores ELAsTiCC "days
since the first alert", and ELAsTiCC rows keep up to 30 days of observations before it
(sect. 2.1.1), which a count from the first point would add to every cut-off. ELAsTiCC
rows carry the alert in meta["t_alert"] (days in the row's own time) and meta["alert_mjd"]
with meta["time_offset"] (`lcfm_surveys.elasticc.preprocessing`); a row without a finite
alert (no detection) counts from its first observation, and the table says which.

`early_metrics` scores a cut-off table with macro F1 and ATCAT's class-balanced F1
(sect. 2.3.1), one prediction per object (its light curves' probabilities weighted by the
points each has seen); objects with no point yet at a cut-off are counted, not scored.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import torch

from lcfm.data import LightCurveDataset
from lcfm.engine.batching import evaluation_batches, to_device
from lcfm.engine.predict import class_probabilities
from lcfm.exceptions import ConfigError
from lcfm.metrics import classification_report

ALERT, FIRST = "alert", "first_observation"


def _meta_field(frame: pl.DataFrame, name: str) -> np.ndarray:
    meta = frame["meta"] if "meta" in frame.columns else None
    if meta is None or not isinstance(meta.dtype, pl.Struct) or name not in [
            f.name for f in meta.dtype.fields]:
        return np.full(frame.height, np.nan)
    values = meta.struct.field(name).cast(pl.Float64, strict=False)
    return values.fill_null(float("nan")).to_numpy().astype(np.float64)


def reference_times(frame: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per row: the time (in the row's own time axis) cut-offs count from, and what it is
    ("alert" or "first_observation"), as the module docstring says."""
    alert = _meta_field(frame, "t_alert")
    mjd, offset = _meta_field(frame, "alert_mjd"), _meta_field(frame, "time_offset")
    from_mjd = mjd - np.where(np.isfinite(offset), offset, 0.0)
    alert = np.where(np.isfinite(alert), alert, from_mjd)
    first = frame["time"].list.first().cast(pl.Float64).fill_null(0.0).to_numpy()
    has_alert = np.isfinite(alert)
    return np.where(has_alert, alert, first), [ALERT if a else FIRST for a in has_alert]


def _table(records: dict, probabilities: list, classes: list[str]) -> pl.DataFrame:
    width = len(probabilities[0]) if probabilities else len(classes)
    p = np.array(probabilities, dtype=np.float64).reshape(-1, width)
    table = pl.DataFrame({**records,
                          "predicted_class": [classes[i] for i in
                                              p[:, :len(classes)].argmax(1)]},
                         schema_overrides={"label": pl.String, "object_id": pl.String,
                                           "reference": pl.String, "days": pl.Float64,
                                           "points": pl.Int64})
    names = [f"p_{c}" for c in classes] + (["p_unsure"] if width > len(classes) else [])
    return table.with_columns([pl.Series(n, p[:, i]) for i, n in enumerate(names)])


def truncate(frame: pl.DataFrame, reference: np.ndarray, days: float) -> pl.DataFrame:
    """Each row cut to its points at or before reference + `days` (rows are time-sorted);
    rows with no such point are dropped. Adds the column `_points` (points kept)."""
    dataset_time = frame["time"].explode().to_numpy()
    offsets = np.concatenate([[0], np.cumsum(frame["time"].list.len().to_numpy(),
                                             dtype=np.int64)])
    keep = np.array([np.searchsorted(dataset_time[a:b], ref + days, side="right")
                     for a, b, ref in zip(offsets[:-1], offsets[1:], reference, strict=True)],
                    dtype=np.int64)
    cut = frame.with_columns(_points=pl.Series(keep))
    cut = cut.with_columns([pl.col(c).list.head(pl.col("_points"))
                            for c in ("time", "value", "error", "band")])
    return cut.filter(pl.col("_points") > 0)


def cutoff_probabilities(model, plugin, frame: pl.DataFrame, collate, classes: list[str],
                         cutoffs: list[float], batch_size: int = 64) -> pl.DataFrame:
    """Long table, one row per light curve and cut-off with a point by then: object_id,
    label, reference ("alert" or "first_observation"), days (the cut-off), points seen,
    predicted class, p_<class> (and p_unsure for a model with an "unsure" output)."""
    from lcfm.engine.predict import predict_frame

    reference, kinds = reference_times(frame)
    frame = frame.with_columns(_reference=pl.Series(kinds, dtype=pl.String))
    records: dict[str, list] = {"object_id": [], "label": [], "reference": [], "days": [],
                                "points": []}
    probabilities = []
    for days in cutoffs:
        cut = truncate(frame, reference, float(days))
        if cut.height == 0:
            continue
        rows = predict_frame(model, plugin, cut, collate, len(classes), batch_size)
        probs = rows.probs if rows.unsure is None else np.concatenate(
            [rows.probs, rows.unsure.mean(0)[:, None]], 1)
        records["object_id"] += cut["object_id"].to_list()
        records["label"] += cut["label"].to_list()
        records["reference"] += cut["_reference"].to_list()
        records["days"] += [float(days)] * cut.height
        records["points"] += cut["_points"].to_list()
        probabilities += list(probs)
    return _table(records, probabilities, classes)


@torch.no_grad()
def step_probabilities(model, plugin, frame: pl.DataFrame, collate, classes: list[str],
                       batch_size: int = 64) -> pl.DataFrame:
    """A causal model's probabilities after every observation of each light curve's first
    window, in the columns of `cutoff_probabilities` (days: the point's time since the
    reference)."""
    if not getattr(plugin, "causal", False):
        raise ConfigError(f"early classification after every observation needs a causal "
                          f"model; {plugin.name!r} attends to future points")
    model.eval()
    device = next(model.parameters()).device
    dataset = LightCurveDataset(frame)
    reference, kinds = reference_times(frame)
    records: dict[str, list] = {"object_id": [], "label": [], "reference": [], "days": [],
                                "points": []}
    probabilities = []
    row = 0
    for batch in evaluation_batches(dataset, batch_size, collate):
        batch.pop("labels", None)
        batch = to_device(batch, device)
        probs = class_probabilities(model(**batch, return_step_logits=True), len(classes),
                                    step=True).cpu().numpy()
        valid = batch["attention_mask"].bool().sum(1).cpu().numpy()
        for i in range(probs.shape[0]):
            # the collator (train=False) keeps a row's first points, one token each
            start, n = dataset.offsets[row], int(valid[i])
            t = dataset.time[start:start + n] - reference[row]
            records["object_id"] += [dataset.object_id[row]] * n
            records["label"] += [dataset.label[row]] * n
            records["reference"] += [kinds[row]] * n
            records["days"] += t.tolist()
            records["points"] += list(range(1, n + 1))
            probabilities += list(probs[i][:n])
            row += 1
    return _table(records, probabilities, classes)


def early_probabilities(model, plugin, frame: pl.DataFrame, collate, classes: list[str],
                        cutoffs: list[float] | None = None, batch_size: int = 64
                        ) -> pl.DataFrame:
    """`cutoff_probabilities` with `cutoffs`, else `step_probabilities`."""
    if cutoffs:
        return cutoff_probabilities(model, plugin, frame, collate, classes, cutoffs,
                                    batch_size)
    return step_probabilities(model, plugin, frame, collate, classes, batch_size)


def early_metrics(table: pl.DataFrame, classes: list[str], cutoffs: list[float],
                  objects: dict[str, str]) -> dict:
    """Scores per cut-off of an `early_probabilities` table made with `cutoffs`, over the
    labeled `objects` (object_id -> label, labels among `classes`): per cut-off n_objects
    scored, n_objects_without_points, accuracy, macro_f1 and class_balanced_f1, plus how
    many objects count from an alert and how many from their first observation."""
    columns = [f"p_{c}" for c in classes]
    table = table.filter(pl.col("object_id").is_in(list(objects)))
    counted = (table.group_by("object_id").agg(pl.col("reference").first())
               ["reference"].value_counts())
    by_kind = dict(zip(counted["reference"].to_list(), counted["count"].to_list(),
                       strict=True)) if counted.height else {}
    results = []
    for cutoff in cutoffs:
        at = table.filter(pl.col("days") == float(cutoff))
        per_object = (at.group_by("object_id", maintain_order=True)
                      .agg([(pl.col(c) * pl.col("points")).sum() / pl.col("points").sum()
                            for c in columns]))
        entry = {"days": float(cutoff), "n_objects": per_object.height,
                 "n_objects_without_points": len(objects) - per_object.height}
        if per_object.height:
            y = np.array([classes.index(objects[o]) for o in per_object["object_id"]])
            report = classification_report(y, per_object.select(columns).to_numpy(), classes)
            entry.update({k: report[k] for k in ("accuracy", "macro_f1", "class_balanced_f1")})
        else:
            entry.update(accuracy=None, macro_f1=None, class_balanced_f1=None)
        results.append(entry)
    return {"counted_from": {"alert": int(by_kind.get(ALERT, 0)),
                             "first_observation": int(by_kind.get(FIRST, 0))},
            "n_objects": len(objects), "classes": list(classes), "cutoffs": results}


def write_early_metrics(path, table: pl.DataFrame, classes: list[str], cutoffs: list[float],
                        objects: dict[str, str], **extra) -> dict:
    """`early_metrics` (with `extra` entries) written as JSON to `path`; returns it."""
    from lcfm.dataset_lock import write_text_atomic

    report = {**early_metrics(table, classes, cutoffs, objects), **extra}
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
    return report
