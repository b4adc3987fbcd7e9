"""Hub-native artefacts (issue 13, item 5): model cards whose YAML validates and holds
base_model and model-index, honest data provenance, numbers as recorded, the install line;
dataset folders that `datasets.load_dataset(folder)` loads, and `lcfm push --dataset` to
the loopback Hub of tests/hub/local_hub.py."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import datasets
import pytest
import yaml
from huggingface_hub import DatasetCard, ModelCard, constants, snapshot_download
from lcfm.dataset_card import dataset_card, hub_repo_id, write_dataset_card
from lcfm.exceptions import ConfigError, DataError
from lcfm.hub import PushArgs, model_card, push, push_dataset
from lcfm.hub_card import starting_point
from local_hub import LocalHub

TOKEN = "hf_local_test_token"
REPO = Path(__file__).resolve().parents[2]


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def finetuned(classifier_dir: Path, path: Path, *, model=None, data=None, **args) -> Path:
    """A copy of the fine-tuned classifier whose metrics.json names another starting point,
    training data or recipe."""
    shutil.copytree(classifier_dir, path, ignore=shutil.ignore_patterns("checkpoint", "*.bin"))
    metrics = json.loads((path / "metrics.json").read_text())
    if model is not None:
        metrics["model"] = metrics["args"]["model"] = str(model)
    if data is not None:
        metrics["args"]["data"] = str(data)
    metrics["args"].update(args)
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


@pytest.fixture(scope="module")
def hub():
    """The loopback Hub, with huggingface_hub online (the repository's conftest makes it
    offline)."""
    with LocalHub(token=TOKEN) as server, pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        yield server


def validate(card, hub) -> None:
    """`RepoCard.validate` against the loopback Hub (it posts to constants.ENDPOINT)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "ENDPOINT", hub.endpoint)
        card.validate()


# ---- model cards -----------------------------------------------------------------------------

def test_pushed_card_validates_and_holds_base_model_and_model_index(
        hub, classifier_dir, evaluation_dir, tmp_path):
    model = finetuned(classifier_dir, tmp_path / "ft", model="org/encoder")
    push(model, "org/ft", token=TOKEN, endpoint=hub.endpoint, evaluation=evaluation_dir)
    text = hub.files("org/ft")["README.md"].decode()
    card = ModelCard(text, ignore_metadata_errors=False)
    validate(card, hub)  # the loopback Hub's checks (model-index parsed by huggingface_hub)
    meta = front_matter(text)
    assert meta["base_model"] == "org/encoder" and meta["library_name"] == "lcfm"
    assert meta["pipeline_tag"] == "other" and meta["license"] == "mit"
    results = {(r.dataset_split, r.metric_name): r.metric_value for r in card.data.eval_results}
    # finetune's held-out test split and `lcfm evaluate`'s held-out objects
    assert results[("test", "Accuracy")] == 0.875 and results[("test", "Macro F1")] == 0.8571
    assert results[("held-out", "Accuracy")] == 0.9167
    assert results[("held-out", "Expected calibration error")] == 0.0456
    assert meta["model-index"][0]["name"] == "org/ft"
    assert "- Base model: `org/encoder`" in text
    # a card the Hub would refuse is refused by the same check
    broken = text.replace("type: time-series-classification", "kind: classification", 1)
    with pytest.raises(ValueError, match="model_index"):  # huggingface_hub, offline
        ModelCard(broken)
    local = text.replace("base_model: org/encoder", "base_model: /home/me/encoder", 1)
    with pytest.raises(ValueError, match="base_model"):  # the Hub's check, online
        validate(ModelCard(local), hub)


def test_processor_and_metadata_encoder_travel_with_the_weights(hub, classifier_dir,
                                                                 tmp_path):
    from lcfm.processing import save_processor
    from transformers import AutoModelForSequenceClassification

    model = finetuned(classifier_dir, tmp_path / "ft")
    save_processor(AutoModelForSequenceClassification.from_pretrained(model), model)
    (model / "metadata_encoder.json").write_text('{"survey": "macho", "encoder": {}}\n')
    result = push(model, "org/processor", token=TOKEN, endpoint=hub.endpoint)
    files = hub.files("org/processor")
    for name in ("preprocessor_config.json", "metadata_encoder.json"):
        assert name in result["files"] and files[name] == (model / name).read_bytes()
    assert "loss_history.json" not in files and "metrics.json" not in files


def test_base_model_of_local_folders_with_a_known_repo_id(classifier_dir, pretrained_dir,
                                                          tmp_path):
    snapshot = tmp_path / "hub" / "models--org--encoder" / "snapshots" / "0a1b2c"
    assert starting_point({"model": str(snapshot)})[1] == "org/encoder"
    downloaded = tmp_path / "downloaded"  # `hf download org/encoder --local-dir downloaded`
    shutil.copytree(pretrained_dir, downloaded)
    (downloaded / "README.md").write_text(model_card(pretrained_dir, "org/encoder"))
    assert front_matter(model_card(finetuned(classifier_dir, tmp_path / "a", model=downloaded),
                                   "org/a"))["base_model"] == "org/encoder"
    # a local folder the Hub does not know, and a configuration name: no base_model
    card = model_card(finetuned(classifier_dir, tmp_path / "b", model=pretrained_dir), "org/b")
    assert "base_model" not in front_matter(card)
    assert "| starting point | local checkpoint `pretrained` |" in card
    card = model_card(classifier_dir, "org/c")
    assert "base_model" not in front_matter(card)
    assert "| starting point | random initialisation (configuration `astromer-v2`) |" in card


def test_small_learning_rates_keep_their_value(classifier_dir, pretrained_dir, tmp_path):
    card = model_card(finetuned(classifier_dir, tmp_path / "ft", lr_encoder=5e-5), "org/ft")
    assert "| learning rates (encoder / head) | 5e-05 / 0.001 |" in card
    pre = tmp_path / "pre"
    shutil.copytree(pretrained_dir, pre)
    metrics = json.loads((pre / "metrics.json").read_text())
    metrics["args"]["learning_rate"] = 5e-5
    (pre / "metrics.json").write_text(json.dumps(metrics))
    card = model_card(pre, "org/pre")
    assert "| learning rate | 5e-05 |" in card and "0.0001" not in card


def test_provenance_says_simulated_for_simulated_data(classifier_dir, simulated_dir,
                                                      ingested_dir, tmp_path):
    card = model_card(finetuned(classifier_dir, tmp_path / "sim", data=simulated_dir), "org/s")
    assert "simulated-data" in front_matter(card)["tags"]
    assert "Trained on simulated **macho** light curves" in card
    assert "holds **simulated** macho light curves, made by `lcfm simulate` (the survey's " \
           "simulator, seed 3, 24 light curves" in card
    assert "come from macho" not in card and "were simulated by lcfm" in card
    card = model_card(finetuned(classifier_dir, tmp_path / "real", data=ingested_dir), "org/r")
    assert "simulated" not in card
    assert "`macho-sample` holds light curves read from macho files by `lcfm ingest` " \
           "(11 light curves from 5 files)" in card


def test_install_line_names_every_package_needed(classifier_dir):
    names = {p.parent.name: tomllib.loads(p.read_text())["project"]["name"]
             for p in (REPO / "packages").glob("*/pyproject.toml")}
    card = model_card(classifier_dir, "org/name")
    line = f"pip install {names['core']} {names['models']} {names['surveys']}"
    assert line == "pip install lcfm lcfm-models lcfm-surveys"
    assert f"```bash\n{line}\n```" in card and f"- Install: `{line}`" in card
    # the input-format example: the survey's bands, arrays, the pipeline on a dict of arrays
    section = card.split("## Input format")[1].split("## How to use")[0]
    assert 'band=["B", "R", "B", "R"], survey="macho"' in section
    assert 'pipeline("light-curve-classification", model="org/name")' in section


# ---- dataset folders -------------------------------------------------------------------------

def test_load_dataset_on_ingested_and_simulated_folders(ingested_dir, simulated_dir, tmp_path):
    for folder, expected in ((ingested_dir, "light_curves_written"),
                             (simulated_dir, "light_curves_written")):
        copy = tmp_path / folder.name
        shutil.copytree(folder, copy)
        report = json.loads((copy / "report.json").read_text())
        card = write_dataset_card(copy)
        assert card == copy / "README.md"
        rows = datasets.load_dataset(str(copy), split="train",
                                     cache_dir=str(tmp_path / "cache"))
        assert rows.num_rows == report[expected] > 0
        assert {"object_id", "time", "value", "error", "band", "label"} <= set(rows.features)
        assert (copy / "report.json").exists()  # the report stays where it was
        meta = front_matter(card.read_text())
        assert meta["configs"] == [{"config_name": "default", "data_files": [
            {"split": "train", "path": "part-*.parquet"}]}]
    assert rows.num_rows == 24


def test_load_dataset_when_a_meta_field_is_null_in_some_shards(tmp_path):
    """MACHO's bundled sample in shards of 3 light curves: `raw_class` is all-null in the
    tar-file shards and a string in the CSV shards; the card's features unify them."""
    import pyarrow.parquet as pq
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey

    folder = tmp_path / "macho"
    report = ingest(get_survey("macho"), None, folder, rows_per_shard=3)
    types = {str(pq.read_schema(p).field("meta").type.field("raw_class").type)
             for p in folder.glob("part-*.parquet")}
    assert types == {"null", "large_string"} and len(report.shards) > 2
    write_dataset_card(folder)
    rows = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "c"))
    assert rows.num_rows == report.light_curves_written == 11
    assert sorted(r for r in rows["label"] if r) == ["RRc"] * 4


def test_dataset_card_counts_provenance_and_licence(ingested_dir, simulated_dir, tmp_path):
    from lcfm.registry import get_survey

    summary = json.loads((simulated_dir / "simulation.json").read_text())
    card = dataset_card(simulated_dir)
    for label, n in summary["per_class"].items():
        assert f"| {label} | {n} |" in card
    assert "simulated" in front_matter(card)["tags"]
    assert front_matter(card)["license"] == "unknown"
    assert "**simulated** macho light curves, made by `lcfm simulate`" in card
    card = dataset_card(ingested_dir, source=get_survey("macho").sample_path())
    assert front_matter(card)["license"] == "mit"  # the bundled sample's LICENSE
    assert "| RRc | 4 |" in card and "| unlabeled | 7 |" in card
    assert "| points | 8151 | 7257 | 894 |" in card
    # ingest wrote the folder's card knowing its source: the licence is kept from it
    assert front_matter(dataset_card(ingested_dir))["license"] == "mit"
    # the card ingest wrote keeps the licence it knew when a push rewrites the card
    copy = tmp_path / "copy"
    shutil.copytree(ingested_dir, copy)
    write_dataset_card(copy, source=get_survey("macho").sample_path())
    assert front_matter(dataset_card(copy, repo_id="org/m"))["license"] == "mit"
    assert front_matter(dataset_card(ingested_dir, license="cc-by-4.0"))["license"] == \
        "cc-by-4.0"


def test_push_dataset_to_the_loopback_hub(hub, simulated_dir, classifier_dir, tmp_path):
    local_card = (simulated_dir / "README.md").read_text()  # written by lcfm simulate
    result = push_dataset(simulated_dir, "org/sim", token=TOKEN, endpoint=hub.endpoint)
    files = hub.files("org/sim", repo_type="dataset")
    assert sorted(files) == [".gitattributes", "README.md", "part-00000.parquet",
                             "report.json", "simulation.json"]
    assert files["part-00000.parquet"] == (simulated_dir / "part-00000.parquet").read_bytes()
    assert result["url"] == f"{hub.endpoint}/datasets/org/sim"
    # the folder itself is left as it was
    assert (simulated_dir / "README.md").read_text() == local_card
    text = files["README.md"].decode()
    validate(DatasetCard(text), hub)
    assert text.split("---\n", 2)[2].lstrip().startswith("# org/sim")
    assert 'load_dataset("org/sim")' in text
    # downloaded, it loads with datasets and names its repository
    local = Path(snapshot_download("org/sim", repo_type="dataset", endpoint=hub.endpoint,
                                   token=TOKEN, local_dir=tmp_path / "sim"))
    rows = datasets.load_dataset(str(local), split="train", cache_dir=str(tmp_path / "c"))
    assert rows.num_rows == 24
    assert hub_repo_id(local, "dataset") == "org/sim"
    # a model trained on it lists it under `datasets`
    card = model_card(finetuned(classifier_dir, tmp_path / "ft", data=local), "org/ft")
    assert front_matter(card)["datasets"] == ["org/sim"]


def test_cli_push_dataset(hub, ingested_dir, monkeypatch, lcfm_cli):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, out, err = lcfm_cli("push", "--dataset", ingested_dir, "--repo-id", "org/cli-data",
                              "--token", TOKEN, "--license", "mit")
    assert code == 0, err
    assert f"pushed 3 files to {hub.endpoint}/datasets/org/cli-data" in out
    card = hub.files("org/cli-data", repo_type="dataset")["README.md"].decode()
    assert front_matter(card)["license"] == "mit"
    code, out, _ = lcfm_cli("push", "--dataset", ingested_dir, "--repo-id", "org/x",
                            "--dry-run")
    assert code == 0 and "path: part-*.parquet" in out and "# org/x" in out
    assert out.strip().endswith("files: part-00000.parquet, report.json, README.md")
    assert "datasets/org/x" not in hub.repos  # a dry run uploads nothing
    code, _, err = lcfm_cli("push", "--dataset", ingested_dir, "--model", ingested_dir,
                            "--repo-id", "org/x")
    assert code == 2 and "exactly one of --model and --dataset" in err


def test_card_input_example_runs(classifier_dir):
    """The card's input-format example, run on the local folder instead of the Hub id."""
    card = model_card(classifier_dir, "org/name")
    code = card.split("## Input format")[1].split("```python")[1].split("```")[0]
    namespace = {}
    exec(code.replace('"org/name"', repr(str(classifier_dir))), namespace)  # noqa: S102
    assert namespace["result"]["object_id"].to_list() == ["star-1"]
    assert namespace["result"]["predicted_class"][0] in ("RRab", "EC")
    assert {"label", "score"} <= set(namespace["classify"]({
        "time": [1.0, 2.0, 3.5], "value": [15.2, 15.3, 15.1], "error": [0.03] * 3,
        "band": ["R", "R", "B"]})[0])


def test_push_refuses_wrong_targets(classifier_dir, tmp_path):
    from lcfm.hub import run_push

    with pytest.raises(ConfigError, match="exactly one of --model and --dataset"):
        run_push(PushArgs(repo_id="org/x", model=classifier_dir, dataset=tmp_path))
    with pytest.raises(ConfigError, match="exactly one"):
        run_push(PushArgs(repo_id="org/x"))
    with pytest.raises(DataError, match="holds no Parquet shards"):
        push_dataset(tmp_path, "org/x", endpoint="http://127.0.0.1:9")


def test_ingest_and_simulate_folders_load_with_plain_load_dataset(ingested_dir, simulated_dir,
                                                                   tmp_path):
    """The folders exactly as `lcfm ingest` / `lcfm simulate` leave them (their own dataset
    card, report.json beside the shards) load with `datasets.load_dataset(folder)`."""
    for folder in (ingested_dir, simulated_dir):
        report = json.loads((folder / "report.json").read_text())
        rows = datasets.load_dataset(str(folder), split="train",
                                     cache_dir=str(tmp_path / folder.name))
        assert rows.num_rows == report["light_curves_written"] > 0
        assert {"object_id", "time", "value", "error", "band"} <= set(rows.column_names)
