"""Canonical rows -> ATCAT tensors (paper 003_05ad419fc2efc3e7.txt, sect. 2.1, 2.2.1-2.2.3).

A row's points stay in one multi-band, time-sorted sequence; each point becomes one token
(time in days since the window's first point, flux, flux_err, the band's central wavelength).

Units (`lcfm.bands`, docs/multiband.md): ATCAT's flux squashing (sect. 2.5.1) was built
for ELAsTiCC's difference fluxes in FLUXCAL units (zero point 27.5). Flux rows are read as
stored; magnitude rows are converted to FLUXCAL flux (Pogson, errors propagated) and each
band is then shifted to zero mean over the light curve -- the reference level a
difference-imaging template provides -- so a star's variability, not its brightness or
colour, is what the tokens carry (`model_flux`; the mixture components of sect. 2.5.1 are
fitted on the same values).

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
`metadata` (or a (batch, metadata_dim) array `extras[metadata_key]` of a `FlatRows`);
remaining non-finite entries become 0 (the indicators carry that information). A row's
`wavelength_scale` (the redshifting augmentation of `lcfm.augment`, sect. 2.1.2; a
`FlatRows` carries it in `extras`) multiplies its wavelengths, and a row's `time_shift`
(the time-shift augmentation, sect. 2.1.2: all times + an offset ~ U[0, 10] days) is added
to its times *after* they restart at 0; without that the re-zeroing would undo the shift.

The batch (row dicts or `lcfm.flat.FlatRows`) is handled as flat arrays: windows, checks,
wavelength lookup through the band codes, [PRED] packing and padding are numpy operations
over all points at once (see `lcfm_models.collator_flat`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.bands import ZERO_POINT, center_bands, convert, row_kinds
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError, DataError
from lcfm.flat import FlatRows

from ..collator_flat import (
    Windows,
    as_flat,
    describe,
    first_bad_row,
    label_ids,
    require_points,
    row_values,
    scatter,
    window_starts,
)
from .configuration_atcat import AtcatConfig
from .embeddings_atcat import PAD, POINT, PRED
from .losses_atcat import IGNORE

TASKS = ("pretrain", "classify")
WHO = "atcat collator"


def model_flux(flat: FlatRows, zero_point: float = ZERO_POINT) -> FlatRows:
    """The batch in the flux ATCAT reads (module docstring): flux rows unchanged, magnitude
    rows in FLUXCAL flux with each band centred on its mean over the light curve."""
    was_mag = row_kinds(flat)
    return center_bands(convert(flat, "flux", zero_point), was_mag)


class AtcatCollator(SeededCollator):
    """Callable: list of canonical rows or `FlatRows` -> dict of tensors for `model(**batch)`."""

    #: the unit ATCAT reads (sect. 2.5.1: ELAsTiCC FLUXCAL flux); see lcfm.bands
    value_kind = "flux"

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

    # ---------------------------------------------------------------- points
    def _points(self, flat: FlatRows) -> tuple[Windows, dict[str, np.ndarray]]:
        """The kept points of every row (see module docstring), flat in kept order."""
        require_points(flat, WHO)
        keep = self.config.max_length
        windows = Windows(flat, window_starts(flat.lengths, keep,
                                              self.rng if self.train else None), keep)
        time = windows.gather(flat.time).astype(np.float64)
        value = windows.gather(flat.value).astype(np.float32)
        error = windows.gather(flat.error).astype(np.float32)
        for name, array in (("time", time), ("value", value), ("error", error)):
            row = first_bad_row(~np.isfinite(array), windows.row)
            if row is not None:
                raise DataError(f"{WHO}: {describe(flat, row)}: non-finite {name!r}")
        same_row = windows.row[1:] == windows.row[:-1]
        row = first_bad_row((np.diff(time) < 0) & same_row, windows.row[1:])
        if row is not None:
            raise DataError(f"{WHO}: {describe(flat, row)}: time is not sorted")
        table = np.array([self.bands.get(str(n), np.nan) for n in flat.band_names],
                         dtype=np.float32)
        codes = windows.gather(flat.band)
        wavelength = table[codes] if table.size else np.full(codes.size, np.nan, np.float32)
        unknown = np.flatnonzero(np.isnan(wavelength))
        if unknown.size:
            k = int(unknown[0])
            raise DataError(f"{WHO}: {describe(flat, int(windows.row[k]))}: band "
                            f"{flat.band_names[codes[k]]!r} has no wavelength; known bands: "
                            f"{', '.join(self.bands)}")
        # the redshifting augmentation (lcfm.augment, ATCAT sect. 2.1.2) scales wavelengths
        wavelength *= row_values(flat, "wavelength_scale", 1.0).astype(
            np.float32)[windows.row]
        # the time-shift augmentation (ATCAT sect. 2.1.2) moves the window's first point
        # from t = 0 to t = offset; added after re-zeroing, which would otherwise cancel it
        shift = row_values(flat, "time_shift", 0.0)[windows.row]
        times = (time - windows.first(time)[windows.row] + shift).astype(np.float32)
        return windows, {"times": times, "flux": value, "flux_err": error,
                         "wavelength": wavelength}

    def _pack_for_prediction(self, windows: Windows, points: dict[str, np.ndarray]
                             ) -> dict[str, torch.Tensor]:
        """[LC0] [PRED1] [LC1] ... [PRED n-1] [LC n-1]: 2n - 1 tokens per row (sect. 2.2.3),
        laid out for the whole batch at once: token j of a row reads point (j + 1) // 2 and
        is a [PRED] token when j is odd."""
        tokens = 2 * windows.lengths - 1
        offsets = np.concatenate([[0], np.cumsum(tokens)])
        row = np.repeat(np.arange(windows.batch), tokens)
        position = np.arange(offsets[-1]) - offsets[:-1][row]
        point = windows.offsets[:-1][row] + (position + 1) // 2
        is_pred = position % 2 == 1
        flux = points["flux"][point]
        packed = {key: values[point] for key, values in points.items()}
        packed["target_flux"] = np.where(is_pred, flux, 0.0).astype(np.float32)
        packed["target_flux_err"] = np.where(is_pred, packed["flux_err"], 0.0).astype(
            np.float32)
        packed["flux"] = np.where(is_pred, 0.0, flux).astype(np.float32)
        shape = (windows.batch, int(tokens.max()))
        batch = {key: torch.from_numpy(scatter(row, position, values, shape, np.float32))
                 for key, values in packed.items()}
        batch["token_type"] = torch.from_numpy(scatter(
            row, position, np.where(is_pred, PRED, POINT), shape, np.int64, fill=PAD))
        batch["attention_mask"] = (batch["token_type"] != PAD).long()
        return batch

    def _metadata(self, flat: FlatRows) -> np.ndarray:
        key, size = self.config.metadata_key, self.config.metadata_dim
        if key in flat.extras:
            vectors = np.asarray(flat.extras[key], dtype=np.float32).reshape(len(flat), -1)
            if vectors.shape[1] != size:
                raise DataError(f"{WHO}: extras[{key!r}] has {vectors.shape[1]} values per "
                                f"row, the model expects metadata_dim={size}")
        else:
            vectors = np.empty((len(flat), size), dtype=np.float32)
            for index in range(len(flat)):  # one small vector per row
                meta = flat.meta[index] if flat.meta else {}
                if key not in (meta or {}) or meta[key] is None:
                    raise DataError(f"{WHO}: {describe(flat, index)}: meta has no {key!r} "
                                    f"vector (the model has metadata_dim={size})")
                vector = np.asarray(meta[key], dtype=np.float32).ravel()
                if vector.shape != (size,):
                    raise DataError(f"{WHO}: {describe(flat, index)}: meta[{key!r}] has "
                                    f"{vector.size} values, the model expects "
                                    f"metadata_dim={size}")
                vectors[index] = vector
        return np.nan_to_num(vectors, nan=0.0, posinf=0.0, neginf=0.0)

    # ---------------------------------------------------------------- batch
    def __call__(self, rows: Sequence[Mapping] | FlatRows) -> dict[str, torch.Tensor]:
        flat = as_flat(rows, WHO, need_band=True)
        require_points(flat, WHO)
        windows, points = self._points(model_flux(flat))
        if self.task == "pretrain":
            batch = self._pack_for_prediction(windows, points)
        else:  # every valid token is a point: no token_type
            batch = {key: torch.from_numpy(windows.pad(values, np.float32))
                     for key, values in points.items()}
            batch["attention_mask"] = torch.from_numpy(windows.valid())
            if self.label2id is not None:  # None: unlabeled data
                batch["labels"] = torch.from_numpy(label_ids(flat, self.label2id, WHO,
                                                             IGNORE))
        if self.config.metadata_dim > 0:
            batch["metadata"] = torch.from_numpy(self._metadata(flat))
        return batch


__all__ = ["AtcatCollator", "model_flux"]
