"""The MACHO survey plugin (DESIGN.md, "Survey plugin contract").

Reads four native layouts into canonical rows, one per star and band (object_id "F.T.S",
band "B" or "R", magnitudes, time in MJD):

* `mjd`          per-star lc_F.T.S.{B,R}.mjd files, plain or in lc_F.T.S.tar.bz2 archives;
* `export_csv`   the labeled export CSV (classification,fieldid,tileid,seqn,...);
* `archive_dump` the MACHO archive's 39-column ';' tile dump (plain or gzipped);
* `alcock`       the Alcock labeled set in the layout Astromer distributes it.

The first two are tested on real files; the tile dump and the Alcock layout have no real
file here and are tested on files written in exactly their published layout.

Bad input is one line naming the file and line: every row of the CSV layouts must have its
header's field count (an export cut mid-row is an error, not a star with missing values),
and an Alcock metadata row whose Path or ID is absolute or climbs out with `..` is
refused. The same star and band in two files is a duplicate, reported and kept once.

Preprocessing follows Astromer 2 (paper 001, sect. 2.1 and 4.1): observations with a
negative uncertainty or one above 1 mag are removed, and values below the 1st or above the
99th percentile of each light curve are discarded. Options of the paper corpora:
`band=R` keeps the R band only (AstroCo pretrains on MACHO R; Astromer keeps one band), the
default `band=all` keeps B and R as separate light curves; `moment_filter=true` applies
Astromer 2's |kurtosis| > 10, |skewness| > 1 and std > 0.1 filter
(`lcfm.preprocess.moment_filter`, off by default until a recipe asks for it). Rows of an
unselected band and light curves the moment filter removes are counted in report.json.
lcfm adds the bookkeeping steps every survey needs (non-finite values, time order,
duplicates, empty light curves). Windows of 200 observations and the zero-mean per window
are applied by the model collators, not at ingest (`default_window = 200`).
"""

from __future__ import annotations

from pathlib import Path

from lcfm.exceptions import ConfigError, LcfmError
from lcfm.preprocess import (
    drop_nonfinite,
    error_range,
    min_points,
    moment_filter,
    option_bands,
    option_flag,
    percentile_clip,
    select_bands,
    sort_by_time,
)
from lcfm.survey import Step, SurveyPlugin

from lcfm_surveys.macho.alcock import MachoAlcockReader
from lcfm_surveys.macho.star_files import MachoStarFileReader
from lcfm_surveys.macho.tables import MachoArchiveDumpReader, MachoExportCsvReader
from lcfm_surveys.macho.taxonomy import BANDS, SURVEY_NAME, TAXONOMY


class MachoSurvey(SurveyPlugin):
    name = SURVEY_NAME
    description = ("MACHO (LMC, SMC, bulge; 1992-1999) two-band photometry, magnitudes in MJD; "
                   "Alcock six-class labels as used by Astromer 2")
    bands = BANDS
    value_kind = "mag"
    taxonomy = TAXONOMY
    default_window = 200  # Astromer 2, sect. 2.1: windows of 200 observations
    # content sniffing decides between the formats; the per-star files go first because
    # they are recognised by name alone
    readers = (MachoStarFileReader, MachoArchiveDumpReader, MachoExportCsvReader,
               MachoAlcockReader)
    # one row per star and band (B and R stay apart through the band set of the key);
    # the same star and band in two files is a duplicate, reported and kept once
    segment_fields = ()
    sample_package = "lcfm_surveys.macho"
    sample_folder = "sample"
    options = {
        "max_error": 1.0,  # mag; Astromer 2 sect. 4.1 drops uncertainties > 1 (and < 0)
        "clip_low": 1.0,  # percentiles kept per light curve (sect. 4.1: 1st-99th)
        "clip_high": 99.0,
        "min_points": 1,  # light curves left with fewer observations are rejected
        "alcock_band": "R",  # band of Alcock files that do not say (paper 002: MACHO R-band)
        "band": "all",  # bands kept: B, R or all (AstroCo sect. 4: R only)
        "moment_filter": False,  # Astromer 2 sect. 4.1 kurtosis/skewness/std filter
    }

    def __init__(self, **options):
        super().__init__(**options)
        try:
            self.opts["max_error"] = float(self.opts["max_error"])
            self.opts["clip_low"] = float(self.opts["clip_low"])
            self.opts["clip_high"] = float(self.opts["clip_high"])
            self.opts["min_points"] = int(self.opts["min_points"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"survey 'macho': bad option value ({exc})") from None
        if not 0 <= self.opts["clip_low"] < self.opts["clip_high"] <= 100:
            raise ConfigError("survey 'macho': need 0 <= clip_low < clip_high <= 100, got "
                              f"{self.opts['clip_low']:g} and {self.opts['clip_high']:g}")
        if self.opts["max_error"] <= 0 or self.opts["min_points"] < 1:
            raise ConfigError("survey 'macho': max_error must be > 0 and min_points >= 1")
        band = str(self.opts["alcock_band"]).strip().upper()
        if band not in BANDS:
            raise ConfigError(f"survey 'macho': alcock_band must be B or R, got {band!r}")
        self.opts["alcock_band"] = band
        self.selected_bands = option_bands(self.name, self.opts["band"], BANDS)
        self.opts["moment_filter"] = option_flag(self.name, "moment_filter",
                                                 self.opts["moment_filter"])

    def simulator(self):
        from lcfm_surveys.macho.simulate import MachoSimulator
        return MachoSimulator(self)

    def preprocessing(self) -> list[tuple[str, Step]]:
        """Astromer 2 quality filters (paper 001, sect. 4.1) around lcfm's bookkeeping.

        Sorting (and dropping exact duplicates) comes before the percentile clip so a
        repeated observation does not weigh twice in the percentiles.
        """
        max_error = self.opts["max_error"]
        chain: list[tuple[str, Step]] = []
        if len(self.selected_bands) < len(BANDS):  # first: nothing is spent on unused rows
            chain.append(("select_bands", select_bands(self.selected_bands)))
        chain += [
            ("drop_nonfinite", drop_nonfinite()),
            ("error_range", error_range(0.0, max_error,
                                        reason=f"uncertainty < 0 or > {max_error:g} mag")),
            ("sort_by_time", sort_by_time()),
            ("percentile_clip", percentile_clip(self.opts["clip_low"], self.opts["clip_high"])),
        ]
        if self.opts["moment_filter"]:  # on the cleaned points, as the published code
            chain.append(("moment_filter", moment_filter()))
        chain.append(("min_points", min_points(self.opts["min_points"])))
        return chain

    def input_files(self, path: Path, fmt: str | None = None) -> list[Path]:
        """Files under `path` to ingest, minus the per-object files of an Alcock dataset:
        those are read through their metadata CSV, not on their own."""
        files = super().input_files(path, fmt)
        if len(files) == 1 and Path(files[0]) == Path(path):
            return files
        alcock = MachoAlcockReader(self)
        if fmt not in (None, alcock.name):
            return files
        owned: set[Path] = set()
        for file in files:
            if file not in owned and alcock.matches(file):
                try:
                    owned.update(p.resolve() for p in alcock.light_curve_files(file))
                except LcfmError:
                    # a malformed metadata file is rejected when ingest reads it; it must
                    # not stop the other files from being found (issue 9, item 6)
                    continue
        return [f for f in files if f.resolve() not in owned]
