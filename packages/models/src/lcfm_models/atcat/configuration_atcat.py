"""Configuration of ATCAT, the Astronomical Timeseries CAusal Transformer
(paper 003_05ad419fc2efc3e7.txt, sect. 2.2-2.7).

Every default is the paper's "atcat" model; the docstring of `AtcatConfig` says where each
number comes from and where the printed text had to be interpreted.
"""

from __future__ import annotations

import math

from lcfm.exceptions import ConfigError
from transformers import PreTrainedConfig

NEXT_VALUE_LOSSES = ("forward_kl", "nll")
ACTIVATIONS = ("gelu", "silu", "relu")


def uniform_mixture_components(n: int, f_max: float = 6.0) -> tuple[list[float], list[float]]:
    """Fallback component means/widths before any training data was seen: the quantile rule
    of sect. 2.5.1 applied to a uniform distribution over the whole squashed range [-6, 6]
    (the nonlinearity maps the largest ELAsTiCC flux, 2,568,897, to about 6)."""
    means = [f_max * (2 * (k + 0.5) / n - 1) for k in range(n)]
    spacing = 2 * f_max / (n + 1)  # diff of the (n + 1)-quantile means
    return means, [0.7 * spacing] * n


class AtcatConfig(PreTrainedConfig):
    r"""Configuration of an ATCAT model.

    Architecture (sect. 2.2, Fig. 2): `hidden_size` d = 384, `num_hidden_layers` = 4, of which
    the first `len(local_attention_days)` use local causal attention with thresholds of 1 and
    10 days (sect. 2.2.4, a point attends to earlier points at most that many days before it);
    later layers are fully causal. `num_attention_heads` = 4 sharing `attention_dim` = 64
    (16 per head), no bias in the query/key/value projections; feed-forward width
    `intermediate_size` = 768.

    Parameter count. The paper reports 4.1 M parameters (Table 1). The text does not say
    which form the feed-forward unit takes. With a plain two-matrix unit (384 -> 768 -> 384)
    the model has 2,925,717 parameters (20-class head), 29 % below the paper, and no other
    reading of sect. 2.2 adds the missing 1.17 M = 4 layers x one 384 x 768 matrix. A gated
    unit (GLU family: act(x W_gate) * (x W_up), then W_down, all 384 <-> 768) has exactly that
    extra matrix per layer, so `gated_feed_forward=True` (GELU gate) is our default. Counts,
    with biases on every linear map except q/k/v, pre-LayerNorm blocks, no metadata token:
    base model 4,099,584; classifier (20 classes + "unsure") 4,108,437 (+0.2 % vs 4.1 M);
    next-value model with 128 mixture components 4,149,632 (+1.2 %).
    `gated_feed_forward=False` gives the plain unit (2.92 M / 2.97 M).
    A metadata token (`metadata_dim` = M > 0, sect. 2.2.2) adds 2 (M d + d) + d^2 + d
    parameters (345,216 for M = 256: lcfm's ELAsTiCC plugin encodes 64 features as value,
    NaN, +inf and -inf indicator, `MetadataEncoding.as_array()`; the paper used 85); the paper's
    single 4.1 M figure for LC-only and LC+metadata models cannot hold for both, so the
    named "atcat" configuration is the LC-only model.

    Input encoding (sect. 2.2.1):
      * time: concat(sin(a_k t), cos(a_k t)), k < m = d/2, a_k = `time_max` ** (-b_k) with b_k
        the concatenation of linspace(`time_min_exponent` = -0.1, 0, m/2) and linspace(0, 1)
        without repeating 0, `time_max` = 1500 (ATAT). The printed "10^(-T_max b_k)" would give
        frequencies of 10^-1500; we read it as T_max^(-b_k), which gives what the text describes
        (half of the frequencies above 1 per day, the slowest 1/1500 per day). The sinusoid
        vector is scaled by `time_embedding_scale` = 1/10 and passed through a linear map.
      * flux and flux_err: [tanh(x / s_k)]_k with s_k in `value_scales` = (1, 10, 1e3, 1e5),
        then a linear map with a zero-initialised bias. The printed form tanh(s_k x) saturates
        every component for |x| > 1 while ELAsTiCC fluxes reach 10^6; dividing gives the
        "terms that vary linearly within a certain dynamic range" the text asks for.
      * band: the time embedding is rotated pairwise (rotary encoding) by angle
        alpha_i * lambda / `wavelength_scale`, log alpha_i = 4 sin(2 pi i / d - 0.5)^10 - 4
        (natural log, i = even index of each pair). `wavelength_scale` = 10,000 Angstrom keeps
        lambda / Z in [0, 1] for LSST bands (the paper gives no number).
    Metadata token (sect. 2.2.2): `metadata_dim` floats (quantile-transformed features with
    their NaN/inf indicators already included), taken from row["meta"][`metadata_key`] by the
    collator; embedded by a linear map plus a residual linear -> LeakyReLU -> linear branch;
    `metadata_l1` = 1e-6 multiplies sum |W| of both input maps, added to every loss
    (sect. 2.2.2 "a slight L1 penalty"; the paper gives no value: 1e-6 makes the penalty
    of the 256-feature ELAsTiCC maps 0.006 at initialisation, 0.6 % of a log-loss of 1).
    Next-value pretraining (sect. 2.2.3, 2.5.1): a mixture of `num_mixture_components`
    Gaussians (the paper used 64 and 128) with fixed `mixture_means` / `mixture_sigmas` in
    squashed-flux space, computed from training data by
    `lcfm_models.atcat.scaling_atcat.mixture_components_from_flux`; `flux_prescale` = 1/10.
    `next_value_loss`: "forward_kl" (E_{P'}[-log Q] with P' the observation's Gaussian in
    squashed space; equals KL(P'||Q) up to the model-independent entropy of P'), or "nll".
    Classification objective (`lcfm_models.atcat.losses_atcat.atcat_objective`, what
    `lcfm finetune` trains when the recipe's loss is "model"):
      * `unsure_output` (True): the extra "unsure" logit in the softmax (sect. 2.2.5, "for
        most of our models"; Table 7 ablates it).
      * `log_loss_weight` = 1, `soft_f1_weight` = 1: log-loss + soft macro F1 at the last
        point (sect. 2.3.2; Table 7 "ATCAT default" vs "Log-loss only" / "Soft F1 loss
        only"). The paper gives no weights for the sum; equal weights are our reading of
        "our default model, which adds Soft F1" (sect. 3.5.4).
      * `early_classification` (False; the sect. 3.3 early-detection models): log-loss at
        every point but the first, averaged per example, times `early_loss_weight` = 1, plus
        the last-point log-loss (not soft F1) at `early_last_point_ratio` = 1/3 of that
        weight (sect. 2.6).
      * `unsure_calibration` (False): the last-point log-loss becomes KL towards the
        batch-accuracy "unsure" target of sect. 2.7 (iii); soft F1 stays on the true label.
      * `unsure_teacher` (None): folder of a classifier, usually a bootstrap ensemble
        (`lcfm.engine.ensemble.train_ensemble`, sect. 2.7 iv: four members on half of the
        data each, `sampling="halves"`); the last-point log-loss becomes KL towards p_true
        on the true class and 1 - p_true on "unsure", p_true being the ensemble's
        probability of the true class on the same training batch; soft F1 stays on the
        true label ("we keep the base soft F1 loss towards just the true label").
      * `label_smoothing` (0; the calibration experiment of sect. 2.7 i used 0.1): the true
        class keeps 1 - eps and every class gets eps / n.
    `max_length` (243, the longest ELAsTiCC light curve, sect. 3.6) limits light-curve points
    per example (the collator's truncation policy), not tokens.
    """

    model_type = "lcfm_atcat"

    hidden_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    attention_dim: int = 64
    intermediate_size: int = 768
    gated_feed_forward: bool = True
    hidden_act: str = "gelu"
    local_attention_days: list[float] | None = None
    time_max: float = 1500.0
    time_min_exponent: float = -0.1
    time_embedding_scale: float = 0.1
    value_scales: list[float] | None = None
    wavelength_scale: float = 10000.0
    rotary_offset: float = 0.5
    metadata_dim: int = 0
    metadata_key: str = "metadata"
    metadata_l1: float = 1e-6
    num_mixture_components: int = 128
    mixture_means: list[float] | None = None
    mixture_sigmas: list[float] | None = None
    flux_prescale: float = 0.1
    next_value_loss: str = "forward_kl"
    kl_quadrature_points: int = 8
    unsure_output: bool = True
    early_classification: bool = False
    unsure_calibration: bool = False
    log_loss_weight: float = 1.0
    soft_f1_weight: float = 1.0
    early_loss_weight: float = 1.0
    early_last_point_ratio: float = 1.0 / 3.0
    label_smoothing: float = 0.0
    unsure_teacher: str | None = None
    max_length: int = 243
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    input_dropout: float = 0.0
    classifier_dropout: float = 0.0
    layer_norm_eps: float = 1e-5

    def __post_init__(self, **kwargs):
        if self.local_attention_days is None:
            self.local_attention_days = [1.0, 10.0]
        if self.value_scales is None:
            self.value_scales = [1.0, 10.0, 1000.0, 100000.0]
        if self.mixture_means is None and self.mixture_sigmas is None:
            self.mixture_means, self.mixture_sigmas = uniform_mixture_components(
                int(self.num_mixture_components))
        super().__post_init__(**kwargs)
        self.local_attention_days = [float(w) for w in self.local_attention_days]
        self.value_scales = [float(s) for s in self.value_scales]
        self.mixture_means = [float(m) for m in self.mixture_means or []]
        self.mixture_sigmas = [float(s) for s in self.mixture_sigmas or []]
        self.check()

    # ------------------------------------------------------------------ validation
    def check(self) -> None:
        """Raise `ConfigError` naming the first invalid field."""
        def fail(field, problem):
            raise ConfigError(f"AtcatConfig.{field}: {problem}")

        for field in ("hidden_size", "num_hidden_layers", "num_attention_heads", "attention_dim",
                      "intermediate_size", "num_mixture_components", "max_length",
                      "kl_quadrature_points"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(field, f"must be a positive integer, got {value!r}")
        if self.hidden_size % 4:
            fail("hidden_size", f"must be divisible by 4 (sin/cos halves of rotated pairs), "
                                f"got {self.hidden_size}")
        if self.attention_dim % self.num_attention_heads:
            fail("attention_dim", f"{self.attention_dim} is not divisible by "
                                  f"num_attention_heads={self.num_attention_heads}")
        if not isinstance(self.metadata_dim, int) or self.metadata_dim < 0:
            fail("metadata_dim", f"must be an integer >= 0, got {self.metadata_dim!r}")
        if len(self.local_attention_days) > self.num_hidden_layers:
            fail("local_attention_days", f"{len(self.local_attention_days)} local layers but "
                                         f"only {self.num_hidden_layers} layers")
        if any(not (w > 0 and math.isfinite(w)) for w in self.local_attention_days):
            fail("local_attention_days", f"thresholds must be positive days, "
                                         f"got {self.local_attention_days}")
        if not self.value_scales or any(not (s > 0 and math.isfinite(s))
                                        for s in self.value_scales):
            fail("value_scales", f"must be positive numbers, got {self.value_scales}")
        for field in ("time_max", "wavelength_scale", "flux_prescale", "time_embedding_scale"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                fail(field, f"must be a positive number, got {value!r}")
        if self.time_max <= 1:
            fail("time_max", f"must exceed 1 day, got {self.time_max}")
        if not self.time_min_exponent < 0:
            fail("time_min_exponent", f"must be negative, got {self.time_min_exponent}")
        for field in ("hidden_dropout", "attention_dropout", "input_dropout",
                      "classifier_dropout", "metadata_l1", "log_loss_weight",
                      "soft_f1_weight", "early_loss_weight", "early_last_point_ratio",
                      "label_smoothing"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and 0 <= value and math.isfinite(value)):
                fail(field, f"must be a number >= 0, got {value!r}")
            if (field.endswith("dropout") or field == "label_smoothing") and value >= 1:
                fail(field, f"must be below 1, got {value}")
        if self.hidden_act not in ACTIVATIONS:
            fail("hidden_act", f"{self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        if self.next_value_loss not in NEXT_VALUE_LOSSES:
            fail("next_value_loss", f"{self.next_value_loss!r} is not one of "
                                    f"{', '.join(NEXT_VALUE_LOSSES)}")
        if self.unsure_calibration and not self.unsure_output:
            fail("unsure_calibration", "needs unsure_output=True")
        if self.unsure_teacher is not None:
            if not isinstance(self.unsure_teacher, str) or not self.unsure_teacher:
                fail("unsure_teacher", f"must be a folder path, got {self.unsure_teacher!r}")
            if not self.unsure_output or self.unsure_calibration:
                fail("unsure_teacher", "needs unsure_output=True and unsure_calibration=False")
        self._check_mixture(self.mixture_means, self.mixture_sigmas)

    def _check_mixture(self, means, sigmas) -> None:
        n = self.num_mixture_components
        if len(means) != n or len(sigmas) != n:
            raise ConfigError(f"AtcatConfig.mixture_means/mixture_sigmas: need "
                              f"num_mixture_components={n} values each, got {len(means)} "
                              f"and {len(sigmas)}")
        if any(not math.isfinite(m) for m in means):
            raise ConfigError("AtcatConfig.mixture_means: values must be finite")
        if any(not (s > 0 and math.isfinite(s)) for s in sigmas):
            raise ConfigError("AtcatConfig.mixture_sigmas: widths must be positive and finite")

    def set_mixture_components(self, means, sigmas) -> None:
        """Store fixed mixture means/widths (squashed-flux space), e.g. from
        `mixture_components_from_flux(training_flux, config.num_mixture_components)`."""
        means, sigmas = [float(m) for m in means], [float(s) for s in sigmas]
        self._check_mixture(means, sigmas)
        self.mixture_means, self.mixture_sigmas = means, sigmas

    @property
    def num_local_layers(self) -> int:
        return len(self.local_attention_days)

    def layer_window(self, layer: int) -> float | None:
        """Local-attention threshold in days of `layer` (0-based), None for full causal."""
        return self.local_attention_days[layer] if layer < self.num_local_layers else None

    @property
    def num_outputs(self) -> int:
        """Classifier width: the classes plus the "unsure" output when enabled."""
        return self.num_labels + (1 if self.unsure_output else 0)


__all__ = ["AtcatConfig", "uniform_mixture_components"]
