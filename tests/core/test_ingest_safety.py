"""Issue 9, items 6 and 7: one bad file never aborts an ingest, duplicate light curves are
rejected or merged (never kept twice), and dataset folders are crash- and
concurrency-safe (in-progress marker, clean restart, 0644 files)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from lcfm.dataset_lock import MARKER, writing
from lcfm.exceptions import ConfigError, DataError, InputFileError, LcfmError
from lcfm.ingest import ingest, read_rows
from lcfm.merge import MergeSpill, key_digest
from lcfm.registry import get_survey, survey_names
from lcfm.report import IngestReport
from lcfm.shards import load_dataset, read_shards, read_summaries, scan_shards, shard_paths
from toy_survey import ToySurvey, curve, write

HERE = Path(__file__).resolve().parent


def sample_or_skip(name: str) -> Path:
    try:
        return get_survey(name).sample_path()
    except ConfigError:
        pytest.skip(f"survey {name!r} ships no bundled sample")


def assert_balanced(report: dict) -> None:
    assert report["balanced"]
    assert report["points_written"] + sum(report["points_rejected"].values()) \
        == report["points_read"]
    assert report["light_curves_written"] + report["light_curves_merged"] \
        + sum(report["light_curves_rejected"].values()) == report["light_curves_read"]


# ---- resilient ingest, through the registry ------------------------------------------------

@pytest.mark.parametrize("name", survey_names())
def test_a_corrupt_file_beside_the_sample_is_rejected_and_the_rest_ingested(name, tmp_path):
    survey = get_survey(name)
    sample = sample_or_skip(name)
    shutil.copytree(sample, tmp_path / "in" / "good")
    alone = ingest(survey, tmp_path / "in" / "good", tmp_path / "alone")
    first = survey.input_files(tmp_path / "in" / "good")[0]
    corrupt = tmp_path / "in" / "corrupt" / first.name  # same name: the same reader takes it
    corrupt.parent.mkdir()
    corrupt.write_bytes(first.read_bytes()[: first.stat().st_size // 3])

    report = ingest(survey, tmp_path / "in", tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [f["file"] for f in saved["files_rejected"]] == [str(corrupt)]
    assert saved["files_rejected"][0]["reason"] and "\n" not in saved["files_rejected"][0]["reason"]
    assert_balanced(saved)
    # the corrupt file's partly-read rows are rolled back: exactly the good files remain
    assert report.light_curves_written == alone.light_curves_written
    assert report.points_read == alone.points_read
    assert read_shards(tmp_path / "out").height == alone.light_curves_written
    assert not (tmp_path / "out" / MARKER).exists()

    with pytest.raises(LcfmError) as info:  # --strict: the first bad file aborts
        ingest(survey, tmp_path / "in", tmp_path / "strict", strict=True)
    assert str(corrupt) in str(info.value) and "\n" not in str(info.value)
    assert not list((tmp_path / "strict").glob("*"))  # nothing half-written stays


@pytest.mark.parametrize("name", survey_names())
def test_the_sample_twice_is_never_kept_twice(name, tmp_path):
    """Each light curve read twice is rejected as a duplicate or merged into one."""
    survey = get_survey(name)
    sample = sample_or_skip(name)
    once = ingest(survey, sample, tmp_path / "once")
    shutil.copytree(sample, tmp_path / "in" / "a")
    shutil.copytree(sample, tmp_path / "in" / "b")
    twice = ingest(survey, tmp_path / "in", tmp_path / "twice")
    saved = json.loads((tmp_path / "twice" / "report.json").read_text())
    assert_balanced(saved)
    assert twice.light_curves_read == 2 * once.light_curves_read
    assert twice.duplicate_object_ids + twice.light_curves_merged == once.light_curves_read
    assert twice.light_curves_written == once.light_curves_written
    frame = read_shards(tmp_path / "twice")
    keys = {survey.segment_key({"object_id": r["object_id"], "band": r["band"],
                                "meta": r["meta"]}) for r in frame.iter_rows(named=True)}
    assert len(keys) == frame.height  # no light curve twice
    if twice.duplicate_object_ids:
        assert saved["duplicate_object_ids"]["count"] == twice.duplicate_object_ids
        assert saved["duplicate_object_ids"]["examples"]


def test_unrecognised_file_in_a_folder_is_rejected_not_fatal(tmp_path):
    survey = get_survey("macho")
    shutil.copytree(sample_or_skip("macho"), tmp_path / "in")
    # matches export_csv's pattern, not its header (a label catalogue such as periods.csv
    # is skipped instead: tests/core/test_plugin_api.py)
    periods = tmp_path / "in" / "extra.csv"
    periods.write_text("id,period\n1.2.3,0.5\n")
    report = ingest(survey, tmp_path / "in", tmp_path / "out")
    assert [f["file"] for f in report.files_rejected] == [str(periods)]
    assert "not a recognised macho file" in report.files_rejected[0]["reason"]
    assert report.light_curves_written > 0 and report.balanced


def test_every_file_rejected_is_a_one_line_data_error(tmp_path):
    for name in ("a.toy", "b.toy"):
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text("{not json\n")
    with pytest.raises(DataError, match="every one of the 2 input files was rejected") as info:
        ingest(ToySurvey(), tmp_path / "in", tmp_path / "out")
    assert "a.toy" in str(info.value) and "\n" not in str(info.value)
    assert not list((tmp_path / "out").iterdir())  # no marker, no shard, no report
    # one file given on its own: its own error, naming it
    with pytest.raises(InputFileError, match="a.toy"):
        ingest(ToySurvey(), tmp_path / "in" / "a.toy", tmp_path / "out")


def test_a_file_failing_half_way_leaves_no_rows_even_after_a_shard_spill(tmp_path):
    good = [curve(f"s{i}", range(5)) for i in range(4)]
    write(tmp_path / "in" / "a.toy", *good)
    bad = tmp_path / "in" / "b.toy"
    bad.write_text("".join(json.dumps(curve(f"b{i}", range(5))) + "\n" for i in range(5))
                   + "{truncated")
    report = ingest(ToySurvey(), tmp_path / "in", tmp_path / "out", rows_per_shard=2)
    frame = read_shards(tmp_path / "out")
    assert sorted(frame["object_id"]) == ["s0", "s1", "s2", "s3"]  # none of b's five
    assert report.light_curves_read == 4 and report.points_read == 20 and report.balanced
    assert report.files_read == 1 and report.files_rejected[0]["file"] == str(bad)
    assert "JSONDecodeError" in report.files_rejected[0]["reason"]
    assert not list((tmp_path / "out").glob(".pending-*"))


# ---- duplicates --------------------------------------------------------------------------------

def test_duplicate_object_ids_are_rejected_and_segments_bands_kept(tmp_path):
    write(tmp_path / "in" / "a.toy", curve("1", range(3)), curve("2", range(3)),
          curve("2", range(3), band="r"),  # another band of star 2: another light curve
          curve("3", range(3), quarter=1), curve("3", range(3), quarter=2))
    write(tmp_path / "in" / "b.toy", curve("2", range(4)), curve("3", range(3), quarter=2),
          curve("4", range(3)), curve("4", range(3)),  # a repeated id inside one file too
          curve("5", range(4), band=["g", "r", "g", "r"]),
          curve("5", range(3), band=["g", "r", "i"]))  # multi-band: same SNID, other bands
    rows, report = read_rows(ToySurvey(), tmp_path / "in")
    ingested = ingest(ToySurvey(), tmp_path / "in", tmp_path / "out")
    for rep in (report, ingested):
        assert rep.duplicate_object_ids == 4 and rep.balanced
        assert rep.light_curves_rejected == {"duplicate object_id": 4}
        assert rep.points_rejected["duplicate object_id"] == 4 + 3 + 3 + 3
        assert rep.duplicate_examples == ["2", "3", "4", "5"]
    assert sorted((r["object_id"], str(r["band"][0]), r["meta"].get("quarter")) for r in rows) \
        == [("1", "g", None), ("2", "g", None), ("2", "r", None), ("3", "g", 1), ("3", "g", 2),
            ("4", "g", None), ("5", "g", None)]
    star2 = [r for r in rows if r["object_id"] == "2" and r["band"][0] == "g"][0]
    assert star2["time"].size == 3  # the first one read is kept
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["duplicate_object_ids"] == {"count": 4, "examples": ["2", "3", "4", "5"]}
    assert read_shards(tmp_path / "out").height == 7


@pytest.mark.parametrize("buffer_points", [2_000_000, 1], ids=["in-memory", "disk-buckets"])
def test_merge_readers_combine_one_object_across_files(buffer_points, tmp_path, monkeypatch):
    monkeypatch.setattr("lcfm.ingest.MERGE_BUFFER_POINTS", buffer_points)
    write(tmp_path / "in" / "night1.alerts", curve("x", [1, 2, 3]), curve("y", [5, 6]))
    write(tmp_path / "in" / "night2.alerts", curve("x", [3, 4], band="r", label="B"),
          curve("x", [2.5], label="A"))
    write(tmp_path / "in" / "night3.alerts", curve("x", [3, 7]))  # t=3 in g again
    rows, report = read_rows(ToySurvey(), tmp_path / "in")
    assert report.balanced and report.light_curves_merged == 3
    assert report.points_rejected == {"duplicate observation": 1}
    assert report.light_curves_written == 2 and report.duplicate_object_ids == 0
    x = next(r for r in rows if r["object_id"] == "x")
    assert x["time"].tolist() == [1, 2, 2.5, 3, 3, 4, 7]  # sorted, (3, g) once, (3, r) kept
    assert list(x["band"]) == ["g", "g", "g", "g", "r", "r", "g"]
    assert x["label"] == "B"  # the first non-null label, in reading order
    ingested = ingest(ToySurvey(), tmp_path / "in", tmp_path / "out")
    frame = read_shards(tmp_path / "out").sort("object_id")
    assert frame["object_id"].to_list() == ["x", "y"]
    assert frame["time"][0].to_list() == x["time"].tolist()
    assert ingested.to_dict()["light_curves_merged"] == 3
    assert not (tmp_path / "out" / ".lcfm-work").exists()  # merge buckets cleaned up


def test_merge_spill_is_bounded_and_forgets_failed_files(tmp_path):
    spill = MergeSpill(tmp_path, n_buckets=3, max_points=4)  # spills every few rows
    survey = ToySurvey()
    for file_index, ids in enumerate((["a", "b", "c"], ["b", "c", "d"], ["a", "e"])):
        for object_id in ids:
            row = survey.row(object_id, np.arange(3.0) + file_index, np.zeros(3), np.ones(3),
                             "g", meta={"quarter": file_index, "ra": np.float64(1.5)})
            spill.add(row, key_digest((object_id,)), file_index)
    spill.drop_file(1)  # rows already on disk and rows still buffered
    assert len(list((tmp_path / "merge").rglob("*.parquet"))) > 1
    groups = {g[0]["object_id"]: g for g in spill.groups()}
    assert sorted(groups) == ["a", "b", "c", "e"]
    assert [r["time"][0] for r in groups["a"]] == [0.0, 2.0]  # reading order
    assert groups["a"][1]["meta"] == {"quarter": 2, "ra": 1.5}


# ---- crash- and concurrency-safe folders ----------------------------------------------------

def test_readers_refuse_a_folder_being_written(tmp_path):
    ingest(ToySurvey(), write(tmp_path / "a.toy", curve("1", range(3))), tmp_path / "done")
    with writing(tmp_path / "busy", "lcfm ingest"):
        shutil.copy(tmp_path / "done" / "part-00000.parquet", tmp_path / "busy")
        for read in (shard_paths, read_shards, scan_shards, read_summaries, load_dataset):
            with pytest.raises(DataError) as info:
                read(tmp_path / "busy")
            message = str(info.value)
            assert str(tmp_path / "busy") in message and f"pid {os.getpid()}" in message
            assert "rerun" in message and "\n" not in message
        with pytest.raises(DataError, match="being written"):
            shard_paths(tmp_path / "busy" / "part-00000.parquet")
        # a second writer fails at once, naming the first
        for run in (lambda: ingest(ToySurvey(), tmp_path / "a.toy", tmp_path / "busy"),
                    lambda: simulate_into(tmp_path / "busy")):
            with pytest.raises(DataError, match=f"already being written by lcfm ingest "
                                                f"\\(pid {os.getpid()}"):
                run()
        assert (tmp_path / "busy" / "part-00000.parquet").exists()  # the writer's work stays


def simulate_into(folder: Path):
    from lcfm.simulate import simulate

    return simulate(get_survey("macho"), 2, folder)


def test_complete_dataset_is_refused_and_left_untouched(tmp_path):
    ingest(ToySurvey(), write(tmp_path / "a.toy", curve("1", range(3))), tmp_path / "out")
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    for run in (lambda: ingest(ToySurvey(), tmp_path / "a.toy", tmp_path / "out"),
                lambda: simulate_into(tmp_path / "out")):
        with pytest.raises(DataError, match="already holds 1 shard"):
            run()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before == [
        "README.md", "part-00000.parquet", "report.json"]  # README.md: the dataset card


def test_output_that_is_a_file_is_a_one_line_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    for run in (lambda: ingest(ToySurvey(), write(tmp_path / "a.toy", curve("1", [1])), target),
                lambda: simulate_into(target)):
        with pytest.raises(DataError, match="exists and is not a folder"):
            run()
    assert target.read_text() == "x"


def test_marker_of_another_host_is_refused_with_the_file_to_delete(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps({"command": "lcfm ingest", "pid": 1,
                                             "host": "elsewhere", "started": "then"}))
    with pytest.raises(DataError, match=f"on elsewhere.*delete {folder / MARKER}"):
        ingest(ToySurvey(), write(tmp_path / "a.toy", curve("1", [1])), folder)


def start_toy_ingest(source: Path, out: Path, sleep: float) -> subprocess.Popen:
    env = {**os.environ, "TOY_SLEEP": str(sleep), "PYTHONPATH": os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(HERE / "toy_survey.py"), str(source),
                             str(out)], env=env, stderr=subprocess.PIPE)


def wait_for(predicate, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_ingest_is_refused_by_readers_and_restarts_cleanly(tmp_path):
    source = tmp_path / "in"
    for i in range(20):  # a shard is committed after each file
        write(source / f"f{i:02d}.toy", curve(f"o{i}", range(4)), curve(f"p{i}", range(4)))
    out = tmp_path / "out"
    process = start_toy_ingest(source, out, sleep=0.2)
    try:
        wait_for(lambda: (out / "part-00001.parquet").exists(), process)
        # concurrent: a second writer fails at once, naming the live one
        started = time.monotonic()
        with pytest.raises(DataError, match=f"already being written by lcfm ingest "
                                            f"\\(pid {process.pid} on {socket.gethostname()}"):
            ingest(ToySurvey(), source, out)
        assert time.monotonic() - started < 5
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (out / MARKER).exists() and list(out.glob("part-*.parquet"))
    with pytest.raises(DataError, match="interrupted ingest"):
        read_shards(out)  # the partial shards are not a dataset
    report = ingest(ToySurvey(), source, out)  # clean restart over the dead run's leftovers
    frame = read_shards(out)
    assert frame.height == 40 == report.light_curves_written
    assert sorted(frame["object_id"]) == sorted(f"{c}{i}" for c in "op" for i in range(20))
    assert not (out / MARKER).exists() and not list(out.glob(".*tmp"))


def test_files_are_0644_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        ingest(ToySurvey(), write(tmp_path / "a.toy", curve("1", [1, 2])), tmp_path / "out")
        simulate_into(tmp_path / "sim")
    finally:
        os.umask(old)
    for path in [*(tmp_path / "out").iterdir(), *(tmp_path / "sim").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_report_balance_counts_merged_light_curves():
    report = IngestReport("toy")
    report.read(10, 3)
    report.merged(2)
    report.written(10)
    assert report.balanced
    other = IngestReport("toy")
    other.read(4)
    other.reject_duplicate("7", 4)
    other.files_read = 1
    report.absorb(other)
    assert report.balanced and report.duplicate_examples == ["7"]
    assert report.to_dict()["light_curves_rejected"] == {"duplicate object_id": 1}
    assert pl.Series(report.to_dict()["files_rejected"]).len() == 0


def test_simulate_restarts_cleanly_over_a_dead_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    folder = tmp_path / "sim"
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps({"command": "lcfm simulate",
                                             "pid": int(dead.stdout), "started": "then",
                                             "host": socket.gethostname()}))
    (folder / "part-00000.parquet").write_bytes(b"PAR1 half a shard")
    (folder / ".pending-00000.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="interrupted"):
        read_shards(folder)
    summary = simulate_into(folder)
    assert read_shards(folder).height == summary["light_curves"] == 2
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert (folder / "simulation.json").exists()


def test_marker_without_hard_links_is_still_exclusive(tmp_path, monkeypatch):
    def no_links(*_):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    with writing(tmp_path / "out", "lcfm ingest"):
        assert json.loads((tmp_path / "out" / MARKER).read_text())["pid"] == os.getpid()
        with pytest.raises(DataError, match="already being written"):
            with writing(tmp_path / "out", "lcfm simulate"):
                pass
    assert not (tmp_path / "out" / MARKER).exists()
