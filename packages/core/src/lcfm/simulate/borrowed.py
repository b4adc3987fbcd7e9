"""Simulated light curves in the cadence and noise of real files (`lcfm simulate
--cadence-from PATH`, issue 12, item 5: "`lcfm simulate` can borrow the cadence and noise of
real files (any survey, via its plugin) so a model can be pretrained on large simulated
corpora in the target survey's sampling").

The survey's own readers read PATH (files or folders, any format the plugin knows, label
catalogues skipped as at ingest). Each real light curve becomes one *sampling*: its times,
bands and reported uncertainties, with the points no model could use removed (non-finite
time or error, error <= 0, a band the simulator does not draw). "merge" readers' pieces of
one object are joined first, as ingest joins them.

`BorrowedSimulator` wraps the survey's simulator: `cadence(m, rng)` draws m samplings
(uniformly, with replacement; independently of the class, so the sampling alone never gives
a label away) and lays them out as a `Cadence` -- on a regular grid when the survey's own
cadence is one (space photometry: times rounded to the grid step, gaps masked), so grid
generators (FFT noise) still apply. The class signals are the simulator's, unchanged.

Noise: while the simulator fills a cadence, its `noise` model is replaced by `RealErrorNoise`,
which adds Gaussian noise with the borrowed light curve's own reported uncertainty at each
point and reports that uncertainty. Fluxes scaled per star (Kepler/TESS photon noise, called
with `scale=`) use the real light curve's relative errors (error / median |value|). A
simulator without a `noise` attribute keeps its own noise (said in `describe()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lcfm.exceptions import DataError, LcfmError
from lcfm.report import IngestReport
from lcfm.simulate.base import Cadence, Simulated, SurveySimulator

#: fewest usable points for a real light curve to lend its sampling
MIN_POINTS = 3


@dataclass
class Sampling:
    """One real light curve's sampling: sorted times, band codes and uncertainties."""

    object_id: str
    time: np.ndarray  # float64
    band: np.ndarray  # int8 codes into the simulator's bands
    error: np.ndarray  # float64, > 0
    relative_error: np.ndarray  # error / median |value| of the real light curve


@dataclass
class BorrowedCadence(Cadence):
    """A `Cadence` that also carries the borrowed uncertainties of every entry."""

    error: np.ndarray | None = None  # (m, L) reported 1-sigma of the real point
    relative_error: np.ndarray | None = None  # (m, L) error / median |value|


def read_samplings(survey, path: Path, fmt: str | None = None, *,
                   bands: tuple[str, ...] | None = None,
                   limit: int | None = None) -> tuple[list[Sampling], dict]:
    """The samplings of the real light curves under `path`, read with `survey`'s readers,
    and a summary (files read and rejected, light curves used and left out, with reasons).
    At most `limit` light curves are read (None: all)."""
    path = Path(path)
    bands = tuple(bands or survey.bands)
    codes = {b: i for i, b in enumerate(bands)}
    files = survey.input_files(path, fmt)
    root = path if path.is_dir() else path.parent
    summary = {"files_read": 0, "files_rejected": [], "light_curves": 0,
               "left_out": {}}
    rows, groups = [], {}
    for file in files:
        report = IngestReport(survey=survey.name)
        try:
            reader = survey.reader_for(file, fmt, root=root)
            read = list(reader.read(file, report))
        except LcfmError as exc:
            summary["files_rejected"].append({"file": str(file), "reason": str(exc)})
            continue
        summary["files_read"] += 1
        for row in read:
            if reader.duplicates == "merge":
                groups.setdefault(survey.segment_key(row, bands=False), []).append(row)
            else:
                rows.append(row)
        if limit is not None and len(rows) + len(groups) >= limit:
            break
    merged = [g[0] if len(g) == 1 else survey.merge_rows(g, IngestReport(survey.name))
              for g in groups.values()]
    samplings = []
    for row in (rows + merged)[:limit]:
        sampling, reason = _sampling(row, codes)
        if sampling is None:
            summary["left_out"][reason] = summary["left_out"].get(reason, 0) + 1
        else:
            samplings.append(sampling)
    summary["light_curves"] = len(samplings)
    if not samplings:
        raise DataError(f"{path}: no real {survey.name} light curve with at least "
                        f"{MIN_POINTS} usable points to borrow a cadence from "
                        f"({summary['left_out'] or 'none read'})")
    return samplings, summary


def _sampling(row: dict, codes: dict[str, int]) -> tuple[Sampling | None, str]:
    time = np.asarray(row["time"], np.float64)
    error = np.asarray(row["error"], np.float64)
    value = np.asarray(row["value"], np.float64)
    names = np.asarray(row["band"]).astype(str)
    band = np.array([codes.get(b, -1) for b in names], dtype=np.int16) if names.size \
        else np.zeros(0, np.int16)
    keep = np.isfinite(time) & np.isfinite(error) & (error > 0) & (band >= 0)
    if keep.sum() < MIN_POINTS:
        return None, f"fewer than {MIN_POINTS} usable points"
    order = np.argsort(time[keep], kind="stable")
    finite = value[keep][np.isfinite(value[keep])]
    scale = float(np.median(np.abs(finite))) if finite.size else 0.0
    error = error[keep][order]
    relative = error / scale if scale > 0 else np.full(error.size, np.nan)
    return Sampling(str(row["object_id"]), time[keep][order], band[keep][order].astype(np.int8),
                    error, relative), ""


class RealErrorNoise:
    """The noise model swapped into a simulator while it fills a `BorrowedCadence`:
    Gaussian noise of the borrowed uncertainty at each point (module docstring)."""

    def __init__(self, cadence: BorrowedCadence):
        self.cadence = cadence

    def apply(self, values, *args, **kwargs):
        rng = kwargs.get("rng") or next(a for a in args if isinstance(a, np.random.Generator))
        scale = kwargs.get("scale")
        values = np.asarray(values, dtype=np.float64)
        error = self.cadence.error if scale is None else self.cadence.relative_error
        if error.shape != values.shape:
            raise LcfmError(f"simulator noise on shape {values.shape}, borrowed cadence "
                            f"{error.shape}")
        if scale is not None and np.isnan(error).any():
            raise DataError("a borrowed light curve has no positive median value, so its "
                            "relative errors are undefined; borrow flux light curves")
        observed = values + error * rng.standard_normal(values.shape)
        if scale is None:
            return observed, error.copy()
        scale = np.asarray(scale, dtype=np.float64)
        scale = scale[:, None] if scale.ndim == 1 else scale
        return observed * scale, error * scale


class BorrowedSimulator(SurveySimulator):
    """A survey simulator whose cadence and noise come from real light curves."""

    def __init__(self, inner: SurveySimulator, samplings: list[Sampling], *,
                 source: str = "", summary: dict | None = None):
        super().__init__(inner.survey)
        self.inner, self.samplings = inner, samplings
        self.source, self.summary = source, summary or {}
        self.chunk_size = inner.chunk_size

    @property
    def classes(self) -> tuple[str, ...]:
        return self.inner.classes

    @property
    def bands(self) -> tuple[str, ...]:
        return self.inner.bands

    def cadence(self, m: int, rng: np.random.Generator) -> BorrowedCadence:
        own = self.inner.cadence(m, rng)  # its per-light-curve meta and instrument events
        picks = [self.samplings[i] for i in rng.integers(0, len(self.samplings), m)]
        if own.step is not None:
            cadence = _on_grid(picks, own.step)
        else:
            cadence = _padded(picks)
        cadence.meta = {**own.meta, "cadence_from": np.array([p.object_id for p in picks],
                                                             dtype=object)}
        cadence.events = own.events
        return cadence

    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        if not hasattr(self.inner, "noise"):
            return self.inner.light_curves(label, cadence, rng)
        own = self.inner.__dict__.get("noise")
        self.inner.noise = RealErrorNoise(cadence)
        try:
            return self.inner.light_curves(label, cadence, rng)
        finally:
            if own is None:
                del self.inner.noise
            else:
                self.inner.noise = own

    def describe(self) -> dict:
        counts = np.array([p.time.size for p in self.samplings])
        return {**self.inner.describe(), "cadence_from": self.source,
                "cadence_light_curves": len(self.samplings),
                "cadence_median_points": float(np.median(counts)),
                "noise": ("real reported uncertainties" if hasattr(self.inner, "noise")
                          else "the simulator's own"),
                "cadence_reading": self.summary}


def _padded(picks: list[Sampling]) -> BorrowedCadence:
    m, length = len(picks), max(p.time.size for p in picks)
    time = np.zeros((m, length))
    error = np.ones((m, length))
    relative = np.ones((m, length))
    band = np.zeros((m, length), np.int8)
    mask = np.zeros((m, length), bool)
    for i, p in enumerate(picks):
        n = p.time.size
        time[i, :n], time[i, n:] = p.time, p.time[-1]  # padding repeats the last time
        error[i, :n], error[i, n:] = p.error, p.error[-1]
        relative[i, :n], relative[i, n:] = p.relative_error, p.relative_error[-1]
        band[i, :n], mask[i, :n] = p.band, True
    return BorrowedCadence(time=time, mask=mask, band=band, error=error,
                           relative_error=relative)


def _on_grid(picks: list[Sampling], step: float) -> BorrowedCadence:
    """The samplings on regular grids of `step` days from each one's first time; points
    falling on one grid cell keep the first."""
    cells = [np.rint((p.time - p.time[0]) / step).astype(np.int64) for p in picks]
    m, length = len(picks), int(max(c[-1] for c in cells)) + 1
    time = np.zeros((m, length))
    error = np.ones((m, length))
    relative = np.ones((m, length))
    band = np.zeros((m, length), np.int8)
    mask = np.zeros((m, length), bool)
    for i, (p, cell) in enumerate(zip(picks, cells, strict=True)):
        time[i] = p.time[0] + step * np.arange(length)
        first = np.unique(cell, return_index=True)[1]
        cell = cell[first]
        error[i], relative[i] = np.median(p.error), np.median(p.relative_error)
        error[i, cell], relative[i, cell] = p.error[first], p.relative_error[first]
        band[i], band[i, cell] = p.band[0], p.band[first]
        mask[i, cell] = True
    return BorrowedCadence(time=time, mask=mask, band=band, step=step, error=error,
                           relative_error=relative)


def borrow_cadence(simulator: SurveySimulator, path: Path, fmt: str | None = None, *,
                   limit: int | None = None) -> BorrowedSimulator:
    """`simulator` with the cadence and noise of the real files under `path`."""
    samplings, summary = read_samplings(simulator.survey, path, fmt, bands=simulator.bands,
                                        limit=limit)
    return BorrowedSimulator(simulator, samplings, source=str(path), summary=summary)
