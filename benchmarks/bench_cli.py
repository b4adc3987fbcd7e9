"""`lcfm bench` of every model's paper configuration on simulated ELAsTiCC, with corpus
sizes 1000, 4000 and 16000 (each in a fresh process): the record a user gets, kept as
results/<label>/bench_cli.json. Needs the `lcfm bench` of issue 10 (skipped before it)."""

from __future__ import annotations

import json
import os
import subprocess

from _measure import commit, python, save

SIZES = os.environ.get("LCFM_BENCH_SIZES", "1000,4000,16000")


def main() -> None:
    try:
        import lcfm.engine.bench_data  # noqa: F401
    except ImportError:
        print("this checkout's lcfm bench has no data path measurement: skipped")
        return
    from lcfm.registry import model_names

    records = {}
    for model in model_names():
        run = subprocess.run([python(), "-m", "lcfm_cli", "bench", "--model", model,
                              "--survey", "elasticc", "--n", SIZES, "--model-batches", "2"],
                             capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(f"lcfm bench --model {model} failed:\n{run.stderr}")
        (record,) = json.loads(run.stdout)["models"]
        records[model] = record
    save("bench_cli", {"commit": commit(), "sizes": SIZES, "models": records})


if __name__ == "__main__":
    main()
