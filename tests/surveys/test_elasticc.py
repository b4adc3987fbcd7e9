"""ELAsTiCC survey plugin: SNANA FITS pairs, LSST alert Parquet, ATCAT preprocessing,
20-class labels, the metadata quantile transform, bad input and conservation.

Expected numbers are computed independently in the tests (astropy, polars, numpy) from the
files the plugin reads. SNANA layouts without a real file here (gzipped lower-case pairs,
BAND columns with bytes or integer SNIDs, separators inside a pointer range, ...) are
written by the tests in exactly the SNANA layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from astropy.io import fits
from lcfm.exceptions import ConfigError, DataError, InputFileError
from lcfm.ingest import ingest, read_rows
from lcfm.registry import get_survey
from lcfm.report import IngestReport
from lcfm.shards import read_shards
from lcfm_surveys.elasticc import (
    CLASSES,
    METADATA_FEATURES,
    TRANSFORM_FILE,
    ElasticcSurvey,
    MetadataQuantileTransform,
    apply_metadata_transform,
    fit_metadata_transform,
)
from lcfm_surveys.elasticc.taxonomy import (
    TAXONOMY,
    class_of_code,
    model_name_in,
    model_name_of_folder,
)

SNANA_HEAD = "SNANA_SAMPLE-0010_HEAD.FITS.gz"
SNANA_PHOT = "SNANA_SAMPLE-0010_PHOT.FITS.gz"
SNCOSMO_HEAD = "snana_fits_example_head.fits"
ALERTS = "elasticc_alerts_sample.parquet"
FINK = "elasticc_alerts_fink_seed0.parquet"
WINDOW = "more than 30 days before the first alert"


def run(survey, path, fmt=None):
    """Read, preprocess, count (balanced): (rows kept, report)."""
    return read_rows(survey, Path(path), fmt=fmt)


def read_raw(survey, path):
    report = IngestReport(survey.name)
    rows = list(survey.reader_for(Path(path)).read(Path(path), report))
    return rows, report


@pytest.fixture(scope="module")
def survey():
    return ElasticcSurvey()


@pytest.fixture(scope="module")
def snana_sample(shared_data):
    """HEAD and PHOT of the SNANA sample read with astropy alone (the expectations)."""
    with fits.open(shared_data / "elasticc" / SNANA_HEAD) as h:
        head = {c: np.array(h[1].data[c]) for c in ("SNID", "PTROBS_MIN", "PTROBS_MAX")}
    with fits.open(shared_data / "elasticc" / SNANA_PHOT) as p:
        phot = {c: np.array(p[1].data[c]) for c in ("MJD", "BAND", "PHOTFLAG", "FLUXCAL")}
    return head, phot


@pytest.fixture(scope="module")
def snana_rows(survey, shared_data):
    return run(survey, shared_data / "elasticc" / SNANA_HEAD)


# ---- plugin basics -------------------------------------------------------------------------
def test_entry_point_and_bands():
    survey = get_survey("elasticc")
    assert isinstance(survey, ElasticcSurvey)
    assert survey.value_kind == "flux"
    # LSST baseline effective wavelengths (Angstrom), increasing from u to Y
    assert dict(survey.bands) == {"u": 3670.69, "g": 4826.85, "r": 6223.24, "i": 7545.98,
                                  "z": 8590.90, "Y": 9710.28}
    assert survey.wavelength("g") == 4826.85
    assert set(survey.formats) == {"snana_fits", "alert_parquet"}
    assert survey.default_window == 243


def test_bad_options_raise():
    with pytest.raises(ConfigError, match="alert_flag"):
        ElasticcSurvey(alert_flag="sometimes")
    with pytest.raises(ConfigError, match="window_days"):
        ElasticcSurvey(window_days=-1)
    with pytest.raises(ConfigError, match="no option"):
        ElasticcSurvey(windows=3)
    assert ElasticcSurvey(drop_saturated="false").opts["drop_saturated"] is False


# ---- SNANA FITS: the real PLAsTiCC/ELAsTiCC-style sample ---------------------------------------
def test_snana_sample_counts_points_and_separators(survey, shared_data, snana_sample):
    head, phot = snana_sample
    rows, report = read_raw(survey, shared_data / "elasticc" / SNANA_HEAD)
    sizes = head["PTROBS_MAX"] - head["PTROBS_MIN"] + 1
    assert len(rows) == report.light_curves_read == len(head["SNID"]) == 200
    # separator rows (MJD = -777) lie between pointer ranges: not observations, not read
    assert (phot["MJD"] == -777).sum() == 200
    assert report.points_read == sizes.sum() == phot["MJD"].size - 200 == 250776
    assert not report.points_rejected  # no saturation flags, no unknown bands here
    for row, snid, lo, hi in zip(rows, head["SNID"], head["PTROBS_MIN"], head["PTROBS_MAX"],
                                 strict=True):
        assert row["object_id"] == str(snid).strip()
        np.testing.assert_array_equal(row["time"], phot["MJD"][lo - 1:hi])
        np.testing.assert_array_equal(row["value"], phot["FLUXCAL"][lo - 1:hi])
        assert list(row["band"]) == [b.strip() for b in phot["BAND"][lo - 1:hi]]


def test_snana_sample_window_and_time_origin(snana_rows, snana_sample):
    rows, report = snana_rows
    head, phot = snana_sample
    expected_kept = 0
    by_id = {r["object_id"]: r for r in rows}
    for snid, lo, hi in zip(head["SNID"], head["PTROBS_MIN"], head["PTROBS_MAX"], strict=False):
        t, flag = phot["MJD"][lo - 1:hi], phot["PHOTFLAG"][lo - 1:hi]
        t_alert = t[(flag & 2048) != 0].min()  # trigger epoch = first alert (PHOTFLAG 6144)
        kept = np.sort(t[t >= t_alert - 30.0])
        expected_kept += kept.size
        row = by_id[str(snid).strip()]
        assert row["time"].size == kept.size
        assert row["time"][0] == 0.0  # t = 0 at the first kept point
        np.testing.assert_allclose(row["time"] + row["meta"]["time_offset"], kept)
        assert row["meta"]["time_offset"] == kept[0]
        assert row["meta"]["alert_mjd"] == t_alert
        assert row["meta"]["t_alert"] == pytest.approx(t_alert - kept[0])
    assert report.points_written == expected_kept == 226230
    assert report.points_rejected == {WINDOW: 250776 - 226230}


def test_snana_sample_detection_bit_option(survey, shared_data, snana_sample):
    head, phot = snana_sample
    rows, _ = run(survey.with_options(alert_flag="detection"),
                  shared_data / "elasticc" / SNANA_HEAD)
    expected = 0
    for lo, hi in zip(head["PTROBS_MIN"], head["PTROBS_MAX"], strict=False):
        t, flag = phot["MJD"][lo - 1:hi], phot["PHOTFLAG"][lo - 1:hi]
        expected += int((t >= t[(flag & 4096) != 0].min() - 30.0).sum())
    assert sum(r["time"].size for r in rows) == expected
    assert expected > 226230  # the first detection precedes the trigger


def test_snana_sample_labels_and_metadata(snana_rows):
    rows, _ = snana_rows
    assert {r["label"] for r in rows} == {"Ia"}  # PLAsTiCC-style SNIa sample
    assert {r["meta"]["raw_class"] for r in rows} == {"SNIa-SALT2"}  # from the VERSION key
    assert {r["meta"]["gentype"] for r in rows} == {90}
    meta = rows[0]["meta"]
    assert set(METADATA_FEATURES) <= set(meta)
    assert meta["z_final"] == pytest.approx(0.8900422, rel=1e-6)  # REDSHIFT_HELIO
    assert np.isfinite(meta["hostgal_mag_u"]) and np.isfinite(meta["hostgal_mag_Y"])
    assert np.isnan(meta["hostgal2_mag_u"])  # no second host in this file
    assert not any(k.startswith("sim") for k in meta)  # no simulation truth leaks
    assert all(set(r["band"]) <= set("ugrizY") for r in rows)


def test_sncosmo_pair_with_flt_column(survey, shared_data):
    head = shared_data / "elasticc" / SNCOSMO_HEAD
    rows, report = run(survey, head)
    with fits.open(shared_data / "elasticc" / "snana_fits_example_phot.fits") as p:
        mjd, flt = np.array(p[1].data["MJD"]), np.array(p[1].data["FLT"])
    assert [r["object_id"] for r in rows] == ["03D1aw", "03D1ax"]
    assert [r["time"].size for r in rows] == [48, 47]
    assert report.points_read == (mjd != -777).sum() == 95
    # no PHOTFLAG detections: no alert, the light curve is kept whole
    assert all(np.isnan(r["meta"]["alert_mjd"]) for r in rows)
    assert [r["label"] for r in rows] == [None, None]  # SNTYPE 0: unknown type
    assert list(rows[0]["band"]) == [b.strip() for b in flt[:48]]
    rejected, report = run(survey.with_options(no_alert="reject"), head)
    assert rejected == [] and report.light_curves_rejected == {"no alert or detection": 2}


# ---- alerts ------------------------------------------------------------------------------
def test_alert_sample_dedup(survey, shared_data):
    path = shared_data / "elasticc" / ALERTS
    rows, report = run(survey, path)
    frame = pl.read_parquet(path, columns=["diaSource", "prvDiaSources", "diaObject"])
    obj = frame["diaObject"].struct.field("diaObjectId")
    alert_ids = frame["diaSource"].struct.field("diaSourceId")
    prv = frame.select(obj.alias("o"), "prvDiaSources").explode("prvDiaSources") \
        .drop_nulls("prvDiaSources")
    records = pl.concat([pl.DataFrame({"o": obj, "id": alert_ids}),
                         prv.select("o", pl.col("prvDiaSources").struct.field("diaSourceId")
                                    .alias("id"))])
    per_object = records.unique().group_by("o").len()
    assert frame.height == 5693 and per_object.height == 518
    assert len(rows) == report.light_curves_written == 518
    assert report.points_read == records.height == 5693 + prv.height
    assert report.points_written == per_object["len"].sum() == 8143
    expected = dict(zip(per_object["o"].cast(pl.String), per_object["len"], strict=False))
    for row in rows:
        assert row["time"].size == expected[row["object_id"]]
        # each observation once: no repeated (time, band)
        assert len(set(zip(row["time"], row["band"], strict=False))) == row["time"].size
        assert np.all(np.diff(row["time"]) >= 0) and row["time"][0] == 0.0
        assert row["label"] is None and row["value_kind"] == "flux"
    assert report.points_rejected == {"diaSource repeated in another alert":
                                      records.height - 8143}


def test_fink_alerts_merge_forced_photometry(survey, shared_data):
    path = shared_data / "elasticc" / FINK
    rows, report = run(survey, path)
    frame = pl.read_parquet(path, columns=["diaSource", "prvDiaSources",
                                           "prvDiaForcedSources", "diaObject"])
    obj = frame["diaObject"].struct.field("diaObjectId").alias("o")

    def explode(column):
        return (frame.select(obj, column).explode(column).drop_nulls(column)
                .select("o", pl.col(column).struct.unnest()))

    sources = pl.concat([frame.select(obj, pl.col("diaSource").struct.unnest())
                         .select(explode("prvDiaSources").columns),
                         explode("prvDiaSources")]).unique(["o", "diaSourceId"])
    forced = explode("prvDiaForcedSources").unique(["o", "diaForcedSourceId"])
    same_epoch = forced.join(sources, on=["o", "midPointTai", "filterName"], how="semi")
    expected_points = sources.height + forced.height - same_epoch.height
    assert len(rows) == frame.height == 89
    assert (sources.height, forced.height, same_epoch.height) == (1925, 4468, 1825)
    assert report.points_written == expected_points == 4568
    assert report.points_rejected == {"forced photometry at a detection's epoch and band": 1825}
    first = sources.group_by("o").agg(pl.col("midPointTai").min())
    alert = {str(o): t for o, t in first.iter_rows()}
    for row in rows:
        assert row["meta"]["alert_mjd"] == alert[row["object_id"]]  # first diaSource
        assert len(set(zip(row["time"], row["band"], strict=False))) == row["time"].size
    meta = rows[0]["meta"]
    assert np.isfinite(meta["mwebv"]) and np.isfinite(meta["hostgal_zphot_q050"])
    without, report = run(survey.with_options(include_forced=False), path)
    assert report.points_written == 1925


def test_alerts_with_later_lsst_field_names(survey, tmp_path):
    """midpointMjdTai / band / psfFlux / dec spellings; two alerts of one object repeating a
    detection and a forced point, one forced point at a detection's epoch and band."""
    def src(i, t, b, f):
        return {"diaSourceId": i, "diaObjectId": 9, "midpointMjdTai": t, "band": b,
                "psfFlux": f, "psfFluxErr": 1.0}

    def forced(i, t, b, f):
        return {"diaForcedSourceId": i, "diaObjectId": 9, "midpointMjdTai": t, "band": b,
                "psfFlux": f, "psfFluxErr": 2.0}

    obj = {"diaObjectId": 9, "ra": 1.5, "dec": -2.5, "mwebv": 0.1, "hostgal_zphot_q10": 0.3}
    alerts = pl.DataFrame({
        "alertId": [1, 2],
        "diaSource": [src(1, 60010.0, "g", 5.0), src(2, 60012.0, "y", 7.0)],
        "prvDiaSources": [[], [src(1, 60010.0, "g", 5.0)]],
        "prvDiaForcedSources": [
            [forced(11, 59950.0, "r", 0.1), forced(12, 59990.0, "r", 0.2)],
            [forced(11, 59950.0, "r", 0.1), forced(12, 59990.0, "r", 0.2),
             forced(13, 60010.0, "g", 5.1)]],
        "diaObject": [obj, obj],
    })
    path = tmp_path / "lsst_alerts.parquet"
    alerts.write_parquet(path)
    rows, report = run(survey, path)
    assert report.points_read == 2 + 1 + 5
    assert report.points_rejected == {
        "diaSource repeated in another alert": 1, "diaForcedSource repeated in another alert": 2,
        "forced photometry at a detection's epoch and band": 1, WINDOW: 1}
    (row,) = rows
    assert row["object_id"] == "9" and list(row["band"]) == ["r", "g", "Y"]
    assert list(row["time"]) == [0.0, 20.0, 22.0]  # 59950 is > 30 d before the alert
    assert list(row["value"]) == [0.2, 5.0, 7.0]  # the detection wins over forced 5.1
    meta = row["meta"]
    assert (meta["ra"], meta["dec"], meta["alert_mjd"]) == (1.5, -2.5, 60010.0)
    assert meta["hostgal_zphot_q010"] == pytest.approx(0.3)  # q10 spelled q010 in lcfm
    assert meta["mwebv"] == pytest.approx(0.1) and np.isnan(meta["z_final"])


# ---- taxonomy ----------------------------------------------------------------------------
def test_twenty_class_scheme_and_raw_codes():
    assert len(CLASSES) == len(set(CLASSES)) == 20
    assert TAXONOMY.map("SNIa-SALT2") == "Ia" and TAXONOMY.map("SNIa-91bg") == "91bg"
    assert TAXONOMY.map("SNIIb+HostXT_V19") == "SN-like/Other"  # ATAT's grouping
    assert TAXONOMY.map("SNIIn-MOSFIT") == "II" and TAXONOMY.map("KN_B19") == "KN"
    assert TAXONOMY.map("uLens-Binary") == "uLens" and TAXONOMY.map("d-Sct") == "Delta Scuti"
    # ELAsTiCC broker class ids, original and 2023 revision
    assert [TAXONOMY.map(c) for c in ("111", "115", "124", "135", "214", "221")] == \
        ["Ia", "91bg", "uLens", "PISN", "EB", "AGN"]
    assert TAXONOMY.map("2222") == "Ia" and TAXONOMY.map("2332") == "AGN"
    assert TAXONOMY.map("215") is None  # LPV/Mira: not among the 20 classes
    # SNANA model numbers: ELAsTiCC (10 SNIa-SALT2 ... 90 Cepheid) vs PLAsTiCC (90 SNIa)
    assert class_of_code(10, "elasticc") == ("Ia", "SNIa-SALT2")
    assert class_of_code(110, "elasticc") == ("Ia", "SNIa-SALT2")  # SNTYPE = GENTYPE + 100
    assert class_of_code(90, "elasticc") == ("Cepheid", "Cepheid")
    assert class_of_code(90, "plasticc")[0] == "Ia"
    assert class_of_code(0, "elasticc")[0] is None
    assert model_name_in("TMP_MLAG_MODEL90_SNIa-SALT2_FULL_NONIaMODEL0-0010") == "SNIa-SALT2"
    assert model_name_of_folder("ELASTICC_TRAIN_SNII+HostXT_V19") == "SNII+HostXT_V19"
    assert model_name_of_folder("AGN") is None


# ---- in-repo SNANA fixtures ----------------------------------------------------------------
def write_pair(folder: Path, stem: str, objects: list[dict], *, band_column="BAND",
               gz=False, lower=False, snid="str", version="TEST"):
    """Write a SNANA HEAD/PHOT pair: per object MJD, band, flux, err, flag lists; a -777
    separator row after each light curve; 1-based inclusive pointers."""
    folder.mkdir(parents=True, exist_ok=True)
    mjd, band, flux, err, flag, lo, hi = [], [], [], [], [], [], []
    for o in objects:
        lo.append(len(mjd) + 1)
        mjd += o["mjd"]
        band += o["band"]
        flux += o.get("flux", [10.0] * len(o["mjd"]))
        err += o.get("err", [1.0] * len(o["mjd"]))
        flag += o.get("flag", [0] * len(o["mjd"]))
        hi.append(len(mjd))
        mjd.append(-777.0), band.append("-"), flux.append(0.0), err.append(0.0), flag.append(0)
    ids = [o["snid"] for o in objects]
    snid_column = {"str": fits.Column("SNID", "16A", array=np.array(ids, dtype="U16")),
                   "bytes": fits.Column("SNID", "16A", array=np.array(ids, dtype="S16")),
                   "int": fits.Column("SNID", "K", array=np.array(ids, dtype=np.int64))}[snid]
    head = fits.BinTableHDU.from_columns([
        snid_column,
        fits.Column("SNTYPE", "J", array=[o.get("sntype", 0) for o in objects]),
        fits.Column("RA", "D", array=[10.0] * len(objects)),
        fits.Column("DEC", "D", array=[-5.0] * len(objects)),
        fits.Column("PTROBS_MIN", "J", array=lo), fits.Column("PTROBS_MAX", "J", array=hi),
        fits.Column("MWEBV", "E", array=[0.02] * len(objects)),
        fits.Column("HOSTGAL_MAG_g", "E", array=[22.0] * len(objects)),
    ])
    phot = fits.BinTableHDU.from_columns([
        fits.Column("MJD", "D", array=mjd), fits.Column(band_column, "2A", array=band),
        fits.Column("PHOTFLAG", "J", array=flag), fits.Column("FLUXCAL", "E", array=flux),
        fits.Column("FLUXCALERR", "E", array=err),
    ])
    primary = fits.PrimaryHDU()
    primary.header["VERSION"] = version
    kinds = ("head", "phot") if lower else ("HEAD", "PHOT")
    ext = (".fits" if lower else ".FITS") + (".gz" if gz else "")
    paths = []
    for kind, table in zip(kinds, (head, phot), strict=False):
        path = folder / f"{stem}_{kind}{ext}"
        fits.HDUList([primary.copy(), table]).writeto(path)
        paths.append(path)
    return paths


def one_object(snid="1", **extra):
    obj = {"snid": snid, "mjd": [100.0, 120.0, 140.0, 150.0, 152.0],
           "band": ["g", "r", "i ", "z", "Y"], "flag": [0, 0, 4096, 6144, 4096]}
    return {**obj, **extra}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("band_column,snid", [("BAND", "str"), ("FLT", "bytes"),
                                              ("BAND", "int")])
def test_snana_variants(survey, tmp_path, gz, lower, band_column, snid):
    head, phot = write_pair(tmp_path, "X", [one_object("7"), one_object("8")],
                            band_column=band_column, gz=gz, lower=lower, snid=snid)
    assert survey.input_files(tmp_path) == [head]  # the pair is read once, via its HEAD
    for path in (head, phot):  # a PHOT file given alone is read through its HEAD
        rows, report = run(survey, path)
        assert [r["object_id"] for r in rows] == ["7", "8"]
        # trigger at MJD 150: points from MJD 120 on are kept, t = 0 at MJD 120
        assert [list(r["time"]) for r in rows] == [[0.0, 20.0, 30.0, 32.0]] * 2
        assert list(rows[0]["band"]) == ["r", "i", "z", "Y"]
        assert report.points_read == 10 and report.points_rejected == {WINDOW: 2}


def test_snana_in_pointer_separator_saturation_and_bad_band(survey, tmp_path):
    obj = {"snid": "5", "mjd": [10.0, 11.0, -777.0, 12.0, 13.0],
           "band": ["g", "r", "-", "q", "i"], "flag": [6144, 1024, 0, 0, 0]}
    empty = {"snid": "6", "mjd": [], "band": []}  # PTROBS_MAX = PTROBS_MIN - 1
    head, _ = write_pair(tmp_path, "S", [obj, empty])
    rows, report = run(survey, head)
    assert report.points_read == 5 and report.light_curves_read == 2
    assert report.light_curves_rejected == {"empty light curve": 1}
    assert report.points_rejected == {"SNANA end-of-light-curve marker (MJD = -777)": 1,
                                      "saturated (PHOTFLAG bit 1024)": 1,
                                      "band not one of LSST ugrizY": 1}
    assert list(rows[0]["time"]) == [0.0, 3.0]
    rows, report = run(survey.with_options(drop_saturated=False), head)
    assert rows[0]["time"].size == 3


def test_snana_labels_from_folder_and_codes(survey, tmp_path):
    head, _ = write_pair(tmp_path / "ELASTICC_TRAIN_KN_K17", "ELASTICC_TRAIN_NONIaMODEL0-0001",
                         [one_object(sntype=0)])
    rows, _ = run(survey, head)
    assert rows[0]["label"] == "KN" and rows[0]["meta"]["raw_class"] == "KN_K17"
    # no model name anywhere: the type number decides, in the file's code scheme
    head, _ = write_pair(tmp_path / "codes", "C", [one_object("1", sntype=90),
                                                   one_object("2", sntype=111),
                                                   one_object("3", sntype=77)])
    rows, _ = run(survey, head)
    # ELAsTiCC numbers; SNTYPE 111 is GENTYPE 11 (SNIa-91bg) + 100, not a class id
    assert [r["label"] for r in rows] == ["Cepheid", "91bg", None]
    rows, _ = run(survey.with_options(code_scheme="plasticc"), head)
    assert [r["label"] for r in rows][0] == "Ia"  # PLAsTiCC 90 = SNIa


# ---- bad input -----------------------------------------------------------------------------
def test_bad_snana_input(survey, tmp_path, shared_data):
    head, phot = write_pair(tmp_path / "gz", "T", [one_object()], gz=True)
    phot.write_bytes(phot.read_bytes()[:200])  # truncated gzip stream
    with pytest.raises(InputFileError, match="T_PHOT.FITS.gz: truncated or corrupt gzip"):
        list(survey.reader_for(head).read(head, IngestReport("elasticc")))
    head, phot = write_pair(tmp_path / "plain", "T", [one_object()])
    phot.write_bytes(phot.read_bytes()[:4000])  # truncated FITS table
    with pytest.raises(InputFileError, match="T_PHOT.FITS: unreadable or truncated FITS"):
        list(survey.reader_for(head).read(head, IngestReport("elasticc")))
    lonely = tmp_path / "lonely"
    write_pair(lonely, "L", [one_object()], lower=True)[1].unlink()
    with pytest.raises(InputFileError, match=r"L_head.fits: no PHOT partner .*L_phot.fits"):
        run(survey, lonely)
    head, phot = write_pair(tmp_path / "cols", "W", [one_object()])
    with fits.open(phot) as hdul:  # a PHOT table without FLUXCALERR
        table = fits.BinTableHDU.from_columns(
            [c for c in hdul[1].columns if c.name != "FLUXCALERR"])
        fits.HDUList([hdul[0].copy(), table]).writeto(phot, overwrite=True)
    with pytest.raises(InputFileError, match=r"W_PHOT.FITS: missing column\(s\) \['FLUXCALERR'\]") \
            as caught:
        run(survey, head)
    assert "\n" not in str(caught.value)  # one line for the CLI


def test_bad_alert_input(survey, tmp_path, shared_data):
    no_source = tmp_path / "objects.parquet"
    pl.DataFrame({"alertId": [1], "diaObject": [{"diaObjectId": 1}]}).write_parquet(no_source)
    with pytest.raises(InputFileError, match="objects.parquet: no diaSource struct column"):
        run(survey, no_source)
    truncated = tmp_path / "cut.parquet"
    truncated.write_bytes((shared_data / "elasticc" / FINK).read_bytes()[:50_000])
    with pytest.raises(InputFileError, match="cut.parquet: unreadable or truncated Parquet"):
        run(survey, truncated)
    renamed = tmp_path / "renamed.parquet"
    pl.DataFrame({"diaSource": [{"diaSourceId": 1, "diaObjectId": 2, "mjd": 1.0,
                                 "filterName": "g", "psFlux": 1.0, "psFluxErr": 1.0}]}
                 ).write_parquet(renamed)
    with pytest.raises(InputFileError, match=r"diaSource lacks field\(s\) \['midPointTai"):
        run(survey, renamed)


# ---- quantile transform --------------------------------------------------------------------
def test_quantile_transform_properties(tmp_path):
    rng = np.random.default_rng(0)
    n = 4000
    x = np.c_[rng.lognormal(0, 1, n), rng.uniform(-9, 30, n), rng.normal(5, 2, n)]
    x[:50, 1] = np.nan
    x[50:60, 1] = np.inf
    x[60:65, 1] = -np.inf
    features = ("a", "b", "c")
    qt = MetadataQuantileTransform.fit(x, features, n_quantiles=1000)
    enc = qt.transform(x)
    finite = np.isfinite(x)
    for j in range(3):  # ~N(0, 1) on the training data
        assert abs(enc.values[finite[:, j], j].mean()) < 0.02
        assert abs(enc.values[finite[:, j], j].std() - 1) < 0.05
    grid = np.linspace(-20, 40, 500)  # monotone in every feature
    out = qt.transform(np.c_[grid, grid, grid]).values
    assert np.all(np.diff(out, axis=0) >= 0) and np.all(np.abs(out) < 5.3)
    assert enc.is_nan[:, 1].sum() == 50 and enc.is_posinf[:, 1].sum() == 10
    assert enc.is_neginf[:, 1].sum() == 5
    assert np.all(enc.values[~finite] == 0.0)
    assert enc.as_array().shape == (n, 12)
    path = qt.save(tmp_path / "t.json")
    again = MetadataQuantileTransform.load(path)
    np.testing.assert_array_equal(again.transform(x).values, enc.values)
    # same numbers as scikit-learn's QuantileTransformer on finite data
    sklearn = pytest.importorskip("sklearn.preprocessing")
    ref = sklearn.QuantileTransformer(n_quantiles=1000, output_distribution="normal",
                                      subsample=10**9).fit(x[:, [0, 2]])
    np.testing.assert_allclose(enc.values[:, [0, 2]], ref.transform(x[:, [0, 2]]), atol=1e-6)


def test_transform_applies_to_meta_dicts_and_bad_files(tmp_path):
    metas = [{"mwebv": v, "z_final": 2 * v} for v in np.linspace(0, 1, 101)]
    qt = fit_metadata_transform(metas)
    assert qt.features == METADATA_FEATURES
    enc = apply_metadata_transform(qt, {"mwebv": 0.5, "z_final": float("inf")})
    assert enc.values.shape == (1, len(METADATA_FEATURES))
    assert enc.values[0, 0] == pytest.approx(0.0, abs=1e-6)  # the median -> 0
    j = METADATA_FEATURES.index("z_final")
    assert enc.is_posinf[0, j] and enc.values[0, j] == 0.0
    assert enc.is_nan[0, METADATA_FEATURES.index("hostgal_mag_u")]
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not an lcfm ELAsTiCC metadata transform"):
        MetadataQuantileTransform.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="no ELAsTiCC metadata transform"):
        MetadataQuantileTransform.load(tmp_path)


# ---- end to end through lcfm.ingest --------------------------------------------------------
def test_ingest_shared_folder_conserves_and_saves_transform(survey, shared_data, tmp_path):
    report = ingest(survey, shared_data / "elasticc", tmp_path / "out")
    assert report.files_read == 4  # 2 SNANA pairs (read via HEAD) + 2 alert files
    assert report.light_curves_read == report.light_curves_written == 200 + 2 + 518 + 89
    assert report.points_written + sum(report.points_rejected.values()) == report.points_read
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["balanced"] and saved["points_read"] == 250776 + 95 + 69355 + 6393
    frame = read_shards(tmp_path / "out")
    assert frame["label"].value_counts().sort("label").rows() == [(None, 609), ("Ia", 200)]
    assert set(frame["band"].explode().cast(pl.String).unique()) <= set("ugrizY")
    qt = MetadataQuantileTransform.load(tmp_path / "out")
    assert qt.n_train == 809 and qt.features == METADATA_FEATURES
    enc = apply_metadata_transform(tmp_path / "out" / TRANSFORM_FILE, frame)
    j = METADATA_FEATURES.index("mwebv")
    assert not enc.is_nan[:, j].any() and enc.is_nan[:, METADATA_FEATURES.index(
        "hostgal2_zphot_q000")].sum() >= 200 + 2 + 518  # absent in three of the layouts


def test_bundled_sample_ingests(survey, tmp_path):
    sample = survey.sample_path()
    files = sorted(p.name for p in sample.iterdir())
    assert "LICENSE" in files and "README.md" in files
    assert all((sample / f).stat().st_size < 1_000_000 for f in files)
    report = ingest(survey, None, tmp_path / "sample")
    assert report.light_curves_written == 2 + 518 + 89 and report.balanced
    assert (tmp_path / "sample" / TRANSFORM_FILE).is_file()


def test_quantile_clip_constant_is_ndtri_of_the_bounds_threshold():
    from lcfm_surveys.elasticc import transform
    from scipy.special import ndtri

    assert transform._CLIP == float(ndtri(transform.BOUNDS_THRESHOLD - np.spacing(1)))
