"""Self-supervised pretraining (`lcfm pretrain`) on one Accelerate loop.

Any model plugin with a `pretraining_class` trains on any survey: the survey gives the
data (its bundled sample by default) and band wavelengths, the plugin gives the model and
the collator. The training recipe (`lcfm.recipes`: optimiser, learning rate, schedule,
warm-up, clipping, batch size, steps or epochs, early stopping on the validation loss,
dropout, mixed precision) is `--recipe NAME` or the configuration's own paper recipe
(Astromer 1/2, AstroCo-S/L appendix A, ATCAT sect. 2.4), any option given overriding one
field; metrics.json records it under "recipe". Seeded and resumable
(`batching.StepDataset`); `grad_accum` micro-batches per optimiser step.

The corpus is streamed (issue 10, "streaming data path"): only the per-row summaries and
lengths are in memory; batches are read row group by row group, bucketed by length and
collated in `--workers` DataLoader processes. Under `accelerate launch` each rank takes its
part of every global batch and of the validation batches (losses summed across ranks); only
the main process ingests a bundled sample and writes outputs.

Runs are checked (issue 9, "checked runs"): the data must be of the `--survey` the checkpoint
is stamped with, and `--resume` continues only the run the checkpoint records (same model,
data fingerprint, batch size, seed, max steps, resolved recipe; `checkpoint.run_record`).

`--init CKPT` starts from a pretrained checkpoint's weights and configuration with a new
optimiser and schedule: Astromer 2 sect. 5.1's first downstream stage, "the pretrained
model is fine-tuned on the masked reconstruction task using the labeled subset" before the
classifier is trained. The checkpoint must be of the `--model`'s type (without --model, its
own model is used); the run record and metrics.json name the init folder, and weights the
checkpoint lacks (a classifier's folder has no reconstruction head) are listed in
metrics.json["init"]["newly_initialised"] instead of passing unnoticed.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from transformers import AutoConfig

from lcfm.data import validation_rows
from lcfm.engine.batching import (
    StepDataset,
    default_workers,
    evaluation_plan,
    evaluation_steps,
    optimiser_step,
    step_loader,
    to_device,
)
from lcfm.engine.checkpoint import (
    Cadence,
    StopRequest,
    load_checkpoint,
    run_record,
    save_checkpoint,
    validation_subset,
)
from lcfm.engine.loading import (
    ADAPTER_CONFIG,
    CONFIG,
    check_model_folder,
    load_pretrained,
    plugin_for_model_type,
)
from lcfm.engine.metadata import fit_encoder, metadata_key, save_encoder
from lcfm.engine.pretrain_options import DEFAULT_MODEL, RECIPE_OPTIONS, PretrainArgs
from lcfm.engine.save import save_model_atomically
from lcfm.engine.training import (
    Selection,
    evaluation_interval,
    make_accelerator,
    resolve_precision,
    run_recipe,
    schedule_record,
    start_tracking,
    steps_per_epoch,
    stop_tracking,
)
from lcfm.exceptions import ConfigError, DataError, ModelFolderError
from lcfm.fold import is_folded
from lcfm.progress import progress_bar
from lcfm.recipes import build_optimizer, build_scheduler
from lcfm.registry import find_model_configuration, get_survey
from lcfm.stream import EpochPlan, ShardIndex, value_sample

SIMULATED_FALLBACK = 512
#: PretrainArgs fields that shape the trained weights; `--resume` refuses a change in any
#: (and in the resolved recipe, `run_record(recipe=...)`)
RUN_FIELDS = ("survey", "metadata", "batch_size", "seed", "max_steps", "learning_rate",
              "weight_decay", "validation_fraction", "length_buckets", "init", "grad_accum")


def _resolve_init(args: PretrainArgs):
    """(plugin, configuration name, model name, the `init` checkpoint's config or None).

    The checkpoint is checked before any data is read: a broken folder, a LoRA adapter or a
    checkpoint of another model type than `--model` is one line naming its file."""
    if args.init is None:
        plugin, name = find_model_configuration(args.model or DEFAULT_MODEL)
        return plugin, name, args.model or DEFAULT_MODEL, None
    folder = Path(args.init)
    stored = check_model_folder(folder)
    if (folder / ADAPTER_CONFIG).exists():
        raise ModelFolderError(folder, "a LoRA adapter folder; --init needs full weights "
                                       "(its merged/ model, `lcfm finetune --merge-lora`)")
    own = plugin_for_model_type(stored["model_type"])
    if args.model is None:
        plugin = own
    else:
        plugin, _ = find_model_configuration(args.model)
        if plugin.config_class.model_type != stored["model_type"]:
            raise ModelFolderError(folder / CONFIG, f"a checkpoint of model {own.name} "
                                   f"(model_type {stored['model_type']}), but --model "
                                   f"{args.model} is model {plugin.name}; give a checkpoint "
                                   f"of {plugin.name} or leave --model out")
    config = load_pretrained(AutoConfig, folder)
    for key, value in args.config_overrides.items():  # e.g. dropout; shapes must still fit
        setattr(config, key, value)
    return plugin, None, args.model or plugin.name, config


def _prepare_data(args: PretrainArgs, survey) -> tuple[Path, str]:
    """The dataset folder: given shards, or the survey's bundled sample ingested once;
    a survey that may ship no real sample (ATLAS) pretrains on its simulator instead."""
    if args.data is not None:
        return Path(args.data), str(args.data)
    sample_dir = Path(args.output) / "data"
    try:
        survey.sample_path()
    except ConfigError:
        from lcfm.simulate import simulate

        if not (sample_dir / "simulation.json").exists():
            warnings.warn(f"survey {survey.name!r} ships no real sample: pretraining on "
                          f"{SIMULATED_FALLBACK} simulated light curves (give --data for "
                          "real data)", stacklevel=2)
            simulate(survey, SIMULATED_FALLBACK, sample_dir, seed=args.seed)
        return sample_dir, f"{SIMULATED_FALLBACK} simulated {survey.name} curves"
    from lcfm.ingest import ingest

    if not (sample_dir / "report.json").exists():
        ingest(survey, None, sample_dir, progress=args.progress)
    return sample_dir, f"bundled sample of {survey.name}"


def _check_survey(frame, survey, source: str) -> None:
    """The checkpoint is stamped with `--survey` (name and band wavelengths): data of another
    survey would train under the wrong bands and be published as the wrong survey, so it is
    refused. A combined dataset (`lcfm combine`) pretrains under its "+" name
    (`--survey kepler+tess_qlp`)."""
    from lcfm.combined import SEPARATOR, member_names

    found = sorted(frame["survey"].drop_nulls().unique().to_list())
    if not found or found == [survey.name] or found == sorted(member_names(survey.name)):
        return
    if len(found) > 1:
        raise DataError(f"{source}: holds light curves of several surveys ({', '.join(found)});"
                        f" give --survey {SEPARATOR.join(found)} to pretrain on all of them")
    raise DataError(f"{source}: light curves of survey {found[0]!r}, but --survey is "
                    f"{survey.name!r} (give --survey {found[0]}, or data of {survey.name})")


def evaluate_loss(model, loader, accelerator) -> tuple[float, int]:
    """Mean loss over the validation set, weighted by batch size, and the number of light
    curves this rank evaluated: each rank evaluates its own batches (`evaluation_steps`)
    and the sums are added across ranks."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, accelerator.device)
            n = next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
            total[0] += float(model(**batch).loss) * n
            total[1] += n
    model.train()
    local = int(total[1])
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1].clamp(min=1)), local


def pretrain(args: PretrainArgs) -> dict:
    """Run pretraining; returns the metrics written to `output/metrics.json` (its "recipe"
    and "stopped" entries say what was trained and when and why it stopped)."""
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output}: an existing file, not a folder for the "
                          "checkpoint")
    output.mkdir(parents=True, exist_ok=True)
    survey = get_survey(args.survey)
    if args.init is not None:  # one spelling of the folder, for the run record
        args = replace(args, init=Path(args.init).resolve())
    plugin, config_name, model_name, init_config = _resolve_init(args)
    args = replace(args, model=model_name)
    if plugin.pretraining_class is None:
        raise ConfigError(f"model {args.model!r} has no self-supervised objective; "
                          "use `lcfm finetune` for it")
    recipe, overrides = run_recipe("pretrain", args.recipe, plugin, config_name,
                                   {f: getattr(args, a) for a, f in RECIPE_OPTIONS.items()})
    set_seed(args.seed)
    precision = resolve_precision(args.mixed_precision, recipe)
    accelerator = make_accelerator(output, mixed_precision=precision[0],
                                   grad_accum=args.grad_accum, report_to=args.report_to)
    with accelerator.main_process_first():  # rank 0 ingests a bundled sample, once
        # a corpus lcfm builds itself follows the recipe's ingest options (MACHO R only,
        # Astromer 2's moment filter); given --data keeps those it was ingested with
        data_dir, data_source = _prepare_data(args, recipe.survey_plugin(survey))
    index = ShardIndex(data_dir)
    summaries = index.summaries()
    _check_survey(summaries, survey, data_source)
    is_val = validation_rows(summaries, args.validation_fraction, args.seed)
    train_rows, val_rows = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if train_rows.size == 0:
        raise DataError(f"{data_source}: no light curves to train on")
    per_epoch = steps_per_epoch(train_rows.size, recipe.batch_size, args.grad_accum)
    max_steps, patience = recipe.steps(per_epoch)
    if max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
    # the resolved values, read below and recorded with the run
    args = replace(args, max_steps=max_steps, batch_size=int(recipe.batch_size),
                   learning_rate=recipe.learning_rate, weight_decay=recipe.weight_decay,
                   max_grad_norm=recipe.max_grad_norm, warmup_steps=recipe.warmup(max_steps),
                   eval_every=evaluation_interval(recipe, max_steps,
                                                  "eval_every" in overrides),
                   patience=patience,
                   min_steps=recipe.min_steps)

    config = (plugin.make_config(config_name, **args.config_overrides)
              if init_config is None else init_config)
    for key, value in recipe.dropout.items():  # the recipe's rates, unless given
        if key not in args.config_overrides:
            setattr(config, key, value)
    if init_config is not None and getattr(config, "metadata_dim", 0) and not args.metadata:
        raise ConfigError(f"--init {args.init}: the checkpoint reads per-object metadata "
                          f"(metadata_dim={config.metadata_dim}); pretrain with --metadata")
    encoder, extras = None, {}
    if args.metadata:
        encoder = fit_encoder(survey.name, config, summaries[train_rows],
                              fresh_model=init_config is None)
        extras = {metadata_key(config): encoder.encode(summaries).astype(np.float32)}
    band_names = tuple(survey.bands)
    init_info = None
    if init_config is None:
        config = plugin.prepare_config(config, value_sample(index, train_rows, seed=args.seed,
                                                            band_names=band_names))
        model = plugin.pretraining_class(config)
    else:  # the checkpoint's data-derived settings (scales, mixture components) stay: the
        # weights were trained with them
        model, loading = load_pretrained(plugin.pretraining_class, args.init, config=config,
                                         output_loading_info=True)
        init_info = {"folder": str(args.init),
                     "newly_initialised": sorted(loading.get("missing_keys", []))}
    collate_train = plugin.collator(config, task="pretrain", train=True, bands=survey.bands,
                                    seed=args.seed)
    collate_eval = plugin.collator(config, task="pretrain", train=False, bands=survey.bands,
                                   seed=args.seed)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 0:
        raise ConfigError(f"--workers {workers}: must be 0 (collate in this process) or more")
    plan = EpochPlan.for_rows(index, train_rows, args.batch_size, args.seed,
                              bucket=args.length_buckets)
    train_set = StepDataset(index, plan, collate_train, seed=args.seed, band_names=band_names,
                            process_index=accelerator.process_index,
                            num_processes=accelerator.num_processes, extras=extras)
    cadence = Cadence.of(args.max_steps, args.eval_every, args.checkpoint_every)
    scored_rows = validation_subset(val_rows, cadence.validation_limit(args.batch_size)
                                    if args.eval_light_curves is None
                                    else args.eval_light_curves, args.seed)
    val_loader = None
    if scored_rows.size:
        val_plan = evaluation_plan(index, scored_rows, args.batch_size, args.seed)
        val_set = StepDataset(index, val_plan, collate_eval, seed=args.seed,
                              band_names=band_names, extras=extras, seed_key=7)
        val_loader = step_loader(val_set, evaluation_steps(
            val_plan, accelerator.process_index, accelerator.num_processes),
            workers, persistent=True)

    optimizer = build_optimizer(recipe, model.parameters(), learning_rate=recipe.learning_rate)
    scheduler = build_scheduler(recipe, optimizer, max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    selection = Selection("loss", patience, recipe.min_steps, max_steps)
    record = recipe.record(overrides)
    record["run"] = schedule_record(recipe, max_steps, patience, per_epoch, args.grad_accum,
                                    precision)
    record["run"]["eval_every"] = cadence.eval_every

    # the data fingerprint, computed without the sequences in memory
    run = run_record(args, RUN_FIELDS, model_type=config.model_type, data=index.fingerprint(),
                     recipe=recipe)
    state = {"step": 0, "history": [], "validation": [], "best_value": None, "best_step": 0,
             "run": run}
    if args.resume:
        state = load_checkpoint(accelerator, output, run)
    start_tracking(accelerator, args.report_to, "lcfm-pretrain",
                   {**recipe.values(), **record["run"]})

    started = time.perf_counter()
    bar = progress_bar(total=args.max_steps, initial=state["step"],
                       desc=f"pretrain {args.model}", unit="step",
                       enabled=args.progress and accelerator.is_main_process)
    model.train()
    stop = min(args.stop_after or args.max_steps, args.max_steps)
    grad_accum = int(args.grad_accum)
    loader = iter(step_loader(train_set, range(state["step"] * grad_accum, stop * grad_accum),
                              workers))
    seen = torch.zeros(2, dtype=torch.int64, device=accelerator.device)  # train, validation
    saved, stopped, early = state["step"], False, False
    with StopRequest(accelerator) as request:  # Ctrl-C / SIGTERM: checkpoint, then stop
        for step in range(state["step"], stop):
            micro = []
            for _ in range(grad_accum):
                batch = next(loader)
                seen[0] += next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
                with accelerator.accumulate(model):
                    loss = model(**to_device(batch, accelerator.device)).loss
                    optimiser_step(accelerator, model, loss, optimizer, scheduler,
                                   recipe.max_grad_norm)
                micro.append(float(loss.detach()))
            state["step"] = step + 1
            value = float(np.mean(micro))
            state["history"].append({"step": step + 1, "loss": value,
                                     "lr": scheduler.get_last_lr()[0]})
            accelerator.log({"train/loss": value, "train/lr": scheduler.get_last_lr()[0]},
                            step=step + 1)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", epoch=plan.epoch_of(step * grad_accum))
            if val_loader is not None and cadence.evaluates(state["step"]):
                val_loss, seen[1] = evaluate_loss(model, val_loader, accelerator)
                state["validation"].append({"step": state["step"], "loss": val_loss})
                accelerator.log({"validation/loss": val_loss}, step=state["step"])
                bar.set_postfix(loss=f"{value:.4f}", val=f"{val_loss:.4f}")
                selection.update(state, state["step"], val_loss)
                if selection.should_stop(state, state["step"]):
                    early = True
                    break
            if cadence.checkpoints(state["step"]):
                save_checkpoint(accelerator, output, state)
                saved = state["step"]
            if state["step"] < args.max_steps and request.stop():
                stopped = True
                break
    bar.close()
    elapsed = time.perf_counter() - started
    if state["step"] < args.max_steps and not early:  # interrupted: keep the checkpoint
        if saved != state["step"]:
            save_checkpoint(accelerator, output, state)
        if stopped:
            raise KeyboardInterrupt
        return {"steps": state["step"], "interrupted": True}
    stop_tracking(accelerator)
    # pretraining saves the weights it ends with (the validation loss only stops the run)
    state["stopped"] = selection.stopped(state, state["step"], early, kept=state["step"])

    accelerator.wait_for_everyone()
    # light curves each rank trained on in this session and validated in the last evaluation
    per_rank = accelerator.gather(seen.unsqueeze(0)).reshape(-1, 2).tolist()
    metrics = {
        "survey": survey.name,
        "model": args.model,
        "model_type": config.model_type,
        "data": data_source,
        "init": init_info,  # None: weights initialised at random
        "train_light_curves": int(train_rows.size),
        "validation_light_curves": int(val_rows.size),
        "validation_light_curves_scored": int(scored_rows.size),  # per evaluation
        "num_processes": accelerator.num_processes,
        "workers": workers,
        "train_rows_per_rank": [r[0] for r in per_rank],
        "validation_rows_per_rank": [r[1] for r in per_rank],
        "steps": state["step"],
        "first_loss": state["history"][0]["loss"] if state["history"] else None,
        "final_loss": state["history"][-1]["loss"] if state["history"] else None,
        "validation": state["validation"],
        "stopped": state["stopped"],
        "recipe": record,
        "seconds": round(elapsed, 2),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
    }
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.config.lcfm_survey = survey.name
        unwrapped.config.lcfm_bands = {b: float(w) for b, w in survey.bands.items()}
        unwrapped.config.lcfm_folded = is_folded(summaries)  # lcfm.fold.check_folding
        save_model_atomically(unwrapped, output)  # no config.json beside missing weights
        if encoder is not None:
            save_encoder(encoder, survey.name, output)
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (output / "loss_history.json").write_text(json.dumps(state["history"]) + "\n")
        from lcfm.plots import plot_loss_curve

        plot_loss_curve(state["history"], state["validation"], output / "loss.png",
                        title=f"{args.model} on {survey.name}")
    # the model is saved: the checkpoint keeps the training state only (no second copy)
    save_checkpoint(accelerator, output, state, complete=True)
    return metrics


__all__ = ["DEFAULT_MODEL", "PretrainArgs", "evaluate_loss", "pretrain"]
