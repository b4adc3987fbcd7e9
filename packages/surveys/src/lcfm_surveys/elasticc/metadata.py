"""Object metadata of ELAsTiCC light curves: the feature list and its names in each format.

ATCAT (paper 003, sect. 2.1.1 and 2.2.2) feeds quantile scores of host-galaxy and
extinction metadata to a metadata token. The paper reports 85 features without listing
them; lcfm uses the 64 that ATAT (Cabrera-Vives et al. 2024) lists and that the ELAsTiCC
alert schema (diaObject) carries, so the same features exist for training files (SNANA
HEAD) and for the alert stream: Milky Way E(B-V) and its error, the final redshift and its
error, and for the two most likely host galaxies their ellipticity, squared radius,
separation, spectroscopic and photometric redshift (with errors and the 0-100% photo-z
quantiles) and ugrizY magnitudes with errors. Simulation truth (SIM_*) is never copied.

Every light curve carries every feature in its `meta` (NaN when a file lacks it, so the
struct has the same fields for all formats); values are kept as written, including SNANA's
-9/-99/999 sentinels, as ATAT and ATCAT do. `transform.py` turns them into model inputs.
"""

from __future__ import annotations

import math
import re

import numpy as np

_HOST = (
    ["ellipticity", "sqradius", "snsep", "zspec", "zspec_err", "zphot", "zphot_err"]
    + [f"zphot_q{q:03d}" for q in range(0, 101, 10)]
    + [f"mag_{b}" for b in "ugrizY"]
    + [f"magerr_{b}" for b in "ugrizY"]
)

#: the metadata features, as named in the ELAsTiCC alert schema (diaObject)
METADATA_FEATURES: tuple[str, ...] = (
    "mwebv", "mwebv_err", "z_final", "z_final_err",
    *(f"hostgal_{name}" for name in _HOST),
    *(f"hostgal2_{name}" for name in _HOST),
)

#: SNANA HEAD columns whose lcfm name is not simply the lower-cased column name
#: (ATAT's mapping: the alert's z_final is REDSHIFT_HELIO of the training files)
_SNANA_RENAMES = {
    "REDSHIFT_HELIO": "z_final", "REDSHIFT_HELIO_ERR": "z_final_err",
    "HOSTGAL_SPECZ": "hostgal_zspec", "HOSTGAL_SPECZ_ERR": "hostgal_zspec_err",
    "HOSTGAL_PHOTOZ": "hostgal_zphot", "HOSTGAL_PHOTOZ_ERR": "hostgal_zphot_err",
    "HOSTGAL2_SPECZ": "hostgal2_zspec", "HOSTGAL2_SPECZ_ERR": "hostgal2_zspec_err",
    "HOSTGAL2_PHOTOZ": "hostgal2_zphot", "HOSTGAL2_PHOTOZ_ERR": "hostgal2_zphot_err",
}
_BAND_SUFFIX = re.compile(r"_(MAG|MAGERR)_([ugrizy])$", re.IGNORECASE)
# older alert templates name the photo-z deciles q10 ... q90 (no leading zero)
_SHORT_QUANTILE = re.compile(r"^(hostgal2?_zphot_q)(\d0)$")


def snana_feature_name(column: str) -> str:
    """lcfm feature name of a SNANA HEAD column (HOSTGAL_MAG_g or HOSTGAL_MAG_G ->
    hostgal_mag_g, HOSTGAL_MAG_Y -> hostgal_mag_Y)."""
    upper = column.upper()
    if upper in _SNANA_RENAMES:
        return _SNANA_RENAMES[upper]
    match = _BAND_SUFFIX.search(column)
    name = column.lower()
    if match:  # LSST band letters: ugriz lower case, Y upper case
        letter = match.group(2).lower()
        name = name[: match.start(2)] + ("Y" if letter == "y" else letter)
    return name


def alert_feature_name(field: str) -> str:
    """lcfm feature name of a diaObject field (hostgal_zphot_q10 -> hostgal_zphot_q010)."""
    match = _SHORT_QUANTILE.match(field)
    if match:
        return f"{match.group(1)}0{match.group(2)}"
    return field


def feature_columns(names, rename) -> dict[str, str]:
    """feature -> source column, for the source columns that provide a metadata feature
    (the first one wins if two spellings are present)."""
    wanted = set(METADATA_FEATURES)
    found: dict[str, str] = {}
    for column in names:
        feature = rename(column)
        if feature in wanted and feature not in found:
            found[feature] = column
    return found


def as_float(value) -> float:
    """A scalar as float (None and unparsable values become NaN)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def feature_meta(values: dict[str, float]) -> dict[str, float]:
    """Every metadata feature, NaN where `values` has none (fixed struct fields)."""
    return {name: as_float(values.get(name)) for name in METADATA_FEATURES}


def object_meta(*, ra: float, dec: float, alert_mjd: float, last_detection_mjd: float,
                raw_class: str, gentype: int, flux_unit: str,
                features: dict[str, float]) -> dict:
    """The meta dict of a light curve, with the same keys in the same order for every
    format (so shards of SNANA and alert files share one struct type)."""
    return {
        "ra": as_float(ra), "dec": as_float(dec),
        "alert_mjd": as_float(alert_mjd), "last_detection_mjd": as_float(last_detection_mjd),
        "raw_class": str(raw_class), "gentype": int(gentype), "flux_unit": str(flux_unit),
        **feature_meta(features),
    }


def feature_matrix(metas, features=METADATA_FEATURES) -> np.ndarray:
    """(n, n_features) float64 array from meta dicts, a Polars frame of meta fields or a
    Polars struct Series; missing features and nulls become NaN."""
    import polars as pl

    if isinstance(metas, pl.Series):
        metas = metas.struct.unnest() if isinstance(metas.dtype, pl.Struct) else None
    if isinstance(metas, pl.DataFrame):
        columns = [
            metas[name].cast(pl.Float64, strict=False).fill_null(math.nan).to_numpy()
            if name in metas.columns else np.full(metas.height, math.nan)
            for name in features
        ]
        return np.stack(columns, axis=1) if columns else np.zeros((metas.height, 0))
    if isinstance(metas, dict):
        metas = [metas]
    rows = [[as_float(m.get(name)) for name in features] for m in metas or []]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(features))
