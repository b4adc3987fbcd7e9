"""MACHO bands, class taxonomy and the names of every rejection reason.

Bands. MACHO imaged every field in two passbands at once through a dichroic beam splitter:
a blue channel of about 440-590 nm and a red channel of about 590-780 nm (VizieR catalogue
II/247 description of the MACHO project; Alcock et al. 1999, PASP 111, 1539, "Calibration of
the MACHO Photometry Database"). Other descriptions quote 4500-6300 A and 6300-7600 A; either
way the effective wavelengths are about 5200 A (blue, "B") and 7000 A (red, "R"), the values
lcfm publishes so models can encode bands by wavelength across surveys.

Taxonomy. The labeled set used by Astromer 2 (paper 001, sect. 4.2.1, Table 1) is the Alcock
et al. variable-star catalogue reduced to six classes: Cep_0, Cep_1, EC, LPV, RRab, RRc. The
MACHO archive labels stars with 11 numeric codes (MACHO_ARCHIVE_FORMAT.txt). They map as:

    1 RR Lyrae ab            -> RRab
    2 RR Lyrae c             -> RRc
    3 RR Lyrae e             -> None  (double-mode RR Lyrae; the six-class Alcock set used by
                                       Astromer lists no such class, so it is not merged into
                                       RRab or RRc)
    4 Cepheid fundamental    -> Cep_0
    5 Cepheid 1st overtone   -> Cep_1
    6-9 LPV Wood A/B/C/D     -> LPV   (Astromer's LPV class groups all Wood sequences)
    10 eclipsing binary      -> EC
    11 RR Lyrae + GB blend   -> None  (a blend, not a clean class)

A light curve whose code maps to None keeps its data (useful for pretraining) with
`label = None`; its raw code stays in `meta["raw_class"]`.
"""

from __future__ import annotations

from lcfm.survey import Taxonomy

SURVEY_NAME = "macho"

#: band -> effective wavelength in Angstrom (see module docstring for the sources)
BANDS: dict[str, float] = {"B": 5200.0, "R": 7000.0}

#: the six Alcock classes of Astromer 2 (paper 001, sect. 4.2.1)
CLASSES: tuple[str, ...] = ("Cep_0", "Cep_1", "EC", "LPV", "RRab", "RRc")

#: MACHO archive class code (as a string) -> lcfm class, or None when deliberately excluded
RAW_CODE_TO_CLASS: dict[str, str | None] = {
    "1": "RRab",
    "2": "RRc",
    "3": None,
    "4": "Cep_0",
    "5": "Cep_1",
    "6": "LPV",
    "7": "LPV",
    "8": "LPV",
    "9": "LPV",
    "10": "EC",
    "11": None,
}

TAXONOMY = Taxonomy(classes=CLASSES, raw_to_class=RAW_CODE_TO_CLASS)

#: the MACHO products' "no measurement" value for a magnitude or its error
SENTINEL = -99.0

# Rejection reasons, shared by every reader so the ingest report adds them up.
REASON_SENTINEL = "missing magnitude or error (-99 sentinel)"
REASON_BLANK = "missing magnitude or error (blank field)"
REASON_EMPTY = "empty light curve"  # same wording as lcfm.preprocess.min_points

#: keys of `meta`, identical for every row whatever the input format, so shards concatenate
META_KEYS: tuple[str, ...] = (
    "field", "tile", "seq", "ra", "dec", "raw_class", "mean_mag", "median_mag",
    "mean_b_minus_r", "median_b_minus_r", "format",
)


def normalise_code(raw) -> str | None:
    """A class code as the string key of RAW_CODE_TO_CLASS ("2.0" -> "2"); None if blank."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text
