"""How a model turns per-band sequences into one vector per light curve, and what its head
reads (issue 12, "bands done right" and "features beside embeddings"; the rule is
`lcfm.bands`, the guide docs/multiband.md).

A single-band model (Astromer, ASTRAFier; AstroCo with band_combine="mean"/"concat") reads
one sequence per (light curve, band): the collator sends `band_group` (per-band rows,) --
the light curve each sequence belongs to -- and, for "concat", `band_slot`, the band's
position in `config.band_names`. The encoder pools each sequence as its paper does and
`combine_bands` makes one vector per light curve:

* "mean": the average of the light curve's band vectors (width = hidden size); any set of
  bands, and a model trained on one survey reads another;
* "concat": the band vectors side by side in `config.band_names` order, zeros for a band
  the light curve lacks (width = bands x hidden size); keeps which band said what, for a
  fixed band list.

A light curve with a single band gives its own pooled vector either way (one band, or
"concat" with one band name), so single-band surveys behave exactly as before.

The classification head reads that vector followed by `extra_features` (batch,
`config.num_extra_features`), per-object features such as periods and colours computed
and standardised by the engine (`lcfm features`), when the config asks for them.
"""

from __future__ import annotations

import numpy as np
import torch
from lcfm.exceptions import ConfigError, DataError

#: per-band sequences combined by mean or concatenation; "joint" = one interleaved sequence
#: with band wavelengths (only for a model that encodes them, e.g. AstroCo)
BAND_COMBINE = ("mean", "concat")
EXTRA_FEATURES = "extra_features"


def normalise_band_fields(config) -> None:
    """Plain JSON types for the band fields of a config (called in __post_init__)."""
    config.band_names = [str(n) for n in (config.band_names or ())]
    config.num_extra_features = int(config.num_extra_features)


def validate_band_fields(config, allowed: tuple[str, ...] = BAND_COMBINE) -> None:
    """One-line ConfigErrors for `band_combine`, `band_names` and `num_extra_features`."""
    name = type(config).__name__
    if config.band_combine not in allowed:
        raise ConfigError(f"{name}.band_combine={config.band_combine!r}: must be one of "
                          f"{', '.join(allowed)}")
    if len(set(config.band_names)) != len(config.band_names):
        raise ConfigError(f"{name}.band_names={config.band_names!r}: repeated band")
    if config.num_extra_features < 0:
        raise ConfigError(f"{name}.num_extra_features={config.num_extra_features}: must be "
                          f">= 0")


def fit_band_names(config, dataset):
    """Record the training data's bands (a `FlatRows` or `LightCurveDataset`), sorted by
    name, when the config has none yet: the band order of band_combine="concat", kept in
    every checkpoint so a model pretrained with "mean" can be fine-tuned with "concat";
    returns config."""
    if not config.band_names:
        names = getattr(dataset, "band_names", None)
        if names is None:
            names = np.unique(np.asarray(dataset.band).astype(str))
        config.band_names = sorted(str(n) for n in names)
    return config


def combined_width(config, hidden: int) -> int:
    """Width of the per-light-curve vector: hidden, or hidden x bands for "concat"."""
    if config.band_combine == "concat":
        return hidden * max(len(config.band_names), 1)
    return hidden


def head_width(config, hidden: int) -> int:
    """Width the classification head reads: the combined vector + extra features."""
    return combined_width(config, hidden) + int(config.num_extra_features)


def combine_bands(pooled: torch.Tensor, config, band_group: torch.Tensor | None = None,
                  band_slot: torch.Tensor | None = None) -> torch.Tensor:
    """(per-band rows, hidden) pooled vectors -> (light curves, width) by
    `config.band_combine` (module docstring). Without `band_group` every row is its own
    light curve."""
    mode = config.band_combine
    if mode not in BAND_COMBINE:  # "joint": one sequence per light curve already
        return pooled
    concat_slots = max(len(config.band_names), 1) if mode == "concat" else 1
    if band_group is None:
        if concat_slots > 1:
            raise DataError("band_combine='concat' needs the collator's `band_group` and "
                            "`band_slot` (one sequence per light curve and band)")
        return pooled
    group = band_group.to(device=pooled.device, dtype=torch.long)
    objects = int(group.max().item()) + 1 if group.numel() else 0
    hidden = pooled.shape[-1]
    if mode == "mean":
        sums = pooled.new_zeros(objects, hidden).index_add(0, group, pooled)
        counts = torch.bincount(group, minlength=objects).clamp_min(1).to(pooled.dtype)
        return sums / counts[:, None]
    if band_slot is None:
        if concat_slots > 1:
            raise DataError("band_combine='concat' needs the collator's `band_slot`")
        band_slot = torch.zeros_like(group)
    slot = band_slot.to(device=pooled.device, dtype=torch.long)
    out = pooled.new_zeros(objects * concat_slots, hidden)
    out = out.index_copy(0, group * concat_slots + slot, pooled)
    return out.reshape(objects, concat_slots * hidden)


def head_input(combined: torch.Tensor, config,
               extra_features: torch.Tensor | None = None) -> torch.Tensor:
    """The combined vector followed by the object's extra features (batch, F) when the
    config reads F = `num_extra_features` > 0; one-line DataErrors otherwise."""
    wanted = int(config.num_extra_features)
    if wanted == 0:
        if extra_features is not None and extra_features.numel():
            raise DataError(f"the batch has extra_features of width {extra_features.shape[-1]} "
                            "but the model was built with num_extra_features=0")
        return combined
    if extra_features is None:
        raise DataError(f"the model reads num_extra_features={wanted} per object but the "
                        "batch has no extra_features (pass --features)")
    if extra_features.shape != (combined.shape[0], wanted):
        raise DataError(f"extra_features has shape {tuple(extra_features.shape)}, expected "
                        f"({combined.shape[0]}, {wanted})")
    features = torch.nan_to_num(extra_features.to(device=combined.device, dtype=combined.dtype),
                                nan=0.0, posinf=0.0, neginf=0.0)
    return torch.cat([combined, features], dim=-1)


__all__ = ["BAND_COMBINE", "EXTRA_FEATURES", "combine_bands", "combined_width",
           "fit_band_names", "head_input", "head_width", "normalise_band_fields",
           "validate_band_fields"]
