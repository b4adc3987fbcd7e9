"""Readers of TESS light-curve FITS files: QLP high-level science products and SPOC
2-minute (or 20-second) light curves. Both put the target in the primary header (TICID,
SECTOR, CAMERA, CCD, RA_OBJ, DEC_OBJ, TESSMAG, TEFF, ...) and one cadence per row in a
LIGHTCURVE binary table whose TIME is in BTJD (BJD - 2457000) and whose QUALITY column
holds bit flags.

QLP (MIT Quick-Look Pipeline; Huang et al. 2020, Kunimoto et al. 2021) -- built from the
published description of the HLSP (MAST, "hlsp_qlp_tess_ffi_all_tess_v1_data-prod-desc"),
since no QLP file may be redistributed here; the tests write files in exactly this layout:

- file name `hlsp_qlp_tess_ffi_s<SSSS>-<TIC, 16 digits>_tess_v01_llc.fits`;
- primary header ORIGIN = 'MIT/QLP', TICID, SECTOR, CAMERA, CCD, TESSMAG, ...;
- LIGHTCURVE columns TIME, CADENCENO, SAP_FLUX (normalised raw aperture flux),
  KSPSAP_FLUX and KSPSAP_FLUX_ERR (flux detrended with a spline, and its uncertainty),
  QUALITY, ORBITID, SAP_X, SAP_Y, SAP_BKG, SAP_BKG_ERR, KSPSAP_FLUX_SML, KSPSAP_FLUX_LAG;
  from sector 56 the detrended columns are named DET_FLUX, DET_FLUX_ERR, ... instead.

QLP has no SAP_FLUX_ERR: the uncertainty of SAP_FLUX (and of the other apertures) is
KSPSAP_FLUX_ERR (DET_FLUX_ERR from sector 56), as in the HLSP description.

SPOC (TESS Science Processing Operations Center): `tess<stamp>-s<SSSS>-<TIC>-<id>-s_lc.fits`,
ORIGIN = 'NASA/Ames', columns TIME, SAP_FLUX(_ERR), PDCSAP_FLUX(_ERR), QUALITY, ...
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

QLP_FILE = re.compile(r"^hlsp_qlp_tess_ffi_s(\d{4})-(\d{16})_tess_v\d+_llc\.fits(\.gz)?$",
                      re.IGNORECASE)
SPOC_FILE = re.compile(r"^tess\d{13}-s(\d{4})-(\d{16})-\d{4}-[a-z]_(fast-)?lc\.fits(\.gz)?$",
                       re.IGNORECASE)


class _TessReader(Reader):
    """Shared reading of a TESS light-curve file; subclasses name the columns."""

    #: flux column used when the plugin option `flux_column` is not set
    default_flux: str = ""
    #: columns tried, in order, for the uncertainty after `<flux>_ERR`
    error_fallbacks: tuple[str, ...] = ()
    #: newer files rename a column (QLP sector >= 56: KSPSAP_* -> DET_*)
    renamed: dict[str, str] = {}
    file_name: re.Pattern = QLP_FILE

    def matches(self, path: Path) -> bool:
        if self.file_name.match(path.name) or super().matches(path):
            return True
        if not is_fits_name(path):
            return False
        header = primary_header(path)  # renamed files: recognise them by their header
        return header is not None and self.header_matches(header)

    def header_matches(self, header) -> bool:
        raise NotImplementedError

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        survey = self.survey
        wanted_flux = survey.flux_column or self.default_flux
        flux_names = [wanted_flux] + ([self.renamed[wanted_flux]]
                                      if wanted_flux in self.renamed else [])
        error_names = [f"{n}_ERR" for n in flux_names] + list(self.error_fallbacks)
        table = read_table(path, ["TIME", "QUALITY", *flux_names, *error_names],
                           required=["TIME", "QUALITY"])
        flux_column = next((n for n in flux_names if n in table.columns), None)
        error_column = next((n for n in error_names if n in table.columns), None)
        if flux_column is None or error_column is None:
            missing = flux_names if flux_column is None else error_names
            raise InputFileError(path, f"LIGHTCURVE HDU lacks column {' / '.join(missing)}; "
                                 f"it has {table.names}")
        table.require_id("TICID")
        report.read(len(table))
        c = table.columns
        time = c["TIME"].astype(np.float64)
        flux = c[flux_column].astype(np.float32)
        error = c[error_column].astype(np.float32)
        keep = clean_cadences(report, time, flux, error, c["QUALITY"].astype(np.int64),
                              survey.bitmask, flag_reason("QUALITY", survey.bitmask))
        if not keep.any():
            report.reject_light_curve("no valid cadences", 0)
            return
        yield self._row(table, time[keep], flux[keep], error[keep], flux_column)

    def _row(self, table: LightCurveTable, time, flux, error, flux_column: str) -> Row:
        survey = self.survey
        head = table.primary
        tic = table.require_id("TICID")
        object_id = str(tic)
        cadence = header_float(table.header, "TIMEDEL")
        if not np.isfinite(cadence) and time.size > 1:
            cadence = float(np.median(np.diff(np.sort(time))))
        meta = {
            "tic": tic,
            "sector": header_int(head, "SECTOR"),
            "camera": header_int(head, "CAMERA"),
            "ccd": header_int(head, "CCD"),
            "ra": header_float(head, "RA_OBJ"),
            "dec": header_float(head, "DEC_OBJ"),
            "tessmag": header_float(head, "TESSMAG"),
            "teff": header_float(head, "TEFF"),
            "logg": header_float(head, "LOGG"),
            "mh": header_float(head, "MH"),
            "radius": header_float(head, "RADIUS"),
            "cadence_min": cadence * 1440.0,
            "format": self.name,
            "flux_column": flux_column,
            "time_system": "BTJD",
            "time_offset": 0.0,
        }
        return survey.row(object_id, time, flux, error, "tess",
                          label=survey.label_of(object_id), meta=meta)


class QlpReader(_TessReader):
    name = "qlp"
    description = ("TESS QLP HLSP light-curve FITS "
                   "(hlsp_qlp_tess_ffi_s<sector>-<tic>_tess_v01_llc.fits[.gz])")
    patterns = ("hlsp_qlp_tess_ffi_*_llc.fits", "hlsp_qlp_tess_ffi_*_llc.fits.gz")
    # ASTRAFier detrends with its own Gaussian filter (sect. 4.3), keeping periods up to
    # ~7.7 d; QLP's spline-detrended KSPSAP_FLUX would already have removed much of that
    # variability, so the raw aperture flux is the default (the paper does not name it).
    default_flux = "SAP_FLUX"
    error_fallbacks = ("KSPSAP_FLUX_ERR", "DET_FLUX_ERR")
    renamed = {"KSPSAP_FLUX": "DET_FLUX", "KSPSAP_FLUX_SML": "DET_FLUX_SML",
               "KSPSAP_FLUX_LAG": "DET_FLUX_LAG"}
    file_name = QLP_FILE

    def header_matches(self, header) -> bool:
        return "MIT/QLP" in str(header.get("ORIGIN", "")).upper()


class SpocReader(_TessReader):
    name = "spoc"
    description = ("TESS SPOC 2-min/20-s light-curve FITS "
                   "(tess<stamp>-s<sector>-<tic>-*_lc.fits[.gz])")
    patterns = ("tess*-s*_lc.fits", "tess*-s*_lc.fits.gz", "tess*-s*_fast-lc.fits",
                "tess*-s*_fast-lc.fits.gz")
    default_flux = "PDCSAP_FLUX"
    file_name = SPOC_FILE

    def header_matches(self, header) -> bool:
        return (str(header.get("TELESCOP", "")).strip() == "TESS"
                and "MIT/QLP" not in str(header.get("ORIGIN", "")).upper()
                and "TICID" in header)
