"""Resumable training state: Accelerate's model/optimiser/scheduler/RNG state plus the
step counter and loss history, under `output/checkpoint/`.

A checkpoint also records the run that wrote it (`state["run"]`: model, data fingerprint,
batch size, seed, max steps, learning rates, ...). `--resume` compares that record with the
run it is asked to continue and refuses any difference with one line naming the field and
both values, so two runs are never mixed into one model (issue 9, "checked runs").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import DataError, RunMismatchError

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"
#: FinetuneArgs fields that shape the trained weights; `finetune --resume` refuses a change
FINETUNE_RUN_FIELDS = ("lora", "lora_rank", "freeze_encoder", "samples_per_class", "max_steps",
                       "batch_size", "lr_encoder", "lr_head", "weight_decay",
                       "warmup_fraction", "loss", "balanced", "augment", "seed", "metadata",
                       "test_fraction", "validation_fraction")


def data_fingerprint(frame: pl.DataFrame) -> str:
    """A cheap, stable identity of a dataset: SHA-256 over its rows' object_id, survey,
    label, point count and sums of time and value, in a canonical order. It reads no file
    bytes (the frame is in memory already), ignores shard names and row order (a re-written
    or moved copy of the same data matches), and changes when an object, a label, a point
    or a preprocessing choice changes."""
    summary = pl.DataFrame({
        "object_id": frame["object_id"].cast(pl.Utf8),
        "survey": frame["survey"].cast(pl.Utf8),
        "label": frame["label"].cast(pl.Utf8).fill_null(""),
        "n": frame["time"].list.len().cast(pl.Int64),
        "t": frame["time"].list.sum().cast(pl.Float64),
        "v": frame["value"].list.sum().cast(pl.Float64),
    }).sort(["object_id", "survey", "label", "n", "t", "v"], nulls_last=True)
    digest = hashlib.sha256()
    for column in ("object_id", "survey", "label"):
        digest.update("\0".join(summary[column].to_list()).encode() + b"\1")
    for column in ("n", "t", "v"):
        digest.update(np.ascontiguousarray(summary[column].fill_null(0).to_numpy()).tobytes())
    points = int(summary["n"].sum() or 0)
    return f"{frame.height} light curves, {points} points, sha256 {digest.hexdigest()[:16]}"


def run_record(args, fields: tuple[str, ...], *, model_type: str, frame: pl.DataFrame
               ) -> dict:
    """What identifies a training run: the model (name or absolute folder, model_type,
    config overrides), the data fingerprint and the `fields` of `args` that shape training.
    Stored in every checkpoint; JSON-normalised so it compares equal after a round trip."""
    model = str(args.model)
    if Path(model).exists():  # a checkpoint folder: the same folder however it is spelled
        model = str(Path(model).resolve())
    record = {"model": model, "model_type": model_type,
              "config_overrides": dict(args.config_overrides),
              "data": data_fingerprint(frame)}
    record.update({name: getattr(args, name) for name in fields})
    return json.loads(json.dumps(record, default=str))


def check_run(path: Path, stored: dict | None, requested: dict) -> None:
    """Raise RunMismatchError listing every field whose value differs."""
    if stored is None:
        warnings.warn(f"{path}: checkpoint written before runs were recorded; resuming "
                      "without checking that model, data and settings match", stacklevel=3)
        return
    mismatches = [(name, stored[name], value) for name, value in requested.items()
                  if name in stored and stored[name] != value]
    if mismatches:
        raise RunMismatchError(path, mismatches)


def save_checkpoint(accelerator, output: Path, state: dict) -> Path:
    """Write the checkpoint next to the old one, then swap, so a crash mid-write keeps
    the previous checkpoint usable."""
    final = Path(output) / CHECKPOINT_DIR
    staging = Path(output) / f".{CHECKPOINT_DIR}.tmp"
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging), safe_serialization=True)
    if accelerator.is_main_process:
        (staging / STATE_FILE).write_text(json.dumps(state) + "\n")
        old = Path(output) / f".{CHECKPOINT_DIR}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, output: Path, run: dict | None = None) -> dict:
    """The training state in `output/checkpoint`, with model/optimiser/scheduler/RNG state
    restored into `accelerator`. With `run` (a `run_record`), the stored run must match it
    field for field; that is checked before any tensor is loaded, so a different model is a
    one-line RunMismatchError, not a shape error from `load_state`."""
    path = Path(output) / CHECKPOINT_DIR
    if not (path / STATE_FILE).exists():
        raise DataError(f"{path}: no checkpoint to resume from (run without --resume first)")
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path / STATE_FILE}: unreadable training state ({exc}); "
                        "run again without --resume") from None
    if run is not None:
        check_run(path, state.get("run"), run)
        state["run"] = run
    try:
        accelerator.load_state(str(path))
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        # what is left after the run check: a checkpoint written by an older version, or
        # damaged on disk
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise DataError(f"{path}: checkpoint does not load into this run "
                        f"({type(exc).__name__}: {first[:300]})") from exc
    return state
