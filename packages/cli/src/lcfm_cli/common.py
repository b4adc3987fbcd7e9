"""Helpers the command modules share: survey options, JSON and tables on stdout, and who
prints under `accelerate launch`."""

from __future__ import annotations

from lcfm_cli.generate import is_main_process, parse_key_values, print_json

__all__ = ["is_main_process", "parse_options", "print_json", "print_table"]


def parse_options(options: list[str] | None, flag: str = "--option") -> dict:
    """Repeatable `key=value` survey or model options -> dict (values read as JSON where
    they parse)."""
    return parse_key_values(options or [], flag)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
