"""Labeled splits: stratified by class, grouped by object (no object in two splits), and
Astromer 2's few-shot subsets (sect. 5.1: 20, 100 or 500 samples per class, 3 folds)."""

from __future__ import annotations

import numpy as np
import polars as pl

from lcfm.exceptions import DataError


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
