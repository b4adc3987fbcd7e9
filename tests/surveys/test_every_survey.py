"""Registry-driven: every installed survey plugin is checked the same way."""

import polars as pl
import pytest
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.ingest import ingest
from lcfm.registry import get_survey, survey_names
from lcfm.shards import read_shards


@pytest.mark.parametrize("name", survey_names())
def test_plugin_declares_the_contract(name):
    survey = get_survey(name)
    assert survey.name == name and survey.value_kind in ("flux", "mag")
    assert survey.bands and all(w > 0 for w in survey.bands.values())
    assert len(survey.taxonomy.classes) >= 2
    # default_window is informational (lcfm.survey, "Windows"): positive when set
    assert survey.default_window is None or survey.default_window > 0
    assert survey.formats, "at least one native format"
    for raw, mapped in survey.taxonomy.raw_to_class.items():
        assert mapped is None or mapped in survey.taxonomy.classes, (raw, mapped)


@pytest.mark.parametrize("name", survey_names())
def test_bundled_sample_ingests_with_a_balanced_report(name, tmp_path):
    survey = get_survey(name)
    try:
        survey.sample_path()
    except ConfigError as exc:  # only where no real file may be shipped, and it says so
        assert name in str(exc) and "\n" not in str(exc)
        return
    report = ingest(survey, None, tmp_path)
    assert report.balanced and report.light_curves_written > 0 and report.files_read > 0
    frame = read_shards(tmp_path)
    assert frame.height == report.light_curves_written
    assert frame["time"].list.len().sum() == report.points_written
    assert set(frame["survey"]) == {name}
    assert set(frame["value_kind"]) == {survey.value_kind}
    assert set(frame["band"].explode().cast(pl.String)) <= set(survey.bands)
    assert set(frame["label"].drop_nulls()) <= set(survey.taxonomy.classes)


@pytest.mark.parametrize("name", survey_names())
def test_unrecognised_file_is_a_one_line_error_naming_it(name, tmp_path):
    bad = tmp_path / "not_a_light_curve.xyz"
    bad.write_text("nothing here\n")
    with pytest.raises((InputFileError, ConfigError)) as info:
        ingest(get_survey(name), bad, tmp_path / "out")
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", survey_names())
def test_segments_and_duplicate_policy(name, tmp_path):
    """Every reader says what a repeated object means; the bundled sample (several Kepler
    quarters of one star, MACHO's B and R of one star, ...) holds no duplicate, so its
    segment fields tell its light curves apart, and each is a meta field of every row."""
    survey = get_survey(name)
    assert {r.duplicates for r in survey.formats.values()} <= {"reject", "merge"}
    try:
        survey.sample_path()
    except ConfigError:
        return
    report = ingest(survey, None, tmp_path)
    assert report.duplicate_object_ids == 0 and not report.files_rejected
    frame = read_shards(tmp_path)
    assert frame.height == report.light_curves_written
    if survey.segment_fields and frame.height:
        fields = set(frame["meta"].struct.fields)
        assert set(survey.segment_fields) <= fields, (survey.segment_fields, fields)
