"""pretrain -> finetune (full, frozen, LoRA) -> evaluate -> predict -> embed for every model
family on simulated data, with tiny configurations (registry-driven)."""

import json

import numpy as np
import polars as pl
import pytest
from lcfm.engine import PretrainArgs, pretrain
from lcfm.engine.evaluate import embed, evaluate, predict
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.engine.save import load_classifier
from lcfm.registry import get_model, get_survey, model_names
from lcfm.simulate import simulate

STEPS = 4


def survey_for(plugin) -> str:
    return "elasticc" if plugin.causal else "macho"  # multi-band flux for the causal model


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    cache = {}

    def get(survey: str, per_class: int = 4):
        if survey not in cache:
            plugin = get_survey(survey)
            path = tmp_path_factory.mktemp(f"sim-{survey}")
            simulate(plugin, per_class * len(plugin.taxonomy.classes), path, seed=1)
            cache[survey] = path
        return cache[survey]

    return get


@pytest.mark.parametrize("model", model_names())
def test_full_pipeline(model, simulated, tmp_path):
    plugin = get_model(model)
    survey = survey_for(plugin)
    data = simulated(survey)
    tiny = dict(plugin.tiny)
    start = plugin.default_configuration
    if plugin.pretraining_class is not None:
        metrics = pretrain(PretrainArgs(survey=survey, data=data, output=tmp_path / "pre",
                                        model=start, max_steps=STEPS, batch_size=8,
                                        progress=False, config_overrides=tiny))
        assert metrics["steps"] == STEPS
        start, tiny = str(tmp_path / "pre"), {}
        table = embed(tmp_path / "pre", data, tmp_path / "pre_emb.parquet")
        assert table["object_id"].n_unique() == table.height

    common = dict(data=data, model=start, max_steps=STEPS, batch_size=8, progress=False,
                  config_overrides=tiny)
    runs = {
        "full": finetune(FinetuneArgs(output=tmp_path / "full", **common)),
        "frozen": finetune(FinetuneArgs(output=tmp_path / "frozen", freeze_encoder=True,
                                        **common)),
        "lora": finetune(FinetuneArgs(output=tmp_path / "lora", lora=True, merge_lora=True,
                                      **common)),
    }
    n_classes = len(get_survey(survey).taxonomy.classes)
    for name, summary in runs.items():
        assert summary["steps"] == STEPS, name
        assert len(summary["classes"]) == n_classes, name
        assert summary["test"] is not None and 0 <= summary["test"]["macro_f1"] <= 1, name
    assert runs["frozen"]["parameters"] == runs["full"]["parameters"]

    n_objects = pl.read_parquet(list(data.glob("part-*.parquet")))["object_id"].n_unique()
    report = evaluate(tmp_path / "full", data, tmp_path / "eval")
    matrix = np.array(report["confusion_matrix"]["rows_true_columns_predicted"])
    # held out: the run's training and validation objects are excluded and counted
    splits = pl.read_parquet(tmp_path / "full" / "splits.parquet")
    n_test = int((splits["split"] == "test").sum())
    assert matrix.sum() == report["n_objects"] == n_test > 0
    assert report["excluded_training_objects"] == n_objects - n_test
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["macro_f1"] \
        == pytest.approx(report["macro_f1"])

    dropout = bool(plugin.mc_dropout_modules(load_classifier(tmp_path / "full")[1]))
    catalog = predict(tmp_path / "full", data, tmp_path / "cat.parquet",
                      mc_samples=2 if dropout else 0,
                      cutoffs=[5.0, 30.0] if plugin.causal else None)
    assert (catalog["n_observations_used"] > 0).all()
    assert any(c.startswith("std_") for c in catalog.columns) == dropout
    assert catalog.height == catalog["object_id"].n_unique() == n_objects
    probs = catalog.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy()
    assert probs.shape[1] == n_classes and np.allclose(probs.sum(1), 1, atol=1e-5)
    if plugin.causal:
        early = pl.read_parquet(tmp_path / "cat_early.parquet")
        assert set(early["days"].unique()) <= {5.0, 30.0}
        at_30 = early.filter(pl.col("days") == 30.0)
        assert at_30["object_id"].n_unique() == n_objects
        assert (at_30["points"] >= early.filter(pl.col("days") == 5.0)["points"].min()).all()

    # the LoRA adapter applied to its base predicts what the merged model predicts
    a = predict(tmp_path / "lora", data, tmp_path / "a.parquet").sort("object_id")
    b = predict(tmp_path / "lora" / "merged", data, tmp_path / "b.parquet").sort("object_id")
    assert np.allclose(a.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy(),
                       b.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy(), atol=1e-4)

    vectors = embed(tmp_path / "full", data, tmp_path / "emb.parquet", plot=tmp_path / "e.png")
    assert vectors.height == n_objects and (tmp_path / "e.png").stat().st_size > 0


def test_metadata_token_from_training_rows(simulated, tmp_path):
    """ATCAT with its metadata token: the survey's encoder is fitted on training rows,
    saved beside the model, and applied again at prediction."""
    causal = [m for m in model_names() if get_model(m).causal]
    if not causal:
        pytest.skip("no causal model with a metadata token installed")
    plugin = get_model(causal[0])
    data = simulated("elasticc")
    pretrain(PretrainArgs(survey="elasticc", data=data, output=tmp_path / "pre",
                          model=plugin.default_configuration, max_steps=2, batch_size=8,
                          progress=False, metadata=True, config_overrides=dict(plugin.tiny)))
    config = json.loads((tmp_path / "pre" / "config.json").read_text())
    assert config["metadata_dim"] > 0 and (tmp_path / "pre" / "metadata_encoder.json").exists()
    summary = finetune(FinetuneArgs(data=data, model=str(tmp_path / "pre"),
                                    output=tmp_path / "clf", max_steps=2, batch_size=8,
                                    progress=False))
    assert summary["steps"] == 2 and (tmp_path / "clf" / "metadata_encoder.json").exists()
    catalog = predict(tmp_path / "clf", data, tmp_path / "cat.parquet")
    probs = catalog.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
