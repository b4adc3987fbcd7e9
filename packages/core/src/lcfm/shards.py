"""Parquet shards of canonical light curves (zstd), written atomically.

A dataset folder holds `part-00000.parquet`, `part-00001.parquet`, ... and, from ingest,
`report.json`. Shards are written to a temporary name in the same folder and renamed, so
a reader never sees a half-written shard.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

from lcfm.exceptions import DataError, SchemaError
from lcfm.schema import conform, make_frame

SHARD_GLOB = "part-*.parquet"


def write_frame_atomic(frame: pl.DataFrame, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class ShardWriter:
    """Buffers rows and writes a validated shard every `rows_per_shard` rows, or sooner
    once `max_points` observations are buffered, so memory stays bounded for long light
    curves (a Kepler quarter holds ~4,300 points)."""

    def __init__(self, output_dir: Path, rows_per_shard: int = 20_000,
                 max_points: int = 5_000_000):
        self.output_dir = Path(output_dir)
        self.rows_per_shard, self.max_points = rows_per_shard, max_points
        self._points = 0
        self.paths: list[Path] = []
        self._rows: list[dict] = []
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stale = sorted(self.output_dir.glob(SHARD_GLOB))
        if stale:
            raise DataError(f"{self.output_dir}: already holds {len(stale)} shard(s); "
                            "choose an empty output folder")

    def add(self, row: dict) -> None:
        self._rows.append(row)
        self._points += len(row["time"])
        if len(self._rows) >= self.rows_per_shard or self._points >= self.max_points:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        path = self.output_dir / f"part-{len(self.paths):05d}.parquet"
        frame = conform(make_frame(self._rows), source=str(path))
        write_frame_atomic(frame, path)
        self.paths.append(path)
        self._rows, self._points = [], 0

    def close(self) -> list[Path]:
        self.flush()
        return self.paths

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()


def shard_paths(data_dir: Path) -> list[Path]:
    data_dir = Path(data_dir)
    if data_dir.is_file() and data_dir.suffix == ".parquet":
        return [data_dir]
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such dataset folder")
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


def scan_shards(data_dir: Path) -> pl.LazyFrame:
    """A lazy frame over the shards, for data larger than memory."""
    return pl.scan_parquet([str(p) for p in shard_paths(data_dir)])


def read_summaries(data_dir: Path) -> pl.DataFrame:
    """The rows of a dataset without their observation sequences (object_id, survey,
    value_kind, label, meta): small even for millions of light curves."""
    return scan_shards(data_dir).select(
        "object_id", "survey", "value_kind", "label", "meta").collect()


def load_dataset(data_dir: Path, *, streaming: bool = False, split: str = "train"):
    """The shards as a Hugging Face `datasets.Dataset` (or `IterableDataset` when streaming)."""
    import datasets

    files = [str(p) for p in shard_paths(data_dir)]
    return datasets.load_dataset("parquet", data_files={split: files}, split=split,
                                 streaming=streaming)
