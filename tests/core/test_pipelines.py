"""transformers pipelines for lcfm models (issue 13, "Must include" 2):
`pipeline("light-curve-classification")` and `pipeline("light-curve-embedding")` after
`import lcfm`, with no trust_remote_code, on a dict of arrays, a list of them or a canonical
frame, giving what `lcfm.predict` / `lcfm.embed` give for the same light curve."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import lcfm
import numpy as np
import pytest
from lcfm.registry import get_model, get_survey
from lcfm.shards import read_shards
from lcfm.simulate import simulate


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny pretrained Astromer and a classifier fine-tuned from it (lcfm's own API)."""
    root = tmp_path_factory.mktemp("pipes")
    simulate(get_survey("macho"), 24, root / "sim", seed=2)
    lcfm.pretrain(survey="macho", data=root / "sim", output=root / "pre", max_steps=2,
                  batch_size=8, config_overrides=dict(get_model("astromer").tiny))
    lcfm.finetune(data=root / "sim", model=str(root / "pre"), output=root / "clf",
                  max_steps=2, batch_size=8)
    return root


def light_curve(n=90, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 500, n))
    return {"time": t, "value": 15 + 0.3 * np.sin(2 * np.pi * t / 0.6) + rng.normal(0, .02, n),
            "error": np.full(n, 0.02), "band": "R"}


def test_pipelines_after_import_lcfm_only(models):
    """A fresh interpreter: `import lcfm`, then transformers' own `pipeline` finds both
    tasks (no trust_remote_code) and answers per light curve."""
    code = f"""
        import json, sys
        import numpy as np
        import lcfm
        assert "transformers" not in sys.modules
        from transformers import pipeline
        rng = np.random.default_rng(0)
        t = np.sort(rng.uniform(0, 500, 90))
        lc = {{"time": t, "value": 15 + 0.3 * np.sin(2 * np.pi * t / 0.6)
                                   + rng.normal(0, .02, 90),
              "error": np.full(90, 0.02), "band": "R"}}
        classify = pipeline("light-curve-classification", model={str(models / "clf")!r})
        embed = pipeline("light-curve-embedding", model={str(models / "pre")!r})
        one, two = classify(lc), classify([lc, lc])
        print(json.dumps({{"one": one, "two": two, "top": classify(lc, top_k=2),
                          "embedding": embed(lc).tolist(),
                          "processor": type(classify.feature_extractor).__name__}}))
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # each folder loads as the class it was saved from: no report of unused head weights
    assert "UNEXPECTED" not in result.stderr and "MISSING" not in result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    classes = list(get_survey("macho").taxonomy.classes)
    assert out["processor"] == "LcfmFeatureExtractor"
    assert sorted(r["label"] for r in out["one"]) == sorted(classes)
    scores = [r["score"] for r in out["one"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1, abs=1e-5)
    assert out["two"] == [out["one"], out["one"]]
    assert out["top"] == out["one"][:2]
    # the same numbers as lcfm.predict / lcfm.embed on that light curve
    catalog = lcfm.predict(models / "clf", dict(light_curve(), object_id="x"))
    for result_ in out["one"]:
        assert result_["score"] == pytest.approx(catalog[f"p_{result_['label']}"][0], rel=1e-5)
    expected = lcfm.embed(models / "pre", light_curve())["embedding"][0].to_numpy()
    np.testing.assert_allclose(out["embedding"], expected, rtol=1e-5, atol=1e-6)


def test_frame_input_one_result_per_light_curve(models):
    from transformers import pipeline

    frame = read_shards(models / "sim").head(5)
    classify = pipeline("light-curve-classification", model=str(models / "clf"))
    results = classify(frame)
    assert len(results) == 5 and all(len(r) == len(get_survey("macho").taxonomy.classes)
                                     for r in results)
    # a frame gives a list, one result per row, whatever its height; row 2 alone: identical
    assert classify(frame.slice(2, 1)) == [results[2]]
    embed = pipeline("light-curve-embedding", model=str(models / "clf"))  # a classifier's encoder
    vectors = embed(frame)
    assert len(vectors) == 5 and vectors[0].dtype == np.float32
    assert not np.allclose(vectors[0], vectors[1])


def test_pipeline_refuses_what_the_model_cannot_read(models):
    from lcfm.exceptions import DataError
    from transformers import pipeline

    classify = pipeline("light-curve-classification", model=str(models / "clf"))
    with pytest.raises(DataError, match="bands"):
        classify(dict(light_curve(), band="V"))
    with pytest.raises(DataError, match="needs keys time and value"):
        classify({"t": [1.0, 2.0]})


def test_hub_repository_id_for_load_and_pipeline(models, tmp_path):
    """A model folder uploaded to a Hub (the loopback server of tests/hub) is used by its
    repository id: `lcfm.load` downloads the whole repository, the pipeline and processor
    come from `preprocessor_config.json` there."""
    import os
    from pathlib import Path

    from huggingface_hub import HfApi

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
    from local_hub import LocalHub

    with pytest.MonkeyPatch.context() as mp, LocalHub(token="secret") as hub:
        from huggingface_hub import constants

        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        api = HfApi(endpoint=hub.endpoint, token="secret")
        api.create_repo("org/clf")
        api.upload_folder(repo_id="org/clf", folder_path=models / "clf")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
        env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf"), HF_TOKEN="secret",
                   HF_HUB_OFFLINE="0", HF_HUB_DISABLE_PROGRESS_BARS="1")
        code = """
            import json
            import numpy as np
            import lcfm
            from transformers import pipeline
            t = np.arange(90.0)
            lc = {"time": t, "value": 15 + np.sin(t), "error": np.full(90, 0.05), "band": "R"}
            model = lcfm.load("org/clf")
            catalog = lcfm.predict(model, dict(lc, object_id="x"))
            result = pipeline("light-curve-classification", model="org/clf")(lc)
            print(json.dumps({"folder": str(model.lcfm_folder), "result": result,
                              "p": {c[2:]: catalog[c][0] for c in catalog.columns
                                    if c.startswith("p_")}}))
        """
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["folder"].startswith(str(tmp_path / "hf"))  # downloaded, not the local folder
    assert {r["label"]: pytest.approx(r["score"], rel=1e-5) for r in out["result"]} == out["p"]


@pytest.mark.parametrize("imports", [
    "import lcfm\nfrom transformers import pipeline",
    "from transformers import pipeline\nimport lcfm",
    "from lcfm.pipelines import LightCurveClassificationPipeline",
])
def test_tasks_registered_in_any_import_order(imports):
    code = imports + """
from transformers.pipelines import PIPELINE_REGISTRY
print(sorted(t for t in PIPELINE_REGISTRY.get_supported_tasks() if t.startswith("light-")))
"""
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == str(["light-curve-classification",
                                                 "light-curve-embedding"])
