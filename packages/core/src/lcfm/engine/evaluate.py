"""`lcfm evaluate`, `lcfm predict` and `lcfm embed` on a fine-tuned or pretrained model.

Every observation of a light curve enters the model (`lcfm.engine.predict`: consecutive
windows, observation-weighted mean). Light curves of one object (bands, quarters, sectors)
are then combined by averaging their class probabilities (or embeddings), so catalogs and
metrics have one entry per object, with `n_observations_used` (all the object's
observations that entered the model).

Inference needs no labels: rows whose label is None or outside the model's classes are
classified and embedded like any other. `evaluate` scores only objects with one of the
model's classes that the model was not trained or validated on (the fine-tuning run's
`splits.parquet`), and reports how many it excluded or skipped.

Every command works shard by shard (`lcfm.engine.catalog`): across Accelerate ranks, with
per-shard results merged by the main process into one entry per object; predict and embed
resume a killed run (`resume=True`) and write `<output stem>.json` (counts, speed,
num_processes) beside their catalog.

Data from another survey than the model's (issue 9, item 1): accepted only by a model that
encodes bands by central wavelength (`ModelPlugin.encodes_wavelength`, ATCAT), when every
band of the data has a wavelength in its survey plugin, both surveys give the same kind of
value (flux or magnitude) and the model reads no survey-specific metadata; the collator
then gets the data's own band wavelengths. Anything else is a one-line DataError naming
both surveys: a model that reads no band information cannot tell what it is given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.engine.catalog import CatalogRun, merge_parts, object_part, parts_folder
from lcfm.engine.metadata import load_encoder, with_metadata
from lcfm.engine.predict import embed_frame, predict_frame
from lcfm.engine.save import load_classifier
from lcfm.exceptions import ConfigError, DataError, PluginNotFoundError
from lcfm.metrics import classification_report
from lcfm.plots import plot_confusion, plot_reliability
from lcfm.ranks import current_ranks
from lcfm.registry import get_survey
from lcfm.shards import read_summaries, scan_shards, write_frame_atomic

#: object_id -> split ("train", "validation", "test") of the fine-tuning run, in its folder
SPLITS_FILE = "splits.parquet"
SEEN_SPLITS = ("train", "validation")


def write_splits(output: Path, parts: dict[str, pl.DataFrame]) -> Path:
    """Record which objects a fine-tuning run trained, validated and tested on."""
    table = pl.concat([pl.DataFrame({"object_id": part["object_id"].unique().sort(),
                                     "split": name}, schema={"object_id": pl.String,
                                                             "split": pl.String})
                       for name, part in parts.items()])
    return write_frame_atomic(table, Path(output) / SPLITS_FILE)


def read_splits(model_dir: Path) -> pl.DataFrame | None:
    path = Path(model_dir) / SPLITS_FILE
    if not path.exists():
        return None
    try:
        table = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise DataError(f"{path}: unreadable split record ({exc})") from None
    if not {"object_id", "split"} <= set(table.columns):
        raise DataError(f"{path}: expected columns object_id and split, found {table.columns}")
    return table


def file_output(output: Path, option: str = "--output") -> Path:
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"{option} {output}: is a directory; give a file name such as "
                          f"{output / 'catalog.parquet'}")
    return output


def folder_output(output: Path, option: str = "--output") -> Path:
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{option} {output}: is an existing file; give a folder")
    return output


def _bands(frame: pl.DataFrame) -> list[str]:
    return frame["band"].explode().cast(pl.String).unique().sort().to_list()


def input_bands(plugin, config, frame: pl.DataFrame, source, encoder=None) -> dict[str, float]:
    """Band -> wavelength for the collator, after checking that the model can read data of
    this survey (module docstring). Raises DataError naming both surveys otherwise."""
    surveys = frame["survey"].unique().to_list()
    if len(surveys) != 1:
        raise DataError(f"{source}: a dataset must hold one survey, found {sorted(surveys)}")
    survey = surveys[0]
    model_survey = getattr(config, "lcfm_survey", None)
    model_bands = dict(getattr(config, "lcfm_bands", None) or {})
    present = _bands(frame)
    if model_survey is None or survey == model_survey:
        unknown = [b for b in present if model_bands and b not in model_bands]
        if unknown:
            raise DataError(f"{source}: bands {unknown} are not among the model's "
                            f"{model_survey} bands {sorted(model_bands)}")
        return model_bands
    try:
        data_plugin = get_survey(survey)
        wavelengths = {str(b): float(w) for b, w in data_plugin.bands.items()}
        kinds = {data_plugin.value_kind, get_survey(model_survey).value_kind}
    except PluginNotFoundError:
        wavelengths, kinds = {}, set()
    missing = [b for b in present if not wavelengths.get(b, 0) > 0]
    if not plugin.encodes_wavelength:
        why = f"{plugin.name} does not encode bands by wavelength"
    elif missing:
        why = f"bands {missing} have no central wavelength"
    elif len(kinds) != 1:
        why = f"values differ in kind ({' vs '.join(sorted(kinds)) or 'unknown'})"
    elif encoder is not None:
        why = f"the model reads {model_survey} metadata"
    else:
        return wavelengths
    raise DataError(f"{source}: the model was trained on {model_survey} (bands "
                    f"{', '.join(model_bands)}), the data are {survey} (bands "
                    f"{', '.join(present)}); {why}")


def _collator(plugin, config, bands, seed: int = 0):
    # label2id=None: inference needs no labels, so unlabeled rows and labels outside the
    # model's classes are classified like any other
    return plugin.collator(config, task="classify", train=False, bands=bands, label2id=None,
                           seed=seed)


def _load_classifier(model_dir: Path):
    plugin, model = load_classifier(model_dir)
    config = model.config
    classes = [config.id2label[i] for i in range(len(config.id2label))]
    return plugin, model, classes, load_encoder(model_dir)


def _n_objects(frame: pl.DataFrame) -> int:
    return frame["object_id"].n_unique()


def _band_summary(data: Path) -> pl.DataFrame:
    """The surveys and bands of a dataset (what `input_bands` checks), read column-wise."""
    scan = scan_shards(data)
    surveys = scan.select(pl.col("survey").unique()).collect()["survey"].to_list()
    bands = (scan.select(pl.col("band").explode().cast(pl.String).unique())
             .collect()["band"].to_list())
    return pl.DataFrame({"survey": surveys, "band": [bands] * len(surveys)},
                        schema={"survey": pl.String, "band": pl.List(pl.String)})


def _model_key(model_dir: Path) -> str:
    return str(Path(model_dir).resolve())


def summary_path(output: Path) -> Path:
    """`<stem>.json` beside a catalog."""
    return output.with_name(output.stem + ".json")


def evaluate(model_dir: Path, data: Path, output: Path, batch_size: int = 64) -> dict:
    """Metrics on held-out objects with a known label (module docstring). Keys beyond
    `lcfm.metrics.classification_report`: n_objects (objects scored), light_curves,
    n_observations_used, excluded_training_objects (None when the model folder has no
    split record), n_skipped_unlabeled, n_skipped_foreign_label (objects), num_processes.

    Which objects are scored is decided from the rows' ids and labels alone
    (`read_summaries`: no observation sequences in memory); each rank then classifies its
    shards' scored rows and the main process scores the gathered per-object probabilities."""
    output = folder_output(output)
    plugin, model, classes, encoder = _load_classifier(model_dir)
    summaries = read_summaries(data)
    input_bands(plugin, model.config, _band_summary(data), data, encoder)
    splits = read_splits(model_dir)
    seen = (splits.filter(pl.col("split").is_in(SEEN_SPLITS))["object_id"]
            if splits is not None else pl.Series("object_id", [], pl.String))
    in_training = summaries["object_id"].is_in(seen.implode())
    known = summaries["label"].is_in(classes).fill_null(False) & ~in_training
    scored = summaries.filter(known)
    scored_ids = scored["object_id"].unique().implode()
    rest = summaries.filter(~in_training & ~known & ~pl.col("object_id").is_in(scored_ids))
    counts = {
        "excluded_training_objects": _n_objects(summaries.filter(in_training))
        if splits is not None else None,
        "n_skipped_unlabeled": _n_objects(rest.filter(pl.col("label").is_null())),
        "n_skipped_foreign_label": _n_objects(rest.filter(pl.col("label").is_not_null())),
    }
    if scored.height == 0:
        raise DataError(f"{data}: no held-out object to score: "
                        f"{counts['excluded_training_objects'] or 0} are the model's training "
                        f"or validation objects, {counts['n_skipped_unlabeled']} unlabeled, "
                        f"{counts['n_skipped_foreign_label']} with labels outside {classes}")
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("evaluate", Path(data), output / ".evaluate.parts",
                     {"model": _model_key(model_dir)}, ranks=ranks)

    def work(unit, frame):
        bands = input_bands(plugin, model.config, frame, unit.path, encoder)
        frame = frame.filter(~pl.col("object_id").is_in(seen.implode())
                             & pl.col("label").is_in(classes).fill_null(False))
        if frame.height == 0:
            return {"": object_part(frame, np.zeros((0, len(classes))), np.zeros(0))}
        frame = with_metadata(frame, encoder, model.config)
        rows = predict_frame(model, plugin, frame, _collator(plugin, model.config, bands),
                             len(classes), batch_size)
        return {"": object_part(frame, rows.probs, rows.observations)}

    output.mkdir(parents=True, exist_ok=True)
    run.run(work)
    if ranks.is_main:
        merged = merge_parts(run.parts())
        y_true = np.array([classes.index(label) for label in merged.labels])
        report = classification_report(y_true, merged.means, classes)
        report.update(n_objects=len(merged.objects), objects=len(merged.objects),
                      light_curves=int(merged.rows.sum()),
                      n_observations_used=int(merged.observations.sum()), **counts,
                      num_processes=ranks.count)
        _write_evaluation(output, report, classes)
    run.finish()
    return json.loads((output / "metrics.json").read_text())


def _write_evaluation(output: Path, report: dict, classes: list[str]) -> None:
    (output / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "confusion_matrix.json").write_text(
        json.dumps(report["confusion_matrix"], indent=2) + "\n")
    (output / "calibration.json").write_text(json.dumps(report["reliability"], indent=2) + "\n")
    (output / "thresholds.json").write_text(json.dumps(report["thresholds"], indent=2) + "\n")
    plot_confusion(np.array(report["confusion_matrix"]["rows_true_columns_predicted"]),
                   classes, output / "confusion_matrix.png")
    plot_reliability(report["reliability"], output / "reliability.png")


def predict(model_dir: Path, data: Path, output: Path, mc_samples: int = 0,
            batch_size: int = 64, seed: int = 0, cutoffs: list[float] | None = None,
            early: bool = False, resume: bool = False) -> pl.DataFrame:
    """A Parquet catalog: object_id (once each), predicted class, one probability column
    per class, n_observations_used and, with MC dropout (`mc_samples` passes with the
    model's own dropout rates), one standard-deviation column per class: the spread over
    passes of the object's probability. With `early` or `cutoffs` (causal models), also
    `<output stem>_early.parquet`: probabilities after each observation, or at each cutoff
    in days since the first observation (of a light curve's first window). Beside the
    catalog, `<output stem>.json`: n_objects, n_light_curves, num_processes, seconds,
    light_curves_per_second. `resume`: keep the shards a killed run finished."""
    output = file_output(output)
    if mc_samples < 0:
        raise ConfigError(f"--mc-samples {mc_samples}: must be 0 (one deterministic pass) or "
                          "a positive number of passes")
    plugin, model, classes, encoder = _load_classifier(model_dir)
    if mc_samples:
        from lcfm.engine.predict import enable_mc_dropout

        enable_mc_dropout(model, plugin)  # fails before any shard is read
        model.eval()
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("predict", Path(data), parts_folder(output), {
        "model": _model_key(model_dir), "classes": classes, "mc_samples": mc_samples,
        "seed": seed, "cutoffs": cutoffs, "early": early}, resume=resume, ranks=ranks)

    def work(unit, frame):
        bands = input_bands(plugin, model.config, frame, unit.path, encoder)
        collate = _collator(plugin, model.config, bands, seed)
        frame = with_metadata(frame, encoder, model.config)
        tables = {}
        if early or cutoffs:
            from lcfm.engine.early import early_probabilities

            tables[".early"] = early_probabilities(model, plugin, frame, collate, classes,
                                                   cutoffs, batch_size)
        rows = predict_frame(model, plugin, frame, collate, len(classes), batch_size,
                             mc_samples=mc_samples, seed=seed)
        passes = rows.passes.transpose(1, 0, 2)  # (rows, passes, classes)
        tables[""] = object_part(frame, passes, rows.observations)
        return tables

    run.run(work)
    if not ranks.is_main:
        run.finish()
        return pl.read_parquet(output)
    merged = merge_parts(run.parts())
    object_passes = merged.means.reshape(len(merged.objects), max(mc_samples, 1),
                                         len(classes))
    object_probs = object_passes.mean(1)
    columns = {"object_id": merged.objects,
               "predicted_class": [classes[i] for i in object_probs.argmax(1)],
               "probability": object_probs.max(1),
               "n_observations_used": merged.observations}
    columns.update({f"p_{c}": object_probs[:, i] for i, c in enumerate(classes)})
    if mc_samples:
        object_std = object_passes.std(1)
        columns.update({f"std_{c}": object_std[:, i] for i, c in enumerate(classes)})
    catalog = pl.DataFrame(columns)
    if early or cutoffs:
        write_frame_atomic(pl.concat(run.parts(".early")),
                           output.with_name(output.stem + "_early.parquet"))
    write_frame_atomic(catalog, output)
    run.finish(summary_path(output), run.summary(merged, output, mc_samples=mc_samples))
    return catalog


def _encoder_model(model_dir: Path):
    """(plugin, encoder model, config) of a pretrained or fine-tuned model folder."""
    from lcfm.engine.loading import (
        ADAPTER_CONFIG,
        check_model_folder,
        load_pretrained,
        plugin_for_model_type,
    )

    check_model_folder(model_dir)
    if (Path(model_dir) / ADAPTER_CONFIG).exists():
        # a LoRA fine-tune: its encoder is the base with the adapters merged in
        plugin, classifier = load_classifier(model_dir)
        classifier = classifier.merge_and_unload()
        return plugin, getattr(classifier, classifier.base_model_prefix), classifier.config
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    plugin = plugin_for_model_type(config.model_type)
    return plugin, load_pretrained(plugin.base_model_class, model_dir), config


def embed(model_dir: Path, data: Path, output: Path, batch_size: int = 64,
          plot: Path | None = None, resume: bool = False) -> pl.DataFrame:
    """One embedding vector per object, from the model's pooled (layer-weighted where the
    model defines it) output over all the object's observations, with its
    n_observations_used and first known label; `<output stem>.json` beside it as for
    predict. `resume`: keep the shards a killed run finished."""
    output = file_output(output)
    plugin, model, config = _encoder_model(model_dir)
    encoder = load_encoder(model_dir)
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("embed", Path(data), parts_folder(output),
                     {"model": _model_key(model_dir)}, resume=resume, ranks=ranks)

    def work(unit, frame):
        collate = _collator(plugin, config, input_bands(plugin, config, frame, unit.path,
                                                        encoder))
        frame = with_metadata(frame, encoder, config)
        vectors, used = embed_frame(model, plugin, frame, collate, batch_size)
        return {"": object_part(frame, vectors, used)}

    run.run(work)
    if not ranks.is_main:
        run.finish()
        return pl.read_parquet(output)
    merged = merge_parts(run.parts())
    vectors = merged.means.astype(np.float32)
    table = pl.DataFrame({"object_id": merged.objects, "label": merged.labels,
                          "n_observations_used": merged.observations,
                          "embedding": vectors.tolist()},
                         schema_overrides={"embedding": pl.List(pl.Float32),
                                           "label": pl.String})
    write_frame_atomic(table, output)
    run.finish(summary_path(output), run.summary(merged, output,
                                                 embedding_size=int(vectors.shape[1])))
    if plot is not None:
        from lcfm.plots import plot_embedding

        plot_embedding(vectors, merged.labels, plot)
    return table
