"""AstroCo: a Conformer-style encoder for irregular light curves (paper 002, sect. 3).

Input embedding (3.1) -> M blocks of [MHSA, convolution sublayer, gated FFN] (3.2) ->
softmax-weighted mix of the input and every block output (3.3) -> masked mean pooling.
Heads: per-step magnitude regression trained with RMSE on probed steps (3.4, B.3), and a
linear classifier on the pooled embedding (3.4, B.3).

Padding is invisible: padded inputs are zeroed before projection, padded keys are masked in
attention, padded steps are zeroed before the depthwise convolution, the BatchNorm computes
its statistics over valid steps only, and pooling averages valid steps only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from lcfm_models.astroco.configuration_astroco import AstroCoConfig
from lcfm_models.band_pooling import combine_bands, head_input, head_width


@dataclass
class AstroCoModelOutput(ModelOutput):
    """`last_hidden_state`: the layer-mixed per-step representation x~ of sect. 3.3
    (batch, time, dim); `pooler_output`: its masked mean (batch, dim); `hidden_states`:
    input embedding and every block output (M + 1 tensors) when requested;
    `layer_weights`: the softmax mixing weights alpha (M + 1,)."""

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    layer_weights: torch.Tensor | None = None


@dataclass
class AstroCoMaskedReconstructionOutput(ModelOutput):
    """`reconstruction`: predicted (normalised) magnitude at every step (batch, time)."""

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    layer_weights: torch.Tensor | None = None


@dataclass
class AstroCoSequenceClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    layer_weights: torch.Tensor | None = None


def sinusoidal_time_encoding(times: torch.Tensor, dim: int, base: float) -> torch.Tensor:
    """Fixed sinusoids of the (irregular) observation times, (batch, time) -> (batch, time,
    dim). Frequencies are computed on the fly, so no buffer needs refilling after
    `from_pretrained` builds the model on the meta device."""
    n_freq = (dim + 1) // 2
    exponent = torch.arange(n_freq, device=times.device, dtype=torch.float32) * (2.0 / dim)
    omega = base ** (-exponent)  # (n_freq,)
    angles = times.float()[..., None] * omega  # (batch, time, n_freq), float32 for precision
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :dim]


class AstroCoEmbeddings(nn.Module):
    """Sect. 3.1: (m, sigma) -> D/2, sinusoidal time -> D/2, concatenate, Linear + GELU +
    LayerNorm. Padded steps are replaced by zeros before projection (m = sigma = t = 0);
    masked steps arrive from the collator with m = sigma = mask_value.

    Bands (issue 12; AstroCo itself is single-band): each point's ln(lambda / 5000 A)
    (`wavelengths` from the collator, 0 for an unknown band) times a learned vector is added
    before the GELU. The vector starts at zero, so a new or older checkpoint computes
    exactly what the paper's single-band model does until training uses the bands."""

    def __init__(self, config: AstroCoConfig):
        super().__init__()
        self.time_dim = config.hidden_size // 2
        self.time_base = config.time_encoding_base
        self.photometry_projection = nn.Linear(2, config.hidden_size - self.time_dim)
        self.fusion = nn.Linear(config.hidden_size, config.hidden_size)
        self.wavelength_weight = nn.Parameter(torch.zeros(config.hidden_size))
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, values, times, errors, valid, wavelengths=None):
        # torch.where (not a product) so that NaN or inf in padding cannot leak.
        values = torch.where(valid, values, torch.zeros_like(values))
        errors = torch.where(valid, errors, torch.zeros_like(errors))
        times = torch.where(valid, times, torch.zeros_like(times))
        dtype = self.fusion.weight.dtype  # float32 inputs also drive a bf16/fp16 model
        photometry = self.photometry_projection(torch.stack([values, errors], -1).to(dtype))
        time_code = sinusoidal_time_encoding(times, self.time_dim, self.time_base).to(dtype)
        fused = self.fusion(torch.cat([photometry, time_code], dim=-1))  # (batch, time, dim)
        # no wavelengths: 0, which keeps the weight in the graph (distributed training)
        wavelengths = torch.zeros_like(values) if wavelengths is None else wavelengths
        band = torch.where(valid, wavelengths, torch.zeros_like(wavelengths)).to(dtype)
        fused = fused + band[..., None] * self.wavelength_weight.to(dtype)
        return self.LayerNorm(F.gelu(fused))


class AstroCoSelfAttention(nn.Module):
    """Standard multi-head self-attention; padded steps are masked as keys."""

    def __init__(self, config: AstroCoConfig):
        super().__init__()
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.attention_probs_dropout_prob

    def forward(self, hidden, valid):
        batch, length, _ = hidden.shape

        def heads(x):  # (batch, time, dim) -> (batch, heads, time, head_dim)
            return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

        key_mask = valid[:, None, None, :]  # (batch, 1, 1, time): True = may be attended
        attended = F.scaled_dot_product_attention(
            heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden)),
            attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.output(attended.transpose(1, 2).reshape(batch, length, -1))


class AstroCoMaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are taken over valid steps only.

    Same parameters and buffers as nn.BatchNorm1d; in eval mode it is exactly BatchNorm1d.
    In training the mean and (biased) variance are computed over (batch, valid steps), and
    the running estimates are updated with them (unbiased variance, as PyTorch does), so
    neither the amount nor the content of padding changes any output."""

    def forward(self, x, valid):  # x: (batch, dim, time), valid: (batch, time)
        if not self.training:
            return super().forward(x)
        # statistics in float32 (also under bf16 autocast), like the running buffers
        weight = valid[:, None, :].float()  # (batch, 1, time)
        xf = x.float()
        count = weight.sum().clamp_min(1.0)
        mean = (xf * weight).sum(dim=(0, 2)) / count  # (dim,)
        centred = (xf - mean[None, :, None]) * weight
        var = centred.pow(2).sum(dim=(0, 2)) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            unbiased = var * count / (count - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        scale = self.weight.float() * torch.rsqrt(var + self.eps)
        shift = self.bias.float() - mean * scale
        return (xf * scale[None, :, None] + shift[None, :, None]).to(x.dtype)


class AstroCoConvolution(nn.Module):
    """Sect. 3.2 (2): LN -> pointwise D->2D -> GLU -> depthwise Conv1d(K) -> BatchNorm ->
    SiLU -> pointwise D->D -> dropout -> residual -> LN."""

    def __init__(self, config: AstroCoConfig):
        super().__init__()
        dim, kernel = config.hidden_size, config.conv_kernel_size
        self.pre_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.batch_norm = AstroCoMaskedBatchNorm(dim, eps=config.batch_norm_eps,
                                                 momentum=config.batch_norm_momentum)
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.post_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        # Y[t] = sum_k W[k] X[t + k - floor(K/2)]: asymmetric for even K, length preserved.
        self.padding = (kernel // 2, kernel - 1 - kernel // 2)

    def forward(self, hidden, valid):
        x = F.glu(self.pointwise_in(self.pre_norm(hidden)), dim=-1)  # (batch, time, dim)
        x = x.masked_fill(~valid[..., None], 0.0)  # padded steps must not enter the conv
        x = self.depthwise(F.pad(x.transpose(1, 2), self.padding))  # (batch, dim, time)
        x = F.silu(self.batch_norm(x, valid))
        x = self.pointwise_out(x.transpose(1, 2))  # (batch, time, dim)
        return self.post_norm(hidden + self.dropout(x))


class AstroCoGatedFeedForward(nn.Module):
    """Sect. 3.2 (3), eqs. 1-2: LN(X + Dropout(W_out(GELU(W_val X) * sigmoid(W_gate X))))."""

    def __init__(self, config: AstroCoConfig):
        super().__init__()
        dim, inner = config.hidden_size, config.ffn_expansion * config.hidden_size
        self.value = nn.Linear(dim, inner)
        self.gate = nn.Linear(dim, inner)
        self.output = nn.Linear(inner, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, hidden):
        gated = F.gelu(self.value(hidden)) * torch.sigmoid(self.gate(hidden))
        return self.LayerNorm(hidden + self.dropout(self.output(gated)))


class AstroCoBlock(nn.Module):
    """One encoder block (sect. 3.2, Figure 2)."""

    def __init__(self, config: AstroCoConfig):
        super().__init__()
        self.attention = AstroCoSelfAttention(config)
        self.attention_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.convolution = AstroCoConvolution(config)
        self.feed_forward = AstroCoGatedFeedForward(config)

    def forward(self, hidden, valid):
        attended = self.attention(hidden, valid)
        hidden = self.attention_norm(hidden + self.attention_dropout(attended))  # post-norm
        return self.feed_forward(self.convolution(hidden, valid))


class AstroCoPreTrainedModel(PreTrainedModel):
    config_class = AstroCoConfig
    base_model_prefix = "astroco"
    main_input_name = "values"
    _no_split_modules = ["AstroCoBlock"]

    def _init_weights(self, module):
        super()._init_weights(module)  # Linear/Conv1d normal, norms ones/zeros, BN buffers
        if isinstance(module, AstroCoModel):
            init.zeros_(module.layer_mix_logits)  # equal weights over layers at start
        if isinstance(module, AstroCoEmbeddings):
            init.zeros_(module.wavelength_weight)  # bands start unread (class docstring)


class AstroCoModel(AstroCoPreTrainedModel):
    """The AstroCo encoder: per-step representations and a pooled light-curve embedding.

    Inputs (from the collator): `values`, `times`, `errors` (batch, time) float and
    `attention_mask` (batch, time), 1 for observations and 0 for padding; optionally
    `wavelengths` (batch, time) and, when each (light curve, band) is its own sequence,
    `band_group` / `band_slot` (sequences,): `pooler_output` is then one vector per light
    curve, the bands combined by `config.band_combine` (lcfm_models.band_pooling). Targets,
    labels and extra features of a collated batch are accepted and ignored, so any batch
    can be embedded."""

    def __init__(self, config: AstroCoConfig):
        super().__init__(config)
        self.embeddings = AstroCoEmbeddings(config)
        self.blocks = nn.ModuleList(AstroCoBlock(config) for _ in range(config.num_hidden_layers))
        # Sect. 3.3: scalar weights w_0..w_M over the input and the M block outputs.
        self.layer_mix_logits = nn.Parameter(torch.zeros(config.num_hidden_layers + 1))
        self.post_init()

    def forward(self, values, times, errors=None, attention_mask=None,
                output_hidden_states=None, return_dict=None, target_values=None,
                target_mask=None, labels=None, wavelengths=None, band_group=None,
                band_slot=None, extra_features=None) -> AstroCoModelOutput:
        if errors is None:
            errors = torch.zeros_like(values)
        if attention_mask is None:
            valid = torch.ones_like(values, dtype=torch.bool)
        else:
            valid = attention_mask.to(device=values.device).bool()
        hidden = self.embeddings(values, times, errors, valid, wavelengths)  # (batch, time, dim)
        layers = [hidden]
        for block in self.blocks:
            hidden = block(hidden, valid)
            layers.append(hidden)
        layer_weights = torch.softmax(self.layer_mix_logits, dim=0)  # (M + 1,)
        mixed = torch.einsum("l,lbtd->btd", layer_weights, torch.stack(layers))
        weight = valid[..., None].to(mixed.dtype)  # (batch, time, 1)
        pooled = (mixed * weight).sum(1) / weight.sum(1).clamp_min(1.0)  # (batch, dim)
        pooled = combine_bands(pooled, self.config, band_group, band_slot)  # per light curve
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else self.config.output_hidden_states)
        return AstroCoModelOutput(
            last_hidden_state=mixed, pooler_output=pooled,
            hidden_states=tuple(layers) if output_hidden_states else None,
            layer_weights=layer_weights)


def probed_rmse(prediction, target, probed) -> torch.Tensor:
    """Eq. 3 (B.3): sqrt(mean over probed steps of (m_hat - m)^2), pooled over the batch.
    Steps outside `probed` contribute nothing, whatever their target."""
    weight = probed.to(prediction.dtype)
    squared = torch.where(probed.bool(), (prediction - target) ** 2,
                          torch.zeros_like(prediction))
    mse = squared.sum() / weight.sum().clamp_min(1.0)
    return torch.sqrt(mse.clamp_min(1e-12))  # keeps the gradient finite at zero error


class AstroCoForMaskedReconstruction(AstroCoPreTrainedModel):
    """Self-supervised pretraining (sect. 3.1, 3.4, B.3): a linear regression head predicts
    the magnitude at every step from the layer-mixed representation; the loss is the RMSE
    over probed steps (`target_mask` = 1), against `target_values` (the unmasked window)."""

    def __init__(self, config: AstroCoConfig):
        super().__init__(config)
        self.astroco = AstroCoModel(config)
        self.regression_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, values, times, errors=None, attention_mask=None, target_values=None,
                target_mask=None, output_hidden_states=None, return_dict=None, labels=None,
                wavelengths=None, band_group=None, band_slot=None, extra_features=None):
        encoded = self.astroco(values, times, errors, attention_mask,
                               output_hidden_states=output_hidden_states,
                               wavelengths=wavelengths, band_group=band_group,
                               band_slot=band_slot)
        reconstruction = self.regression_head(encoded.last_hidden_state).squeeze(-1)
        loss = None
        if target_values is not None:
            if target_mask is None:
                raise ValueError("target_values were given without target_mask "
                                 "(the probed steps the loss counts)")
            probed = target_mask.bool()
            if attention_mask is not None:
                probed = probed & attention_mask.bool()
            loss = probed_rmse(reconstruction, target_values.to(reconstruction.dtype), probed)
        return AstroCoMaskedReconstructionOutput(
            loss=loss, reconstruction=reconstruction,
            last_hidden_state=encoded.last_hidden_state, pooler_output=encoded.pooler_output,
            hidden_states=encoded.hidden_states, layer_weights=encoded.layer_weights)


class AstroCoForSequenceClassification(AstroCoPreTrainedModel):
    """Linear head on the pooled embedding (sect. 3.4, B.3), cross-entropy loss; labels
    of -100 are ignored. With `num_labels == 1` the head regresses with MSE. The head reads
    the per-light-curve embedding followed by `extra_features` (light curves,
    num_extra_features) when the config has them."""

    def __init__(self, config: AstroCoConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.astroco = AstroCoModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(head_width(config, config.hidden_size), config.num_labels)
        self.post_init()

    def forward(self, values, times, errors=None, attention_mask=None, labels=None,
                output_hidden_states=None, return_dict=None, target_values=None,
                target_mask=None, wavelengths=None, band_group=None, band_slot=None,
                extra_features=None):
        encoded = self.astroco(values, times, errors, attention_mask,
                               output_hidden_states=output_hidden_states,
                               wavelengths=wavelengths, band_group=band_group,
                               band_slot=band_slot)
        features = head_input(self.dropout(encoded.pooler_output), self.config, extra_features)
        logits = self.classifier(features)  # (light curves, labels)
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels.long(), ignore_index=-100)
        return AstroCoSequenceClassifierOutput(
            loss=loss, logits=logits, pooler_output=encoded.pooler_output,
            hidden_states=encoded.hidden_states, layer_weights=encoded.layer_weights)


__all__ = [
    "AstroCoForMaskedReconstruction", "AstroCoForSequenceClassification", "AstroCoModel",
    "AstroCoModelOutput", "AstroCoMaskedReconstructionOutput", "AstroCoPreTrainedModel",
    "AstroCoSequenceClassifierOutput",
]
