"""lcfm from Python (issue 13, "Must include" 1 and 2): canonical frames from files, arrays,
pandas, astropy and lightkurve objects; load/embed/predict giving the commands' catalogs;
pretrain/finetune with the CLI's options; the processor saved in every model folder and
found by AutoFeatureExtractor/AutoProcessor after `import lcfm`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import lcfm
import numpy as np
import polars as pl
import pytest
from lcfm.engine.evaluate import embed as engine_embed
from lcfm.engine.evaluate import predict as engine_predict
from lcfm.exceptions import ConfigError, DataError
from lcfm.ingest import ingest
from lcfm.registry import get_model, get_survey
from lcfm.shards import read_shards
from lcfm.simulate import simulate


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A labeled simulated MACHO set, a tiny pretrained Astromer and a classifier fine-tuned
    from it with dropout (for Monte-Carlo dropout), both written by lcfm.pretrain/finetune."""
    root = tmp_path_factory.mktemp("api")
    data = root / "sim"
    simulate(get_survey("macho"), 24, data, seed=1)
    tiny = dict(get_model("astromer").tiny)
    pre = lcfm.pretrain(survey="macho", data=str(data), output=str(root / "pre"),
                        max_steps=4, batch_size=8, config_overrides=tiny)
    clf = lcfm.finetune(data=data, model=str(root / "pre"), output=root / "clf", max_steps=4,
                        batch_size=8, config_overrides={"attention_output_dropout": 0.2,
                                                         "classifier_dropout": 0.2})
    return {"data": data, "pre": root / "pre", "clf": root / "clf", "metrics": (pre, clf)}


def test_read_is_ingest_in_memory(tmp_path):
    sample = get_survey("macho").sample_path()
    frame, report = lcfm.read(sample, survey="macho", return_report=True)
    written = ingest(get_survey("macho"), sample, tmp_path / "ds")
    assert frame.equals(read_shards(tmp_path / "ds"))
    on_disk = json.loads((tmp_path / "ds" / "report.json").read_text())
    for key in ("light_curves_read", "light_curves_written", "points_read", "points_written",
                "points_rejected"):
        assert report.to_dict()[key] == on_disk[key] == written.to_dict()[key], key
    # survey options as keyword arguments, as `--option key=value`
    only_r = lcfm.read(sample, survey="macho", band="R")
    assert set(only_r["band"].explode().cast(pl.String).unique()) == {"R"}
    with pytest.raises(ConfigError, match="no option"):
        lcfm.read(sample, survey="macho", no_such_option=1)


def test_from_arrays_one_and_many_with_preprocessing():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 100, 80))
    mag = rng.normal(15, 0.1, 80)
    err = np.full(80, 0.02)
    err[3] = 5.0  # outside MACHO's 0 <= err <= 1 (Astromer 2 sect. 4.1): dropped, counted
    one, report = lcfm.from_arrays(t[::-1], mag[::-1], err[::-1], band="R", survey="macho",
                                   object_id="star", return_report=True)
    assert one["object_id"].to_list() == ["star"] and one["value_kind"][0] == "mag"
    assert one["time"].list.len()[0] < 80  # the bad point and clipped percentiles are gone
    assert np.all(np.diff(one["time"][0].to_numpy()) >= 0)  # sorted by the chain
    assert report.to_dict()["points_read"] == 80
    assert report.to_dict()["points_written"] == one["time"].list.len()[0]
    raw = lcfm.from_arrays(t, mag, err, band="R", survey="macho", preprocess=False)
    assert raw["time"].list.len()[0] == 80
    many = lcfm.from_arrays([t, t[:40]], [mag, mag[:40]], [None, err[:40]], band=["R", "B"],
                            survey="macho", object_id=["a", "b"], label=["RRab", None])
    assert many["object_id"].to_list() == ["a", "b"]
    assert many["label"].to_list() == ["RRab", None]
    assert [b[0] for b in many["band"].to_list()] == ["R", "B"]
    grid = lcfm.from_arrays(np.stack([t, t, t]), np.stack([mag] * 3), None, band="R",
                            survey="macho", preprocess=False)  # one light curve per row
    assert grid["object_id"].to_list() == ["0", "1", "2"]
    assert grid["time"].list.len().to_list() == [80] * 3
    assert grid["error"].explode().max() == 0  # no uncertainties given
    with pytest.raises(ConfigError, match="give band"):
        lcfm.from_arrays(t, mag, err, survey="macho")
    with pytest.raises(DataError, match="time has 80 entries, value 79"):
        lcfm.from_arrays(t, mag[:79], err, band="R", survey="macho")


def test_from_pandas_astropy_and_lightkurve():
    import astropy.units as u
    from astropy.table import Table
    from astropy.time import Time

    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 90, 120))
    flux = rng.normal(1000, 5, 120)
    long = pd.DataFrame({"object_id": ["k1"] * 60 + ["k2"] * 60,
                         "time": np.concatenate([t[:60], t[60:]]), "flux": flux,
                         "flux_err": np.full(120, 5.0)})
    frame = lcfm.from_pandas(long, survey="kepler", preprocess=False)
    assert frame["object_id"].to_list() == ["k1", "k2"]
    assert frame["time"].list.len().to_list() == [60, 60]
    np.testing.assert_allclose(frame["value"][1].to_numpy(), flux[60:], rtol=1e-6)
    assert lcfm.from_pandas(frame.to_pandas(), survey="kepler").equals(frame)  # canonical

    table = Table({"time": Time(t, format="mjd"), "flux": flux * u.electron / u.s,
                   "flux_err": np.full(120, 5.0) * u.electron / u.s},
                  meta={"OBJECT": "KIC 42"})
    from_table = lcfm.from_astropy(table, survey="kepler", preprocess=False)
    assert from_table["object_id"].to_list() == ["KIC 42"]
    np.testing.assert_allclose(from_table["time"][0].to_numpy(), t)

    class LightCurve:  # lightkurve's interface, without lightkurve
        def __init__(self, quarter, mask):
            from astropy.utils.masked import Masked

            self.time = Time(t + 2454833.0, format="jd")
            self.flux = Masked(flux * u.electron / u.s, mask=mask)
            self.flux_err = np.full(120, 5.0) * u.electron / u.s
            self.meta = {"MISSION": "Kepler", "KEPLERID": 757076, "QUARTER": quarter}

    mask = np.zeros(120, bool)
    mask[:10] = True  # masked cadences are NaN, then dropped by the Kepler chain
    frame = lcfm.from_lightkurve([LightCurve(1, mask), LightCurve(2, np.zeros(120, bool))])
    assert frame["survey"].unique().to_list() == ["kepler"]
    assert frame["object_id"].to_list() == ["757076", "757076"]
    assert frame["meta"].struct.field("quarter").to_list() == [1, 2]  # one row per quarter
    assert frame["time"].list.len().to_list() == [110, 120]
    with pytest.raises(ConfigError, match="give survey"):
        lcfm.from_lightkurve(type("LC", (), {"time": t, "flux": flux, "meta": {}})())


def test_as_frame_inputs():
    t = np.arange(50, dtype=float)
    arrays = [np.stack([t, 15 + np.sin(t), np.full(50, 0.05)], 1)] * 2
    frame = lcfm.as_frame(arrays, survey="kepler")  # Astromer's (N, 3) convention
    assert frame.height == 2 and frame["survey"].unique().to_list() == ["kepler"]
    assert frame["band"][0].cast(pl.String).unique().to_list() == ["kepler"]
    dicts = lcfm.as_frame([{"time": t, "value": 15 + np.sin(t), "band": "R", "object_id": 7}],
                          survey="macho")
    assert dicts["object_id"].to_list() == ["7"]
    with pytest.raises(DataError, match="cannot read light curves"):
        lcfm.as_frame(42)
    with pytest.raises(DataError, match="needs keys time and value"):
        lcfm.as_frame({"t": t})


def test_predict_and_embed_match_the_commands(runs, tmp_path):
    model = lcfm.load(runs["clf"])
    assert type(model).__name__ == "AstromerForSequenceClassification" and not model.training
    data = runs["data"]
    catalog = lcfm.predict(model, data, mc_samples=3)
    command = engine_predict(runs["clf"], data, tmp_path / "cat.parquet", mc_samples=3)
    assert catalog.columns == command.columns
    assert catalog["object_id"].to_list() == command["object_id"].to_list()
    assert catalog["predicted_class"].to_list() == command["predicted_class"].to_list()
    for column in catalog.columns[2:]:
        np.testing.assert_allclose(catalog[column].to_numpy(), command[column].to_numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=column)
    stds = [c for c in catalog.columns if c.startswith("std_")]
    assert len(stds) == len(model.config.id2label) and (catalog[stds].to_numpy() > 0).any()
    # the same light curves as a frame, the model by its folder, one deterministic pass
    plain = engine_predict(runs["clf"], data, tmp_path / "plain.parquet")
    from_frame = lcfm.predict(str(runs["clf"]), read_shards(data))
    assert from_frame.columns == plain.columns
    np.testing.assert_allclose(from_frame["probability"].to_numpy(),
                               plain["probability"].to_numpy(), rtol=1e-5)
    frame = read_shards(data)

    encoder = lcfm.load(runs["pre"])
    assert type(encoder).__name__ == "AstromerForMaskedReconstruction"  # as saved
    vectors = lcfm.embed(encoder, frame)
    expected = engine_embed(runs["pre"], data, tmp_path / "emb.parquet")
    assert vectors.columns == expected.columns
    np.testing.assert_allclose(np.stack(vectors["embedding"].to_numpy()),
                               np.stack(expected["embedding"].to_numpy()), rtol=1e-5,
                               atol=1e-6)
    assert vectors["n_observations_used"].to_list() == expected["n_observations_used"].to_list()
    # a classifier embeds with its fine-tuned encoder
    assert lcfm.embed(model, frame.head(4))["embedding"].list.len()[0] == \
        vectors["embedding"].list.len()[0]
    with pytest.raises(ConfigError, match="fine-tuned classifier"):
        lcfm.predict(encoder, frame)
    from lcfm.exceptions import ModelFolderError

    with pytest.raises(ModelFolderError, match="no such model folder"):
        lcfm.load(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="not a model folder"):
        lcfm.predict(tmp_path / "empty", frame)


def test_options_and_saved_processors(runs, tmp_path):
    pre_metrics, clf_metrics = runs["metrics"]
    assert pre_metrics["steps"] == 4 and clf_metrics["steps"] == 4
    for folder in (runs["pre"], runs["clf"]):
        saved = json.loads((folder / "preprocessor_config.json").read_text())
        assert saved["model_type"] == "lcfm_astromer" and saved["survey"] == "macho"
        assert saved["bands"] == {b: float(w) for b, w in get_survey("macho").bands.items()}
        assert saved["value_kind"] == "mag" and saved["inference_window"] == 32
    with pytest.raises(ConfigError, match=r"no option\(s\) \['max_step'\]"):
        lcfm.finetune(data=runs["data"], model="astromer-v2", output=tmp_path / "x",
                      max_step=3)
    with pytest.raises(ConfigError, match="missing option"):
        lcfm.pretrain(output=tmp_path / "y")
    lora = lcfm.finetune(data=runs["data"], model=str(runs["pre"]), output=tmp_path / "lora",
                         lora=True, merge_lora=True, max_steps=2, batch_size=8)
    assert lora["steps"] == 2
    for folder in ("lora", "lora/base", "lora/merged"):
        assert (tmp_path / folder / "preprocessor_config.json").exists(), folder
    catalog = lcfm.predict(lcfm.load(tmp_path / "lora"), runs["data"])
    assert catalog.height == read_shards(runs["data"])["object_id"].n_unique()


def test_processor_through_auto_classes_after_import_lcfm(runs):
    """A fresh interpreter with nothing but `import lcfm`: AutoFeatureExtractor and
    AutoProcessor return lcfm's processor, whose tensors the model classifies."""
    out = _python(f"""
        import sys
        import numpy as np
        import lcfm
        assert "torch" not in sys.modules and "polars" not in sys.modules
        from transformers import AutoFeatureExtractor, AutoProcessor
        from transformers import AutoModelForSequenceClassification
        folder = {str(runs["clf"])!r}
        processor = AutoFeatureExtractor.from_pretrained(folder)
        assert type(AutoProcessor.from_pretrained(folder)) is type(processor)
        t = np.arange(70, dtype=float)
        inputs = processor({{"time": t, "value": 15 + np.sin(t), "error": np.full(70, 0.05),
                            "band": "R"}})
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        logits = model(**inputs).logits
        print(type(processor).__name__, list(logits.shape),
              inputs.windows.observations.tolist())
    """)
    name, *rest = out.strip().splitlines()[-1].split(" ", 1)
    assert name == "LcfmFeatureExtractor"
    # MACHO's chain clips the 1st and 99th percentiles (Astromer 2 sect. 4.1): 68 of the
    # 70 observations, in windows of 32: three windows, every kept observation used
    n_classes = len(get_survey("macho").taxonomy.classes)
    assert rest[0].replace(" ", "") == f"[3,{n_classes}][32,32,4]"


def test_import_lcfm_stays_light():
    out = _python("""
        import sys
        import lcfm
        names = [n for n in ("read", "load", "predict") if n in dir(lcfm)]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers",
                                                                   "polars"))
        print(names, heavy, callable(lcfm.from_arrays), "polars" in sys.modules)
    """)
    assert out.split() == ["['read',", "'load',", "'predict']", "[]", "True", "True"]
