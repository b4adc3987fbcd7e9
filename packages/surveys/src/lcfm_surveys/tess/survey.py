"""The TESS survey plugin `tess_qlp`: QLP full-frame-image light curves (and SPOC 2-minute
light curves), ASTRAFier's TESS taxonomy and preprocessing (Gregory et al., "ASTRAFier",
sect. 4.2 and 4.3).

The QLP reader is built from the published description of the QLP HLSP files and tested
on files the tests write in that layout (no real QLP file may be shipped); the SPOC
reader is tested on a real file, which is also the bundled sample.

Options (`lcfm ingest --survey tess_qlp --option key=value`):

- `flux_column` = none (default: SAP_FLUX for QLP, PDCSAP_FLUX for SPOC) or a column
  name such as KSPSAP_FLUX (QLP; DET_FLUX is used for sectors >= 56) or SAP_FLUX.
- `quality_bitmask` = all (default) | default | none | an integer. Cadences whose QUALITY
  shares a bit with the mask are dropped (and counted). ASTRAFier removes "the time steps
  and flux values flagged by QLP", hence "all": any flag. QUALITY bits follow the SPOC
  convention (TESS Science Data Products Description Document): 1 attitude tweak,
  2 safe mode, 4 coarse point, 8 Earth point, 16 Argabrightening, 32 reaction-wheel
  desaturation (momentum dump), 64 cosmic ray in aperture, 128 manual exclude,
  256 discontinuity, 512 impulsive outlier, 1024 cosmic ray in collateral data,
  2048 stray light; QLP adds its "low precision" flag, bit 13 (4096) in sectors 1-55 and
  bit 31 (2**30) from sector 56. "default" is 175 = 1|2|4|8|32|128, the cadences that are
  certainly unusable.
- `labels` = path of a CSV with columns `TIC` and `class` (one of the 8 classes below;
  aliases such as INSTRUMENT, JUNK or CONTACT/ROT are accepted, case-insensitive).
- `clip_sigma` = 10, `gaussian_sigma` = 61 (cadences): the paper's values.
- `preprocessing` = astrafier (default) | none (only sorting by time).

Preprocessing, ASTRAFier sect. 4.3, in the paper's order: flagged and NaN cadences are
dropped by the reader; then points more than 10 standard deviations from the median are
dropped, a Gaussian filter (sigma = 61 cadences) of the flux is subtracted, time is shifted
to start at 0 (the offset is kept in meta["time_offset"]) and the flux is standardized.

Duplicates (issue 9, item 6): a light curve is a star and a sector (`segment_fields`), so
the same star and sector twice (a QLP and a SPOC file of it, or a copy) is reported and
kept once. A file whose TICID is missing or not an integer is refused in one line.
"""

from __future__ import annotations

from lcfm.preprocess import sort_by_time
from lcfm.survey import SurveyPlugin, Taxonomy

from lcfm_surveys._fits import (
    catalog_label,
    clip_about_median,
    option_bitmask,
    option_choice,
    option_float,
    shift_time_to_zero,
    standardize,
    subtract_gaussian_trend,
)
from lcfm_surveys.tess.readers import QlpReader, SpocReader

#: TESS QUALITY bitmasks by name (see the module docstring for the bits)
TESS_BITMASKS = {"all": -1, "default": 175, "none": 0}

#: ASTRAFier sect. 4.2 / Table 1: Kepler's CONSTANT class is replaced by INSTRUMENT/JUNK
TESS_CLASSES = ("APERIODIC", "CONTACT_ROT", "DSCT_BCEP", "ECLIPSE", "GDOR_SPB",
                "INSTRUMENT/JUNK", "RRLYR_CEPH", "SOLARLIKE")


class TessQlpSurvey(SurveyPlugin):
    """TESS photometry (Ricker et al. 2015), one band."""

    name = "tess_qlp"
    description = ("TESS light curves: QLP full-frame-image HLSP files and SPOC 2-min files; "
                   "ASTRAFier taxonomy and preprocessing")
    # 600-1000 nm bandpass centred on the Cousins I band, 786.5 nm (Ricker et al. 2015;
    # TESS Science Support Center).
    bands = {"tess": 7865.0}
    value_kind = "flux"
    taxonomy = Taxonomy(TESS_CLASSES, raw_to_class={
        "INSTRUMENT": "INSTRUMENT/JUNK", "JUNK": "INSTRUMENT/JUNK",
        "INST./JUNK": "INSTRUMENT/JUNK", "INSTRUMENT_JUNK": "INSTRUMENT/JUNK",
        "CONTACT/ROT": "CONTACT_ROT", "DSCT/BCEP": "DSCT_BCEP", "GDOR/SPB": "GDOR_SPB",
        "RRLYR/CEPH": "RRLYR_CEPH", "SOLAR-LIKE": "SOLARLIKE", "SOLAR_LIKE": "SOLARLIKE",
    })
    # ASTRAFier feeds each whole light curve (masked padding, sect. 3.1); one primary-mission
    # QLP sector has at most 27.4 d x 48 cadences/d = 1,315 points, so one window holds it.
    default_window = 1320
    readers = (QlpReader, SpocReader)
    # one row per sector: a star observed in two sectors is two light curves, the same
    # sector twice (a QLP and a SPOC file, or a copy) is a duplicate
    segment_fields = ("sector",)
    sample_package = "lcfm_surveys.tess"
    options = {
        "flux_column": None,
        "quality_bitmask": "all",
        "labels": None,
        "clip_sigma": 10.0,
        "gaussian_sigma": 61.0,
        "preprocessing": "astrafier",
    }

    def __init__(self, **options):
        super().__init__(**options)
        column = self.opts["flux_column"]
        text = "" if column is None else str(column).strip().upper()
        self.flux_column = None if text in ("", "NONE", "AUTO") else text
        self.bitmask = option_bitmask(self.name, self.opts["quality_bitmask"], TESS_BITMASKS)
        self.clip_sigma = option_float(self.name, "clip_sigma", self.opts["clip_sigma"])
        self.gaussian_sigma = option_float(self.name, "gaussian_sigma",
                                           self.opts["gaussian_sigma"])
        self.chain = option_choice(self.name, "preprocessing", self.opts["preprocessing"],
                                   ("astrafier", "none"))

    def label_of(self, object_id: str) -> str | None:
        return catalog_label(self, object_id, ("tic", "ticid", "tic_id", "object_id"))

    def simulator(self):
        from lcfm_surveys.tess.simulate import TessSimulator
        return TessSimulator(self)

    def preprocessing(self):
        chain = [("sort_by_time", sort_by_time())]
        if self.chain == "astrafier":
            chain += [
                ("clip_about_median", clip_about_median(self.clip_sigma)),
                ("subtract_gaussian_trend", subtract_gaussian_trend(self.gaussian_sigma)),
                ("shift_time_to_zero", shift_time_to_zero()),
                ("standardize", standardize()),
            ]
        return chain
