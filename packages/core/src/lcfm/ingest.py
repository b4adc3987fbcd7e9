"""Native files -> canonical shards + report.json (`lcfm ingest`)."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from lcfm.exceptions import DataError, LcfmError
from lcfm.report import IngestReport
from lcfm.shards import ShardWriter, read_summaries
from lcfm.survey import SurveyPlugin


def iter_rows(survey: SurveyPlugin, input_path: Path | None, report: IngestReport, *,
              fmt: str | None = None, progress: bool = False):
    """Preprocessed canonical rows of every file under `input_path` (default: the bundled
    sample), in memory, counting reads and rejections in `report` as they go."""
    input_path = Path(input_path) if input_path is not None else survey.sample_path()
    files = survey.input_files(input_path, fmt)
    for path in tqdm(files, desc=f"ingest {survey.name}", unit="file",
                     disable=None if progress else True):  # None: only on a terminal
        reader = survey.reader_for(path, fmt)
        for row in reader.read(path, report):
            row = survey.preprocess(row, report)
            if row is not None:
                report.written(row["time"].size)
                yield row
        report.files_read += 1


def read_rows(survey: SurveyPlugin, input_path: Path | None = None, *,
              fmt: str | None = None) -> tuple[list[dict], IngestReport]:
    """All preprocessed rows and the balanced report, without writing shards."""
    report = IngestReport(survey=survey.name)
    rows = list(iter_rows(survey, input_path, report, fmt=fmt))
    if not report.balanced:
        raise LcfmError(f"{survey.name}: ingest report does not balance: {report.to_dict()}")
    return rows, report


def ingest(survey: SurveyPlugin, input_path: Path | None, output_dir: Path, *,
           fmt: str | None = None, rows_per_shard: int = 20_000,
           progress: bool = False) -> IngestReport:
    """Read every file of `survey` under `input_path` (default: its bundled sample),
    preprocess, write shards to `output_dir` and `report.json`; returns the report.

    Raises `DataError` when no light curve survives, and an `LcfmError` subclass naming the
    file for bad input.
    """
    output_dir = Path(output_dir)
    report = IngestReport(survey=survey.name)
    with ShardWriter(output_dir, rows_per_shard) as writer:
        for row in iter_rows(survey, input_path, report, fmt=fmt, progress=progress):
            writer.add(row)
    report.shards = [p.name for p in writer.paths]
    if not report.balanced:  # a plugin bug, not a user error: say exactly what is off
        raise LcfmError(f"{survey.name}: ingest report does not balance: "
                        f"{report.to_dict()}")
    report.save(output_dir / "report.json")
    if report.light_curves_written == 0:
        reasons = dict(report.light_curves_rejected) or "none read"
        where = input_path if input_path is not None else survey.sample_path()
        raise DataError(f"{where}: no light curve survived ingest ({reasons})")
    survey.post_ingest(output_dir, read_summaries(output_dir))
    return report
