"""`lcfm fewshot`: Astromer 2's few-shot protocol (sect. 5.1) on simulated MACHO light
curves, through the CLI, with a tiny Astromer and a frozen encoder."""

import json
from collections import Counter

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.engine.fewshot import FewShotArgs, fewshot, parse_spc, summarise
from lcfm.engine.save import load_classifier
from lcfm.exceptions import ConfigError
from lcfm.registry import get_model, get_survey
from lcfm.simulate import simulate

PER_CLASS = 6  # objects per class: 3 go to each fold's test set, 3 stay for training
TEST_PER_CLASS = 3
STEPS = 4


@pytest.fixture(scope="module")
def macho(tmp_path_factory):
    path = tmp_path_factory.mktemp("fewshot") / "macho"
    plugin = get_survey("macho")
    simulate(plugin, PER_CLASS * len(plugin.taxonomy.classes), path, seed=2)
    return path


@pytest.fixture(scope="module")
def run(macho, tmp_path_factory):
    """spc 2 (no replacement: 3 objects left per class) and 4 (replacement), 2 folds."""
    import sys

    from lcfm_cli.main import main

    out = tmp_path_factory.mktemp("fewshot") / "out"
    tiny = [x for k, v in get_model("astromer").tiny.items()
            for x in ("--config", f"{k}={json.dumps(v)}")]
    argv = ["lcfm", "fewshot", "--data", macho, "--model", "astromer-v2", "--spc", "4,2",
            "--folds", 2, "--test-per-class", TEST_PER_CLASS, "--max-steps", STEPS,
            "--eval-every", STEPS, "--batch-size", 8, "--workers", 0, *tiny, "--output", out]
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", [str(a) for a in argv])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
    finally:
        mp.undo()
    return out, json.loads((out / "fewshot.json").read_text())


def test_one_result_per_scenario_with_balanced_disjoint_folds(run, macho):
    out, report = run
    classes = sorted(get_survey("macho").taxonomy.classes)
    labels = dict(pl.read_parquet(macho / "*.parquet").select("object_id", "label").iter_rows())
    assert [(r["spc"], r["fold"]) for r in report["results"]] == [(2, 0), (2, 1), (4, 0), (4, 1)]
    for r in report["results"]:
        # balanced test set, disjoint from the training objects, labels as counted
        assert r["test_counts"] == {c: TEST_PER_CLASS for c in classes}
        assert Counter(labels[i] for i in r["test_ids"]) == r["test_counts"]
        assert len(set(r["test_ids"])) == len(r["test_ids"])
        assert not set(r["test_ids"]) & set(r["train_ids"])
        assert r["train_counts"] == {c: r["spc"] for c in classes}
        assert Counter(labels[i] for i in r["train_ids"]) == r["train_counts"]
        assert 0.0 <= r["macro_f1"] <= 1.0 and r["steps"] == STEPS
        # every scenario's model and its record of the objects it saw
        splits = pl.read_parquet(out / f"spc-{r['spc']}" / f"fold-{r['fold']}" / "splits.parquet")
        assert set(splits.filter(pl.col("split") == "test")["object_id"]) == set(r["test_ids"])
    by = {(r["spc"], r["fold"]): r for r in report["results"]}
    # the fold's test set is shared by every SPC of that fold (sect. 5.1), folds differ
    assert by[2, 0]["test_ids"] == by[4, 0]["test_ids"] != by[2, 1]["test_ids"]


def test_replacement_when_spc_exceeds_a_class(run):
    _, report = run
    left = PER_CLASS - TEST_PER_CLASS
    for r in report["results"]:
        if r["spc"] <= left:  # enough objects: each drawn once
            assert not r["replaced"] and len(set(r["train_ids"])) == len(r["train_ids"])
        else:  # 4 draws from 3 objects per class: some object is drawn twice
            assert sorted(r["replaced"]) == sorted(r["train_counts"])
            assert all(n <= left for n in r["train_unique_counts"].values())
            assert max(Counter(r["train_ids"]).values()) >= 2


def test_report_keys_summary_and_plot(run):
    out, report = run
    assert {"results", "summary", "mode", "spc", "folds", "test_per_class"} <= set(report)
    assert report["mode"] == "frozen" and report["spc"] == [2, 4]
    for r in report["results"]:
        assert {"spc", "fold", "macro_f1", "train_counts", "test_counts", "train_ids",
                "test_ids"} <= set(r)
    for s in report["summary"]:
        f1 = [r["macro_f1"] for r in report["results"] if r["spc"] == s["spc"]]
        assert s["macro_f1_mean"] == pytest.approx(np.mean(f1))
        assert s["macro_f1_std"] == pytest.approx(np.std(f1))
    png = out / "fewshot.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_frozen_mode_trains_the_head_only(run):
    """The paper's classifier: the same (seeded) encoder in every scenario, heads differ."""
    out, _ = run
    _, a = load_classifier(out / "spc-2" / "fold-0")
    _, b = load_classifier(out / "spc-4" / "fold-1")
    prefix = a.base_model_prefix
    sa, sb = a.state_dict(), b.state_dict()
    # Astromer 2's layer weights train with the classifier (sect. 5.4), as in finetune
    encoder = [k for k in sa if k.startswith(prefix) and not k.endswith("layer_weights")]
    assert len(encoder) > 10 and all(torch.equal(sa[k], sb[k]) for k in encoder)
    head = [k for k in sa if not k.startswith(prefix)]
    assert head and any(not torch.equal(sa[k], sb[k]) for k in head)


def test_bad_arguments_are_one_line_errors(macho, tmp_path):
    with pytest.raises(ConfigError, match="--spc"):
        parse_spc("20,abc")
    with pytest.raises(ConfigError, match="--spc"):
        parse_spc("0,5")
    assert parse_spc("500, 20,100,20") == [20, 100, 500]
    with pytest.raises(ConfigError, match="--mode 'half'"):
        fewshot(FewShotArgs(data=macho, model="astromer-v2", output=tmp_path, mode="half"))
    assert summarise([{"spc": 2, "macro_f1": 0.5}, {"spc": 2, "macro_f1": 1.0}]) == [
        {"spc": 2, "folds": 2, "macro_f1_mean": 0.75, "macro_f1_std": 0.25,
         "macro_f1": [0.5, 1.0]}]


def test_cli_reports_a_bad_spc_in_one_line(lcfm_cli, macho, tmp_path):
    code, _, err = lcfm_cli("fewshot", "--data", macho, "--model", "astromer-v2",
                            "--output", tmp_path / "o", "--spc", "20,x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--spc" in err


def test_adapt_steps_pretrain_from_the_checkpoint_then_classify(macho, tmp_path):
    """Astromer 2's first downstream stage: reconstruction fine-tuning on each scenario's
    training objects, from the given checkpoint, before the classifier."""
    from lcfm.engine.pretrain import PretrainArgs, pretrain

    tiny = dict(get_model("astromer").tiny)
    source = tmp_path / "pretrained"
    pretrain(PretrainArgs(survey="macho", output=source, data=macho, model="astromer-v2",
                          max_steps=2, batch_size=8, workers=0, progress=False,
                          config_overrides=tiny))
    with pytest.raises(ConfigError, match="--adapt-steps 2 with --model astromer-v2"):
        fewshot(FewShotArgs(data=macho, model="astromer-v2", output=tmp_path / "x",
                            adapt_steps=2))
    out = tmp_path / "out"
    report = fewshot(FewShotArgs(
        data=macho, model=str(source), output=out, spc=[2], folds=1,
        test_per_class=TEST_PER_CLASS, adapt_steps=2, max_steps=STEPS, eval_every=STEPS,
        batch_size=8, workers=0, progress=False))
    (result,) = report["results"]
    assert report["adapt_steps"] == 2 and result["adapted_from"] == str(source)
    adapted = out / "spc-2" / "fold-0" / "adapted"
    metrics = json.loads((adapted / "metrics.json").read_text())
    assert metrics["init"]["folder"] == str(source.resolve()) and metrics["steps"] == 2
    # the adaptation saw exactly the scenario's distinct training objects
    adapt_ids = set(pl.read_parquet(out / "spc-2" / "fold-0" / "adapt-data").get_column(
        "object_id").to_list())
    assert adapt_ids == set(result["train_ids"])
    assert not adapt_ids & set(result["test_ids"])
    # and the classifier starts from the adapted weights, not the original checkpoint
    run = json.loads((out / "spc-2" / "fold-0" / "metrics.json").read_text())
    assert str(adapted) in json.dumps(run)
