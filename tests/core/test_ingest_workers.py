"""`lcfm ingest --workers N` (issue 10, item 5): files read and preprocessed in a process pool,
written by the parent in file order, so every survey's shards and report.json are those of
one process, duplicates, merges and rejected files included."""

import json
import shutil

import polars as pl
import pytest
from lcfm.exceptions import ConfigError, LcfmError
from lcfm.ingest import ingest
from lcfm.registry import get_survey, survey_names
from lcfm.shards import shard_paths


def sample_files(name: str) -> list:
    survey = get_survey(name)
    try:
        return survey.input_files(survey.sample_path())
    except LcfmError as exc:  # a survey that may not redistribute a sample (ATLAS)
        pytest.skip(str(exc))


def damaged_input(name: str, folder):
    """The survey's sample files, a renamed copy of its first file (its light curves again:
    duplicates or merges) and a truncated copy (a bad file, or fewer rows)."""
    files = sample_files(name)
    folder.mkdir()
    for path in files:
        shutil.copy(path, folder / path.name)
    first = files[0]
    for sub in ("zcopy", "ztrunc"):  # same names in subfolders: every reader's pattern
        (folder / sub).mkdir()
    shutil.copy(first, folder / "zcopy" / first.name)
    data = first.read_bytes()
    (folder / "ztrunc" / first.name).write_bytes(data[: len(data) // 2])
    return folder


def dataset(folder) -> tuple[pl.DataFrame, dict]:
    frames = [pl.read_parquet(p) for p in shard_paths(folder)]
    report = json.loads((folder / "report.json").read_text())
    return pl.concat(frames, how="diagonal_relaxed"), report


@pytest.mark.parametrize("name", survey_names())
def test_workers_give_the_shards_and_report_of_one_process(name, tmp_path):
    source = damaged_input(name, tmp_path / "in")
    survey = get_survey(name)
    ingest(survey, source, tmp_path / "one")
    ingest(survey, source, tmp_path / "two", workers=2)
    serial, serial_report = dataset(tmp_path / "one")
    pooled, pooled_report = dataset(tmp_path / "two")
    assert pooled_report == serial_report
    assert pooled.equals(serial)
    assert [p.name for p in shard_paths(tmp_path / "two")] == serial_report["shards"]
    # the copy of the first file is not ingested twice
    seen_twice = (serial_report["duplicate_object_ids"]["count"]
                  + serial_report["light_curves_merged"])
    assert seen_twice > 0 and serial_report["balanced"]


def test_bad_files_are_rejected_by_workers_as_by_one_process(tmp_path):
    name = "macho"
    files = sample_files(name)
    source = tmp_path / "in"
    source.mkdir()
    for path in files:
        shutil.copy(path, source / path.name)
    (source / "zz").mkdir()
    bad = source / "zz" / files[0].name
    bad.write_bytes(b"\x00\x01 not a light curve file \xff")
    ingest(get_survey(name), source, tmp_path / "one")
    ingest(get_survey(name), source, tmp_path / "two", workers=2)
    one, two = dataset(tmp_path / "one")[1], dataset(tmp_path / "two")[1]
    assert [f["file"] for f in two["files_rejected"]] == [str(bad)]
    assert two["files_rejected"] == one["files_rejected"]
    with pytest.raises(LcfmError, match=bad.name):
        ingest(get_survey(name), source, tmp_path / "strict", strict=True, workers=2)
    assert not list((tmp_path / "strict").glob("part-*.parquet"))


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="--workers must be at least 1"):
        ingest(get_survey("macho"), None, tmp_path / "out", workers=0)
