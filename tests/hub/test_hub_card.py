"""Model card generation and model-folder checks of `lcfm push`, without any server."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from lcfm.exceptions import DataError, InputFileError, LcfmError
from lcfm.hub import inspect_model, model_card
from lcfm.registry import get_model


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_classifier_card_states_model_survey_classes_training_and_usage(classifier_dir):
    card = model_card(classifier_dir, "org/name")
    meta = front_matter(card)
    assert meta["library_name"] == "lcfm"
    assert meta["license"] == "mit"
    assert meta["pipeline_tag"] == "other"
    assert {"lcfm", "light-curves", "astronomy", "time-series", "lcfm_astromer",
            "macho"} <= set(meta["tags"])
    plugin = get_model("astromer")
    assert plugin.paper in card and plugin.description in card
    assert "`AstromerForSequenceClassification`" in card
    # parameters counted from the config, as the model would be built
    n = sum(p.numel() for p in plugin.classification_class(
        inspect_model(classifier_dir).config).parameters())
    assert f"Parameters: {n:,}" in card
    # survey: MACHO's two bands with their wavelengths, and its taxonomy
    assert "| B | 5200 |" in card and "| R | 7000 |" in card
    assert "Survey taxonomy: Cep_0, Cep_1, EC, LPV, RRab, RRc." in card
    assert "| 0 | RRab |" in card and "| 1 | EC |" in card
    # training recipe and results from metrics.json
    assert "| training / validation / test light curves | 36 / 4 / 8 |" in card
    assert "| steps (best) | 40 (30) |" in card
    assert "| best validation macro F1 | 0.812 |" in card
    assert "accuracy 0.875" in card and "| trained weights | full |" in card
    assert "| data | shards |" in card
    assert str(classifier_dir.parent) not in card  # no local paths leak into the card
    assert 'import lcfm' in card
    assert 'AutoModel.from_pretrained("org/name")' in card
    assert 'AutoModelForSequenceClassification.from_pretrained("org/name")' in card
    assert "## Evaluation" not in card
    assert "## Licence" in card


def test_card_includes_evaluation_metrics_and_licence(classifier_dir, evaluation_dir):
    card = model_card(classifier_dir, "org/name", evaluation=evaluation_dir,
                      license="cc-by-4.0")
    assert front_matter(card)["license"] == "cc-by-4.0"
    section = card.split("## Evaluation")[1].split("## How to use")[0]
    assert "on 12 objects (24 light curves" in section
    assert "| accuracy | 0.917 |" in section and "| macro f1 | 0.909 |" in section
    assert "| ece | 0.046 |" in section
    assert "| EC | 1.000 | 0.833 | 0.909 | 6 |" in section
    assert "`cc-by-4.0` licence" in card


def test_card_rejects_a_file_that_is_not_an_evaluation(classifier_dir, tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"steps": 3}))
    with pytest.raises(InputFileError, match="not an `lcfm evaluate` metrics.json"):
        model_card(classifier_dir, "org/name", evaluation=tmp_path)


def test_pretrained_card(pretrained_dir):
    folder = inspect_model(pretrained_dir)
    assert folder.kind == "pretrained"
    card = model_card(folder, "org/encoder")
    meta = front_matter(card)
    assert meta["pipeline_tag"] == "feature-extraction"
    assert "time-series-classification" not in meta["tags"]
    assert "## Classes" not in card
    assert "| objective | self-supervised pretraining |" in card
    assert "| loss (first → last step) | 1.2345 → 0.5432 |" in card
    assert "| validation loss | 0.6111 |" in card
    assert "| data | bundled sample of macho |" in card
    assert "lcfm's bundled sample of real macho observations" in card
    assert "AutoModelForPreTraining.from_pretrained(\"org/encoder\")" in card


def test_only_config_and_safetensors_are_uploaded(classifier_dir):
    folder = inspect_model(classifier_dir)
    assert folder.kind == "classifier"
    # never the pickled weights, the resumable checkpoint/ nor optimizer state
    assert folder.files == {"config.json": classifier_dir / "config.json",
                            "model.safetensors": classifier_dir / "model.safetensors"}


def test_lora_folder_uploads_merged_model_adapter_and_base(lora_dir, tmp_path):
    folder = inspect_model(lora_dir)
    assert folder.kind == "lora"
    # the top level must load with from_pretrained: the merged model, never adapter_config.json
    assert folder.files == {
        "config.json": lora_dir / "merged" / "config.json",
        "model.safetensors": lora_dir / "merged" / "model.safetensors",
        "adapter/adapter_config.json": lora_dir / "adapter_config.json",
        "adapter/adapter_model.safetensors": lora_dir / "adapter_model.safetensors",
        "base/config.json": lora_dir / "base" / "config.json",
        "base/model.safetensors": lora_dir / "base" / "model.safetensors",
        # the processor travels with the weights: the merged model's and the base's
        "preprocessor_config.json": lora_dir / "merged" / "preprocessor_config.json",
        "base/preprocessor_config.json": lora_dir / "base" / "preprocessor_config.json"}
    card = model_card(folder, "org/lora")
    assert "| trained weights | LoRA adapters (rank 2) and the head |" in card
    assert 'subfolder="base"' in card
    assert 'PeftModel.from_pretrained(base, "org/lora", subfolder="adapter")' in card
    # without merged/ (no --merge-lora), the merged weights are made at push time
    unmerged = tmp_path / "lora"
    shutil.copytree(lora_dir, unmerged, ignore=shutil.ignore_patterns("merged"))
    files = inspect_model(unmerged).files
    assert files["config.json"] is None and files["model.safetensors"] is None


def test_bad_model_folders_raise_one_line_errors(tmp_path, classifier_dir):
    with pytest.raises(InputFileError, match="no such model folder"):
        inspect_model(tmp_path / "missing")
    with pytest.raises(DataError, match="not a model folder"):
        inspect_model(tmp_path)
    (tmp_path / "fold-0").mkdir()
    (tmp_path / "fold-0" / "config.json").write_text("{}")
    with pytest.raises(DataError, match=r"a few-shot run; push one of its folds \(fold-0\)"):
        inspect_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "lcfm_astromer",\n oops}')
    with pytest.raises(DataError, match="line 2"):
        inspect_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(DataError, match="unknown model type 'bert'"):
        inspect_model(tmp_path)
    (tmp_path / "config.json").write_text((classifier_dir / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="safetensors only"):
        inspect_model(tmp_path)


def test_cli_bad_model_folder_is_a_one_line_error(lcfm_cli, tmp_path):
    code, _, err = lcfm_cli("push", "--model", tmp_path,
                           "--repo-id", "org/name")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert err.startswith("lcfm: error: ") and "not a model folder" in err


def test_cli_dry_run_prints_card_and_files(lcfm_cli, classifier_dir):
    code, out, _ = lcfm_cli("push", "--model", classifier_dir,
                           "--repo-id", "org/name", "--dry-run")
    assert code == 0
    assert "library_name: lcfm" in out
    assert out.strip().endswith("files: config.json, model.safetensors, README.md")


def test_cli_dry_run_names_lora_files_made_at_push_time(lcfm_cli, lora_dir,
                                                         tmp_path):
    unmerged = tmp_path / "lora"
    shutil.copytree(lora_dir, unmerged, ignore=shutil.ignore_patterns("merged"))
    code, out, _ = lcfm_cli("push", "--model", unmerged,
                           "--repo-id", "org/lora", "--dry-run")
    assert code == 0
    assert "files: config.json (merged at push time), model.safetensors (merged at push " \
           "time), adapter/adapter_config.json" in out


def test_errors_are_lcfm_errors():
    from lcfm.hub import HubError

    assert issubclass(HubError, LcfmError)
