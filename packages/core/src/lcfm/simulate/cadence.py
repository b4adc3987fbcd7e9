"""Cadence generators of `lcfm simulate`, vectorised over light curves.

Two families cover the built-in surveys:

* `regular_segments`: space photometry, one regular grid per light curve (Kepler's 29.4-min
  long cadence over ~90-day quarters, TESS's 30-min full-frame cadence over 27.4-day
  sectors) with data-downlink gaps and randomly flagged cadences masked out;
* `nightly_visits`: ground-based surveys, observing nights separated by weather and
  scheduling gaps (log-normal), restricted to a yearly observing season, with one or more
  visits per night at a typical spacing, and a band per night or per visit.

Both return a `Cadence`; the survey's simulator draws the parameters (baselines, start
times) independently of the class of the light curves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lcfm.simulate.base import Cadence

YEAR = 365.25


def _column(value, m: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (m,))[:, None]


def regular_segments(m: int, rng: np.random.Generator, *, step: float, duration,
                     start, gaps: Sequence[tuple] = (), drop_fraction: float = 0.0) -> Cadence:
    """m regular grids of spacing `step` (days) over `duration` (days, scalar or (m,))
    from `start` (scalar or (m,)).

    `gaps` holds (centre, width) pairs in days after the start (scalars or (m,) arrays):
    cadences inside are masked, as are a random `drop_fraction` of all cadences (the
    quality-flagged cadences a reader drops).
    """
    duration = _column(duration, m)
    start = _column(start, m)
    length = int(np.ceil(duration.max() / step)) + 1
    offset = step * np.arange(length)[None, :]  # (1, L)
    mask = offset <= duration
    for centre, width in gaps:
        mask &= np.abs(offset - _column(centre, m)) >= _column(width, m) / 2
    if drop_fraction > 0:
        mask &= rng.random(mask.shape) >= drop_fraction
    return Cadence(time=start + offset, mask=mask, step=step)


def nightly_visits(m: int, rng: np.random.Generator, *, start, baseline,
                   night_gap_median: float, night_gap_sigma: float,
                   min_night_gap: float = 0.9, season_length=YEAR,
                   visits_per_night: Sequence[float] = (1.0,),
                   visit_spacing: float = 0.0, visit_spacing_jitter: float = 0.2,
                   band_probabilities: Sequence[float] | None = None,
                   band_per: str = "night", keep_bands: Sequence[int] | None = None,
                   night_length: float = 0.3) -> Cadence:
    """Ground-based cadence of m light curves.

    Nights start at `start` (MJD, scalar or (m,)) and are separated by log-normal gaps
    (median `night_gap_median` days, log-spread `night_gap_sigma`, at least `min_night_gap`)
    until `baseline` days (scalar or (m,)). Only nights within each light curve's yearly
    observing season (`season_length` days; the first night falls at a random point of a
    season) are kept. A night
    holds k visits with probability `visits_per_night[k - 1]`, `visit_spacing` days apart
    (multiplied by a log-normal jitter), starting at a random time within `night_length`
    days. With `band_probabilities`, each night (band_per="night") or visit ("visit") gets
    a band index; `keep_bands` keeps only visits in those bands (a survey read with a band
    selection). Visits are compacted to the front of the padded arrays, time-sorted.
    """
    start = _column(start, m)
    baseline = _column(baseline, m)
    mean_gap = max(night_gap_median * np.exp(night_gap_sigma ** 2 / 2), min_night_gap)
    n_nights = int(1.25 * baseline.max() / mean_gap) + 16
    gaps = np.maximum(night_gap_median * np.exp(night_gap_sigma * rng.standard_normal(
        (m, n_nights))), min_night_gap)
    gaps[:, 0] = 0.0
    nights = start + np.cumsum(gaps, axis=1)  # (m, K)
    valid = nights <= start + baseline
    season = _column(season_length, m)
    if np.any(season < YEAR):  # the light curve starts somewhere inside a season
        season_phase = rng.uniform(0.0, 1.0, (m, 1)) * season
        valid &= np.mod(nights - start + season_phase, YEAR) < season
    nights = nights + rng.uniform(0.0, night_length, nights.shape)

    probabilities = np.asarray(visits_per_night, dtype=np.float64)
    probabilities = probabilities / probabilities.sum()
    max_visits = probabilities.size
    n_visits = 1 + rng.choice(max_visits, size=nights.shape, p=probabilities)  # (m, K)
    spacing = visit_spacing * np.exp(visit_spacing_jitter * rng.standard_normal(
        (m, n_nights, max_visits)))
    spacing[..., 0] = 0.0
    times = nights[..., None] + np.cumsum(spacing, axis=2)  # (m, K, V)
    keep = valid[..., None] & (np.arange(max_visits)[None, None, :] < n_visits[..., None])

    band = None
    if band_probabilities is not None:
        weights = np.asarray(band_probabilities, dtype=np.float64)
        weights = weights / weights.sum()
        shape = nights.shape if band_per == "night" else times.shape
        band = rng.choice(weights.size, size=shape, p=weights).astype(np.int8)
        if band_per == "night":
            band = np.broadcast_to(band[..., None], times.shape)
        if keep_bands is not None:
            keep &= np.isin(band, np.asarray(keep_bands))
    return compact(times.reshape(m, -1), keep.reshape(m, -1),
                   None if band is None else band.reshape(m, -1))


def compact(time: np.ndarray, keep: np.ndarray, band: np.ndarray | None = None,
            max_points: int | None = None) -> Cadence:
    """Move the kept observations of each row to the front, time-sorted, and trim the
    padding to the longest row (or to `max_points`). Padding repeats the last real time so
    every entry stays finite."""
    order = np.argsort(np.where(keep, time, np.inf), axis=1, kind="stable")
    time = np.take_along_axis(time, order, axis=1)
    keep = np.take_along_axis(keep, order, axis=1)
    counts = keep.sum(axis=1)
    length = max(int(counts.max(initial=0)), 1)
    if max_points is not None:
        length = min(length, max_points)
    time, keep = time[:, :length], keep[:, :length]
    last = time[np.arange(time.shape[0]), np.clip(counts - 1, 0, length - 1)][:, None]
    time = np.where(keep, time, np.where(np.isfinite(last), last, 0.0))
    if band is not None:
        band = np.take_along_axis(band, order, axis=1)[:, :length]
    return Cadence(time=time, mask=keep, band=band)


def cadence_statistics(times: Sequence[np.ndarray]) -> dict[str, float]:
    """Median gap, baseline and points per light curve (medians over light curves), the
    numbers the survey docstrings quote and the tests check."""
    gaps = [np.median(np.diff(t)) for t in times if t.size > 1]
    return {
        "median_gap_days": float(np.median(gaps)) if gaps else float("nan"),
        "baseline_days": float(np.median([t[-1] - t[0] for t in times])),
        "points": float(np.median([t.size for t in times])),
    }
