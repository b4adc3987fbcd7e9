"""Canonical light-curve rows -> Astromer tensors (Donoso-Oliva et al., sect. 2.1 and 2.3).

Like transformers' `DataCollatorForLanguageModeling`, the pretraining mask is drawn here, so
a batch carries everything the loss needs and the model stays deterministic.

Per row: every observation is used in time order whatever its band (Astromer is a
single-band model; multi-band rows are taken interleaved as stored). A window of
`config.window_size` observations is cut -- a random one per call when training (sect. 2.1:
"different windows of 200 observations per epoch"), otherwise the first -- its values are
shifted to zero mean (sect. 2.1) -- and, for flux rows, divided by their standard
deviation, since the model is defined on magnitudes -- and shorter windows are zero-padded with
`attention_mask` = 0. Times stay in days as stored (float64).

Pretraining mask (sect. 2.3, Fig. 1), drawn among the valid points of each window:
`probed_fraction` (50 %) are probed; of all points `random_fraction` (10 %) get the value of
a random observation of the same window and `kept_fraction` (10 %) stay visible; the other
probed points (30 %) are masked: their value is set to 0 (Astromer 2 replaces it with the
mask token) and they are excluded from attention. All probed points are loss targets.

Determinism: when training, windows and masks come from one generator seeded with `seed`
(re-seeded with (seed, worker id) inside a DataLoader worker), so a run is reproducible;
otherwise each row's mask is seeded by (seed, object_id), the same on every evaluation.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError, DataError

from .configuration_astromer import AstromerConfig

TASKS = ("pretrain", "classify")


class AstromerCollator(SeededCollator):
    """Callable: list of canonical rows -> dict of tensors for `model(**batch)`.

    Keys, all (batch, window_size): input_values (float32), times (float64), errors
    (float32), attention_mask (int64); for "pretrain" also target_values (float32),
    probe_mask and masked_positions (bool); for "classify" also labels (batch,) int64."""

    def __init__(self, config: AstromerConfig, *, task: str, train: bool,
                 label2id: Mapping[str, int] | None = None, seed: int = 0):
        if task not in TASKS:
            raise ConfigError(f"Astromer collator: unknown task {task!r}; "
                              f"tasks: {', '.join(TASKS)}")
        self.window_size = config.window_size
        self.probed_fraction = config.probed_fraction
        self.random_fraction = config.random_fraction
        self.kept_fraction = config.kept_fraction
        super().__init__(seed)
        self.task, self.train = task, train
        self.label2id = dict(label2id) if label2id else None

    def _generator(self) -> np.random.Generator:
        return self.worker_generator()

    def _row_generator(self, object_id: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(object_id.encode())])

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if not rows:
            raise DataError("Astromer collator: empty batch")
        batch, width = len(rows), self.window_size
        values = np.zeros((batch, width), np.float32)
        times = np.zeros((batch, width), np.float64)
        errors = np.zeros((batch, width), np.float32)
        attention = np.zeros((batch, width), np.int64)
        pretrain = self.task == "pretrain"
        if pretrain:
            targets = np.zeros((batch, width), np.float32)
            probed = np.zeros((batch, width), bool)
            masked = np.zeros((batch, width), bool)
        labels = np.zeros(batch, np.int64)
        shared = self._generator() if self.train else None

        for i, row in enumerate(rows):
            object_id = str(row.get("object_id", f"row {i}"))
            rng = shared if self.train else self._row_generator(object_id)
            t, v, e = _window(row, object_id, width, rng if self.train else None)
            n = len(t)
            v = v - v.mean()  # sect. 2.1: zero-mean window
            if row.get("value_kind") == "flux":
                # Astromer is defined on magnitudes (variations of order 0.1-1); fluxes
                # span thousands and overflow attention. A flux window is also divided by
                # its standard deviation (errors alike), which puts it on that scale.
                scale = float(v.std()) or 1.0
                v, e = v / scale, (e / scale).astype(np.float32)
            v = v.astype(np.float32)
            times[i, :n], errors[i, :n], attention[i, :n] = t, e, 1
            values[i, :n] = v
            if pretrain:
                targets[i, :n] = v
                probe, hide, shown = self._probe(v, rng)
                probed[i, :n], masked[i, :n], values[i, :n] = probe, hide, shown
            if self.task == "classify" and self.label2id is not None:
                labels[i] = self._label(row, object_id)

        out = {
            "input_values": torch.from_numpy(values),
            "times": torch.from_numpy(times),
            "errors": torch.from_numpy(errors),
            "attention_mask": torch.from_numpy(attention),
        }
        if pretrain:
            out.update(target_values=torch.from_numpy(targets),
                       probe_mask=torch.from_numpy(probed),
                       masked_positions=torch.from_numpy(masked))
        elif self.label2id is not None:  # no label2id: unlabeled data (embeddings)
            out["labels"] = torch.from_numpy(labels)
        return out

    def _probe(self, values: np.ndarray, rng: np.random.Generator):
        """BERT-style probing of one window's valid values -> (probed, masked, new values)."""
        n = len(values)
        n_probed = int(self.probed_fraction * n)
        n_random = min(int(self.random_fraction * n), n_probed)
        n_kept = min(int(self.kept_fraction * n), n_probed - n_random)
        order = rng.permutation(n)
        probed, masked = np.zeros(n, bool), np.zeros(n, bool)
        probed[order[:n_probed]] = True
        masked[order[n_random + n_kept:n_probed]] = True
        shown = values.copy()
        randomised = order[:n_random]
        shown[randomised] = values[rng.integers(0, n, size=n_random)]
        shown[masked] = 0.0  # hidden; Astromer 2 substitutes its mask token
        return probed, masked, shown

    def _label(self, row: Mapping, object_id: str) -> int:
        label = row.get("label")
        if label is None or label not in self.label2id:
            raise DataError(f"Astromer collator: object_id {object_id!r} has label {label!r}, "
                            f"which is not in label2id ({', '.join(map(str, self.label2id))})")
        return int(self.label2id[label])


def _window(row: Mapping, object_id: str, width: int, rng: np.random.Generator | None):
    """(time, value, error) of one window: random start with `rng`, else the first."""
    try:
        t = np.asarray(row["time"], np.float64)
        v = np.asarray(row["value"], np.float64)
        e = np.asarray(row["error"], np.float32)
    except KeyError as exc:
        raise DataError(f"Astromer collator: object_id {object_id!r} has no {exc.args[0]!r}") \
            from None
    if not len(t) == len(v) == len(e):
        raise DataError(f"Astromer collator: object_id {object_id!r} has {len(t)} times, "
                        f"{len(v)} values and {len(e)} errors")
    if len(t) == 0:
        raise DataError(f"Astromer collator: object_id {object_id!r} has no observations")
    bad = int((~np.isfinite(t) | ~np.isfinite(v)).sum())
    if bad:
        raise DataError(f"Astromer collator: object_id {object_id!r} has {bad} non-finite "
                        f"time or value(s)")
    start = 0
    if rng is not None and len(t) > width:
        start = int(rng.integers(0, len(t) - width + 1))
    end = start + width
    return t[start:end], v[start:end], e[start:end]


__all__ = ["AstromerCollator", "TASKS"]
