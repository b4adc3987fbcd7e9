"""Supervised fine-tuning (`lcfm finetune`): full, frozen encoder + head, or LoRA (peft),
on one Accelerate loop.

The training recipe comes from `lcfm.recipes` (issue 11, "Named recipes"): `--recipe NAME`,
or the model configuration's own paper recipe (ASTRAFier sect. 5; Astromer 2 sect. 5.4;
AstroCo appendix A; ATCAT sect. 2.4), or "lcfm-default". Every option left unset takes the
recipe's value, every option given replaces one field, and metrics.json records the result
under "recipe" (name, values, sources, overrides). Optimiser, schedule, warm-up, clipping,
loss (a loss of `lcfm.losses`, a weighted sum, or the model's own objective through
`ModelPlugin.finetune_loss`), label smoothing, the selection metric and early stopping
(counted in steps, never before `min_steps`; `lcfm.engine.training.Selection`) all follow it.

Splits are stratified by class and grouped by object, or read from a split file
(`splits`, object_id -> split and fold; `lcfm.splits.read_split_file`). Training batches
are streamed (issue 10): batches are read row group by row group and collated in
`--workers` DataLoader processes, each Accelerate rank taking its part of every global
batch; `grad_accum` micro-batches make one optimiser step (Accelerate's gradient
accumulation). Validation and test rows are read as frames.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from accelerate.utils import set_seed

from lcfm.augment import Augmenter
from lcfm.engine import loading
from lcfm.engine.batching import (
    AugmentedCollate,
    BalancedPlan,
    StepDataset,
    default_workers,
    optimiser_step,
    step_loader,
    to_device,
)
from lcfm.engine.checkpoint import (
    FINETUNE_EVALUATIONS,
    FINETUNE_RUN_FIELDS,
    Cadence,
    StopRequest,
    load_checkpoint,
    run_record,
    save_checkpoint,
)
from lcfm.engine.extra_features import (
    attach_features,
    feature_route,
    features_for,
    fit_feature_scaler,
    save_feature_scaler,
)
from lcfm.engine.finetune_options import RECIPE_OPTIONS, FinetuneArgs
from lcfm.engine.finetune_report import (
    few_shot_summary,
    finish,
    validation_scores,
    write_interrupted,
)
from lcfm.engine.inference import folder_output
from lcfm.engine.metadata import (
    fit_encoder,
    load_encoder,
    metadata_key,
    size_metadata,
    with_feature_metadata,
    with_metadata,
)
from lcfm.engine.training import (
    Selection,
    balanced_batches,
    evaluation_interval,
    make_accelerator,
    recipe_loss,
    resolve_precision,
    run_recipe,
    schedule_record,
    start_tracking,
    steps_per_epoch,
    stop_tracking,
)
from lcfm.exceptions import ConfigError, DataError
from lcfm.fold import is_folded
from lcfm.losses import class_weights, parse_loss
from lcfm.progress import progress_bar
from lcfm.recipes import (
    build_optimizer,
    build_scheduler,
)
from lcfm.registry import find_model_configuration
from lcfm.splits import few_shot_subset, read_split_file, split_by_file, stratified_object_split
from lcfm.stream import EpochPlan, ShardIndex, read_frame, value_sample
from lcfm.survey_info import survey_context


def split_parts(frame: pl.DataFrame, args: FinetuneArgs) -> tuple[dict, dict | None]:
    """(train/validation/test summaries, the split file's accounting or None)."""
    if args.splits is not None:
        parts, info = split_by_file(frame, read_split_file(args.splits), args.fold)
        info = {"file": str(args.splits), **info}
    else:
        if args.fold is not None:
            raise ConfigError(f"--fold {args.fold}: needs --splits (a split file with folds)")
        test = args.test_fraction
        val = args.validation_fraction * (1 - test)
        parts = stratified_object_split(frame, {"train": 1 - test - val, "validation": val,
                                                "test": test}, args.seed)
        info = None
    if parts["train"].height == 0:
        raise DataError(f"{args.splits or args.data}: no labeled light curves left for "
                        "training")
    return parts, info


def _splits(frame: pl.DataFrame, args: FinetuneArgs) -> dict[str, pl.DataFrame]:
    return split_parts(frame, args)[0]


def finetune(args: FinetuneArgs) -> dict:
    """Fine-tune (one run, or `folds` few-shot runs); returns the summary written to
    `output/metrics.json` (its "stopped" entry says when and why the run stopped)."""
    folder_output(args.output)
    index = ShardIndex(args.data)
    parts, info = split_parts(index.summaries(), args)
    if args.samples_per_class <= 0 and args.folds == 1:
        return _train_one(args, index, parts, Path(args.output), split_info=info)
    results = []
    for fold in range(args.folds):
        train = (few_shot_subset(parts["train"], args.samples_per_class, fold, args.seed)
                 if args.samples_per_class > 0 else parts["train"])
        results.append(_train_one(args, index, {**parts, "train": train},
                                  Path(args.output) / f"fold-{fold}", split_info=info))
    return few_shot_summary(args, results)


def finetune_parts(args: FinetuneArgs, parts: dict[str, pl.DataFrame], output: Path, *,
                   index: ShardIndex | None = None) -> dict:
    """One fine-tuning run on splits chosen by the caller (e.g. a few-shot scenario,
    `lcfm fewshot`): `parts` maps "train", "validation" and "test" to rows of
    `ShardIndex(args.data).summaries()` (with their global `row`); a row listed twice in
    "train" is trained on twice (sampling with replacement). Writes and returns the
    summary of `output/metrics.json`, as `finetune` does for one run."""
    missing = {"train", "validation", "test"} - set(parts)
    if missing:
        raise ConfigError(f"finetune_parts: parts lack {', '.join(sorted(missing))}")
    for name, part in parts.items():
        if "row" not in part.columns:
            raise ConfigError(f"finetune_parts: part {name!r} has no `row` column (take it "
                              "from ShardIndex.summaries())")
    if parts["train"].height == 0:
        raise DataError(f"{args.data}: no labeled light curves left for training")
    return _train_one(args, index if index is not None else ShardIndex(args.data), parts,
                      Path(output))


def _rows(part: pl.DataFrame) -> np.ndarray:
    return part["row"].to_numpy().astype(np.int64)


def _recipe(args: FinetuneArgs, plugin, checkpoint):
    overrides = {field: getattr(args, name) for name, field in RECIPE_OPTIONS.items()}
    loss = overrides["loss"]
    if isinstance(loss, list | tuple):  # the CLI's terms: one name, or an equal-weight sum
        loss = loss[0] if len(loss) == 1 else "+".join(loss)
    if isinstance(loss, str):
        overrides["loss"] = parse_loss(loss)
    config_name = None if checkpoint is not None else find_model_configuration(args.model)[1]
    return run_recipe("finetune", args.recipe, plugin, config_name, overrides)


def _train_one(args: FinetuneArgs, index: ShardIndex, parts: dict, output: Path, *,
               split_info: dict | None = None) -> dict:
    """One fine-tuning run; `parts` are the summaries (with global `row`) of each split."""
    output.mkdir(parents=True, exist_ok=True)
    sample = value_sample(index, _rows(parts["train"]), seed=args.seed)
    # survey_context reads bands from the data only when the survey is not installed
    survey_name, bands, taxonomy = survey_context(parts["train"].with_columns(
        band=pl.lit(list(sample.band_names), dtype=pl.List(pl.String))))
    present = set(parts["train"]["label"].drop_nulls().unique().to_list())
    class_names = [c for c in taxonomy if c in present] + sorted(present - set(taxonomy))
    if len(class_names) < 2:
        raise DataError(f"{args.data}: training needs at least two classes, found "
                        f"{class_names}")
    plugin, config, checkpoint = loading.resolve(args.model, args.config_overrides)
    recipe, overrides = _recipe(args, plugin, checkpoint)
    for key, value in recipe.dropout.items():  # the recipe's rates, unless given
        if key not in args.config_overrides:
            setattr(config, key, value)
    encoder = load_encoder(checkpoint) if checkpoint is not None else None
    if encoder is None and args.metadata:
        encoder = fit_encoder(survey_name, config, parts["train"], checkpoint is None)
    features = scaler = None
    if args.features or args.features_file is not None:
        features = features_for(args.data, output, args.features_file, progress=args.progress)
        scaler = fit_feature_scaler(features, parts["train"]["object_id"].unique().to_list())
        if feature_route(config) == "head":  # sized before the model is built
            config.num_extra_features = scaler.n_features
        else:  # ATCAT: the features ride on the metadata token
            encoder = with_feature_metadata(encoder, features, scaler)
            size_metadata(config, encoder, parts["train"], checkpoint is None)
    head_features = scaler is not None and feature_route(config) == "head"
    extras = {}
    if encoder is not None:
        summaries = pl.concat(list(parts.values()), how="vertical_relaxed")
        table = np.zeros((index.n_rows, int(encoder.encode(summaries.head(1)).shape[1])),
                         np.float32)
        table[_rows(summaries)] = encoder.encode(summaries)
        extras = {metadata_key(config): table}

    def frame_of(part: pl.DataFrame) -> pl.DataFrame:
        """The light curves of a held-out part, with their encoded metadata."""
        return with_metadata(read_frame(index, _rows(part)), encoder, config)

    set_seed(args.seed)
    if checkpoint is None:
        config = plugin.prepare_config(config, sample)
    model = loading.classification_model(plugin, config, checkpoint, class_names)
    label2id = model.config.label2id
    model.config.lcfm_survey, model.config.lcfm_bands = survey_name, bands
    model.config.lcfm_folded = is_folded(parts["train"])  # lcfm.fold.check_folding reads it
    if args.freeze_encoder:
        loading.freeze_encoder(model, plugin.trainable_when_frozen,
                               loading.fresh_encoder_parameters(model, checkpoint))
    base_parameters = loading.count_parameters(model)
    if args.lora:
        model = loading.apply_lora(model, rank=args.lora_rank)
    val_part = parts["validation"] if parts["validation"].height else parts["train"]
    val_part = val_part.filter(pl.col("label").is_in(class_names))
    if val_part.height == 0:  # validation holds only classes absent from training
        val_part = parts["train"]
    val_frame = frame_of(val_part)
    train_labels = parts["train"]["label"].to_list()
    counts = np.bincount([label2id[x] for x in train_labels if x in label2id],
                         minlength=len(class_names))
    balanced = balanced_batches(recipe.balanced_batches, counts)
    # balanced batches already weigh the classes equally (ATCAT sect. 2.3.2)
    weights = class_weights(np.ones_like(counts) if balanced else counts)
    model_config = model.config  # `model` becomes a DistributedDataParallel wrapper on ranks

    def with_features(collate):
        return attach_features(collate, features, scaler) if head_features else collate

    def collator(train: bool):
        # evaluation passes need no labels (predict_frame scores them against `_ids`)
        return with_features(plugin.collator(model_config, task="classify", train=train,
                                             bands=bands, label2id=label2id if train else None,
                                             seed=args.seed))

    collate = AugmentedCollate(collator(True), Augmenter(list(recipe.augmentations), args.seed)
                       if recipe.augmentations else None)
    precision = resolve_precision(args.mixed_precision, recipe)
    accelerator = make_accelerator(output, mixed_precision=precision[0],
                                   grad_accum=args.grad_accum, report_to=args.report_to)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 0:
        raise ConfigError(f"--workers {workers}: must be 0 (collate in this process) or more")
    train_rows = _rows(parts["train"])
    batch_size = int(recipe.batch_size)
    plan = (BalancedPlan(train_rows, train_labels, batch_size, args.seed) if balanced else
            EpochPlan.for_rows(index, train_rows, batch_size, args.seed,
                               bucket=args.length_buckets))
    per_epoch = steps_per_epoch(train_rows.size, batch_size, args.grad_accum)
    max_steps, patience = recipe.steps(per_epoch)
    if max_steps < 1:
        raise ConfigError(f"--max-steps {max_steps}: must be at least 1")
    train_set = StepDataset(index, plan, collate, seed=args.seed, band_names=sample.band_names,
                            process_index=accelerator.process_index,
                            num_processes=accelerator.num_processes, extras=extras)
    groups = loading.parameter_groups(model.base_model if args.lora else model,
                                      recipe.lr_encoder, recipe.lr_head, recipe.weight_decay)
    optimizer = build_optimizer(recipe, groups)
    scheduler = build_scheduler(recipe, optimizer, max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    cadence = Cadence.of(max_steps, evaluation_interval(recipe, max_steps,
                                                        "eval_every" in overrides),
                         args.checkpoint_every, evaluations=FINETUNE_EVALUATIONS)
    selection = Selection(recipe.selection, patience, recipe.min_steps, max_steps)
    resolved = replace(args, max_steps=max_steps, batch_size=batch_size,  # for the record
                       lr_encoder=recipe.lr_encoder, lr_head=recipe.lr_head,
                       weight_decay=recipe.weight_decay, patience=patience)
    record = recipe.record(overrides)
    record["run"] = schedule_record(recipe, max_steps, patience, per_epoch, args.grad_accum,
                                    precision)
    record["run"].update(balanced_batches=balanced, eval_every=cadence.eval_every)
    state = {"step": 0, "history": [], "validation": [], "best_value": None, "best_step": 0,
             "run": run_record(
                 resolved, FINETUNE_RUN_FIELDS, model_type=config.model_type,
                 # the fingerprint of the run's rows, without their sequences in memory
                 data=index.fingerprint(np.concatenate([_rows(p) for p in parts.values()])),
                 recipe=recipe)}
    if args.resume:  # refuses a checkpoint of another model, data or settings, in one line
        state = load_checkpoint(accelerator, output, state["run"])
    start_tracking(accelerator, args.report_to, "lcfm-finetune",
                   {**recipe.values(), **record["run"]})
    best_dir = output / "best"
    stop = min(args.stop_after or max_steps, max_steps)
    bar = progress_bar(total=max_steps, initial=state["step"], unit="step",
                       desc=f"finetune {plugin.name}", enabled=args.progress)
    model.train()
    grad_accum = int(args.grad_accum)
    loader = iter(step_loader(train_set, range(state["step"] * grad_accum, stop * grad_accum),
                              workers))
    saved, stopped, early = state["step"], False, False
    with StopRequest(accelerator) as request:  # Ctrl-C / SIGTERM: checkpoint, then stop
        for step in range(state["step"], stop):
            micro = []
            for _ in range(grad_accum):
                batch = to_device(next(loader), accelerator.device)
                labels = batch.pop("labels")
                with accelerator.accumulate(model):
                    outputs = model(**batch)
                    loss = recipe_loss(plugin, model, outputs, labels, batch, recipe, weights,
                                 len(class_names))
                    optimiser_step(accelerator, model, loss, optimizer, scheduler,
                                   recipe.max_grad_norm)
                micro.append(float(loss.detach()))
            state["step"] = step + 1
            value = float(np.mean(micro))
            state["history"].append({"step": step + 1, "loss": value})
            accelerator.log({"train/loss": value, "train/lr": scheduler.get_last_lr()[-1]},
                            step=step + 1)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if cadence.evaluates(state["step"]):
                scores, state["validation_rows_per_rank"] = validation_scores(
                    accelerator, accelerator.unwrap_model(model), plugin, val_frame,
                    collator(False), class_names, label2id, batch_size)
                state["validation"].append({"step": state["step"], **scores})
                accelerator.log({f"validation/{k}": v for k, v in scores.items()},
                                step=state["step"])
                if selection.update(state, state["step"], scores[selection.metric]):
                    if accelerator.is_main_process:  # one writer of the shared folder
                        accelerator.unwrap_model(model).save_pretrained(best_dir)
                    accelerator.wait_for_everyone()
                model.train()
                if selection.should_stop(state, state["step"]):
                    early = True
                    break
            if cadence.checkpoints(state["step"]):
                save_checkpoint(accelerator, output, state)
                saved = state["step"]
            if state["step"] < max_steps and request.stop():
                stopped = True
                break
    bar.close()
    if (args.stop_after or stopped) and state["step"] < max_steps and not early:
        return write_interrupted(accelerator, output, state, saved, stopped)
    stop_tracking(accelerator)
    state["stopped"] = selection.stopped(state, state["step"], early)
    if encoder is not None:
        from lcfm.engine.metadata import save_encoder

        save_encoder(encoder, survey_name, output)
    if scaler is not None and accelerator.is_main_process:
        save_feature_scaler(output, scaler)
    summary = {"steps": state["step"], "process_index": accelerator.process_index,
               "stopped": state["stopped"]}
    if accelerator.is_main_process:  # one process writes the model and its reports
        summary = finish(resolved, accelerator.unwrap_model(model), plugin, parts,
                         class_names, label2id, state, output, best_dir, base_parameters,
                         survey_name, frame_of, recipe=record, split_info=split_info,
                         num_processes=accelerator.num_processes, workers=workers,
                         wrap_collate=with_features, features=features)
    accelerator.wait_for_everyone()
    # the model is saved: the checkpoint keeps the training state only (no second copy)
    save_checkpoint(accelerator, output, state, complete=True)
    return summary


__all__ = ["FinetuneArgs", "finetune", "finetune_parts", "split_parts"]
