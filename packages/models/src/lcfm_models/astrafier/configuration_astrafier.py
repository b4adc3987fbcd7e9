"""Configuration of ASTRAFier (Gregory et al., shared/papers/000_0d28d1f6ab765e34.txt).

Every default below is the paper configuration ("astrafier", 8.8 M parameters, sect. 5.1).
"""

from __future__ import annotations

import math

from lcfm.exceptions import ConfigError
from transformers import PreTrainedConfig

from ..band_pooling import normalise_band_fields, validate_band_fields

#: Table 6 ablations: the module a model is built without (None: the full model)
REMOVABLE_MODULES = (None, "lstm", "attention", "cnn")


class AstrafierConfig(PreTrainedConfig):
    r"""Hyper-parameters of ASTRAFier, a BiLSTM + Transformer + CNN classifier of single-band
    flux time series (sect. 3, Fig. 5).

    Paper numbers (sect. 3.2-3.6, 5):
    - `hidden_size` = 64: "maps a single input feature ... to 64 output features (our chosen
      embedding dimension)" (sect. 3.2); d_emb of eqs. 2-3.
    - `num_blocks` = 3: "three sequential ASTRAFier blocks" (sect. 3).
    - `lstm_num_layers` = 2 and `lstm_hidden_size` = 64 per direction: "a 2-layer BiLSTM ...
      doubles the embedding dimension" so the CNN Projection reads "2 d_emb = 128" features
      (sect. 3.3).
    - `projection_size` = 256, `projection_kernel_size` = 3: CNN Projection 128 -> 256 (k=1)
      -> 256 (k=3) -> 64 (k=1), GroupNorm + ReLU (sect. 3.3).
    - `num_attention_heads` = 8 (sect. 3.4).
    - `cnn_glu_size` = 256, `cnn_kernel_sizes` = (3, 7, 15, 111): CNN module 64 -> 256 (k=1),
      GLU -> 128, four 128 -> 128 convolutions with GroupNorm(1 group) + SiLU, 128 -> 64 (k=1)
      (sect. 3.5, Fig. 7).
    - `head_hidden_sizes` = (128, 32): MLP 64 -> 128 (LayerNorm, SiLU, dropout) -> 32 (SiLU,
      dropout) -> classes (sect. 3.6); `num_labels` = 8 classes (sect. 4.1, Tables 2-3).
    - `dropout` = 0.2 "throughout our model" (sect. 5), also the Monte-Carlo dropout rate
      (sect. 3.6, `mc_dropout_samples` = 20 passes).

    Readings of what the paper leaves open, chosen to agree with its text *and* its
    parameter count (8.8 M, 35 MB in float32, sect. 5.1):
    - The four CNN-module convolutions (k = 3, 7, 15, 111) are full 128 -> 128 convolutions,
      as sect. 3.5 says ("each with 128 input and output channels"): they hold 16384 x 136 =
      2.23 M weights per block, 6.7 M of the total. Depthwise convolutions would leave the
      model near 2 M parameters, far from 8.8 M.
    - The convolutional feed-forward of the Transformer (sect. 3.4, widths unstated) is
      64 -> 256 (k=1) -> 256 (`feed_forward_kernel_size` = 3) -> 64 (k=1) with GroupNorm +
      SiLU. The rest of the model counts 8.07 M parameters; the remaining ~0.73 M over three
      blocks is 3 x ~244 k, and a 64 -> F -> F -> 64 stack with k=3 in the middle holds
      3F^2 + 128F, i.e. F ~ 265. F = 256 = 4 d_emb (the usual Transformer expansion, and the
      width of the CNN Projection) gives 8,761,192 parameters with 8 classes: 0.44 % below 8.8 M.
      F = 512 would give 10.6 M.
    - GroupNorm uses one group everywhere (`norm_groups` = 1): sect. 3.5 says "as in the CNN
      Projection block, GroupNorm (with a single group) is used throughout the module". Its
      statistics are computed over valid time steps only, so that, as sect. 3.1 requires,
      normalisation "is computed independently of any of the padded positions" (a plain
      GroupNorm would average over padding too); parameters are those of `nn.GroupNorm`.
    - The time encoding of eqs. 2-3 is added at the input of every Transformer encoder, as
      sects. 2.1 and 3.4 describe the encoder block ("a positional encoding followed by MHSA
      and a feed-forward module"); pos is the time in days since the first valid observation
      and T is the number of valid time steps of each light curve, so that padding cannot
      change the encoding.
    - `max_length` = 1171: the paper fixes no length (sect. 3.1 pads each batch to its longest
      light curve; sect. 4.3 only describes the cleaning). 1171 is the sequence length of the
      authors' released inference configuration: the number of cleaned 30-min QLP cadences in
      one nominal-mission sector (less than 27.4 d x 48 d^-1 = 1315). Longer light curves
      are cropped to `max_length` steps by the collator.

    `class_weights` (one positive weight per class, e.g. N_total / N_c as in sect. 5) turns
    the classification loss into class-weighted cross-entropy.

    Bands and features (issue 12; lcfm.bands, lcfm_models.band_pooling): ASTRAFier reads one
    band, so a multi-band light curve is read band by band and `band_combine` ("mean", or
    "concat" in `band_names` order with zeros for a missing band) makes one vector of the
    bands' pooled vectors; `band_names` is set from the training data when a model is built
    from scratch. `num_extra_features` per-object features (periods, colours, ... from
    `lcfm features`) are read by the head beside that vector (0: none).

    `removed_module` (None, "lstm", "attention" or "cnn") builds the ablated models of
    Table 6: "we remove one module (LSTM, Attention, CNN) from our ASTRAFier model, keeping
    everything else the same. When we remove LSTM, we also remove the 3-layer CNN in its
    residual block" (`--config removed_module=lstm`). Removing "attention" removes the
    Transformer encoder, which carries the time encoding of eqs. 2-3.
    """

    model_type = "lcfm_astrafier"

    hidden_size: int = 64
    num_blocks: int = 3
    lstm_num_layers: int = 2
    lstm_hidden_size: int = 64
    projection_size: int = 256
    projection_kernel_size: int = 3
    num_attention_heads: int = 8
    feed_forward_size: int = 256
    feed_forward_kernel_size: int = 3
    cnn_glu_size: int = 256
    cnn_kernel_sizes: list[int] | tuple[int, ...] = (3, 7, 15, 111)
    norm_groups: int = 1
    head_hidden_sizes: list[int] | tuple[int, ...] = (128, 32)
    dropout: float = 0.2
    time_encoding_base: float = 10000.0
    layer_norm_eps: float = 1e-5
    max_length: int = 1171
    mc_dropout_samples: int = 20
    class_weights: list[float] | None = None
    band_combine: str = "mean"
    band_names: list[str] | tuple[str, ...] = ()
    num_extra_features: int = 0
    removed_module: str | None = None

    def __post_init__(self, **kwargs):
        # JSON brings tuples back as lists: keep one type so saved and loaded configs compare
        self.cnn_kernel_sizes = _as_list(self.cnn_kernel_sizes, "cnn_kernel_sizes", int)
        self.head_hidden_sizes = _as_list(self.head_hidden_sizes, "head_hidden_sizes", int)
        if self.class_weights is not None:
            self.class_weights = _as_list(self.class_weights, "class_weights", float)
        normalise_band_fields(self)
        super().__post_init__(**kwargs)
        self._validate()
        validate_band_fields(self)

    def _validate(self) -> None:
        positive = ("hidden_size", "num_blocks", "lstm_num_layers", "lstm_hidden_size",
                    "projection_size", "projection_kernel_size", "num_attention_heads",
                    "feed_forward_size", "feed_forward_kernel_size", "cnn_glu_size",
                    "norm_groups", "max_length", "mc_dropout_samples")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"AstrafierConfig.{name} must be a positive integer, "
                                  f"got {value!r}")
        if self.hidden_size % 2:
            raise ConfigError(f"AstrafierConfig.hidden_size must be even (sine/cosine pairs of "
                              f"eqs. 2-3), got {self.hidden_size}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"AstrafierConfig.hidden_size={self.hidden_size} is not divisible by "
                              f"num_attention_heads={self.num_attention_heads}")
        if self.cnn_glu_size % 2:
            raise ConfigError(f"AstrafierConfig.cnn_glu_size must be even (the GLU halves it), "
                              f"got {self.cnn_glu_size}")
        kernels = [("projection_kernel_size", self.projection_kernel_size),
                   ("feed_forward_kernel_size", self.feed_forward_kernel_size),
                   *(("cnn_kernel_sizes", k) for k in self.cnn_kernel_sizes)]
        for name, k in kernels:
            if k < 1 or k % 2 == 0:
                raise ConfigError(f"AstrafierConfig.{name} must hold odd positive kernel sizes "
                                  f"(centred 'same' convolutions), got {k}")
        for name, channels in (("projection_size", self.projection_size),
                               ("feed_forward_size", self.feed_forward_size),
                               ("cnn_glu_size / 2", self.cnn_glu_size // 2)):
            if channels % self.norm_groups:
                raise ConfigError(f"AstrafierConfig.norm_groups={self.norm_groups} does not divide "
                                  f"{name}={channels}")
        if any(h < 1 for h in self.head_hidden_sizes):
            raise ConfigError(f"AstrafierConfig.head_hidden_sizes must be positive, "
                              f"got {self.head_hidden_sizes}")
        for name in ("dropout",):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ConfigError(f"AstrafierConfig.{name} must be in [0, 1), got {value!r}")
        if not isinstance(self.time_encoding_base, int | float) or self.time_encoding_base <= 1:
            raise ConfigError(f"AstrafierConfig.time_encoding_base must be > 1, "
                              f"got {self.time_encoding_base!r}")
        if self.removed_module not in REMOVABLE_MODULES:
            raise ConfigError(f"AstrafierConfig.removed_module must be one of "
                              f"{', '.join(map(str, REMOVABLE_MODULES))} (Table 6), got "
                              f"{self.removed_module!r}")
        if self.num_labels is None or self.num_labels < 2:
            raise ConfigError(f"AstrafierConfig.num_labels must be >= 2, got {self.num_labels!r}")
        if self.class_weights is not None:
            if len(self.class_weights) != self.num_labels:
                raise ConfigError(f"AstrafierConfig.class_weights has {len(self.class_weights)} "
                                  f"entries but num_labels is {self.num_labels}")
            bad = [w for w in self.class_weights if not (math.isfinite(w) and w > 0)]
            if bad:
                raise ConfigError(f"AstrafierConfig.class_weights must be positive and finite, "
                                  f"got {bad[0]!r}")


def _as_list(value, name: str, kind: type) -> list:
    if isinstance(value, list | tuple) and value:
        try:
            return [kind(v) for v in value]
        except (TypeError, ValueError):
            pass
    raise ConfigError(f"AstrafierConfig.{name} must be a non-empty list of {kind.__name__}, "
                      f"got {value!r}")


__all__ = ["AstrafierConfig"]
