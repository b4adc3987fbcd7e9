"""Native files -> canonical shards + report.json (`lcfm ingest`).

Resilient by default (issue 9, item 6): a file whose reader fails -- an `LcfmError` such
as a malformed row, or any exception from a corrupt FITS, a truncated gzip, a bad Parquet
file, a file no reader recognises -- is listed in report.json under `files_rejected` with
its reason, and what was read from it before the failure is rolled back (its rows never
reach a shard, its counts never reach the report). The other files are ingested. With
`strict=True` (`lcfm ingest --strict`) the first bad file aborts the run instead. When
every file is rejected the run fails with a `DataError`.

Duplicates: a row whose light-curve key (`SurveyPlugin.segment_key`) was already read is
rejected as "duplicate object_id" (the first is kept) for "reject" readers; rows of
"merge" readers are grouped by key through `lcfm.merge.MergeSpill` and combined with
`SurveyPlugin.merge_rows` before preprocessing.

The output folder is marked while it is written (`lcfm.dataset_lock`): readers refuse it,
a second ingest into it fails at once, and a killed ingest restarts cleanly when rerun.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from lcfm.dataset_lock import writing
from lcfm.exceptions import DataError, InputFileError, LcfmError
from lcfm.merge import MergeSpill, key_digest
from lcfm.report import IngestReport
from lcfm.shards import ShardWriter, read_summaries
from lcfm.survey import SurveyPlugin

#: observations of "merge" rows buffered in memory before they spill to disk buckets
MERGE_BUFFER_POINTS = 2_000_000


class ListSink:
    """In-memory counterpart of `ShardWriter` (begin/add/commit/rollback) for `read_rows`."""

    def __init__(self):
        self.rows: list[dict] = []
        self._pending: list[dict] | None = None

    def begin(self) -> None:
        self._pending = []

    def add(self, row: dict) -> None:
        (self.rows if self._pending is None else self._pending).append(row)

    def commit(self) -> None:
        self.rows.extend(self._pending or [])
        self._pending = None

    def rollback(self) -> None:
        self._pending = None


class _SinkFailed(Exception):
    """Writing failed (disk full, a row the schema refuses): fatal, not the file's fault."""


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, LcfmError) else f"{type(exc).__name__}: {exc}"
    return "; ".join(p.strip() for p in text.splitlines() if p.strip()) or type(exc).__name__


def _reason(exc: BaseException, path: Path) -> str:
    """The problem without the file name report.json puts beside it."""
    if isinstance(exc, InputFileError) and exc.path == str(path):
        return (f"line {exc.line}: " if exc.line is not None else "") + exc.problem
    return _one_line(exc)


class IngestRun:
    """One pass over the input files of a survey into a sink, counting in `report`."""

    def __init__(self, survey: SurveyPlugin, report: IngestReport, sink, work_dir: Path, *,
                 fmt: str | None = None, strict: bool = False):
        self.survey, self.report, self.sink = survey, report, sink
        self.fmt, self.strict = fmt, strict
        # Keys of the light curves kept so far, as 16-byte digests: about 90 bytes per
        # light curve in a Python set (1e6 light curves ~ 90 MB), which "reject" needs to
        # know what it has seen; "merge" rows go through disk buckets instead.
        self.seen: set[bytes] = set()
        self.spill = MergeSpill(work_dir, max_points=MERGE_BUFFER_POINTS)
        self.first_error: BaseException | None = None

    def _add(self, row: dict) -> None:
        try:
            self.sink.add(row)
        except Exception as exc:
            raise _SinkFailed() from exc

    def _keep(self, raw: dict, report: IngestReport, pending: set[bytes]) -> None:
        """De-duplicate (reject policy), preprocess and hand `raw` to the sink."""
        digest = key_digest(self.survey.segment_key(raw))
        if digest in self.seen or digest in pending:
            report.reject_duplicate(raw["object_id"], len(raw["time"]))
            return
        pending.add(digest)
        row = self.survey.preprocess(raw, report)
        if row is not None:
            report.written(len(row["time"]))
            self._add(row)

    def read_file(self, path: Path, index: int) -> None:
        file_report = IngestReport(survey=self.survey.name)
        pending: set[bytes] = set()
        self.sink.begin()
        try:
            reader = self.survey.reader_for(path, self.fmt)
            for raw in reader.read(path, file_report):
                if reader.duplicates == "merge":
                    key = self.survey.segment_key(raw, bands=False)
                    self.spill.add(raw, key_digest(key), index)
                else:
                    self._keep(raw, file_report, pending)
        except _SinkFailed as failed:
            raise failed.__cause__ from None
        except Exception as exc:
            self.sink.rollback()
            self.spill.drop_file(index)
            if self.strict:
                if isinstance(exc, LcfmError):
                    raise
                raise InputFileError(path, _one_line(exc)) from exc
            self.first_error = self.first_error or exc
            self.report.reject_file(path, _reason(exc, path))
            return
        self.sink.commit()
        self.seen |= pending
        file_report.files_read = 1
        self.report.absorb(file_report)

    def merge(self) -> None:
        """Combine the rows of "merge" readers that share a key, then keep them like any
        other row (a merged light curve can still duplicate one of a "reject" reader)."""
        for rows in self.spill.groups():
            row = rows[0]
            if len(rows) > 1:
                row = self.survey.merge_rows(rows, self.report)
                self.report.merged(len(rows) - 1)
            self._keep(row, self.report, self.seen)

    def run(self, files: list[Path], *, progress: bool = False) -> None:
        for index, path in enumerate(tqdm(files, desc=f"ingest {self.survey.name}",
                                          unit="file",
                                          disable=None if progress else True)):
            self.read_file(path, index)
        if self.report.files_read == 0 and self.report.files_rejected:
            self._all_rejected(files)
        try:
            self.merge()
        except _SinkFailed as failed:
            raise failed.__cause__ from None

    def _all_rejected(self, files: list[Path]) -> None:
        if len(files) == 1:  # one file: its own error is the most precise message
            exc = self.first_error
            if isinstance(exc, LcfmError):
                raise exc
            raise InputFileError(files[0], _one_line(exc)) from exc
        first = self.report.files_rejected[0]
        raise DataError(f"every one of the {len(files)} input files was rejected; first: "
                        f"{first['file']}: {first['reason']}")


def _check(survey: SurveyPlugin, report: IngestReport) -> None:
    if not report.balanced:  # a plugin bug, not a user error: say exactly what is off
        raise LcfmError(f"{survey.name}: ingest report does not balance: {report.to_dict()}")


def read_rows(survey: SurveyPlugin, input_path: Path | None = None, *,
              fmt: str | None = None, strict: bool = False) -> tuple[list[dict], IngestReport]:
    """All preprocessed rows and the balanced report, in memory, without writing shards:
    the same files, rejections, de-duplication and merging as `ingest`."""
    report = IngestReport(survey=survey.name)
    input_path = Path(input_path) if input_path is not None else survey.sample_path()
    files = survey.input_files(input_path, fmt)
    sink = ListSink()
    with tempfile.TemporaryDirectory(prefix="lcfm-read-rows-") as work:
        IngestRun(survey, report, sink, Path(work), fmt=fmt, strict=strict).run(files)
    _check(survey, report)
    return sink.rows, report


def ingest(survey: SurveyPlugin, input_path: Path | None, output_dir: Path, *,
           fmt: str | None = None, rows_per_shard: int = 20_000,
           progress: bool = False, strict: bool = False) -> IngestReport:
    """Read every file of `survey` under `input_path` (default: its bundled sample),
    preprocess, write shards to `output_dir` and `report.json`; returns the report.

    Bad files are rejected and listed in the report (see the module docstring); with
    `strict` the first one raises its `LcfmError`. Raises `DataError` when every file is
    rejected or no light curve survives, or when `output_dir` is a file, is being written
    by another run, or holds a dataset already.
    """
    output_dir = Path(output_dir)
    where = Path(input_path) if input_path is not None else survey.sample_path()
    if fmt is not None:
        survey.check_format(fmt)
    files = survey.input_files(where, fmt)
    report = IngestReport(survey=survey.name)
    with writing(output_dir, "lcfm ingest") as work_dir:
        with ShardWriter(output_dir, rows_per_shard) as writer:
            IngestRun(survey, report, writer, work_dir, fmt=fmt, strict=strict).run(
                files, progress=progress)
        report.shards = [p.name for p in writer.paths]
        _check(survey, report)
        if report.light_curves_written == 0:
            reasons = dict(report.light_curves_rejected) or "none read"
            raise DataError(f"{where}: no light curve survived ingest ({reasons})")
        survey.post_ingest(output_dir, read_summaries(output_dir, writer=True))
        report.save(output_dir / "report.json")  # last: with the marker gone, complete
    return report
