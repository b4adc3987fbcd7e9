"""Astromer 2's few-shot protocol as data splits (issue 11, item 3) and fixed split files:
balanced test sets disjoint from training, sampling with replacement for short classes,
grouping by object, determinism, one-line errors for bad split files."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.splits import (
    TEST_PER_CLASS,
    few_shot_split,
    few_shot_splits,
    few_shot_test_ids,
    read_split_file,
    split_by_file,
)

SIZES = {"big": 60, "mid": 25, "small": 6}


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """Two light curves (bands B and R) per object, objects of three class sizes."""
    rows = [{"object_id": f"{label}-{i:03d}", "band": band, "label": label}
            for label, n in SIZES.items() for i in range(n) for band in "BR"]
    return pl.DataFrame(rows)


def test_balanced_disjoint_folds_and_replacement(frame):
    assert TEST_PER_CLASS == 1000  # Astromer 2 sect. 5.1
    split = few_shot_split(frame, 20, 0, test_per_class=10, seed=3)
    # balanced test: 10 per class, except where a class could not spare them (half of 6)
    assert split.test_counts == {"big": 10, "mid": 10, "small": 3}
    assert Counter(i.split("-")[0] for i in split.test_ids) == split.test_counts
    # spc per class in training, disjoint from the test objects
    assert split.train_counts == {"big": 20, "mid": 20, "small": 20}
    assert not set(split.train_ids) & set(split.test_ids)
    # big has 50 objects left: drawn without replacement; the others are short
    assert split.train_unique_counts["big"] == 20
    assert split.train_unique_counts["mid"] <= 15 and split.train_unique_counts["small"] <= 3
    assert split.replaced == ["mid", "small"]
    assert len(split.train_ids) == 60 and len(set(split.train_ids)) < 60
    # the rows of the drawn objects carry spc objects' worth of each label (2 per object)
    labels = split.frames(frame)["train"]["label"].value_counts(sort=True)
    assert dict(zip(labels["label"], labels["count"], strict=True)) == {
        "big": 40, "mid": 40, "small": 40}


def test_grouped_by_object_and_repeated_rows(frame):
    split = few_shot_split(frame, 20, 1, test_per_class=10, validation_fraction=0.25)
    parts = split.frames(frame)
    # every light curve of an object goes with it, repeated as often as the object was drawn
    assert parts["train"].height == 2 * len(split.train_ids)
    drawn = Counter(split.train_ids)
    got = Counter(parts["train"]["object_id"].to_list())
    assert got == Counter({k: 2 * v for k, v in drawn.items()})
    assert set(parts["test"]["object_id"]) == set(split.test_ids)
    assert parts["test"].group_by("object_id").len()["len"].unique().to_list() == [2]
    # validation: int(0.25 * 20) = 5 per class, never all that training needs
    assert split.validation_counts == {"big": 5, "mid": 5, "small": 2}
    ids = [set(split.train_ids), set(split.validation_ids), set(split.test_ids)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert split.train_unique_counts["small"] == 1  # 6 - 3 test - 2 validation
    assert sum(split.validation_counts.values()) == parts["validation"]["object_id"].n_unique()


def test_deterministic_and_shared_test_per_fold(frame):
    a = few_shot_split(frame, 20, 0, test_per_class=10, seed=3)
    assert a == few_shot_split(frame, 20, 0, test_per_class=10, seed=3)
    # the test set depends on (seed, fold) only: every SPC scenario scores the same objects
    b = few_shot_split(frame, 5, 0, test_per_class=10, seed=3)
    assert a.test_ids == b.test_ids and a.train_ids != b.train_ids
    assert b.train_counts == {"big": 5, "mid": 5, "small": 5} and b.replaced == ["small"]
    other_fold = few_shot_split(frame, 20, 1, test_per_class=10, seed=3)
    other_seed = few_shot_split(frame, 20, 0, test_per_class=10, seed=4)
    assert other_fold.test_ids != a.test_ids and other_seed.test_ids != a.test_ids
    # a class's draw does not depend on the other classes being present
    only_big = frame.filter(pl.col("label") == "big")
    assert list(few_shot_test_ids(only_big, 0, test_per_class=10, seed=3)["big"]) == \
        [i for i in a.test_ids if i.startswith("big")]
    scenarios = few_shot_splits(frame, [5, 20], 3, test_per_class=10, seed=3)
    assert [(s.spc, s.fold) for s in scenarios] == [(5, 0), (5, 1), (5, 2),
                                                    (20, 0), (20, 1), (20, 2)]
    assert scenarios[3] == a
    record = a.to_dict()  # what fewshot.json holds per (spc, fold)
    assert {"spc", "fold", "train_counts", "test_counts", "train_ids", "test_ids"} <= set(record)


def test_few_shot_refuses_bad_arguments(frame):
    with pytest.raises(ConfigError, match="samples per class"):
        few_shot_split(frame, 0, 0)
    with pytest.raises(ConfigError, match="validation fraction"):
        few_shot_split(frame, 5, 0, validation_fraction=1.5)
    conflicting = pl.DataFrame({"object_id": ["a", "a", "b"], "label": ["x", "y", "x"]})
    with pytest.raises(Exception, match="more than one label"):
        few_shot_split(conflicting, 5, 0)


# ---- fixed split files ---------------------------------------------------------------------
def test_split_file_csv_and_parquet(tmp_path, frame):
    table = pl.DataFrame({"object_id": ["big-000", "big-001", "mid-000", "big-000",
                                        "big-001", "mid-000"],
                          "split": ["train", "Val", "test", "test", "train", "train"],
                          "fold": [0, 0, 0, 1, 1, 1]})
    table.write_csv(tmp_path / "s.csv")
    table.write_parquet(tmp_path / "s.parquet")
    csv, parquet = read_split_file(tmp_path / "s.csv"), read_split_file(tmp_path / "s.parquet")
    assert csv.equals(parquet)
    assert csv["split"].to_list() == ["train", "validation", "test", "test", "train", "train"]
    parts, info = split_by_file(frame, csv, fold=1)
    assert parts["test"]["object_id"].unique().to_list() == ["big-000"]
    assert parts["train"].height == 4 and parts["validation"].height == 0
    assert info["unassigned_objects"] == sum(SIZES.values()) - 3
    assert info["missing_objects"] == 0
    with pytest.raises(ConfigError, match=r"folds \[0, 1\]; choose one"):
        split_by_file(frame, csv)
    with pytest.raises(ConfigError, match="no fold 7"):
        split_by_file(frame, csv, fold=7)
    # without folds; an object the dataset lacks is counted, not ignored silently
    (tmp_path / "plain.csv").write_text("oid,subset\nbig-002,train\nghost,test\n")
    parts, info = split_by_file(frame, read_split_file(tmp_path / "plain.csv"))
    assert info["missing_objects"] == 1 and info["missing_examples"] == ["ghost"]
    assert parts["train"]["object_id"].unique().to_list() == ["big-002"]
    with pytest.raises(ConfigError, match="no fold column"):
        split_by_file(frame, read_split_file(tmp_path / "plain.csv"), fold=0)


@pytest.mark.parametrize("text, problem", [
    ("object_id,label\na,x\n", "no split column"),
    ("split\ntrain\n", "no object id column"),
    ("object_id,split\n", "no rows"),
    ("object_id,split\na,train\n,test\n", "line 3: empty object id"),
    ("object_id,split\na,train\nb,holdout\n", "line 3: split 'holdout' of object 'b' is not"),
    ("object_id,split,fold\na,train,0\nb,test,x\n", "line 3: fold 'x' is not a non-negative"),
    ("object_id,split,fold\na,train,0\nb,test,\n", "line 3: missing fold"),
    ("object_id,split,fold\na,train,-1\n", "line 2: fold '-1' is not a non-negative"),
    ("object_id,split\na,train\nb,test\na,test\n",
     "line 4: object 'a' is 'test' here but 'train' at line 2"),
])
def test_split_file_errors_are_one_line(tmp_path, text, problem):
    path = tmp_path / "splits.csv"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        read_split_file(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert problem in message


def test_split_file_unreadable_and_parquet_rows(tmp_path):
    with pytest.raises(InputFileError, match="no such split file"):
        read_split_file(tmp_path / "absent.parquet")
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1" + b"\x00garbage" * 10)
    with pytest.raises(InputFileError, match="not a readable Parquet split file") as info:
        read_split_file(damaged)
    assert "\n" not in str(info.value)
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"object_id": ["a", "b"], "split": ["train", "nope"]}).write_parquet(bad)
    with pytest.raises(InputFileError, match="row 2: split 'nope'"):
        read_split_file(bad)
