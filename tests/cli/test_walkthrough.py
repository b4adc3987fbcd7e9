"""The README's walk-through, command by command, as a user types it (smaller numbers)."""

import json
import os
import subprocess
import sys

import polars as pl
from lcfm.registry import get_model


def lcfm(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "lcfm_cli", *map(str, args)],
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result.stdout


def test_readme_walkthrough(tmp_path):
    # the tiny configuration with Astromer 2's attention dropout, so --mc-samples has
    # dropout to sample (it is refused on a model without any)
    settings = {**get_model("astromer").tiny, "attention_output_dropout": 0.1}
    tiny = [x for k, v in settings.items() for x in ("--config", f"{k}={json.dumps(v)}")]
    out = lcfm("simulate", "--survey", "macho", "--n", 60, "--output", "data/sim", cwd=tmp_path)
    assert "60" in out
    lcfm("pretrain", "--survey", "macho", "--data", "data/sim", "--model", "astromer-v2",
         "--output", "runs/pre", "--max-steps", 4, "--batch-size", 8, *tiny, cwd=tmp_path)
    out = lcfm("finetune", "--data", "data/sim", "--model", "runs/pre", "--output", "runs/clf",
               "--max-steps", 4, "--batch-size", 8, cwd=tmp_path)
    assert "test accuracy" in out
    out = lcfm("evaluate", "--model", "runs/clf", "--data", "data/sim", "--output", "runs/eval",
               cwd=tmp_path)
    # evaluate scores the held-out test objects only: finetune's training and validation
    # objects (splits.parquet) are excluded and counted
    splits = pl.read_parquet(tmp_path / "runs/clf/splits.parquet")
    n_test = splits.filter(pl.col("split") == "test").height
    assert 0 < n_test < 60
    assert f"{n_test} held-out objects" in out and f"{60 - n_test} training" in out
    metrics = json.loads((tmp_path / "runs/eval/metrics.json").read_text())
    assert metrics["n_objects"] == n_test and metrics["excluded_training_objects"] == 60 - n_test
    lcfm("predict", "--model", "runs/clf", "--data", "data/sim", "--output", "catalog.parquet",
         "--mc-samples", 3, cwd=tmp_path)
    catalog = pl.read_parquet(tmp_path / "catalog.parquet")
    assert catalog.height == 60 and {"std_RRab", "p_RRab"} <= set(catalog.columns)
    assert (catalog["std_RRab"] > 0).all()
    lcfm("embed", "--model", "runs/pre", "--data", "data/sim", "--output", "embeddings.parquet",
         "--plot", "embeddings.png", cwd=tmp_path)
    assert pl.read_parquet(tmp_path / "embeddings.parquet").height == 60
    out = lcfm("push", "--model", "runs/clf", "--repo-id", "my-org/astromer-macho",
               "--evaluation", "runs/eval", "--dry-run", cwd=tmp_path)
    assert "model.safetensors" in out and "macro" in out.lower()
