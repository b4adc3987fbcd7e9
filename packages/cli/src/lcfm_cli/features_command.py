"""`lcfm features`, `lcfm fold` and `lcfm baseline`: classical light-curve features, light
curves folded at their periods, and a classifier on the features, on the same splits as
`lcfm finetune` (issue 12, item 3). `fold` and `baseline` are generated from
`lcfm.fold.FoldArgs` and `lcfm.baseline.BaselineArgs`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.common import print_json
from lcfm_cli.generate import dataclass_command


def features(
    data: Annotated[Path, typer.Option(help="Folder of canonical shards.")],
    output: Annotated[Path, typer.Option(help="Parquet file: one row per object.")],
    workers: Annotated[int, typer.Option(
        help="Processes computing features in parallel.")] = 1,
    min_period: Annotated[float, typer.Option(
        help="Shortest period searched by the Lomb-Scargle periodogram, in days.")] = 0.1,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary (counts, NaN features, speed) as JSON.")] = False,
) -> None:
    """Per object and per band: Lomb-Scargle period (power, false-alarm probability),
    amplitude, moments, MAD, percentile ranges, eta, Stetson K, beyond-1-std, linear trend,
    n observations and time span; colours between neighbouring bands. Writes OUTPUT
    (object_id, label, features) and OUTPUT's <stem>.json: NaN features, missing bands and
    dropped points counted with reasons, and the throughput."""
    from lcfm.features import FeatureConfig
    from lcfm.features_io import extract_features, summary_path

    summary = extract_features(data, output, workers=workers,
                               config=FeatureConfig(min_period=min_period), progress=True)
    if as_json:
        print_json(summary)
        return
    nan = sum(summary["nan_values"].values())
    typer.echo(f"{summary['objects']} objects ({summary['light_curves']} light curves, bands "
               f"{', '.join(summary['bands'])}) in {summary['seconds']:.1f} s "
               f"({summary['light_curves_per_second']:.0f} light curves/s); {nan} NaN "
               f"feature values (see {summary_path(output)}) -> {output}")


def report_baseline(summary: dict, args) -> None:
    test = summary["test"]
    result = (f"test macro F1 {test['macro_f1']:.3f}, accuracy {test['accuracy']:.3f} on "
              f"{summary['test_objects']} objects" if test else "no test objects")
    typer.echo(f"{summary['model']} on {summary['n_features']} features, "
               f"{summary['train_objects']} training objects: {result} -> "
               f"{Path(args.output) / 'metrics.json'}")


def baseline_command():
    from lcfm.baseline import BaselineArgs, baseline

    return dataclass_command(
        BaselineArgs, baseline, report_baseline, name="baseline", fixed={"progress": True},
        doc="""A random-forest (or gradient-boosted) classifier on classical features,
        trained and tested on the objects `lcfm finetune --data DATA` trains and tests on;
        metrics.json has finetune's form (test accuracy, macro_f1, class_balanced_f1,
        ece).""")


def report_fold(report: dict, args) -> None:
    dropped = {k: v for k, v in report["dropped"].items() if v}
    lost = "; ".join(f"{v} {k}" for k, v in dropped.items()) or "nothing dropped"
    typer.echo(f"{report['light_curves_written']} of {report['light_curves_read']} light "
               f"curves folded ({report['period_source']}) in {report['seconds']:.1f} s; "
               f"{lost} -> {args.output}")


def fold_command():
    from lcfm.fold import FoldArgs, fold

    return dataclass_command(
        FoldArgs, fold, report_fold, name="fold", fixed={"progress": True},
        doc="""A new dataset folder with every light curve folded at its object's period:
        time becomes (t - epoch) mod period in days, phase 0 at the brightest point, so
        models that cannot find short periods in sparse data see the phased shape. The
        period is the Lomb-Scargle peak of the band with the lowest false-alarm probability
        (as `lcfm features`), or comes from --periods. Objects without one are dropped and
        counted in report.json.""")
