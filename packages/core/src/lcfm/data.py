"""Canonical frames as model inputs: fast row access and object-grouped splits.

Rows are served from flat numpy arrays plus offsets (STACK-NOTES: converting Polars list
columns element by element is orders of magnitude slower). `LightCurveDataset` holds a
frame in memory (inference on frames); training streams shards instead (`lcfm.stream`) and
splits the small per-row summaries with `validation_rows`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import torch

from lcfm.exceptions import DataError


class LightCurveDataset(torch.utils.data.Dataset):
    """Index -> row dict (numpy `time`, `value`, `error`, `band`; `label`, `meta`, ids)."""

    def __init__(self, frame: pl.DataFrame):
        if frame.height == 0:
            raise DataError("the dataset holds no light curves")
        self.frame = frame
        lengths = frame["time"].list.len().to_numpy()
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.time = frame["time"].explode().to_numpy()
        self.value = frame["value"].explode().to_numpy()
        self.error = frame["error"].explode().to_numpy()
        self.band = frame["band"].explode().cast(pl.String).to_numpy()
        self.object_id = frame["object_id"].to_list()
        self.survey = frame["survey"].to_list()
        self.label = frame["label"].to_list()
        self.value_kind = frame["value_kind"].to_list()
        self._meta = frame["meta"]

    def __len__(self) -> int:
        return len(self.object_id)

    def __getitem__(self, index: int) -> dict:
        start, stop = self.offsets[index], self.offsets[index + 1]
        return {
            "index": index,
            "object_id": self.object_id[index],
            "survey": self.survey[index],
            "time": self.time[start:stop],
            "value": self.value[start:stop],
            "error": self.error[start:stop],
            "band": self.band[start:stop],
            "value_kind": self.value_kind[index],
            "label": self.label[index],
            "meta": self._meta[index],
        }


def object_fold(object_ids: pl.Series, n_folds: int, seed: int = 0) -> np.ndarray:
    """A stable fold number per row from a hash of its object id, so every light curve of
    one object (bands, quarters, sectors) lands in the same split."""
    salt = str(seed).encode()
    return np.array([int.from_bytes(hashlib.blake2b(salt + oid.encode(), digest_size=8)
                                    .digest(), "little") % n_folds for oid in object_ids])


def validation_rows(frame: pl.DataFrame, validation_fraction: float, seed: int = 0
                    ) -> np.ndarray:
    """Boolean mask of the rows of the validation objects: a `validation_fraction` of the
    objects, drawn from `default_rng(seed)`, so no object is in both splits. `frame` needs
    only `object_id` (the summaries of a streamed dataset). With fewer than two objects,
    nothing is held out."""
    objects = frame["object_id"].unique(maintain_order=True)
    if objects.len() < 2 or validation_fraction <= 0:
        return np.zeros(frame.height, bool)
    rng = np.random.default_rng(seed)
    order = rng.permutation(objects.len())
    n_val = min(max(1, round(validation_fraction * objects.len())), objects.len() - 1)
    val_ids = objects.gather(order[:n_val])
    return frame["object_id"].is_in(val_ids.implode()).to_numpy()


def split_by_object(frame: pl.DataFrame, validation_fraction: float, seed: int = 0
                    ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, validation) with no object in both (`validation_rows`)."""
    is_val = pl.Series(validation_rows(frame, validation_fraction, seed))
    return frame.filter(~is_val), frame.filter(is_val)
