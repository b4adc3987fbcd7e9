"""lcfm: light-curve foundation models.

Importing lcfm loads every installed model plugin (entry point group `lcfm.models`), which
registers its classes with transformers' Auto classes, so that
`transformers.AutoModel.from_pretrained(path)` works with no `trust_remote_code`.
"""

from __future__ import annotations

from lcfm.exceptions import (
    ConfigError,
    DataError,
    InputFileError,
    LcfmError,
    PluginNotFoundError,
    SchemaError,
)
from lcfm.registry import get_model, get_survey, model_names, survey_names

__version__ = "0.1.0"


def _load_model_plugins() -> None:
    from lcfm.registry import MODEL_GROUP, discover

    discover(MODEL_GROUP)  # importing each plugin module registers its Auto classes


_load_model_plugins()

__all__ = [
    "ConfigError", "DataError", "InputFileError", "LcfmError", "PluginNotFoundError",
    "SchemaError", "get_model", "get_survey", "model_names", "survey_names",
]
