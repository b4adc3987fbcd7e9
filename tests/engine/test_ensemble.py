"""Ensembles of fine-tuned classifiers (lcfm.engine.ensemble; ATCAT sect. 2.7 iv, 3.2)."""

import json

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.engine.ensemble import (
    ENSEMBLE_FILE,
    EnsembleArgs,
    EnsembleClassifier,
    member_train_ids,
    run_ensemble,
    train_ensemble,
)
from lcfm.engine.loading import check_model_folder, resolve
from lcfm.engine.predict import class_probabilities
from lcfm.engine.save import load_classifier
from lcfm.exceptions import ConfigError, ModelFolderError
from lcfm.registry import get_model

LSST = {"u": 3671.0, "g": 4827.0, "r": 6223.0, "i": 7546.0, "z": 8691.0, "Y": 9712.0}


def _member(folder, seed):
    plugin = get_model("atcat")
    config = plugin.make_config("tiny", num_labels=3, id2label={0: "a", 1: "b", 2: "c"},
                                label2id={"a": 0, "b": 1, "c": 2})
    config.lcfm_survey, config.lcfm_bands = "elasticc", LSST
    torch.manual_seed(seed)
    model = plugin.classification_class(config).eval()
    with torch.no_grad():  # distinct, clearly non-uniform members
        model.classifier.linear.weight.normal_(0, 1.0)
    model.save_pretrained(folder)
    return model


def _inputs(n=4, length=7, seed=0):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 30, (n, length)), axis=1)
    times -= times[:, :1]
    mask = np.ones((n, length), np.int64)
    mask[0, 5:] = 0
    return {"times": torch.tensor(times, dtype=torch.float32),
            "flux": torch.tensor(rng.normal(0, 50, (n, length)), dtype=torch.float32),
            "flux_err": torch.tensor(rng.uniform(1, 5, (n, length)), dtype=torch.float32),
            "wavelength": torch.tensor(rng.choice(list(LSST.values()), (n, length)),
                                       dtype=torch.float32),
            "attention_mask": torch.tensor(mask)}


def test_two_member_ensemble_loads_and_averages_probabilities(tmp_path):
    members = [_member(tmp_path / f"member-{k}", seed=k) for k in range(2)]
    (tmp_path / ENSEMBLE_FILE).write_text(json.dumps(
        {"format": "lcfm-ensemble", "version": 1, "members": ["member-0", "member-1"]}))
    assert check_model_folder(tmp_path, classifier=True)["lcfm_ensemble"] == [
        "member-0", "member-1"]
    plugin, ensemble = load_classifier(tmp_path)
    assert plugin.name == "atcat" and isinstance(ensemble, EnsembleClassifier)
    assert ensemble.config.id2label == {0: "a", 1: "b", 2: "c"}
    batch = _inputs()
    with torch.no_grad():
        outs = [m(**batch, return_step_logits=True) for m in members]
        joint = ensemble(**batch, return_step_logits=True)
    # what predict computes: class probabilities (softmax over classes) and p_unsure
    got = class_probabilities(joint, 3)
    expected = torch.stack([class_probabilities(o, 3) for o in outs]).mean(0)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(class_probabilities(outs[0], 3), class_probabilities(outs[1], 3),
                              atol=1e-3)
    steps = class_probabilities(joint, 3, step=True)
    torch.testing.assert_close(steps, torch.stack(
        [class_probabilities(o, 3, step=True) for o in outs]).mean(0), atol=1e-6, rtol=1e-5)
    # an ensemble is not a starting point for further training
    with pytest.raises(ModelFolderError, match="member-0"):
        resolve(str(tmp_path))


def test_ensemble_manifest_errors_are_one_line(tmp_path):
    (tmp_path / ENSEMBLE_FILE).write_text(json.dumps(
        {"format": "lcfm-ensemble", "members": ["member-0"]}))
    with pytest.raises(ModelFolderError, match="member 'member-0' is not a folder"):
        load_classifier(tmp_path)
    (tmp_path / ENSEMBLE_FILE).write_text("{not json")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        check_model_folder(tmp_path)


def test_member_sampling_keeps_every_class():
    train = pl.DataFrame({"object_id": [f"o{i}" for i in range(12)],
                          "label": ["x"] * 8 + ["y"] * 4})
    boot = [member_train_ids(train, k, "bootstrap", seed=3) for k in range(2)]
    assert all(len(ids) == 12 and {"o8", "o9", "o10", "o11"} & set(ids) for ids in boot)
    assert boot[0] != boot[1] and len(set(boot[0])) < 12  # drawn with replacement
    folds = [member_train_ids(train, k, "subfolds", subfolds=4, seed=3) for k in range(4)]
    left_out = [set(train["object_id"]) - set(ids) for ids in folds]
    assert all(len(ids) == 9 for ids in folds)  # a quarter of each class left out
    assert set().union(*left_out) == set(train["object_id"])  # each object left out once
    # sect. 2.7 (iv): 4 members on half the data each, any two sharing a sixth
    train = pl.DataFrame({"object_id": [f"h{i:02d}" for i in range(24)],
                          "label": ["x"] * 12 + ["y"] * 12})
    halves = [set(member_train_ids(train, k, "halves", seed=1)) for k in range(4)]
    assert all(len(h) == 12 for h in halves)
    assert all(len(a & b) == 4 for i, a in enumerate(halves) for b in halves[i + 1:])
    assert all(sum(o in h for h in halves) == 2 for o in train["object_id"])
    with pytest.raises(ConfigError, match="halves"):
        member_train_ids(train, 4, "halves")
    with pytest.raises(ConfigError, match="--members 5"):  # refused before any training
        train_ensemble(EnsembleArgs(data="unused", model="atcat", output="unused"), 5,
                       sampling="halves")
    seeds = member_train_ids(train, 1, "seeds")
    assert sorted(seeds) == sorted(train["object_id"].to_list())  # all objects, once


def test_train_ensemble_end_to_end(labeled_dir, tmp_path):
    args = EnsembleArgs(data=labeled_dir, model="atcat", output=tmp_path / "ens",
                        max_steps=4, batch_size=8, progress=False, workers=0,
                        config_overrides=dict(get_model("atcat").tiny), members=2,
                        sampling="bootstrap")
    summary = run_ensemble(args)
    out = tmp_path / "ens"
    manifest = json.loads((out / ENSEMBLE_FILE).read_text())
    assert manifest["members"] == ["member-0", "member-1"]
    assert manifest["sampling"] == "bootstrap" and manifest["seeds"] == [0, 1]
    assert all((out / m / "config.json").is_file() for m in manifest["members"])
    # both members saw the same validation and test objects, different training draws
    splits = [pl.read_parquet(out / m / "splits.parquet").sort("object_id")
              for m in manifest["members"]]
    record = pl.read_parquet(out / "splits.parquet")
    test = set(record.filter(pl.col("split") == "test")["object_id"])
    assert test and all(set(s.filter(pl.col("split") == "test")["object_id"]) == test
                        for s in splits)
    assert summary["test"] is not None and 0 <= summary["test"]["macro_f1"] <= 1
    assert len(summary["member_test_macro_f1"]) == 2
    plugin, model = load_classifier(out)
    assert isinstance(model, EnsembleClassifier) and len(model.members) == 2
    # predict and evaluate read the ensemble folder unchanged, held-out objects only
    from lcfm.engine.evaluate import evaluate
    from lcfm.engine.inference import predict

    catalog = predict(out, labeled_dir, tmp_path / "catalog.parquet")
    assert catalog.height == 24 and "p_unsure" in catalog.columns
    probs = catalog.select(["p_EC", "p_RRab"]).to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    report = evaluate(out, labeled_dir, tmp_path / "eval")
    assert report["n_objects"] == len(test)
    assert report["macro_f1"] == pytest.approx(summary["test"]["macro_f1"])
    # an ensemble has one encoder per member: embed names the member folder to use
    from lcfm.engine.inference import embed
    from lcfm.exceptions import ConfigError

    with pytest.raises(ConfigError, match="member-0"):
        embed(out, labeled_dir, tmp_path / "emb.parquet")
    assert embed(out / "member-0", labeled_dir, tmp_path / "emb.parquet").height == 24
