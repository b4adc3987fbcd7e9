import numpy as np
import polars as pl
import pytest
from lcfm.exceptions import SchemaError
from lcfm.schema import CANONICAL_SCHEMA, conform, make_frame, validate


def row(object_id="a", n=5, **overrides):
    base = {
        "object_id": object_id, "survey": "test", "time": np.arange(n, dtype=float),
        "value": np.ones(n, dtype=np.float32), "error": np.full(n, 0.1, dtype=np.float32),
        "band": np.array(["g"] * n), "value_kind": "mag", "label": None, "meta": {"ra": 1.0},
    }
    base.update(overrides)
    return base


def test_make_frame_has_canonical_types():
    frame = make_frame([row("a"), row("b", n=3)])
    for column, dtype in CANONICAL_SCHEMA.items():
        assert frame.schema[column] == dtype, column
    assert isinstance(frame.schema["meta"], pl.Struct)
    validate(frame)
    assert frame["time"].list.len().to_list() == [5, 3]


@pytest.mark.parametrize(("bad", "column", "fragment"), [
    ({"time": np.array([0.0, 2.0, 1.0])}, "time", "not sorted"),
    ({"value": np.array([1, np.nan, 1], dtype=np.float32)}, "value", "NaN"),
    ({"error": np.array([0.1, -0.1, 0.1], dtype=np.float32)}, "error", "negative"),
    ({"band": np.array(["g", "g"])}, "band", "has 2 entries but time has 3"),
    ({"value_kind": "counts"}, "value_kind", "expected one of"),
    ({"time": np.array([]), "value": np.array([], dtype=np.float32),
      "error": np.array([], dtype=np.float32), "band": np.array([], dtype=str)},
     "time", "empty light curve"),
])
def test_validation_names_column_and_row(bad, column, fragment):
    frame = make_frame([row("good", n=3), row("broken", n=3, **bad)])
    with pytest.raises(SchemaError) as info:
        validate(frame, source="x.parquet")
    err = info.value
    assert err.column == column and err.row == 1 and err.object_id == "broken"
    assert fragment in str(err) and "x.parquet" in str(err) and "row 1" in str(err)


def test_missing_and_mistyped_columns():
    frame = make_frame([row()])
    with pytest.raises(SchemaError, match="'label'"):
        validate(frame.drop("label"))
    with pytest.raises(SchemaError, match="missing column"):
        conform(frame.drop("error"))
    cast_back = conform(frame.with_columns(pl.col("band").cast(pl.List(pl.String))))
    assert cast_back.schema["band"] == pl.List(pl.Categorical())
    with pytest.raises(SchemaError, match="expected"):
        validate(frame.with_columns(pl.col("time").cast(pl.List(pl.Float32))))


def test_rows_without_meta_still_write(tmp_path):
    from lcfm.shards import ShardWriter, read_shards

    with ShardWriter(tmp_path) as writer:
        writer.add(row("a", meta={}))
        writer.add(row("b", meta=None))
    assert read_shards(tmp_path).height == 2


def test_make_frame_keeps_every_value_and_band():
    rows = [row("a", n=4, band=np.array(["g", "r", "g", "Y"]), label="Ia"),
            row("b", n=2, band=np.array(["Y", "Y"])),
            row("c", n=3, value=[1.5, 2.5, 3.5], time=[0.0, 1.0, 2.0])]
    frame = conform(make_frame(rows))
    assert frame["band"].cast(pl.List(pl.String)).to_list() == [
        ["g", "r", "g", "Y"], ["Y", "Y"], ["g", "g", "g"]]
    assert frame["value"].to_list()[2] == [1.5, 2.5, 3.5]
    assert frame["time"].to_list()[0] == [0.0, 1.0, 2.0, 3.0]
    assert frame["label"].to_list() == ["Ia", None, None]
    assert frame["meta"].struct.field("ra").to_list() == [1.0, 1.0, 1.0]
