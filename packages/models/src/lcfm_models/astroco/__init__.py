"""AstroCo model plugin (paper 002: Tan et al., "AstroCo: Self-Supervised Conformer-Style
Transformers for Light-Curve Embeddings", NeurIPS 2025 ML4PS workshop).

Importing this module registers the classes with transformers' Auto classes:
AutoConfig / AutoModel (`AstroCoModel`) / AutoModelForSequenceClassification and, for the
masked-reconstruction head, AutoModelForPreTraining (`AstroCoForMaskedReconstruction`: it
is AstroCo's pretraining model; transformers has no "masked reconstruction" Auto class).
"""

from __future__ import annotations

from lcfm.model_plugin import ModelPlugin

from lcfm_models.astroco.collator_astroco import AstroCoCollator
from lcfm_models.astroco.configuration_astroco import AstroCoConfig
from lcfm_models.astroco.modeling_astroco import (
    AstroCoForMaskedReconstruction,
    AstroCoForSequenceClassification,
    AstroCoMaskedReconstructionOutput,
    AstroCoModel,
    AstroCoModelOutput,
    AstroCoPreTrainedModel,
    AstroCoSelfAttention,
    AstroCoSequenceClassifierOutput,
)
from lcfm_models.astroco.recipes_astroco import DEFAULT_RECIPE, RECIPES
from lcfm_models.band_pooling import fit_band_names


class AstroCoPlugin(ModelPlugin):
    name = "astroco"
    description = ("Conformer-style encoder (MHSA + depthwise-conv/GLU + gated FFN, softmax "
                   "layer mix) pretrained by masked reconstruction")
    paper = ("Tan, Protopapas, Cadiz-Leyton et al., AstroCo: Self-Supervised Conformer-Style "
             "Transformers for Light-Curve Embeddings, sect. 3, appendix A, B.3")
    config_class = AstroCoConfig
    base_model_class = AstroCoModel
    pretraining_class = AstroCoForMaskedReconstruction
    classification_class = AstroCoForSequenceClassification
    # Appendix A. Both: r=4, K=32, dropout 0.1, window 200 (the config defaults).
    configurations = {
        "astroco-s": {"hidden_size": 276, "num_hidden_layers": 4, "num_attention_heads": 4},
        "astroco-l": {"hidden_size": 256, "num_hidden_layers": 12, "num_attention_heads": 4},
    }
    default_configuration = "astroco-s"
    #: training recipes of the paper(s) and the default per (configuration, stage)
    recipes = RECIPES
    default_recipe = DEFAULT_RECIPE
    # Even kernel (8) so that tests exercise the asymmetric "same" padding of K=32.
    tiny = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "conv_kernel_size": 8, "max_length": 64}

    #: the unit AstroCo reads (sect. 3.1: magnitudes); lcfm.bands converts flux rows
    value_kind = "mag"

    def prepare_config(self, config: AstroCoConfig, dataset) -> AstroCoConfig:
        """The training data's bands (`band_names`, the order of band_combine="concat")."""
        return fit_band_names(config, dataset)

    def inference_window(self, config: AstroCoConfig) -> int:
        """Windows of `max_length` observations (appendix A: 200)."""
        return int(config.max_length)

    def mc_dropout_modules(self, model):
        """The nn.Dropout modules (hidden and classifier dropout, 0.1 in appendix A) and the
        attention modules, whose weight dropout is functional."""
        attention = [m for m in model.modules()
                     if isinstance(m, AstroCoSelfAttention) and m.dropout > 0]
        return super().mc_dropout_modules(model) + attention

    def collator(self, config, *, task, train, bands=None, label2id=None, seed=0):
        """Magnitudes (flux rows converted, lcfm.bands), zero-mean per band, bands as one
        sequence with wavelengths (band_combine="joint") or one sequence per band."""
        return AstroCoCollator(config, task=task, train=train, bands=bands,
                               label2id=label2id, seed=seed)


AstroCoPlugin.register_auto_classes()

__all__ = [
    "AstroCoCollator", "AstroCoConfig", "AstroCoForMaskedReconstruction",
    "AstroCoForSequenceClassification", "AstroCoMaskedReconstructionOutput", "AstroCoModel",
    "AstroCoModelOutput", "AstroCoPlugin", "AstroCoPreTrainedModel",
    "AstroCoSequenceClassifierOutput",
]
