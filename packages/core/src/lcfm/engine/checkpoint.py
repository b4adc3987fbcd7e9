"""Resumable training state: Accelerate's model/optimiser/scheduler/RNG state plus the
step counter and loss history, under `output/checkpoint/`.

A checkpoint also records the run that wrote it (`state["run"]`: model, data fingerprint,
batch size, seed, max steps, learning rates, ...). `--resume` compares that record with the
run it is asked to continue and refuses any difference with one line naming the field and
both values, so two runs are never mixed into one model (issue 9, "checked runs").

Bookkeeping stays cheap (issue 10, "Cheap bookkeeping": "evaluation and checkpoint cadence
default to <= 10% of training time ... and a checkpoint keeps only what resume needs"):
`Cadence` evaluates 5 times per pretraining run on a bounded validation subset and
checkpoints at each evaluation (both set with --eval-every / --checkpoint-every);
`StopRequest` turns Ctrl-C or SIGTERM into a checkpoint after the current step; a checkpoint
holds Accelerate's model, optimiser, scheduler and RNG state plus trainer_state.json, and
once the run is complete only trainer_state.json is kept (`save_checkpoint(complete=True)`):
the model is in the output folder, and a finished run has nothing left to resume.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import ConfigError, DataError, RunMismatchError
from lcfm.stream import fingerprint_columns, summary_fingerprint

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"
#: evaluations per pretraining run without --eval-every, the last at the final step
PRETRAIN_EVALUATIONS = 5
#: fine-tuning evaluates more often: early stopping counts evaluations (--patience), and its
#: validation set is a tenth of a labeled set, not a fifth of a corpus
FINETUNE_EVALUATIONS = 10
#: validation light curves per pretraining evaluation: VALIDATION_SHARE of the light curves
#: trained on between two evaluations (never fewer than VALIDATION_FLOOR), so evaluation
#: stays under 10% of training even where reading and collating a light curve costs as much
#: as its training step (small models); a forward pass alone costs about a third of one
VALIDATION_SHARE = 0.05
VALIDATION_FLOOR = 128
#: FinetuneArgs fields that shape the trained weights; `finetune --resume` refuses a change
#: in any, and in the resolved recipe (`run_record(recipe=...)`: optimiser, rates, schedule,
#: loss, selection, early stopping, ...)
FINETUNE_RUN_FIELDS = ("lora", "lora_rank", "freeze_encoder", "samples_per_class", "max_steps",
                       "batch_size", "lr_encoder", "lr_head", "weight_decay", "seed",
                       "metadata", "test_fraction", "validation_fraction", "splits", "fold",
                       "grad_accum", "features")


def data_fingerprint(frame: pl.DataFrame) -> str:
    """A cheap, stable identity of a dataset: SHA-256 over its rows' object_id, survey,
    label, point count and sums of time and value, in a canonical order. It reads no file
    bytes (the frame is in memory already), ignores shard names and row order (a re-written
    or moved copy of the same data matches), and changes when an object, a label, a point
    or a preprocessing choice changes."""
    return summary_fingerprint(frame.select(fingerprint_columns()))


def run_record(args, fields: tuple[str, ...], *, model_type: str, data: str,
               recipe=None) -> dict:
    """What identifies a training run: the model (name or absolute folder, model_type,
    config overrides), the data fingerprint `data` (`data_fingerprint`, or
    `ShardIndex.fingerprint` for streamed data), the `fields` of `args` that shape
    training and the resolved `recipe` (`lcfm.recipes.Recipe`: its name and values).
    Stored in every checkpoint; JSON-normalised so it compares equal after a round trip."""
    model = str(args.model)
    if Path(model).exists():  # a checkpoint folder: the same folder however it is spelled
        model = str(Path(model).resolve())
    record = {"model": model, "model_type": model_type,
              "config_overrides": dict(args.config_overrides),
              "data": data}
    record.update({name: getattr(args, name) for name in fields})
    if recipe is not None:
        # one entry per field, so that a refused resume names the field that changed
        record["recipe"] = recipe.name
        record.update({f"recipe.{k}": v for k, v in recipe.values().items()})
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


@dataclass(frozen=True)
class Cadence:
    """When a training loop evaluates and checkpoints. Both are functions of the step only,
    the same on every rank and in a resumed run (evaluation draws no random numbers from
    the training stream, so the cadence never changes the trained weights)."""

    max_steps: int
    eval_every: int
    checkpoint_every: int

    @classmethod
    def of(cls, max_steps: int, eval_every: int = 0, checkpoint_every: int = 0, *,
           evaluations: int = PRETRAIN_EVALUATIONS) -> Cadence:
        """0 means the default: `evaluations` evaluations per run, a checkpoint at each."""
        for option, value in (("--eval-every", eval_every),
                              ("--checkpoint-every", checkpoint_every)):
            if value < 0:
                raise ConfigError(f"{option} {value}: a number of steps, or 0 for the "
                                  "default")
        eval_every = eval_every or max(1, math.ceil(max_steps / evaluations))
        return cls(max_steps, eval_every, checkpoint_every or eval_every)

    def evaluates(self, step: int) -> bool:
        """Evaluate after `step` steps (always after the last one)."""
        return step % self.eval_every == 0 or step == self.max_steps

    def checkpoints(self, step: int) -> bool:
        """Checkpoint after `step` steps; the end of a run is `save_checkpoint(complete=True)`
        and an interrupted one checkpoints where it stops."""
        return step % self.checkpoint_every == 0 and step < self.max_steps

    def validation_limit(self, batch_size: int) -> int:
        """Validation light curves per evaluation (`validation_subset`)."""
        return max(VALIDATION_FLOOR, math.ceil(VALIDATION_SHARE * self.eval_every * batch_size))


def validation_subset(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of the validation `rows` (sorted, as given), drawn once from `seed`:
    every evaluation scores the same light curves, so the validation curve compares like
    with like, and the cost of an evaluation does not grow with the corpus. `limit` <= 0
    keeps them all."""
    rows = np.asarray(rows)
    if limit <= 0 or rows.size <= limit:
        return rows
    chosen = np.random.default_rng([seed, 0x5EED]).choice(rows.size, limit, replace=False)
    return rows[np.sort(chosen)]


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM while training asks the loop to stop after the step in
    progress, so that it writes a consistent checkpoint instead of dying mid-step; a second
    signal interrupts at once. DataLoader workers forked inside the block inherit the
    handler, so Ctrl-C does not kill them under the main process either. Under several
    processes the ranks agree (any rank asked: all stop at the same step), since a
    checkpoint is written by all of them together."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, accelerator):
        self.accelerator, self.asked, self._previous = accelerator, False, {}

    def _handle(self, signum, frame):
        if self.asked:  # asked twice: stop now
            self.__exit__(None, None, None)
            raise KeyboardInterrupt
        self.asked = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def stop(self) -> bool:
        """Whether to stop now (the same answer on every rank)."""
        if self.accelerator.num_processes == 1:
            return self.asked
        import torch

        flag = torch.tensor([float(self.asked)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)


def save_checkpoint(accelerator, output: Path, state: dict, *, complete: bool = False
                    ) -> Path:
    """Write the checkpoint next to the old one, then swap, so a crash mid-write keeps
    the previous checkpoint usable. With `complete=True` (the run has finished and saved
    its model) only the training state is kept: no second copy of the final weights, no
    optimiser state that nothing can resume from."""
    output = Path(output)
    final = output / CHECKPOINT_DIR
    staging = output / f".{CHECKPOINT_DIR}.tmp"
    old = output / f".{CHECKPOINT_DIR}.old"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and (final / STATE_FILE).exists():  # a save killed after its swap
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    if complete:
        if accelerator.is_main_process:
            staging.mkdir(parents=True)
    else:
        accelerator.save_state(str(staging), safe_serialization=True)
    if accelerator.is_main_process:
        (staging / STATE_FILE).write_text(json.dumps({**state, "complete": complete}) + "\n")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
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
    old = Path(output) / f".{CHECKPOINT_DIR}.old"
    if not (path / STATE_FILE).exists() and (old / STATE_FILE).exists():
        path = old  # a save killed between its two renames: the previous checkpoint
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
    if state.pop("complete", False):
        raise ConfigError(f"{path}: the run is complete ({state.get('step')} steps) and its "
                          f"model is in {Path(output)}; nothing to resume (run without "
                          "--resume, or into another --output, to train again)")
    try:
        accelerator.load_state(str(path))
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        # what is left after the run check: a checkpoint written by an older version, or
        # damaged on disk
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise DataError(f"{path}: checkpoint does not load into this run "
                        f"({type(exc).__name__}: {first[:300]})") from exc
    return state
