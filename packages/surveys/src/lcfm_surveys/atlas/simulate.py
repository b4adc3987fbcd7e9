"""ATLAS simulator (`lcfm simulate --survey atlas`): the four classes of Astromer 2's ATLAS
set (CB, DB, Mira, Pulse; Heinze et al. 2018) in ATLAS's cadence and noise, magnitudes.

Cadence. The variable-star catalogue used ATLAS's first two years (from mid-2015): each
light curve spans 400-730 days; a field is observed every ~2 nights (log-normal gaps),
within a yearly season of 200-280 days, with up to four visits per night ~15 minutes apart
(so the median gap between observations is ~15 minutes). A night is observed in the cyan
(c) or orange (o, 65%) filter; only the bands of the plugin's `band` option are kept
(default o, as Astromer 2): ~200-500 points per light curve.

Noise. sigma(m)^2 = 0.008^2 + 0.07^2 10^(0.8 (m - 18)): ~0.01 mag at o = 14, 0.03 at 17,
0.07 at 18 and 0.18 at 19, with log-normal scatter of the reported errors and 0.3%
outliers.

Classes. CB: contact (W UMa, 0.22-1 d) and ellipsoidal/semi-detached close binaries; DB:
detached eclipsing binaries (0.5-50 d); Mira: Miras (100-600 d, 1.5-5 mag in o); Pulse:
RRab, RRc, high-amplitude delta Scuti stars and Cepheids. Mean magnitudes are uniform in
o = 12.5-18.5 (Miras 11-16); c is fainter by a class colour, with larger amplitudes.
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
    high_amplitude_delta_scuti,
    mira,
    mixture,
    rr_lyrae,
)

RAW_LABEL = {"CB": "CBF", "DB": "DBF", "Mira": "MIRA", "Pulse": "PULSE"}
#: mean c - o colour of each class, and the c / o amplitude ratio
COLOUR = {"CB": 0.3, "DB": 0.3, "Mira": 1.5, "Pulse": 0.25}
C_AMPLITUDE = 1.2


class AtlasSimulator(SurveySimulator):
    chunk_size = 512
    noise = MagnitudeNoise(ref_mag=18.0, ref_error=0.07, floor=0.008, error_scatter=0.2,
                           outlier_fraction=0.003)

    def cadence(self, m: int, rng) -> Cadence:
        baseline = rng.uniform(400.0, 730.0, m)
        keep = [list(self.bands).index(b) for b in self.survey.selected_bands]
        cadence = nightly_visits(
            m, rng, start=57200.0 + rng.uniform(0, 60, m), baseline=baseline,
            night_gap_median=2.0, night_gap_sigma=0.5, min_night_gap=0.9,
            season_length=rng.uniform(200.0, 280.0, m),
            visits_per_night=(0.05, 0.1, 0.15, 0.7), visit_spacing=15.0 / 1440.0,
            band_probabilities=(0.35, 0.65), band_per="night", keep_bands=keep)
        cadence.meta = {"ra": rng.uniform(0.0, 360.0, m),
                        "dec": np.degrees(np.arcsin(rng.uniform(-0.5, 1.0, m)))}
        return cadence

    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        t, m = cadence.time, cadence.m
        generator = {
            "CB": partial(mixture, parts=[
                (0.8, partial(eclipsing_binary, kind="contact")),
                (0.2, partial(eclipsing_binary, kind="semidetached", period_range=(0.3, 3.0)))]),
            "DB": partial(eclipsing_binary, kind="detached", period_range=(0.5, 50.0)),
            "Mira": partial(mira, amplitude_range=(1.5, 5.0)),
            "Pulse": partial(mixture, parts=[
                (0.45, partial(rr_lyrae, kind="ab")), (0.2, partial(rr_lyrae, kind="c")),
                (0.15, high_amplitude_delta_scuti),
                (0.2, partial(cepheid, mode="fundamental", period_range=(1.0, 50.0)))]),
        }[label]
        dmag, params = generator(t, rng)
        mean_o = rng.uniform(11.0, 16.0, m) if label == "Mira" else rng.uniform(12.5, 18.5, m)
        is_c = cadence.band == list(self.bands).index("c")
        true = col(mean_o) + np.where(is_c, COLOUR[label] + C_AMPLITUDE * dmag, dmag)
        value, error = self.noise.apply(true, rng)
        meta = {"period": params["period"],
                "raw_label": np.full(m, RAW_LABEL[label], dtype=object),
                "sim_mean_o": mean_o, "sim_amplitude": params["amplitude"],
                "sim_subclass": params["subclass"]}
        return Simulated(cadence, value, error, meta)
