"""ATCAT models (paper 003_05ad419fc2efc3e7.txt, sect. 2.2-2.7).

`AtcatModel` encodes a light curve (one token per point, optional metadata token first) with
a 4-layer causal transformer whose first layers attend locally in time. Heads:
`AtcatForSequenceClassification` (last valid point, or every point for early
classification, with the extra "unsure" output) and `AtcatForNextValuePrediction` (the
[PRED]-token packing of sect. 2.2.3 and the fixed-component mixture of Gaussians of 2.5.1).

Inputs, all (batch, time) from `AtcatCollator`: `times` (days since the first point), `flux`,
`flux_err`, `wavelength` (Angstrom), `attention_mask`, optional `token_type` (0 pad,
1 point, 2 [PRED]), optional `metadata` (batch, metadata_dim). Outputs at step i depend only
on tokens <= i and the metadata token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from lcfm.exceptions import ConfigError
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .attention_atcat import AtcatLayer, build_attention_mask
from .configuration_atcat import AtcatConfig
from .embeddings_atcat import (
    PAD,
    POINT,
    PRED,
    AtcatEmbeddings,
    AtcatTimeEmbedding,
    AtcatValueEmbedding,
    float32_constant,
    time_frequencies,
    wavelength_frequencies,
)
from .losses_atcat import ObjectiveTerms, atcat_objective, unsure_probability
from .scaling_atcat import (
    expected_negative_log_prob,
    mixture_log_prob,
    squash_error,
    squash_flux,
)


@dataclass
class AtcatModelOutput(ModelOutput):
    """last_hidden_state (batch, time, dim): one vector per input token (metadata token
    removed); pooler_output (batch, dim): the last valid light-curve point, the embedding
    used for classification; metadata_hidden_state (batch, dim) or None; hidden_states:
    embeddings and each layer's output, metadata token removed."""

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    metadata_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class AtcatSequenceClassifierOutput(ModelOutput):
    """logits (batch, num_labels): class logits at the last valid point; unsure_logits
    (batch,) the extra "unsure" output (sect. 2.2.5), or None. Probabilities including
    "unsure" are softmax(cat(logits, unsure_logits)), so P(unsure) =
    sigmoid(unsure_logits - logsumexp(logits)) (`p_unsure`). step_logits (batch, time,
    num_labels) and step_unsure_logits (batch, time): the same at every token (meaningful
    where token_type == 1), returned on request, and in training mode with early
    classification (the sect. 2.6 loss needs them). loss_terms: the parts of `loss` as
    floats (`ObjectiveTerms.as_dict`) when labels were given."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    unsure_logits: torch.Tensor | None = None
    step_logits: torch.Tensor | None = None
    step_unsure_logits: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    loss_terms: dict | None = None

    @property
    def p_unsure(self) -> torch.Tensor | None:
        """(batch,) probability of the "unsure" output, None without one."""
        if self.unsure_logits is None:
            return None
        return unsure_probability(self.logits, self.unsure_logits)


@dataclass
class AtcatNextValueOutput(ModelOutput):
    """mixture_logits (batch, time, K): unnormalised log-weights of the fixed mixture
    components (squashed-flux space) predicted at every token; the prediction of point k is
    read at its [PRED] token (token_type == 2). loss: mean over [PRED] tokens."""

    loss: torch.Tensor | None = None
    mixture_logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class AtcatPreTrainedModel(PreTrainedModel):
    config_class = AtcatConfig
    base_model_prefix = "atcat"
    main_input_name = "flux"
    _no_split_modules = ["AtcatLayer"]
    # encoder weights are routinely loaded from a checkpoint of the other head
    _keys_to_ignore_on_load_unexpected = [r"^head\.", r"^classifier\."]

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch default (Kaiming-uniform) initialisation for every linear map (sect. 2.4),
        zero bias for the value embedders (sect. 2.2.1 iii), and the non-persistent buffers,
        which `from_pretrained` does not restore (they are recomputed from the config)."""
        config = self.config
        if isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight.shape[1]) if module.weight.shape[1] else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, AtcatValueEmbedding):
            init.zeros_(module.linear.bias)
            init.copy_(module.inverse_scales, module.compute_inverse_scales())
        elif isinstance(module, AtcatTimeEmbedding):
            init.copy_(module.time_frequencies, time_frequencies(config))
            init.copy_(module.wavelength_frequencies, wavelength_frequencies(config))
        elif isinstance(module, AtcatEmbeddings):
            init.normal_(module.pred_token, std=0.02)
        elif isinstance(module, AtcatMixtureHead):
            init.copy_(module.means, torch.tensor(config.mixture_means))
            init.copy_(module.sigmas, torch.tensor(config.mixture_sigmas))

    def _metadata_penalty(self, model: AtcatModel) -> torch.Tensor | float:
        """`config.metadata_l1` x sum |W| of the metadata input maps (sect. 2.2.2)."""
        raw = model.metadata_l1_sum()
        return 0.0 if isinstance(raw, float) else self.config.metadata_l1 * raw


class AtcatModel(AtcatPreTrainedModel):
    """The ATCAT encoder: input encoders and the hybrid local/global causal transformer."""

    def __init__(self, config: AtcatConfig):
        super().__init__(config)
        self.embeddings = AtcatEmbeddings(config)
        self.layers = nn.ModuleList(
            AtcatLayer(config, config.layer_window(i)) for i in range(config.num_hidden_layers))
        self.post_init()

    @staticmethod
    def resolve_token_type(flux: torch.Tensor, attention_mask: torch.Tensor | None,
                           token_type: torch.Tensor | None) -> torch.Tensor:
        """token_type from the inputs: every unmasked token is a point unless told otherwise."""
        if token_type is None:
            token_type = torch.full(flux.shape, POINT, dtype=torch.long, device=flux.device)
        if attention_mask is not None:
            token_type = torch.where(attention_mask.bool(), token_type, PAD)
        return token_type.long()

    def forward(self, times: torch.Tensor, flux: torch.Tensor, flux_err: torch.Tensor,
                wavelength: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type: torch.Tensor | None = None, metadata: torch.Tensor | None = None,
                output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> AtcatModelOutput | tuple:
        config = self.config
        has_metadata = config.metadata_dim > 0
        if has_metadata and metadata is None:
            raise ConfigError(f"this ATCAT model has a metadata token (metadata_dim="
                              f"{config.metadata_dim}) and needs a `metadata` tensor")
        if not has_metadata and metadata is not None:
            raise ConfigError("got `metadata` but this ATCAT model has metadata_dim=0; "
                              "build the model with metadata_dim set to use it")
        token_type = self.resolve_token_type(flux, attention_mask, token_type)
        # inputs stay float32 for the encoders and the local-window masks (a bfloat16 time
        # of 100 days is only known to half a day); the encoders return the model dtype
        times, flux, flux_err, wavelength = (x.float() for x in (times, flux, flux_err,
                                                                 wavelength))
        if metadata is not None:
            metadata = metadata.to(self.embeddings.time.linear.weight.dtype)
        hidden = self.embeddings(times, flux, flux_err, wavelength, token_type, metadata)
        offset = 1 if has_metadata else 0
        masks: dict[float | None, torch.Tensor] = {}  # one mask per distinct window
        states = [hidden[:, offset:]] if output_hidden_states else None
        for layer in self.layers:
            if layer.window_days not in masks:
                masks[layer.window_days] = build_attention_mask(
                    times, token_type, layer.window_days, has_metadata)
            hidden = layer(hidden, masks[layer.window_days])
            if states is not None:
                states.append(hidden[:, offset:])
        sequence = hidden[:, offset:]  # (batch, time, dim)
        pooled = sequence[torch.arange(sequence.shape[0], device=sequence.device),
                          self.last_point_index(token_type)]
        output = AtcatModelOutput(
            last_hidden_state=sequence, pooler_output=pooled,
            metadata_hidden_state=hidden[:, 0] if has_metadata else None,
            hidden_states=tuple(states) if states is not None else None)
        return output if return_dict is not False else output.to_tuple()

    def metadata_l1_sum(self) -> torch.Tensor | float:
        """sum |W| of the two linear maps that read the metadata (sect. 2.2.2), 0.0 when
        there is no metadata token or `metadata_l1` is 0."""
        metadata = self.embeddings.metadata
        if metadata is None or self.config.metadata_l1 == 0:
            return 0.0
        return metadata.l1_penalty()

    @staticmethod
    def last_point_index(token_type: torch.Tensor) -> torch.Tensor:
        """Index of the last light-curve point of each row (0 when a row has none)."""
        positions = torch.arange(token_type.shape[1], device=token_type.device)
        return torch.where(token_type == POINT, positions, -1).max(dim=1).values.clamp(min=0)


class AtcatClassificationHead(nn.Module):
    """LayerNorm and one affine map to the classes plus "unsure" (sect. 2.2.5)."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.linear = nn.Linear(config.hidden_size, config.num_outputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.norm(hidden)))


class AtcatForSequenceClassification(AtcatPreTrainedModel):
    """Classification from the last valid point; with `return_step_logits=True` (or in
    training mode with `config.early_classification`) also from every point, for early
    classification (sect. 2.6). `labels` (batch,) class indices, -100 to ignore: the loss is
    ATCAT's objective, `losses_atcat.atcat_objective` (log-loss + soft F1, the early and
    "unsure" variants, label smoothing, metadata L1; see `AtcatConfig`). The sect. 2.7 (iv)
    ensemble target (`unsure_teacher`) needs the teacher's outputs on the batch: it enters
    through `AtcatPlugin.finetune_loss`, not this loss."""

    def __init__(self, config: AtcatConfig):
        super().__init__(config)
        self.atcat = AtcatModel(config)
        self.classifier = AtcatClassificationHead(config)
        self.post_init()

    def _split(self, full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.config.unsure_output:
            return full[..., :-1], full[..., -1]
        return full, None

    def objective(self, full_logits: torch.Tensor, labels: torch.Tensor, *,
                  step_full: torch.Tensor | None = None,
                  point_mask: torch.Tensor | None = None,
                  class_weights: torch.Tensor | None = None,
                  label_smoothing: float | None = None,
                  teacher_p_true: torch.Tensor | None = None) -> ObjectiveTerms:
        """ATCAT's objective on full logits (batch, C[+1]) and, for early classification,
        step logits (batch, time, C[+1]) with the light-curve point mask (batch, time);
        teacher_p_true (batch,): the sect. 2.7 (iv) ensemble's probability of the true
        class (`AtcatPlugin.teacher_p_true`, used in fine-tuning)."""
        return atcat_objective(self.config, full_logits, labels, step_logits=step_full,
                               point_mask=point_mask,
                               metadata_penalty=self.atcat.metadata_l1_sum(),
                               class_weights=class_weights, label_smoothing=label_smoothing,
                               teacher_p_true=teacher_p_true)

    def forward(self, times, flux, flux_err, wavelength, attention_mask=None, token_type=None,
                metadata=None, labels: torch.Tensor | None = None,
                return_step_logits: bool = False, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> AtcatSequenceClassifierOutput | tuple:
        config = self.config
        encoded = self.atcat(times, flux, flux_err, wavelength, attention_mask, token_type,
                             metadata, output_hidden_states=output_hidden_states)
        full_logits = self.classifier(encoded.pooler_output)  # (batch, C[+1])
        want_steps = return_step_logits or (config.early_classification
                                            and (labels is not None or self.training))
        # (batch, time, C[+1]): the classifier at every token
        step_full = self.classifier(encoded.last_hidden_state) if want_steps else None
        loss = terms = None
        if labels is not None:
            kinds = AtcatModel.resolve_token_type(flux, attention_mask, token_type)
            objective = self.objective(full_logits, labels, step_full=step_full,
                                       point_mask=kinds == POINT)
            loss, terms = objective.total, objective.as_dict()
        logits, unsure = self._split(full_logits)  # (batch, C), (batch,)
        step_logits, step_unsure = self._split(step_full) if step_full is not None else (None,
                                                                                          None)
        output = AtcatSequenceClassifierOutput(
            loss=loss, logits=logits, unsure_logits=unsure, step_logits=step_logits,
            step_unsure_logits=step_unsure, pooler_output=encoded.pooler_output,
            hidden_states=encoded.hidden_states, loss_terms=terms)
        return output if return_dict is not False else output.to_tuple()


class AtcatMixtureHead(nn.Module):
    """Mixture weights over fixed Gaussian components (sect. 2.5.1). Means and widths live
    in the config; the buffers are refilled from it on load."""

    def __init__(self, config: AtcatConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.linear = nn.Linear(config.hidden_size, config.num_mixture_components)
        self.config = config
        self.register_buffer("means", torch.tensor(config.mixture_means), persistent=False)
        self.register_buffer("sigmas", torch.tensor(config.mixture_sigmas), persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (..., dim) -> (..., K)
        return self.linear(self.norm(hidden))

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, sigmas) in float32, (K,) each."""
        return (float32_constant(self.means, lambda: torch.tensor(self.config.mixture_means)),
                float32_constant(self.sigmas, lambda: torch.tensor(self.config.mixture_sigmas)))


class AtcatForNextValuePrediction(AtcatPreTrainedModel):
    """Generative pretraining (sect. 2.2.3, 2.5): the sequence [META] [LC0] [PRED1] [LC1]
    [PRED2] ... carries, before each point, a [PRED] token with that point's time, band and
    flux error; the head at [PRED]_k predicts the distribution of point k's squashed flux
    as a mixture of fixed Gaussians. `target_flux`, `target_flux_err` (batch, time) hold the
    raw flux and error of the predicted point at [PRED] tokens (ignored elsewhere)."""

    def __init__(self, config: AtcatConfig):
        super().__init__(config)
        self.atcat = AtcatModel(config)
        self.head = AtcatMixtureHead(config)
        self.post_init()

    def forward(self, times, flux, flux_err, wavelength, attention_mask=None, token_type=None,
                metadata=None, target_flux: torch.Tensor | None = None,
                target_flux_err: torch.Tensor | None = None,
                output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> AtcatNextValueOutput | tuple:
        encoded = self.atcat(times, flux, flux_err, wavelength, attention_mask, token_type,
                             metadata, output_hidden_states=output_hidden_states)
        mixture_logits = self.head(encoded.last_hidden_state)  # (batch, time, K)
        loss = None
        if target_flux is not None:
            kinds = AtcatModel.resolve_token_type(flux, attention_mask, token_type)
            loss = self.next_value_loss(mixture_logits, kinds == PRED, target_flux,
                                        target_flux_err)
            loss = loss + self._metadata_penalty(self.atcat)
        output = AtcatNextValueOutput(loss=loss, mixture_logits=mixture_logits,
                                      last_hidden_state=encoded.last_hidden_state,
                                      hidden_states=encoded.hidden_states)
        return output if return_dict is not False else output.to_tuple()

    def next_value_loss(self, mixture_logits: torch.Tensor, predict: torch.Tensor,
                        target_flux: torch.Tensor,
                        target_flux_err: torch.Tensor | None) -> torch.Tensor:
        """Mean over [PRED] tokens of E_{P'}[-log Q] ("forward_kl") or -log Q(f(flux))."""
        config = self.config
        if not predict.any():
            return mixture_logits.sum() * 0.0
        log_weights = mixture_logits[predict].float().log_softmax(dim=-1)  # (N, K)
        flux = target_flux[predict].float()
        target = squash_flux(flux, config.flux_prescale)
        means, sigmas = self.head.components()
        if config.next_value_loss == "nll" or target_flux_err is None:
            return -mixture_log_prob(target.unsqueeze(-1), log_weights, means,
                                     sigmas).squeeze(-1).mean()
        sigma = squash_error(flux, target_flux_err[predict].float().abs(), config.flux_prescale)
        return expected_negative_log_prob(target, sigma, log_weights, means, sigmas,
                                          config.kl_quadrature_points).mean()

    def log_prob(self, mixture_logits: torch.Tensor, flux: torch.Tensor) -> torch.Tensor:
        """log density of flux values in squashed space, one value per token:
        mixture_logits (..., K), flux (...) -> (...)."""
        target = squash_flux(flux.float(), self.config.flux_prescale).unsqueeze(-1)
        return mixture_log_prob(target, mixture_logits.float().log_softmax(dim=-1),
                                *self.head.components()).squeeze(-1)


__all__ = [
    "AtcatForNextValuePrediction", "AtcatForSequenceClassification", "AtcatModel",
    "AtcatModelOutput", "AtcatNextValueOutput", "AtcatPreTrainedModel",
    "AtcatSequenceClassifierOutput",
]
