"""Saving and loading fine-tuned classifiers, including LoRA adapters.

A full or frozen-encoder run writes an ordinary checkpoint to OUTPUT. A LoRA run writes
the adapter alone to OUTPUT (`adapter_config.json`, `adapter_model.safetensors`, with the
trained head as a module to save), the weights it adapts to OUTPUT/base, and, with
`--merge-lora`, the merged model to OUTPUT/merged.

Every final save goes through `save_model_atomically`: a run killed while saving leaves no
folder that looks complete (issue 9: "a folder with config.json but no weights"), and every
model folder gets the model's processor, `preprocessor_config.json` (`lcfm.processing`;
issue 13: "preprocessing travels with the weights").
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

from lcfm.engine.loading import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CONFIG,
    check_model_folder,
    load_pretrained,
    plugin_for_model_type,
)
from lcfm.processing import save_processor

#: the files whose presence says "this folder holds a model": written last, removed first
MARKERS = (CONFIG, ADAPTER_CONFIG)
#: weight files an older save may have left that the new one does not overwrite
_WEIGHT_GLOBS = ("model*.safetensors", "model.safetensors.index.json", ADAPTER_WEIGHTS)


def save_model_atomically(model, folder: Path) -> Path:
    """`model.save_pretrained` into a hidden staging folder, then move the weights into
    `folder` and the marker (config.json / adapter_config.json) last, after removing the old
    marker first. A kill at any point leaves either the previous complete model, or a folder
    without a marker that every loader refuses with one line; never a config.json beside
    missing or partial weights. Files are made world-readable (0644 under the usual umask):
    safetensors writes 0600, which hides a shared model from the rest of a group."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / ".saving.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    save_processor(model, staging)  # preprocessor_config.json: preprocessing travels along
    umask = os.umask(0)
    os.umask(umask)
    new = [p for p in staging.iterdir() if p.is_file()]
    for name in MARKERS:
        (folder / name).unlink(missing_ok=True)
    for pattern in _WEIGHT_GLOBS:  # stale shards of a differently sharded older save
        for old in folder.glob(pattern):
            if old.is_file() and not (staging / old.name).exists():
                old.unlink()
    for path in sorted(new, key=lambda p: p.name in MARKERS):  # markers last
        os.chmod(path, 0o666 & ~umask)
        os.replace(path, folder / path.name)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def save_classifier(model, output: Path, best_dir: Path, *, lora: bool, merge: bool,
                    survey: str):
    """Restore the best validation weights, write the final artefacts, return the model to
    evaluate (merged for LoRA)."""
    output = Path(output)
    if lora:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if (best_dir / ADAPTER_WEIGHTS).exists():
            set_peft_model_state_dict(model, load_file(best_dir / ADAPTER_WEIGHTS))
        model.get_base_model().config.lcfm_survey = survey  # copied into base/ and merged/
        # the adapter's marker goes last: remove it now so a kill while base/ is written
        # does not leave an old adapter beside a half-new base
        (output / ADAPTER_CONFIG).unlink(missing_ok=True)
        # the untouched base weights: unload the adapters from a copy
        save_model_atomically(copy.deepcopy(model).unload(), output / "base")
        model.peft_config["default"].base_model_name_or_path = "base"
        merged = copy.deepcopy(model).merge_and_unload()
        if merge:
            save_model_atomically(merged, output / "merged")
        save_model_atomically(model, output)
        shutil.rmtree(best_dir, ignore_errors=True)
        return merged.eval()
    if (best_dir / CONFIG).exists():
        model = load_pretrained(type(model), best_dir)
    model.config.lcfm_survey = survey
    save_model_atomically(model, output)
    shutil.rmtree(best_dir, ignore_errors=True)
    return model.eval()


def load_classifier(path: Path):
    """(plugin, model) for a fine-tuned classifier folder: a full checkpoint, a LoRA
    adapter folder with its base in `base/` (adapters applied, not merged), or an ensemble
    folder (`ensemble.json`: one `EnsembleClassifier` whose logits are log of the mean of
    its members' probabilities). The folder is
    checked first (`check_model_folder`), so a bad one is one line, not a traceback."""
    from transformers import AutoConfig

    from lcfm.exceptions import ModelFolderError

    path = Path(path)
    config_dict = check_model_folder(path, classifier=True)
    if "lcfm_ensemble" in config_dict:  # one module averaging its members' probabilities
        from lcfm.engine.ensemble import load_ensemble

        return load_ensemble(path)
    plugin = plugin_for_model_type(config_dict["model_type"])
    if (path / ADAPTER_CONFIG).exists():
        from peft import PeftModel

        base = load_pretrained(plugin.classification_class, path / "base")
        try:
            return plugin, PeftModel.from_pretrained(base, path).eval()
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelFolderError(path, f"cannot apply the LoRA adapter: "
                                         f"{type(exc).__name__}: {exc}") from exc
    config = load_pretrained(AutoConfig, path)
    if getattr(config, "lcfm_survey", None) is None:
        raise ModelFolderError(path / CONFIG, "no lcfm_survey: not a model fine-tuned by "
                                              "lcfm (run `lcfm finetune` first)")
    return plugin, load_pretrained(plugin.classification_class, path).eval()
