"""The Kepler survey plugin: long-cadence light curves, ASTRAFier's Kepler taxonomy and
preprocessing (Gregory et al., "ASTRAFier", sect. 4.1 and 4.3).

Options (`lcfm ingest --survey kepler --option key=value`):

- `flux_column` = PDCSAP_FLUX (default; the systematics-corrected flux) or SAP_FLUX; the
  uncertainty is the matching `*_ERR` column.
- `quality_bitmask` = default | all | none | an integer. Cadences whose SAP_QUALITY shares a
  bit with the mask are dropped (and counted). "default" is 1130799, the bits that mark
  cadences that are definitely unusable (Kepler Archive Manual, Table 2.3):
  1 attitude tweak, 2 safe mode, 4 coarse point, 8 Earth point, 32 reaction-wheel
  desaturation, 256 manual exclude, 16384 detector anomaly, 65536 no data,
  1048576 thruster firing. It leaves in cadences that are usually fine for variability
  work: 16 reaction-wheel zero crossing, 64/4096 Argabrightening, 128/8192 cosmic ray in
  aperture/collateral, 1024 sudden sensitivity dropout, 2048 impulsive outlier,
  32768 no fine point, 131072/262144 rolling band, 524288 possible thruster firing.
  "all" drops any flagged cadence, "none" none.
- `stitch` = true (default: one row per star; each quarter is divided by its median flux
  before concatenation; see `reader.py`) | false (one row per quarter). One light curve
  per star is what ASTRAFier classifies (sect. 4.1: the Kepler benchmark labels stars,
  and a model window of 1,171 cadences, ~24 days at 29.4 min, is drawn from anywhere in
  the star's light curve in training, while inference averages every window, issue 9);
  per-quarter rows cropped to their first window left most of each star unseen.
- `labels` = path of a CSV with columns `KIC` and `class` (ASTRAFier's Kepler classes).
- `preprocessing` = astrafier (default) | none.

Cadences with a NaN time or flux are always dropped (canonical rows hold finite numbers
only; PDC sets the flux of most flagged cadences to NaN anyway). The preprocessing chain is
then exactly ASTRAFier's for Kepler: "For Kepler light curves, we apply only
standardization" (sect. 4.3) -- after sorting by time, which drops nothing for MAST files.

Duplicates (issue 9, item 6): a light curve is a star and a quarter (`segment_fields`), so
two files of the same star and quarter are a duplicate that ingest reports and keeps
once. A file whose KEPLERID is missing or not an integer is refused in one line.
"""

from __future__ import annotations

from pathlib import Path

from lcfm.preprocess import sort_by_time
from lcfm.survey import SurveyPlugin, Taxonomy

from lcfm_surveys._fits import (
    catalog_label,
    option_bitmask,
    option_bool,
    option_choice,
    standardize,
)
from lcfm_surveys.kepler.reader import KEPLER_FILE, KeplerLongCadenceReader

#: Kepler SAP_QUALITY bitmasks by name (see the module docstring for the bits)
KEPLER_BITMASKS = {"default": 1130799, "all": -1, "none": 0}

#: ASTRAFier sect. 4.1: the eight classes of the Audenaert et al. (2021) Kepler benchmark
KEPLER_CLASSES = ("APERIODIC", "CONSTANT", "CONTACT_ROT", "DSCT_BCEP", "ECLIPSE",
                  "GDOR_SPB", "RRLYR_CEPH", "SOLARLIKE")


class KeplerSurvey(SurveyPlugin):
    """Kepler long-cadence photometry (Borucki et al. 2010), one band."""

    name = "kepler"
    description = ("Kepler long-cadence (29.4 min) light curves from MAST FITS files; "
                   "PDCSAP flux, ASTRAFier taxonomy and preprocessing")
    # The Kepler response spans about 4,300-9,000 A (Kepler Instrument Handbook; Koch et
    # al. 2010); 6,400 A is the response-weighted centre usually quoted for Kp.
    bands = {"kepler": 6400.0}
    value_kind = "flux"
    taxonomy = Taxonomy(KEPLER_CLASSES, raw_to_class={
        "CONSTANT VARIABLES": "CONSTANT", "CONST": "CONSTANT",
        "CONTACT/ROT": "CONTACT_ROT", "DSCT/BCEP": "DSCT_BCEP", "GDOR/SPB": "GDOR_SPB",
        "RRLYR/CEPH": "RRLYR_CEPH", "SOLAR-LIKE": "SOLARLIKE", "SOLAR_LIKE": "SOLARLIKE",
    })
    # ASTRAFier feeds each whole light curve to the model (masked padding, sect. 3.1), so the
    # default window holds one whole quarter: the longest quarter in the shared sample has
    # 4,780 cadences (~93-97 d at 48.9 cadences/day).
    default_window = 4800
    readers = (KeplerLongCadenceReader,)
    # one row per quarter unless stitched (then quarter = -1 for the one row of a star): a
    # second file of the same star and quarter is a duplicate, another quarter is not
    segment_fields = ("quarter",)
    sample_package = "lcfm_surveys.kepler"
    options = {
        "flux_column": "PDCSAP_FLUX",
        "quality_bitmask": "default",
        "stitch": True,
        "labels": None,
        "preprocessing": "astrafier",
    }

    def __init__(self, **options):
        super().__init__(**options)
        column = str(self.opts["flux_column"]).strip().upper()
        column = {"PDCSAP": "PDCSAP_FLUX", "SAP": "SAP_FLUX"}.get(column, column)
        option_choice(self.name, "flux_column", column.lower(), ("pdcsap_flux", "sap_flux"))
        self.flux_column = column
        self.bitmask = option_bitmask(self.name, self.opts["quality_bitmask"], KEPLER_BITMASKS)
        self.stitch = option_bool(self.name, "stitch", self.opts["stitch"])
        self.chain = option_choice(self.name, "preprocessing", self.opts["preprocessing"],
                                   ("astrafier", "none"))

    def label_of(self, object_id: str) -> str | None:
        return catalog_label(self, object_id, ("kic", "kepid", "kic_id", "keplerid",
                                               "object_id"))

    def input_files(self, path: Path, fmt: str | None = None) -> list[Path]:
        """With `stitch`, one file per star and folder stands for all its quarters."""
        files = super().input_files(path, fmt)
        if not self.stitch:
            return files
        seen, kept = set(), []
        for file in files:
            found = KEPLER_FILE.match(file.name)
            key = (file.parent, found.group(1)) if found else (file.parent, file.name)
            if key not in seen:
                seen.add(key)
                kept.append(file)
        return kept

    def simulator(self):
        from lcfm_surveys.kepler.simulate import KeplerSimulator
        return KeplerSimulator(self)

    def preprocessing(self):
        chain = [("sort_by_time", sort_by_time())]
        if self.chain == "astrafier":
            chain.append(("standardize", standardize()))
        return chain
