"""`lcfm bench`: throughput of collation, inference and training steps per model, as
light curves per second, and peak memory, on synthetic light curves of a survey's
cadence. Numbers are for comparison between models and machines, not tests."""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from lcfm.registry import get_model, get_survey, model_names


def _rows(n: int, length: int, bands: list[str], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = np.sort(rng.uniform(0, 1000, length))
        rows.append({"object_id": str(i), "survey": "bench", "time": t,
                     "value": rng.normal(size=length).astype(np.float32),
                     "error": np.full(length, 0.05, np.float32),
                     "band": np.array([bands[j % len(bands)] for j in range(length)]),
                     "value_kind": "mag", "label": None, "meta": {}})
    return rows


def _rate(fn, n_items: int, repeat: int = 3) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return n_items * repeat / (time.perf_counter() - start)


def bench_model(plugin_name: str, config_name: str | None, n: int, survey: str,
                batch_size: int = 32, length: int = 200) -> dict:
    plugin = get_model(plugin_name)
    config = plugin.make_config(config_name)
    bands = get_survey(survey).bands
    rows = _rows(n, length, list(bands))
    result = {"model": plugin_name, "configuration": config_name or plugin.default_configuration,
              "parameters": plugin.parameter_count(config_name), "survey": survey,
              "light_curves": n, "points_per_light_curve": length, "batch_size": batch_size,
              "threads": torch.get_num_threads()}
    task = "pretrain" if plugin.pretraining_class else "classify"
    label2id = None if task == "pretrain" else {"a": 0}
    if task == "classify":
        for r in rows:
            r["label"] = "a"
        config.num_labels = 2
    cls = plugin.pretraining_class or plugin.classification_class
    model = cls(config)
    collate = plugin.collator(config, task=task, train=True, bands=bands, label2id=label2id)
    batches = [rows[i:i + batch_size] for i in range(0, n, batch_size)]
    result["collate_per_second"] = round(_rate(lambda: [collate(b) for b in batches], n), 1)
    tensors = [collate(b) for b in batches]
    model.eval()

    def infer():
        with torch.no_grad():
            for t in tensors:
                model(**{k: v for k, v in t.items() if k != "labels"})

    result["inference_per_second"] = round(_rate(infer, n), 1)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train():
        for t in tensors:
            out = model(**t)
            loss = out.loss if out.loss is not None else out.logits.mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    result["train_per_second"] = round(_rate(train, n, repeat=1), 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def bench_survey(name: str, n: int = 500) -> dict:
    """Simulation (light curves per second) and ingest of the bundled sample (points per
    second) for one survey, each including preprocessing and Parquet writing."""
    import tempfile
    from pathlib import Path

    from lcfm.exceptions import ConfigError
    from lcfm.ingest import ingest
    from lcfm.simulate import simulate

    survey = get_survey(name)
    result: dict = {"survey": name}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            start = time.perf_counter()
            simulate(survey, n, Path(tmp) / "sim")
            result["simulate_per_second"] = round(n / (time.perf_counter() - start), 1)
        except ConfigError:
            result["simulate_per_second"] = None  # no simulator
        try:
            start = time.perf_counter()
            report = ingest(survey, None, Path(tmp) / "ingest")
            seconds = time.perf_counter() - start
            result["ingest_points_per_second"] = round(report.points_read / seconds, 1)
            result["ingest_points"] = report.points_read
        except ConfigError:
            result["ingest_points_per_second"] = None  # no bundled sample
    return result


def bench(model: str | None = None, n: int = 256, survey: str = "macho",
          surveys: bool = False) -> dict:
    """{"models": [...], "surveys": [...]} (surveys only when asked)."""
    names = [model] if model else model_names()
    results = {"models": [], "surveys": []}
    for name in names:
        plugin = get_model(name)
        results["models"].append(bench_model(plugin.name, plugin.default_configuration, n,
                                             survey))
    if surveys:
        from lcfm.registry import survey_names

        results["surveys"] = [bench_survey(s) for s in survey_names()]
    return results
