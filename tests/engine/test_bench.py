"""`lcfm bench` reports cost as numbers (issue 10 item 9). Speed is never asserted here
(it belongs to benchmarks/); the tests check the JSON record's keys, types, that every
rate is positive and finite, and that counts and sizes are the ones asked for."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from lcfm.engine.bench import bench_model, bench_survey
from lcfm.registry import get_model, get_survey, model_names

FAST = {"configuration": "tiny", "batch_size": 8, "model_batches": 1, "min_seconds": 0.01,
        "isolate": False, "matmul_size": 128}


@pytest.fixture(scope="module")
def elasticc_dir(tmp_path_factory):
    from lcfm.simulate import simulate

    path = tmp_path_factory.mktemp("bench") / "elasticc"
    simulate(get_survey("elasticc"), 40, path, seed=3)
    return path


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def check_record(record: dict, plugin, n: int) -> None:
    assert record["model"] == plugin.name and record["configuration"] == "tiny"
    assert record["parameters"] == plugin.parameter_count("tiny")
    assert record["data_path"]["light_curves"] == n
    for key in ("light_curves_per_second", "seconds", "light_curves_per_cpu_second",
                "cpu_seconds"):
        assert _positive(record["data_path"][key]), key
    rates = record["model_throughput"]
    for key in ("forward_per_second", "train_per_second", "flops_per_light_curve_forward",
                "flops_per_light_curve_train", "forward_gflops", "train_gflops"):
        assert _positive(rates[key]), key
    # a training step does the forward pass and more: at least as many counted FLOPs
    assert rates["flops_per_light_curve_train"] > rates["flops_per_light_curve_forward"]
    for key in ("matmul_peak_gflops", "forward_fraction_of_peak", "train_fraction_of_peak",
                "peak_rss_mb"):
        assert _positive(record[key]), key
    assert 0 <= record["padding_fraction"] < 1
    json.dumps(record)  # the record is plain JSON (no tensors, no numpy scalars)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    return tmp_path_factory.mktemp("corpora")


@pytest.mark.parametrize("model", model_names())
def test_bench_reports_every_number_for_every_model(model, corpora):
    plugin = get_model(model)
    record = bench_model(model, ns=[12], workdir=corpora, **FAST)
    check_record(record, plugin, 12)
    assert record["survey"] == ("elasticc" if plugin.causal else "macho")
    # the simulated corpus is kept in workdir for the next model
    assert (corpora / f"{record['survey']}-12" / "simulation.json").is_file()
    assert record["data_path"]["task"] == ("pretrain" if plugin.pretraining_class
                                          else "classify")
    assert [p["light_curves"] for p in record["scaling"]] == [12]


def test_bench_on_a_data_folder_scales_with_its_first_n_curves(elasticc_dir):
    record = bench_model("astromer", data=elasticc_dir, ns=[30, 10, 1000], **FAST)
    # sizes sorted; a size beyond the folder is capped at the 40 curves it holds
    assert [p["light_curves"] for p in record["scaling"]] == [10, 30, 40]
    assert record["survey"] == "elasticc" and record["data"] == str(elasticc_dir)
    for point in record["scaling"]:
        assert _positive(point["epoch_seconds"]) and point["epoch_seconds"] > point["seconds"]
        assert 0 <= point["padding_fraction"] < 1 and _positive(point["peak_rss_mb"])
    assert record["data_path"]["batches"] == math.ceil(40 / FAST["batch_size"])


def test_bench_isolated_sizes_report_their_own_memory(elasticc_dir):
    """Each size runs in a spawned process (one size here: the spawn costs an import)."""
    record = bench_model("astroco", data=elasticc_dir, ns=[8], **{**FAST, "isolate": True})
    assert record["peak_rss_isolated"] is True
    ((point),) = record["scaling"]
    assert point["light_curves"] == 8 and _positive(point["peak_rss_mb"])
    # the child's batches came back for the model measurement
    assert record["model_throughput"]["light_curves"] == FAST["batch_size"]


def test_pyarrow_reader_matches_canonical_rows(elasticc_dir):
    """The reader used without lcfm.stream gives the same observations and bands as the
    canonical rows of read_shards, batch by batch."""
    from lcfm.data import LightCurveDataset
    from lcfm.engine.bench_data import _shard_batches
    from lcfm.shards import read_shards

    rows = LightCurveDataset(read_shards(elasticc_dir))
    bands = get_survey("elasticc").bands
    count, batches = _shard_batches(elasticc_dir, 25, 10, bands)
    flats = list(batches)
    assert count == 25 and [len(f) for f in flats] == [10, 10, 5]
    for i, row in enumerate(r for f in flats for r in f):
        assert row["object_id"] == rows[i]["object_id"]
        np.testing.assert_array_equal(row["time"], rows[i]["time"])
        np.testing.assert_array_equal(row["value"], rows[i]["value"])
        np.testing.assert_array_equal(row["band"], rows[i]["band"].astype(str))


def test_bench_survey_reports_rates():
    result = bench_survey("macho", n=12)
    assert result["simulate_per_second"] > 0 and result["ingest_points_per_second"] > 0
    assert result["ingest_points"] > 1000  # the bundled sample's points, all read


def test_bad_sizes_and_models_are_config_errors():
    from lcfm.exceptions import LcfmError
    from lcfm_cli.bench_command import _sizes

    assert _sizes("1000, 4000,16000") == [1000, 4000, 16000]
    for text in ("0", "", "1000,-5", "1e3"):
        with pytest.raises(LcfmError, match="--n"):
            _sizes(text)
    with pytest.raises(LcfmError, match="nosuch"):
        bench_model("nosuch", ns=[4])
    with pytest.raises(LcfmError, match="--n"):
        bench_model("astromer", ns=[0])


def lcfm(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lcfm_cli", "bench", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_bench_prints_json(elasticc_dir):
    result = lcfm("--model", "atcat", "--configuration", "tiny", "--data", elasticc_dir,
                  "--n", "20", "--batch-size", 8, "--model-batches", 1, "--seconds", 0.01)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)["models"]
    check_record(record, get_model("atcat"), 20)


@pytest.mark.parametrize("args, needle", [
    (("--n", "1000,ten"), "--n"),
    (("--model", "astromer", "--data", "/nonexistent/shards"), "/nonexistent/shards"),
])
def test_cli_bench_bad_input_is_one_line(args, needle):
    result = lcfm("--configuration", "tiny", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
