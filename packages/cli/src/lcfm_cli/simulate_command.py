"""`lcfm simulate`: labeled synthetic light curves in a survey's cadence and noise,
generated from `lcfm.simulate.SimulateArgs`."""

from __future__ import annotations

import typer

from lcfm_cli.generate import dataclass_command


def report_simulate(summary: dict, args) -> None:
    classes = ", ".join(f"{c} {k}" for c, k in summary["per_class"].items())
    typer.echo(f"{summary['light_curves']} light curves ({classes}) in "
               f"{summary['seconds']:.1f} s ({summary['light_curves_per_second']:.0f}/s) "
               f"-> {args.output}")


def simulate_command():
    from lcfm.simulate import SimulateArgs, run_simulate

    return dataclass_command(
        SimulateArgs, run_simulate, report_simulate, name="simulate",
        fixed={"progress": True},
        doc="""Labeled synthetic light curves of a survey's taxonomy, in its cadence and
        noise (or those of real files, --cadence-from), through its preprocessing ->
        canonical Parquet shards (streamed, with a progress bar). Under `accelerate launch`
        the processes share the chunks, each writing its own shards.""")
