"""Supervised fine-tuning (`lcfm finetune`): full, frozen encoder + head, or LoRA (peft),
on one Accelerate loop.

Recipe defaults follow the papers: AdamW with a lower learning rate for the encoder than
for the head and class-weighted cross-entropy w_c = N/N_c (ASTRAFier sect. 5); soft F1 and
focal losses, balanced batches and augmentations (ATCAT sect. 2.1.2, 2.3.2, 2.7); splits
stratified by class and grouped by object; early stopping on validation macro F1;
Astromer 2's few-shot protocol (sect. 5.1) with `samples_per_class` and `folds`.

Training batches are streamed (issue 10, "streaming data path"): splits are made on the
per-row summaries (object_id, label, meta) and give row selections; batches are read row
group by row group and collated in `--workers` DataLoader processes, each Accelerate rank
taking its part of every global batch. Validation and test rows are read as frames (they
are the held-out fraction, not the corpus).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from lcfm.augment import Augmenter
from lcfm.engine import loading
from lcfm.engine.batching import (
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
from lcfm.engine.evaluate import SPLITS_FILE, folder_output, write_splits
from lcfm.engine.metadata import (
    fit_encoder,
    load_encoder,
    metadata_key,
    save_encoder,
    with_metadata,
)
from lcfm.engine.predict import predict_frame
from lcfm.exceptions import ConfigError, DataError
from lcfm.losses import class_weights, classification_loss
from lcfm.metrics import classification_report
from lcfm.splits import few_shot_subset, stratified_object_split
from lcfm.stream import EpochPlan, ShardIndex, read_frame, value_sample
from lcfm.survey_info import survey_context


@dataclass
class FinetuneArgs:
    data: Path
    model: str
    output: Path
    lora: bool = False
    lora_rank: int = 8
    merge_lora: bool = False
    freeze_encoder: bool = False
    samples_per_class: int = 0  # 0: all training data
    folds: int = 1
    max_steps: int = 500
    batch_size: int = 32
    lr_encoder: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    loss: str = "weighted_ce"
    balanced: bool = False
    augment: list[str] = field(default_factory=list)
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    eval_every: int = 0  # 0: ten evaluations per run (--patience counts evaluations)
    checkpoint_every: int = 0  # 0: at every evaluation; also on Ctrl-C/SIGTERM
    patience: int = 5  # evaluations without a better validation macro F1
    seed: int = 0
    resume: bool = False
    metadata: bool = False  # see PretrainArgs.metadata; on by itself after such pretraining
    stop_after: int = 0
    progress: bool = True
    config_overrides: dict = field(default_factory=dict)
    #: DataLoader worker processes collating batches (None: `default_workers()`)
    workers: int | None = None
    #: length-aware batching (see PretrainArgs.length_buckets)
    length_buckets: bool = True


class _Collate:
    """Augment rows, then collate them; both draw from one re-seedable generator."""

    def __init__(self, collate, augmenter: Augmenter | None):
        self.collate, self.augmenter = collate, augmenter

    @property
    def rng(self):
        return getattr(self.collate, "rng", None)

    @rng.setter
    def rng(self, value):
        if hasattr(self.collate, "rng"):
            self.collate.rng = value
        if self.augmenter is not None:
            self.augmenter.rng = np.random.default_rng(value.integers(2**63))

    def __call__(self, rows):
        if self.augmenter is not None:
            rows = [self.augmenter(r) for r in rows]
        return self.collate(rows)


def _splits(frame: pl.DataFrame, args: FinetuneArgs) -> dict[str, pl.DataFrame]:
    test = args.test_fraction
    val = args.validation_fraction * (1 - test)
    parts = stratified_object_split(frame, {"train": 1 - test - val, "validation": val,
                                            "test": test}, args.seed)
    if parts["train"].height == 0:
        raise DataError(f"{args.data}: no labeled light curves left for training")
    return parts


def finetune(args: FinetuneArgs) -> dict:
    """Fine-tune (one run, or `folds` few-shot runs); returns the summary written to
    `output/metrics.json`."""
    folder_output(args.output)
    index = ShardIndex(args.data)
    parts = _splits(index.summaries(), args)
    if args.samples_per_class <= 0 and args.folds == 1:
        return _train_one(args, index, parts, Path(args.output))
    results = []
    for fold in range(args.folds):
        train = (few_shot_subset(parts["train"], args.samples_per_class, fold, args.seed)
                 if args.samples_per_class > 0 else parts["train"])
        results.append(_train_one(args, index, {**parts, "train": train},
                                  Path(args.output) / f"fold-{fold}"))
    f1 = np.array([r["test"]["macro_f1"] if r.get("test") else np.nan for r in results])
    summary = {"samples_per_class": args.samples_per_class, "folds": args.folds,
               "test_macro_f1_mean": float(f1.mean()), "test_macro_f1_std": float(f1.std()),
               "test_macro_f1": f1.tolist(), "runs": results}
    (Path(args.output) / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


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


def _train_one(args: FinetuneArgs, index: ShardIndex, parts: dict, output: Path) -> dict:
    """One fine-tuning run; `parts` are the summaries (with global `row`) of each split."""
    output.mkdir(parents=True, exist_ok=True)
    sample = value_sample(index, _rows(parts["train"]), seed=args.seed)
    # survey_context reads bands from the data only when the survey is not installed
    survey_name, bands, taxonomy = survey_context(parts["train"].with_columns(
        band=pl.lit(list(sample.band_names), dtype=pl.List(pl.String))))
    present = set(parts["train"]["label"].unique().to_list())
    class_names = [c for c in taxonomy if c in present] + sorted(present - set(taxonomy))
    if len(class_names) < 2:
        raise DataError(f"{args.data}: training needs at least two classes, found "
                        f"{class_names}")
    plugin, config, checkpoint = loading.resolve(args.model, args.config_overrides)
    encoder = load_encoder(checkpoint) if checkpoint is not None else None
    if encoder is None and args.metadata:
        encoder = fit_encoder(survey_name, config, parts["train"], checkpoint is None)
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
    if args.freeze_encoder:
        loading.freeze_encoder(model, plugin.trainable_when_frozen)
    base_parameters = loading.count_parameters(model)
    if args.lora:
        model = loading.apply_lora(model, rank=args.lora_rank)
    val_part = parts["validation"] if parts["validation"].height else parts["train"]
    val_part = val_part.filter(pl.col("label").is_in(class_names))
    if val_part.height == 0:  # validation holds only classes absent from training
        val_part = parts["train"]
    val_frame = frame_of(val_part)
    counts = np.bincount([label2id[x] for x in parts["train"]["label"]],
                         minlength=len(class_names))
    weights = class_weights(counts)

    model_config = model.config  # `model` becomes a DistributedDataParallel wrapper on ranks

    def collator(train: bool):
        # evaluation passes need no labels (predict_frame scores them against `_ids`)
        return plugin.collator(model_config, task="classify", train=train, bands=bands,
                               label2id=label2id if train else None, seed=args.seed)

    collate = _Collate(collator(True), Augmenter(args.augment, args.seed) if args.augment
                       else None)
    accelerator = Accelerator()
    workers = default_workers() if args.workers is None else args.workers
    if workers < 0:
        raise ConfigError(f"--workers {workers}: must be 0 (collate in this process) or more")
    train_rows = _rows(parts["train"])
    plan = (BalancedPlan(train_rows, parts["train"]["label"].to_list(), args.batch_size,
                         args.seed) if args.balanced else
            EpochPlan.for_rows(index, train_rows, args.batch_size, args.seed,
                               bucket=args.length_buckets))
    train_set = StepDataset(index, plan, collate, seed=args.seed, band_names=sample.band_names,
                            process_index=accelerator.process_index,
                            num_processes=accelerator.num_processes, extras=extras)
    groups = loading.parameter_groups(model.base_model if args.lora else model,
                                      args.lr_encoder, args.lr_head, args.weight_decay)
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.95), eps=1e-8)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(args.warmup_fraction * args.max_steps), args.max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    cadence = Cadence.of(args.max_steps, args.eval_every, args.checkpoint_every,
                         evaluations=FINETUNE_EVALUATIONS)
    state = {"step": 0, "history": [], "validation": [], "best_f1": -1.0, "best_step": 0,
             "stale": 0, "run": run_record(
                 args, FINETUNE_RUN_FIELDS, model_type=config.model_type,
                 # the fingerprint of the run's rows, without their sequences in memory
                 data=index.fingerprint(np.concatenate([_rows(p) for p in parts.values()])))}
    if args.resume:  # refuses a checkpoint of another model, data or settings, in one line
        state = load_checkpoint(accelerator, output, state["run"])
    best_dir = output / "best"
    stop = min(args.stop_after or args.max_steps, args.max_steps)
    bar = tqdm(total=args.max_steps, initial=state["step"], unit="step",
               desc=f"finetune {plugin.name}",
               disable=None if args.progress else True)  # None: only on a terminal
    model.train()
    loader = step_loader(train_set, range(state["step"], stop), workers)
    saved, stopped = state["step"], False
    with StopRequest(accelerator) as request:  # Ctrl-C / SIGTERM: checkpoint, then stop
        for step, batch in zip(range(state["step"], stop), loader, strict=True):
            batch = to_device(batch, accelerator.device)
            labels = batch.pop("labels")
            logits = model(**batch).logits[:, :len(class_names)]
            loss = classification_loss(args.loss, logits, labels, weights)
            optimiser_step(accelerator, model, loss, optimizer, scheduler, args.max_grad_norm)
            state["step"] = step + 1
            state["history"].append({"step": step + 1, "loss": float(loss.detach())})
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}",
                            best_f1=f"{state['best_f1']:.3f}")
            if cadence.evaluates(state["step"]):
                probs, state["validation_rows_per_rank"] = _validation_probs(
                    accelerator, accelerator.unwrap_model(model), plugin, val_frame,
                    collator(False), len(class_names), args.batch_size)
                f1 = classification_report(_ids(val_frame, label2id), probs,
                                           class_names)["macro_f1"]
                state["validation"].append({"step": state["step"], "macro_f1": f1})
                if f1 > state["best_f1"]:
                    state.update(best_f1=f1, best_step=state["step"], stale=0)
                    if accelerator.is_main_process:  # one writer of the shared folder
                        accelerator.unwrap_model(model).save_pretrained(best_dir)
                    accelerator.wait_for_everyone()
                else:
                    state["stale"] += 1
                model.train()
                if state["stale"] >= args.patience:
                    break
            if cadence.checkpoints(state["step"]):
                save_checkpoint(accelerator, output, state)
                saved = state["step"]
            if state["step"] < args.max_steps and request.stop():
                stopped = True
                break
    bar.close()
    if (args.stop_after or stopped) and state["step"] < args.max_steps \
            and state["stale"] < args.patience:
        if saved != state["step"]:
            save_checkpoint(accelerator, output, state)
        if stopped:
            raise KeyboardInterrupt
        return {"steps": state["step"], "interrupted": True}
    if encoder is not None:
        save_encoder(encoder, survey_name, output)
    summary = {"steps": state["step"], "process_index": accelerator.process_index}
    if accelerator.is_main_process:  # one process writes the model and its reports
        summary = _finish(args, accelerator.unwrap_model(model), plugin, parts, class_names,
                          label2id, state, output, best_dir, base_parameters, survey_name,
                          frame_of, num_processes=accelerator.num_processes, workers=workers)
    accelerator.wait_for_everyone()
    # the model is saved: the checkpoint keeps the training state only (no second copy)
    save_checkpoint(accelerator, output, state, complete=True)
    return summary


def _validation_probs(accelerator, model, plugin, frame: pl.DataFrame, collate,
                      n_classes: int, batch_size: int) -> tuple[np.ndarray, list[int]]:
    """Validation probabilities, (rows, classes), and the number of rows each rank scored.
    Rank r scores rows r, r + n, ... of the validation frame and the pieces are gathered to
    every rank, so each rank does 1/n of the work and all ranks take the same early-stopping
    decision."""
    n, rank = accelerator.num_processes, accelerator.process_index
    rows = np.arange(frame.height)[rank::n]
    share = frame.with_row_index("_row").filter(pl.col("_row") % n == rank).drop("_row")
    probs = (predict_frame(model, plugin, share, collate, n_classes, batch_size).probs
             if share.height else np.zeros((0, n_classes), np.float32))
    if n == 1:
        return probs, [int(rows.size)]
    from accelerate.utils import gather_object

    gathered, per_rank = np.zeros((frame.height, n_classes), np.float32), []
    for indices, piece in gather_object([(rows, probs)]):  # in rank order
        gathered[indices] = piece
        per_rank.append(int(indices.size))
    return gathered, per_rank


def _ids(frame: pl.DataFrame, label2id: dict) -> np.ndarray:
    return np.array([label2id.get(x, -1) for x in frame["label"]])


def _finish(args, model, plugin, parts, class_names, label2id, state, output, best_dir,
            base_parameters, survey_name, frame_of, *, num_processes: int = 1,
            workers: int = 0) -> dict:
    from lcfm.engine.save import save_classifier

    model = save_classifier(model, output, best_dir, lora=args.lora, merge=args.merge_lora,
                            survey=survey_name)
    # every model folder of the run records its objects, so that `lcfm evaluate` scores
    # held-out objects only (issue 9, "Held-out evaluation")
    for folder in (output, output / "base", output / "merged"):
        if (folder / "config.json").exists() or folder == output:
            write_splits(folder, parts)
    collate = plugin.collator(model.config, task="classify", train=False,
                              bands=model.config.lcfm_bands, label2id=None, seed=args.seed)
    test = parts["test"].filter(pl.col("label").is_in(class_names))
    report = None
    if test.height:
        test = frame_of(test)
        probs = predict_frame(model, plugin, test, collate, len(class_names),
                              args.batch_size).probs
        report = classification_report(_ids(test, label2id), probs, class_names)
    summary = {
        "model": args.model, "plugin": plugin.name, "survey": survey_name,
        "classes": class_names, "steps": state["step"], "best_step": state["best_step"],
        "best_validation_macro_f1": state["best_f1"], "validation": state["validation"],
        "train_light_curves": parts["train"].height,
        "validation_light_curves": parts["validation"].height,
        "test_light_curves": test.height,
        **{f"{name}_objects": part["object_id"].n_unique() for name, part in parts.items()},
        "splits": SPLITS_FILE,
        "parameters": base_parameters,
        "num_processes": num_processes,
        "validation_rows_per_rank": state.get("validation_rows_per_rank"),
        "workers": workers,
        "test": {k: report[k] for k in ("accuracy", "macro_f1", "class_balanced_f1", "ece")}
        if report else None,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
    }
    (output / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output / "loss_history.json").write_text(json.dumps(state["history"]) + "\n")
    if test.height:
        test.write_parquet(output / "test_split.parquet")
    return summary


__all__ = ["FinetuneArgs", "finetune", "finetune_parts"]
