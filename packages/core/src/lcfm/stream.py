"""Streaming access to a folder of shards in bounded memory (issue 10, item 1).

A corpus is never read whole. `ShardIndex` holds, per Parquet row group, where it lives
(shard, group, first global row) and, per light curve, only its number of observations,
from the Parquet footer plus one cheap column read (the dictionary-coded `band` lists).
`RowGroupCache` decodes row groups on demand into `FlatRows` (bands as int16 codes) and
keeps the last few (LRU), so a process holds a bounded number of blocks. `EpochPlan` says
which global rows form the batch of each step, as a pure function of (seed, epoch):

1. the row groups ("blocks") of the selected rows are permuted;
2. consecutive windows of `window_blocks` blocks are mixed (a shuffle buffer: rows are
   permuted within the window), so the blocks a batch needs are the few of its window;
3. length-aware batching (issue 10, item 3): the mixed order is cut into chunks of
   `mega_batches` batches, each chunk sorted by length (like `group_by_length` samplers),
   cut into batches, and the order of the batches of a chunk shuffled again, so a batch
   holds curves of similar length (little padding) and lengths still vary from step to step.

Nothing here depends on the number of DataLoader workers or ranks, so batch s is the same
however it is built, and a resumed run sees the batches an uninterrupted run would.
This module does not import torch (commands without a model stay light).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lcfm.exceptions import DataError, SchemaError
from lcfm.flat import FlatRows
from lcfm.shards import read_summaries, shard_paths

#: columns a shard must have for training (`meta` is optional)
REQUIRED = ("object_id", "survey", "time", "value", "error", "band", "value_kind", "label")
#: blocks mixed together by default (memory: this many row groups per process, ~9 MB each)
WINDOW_BLOCKS = 8
#: batches per length-sorted chunk (group_by_length samplers use ~50)
MEGA_BATCHES = 50


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{path}: unreadable Parquet shard ({exc})") from exc


def _list_lengths(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    lengths = pc.fill_null(pc.list_value_length(column), 0)
    return np.asarray(lengths, dtype=np.int64)


class ShardIndex:
    """Row groups and light-curve lengths of a dataset folder; global row i is the i-th row
    of the shards in name order (the order of `read_summaries`)."""

    def __init__(self, data_dir: Path, *, writer: bool = False):
        self.data_dir = Path(data_dir)
        self.paths = shard_paths(self.data_dir, writer=writer)
        shard, group, rows, lengths = [], [], [], []
        for s, path in enumerate(self.paths):
            handle = _open(path)
            missing = [c for c in REQUIRED if c not in handle.schema_arrow.names]
            if missing:
                raise SchemaError(f"{path}: missing column(s) {', '.join(missing)}")
            for g in range(handle.metadata.num_row_groups):
                n = handle.metadata.row_group(g).num_rows
                if n == 0:
                    continue
                try:  # float32 errors: the cheapest sequence column to decode (measured)
                    error = handle.read_row_group(g, columns=["error"]).column("error")
                except Exception as exc:
                    raise DataError(f"{path}: row group {g} unreadable ({exc})") from exc
                shard.append(s)
                group.append(g)
                rows.append(n)
                lengths.append(_list_lengths(error).astype(np.int32))
        if not rows:
            raise DataError(f"{self.data_dir}: the dataset holds no light curves")
        self.shard = np.asarray(shard, np.int32)
        self.group = np.asarray(group, np.int32)
        self.starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self.lengths = np.concatenate(lengths)  # 4 bytes a curve: 6 MB for 1.5 million

    @property
    def n_rows(self) -> int:
        return int(self.starts[-1])

    @property
    def n_blocks(self) -> int:
        return int(self.shard.size)

    def block_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, np.asarray(rows, np.int64), side="right") - 1

    def read_block(self, block: int, columns: Sequence[str] | None = None) -> pa.Table:
        path = self.paths[self.shard[block]]
        try:
            return _open(path).read_row_group(int(self.group[block]), columns=columns)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: row group {self.group[block]} unreadable ({exc})") from exc

    def summaries(self) -> pl.DataFrame:
        """object_id, survey, value_kind, label, meta of every row, plus `row` (the global
        row number): what splits and label indices are built from."""
        frame = read_summaries(self.data_dir)
        if frame.height != self.n_rows:
            raise DataError(f"{self.data_dir}: shards changed while being read "
                            f"({frame.height} summaries, {self.n_rows} indexed rows)")
        return frame.with_row_index("row")

    def fingerprint(self, rows: Sequence[int] | None = None) -> str:
        """The `lcfm.engine.checkpoint.data_fingerprint` of the dataset (or of the given
        global rows), computed by a streaming scan: point counts and sums, never the
        sequences in memory."""
        wanted = None if rows is None else np.unique(np.asarray(rows, np.int64))
        parts = []
        for block in range(self.n_blocks):  # one row group in memory at a time
            local = np.arange(self.starts[block], self.starts[block + 1])
            if wanted is not None:
                local = np.intersect1d(local, wanted)
                if local.size == 0:
                    continue
            table = self.read_block(block, ["object_id", "survey", "label", "time", "value"])
            if wanted is not None:
                table = table.take(pa.array(local - self.starts[block]))
            parts.append(pl.from_arrow(table).select(fingerprint_columns()))
        return summary_fingerprint(pl.concat(parts))


def fingerprint_columns() -> list[pl.Expr]:
    """Per light curve: object_id, survey, label, point count `n`, sums `t` of time and `v`
    of value (what `summary_fingerprint` digests)."""
    return [pl.col("object_id").cast(pl.Utf8), pl.col("survey").cast(pl.Utf8),
            pl.col("label").cast(pl.Utf8).fill_null(""),
            pl.col("time").list.len().cast(pl.Int64).alias("n"),
            pl.col("time").list.sum().cast(pl.Float64).alias("t"),
            pl.col("value").list.sum().cast(pl.Float64).alias("v")]


def summary_fingerprint(summary: pl.DataFrame) -> str:
    """SHA-256 over the `fingerprint_columns` of every light curve, in a canonical order:
    the one digest of `ShardIndex.fingerprint` and `lcfm.engine.checkpoint.data_fingerprint`."""
    summary = summary.sort(["object_id", "survey", "label", "n", "t", "v"], nulls_last=True)
    digest = hashlib.sha256()
    for column in ("object_id", "survey", "label"):
        digest.update("\0".join(summary[column].to_list()).encode() + b"\1")
    for column in ("n", "t", "v"):
        digest.update(np.ascontiguousarray(summary[column].fill_null(0).to_numpy()).tobytes())
    points = int(summary["n"].sum() or 0)
    return f"{summary.height} light curves, {points} points, sha256 {digest.hexdigest()[:16]}"


def _flatten(table: pa.Table, name: str, dtype) -> np.ndarray:
    column = table.column(name).combine_chunks()
    return np.asarray(pc.list_flatten(column).to_numpy(zero_copy_only=False), dtype=dtype)


class RowGroupCache:
    """Decodes row groups into `FlatRows` and keeps the `capacity` most recent ones, and no
    more than `max_points` observations besides the newest (shards written before row
    groups were bounded may hold one row group of 20k curves).

    Band names map to int16 codes through `band_names` (a survey's bands, in its order);
    a band a survey does not declare gets the next code in this process."""

    def __init__(self, index: ShardIndex, band_names: Sequence[str] = (), capacity: int = 16,
                 max_points: int = 8_000_000):
        self.index, self.capacity, self.max_points = index, max(1, capacity), max_points
        self.band_names = list(band_names)
        self._codes = {b: i for i, b in enumerate(self.band_names)}
        self._blocks: OrderedDict[int, FlatRows] = OrderedDict()

    def block(self, block: int) -> FlatRows:
        if block in self._blocks:
            self._blocks.move_to_end(block)
            return self._blocks[block]
        flat = self._decode(block)
        self._blocks[block] = flat
        while len(self._blocks) > 1 and (
                len(self._blocks) > self.capacity
                or sum(int(b.offsets[-1]) for b in self._blocks.values()) > self.max_points):
            self._blocks.popitem(last=False)
        return flat

    def _band_codes(self, column: pa.ChunkedArray) -> np.ndarray:
        values = pc.list_flatten(column.combine_chunks())
        if not pa.types.is_dictionary(values.type):
            values = pc.dictionary_encode(values)
        for name in values.dictionary.to_pylist():
            if name not in self._codes:
                self._codes[name] = len(self.band_names)
                self.band_names.append(name)
        table = np.array([self._codes[n] for n in values.dictionary.to_pylist()], np.int16)
        indices = values.indices.to_numpy(zero_copy_only=False)
        return table[indices] if indices.size else np.zeros(0, np.int16)

    def _decode(self, block: int) -> FlatRows:
        index = self.index
        path = index.paths[index.shard[block]]
        table = index.read_block(block)
        lengths = _list_lengths(table.column("time"))
        for name in ("value", "error", "band"):
            other = _list_lengths(table.column(name))
            bad = np.flatnonzero(other != lengths)
            if bad.size:
                raise DataError(f"{path}: row {int(index.starts[block] + bad[0])} has "
                                f"{int(lengths[bad[0]])} times but {int(other[bad[0]])} "
                                f"{name} entries")
        meta = (table.column("meta").to_pylist() if "meta" in table.column_names
                else [{} for _ in range(table.num_rows)])
        return FlatRows(
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            time=_flatten(table, "time", np.float64),
            value=_flatten(table, "value", np.float32),
            error=_flatten(table, "error", np.float32),
            band=self._band_codes(table.column("band")),
            band_names=tuple(self.band_names),
            object_id=[str(x) for x in table.column("object_id").to_pylist()],
            label=table.column("label").to_pylist(),
            value_kind=table.column("value_kind").to_pylist(),
            survey=table.column("survey").to_pylist(),
            meta=[m or {} for m in meta])

    def take(self, rows: Sequence[int]) -> FlatRows:
        """The light curves at global `rows`, in that order, as one FlatRows."""
        rows = np.asarray(rows, np.int64)
        if rows.size == 0:
            raise DataError("no rows requested")
        blocks = self.index.block_of(rows)
        parts, positions = [], []
        for block in np.unique(blocks):  # each needed block decoded (or found) once
            at = np.flatnonzero(blocks == block)
            local = rows[at] - self.index.starts[block]
            parts.append(self.block(int(block)).take(local))
            positions.append(at)
        flat = concat(parts, tuple(self.band_names))
        order = np.empty(rows.size, np.int64)
        order[np.concatenate(positions)] = np.arange(rows.size)
        return flat.take(order)


def concat(parts: Sequence[FlatRows], band_names: tuple[str, ...]) -> FlatRows:
    """One FlatRows from several whose codes index (a prefix of) `band_names`."""
    if len(parts) == 1:
        part = parts[0]
        return FlatRows(**{**part.__dict__, "band_names": band_names})
    lengths = np.concatenate([p.lengths for p in parts])
    keys = set().union(*(p.extras for p in parts))
    return FlatRows(
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        time=np.concatenate([p.time for p in parts]),
        value=np.concatenate([p.value for p in parts]),
        error=np.concatenate([p.error for p in parts]),
        band=np.concatenate([p.band for p in parts]), band_names=band_names,
        object_id=[x for p in parts for x in p.object_id],
        label=[x for p in parts for x in p.label],
        value_kind=[x for p in parts for x in p.value_kind],
        survey=[x for p in parts for x in p.survey],
        meta=[x for p in parts for x in (p.meta or [{}] * len(p))],
        extras={k: np.concatenate([p.extras[k] for p in parts]) for k in keys})


@dataclass
class EpochPlan:
    """Which global rows form each step's (global) batch; see the module docstring.

    `rows`: the selected global rows (a training split), `lengths`: their observation
    counts (same order). `shuffle=False` keeps shard order (evaluation); `bucket` sorts by
    length within chunks of `mega_batches` batches."""

    rows: np.ndarray
    lengths: np.ndarray
    blocks: np.ndarray  # block of every selected row
    batch_size: int
    seed: int
    shuffle: bool = True
    bucket: bool = True
    window_blocks: int = WINDOW_BLOCKS
    mega_batches: int = MEGA_BATCHES
    drop_last: bool = False

    @classmethod
    def for_rows(cls, index: ShardIndex, rows: Sequence[int], batch_size: int, seed: int,
                 **kwargs) -> EpochPlan:
        rows = np.sort(np.asarray(rows, np.int64))
        if rows.size == 0:
            raise DataError(f"{index.data_dir}: no light curves selected")
        if batch_size < 1:
            raise DataError(f"batch size must be >= 1, got {batch_size}")
        return cls(rows=rows, lengths=index.lengths[rows].astype(np.int64),
                   blocks=index.block_of(rows), batch_size=batch_size, seed=seed, **kwargs)

    def __post_init__(self):
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def n_rows(self) -> int:
        return int(self.rows.size)

    @property
    def batches_per_epoch(self) -> int:
        full, rest = divmod(self.n_rows, self.batch_size)
        return max(1, full + (1 if rest and not self.drop_last else 0))

    def epoch_of(self, step: int) -> int:
        return step // self.batches_per_epoch

    def _positions(self, epoch: int) -> np.ndarray:
        """Positions into `rows` in this epoch's order (before cutting into batches)."""
        n = self.n_rows
        if not self.shuffle:
            order = np.arange(n)
        else:
            rng = np.random.default_rng([self.seed, epoch])
            bounds = np.flatnonzero(np.diff(self.blocks)) + 1
            members = np.split(np.arange(n), bounds)  # rows are sorted: blocks contiguous
            block_order = rng.permutation(len(members))
            pieces = []
            for w in range(0, len(members), self.window_blocks):
                window = np.concatenate([members[b] for b in block_order[w:w + self.window_blocks]])
                pieces.append(window[rng.permutation(window.size)])
            order = np.concatenate(pieces)
        if self.bucket:
            chunk = self.mega_batches * self.batch_size
            for start in range(0, n, chunk):
                piece = order[start:start + chunk]
                order[start:start + chunk] = piece[np.argsort(self.lengths[piece],
                                                              kind="stable")]
        return order

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cached is None or self._cached[0] != epoch:
            order = self._positions(epoch)
            batch_order = np.arange(self.batches_per_epoch)
            if self.shuffle and self.bucket:
                # sorted chunks would otherwise feed short curves, then long ones, in turn
                rng = np.random.default_rng([self.seed, epoch, 1])
                for start in range(0, batch_order.size, self.mega_batches):
                    part = batch_order[start:start + self.mega_batches]
                    batch_order[start:start + self.mega_batches] = part[rng.permutation(
                        part.size)]
            self._cached = (epoch, order, batch_order)
        return self._cached[1], self._cached[2]

    def batch_rows(self, step: int) -> np.ndarray:
        """Global rows of the batch of global step `step` (all ranks together)."""
        epoch, position = divmod(step, self.batches_per_epoch)
        order, batch_order = self._epoch(epoch)
        b = int(batch_order[position])
        return self.rows[order[b * self.batch_size:(b + 1) * self.batch_size]]


def padding_fraction(lengths: Sequence[np.ndarray], window: int | None = None) -> float:
    """Fraction of padded positions over batches padded to their longest member (capped
    at `window` observations, for models with a fixed window)."""
    padded = used = 0
    for batch in lengths:
        batch = np.asarray(batch, np.int64)
        if window:
            batch = np.minimum(batch, window)
        padded += int(batch.max()) * batch.size
        used += int(batch.sum())
    return 1.0 - used / padded if padded else 0.0


def value_sample(index: ShardIndex, rows: Sequence[int], max_points: int = 2_000_000,
                 seed: int = 0, band_names: Sequence[str] = ()) -> FlatRows:
    """The light curves of a deterministic sample of whole row groups among `rows`, up to
    about `max_points` observations: what data-dependent configuration (ATCAT's mixture
    components from flux quantiles) is fitted on without reading the whole corpus."""
    rows = np.sort(np.asarray(rows, np.int64))
    blocks = index.block_of(rows)
    cache = RowGroupCache(index, band_names, capacity=1)
    parts, points = [], 0
    for block in np.random.default_rng([seed, 5]).permutation(np.unique(blocks)):
        local = rows[blocks == block] - index.starts[block]
        part = cache.block(int(block)).take(local)
        parts.append(part)
        points += int(part.offsets[-1])
        if points >= max_points:
            break
    return concat(parts, tuple(cache.band_names))


def read_frame(index: ShardIndex, rows: Sequence[int]) -> pl.DataFrame:
    """The canonical frame of the given global rows, in global order, read row group by
    row group (for code that still works on frames: validation and test predictions)."""
    rows = np.sort(np.asarray(rows, np.int64))
    blocks = index.block_of(rows)
    tables = []
    for block in np.unique(blocks):
        local = rows[blocks == block] - index.starts[block]
        tables.append(index.read_block(int(block)).take(pa.array(local)))
    if not tables:
        return pl.DataFrame()
    try:
        return pl.concat([pl.from_arrow(t) for t in tables], how="diagonal_relaxed")
    except Exception as exc:
        raise SchemaError(f"shards of {index.data_dir} do not share one schema ({exc})") from exc


def with_extras(flat: FlatRows, rows: np.ndarray, extras: Mapping[str, np.ndarray]
                ) -> FlatRows:
    """Attach per-row vectors (indexed by global row) as FlatRows extras and as the row's
    `meta[name]` (where collators of models with a metadata token read them)."""
    for name, table in extras.items():
        values = table[rows]
        flat.extras[name] = values
        flat.meta = [{**(m or {}), name: v} for m, v in zip(flat.meta or [{}] * len(flat),
                                                            values, strict=True)]
    return flat


__all__ = ["EpochPlan", "RowGroupCache", "ShardIndex", "concat", "padding_fraction",
           "read_frame", "value_sample", "with_extras"]
