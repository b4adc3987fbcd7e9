"""ELAsTiCC broker exports (issue 9, item 5) and SNANA duplicate objects (item 6).

The fixtures are written in exactly the layout of a broker export, from the bundled real
alerts: one object's alerts split into two Parquet files in two Hive folders
(`date=.../classId=111/part-0.parquet`), a GENTYPE column added to one of them, and a
second object under `classId=121/`. Expectations come from reading all of the object's
alerts from one file (the merge must give the same light curve) and from polars.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from astropy.io import fits
from astropy.table import Table, vstack
from lcfm.exceptions import InputFileError
from lcfm.ingest import ingest, read_rows
from lcfm.registry import get_survey
from lcfm.report import IngestReport
from lcfm.shards import read_shards
from lcfm_surveys.elasticc.broker import REPEATED_ACROSS_FILES, hive_sources, merge_alert_rows

SPLIT, WHOLE = "572", "1143"  # objects of the bundled sample with 44 alerts each


@pytest.fixture(scope="module")
def survey():
    return get_survey("elasticc")


@pytest.fixture(scope="module")
def alerts(survey):
    """The bundled alert table with each alert's object id and time."""
    frame = pl.read_parquet(survey.sample_path() / "elasticc_alerts_sample.parquet")
    return frame.with_columns(
        pl.col("diaObject").struct.field("diaObjectId").cast(pl.String).alias("_obj"),
        pl.col("diaSource").struct.field("midPointTai").alias("_t"))


def _write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.drop("_obj", "_t").write_parquet(path)
    return path


def write_export(alerts: pl.DataFrame, root: Path) -> dict[str, Path]:
    """A broker export: SPLIT's alerts in two files of two Hive folders, the second with a
    GENTYPE column (10 = SNIa-SALT2); WHOLE's alerts under classId=121 (KN), no column."""
    split = alerts.filter(pl.col("_obj") == SPLIT).sort("_t")
    half = split.height // 2
    return {
        "early": _write(split.head(half), root / "date=2023-01-01" / "classId=111"
                        / "part-0.parquet"),
        "late": _write(split.tail(split.height - half).with_columns(
            pl.lit(10, dtype=pl.Int32).alias("GENTYPE")),
            root / "date=2023-01-02" / "classId=111" / "part-0.parquet"),
        "kn": _write(alerts.filter(pl.col("_obj") == WHOLE),
                     root / "date=2023-01-01" / "classId=121" / "part-0.parquet"),
    }


def without_history(alerts: pl.DataFrame) -> pl.DataFrame:
    """Alerts as exports that keep only each alert's own diaSource store them."""
    return alerts.with_columns(pl.lit(None, dtype=alerts.schema[c]).alias(c)
                               for c in ("prvDiaSources", "prvDiaForcedSources"))


@pytest.mark.parametrize("history", [True, False], ids=["full-alerts", "own-source-only"])
def test_alerts_of_one_object_across_files_become_one_light_curve(survey, alerts, tmp_path,
                                                                  history):
    alerts = alerts if history else without_history(alerts)
    files = write_export(alerts, tmp_path / "export")
    whole = _write(alerts.filter(pl.col("_obj").is_in([SPLIT, WHOLE])), tmp_path / "one.parquet")
    expected, _ = read_rows(survey, whole)
    expected = {r["object_id"]: r for r in expected}

    report = ingest(survey, tmp_path / "export", tmp_path / "out")
    frame = read_shards(tmp_path / "out")
    assert sorted(frame["object_id"]) == sorted([SPLIT, WHOLE])  # one row per object
    assert report.light_curves_read == 3 and report.light_curves_merged == 1
    assert report.light_curves_written == 2 and report.balanced and report.files_read == 3
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["light_curves_merged"] == 1 and saved["balanced"]

    rows = {r["object_id"]: r for r in frame.iter_rows(named=True)}
    for object_id in (SPLIT, WHOLE):  # the union of the pieces, as if read from one file
        got, want = rows[object_id], expected[object_id]
        np.testing.assert_allclose(got["time"], want["time"])
        np.testing.assert_allclose(got["value"], want["value"])
        assert list(got["band"]) == list(want["band"])
        for key in ("alert_mjd", "last_detection_mjd", "time_offset", "ra", "dec"):
            assert got["meta"][key] == pytest.approx(want["meta"][key]), key
    # full alerts: the late file repeats the early detections (prvDiaSources), counted once
    assert (report.points_rejected[REPEATED_ACROSS_FILES] > 0) == history
    assert report.points_written == sum(len(r["time"]) for r in expected.values())

    # truth: Hive folder and GENTYPE agree on Ia; GENTYPE sets meta.gentype
    assert rows[SPLIT]["label"] == "Ia" and rows[SPLIT]["meta"]["gentype"] == 10
    assert rows[SPLIT]["meta"]["raw_class"] == "SNIa-SALT2"
    assert rows[WHOLE]["label"] == "KN" and rows[WHOLE]["meta"]["gentype"] == -1
    assert rows[WHOLE]["meta"]["raw_class"] == "classId:121"
    # each piece alone: its own light curve, truth from its folder (and column)
    early, _ = read_rows(survey, files["early"])
    late, _ = read_rows(survey, files["late"])
    assert (early[0]["label"], early[0]["meta"]["gentype"]) == ("Ia", -1)
    assert (late[0]["label"], late[0]["meta"]["gentype"]) == ("Ia", 10)
    if not history:  # each file holds only its own points: the merge needs both
        assert early[0]["meta"]["alert_mjd"] < late[0]["meta"]["alert_mjd"]
        assert rows[SPLIT]["meta"]["alert_mjd"] == early[0]["meta"]["alert_mjd"]
        assert len(rows[SPLIT]["time"]) == len(early[0]["time"]) + len(late[0]["time"])


@pytest.mark.parametrize(("column", "value", "label", "gentype", "raw"), [
    ("GENTYPE", 10, "Ia", 10, "SNIa-SALT2"),
    # SNTYPE = GENTYPE + 100 without a spectrum; meta keeps the number as written (as SNANA)
    ("SNTYPE", 151, "KN", 151, "KN_B19"),
    ("SIM_TYPE_INDEX", 90, "Cepheid", 90, "Cepheid"),
    ("classId", 2232, "KN", -1, "classId:2232"),
    ("class_id", 221, "AGN", -1, "classId:221"),
    ("truth", "SNIa-91bg", "91bg", -1, "SNIa-91bg"),
    ("truth", "113", "II", -1, "classId:113"),
    ("GENTYPE", 81, None, 81, "Mdwarf"),  # no counterpart among the 20 classes
    ("GENTYPE", 0, None, -1, ""),  # SNANA's "no type"
    ("GENTYPE", float("nan"), None, -1, ""),  # a float column's missing value
    ("true_class", "kn", "KN", -1, "kn"),  # names in any case
    ("model_name", "snia-salt2", "Ia", -1, "snia-salt2"),
])
def test_truth_columns(survey, alerts, tmp_path, column, value, label, gentype, raw):
    path = _write(alerts.filter(pl.col("_obj") == WHOLE).with_columns(
        pl.lit(value).alias(column)), tmp_path / "alerts.parquet")
    report = IngestReport("elasticc")
    (row,) = survey.reader_for(path).read(path, report)
    assert (row["label"], row["meta"]["gentype"], row["meta"]["raw_class"]) == (
        label, gentype, raw)


def test_hive_folders(tmp_path):
    path = tmp_path / "broker=fink" / "classId=121" / "GENTYPE=__HIVE_DEFAULT_PARTITION__" \
        / "truth=SN-like%2FOther" / "part-0.parquet"
    assert hive_sources(path) == [("folder classId=121", "class_id", "121"),
                                  ("folder truth=SN-like%2FOther", "name", "SN-like/Other")]


def test_conflicting_truth_is_an_error_naming_the_file(survey, alerts, tmp_path):
    kn = alerts.filter(pl.col("_obj") == WHOLE)
    # the folder says KN, the column says SN Ia
    path = _write(kn.with_columns(pl.lit(10).alias("GENTYPE")),
                  tmp_path / "classId=121" / "part-0.parquet")
    with pytest.raises(InputFileError) as info:
        list(survey.reader_for(path).read(path, IngestReport("elasticc")))
    message = str(info.value)
    assert message.startswith(f"{path}: object {WHOLE}: truth sources disagree")
    assert "column GENTYPE = SNIa-SALT2 (Ia)" in message and "folder classId=121" in message
    # two GENTYPEs in the alerts of one object
    codes = pl.Series("GENTYPE", [10] * (kn.height - 1) + [11])
    path = _write(kn.with_columns(codes), tmp_path / "two.parquet")
    with pytest.raises(InputFileError, match=r"two\.parquet: object 1143: column GENTYPE "
                                             r"has values \['10', '11'\]"):
        list(survey.reader_for(path).read(path, IngestReport("elasticc")))
    path = _write(kn.with_columns(pl.lit("ten").alias("SNTYPE")), tmp_path / "text.parquet")
    with pytest.raises(InputFileError, match=r"text\.parquet: column SNTYPE: type number "
                                             r"'ten' is not an integer"):
        list(survey.reader_for(path).read(path, IngestReport("elasticc")))


def test_merge_rows_keeps_each_exposure_once_and_the_earliest_alert():
    def piece(times, bands, label, meta):
        return {"object_id": "7", "survey": "elasticc", "value_kind": "flux",
                "time": np.array(times), "value": np.arange(len(times), dtype=np.float32),
                "error": np.ones(len(times), np.float32), "band": np.array(bands),
                "label": label, "meta": meta}

    first = piece([10.0, 12.0, 14.0], ["g", "r", "g"], "Ia",
                  {"alert_mjd": 12.0, "last_detection_mjd": 14.0, "ra": 1.0, "gentype": -1,
                   "raw_class": "classId:111"})
    # 12.0 + 0.2 s is the same exposure; 14.0 in another band is not
    second = piece([12.0 + 0.2 / 86400, 14.0, 20.0], ["r", "i", "g"], None,
                   {"alert_mjd": 13.0, "last_detection_mjd": 20.0, "ra": 2.0,
                    "gentype": 10, "raw_class": "SNIa-SALT2"})
    report = IngestReport("elasticc")
    row = merge_alert_rows([first, second], report)
    assert list(row["time"]) == [10.0, 12.0, 14.0, 14.0, 20.0]
    assert list(row["band"]) == ["g", "r", "g", "i", "g"]
    assert list(row["value"]) == [0, 1, 2, 1, 2]  # the r point of the earlier-read file
    assert report.points_rejected == {REPEATED_ACROSS_FILES: 1}
    meta = row["meta"]
    assert (meta["alert_mjd"], meta["last_detection_mjd"], meta["ra"]) == (12.0, 20.0, 2.0)
    assert (row["label"], meta["gentype"]) == ("Ia", 10)
    second["label"] = "KN"  # pieces that disagree: unlabeled, both classes named
    row = merge_alert_rows([first, second], IngestReport("elasticc"))
    assert row["label"] is None and meta is not row["meta"]
    assert row["meta"]["raw_class"] == "conflict: Ia | KN" and row["meta"]["gentype"] == -1


def test_alert_reader_declares_merge_and_snana_reject(survey):
    assert survey.formats["alert_parquet"].duplicates == "merge"
    assert survey.formats["snana_fits"].duplicates == "reject"
    assert survey.segment_fields == ()


# ---- SNANA: a HEAD with a repeated SNID ---------------------------------------------------------
def test_snana_head_with_repeated_snid_is_reported(survey, tmp_path):
    sample = survey.sample_path()
    head = Table.read(sample / "snana_fits_example_head.fits", hdu=1)
    doubled = vstack([head, head[:1]])  # the first object's row again, same pointers
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(doubled)]).writeto(
        tmp_path / "dup_HEAD.FITS")
    (tmp_path / "dup_PHOT.FITS").write_bytes(
        (sample / "snana_fits_example_phot.fits").read_bytes())
    snid = str(head["SNID"][0]).strip()
    raw = list(survey.reader_for(tmp_path / "dup_HEAD.FITS").read(
        tmp_path / "dup_HEAD.FITS", IngestReport("elasticc")))
    assert [r["object_id"] for r in raw].count(snid) == 2  # the reader reads what is there

    report = ingest(survey, tmp_path / "dup_HEAD.FITS", tmp_path / "out")
    frame = read_shards(tmp_path / "out")
    assert frame["object_id"].to_list().count(snid) == 1 and frame.height == len(head)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["duplicate_object_ids"] == {"count": 1, "examples": [snid]}
    assert saved["light_curves_rejected"] == {"duplicate object_id": 1}
    assert report.balanced and report.light_curves_read == len(head) + 1
    assert not math.isnan(frame["time"].list.len().sum())
