"""A tiny survey for the ingest-safety tests: one JSON light curve per line, so a test
controls every object_id, band, segment and point; also imported by the subprocess that
the crash tests kill (hence a module, not fixtures)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lcfm.preprocess import sort_by_time
from lcfm.survey import Reader, SurveyPlugin, Taxonomy


class ToyReader(Reader):
    """`*.toy`: lines of {"id", "band", "t", "v", "label"?, "quarter"?}; a line that is not
    JSON raises (as a corrupt file would). TOY_SLEEP seconds are spent per light curve."""

    name = "toy"
    description = "JSON lines, one light curve each"
    patterns = ("*.toy",)

    def read(self, path: Path, report):
        pause = float(os.environ.get("TOY_SLEEP", "0"))
        for line in Path(path).read_text().splitlines():
            record = json.loads(line)
            n = len(record["t"])
            report.read(n)
            if pause:
                time.sleep(pause)
            meta = {"quarter": record["quarter"]} if "quarter" in record else {}
            yield self.survey.row(record["id"], record["t"], record["v"], [0.1] * n,
                                  record.get("band", "g"), label=record.get("label"),
                                  meta=meta)


class ToyAlertReader(ToyReader):
    """`*.alerts`: the same lines, but one object's points are spread over files."""

    name = "toy_alerts"
    description = "JSON lines of alerts; an object may appear in many files"
    patterns = ("*.alerts",)
    duplicates = "merge"


class ToySurvey(SurveyPlugin):
    name = "toy"
    bands = {"g": 4800.0, "r": 6200.0, "i": 7600.0}
    value_kind = "mag"
    taxonomy = Taxonomy(("A", "B"))
    readers = (ToyReader, ToyAlertReader)

    def preprocessing(self):
        return [("sort_by_time", sort_by_time())]


def curve(object_id: str, times, *, band="g", label=None, quarter=None, offset=0.0) -> dict:
    record = {"id": object_id, "band": band, "t": [float(t) for t in times],
              "v": [float(t) + offset for t in times]}
    if label is not None:
        record["label"] = label
    if quarter is not None:
        record["quarter"] = quarter
    return record


def write(path: Path, *records: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


if __name__ == "__main__":  # the subprocess of the crash tests: ingest argv[1] -> argv[2]
    import sys

    from lcfm.ingest import ingest

    ingest(ToySurvey(), Path(sys.argv[1]), Path(sys.argv[2]), rows_per_shard=1)
