"""What a dataset's survey tells the engine: band wavelengths and the taxonomy order."""

from __future__ import annotations

import warnings

import polars as pl

from lcfm.exceptions import DataError, PluginNotFoundError
from lcfm.registry import get_survey


def survey_context(frame: pl.DataFrame) -> tuple[str, dict[str, float], list[str]]:
    """(survey name, band -> wavelength in Angstrom, taxonomy classes) for a frame of one
    survey, or of several (a combined dataset: "+"-joined name, the union of bands and
    classes, see `lcfm.combined`). A survey whose plugin is not installed still works:
    bands get no wavelength (0.0) and classes come in sorted order, with a warning."""
    surveys = sorted(frame["survey"].drop_nulls().unique().to_list())
    if not surveys:
        raise DataError("the light curves name no survey")
    if len(surveys) > 1:  # a dataset made by `lcfm combine` (lcfm.combined)
        from lcfm.combined import combined_survey

        plugin = combined_survey(surveys)
        return plugin.name, dict(plugin.bands), list(plugin.taxonomy.classes)
    name = surveys[0]
    try:
        plugin = get_survey(name)
    except PluginNotFoundError:
        warnings.warn(f"survey plugin {name!r} is not installed: bands carry no wavelength",
                      stacklevel=2)
        bands = frame["band"].explode().cast(pl.String).unique().sort().to_list()
        labels = frame["label"].drop_nulls().unique().sort().to_list()
        return name, dict.fromkeys(bands, 0.0), labels
    return name, {b: float(w) for b, w in plugin.bands.items()}, list(plugin.taxonomy.classes)
