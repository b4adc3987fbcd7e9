"""Flux squashing and the fixed-component mixture of Gaussians of ATCAT's next-value
objective (paper 003_05ad419fc2efc3e7.txt, sect. 2.5.1, Fig. 4 and 5).

The nonlinearity f "glues together a tanh function (around 0) and log function, matching the
first derivative and intercept point", after pre-scaling flux by 1/10, and maps the largest
ELAsTiCC flux (2,568,897) to about 6. Gluing at |u| = 1 reproduces that number exactly:

    u = prescale * x
    f(x) = tanh(u)                                    for |u| <= 1
    f(x) = sign(u) * (tanh(1) + sech(1)^2 * ln |u|)  for |u| > 1     (f(2,568,897) = 5.993)

Value and slope match at |u| = 1 and f is invertible. Errors are squashed as in eq. (2):
scaled_err = (f(x + err) - f(x - err)) / 2.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

_TANH1 = math.tanh(1.0)
_SECH1_SQ = 1.0 - _TANH1**2


def squash_flux(x: torch.Tensor, prescale: float = 0.1) -> torch.Tensor:
    """f(x) of sect. 2.5.1 (see module docstring)."""
    u = x * prescale
    magnitude = u.abs()
    outer = _TANH1 + _SECH1_SQ * torch.log(magnitude.clamp(min=1.0))
    return torch.where(magnitude <= 1.0, torch.tanh(u), torch.sign(u) * outer)


def unsquash_flux(y: torch.Tensor, prescale: float = 0.1) -> torch.Tensor:
    """f^-1(y): back from squashed space to flux (used to report predictions as flux)."""
    magnitude = y.abs()
    inner = torch.atanh(y.clamp(-_TANH1, _TANH1))
    outer = torch.sign(y) * torch.exp((magnitude - _TANH1).clamp(min=0.0) / _SECH1_SQ)
    return torch.where(magnitude <= _TANH1, inner, outer) / prescale


def squash_error(x: torch.Tensor, err: torch.Tensor, prescale: float = 0.1) -> torch.Tensor:
    """Scaled flux error of eq. (2): half the squashed width of [x - err, x + err]."""
    return 0.5 * (squash_flux(x + err, prescale) - squash_flux(x - err, prescale))


def mixture_components_from_flux(flux, n: int, *, prescale: float = 0.1,
                                 already_squashed: bool = False,
                                 min_sigma: float = 1e-3) -> tuple[list[float], list[float]]:
    """Fixed means and widths of the n mixture components from training flux values
    (sect. 2.5.1): means(n) = quantile(f(flux), linspace(1/2n, 1 - 1/2n, n)),
    sigmas(n) = 0.7 * diff(means(n + 1)). Non-finite values are ignored. Widths are floored
    at `min_sigma` because repeated flux values (e.g. many exact zeros) make neighbouring
    quantiles equal, which would give zero-width components."""
    values = np.asarray(flux, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("mixture_components_from_flux: no finite flux values")
    if not already_squashed:
        values = squash_flux(torch.from_numpy(values), prescale).numpy()

    def quantile_means(k: int) -> np.ndarray:
        return np.quantile(values, np.linspace(1 / (2 * k), 1 - 1 / (2 * k), k))

    means = quantile_means(n)
    sigmas = np.maximum(0.7 * np.diff(quantile_means(n + 1)), min_sigma)
    return means.tolist(), sigmas.tolist()


def mixture_log_prob(y: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                     sigmas: torch.Tensor) -> torch.Tensor:
    """log q(y) of a Gaussian mixture. y (..., Q) evaluation points; log_weights (..., K)
    normalised (log_softmax of the head); means, sigmas (K,). Returns (..., Q)."""
    z = (y.unsqueeze(-1) - means) / sigmas  # (..., Q, K)
    log_components = -0.5 * z * z - torch.log(sigmas) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(log_components + log_weights.unsqueeze(-2), dim=-1)


@functools.cache
def _hermite_nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite.hermgauss(n)
    return nodes * math.sqrt(2.0), weights / math.sqrt(math.pi)


def expected_negative_log_prob(target: torch.Tensor, target_sigma: torch.Tensor,
                               log_weights: torch.Tensor, means: torch.Tensor,
                               sigmas: torch.Tensor, quadrature_points: int = 8) -> torch.Tensor:
    """E_{y ~ N(target, target_sigma^2)} [-log q(y)] by Gauss-Hermite quadrature.

    This is the forward KL(P'||Q) of sect. 2.5.2 plus the entropy of P', which does not depend
    on the model; unlike the KL it stays finite when target_sigma = 0 (it becomes the plain
    negative log-likelihood). target, target_sigma (N,), log_weights (N, K). Returns (N,)."""
    nodes, weights = _hermite_nodes(quadrature_points)
    nodes = torch.as_tensor(nodes, dtype=target.dtype, device=target.device)
    weights = torch.as_tensor(weights, dtype=target.dtype, device=target.device)
    y = target.unsqueeze(-1) + target_sigma.unsqueeze(-1) * nodes  # (N, Q)
    return -(mixture_log_prob(y, log_weights, means, sigmas) * weights).sum(-1)


def gaussian_entropy(sigma: torch.Tensor) -> torch.Tensor:
    """Differential entropy of N(., sigma^2); KL(P'||Q) = expected NLL - this."""
    return 0.5 * torch.log(2 * math.pi * math.e * sigma**2)


def mixture_in_flux_space(means: torch.Tensor, sigmas: torch.Tensor,
                          prescale: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Component centres and widths projected back to flux (sect. 2.5.1: "the same approach
    for flux_err as (2), simply replacing f with f^-1")."""
    centres = unsquash_flux(means, prescale)
    widths = 0.5 * (unsquash_flux(means + sigmas, prescale) - unsquash_flux(means - sigmas,
                                                                              prescale))
    return centres, widths


__all__ = [
    "expected_negative_log_prob", "gaussian_entropy", "mixture_components_from_flux",
    "mixture_in_flux_space", "mixture_log_prob", "squash_error", "squash_flux",
    "unsquash_flux",
]
