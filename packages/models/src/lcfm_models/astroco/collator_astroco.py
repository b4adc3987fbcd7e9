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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lcfm.collate import SeededCollator
from lcfm.exceptions import ConfigError, DataError

from lcfm_models.astroco.configuration_astroco import AstroCoConfig

TASKS = ("pretrain", "classify")
IGNORE_LABEL = -100


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

    def _window(self, n: int, rng: np.random.Generator) -> slice:
        length = self.config.max_length
        if n <= length:
            return slice(0, n)
        start = int(rng.integers(0, n - length + 1)) if self.train else 0
        return slice(start, start + length)

    def _normalise(self, time, value, error):
        time = (time - time.mean()).astype(np.float32)  # float64 in: MJD keeps its precision
        value = value.astype(np.float64)
        value = value - value.mean()
        error = error.astype(np.float64)
        if self.config.value_normalization == "standardize":
            scale = value.std()
            scale = scale if scale > 0 else 1.0
            value, error = value / scale, error / scale
        return time, value.astype(np.float32), error.astype(np.float32)

    def _probe(self, value, error, rng):
        """BERT-style probing (sect. 3.1): returns (input value, input error, probed mask)."""
        n = value.size
        cfg = self.config
        order = rng.permutation(n)
        n_probe = int(round(cfg.probe_fraction * n))
        n_mask = min(int(round(cfg.mask_fraction * n)), n_probe)
        n_random = min(int(round(cfg.random_fraction * n)), n_probe - n_mask)
        masked, randomised = order[:n_mask], order[n_mask:n_mask + n_random]
        probed = np.zeros(n, dtype=bool)
        probed[order[:n_probe]] = True
        original = value
        value, error = value.copy(), error.copy()
        value[masked] = cfg.mask_value
        error[masked] = cfg.mask_value
        # random values are drawn from the window's own (unmasked) values: right scale
        value[randomised] = original[rng.integers(0, n, size=n_random)]
        return value, error, probed

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if not rows:
            raise DataError("AstroCo collator: empty batch")
        rng = self._generator()
        windows = []
        for index, row in enumerate(rows):
            time = np.asarray(row["time"], dtype=np.float64)
            if time.size == 0:
                raise DataError(f"AstroCo collator: row {index} (object_id="
                                f"{row.get('object_id')!r}) has no observations")
            keep = self._window(time.size, rng)
            windows.append(self._normalise(time[keep], np.asarray(row["value"])[keep],
                                           np.asarray(row["error"])[keep]))
        batch, length = len(rows), max(w[0].size for w in windows)
        out = {name: np.zeros((batch, length), dtype=np.float32)
               for name in ("values", "times", "errors")}
        attention = np.zeros((batch, length), dtype=np.int64)
        if self.task == "pretrain":
            targets = np.zeros((batch, length), dtype=np.float32)
            probed = np.zeros((batch, length), dtype=np.int64)
        for i, (time, value, error) in enumerate(windows):
            n = time.size
            attention[i, :n] = 1
            out["times"][i, :n] = time
            if self.task == "pretrain":
                targets[i, :n] = value
                value, error, probe = self._probe(value, error, rng)
                probed[i, :n] = probe
            out["values"][i, :n], out["errors"][i, :n] = value, error
        batch_tensors = {k: torch.from_numpy(v) for k, v in out.items()}
        batch_tensors["attention_mask"] = torch.from_numpy(attention)
        if self.task == "pretrain":
            batch_tensors["target_values"] = torch.from_numpy(targets)
            batch_tensors["target_mask"] = torch.from_numpy(probed)
        elif self.label2id is not None:  # no label2id: unlabeled data (embeddings)
            batch_tensors["labels"] = torch.tensor(
                [self._label_id(row, i) for i, row in enumerate(rows)], dtype=torch.long)
        return batch_tensors

    def _label_id(self, row: Mapping, index: int) -> int:
        label = row.get("label")
        if label is None:
            return IGNORE_LABEL
        if label not in self.label2id:
            raise DataError(f"AstroCo collator: row {index} (object_id={row.get('object_id')!r})"
                            f" has label {label!r}, not in label2id "
                            f"({', '.join(map(str, self.label2id))})")
        return int(self.label2id[label])


__all__ = ["AstroCoCollator"]
