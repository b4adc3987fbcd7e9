"""Resumable training state: Accelerate's model/optimiser/scheduler/RNG state plus the
step counter and loss history, under `output/checkpoint/`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lcfm.exceptions import DataError

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"


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


def load_checkpoint(accelerator, output: Path) -> dict:
    path = Path(output) / CHECKPOINT_DIR
    if not (path / STATE_FILE).exists():
        raise DataError(f"{path}: no checkpoint to resume from (run without --resume first)")
    accelerator.load_state(str(path))
    return json.loads((path / STATE_FILE).read_text())
