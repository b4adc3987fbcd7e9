"""ELAsTiCC alerts in the LSST alert schema, stored as Parquet (one row per alert).

Each alert holds one detection (`diaSource`), the object's earlier detections
(`prvDiaSources`), its forced photometry (`prvDiaForcedSources`, up to 30 days before the
first detection) and the object (`diaObject`: position, MW E(B-V), redshift, host galaxies).
Every alert of an object repeats the earlier ones, so the reader merges all alerts of a
`diaObjectId` in the file into one light curve, each measurement once:

* detections are de-duplicated by diaSourceId, forced photometry by diaForcedSourceId;
* a forced measurement at the epoch (to the second) and band of a detection is the same
  observation measured twice: the detection is kept.

Both ELAsTiCC layouts are read: the broker-template sample and the Fink export (they differ
in the diaObject fields and in nullability), and the later LSST spellings midpointMjdTai,
band, psfFlux/psfFluxErr and dec for midPointTai, filterName, psFlux/psFluxErr and decl.
Time is the TAI MJD of the exposure midpoint; value is psFlux with its error.

Accounting: every detection and forced-photometry record of every alert is a point read;
repeats and detection duplicates are rejected with their reason, so
written + rejected == read. One light curve is read per diaObjectId and file. The first
alert of an object (meta["alert_mjd"]) is its earliest detection.

Broker exports (broker.py): an object's alerts may be spread over many files. The reader
declares `duplicates = "merge"`, so ingest gathers the rows of one diaObjectId from every
file and the plugin's `merge_rows` makes them one light curve before preprocessing
(repeated exposures counted once, the earliest alert kept for the 30-day window). Truth
comes from top-level columns (GENTYPE, SNTYPE, SIM_TYPE_INDEX, classId, class_id, truth,
...) and from Hive partition folders in the file's path (`classId=121/part-0.parquet`),
mapped onto the 20-class scheme; a SNANA type number also sets meta["gentype"]. Alerts
without truth stay unlabeled (label None, gentype -1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lcfm.exceptions import InputFileError
from lcfm.registry import lazy_import
from lcfm.report import IngestReport
from lcfm.survey import Reader, Row

from lcfm_surveys.elasticc.bands import normalize_bands
from lcfm_surveys.elasticc.broker import NO_TRUTH, object_truths, scheme_for, truth_columns
from lcfm_surveys.elasticc.metadata import alert_feature_name, feature_columns, object_meta

pl = lazy_import("polars")  # on first use: keeps plugin discovery light

#: canonical field -> accepted spellings, first found wins
_SOURCE_FIELDS = {
    "time": ("midPointTai", "midpointMjdTai"),
    "band": ("filterName", "band"),
    "flux": ("psFlux", "psfFlux"),
    "error": ("psFluxErr", "psfFluxErr"),
}
_REPEATED_SOURCE = "diaSource repeated in another alert"
_REPEATED_FORCED = "diaForcedSource repeated in another alert"
_FORCED_AT_DETECTION = "forced photometry at a detection's epoch and band"
_FORCED_OFF = "forced photometry not used (include_forced=false)"
_UNKNOWN_BAND = "band not one of LSST ugrizY"


def _struct_fields(dtype) -> list[str] | None:
    if isinstance(dtype, pl.List):
        dtype = dtype.inner
    return [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else None


def _resolve(path: Path, column: str, fields: list[str], id_field: str) -> dict[str, str]:
    """canonical name -> field name inside `column`, or InputFileError naming what lacks."""
    found = {"id": id_field} if id_field in fields else {}
    for name, spellings in _SOURCE_FIELDS.items():
        hit = next((s for s in spellings if s in fields), None)
        if hit:
            found[name] = hit
    missing = [id_field] if "id" not in found else []
    missing += ["/".join(s) for n, s in _SOURCE_FIELDS.items() if n not in found]
    if missing:
        raise InputFileError(path, f"{column} lacks field(s) {missing}; it has {fields}")
    return found


def _measurements(frame: pl.DataFrame, column: str, fields: dict[str, str],
                  listed: bool) -> pl.DataFrame:
    """obj, id, time, band, flux, error of every record in `column` (a struct, or a list
    of structs exploded), tagged with the alert's object id."""
    data = frame.select("_obj", pl.col(column).alias("_m"))
    if listed:
        data = data.explode("_m").filter(pl.col("_m").is_not_null())
    return data.select(
        pl.col("_obj"),
        *(pl.col("_m").struct.field(f).alias(name) for name, f in fields.items()),
    ).with_columns(
        pl.col("time").cast(pl.Float64),
        pl.col("flux").cast(pl.Float32).fill_null(float("nan")),
        pl.col("error").cast(pl.Float32).fill_null(float("nan")),
        pl.col("band").cast(pl.String).fill_null(""),
    )


class AlertParquetReader(Reader):
    name = "alert_parquet"
    description = "LSST/ELAsTiCC alerts as Parquet (diaSource, prvDiaSources, " \
                  "prvDiaForcedSources, diaObject)"
    patterns = ("*.parquet",)
    # one object's alerts may sit in several files of a broker export: merge them
    duplicates = "merge"

    def read(self, path: Path, report: IngestReport) -> Iterator[Row]:
        path = Path(path)
        try:
            schema = dict(pl.read_parquet_schema(path))
        except FileNotFoundError:
            raise InputFileError(path, "no such file") from None
        except Exception as exc:
            raise InputFileError(path, f"unreadable or truncated Parquet file "
                                 f"({_one_line(exc)})") from None
        source_fields = _struct_fields(schema["diaSource"]) if "diaSource" in schema else None
        if source_fields is None:
            raise InputFileError(path, "no diaSource struct column: not an LSST alert Parquet "
                                 f"file (columns: {list(schema)[:10]})")
        source = _resolve(path, "diaSource", source_fields, "diaSourceId")
        columns = ["diaSource"]
        listed = {}
        for column, id_field in (("prvDiaSources", "diaSourceId"),
                                 ("prvDiaForcedSources", "diaForcedSourceId")):
            fields = _struct_fields(schema[column]) if column in schema else None
            if fields is not None:
                listed[column] = _resolve(path, column, fields, id_field)
                columns.append(column)
        object_fields = _struct_fields(schema.get("diaObject", pl.Null())) or []
        if object_fields:
            columns.append("diaObject")
        truths = truth_columns(schema)
        for column in truths:
            dtype = schema[column]
            if not (dtype.is_numeric() or dtype == pl.String or dtype == pl.Null):
                raise InputFileError(path, f"truth column {column} holds {dtype}, not a "
                                     "number or a class name")
        try:
            # the path's key=value folders are read as truth below, never as columns
            frame = pl.read_parquet(path, columns=columns + truths, hive_partitioning=False)
        except Exception as exc:
            raise InputFileError(path, f"unreadable or truncated Parquet file "
                                 f"({_one_line(exc)})") from None
        object_id = pl.col("diaSource").struct.field("diaObjectId") \
            if "diaObjectId" in source_fields else pl.lit(None, dtype=pl.Int64)
        if "diaObjectId" in object_fields:
            object_id = pl.coalesce(pl.col("diaObject").struct.field("diaObjectId"), object_id)
        frame = frame.with_columns(object_id.cast(pl.String).alias("_obj"))
        if frame["_obj"].null_count():
            row = int(frame["_obj"].is_null().arg_true()[0])
            raise InputFileError(path, f"alert row {row} has no diaObjectId (neither in "
                                 "diaObject nor in diaSource)")
        truth = object_truths(frame, truths, path,
                              scheme_for(path, self.survey.opts["code_scheme"]))
        yield from self._light_curves(frame, source, listed, object_fields, truth, report)

    def _light_curves(self, frame, source, listed, object_fields, truth,
                      report) -> Iterator[Row]:
        include_forced = self.survey.opts["include_forced"]
        sources = [_measurements(frame, "diaSource", source, listed=False)]
        if "prvDiaSources" in listed:
            sources.append(_measurements(frame, "prvDiaSources", listed["prvDiaSources"],
                                         listed=True))
        sources = pl.concat(sources)
        forced = (_measurements(frame, "prvDiaForcedSources", listed["prvDiaForcedSources"],
                                listed=True) if "prvDiaForcedSources" in listed
                  else sources.clear())
        unique_sources = _unique_records(sources)
        unique_forced = _unique_records(forced)
        # (object, time to the second, band) identifies an observation
        second = (pl.col("time") * 86400.0).round().cast(pl.Int64).alias("_sec")
        kept_forced = unique_forced.with_columns(second).join(
            unique_sources.with_columns(second).select("_obj", "_sec", "band").unique(),
            on=["_obj", "_sec", "band"], how="anti").drop("_sec")
        if not include_forced:
            kept_forced = kept_forced.clear()
        counts = (
            sources.group_by("_obj").len("n_src")
            .join(unique_sources.group_by("_obj").agg(
                pl.len().alias("n_src_unique"),
                pl.col("time").min().alias("alert_mjd"),
                pl.col("time").max().alias("last_detection_mjd")), on="_obj", how="left")
            .join(forced.group_by("_obj").len("n_forced"), on="_obj", how="left")
            .join(unique_forced.group_by("_obj").len("n_forced_unique"), on="_obj", how="left")
            .join(kept_forced.group_by("_obj").len("n_forced_kept"), on="_obj", how="left")
            .fill_null(0)
        )
        points = pl.concat([unique_sources, kept_forced]).sort(["_obj", "time"])
        metas = self._object_meta(frame, object_fields)

        obj = points["_obj"].to_numpy()
        time = points["time"].to_numpy()
        flux = points["flux"].to_numpy()
        error = points["error"].to_numpy()
        band = normalize_bands(points["band"].to_numpy())
        # points are sorted by object: each object's points are one contiguous block
        starts = dict(zip(*np.unique(obj, return_index=True), strict=False))
        from_end = dict(zip(*np.unique(obj[::-1], return_index=True), strict=False))
        for c in counts.sort(["alert_mjd", "_obj"]).iter_rows(named=True):
            key = c["_obj"]
            report.read(c["n_src"] + c["n_forced"])
            report.reject_points(_REPEATED_SOURCE, c["n_src"] - c["n_src_unique"])
            report.reject_points(_REPEATED_FORCED, c["n_forced"] - c["n_forced_unique"])
            if include_forced:
                report.reject_points(_FORCED_AT_DETECTION,
                                     c["n_forced_unique"] - c["n_forced_kept"])
            else:
                report.reject_points(_FORCED_OFF, c["n_forced_unique"])
            lo, hi = (starts[key], obj.size - from_end[key]) if key in starts else (0, 0)
            b = band[lo:hi]
            known = b != ""
            report.reject_points(_UNKNOWN_BAND, int((~known).sum()))
            found = metas.get(key, {})
            said = truth.get(key, NO_TRUTH)
            meta = object_meta(
                ra=found.get("ra"), dec=found.get("dec"), alert_mjd=c["alert_mjd"],
                last_detection_mjd=c["last_detection_mjd"], raw_class=said.raw,
                gentype=said.gentype, flux_unit="psFlux", features=found.get("features", {}),
            )
            yield {
                "object_id": key,
                "survey": self.survey.name,
                "time": time[lo:hi][known],
                "value": flux[lo:hi][known].astype(np.float32),
                "error": error[lo:hi][known].astype(np.float32),
                "band": b[known],
                "value_kind": "flux",
                "label": said.label,
                "meta": meta,
            }

    @staticmethod
    def _object_meta(frame: pl.DataFrame, object_fields: list[str]) -> dict[str, dict]:
        """obj -> {ra, dec, features} from the diaObject of the object's latest alert."""
        if not object_fields:
            return {}
        latest = (frame.with_columns(pl.col("diaSource").struct.field(
            _first(frame, "diaSource", _SOURCE_FIELDS["time"])).alias("_t"))
            .sort("_t").unique("_obj", keep="last")
            .select("_obj", pl.col("diaObject").struct.unnest()))
        features = feature_columns(latest.columns, alert_feature_name)
        dec = "decl" if "decl" in latest.columns else "dec" if "dec" in latest.columns else None
        result = {}
        for record in latest.iter_rows(named=True):
            result[record["_obj"]] = {
                "ra": record.get("ra"),
                "dec": record.get(dec) if dec else None,
                "features": {k: record[c] for k, c in features.items()},
            }
        return result


def _unique_records(records: pl.DataFrame) -> pl.DataFrame:
    """Each record once per object, by its id (a record without id: by time and band)."""
    key = pl.coalesce(pl.col("id").cast(pl.String),
                      pl.format("{}@{}", pl.col("time"), pl.col("band"))).alias("_key")
    return (records.with_columns(key).unique(["_obj", "_key"], keep="first",
                                             maintain_order=True).drop("_key"))


def _first(frame: pl.DataFrame, column: str, spellings) -> str:
    fields = _struct_fields(frame.schema[column]) or []
    return next(s for s in spellings if s in fields)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__
