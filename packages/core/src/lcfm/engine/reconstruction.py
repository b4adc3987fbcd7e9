"""`lcfm evaluate` on a pretrained masked-reconstruction model: unweighted RMSE and R2 on the
probed points (issue 11, item 4).

Astromer 2 sect. 4 (Fig. 6): "The model achieved an R2 of 0.732 with a root mean squared
error (RMSE) of 0.113 on the probed subset"; AstroCo Table 1 reports the same pair on MACHO
R band (AstroCo-S 0.060 / 0.922, AstroCo-L 0.044 / 0.956). lcfm scores every observation:
each light curve is cut into the model's consecutive inference windows
(`lcfm.engine.predict.WindowedRows`), each window is probed by the model plugin's own
pretraining collator with `train=False` and a fixed seed (the same probed points on every
run, whatever the batch or the number of processes), and `lcfm.metrics` turns the per-window
sums into `rmse`, `rmse_window_mean` and `r2` (see `reconstruction_metrics` for the
definitions; no uncertainty weights, as the papers report them).

A model folder is a masked-reconstruction one when its config.json names the plugin's
`pretraining_class` in `architectures` and that model's output has `reconstruction`
(Astromer, AstroCo). ATCAT pretrains by next-value prediction (sect. 2.5): its folder is
refused in one line, as is a model without a pretraining head.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import polars as pl
import torch

from lcfm.data import LightCurveDataset
from lcfm.engine.batching import evaluation_batches, to_device
from lcfm.engine.catalog import CatalogRun
from lcfm.engine.inference import band_summary, inference_collator, input_bands, model_key
from lcfm.engine.loading import ADAPTER_CONFIG, check_model_folder, plugin_for_model_type
from lcfm.engine.metadata import load_encoder, with_metadata
from lcfm.engine.predict import WindowedRows
from lcfm.exceptions import ConfigError, DataError
from lcfm.metrics import reconstruction_from_stats, reconstruction_window_stats
from lcfm.ranks import current_ranks

#: the probed-point mask of a pretraining batch, by the name each collator gives it
PROBE_KEYS = ("probe_mask", "target_mask")
#: published scores on MACHO, for comparison in metrics.json
REPORTED = {"astromer-v2": {"rmse": 0.113, "r2": 0.732, "source": "Astromer 2 sect. 4"},
            "astromer-v1": {"rmse": 0.148, "r2": None, "source": "Astromer 2 sect. 4"},
            "astroco-s": {"rmse": 0.060, "r2": 0.922, "source": "AstroCo Table 1"},
            "astroco-l": {"rmse": 0.044, "r2": 0.956, "source": "AstroCo Table 1"}}
STATS_SCHEMA = {"object_id": pl.String, "n": pl.Float64, "squared": pl.Float64,
                "total": pl.Float64}


def is_pretraining_folder(model_dir: Path) -> bool:
    """The folder holds a self-supervised (pretraining) model rather than a classifier."""
    model_dir = Path(model_dir)
    if (model_dir / ADAPTER_CONFIG).exists():
        return False  # LoRA folders are fine-tuned classifiers
    config = check_model_folder(model_dir)
    plugin = plugin_for_model_type(config["model_type"])
    names = config.get("architectures") or []
    return plugin.pretraining_class is not None and plugin.pretraining_class.__name__ in names


def _not_masked(plugin) -> str:
    return (f"{plugin.name}: its pretraining model gives no masked reconstruction (rmse and "
            "r2 on probed points are defined for masked-reconstruction models such as "
            "Astromer and AstroCo)")


def _load(model_dir: Path):
    from lcfm.engine.loading import load_pretrained

    config = check_model_folder(model_dir)
    plugin = plugin_for_model_type(config["model_type"])
    model = load_pretrained(plugin.pretraining_class, model_dir)
    return plugin, model


@torch.no_grad()
def window_stats(model, plugin, frame: pl.DataFrame, collate, batch_size: int,
                 seed: int) -> pl.DataFrame:
    """Per probed window of `frame` (object_id, n, squared, total):
    `lcfm.metrics.reconstruction_window_stats` of the model's reconstruction."""
    model.eval()
    device = next(model.parameters()).device
    windows = WindowedRows(LightCurveDataset(frame), plugin.inference_window(model.config))
    ids = np.asarray(windows.dataset.object_id, dtype=object)[windows.row]
    chunks, owners = [], []
    for start, batch in zip(range(0, len(windows), batch_size),
                            evaluation_batches(windows, batch_size, collate, seed),
                            strict=True):
        probe_key = next((k for k in PROBE_KEYS if k in batch), None)
        if probe_key is None or "target_values" not in batch:
            raise ConfigError(_not_masked(plugin))
        probe = batch[probe_key].bool()
        if "attention_mask" in batch:
            probe = probe & batch["attention_mask"].bool()
        output = model(**to_device(batch, device))
        reconstruction = getattr(output, "reconstruction", None)
        if reconstruction is None:
            raise ConfigError(_not_masked(plugin))
        y, y_hat, probe = (batch["target_values"].double().numpy(),
                           reconstruction.double().cpu().numpy(), probe.numpy())
        kept = probe.any(axis=1)
        chunks.append(reconstruction_window_stats(y_hat, y, probe))
        owners += ids[start:start + probe.shape[0]][kept].tolist()
    stats = np.concatenate(chunks) if chunks else np.zeros((0, 3))
    return pl.DataFrame({"object_id": owners, "n": stats[:, 0], "squared": stats[:, 1],
                         "total": stats[:, 2]}, schema=STATS_SCHEMA)


def evaluate_reconstruction(model_dir: Path, data: Path, output: Path, *, batch_size: int,
                            seed: int, objects: pl.Series | None = None,
                            selection: dict | None = None) -> dict:
    """Write `output/metrics.json` with rmse, r2 and rmse_window_mean on the probed points
    of every light curve of `data` (only `objects` when given, e.g. a split file's test
    objects); returns the report."""
    plugin, model = _load(model_dir)
    if "target_values" not in inspect.signature(model.forward).parameters:
        raise ConfigError(_not_masked(plugin))  # before any shard is read
    encoder = load_encoder(model_dir)
    input_bands(plugin, model.config, band_summary(data), data, encoder)
    ranks = current_ranks()
    model.to(ranks.device)
    run = CatalogRun("evaluate", Path(data), Path(output) / ".evaluate.parts",
                     {"model": model_key(model_dir), "seed": seed}, ranks=ranks)
    wanted = objects.cast(pl.String).implode() if objects is not None else None

    def work(unit, frame):
        if wanted is not None:
            frame = frame.filter(pl.col("object_id").is_in(wanted))
        if frame.height == 0:
            return {"": pl.DataFrame(schema=STATS_SCHEMA)}
        bands = input_bands(plugin, model.config, frame, unit.path, encoder)
        collate = inference_collator(plugin, model.config, bands, seed, task="pretrain")
        frame = with_metadata(frame, encoder, model.config)
        return {"": window_stats(model, plugin, frame, collate, batch_size, seed)}

    Path(output).mkdir(parents=True, exist_ok=True)
    run.run(work)
    if ranks.is_main:
        table = pl.concat(run.parts())
        if table.height == 0:
            raise DataError(f"{data}: no light curve with probed points to score")
        scores = reconstruction_from_stats(table.select("n", "squared", "total").to_numpy())
        report = {"task": "masked_reconstruction", "model_type": model.config.model_type,
                  **scores, "n_objects": table["object_id"].n_unique(),
                  "probed_points_seed": seed, "weighted": False,
                  "reported": {k: v for k, v in REPORTED.items()
                               if k.startswith(plugin.name)} or None,
                  **(selection or {})}
        (Path(output) / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    run.finish()
    return json.loads((Path(output) / "metrics.json").read_text())
