"""Shared signal generators of `lcfm simulate`, vectorised over light curves.

Conventions: times and signals are (m, L) arrays (m light curves, L samples); parameters
are (m,) arrays, broadcast against L with `col`; frequencies are in cycles per day and
times in days. Shapes return dimensionless profiles; `stellar.py` and the survey simulators
scale them into magnitudes or fluxes.
"""

from __future__ import annotations

import numpy as np


def col(x) -> np.ndarray:
    """(m,) -> (m, 1) float64 for broadcasting against (m, L); scalars pass through."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def log_uniform(rng: np.random.Generator, low: float, high: float, size) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def phase_of(t: np.ndarray, period, epoch) -> np.ndarray:
    """Phase in [0, 1) of times t for periods and epochs (m,)."""
    return np.mod((t - col(epoch)) / col(period), 1.0)


def wrapped(phase: np.ndarray, centre) -> np.ndarray:
    """Signed phase distance to `centre`, in [-0.5, 0.5)."""
    return np.mod(phase - centre + 0.5, 1.0) - 0.5


def mag_from_flux_ratio(ratio: np.ndarray) -> np.ndarray:
    """Magnitude offset of a flux ratio (positive = fainter)."""
    return -2.5 * np.log10(np.clip(ratio, 1e-6, None))


def flux_ratio_from_mag(dmag: np.ndarray) -> np.ndarray:
    return 10.0 ** (-0.4 * dmag)


def smearing(freq, exposure: float):
    """Amplitude kept by a sinusoid of frequency `freq` integrated over `exposure` days:
    |sinc(f T)|, e.g. 0.2 for a 40 c/d delta Scuti mode in Kepler's 29.4-min cadence."""
    return np.abs(np.sinc(np.asarray(freq) * exposure)) if exposure > 0 else 1.0


# ---- periodic shapes ------------------------------------------------------------------
def skewed_wave(phase: np.ndarray, rise_fraction) -> np.ndarray:
    """Brightness in [-1, 1] of a pulsator: minimum at phase 0, a rise lasting
    `rise_fraction` of the cycle to maximum, then a slower decline (half-cosine pieces,
    continuous with a continuous slope). rise_fraction 0.5 is a sinusoid; RRab stars and
    long-period Cepheids rise in ~0.15-0.3 of the cycle."""
    r = col(rise_fraction)
    rising = phase < r
    return np.where(rising, -np.cos(np.pi * phase / r),
                    np.cos(np.pi * (phase - r) / (1.0 - r)))


def bump(phase: np.ndarray, centre, width) -> np.ndarray:
    """Gaussian bump on the phase circle (RR Lyrae pre-minimum hump, Cepheid bump)."""
    return np.exp(-0.5 * (wrapped(phase, col(centre)) / col(width)) ** 2)


def eclipse(phase: np.ndarray, centre, half_width, sharpness) -> np.ndarray:
    """Eclipse profile in [0, 1] (fraction of the depth) around phase `centre`:
    exp(-ln2 |x / w|^k) with half width at half depth w; k ~ 2 gives a V-shaped (grazing)
    eclipse, k >~ 6 a flat-bottomed total eclipse or transit."""
    x = np.abs(wrapped(phase, col(centre))) / col(half_width)
    return np.exp(-np.log(2.0) * x ** col(sharpness))


def sinusoids(t: np.ndarray, freqs: np.ndarray, amps: np.ndarray, phases: np.ndarray,
              exposure: float = 0.0) -> np.ndarray:
    """sum_k a_k sin(2 pi f_k t + phi_k) with (m, K) frequencies, amplitudes, phases,
    each mode reduced by exposure smearing."""
    out = np.zeros_like(t)
    amps = amps * smearing(freqs, exposure)
    for k in range(freqs.shape[1]):
        out += amps[:, k:k + 1] * np.sin(2 * np.pi * freqs[:, k:k + 1] * t + phases[:, k:k + 1])
    return out


# ---- stochastic processes ---------------------------------------------------------------
def ou_process(t: np.ndarray, tau, sigma, rng: np.random.Generator) -> np.ndarray:
    """Damped random walk (Ornstein-Uhlenbeck) with timescale `tau` and stationary spread
    `sigma` (m,) on arbitrary sorted times (m, L): the exact recursion
    x_i = x_(i-1) e^(-dt/tau) + sigma sqrt(1 - e^(-2 dt/tau)) n_i, vectorised over m."""
    tau, sigma = np.asarray(tau, float), np.asarray(sigma, float)
    dt = np.diff(t, axis=1)
    decay = np.exp(-np.clip(dt, 0.0, None) / tau[:, None])
    kicks = sigma[:, None] * np.sqrt(1.0 - decay ** 2) * rng.standard_normal(dt.shape)
    out = np.empty_like(t)
    out[:, 0] = sigma * rng.standard_normal(t.shape[0])
    for i in range(dt.shape[1]):
        out[:, i + 1] = out[:, i] * decay[:, i] + kicks[:, i]
    return out


def grid_frequencies(length: int, step: float) -> tuple[np.ndarray, int]:
    """(one-sided frequencies of the FFT grid used for `length` samples, grid size)."""
    size = 1 << int(np.ceil(np.log2(max(2 * length, 8))))  # twice as long: no wrap-around
    return np.fft.rfftfreq(size, d=step), size


def gaussian_process_on_grid(psd: np.ndarray, length: int, step: float,
                             rng: np.random.Generator) -> np.ndarray:
    """Stationary Gaussian signals with one-sided power spectral density `psd` (m, F) on
    the frequencies of `grid_frequencies(length, step)`, in units^2 per (cycle/day), so
    that the variance is the integral of the PSD. Returns (m, length) samples on a regular
    grid; the FFT grid is twice as long, so the periodicity of the FFT does not show."""
    freqs, size = grid_frequencies(length, step)
    m = psd.shape[0]
    coefficients = (rng.standard_normal((m, freqs.size))
                    + 1j * rng.standard_normal((m, freqs.size)))
    # |c_k|^2 = psd_k * size / (2 step) gives var(x) = sum_k psd_k df with df = 1/(size step)
    coefficients *= np.sqrt(np.clip(psd, 0.0, None) * size / (4.0 * step))
    coefficients[:, 0] = 0.0
    return np.fft.irfft(coefficients, n=size, axis=1)[:, :length]


def harvey_psd(freqs: np.ndarray, sigma, f_char, exponent=4.0) -> np.ndarray:
    """Harvey profile P(f) ~ 1 / (1 + (f / f_char)^exponent), normalised so its integral
    over f >= 0 is sigma^2: granulation (exponent 4), damped random walk (exponent 2)."""
    gamma = col(np.broadcast_to(exponent, np.shape(sigma)))
    b = col(f_char)
    area = b * (np.pi / gamma) / np.sin(np.pi / gamma)
    return col(sigma) ** 2 / area / (1.0 + (freqs[None, :] / b) ** gamma)


def lorentzian_psd(freqs: np.ndarray, centre, width, variance) -> np.ndarray:
    """A damped oscillation (stochastically excited mode, quasi-periodic spot signal):
    Lorentzian of full width `width` (= 1 / (pi * lifetime)) and area `variance`."""
    half = col(width) / 2
    return col(variance) / np.pi * half / ((freqs[None, :] - col(centre)) ** 2 + half ** 2)


def lorentzian_comb(freqs: np.ndarray, offset, spacing, width) -> np.ndarray:
    """sum over n of unit-area Lorentzians at offset + n * spacing, in closed form:
    sinh(a) / (spacing (cosh(a) - cos(2 pi (f - offset) / spacing))), a = pi width / spacing.
    Used for the regular p-mode pattern of solar-like oscillators."""
    a = np.pi * col(width) / col(spacing)
    angle = 2 * np.pi * (freqs[None, :] - col(offset)) / col(spacing)
    return np.sinh(a) / (col(spacing) * (np.cosh(a) - np.cos(angle)))


# ---- transients --------------------------------------------------------------------------
def bazin(t: np.ndarray, t0, tau_rise, tau_fall) -> np.ndarray:
    """Bazin et al. (2009) rise and exponential decline, exp(-x/tau_fall) / (1 + exp(-x/
    tau_rise)) with x = t - t0, scaled to peak at 1 (computed in log space: no overflow)."""
    tr, tf = col(tau_rise), col(np.maximum(tau_fall, 1.01 * np.asarray(tau_rise)))
    def log_shape(x):
        return -x / tf - np.logaddexp(0.0, -x / tr)
    x_peak = tr * np.log(tf / tr - 1.0)
    return np.exp(log_shape(t - col(t0)) - log_shape(x_peak))


def fast_rise_exponential_decay(t: np.ndarray, t0, tau_rise, tau_decay) -> np.ndarray:
    """Flare / outburst profile peaking at 1 at t0: exp((t - t0)/tau_rise) before,
    exp(-(t - t0)/tau_decay) after."""
    x = t - col(t0)
    return np.where(x < 0, np.exp(np.clip(x / col(tau_rise), -50, 0)),
                    np.exp(-np.clip(x, 0, None) / col(tau_decay)))


def paczynski(t: np.ndarray, t0, t_einstein, u0) -> np.ndarray:
    """Point-lens microlensing magnification A(u) = (u^2 + 2) / (u sqrt(u^2 + 4))."""
    u = np.sqrt(col(u0) ** 2 + ((t - col(t0)) / col(t_einstein)) ** 2)
    return (u ** 2 + 2) / (u * np.sqrt(u ** 2 + 4))


def planck_ratio(wavelength, temperature, reference: float, redshift=0.0) -> np.ndarray:
    """F_nu of a blackbody at observed `wavelength` (Angstrom) relative to `reference`,
    for temperature (K) and redshift; both broadcast. Colours of thermal transients."""
    hc_k = 1.438777e8  # h c / k in Angstrom K
    temperature = np.asarray(temperature, dtype=np.float64)
    z = np.asarray(redshift, dtype=np.float64)

    def f_nu(lam):
        rest = np.asarray(lam, dtype=np.float64) / (1.0 + z)
        return rest ** -3 / np.expm1(np.clip(hc_k / (rest * temperature), 1e-6, 600.0))
    return f_nu(wavelength) / f_nu(reference)


_Z_GRID = np.linspace(0.0, 4.0, 801)
_E = np.sqrt(0.3 * (1 + _Z_GRID) ** 3 + 0.7)
_COMOVING = np.concatenate([[0.0], np.cumsum(np.diff(_Z_GRID) * 0.5 * (1 / _E[1:] + 1 / _E[:-1]))])


def distance_modulus(z) -> np.ndarray:
    """Distance modulus of flat LCDM (H0 = 70, Omega_m = 0.3), 0.0005 <= z <= 4."""
    z = np.clip(np.asarray(z, dtype=np.float64), 5e-4, 4.0)
    d_l = (1 + z) * (299792.458 / 70.0) * np.interp(z, _Z_GRID, _COMOVING)  # Mpc
    return 5.0 * np.log10(d_l) + 25.0
