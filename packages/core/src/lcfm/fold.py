"""`lcfm fold`: a dataset whose light curves are folded at each object's period, so that
models which cannot find a period themselves see the periodic shape (issue 12: classes
"told apart mostly by period" in "tens of sparse points per band over several years").

Why: the models' time encodings resolve periods down to a few days at best (docs/multiband.md,
"Periods the models can see"); with ~13 days between nights no two points of an RR Lyra fall
in one cycle, so its period exists in the raw times only as an alias that a periodogram
finds and a transformer does not. Folding is what the field does with such data before
looking at a shape: plot or classify the phased light curve.

The rule, once per object (all its rows, bands pooled per band over rows, as in
`lcfm.features`):
1. the period: for each band with enough points, the Lomb-Scargle peak of `lcfm.features`
   (the same search as `lcfm features`, `min_period` and all); the object's period is that
   of the band whose peak has the lowest false-alarm probability. With `periods`, a table
   gives it instead: a `period` column (days) per `object_id`, or `lcfm features` output,
   where the same lowest-false-alarm rule picks among its `<band>_period` columns;
2. the epoch: the time of the brightest point of that band (smallest magnitude, largest
   flux), so phase 0 is maximum light for every object, as light curves are usually phased;
3. every point's time becomes (t - epoch) mod period, in days, and each row's points are
   sorted by it. The folded times keep the period's length (an RR Lyra spans < 1 d, a
   Cepheid days), so a model's time encoding still sees how long the cycle is. Values,
   errors, bands, labels and meta are unchanged; meta gains `fold_period`, `fold_band` and
   `fold_epoch`.

A model trained on folded light curves records it (`config.lcfm_folded`, written by pretrain
and finetune); evaluate, predict, embed and the pipelines refuse data folded otherwise than
the model was trained on (`check_folding`), since either way the times mean something else.

An object without a period (too few points or constant in every band, or absent from the
`periods` table) is dropped, and counted with its reason; so are points with a non-finite
time. The work runs in `lcfm.features_io`'s tasks (objects whose rows lie in several
shards are read whole), in parallel, one output shard per task.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.dataset_card import write_dataset_card
from lcfm.dataset_lock import SHARD_GLOB, write_text_atomic, writing
from lcfm.exceptions import ConfigError, DataError
from lcfm.features import FeatureConfig, FeatureCounts, clean_band, lomb_scargle
from lcfm.features_io import CHUNK_ROWS, ordered_results, plan_tasks, read_task
from lcfm.options import option
from lcfm.progress import progress_bar
from lcfm.schema import conform
from lcfm.shards import shard_paths, write_frame_atomic

__all__ = ["FoldArgs", "best_period", "check_folding", "fold", "fold_frame", "is_folded",
           "read_periods"]

NO_PERIOD = "no Lomb-Scargle period in any band (too few points or constant)"
NOT_IN_TABLE = "object not in the --periods table"
BAD_PERIOD = "period in the --periods table not a positive number"


@dataclass
class FoldArgs:
    """Options of `lcfm fold` (one declaration each, `lcfm.options`)."""

    data: Path = option(help="Folder of canonical shards.")
    output: Path = option(help="Empty folder for the folded shards, report.json and "
                               "dataset card.")
    periods: Path | None = option(None, "Parquet or CSV table of periods per object_id: a "
                                  "'period' column in days, or the output of `lcfm features` "
                                  "(the band with the lowest false-alarm probability). "
                                  "Default: a Lomb-Scargle search per object here.")
    min_period: float = option(0.1, "Shortest period searched by the Lomb-Scargle "
                               "periodogram, in days (as `lcfm features`).")
    workers: int = option(1, "Processes folding in parallel.")
    chunk_rows: int = option(CHUNK_ROWS, "Light curves per task (memory per worker).")
    progress: bool = option(False, cli=False)


def is_folded(rows) -> bool:
    """Whether every row was folded by `lcfm fold` (meta `fold_period` set): `rows` is a
    frame with a `meta` column, or a sequence of meta dicts (`FlatRows.meta`)."""
    if isinstance(rows, pl.DataFrame):
        if "meta" not in rows.columns or not isinstance(rows.schema["meta"], pl.Struct) or \
                "fold_period" not in [f.name for f in rows.schema["meta"].fields]:
            return False
        return rows.height > 0 and rows["meta"].struct.field("fold_period").is_not_null().all()
    rows = list(rows)
    return bool(rows) and all((m or {}).get("fold_period") is not None for m in rows)


def check_folding(config, frame: pl.DataFrame, source) -> None:
    """A one-line DataError when `frame` (with its `meta`) is folded and the model was
    trained on unfolded light curves, or the other way round; nothing for a model that
    records neither (trained before lcfm recorded it)."""
    trained = getattr(config, "lcfm_folded", None)
    if trained is None or "meta" not in frame.columns or frame.height == 0:
        return
    folded = is_folded(frame)
    if folded == bool(trained):
        return
    if trained:
        raise DataError(f"{source}: the model was trained on light curves folded at their "
                        "periods (lcfm fold); these are not folded: fold them first (`lcfm "
                        "fold --data DIR --output DIR`, or lcfm.fold.fold_frame)")
    raise DataError(f"{source}: these light curves are folded (lcfm fold) and the model was "
                    "trained on unfolded ones; give it the unfolded folder")


def best_period(t, v, e, band, config: FeatureConfig | None = None
                ) -> tuple[float, str | None, float]:
    """(period in days, its band, false-alarm probability) of one object's points: the
    Lomb-Scargle peak with the lowest false-alarm probability over its bands (module
    docstring, step 1); (nan, None, nan) when no band has one."""
    config = config or FeatureConfig()
    best = (math.nan, None, math.inf)
    band = np.asarray(band).astype(str)
    for name in sorted(set(band.tolist())):
        sel = band == name
        tb, vb, _ = clean_band(t[sel], v[sel], e[sel], FeatureCounts())
        period, _, fap = lomb_scargle(tb, vb, config)
        if math.isfinite(period) and (fap < best[2] or best[1] is None):
            best = (period, name, fap if math.isfinite(fap) else math.inf)
    return best if best[1] is not None else (math.nan, None, math.nan)


def _choice_from_features(table: pl.DataFrame) -> pl.DataFrame:
    """(object_id, period, band) from `lcfm features` output: per object the band whose
    period has the lowest false-alarm probability."""
    bands = [c[: -len("_period")] for c in table.columns
             if c.endswith("_period") and f"{c}_fap" in table.columns]
    if not bands:
        raise DataError("the --periods table has neither a 'period' column nor "
                        "<band>_period and <band>_period_fap columns (lcfm features output)")
    periods = table.select([pl.col(f"{b}_period").cast(pl.Float64) for b in bands]).to_numpy()
    faps = table.select([pl.col(f"{b}_period_fap").cast(pl.Float64) for b in bands]).to_numpy()
    faps = np.where(np.isfinite(periods) & ~np.isnan(faps), faps, np.inf)
    pick = faps.argmin(axis=1)
    chosen = periods[np.arange(len(table)), pick]
    usable = np.isfinite(faps).any(axis=1)
    return pl.DataFrame({"object_id": table["object_id"].cast(pl.String),
                         "period": np.where(usable, chosen, np.nan),
                         "band": [bands[i] if ok else None for i, ok in zip(pick, usable,
                                                                              strict=True)]})


def read_periods(path: Path) -> dict[str, tuple[float, str | None]]:
    """object_id -> (period, band or None) from a --periods table (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such --periods file")
    try:
        table = pl.read_csv(path) if path.suffix.lower() in (".csv", ".txt") \
            else pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for an unreadable file
        raise DataError(f"{path}: unreadable --periods table ({exc})") from exc
    if "object_id" not in table.columns:
        raise DataError(f"{path}: the --periods table has no 'object_id' column")
    try:
        if "period" in table.columns:
            table = table.select(pl.col("object_id").cast(pl.String),
                                 pl.col("period").cast(pl.Float64),
                                 pl.lit(None, pl.String).alias("band"))
        else:
            table = _choice_from_features(table)
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"{path}: a period column is not numeric ({exc})") from exc
    duplicated = table.filter(pl.col("object_id").is_duplicated())["object_id"]
    if duplicated.len():
        first = duplicated[0]
        raise DataError(f"{path}: object_id {first!r} appears "
                        f"{int((duplicated == first).sum())} times in the --periods table")
    return {o: (p, b) for o, p, b in table.iter_rows()}


def fold_frame(frame: pl.DataFrame, config: FeatureConfig | None = None,
               periods: dict | None = None, counts: Counter | None = None) -> pl.DataFrame:
    """The rows of `frame` folded per object (module docstring); rows of objects without a
    period are left out and counted in `counts` (reason -> light curves, and
    "points: non-finite time")."""
    counts = counts if counts is not None else Counter()
    rows = frame.with_row_index("_row").group_by("object_id", maintain_order=True).agg(
        pl.col("_row"))
    lists = {c: frame[c].to_list() for c in ("time", "value", "error", "band")}
    kinds = frame["value_kind"].to_list()
    kept, folded, fold_meta = [], {c: [] for c in lists}, []
    for object_id, members in rows.iter_rows():
        arrays = {c: [np.asarray(lists[c][r]) for r in members] for c in lists}
        t, v, e, b = (np.concatenate(arrays[c]) for c in ("time", "value", "error", "band"))
        if periods is not None:
            period, band = periods.get(object_id, (None, None))
            if period is None or not (math.isfinite(period) and period > 0):
                counts[NOT_IN_TABLE if period is None else BAD_PERIOD] += len(members)
                continue
        else:
            period, band, _ = best_period(t, v, e, b, config)
            if band is None:
                counts[NO_PERIOD] += len(members)
                continue
        b = b.astype(str)
        usable = np.isfinite(t) & np.isfinite(v) & ((b == band) if band is not None else True)
        if not usable.any():
            usable = np.isfinite(t) & np.isfinite(v)
        pick = v[usable].argmax() if kinds[members[0]] == "flux" else v[usable].argmin()
        epoch = float(t[usable][pick])
        for r, tr, vr, er, br in zip(members, *(arrays[c] for c in ("time", "value", "error",
                                                                    "band")), strict=True):
            finite = np.isfinite(tr)
            counts["points: non-finite time"] += int((~finite).sum())
            if not finite.any():
                counts["light curves: no finite time"] += 1
                continue
            phase = np.mod(tr[finite] - epoch, period)
            order = np.argsort(phase, kind="stable")
            kept.append(r)
            folded["time"].append(phase[order])
            for c, xs in (("value", vr), ("error", er), ("band", br)):
                folded[c].append(np.asarray(xs)[finite][order])
            fold_meta.append((float(period), band, epoch))
    out = frame[kept]
    return out.with_columns(
        pl.Series("time", folded["time"], dtype=frame.schema["time"]),
        pl.Series("value", folded["value"], dtype=frame.schema["value"]),
        pl.Series("error", folded["error"], dtype=frame.schema["error"]),
        pl.Series("band", [x.tolist() for x in folded["band"]], dtype=frame.schema["band"]),
    ).with_columns(pl.col("meta").struct.with_fields(
        fold_period=pl.Series([m[0] for m in fold_meta], dtype=pl.Float64),
        fold_band=pl.Series([m[1] for m in fold_meta], dtype=pl.String),
        fold_epoch=pl.Series([m[2] for m in fold_meta], dtype=pl.Float64)))


_PERIODS: dict = {}


def _fold_task(item, config: FeatureConfig, periods_path: str | None
               ) -> tuple[int, Counter]:
    """Fold one task's light curves into its shard (in a worker process or here); returns
    (light curves written, counts). The --periods table is read once per process."""
    task, path = item
    periods = None
    if periods_path is not None:
        if periods_path not in _PERIODS:
            _PERIODS.clear()
            _PERIODS[periods_path] = read_periods(Path(periods_path))
        periods = _PERIODS[periods_path]
    counts = Counter()
    frame = read_task(task)
    counts["light curves read"] += frame.height
    out = fold_frame(frame, config, periods, counts)
    if out.height:
        write_frame_atomic(conform(out, source=path), Path(path))
    return out.height, counts


def fold(args: FoldArgs) -> dict:
    """Write the folded dataset of `args.data` into `args.output` (module docstring);
    returns the report also written to report.json."""
    if int(args.workers) < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    config = FeatureConfig(min_period=args.min_period)
    started = time.perf_counter()
    periods = None if args.periods is None else str(Path(args.periods).resolve())
    if periods is not None:  # a bad table fails here, before any output
        _PERIODS[periods] = read_periods(Path(periods))
    tasks, bands, surveys = plan_tasks(shard_paths(args.data), args.chunk_rows)
    output = Path(args.output)
    if output.resolve() == Path(args.data).resolve():
        raise ConfigError(f"--output {output} is the --data folder; fold into a new folder")
    counts, written = Counter(), 0
    with writing(output, "lcfm fold"):
        names = [str(output / SHARD_GLOB.replace("*", f"{i:05d}")) for i in range(len(tasks))]
        bar = progress_bar(total=len(tasks), unit="task", desc="fold", enabled=args.progress)
        for n, task_counts in ordered_results(_fold_task, list(zip(tasks, names,
                                                                     strict=True)),
                                              args.workers, config, periods):
            written += n
            counts.update(task_counts)
            bar.update(1)
        bar.close()
        _renumber(output)
        read = counts.pop("light curves read", 0)
        seconds = time.perf_counter() - started
        report = {
            "survey": surveys[0] if len(surveys) == 1 else None, "surveys": surveys,
            "bands": bands, "folded_from": str(args.data),
            "period_source": str(args.periods) if args.periods is not None
            else f"Lomb-Scargle per band, lowest false-alarm probability "
                 f"(min_period {args.min_period} d)",
            "light_curves_read": read, "light_curves_written": written,
            "dropped": dict(sorted(counts.items())), "seconds": round(seconds, 3),
            "light_curves_per_second": round(read / seconds, 1) if seconds > 0 else None}
        write_dataset_card(output, report)
        write_text_atomic(output / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def _renumber(output: Path) -> None:
    """Shard names without gaps (a task whose objects were all dropped wrote nothing)."""
    for i, path in enumerate(sorted(output.glob(SHARD_GLOB))):
        target = output / SHARD_GLOB.replace("*", f"{i:05d}")
        if path != target:
            path.rename(target)
