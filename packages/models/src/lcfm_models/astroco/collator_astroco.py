"""Canonical rows -> AstroCo tensors (paper 002, sect. 3.1 and 4; Astromer 2 windows).

Bands and units (`lcfm.bands`, docs/multiband.md): AstroCo reads magnitudes (sect. 3.1,
4), so flux rows are converted (Pogson, errors propagated; a band with non-positive fluxes
is standardised instead). With `config.band_combine == "joint"` (default) a row's bands stay
one interleaved, time-sorted sequence and every point carries its band's central
wavelength (`wavelengths`: ln(lambda / 5000 A), 0 for a band without one; a row's
`wavelength_scale` from the redshifting augmentation multiplies lambda), which the model
adds to its input embedding; with "mean" or "concat" each (light curve, band) is its own
sequence (`band_group`, `band_slot`) and the model combines the bands' embeddings.

Each sequence becomes one window of at most `config.max_length` observations: a random
window when `train=True` (seeded), the first window otherwise. Each window is normalised as
the paper does (sect. 4, "zero-mean magnitude and time"), per band: the window's time mean
and each band's value mean are subtracted (times stay in days); with
`config.value_normalization == "standardize"` values and errors are also divided by each
band's standard deviation in the window.

task="pretrain" adds the masked-reconstruction probing of sect. 3.1 / 4: of the valid steps
of each window, `probe_fraction` (50%) are probed; `mask_fraction` (30% of all) get value
and error = `mask_value` (zero), `random_fraction` (10%) get the value of a randomly drawn
observation of the same window, the rest of the probed steps (10%) are left unchanged.
Outputs `target_values` (the unmasked normalised window) and `target_mask` (probed steps).
With train=False the probing is drawn from a generator re-seeded at every call, so
validating the same batch twice gives the same loss.

task="classify" adds `labels` through `label2id` (rows without a label get -100, ignored
by the loss; a label missing from `label2id` is an error), and `extra_features` when the
batch has them (`flat.extras`).

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
from lcfm.bands import band_groups, convert, normalise, point_rows, wavelength_feature
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError
from lcfm.flat import FlatRows

from lcfm_models.astroco.configuration_astroco import AstroCoConfig
from lcfm_models.collator_flat import (
    BandLayout,
    Windows,
    as_flat,
    extra_features,
    label_ids,
    require_points,
    row_values,
    window_starts,
)

TASKS = ("pretrain", "classify")
IGNORE_LABEL = -100
WHO = "AstroCo collator"


class AstroCoCollator(SeededCollator):
    #: the unit AstroCo reads (sect. 3.1: magnitudes); see lcfm.bands
    value_kind = "mag"

    def __init__(self, config: AstroCoConfig, *, task: str, train: bool,
                 bands: Mapping[str, float] | None = None,
                 label2id: Mapping[str, int] | None = None, seed: int = 0):
        if task not in TASKS:
            raise ConfigError(f"AstroCo collator: task {task!r} is not one of {TASKS}")
        self.config, self.task, self.train = config, task, train
        self.bands = {str(k): float(v) for k, v in (bands or {}).items()}
        self.label2id = None if label2id is None else dict(label2id)
        super().__init__(seed)

    def _generator(self) -> np.random.Generator:
        if not self.train:  # deterministic validation
            return np.random.default_rng(self.seed)
        return self.worker_generator()

    def _normalise(self, windows: Windows, flat: FlatRows):
        """Sect. 4: zero-mean time per window and zero-mean values per band of the window
        (optionally unit-variance values, errors alike); lcfm.bands.normalise."""
        time = windows.gather(flat.time)
        time = (time - windows.mean(time)[windows.row]).astype(np.float32)  # float64 in: MJD
        mode = "standardize" if self.config.value_normalization == "standardize" else "center"
        group = band_groups(windows.row, windows.gather(flat.band), len(flat.band_names))
        value, error = normalise(windows.gather(flat.value), windows.gather(flat.error), group,
                                 mode)
        return time, value.astype(np.float32), error.astype(np.float32)

    def _wavelengths(self, windows: Windows, flat: FlatRows) -> np.ndarray:
        """ln(lambda / 5000 A) of every kept point (0 without a wavelength), with the
        redshifting augmentation's per-row scale."""
        feature = wavelength_feature(flat, self.bands)
        scale = np.log(np.maximum(row_values(flat, "wavelength_scale", 1.0), 1e-6))
        feature = np.where(feature != 0, feature + scale[point_rows(flat)], 0.0)
        return windows.gather(feature.astype(np.float32))

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
        objects = flat
        layout = BandLayout(convert(flat, self.value_kind), self.config, WHO)
        flat = layout.flat
        rng = self._generator()
        length = self.config.max_length
        windows = Windows(flat, window_starts(flat.lengths, length,
                                              rng if self.train else None), length)
        time, value, error = self._normalise(windows, flat)
        batch = {"times": torch.from_numpy(windows.pad(time, np.float32)),
                 "attention_mask": torch.from_numpy(windows.valid())}
        batch["wavelengths"] = torch.from_numpy(windows.pad(
            self._wavelengths(windows, flat), np.float32))
        if self.task == "pretrain":
            batch["target_values"] = torch.from_numpy(windows.pad(value, np.float32))
            value, error, probed = self._probe(windows, value, error, rng)
            batch["target_mask"] = torch.from_numpy(windows.pad(probed, np.int64))
        else:
            if self.label2id is not None:  # no label2id: unlabeled data (embeddings)
                batch["labels"] = torch.from_numpy(label_ids(objects, self.label2id, WHO,
                                                             IGNORE_LABEL))
            features = extra_features(objects, self.config, WHO)
            if features is not None:
                batch["extra_features"] = torch.from_numpy(features)
        batch["values"] = torch.from_numpy(windows.pad(value, np.float32))
        batch["errors"] = torch.from_numpy(windows.pad(error, np.float32))
        batch.update({k: torch.from_numpy(v) for k, v in layout.entries.items()})
        return batch


__all__ = ["AstroCoCollator"]
