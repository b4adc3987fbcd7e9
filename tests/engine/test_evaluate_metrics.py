"""The metrics the papers report (issue 11, item 4; issue 12, "baseline_macro_f1"):
reconstruction RMSE/R2 on probed points, MC dropout in evaluate, early classification from
the first alert, per-light-curve and per-object metrics, split-file test objects, the
baseline beside the model, and p_unsure."""

import json

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.data import LightCurveDataset
from lcfm.engine.early import early_metrics, early_probabilities, reference_times
from lcfm.engine.evaluate import (
    EvaluateArgs,
    PredictArgs,
    evaluate,
    predict,
    run_evaluate,
    write_splits,
)
from lcfm.engine.inference import inference_collator
from lcfm.engine.predict import WindowedRows
from lcfm.exceptions import ConfigError
from lcfm.registry import get_model, get_survey
from lcfm.schema import make_frame
from lcfm.shards import ShardWriter


def write(path, rows):
    with ShardWriter(path) as writer:
        for row in rows:
            writer.add(row)
    return path


def stamp(config, survey: str, classes=None):
    plugin = get_survey(survey)
    config.lcfm_survey = survey
    config.lcfm_bands = {b: float(w) for b, w in plugin.bands.items()}
    if classes:
        config.num_labels = len(classes)
        config.id2label = dict(enumerate(classes))
        config.label2id = {c: i for i, c in enumerate(classes)}
    return config


def classifier(path, name, survey, classes, **overrides):
    plugin = get_model(name)
    config = stamp(plugin.make_config("tiny", **overrides), survey, classes)
    torch.manual_seed(0)
    plugin.classification_class(config).save_pretrained(path)
    return path


def curve(object_id, n, label=None, survey="macho", band=None, start=0.0, step=1.0,
          seed=0, meta=None):
    rng = np.random.default_rng(seed)
    plugin = get_survey(survey)
    t = start + step * np.arange(n, dtype=np.float64)
    value = np.sin(t / 3.0 + seed) + rng.normal(0, 0.1, n)
    return {"object_id": object_id, "survey": survey, "time": t,
            "value": (value + (15.0 if plugin.value_kind == "mag" else 0.0)).astype(np.float32),
            "error": np.full(n, 0.05, np.float32),
            "band": np.array([band or next(iter(plugin.bands))] * n),
            "value_kind": plugin.value_kind, "label": label,
            "meta": meta if meta is not None else {"field": 1}}


# ---- 1. reconstruction ----------------------------------------------------------------------
def test_reconstruction_rmse_r2_match_a_hand_computation(tmp_path):
    """A tiny Astromer pretraining folder: evaluate's rmse and r2 are those computed here
    from the same windows, probed points and reconstruction, by the papers' formulas."""
    plugin = get_model("astromer")
    config = stamp(plugin.make_config("tiny"), "macho")
    torch.manual_seed(0)
    model = plugin.pretraining_class(config)
    model.save_pretrained(tmp_path / "pre")
    # 70 points: windows of 32, 32 and 6 points; objects of several lengths
    rows = [curve(f"o{i}", n, seed=i) for i, n in enumerate((70, 20, 45, 9))]
    data = write(tmp_path / "d", rows)
    report = evaluate(tmp_path / "pre", data, tmp_path / "eval", seed=3)
    assert report["task"] == "masked_reconstruction"
    assert report["n_objects"] == 4 and report["weighted"] is False
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["rmse"] == report["rmse"]

    frame = make_frame(rows)
    collate = inference_collator(plugin, config, config.lcfm_bands, 3, task="pretrain")
    windows = WindowedRows(LightCurveDataset(frame), plugin.inference_window(config))
    squared, total, points, per_window = 0.0, 0.0, 0, []
    model.eval()
    with torch.no_grad():
        for i in range(len(windows)):  # one window per batch: the masks do not depend on it
            batch = collate([windows[i]])
            y = batch["target_values"][0].double().numpy()
            probe = (batch["probe_mask"][0] & batch["attention_mask"][0].bool()).numpy()
            y_hat = model(**batch).reconstruction[0].double().numpy()
            if not probe.any():
                continue
            residual = ((y_hat - y)[probe] ** 2).sum()
            squared += residual
            total += ((y[probe] - y[probe].mean()) ** 2).sum()
            points += int(probe.sum())
            per_window.append(residual / probe.sum())
    assert report["n_points"] == points and report["n_windows"] == len(per_window) > 4
    assert report["rmse"] == pytest.approx(np.sqrt(squared / points), rel=1e-5)
    assert report["r2"] == pytest.approx(1 - squared / total, rel=1e-5)
    assert report["rmse_window_mean"] == pytest.approx(np.sqrt(np.mean(per_window)), rel=1e-5)
    # a fixed seed: the same probed points, the same numbers
    again = evaluate(tmp_path / "pre", data, tmp_path / "eval2", seed=3)
    assert again["rmse"] == report["rmse"]


def test_reconstruction_astroco_and_split_file(tmp_path):
    """AstroCo names its probed points target_mask; a split file restricts the objects."""
    plugin = get_model("astroco")
    torch.manual_seed(0)
    plugin.pretraining_class(stamp(plugin.make_config("tiny"), "macho")).save_pretrained(
        tmp_path / "pre")
    data = write(tmp_path / "d", [curve(f"o{i}", 40, seed=i) for i in range(4)])
    split = tmp_path / "s.csv"
    split.write_text("object_id,split\no0,test\no1,test\no2,train\no3,train\n")
    report = evaluate(tmp_path / "pre", data, tmp_path / "eval", splits=split)
    assert report["n_objects"] == 2 and report["n_points"] > 0
    assert np.isfinite(report["rmse"]) and report["r2"] < 1
    assert report["split_file"]["test_objects"] == 2
    assert evaluate(tmp_path / "pre", data, tmp_path / "e2", splits=split)["rmse"] == \
        report["rmse"]


def test_reconstruction_refused_for_next_value_models(tmp_path):
    plugin = get_model("atcat")
    config = stamp(plugin.make_config("tiny"), "elasticc")
    plugin.pretraining_class(config).save_pretrained(tmp_path / "pre")
    data = write(tmp_path / "d", [curve("a", 20, survey="elasticc")])
    with pytest.raises(ConfigError, match="no masked reconstruction"):
        evaluate(tmp_path / "pre", data, tmp_path / "eval")


# ---- 2. MC dropout --------------------------------------------------------------------------
def test_evaluate_mc_samples(tmp_path):
    classes = ["RRab", "EC"]
    model = classifier(tmp_path / "m", "astrafier", "macho", classes)
    data = write(tmp_path / "d", [curve(f"o{i}", 30, classes[i % 2], seed=i)
                                  for i in range(6)])
    plain = evaluate(model, data, tmp_path / "plain", baseline=False)
    report = evaluate(model, data, tmp_path / "mc", mc_samples=4, baseline=False)
    assert plain["mc_dropout"] is None and report["mc_samples"] == 4
    assert report["mc_dropout"]["passes"] == 4
    assert report["mc_dropout"]["mean_std_predicted_class"] > 0
    assert report["reliability"] != plain["reliability"]  # averaged passes differ
    still = classifier(tmp_path / "nodrop", "astrafier", "macho", classes, dropout=0.0)
    with pytest.raises(ConfigError, match="no active dropout"):
        evaluate(still, data, tmp_path / "x", mc_samples=4)


# ---- 3. early classification from the alert -------------------------------------------------
def test_reference_times_prefer_the_alert():
    rows = [curve("alert", 5, start=0.0, meta={"t_alert": 30.0, "alert_mjd": 60030.0,
                                               "time_offset": 60000.0}),
            curve("mjd", 5, start=0.0, meta={"t_alert": float("nan"), "alert_mjd": 60012.0,
                                             "time_offset": 60000.0}),
            curve("none", 5, start=7.0, meta={"t_alert": float("nan"),
                                              "alert_mjd": float("nan"),
                                              "time_offset": 60000.0})]
    times, kinds = reference_times(make_frame(rows))
    assert times.tolist() == [30.0, 12.0, 7.0]
    assert kinds == ["alert", "alert", "first_observation"]


def test_cutoffs_count_days_from_the_alert(tmp_path):
    """ELAsTiCC-like rows: 30 days of points before the alert at t = 30. A cut-off of d
    days keeps the points up to t = 30 + d, and the model sees exactly those (the
    probabilities are those of the cut light curve); a row without alert counts from its
    first point. evaluate and predict write the per-cut-off metrics."""
    classes = list(get_survey("elasticc").taxonomy.classes)[:2]
    model = classifier(tmp_path / "m", "atcat", "elasticc", classes)
    nan = float("nan")
    rows = [curve(f"a{i}", 50, classes[i % 2], survey="elasticc", seed=i,
                  meta={"t_alert": 30.0, "alert_mjd": 60030.0, "time_offset": 60000.0})
            for i in range(4)]
    rows.append(curve("quiet", 50, classes[0], survey="elasticc", start=0.0,
                      meta={"t_alert": nan, "alert_mjd": nan, "time_offset": 60000.0}))
    frame = make_frame(rows)
    plugin = get_model("atcat")
    from lcfm.engine.save import load_classifier

    _, loaded = load_classifier(model)
    collate = inference_collator(plugin, loaded.config, loaded.config.lcfm_bands)
    table = early_probabilities(loaded, plugin, frame, collate, classes, [0.0, 5.0, 10.0])
    by = {(r["object_id"], r["days"]): r for r in table.iter_rows(named=True)}
    # points at t = 0, 1, ..., 49: t <= 30 + d
    assert [by[("a0", d)]["points"] for d in (0.0, 5.0, 10.0)] == [31, 36, 41]
    assert by[("a0", 0.0)]["reference"] == "alert"
    assert [by[("quiet", d)]["points"] for d in (0.0, 5.0, 10.0)] == [1, 6, 11]
    assert by[("quiet", 0.0)]["reference"] == "first_observation"
    cut = write(tmp_path / "cut", [dict(rows[0], **{k: rows[0][k][:36] for k in
                                                   ("time", "value", "error", "band")})])
    alone = predict(model, cut, tmp_path / "alone.parquet")
    assert by[("a0", 5.0)]["p_" + classes[0]] == pytest.approx(alone["p_" + classes[0]][0],
                                                               rel=1e-5)
    steps = early_probabilities(loaded, plugin, frame, collate, classes)
    assert steps.filter(pl.col("object_id") == "a0")["days"].to_list()[:2] == [-30.0, -29.0]

    data = write(tmp_path / "d", rows)
    report = evaluate(model, data, tmp_path / "eval", cutoffs=[0.0, 5.0, 10.0],
                      baseline=False)
    early = json.loads((tmp_path / "eval" / "early_metrics.json").read_text())
    assert early["counted_from"] == {"alert": 4, "first_observation": 1}
    assert [c["days"] for c in early["cutoffs"]] == [0.0, 5.0, 10.0]
    assert all(c["n_objects"] == 5 and 0 <= c["macro_f1"] <= 1 for c in early["cutoffs"])
    assert report["early"]["cutoffs"] == early["cutoffs"]
    catalog = predict(PredictArgs(model=model, data=data, output=tmp_path / "cat.parquet",
                                  cutoffs="0,5,10"))
    assert catalog.height == 5
    written = json.loads((tmp_path / "cat_early_metrics.json").read_text())
    assert written["cutoffs"] == early["cutoffs"]
    # cut-offs work with any model; probabilities after every point need a causal one
    other = classifier(tmp_path / "s", "astrafier", "macho", ["RRab", "EC"])
    short = write(tmp_path / "m2", [curve("x", 10, "RRab"), curve("y", 10, "EC", seed=1)])
    scored = evaluate(other, short, tmp_path / "e2", cutoffs=[2.0], baseline=False)
    assert scored["early"]["cutoffs"][0]["n_objects"] == 2
    assert scored["early"]["counted_from"] == {"alert": 0, "first_observation": 2}
    with pytest.raises(ConfigError, match="causal"):
        predict(other, short, tmp_path / "c2.parquet", early=True)


def test_early_metrics_on_a_constructed_table():
    """Per cut-off macro F1 and class-balanced F1 from known probabilities; an object with
    two light curves is averaged weighted by points; one with no point yet is counted."""
    table = pl.DataFrame({
        "object_id": ["a", "b", "c", "c", "a", "b", "c", "d"],
        "reference": ["alert"] * 8,
        "days": [1.0, 1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 9.0],
        "points": [2, 2, 1, 3, 5, 5, 6, 4],
        "p_X": [0.9, 0.8, 0.9, 0.2, 0.9, 0.2, 0.1, 0.3],
        "p_Y": [0.1, 0.2, 0.1, 0.8, 0.1, 0.8, 0.9, 0.7]})
    objects = {"a": "X", "b": "Y", "c": "Y", "d": "Y"}
    report = early_metrics(table, ["X", "Y"], [1.0, 9.0], objects)
    first, late = report["cutoffs"]
    # day 1: a -> X (right), b -> X (wrong), c: (0.9*1 + 0.2*3)/4 = 0.375 -> Y (right);
    # d has no point yet. Confusion [[1, 0], [1, 1]]: F1(X) = 2/3, F1(Y) = 2/3
    assert first["n_objects"] == 3 and first["n_objects_without_points"] == 1
    assert first["macro_f1"] == pytest.approx(2 / 3)
    assert first["accuracy"] == pytest.approx(2 / 3)
    # class-balanced: X weight 1, Y weight 1/2 per object -> m = [[1, 0], [.5, .5]]
    # P(X) = 1/1.5, R(X) = 1 -> F1 0.8; P(Y) = 1, R(Y) = .5 -> F1 2/3
    assert first["class_balanced_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert late["n_objects"] == 4 and late["macro_f1"] == pytest.approx(1.0)
    assert report["counted_from"] == {"alert": 4, "first_observation": 0}


# ---- 4. per light curve and per object ------------------------------------------------------
def test_per_object_is_observation_weighted_and_both_levels_reported(tmp_path):
    classes = ["RRab", "EC"]
    model = classifier(tmp_path / "m", "astromer", "macho", classes)
    q1, q2 = curve("star", 10, "RRab", seed=1), curve("star", 30, "RRab", seed=2, start=50)
    alone1, alone2 = dict(q1, object_id="q1"), dict(q2, object_id="q2")
    data = write(tmp_path / "d", [q1, q2, alone1, alone2,
                                  curve("other", 25, "EC", seed=3)])
    catalog = predict(model, data, tmp_path / "cat.parquet")
    p = {r["object_id"]: np.array([r[f"p_{c}"] for c in classes])
         for r in catalog.iter_rows(named=True)}
    np.testing.assert_allclose(p["star"], (10 * p["q1"] + 30 * p["q2"]) / 40, atol=1e-5)
    assert not np.allclose(p["star"], (p["q1"] + p["q2"]) / 2, atol=1e-5)
    report = evaluate(model, data, tmp_path / "eval", baseline=False)
    assert report["per_object"]["n"] == report["n"] == 4
    assert report["per_light_curve"]["n"] == report["per_light_curve"]["light_curves"] == 5
    assert report["per_object"]["macro_f1"] == report["macro_f1"]
    assert report["per_light_curve"]["confusion_matrix"]["rows_true_columns_predicted"]


# ---- 5. split files -------------------------------------------------------------------------
def test_split_file_scores_only_its_test_objects(tmp_path):
    classes = ["RRab", "EC"]
    model = classifier(tmp_path / "m", "astromer", "macho", classes)
    rows = [curve(f"o{i}", 20, classes[i % 2], seed=i) for i in range(8)]
    data = write(tmp_path / "d", rows)
    split = tmp_path / "splits.csv"
    lines = ["object_id,split,fold"]
    lines += [f"o{i},{'test' if i < 3 else 'train'},0" for i in range(8)]
    lines += [f"o{i},{'test' if i >= 5 else 'train'},1" for i in range(8)]
    split.write_text("\n".join(lines) + "\n")
    fold0 = evaluate(model, data, tmp_path / "e0", splits=split, fold=0, baseline=False)
    fold1 = run_evaluate(EvaluateArgs(model=model, data=data, output=tmp_path / "e1",
                                      splits=split, fold=1, baseline=False))
    assert fold0["n_objects"] == 3 and fold1["n_objects"] == 3
    assert fold0["not_in_split_test"] == 5 and fold0["split_file"]["fold"] == 0
    assert fold0["split_file"]["test_objects"] == 3
    with pytest.raises(ConfigError, match="folds"):
        evaluate(model, data, tmp_path / "e2", splits=split)


# ---- 6. the baseline beside the model -------------------------------------------------------
def test_baseline_macro_f1_on_the_same_held_out_objects(tmp_path, labeled_dir):
    from lcfm.baseline import baseline_macro_f1
    from lcfm.shards import read_summaries

    model = classifier(tmp_path / "m", "astromer", "macho", ["RRab", "EC"])
    summaries = read_summaries(labeled_dir)
    ids = summaries["object_id"].unique().sort()
    train, test = ids[:16], ids[16:]
    frame = pl.DataFrame({"object_id": ids})
    write_splits(model, {"train": frame[:16], "validation": frame[:0], "test": frame[16:]})
    report = evaluate(model, labeled_dir, tmp_path / "eval")
    assert report["n_objects"] == 8 and report["excluded_training_objects"] == 16
    assert report["baseline_train_objects"] == 16 and report["baseline_test_objects"] == 8
    expected = baseline_macro_f1(labeled_dir, {
        "train": summaries.filter(pl.col("object_id").is_in(train.implode())),
        "test": summaries.filter(pl.col("object_id").is_in(test.implode()))})
    assert report["baseline_macro_f1"] == pytest.approx(expected)
    assert report["baseline_macro_f1"] > 0.5  # sinusoids vs eclipses: periods tell them apart
    bare = classifier(tmp_path / "bare", "astromer", "macho", ["RRab", "EC"])
    none = evaluate(bare, labeled_dir, tmp_path / "e2")
    assert none["baseline_macro_f1"] is None and "no record" in none["baseline_reason"]


# ---- 7. p_unsure ----------------------------------------------------------------------------
def test_p_unsure_column(tmp_path):
    classes = list(get_survey("elasticc").taxonomy.classes)[:2]
    model = classifier(tmp_path / "m", "atcat", "elasticc", classes)
    data = write(tmp_path / "d", [curve("a", 12, survey="elasticc", seed=4)])
    catalog = predict(model, data, tmp_path / "cat.parquet")
    from lcfm.engine.save import load_classifier

    _, loaded = load_classifier(model)
    plugin = get_model("atcat")
    batch = inference_collator(plugin, loaded.config, loaded.config.lcfm_bands)(
        [LightCurveDataset(make_frame([curve("a", 12, survey="elasticc", seed=4)]))[0]])
    with torch.no_grad():
        out = loaded(**batch)
    joint = torch.cat([out.logits, out.unsure_logits[:, None]], -1).softmax(-1)[0]
    assert catalog["p_unsure"][0] == pytest.approx(float(joint[-1]), rel=1e-4)
    assert sum(catalog[f"p_{c}"][0] for c in classes) == pytest.approx(1.0, rel=1e-5)


def test_window_stats_combine_across_chunks():
    """Windows scored in two batches (or shards, or ranks) give the numbers of one pass; a
    known reconstruction: residuals 0.1 and 0.3 on two probed points of window 1 (mean
    target 1), 0.2 on window 2's one probed point (no spread about its own mean)."""
    from lcfm.metrics import (
        reconstruction_from_stats,
        reconstruction_metrics,
        reconstruction_window_stats,
    )

    y = np.array([[0.0, 2.0, 5.0], [1.0, 3.0, 0.0]])
    y_hat = np.array([[0.1, 2.3, 9.0], [1.2, 7.0, 0.0]])
    probe = np.array([[True, True, False], [True, False, False]])
    whole = reconstruction_metrics(y_hat, y, probe)
    parts = np.concatenate([reconstruction_window_stats(y_hat[:1], y[:1], probe[:1]),
                            reconstruction_window_stats(y_hat[1:], y[1:], probe[1:])])
    assert reconstruction_from_stats(parts) == whole
    assert whole["rmse"] == pytest.approx(np.sqrt((0.01 + 0.09 + 0.04) / 3))
    assert whole["r2"] == pytest.approx(1 - 0.14 / 2.0)  # SS_tot: (0-1)^2 + (2-1)^2 + 0
    assert whole["rmse_window_mean"] == pytest.approx(np.sqrt((0.05 + 0.04) / 2))
