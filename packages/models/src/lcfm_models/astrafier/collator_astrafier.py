"""Canonical light-curve rows -> ASTRAFier tensors.

ASTRAFier reads one flux value per time step and the observation times (sects. 3.2, 2.1).
For each row the collator:
- takes a window of at most `config.max_length` steps: a random contiguous window when
  `train=True` (a seeded generator), the first `max_length` steps otherwise;
- shifts times to start at zero (sect. 4.3) and keeps them in days;
- standardizes the values of the window (zero mean, unit variance, sect. 4.3). A light curve
  already standardized by its survey chain is left unchanged up to rounding; a window cut
  from it is re-standardized, which is what the model saw in training. Magnitudes are
  negated first so that brighter is larger, as for flux. Multi-band rows are standardized
  band by band and kept interleaved in time (ASTRAFier has no band input);
- pads every row at the end to the longest row of the batch (sect. 3.1), or to
  `max_length` with `pad_to_max_length=True`; `attention_mask` is 1 on observations.
For task="classify" the batch has `labels` (class ids from `label2id`; -100, ignored by the
loss, for rows without a label). ASTRAFier is supervised only: task="pretrain" is an error.

The batch (row dicts or `lcfm.flat.FlatRows`) is handled as flat arrays: windows, the
per-(row, band) standardization and padding are numpy operations over all points at once
(see `lcfm_models.collator_flat`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError

from ..collator_flat import (
    Windows,
    as_flat,
    is_kind,
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
    "attention_mask"[, "labels"]}, float32 (batch, time) tensors and a long (batch, time)
    mask."""

    def __init__(self, config: AstrafierConfig, *, task: str = "classify", train: bool = False,
                 label2id: Mapping[str, int] | None = None, seed: int = 0,
                 pad_to_max_length: bool = False):
        if task == "pretrain":
            raise ConfigError("astrafier has no self-supervised objective")
        if task != "classify":
            raise ConfigError(f"astrafier collator: unknown task {task!r}; tasks: classify")
        self.max_length = int(config.max_length)
        self.train = train
        self.label2id = dict(label2id) if label2id is not None else None
        super().__init__(seed)
        self.pad_to_max_length = pad_to_max_length

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        flat = as_flat(rows, WHO)
        require_points(flat, WHO)
        rng = self.worker_generator() if self.train else None
        windows = Windows(flat, window_starts(flat.lengths, self.max_length, rng),
                          self.max_length)
        time = windows.gather(flat.time).astype(np.float64)
        value = windows.gather(flat.value).astype(np.float64)
        value = np.where(is_kind(flat, "mag")[windows.row], -value, value)  # brighter: larger
        bands = max(len(flat.band_names), 1)
        value = _standardize(value, windows.row * bands + windows.gather(flat.band))
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
        if self.label2id is not None and any(label is not None for label in flat.label):
            batch["labels"] = torch.from_numpy(label_ids(flat, self.label2id, WHO,
                                                         IGNORE_INDEX))
        return batch


def _standardize(value: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance per group (row x band code); a constant group only loses
    its mean. Unused (row, band) pairs are empty bins of the bincounts."""
    size = int(group.max()) + 1 if group.size else 0
    count = np.maximum(np.bincount(group, minlength=size), 1)
    mean = np.bincount(group, weights=value, minlength=size) / count
    centred = value - mean[group]
    std = np.sqrt(np.bincount(group, weights=centred * centred, minlength=size) / count)
    constant = std <= np.finfo(np.float32).eps * np.maximum(1.0, np.abs(mean))
    return centred / np.where(constant, 1.0, std)[group]


__all__ = ["AstrafierCollator"]
