"""ASTRAFier model plugin (Gregory et al., shared/papers/000_0d28d1f6ab765e34.txt).

A supervised stellar-variability classifier: BiLSTM, Transformer and CNN modules with
residual connections, three blocks, masked mean pooling and an MLP head (sect. 3, Fig. 5),
with Monte-Carlo dropout at inference (sect. 3.6). It has no self-supervised objective, so
`lcfm pretrain` does not apply to it; `lcfm finetune` trains it from scratch or from a
checkpoint. Importing this module registers its classes with the transformers Auto classes.
"""

from __future__ import annotations

from collections.abc import Mapping

from lcfm.model_plugin import ModelPlugin

from ..band_pooling import fit_band_names
from .collator_astrafier import AstrafierCollator
from .configuration_astrafier import AstrafierConfig
from .modeling_astrafier import (
    AstrafierForSequenceClassification,
    AstrafierModel,
    AstrafierPreTrainedModel,
)
from .recipes_astrafier import DEFAULT_RECIPE, RECIPES


class AstrafierPlugin(ModelPlugin):
    name = "astrafier"
    description = ("ASTRAFier: BiLSTM + Transformer + multi-scale CNN classifier of flux light "
                   "curves, supervised only, with Monte-Carlo dropout uncertainties")
    paper = ("Gregory et al., ASTRAFier: A Novel and Scalable Transformer-based Stellar "
             "Variability Classifier, sects. 3 and 5")
    config_class = AstrafierConfig
    base_model_class = AstrafierModel
    pretraining_class = None  # supervised only (sect. 5)
    classification_class = AstrafierForSequenceClassification
    #: the paper configuration; AstrafierConfig's docstring cites each number
    configurations = {
        "astrafier": {
            "hidden_size": 64, "num_blocks": 3, "lstm_num_layers": 2, "lstm_hidden_size": 64,
            "projection_size": 256, "projection_kernel_size": 3, "num_attention_heads": 8,
            "feed_forward_size": 256, "feed_forward_kernel_size": 3, "cnn_glu_size": 256,
            "cnn_kernel_sizes": [3, 7, 15, 111], "norm_groups": 1,
            "head_hidden_sizes": [128, 32], "dropout": 0.2, "max_length": 1171,
            "mc_dropout_samples": 20, "num_labels": 8,
        },
    }
    default_configuration = "astrafier"
    #: training recipes of the paper(s) and the default per (configuration, stage)
    recipes = RECIPES
    default_recipe = DEFAULT_RECIPE
    tiny = {
        "hidden_size": 16, "num_blocks": 1, "lstm_num_layers": 2, "lstm_hidden_size": 16,
        "projection_size": 32, "num_attention_heads": 2, "feed_forward_size": 32,
        "cnn_glu_size": 32, "cnn_kernel_sizes": [3, 7], "head_hidden_sizes": [16, 8],
        "max_length": 64, "mc_dropout_samples": 4, "num_labels": 2,
    }
    #: the training recipe of sect. 5 (lcfm.engine.loading.parameter_groups splits the
    #: encoder, prefix "astrafier.", from the head for the two learning rates)
    training_recipe = {
        "batch_size": 128, "optimizer": "AdamW", "learning_rate": 1e-4,
        "head_learning_rate": 1e-3, "weight_decay": 1e-5, "betas": (0.9, 0.95), "eps": 1e-8,
        "loss": "class-weighted cross-entropy, w_c = N_total / N_c",
        "selection": "best validation accuracy", "mc_dropout_samples": 20,
    }

    def parameter_count(self, name: str | None = None, head: str = "classification") -> int:
        # ASTRAFier has no pretraining head: count the classifier the paper reports (8.8 M)
        return super().parameter_count(name, head=head)

    #: the unit ASTRAFier reads (sect. 4.3: flux); lcfm.bands converts magnitude rows
    value_kind = "flux"

    def prepare_config(self, config: AstrafierConfig, dataset) -> AstrafierConfig:
        """The training data's bands (`band_names`, the order of band_combine="concat")."""
        return fit_band_names(config, dataset)

    def inference_window(self, config: AstrafierConfig) -> int:
        """The collator keeps the first `max_length` steps at inference (sect. 3.1)."""
        return int(config.max_length)

    def collator(self, config: AstrafierConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None = None,
                 label2id: Mapping[str, int] | None = None, seed: int = 0,
                 pad_to_max_length: bool = False) -> AstrafierCollator:
        """See `collator_astrafier`: flux (magnitude rows converted), one sequence per
        (light curve, band), standardized; `bands` (wavelengths) is unused: ASTRAFier has
        no band input."""
        return AstrafierCollator(config, task=task, train=train, label2id=label2id, seed=seed,
                                 pad_to_max_length=pad_to_max_length)


AstrafierPlugin.register_auto_classes()

__all__ = [
    "AstrafierCollator", "AstrafierConfig", "AstrafierForSequenceClassification",
    "AstrafierModel", "AstrafierPlugin", "AstrafierPreTrainedModel",
]
