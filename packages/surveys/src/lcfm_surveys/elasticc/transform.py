"""Normal-output quantile transform of ELAsTiCC metadata, with NaN and infinity indicators.

ATCAT (paper 003, sect. 2.1.1): "For metadata, we train a QuantileTransformer with
output_distribution="normal" using scikit-learn, similar to ATAT. We save nan/null and
+-inf bits, and add separate embedding vectors when those bits are active." (ATAT instead
replaces them by -9999.) This module implements the same mapping with numpy so a fitted
transform is a small JSON file that any model can re-apply:

* fit: per feature, `n_quantiles` quantiles (np.percentile at evenly spaced levels) of the
  finite training values, made non-decreasing; NaN and +-inf values are left out;
* transform: like scikit-learn's QuantileTransformer (symmetric interpolation, so tied
  quantiles map to their middle level; values at or beyond the extreme quantiles go to the
  bounds), then the standard normal quantile function, clipped to the normal quantiles of
  1e-7 and 1 - 1e-7 (about +-5.2). NaN/null, +inf and -inf give 0.0 plus an indicator bit.

Differences from scikit-learn: quantiles are exact (no 10,000-row subsample), and a feature
with no finite training value maps every finite value to 0.0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lcfm.exceptions import DataError

from lcfm_surveys.elasticc.metadata import METADATA_FEATURES, feature_matrix

#: file written next to an ingested dataset by ElasticcSurvey.post_ingest
TRANSFORM_FILE = "elasticc_metadata_transform.json"
FORMAT = "lcfm.elasticc.metadata_quantile_transform"
BOUNDS_THRESHOLD = 1e-7  # scikit-learn's: keeps ndtri finite at the extreme quantiles
# ndtri(BOUNDS_THRESHOLD - spacing(1)), written out so that importing the plugin (`lcfm
# surveys`) does not load scipy; tests/surveys/test_elasticc.py checks the value
_CLIP = -5.199337582605575


@dataclass
class MetadataEncoding:
    """Transformed metadata of n objects over f features."""

    values: np.ndarray  # (n, f) float32, ~N(0, 1) for training values; 0.0 where flagged
    is_nan: np.ndarray  # (n, f) bool: value was NaN or null
    is_posinf: np.ndarray  # (n, f) bool: value was +inf
    is_neginf: np.ndarray  # (n, f) bool: value was -inf

    def as_array(self) -> np.ndarray:
        """(n, 4 f) float32: values, then the NaN, +inf and -inf indicators."""
        return np.concatenate([self.values, self.is_nan, self.is_posinf, self.is_neginf],
                              axis=1).astype(np.float32)


class MetadataQuantileTransform:
    """Fitted per-feature quantiles; see the module docstring."""

    def __init__(self, features, quantiles, n_train: int = 0):
        self.features = tuple(features)
        self.quantiles = [np.asarray(q, dtype=np.float64) for q in quantiles]
        self.n_train = int(n_train)
        if len(self.quantiles) != len(self.features):
            raise ValueError(f"{len(self.features)} features but {len(self.quantiles)} "
                             "quantile arrays")

    # ---- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(cls, values: np.ndarray, features=METADATA_FEATURES,
            n_quantiles: int = 1000) -> MetadataQuantileTransform:
        """Fit on an (n, f) array of training values (NaN/inf allowed, ignored)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(features):
            raise ValueError(f"expected an (n, {len(features)}) array, got {values.shape}")
        if n_quantiles < 2:
            raise ValueError(f"n_quantiles must be >= 2, got {n_quantiles}")
        quantiles = []
        for column in values.T:
            finite = column[np.isfinite(column)]
            if finite.size == 0:
                quantiles.append(np.zeros(0))
                continue
            levels = np.linspace(0.0, 100.0, min(n_quantiles, finite.size))
            # percentile rounding can break monotonicity by an ulp; scikit-learn fixes it
            # the same way
            quantiles.append(np.maximum.accumulate(np.percentile(finite, levels)))
        return cls(features, quantiles, n_train=values.shape[0])

    # ---- applying -----------------------------------------------------------------------
    def transform(self, values: np.ndarray) -> MetadataEncoding:
        """Transform an (n, f) array whose columns are `self.features`."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[None, :]
        if values.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} feature columns, "
                             f"got {values.shape[1]}")
        is_nan = np.isnan(values)
        is_posinf = np.isposinf(values)
        is_neginf = np.isneginf(values)
        out = np.zeros(values.shape, dtype=np.float64)
        for j, quantiles in enumerate(self.quantiles):
            finite = ~(is_nan[:, j] | is_posinf[:, j] | is_neginf[:, j])
            if quantiles.size and finite.any():
                out[finite, j] = _to_normal(values[finite, j], quantiles)
        return MetadataEncoding(out.astype(np.float32), is_nan, is_posinf, is_neginf)

    def transform_meta(self, metas) -> MetadataEncoding:
        """Transform meta dicts (one dict, a list) or a Polars frame / struct Series."""
        return self.transform(feature_matrix(metas, self.features))

    # ---- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "output_distribution": "normal",
            "bounds_threshold": BOUNDS_THRESHOLD,
            "n_train": self.n_train,
            "features": list(self.features),
            # levels are evenly spaced in [0, 1]: linspace(0, 1, len(quantiles))
            "quantiles": {f: q.tolist()
                          for f, q in zip(self.features, self.quantiles, strict=True)},
        }

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "metadata transform"):
        if data.get("format") != FORMAT:
            raise DataError(f"{source}: not an lcfm ELAsTiCC metadata transform "
                            f"(format={data.get('format')!r})")
        try:
            features = data["features"]
            return cls(features, [data["quantiles"][f] for f in features],
                       n_train=data.get("n_train", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed metadata transform ({exc})") from None

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()) + "\n")
        return path

    @classmethod
    def load(cls, path) -> MetadataQuantileTransform:
        """Load a transform from its JSON file or from the dataset folder holding it."""
        path = Path(path)
        if path.is_dir():
            path = path / TRANSFORM_FILE
        if not path.is_file():
            raise DataError(f"{path}: no ELAsTiCC metadata transform (ingest the data with "
                            "the elasticc survey to create it)")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable metadata transform ({exc})") from None
        return cls.from_dict(data, source=str(path))


def _to_normal(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    levels = np.linspace(0.0, 1.0, quantiles.size)
    # average of the forward and the mirrored interpolation: ties map to the middle level
    u = 0.5 * (np.interp(x, quantiles, levels)
               - np.interp(-x, -quantiles[::-1], -levels[::-1]))
    # scikit-learn's order: the lower bound wins for a constant feature
    u[x + BOUNDS_THRESHOLD > quantiles[-1]] = 1.0
    u[x - BOUNDS_THRESHOLD < quantiles[0]] = 0.0
    with np.errstate(divide="ignore"):
        from scipy.special import ndtri

        return np.clip(ndtri(u), _CLIP, -_CLIP)


def fit_metadata_transform(metas, n_quantiles: int = 1000,
                           features=METADATA_FEATURES) -> MetadataQuantileTransform:
    """Fit on training metadata: meta dicts, a Polars frame of meta fields, or the
    canonical frame's `meta` struct Series."""
    import polars as pl

    if isinstance(metas, pl.DataFrame) and "meta" in metas.columns:
        metas = metas["meta"]
    return MetadataQuantileTransform.fit(feature_matrix(metas, features), features,
                                         n_quantiles=n_quantiles)


def apply_metadata_transform(transform, metas) -> MetadataEncoding:
    """Apply a saved transform (object, JSON path or dataset folder) to meta values: one
    meta dict, a list of them, a Polars frame (or canonical frame) or a struct Series."""
    import polars as pl

    if not isinstance(transform, MetadataQuantileTransform):
        transform = MetadataQuantileTransform.load(transform)
    if isinstance(metas, pl.DataFrame) and "meta" in metas.columns:
        metas = metas["meta"]
    return transform.transform_meta(metas)


class MetadataEncoder:
    """The survey-plugin metadata encoder (`SurveyPlugin.fit_metadata`): frames -> the
    (rows, 4 f) array of transformed values and NaN/+inf/-inf indicators."""

    def __init__(self, transform: MetadataQuantileTransform):
        self.transform = transform

    def encode(self, frame) -> np.ndarray:
        return apply_metadata_transform(self.transform, frame).as_array()

    def to_dict(self) -> dict:
        return self.transform.to_dict()
