"""The model plugin contract (DESIGN.md, "Model plugin contract").

A model plugin subclasses `ModelPlugin` and is registered under the entry point group
`lcfm.models`. Its module registers its Hugging Face classes with the Auto classes at
import; the plugin object tells the engine which paper configurations exist, which class
pretrains and which classifies, and builds a collator from canonical rows to tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from lcfm.exceptions import ConfigError


class ModelPlugin:
    name: str = ""
    description: str = ""
    #: the paper and section the implementation follows
    paper: str = ""
    config_class: type[PreTrainedConfig]
    base_model_class: type[PreTrainedModel]
    #: self-supervised head used by `lcfm pretrain` (None: no pretraining objective)
    pretraining_class: type[PreTrainedModel] | None = None
    classification_class: type[PreTrainedModel] | None = None
    #: paper configuration name -> keyword arguments of `config_class`
    configurations: Mapping[str, Mapping] = {}
    default_configuration: str = ""
    #: keyword arguments of a tiny configuration for tests and smoke runs
    tiny: Mapping = {}
    #: outputs at a point depend only on earlier points; the classification head accepts
    #: `return_step_logits=True` (early classification, `lcfm predict --cutoffs`)
    causal: bool = False
    #: encoder parameters (name suffixes) that stay trainable with --freeze-encoder, e.g.
    #: Astromer 2's layer weights, which the paper trains with the classifier (sect. 5.4)
    trainable_when_frozen: tuple[str, ...] = ()
    #: the collator encodes each band by its central wavelength (ATCAT), so the model can
    #: read another survey whose bands all have a wavelength (`lcfm predict` on other data)
    encodes_wavelength: bool = False

    @classmethod
    def register_auto_classes(cls) -> None:
        """Register the plugin's classes with transformers' Auto classes (AutoConfig,
        AutoModel, AutoModelForSequenceClassification, and AutoModelForPreTraining for the
        self-supervised head, since transformers has no Auto class for masked
        reconstruction or next-value prediction). Plugin modules call this at import;
        never `register_for_auto_class`, which is the trust_remote_code path."""
        from transformers import (
            AutoConfig,
            AutoModel,
            AutoModelForPreTraining,
            AutoModelForSequenceClassification,
        )

        AutoConfig.register(cls.config_class.model_type, cls.config_class, exist_ok=True)
        AutoModel.register(cls.config_class, cls.base_model_class, exist_ok=True)
        if cls.classification_class is not None:
            AutoModelForSequenceClassification.register(
                cls.config_class, cls.classification_class, exist_ok=True)
        if cls.pretraining_class is not None:
            AutoModelForPreTraining.register(cls.config_class, cls.pretraining_class,
                                             exist_ok=True)
        from lcfm.processing import register_feature_extractor

        register_feature_extractor(cls.config_class)  # AutoFeatureExtractor / AutoProcessor

    def make_config(self, name: str | None = None, **overrides) -> PreTrainedConfig:
        name = name or self.default_configuration
        if name == "tiny":
            kwargs = dict(self.tiny)
        elif name in self.configurations:
            kwargs = dict(self.configurations[name])
        else:
            raise ConfigError(f"model {self.name!r} has no configuration {name!r}; "
                              f"configurations: {', '.join([*self.configurations, 'tiny'])}")
        kwargs.update(overrides)
        return self.config_class(**kwargs)

    def prepare_config(self, config: PreTrainedConfig, dataset) -> PreTrainedConfig:
        """Fit data-dependent configuration values on the training set before a model is
        built from scratch (e.g. ATCAT's mixture components from flux quantiles).
        `dataset` is a `lcfm.data.LightCurveDataset`. The default changes nothing."""
        return config

    def parameter_count(self, name: str | None = None, head: str = "pretraining") -> int:
        """Trainable parameters of a configuration, counted without allocating memory."""
        config = self.make_config(name)
        cls = {"pretraining": self.pretraining_class or self.base_model_class,
               "base": self.base_model_class,
               "classification": self.classification_class}[head]
        with torch.device("meta"):
            model = cls(config)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def collator(self, config: PreTrainedConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None = None,
                 label2id: Mapping[str, int] | None = None, seed: int = 0) -> Callable:
        """A callable turning a list of rows (dicts with numpy `time`, `value`, `error`,
        `band`, and `label`) into the model's keyword tensors. `task` is "pretrain" or
        "classify"; `train` enables random windows and masking; `bands` maps band names to
        central wavelengths in Angstrom. With task="classify" and `label2id=None` the batch
        has no `labels` (embedding and prediction of unlabeled data).

        The collator (a `lcfm.collate.SeededCollator`) draws every random number from its
        attribute `rng`; the engine assigns a fresh generator seeded from (seed, step)
        before each batch, which makes runs resumable with identical batches."""
        raise NotImplementedError

    def finetune_loss(self, model: torch.nn.Module, outputs, labels: torch.Tensor,
                      batch: Mapping, *, recipe, class_weights: torch.Tensor | None
                      ) -> torch.Tensor | None:
        """The model's own fine-tuning objective, or None for the engine's generic loss
        (`lcfm.losses.classification_loss` with the recipe's loss name).

        `outputs` is the classification model's forward output on `batch`, `labels` the
        class ids (batch,), `recipe` the resolved recipe (`lcfm.recipes.Recipe`), whose
        loss fields say what to combine. A plugin overrides this where its paper trains a
        composite objective (ATCAT: log-loss + soft F1, early-detection loss, "unsure"
        target, L1 on metadata)."""
        return None

    def inference_window(self, config: PreTrainedConfig) -> int | None:
        """How many observations one model input holds when the collator runs with
        `train=False` (it keeps the first ones and drops the rest), or None when a light
        curve of any length fits. The engine cuts longer light curves into consecutive
        windows of this size so that predict, embed and evaluate use every observation
        (issue 9: "Whole light curves"); training keeps the collator's random windows.
        A plugin whose collator truncates must override this; the default (None) says the
        collator keeps every observation."""
        return None

    def mc_dropout_modules(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        """The modules to switch to training mode for Monte-Carlo dropout (Gal & Ghahramani
        2015; ASTRAFier sect. 3.6): every `nn.Dropout` with p > 0, at the rate the model was
        trained with. A plugin whose attention drops weights functionally
        (`scaled_dot_product_attention(dropout_p=...)` while training) adds those attention
        modules. An empty list means the model has no active dropout, and MC sampling
        would only repeat one deterministic pass."""
        return [m for m in model.modules()
                if isinstance(m, torch.nn.Dropout) and m.p > 0]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "paper": self.paper,
            "model_type": self.config_class.model_type,
            "pretraining": self.pretraining_class.__name__ if self.pretraining_class else None,
            "configurations": [
                {"name": n, "parameters": self.parameter_count(n)} for n in self.configurations
            ],
        }
