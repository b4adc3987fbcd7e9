"""lcfm: light-curve foundation models.

`import lcfm` is light: it imports neither torch nor transformers, so that commands which
need no model (`lcfm --help`, `surveys`, `ingest`, `simulate`) start fast (issue 10, "Light
start-up"). Model plugins (entry point group `lcfm.models`) are still found by transformers'
Auto classes with no `trust_remote_code`: `import lcfm; AutoModel.from_pretrained(path)`
loads them on the first lookup of a model type transformers does not know
(`lcfm.registry.install_model_hook`), and `transformers.pipeline("light-curve-classification")`
finds lcfm's pipelines once transformers' pipelines module is imported
(`lcfm.pipeline_hook`).

The Python API (issue 13) is imported on first use, so `import lcfm` stays light:
`lcfm.read`, `from_arrays`, `from_pandas`, `from_astropy`, `from_lightkurve` (canonical
frames, `lcfm.api_data`), `lcfm.load`, `embed`, `predict`, `pretrain`, `finetune`
(`lcfm.api`) and `LcfmFeatureExtractor` (`lcfm.processing`).
"""

from __future__ import annotations

import importlib

from lcfm.exceptions import (
    ConfigError,
    DataError,
    InputFileError,
    LcfmError,
    PluginNotFoundError,
    SchemaError,
)
from lcfm.pipeline_hook import install_pipeline_hook
from lcfm.registry import get_model, get_survey, install_model_hook, model_names, survey_names

__version__ = "0.1.0"

install_model_hook()
install_pipeline_hook()

#: public name -> module that defines it, imported on first access (module __getattr__)
_LAZY = {
    **dict.fromkeys(("read", "from_arrays", "from_pandas", "from_astropy", "from_lightkurve",
                     "as_frame"), "lcfm.api_data"),
    **dict.fromkeys(("load", "embed", "predict", "pretrain", "finetune"), "lcfm.api"),
    "LcfmFeatureExtractor": "lcfm.processing",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lcfm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "ConfigError", "DataError", "InputFileError", "LcfmError", "PluginNotFoundError",
    "SchemaError", "get_model", "get_survey", "model_names", "survey_names", *_LAZY,
]
