"""The canonical light-curve table (DESIGN.md, "The canonical light curve").

One row per light curve (object x observing segment). Multi-band surveys keep all bands in
one interleaved, time-sorted sequence. `validate` checks a Polars frame against the
contract and names the first offending column and row.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from lcfm.exceptions import SchemaError

#: Column -> Polars dtype. `meta` is a Struct whose fields each survey chooses.
CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    "object_id": pl.String(),
    "survey": pl.String(),
    "time": pl.List(pl.Float64()),
    "value": pl.List(pl.Float32()),
    "error": pl.List(pl.Float32()),
    "band": pl.List(pl.Categorical()),
    "value_kind": pl.String(),
    "label": pl.String(),
}
COLUMNS = [*CANONICAL_SCHEMA, "meta"]
VALUE_KINDS = ("flux", "mag")
_SEQUENCE_COLUMNS = ("time", "value", "error", "band")


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
    single-band row costs one comparison pass."""
    offsets = _offsets(bands)
    names: dict[str, int] = {}
    codes = []
    for band in bands:
        if band.size == 0:
            codes.append(np.zeros(0, dtype=np.int32))
            continue
        code = names.setdefault(str(band[0]), len(names))
        if (band == band[0]).all():
            codes.append(np.full(band.size, code, dtype=np.int32))
            continue
        unique, inverse = np.unique(band.astype(str), return_inverse=True)
        lookup = np.array([names.setdefault(str(u), len(names)) for u in unique], np.int32)
        codes.append(lookup[inverse])
    flat = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32)
    dictionary = pa.DictionaryArray.from_arrays(pa.array(flat), pa.array(list(names),
                                                                         pa.string()))
    return pl.from_arrow(pa.LargeListArray.from_arrays(pa.array(offsets), dictionary))


def make_frame(rows: list[dict]) -> pl.DataFrame:
    """A canonical frame from row dicts (numpy arrays or lists for the sequences), built
    from concatenated arrays and offsets rather than element by element (STACK-NOTES: per
    element conversion costs milliseconds per Kepler quarter). Not yet validated: pass it
    through `conform`."""
    if not rows:
        return empty_frame()
    frame = pl.DataFrame({
        "object_id": pl.Series([r["object_id"] for r in rows], dtype=pl.String),
        "survey": pl.Series([r["survey"] for r in rows], dtype=pl.String),
        "time": _list_column([np.asarray(r["time"]) for r in rows], np.float64),
        "value": _list_column([np.asarray(r["value"]) for r in rows], np.float32),
        "error": _list_column([np.asarray(r["error"]) for r in rows], np.float32),
        "band": _band_column([np.asarray(r["band"]) for r in rows]),
        "value_kind": pl.Series([r.get("value_kind") for r in rows], dtype=pl.String),
        "label": pl.Series([r.get("label") for r in rows], dtype=pl.String),
    })
    meta = pl.Series("meta", [r.get("meta") or {} for r in rows])
    if not isinstance(meta.dtype, pl.Struct) or not meta.dtype.fields:
        # Parquet cannot store a struct without fields: keep one null placeholder field
        meta = pl.Series("meta", [{"_": None}] * len(rows))
    return frame.with_columns(meta)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema={**CANONICAL_SCHEMA, "meta": pl.Struct({"_": pl.Null()})})


def conform(frame: pl.DataFrame, *, source: str | None = None) -> pl.DataFrame:
    """Cast a frame to the canonical dtypes (e.g. list[str] -> list[cat]) and validate it."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"missing column(s) {missing}", column=missing[0], source=source)
    try:
        frame = frame.select(
            *(pl.col(c).cast(dtype) for c, dtype in CANONICAL_SCHEMA.items()), pl.col("meta")
        )
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise SchemaError(f"cannot cast to the canonical types: {exc}", source=source) from exc
    validate(frame, source=source)
    return frame


def _first_bad(mask: pl.Series) -> int | None:
    hits = mask.fill_null(True).arg_true()
    return int(hits[0]) if len(hits) else None


def validate(frame: pl.DataFrame, *, source: str | None = None) -> None:
    """Raise `SchemaError` naming the first offending column and row, else return None."""
    for column, dtype in CANONICAL_SCHEMA.items():
        if column not in frame.columns:
            raise SchemaError("missing column", column=column, source=source)
        if frame.schema[column] != dtype:
            raise SchemaError(f"has type {frame.schema[column]}, expected {dtype}",
                              column=column, source=source)
    if "meta" not in frame.columns or not isinstance(frame.schema["meta"], pl.Struct):
        raise SchemaError("missing or not a struct", column="meta", source=source)
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise SchemaError(f"unexpected column(s) {extra}", column=extra[0], source=source)
    if frame.height == 0:
        return
    ids = frame["object_id"]

    def fail(problem: str, column: str, row: int):
        raise SchemaError(problem, column=column, row=row, object_id=ids[row], source=source)

    for column in ("object_id", "survey", "value_kind"):
        row = _first_bad(frame[column].is_null() | (frame[column].str.len_chars() == 0))
        if row is not None:
            fail("is null or empty", column, row)
    row = _first_bad(~frame["value_kind"].is_in(VALUE_KINDS))
    if row is not None:
        fail(f"is {frame['value_kind'][row]!r}, expected one of {VALUE_KINDS}", "value_kind", row)
    lengths = frame["time"].list.len()
    row = _first_bad(lengths == 0)
    if row is not None:
        fail("empty light curve (no observations)", "time", row)
    for column in _SEQUENCE_COLUMNS[1:]:
        row = _first_bad(frame[column].list.len() != lengths)
        if row is not None:
            fail(f"has {frame[column].list.len()[row]} entries but time has {lengths[row]}",
                 column, row)
    for column in ("time", "value", "error"):
        flat = frame[column].explode()
        bad = flat.is_null() | ~flat.is_finite()
        if bad.any():
            fail("contains a null, NaN or infinite value", column, _row_of(bad, lengths))
    flat_err = frame["error"].explode()
    if (flat_err < 0).any():
        fail("contains a negative uncertainty", "error", _row_of(flat_err < 0, lengths))
    row = _first_bad(frame["band"].list.eval(pl.element().is_null().any()).list.first())
    if row is not None:
        fail("contains a null band", "band", row)
    unsorted = frame["time"].list.eval(pl.element().diff().lt(0).any()).list.first()
    row = _first_bad(unsorted)
    if row is not None:
        fail("is not sorted in increasing order", "time", row)


def _row_of(flat_mask: pl.Series, lengths: pl.Series) -> int:
    """Map the first True of an exploded column back to its row index."""
    position = int(flat_mask.arg_true()[0])
    ends = np.cumsum(lengths.to_numpy())
    return int(np.searchsorted(ends, position, side="right"))
