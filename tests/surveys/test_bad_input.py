"""Reader-level bad input, for every registered survey (issue 9, items 6 and 9).

Every reader of every survey plugin (the third-party `csvdemo` fixture included) is given
damaged copies of each of its survey's bundled sample files: a zero-byte file, the first
half of the file, random bytes, and the first half followed by random bytes, each under the
sample's own name and extension. Each must end in one `InputFileError` naming the damaged
file, on one line -- never another exception type and never rows read as if the file were
whole. Surveys that ship no sample (no real file may be redistributed) get a file written
in exactly their documented layout.

Then the specific defects: a MACHO export cut mid-row, Alcock metadata pointing outside its
folder, catalogue ids that are not integers, label CSVs cut mid-row.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lcfm.exceptions import ConfigError, InputFileError, LcfmError
from lcfm.ingest import ingest
from lcfm.registry import get_survey, survey_names
from lcfm.report import IngestReport
from lcfm_surveys.elasticc.snana import partner_of

ATLAS_HEADER = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs"


def write_atlas(folder: Path) -> Path:
    """An ATLAS photometry file in the documented layout (atlas/reader.py)."""
    rng = np.random.default_rng(1)
    lines = [ATLAS_HEADER]
    for i, mjd in enumerate(np.sort(rng.uniform(57000, 58000, 40))):
        mag = 15 + 0.2 * np.sin(mjd)
        lines.append(f"{mjd:.6f} {mag:.3f} 0.020 {10 ** ((23.9 - mag) / 2.5):.1f} 25 "
                     f"{'co'[i % 2]} 0 1.02 123.45670 12.34560 5000.1 5100.2 2.5 2.4 "
                     f"30.0 0 19.5 20.1 02a{57000 + i}o0123c")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ATO_J123.4567+12.3456.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


#: writers of a layout fixture, for surveys that ship no sample file
NO_SAMPLE_WRITERS = {"atlas": write_atlas}


def sample_files(name: str) -> list[Path] | None:
    """The bundled sample files of survey `name` that one of its readers takes (README,
    LICENSE and format notes left out); None when it ships no sample."""
    survey = get_survey(name)
    try:
        folder = survey.sample_path()
    except ConfigError:
        return None
    files = []
    for path in sorted(folder.iterdir()):
        try:
            survey.reader_for(path)
        except LcfmError:
            continue
        files.append(path)
    return files


def _cases():
    cases = []
    for name in survey_names():
        files = sample_files(name)
        if files is None:
            cases.append(pytest.param(name, None, id=f"{name}-layout-fixture"))
        cases += [pytest.param(name, path, id=f"{name}-{path.name}") for path in files or []]
    return cases


def _damage(data: bytes, kind: str) -> bytes:
    noise = np.random.default_rng(len(data)).bytes(4096)
    return {"empty": b"", "first_half": data[: len(data) // 2], "random": noise,
            "half_then_random": data[: len(data) // 2] + noise}[kind]


@pytest.mark.parametrize("kind", ["empty", "first_half", "random", "half_then_random"])
@pytest.mark.parametrize(("name", "sample"), _cases())
def test_damaged_file_is_one_input_file_error(name, sample, kind, tmp_path):
    survey = get_survey(name)
    if sample is None:
        assert name in NO_SAMPLE_WRITERS, f"survey {name!r} has no sample: add a layout writer"
        sample = NO_SAMPLE_WRITERS[name](tmp_path / "source")
    damaged = tmp_path / "damaged" / sample.name
    damaged.parent.mkdir()
    # the intact file must read (else this test proves nothing about the damage)
    assert list(survey.reader_for(sample).read(sample, IngestReport(name)))
    damaged.write_bytes(_damage(sample.read_bytes(), kind))
    partner = partner_of(sample) if name == "elasticc" else None
    if partner is not None:  # a SNANA HEAD/PHOT file is read with its intact partner
        shutil.copy(partner, damaged.parent / partner.name)
    with pytest.raises(InputFileError) as info:
        reader = survey.reader_for(damaged)
        list(reader.read(damaged, IngestReport(name)))
    message = str(info.value)
    assert str(damaged) in message and "\n" not in message, message


# ---- CSV rows cut short ------------------------------------------------------------------------
def _cut_last_row(text: str, keep_fields: int) -> tuple[str, int]:
    """`text` whose last row keeps only its first `keep_fields` fields (no newline after
    them, as a copy stopped mid-row leaves it); also the number of that line."""
    lines = text.rstrip("\r\n").splitlines()
    lines[-1] = ",".join(lines[-1].split(",")[:keep_fields])
    return "\n".join(lines), len(lines)


def test_macho_export_cut_mid_row_is_an_error_on_that_line(tmp_path):
    survey = get_survey("macho")
    sample = survey.sample_path() / "macho_export_rrc_2stars.csv"
    whole = sample.read_text()
    for keep in (1, 5, 9):  # up to the last field but one: rerr,bmag,berr would be "missing"
        cut, line = _cut_last_row(whole, keep)
        path = tmp_path / f"cut{keep}.csv"
        path.write_text(cut)
        with pytest.raises(InputFileError) as info:
            list(survey.reader_for(path).read(path, IngestReport("macho")))
        assert info.value.line == line == 2536 and info.value.path == str(path)
        assert f"{keep} fields" in str(info.value) and "\n" not in str(info.value)
    # the same file whole, with empty trailing lines, reads completely
    path = tmp_path / "whole.csv"
    path.write_text(whole + "\n\n")
    report = IngestReport("macho")
    rows = list(survey.reader_for(path).read(path, report))
    assert report.points_read == 2 * (2536 - 1) and len(rows) == 4


def test_alcock_light_curve_cut_mid_row(tmp_path):
    (tmp_path / "LCs").mkdir()
    (tmp_path / "LCs" / "1.2.3.csv").write_text("mjd,mag,errmag\n50000.1,-5.1,0.02\n"
                                                "50001.1,-5.2,0.02\n50002.1,-5.3\n")
    meta = tmp_path / "metadata.csv"
    meta.write_text("ID,Class,Path\n1.2.3,RRab,1.2.3.csv\n")
    survey = get_survey("macho")
    with pytest.raises(InputFileError, match=r"1\.2\.3\.csv, line 4: expected 3 columns, found 2"):
        list(survey.reader_for(meta).read(meta, IngestReport("macho")))
    meta.write_text("ID,Class,Path\n1.2.3,RRab,1.2.3.csv\n4.5.6,RRab")
    with pytest.raises(InputFileError, match=r"metadata\.csv, line 3: row has 2 fields, the "
                                             r"header has 3"):
        list(survey.reader_for(meta).read(meta, IngestReport("macho")))


@pytest.mark.parametrize(("reference", "column"), [
    ("../outside.csv", "Path"), ("LCs/../../outside.csv", "Path"), ("{outside}", "Path"),
    ("../outside", "ID"),
])
def test_alcock_refuses_paths_outside_its_folder(tmp_path, reference, column):
    """A metadata row naming a file outside the metadata's folder is refused even when the
    file exists and is a valid light curve."""
    outside = tmp_path / "outside.csv"
    outside.write_text("mjd,mag,errmag\n50000.1,-5.1,0.02\n")
    data = tmp_path / "data"
    (data / "LCs").mkdir(parents=True)
    (data / "LCs" / "1.2.3.csv").write_text("mjd,mag,errmag\n50000.1,-5.1,0.02\n")
    reference = reference.format(outside=outside)
    meta = data / "metadata.csv"
    if column == "Path":
        meta.write_text(f"ID,Class,Path\n1.2.3,RRab,1.2.3.csv\n9.9.9,RRab,{reference}\n")
    else:
        meta.write_text(f"ID,Class\n1.2.3,RRab\n{reference},RRab\n")
    survey = get_survey("macho")
    with pytest.raises(InputFileError) as info:
        list(survey.reader_for(meta).read(meta, IngestReport("macho")))
    assert info.value.line == 3 and info.value.path == str(meta)
    assert f"{column} {reference!r}" in str(info.value) and "folder" in str(info.value)
    # directory ingest does not pick the outside file up as one of the dataset's files
    assert survey.input_files(data) == [meta]


# ---- catalogue ids -------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "key"), [("kepler", "KEPLERID"), ("tess_qlp", "TICID")])
@pytest.mark.parametrize("bad", ["abc", "12.5", "-3", ""])
def test_non_integer_catalogue_id_is_one_line(name, key, bad, tmp_path):
    survey = get_survey(name)
    sample = next(p for p in sorted(survey.sample_path().iterdir()) if ".fits" in p.name)
    with fits.open(sample) as hdul:
        hdul[0].header[key] = float(bad) if bad in ("12.5",) else bad
        path = tmp_path / sample.name.removesuffix(".gz")
        hdul.writeto(path)
    with pytest.raises(InputFileError) as info:
        list(survey.reader_for(path).read(path, IngestReport(name)))
    assert str(info.value).startswith(f"{path}: primary header {key}")
    assert "not a non-negative integer" in str(info.value)


@pytest.mark.parametrize(("name", "id_column"), [("kepler", "KIC"), ("tess_qlp", "TIC")])
def test_label_catalogue_cut_mid_row(name, id_column, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"{id_column},class,note\n1,ECLIPSE,a\n2,ECLIPSE")
    survey = get_survey(name).with_options(labels=str(labels))
    sample = next(p for p in sorted(survey.sample_path().iterdir()) if ".fits" in p.name)
    with pytest.raises(InputFileError, match=r"labels\.csv, line 3: row has 2 fields, the "
                                             r"header has 3"):
        list(survey.reader_for(sample).read(sample, IngestReport(name)))


# ---- ingest: one damaged file among good ones ------------------------------------------------
@pytest.mark.parametrize("name", survey_names())
def test_ingest_rejects_the_damaged_file_and_keeps_the_rest(name, tmp_path):
    """Issue 9, item 6: the bundled sample plus a damaged copy of one of its files (in a
    subfolder, with its SNANA partner) ingests exactly as the sample alone, and
    report.json names the damaged file."""
    survey = get_survey(name)
    files = sample_files(name)
    if files is None:
        return  # no sample: the reader-level test above covers its layout fixture

    clean = ingest(survey, None, tmp_path / "clean")
    source = tmp_path / "input"
    shutil.copytree(survey.sample_path(), source)
    first = files[0]
    damaged = source / "damaged" / first.name
    damaged.parent.mkdir()
    damaged.write_bytes(_damage(first.read_bytes(), "first_half"))
    partner = partner_of(first) if name == "elasticc" else None
    if partner is not None:
        shutil.copy(partner, damaged.parent / partner.name)
    report = ingest(survey, source, tmp_path / "out")
    (rejected,) = report.files_rejected
    assert str(damaged.parent) in rejected["file"] and "\n" not in rejected["reason"]
    assert report.files_read == clean.files_read
    assert (report.light_curves_written, report.points_written) == (
        clean.light_curves_written, clean.points_written)
    assert report.balanced and report.duplicate_object_ids == 0


def test_malformed_alcock_metadata_does_not_stop_the_other_files(tmp_path):
    survey = get_survey("macho")
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, last in ((good, "4.5.6,RRab,4.5.6.csv\n"), (bad, "4.5.6,RR")):
        (folder / "LCs").mkdir(parents=True)
        for star in ("1.2.3", "4.5.6"):
            (folder / "LCs" / f"{star}.csv").write_text("mjd,mag,errmag\n" + "".join(
                f"{50000 + i},{-5 - 0.01 * i:.2f},0.02\n" for i in range(20)))
        (folder / "metadata.csv").write_text(f"ID,Class,Path\n1.2.3,RRab,1.2.3.csv\n{last}")
    files = survey.input_files(tmp_path)
    assert good / "metadata.csv" in files and bad / "metadata.csv" in files
    assert good / "LCs" / "1.2.3.csv" not in files  # read through its metadata only
    report = ingest(survey, tmp_path, tmp_path / "out")
    assert report.light_curves_written == 2 and report.balanced
    rejected = {r["file"]: r["reason"] for r in report.files_rejected}
    assert "line 3: row has 2 fields" in rejected[str(bad / "metadata.csv")]
