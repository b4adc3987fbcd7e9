"""Classical light-curve features, per band and per object (issue 12, item 3: "Classical
features as a first-class part ... period, amplitude, skew, colours, ... per band, per
object").

The features are those of the field's variability literature, computed with the field's
libraries: the `light-curve` extractor (Malanchev et al. 2021) for the moments and
variability indices, and the Lomb-Scargle periodogram (Lomb 1976; Scargle 1982) for the
period -- `light-curve`'s FFT-based periodogram (Press & Rybicki 1989) finds the peak on a
coarse grid, astropy's `LombScargle` refines it on a fine grid around that peak and gives
the peak's power and its false-alarm probability (Baluev 2008).

Per band (columns `<band>_<feature>`):

| feature | meaning |
|---|---|
| n_obs, time_span | observations and last minus first time (days) |
| mean, std, skew, kurtosis | moments of the values |
| amplitude | half of max minus min |
| mad | median absolute deviation from the median |
| ipr_25, ipr_10, ipr_05 | inter-percentile ranges 25-75, 10-90, 5-95 |
| eta | von Neumann's ratio (mean squared successive difference over variance) |
| stetson_k | Stetson's K (robust kurtosis of the error-scaled residuals) |
| beyond_1std | fraction of points more than 1 std from the mean |
| trend_slope, trend_slope_sigma, trend_noise | least-squares line in time |
| period | Lomb-Scargle best period (days) |
| period_power | its power (astropy's "standard" normalisation, 0-1) |
| period_fap | its false-alarm probability (Baluev 2008) |

Per object: `n_light_curves`, `n_obs`, `time_span` over all bands, and colours between
neighbouring bands in wavelength order, `color_<a>_<b>`: mean(a) - mean(b) for magnitudes,
mean(a) / mean(b) for fluxes (NaN when either mean flux is not positive).

The rows of one object (observing segments) are combined: their observations are pooled
per band before any feature is computed. A feature that cannot be computed (too few
points, a constant curve, a band the object lacks) is NaN and counted in
`FeatureCounts`; it never raises. Points that no feature can use (non-finite time, value
or error, error <= 0) are dropped and counted by reason; observations at the same time in
one band are averaged (inverse-variance weights) and counted, since the periodogram and
the successive-difference indices need strictly increasing times.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from lcfm.exceptions import ConfigError, DataError

__all__ = ["BAND_FEATURES", "FeatureConfig", "FeatureCounts", "band_features",
           "band_order", "clean_band", "compute_features", "feature_columns", "lomb_scargle"]

#: light-curve extractor output name -> column suffix
_EXTRACTED = {
    "observation_count": "n_obs", "duration": "time_span", "mean": "mean",
    "standard_deviation": "std", "skew": "skew", "kurtosis": "kurtosis",
    "amplitude": "amplitude", "median_absolute_deviation": "mad",
    "inter_percentile_range_25": "ipr_25", "inter_percentile_range_10": "ipr_10",
    "inter_percentile_range_5": "ipr_05", "eta": "eta", "stetson_K": "stetson_k",
    "beyond_1_std": "beyond_1std", "linear_trend": "trend_slope",
    "linear_trend_sigma": "trend_slope_sigma", "linear_trend_noise": "trend_noise",
}
_PERIOD = ("period", "period_power", "period_fap")
#: per-band feature names, in column order
BAND_FEATURES: tuple[str, ...] = (*_EXTRACTED.values(), *_PERIOD)


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the period search (the other features have none).

    The frequency grid runs from 1 / time span to 1 / `min_period` with `samples_per_peak`
    points per peak width (1 / time span), the usual oversampling (VanderPlas 2018,
    sect. 7.1), capped at 2**`max_log2_frequencies` points; the best peak is then refined
    on `refine_points` frequencies spanning one coarse step either side. 0.1 d reaches
    RR Lyrae overtones and contact binaries; shorter periods need a smaller `min_period`."""

    min_period: float = 0.1
    samples_per_peak: int = 5
    max_log2_frequencies: int = 20
    refine_points: int = 65
    #: fewer points in a band give NaN period features
    min_period_points: int = 8

    def __post_init__(self):
        if not self.min_period > 0:
            raise ConfigError(f"min_period must be positive days, got {self.min_period}")
        if self.samples_per_peak < 1 or self.refine_points < 3:
            raise ConfigError("samples_per_peak must be >= 1 and refine_points >= 3")
        if self.min_period_points < 3:
            raise ConfigError("min_period_points must be at least 3")


@dataclass
class FeatureCounts:
    """What could not be computed, and what was dropped, with reasons."""

    objects: int = 0
    light_curves: int = 0
    points: int = 0
    #: column -> objects where it is NaN (band present but too few / unusable points)
    nan: Counter = field(default_factory=Counter)
    #: band -> objects without any usable observation in that band
    band_missing: Counter = field(default_factory=Counter)
    #: reason -> observations dropped or merged
    points_dropped: Counter = field(default_factory=Counter)

    def add(self, other: FeatureCounts) -> None:
        self.objects += other.objects
        self.light_curves += other.light_curves
        self.points += other.points
        self.nan.update(other.nan)
        self.band_missing.update(other.band_missing)
        self.points_dropped.update(other.points_dropped)

    def to_dict(self) -> dict:
        return {"objects": self.objects, "light_curves": self.light_curves,
                "points": self.points, "nan_values": dict(sorted(self.nan.items())),
                "objects_without_band": dict(sorted(self.band_missing.items())),
                "points_dropped": dict(sorted(self.points_dropped.items()))}


_CACHE: dict = {}


def _extractor():
    """One light-curve extractor per process (building it is cheap, but it is called
    once per band and object)."""
    if "extractor" not in _CACHE:
        import light_curve as lc

        _CACHE["extractor"] = lc.Extractor(
            lc.ObservationCount(), lc.Duration(), lc.Mean(), lc.StandardDeviation(),
            lc.Skew(), lc.Kurtosis(), lc.Amplitude(), lc.MedianAbsoluteDeviation(),
            lc.InterPercentileRange(0.25), lc.InterPercentileRange(0.10),
            lc.InterPercentileRange(0.05), lc.Eta(), lc.StetsonK(), lc.BeyondNStd(1.0),
            lc.LinearTrend())
        names = _CACHE["extractor"].names
        if list(names) != list(_EXTRACTED):  # a light-curve release renamed a feature
            raise RuntimeError(f"light-curve feature names changed: {names}")
    return _CACHE["extractor"]


def _coarse_periodogram(log2_size: int, max_angular: float):
    key = ("periodogram", log2_size, max_angular)
    if key not in _CACHE:
        import light_curve as lc

        # the FFT periodogram accepts only this grid: linspace(0, max, 2**k + 1)
        grid = np.linspace(0.0, max_angular, 2**log2_size + 1)
        _CACHE[key] = lc.Periodogram(peaks=1, freqs=grid, fast=True,
                                     normalization="standard")
    return _CACHE[key]


def lomb_scargle(t: np.ndarray, v: np.ndarray, config: FeatureConfig | None = None
                 ) -> tuple[float, float, float]:
    """(period in days, peak power, false-alarm probability) of the highest Lomb-Scargle
    peak between 1 / time span and 1 / `config.min_period`; NaNs when the curve is too
    short or constant. `t` must be strictly increasing."""
    config = config or FeatureConfig()
    nan = (math.nan, math.nan, math.nan)
    span = float(t[-1] - t[0]) if t.size else 0.0
    f_min, f_max = 1.0 / span if span > 0 else math.inf, 1.0 / config.min_period
    if t.size < config.min_period_points or f_min >= f_max or not np.ptp(v) > 0:
        return nan
    size = min(max(math.ceil(math.log2(f_max * span * config.samples_per_peak)), 8),
               config.max_log2_frequencies)
    coarse = _coarse_periodogram(size, 2 * math.pi * f_max)
    omega, power = coarse.freq_power(t, v)
    usable = np.flatnonzero(omega >= 2 * math.pi * f_min)
    if usable.size == 0 or not np.isfinite(power[usable]).any():
        return nan
    best = float(omega[usable[np.nanargmax(power[usable])]]) / (2 * math.pi)
    step = (omega[1] - omega[0]) / (2 * math.pi)
    fine = np.linspace(max(best - step, f_min), min(best + step, f_max), config.refine_points)
    from astropy.timeseries import LombScargle

    # classic Lomb-Scargle (centred data, no floating mean), as the coarse search
    periodogram = LombScargle(t, v, fit_mean=False, center_data=True)
    fine_power = periodogram.power(fine, method="cython")
    peak = int(np.argmax(fine_power))
    power_at = float(fine_power[peak])
    fap = float(periodogram.false_alarm_probability(
        power_at, method="baluev", minimum_frequency=f_min, maximum_frequency=f_max))
    return 1.0 / float(fine[peak]), power_at, fap


def clean_band(t, v, e, counts: FeatureCounts):
    """Drop unusable points and merge equal times (both counted); returns sorted arrays."""
    ok = np.isfinite(t) & np.isfinite(v)
    counts.points_dropped["non_finite_time_or_value"] += int((~ok).sum())
    bad_error = ok & ~(np.isfinite(e) & (e > 0))
    counts.points_dropped["non_positive_or_non_finite_error"] += int(bad_error.sum())
    keep = ok & ~bad_error
    t, v, e = t[keep], v[keep], e[keep]
    order = np.argsort(t, kind="stable")
    t, v, e = t[order], v[order], e[order]
    if t.size > 1 and (np.diff(t) <= 0).any():
        unique, inverse = np.unique(t, return_inverse=True)
        weight = 1.0 / e**2
        total = np.bincount(inverse, weight)
        v = np.bincount(inverse, weight * v) / total
        e = 1.0 / np.sqrt(total)
        counts.points_dropped["merged_equal_time"] += int(t.size - unique.size)
        t = unique
    else:
        counts.points_dropped["merged_equal_time"] += 0  # listed in reports even when none
    return t, v, e


def band_features(t: np.ndarray, v: np.ndarray, e: np.ndarray,
                  config: FeatureConfig | None = None,
                  counts: FeatureCounts | None = None) -> dict[str, float]:
    """The per-band features of one band's observations (any order; cleaned first).
    Features that cannot be computed are NaN; nothing raises for short or odd curves."""
    counts = counts if counts is not None else FeatureCounts()
    config = config or FeatureConfig()
    t, v, e = clean_band(np.asarray(t, np.float64), np.asarray(v, np.float64),
                          np.asarray(e, np.float64), counts)
    out = dict.fromkeys(BAND_FEATURES, math.nan)
    if t.size == 0:
        return out
    values = _extractor()(t, v, e, sorted=True, check=False, fill_value=np.nan)
    out.update(zip(_EXTRACTED.values(), map(float, values), strict=True))
    out.update(zip(_PERIOD, lomb_scargle(t, v, config), strict=True))
    return out


def band_order(bands: Sequence[str], wavelengths: dict[str, float] | None = None) -> list[str]:
    """Bands by central wavelength (the survey's), unknown ones after, by name."""
    wavelengths = wavelengths or {}
    return sorted(set(bands), key=lambda b: (b not in wavelengths,
                                             float(wavelengths.get(b, 0.0)), b))


def feature_columns(bands: Sequence[str]) -> list[str]:
    """The feature columns for `bands` (in that order), after object_id and label."""
    per_band = [f"{b}_{f}" for b in bands for f in BAND_FEATURES]
    colours = [f"color_{a}_{b}" for a, b in zip(bands[:-1], bands[1:], strict=True)]
    return ["n_light_curves", "n_obs", "time_span", *per_band, *colours]


def _colour(mean_a: float, mean_b: float, value_kind: str) -> float:
    if value_kind == "flux":
        return mean_a / mean_b if mean_a > 0 and mean_b > 0 else math.nan
    return mean_a - mean_b


def _flat_arrow(column: pl.Series) -> pa.Array:
    """The observations of a list column, concatenated (Arrow's list values: an empty
    list contributes nothing, unlike `explode`)."""
    array = column.to_arrow()
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return array.flatten()


def _flat(column: pl.Series, dtype) -> np.ndarray:
    return np.asarray(_flat_arrow(column).to_numpy(zero_copy_only=False), dtype=dtype)


def _band_codes(column: pl.Series, bands: list[str]) -> np.ndarray:
    """Band of every observation as an index into `bands` (-1: a band not asked for)."""
    names = pl.Series(_flat_arrow(column)).cast(pl.String)
    lookup = {b: i for i, b in enumerate(bands)}
    return names.replace_strict(lookup, default=-1, return_dtype=pl.Int16).to_numpy()


def compute_features(frame: pl.DataFrame, *, bands: Sequence[str] | None = None,
                     config: FeatureConfig | None = None,
                     counts: FeatureCounts | None = None,
                     wavelengths: dict[str, float] | None = None) -> pl.DataFrame:
    """Per-object features of a frame of canonical light curves: one row per object
    (object_id, label, then `feature_columns(bands)`), in order of first appearance.

    `bands` fixes the band columns (and their order, which sets the colours); by default the
    bands of the frame ordered by `wavelengths`. Observations of other bands are dropped and
    counted. `counts`, when given, receives the NaN and drop counts."""
    counts = counts if counts is not None else FeatureCounts()
    config = config or FeatureConfig()
    if bands is None:
        present = frame["band"].explode().drop_nulls().cast(pl.String).unique().to_list()
        bands = band_order(present, wavelengths)
    bands = list(bands)
    columns = feature_columns(bands)
    lengths = frame["time"].list.len().fill_null(0).to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    t, v = _flat(frame["time"], np.float64), _flat(frame["value"], np.float64)
    e = _flat(frame["error"], np.float64)
    codes = _band_codes(frame["band"], bands) if t.size else np.zeros(0, np.int16)
    if not (t.size == v.size == e.size == codes.size == offsets[-1]):
        raise DataError("light curves whose time, value, error and band lists differ in "
                        "length; validate the shards with lcfm.schema.conform")
    groups = frame.with_row_index("_row").group_by("object_id", maintain_order=True).agg(
        pl.col("_row"), pl.col("label").drop_nulls().unique().alias("_labels"),
        pl.col("value_kind").first())
    records: list[dict] = []
    for object_id, rows, labels, value_kind in groups.iter_rows():
        if len(labels) > 1:
            raise DataError(f"object {object_id!r} carries more than one label: "
                            f"{sorted(labels)}")
        points = np.concatenate([np.arange(offsets[r], offsets[r + 1]) for r in rows])
        counts.objects += 1
        counts.light_curves += len(rows)
        counts.points += int(points.size)
        other = int((codes[points] < 0).sum())
        if other:
            counts.points_dropped["band_not_selected"] += other
        record = {"object_id": object_id, "label": labels[0] if labels else None,
                  "n_light_curves": len(rows)}
        means = []
        for code, band in enumerate(bands):
            sel = points[codes[points] == code]
            values = band_features(t[sel], v[sel], e[sel], config, counts)
            if math.isnan(values["n_obs"]):
                counts.band_missing[band] += 1
            else:
                counts.nan.update(f"{band}_{k}" for k, x in values.items() if math.isnan(x))
            record.update({f"{band}_{k}": x for k, x in values.items()})
            means.append(values["mean"])
        for a, b, mean_a, mean_b in zip(bands[:-1], bands[1:], means[:-1], means[1:],
                                        strict=True):
            colour = _colour(mean_a, mean_b, value_kind)
            record[f"color_{a}_{b}"] = colour
            if math.isnan(colour):
                counts.nan[f"color_{a}_{b}"] += 1
        usable = points[np.isfinite(t[points])]
        record["n_obs"] = float(usable.size)
        record["time_span"] = float(np.ptp(t[usable])) if usable.size else math.nan
        records.append(record)
    schema = {"object_id": pl.String, "label": pl.String,
              **dict.fromkeys(columns, pl.Float64)}
    return pl.DataFrame(records, schema=schema) if records else pl.DataFrame(schema=schema)
