"""End-to-end pretraining on the bundled MACHO sample with a tiny Astromer."""

import json
import os
import subprocess
import sys

import pytest
import torch
from lcfm.engine import PretrainArgs, pretrain
from lcfm.registry import get_model


def tiny_overrides():
    return dict(get_model("astromer").tiny)


def run(tmp_path, name="run", steps=30, **kw):
    kw = {"model": "astromer-v2", "learning_rate": 3e-3, **kw}
    args = PretrainArgs(survey="macho", output=tmp_path / name, max_steps=steps, batch_size=8,
                        progress=False, config_overrides=tiny_overrides(), **kw)
    return pretrain(args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrain")
    return path, run(path, steps=60)


def test_loss_goes_down_on_bundled_sample(trained):
    path, metrics = trained
    history = json.loads((path / "run" / "loss_history.json").read_text())
    first = sum(h["loss"] for h in history[:10]) / 10
    last = sum(h["loss"] for h in history[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    assert metrics["validation_light_curves"] > 0 and metrics["validation"]
    assert (path / "run" / "loss.png").stat().st_size > 1000
    report = json.loads((path / "run" / "data" / "report.json").read_text())
    assert report["balanced"] and report["light_curves_written"] > 0


def test_checkpoint_loads_in_fresh_process(trained):
    path, _ = trained
    out = path / "run"
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    code = (
        "import lcfm, json, transformers, torch\n"
        f"m = transformers.AutoModel.from_pretrained({str(out)!r})\n"
        "print(json.dumps({'cls': type(m).__name__, 'n': sum(p.numel() for p in m.parameters()),"
        " 'type': m.config.model_type}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["cls"] == "AstromerModel" and info["type"] == "lcfm_astromer"
    from transformers import AutoConfig, AutoModel

    expected = AutoModel.from_config(AutoConfig.from_pretrained(out))
    assert info["n"] == sum(p.numel() for p in expected.parameters())


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = run(tmp_path, "full", steps=12, checkpoint_every=6, eval_every=6)
    partial = run(tmp_path, "split", steps=12, stop_after=6, checkpoint_every=6, eval_every=6)
    assert partial == {"steps": 6, "interrupted": True}
    resumed = run(tmp_path, "split", steps=12, resume=True, checkpoint_every=6, eval_every=6)
    a = json.loads((tmp_path / "full" / "loss_history.json").read_text())
    b = json.loads((tmp_path / "split" / "loss_history.json").read_text())
    assert [h["step"] for h in b] == list(range(1, 13))
    assert [round(h["loss"], 5) for h in a] == [round(h["loss"], 5) for h in b]
    assert resumed["final_loss"] == pytest.approx(full["final_loss"], rel=1e-5)


def test_final_folder_is_complete_readable_and_records_the_run(trained):
    from lcfm.engine.loading import check_model_folder

    path, metrics = trained
    out = path / "run"
    assert check_model_folder(out)["lcfm_survey"] == "macho"
    assert not (out / ".saving.tmp").exists()
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "model.safetensors").stat().st_mode & 0o044 == 0o044 & ~umask
    run = json.loads((out / "checkpoint" / "trainer_state.json").read_text())["run"]
    total = metrics["train_light_curves"] + metrics["validation_light_curves"]
    assert run["survey"] == "macho" and run["max_steps"] == 60 and run["batch_size"] == 8
    assert run["data"].startswith(f"{total} light curves, ")


def test_init_starts_from_the_checkpoint_weights(trained, tmp_path):
    """`--init` (Astromer 2 sect. 5.1's reconstruction fine-tuning): at learning rate 0 the
    saved weights are exactly the checkpoint's, and the first batch (the same one the
    checkpoint's own run started on) scores the trained weights' loss, not a random
    model's; the model type comes from the checkpoint when --model is left out."""
    from safetensors.torch import load_file

    path, _ = trained
    source = path / "run"
    metrics = run(tmp_path, "adapt", steps=2, init=source, model=None, learning_rate=0.0,
                  data=source / "data")
    assert metrics["model"] == "astromer" and metrics["model_type"] == "lcfm_astromer"
    assert metrics["init"] == {"folder": str(source.resolve()), "newly_initialised": []}
    before, after = load_file(source / "model.safetensors"), load_file(
        tmp_path / "adapt" / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    history = json.loads((source / "loss_history.json").read_text())
    assert metrics["first_loss"] < 0.85 * history[0]["loss"], (metrics, history[0])
    record = json.loads((tmp_path / "adapt" / "checkpoint" / "trainer_state.json"
                         ).read_text())["run"]
    assert record["init"] == str(source.resolve())


def test_init_refuses_a_checkpoint_of_another_model_type(trained, tmp_path, lcfm_cli):
    from lcfm.exceptions import ModelFolderError

    path, _ = trained
    with pytest.raises(ModelFolderError, match=r"of model astromer .*--model atcat is model atcat"):
        run(tmp_path, "wrong", steps=2, init=path / "run", model="atcat")
    with pytest.raises(ModelFolderError, match="no such model folder"):
        run(tmp_path, "missing", steps=2, init=tmp_path / "nowhere")
    assert not (tmp_path / "wrong" / "model.safetensors").exists()
    code, _, err = lcfm_cli("pretrain", "--survey", "macho", "--model", "atcat", "--init",
                            path / "run", "--output", tmp_path / "cli", "--max-steps", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "config.json" in err and "model_type lcfm_astromer" in err


def test_recipe_drives_pretraining_and_the_validation_loss_stops_it(trained, tmp_path):
    """A paper recipe applies (Astromer 2: Adam, eq. 5) with the given fields overriding
    it; at learning rate 0 the validation loss stays the same, so
    early stopping (patience 2 steps after min_steps 2) ends the run at step 4 and says so."""
    path, metrics = trained
    assert metrics["recipe"]["name"] == "astromer-2-pretrain"  # the configuration's own
    assert metrics["stopped"]["reason"] == "max_steps" and metrics["stopped"]["step"] == 60
    stopped = run(tmp_path, "stop", steps=12, recipe="astromer-2-pretrain", eval_every=2,
                  patience=2, min_steps=2, learning_rate=0.0, data=path / "run" / "data")
    assert stopped["stopped"]["reason"] == "early_stopping" and stopped["steps"] == 4
    assert stopped["stopped"]["kept_step"] == 4  # pretraining keeps the weights it ends with
    recipe = json.loads((tmp_path / "stop" / "metrics.json").read_text())["recipe"]
    assert recipe["values"]["optimizer"] == "adam" and recipe["values"]["learning_rate"] == 0
    assert recipe["overrides"] == {"learning_rate": 0.0, "max_steps": 12, "batch_size": 8,
                                   "eval_every": 2, "patience_steps": 2, "min_steps": 2}
    assert recipe["run"]["warmup_steps"] == 6  # at most half of a 12-step run
    # the recipe's dropout unless the configuration value is given: Astromer 1's recipe
    # (no dropout after attention) on Astromer 2's configuration (0.1)
    tiny = {**tiny_overrides(), "attention_output_dropout": 0.1}
    for name, given in (("given", tiny), ("recipe", {k: v for k, v in tiny.items()
                                                      if k != "attention_output_dropout"})):
        pretrain(PretrainArgs(survey="macho", output=tmp_path / name, max_steps=1,
                              batch_size=8, progress=False, recipe="astromer-1-pretrain",
                              config_overrides=given, data=path / "run" / "data"))
    config = json.loads((tmp_path / "given" / "config.json").read_text())
    assert config["attention_output_dropout"] == 0.1
    config = json.loads((tmp_path / "recipe" / "config.json").read_text())
    assert config["attention_output_dropout"] == 0.0
