"""Reusable, vectorised preprocessing steps for survey plugins.

Each factory returns a step `(row, report) -> row | None` that counts every point or light
curve it rejects under a named reason. Survey plugins compose them into their chain.
"""

from __future__ import annotations

import numpy as np

from lcfm.report import IngestReport
from lcfm.survey import Row, Step

SEQUENCES = ("time", "value", "error", "band")


def select(row: Row, keep: np.ndarray) -> Row:
    """The row restricted to the observations where `keep` is True."""
    return {**row, **{k: row[k][keep] for k in SEQUENCES}}


def filter_points(reason: str, predicate) -> Step:
    """Drop the points where `predicate(row)` (a boolean array) is False."""

    def step(row: Row, report: IngestReport) -> Row:
        keep = np.asarray(predicate(row), dtype=bool)
        report.reject_points(reason, int((~keep).sum()))
        return row if keep.all() else select(row, keep)

    return step


def drop_nonfinite() -> Step:
    return filter_points("non-finite time, value or error", lambda r: np.isfinite(r["time"])
                         & np.isfinite(r["value"]) & np.isfinite(r["error"]))


def error_range(low: float, high: float, *, reason: str | None = None) -> Step:
    """Keep points with low <= error <= high (Astromer 2, sect. 4.1: 0 <= e <= 1 mag)."""
    reason = reason or f"uncertainty outside [{low:g}, {high:g}]"
    return filter_points(reason, lambda r: (r["error"] >= low) & (r["error"] <= high))


def percentile_clip(low: float = 1.0, high: float = 99.0) -> Step:
    """Drop values below the `low` or above the `high` percentile of each light curve
    (Astromer 2, sect. 4.1: "discarding the 1st and 99th percentiles")."""

    def predicate(row: Row) -> np.ndarray:
        values = row["value"]
        if values.size == 0:
            return np.ones(0, dtype=bool)
        lo, hi = np.percentile(values, [low, high])
        return (values >= lo) & (values <= hi)

    return filter_points(f"outside the {low:g}-{high:g} percentile range", predicate)


def sort_by_time() -> Step:
    """Sort observations in time and drop exact duplicates (same time and band)."""

    def step(row: Row, report: IngestReport) -> Row:
        order = np.lexsort((row["band"], row["time"]))
        row = {**row, **{k: row[k][order] for k in SEQUENCES}}
        same = np.zeros(row["time"].size, dtype=bool)
        same[1:] = (np.diff(row["time"]) == 0) & (row["band"][1:] == row["band"][:-1])
        report.reject_points("duplicate time in the same band", int(same.sum()))
        return select(row, ~same) if same.any() else row

    return step


def min_points(n: int) -> Step:
    """Reject light curves with fewer than `n` observations left."""

    def step(row: Row, report: IngestReport) -> Row | None:
        size = row["time"].size
        if size < n:
            reason = "empty light curve" if size == 0 else f"fewer than {n} observations"
            report.reject_light_curve(reason, size)
            return None
        return row

    return step
