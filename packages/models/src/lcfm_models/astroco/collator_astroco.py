"""Canonical rows -> AstroCo tensors (paper 002, sect. 3.1 and 4; Astromer 2 windows).

Each row becomes one window of at most `config.max_length` observations: a random window
when `train=True` (seeded), the first window otherwise. All points are used in time order,
whatever their band (AstroCo is single-band: multi-band rows enter as one interleaved
sequence). Each window is normalised as the paper does (sect. 4, "zero-mean magnitude and
time"): the window mean of the values and of the times is subtracted (times stay in days);
with `config.value_normalization == "standardize"` values and errors are also divided by
the window's standard deviation. Works the same for magnitudes and fluxes.

task="pretrain" adds the masked-reconstruction probing of sect. 3.1 / 4: of the valid steps
of each window, `probe_fraction` (50%) are probed; `mask_fraction` (30% of all) get value
and error = `mask_value` (zero), `random_fraction` (10%) get the value of a randomly drawn
observation of the same window, the rest of the probed steps (10%) are left unchanged.
Outputs `target_values` (the unmasked normalised window) and `target_mask` (probed steps).
With train=False the probing is drawn from a generator re-seeded at every call, so
validating the same batch twice gives the same loss.

task="classify" adds `labels` through `label2id` (rows without a label get -100, ignored
by the loss; a label missing from `label2id` is an error).

Batches are padded to their longest window; padding is zero with attention_mask = 0.

The batch (row dicts or `lcfm.flat.FlatRows`) is handled as flat arrays: windows, means,
probing and padding are numpy operations over all points at once (see
`lcfm_models.collator_flat`); each row's probing is a random permutation of its points
drawn as the ranks of random keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError
from lcfm.flat import FlatRows

from lcfm_models.astroco.configuration_astroco import AstroCoConfig
from lcfm_models.collator_flat import Windows, as_flat, label_ids, require_points, window_starts

TASKS = ("pretrain", "classify")
IGNORE_LABEL = -100
WHO = "AstroCo collator"


class AstroCoCollator(SeededCollator):
    def __init__(self, config: AstroCoConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None = None,
                 label2id: Mapping[str, int] | None = None, seed: int = 0):
        if task not in TASKS:
            raise ConfigError(f"AstroCo collator: task {task!r} is not one of {TASKS}")
        self.config, self.task, self.train = config, task, train
        self.bands = dict(bands or {})  # unused: single-band model, points interleaved
        self.label2id = None if label2id is None else dict(label2id)
        super().__init__(seed)

    def _generator(self) -> np.random.Generator:
        if not self.train:  # deterministic validation
            return np.random.default_rng(self.seed)
        return self.worker_generator()

    def _normalise(self, windows: Windows, time, value, error):
        """Sect. 4: zero-mean time and value per window (optionally unit-variance values)."""
        time = (time - windows.mean(time)[windows.row]).astype(np.float32)  # float64 in: MJD
        value = value.astype(np.float64)
        value = value - windows.mean(value)[windows.row]
        error = error.astype(np.float64)
        if self.config.value_normalization == "standardize":
            scale = np.sqrt(windows.mean(value * value))
            scale = np.where(scale > 0, scale, 1.0)[windows.row]
            value, error = value / scale, error / scale
        return time, value.astype(np.float32), error.astype(np.float32)

    def _probe(self, windows: Windows, value, error, rng):
        """BERT-style probing (sect. 3.1) of every window at once: each row's points are
        ranked by random keys (a random permutation); the first `mask` ranks are masked,
        the next `random` ones get a random value of the same window, the probed ones are
        the first `probe` ranks. Returns (input value, input error, probed mask)."""
        cfg, n, row = self.config, windows.lengths, windows.row
        n_probe = np.round(cfg.probe_fraction * n).astype(np.int64)
        n_mask = np.minimum(np.round(cfg.mask_fraction * n).astype(np.int64), n_probe)
        n_random = np.minimum(np.round(cfg.random_fraction * n).astype(np.int64),
                              n_probe - n_mask)
        rank = windows.ranks(rng.random(value.size))
        picks = windows.pick_in_row(rng.random(value.size))
        masked = rank < n_mask[row]
        randomised = ~masked & (rank < (n_mask + n_random)[row])
        probed = rank < n_probe[row]
        original = value
        value, error = value.copy(), error.copy()
        value[masked] = cfg.mask_value
        error[masked] = cfg.mask_value
        # random values are drawn from the window's own (unmasked) values: right scale
        value[randomised] = original[picks[randomised]]
        return value, error, probed

    def __call__(self, rows: Sequence[Mapping] | FlatRows) -> dict[str, torch.Tensor]:
        flat = as_flat(rows, WHO)
        require_points(flat, WHO)
        rng = self._generator()
        length = self.config.max_length
        windows = Windows(flat, window_starts(flat.lengths, length,
                                              rng if self.train else None), length)
        time, value, error = self._normalise(
            windows, windows.gather(flat.time), windows.gather(flat.value),
            windows.gather(flat.error))
        batch = {"times": torch.from_numpy(windows.pad(time, np.float32)),
                 "attention_mask": torch.from_numpy(windows.valid())}
        if self.task == "pretrain":
            batch["target_values"] = torch.from_numpy(windows.pad(value, np.float32))
            value, error, probed = self._probe(windows, value, error, rng)
            batch["target_mask"] = torch.from_numpy(windows.pad(probed, np.int64))
        elif self.label2id is not None:  # no label2id: unlabeled data (embeddings)
            batch["labels"] = torch.from_numpy(label_ids(flat, self.label2id, WHO,
                                                         IGNORE_LABEL))
        batch["values"] = torch.from_numpy(windows.pad(value, np.float32))
        batch["errors"] = torch.from_numpy(windows.pad(error, np.float32))
        return batch


__all__ = ["AstroCoCollator"]
