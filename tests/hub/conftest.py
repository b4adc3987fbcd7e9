"""Tiny model folders, as `lcfm pretrain` / `lcfm finetune` write them, for the push tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

CLASSES = ["RRab", "EC"]


def _macho_config(plugin, **extra):
    from lcfm.registry import get_survey

    config = plugin.make_config("tiny", **extra)
    config.lcfm_survey = "macho"
    config.lcfm_bands = {b: float(w) for b, w in get_survey("macho").bands.items()}
    return config


def finetune_metrics(data: str, lora: bool = False) -> dict:
    """The keys `lcfm finetune` writes to metrics.json (engine/finetune.py `_finish`)."""
    return {"model": "astromer-v2", "plugin": "astromer", "survey": "macho", "classes": CLASSES,
            "steps": 40, "best_step": 30, "best_validation_macro_f1": 0.8125,
            "validation": [{"step": 30, "macro_f1": 0.8125}], "train_light_curves": 36,
            "validation_light_curves": 4, "test_light_curves": 8, "parameters": 6678,
            "test": {"accuracy": 0.875, "macro_f1": 0.8571, "class_balanced_f1": 0.8571,
                     "ece": 0.1234},
            "args": {"data": data, "model": "astromer-v2", "lora": lora, "lora_rank": 2,
                     "freeze_encoder": False, "batch_size": 8, "loss": "weighted_ce",
                     "balanced": False, "augment": [], "lr_encoder": 1e-4, "lr_head": 1e-3,
                     "seed": 0}}


def build_classifier(path: Path, seed: int = 0) -> Path:
    """A fine-tuned astromer classifier folder, with the training leftovers a push must skip."""
    from lcfm.registry import get_model

    plugin = get_model("astromer")
    config = _macho_config(plugin)
    config.num_labels = len(CLASSES)
    config.id2label = dict(enumerate(CLASSES))
    config.label2id = {c: i for i, c in enumerate(CLASSES)}
    torch.manual_seed(seed)
    plugin.classification_class(config).save_pretrained(path)
    (path / "metrics.json").write_text(json.dumps(finetune_metrics(str(path.parent / "shards"))))
    (path / "loss_history.json").write_text("[]")
    (path / "checkpoint").mkdir()
    (path / "checkpoint" / "optimizer.bin").write_bytes(b"optimizer state")
    (path / "checkpoint" / "model.safetensors").write_bytes(b"resumable weights")
    (path / "pytorch_model.bin").write_bytes(b"pickled weights")
    return path


def build_pretrained(path: Path) -> Path:
    from lcfm.registry import get_model

    plugin = get_model("astromer")
    torch.manual_seed(1)
    plugin.pretraining_class(_macho_config(plugin)).save_pretrained(path)
    (path / "metrics.json").write_text(json.dumps({
        "survey": "macho", "model": "astromer-v2", "model_type": "lcfm_astromer",
        "data": "bundled sample of macho", "train_light_curves": 16,
        "validation_light_curves": 4, "steps": 10, "first_loss": 1.2345, "final_loss": 0.5432,
        "validation": [{"step": 10, "loss": 0.6111}], "seconds": 1.5,
        "args": {"batch_size": 8, "learning_rate": 0.001, "weight_decay": 0.01,
                 "warmup_fraction": 0.05, "seed": 0}}))
    return path


def build_lora(path: Path) -> Path:
    """A LoRA fine-tuning folder written by the engine's own `save_classifier`."""
    from lcfm.engine.loading import apply_lora
    from lcfm.engine.save import save_classifier
    from lcfm.registry import get_model

    plugin = get_model("astromer")
    config = _macho_config(plugin)
    config.num_labels = len(CLASSES)
    config.id2label = dict(enumerate(CLASSES))
    config.label2id = {c: i for i, c in enumerate(CLASSES)}
    torch.manual_seed(2)
    model = apply_lora(plugin.classification_class(config), rank=2)
    with torch.no_grad():  # non-zero adapters, so that base and adapted outputs differ
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    save_classifier(model, path, path / "best", lora=True, merge=True, survey="macho")
    (path / "metrics.json").write_text(json.dumps(finetune_metrics("shards", lora=True)))
    return path


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("models") / "classifier")


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory) -> Path:
    return build_pretrained(tmp_path_factory.mktemp("models") / "pretrained")


@pytest.fixture(scope="session")
def lora_dir(tmp_path_factory) -> Path:
    return build_lora(tmp_path_factory.mktemp("models") / "lora")


@pytest.fixture(scope="session")
def evaluation_dir(tmp_path_factory) -> Path:
    """metrics.json as `lcfm evaluate` writes it (lcfm.metrics.classification_report)."""
    path = tmp_path_factory.mktemp("evaluation")
    (path / "metrics.json").write_text(json.dumps({
        "n": 12, "accuracy": 0.9167, "macro_precision": 0.93, "macro_recall": 0.9,
        "macro_f1": 0.9091, "class_balanced_f1": 0.9, "ece": 0.0456,
        "per_class": {"RRab": {"precision": 0.86, "recall": 1.0, "f1": 0.9231, "support": 6},
                      "EC": {"precision": 1.0, "recall": 0.8333, "f1": 0.9091, "support": 6}},
        "objects": 12, "n_objects": 12, "excluded_training_objects": 48,
        "light_curves": 24}))
    return path


@pytest.fixture(scope="session")
def ingested_dir(tmp_path_factory) -> Path:
    """The bundled MACHO sample through `lcfm ingest` (shards + report.json)."""
    from lcfm.ingest import ingest
    from lcfm.registry import get_survey

    path = tmp_path_factory.mktemp("datasets") / "macho-sample"
    ingest(get_survey("macho"), None, path)
    return path


@pytest.fixture(scope="session")
def simulated_dir(tmp_path_factory) -> Path:
    """24 light curves of `lcfm simulate --survey macho` (shards, report.json and
    simulation.json: two JSON files beside one shard)."""
    from lcfm.registry import get_survey
    from lcfm.simulate import simulate

    path = tmp_path_factory.mktemp("datasets") / "macho-simulated"
    simulate(get_survey("macho"), 24, path, seed=3)
    return path
