"""`lcfm simulate`: labeled synthetic light curves of a survey -> canonical shards.

The survey's simulator generates chunks of `chunk_size` light curves at once (vectorised
over the chunk), each chunk with its own random stream derived from (seed, chunk index), so
a seed always gives the same dataset for the same n. Every light curve then goes through
the survey's own preprocessing chain, as at ingest, so simulated shards look like ingested
ones (e.g. standardized, detrended TESS flux); shards are written as chunks complete, so
memory stays bounded whatever n is. Besides the shards the folder holds `report.json`
(the ingest report of the preprocessing) and `simulation.json` (seed, counts per class,
speed). Like ingest, the folder is marked while it is written (`lcfm.dataset_lock`):
readers refuse it, a second writer fails at once, a killed run restarts cleanly when rerun,
and `simulation.json` is written last.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lcfm.dataset_lock import write_text_atomic, writing
from lcfm.exceptions import ConfigError, DataError
from lcfm.report import IngestReport
from lcfm.shards import ShardWriter, read_summaries
from lcfm.survey import SurveyPlugin

SUMMARY_FILE = "simulation.json"


def simulate(survey: SurveyPlugin, n: int, output_dir: Path, *, seed: int = 0,
             preprocess: bool = True, rows_per_shard: int = 20_000,
             progress: bool = False) -> dict:
    """Simulate n labeled light curves of `survey` into `output_dir`; returns the summary
    also saved as `simulation.json`.

    With `preprocess=False` the rows are written as simulated (raw survey units and time
    system, no detrending or standardization). Raises `ConfigError` for a survey without a
    simulator or bad arguments, `DataError` for an output folder that is a file, holds a
    dataset or is being written by another run.
    """
    if int(n) < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if int(seed) < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    if int(rows_per_shard) < 1:
        raise ConfigError(f"--rows-per-shard must be at least 1, got {rows_per_shard}")
    n, seed = int(n), int(seed)
    simulator = survey.simulator()
    output_dir = Path(output_dir)
    report = IngestReport(survey=survey.name)
    with writing(output_dir, "lcfm simulate"):
        started = time.perf_counter()
        with ShardWriter(output_dir, rows_per_shard) as writer:
            per_class = _generate(survey, simulator, n, seed, writer, report,
                                  preprocess=preprocess, progress=progress)
        seconds = time.perf_counter() - started
        written = sum(per_class.values())
        report.shards = [p.name for p in writer.paths]
        report.save(output_dir / "report.json")
        survey.post_ingest(output_dir, read_summaries(output_dir, writer=True))
        summary = {
            "survey": survey.name,
            "n": n,
            "seed": seed,
            "preprocessing": [name for name, _ in survey.preprocessing()] if preprocess else [],
            "light_curves": written,
            "light_curves_rejected_by_preprocessing": sum(report.light_curves_rejected.values()),
            "per_class": {c: per_class.get(c, 0) for c in simulator.classes},
            "points": report.points_written,
            "seconds": round(seconds, 3),
            "light_curves_per_second": round(written / seconds, 1) if seconds > 0 else None,
            "shards": report.shards,
            "simulator": simulator.describe(),
        }
        # last: simulation.json beside the shards (and no marker) means complete
        write_text_atomic(output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def _generate(survey: SurveyPlugin, simulator, n: int, seed: int, writer: ShardWriter,
              report: IngestReport, *, preprocess: bool, progress: bool) -> Counter:
    """Simulate chunk by chunk into `writer` until n light curves are written; returns
    the count per class."""
    per_class: Counter = Counter()
    written, first_index, chunk = 0, 0, 0
    with tqdm(total=n, desc=f"simulate {survey.name}", unit="lc", disable=not progress) as bar:
        while written < n:
            size = min(simulator.chunk_size, n - written)
            rng = np.random.default_rng([seed, chunk])
            rows = simulator.simulate(size, rng, first_index=first_index, id_prefix=f"sim{seed}")
            first_index += size
            chunk += 1
            for row in rows:
                report.read(row["time"].size)
                if preprocess:
                    row = survey.preprocess(row, report)
                    if row is None:
                        continue
                writer.add(row)
                report.written(row["time"].size)
                per_class[row["label"]] += 1
                written += 1
            bar.update(written - bar.n)
            if written == 0 and chunk >= 8:
                raise DataError(f"{survey.name}: the preprocessing rejected every simulated "
                                f"light curve ({dict(report.light_curves_rejected)})")
    return per_class

