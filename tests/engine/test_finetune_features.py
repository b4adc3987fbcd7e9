"""`--features` through finetune, predict and evaluate (issue 12 item 3): every model takes
the classical features, Astromer/AstroCo/ASTRAFier in the head, ATCAT on its metadata
token; the scaler fitted in training is saved and reused on new data."""

import json

import polars as pl
import pytest
from lcfm.engine.evaluate import PredictArgs, evaluate, predict
from lcfm.engine.extra_features import SCALER_FILE
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.features_io import extract_features
from lcfm.registry import get_model, model_names


@pytest.fixture(scope="module")
def features_file(labeled_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "features.parquet"
    extract_features(labeled_dir, path)
    return path


@pytest.mark.parametrize("name", model_names())
def test_finetune_predict_evaluate_with_features(name, labeled_dir, features_file, tmp_path):
    plugin = get_model(name)
    out = tmp_path / "model"
    summary = finetune(FinetuneArgs(
        data=labeled_dir, model=name, output=out, features=True, max_steps=3, batch_size=8,
        workers=0, progress=False, baseline=False, config_overrides=dict(plugin.tiny)))
    assert summary["steps"] == 3
    assert (out / "features.parquet").exists() and (out / SCALER_FILE).exists()
    scaler = json.loads((out / SCALER_FILE).read_text())
    config = json.loads((out / "config.json").read_text())
    n_features = len(scaler["columns"]) + len(scaler.get("indicators", []))
    if "num_extra_features" in config:  # the head reads them
        assert config["num_extra_features"] == n_features > 0
    else:  # ATCAT: the metadata token carries them
        assert config["metadata_dim"] >= n_features > 0
    catalog = predict(out, labeled_dir, tmp_path / "c.parquet")
    assert catalog.height == pl.read_parquet(labeled_dir / "*.parquet")["object_id"].n_unique()
    # the same features read from a file give the same catalog
    again = predict(PredictArgs(model=out, data=labeled_dir, output=tmp_path / "c2.parquet",
                                features=features_file))
    probabilities = pl.col("^p_.*$")
    assert (catalog.select(probabilities) - again.select(probabilities)).to_numpy().max() < 1e-5
    report = evaluate(out, labeled_dir, tmp_path / "eval", baseline=False)
    assert report["n_objects"] > 0
