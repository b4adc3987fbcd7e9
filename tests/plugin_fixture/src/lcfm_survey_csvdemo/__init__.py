"""lcfm-survey-csvdemo: a third-party lcfm survey plugin reading one simple CSV format.

It depends only on lcfm's public plugin API (lcfm.survey, lcfm.preprocess, lcfm.exceptions,
lcfm.report) and is registered by its own pyproject.toml under the entry point group
`lcfm.surveys` as `csvdemo`; lcfm finds it exactly as it finds its built-in surveys.

Format: a CSV file with a header row naming the columns `object_id,time,mag,err` and
optionally `band` and `label`, one observation per line. See README.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import ConfigError, InputFileError
from lcfm.preprocess import drop_nonfinite, error_range, min_points, sort_by_time
from lcfm.report import IngestReport
from lcfm.survey import Reader, Row, SurveyPlugin, Taxonomy

REQUIRED = ("object_id", "time", "mag", "err")


class CsvDemoReader(Reader):
    name = "csv"
    description = "CSV with header object_id,time,mag,err[,band][,label]; one observation per line"
    patterns = ("*.csv",)

    def matches(self, path: Path) -> bool:
        if path.suffix.lower() != ".csv":
            return False
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                header = [c.strip().lower() for c in handle.readline().split(",")]
        except OSError:
            return False
        return all(c in header for c in REQUIRED)

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        objects = self._parse(Path(path))
        for object_id, obs in objects.items():
            report.read(len(obs["time"]))  # counted before anything is dropped
            yield {
                "object_id": object_id,
                "survey": self.survey.name,
                "time": np.asarray(obs["time"], dtype=np.float64),
                "value": np.asarray(obs["mag"], dtype=np.float32),
                "error": np.asarray(obs["err"], dtype=np.float32),
                "band": np.asarray(obs["band"], dtype=str),
                "value_kind": "mag",
                "label": self.survey.taxonomy.map(obs["raw_label"]),
                "meta": {"raw_label": obs["raw_label"]},
            }

    def _parse(self, path: Path) -> dict[str, dict]:
        """object_id -> its observations, in order of first appearance. Bad content raises
        InputFileError naming the file, the line and the problem."""
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise InputFileError(path, f"cannot open: {exc.strerror}") from None
        except UnicodeDecodeError as exc:  # random or binary bytes: one line, not a traceback
            raise InputFileError(path, f"byte {exc.start} is not UTF-8 text") from None
        rows = csv.reader(io.StringIO(text, newline=""))
        try:
            return self._objects(path, rows)
        except csv.Error as exc:  # e.g. a NUL byte
            raise InputFileError(path, f"malformed CSV ({exc})", line=rows.line_num) from None

    def _objects(self, path: Path, rows) -> dict[str, dict]:
        """Every row checked (field count, id, band, label, numbers) in file order."""
        header = [c.strip().lower() for c in next(rows, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputFileError(path, f"header lacks column(s) {missing}", line=1)
        col = {name: header.index(name) for name in header}
        objects: dict[str, dict] = {}
        for cells in rows:
            line = rows.line_num
            if not cells or not "".join(cells).strip():
                continue
            if len(cells) != len(header):
                raise InputFileError(path, f"{len(cells)} fields, header has {len(header)}",
                                     line=line)
            object_id = cells[col["object_id"]].strip()
            if not object_id:
                raise InputFileError(path, "empty object_id", line=line)
            band = cells[col["band"]].strip() if "band" in col else ""
            band = band or self.survey.opts["default_band"]
            if band not in self.survey.bands:
                raise InputFileError(path, f"unknown band {band!r}; bands: "
                                     f"{', '.join(self.survey.bands)}", line=line)
            raw = (cells[col["label"]].strip() if "label" in col else "") or None
            if raw is not None and raw not in self.survey.taxonomy.raw_to_class:
                raise InputFileError(path, f"unknown label {raw!r}; known: "
                                     f"{', '.join(self.survey.taxonomy.raw_to_class)}",
                                     line=line)
            obs = objects.setdefault(object_id, {"time": [], "mag": [], "err": [],
                                                 "band": [], "raw_label": raw})
            if obs["raw_label"] != raw:
                raise InputFileError(path, f"object {object_id!r} has labels "
                                     f"{obs['raw_label']!r} and {raw!r}", line=line)
            try:
                for name in ("time", "mag", "err"):
                    obs[name].append(float(cells[col[name]]))
            except ValueError:
                raise InputFileError(path, f"{name} {cells[col[name]]!r} is not a number",
                                     line=line) from None
            obs["band"].append(band)
        return objects


class CsvDemoSurvey(SurveyPlugin):
    name = "csvdemo"
    description = "Demo third-party survey: magnitudes from one CSV (object_id,time,mag,err,...)"
    bands = {"g": 4770.0, "r": 6231.0}  # central wavelengths in Angstrom
    value_kind = "mag"
    taxonomy = Taxonomy(
        classes=("pulsating", "eclipsing", "constant"),
        raw_to_class={"RRab": "pulsating", "RRc": "pulsating", "EA": "eclipsing",
                      "EW": "eclipsing", "CONST": "constant", "unknown": None},
    )
    default_window = 100
    readers = (CsvDemoReader,)
    segment_fields = ()  # one light curve per object_id: a repeat is a duplicate
    sample_package = "lcfm_survey_csvdemo"
    sample_folder = "sample"
    options = {"default_band": "g"}

    def __init__(self, **options):
        super().__init__(**options)
        if self.opts["default_band"] not in self.bands:
            raise ConfigError(f"survey 'csvdemo': default_band={self.opts['default_band']!r}; "
                              f"bands: {', '.join(self.bands)}")

    def preprocessing(self):
        return [
            ("drop_nonfinite", drop_nonfinite()),
            ("error_range", error_range(0.0, 1.0)),
            ("sort_by_time", sort_by_time()),
            ("min_points", min_points(5)),
        ]


__all__ = ["CsvDemoReader", "CsvDemoSurvey"]
