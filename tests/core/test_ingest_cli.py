"""`lcfm ingest` / `lcfm simulate` as a user runs them (in-process, through `main`): one
line and exit 2 for a bad --output or --format, a last line that counts rejected files,
--strict."""

from __future__ import annotations

import json
import shutil

import pytest
from lcfm.registry import get_survey


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lcfm: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", [["ingest", "--survey", "macho"],
                                     ["simulate", "--survey", "macho", "--n", "3"]])
def test_output_that_is_a_file(lcfm_cli, command, tmp_path):
    target = tmp_path / "catalog.parquet"
    target.write_text("keep me")
    code, _, err = lcfm_cli(*command, "--output", str(target))
    assert code == 2
    assert str(target) in one_line_error(err) and "not a folder" in err
    assert target.read_text() == "keep me"


def test_unknown_format_on_a_folder_lists_the_formats(lcfm_cli, tmp_path):
    sample = get_survey("macho").sample_path()
    code, _, err = lcfm_cli("ingest", "--survey", "macho", "--format", "nosuch",
                       "--input", str(sample), "--output", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2 and "'nosuch'" in line
    assert all(name in line for name in get_survey("macho").formats)
    assert not (tmp_path / "out").exists()


def test_bad_file_is_counted_on_the_last_line_and_strict_aborts(lcfm_cli, tmp_path):
    shutil.copytree(get_survey("macho").sample_path(), tmp_path / "in")
    bad = tmp_path / "in" / "lc_9.9999.9.tar.bz2"
    bad.write_bytes(b"BZh91AY&SY truncated")
    code, out, err = lcfm_cli("ingest", "--survey", "macho", "--input",
                         str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert code == 0, err
    assert out.strip().splitlines()[-1].endswith("1 file rejected (see report.json)")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [f["file"] for f in report["files_rejected"]] == [str(bad)]
    code, _, err = lcfm_cli("ingest", "--survey", "macho", "--strict",
                       "--input", str(tmp_path / "in"), "--output", str(tmp_path / "strict"))
    assert code == 2 and str(bad) in one_line_error(err)
