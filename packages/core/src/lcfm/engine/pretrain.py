"""Self-supervised pretraining (`lcfm pretrain`) on one Accelerate loop.

Any model plugin with a `pretraining_class` trains on any survey: the survey gives the
data (its bundled sample by default) and band wavelengths, the plugin gives the model and
the collator. Optimiser: AdamW with linear warm-up then cosine decay, gradient clipping,
seeded and resumable (`batching.StepBatches`).

Runs are checked (issue 9, "checked runs"): the data must be of the `--survey` the checkpoint
is stamped with, and `--resume` continues only the run the checkpoint records (same model,
data fingerprint, batch size, seed, max steps, learning rate; `checkpoint.run_record`).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from lcfm.data import LightCurveDataset, split_by_object
from lcfm.engine.batching import StepBatches, evaluation_batches, optimiser_step, to_device
from lcfm.engine.checkpoint import load_checkpoint, run_record, save_checkpoint
from lcfm.engine.metadata import fit_encoder, save_encoder, with_metadata
from lcfm.engine.save import save_model_atomically
from lcfm.exceptions import ConfigError, DataError
from lcfm.registry import find_model_configuration, get_survey
from lcfm.shards import read_shards

SIMULATED_FALLBACK = 512
#: PretrainArgs fields that shape the trained weights; `--resume` refuses a change in any
RUN_FIELDS = ("survey", "metadata", "batch_size", "seed", "max_steps", "learning_rate",
              "weight_decay", "warmup_fraction", "validation_fraction")


@dataclass
class PretrainArgs:
    survey: str
    output: Path
    data: Path | None = None
    model: str = "astromer-v2"
    max_steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 0
    validation_fraction: float = 0.2
    eval_every: int = 0  # 0: ten evaluations per run
    checkpoint_every: int = 0  # 0: at every evaluation
    resume: bool = False
    #: give the model each object's encoded metadata (models with a metadata token)
    metadata: bool = False
    #: stop (with a checkpoint) after this global step, keeping the schedule of max_steps:
    #: trains a long run in chunks, and is how tests interrupt a run
    stop_after: int = 0
    progress: bool = True
    config_overrides: dict = field(default_factory=dict)


def _prepare_data(args: PretrainArgs, survey):
    """The canonical frame: given shards, or the survey's bundled sample ingested once;
    a survey that may ship no real sample (ATLAS) pretrains on its simulator instead."""
    if args.data is not None:
        return read_shards(args.data), str(args.data)
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
        return read_shards(sample_dir), f"{SIMULATED_FALLBACK} simulated {survey.name} curves"
    from lcfm.ingest import ingest

    if not (sample_dir / "report.json").exists():
        ingest(survey, None, sample_dir, progress=args.progress)
    return read_shards(sample_dir), f"bundled sample of {survey.name}"


def _check_survey(frame, survey, source: str) -> None:
    """The checkpoint is stamped with `--survey` (name and band wavelengths): data of another
    survey, or of several, would train under the wrong bands and be published as the wrong
    survey, so it is refused."""
    found = sorted(frame["survey"].drop_nulls().unique().to_list())
    if not found or found == [survey.name]:
        return
    if len(found) > 1:
        raise DataError(f"{source}: holds light curves of several surveys ({', '.join(found)});"
                        f" pretrain on one survey at a time (--survey {survey.name})")
    raise DataError(f"{source}: light curves of survey {found[0]!r}, but --survey is "
                    f"{survey.name!r} (give --survey {found[0]}, or data of {survey.name})")


def evaluate_loss(model, dataset, collate, batch_size, device, seed) -> float:
    """Mean loss over a dataset, weighted by batch size."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in evaluation_batches(dataset, batch_size, collate, seed):
            batch = to_device(batch, device)
            n = next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
            total += float(model(**batch).loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def pretrain(args: PretrainArgs) -> dict:
    """Run pretraining; returns the metrics written to `output/metrics.json`."""
    if args.max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {args.max_steps}")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output}: an existing file, not a folder for the "
                          "checkpoint")
    output.mkdir(parents=True, exist_ok=True)
    survey = get_survey(args.survey)
    plugin, config_name = find_model_configuration(args.model)
    if plugin.pretraining_class is None:
        raise ConfigError(f"model {args.model!r} has no self-supervised objective; "
                          "use `lcfm finetune` for it")
    frame, data_source = _prepare_data(args, survey)
    _check_survey(frame, survey, data_source)
    train_frame, val_frame = split_by_object(frame, args.validation_fraction, args.seed)
    if train_frame.height == 0:
        raise DataError(f"{data_source}: no light curves to train on")

    set_seed(args.seed)
    accelerator = Accelerator()
    config = plugin.make_config(config_name, **args.config_overrides)
    encoder = None
    if args.metadata:
        encoder = fit_encoder(survey.name, config, train_frame, fresh_model=True)
        train_frame = with_metadata(train_frame, encoder, config)
        val_frame = with_metadata(val_frame, encoder, config)
    train_set = LightCurveDataset(train_frame)
    config = plugin.prepare_config(config, train_set)
    model = plugin.pretraining_class(config)
    collate_train = plugin.collator(config, task="pretrain", train=True, bands=survey.bands,
                                    seed=args.seed)
    collate_eval = plugin.collator(config, task="pretrain", train=False, bands=survey.bands,
                                   seed=args.seed)
    val_set = LightCurveDataset(val_frame) if val_frame.height else None
    batches = StepBatches(train_set, args.batch_size, collate_train, seed=args.seed,
                          process_index=accelerator.process_index,
                          num_processes=accelerator.num_processes)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    warmup = int(args.warmup_fraction * args.max_steps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, args.max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    eval_every = args.eval_every or max(1, math.ceil(args.max_steps / 10))
    checkpoint_every = args.checkpoint_every or eval_every
    run = run_record(args, RUN_FIELDS, model_type=config.model_type, frame=frame)
    state = {"step": 0, "history": [], "validation": [], "run": run}
    if args.resume:
        state = load_checkpoint(accelerator, output, run)

    started = time.perf_counter()
    bar = tqdm(total=args.max_steps, initial=state["step"], desc=f"pretrain {args.model}",
               unit="step",
               disable=None if args.progress and accelerator.is_main_process else True)
    model.train()
    stop = min(args.stop_after or args.max_steps, args.max_steps)
    for step, batch in batches.iterate(state["step"], stop):
        loss = model(**to_device(batch, accelerator.device)).loss
        optimiser_step(accelerator, model, loss, optimizer, scheduler, args.max_grad_norm)
        state["step"] = step + 1
        state["history"].append({"step": step + 1, "loss": float(loss.detach()),
                                 "lr": scheduler.get_last_lr()[0]})
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}", epoch=batches.epoch_of(step))
        done = state["step"] == args.max_steps
        if val_set is not None and (state["step"] % eval_every == 0 or done):
            val_loss = evaluate_loss(model, val_set, collate_eval, args.batch_size,
                                     accelerator.device, args.seed)
            state["validation"].append({"step": state["step"], "loss": val_loss})
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", val=f"{val_loss:.4f}")
        if state["step"] % checkpoint_every == 0 and not done:
            save_checkpoint(accelerator, output, state)
    bar.close()
    elapsed = time.perf_counter() - started
    if state["step"] < args.max_steps:  # interrupted on purpose: keep only the checkpoint
        save_checkpoint(accelerator, output, state)
        return {"steps": state["step"], "interrupted": True}

    save_checkpoint(accelerator, output, state)
    accelerator.wait_for_everyone()
    metrics = {
        "survey": survey.name,
        "model": args.model,
        "model_type": config.model_type,
        "data": data_source,
        "train_light_curves": train_frame.height,
        "validation_light_curves": val_frame.height,
        "steps": state["step"],
        "first_loss": state["history"][0]["loss"] if state["history"] else None,
        "final_loss": state["history"][-1]["loss"] if state["history"] else None,
        "validation": state["validation"],
        "seconds": round(elapsed, 2),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
    }
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.config.lcfm_survey = survey.name
        unwrapped.config.lcfm_bands = {b: float(w) for b, w in survey.bands.items()}
        save_model_atomically(unwrapped, output)  # no config.json beside missing weights
        if encoder is not None:
            save_encoder(encoder, survey.name, output)
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (output / "loss_history.json").write_text(json.dumps(state["history"]) + "\n")
        from lcfm.plots import plot_loss_curve

        plot_loss_curve(state["history"], state["validation"], output / "loss.png",
                        title=f"{args.model} on {survey.name}")
    return metrics
