"""The survey plugin contract (DESIGN.md, "Survey plugin contract"; issue 12, item 6).

A survey plugin subclasses `SurveyPlugin` and is registered under the entry point group
`lcfm.surveys`. It declares bands with central wavelengths, a taxonomy, one `Reader` per
native format, a deterministic preprocessing chain, its ingest options and a bundled real
sample. Readers and preprocessing steps never drop data silently: they count every
rejected point and light curve in the `IngestReport`.

A light curve travels between readers, steps and the shard writer as a *row*: a dict with
the canonical columns, where `time` is float64, `value`/`error` float32 numpy arrays and
`band` a numpy array of str.

Multi-band layout: one row per light curve (object x observing segment) holding every band,
time-sorted and interleaved, with the band of each observation in `band`; not one row per
band. Per-band treatment (normalisation per band, one pass per band for single-band
models) is the collators' job, from the band column.

Options (`lcfm ingest --option key=value`, `lcfm simulate --option ...`): each entry of
`SurveyPlugin.options` is a plain default or a `survey_option(default, help, type=...)`.
Values reach the plugin as text unless a type is declared: a declared `bool`, `int`,
`float` or `list` option is parsed by lcfm (`true/false`, numbers, comma lists) and a bad
value is a one-line `ConfigError`; an option with a plain text (or None) default keeps its
value as text, so `--option labels=123` is "123", never the number 123; options with other
plain defaults are passed through for the plugin to parse, as before. `lcfm ingest --labels
FILE` arrives as the option `labels` (a path, as text): a plugin that joins a label
catalogue declares `labels` in its options and reads `self.labels_path`; other plugins
refuse `--labels` in one line.

Label catalogues beside the light curves (the file of the `labels` option, and files named
like `SurveyPlugin.catalogue_patterns` -- labels.csv, periods.csv, ... -- that no reader
with a content check of its own (`Reader.matches` overridden) recognises) are not light
curves: discovery skips them and the ingest report lists them under `files_skipped`.

Raw labels: `Taxonomy.map(raw, report)` counts a raw label the taxonomy does not know in the
report (`labels_unknown`) and returns None (the light curve is kept, unlabelled); without a
report it raises `UnknownLabelError`, a typed one-line error (still a `KeyError` for code
that catches one). Ingest also checks every row's label against the taxonomy.

Windows: a survey does not fix the number of observations a model sees; each model's
configuration does (`window_size`, `max_length`, from its paper), and predict/evaluate
cover whole light curves with consecutive windows. `default_window` is no longer part of
the contract: older plugins may still set it, and `describe()` shows it when they do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lcfm.exceptions import ConfigError, InputFileError, LcfmError
from lcfm.report import IngestReport
from lcfm.survey_options import OPTION_TYPES, SurveyOption, option_text, survey_option

__all__ = ["CATALOGUE_PATTERNS", "OPTION_TYPES", "Reader", "Row", "Step", "SurveyOption",
           "SurveyPlugin", "Taxonomy", "UnknownLabelError", "survey_option"]

Row = dict
Step = Callable[[Row, IngestReport], Row | None]

#: file names of label catalogues that sit beside light curves and are never read as data
CATALOGUE_PATTERNS = ("labels.*", "*_labels.*", "periods.*", "*_periods.*")
class UnknownLabelError(LcfmError, KeyError):
    """A raw label that the survey's taxonomy does not map (one line; a KeyError too)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


@dataclass(frozen=True)
class Taxonomy:
    """Class names of a survey, and how raw labels (codes, catalogue names) map onto them.

    `raw_to_class` maps a raw label (as a string) to a class name, or to None when the
    raw class is deliberately excluded (e.g. ATLAS's Fourier-derived labels).
    """

    classes: tuple[str, ...]
    raw_to_class: Mapping[str, str | None] = field(default_factory=dict)

    def map(self, raw, report: IngestReport | None = None) -> str | None:
        """The class of a raw label (None: no label, or deliberately excluded). A raw label
        the taxonomy does not know is counted in `report` (`labels_unknown`) and gives None;
        without a report it raises `UnknownLabelError`."""
        if raw is None:
            return None
        key = str(raw).strip()
        if key in self.classes:
            return key
        if key in self.raw_to_class:
            return self.raw_to_class[key]
        if report is not None:
            report.unknown_label(key)
            return None
        known = ", ".join(list(self.classes) + [k for k in self.raw_to_class
                                                if k not in self.classes])
        raise UnknownLabelError(f"unknown raw label {key!r}; known: {known}")

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "raw_to_class": dict(self.raw_to_class)}


class Reader:
    """One native file format of a survey.

    Subclasses set `name` and `description`, implement `matches(path)` (cheap detection on
    the file name or first bytes) and `read(path, report)` which yields rows and records
    points it rejects itself (sentinels, flags) in `report`. `read` must call
    `report.read(n)` for every raw light curve, before any rejection.

    Context: while ingest reads, `self.root` is the input root (the folder given to
    `--input`, or the file's folder when one file is given; None outside ingest) -- where a
    reader finds files beside the light curves (a label catalogue, a header file) -- and
    `self.options` the survey's options in force (`self.survey.opts`). A reader written
    before these existed keeps working: nothing is passed to `read`.

    `duplicates` says what ingest does with a row whose object (and segment, see
    `SurveyPlugin.segment_key`) was already read (issue 9, item 6): "reject" keeps the
    first and rejects the later ones as "duplicate object_id" (a SNANA HEAD with a
    repeated SNID); "merge" combines them into one light curve with
    `SurveyPlugin.merge_rows` before preprocessing (LSST alerts of one object spread over
    many broker files).
    """

    name: str = ""
    description: str = ""
    #: glob patterns of files this format reads inside a directory
    patterns: tuple[str, ...] = ()
    #: "reject" or "merge": what to do with a second row of the same light curve
    duplicates: str = "reject"

    #: the input root of the ingest in progress (see the class docstring)
    root: Path | None = None

    def __init__(self, survey: SurveyPlugin):
        self.survey = survey

    @property
    def options(self) -> dict:
        """The survey's options in force (defaults overridden by `--option`)."""
        return self.survey.opts

    def matches(self, path: Path) -> bool:
        return any(path.match(p) for p in self.patterns)

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        raise NotImplementedError


class SurveyPlugin:
    """Base class of survey plugins; see the module docstring for the contract."""

    name: str = ""
    description: str = ""
    #: band name -> central wavelength in Angstrom
    bands: Mapping[str, float] = {}
    value_kind: str = "mag"
    taxonomy: Taxonomy = Taxonomy(())
    #: not read by lcfm (module docstring, "Windows"); older plugins set it, `describe()`
    #: shows it
    default_window: int | None = None
    #: reader classes, first match wins during auto-detection
    readers: Sequence[type[Reader]] = ()
    #: package that holds the bundled sample, and the folder inside it
    sample_package: str = ""
    sample_folder: str = "sample"
    #: ingest options (`lcfm ingest --option key=value`): name -> a plain default or a
    #: `survey_option(default, help, type=...)` (module docstring, "Options"); declare
    #: `labels` to accept `lcfm ingest --labels FILE`
    options: Mapping[str, object] = {}
    #: file names (globs) of label catalogues beside the light curves, skipped by discovery
    catalogue_patterns: tuple[str, ...] = CATALOGUE_PATTERNS
    #: meta fields that tell observing segments of one object apart (one row per Kepler
    #: quarter, TESS sector, K2 campaign); a field a row's meta lacks counts as None
    segment_fields: tuple[str, ...] = ("quarter", "sector", "campaign")

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown == ["labels"]:
            raise ConfigError(f"survey {self.name!r} joins no label catalogue (--labels); "
                              f"its labels come from its files")
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in self.option_defaults().items()) \
                or "none"
            raise ConfigError(f"survey {self.name!r} has no option(s) {unknown}; "
                              f"options: {known}")
        specs = self.option_specs()
        given = {k: self._coerce(k, v, specs[k]) for k, v in options.items()}
        #: the options in force: defaults overridden by the user's values
        self.opts = {**self.option_defaults(), **given}

    @classmethod
    def option_specs(cls) -> dict[str, SurveyOption | None]:
        """Declared options (`SurveyOption`), None for those given as a plain default."""
        return {k: v if isinstance(v, SurveyOption) else None for k, v in cls.options.items()}

    @classmethod
    def option_defaults(cls) -> dict[str, object]:
        return {k: v.default if isinstance(v, SurveyOption) else v
                for k, v in cls.options.items()}

    def _coerce(self, name: str, value, spec: SurveyOption | None):
        """A user's option value: parsed for a declared option; text for a plain option
        whose default is text or None; as given otherwise (module docstring)."""
        if spec is not None:
            return spec.parse(self.name, name, value)
        default = type(self).options[name]
        if (default is None or isinstance(default, str)) and isinstance(value, int | float):
            return option_text(value)
        return value

    def with_options(self, **options) -> SurveyPlugin:
        """A new instance of this plugin with some options changed."""
        return type(self)(**{**self.opts, **options})

    @property
    def labels_path(self) -> Path | None:
        """The label catalogue of `lcfm ingest --labels FILE` (option `labels`), if any."""
        value = self.opts.get("labels")
        if value is None or str(value).strip().lower() in ("", "none"):
            return None
        return Path(str(value)).expanduser()

    # ---- formats -------------------------------------------------------------------
    @property
    def formats(self) -> dict[str, Reader]:
        return {cls.name: cls(self) for cls in self.readers}

    def reader_for(self, path: Path, fmt: str | None = None, *,
                   root: Path | None = None) -> Reader:
        """The reader of `path` (the `fmt` one, else the first that matches), with the
        input root `root` (default: the file's folder) as its `root`."""
        formats = self.formats
        if fmt is not None:
            self.check_format(fmt)
            reader = formats[fmt]
        else:
            reader = next((r for r in formats.values() if r.matches(path)), None)
        if reader is None:
            known = ", ".join(f"{r.name} ({r.description})" for r in formats.values())
            raise InputFileError(path, f"not a recognised {self.name} file; formats: {known}")
        reader.root = Path(root) if root is not None else Path(path).parent
        return reader

    def is_catalogue(self, path: Path) -> bool:
        """Whether `path` is a label catalogue: the `labels` option's file, or a file named
        like one (`catalogue_patterns`) that no reader of the survey recognises as its own
        (MACHO's Alcock metadata CSV, say, may be called labels.csv and is read as data)."""
        path = Path(path)
        labels = self.labels_path
        try:
            if labels is not None and path.resolve() == labels.resolve():
                return True
        except OSError:
            pass
        if not any(path.match(p) for p in self.catalogue_patterns):
            return False
        # a reader that looks inside files (its own `matches`) may claim it as data
        return not any(type(reader).matches is not Reader.matches and reader.matches(path)
                       for reader in self.formats.values())

    def _found(self, path: Path, fmt: str | None) -> list[Path]:
        formats = self.formats
        chosen = [formats[fmt]] if fmt else list(formats.values())
        return sorted({p for r in chosen for pattern in r.patterns for p in path.rglob(pattern)
                       if p.is_file()})

    def catalogues(self, path: Path, fmt: str | None = None) -> list[Path]:
        """Label catalogues under the folder `path` that a reader's patterns would pick up:
        discovery skips them (`input_files`), ingest lists them as skipped."""
        path = Path(path)
        if not path.is_dir():
            return []
        return [p for p in self._found(path, fmt) if self.is_catalogue(p)]

    def input_files(self, path: Path, fmt: str | None = None) -> list[Path]:
        """Files under `path` (a file or a directory) that some reader understands, label
        catalogues left out (`catalogues`); a file given by name is read whatever its name."""
        path = Path(path)
        if fmt is not None:  # before anything else: a typo is a typo on files and folders
            self.check_format(fmt)
        if not path.exists():
            raise InputFileError(path, "no such file or directory")
        if path.is_file():
            return [path]
        found = self._found(path, fmt)
        files = [p for p in found if not self.is_catalogue(p)]
        if not files:
            formats = self.formats
            chosen = [formats[fmt]] if fmt else list(formats.values())
            patterns = sorted({p for r in chosen for p in r.patterns})
            skipped = [p.name for p in found if p not in files]
            extra = f"; skipped label catalogue(s) {skipped}" if skipped else ""
            raise InputFileError(path, f"no {self.name} files found (looked for "
                                       f"{patterns}){extra}")
        return files

    def check_format(self, fmt: str) -> None:
        """`ConfigError` listing the formats when `fmt` is not one of them."""
        formats = self.formats
        if fmt not in formats:
            listing = ", ".join(f"{n} ({r.description})" if r.description else n
                                for n, r in formats.items())
            raise ConfigError(f"survey {self.name!r} has no format {fmt!r}; "
                              f"formats: {listing}")

    # ---- rows ------------------------------------------------------------------------
    def row(self, object_id: str, time, value, error, band, *, label: str | None = None,
            meta: dict | None = None) -> Row:
        """A canonical row with the canonical dtypes; `band` may be one name for all points."""
        time = np.ascontiguousarray(time, dtype=np.float64)
        bands = np.full(time.size, band) if isinstance(band, str) else np.asarray(band)
        return {"object_id": str(object_id), "survey": self.name, "time": time,
                "value": np.ascontiguousarray(value, dtype=np.float32),
                "error": np.ascontiguousarray(error, dtype=np.float32), "band": bands,
                "value_kind": self.value_kind, "label": label, "meta": meta or {}}

    def segment_key(self, row: Row, *, bands: bool = True) -> tuple:
        """What makes two rows the same light curve: object_id, the meta values of
        `segment_fields` and (with `bands`) the band of a single-band row, so MACHO's B
        and R rows of one star stay two light curves while two multi-band rows of one
        SNID are one light curve whatever bands each covers ("" stands for "several
        bands"). "merge" readers group without the band: their rows are pieces of one
        light curve. Override for a survey whose segments need another rule."""
        meta = row.get("meta") or {}
        key = (str(row["object_id"]), *(_plain(meta.get(f)) for f in self.segment_fields))
        if bands:
            names = np.unique(np.asarray(row["band"]).astype(str))
            key += (str(names[0]) if names.size == 1 else "",)
        return key

    def merge_rows(self, rows: list[Row], report: IngestReport) -> Row:
        """One light curve from several rows of the same object (a "merge" reader): the
        points concatenated and sorted by time, exact repeats of a (time, band) pair kept
        once and counted as "duplicate observation", the first non-null label and, field
        by field, the first non-null (and non-NaN) meta value."""
        time = np.concatenate([np.asarray(r["time"], np.float64) for r in rows])
        value = np.concatenate([np.asarray(r["value"], np.float32) for r in rows])
        error = np.concatenate([np.asarray(r["error"], np.float32) for r in rows])
        band = np.concatenate([np.asarray(r["band"]).astype(str) for r in rows])
        order = np.lexsort((np.arange(time.size), band, time))  # stable: first copy first
        time, value, error, band = time[order], value[order], error[order], band[order]
        repeat = np.zeros(time.size, dtype=bool)
        repeat[1:] = (time[1:] == time[:-1]) & (band[1:] == band[:-1])
        report.reject_points("duplicate observation", int(repeat.sum()))
        keep = ~repeat
        label = next((r["label"] for r in rows if r.get("label") is not None), None)
        meta: dict = {}
        for r in rows:
            for k, v in (r.get("meta") or {}).items():
                if _missing(meta.get(k)) and not (_missing(v) and k in meta):
                    meta[k] = v
        return {**rows[0], "time": time[keep], "value": value[keep], "error": error[keep],
                "band": band[keep], "label": label, "meta": meta}

    # ---- preprocessing -------------------------------------------------------------
    def preprocessing(self) -> list[tuple[str, Step]]:
        """The named, deterministic chain applied at ingest (defaults from the papers)."""
        return []

    def preprocess(self, row: Row, report: IngestReport) -> Row | None:
        """The row's label checked against the taxonomy (a raw label is mapped, an unknown
        one counted in `report` and dropped), then the chain of `preprocessing()`."""
        label = row.get("label")
        if label is not None and label not in self.taxonomy.classes:
            row = {**row, "label": self.taxonomy.map(label, report)}
        for _name, step in self.preprocessing():
            row = step(row, report)
            if row is None:
                return None
        return row

    def fit_metadata(self, frame):
        """A fitted metadata encoder for models with a metadata token (ATCAT sect. 2.2.2),
        fitted on the training rows `frame`: an object with `encode(frame) -> (rows, dim)
        float32` and `to_dict()`; `load_metadata(dict)` restores it. None: the survey has
        no per-object metadata."""
        return None

    def load_metadata(self, state: dict):
        raise ConfigError(f"survey {self.name!r} has no metadata encoder")

    def post_ingest(self, output_dir: Path, frame) -> None:
        """Called once after all shards are written (e.g. to fit and save a metadata
        transform next to the dataset). `frame` holds the written rows without their
        observation sequences (`lcfm.shards.read_summaries`)."""

    # ---- simulation ----------------------------------------------------------------
    def simulator(self):
        """The survey's `lcfm.simulate.SurveySimulator` (`lcfm simulate`): its classes'
        light curves in its cadence and noise. Plugins without one keep this default."""
        raise ConfigError(f"survey {self.name!r} has no simulator")

    # ---- bundled sample ------------------------------------------------------------
    def sample_path(self) -> Path:
        from importlib.resources import files

        if not self.sample_package:
            raise ConfigError(f"survey {self.name!r} ships no bundled sample")
        return Path(str(files(self.sample_package) / self.sample_folder))

    # ---- description -----------------------------------------------------------------
    def wavelength(self, band: str) -> float:
        try:
            return float(self.bands[band])
        except KeyError:
            raise ConfigError(f"survey {self.name!r} has no band {band!r}; "
                              f"bands: {', '.join(self.bands)}") from None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "bands": {b: float(w) for b, w in self.bands.items()},
            "value_kind": self.value_kind,
            "taxonomy": list(self.taxonomy.classes),
            "formats": {n: r.description for n, r in self.formats.items()},
            # not part of the contract any more (module docstring, "Windows")
            "default_window": self.default_window,
            "options": self.option_defaults(),
            "option_types": {k: (s.type.__name__ if s is not None else None)
                             for k, s in self.option_specs().items()},
        }


def _plain(value):
    """A meta value as a hashable Python scalar (numpy scalars compare and hash alike)."""
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))
