"""Bounded-memory grouping of raw rows that belong to one light curve (issue 9, item 6:
"Alerts of one object across files are merged into one light curve before
de-duplication").

Rows of "merge" readers are buffered and, once they hold more than `max_points`
observations, spilled to Parquet buckets partitioned by a hash of their light-curve key, in
the run's scratch folder (a corpus that fits in the buffer never touches the disk). Once
every file is read, each bucket is loaded on its own and its rows grouped by key, so memory
holds one bucket (about 1/`n_buckets` of the merge rows) rather than the corpus. Rows of a
file that fails half-way are dropped: still buffered ones at once, already spilled ones
when a bucket is read back (by file index).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.schema import make_frame


def key_digest(key: tuple) -> bytes:
    """A stable 16-byte digest of a light-curve key (`SurveyPlugin.segment_key`): the same
    across processes, unlike `hash()`, and small enough to keep one per light curve."""
    return hashlib.blake2b(repr(key).encode(), digest_size=16).digest()


def frame_rows(frame: pl.DataFrame) -> list[dict]:
    """Row dicts (numpy sequences) of a spilled frame (`meta` as JSON in `_meta`), without
    element-by-element conversion of the sequences."""
    lengths = frame["time"].list.len().to_numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    time = frame["time"].explode().to_numpy()
    value = frame["value"].explode().to_numpy()
    error = frame["error"].explode().to_numpy()
    band = frame["band"].explode().cast(pl.String).to_numpy()
    rows = []
    for i, (object_id, survey, kind, label, meta) in enumerate(zip(
            frame["object_id"], frame["survey"], frame["value_kind"], frame["label"],
            frame["_meta"], strict=True)):
        a, b = offsets[i], offsets[i + 1]
        meta = json.loads(meta)
        rows.append({"object_id": object_id, "survey": survey, "time": time[a:b],
                     "value": value[a:b], "error": error[a:b], "band": band[a:b].astype(str),
                     "value_kind": kind, "label": label, "meta": meta})
    return rows


class MergeSpill:
    """Raw rows grouped by light-curve key through hash-partitioned Parquet buckets."""

    def __init__(self, work_dir: Path, n_buckets: int = 64, max_points: int = 2_000_000):
        self.work_dir = Path(work_dir) / "merge"
        self.n_buckets, self.max_points = n_buckets, max_points
        self._buffers: dict[int, list[tuple[dict, bytes, int, int]]] = {}
        self._points = 0
        self._seq = 0
        self._pieces = 0
        self._failed_files: set[int] = set()

    def add(self, row: dict, digest: bytes, file_index: int) -> None:
        bucket = int.from_bytes(digest[:4], "little") % self.n_buckets
        self._buffers.setdefault(bucket, []).append((row, digest, file_index, self._seq))
        self._seq += 1
        self._points += len(row["time"])
        if self._points >= self.max_points:
            self._spill()

    def drop_file(self, file_index: int) -> None:
        """Forget the rows of a file that failed half-way."""
        self._failed_files.add(file_index)
        for bucket, items in self._buffers.items():
            self._buffers[bucket] = [it for it in items if it[2] != file_index]
        self._points = sum(len(it[0]["time"]) for items in self._buffers.values()
                           for it in items)

    def _spill(self) -> None:
        for bucket, items in self._buffers.items():
            if not items:
                continue
            folder = self.work_dir / f"bucket-{bucket:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            # meta as JSON text: its fields differ between readers and files, which a
            # Parquet struct column could not hold across pieces
            frame = make_frame([it[0] for it in items]).drop("meta").with_columns(
                pl.Series("_meta", [json.dumps(it[0].get("meta") or {}, default=_json_value)
                                    for it in items], dtype=pl.String),
                pl.Series("_key", [it[1] for it in items], dtype=pl.Binary),
                pl.Series("_file", [it[2] for it in items], dtype=pl.Int64),
                pl.Series("_seq", [it[3] for it in items], dtype=pl.Int64))
            frame.write_parquet(folder / f"piece-{self._pieces:06d}.parquet")
            self._pieces += 1
        self._buffers, self._points = {}, 0

    def groups(self) -> Iterator[list[dict]]:
        """Lists of rows sharing a key, bucket by bucket, each list in reading order and
        the lists in order of their first row."""
        if self._pieces == 0:  # everything still fits in memory: no disk round trip
            items = sorted((it for its in self._buffers.values() for it in its),
                           key=lambda it: it[3])
            self._buffers, self._points = {}, 0
            in_memory: dict[bytes, list[dict]] = {}
            for row, digest, _file, _seq in items:
                in_memory.setdefault(digest, []).append(row)
            yield from in_memory.values()
            return
        self._spill()
        for folder in sorted(self.work_dir.glob("bucket-*")):
            frame = pl.concat([pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))],
                              how="diagonal_relaxed")
            if self._failed_files:
                frame = frame.filter(~pl.col("_file").is_in(sorted(self._failed_files)))
            frame = frame.sort("_seq")
            rows = frame_rows(frame)
            by_key: dict[bytes, list[dict]] = {}
            for key, row in zip(frame["_key"], rows, strict=True):
                by_key.setdefault(key, []).append(row)
            yield from by_key.values()


def _json_value(value):
    """numpy scalars (and anything else) in meta, for json.dumps."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
