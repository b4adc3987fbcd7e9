"""Per-shard, rank-sharded, resumable catalog work for predict, embed and evaluate (issue 10,
items 4 and 5: "predict/embed write per-shard results and `--resume` skips finished shards;
progress is logged (one line per shard) when not on a terminal").

The work is cut into units: the dataset's shards, or, when there are fewer shards than
ranks, row ranges of them, so every rank has work. Rank r takes units i with i mod n == r
(`lcfm.ranks`). A unit's result is a part file `OUTPUT.parts/<unit>.parquet`, written
atomically, holding per object of the unit the observation-weighted *sums* of its rows'
values (probabilities of each pass, or embeddings), its number of rows and observations: an
object's value is the mean of its rows' values weighted by the observations each row
contributed (issue 11, item 4: a Kepler star's quarters count by their observations, as
the windows of one light curve do in `lcfm.engine.predict`). An object whose rows span
several units (Kepler quarters in different shards) is combined exactly at the merge, by
adding sums and counts, so the catalog has each object once, with the same value as a
single pass over the whole dataset. The units are fixed in `OUTPUT.parts/manifest.json`
with what the run depends on (model, data, options); `--resume` checks it, keeps the finished
parts and computes the others (with any number of ranks), and a killed run resumes to the
same catalog. The main process merges after every rank is done and removes the parts.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lcfm.dataset_lock import write_text_atomic
from lcfm.engine.predict import object_sums
from lcfm.exceptions import ConfigError, DataError
from lcfm.ranks import Ranks, current_ranks, log
from lcfm.schema import conform
from lcfm.shards import shard_paths, write_frame_atomic

MANIFEST = "manifest.json"
PART_SCHEMA = {"object_id": pl.String, "n_rows": pl.Int64, "n_observations_used": pl.Int64,
               "label": pl.String, "sums": pl.List(pl.Float64)}


@dataclass(frozen=True)
class Unit:
    """A shard, or the rows [start, stop) of one."""

    name: str
    path: str
    start: int | None = None
    stop: int | None = None

    def read(self) -> pl.DataFrame:
        try:
            if self.start is None:
                frame = pl.read_parquet(self.path)
            else:
                frame = pl.scan_parquet(self.path).slice(self.start,
                                                         self.stop - self.start).collect()
        except Exception as exc:  # polars raises several types for a corrupt file
            raise DataError(f"{self.path}: unreadable Parquet shard ({exc})") from exc
        return conform(frame, source=self.path)


def plan_units(paths: list[Path], n_ranks: int) -> list[Unit]:
    """One unit per shard; with fewer shards than ranks, each shard cut into row ranges so
    that there are at least as many units as ranks."""
    if len(paths) >= n_ranks:
        return [Unit(p.stem, str(p)) for p in paths]
    pieces = math.ceil(n_ranks / len(paths))
    units = []
    for path in paths:
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        bounds = np.linspace(0, rows, pieces + 1).round().astype(int)
        units += [Unit(f"{path.stem}.rows-{a}-{b}", str(path), int(a), int(b))
                  for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    return units


def object_part(frame: pl.DataFrame, values: np.ndarray, observations: np.ndarray
                ) -> pl.DataFrame:
    """Per object of `frame` (first-seen order): sum of its rows' `values` (rows, ...)
    flattened, each row's values multiplied by its `observations`, the object's number of
    rows and observations used, its first non-null label."""
    if frame.height == 0:
        return empty_part()
    weights = np.asarray(observations, dtype=np.float64).reshape(
        (-1,) + (1,) * (np.ndim(values) - 1))
    objects, sums, counts = object_sums(frame["object_id"], np.asarray(values) * weights)
    _, used, _ = object_sums(frame["object_id"], observations[:, None])
    labels = (frame.select("object_id", "label").group_by("object_id", maintain_order=True)
              .agg(pl.col("label").drop_nulls().first())["label"])
    return pl.DataFrame({"object_id": objects, "n_rows": counts.astype(np.int64),
                         "n_observations_used": used[:, 0].astype(np.int64),
                         "label": labels, "sums": sums.reshape(len(objects), -1).tolist()},
                        schema=PART_SCHEMA)


def empty_part() -> pl.DataFrame:
    return pl.DataFrame(schema=PART_SCHEMA)


@dataclass
class Merged:
    """Each object once, in first-seen order over the units: observation-weighted sums of
    values, rows and observations used, first non-null label."""

    objects: list[str]
    sums: np.ndarray  # (objects, values)
    rows: np.ndarray
    observations: np.ndarray
    labels: list[str | None]

    @property
    def means(self) -> np.ndarray:
        """Per object: its rows' values averaged with weights = observations used."""
        return self.sums / np.maximum(self.observations, 1)[:, None]


def merge_parts(parts: list[pl.DataFrame]) -> Merged:
    table = pl.concat(parts)
    if table.height == 0:
        return Merged([], np.zeros((0, 0)), np.zeros(0, np.int64), np.zeros(0, np.int64), [])
    ids = table["object_id"].to_numpy()
    sums = table["sums"].explode().to_numpy().astype(np.float64).reshape(table.height, -1)
    objects, sums, _ = object_sums(ids, sums)
    _, counts, _ = object_sums(ids, np.stack([table["n_rows"].to_numpy(),
                                              table["n_observations_used"].to_numpy()], 1))
    labels = (table.select("object_id", "label").group_by("object_id", maintain_order=True)
              .agg(pl.col("label").drop_nulls().first())["label"].to_list())
    return Merged(objects, sums, counts[:, 0].astype(np.int64),
                  counts[:, 1].astype(np.int64), labels)


def shard_signature(paths: list[Path]) -> list[list]:
    return [[p.name, p.stat().st_size] for p in paths]


def parts_folder(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


@dataclass
class CatalogRun:
    """The units of one predict/embed/evaluate run, shared by its ranks (module docstring).

    `key`: what the run's results depend on; `--resume` refuses parts written for another.
    """

    what: str
    data: Path
    folder: Path
    key: dict
    resume: bool = False
    ranks: Ranks | None = None

    def __post_init__(self):
        self.ranks = self.ranks or current_ranks()
        paths = shard_paths(self.data)
        self.key = dict(self.key, shards=shard_signature(paths), objects="observation-weighted")
        self.started = time.perf_counter()
        self.resumed: list[str] = []
        self._read: dict[str, list[pl.DataFrame]] = {}  # parts by suffix, read once
        if self.ranks.is_main:
            self._prepare(paths)
        self.ranks.wait()  # the manifest exists before any rank reads it
        manifest = json.loads((self.folder / MANIFEST).read_text())
        self.units = [Unit(**u) for u in manifest["units"]]

    def _prepare(self, paths: list[Path]) -> None:
        manifest = self.folder / MANIFEST
        if self.resume and manifest.exists():
            try:
                recorded = json.loads(manifest.read_text())
            except json.JSONDecodeError as exc:
                raise DataError(f"{manifest}: unreadable ({exc.msg}); run without --resume "
                                "to start again") from None
            if recorded.get("key") != json.loads(json.dumps(self.key)):
                changed = sorted(k for k in set(recorded.get("key", {})) | set(self.key)
                                 if recorded.get("key", {}).get(k) != self.key.get(k))
                raise ConfigError(f"--resume: {self.folder} holds parts of a run with another "
                                  f"{', '.join(changed)}; run without --resume to start again")
            self.resumed = [u["name"] for u in recorded["units"]
                            if (self.folder / f"{u['name']}.parquet").exists()]
            return
        shutil.rmtree(self.folder, ignore_errors=True)  # no --resume: start afresh
        self.folder.mkdir(parents=True, exist_ok=True)
        units = plan_units(paths, self.ranks.count)
        write_text_atomic(manifest, json.dumps(
            {"key": self.key, "units": [asdict(u) for u in units]}, indent=1) + "\n")

    def part_path(self, unit: Unit, suffix: str = "") -> Path:
        return self.folder / f"{unit.name}{suffix}.parquet"

    def run(self, work: Callable[[Unit, pl.DataFrame], dict[str, pl.DataFrame]]) -> None:
        """`work(unit, frame)` -> {suffix: table} for each unfinished unit of this rank; the
        table under suffix "" is written last: its presence marks the unit finished."""
        order = {u.name: i for i, u in enumerate(self.units)}
        todo = [u for u in self.ranks.share(self.units) if not self.part_path(u).exists()]
        on_terminal = sys.stderr.isatty()
        bar = None
        if on_terminal:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"{self.ranks.prefix()}{self.what}", unit="shard")
        for unit in todo:
            started = time.perf_counter()
            frame = unit.read()
            tables = work(unit, frame)
            for suffix, table in sorted(tables.items(), key=lambda kv: kv[0] == ""):
                write_frame_atomic(table, self.part_path(unit, suffix))
            seconds = time.perf_counter() - started
            if bar is not None:
                bar.update(1)
            else:
                log(f"{self.ranks.prefix()}{self.what}: shard {order[unit.name] + 1}/"
                    f"{len(self.units)} {unit.name}: {frame.height} light curves in "
                    f"{seconds:.1f} s ({frame.height / max(seconds, 1e-9):.0f} lc/s)")
        if bar is not None:
            bar.close()
        self.ranks.wait()  # every part is written before the main process merges

    def parts(self, suffix: str = "") -> list[pl.DataFrame]:
        """The units' tables (main process, after `run`), in unit order."""
        missing = [u.name for u in self.units if not self.part_path(u).exists()]
        if missing:
            raise DataError(f"{self.folder}: parts {missing} are missing after every rank "
                            "finished (removed by another run?); rerun the command")
        if suffix not in self._read:
            self._read[suffix] = [pl.read_parquet(self.part_path(u, suffix))
                                  for u in self.units if self.part_path(u, suffix).exists()]
        return self._read[suffix]

    def summary(self, merged: Merged, catalog: Path, **extra) -> dict:
        """Counts and speed of the run, for `<catalog stem>.json`."""
        seconds = time.perf_counter() - self.started
        rows = {u.name: int(p["n_rows"].sum()) for u, p in zip(self.units, self.parts(),
                                                                 strict=True)}
        done_here = sum(n for name, n in rows.items() if name not in self.resumed)
        return {"command": self.what, "catalog": catalog.name,
                "n_objects": len(merged.objects), "n_light_curves": sum(rows.values()),
                "n_observations_used": int(merged.observations.sum()),
                "num_processes": self.ranks.count, "shards": len(self.units),
                "shards_resumed": len(self.resumed), "seconds": round(seconds, 3),
                "light_curves_per_second": round(done_here / seconds, 1) if seconds else None,
                **extra}

    def finish(self, summary_path: Path | None = None, summary: dict | None = None) -> None:
        """Main process: write the summary, drop the parts; then release the other ranks."""
        if self.ranks.is_main:
            if summary_path is not None:
                write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
            shutil.rmtree(self.folder, ignore_errors=True)
        self.ranks.wait()
