"""MACHO simulator (`lcfm simulate --survey macho`): Alcock's six classes in MACHO's
cadence and noise, as instrumental magnitudes like the MACHO archive files.

Cadence. MACHO observed the LMC, SMC and bulge from Mount Stromlo from mid-1992 to end
1999 (MJD ~48,800-51,550). Each simulated light curve spans 1,500-2,750 days; nights are
separated by log-normal gaps (median 3.3 d, so the median gap between observations is
3-4 days) inside a yearly observing season of 200-320 days: ~300-550 points. One light
curve is one band, blue "B" or red "R", as the archive stores them.

Noise. sigma(m)^2 = 0.004^2 + 0.07^2 10^(0.8 (m + 5)) in instrumental magnitudes (about
0.004 mag for the brightest stars, 0.07 at -5 and 0.13 at -4.3, the LMC RR Lyrae level,
as in the real light curves of the bundled sample), log-normal scatter of the reported
errors, and 0.5% outliers (which the Astromer 2 percentile clip at ingest removes).

Classes (periods, amplitudes and shapes from `lcfm.simulate.stellar`): Cep_0
fundamental-mode Cepheids (1.5-40 d) and Cep_1 first-overtone Cepheids (0.3-6 d) on the LMC
period-luminosity relations; EC contact, detached and semi-detached eclipsing binaries;
LPV semi-regular variables and Miras; RRab and RRc at the LMC RR Lyrae magnitude.
Instrumental magnitudes are V - 23.6 (B) and R - 23.6 (R).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from lcfm.simulate import Cadence, Simulated, SurveySimulator
from lcfm.simulate.cadence import nightly_visits
from lcfm.simulate.noise import MagnitudeNoise
from lcfm.simulate.signals import col
from lcfm.simulate.stellar import (
    cepheid,
    eclipsing_binary,
    mira,
    mixture,
    rr_lyrae,
    semiregular,
)

from lcfm_surveys.macho.taxonomy import RAW_CODE_TO_CLASS

INSTRUMENTAL_OFFSET = 23.6  # V (or R) minus MACHO instrumental magnitude
BAND_AMPLITUDE = np.array([1.0, 0.75])  # B, R amplitudes relative to V
CLASS_CODE = {c: code for code, c in reversed(RAW_CODE_TO_CLASS.items()) if c}
#: mean V - R colour of each class (giants redder than pulsators)
COLOUR = {"Cep_0": 0.45, "Cep_1": 0.4, "EC": 0.2, "LPV": 1.3, "RRab": 0.3, "RRc": 0.25}


def _mean_v(label: str, period: np.ndarray, rng) -> np.ndarray:
    """Mean V of a star of the class at the LMC distance (with 0-0.4 mag of extinction)."""
    m = period.size
    extinction = rng.uniform(0.0, 0.4, m)
    if label == "Cep_0":  # LMC V-band period-luminosity relation (Soszynski et al. 2008)
        v = 17.1 - 2.78 * np.log10(period) + rng.normal(0, 0.15, m)
    elif label == "Cep_1":
        v = 16.6 - 3.0 * np.log10(period) + rng.normal(0, 0.15, m)
    elif label in ("RRab", "RRc"):
        v = rng.normal(19.3, 0.12, m)
    elif label == "LPV":
        v = rng.uniform(14.0, 17.5, m)
    else:
        v = rng.uniform(15.0, 20.5, m)
    return v + extinction


class MachoSimulator(SurveySimulator):
    chunk_size = 512
    noise = MagnitudeNoise(ref_mag=-5.0, ref_error=0.07, floor=0.004, error_scatter=0.3,
                           outlier_fraction=0.005)

    def cadence(self, m: int, rng) -> Cadence:
        baseline = rng.uniform(1500.0, 2750.0, m)
        start = 48800.0 + rng.uniform(0.0, 1.0, m) * (2750.0 - baseline)
        cadence = nightly_visits(m, rng, start=start, baseline=baseline, night_gap_median=3.3,
                                 night_gap_sigma=0.75, min_night_gap=0.9,
                                 season_length=rng.uniform(200.0, 320.0, m))
        band = rng.integers(0, 2, m).astype(np.int8)  # one band per light curve
        cadence.band = np.broadcast_to(band[:, None], cadence.time.shape).copy()
        cadence.meta = {
            "field": rng.integers(1, 83, m), "tile": rng.integers(1, 20000, m),
            "seq": rng.integers(1, 5000, m),
            "ra": rng.normal(80.9, 3.0, m), "dec": rng.normal(-69.8, 1.5, m),
        }
        return cadence

    def generators(self, label: str):
        return {
            "Cep_0": partial(cepheid, mode="fundamental", period_range=(1.5, 40.0)),
            "Cep_1": partial(cepheid, mode="overtone", period_range=(0.3, 6.0)),
            "EC": partial(mixture, parts=[
                (0.35, partial(eclipsing_binary, kind="contact")),
                (0.45, partial(eclipsing_binary, kind="detached", period_range=(1.0, 60.0))),
                (0.20, partial(eclipsing_binary, kind="semidetached"))]),
            "LPV": partial(mixture, parts=[(0.8, semiregular), (0.2, mira)]),
            "RRab": partial(rr_lyrae, kind="ab"),
            "RRc": partial(rr_lyrae, kind="c"),
        }[label]

    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        t = cadence.time
        dmag, params = self.generators(label)(t, rng)
        band = cadence.band[:, 0]
        v = _mean_v(label, params["period"], rng)
        mean = v - INSTRUMENTAL_OFFSET - np.where(band == 1, COLOUR[label], 0.0)
        true = col(mean) + dmag * col(BAND_AMPLITUDE[band])
        value, error = self.noise.apply(true, rng)
        b_minus_r = np.full(cadence.m, COLOUR[label])
        meta = {
            "raw_class": np.full(cadence.m, CLASS_CODE[label], dtype=object),
            "mean_mag": mean, "median_mag": mean, "mean_b_minus_r": b_minus_r,
            "median_b_minus_r": b_minus_r, "format": np.full(cadence.m, "simulated", object),
            "sim_period": params["period"],
            "sim_amplitude": params["amplitude"] * BAND_AMPLITUDE[band],
            "sim_subclass": params["subclass"],
        }
        return Simulated(cadence, value, error, meta)
