"""TESS simulator (`lcfm simulate --survey tess_qlp`): ASTRAFier's eight TESS classes
(Gregory et al., "ASTRAFier", sect. 4.2) as QLP full-frame-image light curves, then the
plugin's own preprocessing (10-sigma clip, Gaussian-filter detrending, time from 0,
standardization), so the rows look like ingested QLP rows.

Cadence. One row per sector of the Kepler field that ASTRAFier used (sectors 14, 15 and
26; BTJD): a regular 30-min full-frame grid over a 26.5-27.8-day sector, with the ~1-day
mid-sector gap between the two 13.7-day orbits (data downlink at perigee), cadences at
momentum dumps (every 2.5-5 days) and 3% others dropped as quality-flagged: ~1,200 points.

Noise. Per 30-min cadence (1,440 s effective), photon noise of 2.16e7 e- at T = 10
(~15,000 e-/s), background and read-noise variance 2.3e6 e-^2 and a 60 ppm floor: ~230 ppm
at T = 10, ~2,000 ppm at T = 13.5. Fluxes are relative (QLP normalises to 1).

Systematics. Every light curve carries weak ones; INSTRUMENT/JUNK (which replaces Kepler's
CONSTANT class) has strong ones or none at all ("large recurring systematic trends or a
lack of variability", sect. 4.2): exponential ramps at the start of each orbit, a sawtooth
of pointing drift reset at every momentum dump, and scattered light (Earth and Moon) rising
towards the end of each orbit, often with a 1-day modulation. The astrophysical classes are
those of the Kepler simulator with periods kept below ~13 days (two cycles per sector).
"""

from __future__ import annotations

import numpy as np
from lcfm.simulate import Cadence, Simulated, SurveySimulator
from lcfm.simulate.cadence import regular_segments
from lcfm.simulate.noise import PhotonNoise
from lcfm.simulate.signals import col, log_uniform

from lcfm_surveys.kepler.simulate import ramps_after, space_photometry_signal

FFI_CADENCE = 30.0 / 1440.0  # days
SECTOR_START = {14: 1683.35, 15: 1711.37, 26: 2010.26}  # BTJD


class TessSimulator(SurveySimulator):
    chunk_size = 256
    noise = PhotonNoise(ref_mag=10.0, counts_at_ref=2.16e7, background_variance=2.3e6,
                        floor=6e-5)

    def cadence(self, m: int, rng) -> Cadence:
        sector = rng.choice(list(SECTOR_START), size=m)
        start = np.vectorize(SECTOR_START.get)(sector) + rng.uniform(-0.05, 0.05, m)
        duration = rng.uniform(26.5, 27.8, m)
        mid_gap = duration / 2 + rng.uniform(-0.3, 0.3, m)
        gap_width = rng.uniform(0.8, 1.3, m)
        interval = rng.uniform(2.5, 5.0, m)
        dumps = col(interval) * (np.arange(12)[None, :] + col(rng.uniform(0.2, 1.0, m)))
        gaps = [(mid_gap, gap_width)] + [(dumps[:, k], np.full(m, 2.2 * FFI_CADENCE))
                                         for k in range(dumps.shape[1])]
        cadence = regular_segments(m, rng, step=FFI_CADENCE, duration=duration, start=start,
                                   gaps=gaps, drop_fraction=0.03)
        orbit_starts = np.stack([start, start + mid_gap + gap_width / 2], axis=1)
        cadence.events = {"orbit_starts": orbit_starts,
                          "orbit_ends": np.stack([start + mid_gap - gap_width / 2,
                                                  start + duration], axis=1),
                          "dumps": col(start) + dumps}
        cadence.meta = {"sector": sector, "camera": rng.integers(1, 5, m),
                        "ccd": rng.integers(1, 5, m)}
        return cadence

    def systematics(self, cadence: Cadence, rng, strength: np.ndarray) -> np.ndarray:
        """Orbit-start ramps, momentum-dump sawtooth and scattered light, relative flux,
        scaled per light curve by `strength` (~1e-4 weak, 1e-3 - 2e-2 junk)."""
        t, m = cadence.time, cadence.m
        events = cadence.events
        ramps = ramps_after(t, events["orbit_starts"], strength * rng.uniform(-2, 2, m),
                            rng.uniform(0.2, 1.5, m))
        dumps = events["dumps"]
        since = t[:, :, None] - dumps[:, None, :]  # (m, L, K)
        since = np.where(since >= 0, since, np.inf).min(axis=2)
        since = np.where(np.isfinite(since), since, t - t[:, :1])
        interval = np.diff(dumps[:, :2], axis=1)
        sawtooth = col(strength * rng.uniform(-1, 1, m)) * (since / interval - 0.5)
        to_end = np.stack([np.abs(t - events["orbit_ends"][:, k:k + 1]) for k in range(2)])
        to_end = to_end.min(axis=0)
        scattered = col(strength * rng.uniform(0, 2, m)) * np.exp(
            -to_end / col(rng.uniform(0.5, 2.5, m)))
        scattered *= 1 + col(rng.uniform(0, 1, m) * (rng.random(m) < 0.5)) * np.sin(
            2 * np.pi * t / col(rng.uniform(0.95, 1.05, m)))
        return ramps + sawtooth + scattered

    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        m = cadence.m
        signal, params = space_photometry_signal(label, cadence, rng, exposure=FFI_CADENCE,
                                                 max_period=13.0, nu_max_range=(8.0, 200.0))
        tessmag = rng.uniform(6.5, 10.5, m) if label == "SOLARLIKE" else rng.uniform(7.5, 13.5, m)
        strength = log_uniform(rng, 2e-5, 3e-4, m)
        if label == "INSTRUMENT/JUNK":
            quiet = rng.random(m) < 0.25  # "a lack of variability"
            strength = np.where(quiet, strength, log_uniform(rng, 1e-3, 2e-2, m))
            params["subclass"] = np.where(quiet, "no variability", "systematics").astype(object)
            params["amplitude"] = np.where(quiet, 0.0, strength)
        flux = 1.0 + signal + self.systematics(cadence, rng, strength)
        value, error = self.noise.apply(flux, tessmag, rng)
        meta = {"tic": rng.integers(1_000_000, 400_000_000, m), "tessmag": tessmag,
                "ra": rng.normal(291.0, 4.0, m), "dec": rng.normal(44.5, 3.5, m),
                "cadence_min": np.full(m, 30.0), "format": np.full(m, "simulated", object),
                "time_system": np.full(m, "BTJD", object), "time_offset": np.zeros(m),
                "sim_period": params["period"], "sim_amplitude": params["amplitude"],
                "sim_subclass": params["subclass"]}
        return Simulated(cadence, value, error, meta)
