"""Configuration of Astromer (Donoso-Oliva et al., Astromer 1 and Astromer 2;
shared/papers/001_0ee157db3fd4b444.txt, sect. 2.1-3.3 and 5.4)."""

from __future__ import annotations

from lcfm.exceptions import ConfigError
from transformers import PreTrainedConfig

from ..band_pooling import normalise_band_fields, validate_band_fields

_ACTIVATIONS = ("tanh", "relu", "gelu")


class AstromerConfig(PreTrainedConfig):
    r"""Hyperparameters of an Astromer encoder, its pretraining objective and its collator.

    Paper configurations (`AstromerPlugin.configurations`) and their trainable parameters,
    counted on `AstromerForMaskedReconstruction` (the pretraining model the paper counts:
    encoder plus reconstruction head; the sect. 5.4 layer weights gamma are frozen there and
    only become trainable in `AstromerForSequenceClassification`):

    * ``astromer-v1`` -- 2 blocks, ``intermediate_size=128``, tanh, no residual connection,
      no mask token, plain RMSE (eq. 4): **661,505**, exactly the paper's count (sect. 3.2).
    * ``astromer-v2`` -- 6 blocks, ``intermediate_size=512``, projected residual connections,
      trainable mask token, dropout after attention, uncertainty-weighted RMSE (eq. 5):
      **3,953,410** = the paper's 3,953,409 + 1 (difference +0.00003 %).

    How the paper's numbers were pinned down. The text gives d=256 (4 heads x 64), FFN 128
    with tanh and 2 or 6 blocks; the standard layout (q/k/v/out with bias, FFN, 2 LayerNorms
    per block, input projection 1->256, output 256->1) gives 660,993 for v1, 512 short. The
    authors' published reference implementation (Astromer 1 and Astromer 2 encoders and
    their attention block) shows the missing pieces:

    * the reconstruction head is LayerNorm(256) -> Linear(256, 1) (the 512 missing params);
    * an Astromer-1 block has *no* residual connection: LN1(attention), LN2(FFN(.)) --
      ``residual_projection=False``;
    * Astromer 2 ("mask token and residual connections") adds the skip path through a
      Linear(256, 256) before each of the two LayerNorms (a leaky skip in the reference),
      ``residual_projection=True``;
    * the Astromer-2 FFN hidden size ("mixer") is not stated anywhere we could read; 512 is
      the only power-of-two size that reproduces 3,953,409 with the layout above (6 blocks of
      658,688 + 512 input + 769 head). It is inferred, not read from a published config.
    * the mask token is one trainable scalar that replaces the masked magnitude before the
      projection (sect. 3.1). 3,953,409 is exactly the
      count of the layout above *without* it; lcfm keeps the token the paper describes, hence
      +1. (``mask_token=False`` on the v2 configuration gives 3,953,409.)

    Other details that do not change the parameter count:

    * attention logits are scaled by sqrt(head_dim)=8 as in the published code; sect. 2.4
      writes sqrt(d_k) with d_k=256 (an equivalent reparametrisation of W_query);
    * eq. 3 masks probed-and-masked points with -inf (a large negative number here); the
      released Astromer-1 code added +1 instead (``m_alpha=1``), lcfm follows the paper;
    * ``attention_output_dropout`` of Astromer 2 is not given in the paper; 0.1 (the reference
      code's default rate) is used;
    * the layer-weighted embedding (sect. 5.4) uses softmax(gamma) weights that sum to 1; the
      reference code additionally divides by the number of layers (a constant factor).

    Args:
        window_size: observations per window (sect. 2.1: 200).
        hidden_size: d_pe = model width (256); the positional encoding has the same size.
        num_hidden_layers: attention blocks (2 for v1, 6 for v2).
        num_attention_heads: heads per block (4, each hidden_size / heads = 64 wide).
        intermediate_size: hidden units of the block's feed-forward network.
        hidden_act: FFN activation (sect. 2.4: tanh).
        residual_projection: add Linear(x) before each LayerNorm of a block (Astromer 2).
        mask_token: replace masked magnitudes by a trainable zero-initialised scalar (sect. 3.1).
        pe_base: base of the angular frequencies, omega_j = 1 / pe_base^(2j/d_pe) (eq. 2).
        embedding_dropout / attention_output_dropout / hidden_dropout: dropout on the input
            embedding, after self-attention (Astromer 2, sect. 3.2) and after the FFN.
        layer_norm_eps: LayerNorm epsilon (1e-6 as in the published code).
        uncertainty_weighted_loss: eq. 5 (True) or eq. 4 (False).
        uncertainty_floor: added to eq. 5's min-max normalised 1/e weights (1e-3 in the
            published code): the weight of a window's noisiest point.
        probed_fraction / random_fraction / kept_fraction: of the valid points of a window,
            the fraction probed (0.5), replaced by a random magnitude (0.1) and left visible
            (0.1); the remaining probed points (0.3) are masked (sect. 2.3, Fig. 1).
        classifier_hidden_sizes: MLP of the classification head (sect. 5.4: 1024, 512, 256).
        classifier_dropout: dropout between the classifier's layers.
        band_combine: how the embeddings of a multi-band light curve's bands, each read as
            its own single-band sequence, become one vector: "mean" (any bands) or "concat"
            (in `band_names` order, zeros for a missing band); lcfm_models.band_pooling.
        band_names: the fixed band order of "concat" (set from the training data when a
            model is built from scratch).
        num_extra_features: per-object features (periods, colours, ... from `lcfm
            features`) the classification head reads beside the embedding (0: none).
    """

    model_type = "lcfm_astromer"

    window_size: int = 200
    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    intermediate_size: int = 512
    hidden_act: str = "tanh"
    residual_projection: bool = True
    mask_token: bool = True
    pe_base: float = 1000.0
    embedding_dropout: float = 0.0
    attention_output_dropout: float = 0.1
    hidden_dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    uncertainty_weighted_loss: bool = True
    uncertainty_floor: float = 1e-3
    probed_fraction: float = 0.5
    random_fraction: float = 0.1
    kept_fraction: float = 0.1
    classifier_hidden_sizes: list[int] | tuple[int, ...] = (1024, 512, 256)
    classifier_dropout: float = 0.0
    initializer_range: float = 0.02
    band_combine: str = "mean"
    band_names: list[str] | tuple[str, ...] = ()
    num_extra_features: int = 0

    def __post_init__(self, **kwargs):
        self.classifier_hidden_sizes = [int(n) for n in self.classifier_hidden_sizes]
        normalise_band_fields(self)
        self._validate()
        super().__post_init__(**kwargs)

    def _validate(self) -> None:
        def fail(field: str, problem: str):
            raise ConfigError(f"AstromerConfig.{field}={getattr(self, field)!r}: {problem}")

        for field in ("window_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                      "intermediate_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(field, "must be a positive integer")
        if self.hidden_size % self.num_attention_heads:
            fail("hidden_size", f"must be divisible by num_attention_heads="
                                f"{self.num_attention_heads}")
        if self.hidden_size % 2:
            fail("hidden_size", "must be even (sine and cosine halves of eq. 1)")
        if self.hidden_act not in _ACTIVATIONS:
            fail("hidden_act", f"must be one of {', '.join(_ACTIVATIONS)}")
        if not self.pe_base > 1:
            fail("pe_base", "must be > 1")
        for field in ("embedding_dropout", "attention_output_dropout", "hidden_dropout",
                      "classifier_dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                fail(field, "must be in [0, 1)")
        for field in ("layer_norm_eps", "uncertainty_floor", "initializer_range"):
            if not getattr(self, field) > 0:
                fail(field, "must be > 0")
        if not 0.0 < self.probed_fraction <= 1.0:
            fail("probed_fraction", "must be in (0, 1]")
        for field in ("random_fraction", "kept_fraction"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                fail(field, "must be in [0, 1]")
        if self.random_fraction + self.kept_fraction > self.probed_fraction:
            fail("kept_fraction", f"random_fraction + kept_fraction must not exceed "
                                  f"probed_fraction={self.probed_fraction}")
        if any(n < 1 for n in self.classifier_hidden_sizes):
            fail("classifier_hidden_sizes", "sizes must be positive")
        validate_band_fields(self)


__all__ = ["AstromerConfig"]
