"""What `lcfm predict`, `lcfm embed` and `lcfm evaluate` share: the split record of a
fine-tuning run, output checks, the band check for data of another survey (module docstring
of `lcfm.engine.inference`), the folding check, the inference collator, and the classical
features a model trained with --features reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from lcfm.combined import SEPARATOR, member_names
from lcfm.engine.metadata import load_encoder
from lcfm.engine.save import load_classifier
from lcfm.exceptions import ConfigError, DataError, PluginNotFoundError
from lcfm.fold import check_folding
from lcfm.registry import get_survey
from lcfm.shards import scan_shards, write_frame_atomic

#: object_id -> split ("train", "validation", "test") of the fine-tuning run, in its folder
SPLITS_FILE = "splits.parquet"
SEEN_SPLITS = ("train", "validation")


def write_splits(output: Path, parts: dict[str, pl.DataFrame]) -> Path:
    """Record which objects a fine-tuning run trained, validated and tested on."""
    table = pl.concat([pl.DataFrame({"object_id": part["object_id"].unique().sort(),
                                     "split": name}, schema={"object_id": pl.String,
                                                             "split": pl.String})
                       for name, part in parts.items()])
    return write_frame_atomic(table, Path(output) / SPLITS_FILE)


def read_splits(model_dir: Path) -> pl.DataFrame | None:
    path = Path(model_dir) / SPLITS_FILE
    if not path.exists():
        return None
    try:
        table = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise DataError(f"{path}: unreadable split record ({exc})") from None
    if not {"object_id", "split"} <= set(table.columns):
        raise DataError(f"{path}: expected columns object_id and split, found {table.columns}")
    return table


def seen_objects(model_dir: Path) -> pl.Series:
    """The objects a fine-tuning run trained or validated on (none without a record)."""
    splits = read_splits(model_dir)
    if splits is None:
        return pl.Series("object_id", [], pl.String)
    return splits.filter(pl.col("split").is_in(SEEN_SPLITS))["object_id"].cast(pl.String)


def file_output(output: Path, option: str = "--output") -> Path:
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"{option} {output}: is a directory; give a file name such as "
                          f"{output / 'catalog.parquet'}")
    return output


def folder_output(output: Path, option: str = "--output") -> Path:
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{option} {output}: is an existing file; give a folder")
    return output


def parse_cutoffs(cutoffs) -> list[float] | None:
    """`1,3,10,30` (or a list of numbers) -> [1.0, 3.0, 10.0, 30.0]; None or empty -> None."""
    if cutoffs is None or cutoffs == "" or cutoffs == []:
        return None
    items = cutoffs.split(",") if isinstance(cutoffs, str) else list(cutoffs)
    try:
        values = [float(x) for x in items if str(x).strip()]
    except (TypeError, ValueError):
        raise ConfigError(f"--cutoffs {cutoffs!r}: expected numbers separated by commas"
                          ) from None
    return values or None


def _bands(frame: pl.DataFrame) -> list[str]:
    return frame["band"].explode().cast(pl.String).unique().sort().to_list()


def input_bands(plugin, config, frame: pl.DataFrame, source, encoder=None) -> dict[str, float]:
    """Band -> wavelength for the collator, after checking that the model can read data of
    this survey (module docstring). Raises DataError naming both surveys otherwise."""
    check_folding(config, frame, source)
    surveys = sorted(frame["survey"].drop_nulls().unique().to_list())
    # several surveys: a combined dataset (lcfm.combined), whose survey is their "+" name
    survey = SEPARATOR.join(surveys) if len(surveys) > 1 else surveys[0]
    model_survey = getattr(config, "lcfm_survey", None)
    model_bands = dict(getattr(config, "lcfm_bands", None) or {})
    present = _bands(frame)
    # a model trained on a combined dataset reads each of its surveys (ASTRAFier sect. 6.3:
    # trained on Kepler + TESS, deployed on TESS)
    if (model_survey is None or survey == model_survey
            or set(surveys) <= set(member_names(model_survey))):
        unknown = [b for b in present if model_bands and b not in model_bands]
        if unknown:
            raise DataError(f"{source}: bands {unknown} are not among the model's "
                            f"{model_survey} bands {sorted(model_bands)}")
        return model_bands
    try:
        data_plugin = get_survey(survey)
        wavelengths = {str(b): float(w) for b, w in data_plugin.bands.items()}
        kinds = {data_plugin.value_kind, get_survey(model_survey).value_kind}
    except PluginNotFoundError:
        wavelengths, kinds = {}, set()
    missing = [b for b in present if not wavelengths.get(b, 0) > 0]
    if not plugin.encodes_wavelength:
        why = f"{plugin.name} does not encode bands by wavelength"
    elif missing:
        why = f"bands {missing} have no central wavelength"
    elif len(kinds) != 1:
        why = f"values differ in kind ({' vs '.join(sorted(kinds)) or 'unknown'})"
    elif encoder is not None:
        why = f"the model reads {model_survey} metadata"
    else:
        return wavelengths
    raise DataError(f"{source}: the model was trained on {model_survey} (bands "
                    f"{', '.join(model_bands)}), the data are {survey} (bands "
                    f"{', '.join(present)}); {why}")


def inference_collator(plugin, config, bands, seed: int = 0, task: str = "classify"):
    # label2id=None: inference needs no labels, so unlabeled rows and labels outside the
    # model's classes are classified like any other
    return plugin.collator(config, task=task, train=False, bands=bands, label2id=None,
                           seed=seed)


def load_classifier_parts(model_dir: Path):
    """(plugin, model, class names, metadata encoder or None) of a classifier folder."""
    plugin, model = load_classifier(model_dir)
    config = model.config
    classes = [config.id2label[i] for i in range(len(config.id2label))]
    return plugin, model, classes, load_encoder(model_dir)


def feature_inputs(model_dir: Path, config, encoder, data: Path,
                   features_file: Path | None = None):
    """(collator wrapper, metadata encoder) for a classifier trained with `--features`
    (`lcfm.engine.extra_features`): the data's classical features, read from
    `features_file` or computed here, scaled as in training (`features_scaler.json`), go
    into the head of Astromer/AstroCo/ASTRAFier or onto ATCAT's metadata token. A model
    trained without features gets (identity, encoder)."""
    from lcfm.engine.extra_features import (
        attach_features,
        feature_route,
        features_for,
        load_feature_scaler,
    )
    from lcfm.engine.metadata import with_feature_metadata

    scaler = load_feature_scaler(model_dir)
    if scaler is None:
        return (lambda collate: collate), encoder
    with tempfile.TemporaryDirectory(prefix="lcfm-features-") as tmp:
        features = features_for(data, Path(tmp), features_file)
    if feature_route(config) == "head":
        return (lambda collate: attach_features(collate, features, scaler)), encoder
    return (lambda collate: collate), with_feature_metadata(encoder, features, scaler)


def band_summary(data: Path) -> pl.DataFrame:
    """The surveys and bands of a dataset (what `input_bands` checks), read column-wise."""
    scan = scan_shards(data)
    surveys = scan.select(pl.col("survey").unique()).collect()["survey"].to_list()
    bands = (scan.select(pl.col("band").explode().cast(pl.String).unique())
             .collect()["band"].to_list())
    return pl.DataFrame({"survey": surveys, "band": [bands] * len(surveys)},
                        schema={"survey": pl.String, "band": pl.List(pl.String)})


def model_key(model_dir: Path) -> str:
    return str(Path(model_dir).resolve())


def summary_path(output: Path) -> Path:
    """`<stem>.json` beside a catalog."""
    return output.with_name(output.stem + ".json")


def check_mc_samples(mc_samples: int) -> None:
    if mc_samples < 0:
        raise ConfigError(f"--mc-samples {mc_samples}: must be 0 (one deterministic pass) or "
                          "a positive number of passes")


def check_causal(plugin, early: bool) -> None:
    if early and not getattr(plugin, "causal", False):
        raise ConfigError(f"--early: probabilities after every observation need a causal "
                          f"model; {plugin.name!r} attends to future points (--cutoffs "
                          "works with any model)")
