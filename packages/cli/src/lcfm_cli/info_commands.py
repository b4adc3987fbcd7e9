"""`lcfm surveys`, `lcfm models` and `lcfm --version`: what is installed."""

from __future__ import annotations

from typing import Annotated

import typer

from lcfm_cli.common import print_json, print_table

Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON list.")]
PACKAGES = ("lcfm", "lcfm-models", "lcfm-surveys", "lcfm-cli")


def versions() -> dict[str, str | None]:
    """Installed version of each lcfm package (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def show_version(value: bool) -> None:
    """Eager `--version`: print the package versions and stop."""
    if not value:
        return
    typer.echo(" ".join(f"{name} {v or 'not installed'}" for name, v in versions().items()))
    raise typer.Exit()


def surveys(as_json: Json = False) -> None:
    """List installed survey plugins: bands, taxonomy, formats."""
    from lcfm.registry import get_survey, survey_names

    described = [get_survey(n).describe() for n in survey_names()]
    if as_json:
        print_json(described)
        return
    print_table(["survey", "bands (Angstrom)", "taxonomy", "formats", "window", "options"], [
        [d["name"], ", ".join(f"{b} {w:.0f}" for b, w in d["bands"].items()),
         ", ".join(d["taxonomy"]), ", ".join(d["formats"]), str(d["default_window"]),
         ", ".join(f"{k}={v}" for k, v in d["options"].items())]
        for d in described])


def models(as_json: Json = False) -> None:
    """List installed model plugins and their paper configurations with parameter counts."""
    from lcfm.registry import get_model, model_names

    described = [get_model(n).describe() for n in model_names()]
    if as_json:
        print_json(described)
        return
    print_table(["model", "configuration", "parameters", "pretraining", "paper"], [
        [d["name"], c["name"], f"{c['parameters']:,}", d["pretraining"] or "-", d["paper"]]
        for d in described for c in d["configurations"]])
