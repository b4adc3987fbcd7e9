"""Fine-tuning, evaluation, prediction and embeddings through the engine."""

import json

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.engine.evaluate import embed, evaluate, predict
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.engine.save import load_classifier
from lcfm.registry import get_model


def args(data, out, **kw):
    base = dict(data=data, model="astromer-v2", output=out, max_steps=40, batch_size=16,
                lr_encoder=1e-3, lr_head=3e-3, progress=False, patience=100,
                config_overrides=dict(get_model("astromer").tiny))
    base.update(kw)
    return FinetuneArgs(**base)


@pytest.fixture(scope="module")
def full_run(labeled_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "full"
    # Astromer 2's dropout after attention (the tiny configuration has none): MC dropout
    overrides = {**get_model("astromer").tiny, "attention_output_dropout": 0.1}
    # 100 steps at lr 3e-3: tiny Astromer's loss on this set falls clearly below chance
    # (0.707 -> 0.667 over the first and last 10 steps); in 40 steps it stays at chance
    return out, finetune(args(labeled_dir, out, config_overrides=overrides, max_steps=100,
                              lr_encoder=3e-3, lr_head=1e-2))


def test_full_finetune_learns_and_splits_by_object(full_run, labeled_dir):
    out, summary = full_run
    assert summary["classes"] == ["EC", "RRab"] or set(summary["classes"]) == {"EC", "RRab"}
    # the kept model is the best evaluation at or after min_steps, later steps winning ties
    # (tiny Astromer barely learns this two-object validation split: its F1 itself is not a
    # stable check)
    first = summary["recipe"]["run"]["min_steps"]
    eligible = [v for v in summary["validation"] if v["step"] >= first]
    best = max(reversed(eligible), key=lambda v: v[summary["selection"]])
    assert summary["selection"] == "macro_f1"  # astromer-2-finetune
    assert summary["best_validation_macro_f1"] == best["macro_f1"]
    assert summary["best_step"] == best["step"] == summary["stopped"]["kept_step"]
    history = json.loads((out / "loss_history.json").read_text())
    assert np.mean([h["loss"] for h in history[-10:]]) < np.mean([h["loss"] for h in history[:10]])
    test_ids = set(pl.read_parquet(out / "test_split.parquet")["object_id"])
    assert test_ids and summary["test_light_curves"] == 2 * len(test_ids)
    # the run records every object's split, for held-out evaluation
    splits = pl.read_parquet(out / "splits.parquet")
    assert splits["object_id"].n_unique() == splits.height == 24
    assert set(splits.filter(pl.col("split") == "test")["object_id"]) == test_ids
    for name in ("train", "validation", "test"):
        assert summary[f"{name}_objects"] == (splits["split"] == name).sum() > 0


def test_evaluate_predict_embed(full_run, labeled_dir, tmp_path):
    out, _ = full_run
    report = evaluate(out, labeled_dir, tmp_path / "eval")
    m = np.array(report["confusion_matrix"]["rows_true_columns_predicted"])
    # held out: only the test objects are scored, one entry per object (both bands)
    test_ids = set(pl.read_parquet(out / "test_split.parquet")["object_id"])
    assert m.sum() == report["n_objects"] == len(test_ids)
    assert report["excluded_training_objects"] == 24 - len(test_ids)
    assert report["n_observations_used"] == 2 * 60 * len(test_ids)
    assert report["accuracy"] == pytest.approx(np.trace(m) / m.sum())
    for name in ("confusion_matrix.png", "reliability.png", "metrics.json", "thresholds.json"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    catalog = predict(out, labeled_dir, tmp_path / "cat.parquet", mc_samples=3)
    assert catalog["object_id"].n_unique() == catalog.height == 24
    p = catalog.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy()
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert {"std_EC", "std_RRab"} <= set(catalog.columns)
    assert (catalog.select(pl.col("^std_.*$")).to_numpy().max(1) > 0).all()
    assert (catalog["n_observations_used"] == 120).all()
    table = embed(out, labeled_dir, tmp_path / "emb.parquet", plot=tmp_path / "emb.png")
    assert table.height == 24 and len(table["embedding"][0]) > 0
    assert (tmp_path / "emb.png").exists()


def test_frozen_encoder_keeps_encoder_weights(labeled_dir, tmp_path):
    pre = tmp_path / "pre"
    finetune(args(labeled_dir, pre, max_steps=2))
    summary = finetune(args(labeled_dir, tmp_path / "frozen", model=str(pre),
                            freeze_encoder=True, max_steps=10))
    _, before = load_classifier(pre)
    _, after = load_classifier(tmp_path / "frozen")
    prefix = before.base_model_prefix
    b = {k: v for k, v in before.state_dict().items() if k.startswith(prefix)}
    a = after.state_dict()
    # everything but Astromer 2's layer weights (trained with the classifier, sect. 5.4)
    frozen = [k for k in b if not k.endswith("layer_weights")]
    assert len(frozen) > 10 and all(torch.equal(b[k], a[k]) for k in frozen)
    moved = [k for k in b if k.endswith("layer_weights")]
    assert moved and not torch.equal(b[moved[0]], a[moved[0]])
    assert summary["steps"] == 10


def test_lora_adapter_is_small_and_merge_matches(labeled_dir, tmp_path):
    out = tmp_path / "lora"
    finetune(args(labeled_dir, out, lora=True, merge_lora=True, max_steps=10,
                  config_overrides={}))
    adapter = out / "adapter_model.safetensors"
    from safetensors.torch import load_file

    saved = load_file(adapter)
    # the adapter proper (LoRA matrices); the new classification head is trained in full and
    # stored beside it (peft's modules_to_save)
    n_lora = sum(v.numel() for k, v in saved.items() if "lora_" in k)
    n_head = sum(v.numel() for k, v in saved.items() if "lora_" not in k)
    base = load_file(out / "base" / "model.safetensors")
    n_encoder = sum(v.numel() for k, v in base.items() if not k.startswith("classifier"))
    assert 0 < n_lora < 0.10 * n_encoder, (n_lora, n_encoder)
    assert n_head == sum(v.numel() for k, v in base.items() if k.startswith("classifier"))
    for folder in (out, out / "base", out / "merged"):  # every folder the run wrote
        assert pl.read_parquet(folder / "splits.parquet").height == 24
    a = predict(out, labeled_dir, tmp_path / "a.parquet")
    b = predict(out / "merged", labeled_dir, tmp_path / "b.parquet")
    assert np.allclose(a.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy(),
                       b.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy(), atol=1e-5)


def test_few_shot_protocol_reports_mean_and_spread(labeled_dir, tmp_path):
    summary = finetune(args(labeled_dir, tmp_path / "fs", samples_per_class=4, folds=3,
                            max_steps=5))
    assert len(summary["test_macro_f1"]) == 3
    assert summary["test_macro_f1_mean"] == pytest.approx(np.mean(summary["test_macro_f1"]))
    for fold in range(3):
        assert (tmp_path / "fs" / f"fold-{fold}" / "metrics.json").exists()
        runs = summary["runs"][fold]
        assert runs["train_light_curves"] == 2 * 4 * 2  # 4 objects per class, 2 bands
        # the fold's own training objects, not the whole training pool
        splits = pl.read_parquet(tmp_path / "fs" / f"fold-{fold}" / "splits.parquet")
        assert (splits["split"] == "train").sum() == 2 * 4


def test_resume_finetune_matches(labeled_dir, tmp_path):
    full = finetune(args(labeled_dir, tmp_path / "a", max_steps=12, eval_every=6))
    part = finetune(args(labeled_dir, tmp_path / "b", max_steps=12, eval_every=6,
                         stop_after=6))
    assert part == {"steps": 6, "interrupted": True}
    resumed = finetune(args(labeled_dir, tmp_path / "b", max_steps=12, eval_every=6,
                            resume=True))
    a = json.loads((tmp_path / "a" / "loss_history.json").read_text())
    b = json.loads((tmp_path / "b" / "loss_history.json").read_text())
    assert [round(x["loss"], 5) for x in a] == [round(x["loss"], 5) for x in b]
    assert resumed["steps"] == full["steps"] == 12


def test_predict_streams_shards_with_the_same_result(full_run, tmp_path, make_labeled_rows):
    """Prediction goes shard by shard; an object whose bands straddle two shards still gets
    one row, identical to predicting from a single shard."""
    from lcfm.shards import ShardWriter

    with ShardWriter(tmp_path / "many", rows_per_shard=5) as writer:  # odd: bands split
        for row in make_labeled_rows():
            writer.add(row)
    with ShardWriter(tmp_path / "one") as writer:
        for row in make_labeled_rows():
            writer.add(row)
    out, _ = full_run
    many = predict(out, tmp_path / "many", tmp_path / "many.parquet")
    one = predict(out, tmp_path / "one", tmp_path / "one.parquet")
    assert len(list((tmp_path / "many").glob("part-*.parquet"))) == 10
    assert many.height == one.height == 24
    many, one = many.sort("object_id"), one.sort("object_id")
    assert many["object_id"].to_list() == one["object_id"].to_list()
    assert many["predicted_class"].to_list() == one["predicted_class"].to_list()
    assert np.allclose(many.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy(),
                       one.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy(), atol=1e-5)


def test_lora_without_peft_is_a_one_line_config_error(monkeypatch):
    import sys

    from lcfm.engine.loading import apply_lora
    from lcfm.exceptions import ConfigError

    monkeypatch.setitem(sys.modules, "peft", None)  # what a missing package looks like
    with pytest.raises(ConfigError, match="--lora needs the peft package"):
        apply_lora(torch.nn.Linear(2, 2))


def test_split_file_and_fold_choose_the_objects(labeled_dir, tmp_path):
    """`splits` (object_id -> split, fold) replaces the random split; `fold` picks one."""
    ids = sorted({f"1.{3000 + i}.{i}" for i in range(24)})
    rows = []
    for fold in (0, 1):
        for k, oid in enumerate(ids):
            split = ("train", "train", "validation", "test")[(k + fold) % 4]
            rows.append({"object_id": oid, "split": split, "fold": fold})
    pl.DataFrame(rows).write_csv(tmp_path / "splits.csv")
    summary = finetune(args(labeled_dir, tmp_path / "run", max_steps=2, eval_every=1,
                            splits=tmp_path / "splits.csv", fold=1, baseline=False))
    written = pl.read_parquet(tmp_path / "run" / "splits.parquet")
    expected = {r["object_id"]: r["split"] for r in rows if r["fold"] == 1}
    assert {r["object_id"]: r["split"] for r in written.iter_rows(named=True)} == expected
    assert summary["split_file"]["fold"] == 1 and summary["test_objects"] == 6
    from lcfm.exceptions import ConfigError

    with pytest.raises(ConfigError, match="folds"):  # a file with folds needs --fold
        finetune(args(labeled_dir, tmp_path / "nofold", max_steps=1,
                      splits=tmp_path / "splits.csv", baseline=False))


def test_gradient_accumulation_steps_once_per_grad_accum_micro_batches(labeled_dir, tmp_path,
                                                                       monkeypatch):
    import lcfm.engine.finetune as engine

    calls = []
    step = engine.optimiser_step

    def counting(accelerator, *a, **kw):
        calls.append(accelerator.sync_gradients)
        return step(accelerator, *a, **kw)

    monkeypatch.setattr(engine, "optimiser_step", counting)
    summary = finetune(args(labeled_dir, tmp_path / "acc", max_steps=3, batch_size=4,
                            grad_accum=2, baseline=False, workers=0))
    assert calls == [False, True] * 3  # the optimiser steps at every second micro-batch
    run = summary["recipe"]["run"]
    assert summary["steps"] == 3 and run["effective_batch_size"] == 8
    assert run["mixed_precision"] == "no"  # fp32 on a CPU unless asked


def test_report_to_names_a_missing_tracker_package(labeled_dir, tmp_path):
    import importlib.util

    from lcfm.exceptions import ConfigError

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed")
    with pytest.raises(ConfigError, match="--report-to wandb needs the wandb package"):
        finetune(args(labeled_dir, tmp_path / "wandb", max_steps=1, report_to="wandb"))
