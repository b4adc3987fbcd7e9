"""AstroCo configuration (paper 002, "AstroCo: Self-Supervised Conformer-Style Transformers
for Light-Curve Embeddings", sect. 3 and appendix A)."""

from __future__ import annotations

import math

from lcfm.exceptions import ConfigError
from transformers import PreTrainedConfig

from lcfm_models.band_pooling import BAND_COMBINE, normalise_band_fields, validate_band_fields

VALUE_NORMALIZATIONS = ("zero_mean", "standardize")


class AstroCoConfig(PreTrainedConfig):
    r"""Configuration of an AstroCo encoder and its heads.

    Defaults are AstroCo-S (appendix A: L=4 layers, 4 heads of dimension 69, D=276, r=4,
    K=32, dropout 0.1, windows of 200 observations). AstroCo-L is `hidden_size=256,
    num_hidden_layers=12`. Paper learning rates (AdamW): 7.5e-4 (S), 7.5e-5 (L).

    Fields:
        hidden_size: D, the model width (even: half carries (m, sigma), half the time).
        num_hidden_layers: M, number of encoder blocks.
        num_attention_heads: heads of the self-attention; head dimension = D / heads.
        ffn_expansion: r of the gated FFN (W_val, W_gate: D -> rD; W_out: rD -> D).
        conv_kernel_size: K of the depthwise convolution (32 in the paper).
        hidden_dropout_prob: dropout on every sublayer output before its residual sum.
        attention_probs_dropout_prob: dropout on the attention weights.
        classifier_dropout: dropout before the linear classification head.
        layer_norm_eps, batch_norm_eps, batch_norm_momentum: normalisation constants.
        time_encoding_base: base of the sinusoidal time frequencies
            omega_k = base^(-2k / (D/2)), with times in days.
        initializer_range: standard deviation of the normal weight initialisation.
        max_length: window length in observations (200 in the paper).
        value_normalization: "zero_mean" (paper, sect. 4: subtract the window mean of
            magnitude and of time) or "standardize" (also divide values and errors by the
            window's standard deviation: useful for raw fluxes).
        probe_fraction, mask_fraction, random_fraction: masked-reconstruction probing
            (sect. 3.1 and 4), as fractions of all valid steps of a window: 50% probed, of
            which 30% of all steps are masked, 10% get a random value and the remaining 10%
            are left unchanged. The loss counts every probed step.
        mask_value: the masking token ("we used zero scalar as masking token", app. A).
        band_combine: multi-band light curves (lcfm.bands, lcfm_models.band_pooling):
            "joint" (default) reads all bands as one interleaved sequence, each point with
            its band's wavelength; "mean" / "concat" read each band as its own sequence and
            average / concatenate (in `band_names` order) the bands' embeddings.
        band_names: the fixed band order of "concat" (set from the training data when a
            model is built from scratch).
        num_extra_features: per-object features (periods, colours, ... from `lcfm
            features`) the classification head reads beside the embedding (0: none).

    Readings of points the paper leaves open (chosen to agree with the text and with both
    published parameter counts; the counts land within 0.6%):

    * Input (sect. 3.1): (m, sigma) -> D/2 by one linear layer; times -> D/2 by a fixed
      (parameter-free) sinusoidal encoding with Astromer's base 1000 (AstroCo follows
      Astromer 2's data settings); concatenation -> Linear(D, D) -> GELU -> LayerNorm.
    * "we replace the raw (m,t) pair with a zero placeholder before projection": the
      projection concerned is the photometric one, whose input is (m, sigma); masked steps
      therefore get m = sigma = 0 and keep their time (the reconstruction target needs
      one), padded steps get m = sigma = t = 0 and are also hidden from attention.
    * MHSA (sect. 3.2 (1)): Q, K, V and output projections D -> D with biases, post-norm.
    * Convolution sublayer (sect. 3.2 (2)): LayerNorm before it *and* after the residual sum,
      as the text says; the depthwise Conv1d has a bias. Its padding follows the paper's
      formula, Y[t] = sum_k W[k] X[t + k - floor(K/2)]: floor(K/2) steps on the left and
      K - 1 - floor(K/2) on the right, so the output keeps the input length for even K.
      BatchNorm1d is replaced by a *masked* BatchNorm (same parameters and buffers) whose
      batch statistics use valid steps only, so padding never changes any output.
    * Gated FFN (sect. 3.2 (3)): Linear layers with biases.
    * Layer mix (sect. 3.3): M + 1 scalar weights (input + every block), softmax,
      initialised to zero (equal weights). The reconstruction head, Linear(D, 1), reads the
      mixed per-step representation, so pretraining also trains the mix that the frozen
      encoder later hands to the linear classifier (sect. 3.4).
    * Loss (B.3, eq. 3): RMSE over all probed steps of the batch, unweighted.

    Parameter counts (encoder + reconstruction head, `AstroCoPlugin.parameter_count`):
    astroco-s 5,932,212 (paper ~5.9M, +0.5%); astroco-l 15,190,414 (paper ~15.2M, -0.06%).
    """

    model_type = "lcfm_astroco"

    hidden_size: int = 276
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    ffn_expansion: int = 4
    conv_kernel_size: int = 32
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    classifier_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    batch_norm_eps: float = 1e-5
    batch_norm_momentum: float = 0.1
    time_encoding_base: float = 1000.0
    initializer_range: float = 0.02
    max_length: int = 200
    value_normalization: str = "zero_mean"
    probe_fraction: float = 0.5
    mask_fraction: float = 0.3
    random_fraction: float = 0.1
    mask_value: float = 0.0
    band_combine: str = "joint"
    band_names: list[str] | tuple[str, ...] = ()
    num_extra_features: int = 0

    def __post_init__(self, **kwargs):
        normalise_band_fields(self)
        super().__post_init__(**kwargs)
        self.validate_astroco()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate_astroco(self) -> None:
        """Raise ConfigError naming the first invalid field."""

        def fail(field: str, problem: str):
            raise ConfigError(f"AstroCoConfig.{field}={getattr(self, field)!r}: {problem}")

        positive_ints = ("hidden_size", "num_hidden_layers", "num_attention_heads",
                         "ffn_expansion", "conv_kernel_size", "max_length")
        for field in positive_ints:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(field, "must be a positive integer")
        if self.hidden_size % 2:
            fail("hidden_size", "must be even (half for (m, sigma), half for time)")
        if self.hidden_size % self.num_attention_heads:
            fail("num_attention_heads",
                 f"must divide hidden_size={self.hidden_size}")
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob",
                      "classifier_dropout", "probe_fraction", "mask_fraction",
                      "random_fraction"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                fail(field, "must be a number in [0, 1]")
        for field in ("layer_norm_eps", "batch_norm_eps", "batch_norm_momentum",
                      "time_encoding_base", "initializer_range"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                fail(field, "must be a positive finite number")
        if self.batch_norm_momentum > 1:
            fail("batch_norm_momentum", "must be at most 1")
        if self.mask_fraction + self.random_fraction > self.probe_fraction + 1e-9:
            fail("probe_fraction", f"must be >= mask_fraction + random_fraction "
                 f"({self.mask_fraction} + {self.random_fraction})")
        if self.value_normalization not in VALUE_NORMALIZATIONS:
            fail("value_normalization", f"must be one of {VALUE_NORMALIZATIONS}")
        if not isinstance(self.mask_value, int | float) or not math.isfinite(self.mask_value):
            fail("mask_value", "must be a finite number")
        validate_band_fields(self, ("joint", *BAND_COMBINE))


__all__ = ["AstroCoConfig"]
