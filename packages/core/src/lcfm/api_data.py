"""Light curves into canonical frames from Python (issue 13, "Must include" 1): `read` a
survey's native files in memory, or build a frame from numpy arrays, pandas, astropy or
lightkurve objects. Every function returns a validated canonical Polars frame (README, "The
canonical light curve"); `as_frame` accepts any of these inputs, which is how `lcfm.embed`,
`lcfm.predict`, the processor and the pipelines take their data.

User arrays lose their non-finite (NaN, masked) points, as the survey readers drop them, and
go through the survey's own preprocessing chain (`SurveyPlugin.preprocess`, the
papers' defaults: Astromer 2 sect. 4.1 for MACHO, ASTRAFier sect. 4.3 for TESS, ...), so a
model sees them as it saw its training data; nothing is dropped silently: with
`return_report=True` the `lcfm.report.IngestReport` counts every rejected point and light
curve with its reason, exactly as `lcfm ingest` writes it to report.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.exceptions import ConfigError, DataError
from lcfm.preprocess import drop_nonfinite
from lcfm.registry import get_survey
from lcfm.report import IngestReport
from lcfm.schema import conform, make_frame

#: column names tried, in order, for the values and uncertainties of a table
VALUE_COLUMNS = ("value", "flux", "mag", "pdcsap_flux", "sap_flux")
ERROR_COLUMNS = ("error", "flux_err", "mag_err", "pdcsap_flux_err", "sap_flux_err", "err")
#: lightkurve mission names -> lcfm survey
MISSIONS = {"kepler": "kepler", "k2": "kepler", "tess": "tess_qlp"}
_FINITE = drop_nonfinite()


def _finish(rows: list[dict], report: IngestReport, source: str, return_report: bool):
    if not rows:
        reasons = dict(report.light_curves_rejected) or "none given"
        raise DataError(f"{source}: no light curve survived preprocessing ({reasons})")
    frame = conform(make_frame(rows), source=source)
    return (frame, report) if return_report else frame


def read(path, survey: str, *, fmt: str | None = None, strict: bool = False,
         return_report: bool = False, **options):
    """The light curves of a survey's native files (a file or a folder) as a canonical
    frame, in memory: the same readers, preprocessing, rejections and de-duplication as
    `lcfm ingest` (`lcfm.ingest.read_rows`), no shards written. `options` are the survey's
    ingest options (`lcfm ingest --option key=value`). With `return_report=True`:
    (frame, `IngestReport`), whose `to_dict()` is ingest's report.json."""
    from lcfm.ingest import read_rows

    plugin = get_survey(survey)
    if options:
        plugin = plugin.with_options(**options)
    rows, report = read_rows(plugin, Path(path), fmt=fmt, strict=strict)
    return _finish(rows, report, str(path), return_report)


def _numbers(values, dtype=np.float64) -> np.ndarray:
    """A float array from numpy, lists, astropy Quantity / Masked / Time or a masked array;
    masked entries become NaN (the preprocessing then drops and counts them)."""
    if values is None:
        return None
    if hasattr(values, "jd1") and hasattr(values, "format"):  # astropy Time
        values = values.value if np.asarray(values.value).dtype.kind in "fiu" else values.mjd
    mask = None
    if hasattr(values, "unmasked") and hasattr(values, "mask"):  # astropy Masked
        mask, values = np.asarray(values.mask), values.unmasked
    elif isinstance(values, np.ma.MaskedArray):
        mask, values = np.ma.getmaskarray(values), values.data
    values = getattr(values, "value", values)  # Quantity -> its numbers
    array = np.array(values, dtype=dtype, copy=True).reshape(-1)
    if mask is not None and mask.any():
        array[mask.reshape(-1)] = np.nan
    return array


def _many(time) -> bool:
    """Several light curves: a list/tuple whose items are themselves sequences."""
    return (isinstance(time, list | tuple) and len(time) > 0
            and np.ndim(getattr(time[0], "value", time[0])) > 0)


def from_arrays(time, value, error=None, band=None, *, survey: str, object_id=None,
                label=None, meta: Mapping | None = None, value_kind: str | None = None,
                preprocess: bool = True, return_report: bool = False):
    """A canonical frame from arrays: one light curve (`time`, `value`, `error` arrays) or
    several (lists of arrays, or 2-D arrays with one light curve per row; with `object_id`,
    `band`, `label`, `meta` lists or one value for all). `band`: one name or an array per
    observation; None for a single-band survey. `error` None: zeros. `value_kind` defaults
    to the survey's ("mag" or "flux").
    `preprocess`: apply the survey's preprocessing chain (module docstring)."""
    plugin = get_survey(survey)
    if isinstance(time, np.ndarray) and time.ndim == 2:  # (light curves, observations)
        time, value = list(time), list(np.asarray(value))
        error = list(np.asarray(error)) if error is not None else None
    if not _many(time):
        time, value, error = [time], [value], [error]
        object_id, band, label, meta = [object_id], [band], [label], [meta]
    n = len(time)

    def per_curve(item):
        return list(item) if isinstance(item, list | tuple) and len(item) == n else [item] * n

    ids = per_curve(object_id)
    errors = per_curve(error) if error is not None else [None] * n
    bands, labels, metas = per_curve(band), per_curve(label), per_curve(meta)
    if len(value) != n:
        raise ConfigError(f"from_arrays: {n} time arrays but {len(value)} value arrays")
    report = IngestReport(survey=plugin.name)
    rows = []
    for i in range(n):
        t = _numbers(time[i])
        v = _numbers(value[i], np.float32)
        e = np.zeros(t.size, np.float32) if errors[i] is None else _numbers(errors[i], np.float32)
        if not (t.size == v.size == e.size):
            raise DataError(f"light curve {i}: time has {t.size} entries, value {v.size}, "
                            f"error {e.size}")
        b = bands[i]
        if b is None:
            if len(plugin.bands) != 1:
                raise ConfigError(f"survey {plugin.name!r} has bands {list(plugin.bands)}; "
                                  "give band= (one name or one per observation)")
            b = next(iter(plugin.bands))
        b = np.full(t.size, b) if isinstance(b, str) else np.asarray(b).astype(str)
        if b.size != t.size:
            raise DataError(f"light curve {i}: band has {b.size} entries, time {t.size}")
        row = plugin.row(str(ids[i] if ids[i] is not None else i), t, v, e, b,
                         label=labels[i], meta=dict(metas[i] or {}))
        if value_kind is not None:
            row["value_kind"] = value_kind
        report.read(t.size)
        if preprocess:  # NaN/masked points first, as the survey's readers drop them
            row = _FINITE(row, report)
            row = plugin.preprocess(row, report) if row is not None else None
        if row is not None:
            report.written(len(row["time"]))
            rows.append(row)
    report.files_read = 1
    return _finish(rows, report, "from_arrays", return_report)


def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str,
          required: bool = True) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise ConfigError(f"no column {wanted!r} for {what}; columns: {list(columns)}")
        return wanted
    lower = {c.lower(): c for c in columns}
    found = next((lower[c] for c in candidates if c in lower), None)
    if found is None and required:
        raise ConfigError(f"no column for {what} (tried {list(candidates)}); name it with "
                          f"{what}=...; columns: {list(columns)}")
    return found


def _from_columns(columns: Mapping, names: Sequence[str], *, survey: str, object_id, time,
                  value, error, band, label, **kwargs):
    """Long tables (one observation per row), grouped by the object id column if any."""
    time = _pick(names, time, ("time", "mjd", "btjd", "bkjd", "jd"), "time")
    value = _pick(names, value, VALUE_COLUMNS, "value")
    error = _pick(names, error, ERROR_COLUMNS, "error", required=False)
    band = _pick(names, band, ("band", "filter", "passband"), "band", required=False)
    id_column = _pick(names, object_id if object_id in names else None,
                      ("object_id", "id", "objectid", "snid", "ticid", "keplerid"),
                      "object_id", required=False)
    label_column = _pick(names, label if label in names else None, ("label", "class"),
                         "label", required=False)
    ids = (np.asarray(columns[id_column]).astype(str) if id_column
           else np.full(len(_numbers(columns[time])), str(object_id or 0)))
    unique, first = np.unique(ids, return_index=True)
    order = unique[np.argsort(first)]  # objects in first-seen order
    get = {k: c for k, c in (("time", time), ("value", value), ("error", error),
                             ("band", band)) if c}
    arrays = {k: (_numbers(columns[c]) if k != "band" else np.asarray(columns[c]).astype(str))
              for k, c in get.items()}
    labels = np.asarray(columns[label_column]).astype(object) if label_column else None
    groups = {k: [] for k in (*arrays, "object_id", "label")}
    for oid in order:
        rows = np.flatnonzero(ids == oid)
        for k, a in arrays.items():
            groups[k].append(a[rows])
        groups["object_id"].append(oid)
        groups["label"].append(labels[rows[0]] if labels is not None else label)
    return from_arrays(groups["time"], groups["value"], groups.get("error"),
                       groups.get("band"), survey=survey, object_id=groups["object_id"],
                       label=groups["label"], **kwargs)


def from_pandas(frame, *, survey: str, object_id=None, time: str | None = None,
                value: str | None = None, error: str | None = None, band: str | None = None,
                label=None, **kwargs):
    """A canonical frame from a pandas DataFrame: either one observation per row (columns
    found by name, e.g. time/flux/flux_err as lightkurve's `to_pandas()` writes them, or
    named with `time=`, `value=`, `error=`, `band=`; rows grouped by an object id column
    when there is one, `object_id` otherwise names the single object), or one light curve
    per row in the canonical layout (`canonical_frame.to_pandas()`)."""
    if "time" in frame.columns and frame["time"].dtype == object and len(frame) and (
            np.ndim(frame["time"].iloc[0]) == 1):
        return conform(pl.from_pandas(frame), source="from_pandas")
    if time is None and frame.index.name and "time" in frame.index.name.lower():
        frame = frame.reset_index()
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    return _from_columns(columns, list(map(str, frame.columns)), survey=survey,
                         object_id=object_id, time=time, value=value, error=error, band=band,
                         label=label, **kwargs)


def from_astropy(table, *, survey: str, object_id=None, time: str | None = None,
                 value: str | None = None, error: str | None = None, band: str | None = None,
                 label=None, **kwargs):
    """A canonical frame from an astropy `Table` or `TimeSeries` (one observation per row;
    columns found by name as in `from_pandas`). Times given as astropy `Time` keep their
    numeric format's values (e.g. lightkurve's BKJD/BTJD), else MJD."""
    names = list(table.colnames)
    columns = {c: table[c] for c in names}
    if object_id is None:
        meta = dict(getattr(table, "meta", {}) or {})
        object_id = next((meta[k] for k in ("OBJECT", "TICID", "KEPLERID", "object_id")
                          if meta.get(k) is not None), None)
    return _from_columns(columns, names, survey=survey, object_id=object_id, time=time,
                         value=value, error=error, band=band, label=label, **kwargs)


def _mission_survey(meta: Mapping) -> str:
    mission = str(meta.get("MISSION") or meta.get("TELESCOP") or "").lower()
    if mission in MISSIONS:
        return MISSIONS[mission]
    raise ConfigError(f"from_lightkurve: cannot tell the survey from MISSION/TELESCOP "
                      f"{mission!r}; give survey= (one of the installed surveys)")


def from_lightkurve(light_curves, *, survey: str | None = None, object_id=None, label=None,
                    **kwargs):
    """A canonical frame from a lightkurve `LightCurve` or `LightCurveCollection` (read by
    duck typing: `.time` (astropy Time), `.flux`, `.flux_err`, `.meta`; lightkurve itself
    need not be installed). One row per light curve: each quarter or sector stays its own
    row (meta `quarter`/`sector`, the survey's segment fields). The survey comes from
    `meta["MISSION"]` (Kepler/K2 -> kepler, TESS -> tess_qlp) unless given."""
    curves = [light_curves] if hasattr(light_curves, "flux") else list(light_curves)
    if not curves:
        raise DataError("from_lightkurve: an empty collection")
    metas = [dict(getattr(lc, "meta", {}) or {}) for lc in curves]
    survey = survey or _mission_survey(metas[0])
    ids, segments = [], []
    for i, meta in enumerate(metas):
        ids.append(object_id if object_id is not None else next(
            (meta[k] for k in ("TICID", "KEPLERID", "OBJECT", "LABEL") if meta.get(k)), i))
        segments.append({k.lower(): int(meta[k]) for k in ("QUARTER", "SECTOR", "CAMPAIGN")
                         if meta.get(k) is not None})
    return from_arrays([lc.time for lc in curves], [lc.flux for lc in curves],
                       [getattr(lc, "flux_err", None) for lc in curves], survey=survey,
                       object_id=[str(i) for i in ids], label=label, meta=segments,
                       value_kind="flux", **kwargs)


def as_frame(data, *, survey: str | None = None) -> pl.DataFrame:
    """Any supported input as a canonical frame: a canonical Polars frame; a dataset folder
    or Parquet file (`lcfm.shards.read_shards`); a dict of arrays (keys time, value, error,
    band, object_id, label, meta) or a list of them; a list of (N, 3) arrays of time,
    value, error (Astromer's convention); a pandas DataFrame; an astropy Table; a
    lightkurve LightCurve or collection. `survey` fills in inputs that do not name one."""
    if isinstance(data, pl.DataFrame):
        return conform(data, source="frame")
    if isinstance(data, str | Path):
        from lcfm.shards import read_shards

        return read_shards(Path(data))
    if isinstance(data, Mapping):
        data = [data]
    if hasattr(data, "flux") or (isinstance(data, Sequence) and data and hasattr(
            data[0], "flux")) or type(data).__name__ == "LightCurveCollection":
        return from_lightkurve(data, survey=survey)
    if type(data).__module__.startswith("pandas"):
        return from_pandas(data, survey=_need(survey))
    if hasattr(data, "colnames"):
        return from_astropy(data, survey=_need(survey))
    if isinstance(data, Sequence) and data and isinstance(data[0], Mapping):
        return pl.concat([_from_dict(d, survey) for d in data], how="diagonal_relaxed")
    if isinstance(data, Sequence) and data and np.ndim(data[0]) == 2:
        arrays = [np.asarray(a, np.float64) for a in data]
        if any(a.shape[1] not in (2, 3) for a in arrays):
            raise DataError("a list of arrays must hold (N, 3) arrays of time, value, error")
        return from_arrays([a[:, 0] for a in arrays], [a[:, 1] for a in arrays],
                           [a[:, 2] if a.shape[1] == 3 else None for a in arrays],
                           survey=_need(survey))
    raise DataError(f"cannot read light curves from a {type(data).__name__}; give a canonical "
                    "frame, a dataset folder, a dict or list of dicts of arrays, (N, 3) arrays, "
                    "a pandas DataFrame, an astropy Table or a lightkurve LightCurve")


def _need(survey: str | None) -> str:
    if survey is None:
        raise ConfigError("these light curves do not say their survey; give survey=...")
    return survey


def _from_dict(item: Mapping, survey: str | None) -> pl.DataFrame:
    known = {"time", "value", "error", "band", "object_id", "label", "meta", "survey",
             "value_kind"}
    unknown = sorted(set(item) - known)
    if unknown or "time" not in item or "value" not in item:
        raise DataError(f"a light-curve dict needs keys time and value (optional: error, band, "
                        f"object_id, label, meta, survey); found {sorted(item)}")
    return from_arrays(item["time"], item["value"], item.get("error"), item.get("band"),
                       survey=_need(item.get("survey") or survey),
                       object_id=item.get("object_id"), label=item.get("label"),
                       meta=item.get("meta"), value_kind=item.get("value_kind"))
