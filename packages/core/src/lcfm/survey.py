"""The survey plugin contract (DESIGN.md, "Survey plugin contract").

A survey plugin subclasses `SurveyPlugin` and is registered under the entry point group
`lcfm.surveys`. It declares bands with central wavelengths, a taxonomy, one `Reader` per
native format, a deterministic preprocessing chain, a default window length and a bundled
real sample. Readers and preprocessing steps never drop data silently: they count every
rejected point and light curve in the `IngestReport`.

A light curve travels between readers, steps and the shard writer as a *row*: a dict with
the canonical columns, where `time` is float64, `value`/`error` float32 numpy arrays and
`band` a numpy array of str.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lcfm.exceptions import ConfigError, InputFileError
from lcfm.report import IngestReport

Row = dict
Step = Callable[[Row, IngestReport], Row | None]


@dataclass(frozen=True)
class Taxonomy:
    """Class names of a survey, and how raw labels (codes, catalogue names) map onto them.

    `raw_to_class` maps a raw label (as a string) to a class name, or to None when the
    raw class is deliberately excluded (e.g. ATLAS's Fourier-derived labels).
    """

    classes: tuple[str, ...]
    raw_to_class: Mapping[str, str | None] = field(default_factory=dict)

    def map(self, raw) -> str | None:
        if raw is None:
            return None
        key = str(raw).strip()
        if key in self.classes:
            return key
        if key in self.raw_to_class:
            return self.raw_to_class[key]
        raise KeyError(key)

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "raw_to_class": dict(self.raw_to_class)}


class Reader:
    """One native file format of a survey.

    Subclasses set `name` and `description`, implement `matches(path)` (cheap detection on
    the file name or first bytes) and `read(path, report)` which yields rows and records
    points it rejects itself (sentinels, flags) in `report`. `read` must call
    `report.read(n)` for every raw light curve, before any rejection.
    """

    name: str = ""
    description: str = ""
    #: glob patterns of files this format reads inside a directory
    patterns: tuple[str, ...] = ()

    def __init__(self, survey: SurveyPlugin):
        self.survey = survey

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
    #: default number of observations per model window
    default_window: int = 200
    #: reader classes, first match wins during auto-detection
    readers: Sequence[type[Reader]] = ()
    #: package that holds the bundled sample, and the folder inside it
    sample_package: str = ""
    sample_folder: str = "sample"
    #: ingest options (`lcfm ingest --option key=value`) and their defaults
    options: Mapping[str, object] = {}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none"
            raise ConfigError(f"survey {self.name!r} has no option(s) {unknown}; "
                              f"options: {known}")
        #: the options in force: defaults overridden by the user's values
        self.opts = {**self.options, **options}

    def with_options(self, **options) -> SurveyPlugin:
        """A new instance of this plugin with some options changed."""
        return type(self)(**{**self.opts, **options})

    # ---- formats -------------------------------------------------------------------
    @property
    def formats(self) -> dict[str, Reader]:
        return {cls.name: cls(self) for cls in self.readers}

    def reader_for(self, path: Path, fmt: str | None = None) -> Reader:
        formats = self.formats
        if fmt is not None:
            if fmt not in formats:
                raise ConfigError(f"survey {self.name!r} has no format {fmt!r}; "
                                  f"formats: {', '.join(formats)}")
            return formats[fmt]
        for reader in formats.values():
            if reader.matches(path):
                return reader
        known = ", ".join(f"{r.name} ({r.description})" for r in formats.values())
        raise InputFileError(path, f"not a recognised {self.name} file; formats: {known}")

    def input_files(self, path: Path, fmt: str | None = None) -> list[Path]:
        """Files under `path` (a file or a directory) that some reader understands."""
        path = Path(path)
        if not path.exists():
            raise InputFileError(path, "no such file or directory")
        if path.is_file():
            return [path]
        formats = self.formats
        chosen = [formats[fmt]] if fmt else list(formats.values())
        if fmt and fmt not in formats:
            raise ConfigError(f"survey {self.name!r} has no format {fmt!r}; "
                              f"formats: {', '.join(formats)}")
        files = sorted({p for r in chosen for pattern in r.patterns for p in path.rglob(pattern)
                        if p.is_file()})
        if not files:
            patterns = sorted({p for r in chosen for p in r.patterns})
            raise InputFileError(path, f"no {self.name} files found (looked for {patterns})")
        return files

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

    # ---- preprocessing -------------------------------------------------------------
    def preprocessing(self) -> list[tuple[str, Step]]:
        """The named, deterministic chain applied at ingest (defaults from the papers)."""
        return []

    def preprocess(self, row: Row, report: IngestReport) -> Row | None:
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
            "default_window": self.default_window,
            "options": {k: v for k, v in self.options.items()},
        }
