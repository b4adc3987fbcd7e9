"""Done-when: a 2-process CPU run of pretrain and predict really runs 2 ranks, each object
once (issue 10 item 4).

`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m lcfm_cli ...`
gives two gloo ranks on CPU (accelerate's `--cpu` launcher is single-process). Checked:
both commands exit 0; metrics.json and predict's summary JSON record num_processes = 2;
the catalog has every object of the data exactly once."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from _measure import commit, measure, python, save, simulated

N_PRETRAIN, N_PREDICT = 2_000, 1_000


def launch(*args: str) -> list[str]:
    accelerate = str(Path(python()).with_name("accelerate"))
    return [accelerate, "launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "lcfm_cli", *args]


def tiny(model: str) -> list[str]:
    from lcfm.registry import get_model

    return [x for k, v in get_model(model).tiny.items()
            for x in ("--config", f"{k}={json.dumps(v)}")]


def main() -> None:
    import polars as pl

    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    result: dict = {"commit": commit()}
    with tempfile.TemporaryDirectory() as tmp:
        run = measure(launch("pretrain", "--survey", "macho", "--model", "astromer-v2",
                             "--data", str(simulated("macho", N_PRETRAIN)),
                             "--max-steps", "20", "--batch-size", "32",
                             "--output", f"{tmp}/pre", *tiny("astromer")), env=env)
        metrics = Path(tmp, "pre", "metrics.json")
        recorded = (json.loads(metrics.read_text()).get("num_processes")
                    if metrics.exists() else None)
        result["pretrain"] = {"returncode": run["returncode"], "wall_s": run["wall_s"],
                              "num_processes_recorded": recorded,
                              "last_line": run["output"].strip().splitlines()[-1:]}
        # a tiny classifier to predict with (one process: only predict is under test)
        data = simulated("elasticc", N_PREDICT)
        fit = measure([python(), "-m", "lcfm_cli", "finetune", "--data", str(data),
                       "--model", "astrafier", "--output", f"{tmp}/clf", "--max-steps", "4",
                       "--batch-size", "16", *tiny("astrafier")])
        if fit["returncode"]:
            raise SystemExit(f"finetune failed:\n{fit['output']}")
        run = measure(launch("predict", "--model", f"{tmp}/clf", "--data", str(data),
                             "--output", f"{tmp}/catalog.parquet"), env=env)
        entry = {"returncode": run["returncode"], "wall_s": run["wall_s"],
                 "last_line": run["output"].strip().splitlines()[-1:]}
        catalog = Path(tmp, "catalog.parquet")
        if catalog.exists():
            ids = pl.read_parquet(catalog, columns=["object_id"])["object_id"]
            expected = pl.read_parquet(f"{data}/*.parquet", columns=["object_id"])
            entry.update(rows=ids.len(), unique_objects=ids.n_unique(),
                         objects_in_data=expected["object_id"].n_unique())
        summary = catalog.with_suffix(".json")
        entry["num_processes_recorded"] = (json.loads(summary.read_text()).get(
            "num_processes") if summary.exists() else None)
        result["predict"] = entry
        shutil.rmtree(tmp, ignore_errors=True)
    p, q = result["pretrain"], result["predict"]
    result["met"] = bool(p["returncode"] == 0 and p["num_processes_recorded"] == 2
                         and q["returncode"] == 0 and q["num_processes_recorded"] == 2
                         and q.get("rows") == q.get("unique_objects")
                         == q.get("objects_in_data"))
    save("multiprocess", result)


if __name__ == "__main__":
    main()
