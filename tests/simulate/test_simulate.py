"""`lcfm simulate`: survey simulators (classes, cadence, determinism, schema, learnability),
the streaming driver, the fast shard frames and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from lcfm.exceptions import ConfigError, DataError
from lcfm.registry import get_survey, survey_names
from lcfm.schema import validate
from lcfm.shards import read_shards, shard_paths
from lcfm.simulate import SUMMARY_FILE, simulate
from lcfm.simulate.cadence import cadence_statistics
from lcfm.simulate.signals import distance_modulus, gaussian_process_on_grid, grid_frequencies
from lcfm.survey import SurveyPlugin


def _has_simulator(name: str) -> bool:
    try:
        get_survey(name).simulator()
    except ConfigError:
        return False
    return True


SURVEYS = [name for name in survey_names() if _has_simulator(name)]

#: (low, high) of the median over light curves: gap between observations (days), baseline
#: (days) and points per light curve, from each survey's cadence (issue: Kepler 29.4-min
#: cadence over ~90-day quarters; TESS 30-min cadence over 27.4-day sectors; MACHO median
#: gap 3-4 days over years; ATLAS ~15-minute gaps within nights; ELAsTiCC interleaved bands)
CADENCE = {
    "kepler": {"median_gap_days": (0.0203, 0.0206), "baseline_days": (85, 98),
               "points": (3800, 4800)},
    "tess_qlp": {"median_gap_days": (0.0207, 0.0210), "baseline_days": (25.5, 28),
                 "points": (1050, 1320)},
    "macho": {"median_gap_days": (3.0, 4.0), "baseline_days": (1400, 2750),
              "points": (200, 700)},
    "atlas": {"median_gap_days": (10 / 1440, 20 / 1440), "baseline_days": (350, 730),
              "points": (150, 700)},
    "elasticc": {"median_gap_days": (0.015, 0.06), "baseline_days": (60, 300),
                 "points": (30, 200)},
}
VALUE_KIND = {"kepler": "flux", "tess_qlp": "flux", "elasticc": "flux", "macho": "mag",
              "atlas": "mag"}

class Simulations:
    """Simulated datasets shared by the tests of this module, made once per (survey, n,
    seed)."""

    def __init__(self, factory):
        self.factory = factory
        self.made: dict = {}

    def folder(self, name: str, n: int, seed: int = 0):
        key = (name, n, seed)
        if key not in self.made:
            out = self.factory.mktemp(f"sim-{name}")
            simulate(get_survey(name), n, out, seed=seed)
            self.made[key] = (out, read_shards(out))
        return self.made[key][0]

    def frame(self, name: str, n: int, seed: int = 0) -> pl.DataFrame:
        self.folder(name, n, seed)
        return self.made[(name, n, seed)][1]


@pytest.fixture(scope="module")
def simulations(tmp_path_factory) -> Simulations:
    return Simulations(tmp_path_factory)


def test_built_in_surveys_have_simulators():
    assert {"kepler", "tess_qlp", "macho", "atlas", "elasticc"} <= set(SURVEYS)


@pytest.mark.parametrize("name", SURVEYS)
def test_every_class_is_produced(simulations, name):
    classes = get_survey(name).taxonomy.classes
    frame = simulations.frame(name, 2 * len(classes))
    counts = frame["label"].value_counts()
    assert sorted(counts["label"].to_list()) == sorted(classes)
    assert counts["count"].to_list() == [2] * len(classes)  # balanced


@pytest.mark.parametrize("name", SURVEYS)
def test_cadence_statistics(simulations, name):
    survey = get_survey(name)
    frame = simulations.frame(name, 4 * len(survey.taxonomy.classes))
    times = [np.asarray(t) for t in frame["time"].to_list()]
    stats = cadence_statistics(times)
    for key, (low, high) in CADENCE.get(name, {}).items():
        assert low <= stats[key] <= high, f"{name} {key} = {stats[key]:.4g}"
    assert set(frame["value_kind"]) == {survey.value_kind}
    if name in VALUE_KIND:
        assert survey.value_kind == VALUE_KIND[name]
    bands = frame["band"].explode().cast(pl.String).unique().to_list()
    assert set(bands) <= set(survey.bands)
    if name == "elasticc":  # all six bands interleaved in one time-sorted sequence
        assert set(bands) == set("ugrizY")
        per_row = frame["band"].list.eval(pl.element().n_unique()).list.first()
        assert per_row.median() >= 4


@pytest.mark.parametrize("name", SURVEYS)
def test_same_seed_same_output_other_seed_differs(tmp_path, name):
    survey = get_survey(name)
    n = len(survey.taxonomy.classes) + 3
    frames = []
    for run, seed in enumerate((7, 7, 8)):
        simulate(survey, n, tmp_path / str(run), seed=seed)
        frames.append(read_shards(tmp_path / str(run)))
    assert frames[0].equals(frames[1])
    assert not frames[0].select("time", "value").equals(frames[2].select("time", "value"))


@pytest.mark.parametrize("name", SURVEYS)
def test_output_passes_schema_validation(simulations, name):
    folder = simulations.folder(name, 2 * len(get_survey(name).taxonomy.classes))
    for path in shard_paths(folder):
        validate(pl.read_parquet(path), source=str(path))
    report = json.loads((folder / "report.json").read_text())
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    assert report["balanced"] and report["light_curves_written"] == summary["light_curves"]
    assert summary["light_curves_per_second"] > 0


@pytest.mark.parametrize("name", SURVEYS)
def test_raw_output_is_canonical_too(tmp_path, name):
    summary = simulate(get_survey(name), 5, tmp_path, seed=1, preprocess=False)
    assert summary["preprocessing"] == [] and summary["light_curves"] == 5
    assert read_shards(tmp_path).height == 5  # read_shards validates


# ---- learnable, but not from the sampling alone --------------------------------------------
def _single_band_features(t, y, e, fmax):
    from astropy.timeseries import LombScargle
    from scipy import stats

    spread = max(y.std(), 1e-12)
    q5, q25, q50, q75, q95 = np.percentile(y, [5, 25, 50, 75, 95])
    freq = np.linspace(1.0 / max(t[-1] - t[0], 1.0), fmax, 2500)
    power = LombScargle(t, y).power(freq, method="fast")
    best = int(np.nanargmax(power))
    return [np.log10(freq[best]), power[best], q95 - q5, (q75 - q25) / spread, spread,
            stats.skew(y), stats.kurtosis(y), np.mean(np.diff(y) ** 2) / spread ** 2,
            np.median(e) / spread, q50]


def _multi_band_features(t, y, e, band):
    from astropy.timeseries import LombScargle
    from scipy import stats

    snr = y / e
    out = []
    for b in "ugrizY":
        k = band == b
        out += [snr[k].max(), snr[k].min(), np.arcsinh(np.median(y[k]))] if k.any() else [0] * 3
    detected = np.abs(snr) >= 5
    peak = int(np.argmax(snr))
    if detected.any():
        td = t[detected]
        out += [td[-1] - td[0], t[peak] - td[0], td[-1] - t[peak], detected.mean(),
                np.mean(snr < -5)]
    else:
        out += [0] * 5
    freq = np.linspace(1.0 / max(t[-1] - t[0], 1.0), 5.0, 1000)
    power = LombScargle(t, snr).power(freq, method="fast")
    best = int(np.nanargmax(power))
    return out + [np.log10(freq[best]), power[best], stats.skew(snr), stats.kurtosis(snr),
                  np.arcsinh(y.max()), np.arcsinh(y.min())]


def _features(frame: pl.DataFrame, fmax: float) -> np.ndarray:
    rows = []
    for t, y, e, b in zip(frame["time"].to_list(), frame["value"].to_list(),
                          frame["error"].to_list(), frame["band"].to_list(), strict=True):
        t, y, e = np.asarray(t), np.asarray(y, float), np.asarray(e, float)
        b = np.asarray(b)
        with np.errstate(divide="ignore", invalid="ignore"):  # flat periodograms
            rows.append(_multi_band_features(t, y, e, b) if len(set(b.tolist())) > 1
                        else _single_band_features(t, y, e, fmax))
    return np.clip(np.nan_to_num(np.asarray(rows, dtype=np.float64)), -1e9, 1e9)


def _held_out_score(features, labels, **forest) -> float:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.3, random_state=0, stratify=labels)
    model = RandomForestClassifier(n_estimators=150, random_state=0, n_jobs=1, **forest)
    return balanced_accuracy_score(test_y, model.fit(train_x, train_y).predict(test_x))


#: survey -> (light curves per class, highest frequency searched, minimum balanced accuracy)
LEARNABLE = {"macho": (50, 5.0, 0.6), "tess_qlp": (45, 24.0, 0.5),
             "elasticc": (30, 5.0, 0.35)}


@pytest.mark.parametrize("name", [s for s in LEARNABLE if s in SURVEYS])
def test_classes_are_learnable_by_a_simple_baseline(simulations, name):
    per_class, fmax, minimum = LEARNABLE[name]
    classes = get_survey(name).taxonomy.classes
    frame = simulations.frame(name, per_class * len(classes), seed=11)
    score = _held_out_score(_features(frame, fmax), np.asarray(frame["label"].to_list()))
    chance = 1 / len(classes)
    assert minimum <= score < 0.99, f"{name}: balanced accuracy {score:.3f} (chance {chance:.3f})"


@pytest.mark.parametrize("name", SURVEYS)
def test_points_and_time_span_do_not_give_the_label_away(simulations, name):
    classes = get_survey(name).taxonomy.classes
    per_class = LEARNABLE.get(name, (40,))[0]
    frame = simulations.frame(name, per_class * len(classes), seed=11)
    sampling = np.column_stack([frame["time"].list.len().to_numpy(),
                                (frame["time"].list.last() - frame["time"].list.first())
                                .to_numpy()])
    score = _held_out_score(sampling, np.asarray(frame["label"].to_list()), min_samples_leaf=10)
    assert score < 1 / len(classes) + 0.12, f"{name}: {score:.3f} from sampling alone"


# ---- driver, frames, signals, CLI -------------------------------------------------------------
def test_streams_chunks_into_shards(tmp_path, monkeypatch):
    survey = get_survey("macho")
    simulator = survey.simulator()
    simulator.chunk_size = 8
    calls = []
    original = simulator.simulate

    def spy(n, rng, **kwargs):
        calls.append(n)
        return original(n, rng, **kwargs)

    simulator.simulate = spy
    monkeypatch.setattr(type(survey), "simulator", lambda self: simulator)
    summary = simulate(survey, 30, tmp_path, seed=2, rows_per_shard=10)
    assert calls == [8, 8, 8, 6]  # generated chunk by chunk
    assert summary["shards"] == ["part-00000.parquet", "part-00001.parquet",
                                 "part-00002.parquet"]
    frame = read_shards(tmp_path)
    assert frame["object_id"].to_list() == [f"sim2-{i:09d}" for i in range(30)]
    with pytest.raises(DataError, match="already holds"):
        simulate(survey, 3, tmp_path)


def test_bad_arguments_and_missing_simulator(tmp_path):
    with pytest.raises(ConfigError, match="--n"):
        simulate(get_survey("macho"), 0, tmp_path)
    with pytest.raises(ConfigError, match="--seed"):
        simulate(get_survey("macho"), 3, tmp_path, seed=-1)

    class NoSimulator(SurveyPlugin):
        name = "nosim"

    with pytest.raises(ConfigError, match="survey 'nosim' has no simulator"):
        simulate(NoSimulator(), 3, tmp_path)



def test_gaussian_process_variance_is_the_psd_integral():
    rng = np.random.default_rng(0)
    freqs, _ = grid_frequencies(2000, 0.02)
    psd = np.tile(np.where((freqs > 1) & (freqs < 3), 0.5, 0.0), (200, 1))  # variance 1.0
    samples = gaussian_process_on_grid(psd, 2000, 0.02, rng)
    assert samples.var() == pytest.approx(1.0, rel=0.05)
    assert distance_modulus(0.1) == pytest.approx(38.3, abs=0.1)  # flat LCDM, H0 = 70


def test_cli_command(tmp_path):
    import lcfm_cli.simulate_command  # noqa: F401  registers `simulate` on the app
    from lcfm_cli.main import app
    from typer.testing import CliRunner

    out = tmp_path / "sim"
    result = CliRunner().invoke(app, ["simulate", "--survey", "atlas", "--n", "8", "--output",
                                      str(out), "--seed", "4", "--option", "band=all"])
    assert result.exit_code == 0, result.output
    assert "8 light curves (CB 2, DB 2, Mira 2, Pulse 2)" in result.output
    frame = read_shards(out)
    assert set(frame["band"].explode().cast(pl.String)) == {"c", "o"}
    again = CliRunner().invoke(app, ["simulate", "--survey", "atlas", "--n", "8", "--output",
                                     str(out)])
    assert again.exit_code != 0 and isinstance(again.exception, DataError)
