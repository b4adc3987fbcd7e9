"""Done-when: every model's shards -> tensors path >= 4k light curves/s per core, and
padding <= 10% of tokens on simulated ELAsTiCC (issue 10 items 2 and 3).

One process (torch and numpy held to one thread, so the rate is per core), each model's
paper configuration (the collator's windows are the paper's), training collation of one
epoch in the training order. Where `lcfm.engine.bench.data_path` exists (the code that
`lcfm bench` runs) it is measured; otherwise the path the training loop of that commit
used: read_shards -> LightCurveDataset -> collator on lists of row dicts."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per core: before numpy/torch load

import time  # noqa: E402

from _measure import commit, save, simulated  # noqa: E402

CORPORA = {"macho": 10_000, "elasticc": 4_000}
BATCH = 32


def legacy(plugin, data, survey) -> dict:
    """shards -> tensors as pretrain did before the streaming path (whole frame in memory,
    row dicts, the collator's per-row loop), with its padding."""
    from lcfm.data import LightCurveDataset
    from lcfm.engine.batching import StepBatches
    from lcfm.shards import read_shards

    config = plugin.make_config(None)
    task = "pretrain" if plugin.pretraining_class else "classify"
    collate = plugin.collator(config, task=task, train=True, bands=survey.bands)
    start, cpu_start = time.perf_counter(), time.process_time()
    dataset = LightCurveDataset(read_shards(data))
    loaded = time.perf_counter()
    batches = StepBatches(dataset, BATCH, collate, seed=0)
    padded = total = 0
    for step in range(batches.batches_per_epoch):
        mask = batches.batch(step)["attention_mask"]
        padded += int((mask == 0).sum())
        total += mask.numel()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    n = len(dataset)
    return {"light_curves": n, "light_curves_per_second": round(n / seconds, 1),
            "cpu_seconds": round(cpu, 3), "light_curves_per_cpu_second": round(n / cpu, 1),
            "collate_only_per_second": round(n / (seconds - (loaded - start)), 1),
            "padding_fraction": round(padded / total, 4), "path": "read_shards+rows"}


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from lcfm.registry import get_model, get_survey, model_names

    try:
        from lcfm.engine.bench_data import data_path
    except ImportError:
        data_path = None
    results: dict = {"commit": commit(), "batch_size": BATCH, "threads": 1, "models": {}}
    for name in model_names():
        plugin = get_model(name)
        results["models"][name] = {}
        for survey_name, n in CORPORA.items():
            data, survey = simulated(survey_name, n), get_survey(survey_name)
            if data_path is not None:
                r = data_path(plugin, plugin.make_config(None), data, batch_size=BATCH)
            else:
                r = legacy(plugin, data, survey)
            results["models"][name][survey_name] = r
            print(name, survey_name, r, flush=True)
    # per core = per CPU second of this one-thread process (the machine is shared)
    rates = [r["light_curves_per_cpu_second"] for m in results["models"].values()
             for r in m.values()]
    padding = [m["elasticc"]["padding_fraction"] for m in results["models"].values()]
    results["slowest_per_core"] = min(rates)
    results["met_4k_per_core"] = min(rates) >= 4000
    results["max_padding_elasticc"] = max(padding)
    save("data_path", results)


if __name__ == "__main__":
    main()
