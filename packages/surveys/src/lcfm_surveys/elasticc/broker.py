"""Truth and merging of ELAsTiCC broker exports (issue 9, item 5).

Broker exports of the ELAsTiCC alert stream are Parquet files of LSST alerts in which one
object's alerts are spread over many files, often in Hive-partitioned folders such as
`classId=121/part-0.parquet`, with the simulation truth as top-level columns. "Alerts of
one object across files are merged into one light curve before de-duplication; truth is
read from GENTYPE / SNTYPE / classId columns and from Hive partition folders (`classId=121`)
and mapped to the 20-class scheme."

Truth sources, matched case-insensitively, as columns of the alert table or as `key=value`
folder names anywhere in the file's path (values URL-decoded, Hive's null partition
ignored):

* SNANA type numbers -- SIM_TYPE_INDEX, SIM_GENTYPE, TRUE_GENTYPE, GENTYPE, SNTYPE (the
  first positive one): read in the survey's code scheme (taxonomy.py), they also set
  meta["gentype"];
* ELAsTiCC broker class ids -- classId, class_id, true_class_id (111 Ia ... 221 AGN and
  the 2023 four-digit ids);
* class or model names -- truth, true_class, class_name, model_name, sim_model_name
  ("Ia", "SNIa-SALT2", "KN_K17"; an integer here is read as a class id when it is one,
  else as a SNANA type number).

Every source that maps to a class must agree: a file under `classId=121/` whose GENTYPE
says SN Ia, or an object whose alerts carry two GENTYPEs, is an error naming the file.
Unknown codes leave the object unlabeled (raw code kept in meta["raw_class"]), as for
SNANA files.

Merging (`merge_alert_rows`, the plugin's `merge_rows`): the rows that one object's alerts
give in different files become one light curve before preprocessing. Points are sorted by
time; one exposure seen in two files (same band, same epoch to the second, as the reader
matches detections and forced photometry) is kept once, from the earlier-read file, and
the other copy is counted as "observation repeated in another alert file". meta keeps the
earliest first alert (alert_mjd: the 30-day window starts from the object's first alert
in any file), the latest detection, the position and host features of the piece with the
latest detection, and the truth. Pieces whose truth disagrees leave the object unlabeled,
with every class named in meta["raw_class"] ("conflict: Ia | KN"), rather than guess.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.registry import lazy_import
from lcfm.report import IngestReport

from lcfm_surveys.elasticc.taxonomy import CLASS_IDS, MODEL_TO_CLASS, TAXONOMY, class_of_code

pl = lazy_import("polars")  # on first use: keeps plugin discovery light

GENTYPE_KEYS = ("sim_type_index", "sim_gentype", "true_gentype", "gentype", "sntype")
CLASS_ID_KEYS = ("classid", "class_id", "true_class_id")
NAME_KEYS = ("truth", "true_class", "class_name", "model_name", "sim_model_name")
#: lower-case key -> kind of truth, in priority order
TRUTH_KEYS = {**dict.fromkeys(GENTYPE_KEYS, "gentype"), **dict.fromkeys(CLASS_ID_KEYS, "class_id"),
              **dict.fromkeys(NAME_KEYS, "name")}
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
REPEATED_ACROSS_FILES = "observation repeated in another alert file"


class Truth(NamedTuple):
    """The truth of one object: class (None: unknown or outside the 20 classes), the raw
    value as meta["raw_class"] keeps it, and the SNANA type number (-1: none given)."""

    label: str | None = None
    raw: str = ""
    gentype: int = -1


NO_TRUTH = Truth()


def truth_columns(names) -> list[str]:
    """The truth columns among `names`, in priority order (GENTYPE before classId)."""
    lower = {str(n).lower(): n for n in names}
    return [lower[k] for k in TRUTH_KEYS if k in lower]


def hive_sources(path: Path) -> list[tuple[str, str, str]]:
    """(key as written, kind, value) of the truth partitions in `path`'s folders."""
    found = []
    for part in Path(path).parent.parts:
        key, sep, value = part.partition("=")
        value = unquote(value).strip()
        if sep and key.lower() in TRUTH_KEYS and value and value != _HIVE_NULL:
            found.append((f"folder {part}", TRUTH_KEYS[key.lower()], value))
    return found


def _integer(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def resolve(kind: str, value: str, scheme: str, where: str, path: Path) -> Truth | None:
    """The truth one source gives; None when it says nothing (a non-positive SNTYPE)."""
    code = _integer(value)
    if kind == "name" and code is not None:
        kind = "class_id" if code in CLASS_IDS else "gentype"
    if kind == "gentype":
        if code is None:
            raise InputFileError(path, f"{where}: type number {value!r} is not an integer")
        if code <= 0:  # SNANA writes 0 / -9 for "no type"
            return None
        label, raw = class_of_code(code, scheme)
        return Truth(label, raw, code)
    if kind == "class_id":
        if code is None:
            raise InputFileError(path, f"{where}: class id {value!r} is not an integer")
        return Truth(CLASS_IDS.get(code), f"classId:{code}")
    try:
        return Truth(TAXONOMY.map(value), value)
    except KeyError:  # names are matched case-insensitively ("kn", "snia-salt2")
        names = {**{c.lower(): c for c in TAXONOMY.classes},
                 **{m.lower(): MODEL_TO_CLASS[m] for m in MODEL_TO_CLASS}}
        return Truth(names.get(value.lower()), value)


def combine(truths: list[tuple[str, Truth]], path: Path, what: str) -> Truth:
    """One truth from several sources that must agree on the class."""
    said = [(where, t) for where, t in truths if t is not None]
    if not said:
        return NO_TRUTH
    classes = {t.label for _, t in said if t.label is not None}
    if len(classes) > 1:
        listing = "; ".join(f"{where} = {t.raw} ({t.label})" for where, t in said)
        raise InputFileError(path, f"{what}: truth sources disagree ({listing})")
    label = classes.pop() if classes else None
    gentype = next((t.gentype for _, t in said if t.gentype > 0), -1)
    return Truth(label, said[0][1].raw, gentype)


def object_truths(frame: pl.DataFrame, columns: list[str], path: Path,
                  scheme: str) -> dict[str, Truth]:
    """Object id (column `_obj`) -> its truth, from the truth `columns` of `frame` and
    the file's Hive folders. A column with two values for one object is an error."""
    folders = [(where, resolve(kind, value, scheme, where, path))
               for where, kind, value in hive_sources(path)]
    if not columns and not folders:
        return {}
    values = {}
    if columns:
        grouped = frame.group_by("_obj", maintain_order=True).agg(
            pl.col(c).cast(pl.String).str.strip_chars().drop_nulls().unique(maintain_order=True)
            .alias(c) for c in columns)
        for record in grouped.iter_rows(named=True):
            values[record["_obj"]] = record
    result = {}
    for obj in frame["_obj"].unique(maintain_order=True).to_list():
        record = values.get(obj, {})
        sources = []
        for column in columns:
            # a float column's NaN is a missing value, as an empty string is
            distinct = [v for v in record.get(column, []) if v.lower() not in ("", "nan")]
            if len(distinct) > 1:
                raise InputFileError(path, f"object {obj}: column {column} has values "
                                     f"{distinct} in different alerts")
            if distinct:
                where = f"column {column}"
                sources.append((where, resolve(TRUTH_KEYS[column.lower()], distinct[0],
                                               scheme, where, path)))
        result[obj] = combine(sources + folders, path, f"object {obj}")
    return result


def scheme_for(path: Path, option: str) -> str:
    """The code scheme of a file: the option, or "auto" -> plasticc when the file is named
    so (its name only, as for SNANA files: a user's folder names say nothing)."""
    if option != "auto":
        return option
    return "plasticc" if "PLASTICC" in Path(path).name.upper() else "elasticc"


# ---- merging the pieces of one object -----------------------------------------------------
def merge_alert_rows(rows: list[dict], report: IngestReport) -> dict:
    """One light curve from the rows of one object read from several alert files (see the
    module docstring); rows come in reading order."""
    time = np.concatenate([np.asarray(r["time"], np.float64) for r in rows])
    value = np.concatenate([np.asarray(r["value"], np.float32) for r in rows])
    error = np.concatenate([np.asarray(r["error"], np.float32) for r in rows])
    band = np.concatenate([np.asarray(r["band"]).astype(str) for r in rows])
    second = np.round(time * 86400.0).astype(np.int64)
    # stable on reading order, so the copy of the earlier-read file comes first
    order = np.lexsort((np.arange(time.size), band, second))
    repeat = np.zeros(order.size, dtype=bool)
    repeat[1:] = ((second[order][1:] == second[order][:-1])
                  & (band[order][1:] == band[order][:-1]))
    report.reject_points(REPEATED_ACROSS_FILES, int(repeat.sum()))
    keep = order[~repeat]
    keep = keep[np.argsort(time[keep], kind="stable")]
    return {**rows[0], "time": time[keep], "value": value[keep], "error": error[keep],
            "band": band[keep], **_merged_truth(rows), "meta": _merged_meta(rows)}


def _merged_truth(rows) -> dict:
    labels = list(dict.fromkeys(r["label"] for r in rows if r.get("label") is not None))
    return {"label": labels[0] if len(labels) == 1 else None}


def _merged_meta(rows) -> dict:
    metas = [dict(r.get("meta") or {}) for r in rows]

    def number(meta, key):
        value = meta.get(key)
        return float(value) if value is not None and math.isfinite(float(value)) else math.nan

    latest = max(range(len(metas)), key=lambda i: (np.nan_to_num(
        number(metas[i], "last_detection_mjd"), nan=-np.inf), -i))
    meta = dict(metas[latest])
    for other in metas:  # fill what the latest piece lacks
        for key, value in other.items():
            current = meta.get(key)
            if current is None or (isinstance(current, float) and math.isnan(current)):
                meta[key] = value
    alerts = [number(m, "alert_mjd") for m in metas]
    detections = [number(m, "last_detection_mjd") for m in metas]
    meta["alert_mjd"] = min((a for a in alerts if not math.isnan(a)), default=math.nan)
    meta["last_detection_mjd"] = max((d for d in detections if not math.isnan(d)),
                                     default=math.nan)
    labels = list(dict.fromkeys(r["label"] for r in rows if r.get("label") is not None))
    # the most specific truth first: a SNANA type number names the simulation model
    ranked = sorted(metas, key=lambda m: int(m.get("gentype", -1)) <= 0)
    raws = list(dict.fromkeys(m.get("raw_class") for m in ranked if m.get("raw_class")))
    gentypes = [int(m.get("gentype", -1)) for m in metas if int(m.get("gentype", -1)) > 0]
    if len(labels) > 1:
        meta["raw_class"] = "conflict: " + " | ".join(labels)
        meta["gentype"] = -1
    else:
        meta["raw_class"] = raws[0] if raws else ""
        meta["gentype"] = gentypes[0] if gentypes else -1
    return meta
