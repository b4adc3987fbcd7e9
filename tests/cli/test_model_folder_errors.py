"""One line, exit 2, no traceback (issue 9, item 9) for every damaged model folder given to a
command that loads a model, and for the checked-run refusals of `lcfm pretrain`.

The commands run in-process through `lcfm_cli.main.main` (what the `lcfm` script calls), so
an exception that escapes it fails the test; one case also runs as a real process."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from lcfm.engine import PretrainArgs, pretrain
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.registry import get_model, model_names
from lcfm.shards import ShardWriter
from lcfm_cli.main import main


def run_cli(capsys, monkeypatch, *args) -> tuple[int, str]:
    """(exit status, stderr) of `lcfm ARGS`."""
    monkeypatch.setattr(sys, "argv", ["lcfm", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def assert_one_line(status, err, *fragments):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lcfm: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])


def _rows(n_objects=12, n_points=40, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n_objects):
        t = np.sort(rng.uniform(0, 100, n_points))
        label = ("RRab", "EC")[i % 2]
        mag = (np.sin(t * (1 + i % 2)) - 5).astype(np.float32)
        yield {"object_id": f"1.{3000 + i}.{i}", "survey": "macho", "time": t, "value": mag,
               "error": np.full(n_points, 0.03, np.float32), "band": np.array(["R"] * n_points),
               "value_kind": "mag", "label": label, "meta": {"field": 1}}


def _tiny(name):
    return dict(get_model(name).tiny)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    with ShardWriter(path) as writer:
        for row in _rows():
            writer.add(row)
    return path


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    """A tiny pretrained encoder and a tiny fine-tuned classifier (Astromer)."""
    root = tmp_path_factory.mktemp("models")
    pretrain(PretrainArgs(survey="macho", data=data, output=root / "pre", max_steps=2,
                          batch_size=4, progress=False, config_overrides=_tiny("astromer")))
    finetune(FinetuneArgs(data=data, model="astromer-v2", output=root / "clf", max_steps=2,
                          batch_size=4, progress=False, config_overrides=_tiny("astromer")))
    return root


def _truncate(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _zero_bytes(folder):
    (folder / "model.safetensors").write_bytes(b"")


def _no_weights(folder):  # what a run killed during the final save used to leave
    (folder / "model.safetensors").unlink()


def _unknown_model_type(folder):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "lcfm_nosuch"}))


def _invalid_json(folder):
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[: len(text) // 2])


DEFECTS = {
    "truncated": (_truncate, "model.safetensors", "truncated or corrupt"),
    "zero-byte": (_zero_bytes, "model.safetensors", "zero-byte weights file"),
    "no-weights": (_no_weights, "", "no model.safetensors"),
    "unknown-model-type": (_unknown_model_type, "config.json", "unknown model type 'lcfm_nosuch'"),
    "invalid-json": (_invalid_json, "config.json", "not valid JSON"),
}


def _command(name, model, data, tmp):
    return {
        "finetune": ["finetune", "--data", data, "--model", model, "--output", tmp / "ft",
                     "--max-steps", 1],
        "evaluate": ["evaluate", "--model", model, "--data", data, "--output", tmp / "ev"],
        "predict": ["predict", "--model", model, "--data", data, "--output", tmp / "c.parquet"],
        "embed": ["embed", "--model", model, "--data", data, "--output", tmp / "e.parquet"],
        "push": ["push", "--model", model, "--repo-id", "org/name", "--dry-run"],
    }[name]


CASES = [pytest.param(defect, command, id=f"{defect}-{command}")
         for defect in DEFECTS
         for command in ["finetune", "evaluate", "predict", "embed", "push"]]


@pytest.mark.parametrize(("defect", "command"), CASES)
def test_damaged_model_folder_is_one_line(defect, command, models, data, tmp_path, capsys,
                                          monkeypatch):
    damage, file_name, fragment = DEFECTS[defect]
    folder = tmp_path / "model"
    shutil.copytree(models / "clf", folder)
    damage(folder)
    status, err = run_cli(capsys, monkeypatch, *_command(command, folder, data, tmp_path))
    assert_one_line(status, err, folder / file_name, fragment)


def test_predict_refuses_a_model_without_id2label(models, data, tmp_path, capsys,
                                                  monkeypatch):
    """predict needs a classifier; evaluate scores a pretrained folder's reconstruction
    instead (rmse/r2), see tests/engine/test_evaluate_metrics.py."""
    status, err = run_cli(capsys, monkeypatch,
                          *_command("predict", models / "pre", data, tmp_path))
    assert_one_line(status, err, models / "pre" / "config.json", "no id2label",
                    "lcfm finetune")


@pytest.mark.parametrize("model", [m for m in model_names()
                                   if get_model(m).classification_class is not None])
def test_every_model_checks_its_weights(model, data, tmp_path, capsys, monkeypatch):
    """The check is the plugin-independent one: every model's truncated classifier fails the
    same way."""
    finetune(FinetuneArgs(data=data, model=model, output=tmp_path / "clf", max_steps=1,
                          batch_size=4, progress=False, config_overrides=_tiny(model)))
    _truncate(tmp_path / "clf")
    status, err = run_cli(capsys, monkeypatch,
                          *_command("predict", tmp_path / "clf", data, tmp_path))
    assert_one_line(status, err, tmp_path / "clf" / "model.safetensors", "truncated")


def test_damaged_weights_in_a_real_process(models, data, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(models / "clf", folder)
    _truncate(folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "lcfm_cli",
                             *map(str, _command("predict", folder, data, tmp_path))],
                            capture_output=True, text=True, env=env, timeout=300)
    assert_one_line(result.returncode, result.stderr, folder / "model.safetensors")


# ---- lcfm pretrain ---------------------------------------------------------------------

def _pretrain(output, data, *extra, model="astromer"):
    """`lcfm pretrain` of MODEL's tiny configuration (the plugin's default otherwise)."""
    tiny = [x for k, v in _tiny(model).items() for x in ("--config", f"{k}={json.dumps(v)}")]
    name = "astromer-v2" if model == "astromer" else model
    return ["pretrain", "--survey", "macho", "--data", data, "--output", output, "--model",
            name, "--max-steps", 4, "--batch-size", 4, *tiny, *extra]


def test_pretrain_output_that_is_a_file(data, tmp_path, capsys, monkeypatch):
    existing = tmp_path / "taken.txt"
    existing.write_text("not a folder")
    status, err = run_cli(capsys, monkeypatch, *_pretrain(existing, data))
    assert_one_line(status, err, existing, "an existing file")
    assert existing.read_text() == "not a folder"
    # below a file: the OS error is about the path, and is one line too
    status, err = run_cli(capsys, monkeypatch, *_pretrain(existing / "run", data))
    assert_one_line(status, err, existing)


def test_pretrain_refuses_data_of_another_survey(data, tmp_path, capsys, monkeypatch):
    args = _pretrain(tmp_path / "run", data)
    args[args.index("macho")] = "kepler"
    status, err = run_cli(capsys, monkeypatch, *args)
    assert_one_line(status, err, data, "survey 'macho'", "--survey is 'kepler'")


def test_pretrain_resume_checks_the_run(data, tmp_path, capsys, monkeypatch):
    output = tmp_path / "run"
    status, err = run_cli(capsys, monkeypatch, *_pretrain(output, data, "--resume"))
    assert_one_line(status, err, output / "checkpoint", "no checkpoint to resume from")

    pretrain(PretrainArgs(survey="macho", data=data, output=output, max_steps=4, batch_size=4,
                          stop_after=2, progress=False, config_overrides=_tiny("astromer")))
    status, err = run_cli(capsys, monkeypatch,
                          *_pretrain(output, data, "--resume", "--seed", 3))
    assert_one_line(status, err, output / "checkpoint", "seed is 0 in the checkpoint but 3")
    other = next(m for m in model_names()
                 if m != "astromer" and get_model(m).pretraining_class is not None)
    status, err = run_cli(capsys, monkeypatch, *_pretrain(output, data, "--resume",
                                                          model=other))
    assert_one_line(status, err, "cannot resume: model is 'astromer-v2' in the checkpoint "
                                 f"but {other!r}")
