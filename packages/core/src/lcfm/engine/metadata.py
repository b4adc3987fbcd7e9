"""Per-object metadata for models with a metadata token (ATCAT sect. 2.2.2).

The survey fits its metadata encoder on the *training* rows only (ATCAT sect. 2.1.1: the
quantile transform is fitted on training data), the encoder is saved beside the model as
`metadata_encoder.json`, and each frame gets the encoded vector as the field
`meta.<config.metadata_key>`, which the model's collator reads."""

from __future__ import annotations

import json
from pathlib import Path

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
    state = {"survey": survey_name, "encoder": encoder.to_dict()}
    (Path(output) / ENCODER_FILE).write_text(json.dumps(state) + "\n")


def load_encoder(model_dir: Path):
    path = Path(model_dir) / ENCODER_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    return get_survey(state["survey"]).load_metadata(state["encoder"])


def with_metadata(frame: pl.DataFrame, encoder, config) -> pl.DataFrame:
    """The frame with each row's encoded metadata vector in `meta.<metadata_key>`."""
    if encoder is None or frame.height == 0:
        return frame
    vectors = encoder.encode(frame)
    series = pl.Series(metadata_key(config), vectors.tolist(), dtype=pl.List(pl.Float32))
    return frame.with_columns(pl.col("meta").struct.with_fields(pl.lit(series)))
