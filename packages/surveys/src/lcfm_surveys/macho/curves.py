"""Building blocks shared by the MACHO readers.

A reader first turns a native file into `RawCurve`s (one star in one band, every raw point
kept, with a mask per missing-value reason), then `CurveEmitter` counts each curve in the
ingest report, drops the missing points under their reason and yields canonical rows. An
empty curve inside an otherwise good file is counted as rejected ("empty light curve"); a
file whose curves are all empty is an error (`CurveEmitter.finish`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.report import IngestReport

from lcfm_surveys.macho.taxonomy import META_KEYS, REASON_EMPTY, SENTINEL, SURVEY_NAME

#: "F.T.S", optionally written "lc_F.T.S" and/or followed by ".B" / ".R"
MACHO_ID = re.compile(r"^(?:lc_)?(\d+)\.(\d+)\.(\d+)(?:\.([BR]))?$")


@dataclass
class RawCurve:
    """One star in one band as read, before any point is dropped."""

    object_id: str
    band: str
    time: np.ndarray  # (n,) float64, MJD
    mag: np.ndarray  # (n,) float64
    err: np.ndarray  # (n,) float64
    label: str | None = None
    meta: dict = field(default_factory=dict)
    #: reason -> boolean mask of points missing for that reason (first reason wins)
    missing: dict[str, np.ndarray] = field(default_factory=dict)

    def valid_mask(self) -> np.ndarray:
        keep = np.ones(self.time.size, dtype=bool)
        for mask in self.missing.values():
            keep &= ~mask
        return keep


def sentinel_mask(mag: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Points whose magnitude or error carries the MACHO -99 "no measurement" value."""
    return (mag == SENTINEL) | (err == SENTINEL)


def make_meta(fmt: str, **values) -> dict:
    """`meta` with every key of META_KEYS present (None when the format does not know it)."""
    unknown = set(values) - set(META_KEYS)
    if unknown:  # a programming error, not a user error
        raise ValueError(f"unknown meta keys {sorted(unknown)}")
    return {**dict.fromkeys(META_KEYS), **values, "format": fmt}


class CurveEmitter:
    """Counts raw curves in the report, drops missing points, yields canonical rows."""

    def __init__(self, source, report: IngestReport):
        self.source, self.report = source, report
        self.n_curves = 0
        self.n_written = 0
        self.n_points = 0

    def emit(self, curve: RawCurve) -> Iterator[dict]:
        n = int(curve.time.size)
        self.n_curves += 1
        self.n_points += n
        self.report.read(n)
        keep = np.ones(n, dtype=bool)
        for reason, mask in curve.missing.items():
            self.report.reject_points(reason, int((mask & keep).sum()))
            keep &= ~mask
        n_left = int(keep.sum())
        if n_left == 0:
            self.report.reject_light_curve(REASON_EMPTY, 0)
            return
        self.n_written += 1
        yield {
            "object_id": curve.object_id,
            "survey": SURVEY_NAME,
            "time": np.ascontiguousarray(curve.time[keep], dtype=np.float64),
            "value": np.ascontiguousarray(curve.mag[keep], dtype=np.float32),
            "error": np.ascontiguousarray(curve.err[keep], dtype=np.float32),
            "band": np.full(n_left, curve.band),
            "value_kind": "mag",
            "label": curve.label,
            "meta": dict(curve.meta),
        }

    def finish(self) -> None:
        """Raise when the file held no light curve, or only empty ones."""
        if self.n_curves == 0:
            raise InputFileError(self.source, "holds no MACHO light curve")
        if self.n_written == 0:
            raise InputFileError(
                self.source, f"none of its {self.n_curves} light curve(s) has a valid point "
                f"({self.n_points} point(s) read, all missing or -99)")


def parse_numbers(lines: list[tuple[int, str]], source, *, ncols: int = 3,
                  delimiter: str | None = None, blank_is_nan: bool = False,
                  columns: tuple[int, ...] | None = None, width: int | None = None) -> np.ndarray:
    """Parse numbered text lines into a (n, ncols) float64 array.

    `lines` holds (1-based line number, text). `columns` picks which fields to keep (default
    the first `ncols`). A line with too few fields (with `width`: not exactly `width`
    fields, so a row cut short is caught even when the kept columns are all there) or a
    non-numeric field raises InputFileError naming the line and column; with
    `blank_is_nan` an empty field (CSV) is NaN.
    """
    columns = columns or tuple(range(ncols))
    need = max(columns) + 1
    if not lines:
        return np.empty((0, len(columns)), dtype=np.float64)
    # fast path: numpy converts the whole block at once; the slow loop below only runs to
    # find and name the offending line (or to turn blank CSV fields into NaN)
    try:
        fields = [text.split(delimiter) for _, text in lines]
        if all(len(f) >= need and (width is None or len(f) == width) for f in fields):
            return np.array([[f[c] for c in columns] for f in fields], dtype=np.float64)
    except ValueError:
        pass
    out = np.empty((len(lines), len(columns)), dtype=np.float64)
    for row, (number, text) in enumerate(lines):
        parts = text.split(delimiter)
        if width is not None and len(parts) != width:
            raise InputFileError(source, f"expected {width} columns, found {len(parts)} "
                                 "(a file cut mid-row?)", line=number)
        if len(parts) < need:
            raise InputFileError(source, f"expected at least {need} columns, found "
                                 f"{len(parts)}", line=number)
        for j, c in enumerate(columns):
            token = parts[c].strip()
            if not token and blank_is_nan:
                out[row, j] = np.nan
                continue
            try:
                out[row, j] = float(token)
            except ValueError:
                raise InputFileError(source, f"column {c + 1}: {token!r} is not a number",
                                     line=number) from None
    return out


def split_macho_id(text: str) -> tuple[str, dict, str | None] | None:
    """'lc_1.3444.614.B' -> ('1.3444.614', {field, tile, seq}, 'B'); None if not a MACHO id."""
    found = MACHO_ID.match(text.strip())
    if not found:
        return None
    f, t, s, band = found.groups()
    ids = {"field": int(f), "tile": int(t), "seq": int(s)}
    return f"{int(f)}.{int(t)}.{int(s)}", ids, band
