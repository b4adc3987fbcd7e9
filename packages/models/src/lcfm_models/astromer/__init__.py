"""Astromer 1 and 2 as Hugging Face models (Donoso-Oliva et al., "Generalizing across
astronomical surveys: few-shot light curve classification with Astromer 2";
shared/papers/001_0ee157db3fd4b444.txt, sect. 2.1-3.3 and 5.4).

Importing this module registers, with no `trust_remote_code`:

* `AutoConfig` -> `AstromerConfig` (model_type "lcfm_astromer");
* `AutoModel` -> `AstromerModel` (also loads the encoder out of any Astromer checkpoint,
  e.g. a saved `AstromerForMaskedReconstruction`);
* `AutoModelForPreTraining` -> `AstromerForMaskedReconstruction`: transformers has no Auto
  class for masked reconstruction of continuous values, and this is Astromer's pretraining
  model (`AstromerForMaskedReconstruction.from_pretrained(path)` works as well);
* `AutoModelForSequenceClassification` -> `AstromerForSequenceClassification`.

`import lcfm` imports every installed model plugin, so this is enough::

    import lcfm
        encoder = AutoModel.from_pretrained("path/to/checkpoint")
"""

from __future__ import annotations

from collections.abc import Mapping

from lcfm.model_plugin import ModelPlugin

from ..band_pooling import fit_band_names
from .collator_astromer import AstromerCollator
from .configuration_astromer import AstromerConfig
from .modeling_astromer import (
    AstromerForMaskedReconstruction,
    AstromerForSequenceClassification,
    AstromerMaskedReconstructionOutput,
    AstromerModel,
    AstromerModelOutput,
    AstromerPreTrainedModel,
    reconstruction_loss,
    time_positional_encoding,
    uncertainty_weights,
)
from .recipes_astromer import DEFAULT_RECIPE, RECIPES

#: Astromer 1 (sect. 2): 2 blocks, FFN 128 tanh, no residual path, zero-masking, eq. 4 loss.
ASTROMER_V1 = dict(
    window_size=200, hidden_size=256, num_attention_heads=4, num_hidden_layers=2,
    intermediate_size=128, hidden_act="tanh", residual_projection=False, mask_token=False,
    attention_output_dropout=0.0, uncertainty_weighted_loss=False,
)
#: Astromer 2 (sect. 3): 6 blocks, FFN 512, projected residuals, mask token, dropout after
#: attention, eq. 5 loss. See `AstromerConfig` for how each value was pinned down.
ASTROMER_V2 = dict(
    window_size=200, hidden_size=256, num_attention_heads=4, num_hidden_layers=6,
    intermediate_size=512, hidden_act="tanh", residual_projection=True, mask_token=True,
    attention_output_dropout=0.1, uncertainty_weighted_loss=True,
)


class AstromerPlugin(ModelPlugin):
    name = "astromer"
    description = ("Astromer: BERT-style encoder of single-band light curves (time positional "
                   "encoding + magnitude projection), pretrained by masked magnitude "
                   "reconstruction")
    paper = ("Donoso-Oliva et al., Astromer 2: light-curve embeddings with a BERT-style "
             "masked-reconstruction encoder, sect. 2.1-3.3 and 5.4")
    trainable_when_frozen = ("layer_weights",)  # sect. 5.4: trained with the classifier
    config_class = AstromerConfig
    base_model_class = AstromerModel
    pretraining_class = AstromerForMaskedReconstruction
    classification_class = AstromerForSequenceClassification
    configurations = {"astromer-v1": ASTROMER_V1, "astromer-v2": ASTROMER_V2}
    default_configuration = "astromer-v2"
    #: training recipes of the paper(s) and the default per (configuration, stage)
    recipes = RECIPES
    default_recipe = DEFAULT_RECIPE
    tiny = dict(
        window_size=32, hidden_size=16, num_attention_heads=2, num_hidden_layers=2,
        intermediate_size=32, residual_projection=True, mask_token=True,
        attention_output_dropout=0.0, uncertainty_weighted_loss=True,
        classifier_hidden_sizes=(32, 16),
    )

    #: the unit Astromer reads (sect. 2.1: magnitudes); lcfm.bands converts flux rows
    value_kind = "mag"

    def prepare_config(self, config: AstromerConfig, dataset) -> AstromerConfig:
        """The training data's bands (`band_names`, the order of band_combine="concat")."""
        return fit_band_names(config, dataset)

    def inference_window(self, config: AstromerConfig) -> int:
        """Windows of `window_size` observations (sect. 2.1: 200)."""
        return int(config.window_size)

    def collator(self, config: AstromerConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None = None,
                 label2id: Mapping[str, int] | None = None, seed: int = 0) -> AstromerCollator:
        """Magnitudes (flux rows converted, lcfm.bands), one sequence per (light curve, band)
        combined by `config.band_combine`, windows, zero-mean magnitudes per band, padding
        and (pretraining) the BERT-style probe mask; `bands` (wavelengths) is not used:
        Astromer has no band input."""
        return AstromerCollator(config, task=task, train=train, label2id=label2id, seed=seed)


AstromerPlugin.register_auto_classes()

__all__ = [
    "ASTROMER_V1", "ASTROMER_V2", "AstromerCollator", "AstromerConfig",
    "AstromerForMaskedReconstruction", "AstromerForSequenceClassification",
    "AstromerMaskedReconstructionOutput", "AstromerModel", "AstromerModelOutput",
    "AstromerPlugin", "AstromerPreTrainedModel", "reconstruction_loss",
    "time_positional_encoding", "uncertainty_weights",
]
