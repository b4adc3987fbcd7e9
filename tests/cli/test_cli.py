"""The `lcfm` command as a user runs it: tables, JSON, ingest reports, one-line errors."""

import json
import os
import subprocess
import sys

import pytest
from lcfm.registry import get_survey, model_names, survey_names


def lcfm(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lcfm_cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_surveys_json_lists_every_plugin():
    result = lcfm("surveys", "--json")
    assert result.returncode == 0, result.stderr
    listed = {s["name"]: s for s in json.loads(result.stdout)}
    assert set(listed) == set(survey_names())
    for name, entry in listed.items():
        plugin = get_survey(name)
        assert entry["bands"] == {b: float(w) for b, w in plugin.bands.items()}
        assert entry["taxonomy"] == list(plugin.taxonomy.classes)
        assert set(entry["formats"]) == {r.name for r in plugin.readers}


def test_models_json_has_parameter_counts():
    result = lcfm("models", "--json")
    assert result.returncode == 0, result.stderr
    listed = {m["name"]: m for m in json.loads(result.stdout)}
    assert set(listed) == set(model_names())
    configs = {c["name"]: c["parameters"] for m in listed.values() for c in m["configurations"]}
    # v2: the paper's 3,953,409 plus the one-value trainable mask token its text describes
    # (AstromerConfig documents this; mask_token=False gives exactly 3,953,409)
    assert configs["astromer-v1"] == 661_505 and configs["astromer-v2"] == 3_953_410
    assert configs["astrafier"] == pytest.approx(8.8e6, rel=0.02)
    assert configs["astroco-s"] == pytest.approx(5.9e6, rel=0.02)
    assert configs["astroco-l"] == pytest.approx(15.2e6, rel=0.02)
    assert configs["atcat"] == pytest.approx(4.1e6, rel=0.02)


def test_tables_are_printed():
    result = lcfm("surveys")
    assert result.returncode == 0 and "macho" in result.stdout and "RRab" in result.stdout


def test_ingest_bundled_sample_writes_balanced_report(tmp_path):
    result = lcfm("ingest", "--survey", "macho", "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("files_read", "light_curves_written", "points_read", "points_written",
                "points_rejected"):
        assert key in report
    assert report["points_written"] + sum(report["points_rejected"].values()) \
        == report["points_read"]
    assert f"{report['light_curves_written']} light curves" in result.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["ingest", "--survey", "ztf", "--output", "x"], "unknown survey 'ztf'; installed:"),
    (["ingest", "--survey", "macho", "--input", "/no/such/file.tar.bz2", "--output", "x"],
     "/no/such/file.tar.bz2: no such file or directory"),
    (["pretrain", "--survey", "macho", "--model", "astromer-v9", "--output", "x"],
     "unknown model configuration 'astromer-v9'"),
    (["ingest", "--survey", "macho", "--option", "nonsense=1", "--output", "x"],
     "has no option(s) ['nonsense']"),
])
def test_bad_input_is_one_line_error(tmp_path, args, fragment):
    result = lcfm(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_archive_names_the_file(tmp_path):
    bad = tmp_path / "lc_1.1.1.tar.bz2"
    bad.write_bytes(b"BZh91AY&SY not really bzip2")
    result = lcfm("ingest", "--survey", "macho", "--input", str(bad), "--output",
                  str(tmp_path / "o"))
    assert result.returncode == 2 and str(bad) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
