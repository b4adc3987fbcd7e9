"""ATLAS survey plugin. No real ATLAS file exists here: every fixture is written by the test in
exactly the documented layout (header '###MJD m dm uJy duJy F err chi/N RA Dec x y maj min
phi apfit mag5sig Sky Obs', one exposure per line; label catalogue ATO_ID,CLASS,...)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.registry import get_survey, survey_names
from lcfm.report import IngestReport
from lcfm.schema import conform, make_frame
from lcfm_surveys.atlas import AtlasSurvey

HEADER = ("###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y"
          "     maj     min     phi  apfit mag5sig Sky   Obs")


def write_lc(path, points, ra=10.0, dec=1.0):
    """points: (mjd, m, dm, filter). uJy follows m = -2.5 log10(uJy) + 23.9, with the sign of
    m for negative fluxes, as the ATLAS photometry output does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for k, (mjd, m, dm, band) in enumerate(points):
        mag = float(m)
        if math.isfinite(mag) and abs(mag) < 50:
            ujy = math.copysign(10 ** ((23.9 - abs(mag)) / 2.5), mag)
        else:
            ujy = 0.0
        lines.append(f"{mjd:.6f} {m:7.3f} {dm:6.3f} {ujy:8.0f} {abs(ujy) * 0.01 + 5:6.0f} {band} "
                     f"0 1.12 {ra:.5f} {dec:.5f} {5000 + k:8.2f} {3000 + k:8.2f} 2.10 2.01 "
                     f"-44.5 -0.412 19.21 20.31 02a{int(mjd)}{band}0412c")
    path.write_text("\n".join(lines) + "\n")
    return path


def curve(n, band, start=57600.0, base=15.0, step=0.37):
    """n observations evenly spaced in time, distinct magnitudes (unique min and max), err 0.02."""
    return [(start + step * i, base + 0.01 * i + 0.1 * math.sin(i), 0.02, band) for i in range(n)]


def ingest_rows(survey, path):
    """The ingest loop of the survey contract: files -> reader -> preprocessing -> written."""
    report = IngestReport(survey.name)
    rows = []
    for file in survey.input_files(path):
        report.files_read += 1
        for row in survey.reader_for(file).read(file, report):
            row = survey.preprocess(row, report)
            if row is not None:
                report.written(row["time"].size)
                rows.append(row)
    return rows, report


@pytest.fixture
def atlas_dir(tmp_path):
    """Five objects and a label catalogue (ids with a space, as in the ATLAS catalogue)."""
    lc = tmp_path / "lcs"
    write_lc(lc / "ATO_J010.0000+01.0000.txt",
             curve(30, "o") + curve(10, "c", start=57700.1, base=15.5))
    bad = curve(15, "o", start=57800.0)
    bad += [(57810.0, -17.2, 0.05, "o"),           # negative flux
            (57811.0, 99.0, 99.0, "o"),            # magnitude sentinel
            (57812.0, float("nan"), 0.02, "o"),    # non-finite
            (57813.0, 15.05, 1.5, "o"),            # uncertainty > 1
            (57814.0, 15.06, -0.1, "o"),           # uncertainty < 0
            (57800.0 + 0.37 * 3, 15.035, 0.02, "o")]  # same MJD as point 3: duplicate
    write_lc(lc / "ATO_J020.0000+02.0000.txt", bad + curve(5, "c", start=57900.0), ra=20, dec=2)
    write_lc(lc / "ATO_J030.0000+03.0000.txt", curve(8, "c", start=58000.0), ra=30, dec=3)
    write_lc(lc / "ATO_J040.0000+04.0000.txt", curve(12, "o", start=58100.0), ra=40, dec=4)
    write_lc(lc / "ATO_J050.0000+05.0000.txt", curve(6, "o") + [(57650.0, 16.0, 0.03, "t")])
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "ATO_ID,CLASS,RA,Dec,fp-LSper\n"
        "ATO J010.0000+01.0000,CBF,10.0,1.0,0.3412\n"
        "ATO J020.0000+02.0000,DBH,20.0,2.0,2.5\n"
        "ATO J030.0000+03.0000,MIRA,30.0,3.0,310.0\n"
        "ATO J040.0000+04.0000,SINE,40.0,4.0,1.2\n"
        "ATO J060.0000+06.0000,PULSE,60.0,6.0,0.55\n"
        "ATO J070.0000+07.0000,dubious,70.0,7.0,0.1\n")
    return lc, labels


def test_registered_and_described():
    assert "atlas" in survey_names()
    survey = get_survey("atlas")
    assert isinstance(survey, AtlasSurvey)
    info = survey.describe()
    assert info["bands"] == {"c": 5330.0, "o": 6790.0}
    assert info["taxonomy"] == ["CB", "DB", "Mira", "Pulse"]
    assert info["value_kind"] == "mag" and info["default_window"] == 200
    assert survey.selected_bands == ("o",)
    with pytest.raises(ConfigError, match="no bundled sample"):
        survey.sample_path()


def test_default_o_band_counts_labels_and_conservation(atlas_dir):
    lc, labels = atlas_dir
    survey = AtlasSurvey(labels=str(labels))
    rows, report = ingest_rows(survey, lc)
    by_id = {r["object_id"]: r for r in rows}
    # J030 has only c points -> rejected as a light curve; the other four are written.
    assert sorted(by_id) == ["ATO_J010.0000+01.0000", "ATO_J020.0000+02.0000",
                             "ATO_J040.0000+04.0000", "ATO_J050.0000+05.0000"]
    # 30 o -> percentile clip drops the min and max -> 28
    assert by_id["ATO_J010.0000+01.0000"]["time"].size == 28
    # 21 o: -1 negative flux, -1 sentinel, -1 NaN, -2 errors outside [0,1] = 16;
    # clip -2 = 14; duplicate epoch -1 = 13
    assert by_id["ATO_J020.0000+02.0000"]["time"].size == 13
    assert by_id["ATO_J040.0000+04.0000"]["time"].size == 10
    assert by_id["ATO_J050.0000+05.0000"]["time"].size == 4
    assert report.files_read == 5
    assert report.light_curves_read == 5 and report.light_curves_written == 4
    assert report.points_read == 40 + 26 + 8 + 12 + 7
    assert report.points_written == 28 + 13 + 10 + 4
    rejected = report.points_rejected
    assert rejected["band c not selected (band=o)"] == 10 + 5 + 8
    assert rejected["negative flux (magnitude quoted with a negative sign)"] == 1
    assert rejected["magnitude sentinel (|m| >= 50)"] == 1
    assert rejected["non-finite time, value or error"] == 1
    assert rejected["uncertainty outside [0, 1]"] == 2
    assert rejected["outside the 1-99 percentile range"] == 2 * 4
    assert rejected["duplicate time in the same band"] == 1
    assert sum(v for k, v in rejected.items() if k.startswith("unknown filter")) == 1
    assert dict(report.light_curves_rejected) == {"no usable observation in band(s) o": 1}
    assert report.balanced
    assert report.points_written + sum(rejected.values()) == report.points_read
    # labels: CBF -> CB, DBH -> DB, SINE (Fourier-derived) -> None, absent -> None
    assert by_id["ATO_J010.0000+01.0000"]["label"] == "CB"
    assert by_id["ATO_J020.0000+02.0000"]["label"] == "DB"
    assert by_id["ATO_J040.0000+04.0000"]["label"] is None
    assert by_id["ATO_J040.0000+04.0000"]["meta"]["raw_label"] == "SINE"
    assert by_id["ATO_J050.0000+05.0000"]["label"] is None
    meta = by_id["ATO_J020.0000+02.0000"]["meta"]
    assert meta["ra"] == pytest.approx(20.0) and meta["period"] == pytest.approx(2.5)
    for row in rows:
        assert set(row["band"].tolist()) == {"o"}
        assert np.all(np.diff(row["time"]) > 0)
        assert row["value"].dtype == np.float32 and row["time"].dtype == np.float64
        assert np.all((row["error"] >= 0) & (row["error"] <= 1))
    frame = conform(make_frame(rows), source="atlas test")
    assert frame.height == 4 and set(frame["value_kind"]) == {"mag"}


def test_band_option_c_and_all(atlas_dir):
    lc, _ = atlas_dir
    rows, report = ingest_rows(AtlasSurvey(band="c"), lc)
    sizes = {r["object_id"]: r["time"].size for r in rows}
    # c points: J010 10 -> 8, J020 5 -> 3, J030 8 -> 6; J040 and J050 have none
    assert sizes == {"ATO_J010.0000+01.0000": 8, "ATO_J020.0000+02.0000": 3,
                     "ATO_J030.0000+03.0000": 6}
    assert report.light_curves_rejected["no usable observation in band(s) c"] == 2
    assert report.balanced

    rows, report = ingest_rows(AtlasSurvey(band="all"), lc)
    first = next(r for r in rows if r["object_id"] == "ATO_J010.0000+01.0000")
    assert set(first["band"].tolist()) == {"c", "o"}
    assert first["time"].size == 38  # one sequence: 40 points, clipped on all magnitudes
    assert np.all(np.diff(first["time"]) > 0)
    assert report.light_curves_written == 5 and report.balanced
    assert AtlasSurvey(band="o,c").selected_bands == ("c", "o")


@pytest.mark.parametrize("value", ["g", "", "o,t"])
def test_bad_band_option(value):
    with pytest.raises(ConfigError, match="band="):
        AtlasSurvey(band=value)


def test_label_merges_from_catalogue(tmp_path):
    raw = {"CBF": "CB", "CBH": "CB", "DBF": "DB", "DBH": "DB", "MIRA": "Mira", "PULSE": "Pulse",
           "MPULSE": None, "SINE": None, "NSINE": None, "LPV": None, "IRR": None,
           "dubious": None, "": None}
    labels = tmp_path / "classes.tsv"
    labels.write_text("ATO_ID\tCLASS\n" + "".join(
        f"ATO J{i:03d}.0000+00.0000\t{name}\n" for i, name in enumerate(raw)))
    for i, _ in enumerate(raw):
        write_lc(tmp_path / "lc" / f"ATO_J{i:03d}.0000+00.0000.txt", curve(5, "o"))
    rows, report = ingest_rows(AtlasSurvey(labels=str(labels)), tmp_path / "lc")
    got = {r["object_id"]: r["label"] for r in rows}
    assert got == {f"ATO_J{i:03d}.0000+00.0000": cls for i, cls in enumerate(raw.values())}
    assert report.balanced


def test_labels_from_folder_naming(tmp_path):
    for folder in ("CBH", "MIRA", "Pulse", "dubious", "misc"):
        write_lc(tmp_path / folder / f"ATO_J{folder}.txt", curve(5, "o"))
    rows, _ = ingest_rows(AtlasSurvey(), tmp_path)
    got = {r["object_id"]: (r["label"], r["meta"]["raw_label"]) for r in rows}
    assert got == {"ATO_JCBH": ("CB", "CBH"), "ATO_JMIRA": ("Mira", "MIRA"),
                   "ATO_JPulse": ("Pulse", "Pulse"), "ATO_Jdubious": (None, "dubious"),
                   "ATO_Jmisc": (None, None)}


def test_catalogue_inside_input_dir_is_not_read_as_light_curve(tmp_path):
    write_lc(tmp_path / "ATO_J001.0000+00.0000.txt", curve(5, "o"))
    labels = tmp_path / "labels.txt"
    labels.write_text("ATO_ID CLASS\nATO_J001.0000+00.0000 PULSE\n")
    survey = AtlasSurvey(labels=str(labels))
    assert survey.input_files(tmp_path) == [tmp_path / "ATO_J001.0000+00.0000.txt"]
    rows, _ = ingest_rows(survey, tmp_path)
    assert [r["label"] for r in rows] == ["Pulse"]


def _one_line_error(exc: InputFileError, path, line=None):
    message = str(exc)
    assert "\n" not in message and message.startswith(str(path))
    if line is not None:
        assert f"line {line}" in message


def test_bad_light_curve_files(tmp_path):
    survey = AtlasSurvey()
    reader = survey.formats["atlas-photometry"]
    no_header = tmp_path / "a.txt"
    no_header.write_text("57600.1 15.2 0.02 o\n")
    assert not reader.matches(no_header)
    with pytest.raises(InputFileError, match="not a recognised atlas file") as info:
        survey.reader_for(no_header)
    _one_line_error(info.value, no_header)
    with pytest.raises(InputFileError, match="no ATLAS photometry header") as info:
        list(reader.read(no_header, IngestReport("atlas")))
    _one_line_error(info.value, no_header, line=1)

    short = write_lc(tmp_path / "b.txt", curve(3, "o"))
    short.write_text(short.read_text() + "57700.0 15.1 0.02\n")
    with pytest.raises(InputFileError, match="row has 3 fields, header has 19") as info:
        list(reader.read(short, IngestReport("atlas")))
    _one_line_error(info.value, short, line=5)

    text = write_lc(tmp_path / "c.txt", curve(3, "o"))
    lines = text.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split()[1], "abc", 1)
    text.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError, match="column 'm' value 'abc' is not a number") as info:
        list(reader.read(text, IngestReport("atlas")))
    _one_line_error(info.value, text, line=3)

    empty = tmp_path / "d.txt"
    empty.write_text(HEADER + "\n")
    report = IngestReport("atlas")
    assert list(reader.read(empty, report)) == []
    assert report.light_curves_rejected["empty file (header only)"] == 1 and report.balanced

    with pytest.raises(InputFileError, match="no such file"):
        survey.input_files(tmp_path / "missing")


def test_bad_label_catalogues(tmp_path):
    lc = write_lc(tmp_path / "lc" / "ATO_J001.0000+00.0000.txt", curve(5, "o"))
    cases = {
        "unknown.csv": ("ATO_ID,CLASS\nATO J001.0000+00.0000,RRAB\n",
                        "unknown ATLAS class 'RRAB'", 2),
        "noclass.csv": ("ATO_ID,TYPE\nx,CBF\n", "needs an id column", 1),
        "ragged.csv": ("ATO_ID,CLASS\nx,CBF,extra\n", "row has 3 fields, header has 2", 2),
        "twice.csv": ("ATO_ID,CLASS\nx,CBF\nx,MIRA\n", "listed twice", 3),
    }
    for name, (text, problem, line) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        survey = AtlasSurvey(labels=str(path))
        with pytest.raises(InputFileError, match=problem) as info:
            list(survey.reader_for(lc).read(lc, IngestReport("atlas")))
        _one_line_error(info.value, path, line=line)
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputFileError, match="label catalogue not found") as info:
        AtlasSurvey(labels=str(missing)).catalogue()
    _one_line_error(info.value, missing)


def test_ingest_driver_writes_shards_and_balanced_report(atlas_dir, tmp_path):
    import json

    from lcfm.ingest import ingest
    from lcfm.shards import read_shards

    lc, labels = atlas_dir
    out = tmp_path / "out"
    report = ingest(AtlasSurvey(labels=str(labels)), lc, out)
    assert report.balanced and report.files_read == 5
    assert (report.light_curves_written, report.points_written) == (4, 55)
    frame = read_shards(out)
    assert frame.height == 4
    assert sorted(frame["label"].fill_null("-").to_list()) == ["-", "-", "CB", "DB"]
    assert frame["time"].list.len().sum() == 55
    saved = json.loads((out / "report.json").read_text())
    assert saved["points_read"] == saved["points_written"] + sum(saved["points_rejected"].values())
