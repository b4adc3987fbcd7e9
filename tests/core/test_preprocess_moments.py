"""Astromer 2's moment filter and band selection as preprocessing steps (issue 11, item 5):
moments as the published code computes them, the conjunction rejects, every rejection is
counted, and every survey that offers the options applies them the same way."""

from __future__ import annotations

import numpy as np
import pytest
from lcfm.exceptions import ConfigError
from lcfm.preprocess import (
    light_curve_moments,
    moment_filter,
    option_bands,
    option_flag,
    select_bands,
)
from lcfm.registry import get_survey, survey_names
from lcfm.report import IngestReport
from scipy import stats

REASON = "moment filter: |kurtosis| > 10, |skewness| > 1 and std > 0.1"


def row(value, band="R", kind="mag", object_id="x"):
    value = np.asarray(value, dtype=np.float32)
    n = value.size
    return {"object_id": object_id, "survey": "test", "time": np.arange(n, dtype=np.float64),
            "value": value, "error": np.full(n, 0.01, np.float32),
            "band": np.asarray(band if not isinstance(band, str) else [band] * n),
            "value_kind": kind, "label": None, "meta": {}}


def spiky(n=300, level=-5.0, spike=-9.0, seed=0):
    """Quiet magnitudes with a few brightening spikes: in flux, heavy-tailed, one-sided and
    wide -- all three criteria hold."""
    rng = np.random.default_rng(seed)
    m = level + rng.normal(0, 0.01, n)
    m[::60] = spike
    return m


def test_moments_match_scipy_on_fluxes():
    m = spiky()
    k, s, d = light_curve_moments(row(m))
    flux = 10 ** (-0.4 * np.asarray(m, np.float32).astype(np.float64))
    assert k == pytest.approx(stats.kurtosis(flux, fisher=True, bias=True), rel=1e-9)
    assert s == pytest.approx(stats.skew(flux, bias=True), rel=1e-9)
    assert d == pytest.approx(np.std(flux, ddof=1), rel=1e-9)
    # flux light curves are used as stored; space="value" skips the conversion
    assert light_curve_moments(row(flux, kind="flux"))[1] == pytest.approx(s, rel=1e-5)
    k_mag, s_mag, _ = light_curve_moments(row(m), space="value")
    assert s_mag == pytest.approx(stats.skew(np.asarray(m, np.float32), bias=True), rel=1e-5)
    assert np.isnan(light_curve_moments(row([1.0]))[0])  # undefined: one point
    assert np.isnan(light_curve_moments(row([2.0, 2.0, 2.0]))[1])  # undefined: no spread


def test_conjunction_rejects_and_is_counted():
    step, report = moment_filter(), IngestReport("test")
    rejected = row(spiky())
    k, s, d = light_curve_moments(rejected)
    assert abs(k) > 10 and abs(s) > 1 and d > 0.1  # the fixture meets all three
    assert step(rejected, report) is None
    assert report.light_curves_rejected == {REASON: 1}
    assert report.points_rejected == {REASON: 300}
    # each criterion alone is not enough: a Gaussian light curve (k ~ 0, s ~ 0) with a
    # large spread, and heavy tails with a tiny spread, are both kept
    wide = row(-5.0 + np.random.default_rng(1).normal(0, 0.5, 400))
    assert light_curve_moments(wide)[2] > 0.1 and step(wide, report) is wide
    faint = row(spiky(level=12.0, spike=11.0))  # fluxes ~1e-5: std far below 0.1
    k, s, d = light_curve_moments(faint)
    assert abs(k) > 10 and abs(s) > 1 and d < 0.1
    assert step(faint, report) is faint
    assert step(row([3.0]), report) is not None  # undefined moments never reject
    assert report.light_curves_rejected == {REASON: 1}
    # thresholds are parameters and name themselves in the reason
    loose, other = moment_filter(kurtosis=0.5, skewness=0.1, std=0.0), IngestReport("t")
    assert loose(faint, other) is None
    assert list(other.light_curves_rejected) == [
        "moment filter: |kurtosis| > 0.5, |skewness| > 0.1 and std > 0"]


def test_select_bands_counts_points_and_whole_light_curves():
    step, report = select_bands(["R"]), IngestReport("test")
    reason = "band not selected (band=R)"
    assert step(row([1.0, 2.0], band="B"), report) is None
    mixed = step(row([1.0, 2.0, 3.0], band=["B", "R", "R"]), report)
    assert mixed["band"].tolist() == ["R", "R"] and mixed["value"].tolist() == [2.0, 3.0]
    kept = row([1.0], band="R")
    assert step(kept, report) is kept
    assert report.points_rejected == {reason: 3}
    assert report.light_curves_rejected == {reason: 1}


def test_option_parsers():
    assert option_bands("macho", "r", ("B", "R")) == ("R",)
    assert option_bands("macho", "R,B", ("B", "R")) == ("B", "R")
    assert option_bands("macho", "all", ("B", "R")) == ("B", "R")
    with pytest.raises(ConfigError, match="band='V'"):
        option_bands("macho", "V", ("B", "R"))
    assert option_flag("s", "moment_filter", "TRUE") is True
    assert option_flag("s", "moment_filter", "off") is False
    with pytest.raises(ConfigError, match="moment_filter='maybe' is not a boolean"):
        option_flag("s", "moment_filter", "maybe")


WITH_FILTER = [n for n in survey_names() if "moment_filter" in get_survey(n).options]


def test_paper_surveys_offer_the_filter():
    assert {"macho", "atlas"} <= set(WITH_FILTER)


@pytest.mark.parametrize("name", WITH_FILTER)
def test_every_survey_applies_the_filter_after_cleaning(name):
    plugin = get_survey(name)
    assert plugin.opts["moment_filter"] is False  # off until a recipe asks for it
    assert "moment_filter" not in [n for n, _ in plugin.preprocessing()]
    on = plugin.with_options(moment_filter="true")
    names = [n for n, _ in on.preprocessing()]
    assert names.index("moment_filter") > names.index("percentile_clip")
    band = sorted(on.selected_bands)[0] if hasattr(on, "selected_bands") else \
        next(iter(plugin.bands))
    rows = on.simulator().simulate(6, np.random.default_rng(0))
    rows.append(row(np.r_[spiky(), spiky(seed=1)], band=band, object_id="spiky"))
    report = IngestReport(name)
    kept = [r for r in (on.preprocess(dict(r), report) for r in rows) if r is not None]
    assert "spiky" not in [r["object_id"] for r in kept]
    assert report.light_curves_rejected[REASON] >= 1
    # the filter rejects exactly what its moments say, nothing else changes
    off_report = IngestReport(name)
    off = [r for r in (plugin.preprocess(dict(r), off_report) for r in rows) if r is not None]
    assert len(off) - len(kept) == report.light_curves_rejected[REASON]
    with pytest.raises(ConfigError, match="not a boolean"):
        plugin.with_options(moment_filter="perhaps")
