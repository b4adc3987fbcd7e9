"""Issue 9, done-when: fine-tune on simulated ELAsTiCC, then classify the real, unlabeled
alert sample with MC dropout; one catalog row per object, honest uncertainties, held-out
evaluation and one-line errors, all through the `lcfm` command."""

import json
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from lcfm.registry import get_model

ALERTS = "elasticc_alerts_sample.parquet"
MODEL = "astrafier"  # MC dropout at p = 0.2 (ASTRAFier sect. 3.6), in its tiny config too


def lcfm(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lcfm_cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def one_line_error(result, fragment):
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from lcfm.registry import get_survey

    cwd = tmp_path_factory.mktemp("e2e")
    tiny = [x for k, v in get_model(MODEL).tiny.items()
            for x in ("--config", f"{k}={json.dumps(v)}")]
    ok(lcfm("simulate", "--survey", "elasticc", "--n", 300, "--output", "sim", cwd=cwd))
    out = ok(lcfm("finetune", "--data", "sim", "--model", MODEL, "--output", "clf",
                  "--max-steps", 4, "--batch-size", 16, *tiny, cwd=cwd))
    assert "test accuracy" in out
    alerts = get_survey("elasticc").sample_path() / ALERTS
    ok(lcfm("ingest", "--survey", "elasticc", "--input", alerts, "--output", "real", cwd=cwd))
    return cwd


def test_unlabeled_real_alerts_get_a_catalog_with_uncertainties(run):
    out = ok(lcfm("predict", "--model", "clf", "--data", "real", "--mc-samples", 4,
                  "--output", "cat.parquet", cwd=run))
    real = pl.read_parquet(run / "real" / "part-*.parquet")
    catalog = pl.read_parquet(run / "cat.parquet")
    assert catalog.height == catalog["object_id"].n_unique() == real["object_id"].n_unique()
    assert f"{catalog.height} objects classified" in out
    std = catalog.select(pl.col("^std_.*$")).to_numpy()
    assert std.shape[1] == len(json.loads((run / "clf" / "config.json").read_text())
                               ["id2label"])
    assert (std.max(1) > 0).all()
    used = dict(real.group_by("object_id").agg(pl.col("time").list.len().sum()).iter_rows())
    assert all(used[o] == n for o, n in zip(catalog["object_id"],
                                             catalog["n_observations_used"], strict=True))
    p = catalog.select(pl.col("^p_.*$").exclude("p_unsure")).to_numpy()
    assert np.allclose(p.sum(1), 1, atol=1e-5)


def test_evaluate_reports_held_out_objects(run):
    out = ok(lcfm("evaluate", "--model", "clf", "--data", "sim", "--output", "eval", cwd=run))
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    splits = pl.read_parquet(run / "clf" / "splits.parquet")
    assert metrics["n_objects"] == (splits["split"] == "test").sum()
    assert metrics["excluded_training_objects"] == (splits["split"] != "test").sum()
    assert metrics["n_objects"] + metrics["excluded_training_objects"] == 300
    assert (f"{metrics['n_objects']} held-out objects scored "
            f"({metrics['excluded_training_objects']} training/validation objects excluded")\
        in out
    # the real alerts carry no label: nothing to score, said in one line
    one_line_error(lcfm("evaluate", "--model", "clf", "--data", "real", "--output", "e2",
                        cwd=run), "no held-out object to score")


def test_one_line_errors(run):
    (run / "afile").write_text("")
    (run / "adir").mkdir(exist_ok=True)
    one_line_error(lcfm("predict", "--model", "clf", "--data", "real", "--mc-samples", -1,
                        "--output", "c.parquet", cwd=run), "--mc-samples -1")
    one_line_error(lcfm("predict", "--model", "clf", "--data", "real", "--output", "adir",
                        cwd=run), "is a directory")
    one_line_error(lcfm("embed", "--model", "clf", "--data", "real", "--output", "adir",
                        cwd=run), "is a directory")
    one_line_error(lcfm("evaluate", "--model", "clf", "--data", "sim", "--output", "afile",
                        cwd=run), "is an existing file")
    one_line_error(lcfm("finetune", "--data", "sim", "--model", MODEL, "--output", "afile",
                        cwd=run), "is an existing file")
