"""Bands and units: the one rule for multi-band light curves (DESIGN.md, "Bands and units").

Every model collator applies the same three steps to a batch (`lcfm.flat.FlatRows`); the
guide for plugin authors is docs/multiband.md.

1. **Units.** A row's `value_kind` says whether its values are magnitudes ("mag") or fluxes
   ("flux"). Each model declares the kind it reads (Astromer and AstroCo: magnitudes,
   Astromer 2 sect. 2.1, AstroCo sect. 3.1; ASTRAFier: flux, sect. 4.3; ATCAT: flux,
   sect. 2.5.1) and `convert` turns rows of the other kind into it (Pogson's law, errors
   propagated to first order)::

       flux = 10^(-0.4 (m - zp))            sigma_f = 0.4 ln(10) flux sigma_m
       m    = zp - 2.5 log10(flux)          sigma_m = 2.5 / ln(10) sigma_f / flux

   `zp` is `ZERO_POINT` = 27.5 unless given: SNANA's FLUXCAL unit, the flux unit of
   ELAsTiCC for which ATCAT's flux squashing (sect. 2.5.1) was built. A magnitude needs a
   positive flux: a (light curve, band) whose fluxes are not all positive (difference
   fluxes, or fluxes a survey chain already standardised) has no absolute level to turn
   into magnitudes, so its values are *standardised* instead (zero mean, unit variance,
   errors divided alike): the model's scale is fitted to the data, never fed a log of a
   negative number.
2. **Per-band normalisation.** Statistics are taken per (light curve, band), never across
   bands, so colour offsets (a star is brighter in one band) do not swamp the variability:
   `normalise` with "center" subtracts the band's mean (Astromer 2 sect. 2.1, AstroCo
   sect. 4: zero-mean magnitudes), "standardize" also divides by the band's standard
   deviation (ASTRAFier sect. 4.3), "none" keeps the values.
3. **Layout.** A canonical row holds all bands of a light curve interleaved in time
   (DESIGN.md). A model that encodes bands reads that one sequence with each band's
   central wavelength (ATCAT; AstroCo with band_combine="joint"); a single-band model
   (Astromer, ASTRAFier) reads one sequence per (light curve, band) -- `split_bands` -- and
   combines the per-band pooled vectors by the model's `band_combine` ("mean" or "concat",
   see lcfm_models.band_pooling) before its one classification head.

Every function is vectorised over all points of a batch (`np.bincount` over group ids).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from lcfm.exceptions import ConfigError, DataError
from lcfm.flat import FlatRows

#: default photometric zero point: flux 1 <-> magnitude 27.5 (SNANA FLUXCAL, ELAsTiCC)
ZERO_POINT = 27.5
VALUE_KINDS = ("mag", "flux")
NORMALISATIONS = ("center", "standardize", "none")
#: 0.4 ln 10 = 0.9210...: d(flux)/flux per magnitude
_POGSON = 0.4 * math.log(10.0)


# ---------------------------------------------------------------- point conversions
def mag_to_flux(mag, error, zero_point: float = ZERO_POINT) -> tuple[np.ndarray, np.ndarray]:
    """(flux, sigma_flux) of magnitudes and their errors: f = 10^(-0.4 (m - zp)),
    sigma_f = 0.4 ln10 f sigma_m (float64)."""
    mag = np.asarray(mag, dtype=np.float64)
    flux = np.power(10.0, -0.4 * (mag - zero_point))
    return flux, _POGSON * flux * np.abs(np.asarray(error, dtype=np.float64))


def flux_to_mag(flux, error, zero_point: float = ZERO_POINT) -> tuple[np.ndarray, np.ndarray]:
    """(magnitude, sigma_m) of fluxes: m = zp - 2.5 log10 f, sigma_m = sigma_f / (0.4 ln10 f)
    (float64). A flux <= 0 has no magnitude: NaN there (`convert` standardises such bands)."""
    flux = np.asarray(flux, dtype=np.float64)
    positive = flux > 0
    safe = np.where(positive, flux, 1.0)
    mag = np.where(positive, zero_point - 2.5 * np.log10(safe), np.nan)
    err = np.where(positive, np.abs(np.asarray(error, dtype=np.float64)) / (_POGSON * safe),
                   np.nan)
    return mag, err


# ---------------------------------------------------------------- groups
def point_rows(flat: FlatRows) -> np.ndarray:
    """Row number of every observation, (points,) int64."""
    return np.repeat(np.arange(len(flat)), flat.lengths)


def band_groups(row: np.ndarray, band: np.ndarray, n_bands: int) -> np.ndarray:
    """(row, band code) group id of every point: row * n_bands + band."""
    return row.astype(np.int64) * max(int(n_bands), 1) + band.astype(np.int64)


def _group_stats(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard deviation) of each point's group, per point (float64)."""
    size = int(group.max()) + 1 if group.size else 0
    count = np.maximum(np.bincount(group, minlength=size), 1)
    mean = np.bincount(group, weights=values, minlength=size) / count
    centred = values - mean[group]
    std = np.sqrt(np.bincount(group, weights=centred * centred, minlength=size) / count)
    return mean[group], std[group]


def normalise(values, errors, group: np.ndarray, mode: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-band normalisation (module docstring, step 2) of points grouped by (light curve
    or window, band) ids `group`: "center" subtracts each group's mean, "standardize" also
    divides values and errors by the group's standard deviation (a constant group only loses
    its mean), "none" returns them unchanged. float64 out."""
    if mode not in NORMALISATIONS:
        raise ConfigError(f"band normalisation {mode!r} is not one of "
                          f"{', '.join(NORMALISATIONS)}")
    values = np.asarray(values, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if mode == "none" or values.size == 0:
        return values, errors
    mean, std = _group_stats(values, group)
    values = values - mean
    if mode == "standardize":
        constant = std <= np.finfo(np.float32).eps * np.maximum(1.0, np.abs(mean))
        scale = np.where(constant, 1.0, std)
        values, errors = values / scale, errors / scale
    return values, errors


# ---------------------------------------------------------------- rows
def row_kinds(flat: FlatRows) -> np.ndarray:
    """(rows,) bool: True where a row's value_kind is "mag" (anything else must be "flux")."""
    kinds = np.asarray(flat.value_kind, dtype=object)
    bad = ~np.isin(kinds, VALUE_KINDS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"row {i} (object_id={flat.object_id[i]!r}): value_kind "
                          f"{flat.value_kind[i]!r} is not one of {', '.join(VALUE_KINDS)}")
    return kinds == "mag"


def _with_points(flat: FlatRows, value: np.ndarray, error: np.ndarray,
                 kinds: list[str]) -> FlatRows:
    return FlatRows(offsets=flat.offsets, time=flat.time, value=value.astype(np.float32),
                    error=error.astype(np.float32), band=flat.band,
                    band_names=flat.band_names, object_id=flat.object_id, label=flat.label,
                    value_kind=kinds, survey=flat.survey, meta=flat.meta, extras=flat.extras)


def convert(flat: FlatRows, kind: str, zero_point: float | None = ZERO_POINT) -> FlatRows:
    """The batch with every row in `kind` units (module docstring, step 1). Rows already in
    `kind` are unchanged (the same FlatRows when all are). Flux rows turned into magnitudes
    band by band: a band with any flux <= 0 is standardised instead (rows' value_kind then
    still says "mag", the unit the model reads).

    `zero_point=None` gives *relative* fluxes: each (light curve, band) of magnitudes uses
    its own mean magnitude as zero point (flux 1 at the mean), for a model that standardises
    flux anyway (ASTRAFier) -- the shape is Pogson's, and no faint or mislabelled magnitude
    under- or overflows. For flux -> magnitude, None means `ZERO_POINT` (an offset that
    per-band centring removes)."""
    if kind not in VALUE_KINDS:
        raise ConfigError(f"value kind {kind!r} is not one of {', '.join(VALUE_KINDS)}")
    is_mag = row_kinds(flat)
    change = ~is_mag if kind == "mag" else is_mag
    if not change.any():
        return flat
    row = point_rows(flat)
    points = change[row]
    value = flat.value.astype(np.float64)
    error = flat.error.astype(np.float64)
    group = band_groups(row, flat.band, len(flat.band_names))
    if kind == "flux":
        if zero_point is None:  # relative: each band's mean magnitude
            zero_point = _group_stats(value[points], group[points])[0]
        value[points], error[points] = mag_to_flux(value[points], error[points], zero_point)
    else:
        zero_point = ZERO_POINT if zero_point is None else zero_point
        size = int(group.max()) + 1 if group.size else 0
        not_positive = np.bincount(group, weights=(value <= 0) & points, minlength=size) > 0
        relative = points & not_positive[group]  # no absolute level: standardise
        pogson = points & ~relative
        value[pogson], error[pogson] = flux_to_mag(value[pogson], error[pogson], zero_point)
        if relative.any():
            value[relative], error[relative] = normalise(
                value[relative], error[relative], group[relative], "standardize")
    return _with_points(flat, value, error, [kind] * len(flat))


def center_bands(flat: FlatRows, rows: np.ndarray) -> FlatRows:
    """The batch with each band of the rows flagged in `rows` (bool, (rows,)) shifted to zero
    mean over the whole light curve -- the reference level a difference-imaging template
    gives (ATCAT reads magnitudes converted to flux this way, as ELAsTiCC's difference
    fluxes)."""
    if not np.any(rows):
        return flat
    row = point_rows(flat)
    group = band_groups(row, flat.band, len(flat.band_names))
    points = np.asarray(rows, dtype=bool)[row]
    value = flat.value.astype(np.float64)
    value[points] = normalise(value[points], flat.error[points], group[points], "center")[0]
    return _with_points(flat, value, flat.error.astype(np.float64), list(flat.value_kind))


def split_bands(flat: FlatRows) -> tuple[FlatRows, np.ndarray, np.ndarray]:
    """One row per (light curve, band) present -- what a single-band model reads (module
    docstring, step 3). Returns (per-band rows, parent row of each, band code of each).

    Per-band rows come in light-curve order and, within one, in order of band *name* (so
    the batch does not depend on a FlatRows' band code order); points keep their time
    order. A light curve with one band gives exactly its own row."""
    if len(flat) == 0:
        return flat, np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_bands = max(len(flat.band_names), 1)
    by_name = np.argsort(np.argsort(np.asarray(flat.band_names, dtype=str)))
    rank = by_name[flat.band] if flat.band.size else np.zeros(0, np.int64)
    group = band_groups(point_rows(flat), rank, n_bands)
    order = np.argsort(group, kind="stable")
    present, counts = np.unique(group, return_counts=True)
    parent = present // n_bands
    code = np.argsort(by_name)[present % n_bands] if flat.band_names else present * 0
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    pick = parent.tolist()
    sub = FlatRows(offsets=offsets, time=flat.time[order], value=flat.value[order],
                   error=flat.error[order], band=flat.band[order], band_names=flat.band_names,
                   object_id=[flat.object_id[i] for i in pick],
                   label=[flat.label[i] for i in pick],
                   value_kind=[flat.value_kind[i] for i in pick],
                   survey=[flat.survey[i] for i in pick],
                   meta=[flat.meta[i] for i in pick] if flat.meta else [],
                   extras={k: v[parent] for k, v in flat.extras.items()})
    return sub, parent.astype(np.int64), code.astype(np.int64)


def band_salts(flat: FlatRows, parent: np.ndarray, code: np.ndarray) -> np.ndarray:
    """(per-band rows,) uint64: a hash of the band name for per-band rows of multi-band light
    curves and 0 for a light curve's only band, so deterministic per-row draws (masks) differ
    between the bands of one object and are unchanged for single-band data."""
    table = np.array([zlib.crc32(str(n).encode()) for n in flat.band_names] or [0],
                     dtype=np.uint64)
    several = np.bincount(parent, minlength=len(flat))[parent] > 1
    return np.where(several, table[code], 0).astype(np.uint64)


def band_slots(flat: FlatRows, code: np.ndarray, names, who: str) -> np.ndarray:
    """(per-band rows,) int64 position of each band in `names` (a model's fixed band order,
    band_combine="concat"); a band not in `names` is a one-line DataError."""
    lookup = {str(n): i for i, n in enumerate(names)}
    table = np.array([lookup.get(str(n), -1) for n in flat.band_names] or [-1], np.int64)
    slots = table[code]
    if (slots < 0).any():
        name = flat.band_names[int(code[np.flatnonzero(slots < 0)[0]])]
        raise DataError(f"{who}: band {name!r} is not one of the model's band_names "
                        f"({', '.join(map(str, names))}); band_combine='concat' needs a fixed "
                        f"band list")
    return slots


def wavelength_feature(flat: FlatRows, bands, reference: float = 5000.0) -> np.ndarray:
    """ln(wavelength / reference) of every point, (points,) float32, from a band -> Angstrom
    mapping; 0 for a band without a wavelength (the model then reads no band)."""
    wavelength = flat.wavelengths(bands or {}).astype(np.float64)
    known = np.isfinite(wavelength) & (wavelength > 0)
    safe = np.where(known, wavelength, reference)
    return np.where(known, np.log(safe / reference), 0.0).astype(np.float32)


__all__ = ["NORMALISATIONS", "VALUE_KINDS", "ZERO_POINT", "band_groups", "band_salts",
           "band_slots", "center_bands", "convert", "flux_to_mag", "mag_to_flux",
           "normalise", "point_rows", "row_kinds", "split_bands", "wavelength_feature"]
