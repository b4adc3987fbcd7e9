"""Native files -> canonical shards + report.json (`lcfm ingest`)."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from lcfm.exceptions import DataError, LcfmError
from lcfm.report import IngestReport
from lcfm.shards import ShardWriter, read_shards
from lcfm.survey import SurveyPlugin


def ingest(survey: SurveyPlugin, input_path: Path | None, output_dir: Path, *,
           fmt: str | None = None, rows_per_shard: int = 20_000,
           progress: bool = False) -> IngestReport:
    """Read every file of `survey` under `input_path` (default: its bundled sample),
    preprocess, write shards to `output_dir` and `report.json`; returns the report.

    Raises `DataError` when no light curve survives, and an `LcfmError` subclass naming the
    file for bad input.
    """
    input_path = Path(input_path) if input_path is not None else survey.sample_path()
    output_dir = Path(output_dir)
    report = IngestReport(survey=survey.name)
    files = survey.input_files(input_path, fmt)
    with ShardWriter(output_dir, rows_per_shard) as writer:
        for path in tqdm(files, desc=f"ingest {survey.name}", unit="file",
                         disable=None if progress else True):  # None: only on a terminal
            reader = survey.reader_for(path, fmt)
            for row in reader.read(path, report):
                row = survey.preprocess(row, report)
                if row is None:
                    continue
                writer.add(row)
                report.written(row["time"].size)
            report.files_read += 1
    report.shards = [p.name for p in writer.paths]
    if not report.balanced:  # a plugin bug, not a user error: say exactly what is off
        raise LcfmError(f"{survey.name}: ingest report does not balance: "
                        f"{report.to_dict()}")
    report.save(output_dir / "report.json")
    if report.light_curves_written == 0:
        reasons = dict(report.light_curves_rejected) or "none read"
        raise DataError(f"{input_path}: no light curve survived ingest ({reasons})")
    survey.post_ingest(output_dir, read_shards(output_dir))
    return report
