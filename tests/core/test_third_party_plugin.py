"""A survey plugin from another distribution (tests/plugin_fixture, `lcfm-survey-csvdemo`) is
discovered through the `lcfm.surveys` entry points and used through the same registry and
ingest API as the built-in surveys. Needs `pip install -e tests/plugin_fixture`."""

from __future__ import annotations

import importlib.util
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.ingest import ingest
from lcfm.registry import SURVEY_GROUP, clear_cache, get_survey, survey_names
from lcfm.report import IngestReport
from lcfm.schema import conform, make_frame
from lcfm.shards import read_shards
from lcfm.survey import SurveyPlugin

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lcfm_survey_csvdemo") is None,
    reason="third-party fixture plugin not installed: pip install -e tests/plugin_fixture",
)


@pytest.fixture
def survey():
    clear_cache()  # discover afresh, as a new process would
    return get_survey("csvdemo")


def test_discovered_from_its_own_distribution(survey):
    assert "csvdemo" in survey_names()
    (ep,) = [e for e in entry_points(group=SURVEY_GROUP) if e.name == "csvdemo"]
    assert ep.dist.name == "lcfm-survey-csvdemo"  # not one of lcfm's own packages
    assert ep.value == "lcfm_survey_csvdemo:CsvDemoSurvey"
    assert isinstance(survey, SurveyPlugin)
    assert type(survey).__module__ == "lcfm_survey_csvdemo"
    assert get_survey("csvdemo") is survey  # cached like every plugin


def test_describes_itself_like_a_builtin(survey):
    info = survey.describe()
    assert info["bands"] == {"g": 4770.0, "r": 6231.0}
    assert info["taxonomy"] == ["pulsating", "eclipsing", "constant"]
    assert list(info["formats"]) == ["csv"]
    assert survey.wavelength("r") == 6231.0
    if "atlas" in survey_names():  # same description keys as a built-in survey
        assert set(info) == set(get_survey("atlas").describe())
    assert survey.with_options(default_band="r").opts["default_band"] == "r"
    with pytest.raises(ConfigError, match="no option"):
        survey.with_options(colour="blue")


def test_reader_yields_canonical_rows_from_bundled_sample(survey):
    files = survey.input_files(survey.sample_path())
    assert [f.name for f in files] == ["demo.csv"]
    reader = survey.reader_for(files[0])
    report = IngestReport(survey.name)
    rows = list(reader.read(files[0], report))
    assert [r["object_id"] for r in rows] == [f"demo-00{i}" for i in range(1, 7)]
    assert report.points_read == 126 and report.light_curves_read == 6
    first = rows[0]
    assert first["time"].dtype == np.float64 and first["value"].dtype == np.float32
    assert first["label"] == "pulsating" and first["meta"]["raw_label"] == "RRab"
    assert rows[3]["label"] is None  # raw "unknown" is excluded by the taxonomy
    kept = [r for r in (survey.preprocess(r, report) for r in rows) if r is not None]
    frame = conform(make_frame(kept), source="csvdemo")
    assert frame.height == 5


def test_ingest_of_bundled_sample_conserves_counts(survey, tmp_path):
    report = ingest(survey, None, tmp_path / "out")  # no --input: the bundled sample
    assert report.balanced
    assert (report.light_curves_read, report.light_curves_written) == (6, 5)
    assert (report.points_read, report.points_written) == (126, 120)
    assert dict(report.points_rejected) == {
        "uncertainty outside [0, 1]": 1,
        "non-finite time, value or error": 1,
        "duplicate time in the same band": 1,
        "fewer than 5 observations": 3,
    }
    assert dict(report.light_curves_rejected) == {"fewer than 5 observations": 1}
    frame = read_shards(tmp_path / "out")
    assert frame.height == 5 and set(frame["survey"]) == {"csvdemo"}
    assert sorted(frame["label"].fill_null("-")) == ["-", "constant", "eclipsing",
                                                     "pulsating", "pulsating"]
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["points_written"] + sum(saved["points_rejected"].values()) == 126


def test_bad_input_is_a_one_line_error_naming_the_file(survey, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("object_id,time,mag,err\nx,1.0,15.0,0.02\nx,2.0,fifteen,0.02\n")
    with pytest.raises(InputFileError) as info:
        ingest(survey, bad, tmp_path / "out")
    message = str(info.value)
    assert message.startswith(str(bad)) and "line 3" in message and "\n" not in message
    assert "'fifteen' is not a number" in message
    no_err = tmp_path / "no_err.csv"
    no_err.write_text("object_id,time,mag\nx,1.0,15.0\n")
    with pytest.raises(InputFileError, match="not a recognised csvdemo file"):
        ingest(survey, no_err, tmp_path / "out2")
