"""Canonical light-curve rows -> ASTRAFier tensors.

ASTRAFier reads one flux value per time step and the observation times (sects. 3.2, 2.1).
For each row the collator:
- takes a window of at most `config.max_length` steps: a random contiguous window when
  `train=True` (a seeded generator), the first `max_length` steps otherwise;
- shifts times to start at zero (sect. 4.3) and keeps them in days;
- reads flux (sect. 4.3): magnitude rows are converted (Pogson, errors propagated;
  `lcfm.bands`), relative to each band's mean magnitude since the flux is standardized;
- is single-band (no band input): each (light curve, band) is its own sequence
  (`band_group` says whose; `band_slot` its place in `config.band_names` for
  band_combine="concat") and the model combines the bands' pooled vectors by
  `config.band_combine` (lcfm_models.band_pooling); a single-band light curve is one
  sequence, exactly as before;
- standardizes the values of each window (zero mean, unit variance, sect. 4.3), i.e. per
  band. A light curve already standardized by its survey chain is left unchanged up to
  rounding; a window cut from it is re-standardized, which is what the model saw in
  training;
- pads every row at the end to the longest row of the batch (sect. 3.1), or to
  `max_length` with `pad_to_max_length=True`; `attention_mask` is 1 on observations.
For task="classify" the batch has `labels` (class ids from `label2id`; -100, ignored by the
loss, for rows without a label) and `extra_features` when the batch has them. ASTRAFier
is supervised only: task="pretrain" is an error.

The batch (row dicts or `lcfm.flat.FlatRows`) is handled as flat arrays: windows, the
per-(row, band) standardization and padding are numpy operations over all points at once
(see `lcfm_models.collator_flat`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.bands import convert, normalise
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError

from ..collator_flat import (
    BandLayout,
    Windows,
    as_flat,
    extra_features,
    label_ids,
    require_points,
    row_values,
    window_starts,
)
from .configuration_astrafier import AstrafierConfig

IGNORE_INDEX = -100
WHO = "astrafier collator"


class AstrafierCollator(SeededCollator):
    """Callable: list of canonical rows or `FlatRows` -> {"values", "times",
    "attention_mask", "band_group"[, "band_slot", "labels", "extra_features"]}: float32
    (sequences, time) tensors, a long (sequences, time) mask, (sequences,) band indices and
    per-light-curve labels and features."""

    #: the unit ASTRAFier reads (sect. 4.3: TESS / Kepler flux); see lcfm.bands
    value_kind = "flux"

    def __init__(self, config: AstrafierConfig, *, task: str = "classify", train: bool = False,
                 label2id: Mapping[str, int] | None = None, seed: int = 0,
                 pad_to_max_length: bool = False):
        if task == "pretrain":
            raise ConfigError("astrafier has no self-supervised objective")
        if task != "classify":
            raise ConfigError(f"astrafier collator: unknown task {task!r}; tasks: classify")
        self.config = config
        self.max_length = int(config.max_length)
        self.train = train
        self.label2id = dict(label2id) if label2id is not None else None
        super().__init__(seed)
        self.pad_to_max_length = pad_to_max_length

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        flat = as_flat(rows, WHO)
        require_points(flat, WHO)
        objects = flat
        # relative flux: the zero point is each band's mean magnitude (standardized below)
        layout = BandLayout(convert(flat, self.value_kind, zero_point=None), self.config, WHO)
        flat = layout.flat
        rng = self.worker_generator() if self.train else None
        windows = Windows(flat, window_starts(flat.lengths, self.max_length, rng),
                          self.max_length)
        time = windows.gather(flat.time).astype(np.float64)
        # sect. 4.3: standardized flux; one band per sequence, so per band
        value, _ = normalise(windows.gather(flat.value), windows.gather(flat.error),
                             windows.row, "standardize")
        # subtract in float64 before the float32 cast: BTJD/MJD days would lose minutes
        # ... and add the time-shift augmentation's offset (lcfm.augment) after re-zeroing,
        # which would otherwise cancel it
        shift = row_values(flat, "time_shift", 0.0)[windows.row]
        time = (time - windows.first(time)[windows.row] + shift).astype(np.float32)
        width = self.max_length if self.pad_to_max_length else None
        batch = {"values": torch.from_numpy(windows.pad(value.astype(np.float32), np.float32,
                                                        width=width)),
                 "times": torch.from_numpy(windows.pad(time, np.float32, width=width)),
                 "attention_mask": torch.from_numpy(windows.valid(width))}
        if self.label2id is not None and any(label is not None for label in objects.label):
            batch["labels"] = torch.from_numpy(label_ids(objects, self.label2id, WHO,
                                                         IGNORE_INDEX))
        features = extra_features(objects, self.config, WHO)
        if features is not None:
            batch["extra_features"] = torch.from_numpy(features)
        batch.update({k: torch.from_numpy(v) for k, v in layout.entries.items()})
        return batch


__all__ = ["AstrafierCollator"]
