"""The streaming data path (issue 10, items 1-3): row-group index, epoch plans, length
buckets, step batches served by DataLoader workers, and the split of batches across ranks."""

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from lcfm import shards
from lcfm.engine.batching import (
    BalancedPlan,
    StepDataset,
    evaluation_plan,
    evaluation_steps,
    step_loader,
)
from lcfm.engine.checkpoint import data_fingerprint
from lcfm.exceptions import DataError
from lcfm.flat import FlatRows
from lcfm.registry import get_model, get_survey, model_names
from lcfm.shards import ShardWriter, read_shards
from lcfm.stream import EpochPlan, RowGroupCache, ShardIndex, padding_fraction


def varied_rows(n=300, seed=0):
    """Light curves of 5-120 points in two bands, each with a distinct first time."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(5, 121))
        rows.append({"object_id": f"1.{i}.{i % 7}", "survey": "macho",
                     "time": np.sort(rng.uniform(0, 100, k)) + 1000 * i,
                     "value": rng.normal(-5, 0.1, k).astype(np.float32),
                     "error": np.full(k, 0.05, np.float32),
                     "band": np.array(["R", "B"])[rng.integers(0, 2, k)],
                     "value_kind": "mag", "label": ("RRab", "EC", "LPV")[i % 3],
                     "meta": {"field": i}})
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """300 curves in two shards of several row groups each (row groups of ~2,000 points)."""
    path = tmp_path_factory.mktemp("stream")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards, "ROW_GROUP_POINTS", 2_000)
        with ShardWriter(path, rows_per_shard=180) as writer:
            for row in varied_rows():
                writer.add(row)
    return path


def test_shards_are_written_in_row_groups_and_indexed(corpus):
    index = ShardIndex(corpus)
    groups = [pq.ParquetFile(p).metadata.num_row_groups for p in index.paths]
    assert len(index.paths) == 2 and all(g > 1 for g in groups) and index.n_blocks == sum(groups)
    frame = read_shards(corpus)
    assert index.n_rows == frame.height == 300
    np.testing.assert_array_equal(index.lengths, frame["time"].list.len().to_numpy())
    # the streamed fingerprint is the one resume checks were stamped with
    assert index.fingerprint() == data_fingerprint(frame)
    assert index.fingerprint([0, 5]) == data_fingerprint(frame[[0, 5]])


def test_cache_returns_exactly_the_requested_rows(corpus):
    index, frame = ShardIndex(corpus), read_shards(corpus)
    cache = RowGroupCache(index, ("B", "R"), capacity=2)
    rows = np.array([299, 0, 181, 17, 17, 250])
    flat = cache.take(rows)
    assert isinstance(flat, FlatRows) and flat.band.dtype == np.int16
    assert flat.band_names[:2] == ("B", "R")
    for i, r in enumerate(rows):
        row = flat[i]
        assert row["object_id"] == frame["object_id"][int(r)]
        np.testing.assert_array_equal(row["time"], frame["time"][int(r)].to_numpy())
        np.testing.assert_array_equal(row["band"], frame["band"][int(r)].cast(str).to_numpy())
        assert row["meta"]["field"] == int(r)
    assert len(cache._blocks) <= 2  # bounded: the least recently used blocks are dropped


@pytest.mark.parametrize("bucket", [True, False])
def test_plan_covers_every_row_once_per_epoch_and_is_deterministic(corpus, bucket):
    index = ShardIndex(corpus)
    rows = np.arange(0, 300, 3)[::-1]  # a selection, given in any order
    plan = EpochPlan.for_rows(index, rows, 16, seed=4, bucket=bucket, window_blocks=2,
                              mega_batches=3)
    again = EpochPlan.for_rows(index, rows, 16, seed=4, bucket=bucket, window_blocks=2,
                               mega_batches=3)
    n = plan.batches_per_epoch
    assert n == 7  # 100 rows: 6 batches of 16 and one of 4
    for epoch in (0, 1):
        seen = np.concatenate([plan.batch_rows(epoch * n + b) for b in range(n)])
        assert sorted(seen.tolist()) == sorted(rows.tolist())
    # a pure function of (seed, step): asked out of order, by another object
    for step in (9, 2, 13, 0):
        np.testing.assert_array_equal(plan.batch_rows(step), again.batch_rows(step))
    first = np.concatenate([plan.batch_rows(b) for b in range(n)])
    second = np.concatenate([plan.batch_rows(n + b) for b in range(n)])
    assert not np.array_equal(first, second)  # reshuffled every epoch
    other = EpochPlan.for_rows(index, rows, 16, seed=5, bucket=bucket)
    assert not np.array_equal(other.batch_rows(0), plan.batch_rows(0))


def test_length_buckets_cut_padding_on_simulated_elasticc(tmp_path):
    """Issue 10 target: <= 10% padding on ELAsTiCC-like data (measured ~47% without)."""
    from lcfm.simulate import simulate

    simulate(get_survey("elasticc"), 600, tmp_path, seed=0)
    index = ShardIndex(tmp_path)

    def padding(bucket):
        plan = EpochPlan.for_rows(index, np.arange(index.n_rows), 32, 0, bucket=bucket)
        return padding_fraction([index.lengths[plan.batch_rows(s)]
                                 for s in range(plan.batches_per_epoch)])

    bucketed, plain = padding(True), padding(False)
    assert bucketed <= 0.10 and plain > 0.3, (bucketed, plain)


def test_ranks_take_disjoint_parts_of_each_batch(corpus):
    index = ShardIndex(corpus)
    plan = EpochPlan.for_rows(index, np.arange(300), 12, seed=1)
    sets = [StepDataset(index, plan, lambda flat: flat, seed=1, process_index=r,
                        num_processes=2) for r in (0, 1)]
    for step in (0, 7, 30):
        a, b = sets[0].rows(step), sets[1].rows(step)
        assert a.size == b.size == 6 and not set(a) & set(b)
        assert sorted([*a, *b]) == sorted(plan.batch_rows(step).tolist())
    val = evaluation_plan(index, np.arange(100), 16, seed=1)
    parts = [list(evaluation_steps(val, r, 3)) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(val.batches_per_epoch))


def test_balanced_plan_draws_classes_evenly_from_the_label_index(corpus):
    summaries = ShardIndex(corpus).summaries()
    rows = np.arange(0, 300, 2)
    labels = summaries["label"].to_numpy()[rows]
    plan = BalancedPlan(rows, labels.tolist(), 30, seed=2)
    drawn = np.concatenate([plan.batch_rows(s) for s in range(40)])
    assert set(drawn) <= set(rows)
    counts = pl.Series(summaries["label"].to_numpy()[drawn]).value_counts()["count"]
    assert counts.min() > 0.25 * drawn.size
    np.testing.assert_array_equal(plan.batch_rows(3), BalancedPlan(
        rows, labels.tolist(), 30, seed=2).batch_rows(3))


@pytest.mark.parametrize("name", model_names())
def test_batches_do_not_depend_on_worker_count(corpus, name):
    """Batch s is the same whether collated here or in DataLoader workers (exact resume and
    a free choice of --workers rely on it), for every model's training collator."""
    plugin = get_model(name)
    config = plugin.make_config("tiny")
    index = ShardIndex(corpus)
    plan = EpochPlan.for_rows(index, np.arange(300), 8, seed=3)
    task = "pretrain" if plugin.pretraining_class is not None else "classify"
    label2id = {"RRab": 0, "EC": 1, "LPV": 2} if task == "classify" else None

    def batches(workers):
        collate = plugin.collator(config, task=task, train=True, bands=get_survey("macho").bands,
                                  label2id=label2id, seed=3)
        dataset = StepDataset(index, plan, collate, seed=3, band_names=("R", "B"))
        return list(step_loader(dataset, range(5, 11), workers))

    here, workers = batches(0), batches(2)
    assert len(here) == len(workers) == 6
    for a, b in zip(here, workers, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if torch.is_tensor(a[key]):
                assert torch.equal(a[key], b[key]), key


def test_damaged_shards_are_refused_by_name(tmp_path, corpus):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "part-00000.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="part-00000.parquet: unreadable Parquet shard"):
        ShardIndex(bad)
    # a row whose value list is shorter than its time list: one line naming file and row
    table = pq.read_table(ShardIndex(corpus).paths[0])
    values = table.column("value").to_pylist()
    values[3] = values[3][:-1]
    broken = table.set_column(table.schema.get_field_index("value"), "value",
                              pa.array(values, type=table.schema.field("value").type))
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    pq.write_table(broken, mismatch / "part-00000.parquet")
    index = ShardIndex(mismatch)
    with pytest.raises(DataError, match=r"part-00000.parquet: row 3 has \d+ times but \d+ value"):
        RowGroupCache(index).take([3])
