"""ELAsTiCC simulator (`lcfm simulate --survey elasticc`): the 20-class scheme of ATAT and
ATCAT with one simplified, distinct generator per class, as LSST-like difference fluxes
(SNANA FLUXCAL, zero point 27.5) in ugrizY, all bands interleaved in one time-sorted
sequence, then the plugin's own preprocessing (30-day alert window, t = 0 at the first
point).

Cadence (Rubin wide-fast-deep-like). Each light curve covers 100-300 days from MJD
60,800-61,700; observing nights are ~3 days apart (log-normal gaps) inside a yearly season
of 180-240 days; a night holds 1, 2 or 3 visits (10/50/40%) ~33 min apart, each visit in
a band drawn with the WFD filter shares (u 6%, g 9%, r 22%, i 22%, z 20%, Y 21%):
~40-160 points per light curve, median gap ~0.03 d (visits within a night).

Noise. Single-visit 5-sigma depths u 23.9, g 25.0, r 24.7, i 24.0, z 23.3, Y 22.1 (Rubin
SRD / LSST science book), varying by 0.25 mag from visit to visit; sky-limited flux errors
F5 / 5 plus source Poisson and 1% calibration terms. Milky Way extinction E(B-V) 0-0.2.

Signals. Extragalactic transients are rest-frame Bazin rises and declines, time-dilated
by (1 + z), at a peak absolute magnitude and redshift typical of the class (flat LCDM
distance modulus), with a blackbody colour that cools after peak: Ia (secondary i/z
maximum), Ib/c, II (plateau, then a drop), Iax, 91bg (red, fast), SN-like/Other (IIb:
shock-cooling peak before the main one), KN (days-long, blue to red), SLSN and PISN (slow,
bright, distant), TDE (hot, constant colour, t^-5/3 decline), ILOT (faint, nearby), CART
(fast, red). Galactic and non-explosive classes: M-dwarf flares (minutes-long, very blue
flares of a red dwarf), dwarf novae (recurrent 2-5 mag outbursts), microlensing
(achromatic Paczynski magnification), Cepheids, RR Lyrae, delta Scuti stars and eclipsing
binaries (periodic, difference flux relative to the mean star), AGN (damped random walk,
larger in bluer bands). Transient peaks and first outbursts fall 5-35 days after the first
observation, so the first alert leaves the 30-day window of ATCAT nearly untouched and
the number of points and time span do not depend on the class.

`meta` has the fields of ingested ELAsTiCC rows (alert_mjd = first 5-sigma detection,
gentype and raw_class of the corresponding ELAsTiCC model, mwebv, z_final, host photo-z;
other features NaN) plus sim_period and sim_peak_mjd (simulation truth).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from lcfm.simulate import Cadence, Simulated, SurveySimulator
from lcfm.simulate.cadence import nightly_visits
from lcfm.simulate.noise import DepthNoise
from lcfm.simulate.signals import (
    bazin,
    col,
    distance_modulus,
    fast_rise_exponential_decay,
    log_uniform,
    ou_process,
    paczynski,
    planck_ratio,
)
from lcfm.simulate.stellar import (
    cepheid,
    eclipsing_binary,
    high_amplitude_delta_scuti,
    mixture,
    p_mode_pulsator,
    rr_lyrae,
)

from lcfm_surveys.elasticc.bands import LSST_WAVELENGTHS
from lcfm_surveys.elasticc.metadata import METADATA_FEATURES
from lcfm_surveys.elasticc.taxonomy import ELASTICC_GENTYPES

WAVELENGTH = np.array(list(LSST_WAVELENGTHS.values()))
R_WAVELENGTH = LSST_WAVELENGTHS["r"]
DEPTHS = (23.9, 25.0, 24.7, 24.0, 23.3, 22.1)
BAND_SHARES = (0.06, 0.09, 0.22, 0.22, 0.20, 0.21)
#: A_band / E(B-V) for the LSST filters (Schlafly & Finkbeiner 2011, R_V = 3.1)
EXTINCTION = np.array([4.76, 3.66, 2.70, 2.06, 1.58, 1.31])
#: pulsation amplitude relative to r (larger in the blue)
PULSATION = np.array([1.5, 1.3, 1.0, 0.8, 0.7, 0.65])
ZERO_POINT = 27.5


@dataclass(frozen=True)
class Explosive:
    """Ranges of an extragalactic transient (times in rest-frame days)."""

    magnitude: tuple[float, float]  # peak absolute magnitude: mean, spread
    redshift: tuple[float, float]
    rise: tuple[float, float]  # Bazin tau_rise
    fall: tuple[float, float]  # Bazin tau_fall
    temperature: tuple[float, float]  # at peak, K
    cool_to: float  # K, long after peak
    cooling: tuple[float, float]  # e-folding time of the temperature, days


TRANSIENTS = {
    "Ia": Explosive((-19.3, 0.2), (0.03, 0.6), (3.0, 4.5), (20, 35), (11e3, 13e3), 5500, (12, 20)),
    "Ib/c": Explosive((-17.6, 0.5), (0.02, 0.3), (2.0, 3.5), (15, 25), (8e3, 10e3), 4500, (8, 14)),
    "II": Explosive((-16.8, 0.8), (0.01, 0.25), (1.0, 2.5), (60, 150), (13e3, 18e3), 5000, (5, 10)),
    "Iax": Explosive((-16.5, 0.8), (0.01, 0.2), (2.0, 3.0), (10, 18), (9e3, 11e3), 5000, (8, 12)),
    "91bg": Explosive((-17.8, 0.3), (0.01, 0.15), (2.0, 3.0), (10, 15), (6e3, 8e3), 4500, (6, 10)),
    "SN-like/Other": Explosive((-17.2, 0.5), (0.01, 0.2), (2.0, 3.5), (18, 30), (7e3, 9e3), 4500,
                               (8, 14)),
    "KN": Explosive((-15.5, 0.7), (0.005, 0.06), (0.3, 0.6), (1.5, 4.0), (5e3, 7e3), 2500,
                    (1.5, 3)),
    "SLSN": Explosive((-21.2, 0.6), (0.1, 1.5), (8, 20), (30, 70), (14e3, 18e3), 7000, (30, 60)),
    "TDE": Explosive((-19.5, 0.7), (0.02, 0.4), (5, 12), (20, 60), (2e4, 4e4), 2e4, (1e3, 1e3)),
    "ILOT": Explosive((-12.5, 1.0), (0.001, 0.005), (3, 10), (20, 60), (6e3, 8e3), 4000, (15, 30)),
    "CART": Explosive((-15.8, 0.5), (0.005, 0.08), (2.0, 4.0), (8, 15), (7e3, 9e3), 4000, (6, 10)),
    "PISN": Explosive((-20.5, 0.7), (0.1, 1.5), (25, 50), (80, 200), (9e3, 11e3), 6000, (60, 100)),
}
#: the ELAsTiCC model (SNANA GENTYPE) each class stands for, in meta["gentype"/"raw_class"]
GENTYPE = {"Ia": 10, "Ib/c": 20, "II": 30, "Iax": 12, "91bg": 11, "SN-like/Other": 37,
           "KN": 50, "M-dwarf Flare": 82, "Dwarf Novae": 84, "uLens": 87, "SLSN": 40,
           "TDE": 42, "ILOT": 45, "CART": 46, "PISN": 59, "Cepheid": 90, "RR Lyrae": 80,
           "Delta Scuti": 91, "EB": 83, "AGN": 60}


def _ab_flux(mag) -> np.ndarray:
    return 10.0 ** (-0.4 * (np.asarray(mag) - ZERO_POINT))


def _observed_time_near_start(cadence: Cadence, rng, days: float = 30.0) -> np.ndarray:
    """(m,) a random observation time within `days` of each light curve's first one."""
    first = cadence.first()
    early = cadence.mask & (cadence.time <= col(first + days))
    count = np.maximum(early.sum(axis=1), 1)
    pick = np.minimum((rng.random(cadence.m) * count).astype(int), count - 1)
    order = np.argsort(np.where(early, cadence.time, np.inf), axis=1)
    return cadence.time[np.arange(cadence.m), order[np.arange(cadence.m), pick]]


class ElasticcSimulator(SurveySimulator):
    chunk_size = 1024
    noise = DepthNoise(DEPTHS, zero_point=ZERO_POINT)

    def cadence(self, m: int, rng) -> Cadence:
        return nightly_visits(
            m, rng, start=rng.uniform(60800.0, 61700.0, m), baseline=rng.uniform(100, 300, m),
            night_gap_median=2.5, night_gap_sigma=0.6, min_night_gap=0.9,
            season_length=rng.uniform(180.0, 240.0, m), visits_per_night=(0.1, 0.5, 0.4),
            visit_spacing=33.0 / 1440.0, band_probabilities=BAND_SHARES, band_per="visit")

    # ---- extragalactic transients ----------------------------------------------------------
    def transient(self, label: str, cadence: Cadence, rng) -> tuple[np.ndarray, dict]:
        spec, m = TRANSIENTS[label], cadence.m
        z = rng.uniform(*spec.redshift, m)
        peak_mag = rng.normal(*spec.magnitude, m) + distance_modulus(z)
        t_peak = cadence.first() + rng.uniform(5.0, 35.0, m)
        x = (cadence.time - col(t_peak)) / col(1 + z)  # rest-frame days from peak
        tau_rise, tau_fall = rng.uniform(*spec.rise, m), rng.uniform(*spec.fall, m)
        if label == "TDE":  # power-law fallback accretion after peak
            shape = np.where(x < 0, np.exp(np.clip(x, -60 * col(tau_rise), 0) / col(tau_rise)),
                             (1 + np.clip(x, 0, None) / col(tau_fall)) ** (-5 / 3))
        else:
            t0 = -tau_rise * np.log(np.maximum(tau_fall, 1.01 * tau_rise) / tau_rise - 1)
            shape = bazin(x, t0, tau_rise, tau_fall)
        t_hot = rng.uniform(*spec.temperature, m)
        temperature = spec.cool_to + col(t_hot - spec.cool_to) * np.exp(
            -np.clip(x, 0, None) / col(rng.uniform(*spec.cooling, m)))
        wave = WAVELENGTH[cadence.band]
        colour = planck_ratio(wave, temperature, R_WAVELENGTH, col(z))
        if label == "Ia":  # secondary maximum in the near infrared ~4 weeks after peak
            weight = np.clip((wave - 6000.0) / 1500.0, 0, 1)
            shape = shape + col(rng.uniform(0.2, 0.45, m)) * weight * np.exp(
                -0.5 * ((x - col(rng.uniform(24, 32, m))) / 6.0) ** 2)
        elif label == "II":  # end of the hydrogen-recombination plateau
            drop = 1.0 / (1.0 + np.exp(-(x - col(rng.uniform(80, 120, m))) / 4.0))
            shape = shape * (1 - 0.9 * drop)
        elif label == "SN-like/Other":  # IIb: shock-cooling peak before the main peak
            early = fast_rise_exponential_decay(x, -rng.uniform(12, 20, m), 0.5,
                                                rng.uniform(2, 4, m))
            shape = shape + col(rng.uniform(0.4, 0.9, m)) * early * planck_ratio(
                wave, 2e4, R_WAVELENGTH, col(z)) / np.maximum(colour, 1e-6)
        flux = col(_ab_flux(peak_mag)) * shape * colour
        return flux, {"z": z, "peak": t_peak, "period": np.full(m, np.nan)}

    # ---- galactic and non-explosive classes -------------------------------------------------
    def flares(self, label: str, cadence: Cadence, rng) -> tuple[np.ndarray, dict]:
        """M-dwarf flares (minutes, 10,000 K) or dwarf-nova outbursts (days, recurrent);
        the first one is caught by an observation in the first 30 days."""
        m, t = cadence.m, cadence.time
        wave = WAVELENGTH[cadence.band]
        n_events = 6
        if label == "M-dwarf Flare":
            quiescent = _ab_flux(rng.uniform(17.0, 21.0, m))
            rise, decay = log_uniform(rng, 0.002, 0.01, m), log_uniform(rng, 0.02, 0.3, m)
            gaps = rng.exponential(col(log_uniform(rng, 3.0, 40.0, m)), (m, n_events))
            amps = quiescent[:, None] * log_uniform(rng, 0.3, 5.0, (m, n_events))
            temperature, period = 1e4, np.full(m, np.nan)
        else:
            quiescent = _ab_flux(rng.uniform(19.0, 23.0, m))
            rise, decay = rng.uniform(0.3, 1.0, m), rng.uniform(2.0, 6.0, m)
            recurrence = log_uniform(rng, 20.0, 150.0, m)
            gaps = col(recurrence) * rng.uniform(0.8, 1.2, (m, n_events))
            amps = quiescent[:, None] * (10 ** (0.4 * rng.uniform(2.0, 5.0, (m, n_events))) - 1)
            temperature, period = 1.5e4, recurrence
        first = _observed_time_near_start(cadence, rng) - rng.uniform(0, 1, m) * decay
        times = col(first) + np.cumsum(gaps, axis=1) - gaps[:, :1]
        profile = np.zeros_like(t)
        for k in range(n_events):
            profile += amps[:, k:k + 1] * fast_rise_exponential_decay(t, times[:, k], rise, decay)
        flux = profile * planck_ratio(wave, temperature, R_WAVELENGTH)
        return flux, {"z": np.zeros(m), "peak": first, "period": period}

    def microlensing(self, cadence: Cadence, rng) -> tuple[np.ndarray, dict]:
        m = cadence.m
        t0 = cadence.first() + rng.uniform(5.0, 35.0, m)
        magnification = paczynski(cadence.time, t0, log_uniform(rng, 10, 80, m),
                                  log_uniform(rng, 0.05, 1.0, m))
        source = _ab_flux(rng.uniform(18.5, 22.5, m)) * rng.uniform(0.3, 1.0, m)
        colour = planck_ratio(WAVELENGTH[cadence.band], col(rng.uniform(4500, 7000, m)),
                              R_WAVELENGTH)
        flux = col(source) * colour * (magnification - 1)
        return flux, {"z": np.zeros(m), "peak": t0, "period": np.full(m, np.nan)}

    def variable(self, label: str, cadence: Cadence, rng) -> tuple[np.ndarray, dict]:
        """Periodic variables and AGN: difference flux F_mean (10^(-0.4 dm) - 1) against a
        template of the mean star."""
        m, t, band = cadence.m, cadence.time, cadence.band
        wave = WAVELENGTH[band]
        z = np.zeros(m)
        if label == "AGN":
            z = rng.uniform(0.1, 2.5, m)
            sigma = rng.uniform(0.1, 0.3, m) / np.sqrt(2)
            dmag = ou_process(t, log_uniform(rng, 50, 400, m) * (1 + z), sigma, rng)
            dmag = dmag * (wave / R_WAVELENGTH) ** -0.5
            mean_r, params = rng.uniform(19.0, 22.5, m), {"period": np.full(m, np.nan)}
            mean = col(_ab_flux(mean_r)) * (wave / R_WAVELENGTH) ** 0.5
        else:
            generator, mag_range, temp_range, scale = {
                "Cepheid": (partial(cepheid, mode="fundamental", period_range=(1.0, 50.0)),
                            (15.0, 20.0), (5500, 6500), PULSATION),
                "RR Lyrae": (partial(mixture, parts=[(0.7, partial(rr_lyrae, kind="ab")),
                                                     (0.3, partial(rr_lyrae, kind="c"))]),
                             (15.5, 20.5), (6500, 7500), PULSATION),
                "Delta Scuti": (partial(mixture, parts=[
                    (0.6, high_amplitude_delta_scuti),
                    (0.4, partial(p_mode_pulsator, amplitude_range=(0.02, 0.15)))]),
                    (14.0, 19.5), (7000, 8500), PULSATION),
                "EB": (partial(mixture, parts=[
                    (0.5, partial(eclipsing_binary, kind="detached", period_range=(0.5, 20.0))),
                    (0.3, partial(eclipsing_binary, kind="contact")),
                    (0.2, partial(eclipsing_binary, kind="semidetached"))]),
                    (15.0, 20.5), (4500, 10000), np.ones(6)),
            }[label]
            dmag, params = generator(t, rng)
            dmag = dmag * scale[band]
            mean_r = rng.uniform(*mag_range, m)
            mean = col(_ab_flux(mean_r)) * planck_ratio(wave, col(rng.uniform(*temp_range, m)),
                                                        R_WAVELENGTH)
        flux = mean * (10 ** (-0.4 * dmag) - 1)
        return flux, {"z": z, "peak": np.full(m, np.nan), "period": params["period"]}

    # ---- assembly -------------------------------------------------------------------------
    def light_curves(self, label: str, cadence: Cadence, rng) -> Simulated:
        m = cadence.m
        if label in TRANSIENTS:
            flux, truth = self.transient(label, cadence, rng)
        elif label in ("M-dwarf Flare", "Dwarf Novae"):
            flux, truth = self.flares(label, cadence, rng)
        elif label == "uLens":
            flux, truth = self.microlensing(cadence, rng)
        else:
            flux, truth = self.variable(label, cadence, rng)
        galactic = truth["z"] == 0
        mwebv = np.where(galactic, rng.uniform(0.02, 0.3, m), rng.uniform(0.0, 0.2, m))
        flux = flux * 10 ** (-0.4 * col(mwebv) * EXTINCTION[cadence.band])
        value, error = self.noise.apply(flux, cadence.band, rng)
        detected = cadence.mask & (np.abs(value) >= 5 * error)
        any_detection = detected.any(axis=1)
        alert = np.where(any_detection, np.where(detected, cadence.time, np.inf).min(axis=1),
                         np.nan)
        last = np.where(any_detection, np.where(detected, cadence.time, -np.inf).max(axis=1),
                        np.nan)
        return Simulated(cadence, value, error, self.meta(label, cadence, rng, truth, mwebv,
                                                          alert, last))

    def meta(self, label, cadence, rng, truth, mwebv, alert, last) -> dict:
        """The field layout of ingested ELAsTiCC rows (`metadata.object_meta`)."""
        m = cadence.m
        z = truth["z"]
        galactic = z == 0
        photometric = rng.random(m) < 0.7
        z_err = np.where(galactic, 0.0, np.where(photometric, 0.03 * (1 + z), 0.001))
        z_final = np.where(galactic, 0.0, np.clip(z + z_err * rng.standard_normal(m) *
                                                  photometric, 0.001, None))
        features = {name: np.full(m, np.nan) for name in METADATA_FEATURES}
        features.update({
            "mwebv": mwebv, "mwebv_err": 0.1 * mwebv, "z_final": z_final, "z_final_err": z_err,
            "hostgal_zphot": np.where(galactic, -9.0, z_final),
            "hostgal_zphot_err": np.where(galactic, -9.0, 0.03 * (1 + z)),
        })
        gentype = GENTYPE[label]
        return {
            "ra": rng.uniform(0.0, 360.0, m),
            "dec": np.degrees(np.arcsin(rng.uniform(-1.0, 0.2, m))),
            "alert_mjd": alert, "last_detection_mjd": last,
            "raw_class": np.full(m, ELASTICC_GENTYPES[gentype], dtype=object),
            "gentype": np.full(m, gentype), "flux_unit": np.full(m, "FLUXCAL", dtype=object),
            **features,
            "sim_period": truth["period"], "sim_peak_mjd": truth["peak"],
        }
