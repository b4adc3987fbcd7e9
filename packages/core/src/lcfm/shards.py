"""Parquet shards of canonical light curves (zstd), written atomically.

A dataset folder holds `part-00000.parquet`, `part-00001.parquet`, ... and, from ingest,
`report.json`. Shards are written to a temporary name in the same folder and renamed, so
a reader never sees a half-written shard; they get the usual file mode (0644 under umask
022). While ingest or simulate writes a folder it carries the marker of
`lcfm.dataset_lock`, and every reader here refuses it.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from lcfm.dataset_lock import SHARD_GLOB, atomic_file, refuse_if_being_written
from lcfm.exceptions import DataError, SchemaError
from lcfm.schema import conform, make_frame

__all__ = ["ROW_GROUP_POINTS", "SHARD_GLOB", "ShardWriter", "load_dataset", "read_shards",
           "read_summaries", "row_group_rows", "scan_shards", "shard_paths",
           "write_frame_atomic"]


#: observations per Parquet row group: the unit the streaming data path (`lcfm.stream`)
#: reads and caches, so it bounds the memory of one cached block (~9 MB decoded)
ROW_GROUP_POINTS = 500_000
#: rows per row group stay within these bounds (issue 10: "row groups of ~1-4k rows"); few
#: rows for long curves (a Kepler quarter), many for short ones (ELAsTiCC alerts)
ROW_GROUP_ROWS = (64, 4096)


def row_group_rows(frame: pl.DataFrame) -> int:
    """Rows per row group for a frame of light curves: about `ROW_GROUP_POINTS`
    observations, clipped to `ROW_GROUP_ROWS`."""
    if "time" not in frame.columns or frame.height == 0:
        return ROW_GROUP_ROWS[1]
    mean = max(1.0, float(frame["time"].list.len().mean() or 1.0))
    return int(min(max(ROW_GROUP_POINTS / mean, ROW_GROUP_ROWS[0]), ROW_GROUP_ROWS[1]))


def write_frame_atomic(frame: pl.DataFrame, path: Path) -> Path:
    with atomic_file(path) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True,
                            row_group_size=row_group_rows(frame))
    return Path(path)


class ShardWriter:
    """Buffers rows and writes a validated shard every `rows_per_shard` rows, or sooner
    once `max_points` observations are buffered, so memory stays bounded for long light
    curves (a Kepler quarter holds ~4,300 points).

    Rows added between `begin()` and `commit()` belong to one input file: `rollback()`
    forgets them (ingest rejects a file that fails half-way without keeping its first
    rows). When they outgrow the buffer they are spilled to hidden `.pending-*.parquet`
    shards that `commit` renames into place and `rollback` deletes.
    """

    def __init__(self, output_dir: Path, rows_per_shard: int = 20_000,
                 max_points: int = 5_000_000):
        self.output_dir = Path(output_dir)
        self.rows_per_shard, self.max_points = rows_per_shard, max_points
        self._points = 0
        self.paths: list[Path] = []
        self._rows: list[dict] = []
        self._pending: list[dict] | None = None  # None: no transaction open
        self._pending_points = 0
        self._pending_paths: list[Path] = []
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stale = sorted(self.output_dir.glob(SHARD_GLOB))
        if stale:
            raise DataError(f"{self.output_dir}: already holds {len(stale)} shard(s); "
                            "choose an empty output folder")

    def _full(self, rows: int, points: int) -> bool:
        return rows >= self.rows_per_shard or points >= self.max_points

    def add(self, row: dict) -> None:
        if self._pending is None:
            self._rows.append(row)
            self._points += len(row["time"])
            if self._full(len(self._rows), self._points):
                self.flush()
            return
        self._pending.append(row)
        self._pending_points += len(row["time"])
        if self._full(len(self._rows) + len(self._pending), self._points + self._pending_points):
            self.flush()  # the committed rows first, so a pending shard holds one file's rows
            if self._full(len(self._pending), self._pending_points):
                path = self.output_dir / f".pending-{len(self._pending_paths):05d}.parquet"
                self._write(self._pending, path)
                self._pending_paths.append(path)
                self._pending, self._pending_points = [], 0

    def begin(self) -> None:
        """Start the rows of one input file."""
        if self._pending is not None:
            raise RuntimeError("ShardWriter.begin: a transaction is already open")
        self._pending, self._pending_points, self._pending_paths = [], 0, []

    def commit(self) -> None:
        """Keep the rows added since `begin`."""
        for pending in self._pending_paths:
            path = self._next_path()
            os.replace(pending, path)
            self.paths.append(path)
        rows = self._pending or []
        self._pending, self._pending_points, self._pending_paths = None, 0, []
        for row in rows:  # through add(): rolls shards at the usual size
            self.add(row)

    def rollback(self) -> None:
        """Forget the rows added since `begin`."""
        for pending in self._pending_paths:
            pending.unlink(missing_ok=True)
        self._pending, self._pending_points, self._pending_paths = None, 0, []

    def _next_path(self) -> Path:
        return self.output_dir / f"part-{len(self.paths):05d}.parquet"

    def _write(self, rows: list[dict], path: Path) -> None:
        write_frame_atomic(conform(make_frame(rows), source=str(path)), path)

    def flush(self) -> None:
        if not self._rows:
            return
        path = self._next_path()
        self._write(self._rows, path)
        self.paths.append(path)
        self._rows, self._points = [], 0

    def close(self) -> list[Path]:
        if self._pending is not None:
            self.commit()
        self.flush()
        return self.paths

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.rollback()


def shard_paths(data_dir: Path, *, writer: bool = False) -> list[Path]:
    """The shards of a dataset folder (or one Parquet file), refusing a folder that is
    being written or was left by an interrupted run (`writer=True`: the run writing the
    folder reads its own shards)."""
    data_dir = Path(data_dir)
    if data_dir.is_file() and data_dir.suffix == ".parquet":
        if not writer:
            refuse_if_being_written(data_dir.parent)
        return [data_dir]
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such dataset folder")
    if not writer:
        refuse_if_being_written(data_dir)
    paths = sorted(data_dir.glob(SHARD_GLOB)) or sorted(data_dir.glob("*.parquet"))
    if not paths:
        raise DataError(f"{data_dir}: holds no Parquet shards ({SHARD_GLOB})")
    return paths


def read_shards(data_dir: Path, *, validate: bool = True) -> pl.DataFrame:
    """All shards of a dataset folder as one canonical frame."""
    frames = []
    for path in shard_paths(data_dir):
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises several types for a corrupt file
            raise DataError(f"{path}: unreadable Parquet shard ({exc})") from exc
        frames.append(conform(frame, source=str(path)) if validate else frame)
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except Exception as exc:
        raise SchemaError(f"shards of {data_dir} do not share one schema ({exc})") from exc


def scan_shards(data_dir: Path, *, writer: bool = False) -> pl.LazyFrame:
    """A lazy frame over the shards, for data larger than memory."""
    return pl.scan_parquet([str(p) for p in shard_paths(data_dir, writer=writer)])


def read_summaries(data_dir: Path, *, writer: bool = False) -> pl.DataFrame:
    """The rows of a dataset without their observation sequences (object_id, survey,
    value_kind, label, meta): small even for millions of light curves."""
    columns = ["object_id", "survey", "value_kind", "label", "meta"]
    # shard by shard, then a relaxed concat: one lazy scan over all shards fails when a
    # meta field is all-null (type Null) in one shard and typed in another
    frames = [pl.read_parquet(path, columns=columns)
              for path in shard_paths(data_dir, writer=writer)]
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except Exception as exc:
        raise SchemaError(f"shards of {data_dir} do not share one schema ({exc})") from exc


def load_dataset(data_dir: Path, *, streaming: bool = False, split: str = "train"):
    """The shards as a Hugging Face `datasets.Dataset` (or `IterableDataset` when streaming)."""
    import datasets

    files = [str(p) for p in shard_paths(data_dir)]
    return datasets.load_dataset("parquet", data_files={split: files}, split=split,
                                 streaming=streaming)
