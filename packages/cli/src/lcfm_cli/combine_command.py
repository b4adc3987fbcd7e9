"""`lcfm combine` (datasets of several surveys, `lcfm.combined`) and `lcfm ensemble`
(bootstrap ensembles of classifiers, `lcfm.engine.ensemble`), generated from their
dataclasses."""

from __future__ import annotations

import typer

from lcfm_cli.generate import dataclass_command


def report_combine(report: dict, args) -> None:
    parts = ", ".join(f"{p['light_curves']} from {p['data']}" for p in report["combined_from"])
    typer.echo(f"{report['light_curves_written']} light curves of {report['survey']} "
               f"({parts}) -> {args.output}")


def combine_command():
    from lcfm.combined import CombineArgs, run_combine

    return dataclass_command(CombineArgs, run_combine, report_combine, name="combine",
                             doc="""Combine dataset folders of several surveys into one (e.g.
Kepler + TESS, ASTRAFier sect. 6.3): object ids become <survey>:<object_id>, bands keep
their wavelengths, the surveys' value kind must agree. Train on it with --survey A+B.""")


def report_ensemble(summary: dict, args) -> None:
    test = summary.get("test") or {}
    line = f"{args.members} members ({args.sampling}) in {args.output}"
    if test:
        line += (f"; ensemble test accuracy {test['accuracy']:.3f}, macro F1 "
                 f"{test['macro_f1']:.3f}")
    typer.echo(line)


def ensemble_command():
    from lcfm.engine.ensemble import EnsembleArgs, run_ensemble

    return dataclass_command(EnsembleArgs, run_ensemble, report_ensemble, name="ensemble",
                             doc="""Train an ensemble of classifiers on resampled training
objects (ATCAT sect. 2.7 iv and 3.2) into OUTPUT/member-k; predict and evaluate read the
folder as one model averaging the members' probabilities.""")


__all__ = ["combine_command", "ensemble_command", "report_combine", "report_ensemble"]
