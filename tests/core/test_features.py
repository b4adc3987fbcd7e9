"""Classical features (lcfm.features, lcfm.features_io): periods of known periodic signals
recovered within 1% from irregular MACHO-like sampling, moments, colours of a two-band
object, NaN and counts (never an exception) for curves too short, and the dataset-level
extraction: one row per object across shards and tasks, the same table for 1 and 2 workers."""

import json
import math

import numpy as np
import polars as pl
import pytest
from lcfm.exceptions import ConfigError, DataError
from lcfm.features import (
    BAND_FEATURES,
    FeatureConfig,
    FeatureCounts,
    band_features,
    compute_features,
    feature_columns,
)
from lcfm.features_io import extract_features, plan_tasks, summary_path
from lcfm.registry import get_survey, survey_names
from lcfm.shards import ShardWriter, read_shards, shard_paths
from lcfm.simulate import simulate


def macho_like_times(rng, years=7, per_season=60):
    """Nightly-ish visits in ~200-day observing seasons over `years`, at a random time of
    the night: gaps of months and a strong 1-day alias, as MACHO's LMC fields."""
    times = []
    for year in range(years):
        nights = np.sort(rng.choice(200, per_season, replace=False))
        times.append(year * 365.25 + nights + rng.uniform(0.2, 0.45, per_season))
    return np.concatenate(times)


def sawtooth(phase):
    """RR Lyrae ab-like: a fast rise (10% of the cycle), a slow linear decline."""
    return np.where(phase < 0.1, 1 - phase / 0.1, (phase - 0.1) / 0.9) - 0.5


@pytest.mark.parametrize("shape", ["sinusoid", "sawtooth"])
@pytest.mark.parametrize("period", [0.3127, 0.5613, 3.718, 47.3])
def test_period_recovered_within_one_percent(shape, period):
    rng = np.random.default_rng(int(period * 1000))
    t = macho_like_times(rng)
    phase = (t / period + rng.uniform()) % 1
    signal = np.sin(2 * np.pi * phase) * 0.3 if shape == "sinusoid" else 0.6 * sawtooth(phase)
    error = rng.uniform(0.03, 0.08, t.size)
    v = 15 + signal + rng.normal(0, error)
    out = band_features(t, v, error)
    assert abs(out["period"] - period) / period < 0.01, (shape, period, out["period"])
    assert out["period_power"] > 0.3
    assert out["period_fap"] < 1e-6
    assert out["n_obs"] == t.size and out["time_span"] == pytest.approx(np.ptp(t))


def test_noise_has_no_significant_period():
    rng = np.random.default_rng(3)
    t = macho_like_times(rng)
    out = band_features(t, rng.normal(15, 0.05, t.size), np.full(t.size, 0.05))
    assert out["period_fap"] > 1e-3 and out["period_power"] < 0.1


def test_moments_of_a_sinusoid():
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 1000, 2000))
    v = 0.5 * np.sin(2 * np.pi * t / 2.345) + rng.normal(0, 0.001, t.size)
    out = band_features(t, v, np.full(t.size, 0.001))
    assert out["amplitude"] == pytest.approx(0.5, rel=0.01)  # half of max - min
    assert out["std"] == pytest.approx(0.5 / math.sqrt(2), rel=0.03)
    assert abs(out["skew"]) < 0.1
    assert out["kurtosis"] == pytest.approx(-1.5, abs=0.1)  # excess kurtosis of a sine
    assert out["beyond_1std"] == pytest.approx(0.5, abs=0.04)  # |sin| > 1/sqrt(2)
    assert out["ipr_25"] == pytest.approx(2 * 0.5 * math.sin(math.pi / 4), rel=0.03)
    assert out["mean"] == pytest.approx(0.0, abs=0.02)
    assert abs(out["trend_slope"]) < 1e-4
    # a linear ramp: the trend is its slope, and successive differences are tiny (eta ~ 0)
    ramp = band_features(t, 0.002 * t, np.full(t.size, 0.01))
    assert ramp["trend_slope"] == pytest.approx(0.002, rel=1e-6)
    assert ramp["eta"] < 0.01 < out["eta"]


def test_two_point_curve_gives_nans_and_counts():
    counts = FeatureCounts()
    out = band_features(np.array([1.0, 2.0]), np.array([15.0, 15.2]),
                        np.array([0.1, 0.1]), counts=counts)
    assert set(out) == set(BAND_FEATURES)
    assert out["n_obs"] == 2 and out["time_span"] == 1.0
    for name in ("period", "period_power", "period_fap", "skew", "kurtosis", "trend_slope"):
        assert math.isnan(out[name]), name
    frame = rows_frame([row("a", [1.0, 2.0], [15.0, 15.2], "R")])
    counts = FeatureCounts()
    features = compute_features(frame, counts=counts)
    assert features.height == 1 and features["R_n_obs"][0] == 2
    assert counts.nan["R_period"] == 1 and counts.nan["R_skew"] == 1
    assert "R_n_obs" not in counts.nan and counts.objects == 1


def test_unusable_points_dropped_and_equal_times_merged_with_counts():
    counts = FeatureCounts()
    t = np.array([0.0, 1.0, 1.0, 2.0, 3.0, np.nan, 5.0])
    v = np.array([1.0, 2.0, 4.0, 1.0, 2.0, 1.0, np.inf])
    e = np.array([0.1, 0.1, 0.1, 0.0, 0.1, 0.1, 0.1])
    out = band_features(t, v, e, counts=counts)
    assert counts.points_dropped["non_finite_time_or_value"] == 2
    assert counts.points_dropped["non_positive_or_non_finite_error"] == 1
    assert counts.points_dropped["merged_equal_time"] == 1
    assert out["n_obs"] == 3  # t = 0, 1 (two points averaged), 3
    assert out["mean"] == pytest.approx((1 + 3 + 2) / 3)


def row(object_id, t, v, band, label="RRab", kind="mag", error=0.05):
    t = np.asarray(t, float)
    return {"object_id": object_id, "survey": "macho", "time": t,
            "value": np.asarray(v, np.float32), "error": np.full(t.size, error, np.float32),
            "band": np.array([band] * t.size), "value_kind": kind, "label": label,
            "meta": {}}


def rows_frame(rows):
    from lcfm.schema import conform, make_frame

    return conform(make_frame(rows))


@pytest.mark.parametrize("kind", ["mag", "flux"])
def test_colours_of_a_two_band_object(kind):
    rng = np.random.default_rng(0)
    t = macho_like_times(rng, years=2)
    blue = (15.5 if kind == "mag" else 300.0) + rng.normal(0, 0.01, t.size)
    red = (15.0 if kind == "mag" else 100.0) + rng.normal(0, 0.01, t.size)
    # one row per band, red first: bands are still ordered by wavelength (B before R)
    frame = rows_frame([row("1.2.3", t, red, "R", kind=kind),
                        row("1.2.3", t + 0.01, blue, "B", kind=kind)])
    wavelengths = dict(get_survey("macho").bands)
    assert wavelengths["B"] < wavelengths["R"]
    features = compute_features(frame, wavelengths=wavelengths)
    assert features.columns[:2] == ["object_id", "label"]
    assert features.columns[2:] == feature_columns(["B", "R"])
    assert features.height == 1 and features["n_light_curves"][0] == 2
    assert features["n_obs"][0] == 2 * t.size
    expected = 0.5 if kind == "mag" else 3.0  # B - R in magnitudes, B / R in flux
    assert features["color_B_R"][0] == pytest.approx(expected, rel=0.01)
    assert features["B_mean"][0] == pytest.approx(15.5 if kind == "mag" else 300, rel=1e-3)


def test_object_with_two_labels_is_a_one_line_error():
    frame = rows_frame([row("x", [1, 2, 3], [1, 2, 3], "B", label="RRab"),
                        row("x", [4, 5, 6], [1, 2, 3], "R", label="EC")])
    with pytest.raises(DataError, match="'x' carries more than one label"):
        compute_features(frame)


def test_bad_config_is_a_config_error():
    with pytest.raises(ConfigError, match="min_period"):
        FeatureConfig(min_period=0)


def periodic_rows(n_objects=6):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(n_objects):
        t = macho_like_times(rng, years=2, per_season=40)
        period = 0.3 + 0.37 * i
        for band, offset in (("B", 0.4), ("R", 0.0)):
            v = offset + 0.3 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.02, t.size)
            rows.append(row(f"1.1.{i}", t, v, band, label=("RRab", "EC")[i % 2]))
    return rows


@pytest.fixture(scope="module")
def split_dataset(tmp_path_factory):
    """Objects whose two bands are written to different shards (a band per shard)."""
    path = tmp_path_factory.mktemp("features-data")
    rows = periodic_rows()
    with ShardWriter(path, rows_per_shard=6) as writer:
        for r in [r for r in rows if r["band"][0] == "R"] + \
                [r for r in rows if r["band"][0] == "B"]:
            writer.add(r)
    assert len(shard_paths(path)) == 2
    return path


def test_objects_spread_over_shards_get_one_row(split_dataset, tmp_path):
    tasks, bands, surveys = plan_tasks(shard_paths(split_dataset), chunk_rows=4)
    assert bands == ["B", "R"] and surveys == ["macho"]
    # every object spans both shards: tasks over row ranges skip them, one task reads them
    assert sum(t.objects is not None for t in tasks) >= 1
    assert all(set(t.skip) for t in tasks if t.objects is None)
    summary = extract_features(split_dataset, tmp_path / "f.parquet", chunk_rows=4)
    features = pl.read_parquet(tmp_path / "f.parquet")
    assert features.height == 6 == features["object_id"].n_unique()
    assert (features["n_light_curves"] == 2).all()
    assert features["color_B_R"].to_numpy() == pytest.approx(0.4, abs=0.02)
    periods = 0.3 + 0.37 * np.array([int(o.split(".")[-1]) for o in features["object_id"]])
    assert np.abs(features["R_period"].to_numpy() / periods - 1).max() < 0.01
    on_disk = json.loads(summary_path(tmp_path / "f.parquet").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["objects"] == 6 and on_disk["light_curves"] == 12
    assert on_disk["bands"] == ["B", "R"] and on_disk["nan_values"] == {}


def test_two_workers_write_the_same_table(split_dataset, tmp_path):
    one = extract_features(split_dataset, tmp_path / "one.parquet", workers=1, chunk_rows=3)
    two = extract_features(split_dataset, tmp_path / "two.parquet", workers=2, chunk_rows=3)
    assert one["tasks"] == two["tasks"] > 2
    assert pl.read_parquet(tmp_path / "one.parquet").equals(
        pl.read_parquet(tmp_path / "two.parquet"))


def test_output_that_is_a_folder_is_refused(split_dataset, tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        extract_features(split_dataset, tmp_path)


@pytest.mark.parametrize("name", survey_names())
def test_every_simulated_survey_gets_one_feature_row_per_object(name, tmp_path):
    plugin = get_survey(name)
    try:
        simulate(plugin, 12, tmp_path / "data", seed=1)
    except ConfigError:
        pytest.skip(f"survey {name!r} has no simulator")
    summary = extract_features(tmp_path / "data", tmp_path / "f.parquet")
    features = pl.read_parquet(tmp_path / "f.parquet")
    rows = read_shards(tmp_path / "data")
    bands = summary["bands"]
    assert set(bands) <= set(plugin.bands)
    assert [plugin.bands[b] for b in bands] == sorted(plugin.bands[b] for b in bands)
    assert features.columns == ["object_id", "label", *feature_columns(bands)]
    assert sorted(features["object_id"]) == sorted(rows["object_id"].unique())
    points = rows.group_by("object_id").agg(pl.col("time").list.len().sum().alias("n"))
    joined = features.join(points, on="object_id")
    assert (joined["n_obs"] == joined["n"]).all()
    assert summary["points"] == int(points["n"].sum())
    # every object has some band with a period (simulated curves have >= 8 points)
    periods = features.select(pl.col(f"{b}_period" for b in bands)).to_numpy()
    assert np.isfinite(periods).any(axis=1).mean() > 0.5


def test_real_macho_stars_combine_their_two_bands(shared_data):
    """Real MACHO files hold one band per light curve: each star becomes one row with B and
    R features and a B - R colour."""
    from lcfm.ingest import read_rows
    from lcfm.schema import conform, make_frame

    plugin = get_survey("macho")
    rows, _ = read_rows(plugin, shared_data / "macho")
    frame = conform(make_frame(rows))
    counts = FeatureCounts()
    features = compute_features(frame, wavelengths=dict(plugin.bands), counts=counts)
    assert features.height == frame["object_id"].n_unique() < frame.height
    assert counts.light_curves == frame.height and counts.objects == features.height
    both = features.filter(pl.col("n_light_curves") == 2)
    assert both.height > 0 and both["color_B_R"].is_finite().all()
    assert (both["n_obs"] == both["B_n_obs"] + both["R_n_obs"]).all()


def test_features_args_declare_the_command(split_dataset, tmp_path):
    from dataclasses import fields

    from lcfm.features_io import FeaturesArgs, features
    from lcfm.options import on_cli, option_help

    declared = {f.name: f for f in fields(FeaturesArgs)}
    assert all(option_help(f) for f in declared.values() if on_cli(f))
    assert not on_cli(declared["progress"])
    summary = features(FeaturesArgs(data=split_dataset, output=tmp_path / "f.parquet",
                                    min_period=0.5, chunk_rows=4))
    assert summary["config"]["min_period"] == 0.5 and summary["objects"] == 6
    period = dict(pl.read_parquet(tmp_path / "f.parquet").select("object_id", "R_period")
                  .iter_rows())
    assert min(period.values()) >= 0.5  # 0.3 d (object 1.1.0) lies below the search
