"""ASTRAFier: BiLSTM + Transformer + CNN stellar-variability classifier (Gregory et al.,
shared/papers/000_0d28d1f6ab765e34.txt, sect. 3 and Fig. 5).

A flux series is embedded (sect. 3.2), passed through three ASTRAFier blocks, each
[BiLSTM + CNN Projection, Add & Norm] -> [Transformer encoder with a time-derived sinusoidal
encoding, 8-head masked attention and a convolutional feed-forward] -> [multi-scale CNN
module, Add & Norm] (sects. 3.3-3.5), averaged over valid time steps (eq. 6) and classified
by an MLP (sect. 3.6).

Padding is invisible (sect. 3.1): padded inputs are zeroed before the embedding, the BiLSTM
reads each light curve's observations only (its backward direction runs over the reversed
observations, one fused kernel per direction), attention masks padded keys, every
convolution sees zeros at padded steps, GroupNorm statistics use valid steps only, and
pooling is a masked mean. A light curve therefore gets the same outputs whatever the
padding length or padded values.
Padding must sit at the end of each row (as the lcfm collator produces it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from lcfm.exceptions import DataError
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.utils.generic import can_return_tuple

from ..band_pooling import combine_bands, head_input, head_width
from .configuration_astrafier import AstrafierConfig


def _zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero padded steps of a channels-first tensor. x: (batch, channels, time); mask:
    (batch, time) bool. `where` rather than a product so non-finite padding cannot leak."""
    return torch.where(mask[:, None, :], x, torch.zeros((), dtype=x.dtype, device=x.device))


class AstrafierMaskedConv1d(nn.Conv1d):
    """A 'same' 1-D convolution whose input is zeroed at padded steps, so a kernel that
    overlaps the padding reads the zeros it would read past the end of the light curve."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return super().forward(_zero_padding(x, mask))  # (batch, out_channels, time)


class AstrafierMaskedGroupNorm(nn.GroupNorm):
    """GroupNorm whose mean and variance are taken over valid time steps only (sect. 3.1:
    normalisation "computed independently of any of the padded positions"). On an unpadded
    batch it equals `nn.GroupNorm`; padded outputs are zero."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, channels, steps = x.shape
        groups = self.num_groups
        # statistics in float32 whatever autocast hands in: a bf16 count of 1171 x 256
        # valid entries is already off by 0.4%, and nn.GroupNorm runs in float32 too
        dtype, x = x.dtype, x.float()
        weights = mask.to(x.dtype)[:, None, None, :]  # (batch, 1, 1, time)
        grouped = x.reshape(batch, groups, channels // groups, steps) * weights
        count = (weights.sum(dim=-1, keepdim=True) * (channels // groups)).clamp_min(1.0)
        mean = grouped.sum(dim=(2, 3), keepdim=True) / count
        var = (((grouped - mean) * weights) ** 2).sum(dim=(2, 3), keepdim=True) / count
        normed = ((grouped - mean) / torch.sqrt(var + self.eps)).reshape(batch, channels, steps)
        normed = normed * self.weight[None, :, None] + self.bias[None, :, None]
        return _zero_padding(normed.to(dtype), mask)  # (batch, channels, time)


class AstrafierConvNormAct(nn.Module):
    """Masked convolution -> masked GroupNorm -> activation."""

    def __init__(self, config: AstrafierConfig, in_channels: int, out_channels: int,
                 kernel_size: int, activation: nn.Module):
        super().__init__()
        self.conv = AstrafierMaskedConv1d(in_channels, out_channels, kernel_size)
        self.norm = AstrafierMaskedGroupNorm(config.norm_groups, out_channels)
        self.act = activation

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x, mask), mask))


class AstrafierBiLSTMModule(nn.Module):
    """Sect. 3.3: 2-layer BiLSTM (padded outputs zeroed), CNN Projection 128 -> 256 (k=1) ->
    256 (k=3) -> 64 (k=1) with GroupNorm and ReLU, then Add & Norm with the block input."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        d, width = config.hidden_size, config.projection_size
        # one nn.LSTM per layer, with an nn.Dropout between them rather than nn.LSTM's internal
        # dropout, so that enabling the nn.Dropout modules is all Monte-Carlo dropout needs
        sizes = [d] + [2 * config.lstm_hidden_size] * (config.lstm_num_layers - 1)
        self.lstm = nn.ModuleList(nn.LSTM(size, config.lstm_hidden_size, batch_first=True,
                                          bidirectional=True) for size in sizes)
        self.expand = AstrafierConvNormAct(config, 2 * config.lstm_hidden_size, width, 1, nn.ReLU())
        self.mix = AstrafierConvNormAct(config, width, width, config.projection_kernel_size,
                                        nn.ReLU())
        self.dropout = nn.Dropout(config.dropout)
        # the last pointwise layer has no norm/activation: its output is the residual branch
        self.reduce = AstrafierMaskedConv1d(width, d, 1)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # Each direction runs as one fused kernel over the padded batch (oneDNN on CPU,
        # cuDNN on GPU) instead of a packed sequence, which PyTorch steps through one time
        # step at a time on CPU. Padding stays invisible: the forward direction at a valid
        # step reads only earlier (valid) steps, and the backward direction reads each row's
        # valid prefix reversed, so it starts at the last observation, never in the padding.
        reverse = _reverse_prefix_index(mask, lengths)  # (batch, time)
        h = x
        for i, lstm in enumerate(self.lstm):
            if i:
                h = self.dropout(h)
            forward = _lstm_direction(lstm, h, "")
            backward = _lstm_direction(lstm, _gather_steps(h, reverse), "_reverse")
            h = torch.cat((forward, _gather_steps(backward, reverse)), dim=-1)
        h = _zero_padding(h.transpose(1, 2), mask)  # (batch, 2h, time), zero at padding
        h = self.mix(self.expand(h, mask), mask)
        h = self.reduce(self.dropout(h), mask).transpose(1, 2)  # (batch, time, dim)
        return self.norm(x + self.dropout(h))


def _reverse_prefix_index(mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Index that reverses the first `lengths[i]` steps of row i and keeps padding in
    place; it is its own inverse."""
    steps = torch.arange(mask.shape[1], device=mask.device)[None, :]
    return torch.where(mask, lengths[:, None] - 1 - steps, steps)


def _gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t], :] for (batch, time, features) x."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


def _lstm_direction(lstm: nn.LSTM, x: torch.Tensor, suffix: str) -> torch.Tensor:
    """One direction of a one-layer bidirectional `lstm` over (batch, time, features), run
    with that direction's own weights as a unidirectional LSTM (a single fused call)."""
    params = [getattr(lstm, f"{name}_l0{suffix}")
              for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    if torch.is_autocast_enabled(x.device.type):
        # run in the autocast dtype (bf16 on CPU): input and weights must agree
        dtype = torch.get_autocast_dtype(x.device.type)
        x, params = x.to(dtype), [p.to(dtype) for p in params]
    elif x.dtype != params[0].dtype:
        x = x.to(params[0].dtype)
    zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    output, _, _ = torch.lstm(x, (zeros, zeros), params, True, 1, 0.0, lstm.training, False,
                              True)
    return output  # (batch, time, hidden)


class AstrafierTimeEncoding(nn.Module):
    """Eqs. 2-3: PE(t, 2i) = sin(t / base^(2i/d) * d/T), PE(t, 2i+1) = cos(...), with t the
    observation time (days since the first valid step) and T the number of valid steps of
    each light curve. Computed on the fly: nothing to save or to refill after loading."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        self.dim, self.base = config.hidden_size, float(config.time_encoding_base)

    def forward(self, times: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        two_i = torch.arange(0, self.dim, 2, device=times.device, dtype=torch.float32)
        inv_freq = self.base ** -(two_i / self.dim)  # (dim/2,)
        scale = self.dim / lengths.clamp_min(1).to(torch.float32)  # (batch,)
        angle = times.to(torch.float32)[..., None] * inv_freq * scale[:, None, None]
        encoding = torch.stack((angle.sin(), angle.cos()), dim=-1)  # (batch, time, dim/2, 2)
        return encoding.flatten(-2)  # (batch, time, dim): sin on even, cos on odd channels


class AstrafierSelfAttention(nn.Module):
    """Multi-head self-attention; scores of padded keys are -inf before the softmax (sect. 3.4)."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        # applied inside scaled_dot_product_attention, switched on and off with this module
        self.attention_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        batch, steps, dim = x.shape
        q, k, v = self.qkv(x).view(batch, steps, 3, self.heads, dim // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, heads, time, head_dim)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :],
            dropout_p=self.attention_dropout.p if self.attention_dropout.training else 0.0)
        return self.out(attended.transpose(1, 2).reshape(batch, steps, dim))


class AstrafierConvFeedForward(nn.Module):
    """Sect. 3.4: the position-wise feed-forward replaced by convolutions, 64 -> 256 (k=1) ->
    256 (k=3) -> 64 (k=1) (widths: see the AstrafierConfig docstring)."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        d, width = config.hidden_size, config.feed_forward_size
        self.expand = AstrafierConvNormAct(config, d, width, 1, nn.SiLU())
        self.mix = AstrafierConvNormAct(config, width, width, config.feed_forward_kernel_size,
                                        nn.SiLU())
        self.dropout = nn.Dropout(config.dropout)
        self.reduce = AstrafierMaskedConv1d(width, d, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.mix(self.expand(x.transpose(1, 2), mask), mask)  # (batch, width, time)
        return self.reduce(self.dropout(h), mask).transpose(1, 2)  # (batch, time, dim)


class AstrafierTransformerEncoder(nn.Module):
    """Sects. 2.1 and 3.4: time encoding, masked 8-head attention and convolutional
    feed-forward, each with a residual connection and LayerNorm (post-norm, Fig. 1)."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        self.time_encoding = AstrafierTimeEncoding(config)
        self.attention = AstrafierSelfAttention(config)
        self.feed_forward = AstrafierConvFeedForward(config)
        self.dropout = nn.Dropout(config.dropout)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, times, mask, key_mask, lengths):
        x = self.dropout(x + self.time_encoding(times, lengths))
        x = self.attention_norm(x + self.dropout(self.attention(x, key_mask)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x, mask)))


class AstrafierCNNModule(nn.Module):
    """Sect. 3.5, Fig. 7: 64 -> 256 (k=1), GLU -> 128, convolutions k = 3, 7, 15, 111 (128 ->
    128, GroupNorm with one group + SiLU), 128 -> 64 (k=1), then Add & Norm."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        d, gated = config.hidden_size, config.cnn_glu_size // 2
        self.expand = AstrafierMaskedConv1d(d, config.cnn_glu_size, 1)
        self.convs = nn.ModuleList(AstrafierConvNormAct(config, gated, gated, k, nn.SiLU())
                                   for k in config.cnn_kernel_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.reduce = AstrafierMaskedConv1d(gated, d, 1)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.expand(x.transpose(1, 2), mask), dim=1)  # (batch, glu/2, time)
        for conv in self.convs:
            h = conv(h, mask)
        h = self.reduce(self.dropout(h), mask).transpose(1, 2)  # (batch, time, dim)
        return self.norm(x + self.dropout(h))


class AstrafierBlock(nn.Module):
    """One gray box of Fig. 5: BiLSTM module -> Transformer encoder -> CNN module."""

    def __init__(self, config: AstrafierConfig):
        super().__init__()
        # Table 6 ablations build the block without one module (config.removed_module)
        removed = config.removed_module
        self.bilstm = AstrafierBiLSTMModule(config) if removed != "lstm" else None
        self.transformer = (AstrafierTransformerEncoder(config) if removed != "attention"
                            else None)
        self.cnn = AstrafierCNNModule(config) if removed != "cnn" else None

    def forward(self, x, times, mask, key_mask, lengths):
        if self.bilstm is not None:
            x = self.bilstm(x, mask, lengths)
        if self.transformer is not None:
            x = self.transformer(x, times, mask, key_mask, lengths)
        if self.cnn is not None:
            x = self.cnn(x, mask)
        return x  # (batch, time, dim)


class AstrafierPreTrainedModel(PreTrainedModel):
    config_class = AstrafierConfig
    config: AstrafierConfig
    base_model_prefix = "astrafier"
    main_input_name = "values"
    supports_gradient_checkpointing = False
    _no_split_modules = ["AstrafierBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own defaults (uniform in +-1/sqrt(fan_in)), which the authors trained from
        if isinstance(module, nn.Linear | nn.Conv1d):
            fan_in = module.weight[0].numel()
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif isinstance(module, nn.LSTM):
            bound = 1 / math.sqrt(module.hidden_size)
            for param in module.parameters():
                init.uniform_(param, -bound, bound)
        elif isinstance(module, nn.LayerNorm | nn.GroupNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class AstrafierModel(AstrafierPreTrainedModel):
    """Embedding and the three ASTRAFier blocks. Returns per-step hidden states
    (`last_hidden_state`, zero at padded steps) and the masked mean of eq. 6
    (`pooler_output`), the embedding the classification MLP reads."""

    def __init__(self, config: AstrafierConfig):
        super().__init__(config)
        self.embedding = nn.Linear(1, config.hidden_size)  # sect. 3.2: flux -> 64 features
        self.blocks = nn.ModuleList(AstrafierBlock(config) for _ in range(config.num_blocks))
        self.post_init()

    @can_return_tuple
    def forward(self, values: torch.Tensor, times: torch.Tensor,
                attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, band_group: torch.Tensor | None = None,
                band_slot: torch.Tensor | None = None, **kwargs) -> BaseModelOutputWithPooling:
        """values, times: (sequences, time) flux and days; attention_mask: (sequences, time),
        1 for observations and 0 for padding at the end of a row. With `band_group` (one
        sequence per light curve and band, from the collator) `pooler_output` is one vector
        per light curve, the bands combined by `config.band_combine`
        (lcfm_models.band_pooling); hidden states stay per sequence."""
        if attention_mask is None:
            attention_mask = torch.ones_like(values, dtype=torch.bool)
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1)  # (batch,)
        steps = torch.arange(values.shape[1], device=values.device)
        if not torch.equal(mask, steps[None, :] < lengths[:, None]):
            raise DataError("attention_mask must be 1 for a prefix of each row and 0 after it "
                            "(padding at the end)")
        zero = torch.zeros((), dtype=values.dtype, device=values.device)
        values = torch.where(mask, values, zero)
        times = torch.where(mask, times - times[:, :1], zero.to(times.dtype))  # days since start
        # a row with no observation attends to its (zero) padding instead of to nothing (NaN)
        key_mask = mask | (lengths == 0)[:, None]

        x = self.embedding(values[..., None].to(self.embedding.weight.dtype))  # (batch, time, dim)
        hidden_states = [x] if output_hidden_states else None
        for block in self.blocks:
            x = block(x, times, mask, key_mask, lengths)
            if hidden_states is not None:
                hidden_states.append(x)
        weights = mask.to(x.dtype)[..., None]  # (batch, time, 1)
        x = x * weights
        pooled = x.sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # eq. 6, (sequences, dim)
        pooled = combine_bands(pooled, self.config, band_group, band_slot)  # per light curve
        return BaseModelOutputWithPooling(
            last_hidden_state=x, pooler_output=pooled,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None)


class AstrafierForSequenceClassification(AstrafierPreTrainedModel):
    """ASTRAFier with the sect. 3.6 MLP: 64 -> 128 (LayerNorm, SiLU, dropout) -> 32 (SiLU,
    dropout) -> classes. The loss is cross-entropy, class-weighted when
    `config.class_weights` is set (sect. 5); labels of -100 are ignored."""

    def __init__(self, config: AstrafierConfig):
        super().__init__(config)
        self.astrafier = AstrafierModel(config)
        first, *rest = config.head_hidden_sizes
        layers: list[nn.Module] = [nn.Linear(head_width(config, config.hidden_size), first),
                                   nn.LayerNorm(first, eps=config.layer_norm_eps), nn.SiLU(),
                                   nn.Dropout(config.dropout)]
        width = first
        for size in rest:
            layers += [nn.Linear(width, size), nn.SiLU(), nn.Dropout(config.dropout)]
            width = size
        layers.append(nn.Linear(width, config.num_labels))
        self.classifier = nn.Sequential(*layers)
        self.post_init()

    @can_return_tuple
    def forward(self, values: torch.Tensor, times: torch.Tensor,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, band_group: torch.Tensor | None = None,
                band_slot: torch.Tensor | None = None,
                extra_features: torch.Tensor | None = None,
                **kwargs) -> SequenceClassifierOutput:
        """The head reads the per-light-curve vector (bands combined by
        `config.band_combine`) followed by `extra_features` (light curves,
        num_extra_features) when the config has them."""
        encoded = self.astrafier(values, times, attention_mask,
                                 output_hidden_states=output_hidden_states,
                                 band_group=band_group, band_slot=band_slot)
        features = head_input(encoded.pooler_output, self.config, extra_features)
        logits = self.classifier(features)  # (light curves, classes)
        loss = None
        if labels is not None:
            weight = None
            if self.config.class_weights is not None:
                weight = torch.tensor(self.config.class_weights, dtype=logits.dtype,
                                      device=logits.device)
            loss = F.cross_entropy(logits, labels.long(), weight=weight, ignore_index=-100)
        return SequenceClassifierOutput(loss=loss, logits=logits,
                                        hidden_states=encoded.hidden_states)

    @torch.no_grad()
    def predict_mc_dropout(self, values: torch.Tensor, times: torch.Tensor,
                           attention_mask: torch.Tensor | None = None,
                           n_samples: int | None = None, **kwargs
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Monte-Carlo dropout (sect. 3.6, Gal & Ghahramani 2015): `n_samples` (default 20)
        forward passes with every `nn.Dropout` module active (p = 0.2; this includes the
        attention and inter-LSTM dropout, so lcfm's predict engine, which switches the same
        modules on, draws the same kind of samples) and everything else in inference mode.
        Returns the mean and the standard deviation over passes of the class probabilities,
        each (batch, classes); the mean is the calibrated prediction. `band_group`,
        `band_slot` and `extra_features` are passed on; other batch keys (e.g. `labels`) are
        ignored."""
        n_samples = n_samples or self.config.mc_dropout_samples
        previous = [(m, m.training) for m in self.modules()]
        self.eval()
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.train()
        try:
            samples = torch.stack([
                self(values, times, attention_mask, band_group=kwargs.get("band_group"),
                     band_slot=kwargs.get("band_slot"),
                     extra_features=kwargs.get("extra_features")).logits.float().softmax(dim=-1)
                for _ in range(n_samples)])  # (samples, batch, classes)
        finally:
            for module, mode in previous:
                module.training = mode
        return samples.mean(dim=0), samples.std(dim=0, correction=0)


__all__ = ["AstrafierForSequenceClassification", "AstrafierModel", "AstrafierPreTrainedModel"]
