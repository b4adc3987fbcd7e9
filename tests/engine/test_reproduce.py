"""`lcfm reproduce` (issue 11, "Done when"): each paper's headline experiment end to end on
simulated data, here at the "test" scale (each plugin's tiny configuration, three steps),
checking that every stage ran and that reproduce.json holds every stage's metrics, the
commands and the resolved recipes."""

import dataclasses
import json
import math
import shlex

import polars as pl
import pytest
import torch
from lcfm.engine.evaluate import EvaluateArgs
from lcfm.engine.fewshot import FewShotArgs
from lcfm.engine.finetune import FinetuneArgs
from lcfm.engine.pretrain import PretrainArgs
from lcfm.engine.reproduce import (
    REPORT_FILE,
    RESULTS_FILE,
    ReproduceArgs,
    command_line,
    reproduce,
    resolve_size,
)
from lcfm.engine.reproduce_papers import PROTOCOLS
from lcfm.exceptions import ConfigError, DataError
from lcfm.simulate import SimulateArgs

ARGS = {"simulate": SimulateArgs, "pretrain": PretrainArgs, "finetune": FinetuneArgs,
        "evaluate": EvaluateArgs, "fewshot": FewShotArgs}
STAGES = {
    "astrafier": ["simulate kepler", "simulate tess", "kepler-only", "combine", "split file",
                  "kepler+tess", "evaluate tess holdout"],
    "astromer-2": ["simulate pretraining corpus", "simulate labeled", "pretrain",
                   "reconstruction", "fewshot"],
    "astroco": ["simulate pretraining corpus", "simulate labeled", "pretrain",
                "reconstruction", "fewshot"],
    "atcat": ["simulate pretraining corpus", "simulate labeled", "pretrain", "finetune",
              "evaluate"],
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """LSTMs and small matrices run far faster on one thread of a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _flags_known(line: str) -> None:
    """Every --flag of a recorded command is an option of that command's dataclass."""
    words = shlex.split(line)
    assert words[0] == "lcfm"
    cls = ARGS.get(words[1])
    if cls is None:
        return
    known = {"--config"}
    for field in dataclasses.fields(cls):
        flag = "--" + ((field.metadata or {}).get("flag") or field.name.replace("_", "-"))
        known |= {flag, "--no-" + flag[2:]}
    flags = {w for w in words if w.startswith("--")}
    assert flags <= known, (words[1], flags - known)


def _common(record: dict, paper: str, out) -> dict:
    assert record["paper"] == paper and record["scale"] == "test"
    assert record["comparable_with_paper"] is False and "not comparable" in \
        record["comparability"]
    stages = {s["stage"]: s for s in record["stages"]}
    assert list(stages) == STAGES[paper]
    assert record["commands"] == [s["command"] for s in record["stages"]]
    for stage in record["stages"]:
        assert stage["metrics"], stage["stage"]
        assert stage["seconds"] >= 0
        if stage["command"].startswith("lcfm "):
            _flags_known(stage["command"])
    assert json.loads((out / RESULTS_FILE).read_text()) == json.loads(json.dumps(record))
    report = (out / REPORT_FILE).read_text()
    assert "| metric | stage | obtained" in report
    for stage in record["stages"]:
        assert stage["command"] in report
    return stages


def test_astrafier_kepler_then_kepler_tess_on_tess_holdout(tmp_path):
    out = tmp_path / "astrafier"
    record = reproduce("astrafier", out, "test", mc_samples=2)
    stages = _common(record, "astrafier", out)
    kepler = stages["kepler-only"]
    assert kepler["recipe"]["name"] == "astrafier"
    assert kepler["recipe"]["values"]["selection"] == "accuracy"
    assert kepler["metrics"]["test_accuracy"] is not None
    assert kepler["metrics"]["selection"] == "accuracy"
    assert stages["combine"]["metrics"]["survey"] == "kepler+tess_qlp"
    # scored on the TESS holdout only, with MC dropout
    splits = pl.read_csv(out / "splits-tess-holdout.csv")
    test_ids = splits.filter(pl.col("split") == "test")["object_id"].to_list()
    assert test_ids and all(i.startswith("tess_qlp:") for i in test_ids)
    scored = stages["evaluate tess holdout"]["metrics"]
    assert scored["mc_samples"] == 2 and scored["mc_dropout"]
    assert scored["n_objects"] == len(test_ids)
    assert "--mc-samples 2" in stages["evaluate tess holdout"]["command"]
    assert "--splits" in stages["kepler+tess"]["command"]
    numbers = {h["metric"]: h for h in record["headline"]}
    assert numbers["Kepler holdout accuracy"]["reported"] == 0.9426
    assert 0 <= numbers["TESS holdout accuracy (Kepler+TESS, MC dropout)"]["obtained"] <= 1


def test_astromer2_pretraining_reconstruction_fewshot(tmp_path):
    out = tmp_path / "astromer-2"
    record = reproduce("astromer-2", out, "test")
    stages = _common(record, "astromer-2", out)
    assert "--option moment_filter=true" in stages["simulate pretraining corpus"]["command"]
    assert stages["pretrain"]["recipe"]["name"] == "astromer-2-pretrain"
    assert stages["pretrain"]["metrics"]["steps"] == 3
    recon = stages["reconstruction"]["metrics"]
    assert recon["rmse"] > 0 and math.isfinite(recon["r2"]) and recon["weighted"] is False
    shots = stages["fewshot"]["metrics"]
    assert shots["mode"] == "frozen" and shots["adapt_steps"] == 2
    assert [row["spc"] for row in shots["summary"]] == [4]
    assert stages["fewshot"]["recipe"]["name"] == "astromer-2-finetune"
    numbers = {h["metric"]: h for h in record["headline"]}
    assert numbers["reconstruction RMSE (probed points, unweighted)"]["reported"] == 0.113
    assert (out / "fewshot" / "spc-4" / "fold-0" / "adapted" / "config.json").is_file()


def test_astroco_through_the_command_line(tmp_path):
    typer = pytest.importorskip("typer")
    from lcfm_cli.reproduce_command import reproduce_command
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command("reproduce")(reproduce_command())
    app.command("other")(lambda: None)  # two commands: typer keeps the command name
    out = tmp_path / "astroco"
    result = CliRunner().invoke(app, ["reproduce", "astroco", "--output", str(out),
                                      "--scale", "test"])
    assert result.exit_code == 0, result.output
    assert "reconstruction RMSE" in result.output and "not comparable" in result.output
    record = json.loads((out / RESULTS_FILE).read_text())
    stages = _common(record, "astroco", out)
    assert stages["pretrain"]["recipe"]["name"] == "astroco-s"
    assert stages["fewshot"]["metrics"]["adapt_steps"] == 0
    assert stages["fewshot"]["recipe"]["values"]["classifier"] == "frozen"
    assert stages["reconstruction"]["metrics"]["rmse"] > 0


def test_atcat_pretrain_finetune_objective_early_metrics(tmp_path):
    out = tmp_path / "atcat"
    record = reproduce("atcat", out, "test")
    stages = _common(record, "atcat", out)
    assert stages["pretrain"]["recipe"]["name"] == "atcat-pretrain"
    tuned = stages["finetune"]["recipe"]
    assert tuned["name"] == "atcat-finetune-small"
    assert tuned["values"]["loss"] == "model"
    assert tuned["values"]["selection"] == "class_balanced_f1"
    scored = stages["evaluate"]["metrics"]
    assert scored["class_balanced_f1"] is not None
    assert [row["days"] for row in scored["early"]] == [8.0, 32.0]
    assert all(row["n_objects"] >= 0 for row in scored["early"])
    assert "--cutoffs 8,32" in stages["evaluate"]["command"]


def test_command_line_and_sizes(tmp_path):
    line = command_line("finetune", FinetuneArgs(
        data=tmp_path / "d", model="astrafier", output=tmp_path / "o", recipe="astrafier",
        max_steps=40, baseline=False, augment=["shift", "noise"],
        config_overrides={"max_length": 512, "cnn_kernel_sizes": [3, 7]}))
    assert line == (f"lcfm finetune --data {tmp_path / 'd'} --model astrafier --output "
                    f"{tmp_path / 'o'} --recipe astrafier --max-steps 40 --augment shift "
                    "--augment noise --no-baseline --config max_length=512 "
                    "--config cnn_kernel_sizes=[3,7]")
    args = ReproduceArgs(paper="atcat", output=tmp_path, scale="small", steps=7, n=50)
    size = resolve_size(args, PROTOCOLS["atcat"].sizes)
    assert (size.steps, size.n, size.n_pretrain, size.n_second) == (7, 50, 50, 0)
    paper = PROTOCOLS["astrafier"].sizes["paper"]
    assert (paper.n, paper.n_second, paper.mc_samples, paper.steps) == (8328, 9343, 20, None)
    with pytest.raises(ConfigError, match="--steps 0"):
        resolve_size(dataclasses.replace(args, steps=0), PROTOCOLS["atcat"].sizes)
    with pytest.raises(ConfigError, match="--paper 'nope'"):
        reproduce("nope", tmp_path / "x", "test")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        reproduce("atcat", busy, "test")
    assert (busy / "notes.txt").read_text() == "mine"
