"""ATLAS variable-star classes and the label catalogue reader.

Raw classes are those of the ATLAS DR1 variable-star catalogue (Heinze et al. 2018, AJ 156,
241; CDS J/AJ/156/241, note 7): close binaries with the full or half period found by the
Fourier fit (CBF, CBH), distant (detached) binaries likewise (DBF, DBH), pulsating stars
(PULSE: RR Lyrae, delta Scuti, Cepheids), Mira variables (MIRA), the catch-all bins LPV and
IRR, the sinusoidal / Fourier-shape classes (SINE, NSINE, MSINE, MPULSE) and "dubious"
(candidates that fail the tests against spurious variability).

lcfm's ATLAS taxonomy follows Astromer 2 (sect. 4.2.2 and Table 2), which reuses the label
standardisation of Astromer 1:

* CBF + CBH -> CB and DBF + DBH -> DB (full- and half-period detections are one physical
  class; the half-period flag only says where the Fourier fit settled);
* MIRA -> Mira, PULSE -> Pulse;
* every other raw class -> None (the light curve is kept, unlabelled). Astromer 2 "excluded
  objects with labels derived from Fourier analysis, as these classifications do not directly
  align with astrophysical categories" and its Table 2 lists only CB, DB, Mira and Pulse,
  whose counts (80 218 + 28 767 + 7370 + 25 021) add up to the 141 376 light curves used.
  So SINE, NSINE, MSINE, MPULSE, LPV and IRR are excluded, and so is "dubious", which the
  paper describes as ~90% instrumental noise. (Figs. 15 and 17 of the paper mention an
  "other" class; Table 2 and its total have none, so lcfm has none.)

The label catalogue is a text table with one header line, comma-, tab- or
whitespace-separated (use commas or tabs when ids contain spaces, e.g. "ATO J123.4567+12.3456"):

    ATO_ID,CLASS[,RA,Dec][,period]

Accepted header names (case-insensitive): id = ATO_ID | ATOID | objid | object_id | id;
class = CLASS | label; optional RA = ra | radeg | ra_deg; Dec = dec | dedeg | dec_deg;
period = period | fp-lsper | fp_lsper. Lines starting with '#' and VizieR separator lines
("-----") are skipped. An empty class means "not classified" (label None).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from lcfm.exceptions import InputFileError
from lcfm.survey import Taxonomy

#: Raw class of Heinze et al. (2018) -> lcfm class (None: deliberately excluded, see above).
RAW_TO_CLASS: dict[str, str | None] = {
    "CBF": "CB", "CBH": "CB",
    "DBF": "DB", "DBH": "DB",
    "MIRA": "Mira",
    "PULSE": "Pulse",
    "MPULSE": None, "SINE": None, "NSINE": None, "MSINE": None,
    "LPV": None, "IRR": None,
    "dubious": None,
}

ATLAS_TAXONOMY = Taxonomy(classes=("CB", "DB", "Mira", "Pulse"), raw_to_class=RAW_TO_CLASS)

# Case-insensitive lookup: catalogues write "dubious", folder names may be "Mira" or "MIRA".
_LOOKUP = {**{k.upper(): v for k, v in RAW_TO_CLASS.items()},
           **{c.upper(): c for c in ATLAS_TAXONOMY.classes}}

_ID_NAMES = ("ato_id", "atoid", "objid", "object_id", "id")
_CLASS_NAMES = ("class", "label")
_RA_NAMES = ("ra", "radeg", "ra_deg")
_DEC_NAMES = ("dec", "dedeg", "dec_deg")
_PERIOD_NAMES = ("period", "fp-lsper", "fp_lsper")


def is_known_label(raw: str) -> bool:
    return raw.strip().upper() in _LOOKUP


def map_label(raw: str | None) -> str | None:
    """lcfm class of a raw ATLAS class (or of an already merged class name); KeyError if unknown."""
    if raw is None or not raw.strip():
        return None
    return _LOOKUP[raw.strip().upper()]


def object_key(object_id: str) -> str:
    """Matching key of an ATLAS id: "ATO J123.4567+12.3456", "ATO_J123.4567+12.3456" and
    "atoj123.4567+12.3456" are the same object (file names cannot hold the space)."""
    return re.sub(r"[\s_]+", "", object_id).upper()


@dataclass(frozen=True)
class CatalogueEntry:
    object_id: str
    raw_label: str | None
    label: str | None
    ra: float | None = None
    dec: float | None = None
    period: float | None = None


def _split(line: str, delimiter: str | None) -> list[str]:
    return [t.strip() for t in (line.split(delimiter) if delimiter else line.split())]


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _optional_float(tokens: list[str], index: int | None, path: Path, line: int,
                    name: str) -> float | None:
    if index is None or not tokens[index]:
        return None
    try:
        value = float(tokens[index])
    except ValueError:
        raise InputFileError(path, f"{name} {tokens[index]!r} is not a number", line=line) from None
    return value if math.isfinite(value) else None


def read_label_catalogue(path: str | Path) -> dict[str, CatalogueEntry]:
    """Object key (see `object_key`) -> catalogue entry. Raises InputFileError naming the file
    (and line) when it is missing, has no id/class header, or holds an unknown class."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "ATLAS label catalogue not found")
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot read the label catalogue: {exc}") from None

    entries: dict[str, CatalogueEntry] = {}
    header = None
    delimiter = None
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#") or set(stripped) <= set("- \t,"):
            continue
        if header is None:
            delimiter = "," if "," in stripped else ("\t" if "\t" in stripped else None)
            header = _split(stripped, delimiter)
            id_col, class_col = _column(header, _ID_NAMES), _column(header, _CLASS_NAMES)
            if id_col is None or class_col is None:
                raise InputFileError(path, f"label catalogue header {header} needs an id column "
                                     f"(ATO_ID) and a class column (CLASS)", line=number)
            ra_col, dec_col = _column(header, _RA_NAMES), _column(header, _DEC_NAMES)
            period_col = _column(header, _PERIOD_NAMES)
            continue
        tokens = _split(text.rstrip("\r\n"), delimiter)
        if len(tokens) != len(header):
            raise InputFileError(path, f"row has {len(tokens)} fields, header has {len(header)}",
                                 line=number)
        object_id, raw = tokens[id_col], tokens[class_col]
        if not object_id:
            raise InputFileError(path, "empty object id", line=number)
        try:
            label = map_label(raw)
        except KeyError:
            raise InputFileError(path, f"unknown ATLAS class {raw!r}; known: "
                                 f"{', '.join(RAW_TO_CLASS)}", line=number) from None
        entry = CatalogueEntry(
            object_id, raw or None, label,
            ra=_optional_float(tokens, ra_col, path, number, "RA"),
            dec=_optional_float(tokens, dec_col, path, number, "Dec"),
            period=_optional_float(tokens, period_col, path, number, "period"))
        key = object_key(object_id)
        previous = entries.get(key)
        if previous is not None and previous.raw_label != entry.raw_label:
            raise InputFileError(path, f"object {object_id!r} listed twice with classes "
                                 f"{previous.raw_label!r} and {entry.raw_label!r}", line=number)
        entries[key] = entry
    if header is None:
        raise InputFileError(path, "label catalogue is empty (no header line)")
    return entries
