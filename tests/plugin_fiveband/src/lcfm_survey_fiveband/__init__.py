"""lcfm-survey-fiveband: a complete five-band lcfm survey plugin, the worked example of the
plugin guide (issue 12, item 6).

The survey: ugriz magnitudes of variable stars, tens of sparse points per band over several
years (a Stripe-82-like cadence: the five bands observed within minutes on each night), two
classes told apart mostly by period (RR Lyrae, 0.4-0.95 d; classical Cepheids, 2-12 d).

Files (see README.md):

* light curves: CSV files with the header `object_id,mjd,band,mag,magerr` (any column
  order), one observation per line, all bands of an object in the same file;
* the label catalogue: a CSV `object_id,class[,ra,dec,...]` beside them (`labels.csv`, or
  the file of `lcfm ingest --labels FILE`). Discovery skips it (it is not a light curve);
  the reader finds it through its input root (`self.root`).

Multi-band layout: one canonical row per object holding all five bands, time-sorted and
interleaved, with the band of each observation in `band` (not one row per band).

Options (declared with types, so `--option min_points=5` arrives as the int 5):
`labels`, `bands`, `max_error`, `min_points`, `labelled_only`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.preprocess import (
    drop_nonfinite,
    error_range,
    min_points,
    select_bands,
    sort_by_time,
)
from lcfm.report import IngestReport
from lcfm.survey import Reader, Row, SurveyPlugin, Taxonomy, survey_option

#: SDSS central wavelengths, Angstrom
BANDS = {"u": 3551.0, "g": 4686.0, "r": 6166.0, "i": 7480.0, "z": 8932.0}
COLUMNS = ("object_id", "mjd", "band", "mag", "magerr")
TAXONOMY = Taxonomy(
    classes=("RRL", "CEP"),
    raw_to_class={"RRab": "RRL", "RRc": "RRL", "RRL": "RRL", "DCEP": "CEP", "CEP": "CEP",
                  "CONST": None},
)


def _rows(path: Path) -> tuple[list[str], csv.reader]:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputFileError(path, f"cannot open: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"byte {exc.start} is not UTF-8 text") from None
    if text and not text.endswith("\n"):  # a copy stopped mid-row: the last row may be cut
        raise InputFileError(path, "file ends inside a line (no final newline): cut short?",
                             line=text.count("\n") + 1)
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [c.strip().lower() for c in next(rows, [])]
    return header, rows


def read_catalogue(path: Path) -> dict[str, dict]:
    """object_id -> {"class": raw class, other columns as float where numeric}."""
    header, rows = _rows(path)
    missing = [c for c in ("object_id", "class") if c not in header]
    if missing:
        raise InputFileError(path, f"label catalogue lacks column(s) {missing}", line=1)
    catalogue: dict[str, dict] = {}
    for cells in rows:
        if not "".join(cells).strip():
            continue
        if len(cells) != len(header):
            raise InputFileError(path, f"{len(cells)} fields, header has {len(header)}",
                                 line=rows.line_num)
        entry = dict(zip(header, (c.strip() for c in cells), strict=True))
        catalogue[entry.pop("object_id")] = entry
    return catalogue


class FiveBandReader(Reader):
    name = "csv"
    description = "CSV object_id,mjd,band,mag,magerr (one observation per line)"
    patterns = ("*.csv",)

    def matches(self, path: Path) -> bool:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                header = [c.strip().lower() for c in handle.readline().split(",")]
        except OSError:
            return False
        return all(c in header for c in COLUMNS)

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        catalogue = self.survey.catalogue(self.root)
        for object_id, obs in self._objects(Path(path)).items():
            report.read(len(obs["mjd"]))  # counted before anything is dropped
            entry = catalogue.get(object_id) or {}
            raw = entry.get("class") or None
            meta = {"raw_class": raw}
            for key in ("ra", "dec"):
                meta[key] = float(entry[key]) if entry.get(key) else float("nan")
            yield self.survey.row(object_id, obs["mjd"], obs["mag"], obs["magerr"],
                                  np.asarray(obs["band"]),
                                  label=self.survey.taxonomy.map(raw, report), meta=meta)

    def _objects(self, path: Path) -> dict[str, dict]:
        header, rows = _rows(path)
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputFileError(path, f"header lacks column(s) {missing}", line=1)
        col = {name: header.index(name) for name in COLUMNS}
        objects: dict[str, dict] = {}
        for cells in rows:
            line = rows.line_num
            if not "".join(cells).strip():
                continue
            if len(cells) != len(header):
                raise InputFileError(path, f"{len(cells)} fields, header has {len(header)}",
                                     line=line)
            band = cells[col["band"]].strip()
            if band not in BANDS:
                raise InputFileError(path, f"unknown band {band!r}; bands: "
                                     f"{', '.join(BANDS)}", line=line)
            obs = objects.setdefault(cells[col["object_id"]].strip(),
                                     {"mjd": [], "mag": [], "magerr": [], "band": []})
            for name in ("mjd", "mag", "magerr"):
                try:
                    obs[name].append(float(cells[col[name]]))
                except ValueError:
                    raise InputFileError(path, f"{name} {cells[col[name]]!r} is not a "
                                         "number", line=line) from None
            obs["band"].append(band)
        return objects


class FiveBandSurvey(SurveyPlugin):
    name = "fiveband"
    description = "Example five-band survey: ugriz magnitudes of RR Lyrae and Cepheids (CSV)"
    bands = BANDS
    value_kind = "mag"
    taxonomy = TAXONOMY
    readers = (FiveBandReader,)
    segment_fields = ()  # one light curve per object
    sample_package = "lcfm_survey_fiveband"
    sample_folder = "sample"
    options = {
        "labels": survey_option("", "label catalogue CSV (object_id,class,...): a path, or a "
                                "name looked up in the input root; default labels.csv there"),
        "bands": survey_option(list(BANDS), "bands kept (comma list)", type=list,
                               choices=tuple(BANDS)),
        "max_error": survey_option(0.5, "largest magnitude uncertainty kept", type=float),
        "min_points": survey_option(10, "fewest observations (all bands together)", type=int),
        "labelled_only": survey_option(False, "reject light curves without a known class",
                                       type=bool),
    }

    def __init__(self, **options):
        super().__init__(**options)
        self._catalogues: dict[Path | None, dict] = {}

    def catalogue_file(self, root: Path | None) -> Path | None:
        """The label catalogue for files under `root`: the `labels` option (a path, or a
        name in `root`), else `root/labels.csv` when it exists."""
        given = self.labels_path
        if given is None:
            default = Path(root) / "labels.csv" if root is not None else None
            return default if default is not None and default.is_file() else None
        if not given.is_absolute() and not given.exists() and root is not None:
            given = Path(root) / given
        if not given.is_file():
            raise InputFileError(given, "label catalogue not found (option labels)")
        return given

    def catalogue(self, root: Path | None) -> dict[str, dict]:
        """The catalogue's entries (read once per plugin instance and file)."""
        path = self.catalogue_file(root)
        if path not in self._catalogues:
            self._catalogues[path] = read_catalogue(path) if path is not None else {}
        return self._catalogues[path]

    def is_catalogue(self, path: Path) -> bool:
        given = self.labels_path
        return super().is_catalogue(path) or (
            given is not None and not given.is_absolute() and Path(path).name == given.name)

    def preprocessing(self):
        chain = [("drop_nonfinite", drop_nonfinite()),
                 ("error_range", error_range(0.0, self.opts["max_error"]))]
        if set(self.opts["bands"]) != set(BANDS):
            chain.append(("select_bands", select_bands(self.opts["bands"], option="bands")))
        chain += [("sort_by_time", sort_by_time()),
                  ("min_points", min_points(self.opts["min_points"]))]
        if self.opts["labelled_only"]:
            chain.append(("labelled_only", _labelled_only))
        return chain

    def simulator(self):
        from lcfm_survey_fiveband.simulate import FiveBandSimulator

        return FiveBandSimulator(self)


def _labelled_only(row: Row, report: IngestReport) -> Row | None:
    if row["label"] is None:
        report.reject_light_curve("no known class (labelled_only)", row["time"].size)
        return None
    return row


__all__ = ["BANDS", "FiveBandReader", "FiveBandSurvey", "read_catalogue"]
