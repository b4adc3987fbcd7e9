"""Datasets that hold several surveys (issue 11 item 5; ASTRAFier sect. 6.3: "we trained
our final deployment model on a combined dataset of TESS (Sect. 4.2) and Kepler (Sect.
4.1) light curves").

Each survey is ingested on its own (its readers, preprocessing and report), then
`lcfm combine --data A --data B --output C` links the shards of both into one folder. Rows
keep their own `survey`; the folder's survey is the members' names joined by "+"
(`kepler+tess_qlp`), which `lcfm.registry.get_survey` turns into a `CombinedSurvey`:

- bands: the union of the members' bands, each with its own central wavelength, so a
  model that encodes bands by wavelength (ATCAT) places them on one axis, and single-band
  models see each survey's band as a band of its own; two members naming one band with
  different wavelengths are refused;
- values: every member must give the same kind (flux or magnitude);
- classes: the members' taxonomies in order, each class once (ASTRAFier's Kepler classes,
  then TESS's INSTRUMENT/JUNK);
- no readers, simulator or metadata of its own: ingest each survey, then combine.

A model trained on a combined dataset reads data of any member survey (`predict` on TESS
alone after Kepler + TESS training). Object ids are only unique within a survey (a KIC and
a TIC number may coincide), so the combined shards name each object `<survey>:<object_id>`;
the shards are rewritten row group by row group (memory bounded by one row group). Two
folders holding the same object of the same survey are refused as duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from lcfm.dataset_card import write_dataset_card
from lcfm.dataset_lock import SHARD_GLOB, atomic_file, write_text_atomic, writing
from lcfm.exceptions import ConfigError, DataError
from lcfm.options import option
from lcfm.shards import read_summaries, shard_paths
from lcfm.survey import SurveyPlugin, Taxonomy

SEPARATOR = "+"


def member_names(name: str) -> list[str]:
    return [part for part in str(name).split(SEPARATOR) if part]


def is_combined(name: str) -> bool:
    return SEPARATOR in str(name)


class CombinedSurvey(SurveyPlugin):
    """The survey of a combined dataset: see the module docstring for the rules."""

    readers = ()
    options = {}

    def __init__(self, members: list[SurveyPlugin]):
        super().__init__()
        if len(members) < 2:
            raise ConfigError("a combined survey needs at least two member surveys")
        self.members = list(members)
        self.name = SEPARATOR.join(m.name for m in self.members)
        kinds = sorted({m.value_kind for m in self.members})
        if len(kinds) != 1:
            raise ConfigError(f"surveys {self.name}: values differ in kind "
                              f"({', '.join(f'{m.name} {m.value_kind}' for m in self.members)});"
                              " combine surveys of one kind (flux or magnitudes)")
        self.value_kind = kinds[0]
        bands: dict[str, float] = {}
        for member in self.members:
            for band, wavelength in member.bands.items():
                if band in bands and bands[band] != float(wavelength):
                    raise ConfigError(f"surveys {self.name}: band {band!r} is {bands[band]} A "
                                      f"in one and {wavelength} A in {member.name}")
                bands[str(band)] = float(wavelength)
        self.bands = bands
        classes: list[str] = []
        raw: dict[str, str | None] = {}
        for member in self.members:
            classes += [c for c in member.taxonomy.classes if c not in classes]
            raw.update(member.taxonomy.raw_to_class)
        self.taxonomy = Taxonomy(tuple(classes), raw_to_class=raw)
        windows = [m.default_window for m in self.members if m.default_window]
        self.default_window = max(windows) if windows else None
        self.description = "combined dataset of " + ", ".join(m.name for m in self.members)

    def input_files(self, path: Path, fmt: str | None = None) -> list[Path]:
        raise ConfigError(f"survey {self.name} is a combination: ingest each of "
                          f"{', '.join(m.name for m in self.members)} on its own, then "
                          "`lcfm combine` the folders")

    def sample_path(self) -> Path:
        raise ConfigError(f"survey {self.name} is a combination and has no bundled sample: "
                          "give --data (a folder made by `lcfm combine`)")

    def simulator(self):
        raise ConfigError(f"survey {self.name} is a combination and has no simulator: "
                          "simulate each member survey, then `lcfm combine` the folders")

    def load_metadata(self, state):
        raise ConfigError(f"survey {self.name}: metadata encoders are per survey; train on "
                          "a combined dataset without --metadata")


def combined_survey(names) -> SurveyPlugin:
    """The plugin of one survey name, or a `CombinedSurvey` of several (in sorted order, so
    "tess_qlp+kepler" and "kepler+tess_qlp" are one survey)."""
    from lcfm.registry import get_survey

    names = sorted({n for name in names for n in member_names(name)})
    if len(names) == 1:
        return get_survey(names[0])
    return CombinedSurvey([get_survey(n) for n in names])


def qualified_ids(frame: pl.DataFrame) -> pl.Series:
    """`<survey>:<object_id>` for every row (ids already qualified, from a combined
    folder, stay as they are)."""
    prefix = pl.col("survey").cast(pl.String) + ":"
    ids = pl.col("object_id").cast(pl.String)
    return frame.select(pl.when(ids.str.starts_with(prefix)).then(ids)
                        .otherwise(prefix + ids).alias("object_id")).to_series()


def _rewrite(source: Path, target: Path) -> None:
    """Copy one shard with qualified object ids, one row group at a time."""
    handle = pq.ParquetFile(source)
    with atomic_file(target) as tmp:
        writer = None
        try:
            for group in range(handle.num_row_groups):
                table = handle.read_row_group(group)
                column = table.schema.get_field_index("object_id")
                ids = qualified_ids(pl.from_arrow(table.select(["survey", "object_id"])))
                table = table.set_column(column, "object_id", ids.to_arrow())
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table, row_group_size=table.num_rows)
        finally:
            if writer is not None:
                writer.close()


def combine(datasets: list[Path], output: Path) -> dict:
    """Write the shards of several dataset folders into `output` as one dataset, objects
    named `<survey>:<object_id>`, with a report.json naming each part; returns the report."""
    datasets = [Path(d) for d in datasets]
    if len(datasets) < 2:
        raise ConfigError("lcfm combine needs at least two --data folders")
    if len({d.resolve() for d in datasets}) != len(datasets):
        raise ConfigError("lcfm combine: the same --data folder is given twice")
    parts, seen, surveys = [], {}, []
    for data in datasets:
        summaries = read_summaries(data)
        found = sorted(summaries["survey"].drop_nulls().unique().to_list())
        surveys += found
        ids = set(qualified_ids(summaries).to_list())
        for other, other_ids in seen.items():
            if ids & other_ids:
                raise DataError(f"{data}: {len(ids & other_ids)} object(s) of the same survey "
                                f"are also in {other} (e.g. {sorted(ids & other_ids)[0]}); "
                                "combine each light curve once")
        seen[str(data)] = ids
        report_path = data / "report.json"
        parts.append({"data": str(data), "surveys": found, "light_curves": summaries.height,
                      "labeled": int(summaries["label"].is_not_null().sum()),
                      "report": json.loads(report_path.read_text())
                      if report_path.is_file() else None})
    survey = combined_survey(surveys)  # refuses mixed value kinds and clashing bands
    output = Path(output)
    with writing(output, "lcfm combine"):
        n = 0
        for data in datasets:
            for path in shard_paths(data):
                _rewrite(path, output / SHARD_GLOB.replace("*", f"{n:05d}"))
                n += 1
        report = {"survey": survey.name, "object_ids": "<survey>:<object_id>",
                  "combined_from": parts,
                  "light_curves_written": sum(p["light_curves"] for p in parts),
                  "shards": n}
        write_dataset_card(output, report)
        write_text_atomic(output / "report.json", json.dumps(report, indent=2) + "\n")
    return report


@dataclass
class CombineArgs:
    """Options of `lcfm combine`."""

    data: list[Path] = option(help="Dataset folders to combine (repeat --data; at least "
                                   "two, e.g. an ingested Kepler and an ingested TESS folder).")
    output: Path = option(help="Empty folder for the combined shards, report.json and "
                               "dataset card.")


def run_combine(args: CombineArgs) -> dict:
    """`combine` from a `CombineArgs`."""
    return combine(list(args.data), args.output)


__all__ = ["CombineArgs", "CombinedSurvey", "SEPARATOR", "combine", "combined_survey",
           "is_combined", "member_names", "qualified_ids", "run_combine"]
