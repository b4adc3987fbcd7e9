"""lcfm: light-curve foundation models.

`import lcfm` is light: it imports neither torch nor transformers, so that commands which
need no model (`lcfm --help`, `surveys`, `ingest`, `simulate`) start fast (issue 10, "Light
start-up"). Model plugins (entry point group `lcfm.models`) are still found by transformers'
Auto classes with no `trust_remote_code`: `import lcfm; AutoModel.from_pretrained(path)`
loads them on the first lookup of a model type transformers does not know
(`lcfm.registry.install_model_hook`).
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
from lcfm.registry import get_model, get_survey, install_model_hook, model_names, survey_names

__version__ = "0.1.0"

install_model_hook()

__all__ = [
    "ConfigError", "DataError", "InputFileError", "LcfmError", "PluginNotFoundError",
    "SchemaError", "get_model", "get_survey", "model_names", "survey_names",
]
