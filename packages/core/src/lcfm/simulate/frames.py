"""Rows -> canonical Polars frame without per-element Python conversion.

`lcfm.schema.make_frame` turns every array into a Python list, about 8 ms per Kepler
quarter; simulations of millions of light curves need the sequence columns built straight
from the concatenated numpy arrays and their offsets (Arrow large lists, zero copy).
`SimulationShardWriter` is the `ShardWriter` that uses this path; its shards are validated
by `lcfm.schema.conform` like any other.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from lcfm.schema import conform, make_frame
from lcfm.shards import ShardWriter, write_frame_atomic


def _offsets(arrays: list[np.ndarray]) -> np.ndarray:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([a.size for a in arrays], out=offsets[1:])
    return offsets


def _list_column(arrays: list[np.ndarray], dtype) -> pl.Series:
    offsets = _offsets(arrays)  # per column, so a length mismatch reaches validation
    flat = np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
    return pl.from_arrow(pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)))


def _band_column(bands: list[np.ndarray]) -> pl.Series:
    """List(Categorical) through an Arrow dictionary: each band name is encoded once, and a
    single-band row (all of Kepler, TESS, MACHO) costs one comparison pass, no copy."""
    offsets = _offsets(bands)
    names: dict[str, int] = {}
    codes = []
    for band in bands:
        if band.size == 0:
            codes.append(np.zeros(0, dtype=np.int32))
            continue
        first = str(band[0])
        code = names.setdefault(first, len(names))
        if (band == band[0]).all():
            codes.append(np.full(band.size, code, dtype=np.int32))
            continue
        unique, inverse = np.unique(band, return_inverse=True)
        lookup = np.array([names.setdefault(str(u), len(names)) for u in unique], np.int32)
        codes.append(lookup[inverse])
    flat = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32)
    dictionary = pa.DictionaryArray.from_arrays(pa.array(flat), pa.array(list(names),
                                                                         pa.string()))
    return pl.from_arrow(pa.LargeListArray.from_arrays(pa.array(offsets), dictionary))


def rows_to_frame(rows: list[dict]) -> pl.DataFrame:
    """Canonical frame of rows (not yet validated: pass it through `conform`)."""
    if not rows:
        return make_frame(rows)
    frame = pl.DataFrame({
        "object_id": pl.Series([r["object_id"] for r in rows], dtype=pl.String),
        "survey": pl.Series([r["survey"] for r in rows], dtype=pl.String),
        "time": _list_column([np.asarray(r["time"]) for r in rows], np.float64),
        "value": _list_column([np.asarray(r["value"]) for r in rows], np.float32),
        "error": _list_column([np.asarray(r["error"]) for r in rows], np.float32),
        "band": _band_column([np.asarray(r["band"]) for r in rows]),
        "value_kind": pl.Series([r["value_kind"] for r in rows], dtype=pl.String),
        "label": pl.Series([r.get("label") for r in rows], dtype=pl.String),
    })
    metas = [r.get("meta") or {} for r in rows]
    meta = pl.Series("meta", metas) if any(metas) else pl.Series("meta", [{"_": None}] * len(rows))
    return frame.with_columns(meta)


class SimulationShardWriter(ShardWriter):
    """`ShardWriter` whose shards are built with `rows_to_frame` (same names, atomic writes
    and validation) and that also flushes once `max_points` observations are buffered, so
    memory stays bounded for long light curves (a Kepler quarter holds ~4,300 points)."""

    def __init__(self, output_dir, rows_per_shard: int = 20_000, max_points: int = 5_000_000):
        super().__init__(output_dir, rows_per_shard)
        self.max_points = max_points
        self._points = 0

    def add(self, row: dict) -> None:
        self._points += len(row["time"])
        super().add(row)
        if self._points >= self.max_points:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        path = self.output_dir / f"part-{len(self.paths):05d}.parquet"
        frame = conform(rows_to_frame(self._rows), source=str(path))
        write_frame_atomic(frame, path)
        self.paths.append(path)
        self._rows = []
        self._points = 0
