"""Reader of Kepler long-cadence light-curve files (`kplr<KIC>-<timestamp>_llc.fits`, also
gzipped), as distributed by MAST: primary header with the target's KIC data, a LIGHTCURVE
binary table (TIME in BKJD = BJD - 2454833, SAP_FLUX, PDCSAP_FLUX, their *_ERR, and the
SAP_QUALITY bit flags) and an APERTURE image.

One canonical row per quarter file, or with the plugin option `stitch=true` one row per
star: every quarter found beside the file is divided by its own median flux (so the
quarter-to-quarter jumps in level from the spacecraft rolls disappear) and concatenated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.report import IngestReport
from lcfm.survey import Reader, Row

from lcfm_surveys._fits import (
    LightCurveTable,
    clean_cadences,
    flag_reason,
    header_float,
    header_int,
    is_fits_name,
    primary_header,
    read_table,
)

KEPLER_FILE = re.compile(r"^kplr(\d{9})-(\d{13})_llc\.fits(\.gz)?$", re.IGNORECASE)


class KeplerLongCadenceReader(Reader):
    name = "llc"
    description = "Kepler long-cadence light-curve FITS (kplr<KIC>-<stamp>_llc.fits[.gz])"
    patterns = ("*_llc.fits", "*_llc.fits.gz")

    def matches(self, path: Path) -> bool:
        if KEPLER_FILE.match(path.name) or super().matches(path):
            return True
        if not is_fits_name(path):
            return False
        header = primary_header(path)  # renamed files: recognise them by their header
        return (header is not None and str(header.get("TELESCOP", "")).strip() == "Kepler"
                and "KEPLERID" in header)

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        survey = self.survey
        if survey.stitch:
            yield from self._read_stitched(quarter_files(path), report)
            return
        table = self._table(path)
        report.read(len(table))
        time, flux, error = self._clean(table, report)
        if time.size == 0:
            report.reject_light_curve("no valid cadences", 0)
            return
        yield self._row(table, time, flux, error, quarters=[table.primary])

    # ---- helpers -------------------------------------------------------------------------
    def _table(self, path: Path) -> LightCurveTable:
        flux_column = self.survey.flux_column
        wanted = ["TIME", flux_column, f"{flux_column}_ERR", "SAP_QUALITY"]
        table = read_table(path, wanted, required=wanted)
        table.require_id("KEPLERID")
        mode = str(table.primary.get("OBSMODE", "long cadence")).strip().lower()
        if mode != "long cadence":
            raise InputFileError(path, f"OBSMODE is {mode!r}; this reader takes long-cadence "
                                 "(_llc) files only")
        return table

    def _clean(self, table: LightCurveTable, report: IngestReport):
        survey = self.survey
        c = table.columns
        time = c["TIME"].astype(np.float64)
        flux = c[survey.flux_column].astype(np.float32)
        error = c[f"{survey.flux_column}_ERR"].astype(np.float32)
        keep = clean_cadences(report, time, flux, error, c["SAP_QUALITY"].astype(np.int64),
                              survey.bitmask, flag_reason("SAP_QUALITY", survey.bitmask))
        return time[keep], flux[keep], error[keep]

    def _read_stitched(self, paths: list[Path], report: IngestReport) -> Iterator[Row]:
        tables = [self._table(p) for p in paths]
        kic = {t.require_id("KEPLERID") for t in tables}
        if len(kic) > 1:
            raise InputFileError(paths[0].parent, f"files named for one star hold several "
                                 f"KEPLERIDs {sorted(kic)}: {[p.name for p in paths]}")
        report.read(sum(len(t) for t in tables))
        pieces, used = [], []
        for table in sorted(tables, key=lambda t: header_int(t.primary, "QUARTER")):
            time, flux, error = self._clean(table, report)
            if time.size == 0:
                continue
            median = float(np.median(flux))
            if not np.isfinite(median) or median <= 0:
                report.reject_points("non-positive quarter median (cannot normalise)",
                                     time.size)
                continue
            pieces.append((time, flux / np.float32(median), error / np.float32(median)))
            used.append(table.primary)
        if not pieces:
            report.reject_light_curve("no valid cadences", 0)
            return
        time, flux, error = (np.concatenate(p) for p in zip(*pieces, strict=True))
        yield self._row(tables[0], time, flux, error, quarters=used)

    def _row(self, table: LightCurveTable, time, flux, error, quarters: list) -> Row:
        survey = self.survey
        head = table.primary
        kic = table.require_id("KEPLERID")
        object_id = str(kic)
        single = len(quarters) == 1 and not survey.stitch
        meta = {
            "kic": kic,
            # per-quarter geometry only means something for a single quarter; -1 otherwise
            "quarter": header_int(head, "QUARTER") if single else -1,
            "season": header_int(head, "SEASON") if single else -1,
            "channel": header_int(head, "CHANNEL") if single else -1,
            "module": header_int(head, "MODULE") if single else -1,
            "output": header_int(head, "OUTPUT") if single else -1,
            "quarters": ",".join(str(header_int(q, "QUARTER")) for q in quarters),
            "skygroup": header_int(head, "SKYGROUP"),
            "ra": header_float(head, "RA_OBJ"),
            "dec": header_float(head, "DEC_OBJ"),
            "kepmag": header_float(head, "KEPMAG"),
            "teff": header_float(head, "TEFF"),
            "logg": header_float(head, "LOGG"),
            "feh": header_float(head, "FEH"),
            "radius": header_float(head, "RADIUS"),
            "flux_column": survey.flux_column,
            "time_system": "BKJD",
        }
        return survey.row(object_id, time, flux, error, "kepler",
                          label=survey.label_of(object_id), meta=meta)


def quarter_files(path: Path) -> list[Path]:
    """All quarter files of the star `path` belongs to, in `path`'s folder (by the
    `kplr<KIC>-` name prefix; a file without the standard name stands alone)."""
    path = Path(path)
    found = KEPLER_FILE.match(path.name)
    if not found:
        return [path]
    kic = found.group(1)
    siblings = [p for p in path.parent.iterdir()
                if p.is_file() and (m := KEPLER_FILE.match(p.name)) and m.group(1) == kic]
    return sorted(siblings, key=lambda p: p.name)
