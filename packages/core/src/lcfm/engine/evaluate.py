"""`lcfm evaluate`, `lcfm predict` and `lcfm embed` on a fine-tuned or pretrained model.

Light curves of one object (bands, quarters, sectors) are combined by averaging their
class probabilities (or embeddings), so catalogs and metrics have one entry per object.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from lcfm.engine.metadata import load_encoder, with_metadata
from lcfm.engine.predict import embed_frame, per_object, predict_frame
from lcfm.engine.save import load_classifier
from lcfm.exceptions import DataError
from lcfm.metrics import classification_report
from lcfm.plots import plot_confusion, plot_reliability
from lcfm.shards import read_shards, shard_paths, write_frame_atomic


def _load_classifier(model_dir: Path, seed: int = 0):
    plugin, model = load_classifier(model_dir)
    config = model.config
    classes = [config.id2label[i] for i in range(len(config.id2label))]
    collate = plugin.collator(config, task="classify", train=False,
                              bands=getattr(config, "lcfm_bands", None) or {},
                              label2id={c: i for i, c in enumerate(classes)}, seed=seed)
    return plugin, model, classes, collate, load_encoder(model_dir)


def _shard_frames(data: Path, encoder, config, what: str):
    """Each shard of a dataset in turn (with encoded metadata where the model uses it), so
    catalogs of millions of light curves never hold all light curves in memory."""
    paths = shard_paths(data)
    for path in tqdm(paths, desc=what, unit="shard", disable=None if len(paths) > 1 else True):
        yield with_metadata(read_shards(path), encoder, config)


def evaluate(model_dir: Path, data: Path, output: Path, batch_size: int = 64) -> dict:
    plugin, model, classes, collate, encoder = _load_classifier(model_dir)
    frame = with_metadata(read_shards(data), encoder, model.config)
    labeled = frame.filter(pl.col("label").is_in(classes))
    if labeled.height == 0:
        raise DataError(f"{data}: no light curve carries one of the model's classes {classes}")
    probs, _ = predict_frame(model, plugin, labeled, collate, len(classes), batch_size)
    objects, object_probs = per_object(labeled["object_id"], probs)
    truth = dict(zip(labeled["object_id"], labeled["label"], strict=True))
    y_true = np.array([classes.index(truth[o]) for o in objects])
    report = classification_report(y_true, object_probs, classes)
    report["objects"] = len(objects)
    report["light_curves"] = labeled.height
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "confusion_matrix.json").write_text(
        json.dumps(report["confusion_matrix"], indent=2) + "\n")
    (output / "calibration.json").write_text(json.dumps(report["reliability"], indent=2) + "\n")
    (output / "thresholds.json").write_text(json.dumps(report["thresholds"], indent=2) + "\n")
    plot_confusion(np.array(report["confusion_matrix"]["rows_true_columns_predicted"]),
                   classes, output / "confusion_matrix.png")
    plot_reliability(report["reliability"], output / "reliability.png")
    return report


def predict(model_dir: Path, data: Path, output: Path, mc_samples: int = 0,
            batch_size: int = 64, seed: int = 0, cutoffs: list[float] | None = None,
            early: bool = False) -> pl.DataFrame:
    """A Parquet catalog: object_id (once each), predicted class, one probability column
    per class and, with MC dropout, one standard-deviation column per class. With `early`
    or `cutoffs` (causal models), also `<output stem>_early.parquet`: probabilities after
    each observation, or at each cutoff in days since the first observation."""
    plugin, model, classes, collate, encoder = _load_classifier(model_dir, seed)
    ids, probs, stds, early_tables = [], [], [], []
    for frame in _shard_frames(data, encoder, model.config, "predict"):
        if early or cutoffs:
            from lcfm.engine.early import early_probabilities

            early_tables.append(early_probabilities(model, plugin, frame, collate, classes,
                                                    cutoffs, batch_size))
        p, std = predict_frame(model, plugin, frame, collate, len(classes), batch_size,
                               mc_samples=mc_samples, seed=seed)
        ids.append(frame["object_id"].to_numpy())
        probs.append(p)
        stds.append(std)
    ids = np.concatenate(ids)
    if early_tables:
        write_frame_atomic(pl.concat(early_tables),
                           Path(output).with_name(Path(output).stem + "_early.parquet"))
    objects, object_probs = per_object(ids, np.concatenate(probs))
    columns = {"object_id": objects,
               "predicted_class": [classes[i] for i in object_probs.argmax(1)],
               "probability": object_probs.max(1)}
    columns.update({f"p_{c}": object_probs[:, i] for i, c in enumerate(classes)})
    if mc_samples:
        _, object_std = per_object(ids, np.concatenate(stds))
        columns.update({f"std_{c}": object_std[:, i] for i, c in enumerate(classes)})
    catalog = pl.DataFrame(columns)
    write_frame_atomic(catalog, Path(output))
    return catalog


def embed(model_dir: Path, data: Path, output: Path, batch_size: int = 64,
          plot: Path | None = None) -> pl.DataFrame:
    """One embedding vector per object, from the model's pooled (layer-weighted where the
    model defines it) output."""
    from transformers import AutoConfig

    from lcfm.engine.loading import plugin_for_model_type

    config = AutoConfig.from_pretrained(model_dir)
    plugin = plugin_for_model_type(config.model_type)
    model = plugin.base_model_class.from_pretrained(model_dir)
    # classify-mode collation without labels: whole light curves, no masking
    collate = plugin.collator(config, task="classify", train=False,
                              bands=getattr(config, "lcfm_bands", None) or {},
                              label2id=None, seed=0)
    ids, vectors, labels = [], [], {}
    for frame in _shard_frames(data, load_encoder(model_dir), config, "embed"):
        vectors.append(embed_frame(model, frame, collate, batch_size))
        ids.append(frame["object_id"].to_numpy())
        labels.update(zip(frame["object_id"], frame["label"], strict=True))
    objects, object_vectors = per_object(np.concatenate(ids), np.concatenate(vectors))
    table = pl.DataFrame({"object_id": objects, "label": [labels[o] for o in objects],
                          "embedding": object_vectors.astype(np.float32).tolist()},
                         schema_overrides={"embedding": pl.List(pl.Float32)})
    write_frame_atomic(table, Path(output))
    if plot is not None:
        from lcfm.plots import plot_embedding

        plot_embedding(object_vectors, [labels[o] for o in objects], plot)
    return table
