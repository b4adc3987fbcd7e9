"""Batched inference: class probabilities (optionally Monte-Carlo dropout mean and std,
ASTRAFier sect. 3.6), per-object catalogs and embeddings."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from lcfm.data import LightCurveDataset
from lcfm.engine.batching import evaluation_batches, to_device


def _enable_dropout(model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.train()


@torch.no_grad()
def predict_frame(model, plugin, frame: pl.DataFrame, collate, n_classes: int,
                  batch_size: int = 64, mc_samples: int = 0, seed: int = 0):
    """(probabilities (rows, classes), std over MC-dropout passes or None)."""
    model.eval()
    device = next(model.parameters()).device
    dataset = LightCurveDataset(frame)
    passes = max(mc_samples, 1)
    if mc_samples:
        _enable_dropout(model)
        torch.manual_seed(seed)
    runs = []
    for _ in range(passes):
        chunks = []
        for batch in evaluation_batches(dataset, batch_size, collate, seed):
            batch.pop("labels", None)
            batch = to_device(batch, device)
            logits = model(**batch).logits[:, :n_classes].float()
            chunks.append(logits.softmax(-1).cpu().numpy())
        runs.append(np.concatenate(chunks))
    model.eval()
    stacked = np.stack(runs)  # (passes, rows, classes)
    return stacked.mean(0), (stacked.std(0) if mc_samples else None)


@torch.no_grad()
def embed_frame(model, frame: pl.DataFrame, collate, batch_size: int = 64) -> np.ndarray:
    """Pooled embedding per row from a base model (`pooler_output`)."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for batch in evaluation_batches(LightCurveDataset(frame), batch_size, collate):
        batch = {k: v.to(device) for k, v in batch.items()
                 if torch.is_tensor(v) and k != "labels"}
        chunks.append(model(**batch).pooler_output.float().cpu().numpy())
    return np.concatenate(chunks)


def per_object(object_ids, values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Average rows of the same object (bands, quarters, sectors) into one vector, keeping
    the first-seen order of objects. `object_ids`: one id per row of `values`."""
    ids = np.asarray(object_ids, dtype=object)
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    sums = np.zeros((unique.size, values.shape[1]))
    np.add.at(sums, inverse, values)
    means = sums / np.bincount(inverse)[:, None]
    order = np.argsort(first)
    return unique[order].tolist(), means[order]
