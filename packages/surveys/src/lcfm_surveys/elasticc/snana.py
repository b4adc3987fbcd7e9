"""SNANA FITS HEAD/PHOT pairs: the format of the ELAsTiCC (and PLAsTiCC) training sets.

A HEAD table has one row per object (SNID, SNTYPE, PTROBS_MIN/PTROBS_MAX, RA/DEC, host
galaxy and redshift columns); PTROBS_MIN and PTROBS_MAX are 1-based, inclusive row numbers
of the object's observations in the partner PHOT table (MJD, BAND or FLT, FLUXCAL,
FLUXCALERR, PHOTFLAG, ...). SNANA writes a row with MJD = -777 after each light curve.
Partners are found by name: X_HEAD.FITS(.gz) with X_PHOT.FITS(.gz), or the lower-case
x_head.fits / x_phot.fits naming, each gzipped or not.

Accounting. The -777 rows between light curves are file structure, not observations: they
are not counted as read. A -777 row inside an object's pointer range is counted as read
and rejected ("SNANA end-of-light-curve marker (MJD = -777)"). Each HEAD row is one light
curve read; its points are the PHOT rows in its pointer range.

Per point: PHOTFLAG bit 4096 marks a detection, bit 2048 the trigger epoch, i.e. the
first alert (ATAT's t_alert is the epoch whose PHOTFLAG is 6144 = 4096 + 2048), bit 1024
a saturated measurement (dropped by default, as ATAT does). The alert epoch goes to
meta["alert_mjd"] for the 30-day window of the preprocessing (paper 003, sect. 2.1.1).

Labels: the model of an ELAsTiCC training-set folder (ELASTICC_TRAIN_<model>) or of the
HEAD file's VERSION keyword when it names one, else the type number (SIM_TYPE_INDEX,
SIM_GENTYPE, GENTYPE or SNTYPE) read in the file's code scheme (see taxonomy.py).
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import InputFileError, LcfmError
from lcfm.registry import lazy_import
from lcfm.report import IngestReport
from lcfm.survey import Reader, Row

from lcfm_surveys.elasticc.bands import normalize_bands
from lcfm_surveys.elasticc.metadata import (
    METADATA_FEATURES,
    feature_columns,
    object_meta,
    snana_feature_name,
)
from lcfm_surveys.elasticc.taxonomy import class_of_code, model_name_in, model_name_of_folder

fits = lazy_import("astropy.io.fits")  # on first use: keeps plugin discovery light

DETECTION_BIT, TRIGGER_BIT, SATURATION_BIT = 4096, 2048, 1024
SEPARATOR_MJD = -777.0
_TYPE_COLUMNS = ("SIM_TYPE_INDEX", "SIM_GENTYPE", "GENTYPE", "SNTYPE")
_FEATURES = frozenset(METADATA_FEATURES)
_NAME = re.compile(r"^(?P<stem>.*)_(?P<kind>HEAD|PHOT)(?P<ext>\.FITS(\.GZ)?)$", re.IGNORECASE)


def split_name(path: Path):
    """(stem, "HEAD"|"PHOT", extension) of a SNANA file name, or None."""
    match = _NAME.match(Path(path).name)
    if not match:
        return None
    return match["stem"], match["kind"].upper(), match["ext"]


def partner_candidates(path: Path) -> list[Path]:
    """Possible partner files of a HEAD file (PHOT files) or of a PHOT file (HEAD files):
    same stem, same case convention, gzipped or not."""
    parts = split_name(path)
    if parts is None:
        return []
    stem, kind, ext = parts
    written = Path(path).name[len(stem) + 1: len(stem) + 5]  # "HEAD" or "head" as written
    other = {"HEAD": "PHOT", "PHOT": "HEAD"}[kind]
    other = other if written.isupper() else other.lower()
    bare = ext[:-3] if ext.lower().endswith(".gz") else ext
    return [Path(path).with_name(f"{stem}_{other}{e}")
            for e in dict.fromkeys((ext, bare, bare + ".gz", bare + ".GZ"))]


def partner_of(path: Path) -> Path | None:
    """The existing partner file of a HEAD or PHOT file, or None."""
    return next((p for p in partner_candidates(path) if p.is_file()), None)


def _open_fits(path: Path):
    """fits.open on the file, a gzipped file being decompressed first so a truncated
    gzip stream is reported as such (astropy would just see fewer HDUs)."""
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path) as stream:
                raw = stream.read()
        except (EOFError, OSError, zlib.error) as exc:
            problem = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise InputFileError(path, f"truncated or corrupt gzip file ({problem})") from None
        return fits.open(io.BytesIO(raw), memmap=False)
    return fits.open(path, memmap=False)


def read_fits_table(path: Path, required: tuple[str, ...], alternatives=(),
                    wanted=lambda name: True) -> tuple:
    """(primary header, {COLUMN: native-endian array}) of the first binary table, for the
    columns that are required or `wanted(COLUMN)` (upper-case names).

    `alternatives` lists groups of which one column must exist (e.g. BAND or FLT).
    Truncated or corrupt files raise a one-line InputFileError: astropy's warnings about
    damaged files are errors here, since a silently short table breaks the accounting.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            warnings.filterwarnings("error", message=".*truncated.*")
            with _open_fits(path) as hdul:
                hdul.readall()
                table = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)), None)
                if table is None:
                    raise InputFileError(path, "no binary table in the file; not a SNANA "
                                         "HEAD or PHOT file")
                names = list(table.columns.names)
                upper = {n.upper(): n for n in names}
                missing = [c for c in required if c not in upper]
                missing += ["/".join(g) for g in alternatives if not any(c in upper for c in g)]
                if missing:
                    raise InputFileError(path, f"missing column(s) {missing}; the table has "
                                         f"{names[:12]}{' ...' if len(names) > 12 else ''}")
                data = table.data
                columns = {}
                for key, name in upper.items():
                    if key not in required and not wanted(key):
                        continue  # decoding unused string columns is the slow part
                    column = np.asarray(data[name])
                    if column.ndim == 1:  # array-valued cells are no metadata scalars
                        columns[key] = column.astype(column.dtype.newbyteorder("="))
                return hdul[0].header.copy(), columns
    except LcfmError:
        raise
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except Exception as exc:  # OSError, EOFError, zlib.error, ValueError, warnings...
        problem = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise InputFileError(path, f"unreadable or truncated FITS file ({problem})") from None


def _head_column_wanted(column: str) -> bool:
    if column in ("RA", "DEC", "DECL") or column in _TYPE_COLUMNS:
        return True
    return snana_feature_name(column) in _FEATURES


def snid_strings(values: np.ndarray) -> list[str]:
    """SNIDs as str whether the column holds bytes, str or integers."""
    if values.dtype.kind == "S":
        return [v.decode("ascii", errors="replace").strip() for v in values]
    if values.dtype.kind in "iu":
        return [str(int(v)) for v in values]
    if values.dtype.kind == "f":
        return [str(int(v)) if float(v).is_integer() else str(v) for v in values]
    return [str(v).strip() for v in values]


class SnanaFitsReader(Reader):
    name = "snana_fits"
    description = "SNANA FITS HEAD/PHOT pair (*_HEAD.FITS[.gz] + *_PHOT.FITS[.gz])"
    patterns = ("*_HEAD.FITS", "*_HEAD.FITS.gz", "*_HEAD.FITS.GZ", "*_head.fits",
                "*_head.fits.gz")

    def matches(self, path: Path) -> bool:
        # a PHOT file given alone is read through its HEAD partner
        return split_name(path) is not None

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        path = Path(path)
        parts = split_name(path)
        if parts is None:
            raise InputFileError(path, "not a SNANA file name (expected *_HEAD.FITS[.gz] "
                                 "or *_PHOT.FITS[.gz])")
        partner = partner_of(path)
        if partner is None:
            want = "PHOT" if parts[1] == "HEAD" else "HEAD"
            raise InputFileError(path, f"no {want} partner file next to it (looked for "
                                 f"{partner_candidates(path)[0].name}, with and without "
                                 ".gz)")
        head, phot = (path, partner) if parts[1] == "HEAD" else (partner, path)
        header, heads = read_fits_table(head, ("SNID", "PTROBS_MIN", "PTROBS_MAX"),
                                        wanted=_head_column_wanted)
        _, obs = read_fits_table(phot, ("MJD", "FLUXCAL", "FLUXCALERR"), (("BAND", "FLT"),),
                                 wanted=lambda c: c in ("BAND", "FLT", "PHOTFLAG"))
        yield from self._light_curves(head, phot, header, heads, obs, report)

    def _light_curves(self, head, phot, header, heads, obs, report) -> Iterator[Row]:
        opts = self.survey.opts
        n_phot = obs["MJD"].size
        mjd = obs["MJD"].astype(np.float64)
        flux = obs["FLUXCAL"].astype(np.float32)
        error = obs["FLUXCALERR"].astype(np.float32)
        bands = normalize_bands(obs["BAND"] if "BAND" in obs else obs["FLT"])
        flags = (obs["PHOTFLAG"].astype(np.int64) if "PHOTFLAG" in obs
                 else np.zeros(n_phot, dtype=np.int64))
        use_trigger = opts["alert_flag"] == "trigger"

        version = str(header.get("VERSION", ""))
        model = model_name_of_folder(head.parent.name) or model_name_in(version)
        scheme = opts["code_scheme"]
        if scheme == "auto":
            scheme = ("plasticc" if "PLASTICC" in f"{version} {head.name}".upper()
                      else "elasticc")
        type_columns = [c for c in _TYPE_COLUMNS if c in heads]
        features = feature_columns(heads, snana_feature_name)
        dec_column = "DEC" if "DEC" in heads else "DECL" if "DECL" in heads else None

        snids = snid_strings(heads["SNID"])
        starts = heads["PTROBS_MIN"].astype(np.int64)
        stops = heads["PTROBS_MAX"].astype(np.int64)
        for i, snid in enumerate(snids):
            start, stop = int(starts[i]), int(stops[i])
            if stop < start:  # SNANA's empty light curve
                start, stop = 1, 0
            elif start < 1 or stop > n_phot:
                raise InputFileError(head, f"row {i + 1} (SNID {snid}): PTROBS_MIN..MAX = "
                                     f"{start}..{stop} outside the {n_phot} rows of "
                                     f"{phot.name}")
            rows = slice(start - 1, stop)
            n = stop - start + 1
            report.read(n)
            keep = mjd[rows] != SEPARATOR_MJD
            report.reject_points("SNANA end-of-light-curve marker (MJD = -777)",
                                 int((~keep).sum()))
            t, f = mjd[rows], flags[rows]
            detections = t[keep & ((f & DETECTION_BIT) != 0)]
            # the trigger epoch is the first alert; files without trigger bits fall back
            # to the first detection
            alerts = t[keep & ((f & TRIGGER_BIT) != 0)] if use_trigger else detections
            if alerts.size == 0:
                alerts = detections
            if opts["drop_saturated"]:
                saturated = keep & ((f & SATURATION_BIT) != 0)
                report.reject_points("saturated (PHOTFLAG bit 1024)", int(saturated.sum()))
                keep &= ~saturated
            band = bands[rows]
            unknown = keep & (band == "")
            report.reject_points("band not one of LSST ugrizY", int(unknown.sum()))
            keep &= ~unknown

            # the first positive type number (SIM_TYPE_INDEX before SNTYPE), else -1
            code = next((int(heads[c][i]) for c in type_columns if heads[c][i] > 0), -1)
            if model is not None:
                label, raw = self.survey.taxonomy.map(model), model
            elif code > 0:
                label, raw = class_of_code(code, scheme)
            else:
                label, raw = None, ""
            meta = object_meta(
                ra=heads["RA"][i] if "RA" in heads else None,
                dec=heads[dec_column][i] if dec_column else None,
                alert_mjd=alerts.min() if alerts.size else None,
                last_detection_mjd=detections.max() if detections.size else None,
                raw_class=raw, gentype=code, flux_unit="FLUXCAL",
                features={k: heads[c][i] for k, c in features.items()},
            )
            yield {
                "object_id": snid,
                "survey": self.survey.name,
                "time": t[keep],
                "value": flux[rows][keep],
                "error": error[rows][keep],
                "band": band[keep],
                "value_kind": "flux",
                "label": label,
                "meta": meta,
            }
