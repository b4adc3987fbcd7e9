"""Helpers shared by the space-photometry plugins (Kepler, TESS): reading a light-curve
FITS table safely, parsing plugin options, quality/NaN cadence cleaning, joining labels
from a catalogue CSV, and the ASTRAFier preprocessing steps (Gregory et al., sect. 4.3).

Every helper counts what it drops in the `IngestReport` and raises `InputFileError`
(one line, naming the file) for unreadable or malformed input.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from lcfm.exceptions import ConfigError, InputFileError, LcfmError
from lcfm.preprocess import filter_points
from lcfm.registry import lazy_import
from lcfm.report import IngestReport
from lcfm.survey import Row, Step, Taxonomy

from lcfm_surveys._csv import csv_rows, decode_text

# astropy and scipy cost most of a light start-up (issue 10): imported on first use
fits = lazy_import("astropy.io.fits")
gaussian_filter1d = lazy_import("scipy.ndimage", "gaussian_filter1d")

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")
#: astropy warning texts that mean the file is damaged, not merely non-standard
_DAMAGE = re.compile(r"truncat|corrupt|extra bytes|not a multiple of 2880|multiple of 2880",
                     re.IGNORECASE)


# ---- reading -----------------------------------------------------------------------------
class LightCurveTable:
    """The primary header, the light-curve table header and the requested columns of one
    FITS file, as native-endian numpy arrays (the file is closed once this exists)."""

    def __init__(self, path: Path, primary: fits.Header, header: fits.Header,
                 columns: dict[str, np.ndarray], names: list[str]):
        self.path, self.primary, self.header = path, primary, header
        self.columns, self.names = columns, names

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def require_key(self, key: str) -> object:
        value = self.primary.get(key)
        if value is None or isinstance(value, fits.card.Undefined):
            raise InputFileError(self.path, f"primary header has no {key} keyword")
        return value

    def require_id(self, key: str) -> int:
        """The integer catalogue id in `key` (KEPLERID, TICID): a file whose id is absent
        or not a whole number is refused in one line (issue 9: a traceback before)."""
        value = self.require_key(key)
        number = None
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            number = int(value)
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if number is None or number < 0:
            raise InputFileError(self.path, f"primary header {key} = {value!r} is not a "
                                 "non-negative integer")
        return number


def is_fits_name(path: Path) -> bool:
    return path.name.lower().endswith(FITS_SUFFIXES)


def read_table(path: Path, wanted: list[str], required: list[str],
               hdu_name: str = "LIGHTCURVE") -> LightCurveTable:
    """Read `wanted` columns (those in `required` must exist) of the `hdu_name` table.

    Truncated or corrupt files, a missing table HDU or missing columns raise
    `InputFileError`; astropy's warnings about a damaged file (truncated, corrupted) are
    errors too, since a silently shortened file must not be ingested as if complete.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            with fits.open(path, memmap=False) as hdul:
                hdul.readall()  # parse every header now, so truncation shows up here
                table = _table_hdu(hdul, hdu_name)
                if table is None:
                    raise InputFileError(path, f"no {hdu_name} binary-table HDU (found "
                                         f"{[h.name for h in hdul]}); not a light-curve "
                                         "file, or a truncated one")
                names = [n.upper() for n in table.columns.names]
                missing = [c for c in required if c not in names]
                if missing:
                    raise InputFileError(path, f"{hdu_name} HDU lacks column(s) {missing}; "
                                         f"it has {names}")
                data = table.data
                columns = {c: np.array(data[c]).astype(data[c].dtype.newbyteorder("="))
                           for c in wanted if c in names}
                result = LightCurveTable(path, hdul[0].header.copy(), table.header.copy(),
                                         columns, names)
        damage = [str(w.message) for w in caught if _DAMAGE.search(str(w.message))]
        if damage:
            raise ValueError(damage[0])
        return result
    except LcfmError:
        raise
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except Exception as exc:  # astropy raises OSError, ValueError, EOFError, zlib errors...
        problem = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputFileError(path, f"unreadable or truncated FITS file ({problem})") from None


def _table_hdu(hdul: fits.HDUList, name: str):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == name:
            return hdu
    return None


def primary_header(path: Path) -> fits.Header | None:
    """The primary header, or None when the file cannot be read (used for detection)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False) as hdul:
                return hdul[0].header.copy()
    except Exception:
        return None


def header_float(header: fits.Header, key: str) -> float:
    """A numeric header value as float; NaN when absent or blank (meta has no nulls)."""
    value = header.get(key)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def header_int(header: fits.Header, key: str, missing: int = -1) -> int:
    value = header.get(key)
    try:
        return int(value)
    except (TypeError, ValueError):
        return missing


# ---- options -------------------------------------------------------------------------------
def option_bool(survey: str, name: str, value) -> bool:
    """`lcfm.preprocess.option_flag`, where "none" also means false."""
    from lcfm.preprocess import option_flag

    if str(value).strip().lower() == "none":
        return False
    return option_flag(survey, name, value)


def option_float(survey: str, name: str, value, *, positive: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or (positive and number <= 0):
        raise ConfigError(f"survey {survey!r}: option {name}={value!r} must be a "
                          f"{'positive ' if positive else ''}number")
    return number


def option_bitmask(survey: str, value, named: dict[str, int]) -> int:
    """A QUALITY bitmask from a name in `named` or an integer (decimal or 0x hex).
    "all" (any flag set) is -1, whose bitwise AND with a QUALITY value is that value."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip().lower()
    if text in named:
        return named[text]
    try:
        return int(text, 0)
    except ValueError:
        raise ConfigError(f"survey {survey!r}: quality_bitmask={value!r} is neither an "
                          f"integer nor one of {sorted(named)}") from None


def option_choice(survey: str, name: str, value, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"survey {survey!r}: option {name}={value!r}; choose one of "
                          f"{', '.join(choices)}")
    return text


# ---- cadence cleaning ----------------------------------------------------------------------
def flag_reason(column: str, bitmask: int) -> str:
    """The report's reason for cadences dropped by a quality bitmask."""
    return f"{column} flag set (any bit)" if bitmask == -1 else \
        f"{column} flag set (bitmask {bitmask})"


def clean_cadences(report: IngestReport, time, flux, error, quality, bitmask: int,
                   flag_reason: str) -> np.ndarray:
    """Boolean mask of the cadences kept: QUALITY & bitmask == 0, then finite time, flux
    and error, then error >= 0. Each dropped cadence is counted once, under the first
    reason that applies, in that order."""
    flagged = (quality & bitmask) != 0 if quality is not None else np.zeros(time.size, bool)
    report.reject_points(flag_reason, int(flagged.sum()))
    finite = np.isfinite(time) & np.isfinite(flux) & np.isfinite(error)
    nonfinite = ~flagged & ~finite
    report.reject_points("non-finite time, flux or error", int(nonfinite.sum()))
    keep = ~flagged & finite
    negative = keep & (error < 0)
    report.reject_points("negative flux uncertainty", int(negative.sum()))
    return keep & ~negative


# ---- labels --------------------------------------------------------------------------------
class LabelCatalog:
    """Object id -> class, read from a CSV with a header row: an id column (one of
    `id_columns`, e.g. TIC or KIC; "TIC 123" and zero-padded ids are accepted) and a class
    column (`class` or `label`). Raw class names go through the survey's taxonomy
    (case-insensitive); an unknown class or a conflicting duplicate raises `InputFileError`
    naming the CSV line. Objects absent from the catalogue stay unlabeled (None)."""

    CLASS_COLUMNS = ("class", "label")

    def __init__(self, path, taxonomy: Taxonomy, id_columns: tuple[str, ...]):
        self.path = Path(path)
        self.labels: dict[str, str | None] = {}
        if not self.path.is_file():
            raise InputFileError(self.path, "label catalogue not found")
        rows = csv_rows(decode_text(self.path.read_bytes(), self.path).lstrip("\ufeff"),
                        self.path)
        header = [h.strip().lower() for h in rows[0][1]] if rows else []
        id_col = next((header.index(c) for c in id_columns if c in header), None)
        cls_col = next((header.index(c) for c in self.CLASS_COLUMNS if c in header), None)
        if id_col is None or cls_col is None:
            raise InputFileError(self.path, f"header {header} needs an id column (one of "
                                 f"{list(id_columns)}) and a class column "
                                 f"({' or '.join(self.CLASS_COLUMNS)})", line=1)
        seen: dict[str, int] = {}
        # csv_rows checked that every row has the header's field count
        for line, fields in rows[1:]:
            object_id = self._object_id(fields[id_col], line)
            label = self._class(fields[cls_col], taxonomy, object_id, line)
            if object_id in self.labels and self.labels[object_id] != label:
                raise InputFileError(self.path, f"object {object_id} is labeled "
                                     f"{label!r} here but {self.labels[object_id]!r} on "
                                     f"line {seen[object_id]}", line=line)
            self.labels[object_id] = label
            seen.setdefault(object_id, line)

    def _object_id(self, raw: str, line: int) -> str:
        text = re.sub(r"^\s*(tic|kic|kplr)\s*", "", raw.strip(), flags=re.IGNORECASE)
        if not text.isdigit():
            raise InputFileError(self.path, f"object id {raw!r} is not an integer", line=line)
        return str(int(text))

    def _class(self, raw: str, taxonomy: Taxonomy, object_id: str, line: int) -> str | None:
        key = raw.strip().upper()
        try:
            return taxonomy.map(key)
        except KeyError:
            raise InputFileError(self.path, f"unknown class {raw.strip()!r} for object "
                                 f"{object_id}; expected one of {list(taxonomy.classes)}",
                                 line=line) from None

    def get(self, object_id: str) -> str | None:
        return self.labels.get(object_id)


def catalog_label(survey, object_id: str, id_columns: tuple[str, ...]) -> str | None:
    """The label of `object_id` from the catalogue named by the survey's `labels` option
    (read once per plugin instance, on first use), or None without a catalogue."""
    path = survey.opts.get("labels")
    if path is None or str(path).strip().lower() in ("", "none"):
        return None
    catalog = getattr(survey, "_label_catalog", None)
    if catalog is None:
        catalog = survey._label_catalog = LabelCatalog(path, survey.taxonomy, id_columns)
    return catalog.get(object_id)


# ---- ASTRAFier preprocessing steps (Gregory et al., sect. 4.3) --------------------------------
def clip_about_median(n_sigma: float) -> Step:
    """Drop "outlier values that deviate from the median by more than ten times the
    standard deviation" (one pass; median and standard deviation of the light curve)."""

    def keep(row: Row) -> np.ndarray:
        values = row["value"].astype(np.float64)
        if values.size == 0:
            return np.ones(0, dtype=bool)
        return np.abs(values - np.median(values)) <= n_sigma * values.std()

    return filter_points(f"more than {n_sigma:g} sigma from the median", keep)


def subtract_gaussian_trend(sigma: float) -> Step:
    """Subtract a 1-D Gaussian filter of the flux (sigma in cadences, i.e. array samples,
    61 in the paper: long-range trends out, periods up to ~7.7 d kept at 30-min cadence).
    scipy's default 'reflect' boundary handling; the uncertainty is unchanged."""

    def step(row: Row, report: IngestReport) -> Row:
        values = row["value"].astype(np.float64)
        trend = gaussian_filter1d(values, sigma)
        return {**row, "value": (values - trend).astype(np.float32)}

    return step


def shift_time_to_zero() -> Step:
    """t -> t - t[0] ("shift the time values to start at zero"); the offset is kept in
    meta["time_offset"] (days, native time system) so absolute times can be recovered."""

    def step(row: Row, report: IngestReport) -> Row:
        start = float(row["time"][0]) if row["time"].size else 0.0
        meta = {**row.get("meta", {}), "time_offset": start}
        return {**row, "time": row["time"] - start, "meta": meta}

    return step


def standardize() -> Step:
    """value -> (value - mean) / std and error -> error / std (population std). A light
    curve with zero or undefined spread cannot be standardized and is rejected."""

    def step(row: Row, report: IngestReport) -> Row | None:
        values = row["value"].astype(np.float64)
        spread = values.std() if values.size else 0.0
        if not np.isfinite(spread) or spread <= 0:
            report.reject_light_curve("constant flux (cannot standardize)", values.size)
            return None
        scaled = ((values - values.mean()) / spread).astype(np.float32)
        error = (row["error"].astype(np.float64) / spread).astype(np.float32)
        return {**row, "value": scaled, "error": error}

    return step
