"""Batched inference over whole light curves: class probabilities (optionally Monte-Carlo
dropout passes, ASTRAFier sect. 3.6: "keeping dropout active during inference ... and
performing 20 forward passes, taking the mean of these outputs as the final predicted
probability distribution") and embeddings, per light curve and per object.

A model whose output carries `unsure_logits` (ATCAT's extra "unsure" output, sect. 2.2.5 and
2.7) also gives p_unsure: the last entry of softmax(cat(logits, unsure_logits)), the
probability the model puts on "unsure"; the class probabilities stay the softmax over the
classes alone (they sum to one, whatever the unsure output says).

Whole light curves (issue 9, "Whole light curves"): a model whose input holds at most W
observations (`ModelPlugin.inference_window`: Astromer's 200-observation windows, AstroCo's,
ATCAT's and ASTRAFier's `max_length`) gets each light curve as consecutive windows
[0, W), [W, 2W), ... covering every observation; the last one may be shorter. A light
curve's probabilities (or embedding) are the mean of its windows' probabilities (or
pooled embeddings) weighted by the number of observations in each window, so every
observation counts the same and a short remainder window does not weigh as much as a
full one. Training keeps the papers' random windows (the collators, train=True).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from lcfm.data import LightCurveDataset
from lcfm.engine.batching import evaluation_batches, to_device
from lcfm.exceptions import ConfigError


class WindowedRows(torch.utils.data.Dataset):
    """The consecutive windows of at most `window` observations of every row of a
    `LightCurveDataset` (one item per row when `window` is None)."""

    def __init__(self, dataset: LightCurveDataset, window: int | None):
        self.dataset = dataset
        lengths = np.diff(dataset.offsets)
        counts = (np.ones_like(lengths) if not window
                  else np.maximum(1, -(-lengths // window)))
        self.row = np.repeat(np.arange(lengths.size), counts)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        position = np.arange(self.row.size) - np.repeat(first, counts)  # window number in row
        self.start = position * (window or 0)
        self.stop = (np.minimum(self.start + window, lengths[self.row]) if window
                     else lengths[self.row])
        self.n_rows = lengths.size

    def __len__(self) -> int:
        return self.row.size

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[int(self.row[index])]
        cut = slice(int(self.start[index]), int(self.stop[index]))
        for key in ("time", "value", "error", "band"):
            item[key] = item[key][cut]
        return item

    @property
    def observations(self) -> np.ndarray:
        """Observations in each window."""
        return self.stop - self.start

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """Observation-weighted mean of window `values` (windows, ...) for each row."""
        weights = self.observations.astype(np.float64)
        flat = values.reshape(values.shape[0], -1).astype(np.float64) * weights[:, None]
        sums = np.zeros((self.n_rows, flat.shape[1]))
        np.add.at(sums, self.row, flat)
        sums /= np.bincount(self.row, weights=weights, minlength=self.n_rows)[:, None]
        return sums.reshape((self.n_rows, *values.shape[1:]))

    def row_observations(self) -> np.ndarray:
        """Observations of each row that entered the model (all of them)."""
        return np.bincount(self.row, weights=self.observations,
                           minlength=self.n_rows).astype(np.int64)


@dataclass
class RowPredictions:
    """Per light curve: `passes` (passes, rows, classes) window-aggregated probabilities of
    each forward pass (one pass without MC dropout), and `observations` (rows,) used;
    `unsure` (passes, rows): p_unsure of a model with an "unsure" output, else None."""

    passes: np.ndarray
    observations: np.ndarray
    unsure: np.ndarray | None = None

    @property
    def probs(self) -> np.ndarray:
        return self.passes.mean(0)


def enable_mc_dropout(model, plugin) -> list[torch.nn.Module]:
    """Switch the model's dropout modules (its own rates) to training mode; a model with
    no active dropout is a ConfigError: MC sampling would repeat one deterministic pass and
    report a standard deviation of zero (issue 9, "Honest uncertainty")."""
    modules = plugin.mc_dropout_modules(model)
    if not modules:
        raise ConfigError(
            f"--mc-samples: the {plugin.name} model has no active dropout (no dropout layer "
            "with p > 0), so Monte-Carlo dropout cannot estimate an uncertainty; predict "
            "without --mc-samples, or fine-tune with a dropout rate (e.g. --config "
            "<dropout field>=0.1)")
    for module in modules:
        module.train()
    return modules


@torch.no_grad()
def predict_frame(model, plugin, frame: pl.DataFrame, collate, n_classes: int,
                  batch_size: int = 64, mc_samples: int = 0, seed: int = 0
                  ) -> RowPredictions:
    """Probabilities of every row of `frame` over all its observations (module docstring);
    with `mc_samples` > 0, that many passes with the model's dropout active."""
    if mc_samples < 0:
        raise ConfigError(f"--mc-samples {mc_samples}: must be 0 (one deterministic pass) or "
                          "a positive number of passes")
    model.eval()
    device = next(model.parameters()).device
    # a peft wrapper forwards `config` to the adapted model
    windows = WindowedRows(LightCurveDataset(frame), plugin.inference_window(model.config))
    if mc_samples:
        enable_mc_dropout(model, plugin)
        torch.manual_seed(seed)
    runs = []
    try:
        for _ in range(max(mc_samples, 1)):
            chunks = []
            for batch in evaluation_batches(windows, batch_size, collate, seed):
                batch.pop("labels", None)
                chunks.append(class_probabilities(model(**to_device(batch, device)),
                                                  n_classes).cpu().numpy())
            runs.append(windows.per_row(np.concatenate(chunks)))
    finally:
        model.eval()
    passes = np.stack(runs).astype(np.float32)
    unsure = passes[..., n_classes] if passes.shape[-1] > n_classes else None
    return RowPredictions(passes[..., :n_classes], windows.row_observations(), unsure)


def class_probabilities(output, n_classes: int, step: bool = False) -> torch.Tensor:
    """(..., classes [+ 1]) softmax over the classes, with p_unsure appended when the output
    has `unsure_logits` (module docstring). `step`: the per-point outputs of a causal
    model (`step_logits`, `step_unsure_logits`)."""
    logits = (output.step_logits if step else output.logits)[..., :n_classes].float()
    probs = logits.softmax(-1)
    unsure = getattr(output, "step_unsure_logits" if step else "unsure_logits", None)
    if unsure is None:
        return probs
    joint = torch.cat([logits, unsure.float().unsqueeze(-1)], -1).softmax(-1)
    return torch.cat([probs, joint[..., -1:]], -1)


@torch.no_grad()
def embed_frame(model, plugin, frame: pl.DataFrame, collate, batch_size: int = 64
                ) -> tuple[np.ndarray, np.ndarray]:
    """(pooled embedding per row, observations used per row): the observation-weighted
    mean of the windows' `pooler_output` (module docstring)."""
    model.eval()
    device = next(model.parameters()).device
    windows = WindowedRows(LightCurveDataset(frame), plugin.inference_window(model.config))
    chunks = []
    for batch in evaluation_batches(windows, batch_size, collate):
        batch = {k: v.to(device) for k, v in batch.items()
                 if torch.is_tensor(v) and k != "labels"}
        chunks.append(model(**batch).pooler_output.float().cpu().numpy())
    return windows.per_row(np.concatenate(chunks)), windows.row_observations()


def object_sums(object_ids, values: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(objects in first-seen order, sum of `values` over each object's rows, row count)."""
    ids = np.asarray(object_ids, dtype=object)
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    sums = np.zeros((unique.size, flat.shape[1]))
    np.add.at(sums, inverse, flat)
    order = np.argsort(first)
    counts = np.bincount(inverse, minlength=unique.size)
    return (unique[order].tolist(), sums[order].reshape((unique.size, *values.shape[1:])),
            counts[order])

