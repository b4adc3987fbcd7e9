"""`lcfm bench`: what a model costs on a corpus, as JSON (issue 10 item 9: "light curves/s
of the data path per process and of the model, fraction of the machine's measured fp32
matmul peak (measured in the same run), `padding_fraction`, peak RSS; and `--n` scaling so
a user can see cost grow with the corpus").

Per model: the data path (shards -> FlatRows -> collator tensors, `bench_data`) for every
corpus size in `ns`, then the model's forward and training rates on the first collated
batches (`bench_model`) against a matmul measured in the same process. With several sizes
each is measured in a fresh process, so its peak RSS is its own and not the high-water
mark of the sizes before it. Numbers compare models, corpora and machines; they are never
asserted in tests.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lcfm.exceptions import ConfigError


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def resolve_model(name: str, configuration: str | None = None):
    """(plugin, configuration name) from a plugin name ("astromer") or a paper
    configuration ("astromer-v1"); `configuration` (e.g. "tiny") overrides the latter."""
    from lcfm.registry import find_model_configuration

    plugin, config_name = find_model_configuration(name)
    return plugin, configuration or config_name


def _corpus(data: Path | None, survey: str, n: int, workdir: Path) -> tuple[Path, int | None]:
    """(folder, rows to read): the first n light curves of `data`, or n freshly simulated
    light curves of `survey` (simulation time is not part of any rate)."""
    if data is not None:
        return Path(data), n
    from lcfm.registry import get_survey
    from lcfm.simulate import simulate

    folder = workdir / f"{survey}-{n}"
    if not (folder / "simulation.json").exists():
        simulate(get_survey(survey), n, folder, seed=0)
    return folder, None


def _point(model: str, configuration: str | None, data: Path, n: int | None,
           batch_size: int, keep: int, seed: int) -> dict:
    """One data-path measurement (module-level: it runs in spawned processes too)."""
    from lcfm.engine.bench_data import data_path

    plugin, config_name = resolve_model(model, configuration)
    result = data_path(plugin, plugin.make_config(config_name), data, batch_size=batch_size,
                       n=n, seed=seed, keep=keep)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _run_isolated(*args) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child would inherit (and report) the parent's memory
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_point, *args).result()


def bench_model(model: str, *, data: Path | None = None, survey: str | None = None,
                ns: Sequence[int] = (1000,), batch_size: int = 32,
                configuration: str | None = None, device: str | None = None,
                model_batches: int = 8, min_seconds: float = 1.0, isolate: bool | None = None,
                seed: int = 0, matmul_size: int | None = None,
                workdir: Path | None = None) -> dict:
    """The JSON record of one model: configuration, data path and model rates, matmul peak
    and fraction of it, padding_fraction, peak RSS and a "scaling" list (one entry per n).

    `data`: a folder of canonical shards (its first n light curves per point); without it
    `survey`'s simulator makes each corpus. `isolate` (default: when several n) measures
    each n in a fresh process. `matmul_size`: side of the peak-measuring matmul (default
    1024 on CPU, 8192 on GPU). `workdir`: where simulated corpora are kept (and reused by
    later calls); a temporary folder by default."""
    import torch

    from lcfm.engine.bench_data import data_survey
    from lcfm.engine.bench_model import matmul_peak_gflops, model_throughput

    ns = sorted({int(n) for n in ns})
    if not ns or ns[0] < 1:
        raise ConfigError(f"--n: light-curve counts must be positive, got {ns}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    plugin, config_name = resolve_model(model, configuration)
    config = plugin.make_config(config_name)
    if data is not None:
        if not Path(data).is_dir():
            raise ConfigError(f"--data {data}: not a folder of shards")
        survey = data_survey(Path(data))
    survey = survey or ("elasticc" if plugin.causal else "macho")
    isolate = len(ns) > 1 if isolate is None else isolate
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    result = {"model": plugin.name, "configuration": config_name,
              "parameters": plugin.parameter_count(config_name), "survey": survey,
              "data": str(data) if data is not None else f"simulated {survey}",
              "batch_size": batch_size, "device": str(target),
              "threads": torch.get_num_threads()}
    scaling = []
    with tempfile.TemporaryDirectory(prefix="lcfm-bench-") as tmp:
        for n in ns:
            folder, rows = _corpus(data, survey, n, Path(workdir or tmp))
            keep = model_batches if n == ns[-1] else 0
            args = (model, configuration, folder, rows, batch_size, keep, seed)
            point = _run_isolated(*args) if isolate else _point(*args)
            scaling.append(point)
    batches = scaling[-1].pop("_batches")
    peak = matmul_peak_gflops(target, matmul_size, min_seconds=min(0.3, min_seconds))
    model_rates = model_throughput(plugin, config, batches, target, min_seconds)
    last = scaling[-1]
    result.update({
        "data_path": {k: last[k] for k in ("light_curves", "light_curves_per_second",
                                           "seconds", "light_curves_per_cpu_second",
                                           "cpu_seconds", "reader", "batches", "task")},
        "model_throughput": model_rates,
        "matmul_peak_gflops": round(peak, 2),
        "forward_fraction_of_peak": round(model_rates["forward_gflops"] / peak, 5),
        "train_fraction_of_peak": round(model_rates["train_gflops"] / peak, 5),
        "padding_fraction": last["padding_fraction"],
        "peak_rss_mb": max([peak_rss_mb()] + [p["peak_rss_mb"] for p in scaling]),
        "peak_rss_isolated": isolate,
        "scaling": [{"light_curves": p["light_curves"], "seconds": p["seconds"],
                     "light_curves_per_second": p["light_curves_per_second"],
                     "padding_fraction": p["padding_fraction"],
                     "peak_rss_mb": p["peak_rss_mb"],
                     # one epoch of this corpus in one process: data path then training
                     "epoch_seconds": round(p["seconds"] + p["light_curves"]
                                            / model_rates["train_per_second"], 2)}
                    for p in scaling]})
    return result


def bench_survey(name: str, n: int = 500) -> dict:
    """Simulation (light curves per second) and ingest of the bundled sample (points per
    second) for one survey, each including preprocessing and Parquet writing."""
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey
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


def bench(models: Sequence[str] | None = None, *, surveys: bool = False, **kwargs) -> dict:
    """{"models": [bench_model(...) per model], "surveys": [...] (with surveys=True)};
    `models` defaults to every installed model plugin."""
    from lcfm.registry import model_names, survey_names

    with tempfile.TemporaryDirectory(prefix="lcfm-bench-") as tmp:
        # models benchmarked on the same simulated corpora, simulated once
        kwargs.setdefault("workdir", Path(tmp))
        results = {"models": [bench_model(m, **kwargs) for m in (models or model_names())],
                   "surveys": []}
    if surveys:
        results["surveys"] = [bench_survey(s) for s in survey_names()]
    return results


__all__ = ["bench", "bench_model", "bench_survey", "peak_rss_mb", "resolve_model"]
