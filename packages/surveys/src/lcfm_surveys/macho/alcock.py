"""The Alcock labeled MACHO set in the layout Astromer distributes it.

A metadata CSV lists one light curve per row: an object id, a class name and usually the
light-curve file (Astromer's `metadata.csv` has `ID`, `Class`, `Path` with the file relative
to an `LCs/` folder beside it, plus derived columns such as `Label` = integer code of
`Class`, `N`, `Band`). Other releases use `oid,label`. Each light-curve file holds three
columns, time (MJD), magnitude and its error, comma- or whitespace-separated, with or
without a header (`mjd,mag,errmag`); blank or NaN values are kept as NaN and dropped by the
"non-finite" preprocessing step. No real copy of this set ships with lcfm; the reader is
tested on files the tests write in exactly this layout.

A `Path` (or, without a Path column, an ID) that is absolute or climbs out with `..` is
refused with an error naming the metadata line: only files inside the metadata file's
folder are read. Every row of the metadata CSV and of each light-curve file must have as
many fields as its header (a file cut mid-row is an error on that line, not data).

Column names are matched case-insensitively; the first name found in each list below wins.
Integer class labels are read as MACHO archive codes (1-11), never as Astromer's `Label`
codes, which depend on the order of the classes present.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.registry import lazy_import
from lcfm.report import IngestReport
from lcfm.survey import Reader

from lcfm_surveys._csv import check_field_counts
from lcfm_surveys.macho.curves import (
    CurveEmitter,
    RawCurve,
    make_meta,
    parse_numbers,
    sentinel_mask,
    split_macho_id,
)
from lcfm_surveys.macho.tables import EXPORT_COLUMNS, first_line, read_maybe_gzip
from lcfm_surveys.macho.taxonomy import REASON_SENTINEL, TAXONOMY, normalise_code

pl = lazy_import("polars")  # on first use: keeps plugin discovery light

ID_COLUMNS = ("id", "oid", "object_id", "objid", "macho_id")
CLASS_COLUMNS = ("class", "label", "class_name", "type")
PATH_COLUMNS = ("path", "file", "filename", "lc_path")
BAND_COLUMNS = ("band", "filter", "passband")
LC_FOLDERS = ("LCs", "lcs", "")
LC_EXTENSIONS = ("", ".csv", ".dat", ".txt", ".mjd")
TIME_NAMES = ("mjd", "time", "t", "hjd", "jd")
MAG_NAMES = ("mag", "magnitude", "m")
ERR_NAMES = ("errmag", "err", "error", "mag_err", "magerr", "e_mag", "sigma")
BAND_NAMES = {"b": "B", "blue": "B", "r": "R", "red": "R"}
_CLASS_BY_LOWER = {c.lower(): c for c in TAXONOMY.classes}


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def outside_reference(object_id: str, path_value: str | None) -> str | None:
    """Why the `Path` (or, without one, the ID) of a metadata row would lead outside the
    metadata file's folder, or None. Absolute paths and `..` components are refused: a
    catalogue must not make lcfm read files the user did not give it (issue 9, item 9)."""
    for column, value in (("Path", path_value), ("ID", None if path_value else object_id)):
        text = (value or "").strip()
        if not text:
            continue
        pure, windows = PurePosixPath(text.replace("\\", "/")), PureWindowsPath(text)
        if pure.is_absolute() or windows.drive or windows.root:
            return f"{column} {text!r} is an absolute path; light curves must lie in the " \
                   "metadata file's folder"
        if ".." in pure.parts:
            return f"{column} {text!r} points outside the metadata file's folder (..)"
    return None


def resolve_light_curve(folder: Path, object_id: str, path_value: str | None) -> Path | None:
    """The light-curve file of one metadata row, looked up the ways Astromer lays it out;
    None when absent or when the row points outside `folder` (`outside_reference`)."""
    if outside_reference(object_id, path_value):
        return None
    if path_value:
        rel = Path(path_value.strip())
        candidates = [folder / rel, *(folder / sub / rel.name for sub in LC_FOLDERS)]
        candidates.insert(1, folder / "LCs" / rel)
    else:
        candidates = [folder / sub / f"{object_id}{ext}" for sub in LC_FOLDERS
                      for ext in LC_EXTENSIONS]
    return next((c for c in candidates if c.is_file()), None)


def parse_light_curve(path: Path) -> np.ndarray:
    """An Alcock light-curve file -> (n, 3) float64 array of time, magnitude, error."""
    try:
        text = read_maybe_gzip(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not a text light curve (byte {exc.start} is not "
                             "UTF-8)") from None
    except InputFileError as exc:
        if exc.problem == "is empty":
            return np.empty((0, 3))
        raise
    lines = [(n, t.strip()) for n, t in enumerate(text.splitlines(), start=1)
             if t.strip() and not t.lstrip().startswith("#")]
    if not lines:
        return np.empty((0, 3))
    delimiter = "," if "," in lines[0][1] else None
    header = [h.strip().lower() for h in lines[0][1].split(delimiter)]
    if len(header) < 3:
        raise InputFileError(path, f"has {len(header)} column(s), expected 3 (time, magnitude, "
                             "error)", line=lines[0][0])
    columns = (0, 1, 2)
    try:
        float(header[0])
    except ValueError:
        lines = lines[1:]
        found = [next((header.index(n) for n in names if n in header), None)
                 for names in (TIME_NAMES, MAG_NAMES, ERR_NAMES)]
        # unknown names: time, magnitude, error are the first three columns (as Astromer reads)
        if None not in found:
            columns = tuple(found)
    return parse_numbers(lines, path, columns=columns, delimiter=delimiter, blank_is_nan=True,
                         width=len(header))


class MachoAlcockReader(Reader):
    name = "alcock"
    description = ("Alcock labeled set (Astromer layout): metadata CSV with ID/Class/Path or "
                   "oid/label + one mjd,mag,errmag file per light curve")
    patterns = ("*.csv",)

    def matches(self, path: Path) -> bool:
        header = [c.strip().lower() for c in first_line(Path(path)).split(",")]
        if all(c in header for c in EXPORT_COLUMNS):
            return False
        return _pick(header, ID_COLUMNS) is not None and _pick(header, CLASS_COLUMNS) is not None

    def read_metadata(self, path: Path) -> tuple[pl.DataFrame, dict[str, str | None]]:
        data = read_maybe_gzip(path)
        check_field_counts(data, path)
        try:
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
        except (pl.exceptions.PolarsError, OSError) as exc:
            problem = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputFileError(path, f"not a readable CSV table ({problem})") from None
        cols = {
            "id": _pick(frame.columns, ID_COLUMNS),
            "class": _pick(frame.columns, CLASS_COLUMNS),
            "path": _pick(frame.columns, PATH_COLUMNS),
            "band": _pick(frame.columns, BAND_COLUMNS),
            "ra": _pick(frame.columns, ("ra",)),
            "dec": _pick(frame.columns, ("dec",)),
        }
        for key, names in (("id", ID_COLUMNS), ("class", CLASS_COLUMNS)):
            if cols[key] is None:
                raise InputFileError(path, f"no {key} column (looked for {', '.join(names)}; "
                                     f"found {', '.join(frame.columns)})", line=1)
        return frame, cols

    def light_curve_files(self, path: Path) -> list[Path]:
        """Every light-curve file the metadata file refers to (those that exist)."""
        frame, cols = self.read_metadata(Path(path))
        paths = frame[cols["path"]].to_list() if cols["path"] else [None] * frame.height
        found = (resolve_light_curve(Path(path).parent, str(i or ""), p)
                 for i, p in zip(frame[cols["id"]].to_list(), paths, strict=True))
        return [f for f in found if f is not None]

    def read(self, path: Path, report: IngestReport) -> Iterator[dict]:
        path = Path(path)
        frame, cols = self.read_metadata(path)
        default_band = str(self.survey.opts.get("alcock_band", "R")).strip().upper()
        emitter = CurveEmitter(path, report)
        for index, record in enumerate(frame.iter_rows(named=True)):
            line = index + 2  # line 1 is the header
            raw_id = (record[cols["id"]] or "").strip()
            if not raw_id:
                if all(v is None for v in record.values()):
                    continue  # a blank line
                raise InputFileError(path, f"empty {cols['id']}", line=line)
            parsed = split_macho_id(raw_id)
            object_id, ids, id_band = parsed if parsed else (raw_id, {}, None)
            band = self._band(record, cols, id_band or default_band, path, line)
            raw_class, label = self._label(record[cols["class"]], path, line)
            path_value = record[cols["path"]] if cols["path"] else None
            outside = outside_reference(raw_id, path_value)
            if outside:
                raise InputFileError(path, outside, line=line)
            lc_path = resolve_light_curve(path.parent, raw_id, path_value)
            if lc_path is None:
                where = record[cols["path"]] if cols["path"] else f"{raw_id}{{,.csv,.dat,.txt}}"
                raise InputFileError(path, f"light-curve file {where!r} of {raw_id!r} not "
                                     f"found beside the metadata or in LCs/", line=line)
            table = parse_light_curve(lc_path)
            time, mag, err = table[:, 0], table[:, 1], table[:, 2]
            meta = make_meta(self.name, **ids, raw_class=raw_class,
                             ra=self._float(record, cols["ra"], path, line),
                             dec=self._float(record, cols["dec"], path, line))
            yield from emitter.emit(RawCurve(
                object_id=object_id, band=band, time=time, mag=mag, err=err, label=label,
                meta=meta, missing={REASON_SENTINEL: sentinel_mask(mag, err)}))
        emitter.finish()

    @staticmethod
    def _band(record, cols, fallback: str, path, line) -> str:
        value = record[cols["band"]] if cols["band"] else None
        band = BAND_NAMES.get(str(value).strip().lower()) if value is not None else None
        # Astromer's integer Band codes have no published meaning: they fall back as well
        band = band or BAND_NAMES.get(fallback.lower(), fallback)
        if band not in ("B", "R"):
            raise InputFileError(path, f"band {fallback!r} is not B or R (option alcock_band)",
                                 line=line)
        return band

    @staticmethod
    def _label(value, path, line) -> tuple[str | None, str | None]:
        raw = normalise_code(value)
        if raw is None:
            return None, None
        try:
            return raw, TAXONOMY.map(_CLASS_BY_LOWER.get(raw.lower(), raw))
        except KeyError:
            raise InputFileError(path, f"unknown class {raw!r}; known: "
                                 f"{', '.join(TAXONOMY.classes)} or MACHO codes 1-11",
                                 line=line) from None

    @staticmethod
    def _float(record, column, path, line) -> float | None:
        if column is None or record[column] in (None, ""):
            return None
        try:
            return float(record[column])
        except ValueError:
            raise InputFileError(path, f"column {column}: {record[column]!r} is not a number",
                                 line=line) from None
