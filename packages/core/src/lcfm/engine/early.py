"""Early classification with causal models (ATCAT sect. 2.6): class probabilities after
each observation, or at given times since the first observation.

A causal model's output at a point depends only on that point and earlier ones, so one
forward pass gives the prediction the model would have made at every moment. The table
covers each light curve's first `inference_window` points (ATCAT: 243, the longest ELAsTiCC
light curve); the catalog's final probabilities use every observation."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from lcfm.data import LightCurveDataset
from lcfm.engine.batching import evaluation_batches, to_device
from lcfm.exceptions import ConfigError


@torch.no_grad()
def early_probabilities(model, plugin, frame: pl.DataFrame, collate, classes: list[str],
                        cutoffs: list[float] | None = None, batch_size: int = 64
                        ) -> pl.DataFrame:
    """Long table: object_id, days since the first point, points seen, predicted class and
    p_<class>. With `cutoffs` one row per object and cutoff (the last point at or before
    it; objects with no point yet are left out), otherwise one row per observation."""
    if not getattr(plugin, "causal", False):
        raise ConfigError(f"early classification needs a causal model; {plugin.name!r} "
                          "attends to future points")
    model.eval()
    device = next(model.parameters()).device
    dataset = LightCurveDataset(frame)
    records: dict[str, list] = {"object_id": [], "days": [], "points": []}
    probabilities = []
    row = 0
    for batch in evaluation_batches(dataset, batch_size, collate):
        batch.pop("labels", None)
        batch = to_device(batch, device)
        out = model(**batch, return_step_logits=True)
        probs = out.step_logits[..., :len(classes)].float().softmax(-1).cpu().numpy()
        mask = batch["attention_mask"].bool().cpu().numpy()
        times = batch["times"].double().cpu().numpy()
        for i in range(probs.shape[0]):
            t, p = times[i][mask[i]], probs[i][mask[i]]
            picks = (np.searchsorted(t, cutoffs, side="right") - 1 if cutoffs
                     else np.arange(t.size))
            for j, k in enumerate(picks):
                if k < 0:
                    continue
                records["object_id"].append(dataset.object_id[row])
                records["days"].append(float(cutoffs[j]) if cutoffs else float(t[k]))
                records["points"].append(int(k) + 1)
                probabilities.append(p[k])
            row += 1
    p = np.array(probabilities).reshape(-1, len(classes))
    table = pl.DataFrame({**records, "predicted_class": [classes[i] for i in p.argmax(1)]})
    return table.with_columns(
        [pl.Series(f"p_{c}", p[:, i]) for i, c in enumerate(classes)])
