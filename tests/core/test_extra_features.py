"""Classical features fed to the models (`lcfm.engine.extra_features`, issue 12 item 3):
a quantile-normal scaler fitted on training objects only, with missing-value indicators,
saved beside the model; a collator wrapper adding `extra_features` in row order; ATCAT's
route through its metadata token."""

from __future__ import annotations

import importlib.util

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.engine.extra_features import (
    KEY,
    SCALER_FILE,
    attach_features,
    feature_route,
    features_for,
    fit_feature_scaler,
    load_feature_scaler,
    row_feature_table,
    save_feature_scaler,
)
from lcfm.engine.metadata import save_encoder, size_metadata, with_feature_metadata
from lcfm.exceptions import ConfigError, DataError
from lcfm.registry import get_model

FIVEBAND = importlib.util.find_spec("lcfm_survey_fiveband") is not None


def frame(n=40, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    period = 10 ** rng.uniform(-1, 2, n)  # three decades
    amplitude = rng.normal(0.3, 0.1, n)
    amplitude[::7] = np.nan  # missing for some training objects
    amplitude[3] = np.inf
    return pl.DataFrame({
        "object_id": [f"o{i}" for i in range(n)], "label": ["a", "b"] * (n // 2),
        "r_period": period, "r_amplitude": amplitude, "constant": np.ones(n),
        "empty": np.full(n, np.nan)})


def test_scaler_fits_on_training_objects_only_with_missing_indicators():
    features = frame()
    train = [f"o{i}" for i in range(30)]
    scaler = fit_feature_scaler(features, train)
    # a constant and an all-NaN column tell nothing: left out
    assert scaler.columns == ["r_period", "r_amplitude"] and scaler.indicators == ["r_amplitude"]
    assert scaler.n_features == 3 and scaler.train_objects == 30
    assert scaler.names == ["r_period", "r_amplitude", "r_amplitude_missing"]
    x = scaler.transform(features)
    assert x.shape == (40, 3) and x.dtype == np.float32 and np.isfinite(x).all()
    train_x = x[:30]
    assert abs(np.median(train_x[:, 0])) < 0.1 and 0.8 < train_x[:, 0].std() < 1.1
    assert np.abs(x).max() < 2.5  # extremes at Phi^-1(1 - 1/60), held-out ones too
    missing = ~np.isfinite(features["r_amplitude"].to_numpy())
    assert (x[missing, 1] == 0).all() and (x[:, 2] == missing).all()  # inf counts as missing
    # monotone in the raw value: the period order survives the transform
    order = np.argsort(features["r_period"].to_numpy()[:30])
    assert (np.diff(train_x[order, 0]) >= 0).all()
    # held-out values never move the scaler
    shifted = features.with_columns(pl.when(pl.col("object_id").is_in([f"o{i}" for i in
                                                                     range(30, 40)]))
                                    .then(pl.col("r_period") * 1e6).otherwise("r_period"))
    again = fit_feature_scaler(shifted, train)
    np.testing.assert_array_equal(again.quantiles, scaler.quantiles)
    assert np.isfinite(again.transform(shifted)).all()  # far outside: clipped, finite


def test_scaler_round_trips_through_json(tmp_path):
    features = frame()
    scaler = fit_feature_scaler(features, [f"o{i}" for i in range(25)])
    assert load_feature_scaler(tmp_path) is None
    path = save_feature_scaler(tmp_path, scaler)
    assert path.name == SCALER_FILE
    loaded = load_feature_scaler(tmp_path)
    np.testing.assert_array_equal(loaded.transform(features), scaler.transform(features))
    # a frame without a column scores it as missing
    partial = loaded.transform(features.drop("r_amplitude"))
    assert (partial[:, 1] == 0).all() and (partial[:, 2] == 1).all()
    (tmp_path / SCALER_FILE).write_text("{}")
    with pytest.raises(DataError, match="not a features scaler"):
        load_feature_scaler(tmp_path)
    with pytest.raises(DataError, match="no training object"):
        fit_feature_scaler(features, ["nobody"])


class Recorder:
    """A stand-in model collator that records the FlatRows it is given."""

    def __init__(self):
        self.rng, self.seen, self.workers = None, None, 0

    def worker_generator(self):
        self.workers += 1

    def __call__(self, rows):
        self.seen = rows
        return {"n": torch.tensor(len(rows))}


def rows_of(ids):
    return [{"object_id": oid, "time": np.arange(3.0), "value": np.zeros(3, np.float32),
             "error": np.ones(3, np.float32), "band": np.array(["r"] * 3),
             "label": None, "value_kind": "mag", "survey": "x", "meta": {}} for oid in ids]


def test_attach_features_adds_each_rows_object_features_in_row_order():
    features = frame()
    scaler = fit_feature_scaler(features, [f"o{i}" for i in range(30)])
    inner = Recorder()
    collate = attach_features(inner, features, scaler)
    ids = ["o5", "o0", "o5", "o39"]  # windows of one object repeat it
    batch = collate(rows_of(ids))
    expected = scaler.transform(features)[[5, 0, 5, 39]]
    assert batch[KEY].dtype == torch.float32
    np.testing.assert_array_equal(batch[KEY].numpy(), expected)
    np.testing.assert_array_equal(inner.seen.extras[KEY], expected)  # what collators read
    collate.rng = np.random.default_rng(1)  # the engine re-seeds through the wrapper
    assert inner.rng is collate.rng
    collate.worker_generator()
    assert inner.workers == 1
    with pytest.raises(DataError, match="no row for object 'ghost'"):
        collate(rows_of(["o1", "ghost"]))
    table = row_feature_table(pl.DataFrame({"object_id": ["o2", "o3"], "row": [4, 1]}),
                              features, scaler, 6)
    assert table.shape == (6, 3) and (table[0] == 0).all()
    np.testing.assert_array_equal(table[4], scaler.transform(features)[2])


def test_atcat_takes_features_through_its_metadata_token(tmp_path):
    features = frame()
    scaler = fit_feature_scaler(features, [f"o{i}" for i in range(30)])
    plugin = get_model("atcat")
    config = plugin.make_config("tiny") if "tiny" in plugin.configurations else \
        plugin.make_config()
    assert feature_route(config) == "metadata"
    encoder = with_feature_metadata(None, features, scaler)
    part = pl.DataFrame({"object_id": ["o7", "o1"]})
    np.testing.assert_array_equal(encoder.encode(part), scaler.transform(features)[[7, 1]])
    size_metadata(config, encoder, part, fresh_model=True)
    assert config.metadata_dim == 3
    with pytest.raises(ConfigError, match="metadata_dim is 5; metadata with the features gives 3"):
        config.metadata_dim = 5
        size_metadata(config, encoder, part, fresh_model=False)
    config.metadata_dim = 0  # a checkpoint pretrained without metadata gets a new token
    size_metadata(config, encoder, part, fresh_model=False)
    assert config.metadata_dim == 3
    save_encoder(encoder, "x", tmp_path)  # features only: no survey encoder file
    assert not (tmp_path / "metadata_encoder.json").exists()
    with pytest.raises(ConfigError, match="takes no extra features"):
        feature_route(object())


@pytest.mark.skipif(not FIVEBAND, reason="pip install -e tests/plugin_fiveband")
def test_features_reach_a_classification_head(tmp_path):
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey
    from lcfm.shards import read_shards
    from lcfm_survey_fiveband.make_sample import write_sample

    survey = get_survey("fiveband")
    ingest(survey, write_sample(tmp_path / "raw", 8, seed=2, extras=False), tmp_path / "data")
    features = features_for(tmp_path / "data", tmp_path / "model")
    assert (tmp_path / "model" / "features.parquet").exists() and features.height == 8
    rows = read_shards(tmp_path / "data")
    train = rows["object_id"].to_list()[:6]
    scaler = fit_feature_scaler(features, train)
    plugin = get_model("astromer")
    config = plugin.make_config("tiny", num_extra_features=scaler.n_features)
    assert feature_route(config) == "head"
    config.num_labels, config.label2id = 2, {"RRL": 0, "CEP": 1}
    config.id2label = {0: "RRL", 1: "CEP"}
    model = plugin.classification_class(config).eval()
    collate = attach_features(plugin.collator(config, task="classify", train=False,
                                              bands=survey.bands,
                                              label2id=config.label2id),
                              features, scaler)
    batch = collate([dict(r) for r in rows.head(4).iter_rows(named=True)])
    assert batch[KEY].shape == (4, scaler.n_features)
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits
        batch[KEY] = batch[KEY] + 3.0
        moved = model(**batch).logits
    assert logits.shape == (4, 2) and labels.shape == (4,)
    assert not torch.allclose(logits, moved)  # the head reads the features


@pytest.mark.skipif(not FIVEBAND, reason="pip install -e tests/plugin_fiveband")
def test_atcat_collator_reads_the_features_from_the_metadata_field(tmp_path):
    from lcfm.engine.metadata import with_metadata
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey
    from lcfm.shards import read_shards

    survey = get_survey("fiveband")
    ingest(survey, None, tmp_path / "data")
    rows = read_shards(tmp_path / "data")
    features = features_for(tmp_path / "data", tmp_path / "model")
    scaler = fit_feature_scaler(features, rows["object_id"].to_list()[:6])
    plugin = get_model("atcat")
    config = plugin.make_config("tiny") if "tiny" in plugin.configurations else \
        plugin.make_config()
    encoder = with_feature_metadata(None, features, scaler)
    size_metadata(config, encoder, rows, fresh_model=True)
    frame = with_metadata(rows.head(3), encoder, config)
    collate = plugin.collator(config, task="classify", train=False, bands=survey.bands)
    batch = collate([dict(r) for r in frame.iter_rows(named=True)])
    expected = scaler.transform(features)[[features["object_id"].to_list().index(o)
                                           for o in frame["object_id"]]]
    np.testing.assert_allclose(batch["metadata"].numpy(), expected, rtol=1e-6)
