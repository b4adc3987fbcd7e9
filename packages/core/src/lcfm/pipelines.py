"""transformers pipelines for lcfm models (issue 13, "Must include" 2):
`pipeline("light-curve-classification", model=FOLDER)` and
`pipeline("light-curve-embedding", model=FOLDER)`, registered in transformers'
`PIPELINE_REGISTRY` when transformers' pipelines module is imported after `import lcfm`
(`lcfm.pipeline_hook`), with no `trust_remote_code`.

Inputs: a dict of arrays ({"time", "value", "error", "band"?, "object_id"?}), a list of
them, or a canonical frame (one result per row, i.e. per light curve); anything
`lcfm.api_data.as_frame` reads. Inputs that name no survey are taken to be from the
model's survey, and go through that survey's preprocessing (`lcfm.api_data.from_arrays`).
Each light curve is classified or embedded over all its observations, in consecutive
windows of the model's input length combined by their number of observations
(`lcfm.engine.predict`, as `lcfm predict` and `lcfm embed` do).

A frame always gives a list, one result per row. Classification returns, per light curve,
[{"label", "score"}, ...] sorted by score (all classes, or `top_k`); embedding returns the
pooled embedding (a float32 numpy vector).
"""

from __future__ import annotations

import polars as pl
from transformers import AutoModelForSequenceClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from lcfm.processing import LcfmFeatureExtractor

CLASSIFICATION_TASK = "light-curve-classification"
EMBEDDING_TASK = "light-curve-embedding"


class _LightCurvePipeline(Pipeline):
    """Shared input handling: a processor bound to the model, one light curve per item."""

    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_processor = False
    _load_feature_extractor = None  # preprocessor_config.json if present, else from the model

    def __init__(self, model, feature_extractor=None, **kwargs):
        if feature_extractor is None:
            feature_extractor = LcfmFeatureExtractor.from_model(model)
        feature_extractor.bind(model)
        super().__init__(model=model, feature_extractor=feature_extractor, **kwargs)
        from lcfm.engine.loading import plugin_for_model_type

        self.plugin = plugin_for_model_type(model.config.model_type)

    def __call__(self, inputs, **kwargs):
        """One result per light curve: a frame is split into its rows."""
        if isinstance(inputs, pl.DataFrame):
            inputs = [inputs.slice(i, 1) for i in range(inputs.height)]
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, top_k=None, batch_size_windows=None, **kwargs):
        forward = {"batch_size": batch_size_windows} if batch_size_windows else {}
        post = {"top_k": top_k} if top_k is not None else {}
        return {}, forward, post

    def preprocess(self, inputs):
        frame = self.feature_extractor.frame(inputs)
        return {"frame": frame, "collate": self.feature_extractor.collator(frame)}


class LightCurveClassificationPipeline(_LightCurvePipeline):
    """Class probabilities of each light curve (module docstring)."""

    def _forward(self, model_inputs, batch_size: int = 64):
        from lcfm.engine.predict import predict_frame

        n_classes = len(self.model.config.id2label)
        rows = predict_frame(self.model, self.plugin, model_inputs["frame"],
                             model_inputs["collate"], n_classes, batch_size)
        return {"probs": rows.probs}

    def postprocess(self, model_outputs, top_k: int | None = None):
        id2label = self.model.config.id2label
        results = []
        for probs in model_outputs["probs"]:
            ranked = sorted(((id2label[i], float(p)) for i, p in enumerate(probs)),
                            key=lambda item: -item[1])
            results.append([{"label": label, "score": score}
                            for label, score in ranked[:top_k]])
        return results[0] if len(results) == 1 else results


class LightCurveEmbeddingPipeline(_LightCurvePipeline):
    """The pooled embedding of each light curve (module docstring)."""

    def _forward(self, model_inputs, batch_size: int = 64):
        from lcfm.engine.predict import embed_frame

        encoder = self.model
        if not isinstance(encoder, self.plugin.base_model_class):  # a model with a head
            encoder = getattr(encoder, encoder.base_model_prefix)
        vectors, _ = embed_frame(encoder, self.plugin, model_inputs["frame"],
                                 model_inputs["collate"], batch_size)
        return {"vectors": vectors.astype("float32")}

    def postprocess(self, model_outputs, top_k=None):
        vectors = model_outputs["vectors"]
        return vectors[0] if len(vectors) == 1 else list(vectors)


class SavedArchitecture:
    """The embedding task's model loader: each folder's own saved class (`architectures` in
    its config.json: a classifier, a pretraining head or a base model), whose encoder then
    embeds. Loading the bare encoder class instead would report the saved head's weights as
    unused, for every classifier and pretraining checkpoint."""

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        from transformers import AutoConfig

        from lcfm.api import saved_class
        from lcfm.engine.loading import plugin_for_model_type

        hub = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only")
               if k in kwargs}
        config = AutoConfig.from_pretrained(path, **hub)
        plugin = plugin_for_model_type(config.model_type)
        return saved_class(plugin, config.architectures).from_pretrained(path, **kwargs)


def register_pipelines() -> None:
    """Register both tasks with transformers (idempotent)."""
    for task, cls, auto in ((CLASSIFICATION_TASK, LightCurveClassificationPipeline,
                             AutoModelForSequenceClassification),
                            (EMBEDDING_TASK, LightCurveEmbeddingPipeline, SavedArchitecture)):
        if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not cls:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=cls, pt_model=auto,
                                                type="multimodal")


register_pipelines()  # also when this module is imported before transformers' pipelines
