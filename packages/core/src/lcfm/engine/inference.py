"""`lcfm predict` and `lcfm embed`. What they share with `lcfm evaluate` (the split record
of a fine-tuning run, output checks, the band and folding checks below) lives in
`lcfm.engine.inference_inputs` and is re-exported here.

Every observation of a light curve enters the model (`lcfm.engine.predict`: consecutive
windows, observation-weighted mean). Light curves of one object (bands, quarters, sectors)
are then combined by averaging their class probabilities (or embeddings) weighted by the
observations each contributed, so catalogs and metrics have one entry per object, with
`n_observations_used` (all the object's observations that entered the model).

Inference needs no labels: rows whose label is None or outside the model's classes are
classified and embedded like any other. Every command works shard by shard
(`lcfm.engine.catalog`): across Accelerate ranks, with per-shard results merged by the main
process into one entry per object; predict and embed resume a killed run (`resume=True`)
and write `<output stem>.json` (counts, speed, num_processes) beside their catalog.

Data from another survey than the model's (issue 9, item 1): accepted only by a model that
encodes bands by central wavelength (`ModelPlugin.encodes_wavelength`, ATCAT), when every
band of the data has a wavelength in its survey plugin, both surveys give the same kind of
value (flux or magnitude) and the model reads no survey-specific metadata; the collator
then gets the data's own band wavelengths. Anything else is a one-line DataError naming
both surveys: a model that reads no band information cannot tell what it is given.

Options are declared once (`lcfm.options`): `PredictArgs`, `EmbedArgs`; `run_predict` and
`run_embed` take them, `predict(...)` and `embed(...)` keep the positional signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.engine.catalog import CatalogRun, merge_parts, object_part, parts_folder
from lcfm.engine.inference_inputs import (  # re-exported: predict, embed and evaluate share them
    SEEN_SPLITS,
    SPLITS_FILE,
    band_summary,
    check_causal,
    check_mc_samples,
    feature_inputs,
    file_output,
    folder_output,
    inference_collator,
    input_bands,
    load_classifier_parts,
    model_key,
    parse_cutoffs,
    read_splits,
    seen_objects,
    summary_path,
    write_splits,
)
from lcfm.engine.metadata import load_encoder, with_metadata
from lcfm.engine.predict import predict_frame
from lcfm.engine.save import load_classifier
from lcfm.exceptions import ConfigError
from lcfm.options import option
from lcfm.ranks import current_ranks
from lcfm.shards import write_frame_atomic


@dataclass
class PredictArgs:
    model: Path = option(help="Fine-tuned model folder.")
    data: Path = option(help="Folder of canonical shards.")
    output: Path = option(help="Parquet catalog to write.")
    mc_samples: int = option(0, "Monte-Carlo dropout passes with the model's own dropout "
                                "(ASTRAFier sect. 3.6 uses 20); 0: one deterministic pass. "
                                "A model without dropout refuses it.")
    batch_size: int = option(64, "Light curves per batch.")
    seed: int = option(0, "Seed of MC-dropout passes and of collators.")
    cutoffs: list[float] | None = option(None, "Also classify the light curves cut at these "
                                               "days since the first alert (first observation "
                                               "where the survey records none), e.g. "
                                               "1,3,10,30 (<output stem>_early.parquet; "
                                               "with labels, <output stem>_early_metrics."
                                               "json).")
    early: bool = option(False, "Causal models: probabilities after every observation "
                                "(<output stem>_early.parquet).")
    resume: bool = option(False, "Keep the shards a killed run finished (OUTPUT.parts/) and "
                                 "do the rest; refused when the model, data or options "
                                 "differ.")
    features: Path | None = option(None, "Features file of `lcfm features` for a model "
                                         "fine-tuned with --features (default: computed "
                                         "from the data).")


@dataclass
class EmbedArgs:
    model: Path = option(help="Pretrained or fine-tuned model folder.")
    data: Path = option(help="Folder of canonical shards.")
    output: Path = option(help="Parquet file of embeddings.")
    batch_size: int = option(64, "Light curves per batch.")
    plot: Path | None = option(None, "Also draw a 2-D projection PNG.")
    resume: bool = option(False, "Keep the shards a killed run finished (OUTPUT.parts/) and "
                                 "do the rest.")


def run_predict(args: PredictArgs) -> pl.DataFrame:
    """A Parquet catalog: object_id (once each), predicted class, one probability column
    per class, n_observations_used and, with MC dropout (`mc_samples` passes with the
    model's own dropout rates), one standard-deviation column per class: the spread over
    passes of the object's probability; p_unsure for a model with an "unsure" output.
    With `cutoffs`, also `<output stem>_early.parquet`: probabilities of the light curves
    cut at each cut-off in days since the first alert (`lcfm.engine.early`), and, for
    labeled objects the model did not train or validate on, `<output stem>_early_metrics.
    json` (macro F1 and class-balanced F1 per cut-off); with `early` instead (causal
    models), that table holds the probabilities after every observation. The
    cut-off). Beside the catalog, `<output stem>.json`: n_objects, n_light_curves,
    num_processes, seconds, light_curves_per_second. `resume`: keep the shards a killed
    run finished."""
    output = file_output(args.output)
    cutoffs = parse_cutoffs(args.cutoffs)
    check_mc_samples(args.mc_samples)
    mc_samples, seed = int(args.mc_samples), int(args.seed)
    plugin, model, classes, encoder = load_classifier_parts(args.model)
    check_causal(plugin, args.early)
    wrap, encoder = feature_inputs(args.model, model.config, encoder, args.data, args.features)
    if mc_samples:
        from lcfm.engine.predict import enable_mc_dropout

        enable_mc_dropout(model, plugin)  # fails before any shard is read
        model.eval()
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("predict", Path(args.data), parts_folder(output), {
        "model": model_key(args.model), "classes": classes, "mc_samples": mc_samples,
        "seed": seed, "cutoffs": cutoffs, "early": args.early}, resume=args.resume,
        ranks=ranks)

    def work(unit, frame):
        bands = input_bands(plugin, model.config, frame, unit.path, encoder)
        collate = wrap(inference_collator(plugin, model.config, bands, seed))
        frame = with_metadata(frame, encoder, model.config)
        tables = {}
        if args.early or cutoffs:
            from lcfm.engine.early import early_probabilities

            tables[".early"] = early_probabilities(model, plugin, frame, collate, classes,
                                                   cutoffs, args.batch_size)
        rows = predict_frame(model, plugin, frame, collate, len(classes), args.batch_size,
                             mc_samples=mc_samples, seed=seed)
        values = rows.passes
        if rows.unsure is not None:
            values = np.concatenate([values, rows.unsure[..., None]], -1)
        tables[""] = object_part(frame, values.transpose(1, 0, 2), rows.observations)
        return tables

    run.run(work)
    if not ranks.is_main:
        run.finish()
        return pl.read_parquet(output)
    merged = merge_parts(run.parts())
    # classes, + 1 for a model with an "unsure" output (p_unsure)
    width = merged.sums.shape[1] // max(mc_samples, 1) if merged.objects else len(classes)
    object_passes = merged.means.reshape(len(merged.objects), max(mc_samples, 1), width)
    object_probs = object_passes.mean(1)[:, :len(classes)]
    columns = {"object_id": merged.objects,
               "predicted_class": [classes[i] for i in object_probs.argmax(1)],
               "probability": object_probs.max(1),
               "n_observations_used": merged.observations}
    columns.update({f"p_{c}": object_probs[:, i] for i, c in enumerate(classes)})
    if width > len(classes):
        columns["p_unsure"] = object_passes.mean(1)[:, len(classes)]
    if mc_samples:
        object_std = object_passes.std(1)
        columns.update({f"std_{c}": object_std[:, i] for i, c in enumerate(classes)})
    catalog = pl.DataFrame(columns)
    if args.early or cutoffs:
        early = pl.concat(run.parts(".early"), how="diagonal_relaxed")
        write_frame_atomic(early, output.with_name(output.stem + "_early.parquet"))
        seen = set(seen_objects(args.model).to_list())
        labeled = {o: lab for o, lab in zip(merged.objects, merged.labels, strict=True)
                   if lab in classes}
        held_out = {o: lab for o, lab in labeled.items() if o not in seen}
        if cutoffs and held_out:  # labeled objects the model did not train or validate on
            from lcfm.engine.early import write_early_metrics

            write_early_metrics(output.with_name(output.stem + "_early_metrics.json"), early,
                                classes, cutoffs, held_out,
                                excluded_training_objects=len(labeled) - len(held_out))
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

    checked = check_model_folder(model_dir)
    if isinstance(checked, dict) and "lcfm_ensemble" in checked:
        # members are separate encoders: no single embedding space to average into
        raise ConfigError(f"{model_dir}: an ensemble of classifiers has one encoder per "
                          f"member; embed with a member folder, e.g. "
                          f"{Path(model_dir) / 'member-0'}")
    if (Path(model_dir) / ADAPTER_CONFIG).exists():
        # a LoRA fine-tune: its encoder is the base with the adapters merged in
        plugin, classifier = load_classifier(model_dir)
        classifier = classifier.merge_and_unload()
        return plugin, getattr(classifier, classifier.base_model_prefix), classifier.config
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    plugin = plugin_for_model_type(config.model_type)
    return plugin, load_pretrained(plugin.base_model_class, model_dir), config


def run_embed(args: EmbedArgs) -> pl.DataFrame:
    """One embedding vector per object, from the model's pooled (layer-weighted where the
    model defines it) output over all the object's observations, with its
    n_observations_used and first known label; `<output stem>.json` beside it as for
    predict. `resume`: keep the shards a killed run finished."""
    from lcfm.engine.predict import embed_frame

    output = file_output(args.output)
    plugin, model, config = _encoder_model(args.model)
    encoder = load_encoder(args.model)
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("embed", Path(args.data), parts_folder(output),
                     {"model": model_key(args.model)}, resume=args.resume, ranks=ranks)

    def work(unit, frame):
        collate = inference_collator(plugin, config, input_bands(plugin, config, frame,
                                                                 unit.path, encoder))
        frame = with_metadata(frame, encoder, config)
        vectors, used = embed_frame(model, plugin, frame, collate, args.batch_size)
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
    if args.plot is not None:
        from lcfm.plots import plot_embedding

        plot_embedding(vectors, merged.labels, args.plot)
    return table


def predict(model_dir, data: Path | None = None, output: Path | None = None,
            mc_samples: int = 0, batch_size: int = 64, seed: int = 0,
            cutoffs: list[float] | None = None, early: bool = False,
            resume: bool = False) -> pl.DataFrame:
    """`run_predict` with positional options (or a `PredictArgs` as the only argument)."""
    if isinstance(model_dir, PredictArgs):
        return run_predict(model_dir)
    return run_predict(PredictArgs(model=Path(model_dir), data=Path(data),
                                   output=Path(output), mc_samples=mc_samples,
                                   batch_size=batch_size, seed=seed, cutoffs=cutoffs,
                                   early=early, resume=resume))


def embed(model_dir, data: Path | None = None, output: Path | None = None,
          batch_size: int = 64, plot: Path | None = None, resume: bool = False
          ) -> pl.DataFrame:
    """`run_embed` with positional options (or an `EmbedArgs` as the only argument)."""
    if isinstance(model_dir, EmbedArgs):
        return run_embed(model_dir)
    return run_embed(EmbedArgs(model=Path(model_dir), data=Path(data), output=Path(output),
                               batch_size=batch_size, plot=plot, resume=resume))


__all__ = ["SEEN_SPLITS", "SPLITS_FILE", "EmbedArgs", "PredictArgs", "band_summary",
           "embed", "file_output", "folder_output", "input_bands", "parse_cutoffs",
           "predict", "read_splits", "run_embed", "run_predict", "seen_objects",
           "summary_path", "write_splits"]
