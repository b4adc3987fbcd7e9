"""`lcfm features` and `lcfm baseline` as a user runs them, on simulated MACHO light curves
(300, six classes): the classical baseline is clearly better than chance and is tested on
exactly the objects `lcfm finetune` tests on."""

import json
import os
import subprocess
import sys

import polars as pl
import pytest
from lcfm.baseline import baseline_macro_f1, finetune_splits
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.features import feature_columns
from lcfm.registry import get_model, get_survey
from lcfm.simulate import simulate

#: six balanced classes: chance (and a majority-class guess) gives macro F1 <= 1/6 ~ 0.17.
#: Period, amplitude and shape separate these classes well (0.88 on this seed); 0.6 leaves
#: room for the noise of 60 test objects (one object moves macro F1 by ~0.02) while still
#: failing a baseline that learned nothing or was scored on the wrong objects
MIN_MACRO_F1 = 0.6


def lcfm(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lcfm_cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def macho(tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "macho"
    simulate(get_survey("macho"), 300, path, seed=0)
    return path


@pytest.fixture(scope="module")
def features_file(macho, tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "macho.parquet"
    result = lcfm("features", "--data", str(macho), "--output", str(path), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "300 objects (300 light curves, bands B, R)" in result.stdout
    return path


def test_features_command_writes_one_row_per_object(features_file):
    features = pl.read_parquet(features_file)
    assert features.height == 300 == features["object_id"].n_unique()
    assert features.columns == ["object_id", "label", *feature_columns(["B", "R"])]
    assert features["label"].null_count() == 0
    summary = json.loads(features_file.with_suffix(".json").read_text())
    assert summary["workers"] == 2 and summary["objects"] == 300
    # simulated MACHO light curves hold one band each: the other band is counted missing,
    # and so is the colour that needs both
    assert sum(summary["objects_without_band"].values()) == 300
    assert summary["nan_values"]["color_B_R"] == 300


def test_baseline_beats_chance_on_finetune_test_objects(macho, features_file, tmp_path):
    from lcfm_cli.main import app
    from typer.testing import CliRunner

    out = tmp_path / "baseline"
    # in this process: the engine (torch) is imported once for this test and finetune's
    result = CliRunner().invoke(app, ["baseline", "--data", str(macho), "--features",
                                      str(features_file), "--output", str(out),
                                      "--n-estimators", "200"])
    assert result.exit_code == 0, result.output
    assert "random_forest on 43 features, 216 training objects: test macro F1" in \
        result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"accuracy", "macro_f1", "class_balanced_f1", "ece"}
    assert metrics["test"]["macro_f1"] > MIN_MACRO_F1, metrics["test"]
    assert metrics["classes"] == list(get_survey("macho").taxonomy.classes)
    # one band per simulated MACHO object: the colour has no value to learn from
    assert metrics["features_without_training_values"] == ["color_B_R"]
    # a one-step fine-tuning run of a tiny model records its splits the same way
    run = tmp_path / "finetune"
    finetune(FinetuneArgs(data=macho, model="astromer-v2", output=run, max_steps=1,
                          batch_size=8, progress=False,
                          config_overrides=dict(get_model("astromer").tiny)))
    ours = pl.read_parquet(out / "splits.parquet").sort("object_id")
    theirs = pl.read_parquet(run / "splits.parquet").sort("object_id")
    assert ours.equals(theirs)
    predictions = pl.read_parquet(out / "test_predictions.parquet")
    assert set(predictions["object_id"]) == set(
        ours.filter(pl.col("split") == "test")["object_id"])
    assert metrics["test_objects"] == predictions.height == 60
    # the function finetune / evaluate reports call gives the same number
    parts = finetune_splits(macho)
    assert baseline_macro_f1(macho, parts, features=features_file, n_estimators=200
                             ) == pytest.approx(metrics["test"]["macro_f1"], abs=1e-12)


def test_baseline_refuses_a_file_that_is_not_features(macho, tmp_path):
    bogus = tmp_path / "bogus.parquet"
    pl.DataFrame({"object_id": ["a"], "label": ["RRab"], "note": ["x"]}).write_parquet(bogus)
    result = lcfm("baseline", "--data", str(macho), "--features", str(bogus),
                  "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lcfm: error: {bogus}: column 'note' is String, not a numeric feature"]


def test_baseline_args_declare_every_option():
    from dataclasses import fields

    from lcfm.baseline import CLASSIFIERS, BaselineArgs
    from lcfm.options import on_cli, option_choices, option_help

    declared = {f.name: f for f in fields(BaselineArgs)}
    assert all(option_help(f) for f in declared.values() if on_cli(f))
    assert option_choices(declared["classifier"]) == CLASSIFIERS
    assert declared["min_period"].default == 0.1
    help_text = lcfm("baseline", "--help").stdout
    assert "--min-period" in help_text and "--n-estimators" in help_text
