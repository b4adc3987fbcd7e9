"""The 20-class ELAsTiCC scheme of ATAT and ATCAT, and every raw label that maps onto it.

ATCAT (paper 003, sect. 2.1.1) uses "the same 20-way classification scheme as ATAT, by
combining some of the original 32 classes" (class list: paper 003, Table 2). The scheme's
names are the leaves of the ELAsTiCC broker taxonomy. Raw labels come in four kinds:

* ELAsTiCC simulation model names (the training-set folders ELASTICC_TRAIN_<model>),
  grouped as ATAT groups them (its `fine_class_grouping_e1`): e.g. SNIa-SALT2 -> Ia,
  SNIIb+HostXT_V19 -> SN-like/Other, the three uLens models -> uLens. ELAsTiCC2 renamed a
  few models (SNIa-SALT3, CLAGN, three PISN models) which map the same way.
* SNANA model numbers (GENTYPE, SIM_TYPE_INDEX) of ELAsTiCC, from the ELAsTiCC
  repository's `elasticc_origmap.txt` (10 SNIa-SALT2, 11 SNIa-91bg, ..., 90 Cepheid,
  91 d-Sct). SNANA writes SNTYPE = GENTYPE + 100 for objects without a spectroscopic
  type, so 1xx codes are accepted too.
* PLAsTiCC class numbers (90 SNIa, 67 SNIa-91bg, 52 SNIax, ...), which SNANA files of
  PLAsTiCC-era simulations carry in SNTYPE. They clash with ELAsTiCC's model numbers
  (90 is a Cepheid in ELAsTiCC), so the reader must know which scheme a file uses.
* ELAsTiCC broker class ids: the three-digit ids of the original taxonomy (111 Ia ...
  221 AGN) and the four-digit ids of its 2023 revision (2222 Ia ... 2332 AGN).

Raw classes with no counterpart among the 20 classes (non-flaring M dwarfs, LPV/Mira,
strongly lensed supernovae) map to None: such objects are kept, unlabeled.
"""

from __future__ import annotations

import re

from lcfm.survey import Taxonomy

#: the 20 classes, in the order of the ELAsTiCC taxonomy tree (SN-like, fast, long,
#: periodic, non-periodic)
CLASSES: tuple[str, ...] = (
    "Ia", "Ib/c", "II", "Iax", "91bg", "SN-like/Other",
    "KN", "M-dwarf Flare", "Dwarf Novae", "uLens",
    "SLSN", "TDE", "ILOT", "CART", "PISN",
    "Cepheid", "RR Lyrae", "Delta Scuti", "EB",
    "AGN",
)

#: ELAsTiCC simulation model name -> class (ATAT's grouping, plus ELAsTiCC2 renames)
MODEL_TO_CLASS: dict[str, str | None] = {
    "SNIa-SALT2": "Ia", "SNIa-SALT3": "Ia", "SNIa-91bg": "91bg", "SNIax": "Iax",
    "SNIb-Templates": "Ib/c", "SNIb+HostXT_V19": "Ib/c", "SNIc-Templates": "Ib/c",
    "SNIc+HostXT_V19": "Ib/c", "SNIcBL+HostXT_V19": "Ib/c",
    "SNII-NMF": "II", "SNII-Templates": "II", "SNII+HostXT_V19": "II",
    "SNIIn-MOSFIT": "II", "SNIIn+HostXT_V19": "II",
    "SNIIb+HostXT_V19": "SN-like/Other",
    "SLSN-I+host": "SLSN", "SLSN-I_no_host": "SLSN", "SLSN-I": "SLSN",
    "TDE": "TDE", "ILOT": "ILOT", "CART": "CART",
    "KN_K17": "KN", "KN_B19": "KN",
    "PISN": "PISN", "PISN-MOSFIT": "PISN", "PISN-STELLA-HECORE": "PISN",
    "PISN-STELLA-HYDROGENIC": "PISN", "PISN-STELLA_HECORE": "PISN",
    "PISN-STELLA_HYDROGENIC": "PISN",
    "AGN": "AGN", "CLAGN": "AGN",
    "RRL": "RR Lyrae", "Mdwarf-flare": "M-dwarf Flare", "EB": "EB",
    "dwarf-nova": "Dwarf Novae",
    "uLens-Single_PyLIMA": "uLens", "uLens-Single-GenLens": "uLens", "uLens-Binary": "uLens",
    "Cepheid": "Cepheid", "d-Sct": "Delta Scuti", "dSct": "Delta Scuti",
    # no counterpart in the 20-class scheme: kept unlabeled
    "Mdwarf": None, "MIRA": None,
    "SL-SNIa": None, "SL-SNII+HostXT_V19": None, "SL-SNIb+HostXT_V19": None,
    "SL-SNIc+HostXT_V19": None,
}

#: ELAsTiCC SNANA model number (TRUE_GENTYPE) -> model name (elasticc_origmap.txt)
ELASTICC_GENTYPES: dict[int, str] = {
    10: "SNIa-SALT2", 11: "SNIa-91bg", 12: "SNIax",
    20: "SNIb-Templates", 21: "SNIb+HostXT_V19", 25: "SNIc-Templates",
    26: "SNIc+HostXT_V19", 27: "SNIcBL+HostXT_V19",
    30: "SNII-NMF", 31: "SNII-Templates", 32: "SNII+HostXT_V19", 35: "SNIIn-MOSFIT",
    36: "SNIIn+HostXT_V19", 37: "SNIIb+HostXT_V19",
    40: "SLSN-I", 42: "TDE", 45: "ILOT", 46: "CART",
    50: "KN_K17", 51: "KN_B19", 57: "PISN-STELLA-HECORE", 58: "PISN-STELLA-HYDROGENIC",
    59: "PISN-MOSFIT", 60: "AGN",
    71: "SL-SNIa", 72: "SL-SNII+HostXT_V19", 73: "SL-SNIb+HostXT_V19",
    74: "SL-SNIc+HostXT_V19",
    80: "RRL", 81: "Mdwarf", 82: "Mdwarf-flare", 83: "EB", 84: "dwarf-nova",
    87: "uLens-Single_PyLIMA", 88: "uLens-Single-GenLens", 89: "uLens-Binary",
    90: "Cepheid", 91: "d-Sct",
}

#: PLAsTiCC class number -> class (PLAsTiCC: 90 SNIa ... 995 uLens by cosmic strings)
PLASTICC_CODES: dict[int, str | None] = {
    90: "Ia", 67: "91bg", 52: "Iax", 42: "II", 62: "Ib/c", 95: "SLSN", 15: "TDE",
    64: "KN", 88: "AGN", 92: "RR Lyrae", 65: "M-dwarf Flare", 16: "EB", 6: "uLens",
    991: "uLens", 992: "ILOT", 993: "CART", 994: "PISN",
    53: None,  # Mira
    995: None,  # microlensing by cosmic strings: not simulated in ELAsTiCC
}

#: ELAsTiCC broker class id -> class (original three-digit ids and 2023 four-digit ids)
CLASS_IDS: dict[int, str | None] = {
    110: "SN-like/Other", 111: "Ia", 112: "Ib/c", 113: "II", 114: "Iax", 115: "91bg",
    121: "KN", 122: "M-dwarf Flare", 123: "Dwarf Novae", 124: "uLens",
    131: "SLSN", 132: "TDE", 133: "ILOT", 134: "CART", 135: "PISN",
    211: "Cepheid", 212: "RR Lyrae", 213: "Delta Scuti", 214: "EB", 215: None,
    221: "AGN",
    2221: "SN-like/Other", 2222: "Ia", 2223: "Ib/c", 2224: "II", 2225: "Iax", 2226: "91bg",
    2232: "KN", 2233: "M-dwarf Flare", 2234: "Dwarf Novae", 2235: "uLens",
    2242: "SLSN", 2243: "TDE", 2244: "ILOT", 2245: "CART", 2246: "PISN",
    2322: "Cepheid", 2323: "RR Lyrae", 2324: "Delta Scuti", 2325: "EB", 2326: None,
    2332: "AGN",
}

CODE_SCHEMES = ("auto", "elasticc", "plasticc")

TAXONOMY = Taxonomy(
    classes=CLASSES,
    raw_to_class={**MODEL_TO_CLASS, **{str(k): v for k, v in CLASS_IDS.items()}},
)

# longest names first, so "SNII+HostXT_V19" wins over a shorter name it contains
_MODEL_PATTERNS = [
    (name, re.compile(r"(?<![A-Za-z0-9])" + re.escape(name) + r"(?![A-Za-z0-9])"))
    for name in sorted(MODEL_TO_CLASS, key=len, reverse=True)
]


def model_name_in(text: str) -> str | None:
    """The ELAsTiCC model name written in `text` (a SNANA VERSION keyword such as
    "..._MODEL90_SNIa-SALT2_FULL_..."), or None."""
    for name, pattern in _MODEL_PATTERNS:
        if pattern.search(text or ""):
            return name
    return None


def model_name_of_folder(folder: str) -> str | None:
    """The model of an ELAsTiCC training-set folder ("ELASTICC_TRAIN_SNIa-SALT2",
    "ELASTICC2_TRAIN_02_KN_K17"); None for any other folder name, so a user's own folder
    called e.g. "AGN" is not taken as a label."""
    if not folder.upper().startswith("ELASTICC"):
        return None
    for name, _ in _MODEL_PATTERNS:
        if folder.endswith("_" + name):
            return name
    return None


def class_of_code(code: int, scheme: str) -> tuple[str | None, str]:
    """(class or None, raw label) for a SNANA type number in `scheme` ("elasticc" or
    "plasticc"). Unknown numbers (0, -9, ...) give (None, str(code))."""
    if scheme == "plasticc":
        return PLASTICC_CODES.get(code), f"plasticc:{code}"
    for candidate in (code, code - 100):  # SNTYPE = GENTYPE + 100 without a spectrum
        if candidate in ELASTICC_GENTYPES:
            model = ELASTICC_GENTYPES[candidate]
            return MODEL_TO_CLASS[model], model
    return None, f"elasticc:{code}"
