"""Saving and loading fine-tuned classifiers, including LoRA adapters.

A full or frozen-encoder run writes an ordinary checkpoint to OUTPUT. A LoRA run writes
the adapter alone to OUTPUT (`adapter_config.json`, `adapter_model.safetensors`, with the
trained head as a module to save), the weights it adapts to OUTPUT/base, and, with
`--merge-lora`, the merged model to OUTPUT/merged.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from lcfm.exceptions import DataError

ADAPTER_CONFIG = "adapter_config.json"


def save_classifier(model, output: Path, best_dir: Path, *, lora: bool, merge: bool,
                    survey: str):
    """Restore the best validation weights, write the final artefacts, return the model to
    evaluate (merged for LoRA)."""
    output = Path(output)
    if lora:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if (best_dir / "adapter_model.safetensors").exists():
            set_peft_model_state_dict(model, load_file(best_dir / "adapter_model.safetensors"))
        model.get_base_model().config.lcfm_survey = survey  # copied into base/ and merged/
        # the untouched base weights: unload the adapters from a copy
        copy.deepcopy(model).unload().save_pretrained(output / "base")
        model.peft_config["default"].base_model_name_or_path = "base"
        model.save_pretrained(output)
        merged = copy.deepcopy(model).merge_and_unload()
        if merge:
            merged.save_pretrained(output / "merged")
        shutil.rmtree(best_dir, ignore_errors=True)
        return merged.eval()
    if (best_dir / "config.json").exists():
        model = type(model).from_pretrained(best_dir)
    model.config.lcfm_survey = survey
    model.save_pretrained(output)
    shutil.rmtree(best_dir, ignore_errors=True)
    return model.eval()


def load_classifier(path: Path):
    """(plugin, model) for a fine-tuned classifier folder: a full checkpoint, or a LoRA
    adapter folder with its base in `base/` (adapters applied, not merged)."""
    from transformers import AutoConfig

    from lcfm.engine.loading import plugin_for_model_type

    path = Path(path)
    if (path / ADAPTER_CONFIG).exists():
        from peft import PeftModel

        config = AutoConfig.from_pretrained(path / "base")
        plugin = plugin_for_model_type(config.model_type)
        base = plugin.classification_class.from_pretrained(path / "base")
        return plugin, PeftModel.from_pretrained(base, path).eval()
    if not (path / "config.json").exists():
        raise DataError(f"{path}: not a model folder (no config.json or {ADAPTER_CONFIG})")
    config = AutoConfig.from_pretrained(path)
    plugin = plugin_for_model_type(config.model_type)
    if plugin.classification_class is None or not getattr(config, "id2label", None) \
            or getattr(config, "lcfm_survey", None) is None:
        raise DataError(f"{path}: not a fine-tuned classifier (run `lcfm finetune` first)")
    return plugin, plugin.classification_class.from_pretrained(path).eval()
