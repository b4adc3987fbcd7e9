"""`lcfm simulate --cadence-from PATH` (issue 12, item 5): simulated light curves on the
sampling of real files read with the survey's own readers (MACHO, ELAsTiCC, Kepler from
../shared/data; the five-band example plugin), with noise drawn from the real errors."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from lcfm.exceptions import DataError, InputFileError
from lcfm.registry import get_survey
from lcfm.shards import read_shards
from lcfm.simulate import SimulateArgs, Simulated, SurveySimulator, run_simulate, simulate
from lcfm.simulate.borrowed import borrow_cadence, read_samplings
from lcfm.simulate.cadence import nightly_visits
from lcfm.simulate.noise import MagnitudeNoise

FIVEBAND = importlib.util.find_spec("lcfm_survey_fiveband") is not None


def _sources(survey, path):
    """(object id, bands) -> sampling of the real light curves (MACHO: one band each)."""
    samplings, _ = read_samplings(survey, path, bands=survey.simulator().bands)
    names = survey.simulator().bands
    return {(s.object_id, "".join(sorted({names[b] for b in s.band}))): s for s in samplings}


def _source_of(row, sources):
    return sources[(row["meta"]["cadence_from"], "".join(sorted(set(row["band"]))))]


def test_macho_borrows_times_bands_and_errors_of_real_files(shared_data, tmp_path):
    survey = get_survey("macho")
    summary = simulate(survey, 24, tmp_path / "o", seed=2, preprocess=False,
                       cadence_from=shared_data / "macho")
    described = summary["simulator"]
    assert described["cadence_from"] == str(shared_data / "macho")
    assert described["cadence_light_curves"] >= 20
    assert described["noise"] == "real reported uncertainties"
    sources = _sources(survey, shared_data / "macho")
    frame = read_shards(tmp_path / "o")
    assert frame.height == 24 and set(frame["label"]) == set(survey.taxonomy.classes)
    for row in frame.iter_rows(named=True):
        source = _source_of(row, sources)
        np.testing.assert_allclose(row["time"], source.time)  # the real sampling
        np.testing.assert_allclose(row["error"], source.error, rtol=1e-6)  # its errors
    # with the survey's preprocessing the rows look ingested (errors > 1 mag dropped)
    kept = simulate(survey, 12, tmp_path / "p", seed=2, cadence_from=shared_data / "macho")
    assert kept["light_curves"] == 12
    assert read_shards(tmp_path / "p")["error"].explode().max() <= 1.0


def test_elasticc_borrows_multiband_alert_sampling(shared_data, tmp_path):
    survey = get_survey("elasticc")
    samplings = read_samplings(survey, shared_data / "elasticc")[0]
    by_id = {}
    for sampling in samplings:
        by_id.setdefault(sampling.object_id, []).append(sampling)
    summary = simulate(survey, 40, tmp_path / "raw", seed=0, preprocess=False,
                       cadence_from=shared_data / "elasticc")
    assert summary["simulator"]["cadence_light_curves"] == len(samplings) > 500
    frame = read_shards(tmp_path / "raw")
    for row in frame.iter_rows(named=True):
        # an object id can name light curves of several files: the row is one of them
        assert any(np.array_equal(row["time"], s.time) for s in by_id[row["meta"]["cadence_from"]])
    assert set(frame["band"].explode()) == set("ugrizY")
    # through ATCAT's preprocessing (window around the first alert, t = 0 at its start)
    kept = simulate(survey, 40, tmp_path / "o", seed=0, cadence_from=shared_data / "elasticc")
    assert kept["light_curves"] == 40
    lengths = read_shards(tmp_path / "o")["time"].list.len().to_numpy()
    assert lengths.min() >= 1 and lengths.max() <= max(s.time.size for s in samplings)


def test_kepler_sampling_goes_on_the_simulator_grid(shared_data, tmp_path):
    survey = get_survey("kepler").with_options(stitch=False)  # one sampling per quarter
    folder = tmp_path / "k"
    folder.mkdir()
    for path in sorted(shared_data.joinpath("kepler").glob("kplr005899262-*_llc.fits")):
        shutil.copy(path, folder)
    sources = read_samplings(survey, folder)[0]
    simulate(survey, 4, tmp_path / "o", seed=1, preprocess=False, cadence_from=folder)
    frame = read_shards(tmp_path / "o")
    assert len(sources) == 2  # two quarters of one star
    for row in frame.iter_rows(named=True):
        source = next(s for s in sources if row["time"][0] == pytest.approx(s.time[0]))
        assert len(row["time"]) == source.time.size  # one grid cell per real point
        # each simulated time is the real one rounded to the 29.4-min grid
        assert np.abs(np.asarray(row["time"]) - source.time).max() < 0.5 * 0.0205


class ConstantStars(SurveySimulator):
    """Constant 15-mag stars whose own noise (0.5 mag) would be obvious."""

    noise = MagnitudeNoise(ref_mag=15.0, ref_error=0.5, floor=0.5, error_scatter=0.0)

    @property
    def classes(self):
        return ("RRL",)

    def cadence(self, m, rng):
        return nightly_visits(m, rng, start=0.0, baseline=100.0, night_gap_median=2.0,
                              night_gap_sigma=0.3)

    def light_curves(self, label, cadence, rng):
        value, error = self.noise.apply(np.full(cadence.time.shape, 15.0), rng)
        return Simulated(cadence, value, error)


@pytest.mark.skipif(not FIVEBAND, reason="pip install -e tests/plugin_fiveband")
def test_noise_is_drawn_from_the_real_errors():
    survey = get_survey("fiveband")
    simulator = borrow_cadence(ConstantStars(survey), survey.sample_path())
    rows = simulator.simulate(64, np.random.default_rng(0))
    pulls = np.concatenate([(r["value"] - 15.0) / r["error"] for r in rows])
    errors = np.concatenate([r["error"] for r in rows])
    assert errors.max() < 0.5  # the borrowed errors, not the simulator's 0.5 mag
    assert abs(pulls.std() - 1.0) < 0.05 and abs(pulls.mean()) < 0.05
    assert simulator.inner.noise is ConstantStars.noise  # restored after each class
    assert "noise" not in simulator.inner.__dict__


@pytest.mark.skipif(not FIVEBAND, reason="pip install -e tests/plugin_fiveband")
def test_run_simulate_from_options_with_a_plugin_survey(tmp_path):
    survey = get_survey("fiveband")
    summary = run_simulate(SimulateArgs(
        survey="fiveband", n=10, output=tmp_path / "o", survey_options=["min_points=30"],
        cadence_from=survey.sample_path(), cadence_limit=4))
    assert summary["light_curves"] == 10
    assert summary["simulator"]["cadence_light_curves"] <= 4
    frame = read_shards(tmp_path / "o")
    assert frame["time"].list.len().min() >= 30  # the option arrived as the int 30
    assert set(frame["band"].explode()) == set("ugriz")


def test_unusable_cadence_source_is_a_one_line_error(tmp_path, shared_data):
    survey = get_survey("macho")
    with pytest.raises(InputFileError, match="no such file"):
        simulate(survey, 4, tmp_path / "o", cadence_from=tmp_path / "missing")
    lonely = tmp_path / "one.csv"
    lonely.write_text(shared_data.joinpath("macho", "macho_export_rrc_sample.csv")
                      .read_text().splitlines()[0] + "\n")
    with pytest.raises((DataError, InputFileError)) as info:
        simulate(survey, 4, tmp_path / "o2", cadence_from=lonely)
    assert "\n" not in str(info.value)


def test_simulate_args_declare_every_option():
    from dataclasses import fields

    from lcfm.options import option_help

    declared = {f.name: f for f in fields(SimulateArgs)}
    assert {"survey", "n", "output", "seed", "raw", "survey_options", "rows_per_shard",
            "cadence_from", "cadence_format", "cadence_limit"} <= set(declared)
    assert declared["survey_options"].metadata["flag"] == "option"
    assert all(option_help(f) for f in declared.values() if f.name != "progress")
    assert declared["cadence_from"].type in (Path | None, "Path | None")
