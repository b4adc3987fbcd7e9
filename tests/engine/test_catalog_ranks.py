"""Parallel, resumable catalog work (issue 10, items 4 and 5): predict and embed write one part
per shard and merge them with each object once (also objects whose rows span shards), resume
a killed run to the same catalog, log one line per shard, write `<stem>.json`, and share
their shards among 2 real gloo ranks (`accelerate launch`)."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from lcfm.engine.catalog import plan_units
from lcfm.engine.evaluate import embed, evaluate, predict
from lcfm.exceptions import ConfigError
from lcfm.registry import get_model, get_survey, model_names
from lcfm.shards import ShardWriter, shard_paths

CLASSES = ["RRab", "EC"]
FAST_MODEL = "astromer"  # the subprocess tests: smallest tiny model


def build_classifier(path: Path, name: str) -> Path:
    """A tiny, randomly initialised MACHO classifier folder over RRab and EC."""
    plugin = get_model(name)
    config = plugin.make_config("tiny")
    survey = get_survey("macho")
    config.num_labels = 2
    config.id2label = dict(enumerate(CLASSES))
    config.label2id = {c: i for i, c in enumerate(CLASSES)}
    config.lcfm_survey = "macho"
    config.lcfm_bands = {b: float(w) for b, w in survey.bands.items()}
    torch.manual_seed(0)
    plugin.classification_class(config).save_pretrained(path)
    return path


def write(path: Path, rows: list[dict], rows_per_shard: int) -> Path:
    with ShardWriter(path, rows_per_shard) as writer:
        for row in rows:
            writer.add(row)
    return path


def by_band(rows: list[dict]) -> list[dict]:
    """All R rows, then all B rows: each object's two light curves land in different
    shards once shards hold fewer rows than there are objects."""
    return sorted(rows, key=lambda r: str(r["band"][0]) != "R")


def same_catalog(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns
    assert a["object_id"].to_list() == b["object_id"].to_list()
    assert a["object_id"].n_unique() == a.height
    for column in a.columns:
        if a[column].dtype.is_float():
            np.testing.assert_allclose(a[column].to_numpy(), b[column].to_numpy(),
                                       rtol=1e-5, atol=1e-6)
        elif a[column].dtype != pl.List(pl.Float32):
            assert a[column].to_list() == b[column].to_list(), column


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, make_labeled_rows):
    """The same light curves as one shard and as three shards (objects split across)."""
    rows = by_band(make_labeled_rows(n_objects=24, n_points=60))
    root = tmp_path_factory.mktemp("catalog")
    return write(root / "one", rows, 10_000), write(root / "three", rows, 20)


@pytest.mark.parametrize("name", model_names())
def test_objects_across_shards_merge_exactly(name, datasets, tmp_path):
    """Per-shard parts combine an object's rows from several shards into the value one pass
    over a single shard gives; the parts are gone and `<stem>.json` counts the run."""
    one, three = datasets
    assert len(shard_paths(three)) == 3
    model = build_classifier(tmp_path / "clf", name)
    whole = predict(model, one, tmp_path / "one.parquet")
    split = predict(model, three, tmp_path / "three.parquet")
    same_catalog(whole, split)
    assert split.height == 24 and (split["n_observations_used"] == 120).all()
    summary = json.loads((tmp_path / "three.json").read_text())
    assert summary["n_objects"] == 24 and summary["n_light_curves"] == 48
    assert summary["num_processes"] == 1 and summary["shards"] == 3
    assert summary["shards_resumed"] == 0 and summary["light_curves_per_second"] > 0
    assert not (tmp_path / "three.parquet.parts").exists()
    vectors = embed(model, three, tmp_path / "emb.parquet")
    reference = embed(model, one, tmp_path / "emb1.parquet")
    np.testing.assert_allclose(np.array(vectors["embedding"].to_list()),
                               np.array(reference["embedding"].to_list()), rtol=1e-4, atol=1e-5)
    assert vectors["label"].to_list() == reference["label"].to_list()
    assert json.loads((tmp_path / "emb.json").read_text())["n_objects"] == 24


def test_one_shard_is_cut_into_row_ranges_for_many_ranks(datasets):
    one, three = datasets
    units = plan_units(shard_paths(one), 3)
    assert [(u.start, u.stop) for u in units] == [(0, 16), (16, 32), (32, 48)]
    assert sum(u.read().height for u in units) == 48
    assert [u.name for u in plan_units(shard_paths(three), 2)] == [
        "part-00000", "part-00001", "part-00002"]


def test_resume_refuses_parts_of_another_run(datasets, tmp_path):
    _, three = datasets
    model = build_classifier(tmp_path / "clf", FAST_MODEL)
    parts = tmp_path / "cat.parquet.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"key": {"seed": 5}, "units": []}))
    with pytest.raises(ConfigError, match="--resume: .* another .*seed"):
        predict(model, three, tmp_path / "cat.parquet", resume=True)
    # without --resume the stale parts are discarded and the run starts afresh
    assert predict(model, three, tmp_path / "cat.parquet").height == 24


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_kill_then_resume_gives_the_same_catalog(datasets, tmp_path):
    """A real `lcfm predict` killed (SIGKILL) right after its first shard's progress line;
    `--resume` keeps that shard and computes the rest into the uninterrupted catalog."""
    _, three = datasets
    model = build_classifier(tmp_path / "clf", FAST_MODEL)
    reference = predict(model, three, tmp_path / "reference.parquet")
    output = tmp_path / "cat.parquet"
    args = [sys.executable, "-m", "lcfm_cli", "predict", "--model", str(model),
            "--data", str(three), "--output", str(output)]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=_env())
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "shard 1/3" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "".join(lines)
    assert "predict: shard 1/3 part-00000: 20 light curves in" in lines[-1]
    assert not output.exists()
    assert (tmp_path / "cat.parquet.parts" / "part-00000.parquet").exists()
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=_env(),
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "shard 1/3" not in resumed.stderr and "shard 3/3" in resumed.stderr
    same_catalog(reference, pl.read_parquet(output))
    summary = json.loads((tmp_path / "cat.json").read_text())
    assert summary["shards_resumed"] == 1 and summary["n_light_curves"] == 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_give_the_one_process_catalog(datasets, tmp_path):
    """`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2`: two real
    ranks share the shards, each object is in the catalog once, with the values of one
    process; the summary records num_processes == 2."""
    _, three = datasets
    model = build_classifier(tmp_path / "clf", FAST_MODEL)
    reference = predict(model, three, tmp_path / "reference.parquet")
    output = tmp_path / "cat.parquet"
    launcher = Path(sys.executable).with_name("accelerate")
    result = subprocess.run(
        [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(_free_port()), "-m", "lcfm_cli", "predict",
         "--model", str(model), "--data", str(three), "--output", str(output)],
        capture_output=True, text=True, env=dict(_env(), ACCELERATE_USE_CPU="1"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[rank 0/2] predict: shard 1/3" in result.stderr
    assert "[rank 1/2] predict: shard 2/3" in result.stderr
    assert "[rank 0/2] predict: shard 3/3" in result.stderr
    assert result.stdout.count("objects classified") == 1
    same_catalog(reference, pl.read_parquet(output))
    assert json.loads((tmp_path / "cat.json").read_text())["num_processes"] == 2


def test_evaluate_scores_objects_split_across_shards_once(datasets, tmp_path):
    one, three = datasets
    model = build_classifier(tmp_path / "clf", FAST_MODEL)
    whole = evaluate(model, one, tmp_path / "one")
    split = evaluate(model, three, tmp_path / "three")
    assert split["n_objects"] == whole["n_objects"] == 24
    assert split["light_curves"] == 48 and split["num_processes"] == 1
    assert split["confusion_matrix"] == whole["confusion_matrix"]
    assert not (tmp_path / "three" / ".evaluate.parts").exists()
