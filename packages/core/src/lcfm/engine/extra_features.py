"""Classical features fed to the models (`--features` on finetune/predict; issue 12, item 3:
"`--features` on finetune/predict to feed them to any model (ATCAT's metadata token; a
concatenation into the head of the others)").

Features are those of `lcfm features` (`lcfm.features.compute_features`: per band period,
amplitude, moments, ...; colours), one row per object, computed on the whole dataset or
read from a features file.

Scaling (`FeatureScaler`), fitted on the *training* objects only, as ATCAT fits its metadata
transform (sect. 2.1.1, 2.2.2): each feature goes through a quantile transform to a standard
normal (scikit-learn's `QuantileTransformer`, `output_distribution="normal"`, at most 1,000
quantiles, with mid-point plotting positions (i + 1/2) / n so the training extremes map to
about +-2-3 sigma rather than the +-5.2 of probabilities 0 and 1; a held-out value beyond
them takes the extreme's) -- robust to the orders of magnitude a period or a flux spans.
Missing values
(a band an object lacks, a period of a 3-point curve; infinities count as missing) become 0,
the median of the transformed training values, and every feature that was missing for some
training object gets an indicator column (1 where missing), as ATCAT's explicit NaN/inf
indicators. Features without any finite or with a single training value are left out. The
result is (objects, F) float32 with F = kept features + indicators; the scaler is saved
beside the model as `features_scaler.json` so predict scales new data the same way.

Routes into the models: a model whose config has `num_extra_features` (Astromer, AstroCo,
ASTRAFier) concatenates the vector into its classification head: `attach_features` wraps its
collator so that every batch carries `extra_features` (batch, F) in row order (and the
FlatRows extras the collators read). ATCAT has no such head input; it takes the vector
through its metadata token (`lcfm.engine.metadata.with_feature_metadata`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.collate import CollateWrapper
from lcfm.exceptions import ConfigError, DataError

SCALER_FILE = "features_scaler.json"
FEATURES_FILE = "features.parquet"
#: the batch key and FlatRows extras key of the features
KEY = "extra_features"
#: columns of a features file that are not features
ID_COLUMNS = ("object_id", "label")
MAX_QUANTILES = 1000

__all__ = ["FEATURES_FILE", "KEY", "SCALER_FILE", "FeatureCollate", "FeatureScaler",
           "attach_features", "feature_route", "features_for", "fit_feature_scaler",
           "load_feature_scaler", "row_feature_table", "save_feature_scaler"]


@dataclass
class FeatureScaler:
    """Quantile-normal scaling of feature columns with missing-value indicators (module
    docstring), fitted on training objects."""

    columns: list[str]
    quantiles: np.ndarray  # (n_quantiles, len(columns))
    references: np.ndarray  # (n_quantiles,) in [0, 1]
    indicators: list[str] = field(default_factory=list)
    train_objects: int = 0

    @property
    def n_features(self) -> int:
        """F, the width of `transform`'s output (the models' num_extra_features)."""
        return len(self.columns) + len(self.indicators)

    @property
    def names(self) -> list[str]:
        return [*self.columns, *(f"{c}_missing" for c in self.indicators)]

    def transform(self, features: pl.DataFrame) -> np.ndarray:
        """(rows of `features`, F) float32; a feature column the frame lacks is missing."""
        from scipy.stats import norm

        x = _matrix(features, self.columns)
        missing = np.isnan(x)
        z = np.zeros_like(x)
        for j in range(x.shape[1]):  # both-sided interpolation, as scikit-learn's (ties)
            q, r = self.quantiles[:, j], self.references
            u = 0.5 * (np.interp(x[:, j], q, r) - np.interp(-x[:, j], -q[::-1], -r[::-1]))
            z[:, j] = norm.ppf(u)
        z = np.where(missing, 0.0, z)
        flags = missing[:, [self.columns.index(c) for c in self.indicators]]
        return np.concatenate([z, flags], axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"method": "quantile-normal", "columns": self.columns,
                "indicators": self.indicators, "train_objects": self.train_objects,
                "references": self.references.tolist(),
                "quantiles": self.quantiles.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> FeatureScaler:
        columns = list(state["columns"])
        quantiles = np.asarray(state["quantiles"], dtype=np.float64).reshape(-1, len(columns))
        return cls(columns, quantiles, np.asarray(state["references"], dtype=np.float64),
                   list(state.get("indicators", [])), int(state.get("train_objects", 0)))


def _matrix(features: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """float64 (rows, columns) with NaN for a missing column or an infinite value."""
    present = [pl.col(c).cast(pl.Float64) if c in features.columns
               else pl.lit(None, dtype=pl.Float64).alias(c) for c in columns]
    x = features.select(present).to_numpy().astype(np.float64) if columns else \
        np.zeros((features.height, 0))
    x[~np.isfinite(x)] = np.nan
    return x


def fit_feature_scaler(features: pl.DataFrame, train_objects, *,
                       max_quantiles: int = MAX_QUANTILES, seed: int = 0) -> FeatureScaler:
    """A `FeatureScaler` fitted on the rows of `features` whose object_id is in
    `train_objects` (the training split's objects)."""
    from sklearn.preprocessing import QuantileTransformer

    ids = pl.Series("object_id", list(train_objects), dtype=pl.String).unique()
    train = features.filter(pl.col("object_id").is_in(ids.implode()))
    if train.height == 0:
        raise DataError("no training object has features; compute them on the training data "
                        "(lcfm features)")
    candidates = [c for c, dtype in features.schema.items()
                  if c not in ID_COLUMNS and dtype.is_numeric()]
    x = _matrix(train, candidates)
    spread = [np.unique(col[np.isfinite(col)]).size > 1 for col in x.T]
    columns = [c for c, keep in zip(candidates, spread, strict=True) if keep]
    x = x[:, np.array(spread, dtype=bool)] if candidates else x
    if not columns:
        raise DataError(f"none of the {len(candidates)} feature columns varies over the "
                        f"{train.height} training objects")
    n_quantiles = max(2, min(max_quantiles, train.height))
    qt = QuantileTransformer(n_quantiles=n_quantiles, output_distribution="normal",
                             subsample=None, random_state=seed).fit(x)
    indicators = [c for c, col in zip(columns, x.T, strict=True) if np.isnan(col).any()]
    # mid-point plotting positions: the training extremes map to +-Phi^-1(1 - 1/(2n)), not
    # to the +-5.2 sigma of probabilities 0 and 1; values beyond them take the extremes'
    references = (np.arange(n_quantiles) + 0.5) / n_quantiles
    return FeatureScaler(columns, qt.quantiles_.copy(), references, indicators, train.height)


def save_feature_scaler(folder: Path, scaler: FeatureScaler) -> Path:
    """`folder/features_scaler.json` (beside the model)."""
    path = Path(folder) / SCALER_FILE
    path.write_text(json.dumps(scaler.to_dict()) + "\n")
    return path


def load_feature_scaler(folder: Path) -> FeatureScaler | None:
    """The scaler saved beside a model, or None when the model was trained without
    `--features`."""
    path = Path(folder) / SCALER_FILE
    if not path.exists():
        return None
    try:
        return FeatureScaler.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a features scaler of lcfm ({exc})") from None


def features_for(data: Path, output: Path, features: Path | None = None, *,
                 workers: int = 1, progress: bool = False) -> pl.DataFrame:
    """The features of every object of `data`: read from `features` (a file of `lcfm
    features`), or computed into `output/features.parquet` (with its summary)."""
    from lcfm.baseline import load_features
    from lcfm.features_io import extract_features

    if features is None:
        features = Path(output) / FEATURES_FILE
        Path(output).mkdir(parents=True, exist_ok=True)
        extract_features(data, features, workers=workers, progress=progress)
    return load_features(features)


def _lookup(features: pl.DataFrame, scaler: FeatureScaler) -> tuple[dict[str, int], np.ndarray]:
    ids = features["object_id"].cast(pl.String).to_list()
    return {oid: i for i, oid in enumerate(ids)}, scaler.transform(features)


def _take(index: dict[str, int], table: np.ndarray, object_ids: Sequence[str],
          source: str = "the features") -> np.ndarray:
    try:
        rows = [index[str(oid)] for oid in object_ids]
    except KeyError as exc:
        raise DataError(f"{source} have no row for object {exc.args[0]!r}; compute them on "
                        "the same data (lcfm features --data ...)") from None
    return table[np.asarray(rows, dtype=np.int64)] if rows else \
        np.zeros((0, table.shape[1]), np.float32)


def row_feature_table(summaries: pl.DataFrame, features: pl.DataFrame,
                      scaler: FeatureScaler, n_rows: int) -> np.ndarray:
    """(n_rows, F) float32 indexed by global row: each row of `summaries` (object_id, row)
    gets its object's scaled features, other rows zeros (`StepDataset(extras=...)`)."""
    index, table = _lookup(features, scaler)
    out = np.zeros((int(n_rows), scaler.n_features), np.float32)
    rows = summaries["row"].to_numpy().astype(np.int64)
    out[rows] = _take(index, table, summaries["object_id"].to_list())
    return out


def feature_route(config) -> str:
    """"head" for models with `num_extra_features` (Astromer, AstroCo, ASTRAFier),
    "metadata" for models with a metadata token only (ATCAT)."""
    if hasattr(config, "num_extra_features"):
        return "head"
    if hasattr(config, "metadata_dim"):
        return "metadata"
    raise ConfigError(f"model type {getattr(config, 'model_type', '?')!r} takes no extra "
                      "features (no num_extra_features and no metadata token)")


class FeatureCollate(CollateWrapper):
    """A collator wrapper: each batch gets the scaled features of its rows' objects, in row
    order, as `FlatRows.extras["extra_features"]` for the model's collator and as
    `batch["extra_features"]` (batch, F) float32 where the collator did not set it. Rows may
    be row dicts or a `FlatRows`; the wrapped collator's random state (`rng`,
    `worker_generator`) is its own."""

    def __init__(self, collate: Callable, index: dict[str, int], table: np.ndarray):
        super().__init__(collate)
        self.index, self.table = index, table

    def __call__(self, rows):
        import torch

        from lcfm.flat import FlatRows

        flat = FlatRows.from_rows(rows)
        values = _take(self.index, self.table, flat.object_id)
        flat.extras = {**flat.extras, KEY: values}
        batch = self.collate(flat)
        if KEY not in batch:
            batch[KEY] = torch.from_numpy(values)
        return batch


def attach_features(collate: Callable, features: pl.DataFrame,
                    scaler: FeatureScaler) -> FeatureCollate:
    """`collate` with each batch's `extra_features` (module docstring). Wrap the model's
    collator itself (inside any augmentation wrapper), so the features survive row
    augmentation."""
    index, table = _lookup(features, scaler)
    return FeatureCollate(collate, index, table)
