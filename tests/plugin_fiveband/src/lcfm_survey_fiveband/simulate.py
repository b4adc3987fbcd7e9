"""Simulator of the five-band example survey (`lcfm simulate --survey fiveband`), also the
source of its bundled sample (make_sample.py).

Cadence: a Stripe-82-like survey. Nights separated by log-normal gaps (median 12 d) inside a
yearly season of 80-100 days, over 2,200-2,900 days from MJD ~51,075: ~35-40 nights. Each
night the five bands are observed within five minutes in the order r, i, u, z, g, and 3% of
the single-band points are lost: tens of points per band over several years.

Classes: RRL (RRab: P 0.42-0.95 d) and CEP (fundamental-mode Cepheids, P 2-12 d), both with
peak-to-peak r amplitudes of ~0.1-0.4 mag (`amplitude_scale` 0.35 of the usual range), so
the classes differ mostly by period. Amplitudes scale by band as u 1.35, g 1.2, r 1, i 0.85,
z 0.75. Colours do not tell the classes apart: each star's colours are c x (2.5, 1, 0, -0.4,
-0.6) mag relative to r with c ~ U(0.2, 0.7) for both classes (~0.6 mag spread between
bands, larger than the variability).

Noise: sigma(m)^2 = 0.01^2 + 0.04^2 10^(0.8 (m - 19)) with log-normal scatter of the
reported errors (the u band, fainter, is the noisiest).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from lcfm.simulate import Cadence, Simulated, SurveySimulator
from lcfm.simulate.cadence import compact, nightly_visits
from lcfm.simulate.noise import MagnitudeNoise
from lcfm.simulate.signals import col
from lcfm.simulate.stellar import cepheid, rr_lyrae

#: observing order within a night and minutes after the first exposure
NIGHT_ORDER = (("r", 0.0), ("i", 1.2), ("u", 2.4), ("z", 3.6), ("g", 4.8))
COLOUR_SHAPE = {"u": 2.5, "g": 1.0, "r": 0.0, "i": -0.4, "z": -0.6}
AMPLITUDE = {"u": 1.35, "g": 1.2, "r": 1.0, "i": 0.85, "z": 0.75}
RAW_CLASS = {"RRL": "RRab", "CEP": "DCEP"}


class FiveBandSimulator(SurveySimulator):
    chunk_size = 256
    noise = MagnitudeNoise(ref_mag=19.0, ref_error=0.04, floor=0.01, error_scatter=0.2)

    def cadence(self, m: int, rng) -> Cadence:
        nights = nightly_visits(m, rng, start=51075.0 + rng.uniform(0.0, 100.0, m),
                                baseline=rng.uniform(2200.0, 2900.0, m),
                                night_gap_median=12.0, night_gap_sigma=0.8,
                                min_night_gap=0.9, season_length=rng.uniform(80.0, 100.0, m))
        names = list(self.bands)
        offsets = np.array([minutes / 1440.0 for _, minutes in NIGHT_ORDER])
        codes = np.array([names.index(b) for b, _ in NIGHT_ORDER], dtype=np.int8)
        times = nights.time[..., None] + offsets  # (m, K, 5)
        keep = nights.mask[..., None] & (rng.random(times.shape) >= 0.03)
        band = np.broadcast_to(codes, times.shape)
        cadence = compact(times.reshape(m, -1), keep.reshape(m, -1), band.reshape(m, -1))
        cadence.meta = {"ra": rng.uniform(-50.0, 60.0, m) % 360.0,
                        "dec": rng.uniform(-1.25, 1.25, m)}
        return cadence

    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        generator = {"RRL": partial(rr_lyrae, kind="ab", amplitude_scale=0.35),
                     "CEP": partial(cepheid, mode="fundamental", period_range=(2.0, 12.0),
                                    amplitude_scale=0.35)}[label]
        dmag, params = generator(cadence.time, rng)
        names = list(self.bands)
        colour = np.array([COLOUR_SHAPE[b] for b in names])[cadence.band]
        amplitude = np.array([AMPLITUDE[b] for b in names])[cadence.band]
        mean_r = rng.uniform(15.5, 19.5, cadence.m)
        c = rng.uniform(0.2, 0.7, cadence.m)
        true = col(mean_r) + col(c) * colour + amplitude * dmag
        value, error = self.noise.apply(true, rng)
        meta = {"raw_class": np.full(cadence.m, RAW_CLASS[label], dtype=object),
                "sim_period": params["period"]}
        return Simulated(cadence, value, error, meta)
