"""The canonical light-curve table (DESIGN.md, "The canonical light curve").

One row per light curve (object x observing segment). Multi-band surveys keep all bands in
one interleaved, time-sorted sequence. `validate` checks a Polars frame against the
contract and names the first offending column and row.
"""

from __future__ import annotations

import numpy as np
import polars as pl

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


def make_frame(rows: list[dict]) -> pl.DataFrame:
    """Build a canonical frame from row dicts (numpy arrays or lists for the sequences)."""
    if not rows:
        return empty_frame()
    data: dict[str, list] = {c: [] for c in COLUMNS}
    for row in rows:
        for column in COLUMNS:
            value = row.get(column)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            data[column].append(value)
    metas = data.pop("meta")
    frame = pl.DataFrame(data, schema={**CANONICAL_SCHEMA})
    meta = pl.Series("meta", [m or {} for m in metas])
    if not isinstance(meta.dtype, pl.Struct) or not meta.dtype.fields:
        # Parquet cannot store a struct without fields: keep one null placeholder field
        meta = pl.Series("meta", [{"_": None}] * len(metas))
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
