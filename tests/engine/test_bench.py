"""`lcfm bench` reports throughput as numbers (no timing assertions: speed belongs here,
not in tests)."""

import pytest
from lcfm.engine.bench import bench_model
from lcfm.registry import get_model, model_names


@pytest.mark.parametrize("model", model_names())
def test_bench_reports_throughput(model):
    plugin = get_model(model)
    result = bench_model(model, "tiny", n=8, survey="elasticc" if plugin.causal else "macho",
                         batch_size=4, length=32)
    for key in ("collate_per_second", "inference_per_second", "train_per_second"):
        assert result[key] > 0, key
    assert result["parameters"] == plugin.parameter_count("tiny") and result["light_curves"] == 8


def test_bench_survey_reports_rates():
    from lcfm.engine.bench import bench_survey

    result = bench_survey("macho", n=12)
    assert result["simulate_per_second"] > 0 and result["ingest_points_per_second"] > 0
    assert result["ingest_points"] > 1000  # the bundled sample's points, all read
