"""Training across processes (issue 10, items 1-4): a run killed with SIGKILL and resumed
gives the losses of an uninterrupted run with DataLoader workers and length buckets on, and
`accelerate launch` with two gloo ranks really trains on two ranks, each on its own part of
every batch and of the validation set."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from lcfm.data import validation_rows
from lcfm.engine import PretrainArgs, pretrain
from lcfm.registry import get_model
from lcfm.stream import EpochPlan, ShardIndex

TINY = {k: v for k, v in get_model("astromer").tiny.items() if k != "classifier_hidden_sizes"}
STEPS, BATCH = 30, 8


def pretrain_args(data, output, **kw):
    return PretrainArgs(survey="macho", data=data, output=output, max_steps=STEPS,
                        batch_size=BATCH, learning_rate=3e-3, progress=False,
                        config_overrides=dict(TINY), eval_every=5, checkpoint_every=5, **kw)


def losses(output):
    return [h["loss"] for h in json.loads((output / "loss_history.json").read_text())]


def test_resume_after_kill_9_is_bit_identical_with_workers_and_buckets(labeled_dir, tmp_path):
    whole = tmp_path / "whole"
    metrics = pretrain(pretrain_args(labeled_dir, whole, workers=0))
    assert metrics["steps"] == STEPS and metrics["workers"] == 0

    killed = tmp_path / "killed"
    code = ("import sys; from lcfm.engine import pretrain\n"
            "from test_multiprocess_training import pretrain_args\n"
            f"pretrain(pretrain_args({str(labeled_dir)!r}, __import__('pathlib').Path("
            f"{str(killed)!r}), workers=2))\n")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(__file__)}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = killed / "checkpoint" / "trainer_state.json"
    deadline = time.monotonic() + 600
    step = 0
    while time.monotonic() < deadline and process.poll() is None:
        if state.exists():
            try:
                step = json.loads(state.read_text())["step"]
            except (json.JSONDecodeError, OSError):  # replaced while read
                step = 0
            # between two saves: a kill inside `save_checkpoint` (its `.checkpoint.old`
            # still being removed) is another matter, left out of this test
            if step >= 10 and not any((killed / n).exists()
                                      for n in (".checkpoint.old", ".checkpoint.tmp")):
                break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    os.killpg(process.pid, signal.SIGKILL)  # the run and its DataLoader workers, mid-run
    process.wait()
    assert not (killed / "metrics.json").exists() and 10 <= step < STEPS

    metrics = pretrain(pretrain_args(labeled_dir, killed, workers=2, resume=True))
    assert metrics["steps"] == STEPS and metrics["workers"] == 2
    assert losses(killed) == losses(whole)  # exact floats: same batches, same random state
    assert metrics["validation"] == json.loads((whole / "metrics.json").read_text())[
        "validation"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None,
                    reason="accelerate's launcher is not installed")
def test_two_gloo_ranks_split_batches_and_validation(labeled_dir, tmp_path):
    out = tmp_path / "ranks"
    command = [os.path.join(os.path.dirname(sys.executable), "accelerate"), "launch",
               "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               "-m", "lcfm_cli", "pretrain", "--survey", "macho", "--data", str(labeled_dir),
               "--output", str(out), "--max-steps", "6", "--batch-size", str(BATCH),
               "--workers", "1", *[a for k, v in TINY.items() for a in ("--config", f"{k}={v}")]]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2
    # each rank trained on its half of every global batch, not on the whole batch
    index = ShardIndex(labeled_dir)
    train = np.flatnonzero(~validation_rows(index.summaries(), 0.2, 0))
    plan = EpochPlan.for_rows(index, train, BATCH, 0)
    sizes = [plan.batch_rows(s).size for s in range(6)]
    assert metrics["train_rows_per_rank"] == [sum((n + 1) // 2 for n in sizes),
                                              sum(n // 2 for n in sizes)]
    # and validated its own batches: together the scored validation rows exactly once
    val = metrics["validation_rows_per_rank"]
    assert sum(val) == metrics["validation_light_curves_scored"] and min(val) > 0


@pytest.mark.skipif(shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None,
                    reason="accelerate's launcher is not installed")
def test_two_gloo_ranks_finetune_share_validation(labeled_dir, tmp_path):
    """finetune on two ranks: each rank scores its half of the validation rows, the pieces
    are gathered, and the run writes one model with held-out test metrics."""
    out = tmp_path / "ft"
    command = [os.path.join(os.path.dirname(sys.executable), "accelerate"), "launch",
               "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               "-m", "lcfm_cli", "finetune", "--data", str(labeled_dir), "--model",
               "astromer-v2", "--output", str(out), "--max-steps", "4", "--batch-size",
               str(BATCH), "--eval-every", "2",
               *[a for k, v in TINY.items() for a in ("--config", f"{k}={v}")]]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2
    per_rank = metrics["validation_rows_per_rank"]
    assert len(per_rank) == 2 and min(per_rank) > 0
    assert sum(per_rank) == metrics["validation_light_curves"]
    assert [v["step"] for v in metrics["validation"]] == [2, 4]
    assert metrics["test"] is not None and (out / "model.safetensors").exists()
