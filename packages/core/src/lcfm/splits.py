"""Labeled splits: stratified by class, grouped by object (no object in two splits);
Astromer 2's few-shot protocol (sect. 5.1: 20, 100 or 500 samples per class, 3 folds, a
balanced test set per fold; `few_shot_split`); fixed split files (`read_split_file`)."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import ConfigError, DataError, InputFileError


def _objects_by_class(frame: pl.DataFrame) -> pl.DataFrame:
    objects = frame.group_by("object_id", maintain_order=True).agg(
        pl.col("label").n_unique().alias("n_labels"), pl.col("label").first())
    conflicting = objects.filter(pl.col("n_labels") > 1)
    if conflicting.height:
        raise DataError(f"object {conflicting['object_id'][0]!r} carries more than one label")
    return objects.sort("object_id")


def stratified_object_split(frame: pl.DataFrame, fractions: dict[str, float], seed: int = 0
                            ) -> dict[str, pl.DataFrame]:
    """Split labeled rows into named parts (e.g. {"train": .72, "validation": .08,
    "test": .2}); within each class, objects are shuffled and cut by the fractions, so each
    part keeps the class mix and every light curve of an object stays together."""
    labeled = frame.filter(pl.col("label").is_not_null())
    if labeled.height == 0:
        raise DataError("the dataset has no labeled light curves")
    objects = _objects_by_class(labeled)
    rng = np.random.default_rng(seed)
    names = list(fractions)
    cuts = np.cumsum([fractions[n] for n in names])
    cuts = cuts / cuts[-1]
    assigned: dict[str, list[str]] = {n: [] for n in names}
    for label in sorted(objects["label"].unique().to_list()):
        ids = objects.filter(pl.col("label") == label)["object_id"].to_numpy()
        ids = ids[rng.permutation(ids.size)]
        bounds = np.round(cuts * ids.size).astype(int)
        # every part with a non-zero fraction gets at least one object when there are enough
        start = 0
        for name, stop in zip(names, bounds, strict=True):
            assigned[name] += ids[start:stop].tolist()
            start = stop
    return {n: labeled.filter(pl.col("object_id").is_in(assigned[n])) for n in names}


def few_shot_subset(frame: pl.DataFrame, samples_per_class: int, fold: int, seed: int = 0
                    ) -> pl.DataFrame:
    """`samples_per_class` objects of each class (all if fewer), drawn for one fold."""
    objects = _objects_by_class(frame.filter(pl.col("label").is_not_null()))
    rng = np.random.default_rng([seed, fold, samples_per_class])
    chosen: list[str] = []
    for label in sorted(objects["label"].unique().to_list()):
        ids = objects.filter(pl.col("label") == label)["object_id"].to_numpy()
        chosen += ids[rng.permutation(ids.size)[:samples_per_class]].tolist()
    return frame.filter(pl.col("object_id").is_in(chosen))


# ---- Astromer 2's few-shot protocol (issue 11, item 3) --------------------------------------
#: test objects per class and fold (Astromer 2 sect. 5.1: "1000 SPC per fold")
TEST_PER_CLASS = 1000


@dataclass
class FewShotSplit:
    """One (samples per class, fold) scenario: object ids and per-class counts.

    `train_ids` lists an object as often as it was drawn (sampling with replacement), so
    `train_counts[c]` is `spc` for every class; `train_unique_counts` says how many
    distinct objects that took. `replaced` names the classes drawn with replacement."""

    spc: int
    fold: int
    seed: int
    train_ids: list[str]
    validation_ids: list[str]
    test_ids: list[str]
    train_counts: dict[str, int]
    train_unique_counts: dict[str, int]
    validation_counts: dict[str, int]
    test_counts: dict[str, int]
    replaced: list[str]

    def to_dict(self) -> dict:
        return asdict(self)

    def frames(self, frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
        """The rows of `frame` for "train", "validation" and "test"; a training object
        drawn k times contributes its light curves k times."""
        return {"train": take_objects(frame, self.train_ids),
                "validation": take_objects(frame, self.validation_ids),
                "test": take_objects(frame, self.test_ids)}


def take_objects(frame: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    """Every row of each listed object, in list order, repeated as often as it is listed."""
    order = pl.DataFrame({"object_id": pl.Series(ids, dtype=pl.String)})
    return order.join(frame.with_columns(pl.col("object_id").cast(pl.String)), on="object_id",
                      how="inner", maintain_order="left")


def _classes(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    objects = _objects_by_class(frame.filter(pl.col("label").is_not_null()))
    if objects.height == 0:
        raise DataError("the dataset has no labeled light curves")
    return {label: np.sort(objects.filter(pl.col("label") == label)["object_id"].to_numpy())
            for label in sorted(objects["label"].unique().to_list())}


def _rng(seed: int, fold: int, stream: int, label: str, spc: int = 0) -> np.random.Generator:
    # one stream per (seed, fold, purpose, class[, spc]): a class's draw does not depend
    # on which other classes exist or on the order they are listed in
    return np.random.default_rng([seed, fold, stream, spc, zlib.crc32(label.encode())])


def few_shot_test_ids(frame: pl.DataFrame, fold: int, *, test_per_class: int = TEST_PER_CLASS,
                      seed: int = 0, max_test_share: float = 0.5) -> dict[str, np.ndarray]:
    """The balanced test objects of `fold`, per class: `test_per_class` objects drawn
    without replacement, but never more than `max_test_share` of a class's objects so that
    training keeps objects of every class (the published code draws exactly n per class
    and fails on a class with fewer). They depend on (seed, fold) only, so every SPC
    scenario of a fold is scored on the same objects ("a shared three-fold test dataset",
    sect. 5.1). Folds are drawn independently, as the published code does: test sets of two
    folds may share objects."""
    if test_per_class < 1 or not 0 < max_test_share < 1:
        raise ConfigError("test_per_class must be >= 1 and max_test_share in (0, 1)")
    out = {}
    for label, ids in _classes(frame).items():
        n = min(test_per_class, int(ids.size * max_test_share))
        out[label] = np.sort(_rng(seed, fold, 0, label).choice(ids, n, replace=False))
    return out


def few_shot_split(frame: pl.DataFrame, spc: int, fold: int, *,
                   test_per_class: int = TEST_PER_CLASS, validation_fraction: float = 0.0,
                   seed: int = 0, max_test_share: float = 0.5) -> FewShotSplit:
    """Astromer 2's few-shot scenario (sect. 5.1) for `spc` samples per class and `fold`.

    "We construct three training scenarios with limited data by randomly sampling 20, 100,
    and 500 SPC ... When the number of available labels is insufficient, sampling is
    performed with replacement ... we evaluate all models on a shared three-fold test
    dataset consisting of 1000 SPC per fold."

    Per class: the fold's test objects (`few_shot_test_ids`); then, from the objects left,
    `int(validation_fraction * spc)` validation objects (at least one object stays for
    training); then `spc` training objects from the rest, without replacement, or with
    replacement when fewer than `spc` are left. Objects, not light curves, are drawn, so
    no object is in two parts. Deterministic from (seed, fold, spc).
    (The published code draws its validation set, `val_frac * spc` objects in all, without
    regard to class, and always samples training objects with replacement; lcfm follows
    the paper's sentence.)"""
    if int(spc) < 1:
        raise ConfigError(f"samples per class must be >= 1, got {spc}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    spc, fold = int(spc), int(fold)
    tests = few_shot_test_ids(frame, fold, test_per_class=test_per_class, seed=seed,
                              max_test_share=max_test_share)
    train, validation, test, replaced = [], [], [], []
    counts: dict[str, dict[str, int]] = {k: {} for k in ("train", "unique", "val", "test")}
    for label, ids in _classes(frame).items():
        rest = np.setdiff1d(ids, tests[label])
        rng = _rng(seed, fold, 1, label, spc)
        n_val = min(int(validation_fraction * spc), rest.size - 1)
        val = rng.choice(rest, n_val, replace=False) if n_val > 0 else rest[:0]
        pool = np.setdiff1d(rest, val)
        short = pool.size < spc
        drawn = rng.choice(pool, spc, replace=short)
        if short:
            replaced.append(label)
        train += drawn.tolist()
        validation += np.sort(val).tolist()
        test += tests[label].tolist()
        counts["train"][label] = int(drawn.size)
        counts["unique"][label] = int(np.unique(drawn).size)
        counts["val"][label] = int(val.size)
        counts["test"][label] = int(tests[label].size)
    return FewShotSplit(spc=spc, fold=fold, seed=int(seed), train_ids=train,
                        validation_ids=validation, test_ids=test,
                        train_counts=counts["train"], train_unique_counts=counts["unique"],
                        validation_counts=counts["val"], test_counts=counts["test"],
                        replaced=replaced)


def few_shot_splits(frame: pl.DataFrame, spcs, folds: int, **options) -> list[FewShotSplit]:
    """Every (spc, fold) scenario, SPC-major: `few_shot_split` for each."""
    return [few_shot_split(frame, spc, fold, **options) for spc in spcs
            for fold in range(int(folds))]


# ---- fixed split files (`--splits FILE`) ----------------------------------------------------
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation",
               "valid": "validation", "val": "validation", "dev": "validation",
               "test": "test", "testing": "test"}
_ID_COLUMNS = ("object_id", "objectid", "oid", "id", "snid")
_SPLIT_COLUMNS = ("split", "subset", "set", "partition")


def read_split_file(path) -> pl.DataFrame:
    """A fixed split file: Parquet or CSV with an object id column (object_id, oid, id or
    snid), a split column (split or subset: train, validation/val, test) and an optional
    fold column (a non-negative integer per row, for k-fold files such as ATAT's
    ELAsTiCC splits). Returns columns object_id (str), split (train|validation|test) and
    fold (Int64, null without a fold column).

    Bad files raise `InputFileError` in one line naming the file, the line (CSV; the
    header is line 1) or row (Parquet, from 1) and the problem: unreadable, no rows, a
    missing column, an empty object id, an unknown split name, a bad or missing fold, an
    object given two different splits in one fold."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such split file")
    with path.open("rb") as handle:
        parquet = handle.read(4) == b"PAR1"
    try:
        frame = pl.read_parquet(path) if parquet else pl.read_csv(
            path, infer_schema=False, separator="\t" if path.suffix.lower() == ".tsv" else ",")
    except Exception as exc:  # polars and Arrow raise many kinds for a damaged file
        kind = "Parquet" if parquet else "CSV"
        text = " ".join(str(exc).split())[:200]
        raise InputFileError(path, f"not a readable {kind} split file ({text})") from None

    def where(i: int) -> dict:
        return {"line": i + 2} if not parquet else {}

    def row(i: int) -> str:
        return f"row {i + 1}: " if parquet else ""

    columns = {c.strip().lower(): c for c in frame.columns}
    id_col = next((columns[c] for c in _ID_COLUMNS if c in columns), None)
    split_col = next((columns[c] for c in _SPLIT_COLUMNS if c in columns), None)
    for name, found, options in (("object id", id_col, _ID_COLUMNS),
                                 ("split", split_col, _SPLIT_COLUMNS)):
        if found is None:
            raise InputFileError(path, f"no {name} column (looked for {', '.join(options)}; "
                                       f"columns: {', '.join(frame.columns) or 'none'})")
    if frame.height == 0:
        raise InputFileError(path, "no rows")
    ids = [None if v is None else str(v).strip() for v in frame[id_col].to_list()]
    splits = [None if v is None else str(v).strip().lower() for v in frame[split_col].to_list()]
    fold_col = columns.get("fold")
    folds = _folds(path, frame[fold_col].to_list(), where, row) if fold_col else [None] * len(ids)
    seen: dict[tuple, tuple[str, int]] = {}
    for i, (object_id, split, fold) in enumerate(zip(ids, splits, folds, strict=True)):
        if not object_id:
            raise InputFileError(path, f"{row(i)}empty object id", **where(i))
        if split not in SPLIT_NAMES:
            raise InputFileError(path, f"{row(i)}split {split!r} of object {object_id!r} is "
                                       "not one of train, validation, test", **where(i))
        split = splits[i] = SPLIT_NAMES[split]
        first = seen.setdefault((object_id, fold), (split, i))
        if first[0] != split:
            at = f"row {first[1] + 1}" if parquet else f"line {first[1] + 2}"
            raise InputFileError(path, f"{row(i)}object {object_id!r} is {split!r} here but "
                                       f"{first[0]!r} at {at}"
                                       + (f" (fold {fold})" if fold is not None else ""),
                                 **where(i))
    return pl.DataFrame({"object_id": ids, "split": splits,
                         "fold": pl.Series(folds, dtype=pl.Int64)}).unique(maintain_order=True)


def _folds(path: Path, values: list, where, row) -> list[int]:
    out = []
    for i, value in enumerate(values):
        text = "" if value is None else str(value).strip()
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not text or not number.is_integer() or number < 0:
            problem = "missing fold" if not text else \
                f"fold {value!r} is not a non-negative integer"
            raise InputFileError(path, f"{row(i)}{problem}", **where(i))
        out.append(int(number))
    return out


def split_by_file(frame: pl.DataFrame, splits: pl.DataFrame, fold: int | None = None
                  ) -> tuple[dict[str, pl.DataFrame], dict]:
    """The rows of `frame` in each part of a fixed split table (`read_split_file`), for
    one `fold` when the table has folds. Returns the parts ("train", "validation",
    "test", grouped by object as the file says) and an accounting: objects of the dataset
    the file does not name (`unassigned_objects`, not used) and objects the file names
    that the dataset lacks (`missing_objects`), with up to five examples of each."""
    has_folds = splits["fold"].null_count() < splits.height
    if has_folds and fold is None:
        folds = sorted(splits["fold"].drop_nulls().unique().to_list())
        raise ConfigError(f"the split file has folds {folds}; choose one")
    if has_folds:
        chosen = splits.filter(pl.col("fold") == int(fold))
        if chosen.height == 0:
            folds = sorted(splits["fold"].drop_nulls().unique().to_list())
            raise ConfigError(f"the split file has no fold {fold}; folds: {folds}")
    elif fold is not None:
        raise ConfigError(f"fold {fold} asked for, but the split file has no fold column")
    else:
        chosen = splits
    ids = frame.select(pl.col("object_id").cast(pl.String)).unique()
    named = chosen.select("object_id").unique()
    unassigned = ids.join(named, on="object_id", how="anti").sort("object_id")
    missing = named.join(ids, on="object_id", how="anti").sort("object_id")
    parts = {name: frame.filter(pl.col("object_id").cast(pl.String).is_in(
        chosen.filter(pl.col("split") == name)["object_id"].implode()))
        for name in ("train", "validation", "test")}
    info = {"fold": fold, "unassigned_objects": unassigned.height,
            "unassigned_examples": unassigned["object_id"].head(5).to_list(),
            "missing_objects": missing.height,
            "missing_examples": missing["object_id"].head(5).to_list(),
            **{f"{name}_objects": part["object_id"].n_unique() for name, part in parts.items()}}
    return parts, info
