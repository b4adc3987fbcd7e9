"""`lcfm push` against a Hub-compatible server on loopback (tests/hub/local_hub.py), with
huggingface_hub's real client for the upload and transformers' `from_pretrained` (in a fresh
process with HF_ENDPOINT and an empty HF_HOME) for the download."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants
from lcfm.hub import HubError, model_card, push
from local_hub import LocalHub

TOKEN = "hf_local_test_token"

# Loads the pushed repositories through the Hub client and compares them with the local
# folders on one deterministic batch. Prints one JSON line.
LOAD_SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
import torch
import lcfm
from transformers import AutoModel, AutoModelForSequenceClassification
from lcfm.engine.loading import plugin_for_model_type

spec = json.loads(sys.argv[1])


def batch_for(config):
    plugin = plugin_for_model_type(config.model_type)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        n = 20 + 5 * i
        rows.append({"object_id": f"1.{i}", "survey": "macho",
                     "time": np.sort(rng.uniform(0, 100, n)),
                     "value": rng.normal(-5, 0.3, n).astype(np.float32),
                     "error": np.full(n, 0.03, np.float32), "band": np.array(["R"] * n),
                     "value_kind": "mag", "label": ["RRab", "EC"][i % 2], "meta": {}})
    collate = plugin.collator(config, task="classify", train=False, bands=config.lcfm_bands,
                              label2id=config.label2id, seed=0)
    return collate(rows)


def tensors(output):
    return [t for t in output.to_tuple() if torch.is_tensor(t)]


def identical(a, b):
    a, b = tensors(a), tensors(b)
    return len(a) == len(b) > 0 and all(torch.equal(x, y) for x, y in zip(a, b))


result = {}
repo, local = spec["classifier"]
with torch.no_grad():
    hub_classifier = AutoModelForSequenceClassification.from_pretrained(repo)
    local_classifier = AutoModelForSequenceClassification.from_pretrained(local)
    batch = batch_for(hub_classifier.config)
    result["classifier_class"] = type(hub_classifier).__name__
    result["classifier_identical"] = identical(hub_classifier(**batch),
                                               local_classifier(**batch))
    result["logits"] = hub_classifier(**batch).logits.tolist()
    hub_encoder = AutoModel.from_pretrained(repo)
    result["encoder_class"] = type(hub_encoder).__name__
    result["encoder_identical"] = identical(hub_encoder(**batch),
                                            AutoModel.from_pretrained(local)(**batch))
    result["id2label"] = hub_classifier.config.id2label

from peft import PeftModel
from lcfm.engine.save import load_classifier

with torch.no_grad():

    repo, local = spec["lora"]
    merged = AutoModelForSequenceClassification.from_pretrained(repo)  # the top level
    batch = batch_for(merged.config)
    _, local_adapted = load_classifier(Path(local))
    local_logits = local_adapted(**batch).logits
    result["lora_class"] = type(merged).__name__
    result["merged_matches_local_lora"] = torch.allclose(merged(**batch).logits, local_logits,
                                                         atol=1e-5)
    base = AutoModelForSequenceClassification.from_pretrained(repo, subfolder="base")
    base_logits = base(**batch).logits
    adapted = PeftModel.from_pretrained(base, repo, subfolder="adapter").eval()
    logits = adapted(**batch).logits
    result["lora_identical"] = torch.equal(logits, local_logits)
    result["lora_changes_base"] = not torch.allclose(logits, base_logits)
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def online():
    """The repository's conftest makes huggingface_hub offline; pushing needs it online."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        yield mp


@pytest.fixture(scope="module")
def hub(online):
    with LocalHub(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def pushed(hub, classifier_dir, lora_dir, tmp_path_factory):
    """Push a classifier (private) and a LoRA run, then load both in a fresh process."""
    classifier = push(classifier_dir, "org/classifier", private=True, token=TOKEN,
                      endpoint=hub.endpoint)
    lora = push(lora_dir, "org/lora", token=TOKEN, endpoint=hub.endpoint)
    hf_home = tmp_path_factory.mktemp("hf_home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(hf_home), HF_TOKEN=TOKEN,
               HF_HUB_OFFLINE="0", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1")
    spec = {"classifier": ["org/classifier", str(classifier_dir)],
            "lora": ["org/lora", str(lora_dir)]}
    proc = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:] + str(hub.requests[-8:])
    return {"classifier": classifier, "lora": lora, "hf_home": hf_home,
            "loaded": json.loads(proc.stdout.strip().splitlines()[-1])}


def test_push_uploads_exactly_the_model_and_its_card(hub, pushed, classifier_dir):
    files = hub.files("org/classifier")
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    for name in ("config.json", "model.safetensors"):
        assert files[name] == (classifier_dir / name).read_bytes()
    assert files["README.md"].decode() == model_card(classifier_dir, "org/classifier")
    assert pushed["classifier"]["commit"] == hub.repos["org/classifier"].refs["main"]
    assert hub.repos["org/classifier"].private
    writes = [r for r in hub.requests if r[0] == "POST" and "org/classifier" in r[1]]
    assert writes and all(auth == f"Bearer {TOKEN}" for _, _, auth in writes)


def test_from_pretrained_through_the_hub_matches_the_local_folder(pushed):
    loaded = pushed["loaded"]
    assert loaded["classifier_class"] == "AstromerForSequenceClassification"
    assert loaded["encoder_class"] == "AstromerModel"
    assert loaded["classifier_identical"] and loaded["encoder_identical"]
    assert loaded["id2label"] == {"0": "RRab", "1": "EC"}
    # the files came through the Hub cache of the fresh HF_HOME, at the pushed commit
    snapshot = (pushed["hf_home"] / "hub" / "models--org--classifier" / "snapshots"
                / pushed["classifier"]["commit"])
    assert (snapshot / "model.safetensors").exists() and (snapshot / "config.json").exists()


def test_lora_run_loads_merged_at_the_top_and_as_adapters(hub, pushed, lora_dir):
    files = hub.files("org/lora")
    assert sorted(files) == [".gitattributes", "README.md", "adapter/adapter_config.json",
                             "adapter/adapter_model.safetensors", "base/config.json",
                             "base/model.safetensors", "base/preprocessor_config.json",
                             "config.json", "model.safetensors", "preprocessor_config.json"]
    assert files["model.safetensors"] == (lora_dir / "merged" / "model.safetensors").read_bytes()
    assert b"PeftModel.from_pretrained" in files["README.md"]  # lcfm's card, not peft's
    loaded = pushed["loaded"]
    assert loaded["lora_class"] == "AstromerForSequenceClassification"
    assert loaded["merged_matches_local_lora"]
    assert loaded["lora_identical"] and loaded["lora_changes_base"]


def test_lora_without_merged_folder_is_merged_at_push_time(hub, pushed, lora_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    unmerged = tmp_path / "lora"
    shutil.copytree(lora_dir, unmerged, ignore=shutil.ignore_patterns("merged"))
    result = push(unmerged, "org/unmerged", token=TOKEN, endpoint=hub.endpoint)
    assert "config.json" in result["files"] and "model.safetensors" in result["files"]
    assert "preprocessor_config.json" in result["files"]  # the merged model's processor
    weights = tmp_path / "pushed.safetensors"
    weights.write_bytes(hub.files("org/unmerged")["model.safetensors"])
    expected = load_file(lora_dir / "merged" / "model.safetensors")
    got = load_file(weights)
    assert got.keys() == expected.keys()
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)


def test_push_to_a_branch_and_repush_replaces_stale_weights(hub, pushed, classifier_dir,
                                                           lora_dir):
    result = push(lora_dir, "org/switch", token=TOKEN, endpoint=hub.endpoint)
    assert "adapter/adapter_model.safetensors" in hub.files("org/switch")
    push(classifier_dir, "org/switch", token=TOKEN, endpoint=hub.endpoint)
    files = hub.files("org/switch")
    # the adapter and base of the first push are stale: removed
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    branch = push(classifier_dir, "org/switch", token=TOKEN, endpoint=hub.endpoint,
                  revision="v1", license="apache-2.0")
    assert branch["revision"] == "v1"
    assert b"license: apache-2.0" in hub.files("org/switch", "v1")["README.md"]
    assert b"license: mit" in hub.files("org/switch", "main")["README.md"]
    assert result["commit"] != branch["commit"]


def test_hub_errors_are_one_line_lcfm_errors(hub, classifier_dir):
    with pytest.raises(HubError, match="401") as info:
        push(classifier_dir, "org/denied", token="hf_wrong", endpoint=hub.endpoint)
    assert "\n" not in str(info.value)
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(HubError, match="cannot reach"):
        push(classifier_dir, "org/nowhere", token=TOKEN, endpoint=closed)
    with pytest.raises(Exception, match="ORG/NAME"):
        push(classifier_dir, "no-slash", token=TOKEN, endpoint=hub.endpoint)


def test_offline_mode_is_refused_with_a_clear_error(classifier_dir, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        push(classifier_dir, "org/offline", endpoint="http://127.0.0.1:9")


def test_cli_push_respects_hf_endpoint(hub, classifier_dir, evaluation_dir, monkeypatch,
                                       capsys):
    from lcfm_cli.main import main

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(sys, "argv", [
        "lcfm", "push", "--model", str(classifier_dir), "--repo-id", "org/cli",
        "--token", TOKEN, "--evaluation", str(evaluation_dir)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert f"pushed 3 files to {hub.endpoint}/org/cli (revision main" in out
    card = hub.files("org/cli")["README.md"].decode()
    assert "## Evaluation" in card and "| accuracy | 0.917 |" in card


def test_server_stops_after_the_tests(tmp_path):
    with LocalHub() as server:
        port = int(server.endpoint.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert Path(__file__).with_name("local_hub.py").exists()
