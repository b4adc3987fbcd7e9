"""Canonical rows -> ATCAT tensors (paper 003_05ad419fc2efc3e7.txt, sect. 2.1, 2.2.1-2.2.3).

A row's points stay in one multi-band, time-sorted sequence; each point becomes one token
(time in days since the window's first point, flux, flux_err, the band's central wavelength).

Truncation to `config.max_length` points: with `train=False` the *earliest* points are kept,
i.e. the model sees what was known at that time, as in early classification (sect. 2.6);
with `train=True` a random contiguous window of `max_length` points is drawn (a new one on
each call, reproducible from `seed`). Times restart at 0 at the window's first point
(sect. 2.1.1: "t=0 is the time of the first point").

task="pretrain" packs [LC0] [PRED1] [LC1] [PRED2] ... (sect. 2.2.3): before every point
after the first, a [PRED] token with that point's time, band and flux error, and the
point's flux and error as `target_flux` / `target_flux_err` at the [PRED] position.
task="classify" adds `labels` through `label2id` (-100 for rows without a label).
With `config.metadata_dim > 0` the row's metadata vector row["meta"][config.metadata_key]
(quantile-transformed features with their NaN/inf indicators, sect. 2.1.1) becomes
`metadata`; remaining non-finite entries become 0 (the indicators carry that information).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError, DataError

from .configuration_atcat import AtcatConfig
from .embeddings_atcat import PAD, POINT, PRED
from .losses_atcat import IGNORE

TASKS = ("pretrain", "classify")


class AtcatCollator(SeededCollator):
    """Callable: list of canonical rows -> dict of tensors for `model(**batch)`."""

    def __init__(self, config: AtcatConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None, label2id: Mapping[str, int] | None = None,
                 seed: int = 0):
        if task not in TASKS:
            raise ConfigError(f"atcat collator: task {task!r} is not one of {', '.join(TASKS)}")
        if not bands:
            raise ConfigError("atcat collator: needs `bands`, a mapping from band name to "
                              "central wavelength in Angstrom (ATCAT encodes bands by wavelength)")
        bad = {b: w for b, w in bands.items() if not (np.isfinite(w) and w > 0)}
        if bad:
            raise ConfigError(f"atcat collator: band wavelengths must be positive, got {bad}")
        self.config, self.task, self.train = config, task, train
        self.bands = {str(name): float(w) for name, w in bands.items()}
        self.label2id = dict(label2id) if label2id is not None else None
        super().__init__(seed)

    # ---------------------------------------------------------------- one row
    def window(self, n: int) -> slice:
        """The points kept from a row of n points (see module docstring)."""
        keep = self.config.max_length
        if n <= keep:
            return slice(0, n)
        start = int(self.rng.integers(0, n - keep + 1)) if self.train else 0
        return slice(start, start + keep)

    def _points(self, row: Mapping, index: int) -> dict[str, np.ndarray]:
        object_id = row.get("object_id", f"#{index}")
        arrays = {}
        for field in ("time", "value", "error", "band"):
            if field not in row or row[field] is None:
                raise DataError(f"row {index} (object_id={object_id!r}): missing {field!r}")
            arrays[field] = np.asarray(row[field])
        n = len(arrays["time"])
        if n == 0:
            raise DataError(f"row {index} (object_id={object_id!r}): empty light curve")
        if any(len(a) != n for a in arrays.values()):
            lengths = {k: len(v) for k, v in arrays.items()}
            raise DataError(f"row {index} (object_id={object_id!r}): point arrays differ in "
                            f"length {lengths}")
        kept = self.window(n)
        time = arrays["time"][kept].astype(np.float64)
        value = arrays["value"][kept].astype(np.float32)
        error = arrays["error"][kept].astype(np.float32)
        for name, array in (("time", time), ("value", value), ("error", error)):
            if not np.all(np.isfinite(array)):
                raise DataError(f"row {index} (object_id={object_id!r}): non-finite {name!r}")
        if np.any(np.diff(time) < 0):
            raise DataError(f"row {index} (object_id={object_id!r}): time is not sorted")
        try:
            wavelength = np.array([self.bands[str(b)] for b in arrays["band"][kept]],
                                  dtype=np.float32)
        except KeyError as exc:
            raise DataError(f"row {index} (object_id={object_id!r}): band {exc.args[0]!r} has "
                            f"no wavelength; known bands: {', '.join(self.bands)}") from None
        # the redshifting augmentation (lcfm.augment, ATCAT sect. 2.1.2) scales wavelengths
        wavelength *= np.float32(row.get("wavelength_scale", 1.0))
        return {"times": (time - time[0]).astype(np.float32), "flux": value,
                "flux_err": error, "wavelength": wavelength}

    @staticmethod
    def pack_for_prediction(points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """[LC0] [PRED1] [LC1] ... [PRED n-1] [LC n-1]: 2n - 1 tokens (sect. 2.2.3)."""
        n = len(points["times"])
        order = np.repeat(np.arange(n), 2)[1:]  # 0, 1, 1, 2, 2, ... : point behind each token
        kind = np.tile([PRED, POINT], n)[1:]  # POINT, PRED, POINT, PRED, ...
        packed = {key: values[order] for key, values in points.items()}
        is_pred = kind == PRED
        packed["target_flux"] = np.where(is_pred, packed["flux"], 0.0).astype(np.float32)
        packed["target_flux_err"] = np.where(is_pred, packed["flux_err"], 0.0).astype(np.float32)
        packed["flux"] = np.where(is_pred, 0.0, packed["flux"]).astype(np.float32)
        packed["token_type"] = kind.astype(np.int64)
        return packed

    def _metadata(self, row: Mapping, index: int) -> np.ndarray:
        key, size = self.config.metadata_key, self.config.metadata_dim
        meta = row.get("meta") or {}
        object_id = row.get("object_id", f"#{index}")
        if key not in meta or meta[key] is None:
            raise DataError(f"row {index} (object_id={object_id!r}): meta has no {key!r} vector "
                            f"(the model has metadata_dim={size})")
        vector = np.asarray(meta[key], dtype=np.float32).ravel()
        if vector.shape != (size,):
            raise DataError(f"row {index} (object_id={object_id!r}): meta[{key!r}] has "
                            f"{vector.size} values, the model expects metadata_dim={size}")
        return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)

    def _label(self, row: Mapping, index: int) -> int:
        label = row.get("label")
        if label is None:
            return IGNORE
        if label not in self.label2id:
            raise DataError(f"row {index} (object_id={row.get('object_id')!r}): label {label!r} "
                            f"is not in label2id ({len(self.label2id)} classes)")
        return int(self.label2id[label])

    # ---------------------------------------------------------------- batch
    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise DataError("atcat collator: empty batch")
        examples = [self._points(row, i) for i, row in enumerate(rows)]
        if self.task == "pretrain":
            examples = [self.pack_for_prediction(example) for example in examples]
        else:
            for example in examples:
                example["token_type"] = np.full(len(example["times"]), POINT, dtype=np.int64)
        length = max(len(example["times"]) for example in examples)
        batch: dict[str, torch.Tensor] = {}
        for key in examples[0]:
            dtype = np.int64 if key == "token_type" else np.float32
            padded = np.full((len(examples), length), PAD if key == "token_type" else 0,
                             dtype=dtype)
            for i, example in enumerate(examples):
                padded[i, : len(example[key])] = example[key]
            batch[key] = torch.from_numpy(padded)
        batch["attention_mask"] = (batch["token_type"] != PAD).long()
        if self.task == "classify":
            del batch["token_type"]  # every valid token is a point
        if self.task == "classify" and self.label2id is not None:  # None: unlabeled data
            batch["labels"] = torch.tensor([self._label(r, i) for i, r in enumerate(rows)],
                                           dtype=torch.long)
        if self.config.metadata_dim > 0:
            batch["metadata"] = torch.from_numpy(
                np.stack([self._metadata(row, i) for i, row in enumerate(rows)]))
        return batch


__all__ = ["AtcatCollator"]
