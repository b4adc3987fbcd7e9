"""Inference on what astronomers actually have (issue 9, items 1-4), for every model plugin:
unlabeled rows and foreign labels, whole light curves (all windows), honest MC-dropout
uncertainty, held-out evaluation, and data from another survey."""

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.engine.evaluate import embed, evaluate, predict, write_splits
from lcfm.engine.predict import WindowedRows
from lcfm.exceptions import ConfigError, DataError
from lcfm.registry import get_model, get_survey, model_names
from lcfm.shards import ShardWriter


def model_survey(plugin) -> str:
    return "elasticc" if plugin.encodes_wavelength else "macho"


def dropout_fields(config, rate: float) -> dict:
    """Every dropout rate of a configuration (each plugin names its own) set to `rate`."""
    return {k: rate for k, v in config.to_dict().items()
            if "dropout" in k and isinstance(v, float)}


def build_classifier(path, name: str, dropout: float | None = None):
    """A tiny, randomly initialised classifier folder over two classes of its survey."""
    plugin = get_model(name)
    config = plugin.make_config("tiny")
    if dropout is not None:
        config = plugin.make_config("tiny", **dropout_fields(config, dropout))
    survey = get_survey(model_survey(plugin))
    classes = list(survey.taxonomy.classes)[:2]
    config.num_labels = 2
    config.id2label = dict(enumerate(classes))
    config.label2id = {c: i for i, c in enumerate(classes)}
    config.lcfm_survey = survey.name
    config.lcfm_bands = {b: float(w) for b, w in survey.bands.items()}
    torch.manual_seed(0)
    plugin.classification_class(config).save_pretrained(path)
    return path, plugin, config, classes


def light_curve(object_id, survey, values, label=None, band=None, start=100.0):
    plugin = get_survey(survey)
    n = len(values)
    offset = 15.0 if plugin.value_kind == "mag" else 0.0
    return {"object_id": object_id, "survey": survey,
            "time": start + 0.7 * np.arange(n, dtype=np.float64),
            "value": (np.asarray(values) + offset).astype(np.float32),
            "error": np.full(n, 0.05, np.float32),
            "band": np.array([band or next(iter(plugin.bands))] * n),
            "value_kind": plugin.value_kind, "label": label, "meta": {"field": 1}}


def write(path, rows):
    with ShardWriter(path) as writer:
        for row in rows:
            writer.add(row)
    return path


def signal(n, seed, kind="noise"):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.normal(0, 1, n)
    return 3 * np.sin(np.arange(n) / 3.0) + rng.normal(0, 0.1, n)


@pytest.fixture(scope="module", params=model_names())
def tiny(request, tmp_path_factory):
    return build_classifier(tmp_path_factory.mktemp(request.param) / "clf", request.param)


def test_windows_cover_every_observation():
    from lcfm.data import LightCurveDataset
    from lcfm.schema import make_frame

    frame = make_frame([light_curve("a", "macho", np.zeros(25)),
                        light_curve("b", "macho", np.zeros(7))])
    windows = WindowedRows(LightCurveDataset(frame), 10)
    assert windows.observations.tolist() == [10, 10, 5, 7]
    assert windows.row_observations().tolist() == [25, 7]
    assert [len(windows[i]["time"]) for i in range(len(windows))] == [10, 10, 5, 7]
    assert windows[2]["time"][0] == pytest.approx(100.0 + 0.7 * 20)
    # observation-weighted mean: 10, 10 and 5 observations
    per_row = windows.per_row(np.array([[1.0], [1.0], [4.0], [2.0]]))
    assert per_row[:, 0].tolist() == pytest.approx([(10 + 10 + 20) / 25, 2.0])


def test_whole_light_curves_every_model(tiny, tmp_path):
    """A light curve of 3 windows: every point is used, the prediction is the
    observation-weighted mean of its windows', and differs from the first window's."""
    path, plugin, config, classes = tiny
    survey = model_survey(plugin)
    window = plugin.inference_window(config)
    assert window and window > 1, f"{plugin.name}: collator truncates, window must be set"
    first = signal(window, 1)
    later = np.concatenate([signal(window, 2, "sine"), signal(window, 3, "sine")])
    full = np.concatenate([first, later])
    pieces = [full[i * window:(i + 1) * window] for i in range(3)]
    data = write(tmp_path / "d", [
        light_curve("long", survey, full, label=classes[0]),
        light_curve("first", survey, first, label=classes[0]),
        *[light_curve(f"w{i}", survey, p, start=100.0 + 0.7 * i * window)
          for i, p in enumerate(pieces)]])
    catalog = predict(path, data, tmp_path / "cat.parquet", batch_size=2)
    by_id = {r["object_id"]: r for r in catalog.iter_rows(named=True)}
    assert by_id["long"]["n_observations_used"] == 3 * window
    assert by_id["first"]["n_observations_used"] == window
    p = {o: np.array([by_id[o][f"p_{c}"] for c in classes]) for o in by_id}
    assert not np.allclose(p["long"], p["first"], atol=1e-6), plugin.name
    assert np.allclose(p["long"], np.mean([p[f"w{i}"] for i in range(3)], 0), atol=1e-4)

    table = embed(path, data, tmp_path / "emb.parquet", batch_size=2)
    vectors = {r["object_id"]: np.array(r["embedding"]) for r in table.iter_rows(named=True)}
    used = dict(zip(table["object_id"], table["n_observations_used"], strict=True))
    assert used["long"] == 3 * window and used["w2"] == window
    assert np.allclose(vectors["long"], np.mean([vectors[f"w{i}"] for i in range(3)], 0),
                       atol=1e-4)
    assert not np.allclose(vectors["long"], vectors["first"], atol=1e-6)


def test_unlabeled_and_foreign_labels_every_model(tiny, tmp_path):
    path, plugin, config, classes = tiny
    survey = model_survey(plugin)
    band = list(get_survey(survey).bands)
    rows = [light_curve("known-0", survey, signal(20, 0), label=classes[0]),
            light_curve("known-1", survey, signal(20, 1, "sine"), label=classes[1]),
            light_curve("none", survey, signal(20, 2)),
            light_curve("foreign", survey, signal(20, 3), label="NotAClass"),
            # one object observed in two bands: one catalog row, both bands' points
            light_curve("two-band", survey, signal(20, 4), band=band[0]),
            light_curve("two-band", survey, signal(15, 5), band=band[-1])]
    data = write(tmp_path / "d", rows)
    catalog = predict(path, data, tmp_path / "cat.parquet")
    assert sorted(catalog["object_id"]) == sorted({r["object_id"] for r in rows})
    assert dict(zip(catalog["object_id"], catalog["n_observations_used"],
                    strict=True))["two-band"] == 35
    assert embed(path, data, tmp_path / "e.parquet").height == catalog.height
    report = evaluate(path, data, tmp_path / "eval")
    assert report["n_objects"] == 2 and report["n"] == 2
    assert report["n_skipped_unlabeled"] == 2 and report["n_skipped_foreign_label"] == 1
    assert report["excluded_training_objects"] is None  # no split record in this folder


def test_evaluate_excludes_training_objects(tiny, tmp_path):
    path, plugin, _, classes = tiny
    survey = model_survey(plugin)
    model = tmp_path / "model"
    import shutil

    shutil.copytree(path, model)
    rows = [light_curve(f"o{i}", survey, signal(20, i), label=classes[i % 2]) for i in range(6)]
    frame = pl.DataFrame({"object_id": [r["object_id"] for r in rows]})
    write_splits(model, {"train": frame[:3], "validation": frame[3:4], "test": frame[4:]})
    data = write(tmp_path / "d", rows)
    report = evaluate(model, data, tmp_path / "eval")
    assert report["n_objects"] == 2 and report["excluded_training_objects"] == 4
    only_training = write(tmp_path / "t", rows[:4])
    with pytest.raises(DataError, match="no held-out object to score: 4 are the model's"):
        evaluate(model, only_training, tmp_path / "eval2")


@pytest.mark.parametrize("name", model_names())
def test_mc_dropout_is_honest_every_model(name, tmp_path):
    """With dropout: MC passes at the model's rate give std > 0; without: one-line error."""
    survey = model_survey(get_model(name))
    data = write(tmp_path / "d", [light_curve(f"o{i}", survey, signal(30, i, "sine"))
                                  for i in range(3)])
    with_dropout, plugin, config, classes = build_classifier(tmp_path / "drop", name, 0.2)
    assert plugin.mc_dropout_modules(
        plugin.classification_class.from_pretrained(with_dropout))
    catalog = predict(with_dropout, data, tmp_path / "cat.parquet", mc_samples=4)
    std = catalog.select([f"std_{c}" for c in classes]).to_numpy()
    assert (std.max(1) > 0).all(), name
    plain = predict(with_dropout, data, tmp_path / "plain.parquet")
    assert not any(c.startswith("std_") for c in plain.columns)

    without, *_ = build_classifier(tmp_path / "nodrop", name, 0.0)
    with pytest.raises(ConfigError, match="no active dropout"):
        predict(without, data, tmp_path / "x.parquet", mc_samples=4)
    with pytest.raises(ConfigError, match="--mc-samples -1"):
        predict(with_dropout, data, tmp_path / "x.parquet", mc_samples=-1)


@pytest.mark.parametrize("name", model_names())
def test_paper_dropout_rates(name):
    """MC dropout runs at each paper configuration's own rates: ASTRAFier p = 0.2 (sect.
    3.6); a configuration without dropout (Astromer 1, ATCAT's full-data model) has none."""
    plugin = get_model(name)
    for configuration in plugin.configurations:
        with torch.device("meta"):
            model = plugin.classification_class(plugin.make_config(configuration))
        rates = {m.p for m in plugin.mc_dropout_modules(model) if hasattr(m, "p")}
        rates |= {m.dropout for m in plugin.mc_dropout_modules(model) if hasattr(m, "dropout")
                  and isinstance(m.dropout, float)}
        expected = {"astrafier": {0.2}, "astromer-v1": set(), "astromer-v2": {0.1},
                    "astroco-s": {0.1}, "astroco-l": {0.1}, "atcat": set()}
        if configuration in expected:
            assert rates == expected[configuration], configuration


def test_other_survey_needs_wavelengths(tiny, tmp_path):
    """Data of another survey: a model that encodes bands by wavelength reads it when every
    band has one and values are of the same kind; any other model is refused in one line
    naming both surveys."""
    path, plugin, _, _ = tiny
    own = model_survey(plugin)
    same_kind = [s for s in ("kepler", "tess_qlp", "atlas")
                 if get_survey(s).value_kind == get_survey(own).value_kind and s != own][0]
    data = write(tmp_path / "d", [light_curve("x", same_kind, signal(20, 0))])
    if plugin.encodes_wavelength:
        catalog = predict(path, data, tmp_path / "cat.parquet")
        assert catalog.height == 1 and catalog["n_observations_used"][0] == 20
        mags = write(tmp_path / "m", [light_curve("y", "macho", signal(20, 0))])
        with pytest.raises(DataError, match="values differ in kind"):
            predict(path, mags, tmp_path / "cat2.parquet")
    else:
        with pytest.raises(DataError, match=f"trained on {own}.*the data are {same_kind}"):
            predict(path, data, tmp_path / "cat.parquet")
        with pytest.raises(DataError, match="does not encode bands by wavelength"):
            evaluate(path, data, tmp_path / "eval")


def test_output_kind_is_checked(tiny, tmp_path):
    path, plugin, _, _ = tiny
    data = write(tmp_path / "d", [light_curve("x", model_survey(plugin), signal(20, 0))])
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a directory"):
        predict(path, data, tmp_path / "dir")
    with pytest.raises(ConfigError, match="is a directory"):
        embed(path, data, tmp_path / "dir")
    with pytest.raises(ConfigError, match="is an existing file"):
        evaluate(path, data, tmp_path / "file")
