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


def test_features_on_a_checkpoint_pretrained_without_metadata(labeled_dir, tmp_path):
    """ATCAT pretrained without --metadata, then fine-tuned with --features: the checkpoint
    gets a metadata token whose weights start fresh; the encoder's weights are the
    checkpoint's."""
    import torch
    from lcfm.engine.pretrain import PretrainArgs, pretrain
    from safetensors.torch import load_file

    plugin = get_model("atcat")
    pre = tmp_path / "pre"
    pretrain(PretrainArgs(survey="macho", data=labeled_dir, output=pre, model="atcat",
                          max_steps=2, batch_size=8, workers=0, progress=False,
                          config_overrides=dict(plugin.tiny)))
    assert json.loads((pre / "config.json").read_text())["metadata_dim"] == 0
    out = tmp_path / "clf"
    finetune(FinetuneArgs(data=labeled_dir, model=str(pre), output=out, features=True,
                          max_steps=2, batch_size=8, workers=0, progress=False,
                          baseline=False, freeze_encoder=True))
    assert json.loads((out / "config.json").read_text())["metadata_dim"] > 0
    before, after = load_file(pre / "model.safetensors"), load_file(out / "model.safetensors")
    assert any("metadata" in key for key in after) and not any("metadata" in k for k in before)
    shared = [k for k in before if k in after and "metadata" not in k]
    assert shared and all(torch.equal(before[k], after[k]) for k in shared)  # frozen encoder
    # the new token is not frozen with the encoder: it trains (its weights left their init)
    from lcfm.engine.loading import freeze_encoder, fresh_encoder_parameters
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(out)
    fresh = fresh_encoder_parameters(model, pre)
    assert fresh and all("metadata" in name for name in fresh)
    freeze_encoder(model, fresh=fresh)
    trainable = {n for n, p in model.atcat.named_parameters() if p.requires_grad}
    assert trainable == set(fresh)
