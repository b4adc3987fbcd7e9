"""Point-per-line MACHO tables: the labeled export CSV and the archive's own tile dump.

Both hold one row per observation of a star, with the red and blue measurements side by
side; each star becomes two light curves (B and R). Rows of one star may come in any order.

* Export CSV (`classification,fieldid,tileid,seqn,obsid,dateobs,rmag,rerr,bmag,berr`), as
  exported with labels from the MACHO archive; -99 marks a missing magnitude or error.
  Every row must have the header's number of fields: a file cut mid-row is an error
  naming the cut line, never a star with missing magnitudes.
* Archive tile dump (MACHO_ARCHIVE_FORMAT.txt): one gzipped or plain file per field and tile,
  39 semicolon-separated columns, the first one blank; field/tile/seq in columns 2-4, MJD in
  5, red magnitude/error in 10/11, blue magnitude/error in 25/26 (1-based). Missing values are
  -99 or an empty field. No real dump ships with lcfm: the reader follows the published
  description and is tested on files the tests write in exactly that layout.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.registry import lazy_import
from lcfm.report import IngestReport
from lcfm.survey import Reader

from lcfm_surveys._csv import check_field_counts
from lcfm_surveys.macho.curves import CurveEmitter, RawCurve, make_meta, sentinel_mask
from lcfm_surveys.macho.taxonomy import (
    REASON_BLANK,
    REASON_SENTINEL,
    TAXONOMY,
    normalise_code,
)

pl = lazy_import("polars")  # on first use: keeps plugin discovery light

EXPORT_COLUMNS = ("classification", "fieldid", "tileid", "seqn", "dateobs",
                  "rmag", "rerr", "bmag", "berr")
DUMP_N_COLUMNS = 39
#: 1-based column numbers of the archive dump (MACHO_ARCHIVE_FORMAT.txt)
DUMP_COLUMNS = {"field": 2, "tile": 3, "seq": 4, "mjd": 5, "rmag": 10, "rerr": 11,
                "bmag": 25, "berr": 26}
GZIP_MAGIC = b"\x1f\x8b"


# ---- reading bytes ---------------------------------------------------------------------
def read_maybe_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise InputFileError(path, "no such file")
    raw = path.read_bytes()
    if raw.startswith(GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(path, f"unreadable or truncated gzip file ({exc})") from None
    if not raw.strip():
        raise InputFileError(path, "is empty")
    return raw


def first_line(path: Path, limit: int = 65536) -> str:
    """The first non-blank line of a (possibly gzipped) text file, '' if unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit)
        if head.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as handle:
                head = handle.read(limit)
    except (OSError, EOFError, zlib.error):
        return ""
    for line in head.decode("latin-1").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _read_csv(data, source, **options) -> pl.DataFrame:
    try:
        frame = pl.read_csv(data, infer_schema=False, **options)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(source, f"not a readable CSV table ({problem})") from None
    # blank lines come back as all-null rows; keep row positions so line numbers stay right
    return frame


# ---- typed columns with line-exact errors ---------------------------------------------
def numeric_column(values: pl.Series, *, source, lines: np.ndarray, name: str,
                   allow_blank: bool) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with NaN for blanks, blank mask); a non-number raises naming the line."""
    text = values.str.strip_chars()
    numbers = text.cast(pl.Float64, strict=False)
    blank = (text.is_null() | (text == "")).to_numpy()
    bad = (numbers.is_null().to_numpy() & ~blank)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputFileError(source, f"column {name}: {text[row]!r} is not a number",
                             line=int(lines[row]))
    if blank.any() and not allow_blank:
        row = int(np.flatnonzero(blank)[0])
        raise InputFileError(source, f"column {name} is empty", line=int(lines[row]))
    return numbers.fill_null(np.nan).to_numpy().astype(np.float64), blank


def integer_column(values: pl.Series, *, source, lines: np.ndarray, name: str) -> np.ndarray:
    numbers, _ = numeric_column(values, source=source, lines=lines, name=name,
                                allow_blank=False)
    whole = np.isfinite(numbers) & (numbers == np.round(numbers))
    if not whole.all():
        row = int(np.flatnonzero(~whole)[0])
        raise InputFileError(source, f"column {name}: {values[row]!r} is not an integer",
                             line=int(lines[row]))
    return numbers.astype(np.int64)


# ---- rows of many stars -> curves -------------------------------------------------------
def star_curves(*, source, fmt: str, field, tile, seq, time, lines,
                bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                codes: list | None = None) -> Iterator[RawCurve]:
    """Group point rows by star, sort each star by time, and make one curve per band.

    `bands` maps band -> (mag, err, blank mask) aligned with the rows; `codes` holds the raw
    class code of each row (or None when the format carries no labels).
    """
    if time.size == 0:
        return
    order = np.lexsort((time, seq, tile, field))
    keys = np.stack([field[order], tile[order], seq[order]], axis=1)
    starts = np.flatnonzero(np.r_[True, (np.diff(keys, axis=0) != 0).any(axis=1)])
    ends = np.r_[starts[1:], order.size]
    for start, end in zip(starts, ends, strict=True):
        rows = order[start:end]
        f, t, s = (int(v) for v in keys[start])
        object_id = f"{f}.{t}.{s}"
        raw_class, label = _star_label(codes, rows, source, lines, object_id)
        meta = make_meta(fmt, field=f, tile=t, seq=s, raw_class=raw_class)
        for band, (mag, err, blank) in bands.items():
            m, e, b = mag[rows], err[rows], blank[rows]
            yield RawCurve(object_id=object_id, band=band, time=time[rows], mag=m, err=e,
                           label=label, meta=meta,
                           missing={REASON_BLANK: b, REASON_SENTINEL: sentinel_mask(m, e)})


def _star_label(codes, rows, source, lines, object_id) -> tuple[str | None, str | None]:
    if codes is None:
        return None, None
    seen = {}
    for row in rows:
        code = codes[row]
        if code is not None and code not in seen:
            seen[code] = row
    if len(seen) > 1:
        second = sorted(seen.values())[1]
        raise InputFileError(source, f"star {object_id} has conflicting classifications "
                             f"{sorted(seen)}", line=int(lines[second]))
    if not seen:
        return None, None
    code, row = next(iter(seen.items()))
    try:
        return code, TAXONOMY.map(code)
    except KeyError:
        raise InputFileError(source, f"unknown MACHO class code {code!r} (known: "
                             f"{', '.join(TAXONOMY.raw_to_class)})", line=int(lines[row])) from None


# ---- the two readers ----------------------------------------------------------------------
class MachoExportCsvReader(Reader):
    name = "export_csv"
    description = ("labeled export CSV: classification,fieldid,tileid,seqn,obsid,dateobs,"
                   "rmag,rerr,bmag,berr (-99 = missing)")
    patterns = ("*.csv", "*.csv.gz")

    def matches(self, path: Path) -> bool:
        header = [c.strip().lower() for c in first_line(Path(path)).split(",")]
        return all(c in header for c in EXPORT_COLUMNS)

    def read(self, path: Path, report: IngestReport) -> Iterator[dict]:
        path = Path(path)
        data = read_maybe_gzip(path)
        check_field_counts(data, path)  # a row cut short must not pass for missing values
        frame = _read_csv(io.BytesIO(data), path)
        frame = frame.rename({c: c.strip().lower() for c in frame.columns})
        missing = [c for c in EXPORT_COLUMNS if c not in frame.columns]
        if missing:
            raise InputFileError(path, f"missing column(s) {', '.join(missing)}; the MACHO "
                                 f"export layout has {','.join(EXPORT_COLUMNS)}", line=1)
        lines = np.arange(frame.height) + 2  # line 1 is the header
        filled = ~frame.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
        frame, lines = frame.filter(pl.Series(filled)), lines[filled]
        kw = {"source": path, "lines": lines}
        ids = [integer_column(frame[c], name=c, **kw) for c in ("fieldid", "tileid", "seqn")]
        time, _ = numeric_column(frame["dateobs"], name="dateobs", allow_blank=False, **kw)
        bands = {}
        for band, mag_col, err_col in (("B", "bmag", "berr"), ("R", "rmag", "rerr")):
            mag, mag_blank = numeric_column(frame[mag_col], name=mag_col, allow_blank=True, **kw)
            err, err_blank = numeric_column(frame[err_col], name=err_col, allow_blank=True, **kw)
            bands[band] = (mag, err, mag_blank | err_blank)
        codes = [normalise_code(c) for c in frame["classification"].to_list()]
        emitter = CurveEmitter(path, report)
        for curve in star_curves(source=path, fmt=self.name, field=ids[0], tile=ids[1],
                                 seq=ids[2], time=time, lines=lines, bands=bands, codes=codes):
            yield from emitter.emit(curve)
        emitter.finish()


class MachoArchiveDumpReader(Reader):
    name = "archive_dump"
    description = ("MACHO archive tile dump F_<field>.<tile>(.gz): 39 ';'-separated "
                   "columns, first blank")
    patterns = ("F_*",)

    def matches(self, path: Path) -> bool:
        fields = first_line(Path(path)).split(";")
        return len(fields) == DUMP_N_COLUMNS and fields[0].strip() == ""

    def read(self, path: Path, report: IngestReport) -> Iterator[dict]:
        path = Path(path)
        data = read_maybe_gzip(path)
        text_lines = data.split(b"\n")
        for number, line in enumerate(text_lines, start=1):
            if line.strip() and line.count(b";") != DUMP_N_COLUMNS - 1:
                raise InputFileError(path, f"expected {DUMP_N_COLUMNS} ';'-separated columns, "
                                     f"found {line.count(b';') + 1}", line=number)
        frame = _read_csv(io.BytesIO(data), path, separator=";", has_header=False,
                          quote_char=None)
        lines = np.arange(frame.height) + 1
        filled = ~frame.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
        frame, lines = frame.filter(pl.Series(filled)), lines[filled]
        if frame.width != DUMP_N_COLUMNS:
            raise InputFileError(path, f"expected {DUMP_N_COLUMNS} ';'-separated columns, "
                                 f"found {frame.width}", line=1)

        def column(key: str) -> pl.Series:
            return frame.to_series(DUMP_COLUMNS[key] - 1)

        kw = {"source": path, "lines": lines}
        ids = [integer_column(column(k), name=f"{DUMP_COLUMNS[k]} ({k})", **kw)
               for k in ("field", "tile", "seq")]
        time, _ = numeric_column(column("mjd"), name="5 (mjd)", allow_blank=False, **kw)
        bands = {}
        for band, mag_key, err_key in (("B", "bmag", "berr"), ("R", "rmag", "rerr")):
            mag, mag_blank = numeric_column(column(mag_key), allow_blank=True,
                                            name=f"{DUMP_COLUMNS[mag_key]} ({mag_key})", **kw)
            err, err_blank = numeric_column(column(err_key), allow_blank=True,
                                            name=f"{DUMP_COLUMNS[err_key]} ({err_key})", **kw)
            bands[band] = (mag, err, mag_blank | err_blank)
        emitter = CurveEmitter(path, report)
        for curve in star_curves(source=path, fmt=self.name, field=ids[0], tile=ids[1],
                                 seq=ids[2], time=time, lines=lines, bands=bands):
            yield from emitter.emit(curve)
        emitter.finish()
