"""`lcfm simulate`: labeled synthetic light curves of a survey -> canonical shards.

The survey's simulator generates chunks of `chunk_size` light curves at once (vectorised
over the chunk), each chunk with its own random stream derived from (seed, chunk index), so
a seed always gives the same dataset for the same n. Every light curve then goes through
the survey's own preprocessing chain, as at ingest, so simulated shards look like ingested
ones (e.g. standardized, detrended TESS flux); shards are written as chunks complete, so
memory stays bounded whatever n is. Besides the shards the folder holds `report.json`
(the ingest report of the preprocessing) and `simulation.json` (seed, counts per class,
speed). Under `accelerate launch` (issue 10, item 4) rank r simulates the chunks c with
c mod n_ranks == r into its own shards (part-r<r>-00000.parquet, ...): the same light curves
as one process; the main process sums the ranks' reports and writes the summary.
Like ingest, the folder is marked while it is written (`lcfm.dataset_lock`):
readers refuse it, a second writer fails at once, a killed run restarts cleanly when rerun,
and `simulation.json` is written last.

`cadence_from` (`--cadence-from PATH`, issue 12 item 5) borrows the times, bands and
uncertainties of the survey's real files under PATH (`lcfm.simulate.borrowed`): the
simulator's class signals on real samplings, with noise drawn from the real errors.
The command's options are `SimulateArgs` (one declaration each, `lcfm.options`).
"""

from __future__ import annotations

import json
import pickle
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lcfm.dataset_card import write_dataset_card
from lcfm.dataset_lock import SHARD_GLOB, WORK_DIR, write_text_atomic, writing
from lcfm.exceptions import ConfigError, DataError
from lcfm.options import option
from lcfm.progress import progress_bar
from lcfm.ranks import current_ranks
from lcfm.report import IngestReport
from lcfm.shards import ShardWriter, read_summaries
from lcfm.survey import SurveyPlugin

SUMMARY_FILE = "simulation.json"


@dataclass
class SimulateArgs:
    """Options of `lcfm simulate`."""

    survey: str = option(help="Survey plugin name (see `lcfm surveys`).")
    n: int = option(help="Number of light curves (classes in equal shares).")
    output: Path = option(help="Empty folder for the shards, report.json and simulation.json.")
    seed: int = option(0, "Random seed: the same survey, seed and n give identical shards.")
    raw: bool = option(False, "Skip the survey's preprocessing chain (write native units and "
                       "times, e.g. unstandardized Kepler flux).")
    survey_options: list[str] = option(default_factory=list, flag="option",
                                       help="Survey option key=value (repeatable), e.g. "
                                       "band=all for ATLAS; values are text unless the "
                                       "survey declares a type.")
    rows_per_shard: int = option(20_000, "Light curves per Parquet shard.")
    cadence_from: Path | None = option(None, "Real files (or a folder) of the survey whose "
                                       "times, bands and uncertainties the simulated light "
                                       "curves borrow, read with the survey's readers.")
    cadence_format: str | None = option(None, "Format of the --cadence-from files (default: "
                                        "detected).")
    cadence_limit: int | None = option(None, "Real light curves read from --cadence-from at "
                                       "most (default: all).")
    progress: bool = option(False, cli=False)


def run_simulate(args: SimulateArgs) -> dict:
    """`lcfm simulate` from its options: the survey with its options, then `simulate`."""
    from lcfm.registry import get_survey
    from lcfm.survey_options import parse_option_pairs

    survey = get_survey(args.survey)
    options = parse_option_pairs(args.survey_options or [])
    if options:
        survey = survey.with_options(**options)
    return simulate(survey, args.n, args.output, seed=args.seed, preprocess=not args.raw,
                    rows_per_shard=args.rows_per_shard, progress=args.progress,
                    cadence_from=args.cadence_from, cadence_format=args.cadence_format,
                    cadence_limit=args.cadence_limit)


def simulate(survey: SurveyPlugin, n: int, output_dir: Path, *, seed: int = 0,
             preprocess: bool = True, rows_per_shard: int = 20_000,
             progress: bool = False, cadence_from: Path | None = None,
             cadence_format: str | None = None, cadence_limit: int | None = None) -> dict:
    """Simulate n labeled light curves of `survey` into `output_dir`; returns the summary
    also saved as `simulation.json`.

    With `preprocess=False` the rows are written as simulated (raw survey units and time
    system, no detrending or standardization). With `cadence_from`, the light curves take
    the sampling and uncertainties of the survey's real files there (module docstring).
    Raises `ConfigError` for a survey without a simulator or bad arguments, `DataError` for
    an output folder that is a file, holds a dataset or is being written by another run,
    or a `cadence_from` without a usable real light curve.
    """
    if int(n) < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if int(seed) < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    if int(rows_per_shard) < 1:
        raise ConfigError(f"--rows-per-shard must be at least 1, got {rows_per_shard}")
    n, seed = int(n), int(seed)
    simulator = survey.simulator()
    if cadence_from is not None:
        from lcfm.simulate.borrowed import borrow_cadence

        if cadence_limit is not None and int(cadence_limit) < 1:
            raise ConfigError(f"--cadence-limit must be at least 1, got {cadence_limit}")
        simulator = borrow_cadence(simulator, Path(cadence_from), cadence_format,
                                   limit=cadence_limit)
    output_dir = Path(output_dir)
    report = IngestReport(survey=survey.name)
    ranks = current_ranks()
    if not ranks.is_main:
        ranks.wait()  # the main process has marked the folder
        _rank_share(survey, simulator, n, seed, output_dir / WORK_DIR, ranks,
                    rows_per_shard, preprocess)
        ranks.wait()  # every rank has written its shards
        ranks.wait()  # the main process has written the summary
        return json.loads((output_dir / SUMMARY_FILE).read_text())
    with writing(output_dir, "lcfm simulate") as work_dir:
        started = time.perf_counter()
        per_class = Counter()
        writer = None
        if ranks.count > 1:
            ranks.wait()
            writer = _rank_share(survey, simulator, n, seed, work_dir, ranks,
                                 rows_per_shard, preprocess)
            ranks.wait()
            for rank in range(ranks.count):
                with open(work_dir / f"rank-{rank}.pkl", "rb") as handle:
                    rank_report, rank_classes = pickle.load(handle)
                report.absorb(rank_report)
                per_class.update(rank_classes)
        with writer or ShardWriter(output_dir, rows_per_shard) as writer:
            # one process: every chunk; several ranks: the rows the preprocessing rejected,
            # made up from the chunks after theirs
            per_class.update(_generate(
                survey, simulator, n - sum(per_class.values()), seed, writer, report,
                preprocess=preprocess, progress=progress and ranks.count == 1,
                first_chunk=_n_chunks(n, simulator) if ranks.count > 1 else 0))
        seconds = time.perf_counter() - started
        written = sum(per_class.values())
        report.shards = sorted(p.name for p in output_dir.glob(SHARD_GLOB))
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
            "num_processes": ranks.count,
            "simulator": simulator.describe(),
        }
        # last: simulation.json beside the shards (and no marker) means complete
        write_text_atomic(output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        # after simulation.json, which the card reads to call the data simulated
        write_dataset_card(output_dir)
    ranks.wait()
    return summary


def _n_chunks(n: int, simulator) -> int:
    return -(-n // simulator.chunk_size)


class _RankShardWriter(ShardWriter):
    """Shards named after their rank (part-r1-00000.parquet), so ranks never collide."""

    def __init__(self, output_dir: Path, rows_per_shard: int, rank: int):
        self.rank = rank
        super().__init__(output_dir, rows_per_shard)

    def _next_path(self) -> Path:
        return self.output_dir / f"part-r{self.rank}-{len(self.paths):05d}.parquet"


def _rank_share(survey, simulator, n: int, seed: int, work_dir: Path, ranks,
                rows_per_shard: int, preprocess: bool):
    """Chunks c of the first ceil(n / chunk_size) with c mod n_ranks == rank, each with
    the size and random stream it has in a one-process run, into this rank's shards; its
    report and counts per class go to the scratch folder for the main process."""
    report = IngestReport(survey=survey.name)
    per_class: Counter = Counter()
    writer = _RankShardWriter(work_dir.parent, rows_per_shard, ranks.index)
    ranks.wait()  # every rank's writer exists before any shard does (they refuse shards)
    for chunk in ranks.share(range(_n_chunks(n, simulator))):
        first = chunk * simulator.chunk_size
        rows = simulator.simulate(min(simulator.chunk_size, n - first),
                                  np.random.default_rng([seed, chunk]),
                                  first_index=first, id_prefix=f"sim{seed}")
        per_class.update(_keep(survey, rows, writer, report, preprocess))
    writer.flush()
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = work_dir / f".rank-{ranks.index}.pkl.tmp"
    with open(tmp, "wb") as handle:
        pickle.dump((report, per_class), handle)
    tmp.replace(work_dir / f"rank-{ranks.index}.pkl")
    if ranks.is_main:
        return writer  # open: it writes the make-up rows, if any (ShardWriter refuses a
        # folder that already holds shards, so no new writer can be created now)
    writer.close()
    return None


def _keep(survey, rows, writer, report: IngestReport, preprocess: bool) -> Counter:
    per_class: Counter = Counter()
    for row in rows:
        report.read(row["time"].size)
        if preprocess:
            row = survey.preprocess(row, report)
            if row is None:
                continue
        writer.add(row)
        report.written(row["time"].size)
        per_class[row["label"]] += 1
    return per_class


def _generate(survey: SurveyPlugin, simulator, n: int, seed: int, writer: ShardWriter,
              report: IngestReport, *, preprocess: bool, progress: bool,
              first_chunk: int = 0) -> Counter:
    """Simulate chunk by chunk (from `first_chunk`) into `writer` until n light curves are
    written; returns the count per class."""
    per_class: Counter = Counter()
    written, chunk = 0, first_chunk
    first_index = first_chunk * simulator.chunk_size
    with progress_bar(total=n, desc=f"simulate {survey.name}", unit="lc",
                      enabled=progress) as bar:
        while written < n:
            size = min(simulator.chunk_size, n - written)
            rng = np.random.default_rng([seed, chunk])
            rows = simulator.simulate(size, rng, first_index=first_index, id_prefix=f"sim{seed}")
            first_index += size
            chunk += 1
            kept = _keep(survey, rows, writer, report, preprocess)
            per_class.update(kept)
            written += sum(kept.values())
            bar.update(written - bar.n)
            if written == 0 and chunk - first_chunk >= 8:
                raise DataError(f"{survey.name}: the preprocessing rejected every simulated "
                                f"light curve ({dict(report.light_curves_rejected)})")
    return per_class

