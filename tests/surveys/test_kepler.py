"""The Kepler survey plugin on real long-cadence files: exact counts, quality masks,
stitching, ASTRAFier preprocessing (standardization only), labels and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from astropy.io import fits
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.registry import get_survey
from lcfm.report import IngestReport
from lcfm_surveys.kepler import KEPLER_BITMASKS, KeplerSurvey

DEFAULT_MASK = 1130799
STARS = {"2556081", "5899262", "8417738", "10002792"}


def kepler_dir(shared_data: Path) -> Path:
    return shared_data / "kepler"


def read_all(survey: KeplerSurvey, path: Path, *, preprocess: bool = True):
    """Rows and report from the reader API (plus the plugin's chain when `preprocess`)."""
    report = IngestReport(survey.name)
    rows = []
    for file in survey.input_files(path):
        for row in survey.reader_for(file).read(file, report):
            row = survey.preprocess(row, report) if preprocess else row
            if row is not None:
                report.written(row["time"].size)
                rows.append(row)
    return rows, report


def expected_from_fits(path: Path, mask: int = DEFAULT_MASK, column: str = "PDCSAP_FLUX"):
    """Independent count of one file: (kic, quarter, raw, flagged, non-finite, kept arrays)."""
    with fits.open(path) as hdul:
        head, data = hdul[0].header, hdul["LIGHTCURVE"].data
        time = np.array(data["TIME"], dtype=float)
        flux = np.array(data[column], dtype=float)
        err = np.array(data[column + "_ERR"], dtype=float)
        quality = np.array(data["SAP_QUALITY"], dtype=np.int64)
        flagged = (quality & mask) != 0
        finite = np.isfinite(time) & np.isfinite(flux) & np.isfinite(err)
        keep = ~flagged & finite
        return {"kic": str(head["KEPLERID"]), "quarter": int(head["QUARTER"]),
                "raw": time.size, "flagged": int(flagged.sum()),
                "nonfinite": int((~flagged & ~finite).sum()),
                "time": time[keep], "flux": flux[keep], "err": err[keep]}


def test_plugin_is_registered_with_the_astrafier_kepler_taxonomy():
    survey = get_survey("kepler")
    assert isinstance(survey, KeplerSurvey)
    assert survey.bands == {"kepler": 6400.0}
    assert survey.value_kind == "flux"
    assert "CONSTANT" in survey.taxonomy.classes
    assert "INSTRUMENT/JUNK" not in survey.taxonomy.classes
    assert len(survey.taxonomy.classes) == 8
    assert survey.default_window >= 4780  # one whole quarter, as ASTRAFier feeds them
    assert survey.opts["flux_column"] == "PDCSAP_FLUX"
    assert KEPLER_BITMASKS["default"] == 1 | 2 | 4 | 8 | 32 | 256 | 16384 | 65536 | 1048576


def test_every_real_file_exact_counts_and_standardized_values(shared_data):
    files = sorted(kepler_dir(shared_data).glob("*_llc.fits"))
    assert len(files) == 22
    expected = [expected_from_fits(f) for f in files]
    rows, report = read_all(KeplerSurvey(stitch=False), kepler_dir(shared_data))

    assert len(rows) == 22 == report.light_curves_written
    assert {r["object_id"] for r in rows} == STARS == {e["kic"] for e in expected}
    assert report.points_read == sum(e["raw"] for e in expected)
    assert report.points_rejected["SAP_QUALITY flag set (bitmask 1130799)"] == \
        sum(e["flagged"] for e in expected)
    assert report.points_rejected["non-finite time, flux or error"] == \
        sum(e["nonfinite"] for e in expected)
    assert report.points_written == sum(e["time"].size for e in expected)
    assert report.balanced

    by_key = {(r["object_id"], r["meta"]["quarter"]): r for r in rows}
    for exp in expected:
        row = by_key[(exp["kic"], exp["quarter"])]
        np.testing.assert_array_equal(row["time"], exp["time"])
        # ASTRAFier sect. 4.3 for Kepler: standardization only
        std = exp["flux"].std()
        np.testing.assert_allclose(row["value"], (exp["flux"] - exp["flux"].mean()) / std,
                                   atol=2e-4)
        np.testing.assert_allclose(row["error"], exp["err"] / std, rtol=1e-4)
        assert abs(float(row["value"].mean())) < 1e-5
        assert abs(float(row["value"].std()) - 1) < 1e-4
        assert row["band"].tolist() == ["kepler"] * exp["time"].size
        assert row["value_kind"] == "flux" and row["label"] is None
        assert row["meta"]["kic"] == int(exp["kic"])


def test_metadata_from_the_header(shared_data):
    path = kepler_dir(shared_data) / "kplr005899262-2009131105131_llc.fits"
    (row,), _ = read_all(KeplerSurvey(stitch=False), path)
    meta = row["meta"]
    assert (meta["quarter"], meta["season"], meta["channel"]) == (0, 3, 69)
    assert (meta["module"], meta["output"], meta["skygroup"]) == (20, 1, 73)
    assert meta["ra"] == pytest.approx(297.774041) and meta["dec"] == pytest.approx(41.19022)
    assert meta["kepmag"] == pytest.approx(13.228) and meta["teff"] == 4710
    assert meta["quarters"] == "0" and meta["time_system"] == "BKJD"


@pytest.mark.parametrize("mask_option, mask", [("none", 0), ("all", -1), ("32", 32),
                                               (DEFAULT_MASK, DEFAULT_MASK)])
def test_quality_bitmask_option(shared_data, mask_option, mask):
    path = kepler_dir(shared_data) / "kplr002556081-2009259160929_llc.fits"
    exp = expected_from_fits(path, mask)
    survey = KeplerSurvey(stitch=False, quality_bitmask=mask_option, preprocessing="none")
    (row,), report = read_all(survey, path)
    np.testing.assert_array_equal(row["time"], exp["time"])
    assert report.points_written + sum(report.points_rejected.values()) == exp["raw"]


def test_default_mask_drops_flagged_but_finite_cadences(shared_data):
    # PDC sets the flux of default-flagged cadences to NaN; the SAP flux keeps them finite
    path = kepler_dir(shared_data) / "kplr002556081-2009259160929_llc.fits"
    with fits.open(path) as hdul:
        data = hdul["LIGHTCURVE"].data
        quality = np.array(data["SAP_QUALITY"], dtype=np.int64)
        time = np.array(data["TIME"], dtype=float)
        finite = np.isfinite(time) & np.isfinite(data["SAP_FLUX"])
        flagged_finite = time[(quality & DEFAULT_MASK != 0) & finite]
        benign = time[(quality != 0) & (quality & DEFAULT_MASK == 0) & finite]
    assert flagged_finite.size == 12 and benign.size == 1082
    (row,), report = read_all(KeplerSurvey(stitch=False, flux_column="SAP_FLUX"), path)
    assert not np.isin(flagged_finite, row["time"]).any()
    assert np.isin(benign, row["time"]).all()  # e.g. cosmic-ray flags stay in by default
    (strict,), _ = read_all(KeplerSurvey(stitch=False, flux_column="SAP_FLUX",
                                         quality_bitmask="all"), path)
    assert not np.isin(benign, strict["time"]).any()
    assert strict["time"].size == row["time"].size - benign.size


def test_sap_flux_option(shared_data):
    path = kepler_dir(shared_data) / "kplr010002792-2010174085026_llc.fits"
    exp = expected_from_fits(path, column="SAP_FLUX")
    (row,), _ = read_all(KeplerSurvey(stitch=False, flux_column="sap", preprocessing="none"), path)
    np.testing.assert_array_equal(row["value"], exp["flux"].astype(np.float32))
    np.testing.assert_array_equal(row["error"], exp["err"].astype(np.float32))
    assert row["meta"]["flux_column"] == "SAP_FLUX"
    with pytest.raises(ConfigError, match="flux_column"):
        KeplerSurvey(stitch=False, flux_column="KSPSAP_FLUX")
    with pytest.raises(ConfigError, match="quality_bitmask"):
        KeplerSurvey(stitch=False, quality_bitmask="sometimes")
    with pytest.raises(ConfigError, match="no option"):
        KeplerSurvey(stitch=False, window=3)


def test_stitching_one_row_per_star_each_quarter_median_normalised(shared_data):
    folder = kepler_dir(shared_data)
    expected = [expected_from_fits(f) for f in sorted(folder.glob("*_llc.fits"))]
    survey = KeplerSurvey(stitch="true", preprocessing="none")
    assert len(survey.input_files(folder)) == 4  # one representative file per star
    rows, report = read_all(survey, folder)
    assert sorted(r["object_id"] for r in rows) == sorted(STARS)
    assert report.light_curves_read == report.light_curves_written == 4
    assert report.points_written == sum(e["time"].size for e in expected)
    assert report.balanced
    for row in rows:
        quarters = sorted((e for e in expected if e["kic"] == row["object_id"]),
                          key=lambda e: e["quarter"])
        assert row["meta"]["quarters"] == ",".join(str(e["quarter"]) for e in quarters)
        assert row["meta"]["quarter"] == -1
        assert np.all(np.diff(row["time"]) > 0)
        for exp in quarters:  # the quarter's own points, divided by its median
            inside = np.isin(row["time"], exp["time"])
            assert inside.sum() == exp["time"].size
            np.testing.assert_allclose(row["value"][inside], exp["flux"] / np.median(exp["flux"]),
                                       rtol=1e-6)
            assert np.median(row["value"][inside]) == pytest.approx(1.0, abs=1e-6)
    star = next(r for r in rows if r["object_id"] == "2556081")
    assert star["meta"]["quarters"] == ",".join(str(q) for q in range(1, 18))


def test_stitched_and_standardized_through_ingest(shared_data, tmp_path):
    from lcfm.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("kplr010002792-2009259160929_llc.fits", "kplr010002792-2010174085026_llc.fits",
                 "kplr008417738-2009131105131_llc.fits"):
        shutil.copy(kepler_dir(shared_data) / name, folder / name)
    report = ingest(KeplerSurvey(stitch=True), folder, tmp_path / "out")
    frame = pl.read_parquet(tmp_path / "out" / "*.parquet").sort("object_id")
    assert frame["object_id"].to_list() == ["10002792", "8417738"]
    n = [sum(expected_from_fits(folder / f)["time"].size for f in names) for names in
         (["kplr010002792-2009259160929_llc.fits", "kplr010002792-2010174085026_llc.fits"],
          ["kplr008417738-2009131105131_llc.fits"])]
    assert frame["time"].list.len().to_list() == n
    assert report.points_written == sum(n) and report.balanced
    for values in frame["value"].to_list():
        assert abs(np.mean(values)) < 1e-5 and abs(np.std(values) - 1) < 1e-4


def test_labels_joined_from_a_catalogue(shared_data, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("KIC,class\nKIC 5899262,eclipse\n002556081,solar-like\n")
    rows, _ = read_all(KeplerSurvey(stitch=False, labels=str(csv)), kepler_dir(shared_data))
    labels = {r["object_id"]: r["label"] for r in rows}
    assert labels == {"5899262": "ECLIPSE", "2556081": "SOLARLIKE", "8417738": None,
                      "10002792": None}
    csv.write_text("KIC,class\n5899262,ECLIPSE\n2556081,INSTRUMENT/JUNK\n")
    with pytest.raises(InputFileError, match=r"labels\.csv, line 3: unknown class "
                                             r"'INSTRUMENT/JUNK'"):
        read_all(KeplerSurvey(stitch=False, labels=str(csv)), kepler_dir(shared_data))


def test_bundled_sample_ingests(tmp_path):
    from lcfm.ingest import ingest

    survey = KeplerSurvey()
    sample = survey.sample_path()
    assert sum(p.stat().st_size for p in sample.iterdir()) < 1_500_000
    assert (sample / "LICENSE").read_text().count("MIT License") == 2
    report = ingest(survey, None, tmp_path / "out")  # one light curve per star by default
    assert report.light_curves_written == 4
    assert report.points_written == 16812  # the 7 quarters' points, stitched per star
    assert report.balanced
    frame = pl.read_parquet(tmp_path / "out" / "*.parquet")
    assert frame["object_id"].n_unique() == frame.height == 4
    quarters = ingest(KeplerSurvey(stitch=False), None, tmp_path / "quarters")
    assert (quarters.light_curves_read, quarters.light_curves_written) == (7, 7)
    assert (quarters.points_read, quarters.points_written) == (17572, 16812)


def test_format_detection(shared_data, tmp_path):
    survey = KeplerSurvey(stitch=False)
    renamed = tmp_path / "my_star.fits"
    shutil.copy(kepler_dir(shared_data) / "kplr008417738-2009131105131_llc.fits", renamed)
    assert survey.reader_for(renamed).name == "llc"  # recognised by its header
    assert survey.reader_for(renamed, fmt="llc").name == "llc"
    with pytest.raises(ConfigError, match="no format 'slc'"):
        survey.reader_for(renamed, fmt="slc")
    other = tmp_path / "notes.txt"
    other.write_text("not a light curve")
    with pytest.raises(InputFileError, match="not a recognised kepler file"):
        survey.reader_for(other)


def write_fits(path: Path, columns: dict[str, np.ndarray] | None, header: dict) -> Path:
    primary = fits.PrimaryHDU()
    primary.header.update(header)
    hdus = [primary]
    if columns is not None:
        cols = [fits.Column(name=k, format="D" if k == "TIME" else ("J" if "QUALITY" in k
                                                                      else "E"), array=v)
                for k, v in columns.items()]
        hdus.append(fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE"))
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize("case, message", [
    ("truncated", "unreadable or truncated FITS file"),
    ("no_table", "no LIGHTCURVE binary-table HDU"),
    ("no_pdcsap", "lacks column(s) ['PDCSAP_FLUX', 'PDCSAP_FLUX_ERR']"),
    ("no_keplerid", "primary header has no KEPLERID keyword"),
    ("short_cadence", "long-cadence"),
    ("text", "unreadable or truncated FITS file"),
])
def test_bad_files_raise_one_line_errors_naming_the_file(shared_data, tmp_path, case, message):
    path = tmp_path / "kplr000000001-2009131105131_llc.fits"
    real = kepler_dir(shared_data) / "kplr005899262-2009131105131_llc.fits"
    n = 5
    good = {"TIME": np.arange(n, dtype=float), "PDCSAP_FLUX": np.ones(n),
            "PDCSAP_FLUX_ERR": np.ones(n), "SAP_QUALITY": np.zeros(n, dtype=np.int32)}
    if case == "truncated":
        path.write_bytes(real.read_bytes()[:40000])
    elif case == "no_table":
        write_fits(path, None, {"KEPLERID": 1, "TELESCOP": "Kepler"})
    elif case == "no_pdcsap":
        write_fits(path, {"TIME": good["TIME"], "SAP_QUALITY": good["SAP_QUALITY"]},
                   {"KEPLERID": 1})
    elif case == "no_keplerid":
        write_fits(path, good, {"TELESCOP": "Kepler"})
    elif case == "short_cadence":
        write_fits(path, good, {"KEPLERID": 1, "OBSMODE": "short cadence"})
    else:
        path.write_text("SIMPLE = this is not FITS\n")
    with pytest.raises(InputFileError) as info:
        read_all(KeplerSurvey(stitch=False), path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_bad_file_in_a_folder_is_rejected_by_name(shared_data, tmp_path):
    """Issue 9, item 6: the bad file is named in report.json, the good one ingested;
    `strict` stops at the bad file instead."""
    import json

    from lcfm.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(kepler_dir(shared_data) / "kplr008417738-2009131105131_llc.fits", folder)
    bad = folder / "kplr000000002-2009131105131_llc.fits"
    bad.write_bytes((kepler_dir(shared_data) / "kplr005899262-2009131105131_llc.fits")
                    .read_bytes()[:3000])
    report = ingest(KeplerSurvey(stitch=False), folder, tmp_path / "out")
    assert report.files_read == 1 and report.light_curves_written == 1
    (rejected,) = json.loads((tmp_path / "out" / "report.json").read_text())["files_rejected"]
    assert rejected["file"] == str(bad) and "truncated" in rejected["reason"]
    with pytest.raises(InputFileError, match=str(bad)):
        ingest(KeplerSurvey(stitch=False), folder, tmp_path / "strict", strict=True)


def test_light_curve_with_no_valid_cadence_is_counted(tmp_path):
    n = 6
    path = write_fits(tmp_path / "kplr000000003-2009131105131_llc.fits", {
        "TIME": np.arange(n, dtype=float), "PDCSAP_FLUX": np.full(n, np.nan),
        "PDCSAP_FLUX_ERR": np.ones(n), "SAP_QUALITY": np.array([0, 0, 0, 0, 8, 8], np.int32),
    }, {"KEPLERID": 3, "QUARTER": 0})
    rows, report = read_all(KeplerSurvey(stitch=False), path)
    assert rows == []
    assert report.light_curves_rejected == {"no valid cadences": 1}
    assert report.points_rejected == {"SAP_QUALITY flag set (bitmask 1130799)": 2,
                                      "non-finite time, flux or error": 4}
    assert report.balanced
