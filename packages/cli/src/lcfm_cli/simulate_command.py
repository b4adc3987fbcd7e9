"""`lcfm simulate`: labeled synthetic light curves in a survey's cadence and noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.common import is_main_process, parse_options, print_json


def simulate(
    survey: Annotated[str, typer.Option(help="Survey plugin name (see `lcfm surveys`).")],
    n: Annotated[int, typer.Option(help="Number of light curves (classes in equal shares).")],
    output: Annotated[Path, typer.Option(
        help="Empty folder for the shards, report.json and simulation.json.")],
    seed: Annotated[int, typer.Option(
        help="Random seed: the same survey, seed and n give identical shards.")] = 0,
    raw: Annotated[bool, typer.Option(
        "--raw", help="Skip the survey's preprocessing chain (write native units and "
                      "times, e.g. unstandardized Kepler flux).")] = False,
    option: Annotated[list[str] | None, typer.Option(
        help="Survey option key=value (repeatable), e.g. band=all for ATLAS.")] = None,
    rows_per_shard: Annotated[int, typer.Option(help="Light curves per Parquet shard.")]
    = 20_000,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the simulation summary as JSON on stdout.")] = False,
) -> None:
    """Labeled synthetic light curves of a survey's taxonomy, in its cadence and noise,
    through its preprocessing -> canonical Parquet shards (streamed, with a progress bar).
    Under `accelerate launch` the processes share the chunks, each writing its own shards."""
    from lcfm.registry import get_survey
    from lcfm.simulate import simulate as run

    plugin = get_survey(survey)
    options = parse_options(option)
    if options:
        plugin = plugin.with_options(**options)
    summary = run(plugin, n, output, seed=seed, preprocess=not raw,
                  rows_per_shard=rows_per_shard, progress=True)
    if not is_main_process():  # `accelerate launch`: the main process reports
        return
    if as_json:
        print_json(summary)
        return
    classes = ", ".join(f"{c} {k}" for c, k in summary["per_class"].items())
    typer.echo(f"{summary['light_curves']} light curves ({classes}) in "
               f"{summary['seconds']:.1f} s ({summary['light_curves_per_second']:.0f}/s) "
               f"-> {output}")
