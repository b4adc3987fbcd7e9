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

Plugin context (issue 12, item 6): each reader gets the input root as `reader.root` and the
survey's options as `reader.options`; label catalogues beside the light curves are skipped
by discovery and listed in report.json under `files_skipped`; raw labels the taxonomy does
not know are counted under `labels_unknown` (`lcfm.survey`).
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from lcfm.dataset_card import write_dataset_card
from lcfm.dataset_lock import WORK_DIR, writing
from lcfm.exceptions import ConfigError, DataError, InputFileError, LcfmError
from lcfm.merge import MergeSpill, key_digest
from lcfm.progress import progress_bar
from lcfm.ranks import current_ranks
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


@dataclass
class FileResult:
    """What a worker process read from one file: the file's reading report and, per raw
    row, ("merge", digest, row) or ("keep", digest, raw points, object_id, preprocessed row
    or None, the preprocessing's report); or the error that rejected the file."""

    report: IngestReport
    items: list[tuple] = field(default_factory=list)
    error: BaseException | None = None
    reason: str = ""


_WORKER_SURVEY: dict = {}


def _init_worker(survey: SurveyPlugin, fmt: str | None, root: Path | None = None) -> None:
    _WORKER_SURVEY.update(survey=survey, fmt=fmt, root=root)


def _root(where: Path) -> Path:
    """The input root readers see: the folder given, or a given file's folder."""
    where = Path(where)
    return where if where.is_dir() else where.parent


def read_file_result(survey: SurveyPlugin, path: Path, fmt: str | None,
                     root: Path | None = None) -> FileResult:
    """Read and preprocess one file without de-duplicating (the parent does that in file
    order): every row is preprocessed with its own report, which the parent counts only if
    the row is kept, so the counts are those of a serial ingest."""
    report = IngestReport(survey=survey.name)
    items: list[tuple] = []
    try:
        reader = survey.reader_for(path, fmt, root=root)
        for raw in reader.read(path, report):
            if reader.duplicates == "merge":
                items.append(("merge", key_digest(survey.segment_key(raw, bands=False)), raw))
                continue
            row_report = IngestReport(survey=survey.name)
            row = survey.preprocess(raw, row_report)
            items.append(("keep", key_digest(survey.segment_key(raw)), len(raw["time"]),
                          raw["object_id"], row, row_report))
    except Exception as exc:
        return FileResult(report, error=_portable(exc, path), reason=_reason(exc, path))
    return FileResult(report, items)


def _portable(exc: BaseException, path: Path) -> BaseException:
    """`exc`, or an equivalent that survives the trip back from a worker (an exception
    with its own __init__ arguments, such as InputFileError, does not unpickle)."""
    if isinstance(exc, InputFileError):
        return _RebuiltInputFileError(exc.path, exc.problem, exc.line)
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return (LcfmError(_one_line(exc)) if isinstance(exc, LcfmError)
                else _RebuiltInputFileError(str(path), _one_line(exc), None))


class _RebuiltInputFileError(InputFileError):
    """An InputFileError that pickles (its arguments are kept for unpickling)."""

    def __init__(self, path, problem: str, line: int | None = None):
        super().__init__(path, problem, line=line)
        self.args = (path, problem, line)


def _worker_read(job: tuple[int, Path]) -> tuple[int, FileResult]:
    index, path = job
    return index, read_file_result(_WORKER_SURVEY["survey"], path, _WORKER_SURVEY["fmt"],
                                   _WORKER_SURVEY.get("root"))


def _pool_results(survey: SurveyPlugin, fmt: str | None, jobs: list[tuple[int, Path]],
                  workers: int, root: Path | None = None):
    """(index, FileResult) in the order of `jobs` from a pool of `workers` processes,
    at most 2 x workers files ahead of the caller so results never pile up in memory."""
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child inherits polars' thread pool mid-state and can
    # crash or hang; the (configured) survey plugin travels pickled instead
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(survey, fmt, root)) as pool:
        jobs = iter(jobs)
        ahead = deque(pool.submit(_worker_read, job)
                      for job in itertools.islice(jobs, 2 * workers))
        while ahead:
            result = ahead.popleft().result()
            for job in itertools.islice(jobs, 1):
                ahead.append(pool.submit(_worker_read, job))
            yield result


class IngestRun:
    """One pass over the input files of a survey into a sink, counting in `report`."""

    def __init__(self, survey: SurveyPlugin, report: IngestReport, sink, work_dir: Path, *,
                 fmt: str | None = None, strict: bool = False, root: Path | None = None):
        self.survey, self.report, self.sink = survey, report, sink
        self.fmt, self.strict, self.root = fmt, strict, root
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
            reader = self.survey.reader_for(path, self.fmt, root=self.root)
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

    def absorb_file(self, path: Path, index: int, result: FileResult) -> None:
        """The parent's half of `read_file` for a file a worker read (`FileResult`)."""
        if result.error is not None:
            if self.strict:
                if isinstance(result.error, LcfmError):
                    raise result.error
                raise InputFileError(path, _one_line(result.error)) from result.error
            self.first_error = self.first_error or result.error
            self.report.reject_file(path, result.reason)
            return
        file_report, pending = result.report, set()
        self.sink.begin()
        try:
            for item in result.items:
                if item[0] == "merge":
                    self.spill.add(item[2], item[1], index)
                    continue
                _, digest, n_raw, object_id, row, row_report = item
                if digest in self.seen or digest in pending:
                    file_report.reject_duplicate(object_id, n_raw)
                    continue
                pending.add(digest)
                file_report.absorb(row_report)
                if row is not None:
                    file_report.written(len(row["time"]))
                    self._add(row)
        except _SinkFailed as failed:
            raise failed.__cause__ from None
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

    def run(self, files: list[Path], *, progress: bool = False, workers: int = 1,
            results=None) -> None:
        """Read `files` in order: here, or in a pool of `workers` processes, or (`results`)
        from (index, FileResult) pairs read elsewhere (other ranks)."""
        bar = progress_bar(total=len(files), desc=f"ingest {self.survey.name}", unit="file",
                           enabled=progress)
        if results is None and workers > 1 and len(files) > 1:
            results = _pool_results(self.survey, self.fmt, list(enumerate(files)), workers,
                                    self.root)
        with bar:
            if results is not None:
                for index, result in results:
                    self.absorb_file(files[index], index, result)
                    bar.update(1)
            else:
                for index, path in enumerate(files):
                    self.read_file(path, index)
                    bar.update(1)
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
    files = _discover(survey, input_path, fmt, report)
    sink = ListSink()
    with tempfile.TemporaryDirectory(prefix="lcfm-read-rows-") as work:
        IngestRun(survey, report, sink, Path(work), fmt=fmt, strict=strict,
                  root=_root(input_path)).run(files)
    _check(survey, report)
    return sink.rows, report


def ingest(survey: SurveyPlugin, input_path: Path | None, output_dir: Path, *,
           fmt: str | None = None, rows_per_shard: int = 20_000,
           progress: bool = False, strict: bool = False, workers: int = 1) -> IngestReport:
    """Read every file of `survey` under `input_path` (default: its bundled sample),
    preprocess, write shards to `output_dir` and `report.json`; returns the report.

    Bad files are rejected and listed in the report (see the module docstring); with
    `strict` the first one raises its `LcfmError`. Raises `DataError` when every file is
    rejected or no light curve survives, or when `output_dir` is a file, is being written
    by another run, or holds a dataset already.

    Parallel (issue 10, item 5): `workers` processes read and preprocess files while this
    process de-duplicates, merges and writes in file order, so the shards and the report
    are those of `workers=1`. Launched on several ranks (`accelerate launch`), rank r reads
    files i with i mod n == r (each with its own `workers`) into the run's scratch folder
    and the main process writes the dataset from them in file order: the one marker of the
    run is created by the main process before the others start and removed at the end.
    Other ranks return an empty report (the run's is the main process's report.json).
    """
    if int(workers) < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    output_dir = Path(output_dir)
    where = Path(input_path) if input_path is not None else survey.sample_path()
    report = IngestReport(survey=survey.name)
    files = _discover(survey, where, fmt, report)  # checks `fmt` first
    root = _root(where)
    ranks = current_ranks()
    if not ranks.is_main:
        ranks.wait()  # the main process has marked the folder
        _read_share(survey, files, ranks, output_dir / WORK_DIR / "files", fmt, workers,
                    root)
        ranks.wait()  # every rank has read its files
        ranks.wait()  # the main process has written the dataset
        return report
    with writing(output_dir, "lcfm ingest") as work_dir:
        results = None
        if ranks.count > 1:
            ranks.wait()
            _read_share(survey, files, ranks, work_dir / "files", fmt, workers, root)
            ranks.wait()
            results = _shared_results(work_dir / "files", len(files))
        with ShardWriter(output_dir, rows_per_shard) as writer:
            IngestRun(survey, report, writer, work_dir, fmt=fmt, strict=strict,
                      root=root).run(
                files, progress=progress, workers=workers, results=results)
        report.shards = [p.name for p in writer.paths]
        _check(survey, report)
        if report.light_curves_written == 0:
            reasons = dict(report.light_curves_rejected) or "none read"
            raise DataError(f"{where}: no light curve survived ingest ({reasons})")
        survey.post_ingest(output_dir, read_summaries(output_dir, writer=True))
        # the dataset card lets plain `datasets.load_dataset(folder)` read the shards
        write_dataset_card(output_dir, report.to_dict(), source=where)
        report.save(output_dir / "report.json")  # last: with the marker gone, complete
    ranks.wait()
    return report


def _discover(survey: SurveyPlugin, where: Path, fmt: str | None,
              report: IngestReport) -> list[Path]:
    """The light-curve files under `where`; label catalogues found are listed as skipped."""
    files = survey.input_files(where, fmt)  # a plugin's own discovery rules apply
    for path in survey.catalogues(where, fmt):
        report.skip_file(path, "label catalogue, not a light-curve file")
    return files


def _read_share(survey: SurveyPlugin, files: list[Path], ranks, folder: Path,
                fmt: str | None, workers: int, root: Path | None = None) -> None:
    """This rank's files (i mod n), read into `folder/<index>.pkl` for the main process."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = ranks.share(list(enumerate(files)))
    results = (_pool_results(survey, fmt, jobs, workers, root) if workers > 1 else
               ((i, read_file_result(survey, path, fmt, root)) for i, path in jobs))
    for index, result in results:
        tmp = folder / f".{index:07d}.pkl.tmp"
        with open(tmp, "wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(folder / f"{index:07d}.pkl")


def _shared_results(folder: Path, n_files: int):
    for index in range(n_files):
        path = folder / f"{index:07d}.pkl"
        with open(path, "rb") as handle:
            result = pickle.load(handle)
        path.unlink()  # the scratch copy is no longer needed once absorbed
        yield index, result
