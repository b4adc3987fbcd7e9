"""Magnitude-dependent noise models of `lcfm simulate`.

Each model returns the observed values and the reported 1-sigma uncertainties for true
values on (m, L) arrays. Reported uncertainties scatter around the true sigma (seeing,
sky brightness), and the noise drawn uses the reported value, as survey pipelines assume.

* `MagnitudeNoise`  ground-based photometry in magnitudes (MACHO, ATLAS):
  sigma(m)^2 = floor^2 + ref_error^2 * 10^(0.8 (m - ref_mag)), the sky-limited regime
  (sigma grows by 10^0.4 per magnitude) above a calibration floor.
* `PhotonNoise`     space photometry in fluxes (Kepler, TESS): per-cadence variance
  = source counts + background and read-noise variance + (floor * counts)^2.
* `DepthNoise`      difference-image fluxes of a survey quoted by its 5-sigma depths
  (LSST / ELAsTiCC): sky variance (F5/5)^2 per band, plus source Poisson and floor terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def _scatter(rng: np.random.Generator, shape, spread: float) -> np.ndarray:
    return np.exp(spread * rng.standard_normal(shape)) if spread > 0 else np.ones(shape)


@dataclass(frozen=True)
class MagnitudeNoise:
    ref_mag: float
    ref_error: float
    floor: float
    #: log-normal spread of reported errors around sigma(m)
    error_scatter: float = 0.25
    #: fraction of points hit by an outlier (cosmic ray, bad subtraction), and its size
    #: in units of the point's sigma
    outlier_fraction: float = 0.0
    outlier_scale: float = 8.0

    def sigma(self, mag: np.ndarray) -> np.ndarray:
        sky = self.ref_error ** 2 * 10.0 ** (0.8 * (np.asarray(mag) - self.ref_mag))
        return np.sqrt(self.floor ** 2 + sky)

    def apply(self, mag: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        error = self.sigma(mag) * _scatter(rng, mag.shape, self.error_scatter)
        observed = mag + error * rng.standard_normal(mag.shape)
        if self.outlier_fraction > 0:
            hit = rng.random(mag.shape) < self.outlier_fraction
            kick = self.outlier_scale * error * rng.standard_normal(mag.shape)
            observed = np.where(hit, observed + kick, observed)
        return observed, error


@dataclass(frozen=True)
class PhotonNoise:
    ref_mag: float
    #: source photo-electrons per cadence at `ref_mag`
    counts_at_ref: float
    #: background and read-noise variance per cadence, electrons^2
    background_variance: float
    #: relative noise floor (pointing jitter, residual systematics)
    floor: float
    error_scatter: float = 0.02

    def counts(self, mag) -> np.ndarray:
        return self.counts_at_ref * 10.0 ** (-0.4 * (np.asarray(mag) - self.ref_mag))

    def relative_sigma(self, mag) -> np.ndarray:
        """Relative per-cadence precision of a constant star of magnitude `mag`."""
        n = self.counts(mag)
        return np.sqrt(1.0 / n + self.background_variance / n ** 2 + self.floor ** 2)

    def apply(self, relative_flux: np.ndarray, mag: np.ndarray, rng: np.random.Generator,
              *, scale=1.0) -> tuple[np.ndarray, np.ndarray]:
        """`relative_flux` (m, L) around 1 of stars of magnitude `mag` (m,) -> observed flux
        and error in units of `scale` (m,) or scalar (e.g. e-/s at relative flux 1)."""
        n = self.counts(mag)[:, None]
        source = np.clip(relative_flux, 0.0, None) * n
        sigma = np.sqrt(source + self.background_variance + (self.floor * n) ** 2) / n
        error = sigma * _scatter(rng, sigma.shape, self.error_scatter)
        observed = relative_flux + error * rng.standard_normal(sigma.shape)
        scale = np.asarray(scale, dtype=np.float64)
        scale = scale[:, None] if scale.ndim == 1 else scale
        return observed * scale, error * scale


@dataclass(frozen=True)
class DepthNoise:
    """Difference-flux noise from per-band single-visit 5-sigma depths.

    Fluxes use the zero point `zero_point` (SNANA FLUXCAL: 27.5, flux = 10^(-0.4 (m - 27.5))).
    """

    depths: Mapping[str, float] | Sequence[float]
    zero_point: float = 27.5
    #: visit-to-visit scatter of the depth (seeing, moon, airmass), magnitudes
    depth_scatter: float = 0.25
    #: source Poisson variance at F = F5 relative to the sky variance
    source_term: float = 0.1
    floor: float = 0.01

    def apply(self, flux: np.ndarray, band: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        depths = np.asarray(list(self.depths.values()) if isinstance(self.depths, Mapping)
                            else self.depths, dtype=np.float64)
        m5 = depths[band] + self.depth_scatter * rng.standard_normal(flux.shape)
        f5 = 10.0 ** (-0.4 * (m5 - self.zero_point))
        sky = (f5 / 5.0) ** 2
        variance = sky * (1.0 + self.source_term * np.abs(flux) / f5) + (self.floor * flux) ** 2
        error = np.sqrt(variance)
        return flux + error * rng.standard_normal(flux.shape), error
