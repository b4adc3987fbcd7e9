"""lcfm from Python (issue 13, "Must include" 1): load a model, embed and classify light
curves in memory, pretrain and fine-tune with the command line's options.

    import lcfm
    frame = lcfm.read("lc_files/", survey="macho")
    model = lcfm.load("runs/clf")              # a folder or a Hub repository id
    catalog = lcfm.predict(model, frame)       # the columns of `lcfm predict`

`data` may be anything `lcfm.api_data.as_frame` reads: a canonical frame, a dataset folder,
a dict or list of dicts of arrays, (N, 3) arrays, pandas, astropy, lightkurve. Inference is
the engine's (`lcfm.engine.predict`): every observation enters the model through
consecutive windows of its input length, combined by their number of observations, and an
object's light curves (bands, quarters) are combined by averaging, exactly as `lcfm
predict` / `lcfm embed` compute their catalogs (ASTRAFier sect. 3.6 for the Monte-Carlo
dropout spread). These work in memory; for catalogs larger than memory use the commands,
which stream shards across processes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.api_data import as_frame
from lcfm.exceptions import ConfigError, ModelFolderError


def _local_folder(path_or_repo_id, revision: str | None, token) -> Path:
    path = Path(str(path_or_repo_id)).expanduser()
    if path.exists():
        return path
    text = str(path_or_repo_id)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise ModelFolderError(path, "no such model folder (nor a Hub id ORG/NAME)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:  # the whole repository: a LoRA adapter's base/, the metadata encoder, splits
        return Path(snapshot_download(text, revision=revision, token=token))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise ModelFolderError(text, f"no such model folder, and no such Hub repository "
                                     f"({type(exc).__name__}: {str(exc).splitlines()[0]})"
                               ) from exc


def saved_class(plugin, architectures) -> type:
    """The plugin's class a folder was saved from (its config.json `architectures`): the
    classifier, the pretraining head, else the base model. Loading that class uses every
    saved weight, so transformers reports no unused head."""
    for model_class in (plugin.classification_class, plugin.pretraining_class):
        if model_class is not None and model_class.__name__ in (architectures or ()):
            return model_class
    return plugin.base_model_class


def load(path_or_repo_id, *, revision: str | None = None, token: str | None = None):
    """The model of a folder written by lcfm, or of a Hub repository (downloaded whole), as
    it was saved: a fine-tuned classifier (a LoRA fine-tune with its adapters applied), a
    pretrained model with its self-supervised head (`lcfm.embed` uses its encoder), or a
    base model. The folder is checked first (one-line
    `ModelFolderError`); the model is in eval mode and remembers its folder
    (`model.lcfm_folder`), where its metadata encoder and processor lie."""
    from lcfm.engine.loading import (
        ADAPTER_CONFIG,
        check_model_folder,
        load_pretrained,
        plugin_for_model_type,
    )
    from lcfm.engine.save import load_classifier

    folder = _local_folder(path_or_repo_id, revision, token)
    config = check_model_folder(folder)
    plugin = plugin_for_model_type(config["model_type"])
    model_class = saved_class(plugin, config.get("architectures"))
    if (folder / ADAPTER_CONFIG).exists() or model_class is plugin.classification_class:
        _, model = load_classifier(folder)
    else:
        model = load_pretrained(model_class, folder).eval()
    model.lcfm_folder = folder
    return model


def _model(model):
    """(plugin, model, metadata encoder) for a loaded model or a folder / Hub id."""
    from lcfm.engine.loading import plugin_for_model_type
    from lcfm.engine.metadata import load_encoder

    if isinstance(model, str | Path):
        model = load(model)
    folder = getattr(model, "lcfm_folder", None) or getattr(model, "name_or_path", None)
    encoder = load_encoder(Path(folder)) if folder and Path(folder).is_dir() else None
    return plugin_for_model_type(model.config.model_type), model, encoder


def _prepared(plugin, model, encoder, data, seed: int = 0):
    """The canonical frame (with encoded metadata) and the inference collator, after the
    engine's check that the model can read the data's survey and bands."""
    from lcfm.engine.evaluate import input_bands
    from lcfm.engine.metadata import with_metadata

    config = model.config
    frame = as_frame(data, survey=getattr(config, "lcfm_survey", None))
    bands = input_bands(plugin, config, frame, "light curves", encoder)
    collate = plugin.collator(config, task="classify", train=False, bands=bands,
                              label2id=None, seed=seed)
    return with_metadata(frame, encoder, config), collate


def predict(model, data, mc_samples: int = 0, *, batch_size: int = 64, seed: int = 0
            ) -> pl.DataFrame:
    """The catalog `lcfm predict` writes, for `data` in memory: one row per object with
    object_id, predicted_class, probability, n_observations_used, p_<class> per class and,
    with `mc_samples` Monte-Carlo dropout passes (the model's own dropout rates), std_<class>.
    `model`: a fine-tuned classifier (`lcfm.load`) or its folder / Hub id."""
    from lcfm.engine.catalog import merge_parts, object_part
    from lcfm.engine.predict import predict_frame

    plugin, model, encoder = _model(model)
    id2label = getattr(model.config, "id2label", None) or {}
    if plugin.classification_class is None or not hasattr(model, "peft_config") and not \
            isinstance(model, plugin.classification_class):
        raise ConfigError(f"predict needs a fine-tuned classifier; this is a "
                          f"{type(model).__name__} (run `lcfm finetune` first, or use "
                          "lcfm.embed)")
    classes = [id2label[i] for i in range(len(id2label))]
    frame, collate = _prepared(plugin, model, encoder, data, seed)
    rows = predict_frame(model, plugin, frame, collate, len(classes), batch_size,
                         mc_samples=mc_samples, seed=seed)
    merged = merge_parts([object_part(frame, rows.passes.transpose(1, 0, 2),
                                      rows.observations)])
    passes = merged.means.reshape(len(merged.objects), max(mc_samples, 1), len(classes))
    probs = passes.mean(1)
    columns = {"object_id": merged.objects,
               "predicted_class": [classes[i] for i in probs.argmax(1)],
               "probability": probs.max(1), "n_observations_used": merged.observations}
    columns.update({f"p_{c}": probs[:, i] for i, c in enumerate(classes)})
    if mc_samples:
        spread = passes.std(1)
        columns.update({f"std_{c}": spread[:, i] for i, c in enumerate(classes)})
    return pl.DataFrame(columns)


def embed(model, data, *, batch_size: int = 64) -> pl.DataFrame:
    """The table `lcfm embed` writes, for `data` in memory: one row per object with
    object_id, label, n_observations_used and embedding (the pooled output, layer-weighted
    where the model defines it, averaged over the object's windows and light curves).
    `model`: any lcfm model (`lcfm.load`) or its folder / Hub id; a classifier embeds with
    its (fine-tuned) encoder."""
    from lcfm.engine.catalog import merge_parts, object_part
    from lcfm.engine.predict import embed_frame

    plugin, model, encoder = _model(model)
    encoder_model = model
    if hasattr(encoder_model, "peft_config"):  # a LoRA classifier: its adapted model
        encoder_model = encoder_model.get_base_model()
    if not isinstance(encoder_model, plugin.base_model_class):
        encoder_model = getattr(encoder_model, encoder_model.base_model_prefix)
    frame, collate = _prepared(plugin, model, encoder, data)
    vectors, used = embed_frame(encoder_model, plugin, frame, collate, batch_size)
    merged = merge_parts([object_part(frame, vectors, used)])
    return pl.DataFrame({"object_id": merged.objects, "label": merged.labels,
                         "n_observations_used": merged.observations,
                         "embedding": merged.means.astype(np.float32).tolist()},
                        schema_overrides={"embedding": pl.List(pl.Float32),
                                          "label": pl.String})


def _args(cls, what: str, options: dict):
    """`cls(**options)` (a command's option dataclass), with one-line errors for unknown or
    missing options, paths as `Path`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"{what}: no option(s) {unknown}; options: {', '.join(fields)}")
    missing = [n for n, f in fields.items() if n not in options
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{what}: missing option(s) {missing}")
    for name in ("output", "data", "init"):
        if isinstance(options.get(name), str):
            options[name] = Path(options[name])
    return cls(**options)


def pretrain(**options) -> dict:
    """`lcfm pretrain` with its options as keyword arguments (`PretrainArgs`: survey,
    output, data, model, max_steps, ...); returns the run's metrics (metrics.json). The
    model folder holds config.json, the weights and preprocessor_config.json."""
    from lcfm.engine.pretrain import PretrainArgs
    from lcfm.engine.pretrain import pretrain as run

    return run(_args(PretrainArgs, "pretrain", options))


def finetune(**options) -> dict:
    """`lcfm finetune` with its options as keyword arguments (`FinetuneArgs`: data, model,
    output, lora, freeze_encoder, max_steps, ...); returns the run's metrics (metrics.json,
    with the held-out test scores)."""
    from lcfm.engine.finetune import FinetuneArgs
    from lcfm.engine.finetune import finetune as run

    return run(_args(FinetuneArgs, "finetune", options))
