"""Reader of per-object ATLAS photometry text files.

Built from the published description of the format, not from a real file (none is available
to lcfm's developers, and none may be redistributed): the column list of the ATLAS photometry
text output of the tphot pipeline, as documented by the ATLAS forced-photometry server
("Output Description": MJD, m, dm, uJy, duJy, F, err, chi/N, RA, Dec, x, y, maj, min, phi,
apfit, [mag5sig,] Sky, ..., Obs). The light curves of the ATLAS variable-star catalogue
(Heinze et al. 2018, MAST HLSP "atlas-var", DOI 10.17909/T9H98D) carry the same per-exposure
quantities (MJD, magnitude, its error, filter c/o); their CasJobs "detection" table is
expected as per-object text files with such a header. Tests write fixtures in exactly this
layout; if a real file differs, the header check fails with an error naming the file.

Layout: one object per file, named after the object (the file stem is the object_id, e.g.
``ATO_J123.4567+12.3456.txt``). The first non-empty line is the header, optionally prefixed
by '#' characters, naming whitespace- (or comma-) separated columns, e.g.

    ###MJD  m  dm  uJy  duJy  F  err  chi/N  RA  Dec  x  y  maj  min  phi  apfit  mag5sig  Sky  Obs

then one line per exposure. Required columns (any order, case-insensitive): MJD (time, kept
in MJD), m (AB magnitude), dm (its 1-sigma error, mag), F (filter: c = cyan, o = orange).
Optional columns used: uJy (flux, sign checked), RA and Dec (their medians go to meta).
Every other column is read past. Later lines starting with '#' are comments.

Points dropped here, each counted in the ingest report with its reason:
* observations in a filter that the `band` option does not select (or not c / o at all);
* magnitude sentinels (|m| >= 50: no ATLAS measurement is that faint or bright);
* negative fluxes: the ATLAS photometry quotes the magnitude of a negative flux with a
  negative sign (and uJy < 0), so such a point is not a magnitude measurement.
Quality filters (uncertainties outside [0, 1] mag, 1st/99th percentile clipping) are the
survey's preprocessing chain, not the reader's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.report import IngestReport
from lcfm.survey import Reader, Row

REQUIRED_COLUMNS = ("mjd", "m", "dm", "f")
#: |m| at or above this is a placeholder, not a measurement (ATLAS reaches m ~ 19.5)
MAG_SENTINEL = 50.0
_HEAD_BYTES = 4096


def _header_tokens(line: str) -> list[str]:
    text = line.strip().lstrip("#").strip()
    return [t.strip() for t in text.split(",")] if "," in text else text.split()


def _is_header(tokens: list[str]) -> bool:
    lowered = {t.lower() for t in tokens}
    return all(c in lowered for c in REQUIRED_COLUMNS)


def parse_photometry(path: Path) -> dict[str, np.ndarray]:
    """Columns of an ATLAS photometry file: mjd, m, dm (float64), f (str), and uJy, ra, dec
    when present. Raises InputFileError naming the file and line on malformed content."""
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot read ATLAS photometry: {exc}") from None
    header_at = next((i for i, text in enumerate(lines) if text.strip()), None)
    if header_at is None:
        raise InputFileError(path, "empty file (no header line)")
    header = _header_tokens(lines[header_at])
    if not _is_header(header):
        raise InputFileError(path, f"no ATLAS photometry header: expected columns MJD, m, dm "
                             f"and F, found {' '.join(header)[:80]!r}", line=header_at + 1)
    lowered = [h.lower() for h in header]
    wanted = {name: lowered.index(name) for name in (*REQUIRED_COLUMNS, "ujy", "ra", "dec")
              if name in lowered}
    comma = "," in lines[header_at]
    cells: dict[str, list[str]] = {name: [] for name in wanted}
    numbers: list[int] = []
    for i in range(header_at + 1, len(lines)):
        text = lines[i].strip()
        if not text or text.startswith("#"):
            continue
        tokens = [t.strip() for t in text.split(",")] if comma else text.split()
        if len(tokens) != len(header):
            raise InputFileError(path, f"row has {len(tokens)} fields, header has "
                                 f"{len(header)}", line=i + 1)
        for name, index in wanted.items():
            cells[name].append(tokens[index])
        numbers.append(i + 1)
    columns: dict[str, np.ndarray] = {"f": np.asarray(cells.pop("f"), dtype=str)}
    for name, values in cells.items():
        try:
            columns[name] = np.asarray(values, dtype=np.float64)
        except ValueError:
            bad = next(k for k, v in enumerate(values) if not _is_float(v))
            raise InputFileError(path, f"column {header[wanted[name]]!r} value "
                                 f"{values[bad]!r} is not a number", line=numbers[bad]) from None
    return columns


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class AtlasPhotometryReader(Reader):
    name = "atlas-photometry"
    description = ("one ATLAS light curve per text file: header '###MJD m dm uJy duJy F ...', "
                   "one exposure per line (Heinze et al. 2018 / ATLAS photometry layout)")
    patterns = ("*.txt", "*.dat")

    def matches(self, path: Path) -> bool:
        if path.suffix.lower() not in (".txt", ".dat"):
            return False
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                head = handle.read(_HEAD_BYTES)
        except OSError:
            return False
        first = next((line for line in head.splitlines() if line.strip()), "")
        return _is_header(_header_tokens(first))

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        path = Path(path)
        self.survey.catalogue()  # a bad label catalogue fails before any point is counted
        columns = parse_photometry(path)
        filters, mag = columns["f"], columns["m"]
        report.read(mag.size)
        if mag.size == 0:
            report.reject_light_curve("empty file (header only)", 0)
            return

        keep = np.ones(mag.size, dtype=bool)
        keep &= self._select_bands(filters, report)
        sentinel = keep & (np.abs(mag) >= MAG_SENTINEL)
        report.reject_points(f"magnitude sentinel (|m| >= {MAG_SENTINEL:g})", int(sentinel.sum()))
        keep &= ~sentinel
        negative = mag < 0
        if "ujy" in columns:
            negative |= columns["ujy"] < 0
        negative &= keep
        report.reject_points("negative flux (magnitude quoted with a negative sign)",
                             int(negative.sum()))
        keep &= ~negative
        if not keep.any():
            report.reject_light_curve(
                f"no usable observation in band(s) {','.join(self.survey.selected_bands)}", 0)
            return

        label, raw_label, extra = self.survey.label_for(path)
        meta = {"ra": _median(columns.get("ra"), keep), "dec": _median(columns.get("dec"), keep),
                "period": None, "raw_label": raw_label}
        for key in ("ra", "dec", "period"):
            if meta[key] is None and extra.get(key) is not None:
                meta[key] = float(extra[key])
        yield {
            "object_id": path.stem,
            "survey": self.survey.name,
            "time": columns["mjd"][keep].astype(np.float64),
            "value": mag[keep].astype(np.float32),
            "error": columns["dm"][keep].astype(np.float32),
            "band": filters[keep],
            "value_kind": "mag",
            "label": label,
            "meta": meta,
        }

    def _select_bands(self, filters: np.ndarray, report: IngestReport) -> np.ndarray:
        """True where the filter is one the `band` option selects; counts the others."""
        selected = self.survey.selected_bands
        keep = np.isin(filters, selected)
        for name in np.unique(filters[~keep]).tolist():
            n = int((filters == name).sum())
            if name in self.survey.bands:
                report.reject_points(f"band {name} not selected (band={','.join(selected)})", n)
            else:
                report.reject_points(f"unknown filter {name!r} (ATLAS bands: "
                                     f"{', '.join(self.survey.bands)})", n)
        return keep


def _median(values: np.ndarray | None, keep: np.ndarray) -> float | None:
    if values is None:
        return None
    finite = values[keep][np.isfinite(values[keep])]
    return float(np.median(finite)) if finite.size else None
