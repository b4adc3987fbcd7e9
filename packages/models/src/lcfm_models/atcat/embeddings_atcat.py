"""ATCAT input encoders (paper 003_05ad419fc2efc3e7.txt, sect. 2.2.1-2.2.3, 2.5).

Each light-curve point (time, flux, flux_err, band wavelength) becomes one d-dimensional
token: a sinusoidal time embedding (linear map, then rotated by the band's wavelength), plus
multi-scale tanh embeddings of flux and flux_err. A [PRED] token (sect. 2.5) is built the
same way without the flux term and with a learned type vector. The optional metadata
vector becomes one more token placed first (sect. 2.2.2).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .configuration_atcat import AtcatConfig

#: token types shared by the collator and the model
PAD, POINT, PRED = 0, 1, 2


def time_frequencies(config: AtcatConfig) -> torch.Tensor:
    """a_k = T_max^(-b_k), b_k = [linspace(-0.1, 0, m/2), linspace(0, 1)[1:]] (sect. 2.2.1).
    Half of the frequencies exceed 1 per day, so sub-day spacings stay distinguishable."""
    m = config.hidden_size // 2
    n_fast = m // 2
    exponents = torch.cat([
        torch.linspace(config.time_min_exponent, 0.0, n_fast, dtype=torch.float64),
        torch.linspace(0.0, 1.0, m - n_fast + 1, dtype=torch.float64)[1:],
    ])
    return (config.time_max ** (-exponents)).float()  # (m,)


def wavelength_frequencies(config: AtcatConfig) -> torch.Tensor:
    """Rotary scales of sect. 2.2.1: log a_i = 4 sin(2 pi i / d - 0.5)^10 - 4, evaluated at the
    first index i = 2j of each rotated pair (x_2j, x_2j+1)."""
    d = config.hidden_size
    i = torch.arange(0, d, 2, dtype=torch.float64)
    log_alpha = 4.0 * torch.sin(2 * math.pi * i / d - config.rotary_offset) ** 10 - 4.0
    return torch.exp(log_alpha).float()  # (d/2,)


def float32_constant(buffer: torch.Tensor, compute) -> torch.Tensor:
    """A constant buffer in float32. Casting a model to half precision also rounds its
    buffers (a bfloat16 frequency keeps 3 digits), so recompute them from the config then:
    the input encoding runs in float32 whatever the model dtype (the paper switches to
    bfloat16 only "after input encoding", sect. 3.6)."""
    if buffer.dtype == torch.float32:
        return buffer
    return compute().to(device=buffer.device, dtype=torch.float32)


def rotate_pairs(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotary encoding: rotate each pair (x_2j, x_2j+1) by angles[..., j]."""
    even, odd = x[..., 0::2], x[..., 1::2]
    cos, sin = torch.cos(angles), torch.sin(angles)
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class AtcatValueEmbedding(nn.Module):
    """x -> [tanh(x / s_k)]_k -> linear (sect. 2.2.1 iii). Several saturation scales keep a
    linear response at several dynamic ranges while no activation can blow up; the bias is
    zero-initialised (done in `AtcatPreTrainedModel._init_weights`)."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.config = config
        self.register_buffer("inverse_scales", self.compute_inverse_scales(), persistent=False)
        self.linear = nn.Linear(len(config.value_scales), config.hidden_size)

    def compute_inverse_scales(self) -> torch.Tensor:
        return 1.0 / torch.tensor(self.config.value_scales, dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time) -> (batch, time, dim)
        inverse = float32_constant(self.inverse_scales, self.compute_inverse_scales)
        features = torch.tanh(x.float().unsqueeze(-1) * inverse)
        return self.linear(features.to(self.linear.weight.dtype))


class AtcatTimeEmbedding(nn.Module):
    """Sinusoids of t (sect. 2.2.1 i), scaled by 1/10 (ii), linear map, then rotated by the
    band's central wavelength (iv)."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.config = config
        self.register_buffer("time_frequencies", time_frequencies(config), persistent=False)
        self.register_buffer("wavelength_frequencies", wavelength_frequencies(config),
                             persistent=False)
        self.linear = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, times: torch.Tensor, wavelength: torch.Tensor) -> torch.Tensor:
        config = self.config
        frequencies = float32_constant(self.time_frequencies, lambda: time_frequencies(config))
        phase = times.float().unsqueeze(-1) * frequencies  # (batch, time, dim/2)
        sinusoids = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)
        embedded = self.linear((sinusoids * config.time_embedding_scale).to(
            self.linear.weight.dtype)).float()
        band_position = (wavelength.float() / config.wavelength_scale).unsqueeze(-1)
        angles = band_position * float32_constant(self.wavelength_frequencies,
                                                  lambda: wavelength_frequencies(config))
        return rotate_pairs(embedded, angles).to(self.linear.weight.dtype)


class AtcatMetadataEmbedding(nn.Module):
    """Metadata vector -> one token (sect. 2.2.2): linear map plus a residual
    linear -> LeakyReLU -> linear branch. Both maps that read the input carry the L1 penalty
    returned by `l1_penalty()`."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.base = nn.Linear(config.metadata_dim, config.hidden_size)
        self.branch_in = nn.Linear(config.metadata_dim, config.hidden_size)
        self.activation = nn.LeakyReLU()
        self.branch_out = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, metadata: torch.Tensor) -> torch.Tensor:  # (batch, M) -> (batch, dim)
        metadata = torch.nan_to_num(metadata, nan=0.0, posinf=0.0, neginf=0.0)
        return self.base(metadata) + self.branch_out(self.activation(self.branch_in(metadata)))

    def l1_penalty(self) -> torch.Tensor:
        return self.base.weight.abs().sum() + self.branch_in.weight.abs().sum()


class AtcatEmbeddings(nn.Module):
    """All input tokens of a batch: points, [PRED] tokens and the optional metadata token."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.config = config
        self.time = AtcatTimeEmbedding(config)
        self.flux = AtcatValueEmbedding(config)
        self.flux_err = AtcatValueEmbedding(config)
        # "adding a free parameter (so that the model could learn to distinguish token types)"
        self.pred_token = nn.Parameter(torch.zeros(config.hidden_size))
        self.metadata = AtcatMetadataEmbedding(config) if config.metadata_dim > 0 else None
        self.dropout = nn.Dropout(config.input_dropout)

    def forward(self, times, flux, flux_err, wavelength, token_type,
                metadata: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time) inputs -> (batch, time + has_metadata, dim)."""
        token_type = token_type.unsqueeze(-1)
        tokens = self.time(times, wavelength) + self.flux_err(flux_err)
        # where(), not a 0/1 product: whatever a padded or [PRED] flux holds must not leak
        tokens = tokens + torch.where(token_type == POINT, self.flux(flux), 0.0)
        tokens = tokens + torch.where(token_type == PRED, self.pred_token, 0.0)
        tokens = torch.where(token_type == PAD, 0.0, tokens)
        if self.metadata is not None:
            tokens = torch.cat([self.metadata(metadata).unsqueeze(1), tokens], dim=1)
        return self.dropout(tokens)


__all__ = [
    "PAD", "POINT", "PRED", "AtcatEmbeddings", "AtcatMetadataEmbedding", "AtcatTimeEmbedding",
    "AtcatValueEmbedding", "float32_constant", "rotate_pairs", "time_frequencies",
    "wavelength_frequencies",
]
