"""The preprocessing that travels with a model's weights (issue 13, "Must include" 2).

`LcfmFeatureExtractor` is a transformers feature extractor saved as
`preprocessor_config.json` in every model folder lcfm writes
(`lcfm.engine.save.save_model_atomically`). It records what turning light curves into the
model's tensors needs: the model type, the survey the model was trained on with its bands
and their central wavelengths (ATCAT sect. 2.2 encodes bands by wavelength), the kind of
value (flux or magnitude) and the inference window (Astromer's 200 observations, sect.
2.1; the others' maximum length). After `import lcfm`, `AutoFeatureExtractor` and
`AutoProcessor.from_pretrained(folder)` return it with no `trust_remote_code`: each model
plugin registers it for its configuration class (`ModelPlugin.register_auto_classes`).

Calling it on light curves (a dict of arrays, a list of them, a canonical frame: anything
`lcfm.api_data.as_frame` reads) gives the model's keyword tensors, built by the model
plugin's own collator (`ModelPlugin.collator`, inference mode), one row per window of at
most `inference_window` observations (`lcfm.engine.predict.WindowedRows`: every observation
is used). The windows' light curves and sizes are in the result's attribute `windows`.
"""

from __future__ import annotations

from pathlib import Path

from transformers import BatchFeature, FeatureExtractionMixin

from lcfm.exceptions import ConfigError

PREPROCESSOR_CONFIG = "preprocessor_config.json"


class LcfmFeatureExtractor(FeatureExtractionMixin):
    """Light curves -> model tensors for one lcfm model (module docstring)."""

    model_input_names = ["time", "value", "error", "band"]

    def __init__(self, model_type: str | None = None, survey: str | None = None,
                 bands: dict | None = None, value_kind: str | None = None,
                 inference_window: int | None = None, **kwargs):
        kwargs.pop("feature_extractor_type", None)
        super().__init__(**kwargs)
        self.model_type = model_type
        self.survey = survey
        self.bands = {str(b): float(w) for b, w in (bands or {}).items()}
        self.value_kind = value_kind
        self.inference_window = inference_window
        self._config = None
        self._source: str | None = None
        self._encoder = False  # not looked up yet (None: the model reads no metadata)

    # -- building and saving ---------------------------------------------------------------
    @classmethod
    def from_model(cls, model_or_config) -> LcfmFeatureExtractor:
        """The processor of a model (or its configuration) trained by lcfm: survey and bands
        from the configuration's `lcfm_survey` / `lcfm_bands`, the window from the plugin."""
        from lcfm.engine.loading import plugin_for_model_type

        config = getattr(model_or_config, "config", model_or_config)
        plugin = plugin_for_model_type(config.model_type)
        survey = getattr(config, "lcfm_survey", None)
        value_kind = None
        if survey is not None:
            from lcfm.exceptions import PluginNotFoundError
            from lcfm.registry import get_survey

            try:
                value_kind = get_survey(survey).value_kind
            except PluginNotFoundError:
                value_kind = None
        window = plugin.inference_window(config)
        processor = cls(model_type=config.model_type, survey=survey,
                        bands=dict(getattr(config, "lcfm_bands", None) or {}),
                        value_kind=value_kind,
                        inference_window=int(window) if window else None)
        processor._config = config
        return processor

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`FeatureExtractionMixin.from_pretrained`, remembering where the model is, so the
        model's configuration (which the collator reads) and metadata encoder are found."""
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        processor._source = str(pretrained_model_name_or_path)
        return processor

    def to_dict(self) -> dict:
        """The saved fields only. No `feature_extractor_type`: `AutoFeatureExtractor` then
        finds the class through the folder's config.json, whose model type makes lcfm load
        its model plugins (`lcfm.registry.install_model_hook`), which register this class."""
        return {k: v for k, v in super().to_dict().items()
                if not k.startswith("_") and k != "feature_extractor_type"}

    # -- what the collator needs -------------------------------------------------------------
    @property
    def config(self):
        """The model's configuration: given by `from_model`/`bind`, else read beside the
        processor (a LoRA folder's from its base/)."""
        if self._config is None:
            if self._source is None:
                raise ConfigError("LcfmFeatureExtractor: no model configuration; build it with "
                                  "LcfmFeatureExtractor.from_model(model) or load it from a "
                                  "model folder")
            from transformers import AutoConfig

            source = Path(self._source)
            if (source / "base" / "config.json").exists() and not (
                    source / "config.json").exists():
                source = source / "base"
            self._config = AutoConfig.from_pretrained(
                str(source) if source.exists() else self._source)
        return self._config

    def bind(self, model_or_config) -> LcfmFeatureExtractor:
        """Use this model's configuration for collation (the pipelines bind their model)."""
        self._config = getattr(model_or_config, "config", model_or_config)
        return self

    @property
    def plugin(self):
        from lcfm.engine.loading import plugin_for_model_type

        return plugin_for_model_type(self.model_type or self.config.model_type)

    @property
    def metadata_encoder(self):
        """The survey's fitted metadata encoder saved beside a model with a metadata token
        (ATCAT sect. 2.2.2), or None."""
        if self._encoder is False:
            from lcfm.engine.metadata import ENCODER_FILE, load_encoder

            folder = Path(self._source) if self._source else None
            if folder is not None and not folder.is_dir() and getattr(
                    self.config, "metadata_dim", 0):  # a Hub repository of a metadata model
                from huggingface_hub import hf_hub_download
                from huggingface_hub.errors import EntryNotFoundError

                try:
                    folder = Path(hf_hub_download(self._source, ENCODER_FILE)).parent
                except EntryNotFoundError:
                    folder = None
            self._encoder = (load_encoder(folder) if folder is not None and folder.is_dir()
                             else None)
        return self._encoder

    def frame(self, data):
        """`data` as a canonical frame, with the model's survey for inputs that name none
        and the encoded metadata a metadata model reads."""
        from lcfm.api_data import as_frame
        from lcfm.engine.metadata import with_metadata

        frame = as_frame(data, survey=self.survey)
        if self.value_kind is not None:
            kinds = set(frame["value_kind"].unique().to_list())
            if kinds != {self.value_kind}:
                raise ConfigError(f"the model reads {self.value_kind} values, the light curves "
                                  f"hold {', '.join(sorted(kinds))}")
        return with_metadata(frame, self.metadata_encoder, self.config)

    def collator(self, frame, seed: int = 0):
        """The plugin's inference collator for `frame`, with the band wavelengths the model
        was trained with (after checking it can read this survey's bands)."""
        from lcfm.engine.evaluate import input_bands

        bands = input_bands(self.plugin, self.config, frame, "light curves",
                            self.metadata_encoder)
        return self.plugin.collator(self.config, task="classify", train=False, bands=bands,
                                    label2id=None, seed=seed)

    def __call__(self, data, return_tensors: str = "pt", seed: int = 0) -> BatchFeature:
        """The model's keyword tensors for `data`: one row per window (module docstring);
        `result.windows` (`WindowedRows`) maps windows to light curves and sizes, and
        `result.frame` is the canonical frame they come from."""
        if return_tensors not in ("pt", None):
            raise ConfigError(f"return_tensors={return_tensors!r}: lcfm models take PyTorch "
                              "tensors ('pt')")
        import torch

        from lcfm.data import LightCurveDataset
        from lcfm.engine.predict import WindowedRows

        frame = self.frame(data)
        windows = WindowedRows(LightCurveDataset(frame), self.inference_window)
        collate = self.collator(frame, seed)
        if hasattr(collate, "rng"):
            import numpy as np

            collate.rng = np.random.default_rng([seed, 7, 0])
        batch = collate([windows[i] for i in range(len(windows))])
        encoding = BatchFeature({k: v for k, v in batch.items()
                                 if torch.is_tensor(v) and k != "labels"})
        encoding.windows, encoding.frame = windows, frame
        return encoding


def register_feature_extractor(config_class) -> None:
    """Make `AutoFeatureExtractor`/`AutoProcessor` return `LcfmFeatureExtractor` for this
    configuration class (called by `ModelPlugin.register_auto_classes`)."""
    from transformers import AutoFeatureExtractor

    AutoFeatureExtractor.register(config_class, LcfmFeatureExtractor, exist_ok=True)


def save_processor(model, folder: Path) -> Path | None:
    """Write the model's `preprocessor_config.json` into `folder` (None: not an lcfm model)."""
    from lcfm.engine.loading import plugin_for_model_type
    from lcfm.exceptions import PluginNotFoundError

    config = getattr(model, "config", None)
    try:
        plugin_for_model_type(getattr(config, "model_type", None))
    except PluginNotFoundError:
        return None
    LcfmFeatureExtractor.from_model(config).save_pretrained(folder)
    return Path(folder) / PREPROCESSOR_CONFIG
