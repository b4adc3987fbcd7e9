import json

import numpy as np
import polars as pl
import pytest
from lcfm.data import LightCurveDataset, split_by_object
from lcfm.exceptions import DataError, SchemaError
from lcfm.report import IngestReport
from lcfm.shards import ShardWriter, load_dataset, read_shards, shard_paths


def make_row(i, n=4):
    return {"object_id": f"obj{i // 2}", "survey": "test", "time": np.arange(n) + 0.5 * i,
            "value": np.full(n, i, dtype=np.float32), "error": np.full(n, 0.1, np.float32),
            "band": np.array(["B", "R"] * (n // 2)), "value_kind": "mag",
            "label": "RRc" if i % 2 else None, "meta": {"field": i}}


def test_writer_rolls_shards_and_roundtrips(tmp_path):
    with ShardWriter(tmp_path, rows_per_shard=3) as writer:
        for i in range(7):
            writer.add(make_row(i))
    assert [p.name for p in shard_paths(tmp_path)] == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert not list(tmp_path.glob(".*tmp"))  # atomic: no temporary left behind
    frame = read_shards(tmp_path)
    assert frame.height == 7
    assert frame["value"].list.first().to_list() == list(range(7))
    assert frame["meta"].struct.field("field").to_list() == list(range(7))
    meta = pl.read_parquet_metadata(shard_paths(tmp_path)[0]) if hasattr(
        pl, "read_parquet_metadata") else None
    del meta
    import pyarrow.parquet as pq

    assert pq.ParquetFile(shard_paths(tmp_path)[0]).metadata.row_group(0).column(0)\
        .compression == "ZSTD"


def test_writer_refuses_folder_with_shards(tmp_path):
    with ShardWriter(tmp_path) as writer:
        writer.add(make_row(0))
    with pytest.raises(DataError, match="already holds 1 shard"):
        ShardWriter(tmp_path)


def test_invalid_row_is_rejected_with_its_position(tmp_path):
    bad = make_row(1)
    bad["time"] = bad["time"][::-1].copy()
    writer = ShardWriter(tmp_path)
    writer.add(make_row(0))
    writer.add(bad)
    with pytest.raises(SchemaError, match="row 1.*not sorted"):
        writer.close()
    assert not list(tmp_path.glob("*.parquet"))


def test_huggingface_dataset_and_streaming(tmp_path):
    with ShardWriter(tmp_path, rows_per_shard=2) as writer:
        for i in range(5):
            writer.add(make_row(i))
    ds = load_dataset(tmp_path)
    assert len(ds) == 5 and ds[3]["value"] == [3.0] * 4
    streamed = list(load_dataset(tmp_path, streaming=True))
    assert [r["object_id"] for r in streamed] == [f"obj{i // 2}" for i in range(5)]


def test_dataset_rows_and_object_split(tmp_path):
    frame = pl.concat([read_shards_from_rows(tmp_path, range(10))])
    ds = LightCurveDataset(frame)
    row = ds[3]
    assert row["value"].dtype == np.float32 and row["value"][0] == 3
    assert list(row["band"]) == ["B", "R", "B", "R"]
    train, val = split_by_object(frame, 0.4, seed=1)
    assert train.height + val.height == 10
    assert not set(train["object_id"]) & set(val["object_id"])  # grouped by object


def read_shards_from_rows(tmp_path, indices):
    with ShardWriter(tmp_path / "d") as writer:
        for i in indices:
            writer.add(make_row(i))
    return read_shards(tmp_path / "d")


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such dataset folder"):
        read_shards(tmp_path / "nope")


def test_report_balance_and_json(tmp_path):
    report = IngestReport("test")
    report.read(10)
    report.reject_points("sentinel", 3)
    report.written(7)
    assert report.balanced
    report.read(2)
    report.reject_light_curve("empty light curve", 2)
    assert report.balanced
    report.save(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["points_read"] == 12
    assert data["points_rejected"] == {"sentinel": 3, "empty light curve": 2}
    report.read(1)
    assert not report.balanced


def test_writer_transaction_rolls_back_a_file_even_after_spilling(tmp_path):
    writer = ShardWriter(tmp_path, rows_per_shard=2)
    writer.begin()
    writer.add(make_row(0))
    writer.commit()
    writer.begin()
    for i in range(1, 6):  # overflows: committed row 0 goes to a shard, the rest pending
        writer.add(make_row(i))
    assert list(tmp_path.glob(".pending-*.parquet"))
    writer.rollback()
    assert not list(tmp_path.glob(".pending-*.parquet"))
    writer.begin()
    for i in range(6, 11):
        writer.add(make_row(i))
    writer.commit()
    writer.close()
    frame = read_shards(tmp_path)
    assert frame["value"].list.first().to_list() == [0, 6, 7, 8, 9, 10]
    assert [p.name for p in writer.paths] == [f"part-{i:05d}.parquet"
                                              for i in range(len(writer.paths))]
    assert not list(tmp_path.glob(".*"))  # no pending or temporary file left


def test_summaries_of_shards_whose_meta_types_differ(tmp_path):
    """A meta field that is all-null in one shard (type Null) and text in another: the
    summaries (and so post_ingest) still read every row, with the field typed."""
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey
    from lcfm.shards import read_summaries, shard_paths

    report = ingest(get_survey("macho"), None, tmp_path / "out", rows_per_shard=7)
    assert len(shard_paths(tmp_path / "out")) > 1
    summaries = read_summaries(tmp_path / "out")
    assert summaries.height == report.light_curves_written
    assert summaries.schema["meta"].to_schema()["raw_class"] == pl.String
