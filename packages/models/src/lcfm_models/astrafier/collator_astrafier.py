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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError, DataError

from .configuration_astrafier import AstrafierConfig

IGNORE_INDEX = -100


class AstrafierCollator(SeededCollator):
    """Callable: list of canonical rows -> {"values", "times", "attention_mask"[, "labels"]},
    float32 (batch, time) tensors and a long (batch, time) mask."""

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
        if not rows:
            raise DataError("astrafier collator: empty batch")
        self._reseed_per_worker()
        windows = [self._window(row, i) for i, row in enumerate(rows)]
        width = self.max_length if self.pad_to_max_length else max(len(t) for t, _ in windows)
        values = np.zeros((len(rows), width), dtype=np.float32)
        times = np.zeros((len(rows), width), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, (t, v) in enumerate(windows):
            times[i, : len(t)], values[i, : len(v)], mask[i, : len(t)] = t, v, 1
        batch = {"values": torch.from_numpy(values), "times": torch.from_numpy(times),
                 "attention_mask": torch.from_numpy(mask)}
        labels = self._labels(rows)
        if labels is not None:
            batch["labels"] = labels
        return batch

    def _reseed_per_worker(self) -> None:
        self.worker_generator()

    def _window(self, row: Mapping, index: int) -> tuple[np.ndarray, np.ndarray]:
        time = np.asarray(row["time"], dtype=np.float64)
        value = np.asarray(row["value"], dtype=np.float64)
        if len(time) == 0 or len(time) != len(value):
            raise DataError(f"astrafier collator: row {index} (object_id="
                            f"{row.get('object_id')!r}) has {len(time)} times and "
                            f"{len(value)} values; need the same, non-zero number")
        band = row.get("band")
        band = np.asarray(band) if band is not None and len(band) == len(time) else None
        start = 0
        if len(time) > self.max_length and self.train:
            start = int(self._rng.integers(0, len(time) - self.max_length + 1))
        stop = start + self.max_length
        time, value = time[start:stop], value[start:stop]
        band = band[start:stop] if band is not None else None
        if row.get("value_kind") == "mag":
            value = -value  # brighter is larger, as for flux
        value = _standardize(value, band)
        # subtract in float64 before the float32 cast: BTJD/MJD days would lose minutes
        return (time - time[0]).astype(np.float32), value.astype(np.float32)

    def _labels(self, rows: Sequence[Mapping]) -> torch.Tensor | None:
        names = [row.get("label") for row in rows]
        if all(name is None for name in names):
            return None
        if self.label2id is None:  # unlabeled use (embeddings, prediction)
            return None
        ids = []
        for i, name in enumerate(names):
            if name is None:
                ids.append(IGNORE_INDEX)
            elif name in self.label2id:
                ids.append(int(self.label2id[name]))
            else:
                raise DataError(f"astrafier collator: row {i} (object_id="
                                f"{rows[i].get('object_id')!r}) has label {name!r}, not one of "
                                f"{sorted(self.label2id)}")
        return torch.tensor(ids, dtype=torch.long)


def _standardize(value: np.ndarray, band: np.ndarray | None) -> np.ndarray:
    """Zero mean and unit variance per band; a constant band only loses its mean."""
    out = np.empty_like(value)
    groups = [np.ones(len(value), dtype=bool)] if band is None else [
        band == name for name in np.unique(band)]
    for keep in groups:
        part = value[keep]
        mean, std = part.mean(), part.std()
        constant = std <= np.finfo(np.float32).eps * max(1.0, abs(mean))
        out[keep] = (part - mean) / (1.0 if constant else std)
    return out


__all__ = ["AstrafierCollator"]
