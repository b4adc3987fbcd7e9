"""benchmarks/time_encodings.py probes each model's own time encoding: the probe must read
a pure sinusoid's frequency exactly and find each model's fastest channel."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from lcfm.registry import get_model, model_names

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "time_encodings.py"
spec = importlib.util.spec_from_file_location("time_encodings", SCRIPT)
time_encodings = importlib.util.module_from_spec(spec)
spec.loader.exec_module(time_encodings)


def test_the_probe_reads_a_sinusoids_frequency():
    omega = torch.tensor([2.0, 3.0, 40.0], dtype=torch.float64)
    found = time_encodings.angular_frequencies(lambda t: torch.sin(t[..., None] * omega))
    assert found == pytest.approx(omega.numpy(), rel=0.01)


@pytest.mark.parametrize("name", model_names())
def test_every_model_has_a_probe_and_a_finite_shortest_period(name):
    config = get_model(name).make_config(None)
    omega = time_encodings.angular_frequencies(
        time_encodings.encoding_of(name, config, median_points=200))
    assert omega.ndim == 1 and omega.size >= 8
    assert 0.05 < 2 * math.pi / omega.max() < 100.0


@pytest.mark.parametrize("name,fastest", [
    ("astromer", 1.0),  # w_0 = base^0: one radian per day
    ("atcat", 1500.0 ** 0.1),  # a_k = T_max^(-b_k), b_0 = time_min_exponent = -0.1
])
def test_the_fastest_channel_matches_the_papers_formula(name, fastest):
    config = get_model(name).make_config(None)
    omega = time_encodings.angular_frequencies(
        time_encodings.encoding_of(name, config, median_points=200))
    assert omega.max() == pytest.approx(fastest, rel=0.01)
