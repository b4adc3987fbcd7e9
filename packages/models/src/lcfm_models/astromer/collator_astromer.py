"""Canonical light-curve rows -> Astromer tensors (Donoso-Oliva et al., sect. 2.1 and 2.3).

Like transformers' `DataCollatorForLanguageModeling`, the pretraining mask is drawn here, so
a batch carries everything the loss needs and the model stays deterministic.

Bands and units (`lcfm.bands`, docs/multiband.md): Astromer reads magnitudes (sect. 2.1),
so flux rows are converted (Pogson, errors propagated; a band with non-positive fluxes is
standardised instead). Astromer is a single-band model: each (light curve, band) becomes
its own sequence (`band_group` says whose), and the model combines the bands' embeddings
by `config.band_combine` ("mean" or "concat", `lcfm_models.band_pooling`); a single-band
light curve is one sequence, exactly as before. Per sequence, a window of
`config.window_size` observations is cut -- a random one per call when training (sect. 2.1:
"different windows of 200 observations per epoch"), otherwise the first -- and its values
are shifted to zero mean (sect. 2.1), i.e. per band. Shorter windows are zero-padded with
`attention_mask` = 0 to the longest window of the batch (at most `window_size`): the model
has no fixed time axis, and padding a 30-point curve to 200 would make 85% of the work
padding. Times stay in days as stored (float64). Per-object `extra_features` of a batch
(`flat.extras`) are passed on for the classification head.

Pretraining mask (sect. 2.3, Fig. 1), drawn among the valid points of each window:
`probed_fraction` (50 %) are probed; of all points `random_fraction` (10 %) get the value of
a random observation of the same window and `kept_fraction` (10 %) stay visible; the other
probed points (30 %) are masked: their value is set to 0 (Astromer 2 replaces it with the
mask token) and they are excluded from attention. All probed points are loss targets.

Determinism: when training, windows and masks come from one generator seeded with `seed`
(re-seeded with (seed, worker id) inside a DataLoader worker, and by the engine per step), so
a run is reproducible; otherwise each row's mask is a hash of (seed, object_id, position),
the same on every evaluation whatever batch the row is in.

The batch (row dicts or `lcfm.flat.FlatRows`) is handled as flat arrays: windows, means,
masks and padding are numpy operations over all points at once (see
`lcfm_models.collator_flat`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.bands import convert, normalise
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError, DataError
from lcfm.flat import FlatRows

from ..collator_flat import (
    BandLayout,
    Windows,
    as_flat,
    describe,
    extra_features,
    label_ids,
    object_uniforms,
    require_points,
    window_starts,
)
from .configuration_astromer import AstromerConfig

TASKS = ("pretrain", "classify")
WHO = "Astromer collator"


class AstromerCollator(SeededCollator):
    """Callable: list of canonical rows or `FlatRows` -> dict of tensors for `model(**batch)`.

    Keys, all (sequences, width) with one sequence per (light curve, band) and width the
    longest window of the batch (<= window_size): input_values (float32), times (float64),
    errors (float32), attention_mask (int64); `band_group` (sequences,) int64, the light
    curve of each sequence, and `band_slot` for band_combine="concat"; for "pretrain" also
    target_values (float32), probe_mask and masked_positions (bool); for "classify" with
    `label2id` also labels (light curves,) int64, and extra_features when the batch has
    them."""

    #: the unit Astromer reads (Astromer 2 sect. 2.1: magnitudes); see lcfm.bands
    value_kind = "mag"

    def __init__(self, config: AstromerConfig, *, task: str, train: bool,
                 label2id: Mapping[str, int] | None = None, seed: int = 0):
        if task not in TASKS:
            raise ConfigError(f"Astromer collator: unknown task {task!r}; "
                              f"tasks: {', '.join(TASKS)}")
        self.config = config
        self.window_size = config.window_size
        self.probed_fraction = config.probed_fraction
        self.random_fraction = config.random_fraction
        self.kept_fraction = config.kept_fraction
        super().__init__(seed)
        self.task, self.train = task, train
        self.label2id = dict(label2id) if label2id else None

    def _generator(self) -> np.random.Generator:
        return self.worker_generator()

    def __call__(self, rows: Sequence[Mapping] | FlatRows) -> dict[str, torch.Tensor]:
        flat = as_flat(rows, WHO)
        require_points(flat, WHO)
        _check_finite(flat)
        objects = flat
        layout = BandLayout(convert(flat, self.value_kind), self.config, WHO)
        flat = layout.flat
        rng = self._generator() if self.train else None
        windows = Windows(flat, window_starts(flat.lengths, self.window_size, rng),
                          self.window_size)
        # sect. 2.1: zero-mean window; each sequence holds one band, so this is per band
        values, errors = normalise(windows.gather(flat.value), windows.gather(flat.error),
                                   windows.row, "center")
        values, errors = values.astype(np.float32), errors.astype(np.float32)
        out = {"times": torch.from_numpy(windows.pad(windows.gather(flat.time), np.float64)),
               "errors": torch.from_numpy(windows.pad(errors, np.float32)),
               "attention_mask": torch.from_numpy(windows.valid())}
        if self.task == "pretrain":
            probed, masked, shown = self._probe(flat, windows, values, rng,
                                                None if rng is not None else layout.keys())
            out.update(input_values=torch.from_numpy(windows.pad(shown, np.float32)),
                       target_values=torch.from_numpy(windows.pad(values, np.float32)),
                       probe_mask=torch.from_numpy(windows.pad(probed, bool)),
                       masked_positions=torch.from_numpy(windows.pad(masked, bool)))
        else:
            out["input_values"] = torch.from_numpy(windows.pad(values, np.float32))
            if self.label2id is not None:  # no label2id: unlabeled data (embeddings)
                out["labels"] = torch.from_numpy(label_ids(objects, self.label2id, WHO, None))
            features = extra_features(objects, self.config, WHO)
            if features is not None:
                out["extra_features"] = torch.from_numpy(features)
        out.update({k: torch.from_numpy(v) for k, v in layout.entries.items()})
        return out

    def _probe(self, flat: FlatRows, windows: Windows, values: np.ndarray,
               rng: np.random.Generator | None, keys: np.ndarray | None = None):
        """BERT-style probing of every window at once -> (probed, masked, shown values),
        flat in kept order. Each row's points are ranked by random keys (a random
        permutation of the row): the first `probed` ranks are probed, of which the first
        `random` get another point's value, the next `kept` stay visible and the rest are
        masked."""
        n = windows.lengths
        n_probed = (self.probed_fraction * n).astype(np.int64)
        n_random = np.minimum((self.random_fraction * n).astype(np.int64), n_probed)
        n_kept = np.minimum((self.kept_fraction * n).astype(np.int64), n_probed - n_random)
        if rng is not None:
            keys, picks = rng.random(values.size), rng.random(values.size)
        else:
            hashed = keys
            keys = object_uniforms(flat, windows, self.seed, 0, hashed)
            picks = object_uniforms(flat, windows, self.seed, 1, hashed)
        rank, row = windows.ranks(keys), windows.row
        probed = rank < n_probed[row]
        masked = probed & (rank >= (n_random + n_kept)[row])
        randomised = rank < n_random[row]
        shown = values.copy()
        shown[randomised] = values[windows.pick_in_row(picks)[randomised]]
        shown[masked] = 0.0  # hidden; Astromer 2 substitutes its mask token
        return probed, masked, shown


def _check_finite(flat: FlatRows) -> None:
    """Every time and value of a row must be finite (checked on the whole row)."""
    bad = ~np.isfinite(flat.time) | ~np.isfinite(flat.value)
    hits = np.flatnonzero(bad)
    if hits.size:  # the row of the first bad point, without a row id for every point
        row = int(np.searchsorted(flat.offsets, hits[0], side="right")) - 1
        count = int(bad[flat.offsets[row]:flat.offsets[row + 1]].sum())
        raise DataError(f"{WHO}: {describe(flat, row)} has {count} non-finite time or "
                        f"value(s)")


__all__ = ["AstromerCollator", "TASKS"]
