"""`lcfm bench`: data path and model throughput, fraction of matmul peak, padding, peak
memory and corpus-size scaling of a model, as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.common import print_json


def _sizes(text: str) -> list[int]:
    from lcfm.exceptions import ConfigError

    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--n {text!r}: expected light-curve counts separated by commas, "
                          "e.g. 1000,4000,16000") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--n {text!r}: expected positive light-curve counts")
    return sizes


def bench(
    model: Annotated[list[str] | None, typer.Option(
        help="Model plugin or paper configuration, e.g. atcat or astromer-v1 (repeatable; "
             "default: every installed model).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Folder of canonical shards (its first N light curves per size); default: "
             "simulated light curves of --survey.")] = None,
    n: Annotated[str, typer.Option(
        help="Corpus size(s) in light curves, comma-separated for scaling "
             "(e.g. 1000,4000,16000; each size then runs in a fresh process).")] = "1000",
    survey: Annotated[str | None, typer.Option(
        help="Survey to simulate without --data (default: elasticc for causal models, "
             "macho otherwise).")] = None,
    configuration: Annotated[str | None, typer.Option(
        help="Configuration of the model plugin, e.g. tiny (default: --model's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Light curves per batch.")] = 32,
    device: Annotated[str | None, typer.Option(
        help="torch device of the model measurement (default: cuda if present, else cpu).")]
    = None,
    model_batches: Annotated[int, typer.Option(
        help="Collated batches the model is timed on.")] = 8,
    seconds: Annotated[float, typer.Option(
        help="Minimum seconds of each model timing.")] = 1.0,
    surveys: Annotated[bool, typer.Option(
        help="Also time simulation and ingest of every survey.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON on stdout (bench always does; accepted as "
                       "on every command).")] = False,
) -> None:
    """Cost of a model on a corpus, as JSON: light curves/s of the data path per process
    (shards -> tensors) and of the model (forward; forward+backward), the fraction of this
    machine's fp32 matmul peak (measured in the same run), padding_fraction, peak RSS, and
    with several --n the scaling with corpus size."""
    sizes = _sizes(n)  # a typo fails at once, before torch is imported
    from lcfm.engine.bench import bench as run

    print_json(run(model, surveys=surveys, data=data, survey=survey, ns=sizes,
                   batch_size=batch_size, configuration=configuration, device=device,
                   model_batches=model_batches, min_seconds=seconds))
