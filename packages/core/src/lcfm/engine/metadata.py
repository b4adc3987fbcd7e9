"""Per-object metadata for models with a metadata token (ATCAT sect. 2.2.2).

The survey fits its metadata encoder on the *training* rows only (ATCAT sect. 2.1.1: the
quantile transform is fitted on training data), the encoder is saved beside the model as
`metadata_encoder.json`, and each frame gets the encoded vector as the field
`meta.<config.metadata_key>`, which the model's collator reads.

Classical features (`--features`, issue 12 item 3) reach ATCAT through the same token:
`with_feature_metadata` wraps the survey's encoder (or none) into one that appends each
object's scaled features (`lcfm.engine.extra_features`) to its metadata vector, and
`size_metadata` sets `metadata_dim` to the combined width. Only the survey's part is saved
here; the feature scaler is saved beside it as `features_scaler.json`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import ConfigError
from lcfm.registry import get_survey

ENCODER_FILE = "metadata_encoder.json"


def metadata_key(config) -> str:
    if not hasattr(config, "metadata_dim"):
        raise ConfigError(f"model type {config.model_type!r} has no metadata token")
    return getattr(config, "metadata_key", "metadata")


def fit_encoder(survey_name: str, config, train_frame: pl.DataFrame, fresh_model: bool):
    """Fit the survey's encoder on training rows and size the model's metadata input."""
    key = metadata_key(config)
    encoder = get_survey(survey_name).fit_metadata(train_frame)
    if encoder is None:
        raise ConfigError(f"survey {survey_name!r} has no per-object metadata")
    dim = int(encoder.encode(train_frame.head(1)).shape[1])
    if fresh_model:
        config.metadata_dim = dim
    elif config.metadata_dim != dim:
        raise ConfigError(f"the checkpoint's metadata_dim is {config.metadata_dim}, the "
                          f"{survey_name} metadata encoder gives {dim}; pretrain with "
                          "--metadata too, or fine-tune without it")
    config.metadata_key = key
    return encoder


def save_encoder(encoder, survey_name: str, output: Path) -> None:
    """The survey's encoder as `metadata_encoder.json` (of a `FeatureMetadata`, its survey
    part; nothing when it has none: the features' scaler is saved on its own)."""
    if isinstance(encoder, FeatureMetadata):
        if encoder.encoder is None:
            return
        encoder = encoder.encoder
    state = {"survey": survey_name, "encoder": encoder.to_dict()}
    (Path(output) / ENCODER_FILE).write_text(json.dumps(state) + "\n")


def load_encoder(model_dir: Path):
    path = Path(model_dir) / ENCODER_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    return get_survey(state["survey"]).load_metadata(state["encoder"])


class FeatureMetadata:
    """A metadata encoder whose vector is the survey encoder's (if any) followed by the
    object's scaled classical features."""

    def __init__(self, encoder, features: pl.DataFrame, scaler):
        from lcfm.engine.extra_features import _lookup

        self.encoder, self.scaler = encoder, scaler
        self.index, self.table = _lookup(features, scaler)

    def encode(self, frame: pl.DataFrame) -> np.ndarray:
        from lcfm.engine.extra_features import _take

        parts = [] if self.encoder is None else [
            np.asarray(self.encoder.encode(frame), np.float32)]
        parts.append(_take(self.index, self.table, frame["object_id"].to_list()))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"encoder": None if self.encoder is None else self.encoder.to_dict(),
                "features": self.scaler.names}


def with_feature_metadata(encoder, features: pl.DataFrame, scaler) -> FeatureMetadata:
    """`encoder` (the survey's, or None) with each object's scaled features appended."""
    return FeatureMetadata(encoder, features, scaler)


def size_metadata(config, encoder, frame: pl.DataFrame, fresh_model: bool) -> None:
    """Set (fresh model) or check (checkpoint) `metadata_dim` against `encoder`'s width on
    the rows of `frame`, and the metadata key. A checkpoint without a metadata token (e.g.
    pretrained without --metadata) gets one: its weights are missing from the checkpoint
    and start fresh, as a new classification head does."""
    key = metadata_key(config)
    dim = int(encoder.encode(frame.head(1)).shape[1])
    if fresh_model or not config.metadata_dim:
        config.metadata_dim = dim
    elif config.metadata_dim != dim:
        raise ConfigError(f"the checkpoint's metadata_dim is {config.metadata_dim}; metadata "
                          f"with the features gives {dim}: fine-tune with the same --metadata "
                          "and --features as the checkpoint")
    config.metadata_key = key


def with_metadata(frame: pl.DataFrame, encoder, config) -> pl.DataFrame:
    """The frame with each row's encoded metadata vector in `meta.<metadata_key>`."""
    if encoder is None or frame.height == 0:
        return frame
    vectors = encoder.encode(frame)
    series = pl.Series(metadata_key(config), vectors.tolist(), dtype=pl.List(pl.Float32))
    return frame.with_columns(pl.col("meta").struct.with_fields(pl.lit(series)))
