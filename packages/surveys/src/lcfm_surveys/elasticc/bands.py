"""LSST passbands of ELAsTiCC and their central wavelengths.

ATCAT (paper 003, sect. 2) replaces the integer channel index of the six LSST filters
u, g, r, i, z, Y by "the central wavelength of each color filter". lcfm uses the effective
wavelengths of the LSST baseline filter throughputs (the DC2 LSST filter curves), in
Angstrom: u 3670.69, g 4826.85, r 6223.24, i 7545.98, z 8590.90, Y 9710.28. These are the
values computed from those throughput curves by e.g. the LSST DESC RAIL filter tools
(lambda_eff of DC2LSST_g = 4826.85 A) and used by several ELAsTiCC/PLAsTiCC codes.
"""

from __future__ import annotations

import numpy as np

#: band -> effective wavelength in Angstrom (LSST baseline throughputs, see module docstring)
LSST_WAVELENGTHS: dict[str, float] = {
    "u": 3670.69,
    "g": 4826.85,
    "r": 6223.24,
    "i": 7545.98,
    "z": 8590.90,
    "Y": 9710.28,
}

#: raw spellings seen in SNANA and alert files -> canonical band name
_ALIASES = {**{b: b for b in LSST_WAVELENGTHS}, "y": "Y"}


def normalize_bands(raw) -> np.ndarray:
    """Canonical band names ("u".."Y") for an array of raw band values.

    Accepts str or bytes, surrounding blanks ("g ", b"g"), LSST prefixes ("lsstg", "LSST-g",
    "LSST_g") and lower-case "y". Anything else becomes "" so the reader can count it as
    a rejected point; the band letters are always read as LSST filters.
    """
    values = np.asarray(raw)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "ascii", errors="replace")
    values = np.char.strip(values.astype(str))
    unique, inverse = np.unique(values, return_inverse=True)
    mapped = np.array([_canonical(u) for u in unique] or [""], dtype="<U1")
    return mapped[inverse].reshape(values.shape) if unique.size else np.array([], dtype="<U1")


def _canonical(text: str) -> str:
    if text in _ALIASES:
        return _ALIASES[text]
    lowered = text.lower()
    for prefix in ("lsst-", "lsst_", "lsst"):
        if lowered.startswith(prefix) and text[len(prefix):] in _ALIASES:
            return _ALIASES[text[len(prefix):]]
    return ""
