"""Astromer as Hugging Face models (Donoso-Oliva et al., Astromer 1 and 2;
shared/papers/001_0ee157db3fd4b444.txt, sect. 2.2-2.5, 3.1-3.3, 5.4).

Inputs (as built by `AstromerCollator`), all of shape (batch, time):
    input_values      zero-mean magnitudes of a window; masked points already hidden
    times             observation times in days (float64 keeps MJD phases exact)
    attention_mask    1 for observations, 0 for padding
    masked_positions  True where a probed point is masked: excluded from attention (eq. 3)
                      and, for Astromer 2, replaced by the mask token (sect. 3.1)
    probe_mask, target_values, errors   the probed subset, true magnitudes and their
                      uncertainties, used by the reconstruction loss (eq. 4 / eq. 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lcfm.exceptions import ConfigError
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from ..band_pooling import combine_bands, head_input, head_width
from .configuration_astromer import AstromerConfig

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class AstromerModelOutput(ModelOutput):
    """last_hidden_state (batch, time, hidden): output of the last block.
    pooler_output (batch, hidden): sect. 5.4 embedding, softmax(gamma)-weighted sum over the
        input embedding and every block output of their mean over unmasked valid steps.
    hidden_states: input embedding + each block output, when requested.
    attentions: (batch, heads, time, time) per block, when requested."""

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class AstromerMaskedReconstructionOutput(ModelOutput):
    """loss: RMSE on the probed points (eq. 4, or eq. 5 when uncertainty-weighted).
    reconstruction (batch, time): estimated magnitude at every step (sect. 2.5)."""

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def time_positional_encoding(times: torch.Tensor, dim: int, base: float) -> torch.Tensor:
    """Eq. 1-2: PE_j(t) = sin(t w_j) for even j, cos(t w_j) for odd j, w_j = base^(-2j/dim).

    Computed in float64 when `times` is float64 (MJD ~ 5e4 days loses phase in float32).
    (batch, time) -> (batch, time, dim)"""
    dtype = torch.float64 if times.dtype == torch.float64 else torch.float32
    j = torch.arange(dim, device=times.device, dtype=dtype)
    omega = torch.pow(torch.tensor(float(base), dtype=dtype, device=times.device), -2.0 * j / dim)
    angles = times.to(dtype).unsqueeze(-1) * omega  # (batch, time, dim)
    return torch.where(j.remainder(2) == 0, torch.sin(angles), torch.cos(angles))


def uncertainty_weights(errors: torch.Tensor, valid: torch.Tensor, floor: float) -> torch.Tensor:
    """Eq. 5 weights as the published Astromer 2 code defines them (issue 11, item 5).

    The paper (sect. 3.3): "These uncertainties are normalized to a range of 0 to 1 and
    their reciprocals are used as weights." The reference implementation
    (`create_loss_weigths` in astromer-science/main-code, src/data/preprocessing.py) takes
    w = 1/e, min-max normalises w over each window, w' = (w - min w) / (max w - min w), and
    adds 1e-3 (`floor` here, `AstromerConfig.uncertainty_floor`). So the most precise point
    of a window weighs 1 + floor and the noisiest `floor`: errors [0.01, 0.02, 0.05, 0.5]
    give [1.001, 0.491, 0.185, 0.001]. The weights stay in (0, 1 + floor] whatever the
    errors' scale, where plain 1/e of small uncertainties reached ~1000.

    Where lcfm differs, on purpose:
    * min and max are taken over the window's observations (`valid`); the reference pads
      windows with error 0, whose 1/0 it sets to 0, so every window shorter than 200
      points had min w = 0. lcfm weights a short window like a full one.
    * a non-finite or non-positive uncertainty gets weight `floor`, as the reference's 1/0
      -> 0 gives it the smallest weight, but it does not pull the window's minimum down.
    As in the reference, a window whose uncertainties are all equal has max w = min w and
    every point weighs `floor`.
    (batch, time) -> (batch, time)"""
    usable = valid & torch.isfinite(errors) & (errors > 0)
    inverse = torch.where(usable, 1.0 / torch.where(usable, errors, torch.ones_like(errors)),
                          torch.zeros_like(errors))
    low = torch.where(usable, inverse, torch.full_like(inverse, float("inf"))).amin(
        dim=1, keepdim=True)
    high = inverse.amax(dim=1, keepdim=True)  # unusable entries are 0 <= any usable 1/e
    spread = high - low
    scaled = torch.where(usable & (spread > 0), (inverse - low) / torch.where(
        spread > 0, spread, torch.ones_like(spread)), torch.zeros_like(inverse))
    return scaled + floor


def reconstruction_loss(reconstruction: torch.Tensor, target_values: torch.Tensor,
                        probe_mask: torch.Tensor, errors: torch.Tensor | None = None,
                        attention_mask: torch.Tensor | None = None,
                        uncertainty_floor: float = 1e-3) -> torch.Tensor:
    """RMSE on the probed points (eq. 4); with `errors`, uncertainty-weighted (eq. 5).

    As in the published implementation, the squared (weighted) residuals are averaged over
    the probed points of each window, then over windows, then rooted. (Eq. 4 as printed
    divides the double sum by N-1, which would scale with the window length and is undefined
    for one window.) Windows without probed points do not count."""
    probe = probe_mask.bool()
    if attention_mask is not None:
        probe = probe & attention_mask.bool()
    squared = (reconstruction.float() - target_values.float()).square()
    if errors is not None:
        valid = attention_mask.bool() if attention_mask is not None else torch.ones_like(probe)
        squared = squared * uncertainty_weights(errors.float(), valid, uncertainty_floor)
    squared = torch.where(probe, squared, torch.zeros_like(squared))
    n_probed = probe.sum(dim=1)  # (batch,)
    per_window = squared.sum(dim=1) / n_probed.clamp(min=1)
    has_probe = n_probed > 0
    if not bool(has_probe.any()):
        return squared.sum() * 0.0  # keeps the graph; nothing to reconstruct
    return per_window[has_probe].mean().sqrt()


class AstromerEmbeddings(nn.Module):
    """Sect. 2.2 / 3.1: X = PE(t) + m W^T, with masked magnitudes replaced by a trainable,
    zero-initialised scalar token (Astromer 2) before the projection."""

    def __init__(self, config: AstromerConfig):
        super().__init__()
        self.hidden_size, self.pe_base = config.hidden_size, config.pe_base
        self.magnitude_projection = nn.Linear(1, config.hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1)) if config.mask_token else None
        self.dropout = nn.Dropout(config.embedding_dropout)

    def forward(self, input_values, times, masked_positions=None):
        values = input_values.to(self.magnitude_projection.weight.dtype)
        if self.mask_token is not None and masked_positions is not None:
            values = torch.where(masked_positions, self.mask_token.to(values.dtype), values)
        projected = self.magnitude_projection(values.unsqueeze(-1))  # (batch, time, hidden)
        encoding = time_positional_encoding(times, self.hidden_size, self.pe_base)
        return self.dropout(projected + encoding.to(projected.dtype))


class AstromerSelfAttention(nn.Module):
    """Eq. 3: multi-head attention whose keys exclude masked probed points and padding."""

    def __init__(self, config: AstromerConfig):
        super().__init__()
        d = config.hidden_size
        self.num_heads, self.head_dim = config.num_attention_heads, d // config.num_attention_heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.output = nn.Linear(d, d)  # merges the concatenated heads

    def forward(self, hidden, key_bias, output_attentions=False):
        batch, steps, _ = hidden.shape

        def heads(x):  # (batch, time, hidden) -> (batch, heads, time, head_dim)
            return x.view(batch, steps, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden))
        weights = None
        if output_attentions:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + key_bias
            weights = scores.softmax(dim=-1)  # (batch, heads, time, time)
            context = weights @ v
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias)
        context = context.transpose(1, 2).reshape(batch, steps, -1)  # (batch, time, hidden)
        return self.output(context), weights


class AstromerBlock(nn.Module):
    """Sect. 2.4 / 3.2: attention -> [dropout] -> LayerNorm -> FFN (tanh) -> LayerNorm.

    Astromer 1 has no residual path (published code); Astromer 2 adds the block input through
    a linear projection before each LayerNorm (`residual_projection`)."""

    def __init__(self, config: AstromerConfig):
        super().__init__()
        d = config.hidden_size
        self.attention = AstromerSelfAttention(config)
        self.attention_dropout = nn.Dropout(config.attention_output_dropout)
        self.attention_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(d, config.intermediate_size)
        self.activation = _ACTIVATIONS[config.hidden_act]()
        self.ffn_out = nn.Linear(config.intermediate_size, d)
        self.ffn_dropout = nn.Dropout(config.hidden_dropout)
        self.ffn_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        projected = config.residual_projection
        self.attention_skip = nn.Linear(d, d) if projected else None
        self.ffn_skip = nn.Linear(d, d) if projected else None

    def forward(self, hidden, key_bias, output_attentions=False):
        attended, weights = self.attention(hidden, key_bias, output_attentions)
        attended = self.attention_dropout(attended)
        if self.attention_skip is not None:
            attended = attended + self.attention_skip(hidden)
        attended = self.attention_norm(attended)
        transformed = self.ffn_dropout(self.ffn_out(self.activation(self.ffn_in(attended))))
        if self.ffn_skip is not None:
            transformed = transformed + self.ffn_skip(attended)
        return self.ffn_norm(transformed), weights


class AstromerPreTrainedModel(PreTrainedModel):
    config_class = AstromerConfig
    base_model_prefix = "astromer"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False
    _no_split_modules = ["AstromerBlock"]
    #: whether the sect. 5.4 layer weights gamma train with this model: only with a classifier
    _trains_layer_weights = False

    def _set_layer_weights_trainable(self) -> None:
        for module in self.modules():
            if isinstance(module, AstromerModel):
                module.layer_weights.requires_grad_(self._trains_layer_weights)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # loading re-creates every parameter as trainable; restore the gamma policy
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded)._set_layer_weights_trainable()
        return loaded

    def _init_weights(self, module):
        # Linear layers: normal (Glorot) as sect. 2.2 states for the magnitude weights; the
        # variance equals the published code's Glorot-uniform default.
        if isinstance(module, nn.Linear):
            init.xavier_normal_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, AstromerEmbeddings) and module.mask_token is not None:
            init.zeros_(module.mask_token)  # sect. 3.1: zero-initialised
        elif isinstance(module, AstromerModel):
            init.zeros_(module.layer_weights)  # uniform softmax(gamma)


class AstromerModel(AstromerPreTrainedModel):
    """The Astromer encoder: per-step hidden states and the sect. 5.4 pooled embedding.

    `layer_weights` (gamma_0..gamma_m, one per block plus the input embedding) are frozen
    here, as in the paper where they are trained with the downstream classifier only;
    `AstromerForSequenceClassification` makes them trainable."""

    def __init__(self, config: AstromerConfig):
        super().__init__(config)
        self.embeddings = AstromerEmbeddings(config)
        self.layers = nn.ModuleList(AstromerBlock(config) for _ in range(config.num_hidden_layers))
        self.layer_weights = nn.Parameter(torch.zeros(config.num_hidden_layers + 1),
                                          requires_grad=False)
        self.post_init()

    def forward(self, input_values, times, attention_mask=None, masked_positions=None,
                output_hidden_states=None, output_attentions=None, errors=None,
                probe_mask=None, target_values=None, labels=None, band_group=None,
                band_slot=None, **kwargs):
        """`errors`, `probe_mask`, `target_values`, `labels` (and `extra_features`) are
        accepted and ignored so that any collator batch can be passed whole. The hidden
        states are per sequence (one per light curve and band); `pooler_output` is per light
        curve: the bands' sect. 5.4 embeddings combined by `config.band_combine` through
        `band_group` / `band_slot` (lcfm_models.band_pooling)."""
        valid = (torch.ones_like(input_values, dtype=torch.bool) if attention_mask is None
                 else attention_mask.bool())
        masked = (torch.zeros_like(valid) if masked_positions is None
                  else masked_positions.bool() & valid)
        visible = valid & ~masked  # (batch, time): keys that may be attended (eq. 3)
        hidden = self.embeddings(input_values, times, masked)
        key_bias = torch.zeros(visible.shape, dtype=hidden.dtype, device=hidden.device)
        key_bias = key_bias.masked_fill(~visible, torch.finfo(hidden.dtype).min)
        key_bias = key_bias[:, None, None, :]  # (batch, 1, 1, time)

        all_hidden, all_attentions = [hidden], []
        for block in self.layers:
            hidden, weights = block(hidden, key_bias, bool(output_attentions))
            all_hidden.append(hidden)
            all_attentions.append(weights)

        # sect. 5.4: mean over unmasked valid steps of every output, softmax(gamma)-weighted
        steps = visible.to(hidden.dtype).unsqueeze(-1)  # (batch, time, 1)
        stacked = torch.stack(all_hidden)  # (layers + 1, batch, time, hidden)
        means = (stacked * steps).sum(dim=2) / steps.sum(dim=1).clamp(min=1.0)
        gamma = self.layer_weights.softmax(dim=0).to(hidden.dtype)
        pooled = torch.einsum("k,kbd->bd", gamma, means)  # (sequences, hidden)
        pooled = combine_bands(pooled, self.config, band_group, band_slot)  # (objects, .)

        return AstromerModelOutput(
            last_hidden_state=hidden,
            pooler_output=pooled,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
        )


class AstromerForMaskedReconstruction(AstromerPreTrainedModel):
    """Pretraining model (sect. 2.5 / 3.3): encoder + LayerNorm + Linear(hidden, 1) predicting
    the magnitude at every step; loss on the probed subset only.

    No transformers Auto class exists for masked reconstruction of continuous values; it is
    registered with `AutoModelForPreTraining`. `AutoModel` loads its checkpoints as
    `AstromerModel` (prefix "astromer")."""

    def __init__(self, config: AstromerConfig):
        super().__init__(config)
        self.astromer = AstromerModel(config)
        self.reconstruction_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.reconstruction_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_values, times, attention_mask=None, masked_positions=None,
                probe_mask=None, target_values=None, errors=None,
                output_hidden_states=None, output_attentions=None, labels=None,
                band_group=None, band_slot=None, **kwargs):
        encoded = self.astromer(input_values, times, attention_mask=attention_mask,
                                masked_positions=masked_positions,
                                output_hidden_states=output_hidden_states,
                                output_attentions=output_attentions, band_group=band_group,
                                band_slot=band_slot)
        hidden = self.reconstruction_norm(encoded.last_hidden_state)
        reconstruction = self.reconstruction_head(hidden).squeeze(-1)  # (batch, time)
        loss = None
        if probe_mask is not None and target_values is not None:
            weighted = self.config.uncertainty_weighted_loss
            if weighted and errors is None:
                raise ValueError("AstromerForMaskedReconstruction: uncertainty_weighted_loss is "
                                 "set (eq. 5) but the batch has no `errors`")
            loss = reconstruction_loss(reconstruction, target_values, probe_mask,
                                       errors if weighted else None, attention_mask,
                                       self.config.uncertainty_floor)
        return AstromerMaskedReconstructionOutput(
            loss=loss, reconstruction=reconstruction,
            last_hidden_state=encoded.last_hidden_state, pooler_output=encoded.pooler_output,
            hidden_states=encoded.hidden_states, attentions=encoded.attentions)


class AstromerForSequenceClassification(AstromerPreTrainedModel):
    """Sect. 5.4 / Fig. 10: layer-weighted embedding -> MLP (1024, 512, 256; ReLU) -> linear
    layer without activation. The gamma layer weights train with this head."""

    _trains_layer_weights = True

    def __init__(self, config: AstromerConfig):
        super().__init__(config)
        if not config.num_labels:
            raise ConfigError("AstromerForSequenceClassification needs num_labels or id2label "
                              "in its AstromerConfig")
        self.astromer = AstromerModel(config)
        layers, width = [], head_width(config, config.hidden_size)
        for size in config.classifier_hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.classifier_dropout)]
            width = size
        layers.append(nn.Linear(width, config.num_labels))
        self.classifier = nn.Sequential(*layers)
        self.post_init()
        self._set_layer_weights_trainable()

    def forward(self, input_values, times, attention_mask=None, masked_positions=None,
                labels=None, output_hidden_states=None, output_attentions=None, errors=None,
                probe_mask=None, target_values=None, band_group=None, band_slot=None,
                extra_features=None, **kwargs):
        """The head reads the per-light-curve embedding (bands combined by
        `config.band_combine`) followed by `extra_features` (light curves,
        num_extra_features) when the config has them."""
        encoded = self.astromer(input_values, times, attention_mask=attention_mask,
                                masked_positions=masked_positions,
                                output_hidden_states=output_hidden_states,
                                output_attentions=output_attentions, band_group=band_group,
                                band_slot=band_slot)
        features = head_input(encoded.pooler_output, self.config, extra_features)
        logits = self.classifier(features)  # (light curves, labels)
        loss = None if labels is None else F.cross_entropy(logits.float(), labels.long())
        return SequenceClassifierOutput(loss=loss, logits=logits,
                                        hidden_states=encoded.hidden_states,
                                        attentions=encoded.attentions)


__all__ = [
    "AstromerForMaskedReconstruction", "AstromerForSequenceClassification", "AstromerModel",
    "AstromerModelOutput", "AstromerMaskedReconstructionOutput", "AstromerPreTrainedModel",
    "reconstruction_loss", "time_positional_encoding", "uncertainty_weights",
]
