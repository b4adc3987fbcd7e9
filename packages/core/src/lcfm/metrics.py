"""Classification metrics: confusion matrix, precision/recall/F1, ATCAT's class-balanced
F1, expected calibration error and per-class thresholds; reconstruction RMSE and R2 on
probed points. Pure numpy, so a test can check every number against one computed by hand."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """m[true, predicted] (rows: true class, columns: predicted class)."""
    m = np.zeros((n_classes, n_classes), dtype=float)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)),
              1.0 if weights is None else np.asarray(weights, dtype=float))
    return m


def scores_from_confusion(m: np.ndarray) -> dict:
    """Per-class precision, recall, F1 (0 where undefined) and their macro averages over
    the classes present in the truth."""
    tp = np.diag(m)
    predicted, actual = m.sum(axis=0), m.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = actual > 0
    return {
        "precision": precision, "recall": recall, "f1": f1, "support": actual,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
    }


def class_balanced_weights(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    """w(x, y) proportional to 1 / |{examples of class y}| (ATCAT sect. 2.3.1)."""
    counts = np.bincount(y_true, minlength=n_classes).astype(float)
    return 1.0 / counts[y_true]


def classification_report(y_true, probabilities: np.ndarray, class_names: list[str]) -> dict:
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=float)
    n = len(class_names)
    y_pred = probabilities.argmax(axis=1)
    m = confusion_matrix(y_true, y_pred, n)
    scores = scores_from_confusion(m)
    balanced = scores_from_confusion(
        confusion_matrix(y_true, y_pred, n, class_balanced_weights(y_true, n)))
    calibration = reliability(y_true, probabilities)
    return {
        "n": int(y_true.size),
        "accuracy": float((y_pred == y_true).mean()) if y_true.size else 0.0,
        "macro_precision": scores["macro_precision"],
        "macro_recall": scores["macro_recall"],
        "macro_f1": scores["macro_f1"],
        "class_balanced_f1": balanced["macro_f1"],
        "per_class": {
            name: {"precision": float(scores["precision"][i]), "recall": float(scores["recall"][i]),
                   "f1": float(scores["f1"][i]), "support": int(scores["support"][i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": {"classes": list(class_names), "rows_true_columns_predicted":
                             m.astype(int).tolist()},
        "ece": calibration["ece"],
        "reliability": calibration,
        "thresholds": threshold_table(y_true, probabilities, class_names),
    }


def reliability(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> dict:
    """Top-label reliability: accuracy and mean confidence per confidence bin, and the
    expected calibration error sum_b |B|/N |acc(B) - conf(B)|."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = index == b
        count = int(sel.sum())
        acc = float(correct[sel].mean()) if count else None
        conf = float(confidence[sel].mean()) if count else None
        if count:
            ece += count / len(y_true) * abs(acc - conf)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                     "accuracy": acc, "confidence": conf})
    return {"ece": float(ece), "bins": bins}


def threshold_table(y_true, probabilities, class_names,
                    thresholds=(0.5, 0.6, 0.7, 0.75, 0.8, 0.9)) -> list[dict]:
    """Per class and probability threshold: how many objects pass, and the precision and
    recall of "predicted class c with probability >= t" (ASTRAFier recommends 0.75-0.8)."""
    rows = []
    y_pred = probabilities.argmax(axis=1)
    top = probabilities.max(axis=1)
    for c, name in enumerate(class_names):
        is_c = y_true == c
        for t in thresholds:
            selected = (y_pred == c) & (top >= t)
            tp = int((selected & is_c).sum())
            rows.append({"class": name, "threshold": t, "selected": int(selected.sum()),
                         "precision": tp / int(selected.sum()) if selected.any() else None,
                         "recall": tp / int(is_c.sum()) if is_c.any() else None})
    return rows


def reconstruction_metrics(predictions, targets, probe_mask) -> dict:
    """Unweighted reconstruction scores on the probed points of masked-reconstruction
    windows (issue 11, item 4; Astromer 2 reports RMSE 0.113 and R2 0.732 on MACHO,
    AstroCo Table 1 the same pair for its models).

    `predictions`, `targets` and `probe_mask` are (windows, time) arrays (a 1-D array is one
    window); only points where `probe_mask` is true count, padding must be false there.

    * `rmse`: sqrt(sum of squared residuals / number of probed points), AstroCo eq. 3.
    * `rmse_window_mean`: squared residuals averaged per window, then over the windows that
      have probed points, then rooted -- the published Astromer code's RMSE (and the
      unweighted form of lcfm's eq. 4 loss). It equals `rmse` when every window has the
      same number of probed points.
    * `r2`: 1 - SS_res / SS_tot over all probed points, SS_tot taken about each window's
      mean probed target, as the published Astromer code computes R2 (windows are
      normalised one by one, so the window mean is the baseline a model must beat).

    No uncertainty weights: eq. 5 weights are a training device, the papers report these
    scores unweighted. NaN where undefined (no probed point; SS_tot = 0).
    """
    return reconstruction_from_stats(reconstruction_window_stats(predictions, targets,
                                                                  probe_mask))


def reconstruction_window_stats(predictions, targets, probe_mask) -> np.ndarray:
    """Per window with probed points: (number of probed points, sum of squared residuals,
    sum of squares of the targets about the window's mean probed target), shape
    (windows, 3). Sums over windows give `reconstruction_metrics`, so windows scored in
    several batches, shards or processes combine exactly (`reconstruction_from_stats`)."""
    y_hat = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    y = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    probe = np.atleast_2d(np.asarray(probe_mask, dtype=bool))
    if not y_hat.shape == y.shape == probe.shape:
        raise ValueError(f"predictions {y_hat.shape}, targets {y.shape} and probe mask "
                         f"{probe.shape} must have one shape")
    probe = probe & np.isfinite(y) & np.isfinite(y_hat)
    n_probed = probe.sum(axis=1)
    squared = np.where(probe, (y_hat - y) ** 2, 0.0).sum(axis=1)
    window_mean = np.where(probe, y, 0.0).sum(axis=1) / np.maximum(n_probed, 1)
    total = np.where(probe, (y - window_mean[:, None]) ** 2, 0.0).sum(axis=1)
    keep = n_probed > 0
    return np.stack([n_probed[keep].astype(np.float64), squared[keep], total[keep]], axis=1)


def reconstruction_from_stats(stats: np.ndarray) -> dict:
    """`reconstruction_metrics` from the stacked `reconstruction_window_stats` of any
    number of windows."""
    stats = np.asarray(stats, dtype=np.float64).reshape(-1, 3)
    n_points = int(stats[:, 0].sum())
    if n_points == 0:
        return {"rmse": float("nan"), "rmse_window_mean": float("nan"), "r2": float("nan"),
                "n_points": 0, "n_windows": 0}
    squared, total = stats[:, 1].sum(), stats[:, 2].sum()
    return {
        "rmse": float(np.sqrt(squared / n_points)),
        "rmse_window_mean": float(np.sqrt((stats[:, 1] / stats[:, 0]).mean())),
        "r2": float(1.0 - squared / total) if total > 0 else float("nan"),
        "n_points": n_points,
        "n_windows": int(stats.shape[0]),
    }
