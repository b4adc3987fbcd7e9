"""ATCAT transformer layers with local causal attention
(paper 003_05ad419fc2efc3e7.txt, sect. 2.2 and 2.2.4, Fig. 2 and 3).

"The first two layers have a local masking scheme in their attention mechanism. This means
that each LC point is only allowed to attend to points which are before it and within a time
range" (1 day, then 10 days); later layers are fully causal. In local layers the metadata
token neither attends to nor is attended by light-curve tokens; in global layers every token
may attend to it (it comes first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_atcat import AtcatConfig
from .embeddings_atcat import PAD


def build_attention_mask(times: torch.Tensor, token_type: torch.Tensor,
                         window_days: float | None, has_metadata: bool) -> torch.Tensor:
    """Boolean mask (batch, T, T), True where query i may attend to key j; T = time + 1 with a
    metadata token in front.

    Causal by position (j <= i, so a [PRED] token never sees the point it stands for, which
    comes right after it); padded keys are invisible; with `window_days`, t_i - t_j <= window
    (a point exactly `window_days` earlier is still seen). The diagonal is always allowed so
    that no row is empty (padded queries attend only to themselves)."""
    batch, length = times.shape
    valid = token_type != PAD  # (batch, time)
    position = torch.arange(length, device=times.device)
    causal = position[:, None] >= position[None, :]  # (time, time)
    allowed = causal & valid[:, None, :] & valid[:, :, None]
    if window_days is not None:
        allowed = allowed & ((times[:, :, None] - times[:, None, :]) <= window_days)
    if has_metadata:
        full = torch.zeros(batch, length + 1, length + 1, dtype=torch.bool, device=times.device)
        full[:, 1:, 1:] = allowed
        if window_days is None:
            full[:, 1:, 0] = valid  # global layers: every point reads the metadata token
        allowed = full
    eye = torch.eye(allowed.shape[-1], dtype=torch.bool, device=times.device)
    return allowed | eye


class AtcatAttention(nn.Module):
    """Multi-head attention with a small shared attention width (64 for 4 heads, i.e. 16 per
    head) and no bias on query/key/value projections (sect. 2.2)."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.attention_dim // config.num_attention_heads
        self.q_proj = nn.Linear(config.hidden_size, config.attention_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.attention_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.attention_dim, bias=False)
        self.out_proj = nn.Linear(config.attention_dim, config.hidden_size)
        self.dropout = config.attention_dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (batch, T, A) -> (batch, heads, T, A/h)
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(p(hidden)) for p in (self.q_proj, self.k_proj, self.v_proj))
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask.unsqueeze(1),
            dropout_p=self.dropout if self.training else 0.0)  # (batch, heads, T, A/h)
        batch, _, length, _ = attended.shape
        return self.out_proj(attended.transpose(1, 2).reshape(batch, length, -1))


_ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}


class AtcatFeedForward(nn.Module):
    """Feed-forward unit of width 768 = 2 d (sect. 2.2). Gated by default (see the
    `AtcatConfig` docstring: only the gated form reaches the paper's 4.1 M parameters)."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.gated = config.gated_feed_forward
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size)
        self.gate_proj = (nn.Linear(config.hidden_size, config.intermediate_size)
                          if self.gated else None)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = _ACTIVATIONS[config.hidden_act]()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.gated:
            inner = self.activation(self.gate_proj(hidden)) * self.up_proj(hidden)
        else:
            inner = self.activation(self.up_proj(hidden))
        return self.down_proj(inner)


class AtcatLayer(nn.Module):
    """Pre-LayerNorm transformer block; dropout after the attention and feed-forward units
    (sect. 2.4: "have them after by default")."""

    def __init__(self, config: AtcatConfig, window_days: float | None):
        super().__init__()
        self.window_days = window_days
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AtcatAttention(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = AtcatFeedForward(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.dropout(self.attention(self.attention_norm(hidden), mask))
        return hidden + self.dropout(self.feed_forward(self.feed_forward_norm(hidden)))


__all__ = ["AtcatAttention", "AtcatFeedForward", "AtcatLayer", "build_attention_mask"]
