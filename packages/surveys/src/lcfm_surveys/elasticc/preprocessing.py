"""ELAsTiCC preprocessing steps of ATCAT (paper 003, sect. 2.1.1).

"For each object (grouped by SNID), we find t_alert, when the alert flag is present, and
include observations (light curve points) up to 30 days before this alert flag. Times are
reset so that t=0 is the time of the first point." The readers put t_alert (MJD of the
first alert) in meta["alert_mjd"]; these steps use it. Band -> central wavelength is the
survey's `bands` table (bands.py), and flux with its error is kept as is.
"""

from __future__ import annotations

import math

import numpy as np
from lcfm.preprocess import filter_points
from lcfm.report import IngestReport
from lcfm.survey import Row, Step


def alert_window(days_before: float, *, drop_without_alert: bool = False,
                 trim_after_last_detection: bool = False) -> Step:
    """Keep observations from `days_before` days before the first alert on.

    A light curve with no alert (no detection flag at all) is kept whole, or rejected as
    "no alert or detection" when `drop_without_alert`. `trim_after_last_detection`
    also drops observations after the last detection, as ATAT's preprocessing does.
    """
    early = f"more than {days_before:g} days before the first alert"
    late = "after the last detection"

    def step(row: Row, report: IngestReport) -> Row | None:
        meta = row.get("meta") or {}
        alert = float(meta.get("alert_mjd", math.nan))
        if not math.isfinite(alert):
            if drop_without_alert:
                report.reject_light_curve("no alert or detection", row["time"].size)
                return None
            return row
        row = filter_points(early, lambda r: r["time"] >= alert - days_before)(row, report)
        last = float(meta.get("last_detection_mjd", math.nan))
        if trim_after_last_detection and math.isfinite(last):
            row = filter_points(late, lambda r: r["time"] <= last)(row, report)
        return row

    return step


def shift_time_to_first_point() -> Step:
    """t -> t - t[0], so the first kept point is at t = 0 (ATCAT sect. 2.1.1).

    meta["time_offset"] keeps the MJD of t = 0 and meta["t_alert"] the first alert in the
    shifted time (NaN without an alert), e.g. for early-classification cut-offs.
    """

    def step(row: Row, report: IngestReport) -> Row:
        start = float(row["time"][0]) if row["time"].size else 0.0
        meta = dict(row.get("meta") or {})
        meta["time_offset"] = start
        meta["t_alert"] = float(meta.get("alert_mjd", math.nan)) - start
        return {**row, "time": np.asarray(row["time"], dtype=np.float64) - start,
                "meta": meta}

    return step
