"""The ATLAS survey plugin (variable stars of Heinze et al. 2018, as used by Astromer 2).

The reader is built from the published description of the ATLAS photometry files (see
`lcfm_surveys.atlas.reader`), not from a real file: no real ATLAS light curve is available to
lcfm's developers, so none is bundled and `sample_path()` raises a ConfigError saying so;
give `--input` to ingest ATLAS data.

Bands (Tonry et al. 2018, PASP 130, 064505): c ("cyan", 4200-6500 A) and o ("orange",
5600-8200 A); lcfm publishes central wavelengths of 5330 A and 6790 A. Astromer 2 (sect.
4.2.2) uses the o passband only, hence the default `band=o`; `band=c` takes the cyan points
and `band=all` keeps both bands interleaved in one time-sorted sequence.

Labels (taxonomy CB, DB, Mira, Pulse with Astromer 2's merges; see `labels.py`) come from
  1. the catalogue given as option `labels=PATH` (ATO_ID, CLASS columns), matched to each
     file's stem ignoring spaces, underscores and case; or else
  2. the file naming: a light curve inside a folder named after a class, raw (CBF/, MIRA/,
     dubious/, ...) or merged (CB/, Mira/, ...), takes that class.
A light curve with neither is unlabelled (label None) and still usable for pretraining.

Preprocessing, as for MACHO in Astromer 2 (sect. 2.1 and 4.1): drop non-finite values;
remove observations with uncertainties < 0 or > 1 mag; discard points below the 1st or above
the 99th percentile of each light curve; sort by time (dropping duplicate epochs); reject
light curves left empty. `moment_filter=true` adds Astromer 2's |kurtosis| > 10,
|skewness| > 1 and std > 0.1 filter (`lcfm.preprocess.moment_filter`; sect. 4.1 applies it
to the MACHO pretraining corpus, so it is off by default here). Windows of
`default_window = 200` observations and per-window zero-mean magnitudes are the collator's
job, not ingest's.
"""

from __future__ import annotations

from pathlib import Path

from lcfm.exceptions import ConfigError
from lcfm.preprocess import (
    drop_nonfinite,
    error_range,
    min_points,
    moment_filter,
    option_flag,
    percentile_clip,
    sort_by_time,
)
from lcfm.survey import SurveyPlugin

from lcfm_surveys.atlas.labels import (
    ATLAS_TAXONOMY,
    CatalogueEntry,
    is_known_label,
    map_label,
    object_key,
    read_label_catalogue,
)
from lcfm_surveys.atlas.reader import AtlasPhotometryReader


def parse_band_option(value, bands) -> tuple[str, ...]:
    """"o", "c", "c,o" or "all" -> tuple of band names, in the survey's band order."""
    text = str(value).strip()
    if text.lower() == "all":
        return tuple(bands)
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in bands]
    if not names or unknown:
        raise ConfigError(f"survey 'atlas': option band={value!r} is not valid; use one of "
                          f"{', '.join(bands)}, a comma list of them, or 'all'")
    return tuple(b for b in bands if b in names)


class AtlasSurvey(SurveyPlugin):
    name = "atlas"
    description = ("ATLAS variable stars (Heinze et al. 2018): per-object photometry files, "
                   "c/o bands, magnitudes; Astromer 2 labels CB, DB, Mira, Pulse")
    bands = {"c": 5330.0, "o": 6790.0}
    value_kind = "mag"
    taxonomy = ATLAS_TAXONOMY
    default_window = 200
    readers = (AtlasPhotometryReader,)
    # one file per object and no observing segments: a repeated object is a duplicate
    segment_fields = ()
    # No bundled sample: no real ATLAS light curve may be shipped, and a synthetic file
    # must not pass for one.
    sample_package = ""
    options = {"band": "o", "labels": "", "moment_filter": False}

    def __init__(self, **options):
        super().__init__(**options)
        self.selected_bands = parse_band_option(self.opts["band"], self.bands)
        self.opts["moment_filter"] = option_flag(self.name, "moment_filter",
                                                 self.opts["moment_filter"])
        self._catalogue: dict[str, CatalogueEntry] | None = None

    # ---- labels ----------------------------------------------------------------------
    @property
    def labels_path(self) -> Path | None:
        value = self.opts.get("labels")
        return Path(value) if value else None

    def catalogue(self) -> dict[str, CatalogueEntry] | None:
        """The label catalogue of option `labels`, read once (None without the option)."""
        if self.labels_path is None:
            return None
        if self._catalogue is None:
            self._catalogue = read_label_catalogue(self.labels_path)
        return self._catalogue

    def label_for(self, path: Path) -> tuple[str | None, str | None, dict]:
        """(lcfm class, raw class, catalogue extras such as ra/dec/period) of a light-curve file."""
        catalogue = self.catalogue()
        if catalogue is not None:
            entry = catalogue.get(object_key(Path(path).stem))
            if entry is not None:
                extra = {"ra": entry.ra, "dec": entry.dec, "period": entry.period}
                return entry.label, entry.raw_label, extra
        folder = Path(path).parent.name
        if folder and is_known_label(folder):
            return map_label(folder), folder, {}
        return None, None, {}

    # ---- files -----------------------------------------------------------------------
    def input_files(self, path: Path, fmt: str | None = None) -> list[Path]:
        """As the base class, minus the label catalogue when it sits among the light curves."""
        files = super().input_files(path, fmt)
        if self.labels_path is not None:
            catalogue = self.labels_path.resolve()
            files = [f for f in files if f.resolve() != catalogue]
        return files

    def sample_path(self) -> Path:
        raise ConfigError("survey 'atlas' ships no bundled sample: no real ATLAS light curve "
                          "may be redistributed with lcfm; pass --input with ATLAS files")

    def simulator(self):
        from lcfm_surveys.atlas.simulate import AtlasSimulator
        return AtlasSimulator(self)

    # ---- preprocessing ---------------------------------------------------------------
    def preprocessing(self):
        chain = [
            ("drop_nonfinite", drop_nonfinite()),
            ("error_range", error_range(0.0, 1.0)),
            ("percentile_clip", percentile_clip(1.0, 99.0)),
            ("sort_by_time", sort_by_time()),
        ]
        if self.opts["moment_filter"]:  # on the cleaned points, as the published code
            chain.append(("moment_filter", moment_filter()))
        return chain + [("min_points", min_points(1))]
