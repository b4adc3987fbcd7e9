"""ATCAT, the Astronomical Timeseries CAusal Transformer, as an lcfm model plugin
(paper 003_05ad419fc2efc3e7.txt, sect. 2.2-2.7).

Importing this package registers the model with transformers' Auto classes: AutoConfig
("lcfm_atcat"), AutoModel (`AtcatModel`), AutoModelForSequenceClassification and, for the
next-value head, AutoModelForPreTraining (transformers has no next-value Auto class; this is
the one that means "the model with its pretraining head").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from lcfm.exceptions import ConfigError
from lcfm.flat import FlatRows
from lcfm.model_plugin import ModelPlugin

from .attention_atcat import AtcatAttention
from .collator_atcat import AtcatCollator, model_flux
from .configuration_atcat import AtcatConfig
from .embeddings_atcat import POINT
from .modeling_atcat import (
    AtcatForNextValuePrediction,
    AtcatForSequenceClassification,
    AtcatModel,
    AtcatModelOutput,
    AtcatNextValueOutput,
    AtcatPreTrainedModel,
    AtcatSequenceClassifierOutput,
)
from .recipes_atcat import DEFAULT_RECIPE, RECIPES
from .scaling_atcat import (
    mixture_components_from_flux,
    mixture_in_flux_space,
    squash_error,
    squash_flux,
    unsquash_flux,
)


class AtcatPlugin(ModelPlugin):
    name = "atcat"
    description = ("ATCAT: causal transformer over multi-band light curves, one token per "
                   "point, bands encoded by central wavelength; next-value mixture-of-Gaussians "
                   "pretraining, early classification, optional metadata token")
    paper = ("Tung, ATCAT: Astronomical Timeseries CAusal Transformer (2025), sect. 2.2-2.7")
    causal = True
    #: the parts of the last `finetune_loss` (name -> detached scalar tensor), for logging
    last_loss_terms: dict | None = None
    encodes_wavelength = True  # sect. 2.2.1: band -> central wavelength
    config_class = AtcatConfig
    base_model_class = AtcatModel
    pretraining_class = AtcatForNextValuePrediction
    classification_class = AtcatForSequenceClassification
    #: the paper's LC-only model (Table 1, 4.1 M; see the AtcatConfig docstring), 20 classes
    configurations = {
        "atcat": {
            "hidden_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4,
            "attention_dim": 64, "intermediate_size": 768, "gated_feed_forward": True,
            "local_attention_days": [1.0, 10.0], "num_mixture_components": 128,
            "max_length": 243, "num_labels": 20,
        },
    }
    default_configuration = "atcat"
    #: training recipes of the paper(s) and the default per (configuration, stage)
    recipes = RECIPES
    default_recipe = DEFAULT_RECIPE
    tiny = {
        "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2,
        "attention_dim": 16, "intermediate_size": 64, "local_attention_days": [1.0, 10.0],
        "num_mixture_components": 16, "max_length": 64,
    }

    def inference_window(self, config: AtcatConfig) -> int:
        """At most `max_length` points per input (243, the longest ELAsTiCC light curve)."""
        return int(config.max_length)

    def mc_dropout_modules(self, model):
        """The nn.Dropout modules and the attention modules (functional weight dropout).
        The paper's full-data models have no dropout (sect. 2.4; 15% in the transformer
        and 4% at input and classifier only for its small-data ensembles), so the default
        configuration has none: `--config hidden_dropout=0.15` etc. at fine-tuning."""
        attention = [m for m in model.modules()
                     if isinstance(m, AtcatAttention) and m.dropout > 0]
        return super().mc_dropout_modules(model) + attention

    def finetune_loss(self, model, outputs, labels, batch, *, recipe, class_weights):
        """ATCAT's own objective (sect. 2.3.2, 2.6, 2.7, 2.2.2; `losses_atcat.atcat_objective`
        with the weights and switches of the model's `AtcatConfig`) when the recipe's loss is
        "model" (or a combination naming "model": the objective replaces it whole, its
        weights being the config's); None (the engine's generic loss) for any other loss.

        `outputs`: the forward output of `model` on `batch` in training mode (with
        `early_classification` it carries the step logits); `labels` (batch,) class ids;
        `recipe.label_smoothing`, when set above 0, overrides `config.label_smoothing`;
        `class_weights` (classes,) are the w_{x,y} of sect. 2.3.2, ignored when the recipe
        says `balanced_batches=True` (the paper's setting, where none are needed; with
        "auto" the engine passes None when it balanced the batches). The parts of
        the last loss (detached tensors) are kept in `self.last_loss_terms` for logging."""
        loss = getattr(recipe, "loss", "model")
        if loss != "model" and not (isinstance(loss, Mapping) and "model" in loss):
            return None
        classifier = next((m for m in model.modules()
                           if isinstance(m, AtcatForSequenceClassification)), None)
        if classifier is None:
            raise ConfigError(f"ATCAT objective: {type(model).__name__} holds no "
                              "AtcatForSequenceClassification")
        config = classifier.config
        full = outputs.logits  # (batch, C), then the "unsure" logit: (batch, C + 1)
        step_full = outputs.step_logits  # (batch, time, C) or None
        if outputs.unsure_logits is not None:
            full = torch.cat([full, outputs.unsure_logits.unsqueeze(-1)], dim=-1)
            if step_full is not None:
                step_full = torch.cat([step_full, outputs.step_unsure_logits.unsqueeze(-1)],
                                      dim=-1)
        if config.early_classification and step_full is None:
            raise ConfigError("AtcatConfig.early_classification: the outputs have no "
                              "step_logits; run the forward in training mode")
        kinds = AtcatModel.resolve_token_type(batch["flux"], batch.get("attention_mask"),
                                              batch.get("token_type"))
        smoothing = getattr(recipe, "label_smoothing", None)
        balanced = getattr(recipe, "balanced_batches", False) is True
        weights = None if balanced else class_weights
        p_true = (self.teacher_p_true(config, batch, labels)
                  if config.unsure_teacher else None)
        terms = classifier.objective(
            full, labels, step_full=step_full, point_mask=kinds == POINT,
            class_weights=weights,
            label_smoothing=float(smoothing) if smoothing else None, teacher_p_true=p_true)
        self.last_loss_terms = terms.as_dict()
        return terms.total

    def teacher_p_true(self, config: AtcatConfig, batch, labels: torch.Tensor) -> torch.Tensor:
        """(batch,) probability of each example's true class (0 for ignored rows) under the
        classifier or ensemble in `config.unsure_teacher` (sect. 2.7 iv), on the same
        inputs; the teacher is loaded once per folder and device."""
        from lcfm.engine.save import load_classifier

        device = labels.device
        key = (str(config.unsure_teacher), str(device))
        cache = self.__dict__.setdefault("_teachers", {})
        if key not in cache:
            _, teacher = load_classifier(config.unsure_teacher)
            if dict(teacher.config.id2label) != dict(config.id2label):
                raise ConfigError(f"AtcatConfig.unsure_teacher {config.unsure_teacher}: its "
                                  f"classes {list(teacher.config.id2label.values())} differ "
                                  f"from {list(config.id2label.values())}")
            cache[key] = teacher.to(device).eval()
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            probs = cache[key](**inputs).logits[:, :config.num_labels].float().softmax(-1)
        return probs.gather(1, labels.long().clamp(min=0).unsqueeze(1)).squeeze(1)

    def collator(self, config: AtcatConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None = None,
                 label2id: Mapping[str, int] | None = None, seed: int = 0) -> AtcatCollator:
        return AtcatCollator(config, task=task, train=train, bands=bands, label2id=label2id,
                             seed=seed)

    def prepare_config(self, config: AtcatConfig, dataset) -> AtcatConfig:
        """Mixture components from the training set's flux (sect. 2.5.1), in the unit the
        collator feeds the model (magnitude rows as centred FLUXCAL flux, `model_flux`)."""
        rows = dataset if isinstance(dataset, FlatRows) else [dataset[i]
                                                              for i in range(len(dataset))]
        return self.fit_config_to_rows(config, rows)

    @staticmethod
    def fit_config_to_rows(config: AtcatConfig, rows: Iterable[Mapping]) -> AtcatConfig:
        """Set the fixed mixture components (sect. 2.5.1) from the flux of training rows
        (as the collator reads them, `model_flux`); call before building a next-value model
        for a new data set."""
        flux = model_flux(FlatRows.from_rows(rows if isinstance(rows, FlatRows)
                                             else list(rows))).value.astype(np.float64)
        config.set_mixture_components(*mixture_components_from_flux(
            flux, config.num_mixture_components, prescale=config.flux_prescale))
        return config


AtcatPlugin.register_auto_classes()

__all__ = [
    "AtcatCollator", "AtcatConfig", "AtcatForNextValuePrediction",
    "AtcatForSequenceClassification", "AtcatModel", "AtcatModelOutput", "AtcatNextValueOutput",
    "AtcatPlugin", "AtcatPreTrainedModel", "AtcatSequenceClassifierOutput",
    "mixture_components_from_flux", "mixture_in_flux_space", "squash_error", "squash_flux",
    "unsquash_flux",
]
