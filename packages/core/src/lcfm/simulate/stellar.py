"""Physically motivated generators of variable-star light curves for `lcfm simulate`.

Every generator takes times t (m, L) and a random generator, draws its own parameters per
light curve from ranges typical of the class (optical band; keyword arguments override
them), and returns `(signal, params)`: the signal is a magnitude offset (positive =
fainter) for the periodic generators and a relative flux (flux / mean - 1) for the
stochastic grid generators of space photometry; `params` holds (m,) arrays: `period`
(days, NaN when aperiodic), `amplitude` (peak-to-peak of the noiseless signal, in the
signal's unit) and `subclass` (str).

Sources of the parameter ranges: RR Lyrae and Cepheid periods, amplitudes and asymmetric
light curves (Catelan & Smith 2015, "Pulsating Stars"); delta Scuti / beta Cep p modes of
5-80 d^-1 and gamma Dor / SPB g modes of 0.3-3 d^-1 with near-regular period spacings
(Aerts, Christensen-Dalsgaard & Kurtz 2010, "Asteroseismology"; Van Reeth et al. 2015);
red-giant granulation and oscillation scaling relations (Kallinger et al. 2014; Mosser et
al. 2012); Mira and semi-regular LPVs (Soszynski et al. 2009).
"""

from __future__ import annotations

import numpy as np

from lcfm.simulate.signals import (
    bump,
    col,
    eclipse,
    flux_ratio_from_mag,
    gaussian_process_on_grid,
    grid_frequencies,
    harvey_psd,
    log_uniform,
    lorentzian_comb,
    lorentzian_psd,
    mag_from_flux_ratio,
    ou_process,
    phase_of,
    sinusoids,
    skewed_wave,
    smearing,
)

MICROHERTZ = 0.0864  # cycles per day


def _params(period, amplitude, subclass, m) -> dict:
    return {"period": np.broadcast_to(np.asarray(period, float), (m,)).copy(),
            "amplitude": np.asarray(amplitude, float),
            "subclass": np.broadcast_to(np.asarray(subclass, dtype=object), (m,)).copy()}


def _peak_to_peak(signal: np.ndarray) -> np.ndarray:
    return signal.max(axis=1) - signal.min(axis=1)


# ---- radial pulsators -------------------------------------------------------------------
def rr_lyrae(t, rng, *, kind: str = "ab", amplitude_scale: float = 1.0):
    """RRab (P ~ 0.45-0.9 d, 0.5-1.2 mag, steep rise, pre-minimum hump, Blazhko modulation
    in ~40%) or RRc (P ~ 0.22-0.45 d, 0.25-0.55 mag, nearly sinusoidal)."""
    m = t.shape[0]
    if kind == "ab":
        period = np.clip(rng.normal(0.58, 0.08, m), 0.42, 0.95)
        amplitude = rng.uniform(0.5, 1.2, m)
        rise = rng.uniform(0.12, 0.22, m)
        hump, blazhko_share = rng.uniform(0.03, 0.10, m), 0.4
    else:
        period = np.clip(rng.normal(0.33, 0.04, m), 0.22, 0.45)
        amplitude = rng.uniform(0.25, 0.55, m)
        rise = rng.uniform(0.36, 0.47, m)
        hump, blazhko_share = np.zeros(m), 0.1
    amplitude = amplitude * amplitude_scale
    phase = phase_of(t, period, rng.uniform(0, 100, m))
    brightness = skewed_wave(phase, rise) + col(hump) * bump(phase, 0.85, 0.04)
    modulation = 1.0 + col(rng.uniform(0.05, 0.3, m) * (rng.random(m) < blazhko_share)) * \
        np.sin(2 * np.pi * t / col(log_uniform(rng, 20, 200, m)) + col(rng.uniform(0, 6.3, m)))
    dmag = -0.5 * col(amplitude) * brightness * modulation
    return dmag, _params(period, _peak_to_peak(dmag), f"RR{kind}", m)


def cepheid(t, rng, *, mode: str = "fundamental", period_range=None,
            amplitude_scale: float = 1.0):
    """Classical Cepheids: fundamental mode (P ~ 1.5-50 d, 0.3-1.0 mag, rise in 0.2-0.35
    of the cycle, Hertzsprung bump for 6-16 d) or first overtone (P ~ 0.3-6 d, 0.1-0.45 mag,
    nearly sinusoidal)."""
    m = t.shape[0]
    if mode == "fundamental":
        low, high = period_range or (1.5, 50.0)
        period = log_uniform(rng, low, high, m)
        amplitude = rng.uniform(0.3, 1.0, m)
        rise = np.clip(0.35 - 0.08 * np.log10(period) + rng.normal(0, 0.03, m), 0.15, 0.45)
        hertzsprung = np.where((period > 6) & (period < 16), rng.uniform(0.1, 0.3, m), 0.0)
        bump_phase = np.clip(0.2 + 0.05 * (period - 6), 0.2, 0.75)
    else:
        low, high = period_range or (0.3, 6.0)
        period = log_uniform(rng, low, high, m)
        amplitude = rng.uniform(0.1, 0.45, m)
        rise = rng.uniform(0.35, 0.48, m)
        hertzsprung, bump_phase = np.zeros(m), np.full(m, 0.5)
    amplitude = amplitude * amplitude_scale
    phase = phase_of(t, period, rng.uniform(0, 100, m))
    brightness = skewed_wave(phase, rise) + col(hertzsprung) * bump(phase, bump_phase, 0.06)
    dmag = -0.5 * col(amplitude) * brightness
    name = "Cepheid F" if mode == "fundamental" else "Cepheid 1O"
    return dmag, _params(period, _peak_to_peak(dmag), name, m)


def high_amplitude_delta_scuti(t, rng, *, amplitude_scale: float = 1.0):
    """HADS: P ~ 0.04-0.25 d, 0.2-0.8 mag, asymmetric, often a second radial mode."""
    m = t.shape[0]
    period = log_uniform(rng, 0.04, 0.25, m)
    amplitude = rng.uniform(0.2, 0.8, m) * amplitude_scale
    phase = phase_of(t, period, rng.uniform(0, 100, m))
    dmag = -0.5 * col(amplitude) * skewed_wave(phase, rng.uniform(0.3, 0.45, m))
    ratio = rng.uniform(0.756, 0.775, m)  # first-overtone / fundamental period ratio
    second = rng.uniform(0.0, 0.3, m) * (rng.random(m) < 0.3)
    dmag -= col(0.5 * amplitude * second) * np.sin(2 * np.pi * t / col(period * ratio))
    return dmag, _params(period, _peak_to_peak(dmag), "HADS", m)


# ---- non-radial multi-periodic pulsators --------------------------------------------------
def p_mode_pulsator(t, rng, *, amplitude_range=(5e-4, 2e-2), freq_range=(5.0, 80.0),
                    exposure: float = 0.0):
    """delta Scuti / beta Cep stars: 3-12 coherent p modes of 5-80 d^-1 around a dominant
    mode, amplitudes in mag; exposure smearing of long cadences reduces fast modes."""
    m = t.shape[0]
    low, high = freq_range
    n_modes = 12
    beta_cep = rng.random(m) < 0.25
    f1 = np.where(beta_cep, rng.uniform(low, min(12.0, high), m),
                  log_uniform(rng, low, min(45.0, high), m))
    freqs = rng.uniform(np.maximum(low, 0.5 * f1)[:, None], np.minimum(high, 2.5 * f1)[:, None],
                        (m, n_modes))
    freqs[:, 0] = f1
    dominant = log_uniform(rng, *amplitude_range, m)
    amps = col(dominant) * rng.uniform(0.03, 0.6, (m, n_modes))
    amps[:, 0] = dominant
    amps *= np.arange(n_modes)[None, :] < rng.integers(3, n_modes + 1, m)[:, None]
    dmag = -sinusoids(t, freqs, amps, rng.uniform(0, 2 * np.pi, (m, n_modes)), exposure)
    subclass = np.where(beta_cep, "beta Cep", "delta Scuti")
    return dmag, _params(1.0 / f1, _peak_to_peak(dmag), subclass, m)


def g_mode_pulsator(t, rng, *, amplitude_range=(5e-4, 1e-2), exposure: float = 0.0):
    """gamma Dor / SPB stars: 5-16 consecutive g modes of 0.3-3 d^-1 whose periods are
    nearly equally spaced (Delta Pi ~ 0.015-0.07 d, with a slope from rotation and small
    dips), amplitudes in a smooth envelope over radial order: beating patterns."""
    m = t.shape[0]
    n_modes = 16
    spacing = log_uniform(rng, 0.015, 0.07, m)
    slope = rng.uniform(-0.04, 0.02, m)
    first = rng.uniform(0.36, 1.6, m)
    k = np.arange(n_modes)[None, :]
    periods = col(first) + col(spacing) * k * (1 + col(slope) * k)
    periods += col(spacing) * rng.normal(0, 0.03, (m, n_modes))
    periods = np.clip(periods, 1 / 3.0, 1 / 0.3)
    centre = rng.uniform(2, n_modes - 3, m)
    envelope = np.exp(-0.5 * ((k - col(centre)) / col(rng.uniform(1.5, 4.0, m))) ** 2)
    amps = col(log_uniform(rng, *amplitude_range, m)) * envelope * np.exp(
        0.4 * rng.standard_normal((m, n_modes)))
    amps *= k < col(rng.integers(5, n_modes + 1, m))
    dmag = -sinusoids(t, 1.0 / periods, amps, rng.uniform(0, 2 * np.pi, (m, n_modes)), exposure)
    subclass = np.where(spacing < 0.045, "gamma Dor", "SPB")
    dominant = periods[np.arange(m), amps.argmax(axis=1)]
    return dmag, _params(dominant, _peak_to_peak(dmag), subclass, m)


# ---- binaries -----------------------------------------------------------------------------
def eclipsing_binary(t, rng, *, kind: str = "detached", period_range=None,
                     depth_scale: float = 1.0):
    """Eclipsing binaries as magnitude offsets:

    - "detached": P 1-40 d, primary depth 5-60% of the flux, secondary 0-90% of it at phase
      0.5 (shifted by eccentricity in half), eclipse half-width ~ (R1+R2)/a / 2 pi with
      (R1+R2)/a ~ P^(-2/3), shapes from V (grazing) to flat-bottomed, weak ellipsoidal term;
    - "contact": W UMa stars, P 0.22-1 d, continuous light variation of 0.1-0.75 mag with
      minima of nearly equal depth and an O'Connell asymmetry;
    - "semidetached": beta Lyrae type, strong ellipsoidal variation plus unequal eclipses;
    - "transit": planetary transits, depth 0.03-2%, flat-bottomed, no secondary.
    """
    m = t.shape[0]
    defaults = {"detached": (1.0, 40.0), "contact": (0.22, 1.0), "semidetached": (0.5, 8.0),
                "transit": (0.5, 30.0)}
    period = log_uniform(rng, *(period_range or defaults[kind]), m)
    phase = phase_of(t, period, rng.uniform(0, 100, m))
    if kind == "contact":
        amplitude = rng.uniform(0.1, 0.75, m) * depth_scale
        depth_flux = 1.0 - 10 ** (-0.4 * amplitude)
        ratio = rng.uniform(0.8, 1.0, m)
        shape = ((1 - np.cos(4 * np.pi * phase)) / 2) ** col(rng.uniform(0.8, 1.4, m))
        shape *= col(ratio) + col(1 - ratio) * (1 + np.cos(2 * np.pi * phase)) / 2
        flux = 1 - col(depth_flux) * shape + col(rng.normal(0, 0.01, m)) * np.sin(
            2 * np.pi * phase)
    else:
        if kind == "transit":
            depth1 = log_uniform(rng, 3e-4, 2e-2, m)
            depth2 = np.zeros(m)
            size = rng.uniform(0.08, 0.2, m)
            sharp = rng.uniform(4.0, 10.0, m)
        else:
            depth1 = rng.uniform(0.05, 0.6, m) * depth_scale
            depth2 = depth1 * rng.uniform(0.0, 0.9, m)
            size = rng.uniform(0.15, 0.45, m)
            sharp = rng.uniform(1.5, 6.0, m)
        half_width = np.clip(size * period ** (-2 / 3) / (2 * np.pi), 0.003, 0.12)
        if kind == "semidetached":
            half_width = np.clip(half_width * 2.0, 0.02, 0.15)
        second_phase = 0.5 + np.where(rng.random(m) < 0.5, rng.uniform(-0.05, 0.05, m), 0.0)
        ellipsoidal = rng.uniform(0.0, 0.02, m) * (period < 5) * (kind != "transit")
        if kind == "semidetached":
            ellipsoidal = rng.uniform(0.05, 0.25, m)
        flux = (1 - col(depth1) * eclipse(phase, 0.0, half_width, sharp)
                - col(depth2) * eclipse(phase, second_phase, half_width, sharp)
                - col(ellipsoidal) * (1 - np.cos(4 * np.pi * phase)) / 2)
    dmag = mag_from_flux_ratio(flux)
    return dmag, _params(period, _peak_to_peak(dmag), kind, m)


# ---- long-period variables --------------------------------------------------------------
def mira(t, rng, *, amplitude_range=(2.5, 6.0)):
    """Mira variables: P 100-600 d, 2.5-6 mag (V-like), skewed cycles whose amplitude and
    mean level wander from cycle to cycle (damped random walks on the cycle timescale)."""
    m = t.shape[0]
    period = log_uniform(rng, 100, 600, m)
    amplitude = rng.uniform(*amplitude_range, m)
    phase = phase_of(t, period, rng.uniform(0, 1000, m))
    wander = 1 + ou_process(t, period, 0.1 * np.ones(m), rng)
    level = ou_process(t, 2 * period, 0.15 * np.ones(m), rng)
    dmag = -0.5 * col(amplitude) * wander * skewed_wave(phase, rng.uniform(0.38, 0.48, m)) + level
    return dmag, _params(period, _peak_to_peak(dmag), "Mira", m)


def semiregular(t, rng, *, amplitude_range=(0.05, 1.2)):
    """Semi-regular / OGLE small-amplitude LPVs: 1-3 periods of 20-400 d (the pulsation
    sequences' ratios), irregular amplitude, a long secondary period in a third of them,
    on top of a damped random walk."""
    m = t.shape[0]
    period = log_uniform(rng, 20, 400, m)
    amplitude = log_uniform(rng, *amplitude_range, m)
    ratios = np.stack([np.ones(m), rng.uniform(0.5, 0.56, m), rng.uniform(1.8, 2.1, m),
                       rng.uniform(5.0, 10.0, m)], axis=1)
    weights = np.stack([np.ones(m), rng.uniform(0, 0.6, m), rng.uniform(0, 0.5, m),
                        rng.uniform(0.3, 1.0, m) * (rng.random(m) < 0.35)], axis=1)
    freqs = 1.0 / (col(period) * ratios)
    envelope = 1 + ou_process(t, period * 2, 0.25 * np.ones(m), rng)
    dmag = -0.5 * col(amplitude) * envelope * sinusoids(
        t, freqs, weights, rng.uniform(0, 2 * np.pi, (m, 4))) / 1.5
    dmag += ou_process(t, period / 2, 0.1 * amplitude, rng)
    return dmag, _params(period, _peak_to_peak(dmag), "semi-regular", m)


# ---- stochastic signals of space photometry on regular grids -------------------------------
def solar_like(length: int, step: float, rng, m: int, *, nu_max_range=(8.0, 220.0),
               exposure: float = 0.0):
    """Red-giant solar-like oscillators as relative flux: two granulation Harvey profiles
    plus a Gaussian power excess of stochastically excited p modes at nu_max, from the
    Kepler scaling relations (nu_max and Delta nu in microhertz): granulation amplitude
    a = 3382 nu_max^-0.609 ppm, characteristic frequencies 0.317 nu_max^0.970 and
    0.948 nu_max^0.992; Delta nu = 0.28 nu_max^0.75; radial-mode amplitude
    A_max ~ 2000 nu_max^-0.88 ppm; envelope FWHM = 0.66 nu_max^0.88; l = 0, 1, 2 modes
    (visibilities 1, 1.5, 0.5) of linewidth 0.1-0.25 microhertz. `period` is 1 / nu_max."""
    freqs, _ = grid_frequencies(length, step)
    nu_max = log_uniform(rng, *nu_max_range, m)
    a_gran = 3382 * nu_max ** -0.609 * 1e-6 * np.exp(rng.normal(0, 0.15, m))
    psd = harvey_psd(freqs, a_gran, 0.317 * nu_max ** 0.970 * MICROHERTZ)
    psd += harvey_psd(freqs, a_gran, 0.948 * nu_max ** 0.992 * MICROHERTZ)
    delta_nu = 0.28 * nu_max ** 0.75 * np.exp(rng.normal(0, 0.03, m)) * MICROHERTZ
    epsilon = rng.uniform(0.9, 1.3, m)
    width = rng.uniform(0.1, 0.25, m) * MICROHERTZ
    a_max = 2000 * nu_max ** -0.88 * 1e-6 * np.exp(rng.normal(0, 0.2, m))
    sigma_env = 0.66 * nu_max ** 0.88 * MICROHERTZ / 2.355
    envelope = col(a_max) ** 2 * col(delta_nu) * np.exp(
        -0.5 * ((freqs[None, :] - col(nu_max * MICROHERTZ)) / col(sigma_env)) ** 2)
    for degree, visibility in ((0, 1.0), (1, 1.5), (2, 0.5)):
        offset = delta_nu * (epsilon + degree / 2) - (degree == 2) * 0.12 * delta_nu
        psd += visibility * envelope * lorentzian_comb(freqs, offset, delta_nu, width)
    psd *= smearing(freqs, exposure) ** 2
    flux = gaussian_process_on_grid(psd, length, step, rng)
    return flux, _params(1.0 / (nu_max * MICROHERTZ), _peak_to_peak(flux), "red giant", m)


def spotted_rotator(length: int, step: float, rng, m: int, *, period_range=(0.5, 30.0),
                    amplitude_range=(5e-4, 3e-2)):
    """Rotational modulation by evolving star spots as relative flux: a quasi-periodic
    Gaussian process (Lorentzians at the rotation frequency and its harmonic, linewidth set
    by a spot lifetime of 1-8 rotations), so amplitude and shape change from cycle to
    cycle."""
    freqs, _ = grid_frequencies(length, step)
    period = log_uniform(rng, *period_range, m)
    sigma = log_uniform(rng, *amplitude_range, m) / 2.8
    lifetime = period * rng.uniform(1.0, 8.0, m)
    harmonic = rng.uniform(0.05, 0.5, m)
    psd = lorentzian_psd(freqs, 1 / period, 1 / (np.pi * lifetime), sigma ** 2)
    psd += lorentzian_psd(freqs, 2 / period, 1 / (np.pi * lifetime), (harmonic * sigma) ** 2)
    flux = gaussian_process_on_grid(psd, length, step, rng)
    return flux, _params(period, _peak_to_peak(flux), "rotation", m)


def aperiodic(length: int, step: float, rng, m: int, *, amplitude_range=(5e-4, 3e-2)):
    """Aperiodic variability as relative flux: damped random walks (timescales 0.5-30 d:
    Be stars, young stellar objects, active stars) or stochastic low-frequency variability
    of massive stars (characteristic frequency 0.5-5 d^-1, spectral slope 1.5-4)."""
    freqs, _ = grid_frequencies(length, step)
    sigma = log_uniform(rng, *amplitude_range, m) / 3.0
    red_noise = rng.random(m) < 0.6
    f_char = np.where(red_noise, 1.0 / (2 * np.pi * log_uniform(rng, 0.5, 30.0, m)),
                      log_uniform(rng, 0.5, 5.0, m))
    exponent = np.where(red_noise, 2.0, rng.uniform(1.5, 4.0, m))
    flux = gaussian_process_on_grid(harvey_psd(freqs, sigma, f_char, exponent), length, step,
                                    rng)
    subclass = np.where(red_noise, "damped random walk", "stochastic low-frequency")
    return flux, _params(np.nan, _peak_to_peak(flux), subclass, m)


def to_relative_flux(dmag: np.ndarray) -> np.ndarray:
    """Magnitude offset -> relative flux change (flux / mean level - 1)."""
    return flux_ratio_from_mag(dmag) - 1.0


def mixture(t: np.ndarray, rng, parts) -> tuple[np.ndarray, dict]:
    """A class made of several kinds of star: `parts` is a list of (weight, generator)
    with generator(t_subset, rng) -> (signal, params); each light curve draws its kind."""
    m = t.shape[0]
    weights = np.asarray([w for w, _ in parts], dtype=np.float64)
    kind = rng.choice(len(parts), size=m, p=weights / weights.sum())
    signal = np.zeros_like(t)
    params = {"period": np.full(m, np.nan), "amplitude": np.zeros(m),
              "subclass": np.empty(m, dtype=object)}
    for k, (_, generator) in enumerate(parts):
        where = np.flatnonzero(kind == k)
        if where.size:
            part, values = generator(t[where], rng)
            signal[where] = part
            for key in params:
                params[key][where] = values[key]
    return signal, params
