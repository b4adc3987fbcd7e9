"""`lcfm fold` (lcfm.fold): light curves folded at each object's period."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from lcfm.exceptions import DataError
from lcfm.fold import NO_PERIOD, NOT_IN_TABLE, FoldArgs, best_period, fold, fold_frame
from lcfm.schema import conform, make_frame
from lcfm.shards import ShardWriter, read_shards


def sparse_times(rng, nights=80, span=2500.0):
    """Sparse nights over years (tens of days apart), each at a random time of night."""
    return np.sort(rng.uniform(0.0, span, nights).round() + rng.uniform(0.2, 0.4, nights))


def star(object_id, period, rng, kind="mag", bands=("g", "r"), label="RRL", segments=1):
    """Rows of one star: a sawtooth of `period` days, bands offset in level, the
    observations split into `segments` rows per band."""
    rows = []
    for b, band in enumerate(bands):
        t = sparse_times(rng)
        phase = (t / period) % 1
        shape = np.where(phase < 0.1, 1 - phase / 0.1, (phase - 0.1) / 0.9) - 0.5
        level = 17.0 + 0.5 * b if kind == "mag" else 200.0 - 50.0 * b
        v = level + (0.4 if kind == "mag" else -40.0) * shape + rng.normal(0, 0.01, t.size)
        for part in np.array_split(np.arange(t.size), segments):
            rows.append({"object_id": object_id, "survey": "fiveband", "time": t[part],
                         "value": v[part].astype(np.float32),
                         "error": np.full(part.size, 0.01, np.float32),
                         "band": np.array([band] * part.size), "value_kind": kind,
                         "label": label, "meta": {"true_period": period}})
    return rows


@pytest.mark.parametrize("kind", ["mag", "flux"])
@pytest.mark.parametrize("period", [0.5613, 3.718])
def test_one_star_folds_at_its_period_with_phase_zero_at_maximum_light(kind, period):
    rng = np.random.default_rng(int(period * 100))
    rows = star("s1", period, rng, kind=kind)
    frame = conform(make_frame(rows))
    out = fold_frame(frame)
    meta = out["meta"].struct.unnest()
    assert abs(meta["fold_period"][0] / period - 1) < 0.01
    for i, original in enumerate(rows):
        t = out["time"][i].to_numpy()
        assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < meta["fold_period"][i]
        # the same observations, only reordered: every (value, band) pair is kept
        assert sorted(out["value"][i].to_list()) == sorted(original["value"].tolist())
        assert set(out["band"][i].to_list()) == set(original["band"])
    # phase 0 is maximum light: the brightest point of the chosen band has folded time 0
    band = meta["fold_band"][0]
    row = [r for r in range(out.height) if out["band"][r][0] == band][0]
    values = out["value"][row].to_numpy()
    brightest = values.argmin() if kind == "mag" else values.argmax()
    assert out["time"][row][int(brightest)] == 0.0
    # folded at the true period, a sawtooth rises then declines: first points brightest
    assert out["label"].to_list() == [r["label"] for r in rows]


def test_best_period_takes_the_band_with_the_lowest_false_alarm_probability():
    rng = np.random.default_rng(1)
    t = sparse_times(rng, nights=80)
    clean = 15 + 0.3 * np.sin(2 * np.pi * t / 0.71) + rng.normal(0, 0.01, t.size)
    noisy = 15 + 0.3 * np.sin(2 * np.pi * t / 0.71) + rng.normal(0, 0.3, t.size)
    period, band, fap = best_period(np.r_[t, t], np.r_[noisy, clean],
                                    np.full(2 * t.size, 0.01),
                                    np.array(["u"] * t.size + ["r"] * t.size))
    assert band == "r" and abs(period / 0.71 - 1) < 0.01 and fap < 1e-6
    assert np.isnan(best_period(t[:3], clean[:3], np.full(3, 0.01), ["r"] * 3)[0])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six stars, each with two rows per band split over two shards, and one star with
    too few points for any period."""
    path = tmp_path_factory.mktemp("fold-data")
    rng = np.random.default_rng(7)
    rows = []
    for i, period in enumerate([0.43, 0.61, 0.87, 2.9, 5.3, 9.7]):
        rows += star(f"s{i}", period, rng, label="RRL" if period < 1 else "CEP", segments=2)
    rows.append({**star("short", 0.5, rng)[0]})
    rows[-1].update({k: rows[-1][k][:4] for k in ("time", "value", "error", "band")})
    with ShardWriter(path, rows_per_shard=13) as writer:
        for r in rows:
            writer.add(r)
    return path


def test_dataset_folds_per_object_over_shards_and_counts_what_it_drops(dataset, tmp_path):
    report = fold(FoldArgs(data=dataset, output=tmp_path / "folded", chunk_rows=5))
    out = read_shards(tmp_path / "folded")
    assert report["light_curves_read"] == 25 and report["light_curves_written"] == 24
    assert report["dropped"][NO_PERIOD] == 1 and "short" not in out["object_id"].to_list()
    meta = out["meta"].struct.unnest()
    # every row of one object shares one period and epoch, and it is the true one
    per_object = out.select("object_id", meta["fold_period"], meta["fold_epoch"]).group_by(
        "object_id").agg(pl.all().n_unique())
    assert (per_object["fold_period"] == 1).all() and (per_object["fold_epoch"] == 1).all()
    assert ((meta["fold_period"] / meta["true_period"] - 1).abs() < 0.01).all()
    on_disk = json.loads((tmp_path / "folded" / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    card = (tmp_path / "folded" / "README.md").read_text()
    assert "Folded by `lcfm fold`" in card and "days since phase 0" in card
    assert "24 of 25 light curves folded" in card and NO_PERIOD in card


def test_two_workers_write_the_same_dataset(dataset, tmp_path):
    fold(FoldArgs(data=dataset, output=tmp_path / "one", chunk_rows=4))
    fold(FoldArgs(data=dataset, output=tmp_path / "two", chunk_rows=4, workers=2))
    assert read_shards(tmp_path / "one").equals(read_shards(tmp_path / "two"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_periods_table_gives_the_periods_and_missing_objects_are_counted(dataset, tmp_path,
                                                                          suffix):
    table = pl.DataFrame({"object_id": ["s0", "s3", "short"], "period": [0.43, 2.9, 0.5]})
    path = tmp_path / f"periods{suffix}"
    table.write_csv(path) if suffix == ".csv" else table.write_parquet(path)
    report = fold(FoldArgs(data=dataset, output=tmp_path / "out", periods=path))
    out = read_shards(tmp_path / "out")
    assert sorted(out["object_id"].unique()) == ["s0", "s3", "short"]
    assert report["dropped"][NOT_IN_TABLE] == 16  # s1, s2, s4, s5: 4 rows each
    meta = out["meta"].struct.unnest()
    assert set(meta["fold_period"].to_list()) == {0.43, 2.9, 0.5}


def test_features_output_is_a_periods_table(dataset, tmp_path):
    from lcfm.features_io import extract_features

    extract_features(dataset, tmp_path / "features.parquet")
    fold(FoldArgs(data=dataset, output=tmp_path / "a", periods=tmp_path / "features.parquet"))
    fold(FoldArgs(data=dataset, output=tmp_path / "b"))
    assert read_shards(tmp_path / "a").equals(read_shards(tmp_path / "b"))


def test_bad_periods_table_is_a_one_line_error_before_any_output(dataset, tmp_path,
                                                                 lcfm_cli):
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"object_id": ["s0", "s0"], "period": [1.0, 2.0]}).write_csv(bad)
    with pytest.raises(DataError, match="'s0' appears 2 times"):
        fold(FoldArgs(data=dataset, output=tmp_path / "x", periods=bad))
    pl.DataFrame({"name": ["s0"], "period": [1.0]}).write_csv(bad)
    code, _, err = lcfm_cli("fold", "--data", dataset, "--output", tmp_path / "y",
                            "--periods", bad)
    assert code == 2 and "no 'object_id' column" in err and str(bad) in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y").exists() or not list((tmp_path / "y").glob("part-*"))


def test_features_of_folded_curves_are_refused_in_one_line(five_band, lcfm_cli, tmp_path):
    code, _, err = lcfm_cli("features", "--data", five_band / "folded", "--output",
                            tmp_path / "f.parquet")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "folded by lcfm fold" in err and "unfolded folder" in err


def test_cli_folds_and_reports(dataset, tmp_path, lcfm_cli):
    code, out, _ = lcfm_cli("fold", "--data", dataset, "--output", tmp_path / "f")
    assert code == 0 and "24 of 25 light curves folded" in out and "1 no Lomb-Scargle" in out
    code, _, err = lcfm_cli("fold", "--data", dataset, "--output", tmp_path / "f")
    assert code == 2 and "already holds" in err


def test_folded_five_band_classes_differ_in_folded_span(tmp_path):
    """The issue's scenario in small: RR Lyrae vs Cepheids in sparse five-band data. Folded,
    the classes differ in the folded time span, which every model's time encoding reads."""
    from lcfm.registry import get_survey
    from lcfm.simulate import simulate

    simulate(get_survey("fiveband"), 60, tmp_path / "raw", seed=0)
    report = fold(FoldArgs(data=tmp_path / "raw", output=tmp_path / "folded"))
    assert report["light_curves_written"] == 60
    meta = read_shards(tmp_path / "folded")["meta"].struct.unnest()
    recovered = (meta["fold_period"] / meta["sim_period"] - 1).abs() < 0.01
    assert recovered.mean() > 0.9
    spans = read_shards(tmp_path / "folded").select(
        "label", span=pl.col("time").list.max())
    rrl = spans.filter(pl.col("label") == "RRL")["span"]
    cep = spans.filter(pl.col("label") == "CEP")["span"]
    assert rrl.max() < 1.0 < cep.median()


@pytest.fixture(scope="module")
def five_band(tmp_path_factory):
    """40 simulated five-band objects, raw and folded."""
    from lcfm.registry import get_survey
    from lcfm.simulate import simulate

    root = tmp_path_factory.mktemp("fold-fiveband")
    simulate(get_survey("fiveband"), 40, root / "raw", seed=3)
    fold(FoldArgs(data=root / "raw", output=root / "folded"))
    return root


def test_a_model_fine_tuned_on_folded_curves_refuses_unfolded_ones(five_band, lcfm_cli):
    """finetune records the folding (config.lcfm_folded); predict, embed and lcfm.predict
    then refuse light curves folded otherwise, in one line naming what to do."""
    import lcfm
    from lcfm.engine.finetune import FinetuneArgs, finetune
    from lcfm.registry import get_model

    run = five_band / "clf"
    finetune(FinetuneArgs(data=five_band / "folded", model="astromer-v2", output=run,
                          max_steps=1, batch_size=8, progress=False,
                          config_overrides=dict(get_model("astromer").tiny)))
    assert json.loads((run / "config.json").read_text())["lcfm_folded"] is True
    # the baseline needs the unfolded times: it says so instead of scoring folded ones
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["baseline_macro_f1"] is None
    assert "folded by lcfm fold" in metrics["baseline_note"]
    code, _, err = lcfm_cli("predict", "--model", run, "--data", five_band / "raw",
                            "--output", five_band / "p.parquet")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "trained on light curves folded" in err and "lcfm fold" in err
    with pytest.raises(DataError, match="are not folded"):
        lcfm.predict(run, five_band / "raw")
    assert lcfm.predict(run, five_band / "folded").height == 40
    # in memory: fold a frame, then classify it
    in_memory = fold_frame(read_shards(five_band / "raw"))
    assert lcfm.predict(run, in_memory)["object_id"].n_unique() == 40
    code, _, err = lcfm_cli("predict", "--model", run, "--data", five_band / "folded",
                            "--output", five_band / "p.parquet")
    assert code == 0, err


def test_a_model_trained_unfolded_refuses_folded_curves(five_band):
    import lcfm
    from lcfm.engine.finetune import FinetuneArgs, finetune
    from lcfm.registry import get_model

    run = five_band / "raw-clf"
    finetune(FinetuneArgs(data=five_band / "raw", model="astromer-v2", output=run,
                          max_steps=1, batch_size=8, progress=False, baseline=False,
                          config_overrides=dict(get_model("astromer").tiny)))
    with pytest.raises(DataError, match="are folded"):
        lcfm.embed(run, five_band / "folded")
    assert lcfm.embed(run, five_band / "raw").height == 40


def test_real_macho_rr_lyrae_fold_into_smooth_light_curves(shared_data, tmp_path):
    """The ten RR Lyrae c stars of the real MACHO export (two bands each, ~600 points over
    years): each folds at an RRc period, both bands at the same one, and in phase order
    successive points differ much less than in time order (von Neumann's ratio: ~2 for
    points in random order; MACHO's errors, 0.06-0.1 mag, keep it well above 0)."""
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey

    source = tmp_path / "in"
    source.mkdir()
    (source / "export.csv").write_bytes(
        (shared_data / "macho" / "macho_export_rrc_sample.csv").read_bytes())
    ingest(get_survey("macho"), source, tmp_path / "raw")
    report = fold(FoldArgs(data=tmp_path / "raw", output=tmp_path / "folded"))
    assert report["light_curves_read"] == report["light_curves_written"] == 20
    folded = read_shards(tmp_path / "folded")
    meta = folded["meta"].struct.unnest()
    periods = folded.select("object_id", period=meta["fold_period"]).unique()
    assert periods.height == 10  # one period per star, shared by its B and R rows
    assert periods["period"].is_between(0.2, 0.5).all()  # RRc: 0.2-0.5 d

    def von_neumann(frame):
        return {(o, b[0]): float(np.mean(np.diff(v.to_numpy()) ** 2) / np.var(v.to_numpy()))
                for o, b, v in zip(frame["object_id"], frame["band"], frame["value"],
                                   strict=True)}

    raw, phased = von_neumann(read_shards(tmp_path / "raw")), von_neumann(folded)
    assert phased.keys() == raw.keys()
    assert all(phased[k] < raw[k] - 0.3 for k in raw), (raw, phased)
    assert np.median(list(phased.values())) < 1.1 < 1.9 < np.median(list(raw.values()))
