"""The tess_qlp survey plugin: QLP HLSP files written here in the published layout, the
real SPOC file, ASTRAFier's preprocessing chain (sect. 4.3), labels and bad input."""

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
from lcfm_surveys._fits import subtract_gaussian_trend
from lcfm_surveys.tess import TESS_CLASSES, TessQlpSurvey
from scipy.ndimage import gaussian_filter1d

SPOC_NAME = "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits"
CADENCE = 30.0 / 1440.0  # QLP primary-mission full-frame images, days
QLP_COLUMNS = ("TIME", "CADENCENO", "SAP_FLUX", "KSPSAP_FLUX", "KSPSAP_FLUX_ERR", "QUALITY",
               "ORBITID", "SAP_X", "SAP_Y", "SAP_BKG", "SAP_BKG_ERR", "KSPSAP_FLUX_SML",
               "KSPSAP_FLUX_LAG")


def qlp_name(tic: int, sector: int) -> str:
    return f"hlsp_qlp_tess_ffi_s{sector:04d}-{tic:016d}_tess_v01_llc.fits"


def write_qlp(folder: Path, tic: int, sector: int, sap: np.ndarray, *, quality=None,
              error=None, name: str | None = None, detrended_prefix: str = "KSPSAP",
              drop: tuple[str, ...] = (), header: dict | None = None) -> Path:
    """A QLP HLSP light-curve file in the layout of the HLSP description: primary header
    with the target, LIGHTCURVE table with TIME (BTJD), SAP_FLUX, KSPSAP_FLUX(_ERR),
    QUALITY, ORBITID, SAP_X/Y, SAP_BKG(_ERR) and the small/large-aperture fluxes."""
    n = sap.size
    time = 1683.35 + CADENCE * np.arange(n)
    quality = np.zeros(n, np.int32) if quality is None else np.asarray(quality, np.int32)
    error = np.full(n, 1e-3) if error is None else error
    ksp = sap / np.nanmedian(sap)
    columns = {
        "TIME": ("D", time), "CADENCENO": ("J", 10_000 + np.arange(n)),
        "SAP_FLUX": ("E", sap), f"{detrended_prefix}_FLUX": ("E", ksp),
        f"{detrended_prefix}_FLUX_ERR": ("E", error), "QUALITY": ("J", quality),
        "ORBITID": ("J", np.where(np.arange(n) < n // 2, 35, 36)),
        "SAP_X": ("E", np.full(n, 1024.3)), "SAP_Y": ("E", np.full(n, 511.7)),
        "SAP_BKG": ("E", np.full(n, 80.0)), "SAP_BKG_ERR": ("E", np.full(n, 2.0)),
        f"{detrended_prefix}_FLUX_SML": ("E", ksp), f"{detrended_prefix}_FLUX_LAG": ("E", ksp),
    }
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format=f, array=a) for k, (f, a) in columns.items()
         if k not in drop], name="LIGHTCURVE")
    table.header["TIMEDEL"] = CADENCE
    table.header["TIMEUNIT"] = "d"
    primary = fits.PrimaryHDU()
    cards = {"TELESCOP": "TESS", "ORIGIN": "MIT/QLP", "OBJECT": f"TIC {tic}", "TICID": tic,
             "SECTOR": sector, "CAMERA": 2, "CCD": 3, "RA_OBJ": 290.5, "DEC_OBJ": 44.1,
             "TESSMAG": 9.87, "TEFF": 6500.0, "LOGG": 4.1, "MH": 0.0, "RADIUS": 1.6}
    cards.update(header or {})
    primary.header.update({k: v for k, v in cards.items() if v is not None})
    path = Path(folder) / (name or qlp_name(tic, sector))
    fits.HDUList([primary, table]).writeto(path)
    return path


def noise(n: int, seed: int = 0, level: float = 1e-3) -> np.ndarray:
    return 1.0 + level * np.random.default_rng(seed).standard_normal(n)


def read_all(survey: TessQlpSurvey, path: Path, *, fmt: str | None = None,
             preprocess: bool = True):
    report = IngestReport(survey.name)
    rows = []
    for file in survey.input_files(path, fmt):
        for row in survey.reader_for(file, fmt).read(file, report):
            row = survey.preprocess(row, report) if preprocess else row
            if row is not None:
                report.written(row["time"].size)
                rows.append(row)
    return rows, report


def test_plugin_is_registered_with_the_astrafier_tess_taxonomy():
    survey = get_survey("tess_qlp")
    assert isinstance(survey, TessQlpSurvey)
    assert survey.bands == {"tess": 7865.0}
    assert survey.taxonomy.classes == TESS_CLASSES and len(TESS_CLASSES) == 8
    assert "INSTRUMENT/JUNK" in TESS_CLASSES and "CONSTANT" not in TESS_CLASSES
    assert set(survey.formats) == {"qlp", "spoc"}
    assert survey.default_window >= round(27.4 * 48)  # one whole QLP sector
    assert [name for name, _ in survey.preprocessing()] == [
        "sort_by_time", "clip_about_median", "subtract_gaussian_trend",
        "shift_time_to_zero", "standardize"]


def test_qlp_fixture_counts_flags_nans_and_metadata(tmp_path):
    n = 1300
    sap = noise(n)
    quality = np.zeros(n, np.int32)
    quality[[10, 11, 12]] = 4096  # QLP low-precision cadences
    quality[500] = 32  # momentum dump
    sap[[20, 21]] = np.nan
    sap[12] = np.nan  # flagged and NaN: counted once, as flagged
    path = write_qlp(tmp_path, 12345678, 14, sap, quality=quality)
    (row,), report = read_all(TessQlpSurvey(preprocessing="none"), path)
    assert report.points_read == n
    assert report.points_rejected == {"QUALITY flag set (any bit)": 4,
                                      "non-finite time, flux or error": 2}
    assert row["time"].size == n - 6 == report.points_written and report.balanced
    keep = np.ones(n, bool)
    keep[[10, 11, 12, 20, 21, 500]] = False
    np.testing.assert_array_equal(row["value"], sap[keep].astype(np.float32))
    assert row["object_id"] == "12345678" and row["band"][0] == "tess"
    meta = row["meta"]
    assert (meta["tic"], meta["sector"], meta["camera"], meta["ccd"]) == (12345678, 14, 2, 3)
    assert meta["tessmag"] == pytest.approx(9.87) and meta["format"] == "qlp"
    assert meta["cadence_min"] == pytest.approx(30.0)
    assert meta["flux_column"] == "SAP_FLUX"  # raw flux: ASTRAFier detrends it itself

    # "default" (175) keeps the low-precision (4096) cadences, drops the momentum dump
    (row,), report = read_all(TessQlpSurvey(quality_bitmask="default", preprocessing="none"),
                              path)
    assert report.points_rejected["QUALITY flag set (bitmask 175)"] == 1
    assert row["time"].size == n - 4  # 500 flagged; 12, 20, 21 NaN
    (row,), _ = read_all(TessQlpSurvey(quality_bitmask="4096", preprocessing="none"), path)
    assert row["time"].size == n - 5


def test_standardize_gives_zero_mean_unit_std_and_time_starts_at_zero(tmp_path):
    n = 1200
    sap = noise(n, seed=1, level=5e-3) * 1000.0
    quality = np.zeros(n, np.int32)
    quality[:7] = 1  # the first cadences are flagged: time 0 is the first *kept* cadence
    path = write_qlp(tmp_path, 42, 15, sap, quality=quality)
    (row,), _ = read_all(TessQlpSurvey(), path)
    assert abs(float(row["value"].mean())) < 1e-5
    assert abs(float(row["value"].std()) - 1.0) < 1e-4
    assert row["time"][0] == 0.0 and np.all(np.diff(row["time"]) > 0)
    assert row["meta"]["time_offset"] == pytest.approx(1683.35 + 7 * CADENCE)
    assert row["time"][-1] == pytest.approx((n - 8) * CADENCE)
    # the whole chain, recomputed from the kept raw flux: detrend, then standardize;
    # the uncertainty is divided by the same standard deviation as the flux
    (raw,), _ = read_all(TessQlpSurvey(preprocessing="none"), path)
    flux = raw["value"].astype(float)
    detrended = flux - gaussian_filter1d(flux, 61)
    np.testing.assert_allclose(row["value"], (detrended - detrended.mean()) / detrended.std(),
                               atol=1e-4)
    np.testing.assert_allclose(row["error"], raw["error"] / detrended.std(), rtol=1e-5)


def test_ten_sigma_clip_removes_an_injected_outlier(tmp_path):
    n = 1300
    sap = noise(n, seed=2)
    sap[700] += 1.0  # 1000 sigma spike
    path = write_qlp(tmp_path, 7, 14, sap)
    (row,), report = read_all(TessQlpSurvey(), path)
    assert report.points_rejected == {"more than 10 sigma from the median": 1}
    spike_time = 700 * CADENCE
    assert not np.isclose(row["time"], spike_time, atol=1e-6).any()
    assert row["time"].size == n - 1 and report.balanced
    # without the spike nothing is clipped
    (row,), report = read_all(TessQlpSurvey(), write_qlp(tmp_path, 8, 14, noise(n, seed=2)))
    assert report.points_rejected == {} and row["time"].size == n


def test_gaussian_filter_removes_a_slow_trend_and_keeps_fast_variability(tmp_path):
    n = 1300
    t = CADENCE * np.arange(n)
    x = t / t[-1]
    slow = 0.03 * x + 0.04 * (x - 0.5) ** 2  # a systematic drift over the sector
    fast = 0.002 * np.sin(2 * np.pi * t / 0.5)  # a 12-hour pulsation
    path = write_qlp(tmp_path, 9, 26, slow + fast + noise(n, seed=3, level=1e-4))
    (row,), _ = read_all(TessQlpSurvey(), path)
    # away from the ends (3 sigma = 183 cadences), where the filter sees both sides
    interior = slice(3 * 61, n - 3 * 61)
    value = row["value"].astype(float)[interior]
    assert np.corrcoef(value, fast[interior])[0, 1] > 0.95
    assert abs(np.corrcoef(value, slow[interior])[0, 1]) < 0.1
    (raw,), _ = read_all(TessQlpSurvey(preprocessing="none"), path)
    assert np.corrcoef(raw["value"][interior], slow[interior])[0, 1] > 0.95  # trend was there

    # the step itself: sigma = 61 cadences leaves < 5% of a 30-day sine (longer than the
    # 7.7-day limit of sect. 4.3) but keeps > 99% of a 12-hour one
    for period, bound in ((30.0, lambda r, a: np.abs(r).max() < 0.05 * a),
                          (0.5, lambda r, a: np.abs(r).max() > 0.99 * a)):
        wave = 0.05 * np.sin(2 * np.pi * t / period)
        row = {"time": t, "value": (1.0 + wave).astype(np.float32),
               "error": np.ones(n, np.float32), "band": np.full(n, "tess")}
        residual = subtract_gaussian_trend(61)(row, IngestReport("t"))["value"]
        assert bound(residual[interior], 0.05)


def test_real_spoc_file_exact_counts(shared_data):
    path = shared_data / "tess" / SPOC_NAME
    with fits.open(path) as hdul:
        data = hdul["LIGHTCURVE"].data
        time = np.array(data["TIME"], dtype=float)
        flux = np.array(data["PDCSAP_FLUX"], dtype=float)
        err = np.array(data["PDCSAP_FLUX_ERR"], dtype=float)
        quality = np.array(data["QUALITY"], dtype=np.int64)
        tic, sector = hdul[0].header["TICID"], hdul[0].header["SECTOR"]
    flagged = quality != 0
    finite = np.isfinite(time) & np.isfinite(flux) & np.isfinite(err)
    kept = flux[~flagged & finite]
    clipped = np.abs(kept - np.median(kept)) > 10 * kept.std()
    survey = TessQlpSurvey()
    assert survey.reader_for(path).name == "spoc"
    (row,), report = read_all(survey, path)
    assert report.points_read == time.size == 20076
    assert report.points_rejected["QUALITY flag set (any bit)"] == flagged.sum() == 1975
    assert report.points_rejected.get("non-finite time, flux or error", 0) == \
        (~flagged & ~finite).sum()
    assert report.points_rejected["more than 10 sigma from the median"] == clipped.sum() > 0
    assert row["time"].size == kept.size - clipped.sum() == report.points_written
    assert report.balanced
    assert row["object_id"] == str(tic) == "358108509" and row["meta"]["sector"] == sector
    assert row["meta"]["flux_column"] == "PDCSAP_FLUX" and row["meta"]["format"] == "spoc"
    assert row["meta"]["cadence_min"] == pytest.approx(2.0)
    assert row["time"][0] == 0.0 and abs(float(row["value"].std()) - 1) < 1e-4
    (raw,), _ = read_all(TessQlpSurvey(preprocessing="none"), path)
    np.testing.assert_array_equal(raw["value"], kept.astype(np.float32))


def test_bundled_sample_ingests(tmp_path):
    from lcfm.ingest import ingest

    survey = TessQlpSurvey()
    sample = survey.sample_path()
    assert sum(p.stat().st_size for p in sample.iterdir()) < 1_500_000
    assert "MIT License" in (sample / "LICENSE").read_text()
    report = ingest(survey, None, tmp_path / "out")
    assert (report.light_curves_read, report.light_curves_written) == (1, 1)
    assert report.points_read == 20076 and report.balanced
    frame = pl.read_parquet(tmp_path / "out" / "*.parquet")
    assert frame["object_id"].to_list() == ["358108509"]


def test_labels_joined_from_a_catalogue(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for tic in (111, 222, 333):
        write_qlp(folder, tic, 14, noise(300, seed=tic))
    csv = tmp_path / "labels.csv"
    csv.write_text("TIC,class\nTIC 111,ECLIPSE\n0000000000000222,junk\n999,dsct_bcep\n")
    rows, _ = read_all(TessQlpSurvey(labels=str(csv)), folder)
    assert {r["object_id"]: r["label"] for r in rows} == {
        "111": "ECLIPSE", "222": "INSTRUMENT/JUNK", "333": None}

    from lcfm.ingest import ingest

    ingest(TessQlpSurvey(labels=str(csv)), folder, tmp_path / "out")
    frame = pl.read_parquet(tmp_path / "out" / "*.parquet").sort("object_id")
    assert frame["label"].to_list() == ["ECLIPSE", "INSTRUMENT/JUNK", None]


@pytest.mark.parametrize("text, message", [
    ("TIC,class\n111,ECLIPSE\n222,CONSTANT\n", "line 3: unknown class 'CONSTANT' for object 222"),
    ("TIC,class\n111,ECLIPSE\n111,SOLARLIKE\n", "line 3: object 111 is labeled 'SOLARLIKE'"),
    ("id,type\n111,ECLIPSE\n", "line 1: header"),
    ("TIC,class\nabc,ECLIPSE\n", "line 2: object id 'abc' is not an integer"),
])
def test_bad_label_catalogues_name_the_row(tmp_path, text, message):
    write_qlp(tmp_path, 111, 14, noise(100))
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    with pytest.raises(InputFileError) as info:
        read_all(TessQlpSurvey(labels=str(csv)), tmp_path)
    assert str(info.value).startswith(str(csv)) and message in str(info.value)


def test_format_detection_and_selection(shared_data, tmp_path):
    survey = TessQlpSurvey()
    qlp = write_qlp(tmp_path, 5, 14, noise(50))
    assert survey.reader_for(qlp).name == "qlp"
    renamed = write_qlp(tmp_path, 6, 14, noise(50), name="star6.fits")
    assert survey.reader_for(renamed).name == "qlp"  # ORIGIN = 'MIT/QLP'
    spoc = tmp_path / "renamed_spoc.fits"
    shutil.copy(shared_data / "tess" / SPOC_NAME, spoc)
    assert survey.reader_for(spoc).name == "spoc"  # TESS, not QLP
    assert survey.reader_for(renamed, fmt="spoc").name == "spoc"
    with pytest.raises(ConfigError, match="no format 'eleanor'"):
        survey.reader_for(qlp, fmt="eleanor")
    rows, _ = read_all(survey, tmp_path, fmt="qlp")  # only QLP-named files are listed
    assert sorted(r["object_id"] for r in rows) == ["5"]


def test_sector_56_detrended_columns_and_flux_option(tmp_path):
    sap = noise(400, seed=4)
    path = write_qlp(tmp_path, 77, 60, sap, detrended_prefix="DET",
                     error=np.full(400, 2e-3))
    (row,), _ = read_all(TessQlpSurvey(preprocessing="none"), path)
    assert row["meta"]["flux_column"] == "SAP_FLUX"
    np.testing.assert_allclose(row["error"], 2e-3, rtol=1e-6)  # DET_FLUX_ERR
    (row,), _ = read_all(TessQlpSurvey(flux_column="KSPSAP_FLUX", preprocessing="none"), path)
    assert row["meta"]["flux_column"] == "DET_FLUX"
    np.testing.assert_allclose(row["value"], sap / np.median(sap), rtol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("truncated", "unreadable or truncated FITS file"),
    ("no_table", "no LIGHTCURVE binary-table HDU"),
    ("no_quality", "lacks column(s) ['QUALITY']"),
    ("no_error", "lacks column SAP_FLUX_ERR / KSPSAP_FLUX_ERR / DET_FLUX_ERR"),
    ("no_ticid", "primary header has no TICID keyword"),
    ("empty", "unreadable or truncated FITS file"),
])
def test_bad_qlp_files_raise_one_line_errors_naming_the_file(tmp_path, case, message):
    path = tmp_path / qlp_name(99, 14)
    if case == "truncated":
        full = write_qlp(tmp_path, 98, 14, noise(2000))
        path.write_bytes(full.read_bytes()[:30000])
        full.unlink()
    elif case == "no_table":
        fits.PrimaryHDU().writeto(path)
    elif case == "no_quality":
        write_qlp(tmp_path, 99, 14, noise(10), drop=("QUALITY",))
    elif case == "no_error":
        write_qlp(tmp_path, 99, 14, noise(10), drop=("KSPSAP_FLUX_ERR",))
    elif case == "no_ticid":
        write_qlp(tmp_path, 99, 14, noise(10), header={"TICID": None})
    else:
        path.write_bytes(b"")
    with pytest.raises(InputFileError) as info:
        read_all(TessQlpSurvey(), path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_conservation_through_ingest_with_rejected_light_curves(tmp_path):
    from lcfm.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    n = 600
    spiky = noise(n, seed=5)
    spiky[100] = 3.0
    write_qlp(folder, 1, 14, spiky)  # 1 point clipped
    write_qlp(folder, 2, 14, noise(n, seed=6), quality=np.full(n, 4096))  # all flagged
    write_qlp(folder, 3, 14, np.full(n, 1.5))  # constant: cannot be standardized
    nan_half = noise(n, seed=7)
    nan_half[: n // 2] = np.nan
    write_qlp(folder, 4, 15, nan_half)
    report = ingest(TessQlpSurvey(), folder, tmp_path / "out")
    assert report.files_read == 4 and report.light_curves_read == 4
    assert report.light_curves_written == 2
    assert report.light_curves_rejected == {"no valid cadences": 1,
                                            "constant flux (cannot standardize)": 1}
    assert report.points_read == 4 * n
    assert report.points_rejected == {"more than 10 sigma from the median": 1,
                                      "QUALITY flag set (any bit)": n,
                                      "constant flux (cannot standardize)": n,
                                      "non-finite time, flux or error": n // 2}
    assert report.points_written == (n - 1) + n // 2
    assert report.points_written + sum(report.points_rejected.values()) == report.points_read
    frame = pl.read_parquet(tmp_path / "out" / "*.parquet")
    assert frame["time"].list.len().sum() == report.points_written


def test_option_validation():
    with pytest.raises(ConfigError, match="clip_sigma"):
        TessQlpSurvey(clip_sigma="-1")
    with pytest.raises(ConfigError, match="preprocessing"):
        TessQlpSurvey(preprocessing="fancy")
    assert TessQlpSurvey(quality_bitmask="0x1000").bitmask == 4096
    assert TessQlpSurvey(gaussian_sigma="30").gaussian_sigma == 30.0
