"""The five-band example plugin (tests/plugin_fiveband, `lcfm-survey-fiveband`) is found
through the `lcfm.surveys` entry points and ingests like a built-in survey: several files,
a label catalogue beside them (skipped by discovery, read by the reader through its input
root), unknown raw classes counted, typed options, one row per object with all five bands.
Needs `pip install -e tests/plugin_fiveband`."""

from __future__ import annotations

import importlib.util
import json
from importlib.metadata import entry_points

import numpy as np
import polars as pl
import pytest
from lcfm.exceptions import ConfigError
from lcfm.features import compute_features
from lcfm.ingest import ingest
from lcfm.registry import SURVEY_GROUP, clear_cache, get_survey
from lcfm.shards import read_shards

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lcfm_survey_fiveband") is None,
    reason="five-band example plugin not installed: pip install -e tests/plugin_fiveband")


@pytest.fixture
def survey():
    clear_cache()
    return get_survey("fiveband")


def test_discovered_from_its_own_distribution_with_typed_options(survey):
    (ep,) = [e for e in entry_points(group=SURVEY_GROUP) if e.name == "fiveband"]
    assert ep.dist.name == "lcfm-survey-fiveband"
    info = survey.describe()
    assert list(info["bands"]) == ["u", "g", "r", "i", "z"]
    assert info["taxonomy"] == ["RRL", "CEP"]
    assert info["option_types"] == {"labels": "str", "bands": "list", "max_error": "float",
                                    "min_points": "int", "labelled_only": "bool"}
    # values from a command line (text, or numbers from a JSON parse) arrive typed
    typed = survey.with_options(min_points="20", max_error=1, labelled_only="true",
                                bands="g,r", labels=123)
    assert typed.opts == {"labels": "123", "bands": ["g", "r"], "max_error": 1.0,
                          "min_points": 20, "labelled_only": True}
    with pytest.raises(ConfigError, match="bands='g,y' is not one of u, g, r, i, z"):
        survey.with_options(bands="g,y")


def test_bundled_sample_ingests_with_labels_from_the_catalogue(survey, tmp_path):
    report = ingest(survey, None, tmp_path / "out")
    assert report.balanced and report.files_read == 2 and report.files_rejected == []
    assert [f["file"].rsplit("/", 1)[1] for f in report.files_skipped] == ["labels.csv"]
    assert dict(report.labels_unknown) == {"BLAP": 1}
    assert report.light_curves_read == 11 and report.light_curves_written == 10
    assert dict(report.light_curves_rejected) == {"fewer than 10 observations": 1}
    frame = read_shards(tmp_path / "out").sort("object_id")
    labels = frame["label"].to_list()
    assert labels.count(None) == 2 and set(labels) - {None} == {"RRL", "CEP"}
    # one row per object, all five bands interleaved in time order
    for row in frame.iter_rows(named=True):
        assert set(row["band"]) == set("ugriz")
        assert np.all(np.diff(row["time"]) >= 0)
        per_band = np.unique(row["band"], return_counts=True)[1]
        assert per_band.min() >= 20  # tens of points per band
        assert row["time"][-1] - row["time"][0] > 3 * 365  # over several years
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["labels_unknown"] == {"BLAP": 1} and len(saved["files_skipped"]) == 1


def test_ingest_through_the_cli_with_labels_and_options(lcfm_cli, tmp_path):
    from lcfm_survey_fiveband.make_sample import write_sample

    folder = write_sample(tmp_path / "raw", 6, seed=3)
    (folder / "labels.csv").rename(folder / "classes.csv")  # a catalogue of another name
    code, out, err = lcfm_cli("ingest", "--survey", "fiveband", "--input", folder,
                              "--labels", folder / "classes.csv", "--output", tmp_path / "o",
                              "--option", "bands=g,r", "--option", "labelled_only=true")
    assert code == 0, err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [f["file"].rsplit("/", 1)[1] for f in report["files_skipped"]] == ["classes.csv"]
    assert report["light_curves_written"] == 6  # BLAP and the uncatalogued one rejected
    assert report["light_curves_rejected"]["no known class (labelled_only)"] == 2
    frame = read_shards(tmp_path / "o")
    assert set(frame["band"].explode().cast(pl.String)) == {"g", "r"}
    assert frame["label"].null_count() == 0


def test_classes_differ_mostly_by_period(survey, tmp_path):
    from lcfm_survey_fiveband.make_sample import write_sample

    ingest(survey, write_sample(tmp_path / "raw", 24, seed=5, extras=False), tmp_path / "o")
    features = compute_features(read_shards(tmp_path / "o"), bands=list(survey.bands))
    rrl = features.filter(pl.col("label") == "RRL")["r_period"].to_numpy()
    cep = features.filter(pl.col("label") == "CEP")["r_period"].to_numpy()
    assert rrl.size == cep.size == 12
    # Lomb-Scargle r-band periods: most RR Lyrae under 1 d, most Cepheids over 1.5 d
    assert np.mean(rrl < 1.0) >= 0.75 and np.mean(cep > 1.5) >= 0.75, (rrl, cep)
    # the colour offsets between bands exceed the variability (issue 12's survey)
    colour = features["color_u_g"].abs().median()
    assert colour > features["r_amplitude"].median()
