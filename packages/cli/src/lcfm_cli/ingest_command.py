"""`lcfm ingest`: native survey files -> canonical Parquet shards and report.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.common import is_main_process, parse_options, print_json


def ingest(
    survey: Annotated[str, typer.Option(help="Survey plugin name (see `lcfm surveys`).")],
    output: Annotated[Path, typer.Option(help="Folder for the shards and report.json.")],
    input: Annotated[Path | None, typer.Option(
        help="Native file or folder (default: the survey's bundled sample).")] = None,
    format: Annotated[str | None, typer.Option(help="Force one input format.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Label catalogue joined at ingest, where the survey supports it.")] = None,
    option: Annotated[list[str] | None, typer.Option(
        help="Survey option key=value (repeatable).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Abort on the first file that cannot be read (default: reject it, "
                         "list it in report.json and ingest the rest).")] = False,
    workers: Annotated[int, typer.Option(
        help="Processes reading and preprocessing files in parallel; the shards and "
             "report.json are those of one process.")] = 1,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the ingest report as JSON on stdout.")] = False,
) -> None:
    """Native survey files -> canonical Parquet shards + report.json.

    A file that cannot be read is rejected (named with its reason in report.json under
    files_rejected) and the rest is ingested; --strict aborts instead. A light curve seen
    twice is rejected as a duplicate object_id, or merged where the format says so. The
    folder is marked while it is written: readers refuse it, a second ingest into it fails
    at once, and rerunning a killed ingest restarts it cleanly. Under `accelerate launch`
    the processes share the files (i mod n) and the main process writes the dataset."""
    from lcfm.ingest import ingest as run_ingest
    from lcfm.registry import get_survey

    options = parse_options(option)
    if labels is not None:
        options["labels"] = str(labels)
    plugin = get_survey(survey)
    if options:
        plugin = plugin.with_options(**options)
    report = run_ingest(plugin, input, output, fmt=format, progress=True, strict=strict,
                        workers=workers)
    if not is_main_process():  # `accelerate launch`: the main process reports
        return
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    notes = []
    if report.duplicate_object_ids:
        notes.append(f"{report.duplicate_object_ids} duplicate light curve(s) rejected")
    if report.light_curves_merged:
        notes.append(f"{report.light_curves_merged} merged into others of the same object")
    n_bad = len(report.files_rejected)
    notes.append(f"{n_bad} file{'' if n_bad == 1 else 's'} rejected"
                 + (" (see report.json)" if n_bad else ""))
    typer.echo(f"{summary['light_curves_written']} light curves, "
               f"{summary['points_written']} of {summary['points_read']} points written "
               f"to {output} (rejected: {summary['points_rejected'] or 'none'}); "
               + "; ".join(notes))
