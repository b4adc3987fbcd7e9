"""The data path of `lcfm bench`: shards -> `FlatRows` -> collator tensors, timed per
process (issue 10 item 9: "light curves/s of the data path per process").

Batches are read the way training reads them: `lcfm.stream` (row-group index, length-aware
`EpochPlan`, `RowGroupCache`) when it is installed, otherwise each shard is read whole with
pyarrow and cut into consecutive batches. `padding_fraction` is measured on the collated
tensors themselves (positions with attention_mask == 0 over all positions), so it is what
the model really attends over, whatever the collator does with windows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lcfm.exceptions import DataError
from lcfm.flat import FlatRows


def data_survey(data: Path) -> str:
    """The survey of a dataset folder, from its first non-empty shard's `survey` column."""
    import pyarrow.parquet as pq

    from lcfm.shards import shard_paths

    for path in shard_paths(Path(data)):
        try:
            column = pq.read_table(path, columns=["survey"]).column("survey")
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path}: unreadable Parquet shard ({exc})") from exc
        if len(column):
            return str(column[0].as_py())
    raise DataError(f"{data}: the dataset holds no light curves")


def _streamed(data: Path, n: int | None, batch_size: int, bands, seed: int, bucket: bool
              ) -> tuple[int, Iterator[FlatRows]]:
    from lcfm import stream

    index = stream.ShardIndex(Path(data))
    rows = np.arange(min(n or index.n_rows, index.n_rows))
    plan = stream.EpochPlan.for_rows(index, rows, batch_size, seed, bucket=bucket)
    cache = stream.RowGroupCache(index, list(bands))
    return rows.size, (cache.take(plan.batch_rows(s)) for s in range(plan.batches_per_epoch))


def _table_rows(table, band_names: list[str]) -> FlatRows:
    """One Arrow table of canonical rows as FlatRows, through its list offsets (no Python
    loop per point)."""
    import pyarrow.compute as pc

    def flat(name, dtype):
        return pc.list_flatten(table.column(name)).to_numpy(zero_copy_only=False).astype(dtype)

    lengths = pc.list_value_length(table.column("time")).to_numpy(zero_copy_only=False)
    names, codes = np.unique(flat("band", str), return_inverse=True)
    lookup = {b: i for i, b in enumerate(band_names)}
    for b in map(str, names):
        if b not in lookup:
            lookup[b] = len(band_names)
            band_names.append(b)
    table_codes = np.array([lookup[str(b)] for b in names], np.int16)
    return FlatRows(offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                    time=flat("time", np.float64), value=flat("value", np.float32),
                    error=flat("error", np.float32),
                    band=table_codes[codes] if codes.size else np.zeros(0, np.int16),
                    band_names=tuple(band_names),
                    object_id=[str(x) for x in table.column("object_id").to_pylist()],
                    label=table.column("label").to_pylist(),
                    value_kind=table.column("value_kind").to_pylist(),
                    survey=table.column("survey").to_pylist(),
                    meta=[{} for _ in range(table.num_rows)])


def _shard_batches(data: Path, n: int | None, batch_size: int, bands
                   ) -> tuple[int, Iterator[FlatRows]]:
    """Without `lcfm.stream`: every shard read with pyarrow, consecutive batches."""
    import pyarrow.parquet as pq

    from lcfm.shards import shard_paths

    paths = shard_paths(Path(data))
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    n = min(n or total, total)

    def batches():
        names, left = list(bands), n
        for path in paths:
            if left <= 0:
                return
            table = pq.read_table(path).slice(0, left)
            left -= table.num_rows
            flat = _table_rows(table, names)
            for start in range(0, len(flat), batch_size):
                yield flat.take(np.arange(start, min(start + batch_size, len(flat))))
    return n, batches()


def read_batches(data: Path, n: int | None, batch_size: int, bands, seed: int = 0,
                 bucket: bool = True) -> tuple[int, Iterator[FlatRows], str]:
    """(light curves, iterator of FlatRows batches covering them once, reader name)."""
    try:
        from lcfm import stream  # noqa: F401
    except ImportError:
        count, batches = _shard_batches(data, n, batch_size, bands)
        return count, batches, "pyarrow shards"
    count, batches = _streamed(data, n, batch_size, bands, seed, bucket)
    return count, batches, "lcfm.stream"


def data_path(plugin, config, data: Path, *, batch_size: int = 32, n: int | None = None,
              bands=None, seed: int = 0, bucket: bool = True, keep: int = 0) -> dict:
    """One epoch of shards -> tensors of `plugin`'s training collator over `data` (the
    first `n` light curves), timed from opening the shards to the last tensor.

    Returns light_curves, seconds, light_curves_per_second, cpu_seconds,
    light_curves_per_cpu_second, padding_fraction, batches, reader, tokens, task; with
    keep > 0 also "_batches": the first `keep` collated batches (for the model
    measurement, popped by the caller before the JSON)."""
    from lcfm.registry import get_survey

    if bands is None:
        bands = get_survey(data_survey(data)).bands
    task = "pretrain" if plugin.pretraining_class is not None else "classify"
    collate = plugin.collator(config, task=task, train=True, bands=bands, seed=seed)
    if hasattr(collate, "rng"):  # the engine reseeds per step; one seed suffices here
        collate.rng = np.random.default_rng(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    count, batches, reader = read_batches(data, n, batch_size, bands, seed, bucket)
    padded = total = n_batches = 0
    kept = []
    for flat in batches:
        tensors = collate(flat)
        mask = tensors.get("attention_mask")
        if mask is not None:
            padded += int((mask == 0).sum())
            total += mask.numel()
        n_batches += 1
        if len(kept) < keep:
            kept.append(tensors)
    seconds = time.perf_counter() - start
    # CPU seconds of this process: on a shared machine, light curves per CPU second is the
    # rate of one core (with one thread), which wall-clock time under contention is not
    cpu = time.process_time() - cpu_start
    if count == 0 or seconds <= 0:
        raise DataError(f"{data}: no light curves to benchmark")
    result = {"light_curves": count, "seconds": round(seconds, 4),
              "light_curves_per_second": round(count / seconds, 1),
              "cpu_seconds": round(cpu, 4),
              "light_curves_per_cpu_second": round(count / max(cpu, 1e-9), 1),
              "padding_fraction": round(padded / total, 4) if total else 0.0,
              "tokens": total, "batches": n_batches, "reader": reader, "task": task}
    if keep:
        result["_batches"] = kept
    return result


__all__ = ["data_path", "data_survey", "read_batches"]
