"""ATCAT's stacked light-curve augmentations (paper 003, sect. 2.1.2), applied to rows
before collation. Each routine fires independently at its own rate, so several (or all)
can hit one light curve.

- subsampling (25%): keep a random subset of k points, k ~ U{10, n-1}; n <= 10 untouched
- flux scaling (20%): value and error times one factor ~ U[1/1.1, 1.1]
- time shift (20%): all times + one offset ~ U[0, 10] days. A collator that restarts times
  at 0 at the first point (ATCAT sect. 2.1.1) would undo a shift of the times alone, so the
  offset is also recorded as `row["time_shift"]` (days, summed over shifts) and such a
  collator adds it back after re-zeroing (`lcfm_models.atcat.collator_atcat`)
- redshifting (20%): band wavelengths times (1 + z), z ~ N(0, 0.1^2) clipped at -0.1
- noise (15%): e_j ~ U[0.002 s, 0.2 s] (s = std of the values, 1 for a single point)
  added to the error, and xi_j ~ N(0, e_j^2) added to the value
"""

from __future__ import annotations

import numpy as np

from lcfm.exceptions import ConfigError

AUGMENTATIONS = ("subsample", "scale", "shift", "redshift", "noise")
RATES = {"subsample": 0.25, "scale": 0.20, "shift": 0.20, "redshift": 0.20, "noise": 0.15}


class Augmenter:
    """Callable row -> row; `rng` is re-seeded by the engine for reproducible runs."""

    def __init__(self, names, seed: int = 0, rates: dict | None = None):
        unknown = sorted(set(names) - set(AUGMENTATIONS))
        if unknown:
            raise ConfigError(f"unknown augmentation(s) {unknown}; choose from "
                              f"{', '.join(AUGMENTATIONS)}")
        self.names = [n for n in AUGMENTATIONS if n in names]
        self.rates = {**RATES, **(rates or {})}
        self.rng = np.random.default_rng(seed)

    def __call__(self, row: dict) -> dict:
        row = dict(row)
        for name in self.names:
            if self.rng.random() < self.rates[name]:
                row = getattr(self, f"_{name}")(row)
        return row

    def _subsample(self, row):
        n = row["time"].size
        if n <= 10:
            return row
        k = int(self.rng.integers(10, n))  # uniform in [10, n-1]
        keep = np.sort(self.rng.choice(n, size=k, replace=False))
        return {**row, **{c: row[c][keep] for c in ("time", "value", "error", "band")}}

    def _scale(self, row):
        factor = np.float32(self.rng.uniform(1 / 1.1, 1.1))
        return {**row, "value": row["value"] * factor, "error": row["error"] * factor}

    def _shift(self, row):
        offset = float(self.rng.uniform(0, 10))
        return {**row, "time": row["time"] + offset,
                "time_shift": float(row.get("time_shift", 0.0)) + offset}

    def _redshift(self, row):
        z = max(float(self.rng.normal(0, 0.1)), -0.1)
        return {**row, "wavelength_scale": row.get("wavelength_scale", 1.0) * (1 + z)}

    def _noise(self, row):
        values = row["value"]
        s = float(values.std()) if values.size > 1 else 1.0
        extra = self.rng.uniform(0.002 * s, 0.2 * s, size=values.size).astype(np.float32)
        xi = self.rng.normal(0, extra).astype(np.float32)
        return {**row, "value": values + xi, "error": row["error"] + extra}
