"""Kepler simulator (`lcfm simulate --survey kepler`): ASTRAFier's eight Kepler classes
(Gregory et al., "ASTRAFier", sect. 4.1: the Audenaert et al. 2021 benchmark classes) as
long-cadence PDCSAP fluxes, then the plugin's own preprocessing (standardization).

Cadence. One row per quarter (Q2-Q16), as the reader writes them: a regular 29.4244-min
grid over 88-97 days (BKJD), two ~1-day monthly data-downlink gaps, and 2% of the cadences
dropped as quality-flagged: ~4,300 points per light curve.

Noise. Per 29.4-min cadence, photon noise of 3.5e8 e- at Kp = 12 (Kepler Instrument
Handbook: ~2.1e5 e-/s), background and read-noise variance 1e8 e-^2 and a 40 ppm floor:
~70 ppm at Kp = 12, ~500 ppm at Kp = 15. Fluxes are in e-/s; every light curve also
carries small PDC residuals (a slow polynomial drift and thermal ramps after the downlink
gaps).

Classes (`space_photometry_signal`, shared with TESS): APERIODIC damped random walks and
stochastic low-frequency variability; CONSTANT noise only; CONTACT_ROT contact binaries
and spotted rotators with evolving spots; DSCT_BCEP p-mode pulsators (5-80 d^-1,
super-Nyquist modes alias and are smeared by the 29.4-min exposures); ECLIPSE detached
and semi-detached eclipsing binaries and planetary transits; GDOR_SPB g-mode pulsators
(0.3-3 d^-1, near-regular period spacing); RRLYR_CEPH RR Lyrae (0.2-1 d) and Cepheids
(1-50 d); SOLARLIKE red giants (granulation plus the Gaussian p-mode excess at nu_max).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from lcfm.simulate import Cadence, Simulated, SurveySimulator
from lcfm.simulate.cadence import regular_segments
from lcfm.simulate.noise import PhotonNoise
from lcfm.simulate.signals import col, log_uniform
from lcfm.simulate.stellar import (
    aperiodic,
    cepheid,
    eclipsing_binary,
    g_mode_pulsator,
    mixture,
    p_mode_pulsator,
    rr_lyrae,
    solar_like,
    spotted_rotator,
    to_relative_flux,
)

LONG_CADENCE = 29.4244 / 1440.0  # days
RATE_KP12 = 2.1e5  # e-/s of a Kp = 12 star


def space_photometry_signal(label: str, cadence: Cadence, rng, *, exposure: float,
                            max_period: float, nu_max_range=(8.0, 220.0)) -> tuple:
    """Relative-flux signal (m, L) and params of one ASTRAFier class on a regular-grid
    cadence. `max_period` (days) keeps at least two cycles or eclipses in a light curve."""
    t, m, _length, step = cadence.time, cadence.m, cadence.time.shape[1], cadence.step

    def as_flux(generator):
        def run(times, rng):
            dmag, params = generator(times, rng)
            return to_relative_flux(dmag), params
        return run

    def on_grid(generator, **kwargs):
        # grid generators draw whole light curves: run them on the rows they are given
        return lambda times, rng: generator(times.shape[1], step, rng, times.shape[0], **kwargs)

    if label in ("CONSTANT", "INSTRUMENT/JUNK"):
        zeros = np.zeros_like(t)
        return zeros, {"period": np.full(m, np.nan), "amplitude": np.zeros(m),
                       "subclass": np.full(m, "constant", dtype=object)}
    parts = {
        "APERIODIC": [(1.0, on_grid(aperiodic))],
        "CONTACT_ROT": [
            (0.45, as_flux(partial(eclipsing_binary, kind="contact"))),
            (0.55, on_grid(spotted_rotator, period_range=(0.5, min(30.0, max_period))))],
        "DSCT_BCEP": [(1.0, as_flux(partial(p_mode_pulsator, exposure=exposure)))],
        "ECLIPSE": [
            (0.6, as_flux(partial(eclipsing_binary, kind="detached",
                                  period_range=(0.5, max_period)))),
            (0.15, as_flux(partial(eclipsing_binary, kind="semidetached"))),
            (0.25, as_flux(partial(eclipsing_binary, kind="transit",
                                   period_range=(0.5, max_period))))],
        "GDOR_SPB": [(1.0, as_flux(partial(g_mode_pulsator, exposure=exposure)))],
        "RRLYR_CEPH": [
            (0.45, as_flux(partial(rr_lyrae, kind="ab", amplitude_scale=0.8))),
            (0.2, as_flux(partial(rr_lyrae, kind="c", amplitude_scale=0.8))),
            (0.25, as_flux(partial(cepheid, mode="fundamental", amplitude_scale=0.8,
                                   period_range=(1.0, max(2.0, max_period))))),
            (0.1, as_flux(partial(cepheid, mode="overtone", amplitude_scale=0.8)))],
        "SOLARLIKE": [(1.0, on_grid(solar_like, nu_max_range=nu_max_range,
                                    exposure=exposure))],
    }[label]
    return mixture(t, rng, parts)


def ramps_after(t: np.ndarray, times, amplitude, tau) -> np.ndarray:
    """Exponential settling ramps amplitude * exp(-(t - t_k) / tau) starting at each of the
    (m, K) event times t_k (thermal settling after a downlink, scattered light)."""
    out = np.zeros_like(t)
    for k in range(times.shape[1]):
        since = t - times[:, k:k + 1]
        out += np.where(since >= 0, np.exp(-np.clip(since, 0, None) / col(tau)), 0.0)
    return col(amplitude) * out


class KeplerSimulator(SurveySimulator):
    chunk_size = 128
    noise = PhotonNoise(ref_mag=12.0, counts_at_ref=3.5e8, background_variance=1e8,
                        floor=4e-5)

    def cadence(self, m: int, rng) -> Cadence:
        quarter = rng.integers(2, 17, m)
        start = 169.75 + 93.0 * (quarter - 2) + rng.uniform(-1.0, 1.0, m)
        duration = rng.uniform(88.0, 97.0, m)
        gaps = [(rng.uniform(28.0, 34.0, m), rng.uniform(0.6, 1.2, m)),
                (rng.uniform(59.0, 65.0, m), rng.uniform(0.6, 1.2, m))]
        cadence = regular_segments(m, rng, step=LONG_CADENCE, duration=duration, start=start,
                                   gaps=gaps, drop_fraction=0.02)
        cadence.meta = {"quarter": quarter, "season": (quarter + 2) % 4}
        cadence.events = {"downlinks": np.stack([start + gaps[0][0], start + gaps[1][0]], 1)}
        return cadence

    def systematics(self, cadence: Cadence, rng) -> np.ndarray:
        """PDC residuals: a cubic drift of ~50 ppm and thermal ramps after the downlinks."""
        t, m = cadence.time, cadence.m
        x = (t - t[:, :1]) / (t[:, -1:] - t[:, :1]) * 2 - 1
        c1, c2, c3 = (col(rng.normal(0, 5e-5, m)) for _ in range(3))
        drift = x * (c1 + x * (c2 + x * c3))
        ramps = ramps_after(t, cadence.events["downlinks"], -log_uniform(rng, 1e-6, 1e-4, m),
                            rng.uniform(0.3, 2.0, m))
        return drift + ramps

    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        m = cadence.m
        signal, params = space_photometry_signal(label, cadence, rng, exposure=LONG_CADENCE,
                                                 max_period=40.0)
        kepmag = rng.uniform(9.0, 13.5, m) if label == "SOLARLIKE" else rng.uniform(9.5, 15.5, m)
        flux = 1.0 + signal + self.systematics(cadence, rng)
        rate = RATE_KP12 * 10 ** (-0.4 * (kepmag - 12.0))
        value, error = self.noise.apply(flux, kepmag, rng, scale=rate)
        meta = {"kic": rng.integers(1_000_000, 13_000_000, m), "kepmag": kepmag,
                "ra": rng.normal(291.0, 4.0, m), "dec": rng.normal(44.5, 3.5, m),
                "flux_column": np.full(m, "PDCSAP_FLUX", dtype=object),
                "time_system": np.full(m, "BKJD", dtype=object),
                "sim_period": params["period"], "sim_amplitude": params["amplitude"],
                "sim_subclass": params["subclass"]}
        return Simulated(cadence, value, error, meta)
