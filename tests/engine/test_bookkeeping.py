"""Cheap bookkeeping (issue 10, item 6): evaluation and checkpoint cadence default to a few
per run and are set with --eval-every / --checkpoint-every; evaluation scores a bounded,
fixed validation subset; a checkpoint keeps only what resume needs (and only the training
state once the run is complete, the model being in the output folder); Ctrl-C checkpoints
the step in progress and the resumed run is bit-identical; a save killed between its two
renames leaves a checkpoint that resumes."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal

import numpy as np
import pytest
from lcfm.engine import PretrainArgs, pretrain
from lcfm.engine.checkpoint import (
    CHECKPOINT_DIR,
    STATE_FILE,
    VALIDATION_FLOOR,
    Cadence,
    validation_subset,
)
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.exceptions import ConfigError
from lcfm.registry import get_model, model_names

#: what `accelerate.save_state` writes for one process with model, optimiser and scheduler
RESUME_FILES = {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl",
                STATE_FILE}
PRETRAINABLE = [m for m in model_names() if get_model(m).pretraining_class is not None]


def tiny(name: str) -> dict:
    return {k: v for k, v in get_model(name).tiny.items() if k != "classifier_hidden_sizes"}


def pretrain_args(data, output, model="astromer", **kw) -> PretrainArgs:
    plugin = get_model(model)
    base = dict(survey="macho", data=data, output=output, max_steps=10, batch_size=8,
                learning_rate=3e-3, progress=False, workers=0,
                model=plugin.default_configuration, config_overrides=tiny(model))
    return PretrainArgs(**{**base, **kw})


def history(output) -> list[float]:
    return [h["loss"] for h in json.loads((output / "loss_history.json").read_text())]


# ---- cadence ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("max_steps", "evaluated"), [
    (200, [40, 80, 120, 160, 200]), (10, [2, 4, 6, 8, 10]), (7, [2, 4, 6, 7]), (1, [1])])
def test_default_cadence_is_five_evaluations_with_a_checkpoint_at_each(max_steps, evaluated):
    cadence = Cadence.of(max_steps)
    steps = range(1, max_steps + 1)
    assert [s for s in steps if cadence.evaluates(s)] == evaluated
    # the end of the run saves the model and a "complete" record instead
    assert [s for s in steps if cadence.checkpoints(s)] == [s for s in evaluated
                                                             if s < max_steps]


def test_cadence_options():
    cadence = Cadence.of(100, eval_every=30, checkpoint_every=7)
    assert [s for s in range(1, 101) if cadence.evaluates(s)] == [30, 60, 90, 100]
    assert [s for s in range(1, 101) if cadence.checkpoints(s)][:3] == [7, 14, 21]
    assert Cadence.of(100, evaluations=10).eval_every == 10  # fine-tuning's default
    for option in ("eval_every", "checkpoint_every"):
        with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')} -1"):
            Cadence.of(100, **{option: -1})


def test_validation_subset_is_bounded_fixed_and_sorted():
    rows = np.arange(5, 5005, 3)
    limit = Cadence.of(200).validation_limit(32)
    assert limit == max(VALIDATION_FLOOR, 64) == 128  # 5% of 40 steps x 32 light curves
    assert Cadence.of(10_000).validation_limit(32) == 3200  # grows with the training done
    subset = validation_subset(rows, limit, seed=0)
    assert subset.size == limit and np.all(np.diff(subset) > 0) and np.isin(subset, rows).all()
    assert np.array_equal(subset, validation_subset(rows, limit, seed=0))
    assert not np.array_equal(subset, validation_subset(rows, limit, seed=1))
    # spread over the whole validation set, not its first shards
    assert subset.min() < rows[rows.size // 10] and subset.max() > rows[-rows.size // 10]
    assert np.array_equal(validation_subset(rows, 0, seed=0), rows)
    assert np.array_equal(validation_subset(rows[:10], limit, seed=0), rows[:10])


# ---- what a checkpoint holds -------------------------------------------------------------

@pytest.mark.parametrize("model", PRETRAINABLE)
def test_checkpoint_holds_what_resume_needs_and_the_model_is_saved_once(model, labeled_dir,
                                                                       tmp_path):
    out = tmp_path / model
    assert pretrain(pretrain_args(labeled_dir, out, model, max_steps=4, stop_after=2)) == \
        {"steps": 2, "interrupted": True}
    assert {p.name for p in (out / CHECKPOINT_DIR).iterdir()} == RESUME_FILES
    metrics = pretrain(pretrain_args(labeled_dir, out, model, max_steps=4, resume=True))
    assert metrics["steps"] == 4
    # complete: the weights are in the output folder only, the checkpoint is the record
    assert [p.name for p in (out / CHECKPOINT_DIR).iterdir()] == [STATE_FILE]
    state = json.loads((out / CHECKPOINT_DIR / STATE_FILE).read_text())
    assert state["complete"] is True and state["step"] == 4 and state["run"]["max_steps"] == 4
    weights = [p.relative_to(out) for p in out.rglob("*.safetensors")]
    assert [str(p) for p in weights] == ["model.safetensors"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no .old, no .tmp
    # a finished run has nothing to resume: one line, nothing overwritten
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="the run is complete") as info:
        pretrain(pretrain_args(labeled_dir, out, model, max_steps=4, resume=True))
    assert "\n" not in str(info.value)
    assert (out / "model.safetensors").read_bytes() == before


def test_default_run_evaluates_a_bounded_subset_five_times(labeled_dir, tmp_path):
    metrics = pretrain(pretrain_args(labeled_dir, tmp_path / "run"))
    assert [v["step"] for v in metrics["validation"]] == [2, 4, 6, 8, 10]
    assert metrics["validation_light_curves_scored"] == metrics["validation_light_curves"] > 0
    bounded = pretrain(pretrain_args(labeled_dir, tmp_path / "bounded", eval_every=1,
                                     eval_light_curves=3))
    assert bounded["validation_light_curves_scored"] == 3 < bounded["validation_light_curves"]
    assert len(bounded["validation"]) == 10
    # the training itself does not depend on how often or on what it is evaluated
    assert history(tmp_path / "bounded") == history(tmp_path / "run")


def test_finetune_checkpoint_cadence_and_complete_record(labeled_dir, tmp_path):
    base = dict(data=labeled_dir, model="astromer-v2", max_steps=6, batch_size=8,
                progress=False, patience=100, workers=0,
                config_overrides=dict(get_model("astromer").tiny))
    out = tmp_path / "ft"
    assert finetune(FinetuneArgs(**base, output=out, stop_after=3, eval_every=2,
                                 checkpoint_every=3))["interrupted"]
    assert json.loads((out / CHECKPOINT_DIR / STATE_FILE).read_text())["step"] == 3
    summary = finetune(FinetuneArgs(**base, output=out, eval_every=2, checkpoint_every=3,
                                    resume=True))
    assert [v["step"] for v in summary["validation"]] == [2, 4, 6]
    assert [p.name for p in (out / CHECKPOINT_DIR).iterdir()] == [STATE_FILE]
    assert not (out / "best").exists()
    assert [str(p.relative_to(out)) for p in out.rglob("*.safetensors")] == \
        ["model.safetensors"]


# ---- interrupted saves and Ctrl-C ----------------------------------------------------------

def test_a_save_killed_between_its_renames_still_resumes(labeled_dir, tmp_path):
    whole = tmp_path / "whole"
    pretrain(pretrain_args(labeled_dir, whole))
    out = tmp_path / "run"
    pretrain(pretrain_args(labeled_dir, out, stop_after=4))
    # the old checkpoint renamed away, the new one not yet in place: resume from the old
    os.replace(out / CHECKPOINT_DIR, out / f".{CHECKPOINT_DIR}.old")
    (out / f".{CHECKPOINT_DIR}.tmp").mkdir()  # a half-written new one
    pretrain(pretrain_args(labeled_dir, out, resume=True))
    assert history(out) == history(whole)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_a_stale_old_checkpoint_does_not_block_saving(labeled_dir, tmp_path):
    out = tmp_path / "run"
    pretrain(pretrain_args(labeled_dir, out, stop_after=2))
    stale = out / f".{CHECKPOINT_DIR}.old"
    shutil.copytree(out / CHECKPOINT_DIR, stale)  # a save killed after its swap
    assert pretrain(pretrain_args(labeled_dir, out, stop_after=4, resume=True))["steps"] == 4
    assert not stale.exists()
    assert json.loads((out / CHECKPOINT_DIR / STATE_FILE).read_text())["step"] == 4


def test_ctrl_c_checkpoints_the_step_in_progress_and_resume_is_bit_identical(
        labeled_dir, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    pretrain(pretrain_args(labeled_dir, whole, checkpoint_every=100))
    module = importlib.import_module("lcfm.engine.pretrain")
    step_once = module.optimiser_step
    calls = []

    def interrupted_step(*args, **kwargs):
        step_once(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C arrives during the third step
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(module, "optimiser_step", interrupted_step)
    out = tmp_path / "run"
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        pretrain(pretrain_args(labeled_dir, out, checkpoint_every=100))
    assert signal.getsignal(signal.SIGINT) is handler  # restored after the run
    state = json.loads((out / CHECKPOINT_DIR / STATE_FILE).read_text())
    assert state["step"] == 3 and not state["complete"]
    assert {p.name for p in (out / CHECKPOINT_DIR).iterdir()} == RESUME_FILES
    monkeypatch.setattr(module, "optimiser_step", step_once)
    pretrain(pretrain_args(labeled_dir, out, checkpoint_every=100, resume=True))
    assert history(out) == history(whole)  # exact floats
