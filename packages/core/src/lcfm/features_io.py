"""`lcfm features`: the per-object features of `lcfm.features` for a whole dataset folder,
shard by shard, in parallel, with bounded memory (issue 12, item 3).

The work is cut into tasks of at most `chunk_rows` light curves, each a row range of one
shard, read alone (Polars pushes the slice down to the Parquet reader). An object whose
light curves fall in more than one task (segments written to different shards) is left out
of those tasks and computed by a task of its own, which reads exactly its rows from every
shard, so each object gets one feature row from all its observations. Tasks run in a pool of
`workers` processes (spawned, as ingest's: a forked child inherits Polars' thread pool
mid-state), at most 2 x workers in flight; each result is written to a part file at once, and
the parts are concatenated in task order at the end, so the output does not depend on the
number of workers and the parent never holds more than a few tasks' rows.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import ConfigError, DataError
from lcfm.features import FeatureConfig, FeatureCounts, band_order, compute_features
from lcfm.options import option
from lcfm.progress import progress_bar
from lcfm.schema import conform
from lcfm.shards import shard_paths

__all__ = ["FeatureTask", "FeaturesArgs", "extract_features", "features", "ordered_results",
           "plan_tasks", "read_task", "summary_path"]

#: light curves per task: small enough that 2 x workers tasks fit in memory for Kepler-length
#: curves (~4,300 points), large enough that the per-task start-up is negligible
CHUNK_ROWS = 512


@dataclass(frozen=True)
class FeatureTask:
    """Rows to read: (shard path, first row, number of rows) ranges; `objects` restricts
    the task to these objects, `skip` leaves these out (they have a task of their own)."""

    ranges: tuple[tuple[str, int, int], ...]
    objects: tuple[str, ...] | None = None
    skip: tuple[str, ...] = ()


@dataclass
class FeaturesArgs:
    """Options of `lcfm features` (one declaration each, `lcfm.options`)."""

    data: Path = option(help="Folder of canonical shards.")
    output: Path = option(help="Parquet file: one row per object (object_id, label, "
                          "features); its summary goes to <stem>.json beside it.")
    workers: int = option(1, "Processes computing features in parallel.")
    min_period: float = option(0.1, "Shortest period searched by the Lomb-Scargle "
                               "periodogram, in days.")
    chunk_rows: int = option(CHUNK_ROWS, "Light curves per task (memory per worker).")
    progress: bool = option(False, cli=False)


def features(args: FeaturesArgs) -> dict:
    """`lcfm features` from its options; returns the summary (`extract_features`)."""
    return extract_features(args.data, args.output, workers=args.workers,
                            config=FeatureConfig(min_period=args.min_period),
                            chunk_rows=args.chunk_rows, progress=args.progress)


def summary_path(output: Path) -> Path:
    """The JSON summary written beside a features file: `<stem>.json`."""
    return Path(output).with_suffix(".json")


def _survey_wavelengths(surveys: list[str]) -> dict[str, float]:
    from lcfm.exceptions import PluginNotFoundError
    from lcfm.registry import get_survey

    wavelengths: dict[str, float] = {}
    for name in surveys:
        try:
            wavelengths.update({b: float(w) for b, w in get_survey(name).bands.items()})
        except PluginNotFoundError:  # bands are then ordered by name
            pass
    return wavelengths


def plan_tasks(paths: list[Path], chunk_rows: int = CHUNK_ROWS
               ) -> tuple[list[FeatureTask], list[str], list[str]]:
    """(tasks, bands in wavelength order, surveys) of a dataset's shards, from their
    object_id, survey and band columns only."""
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}")
    index, bands, surveys = [], set(), set()
    for shard, path in enumerate(paths):
        try:
            head = pl.scan_parquet(path).select("object_id", "survey", "band").collect()
        except Exception as exc:  # polars raises several types for a corrupt file
            raise DataError(f"{path}: unreadable Parquet shard ({exc})") from exc
        bands.update(head["band"].explode().drop_nulls().cast(pl.String).unique().to_list())
        surveys.update(head["survey"].drop_nulls().unique().to_list())
        index.append(pl.DataFrame({
            "object_id": head["object_id"], "shard": np.full(head.height, shard, np.int32),
            "row": np.arange(head.height, dtype=np.int64)}))
    rows = pl.concat(index).with_columns(chunk=pl.col("row") // chunk_rows)
    spread = rows.group_by("object_id").agg(
        pl.struct("shard", "chunk").n_unique().alias("units"))
    spanning = set(spread.filter(pl.col("units") > 1)["object_id"].to_list())
    tasks = []
    for (shard, _chunk), unit in rows.group_by("shard", "chunk", maintain_order=True):
        start = int(unit["row"].min())
        stop = int(unit["row"].max()) + 1
        skip = tuple(sorted(set(unit["object_id"].to_list()) & spanning))
        tasks.append(FeatureTask(((str(paths[shard]), start, stop - start),), skip=skip))
    # objects spread over tasks: grouped, about chunk_rows light curves per task
    spanning_rows = rows.filter(pl.col("object_id").is_in(sorted(spanning))).sort(
        "object_id", "shard", "row")
    objects = spanning_rows.group_by("object_id", maintain_order=True).agg(
        pl.col("shard").unique().sort(), pl.len().alias("n"))
    group, size = [], 0
    for object_id, shards, n in objects.iter_rows():
        group.append((object_id, shards))
        size += n
        if size >= chunk_rows:
            tasks.append(_spanning_task(group, paths))
            group, size = [], 0
    if group:
        tasks.append(_spanning_task(group, paths))
    wavelengths = _survey_wavelengths(sorted(surveys))
    return tasks, band_order(bands, wavelengths), sorted(surveys)


def _spanning_task(group: list[tuple[str, list[int]]], paths: list[Path]) -> FeatureTask:
    shards = sorted({s for _, shard_list in group for s in shard_list})
    return FeatureTask(tuple((str(paths[s]), 0, -1) for s in shards),
                       objects=tuple(o for o, _ in group))


def read_task(task: FeatureTask) -> pl.DataFrame:
    frames = []
    for path, start, length in task.ranges:
        scan = pl.scan_parquet(path)
        if task.objects is not None:
            scan = scan.filter(pl.col("object_id").is_in(list(task.objects)))
        elif length >= 0:
            scan = scan.slice(start, length)
        if task.skip:
            scan = scan.filter(~pl.col("object_id").is_in(list(task.skip)))
        try:
            frame = scan.collect()
        except Exception as exc:  # polars raises several types for a corrupt file
            raise DataError(f"{path}: unreadable Parquet shard ({exc})") from exc
        frames.append(conform(frame, source=path))
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def run_task(task: FeatureTask, bands: list[str], config: FeatureConfig
             ) -> tuple[pl.DataFrame, FeatureCounts]:
    """Features of one task's objects (in a worker process or here)."""
    counts = FeatureCounts()
    frame = compute_features(read_task(task), bands=bands, config=config, counts=counts)
    return frame, counts


def ordered_results(function, tasks, workers: int, *args):
    """`function(task, *args)` for every task, yielded in task order: here for one worker,
    else in a pool of `workers` spawned processes with at most 2 x workers tasks in flight
    (so results waiting to be consumed stay few)."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield function(task, *args)
        return
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = iter(tasks)
        ahead = deque(pool.submit(function, task, *args)
                      for task in itertools.islice(jobs, 2 * workers))
        while ahead:
            result = ahead.popleft().result()
            for task in itertools.islice(jobs, 1):
                ahead.append(pool.submit(function, task, *args))
            yield result


def _refuse_folded(paths: list[Path]) -> None:
    """Light curves folded by `lcfm fold` (meta `fold_period`) have lost their time axis:
    a periodogram, trend or time span of them means nothing. One line saying what to do."""
    for path in paths:
        meta = pl.read_parquet_schema(path).get("meta")
        if isinstance(meta, pl.Struct) and "fold_period" in [f.name for f in meta.fields]:
            raise DataError(f"{path}: light curves folded by lcfm fold; compute features on "
                            "the unfolded folder and pass that file (finetune "
                            "--features-file, baseline and evaluate --features)")


def extract_features(data: Path, output: Path, *, workers: int = 1,
                     config: FeatureConfig | None = None, chunk_rows: int = CHUNK_ROWS,
                     progress: bool = False) -> dict:
    """Write the features of every object of the dataset `data` to the Parquet file
    `output` (object_id, label, `lcfm.features.feature_columns(bands)`), and a summary
    (`summary_path(output)`: counts of NaN features, missing bands and dropped points,
    throughput). Returns the summary."""
    if int(workers) < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    config = config or FeatureConfig()
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"--output {output}: is a directory; give a file name such as "
                          f"{output / 'features.parquet'}")
    started = time.perf_counter()
    paths = shard_paths(data)
    _refuse_folded(paths)
    tasks, bands, surveys = plan_tasks(paths, chunk_rows)
    if not tasks:
        raise DataError(f"{data}: holds no light curves")
    output.parent.mkdir(parents=True, exist_ok=True)
    counts = FeatureCounts()
    parts_dir = Path(tempfile.mkdtemp(prefix=f".{output.name}.parts-", dir=output.parent))
    try:
        parts = []
        bar = progress_bar(total=len(tasks), unit="task", desc="features", enabled=progress)
        for i, (frame, task_counts) in enumerate(ordered_results(
                run_task, tasks, workers, bands, config)):
            counts.add(task_counts)
            parts.append(parts_dir / f"part-{i:05d}.parquet")
            frame.write_parquet(parts[-1])
            bar.update(1)
        bar.close()
        tmp = parts_dir / "all.parquet"
        pl.scan_parquet([str(p) for p in parts]).sink_parquet(tmp, compression="zstd")
        os.replace(tmp, output)
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = time.perf_counter() - started
    summary = {
        "data": str(data), "output": str(output), "surveys": surveys, "bands": bands,
        "workers": int(workers), "tasks": len(tasks), **counts.to_dict(),
        "seconds": seconds,
        "light_curves_per_second": counts.light_curves / seconds if seconds > 0 else None,
        "config": asdict(config),
    }
    summary_path(output).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
