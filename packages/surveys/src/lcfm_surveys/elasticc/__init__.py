"""The ELAsTiCC survey plugin (DESIGN.md, "Survey plugin contract"; ATCAT, paper 003, sect. 2.1).

ELAsTiCC is the LSST DESC simulation of the Rubin alert stream: multi-band (ugrizY)
difference-image fluxes of transients and variables. Two native formats are read:

* `snana_fits`    SNANA FITS HEAD/PHOT pairs, the format of the ELAsTiCC training set
                  (labeled through the simulation model), see snana.py;
* `alert_parquet` alerts in the LSST alert schema stored as Parquet, one light curve per
                  diaObject with every measurement once, see alerts.py.

Broker exports (broker.py): one object's alerts spread over many Parquet files are merged
into one light curve before preprocessing (the alert reader declares duplicates="merge";
`merge_rows` keeps each exposure once and the earliest alert for the window). Truth is
read from GENTYPE / SNTYPE / SIM_TYPE_INDEX / classId / class_id / truth columns and from
Hive partition folders such as `classId=121/`, mapped to the 20-class scheme, and a SNANA
type number sets meta["gentype"]. Conflicting truth inside a file is an error naming it.
A SNANA HEAD with a repeated SNID is a duplicate object: ingest keeps the first row and
reports the others (duplicates="reject", the default).

Preprocessing (ATCAT sect. 2.1.1, defaults): observations from 30 days before the first
alert on, t = 0 at the first kept point (its MJD in meta["time_offset"]), flux and its
error as `value`/`error` (value_kind "flux"), band -> central wavelength through `bands`.
lcfm adds the bookkeeping every survey needs (non-finite values, negative errors, time
order and duplicates, empty light curves). Labels use the 20-class scheme of ATAT/ATCAT
(taxonomy.py). After ingest, `post_ingest` fits the metadata quantile transform on the
ingested light curves and saves it next to the dataset (transform.py); models re-apply it
with `apply_metadata_transform`.

Bundled sample (sample/): two real SNLS objects in SNANA FITS (sncosmo test data) and two
sets of real ELAsTiCC alerts (fink-elasticc-templates, fink-science); see its README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lcfm.exceptions import ConfigError
from lcfm.preprocess import drop_nonfinite, error_range, min_points, option_flag, sort_by_time
from lcfm.survey import Step, SurveyPlugin

from lcfm_surveys.elasticc.alerts import AlertParquetReader
from lcfm_surveys.elasticc.bands import LSST_WAVELENGTHS, normalize_bands
from lcfm_surveys.elasticc.broker import merge_alert_rows
from lcfm_surveys.elasticc.metadata import METADATA_FEATURES
from lcfm_surveys.elasticc.preprocessing import alert_window, shift_time_to_first_point
from lcfm_surveys.elasticc.snana import SnanaFitsReader
from lcfm_surveys.elasticc.taxonomy import CLASSES, CODE_SCHEMES, TAXONOMY
from lcfm_surveys.elasticc.transform import (
    TRANSFORM_FILE,
    MetadataEncoding,
    MetadataQuantileTransform,
    apply_metadata_transform,
    fit_metadata_transform,
)

__all__ = [
    "CLASSES", "LSST_WAVELENGTHS", "METADATA_FEATURES", "TRANSFORM_FILE", "TAXONOMY",
    "AlertParquetReader", "ElasticcSurvey", "MetadataEncoding", "MetadataQuantileTransform",
    "SnanaFitsReader", "apply_metadata_transform", "fit_metadata_transform",
    "normalize_bands",
]


class ElasticcSurvey(SurveyPlugin):
    name = "elasticc"
    description = ("ELAsTiCC (LSST DESC simulated Rubin alerts): ugrizY difference fluxes of "
                   "transients and variables; ATAT/ATCAT 20-class scheme")
    bands = LSST_WAVELENGTHS
    value_kind = "flux"
    taxonomy = TAXONOMY
    # ATCAT sect. 3.6: the longest ELAsTiCC light curve after preprocessing has 243 points
    default_window = 243
    readers = (SnanaFitsReader, AlertParquetReader)
    # one light curve per object: no observing segments (Kepler quarters, TESS sectors)
    segment_fields = ()
    sample_package = "lcfm_surveys.elasticc"
    sample_folder = "sample"
    options = {
        "window_days": 30.0,  # keep observations from this many days before the first alert
        "alert_flag": "trigger",  # SNANA first alert: PHOTFLAG trigger bit, or "detection"
        "no_alert": "keep",  # light curves without any detection: "keep" whole or "reject"
        "trim_after_last_detection": False,  # ATAT also cuts after the last detection
        "drop_saturated": True,  # PHOTFLAG bit 1024 (ATAT drops these points)
        "include_forced": True,  # alerts: merge prvDiaForcedSources into the light curve
        "code_scheme": "auto",  # SNANA type numbers: auto, elasticc or plasticc
        "metadata_quantiles": 1000,  # quantiles per feature of the metadata transform
    }

    def __init__(self, **options):
        super().__init__(**options)
        o = self.opts
        o["window_days"] = _number("window_days", o["window_days"])
        if o["window_days"] < 0:
            raise ConfigError(f"survey 'elasticc': window_days must be >= 0, got "
                              f"{o['window_days']:g}")
        o["alert_flag"] = _choice("alert_flag", o["alert_flag"], ("trigger", "detection"))
        o["no_alert"] = _choice("no_alert", o["no_alert"], ("keep", "reject"))
        o["code_scheme"] = _choice("code_scheme", o["code_scheme"], CODE_SCHEMES)
        for key in ("trim_after_last_detection", "drop_saturated", "include_forced"):
            o[key] = option_flag("elasticc", key, o[key])
        quantiles = _number("metadata_quantiles", o["metadata_quantiles"])
        if quantiles < 2 or not float(quantiles).is_integer():
            raise ConfigError(f"survey 'elasticc': metadata_quantiles must be an integer "
                              f">= 2, got {o['metadata_quantiles']!r}")
        o["metadata_quantiles"] = int(quantiles)

    def merge_rows(self, rows, report):
        """The rows of one object's alerts read from several broker files, as one light
        curve (broker.py: each exposure once, earliest alert, agreeing truth)."""
        return merge_alert_rows(rows, report)

    def simulator(self):
        from lcfm_surveys.elasticc.simulate import ElasticcSimulator
        return ElasticcSimulator(self)

    def preprocessing(self) -> list[tuple[str, Step]]:
        """ATCAT's window and time origin (sect. 2.1.1) after lcfm's bookkeeping steps.

        Sorting comes before the window so duplicates are counted once, and the time shift
        comes last so t = 0 is the first point that survives every filter.
        """
        o = self.opts
        return [
            ("drop_nonfinite", drop_nonfinite()),
            ("error_range", error_range(0.0, np.inf, reason="negative flux uncertainty")),
            ("sort_by_time", sort_by_time()),
            ("alert_window", alert_window(
                o["window_days"], drop_without_alert=o["no_alert"] == "reject",
                trim_after_last_detection=o["trim_after_last_detection"])),
            ("min_points", min_points(1)),
            ("shift_time", shift_time_to_first_point()),
        ]

    def fit_metadata(self, frame):
        """The quantile transform fitted on training rows, as a metadata encoder."""
        from .transform import MetadataEncoder

        return MetadataEncoder(fit_metadata_transform(
            frame, n_quantiles=self.opts["metadata_quantiles"]))

    def load_metadata(self, state: dict):
        from .transform import MetadataEncoder, MetadataQuantileTransform

        return MetadataEncoder(MetadataQuantileTransform.from_dict(state))

    def post_ingest(self, output_dir: Path, frame) -> None:
        """Fit the normal-output quantile transform of the metadata on the ingested light
        curves and save it as `elasticc_metadata_transform.json` in `output_dir`.

        ATAT/ATCAT fit it on the training split only: refit with `fit_metadata_transform`
        on the training rows when a dataset is split after ingest.
        """
        transform = fit_metadata_transform(frame if frame is not None else [],
                                           n_quantiles=self.opts["metadata_quantiles"])
        transform.save(Path(output_dir) / TRANSFORM_FILE)


def _number(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise ConfigError(f"survey 'elasticc': option {name}={value!r} is not a number")
    return number


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"survey 'elasticc': option {name}={value!r}; choose one of "
                          f"{', '.join(choices)}")
    return text


