"""Resolve a model given by configuration name or checkpoint folder, check model folders
before loading them, build classification models from pretrained encoders, and wrap them
for frozen-encoder or LoRA fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoConfig

from lcfm.exceptions import ConfigError, ModelFolderError, PluginNotFoundError
from lcfm.registry import find_model_configuration, get_model, model_names

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: the manifest of an ensemble of fine-tuned classifiers (lcfm.engine.ensemble)
ENSEMBLE_FILE = "ensemble.json"


def plugin_for_model_type(model_type: str):
    for name in model_names():
        plugin = get_model(name)
        if plugin.config_class.model_type == model_type:
            return plugin
    raise PluginNotFoundError("model type", model_type,
                              [get_model(n).config_class.model_type for n in model_names()])


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelFolderError(path, "not a text file (expected JSON)") from None
    except json.JSONDecodeError as exc:
        raise ModelFolderError(path, f"not valid JSON: {exc.msg} at line {exc.lineno}, "
                                     f"column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ModelFolderError(path, f"expected a JSON object, found {type(data).__name__}")
    return data


def check_safetensors(path: Path) -> None:
    """Open the file's safetensors header: a zero-byte or truncated file (the header names
    more bytes than the file holds) fails here, with one line, instead of deep in
    `from_pretrained`."""
    from safetensors import SafetensorError, safe_open

    if path.stat().st_size == 0:
        raise ModelFolderError(path, "zero-byte weights file (an interrupted save?); "
                                     "train or copy the model again")
    try:
        with safe_open(path, framework="pt") as handle:
            handle.keys()
    except SafetensorError as exc:
        raise ModelFolderError(path, f"unreadable safetensors file, truncated or corrupt "
                                     f"({exc})") from None


def _check_weights(folder: Path) -> None:
    index = folder / WEIGHTS_INDEX
    if index.exists():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelFolderError(index, "no weight_map: not a safetensors index")
        files = [folder / name for name in sorted(set(map(str, weight_map.values())))]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise ModelFolderError(index, f"names missing weight shard(s) {missing}")
    elif (folder / WEIGHTS).exists():
        files = [folder / WEIGHTS]
    elif list(folder.glob("*.bin")):
        raise ModelFolderError(folder, "weights are pickled .bin files; lcfm loads "
                                       "safetensors only (re-save with save_pretrained)")
    else:
        raise ModelFolderError(folder, f"{CONFIG} but no {WEIGHTS}: an incomplete save (a run "
                                       "killed while saving?); train the model again")
    for path in files:
        check_safetensors(path)


def check_model_folder(path, *, classifier: bool = False) -> dict:
    """Check a model folder before anything loads it and return its parsed config.json
    (for a LoRA folder, that of its base/). Every problem is one `ModelFolderError` line
    naming the file (issue 9: truncated or zero-byte weights, config.json without weights,
    unknown model_type, invalid JSON, a classifier command given a model without id2label).

    `classifier`: the command needs a fine-tuned classification model (evaluate, predict)."""
    path = Path(path)
    if not path.exists():
        raise ModelFolderError(path, "no such model folder")
    if not path.is_dir():
        raise ModelFolderError(path, "a file, not a model folder")
    if (path / ENSEMBLE_FILE).exists():
        return _check_ensemble(path, classifier)
    if (path / ADAPTER_CONFIG).exists():
        _read_json(path / ADAPTER_CONFIG)
        if not (path / ADAPTER_WEIGHTS).exists():
            raise ModelFolderError(path, f"LoRA folder without {ADAPTER_WEIGHTS} (an "
                                         "interrupted save?)")
        check_safetensors(path / ADAPTER_WEIGHTS)
        if not (path / "base").is_dir():
            raise ModelFolderError(path, "LoRA folder without its base model in base/")
        return check_model_folder(path / "base", classifier=classifier)
    if not (path / CONFIG).exists():
        raise ModelFolderError(path, f"not a model folder (no {CONFIG} or {ADAPTER_CONFIG})")
    config = _read_json(path / CONFIG)
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelFolderError(path / CONFIG, "no model_type: not a transformers model config")
    try:
        plugin = plugin_for_model_type(model_type)
    except PluginNotFoundError as exc:
        raise ModelFolderError(path / CONFIG, str(exc)) from None
    _check_weights(path)
    if classifier:
        if plugin.classification_class is None:
            raise ModelFolderError(path, f"model {plugin.name!r} has no classification head")
        id2label = config.get("id2label")
        if not isinstance(id2label, dict) or not id2label:
            raise ModelFolderError(path / CONFIG, "no id2label: not a fine-tuned classifier "
                                   f"(a pretrained encoder? run `lcfm finetune --model {path}` "
                                   "first)")
    return config


def _check_ensemble(path: Path, classifier: bool) -> dict:
    """An ensemble folder (`lcfm.engine.ensemble`): every member is checked as a
    classifier; the first member's config is returned, with `lcfm_ensemble` (the member
    folders) added so that callers can tell."""
    from lcfm.engine.ensemble import read_manifest

    members = read_manifest(path)["members"]
    configs = [check_model_folder(path / m, classifier=True) for m in members]
    return {**configs[0], "lcfm_ensemble": members}


def load_pretrained(cls, path, **kwargs):
    """`cls.from_pretrained(path)` on a folder `check_model_folder` accepted. What can still
    fail is a config.json whose values do not fit the weights or the model (edited by hand,
    or weights from another run): one line naming the folder, the cause chained. The
    load report (a new head on a pretrained encoder) is one line, from Python as on the
    command line."""
    from lcfm.load_report import quiet_load_reports

    quiet_load_reports()
    try:
        return cls.from_pretrained(path, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise ModelFolderError(path, f"cannot load as {cls.__name__}: "
                                     f"{type(exc).__name__}: {first[:300]}") from exc


def is_checkpoint(spec) -> bool:
    return Path(str(spec)).is_dir() and (Path(str(spec)) / CONFIG).exists()


def resolve(spec: str, overrides: dict | None = None):
    """(plugin, config, checkpoint folder or None) for a configuration name or a folder."""
    if Path(str(spec)).exists():
        if (Path(str(spec)) / ENSEMBLE_FILE).exists():
            raise ModelFolderError(spec, "an ensemble of classifiers; start from one member "
                                         f"({Path(str(spec)) / 'member-0'})")
        check_model_folder(spec)
        if not (Path(str(spec)) / CONFIG).exists():
            raise ModelFolderError(spec, "a LoRA adapter folder; start from its merged/ "
                                         "model (`lcfm finetune --lora --merge-lora`)")
        config = load_pretrained(AutoConfig, spec)
        for key, value in (overrides or {}).items():
            setattr(config, key, value)
        return plugin_for_model_type(config.model_type), config, Path(spec)
    plugin, name = find_model_configuration(spec)
    return plugin, plugin.make_config(name, **(overrides or {})), None


def classification_model(plugin, config, checkpoint: Path | None, class_names: list[str]):
    """The plugin's classification head over `class_names`, with encoder weights from
    `checkpoint` when given (a pretraining or a classification checkpoint)."""
    if plugin.classification_class is None:
        raise ConfigError(f"model {plugin.name!r} has no classification head")
    config.num_labels = len(class_names)
    config.id2label = dict(enumerate(class_names))
    config.label2id = {c: i for i, c in enumerate(class_names)}
    cls = plugin.classification_class
    if checkpoint is None:
        return cls(config)
    return load_pretrained(cls, checkpoint, config=config, ignore_mismatched_sizes=True)


def encoder_prefix(model) -> str:
    return model.base_model_prefix + "."


def parameter_groups(model, lr_encoder: float, lr_head: float, weight_decay: float):
    """AdamW groups: the encoder at `lr_encoder`, everything else (heads) at `lr_head`
    (ASTRAFier sect. 5: 1e-4 for the blocks, 1e-3 for the classification head)."""
    prefix = encoder_prefix(model)
    encoder, head = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            # `prefix` may sit below a wrapper (peft names "model.<prefix>.")
            (encoder if f".{prefix}" in f".{name}" else head).append(param)
    groups = [{"params": encoder, "lr": lr_encoder}, {"params": head, "lr": lr_head}]
    return [dict(g, weight_decay=weight_decay) for g in groups if g["params"]]


def freeze_encoder(model, keep_trainable: tuple[str, ...] = (),
                   fresh: frozenset[str] = frozenset()) -> None:
    """Freeze the encoder, except parameters whose names end with one of `keep_trainable`
    and the `fresh` ones (names inside the encoder that the checkpoint did not hold, e.g. a
    metadata token added at fine-tuning: frozen, they would stay random)."""
    for name, param in getattr(model, model.base_model_prefix).named_parameters():
        keep = name in fresh or (name.endswith(keep_trainable) if keep_trainable else False)
        param.requires_grad_(keep)


def fresh_encoder_parameters(model, checkpoint: Path | None) -> frozenset[str]:
    """Encoder parameter names (relative to the encoder) that `checkpoint`'s weights lack."""
    if checkpoint is None:
        return frozenset()
    from safetensors import safe_open

    files = sorted(Path(checkpoint).glob("*.safetensors"))
    if not files:
        return frozenset()
    prefix = model.base_model_prefix + "."
    saved = set()
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            saved.update(k[len(prefix):] if k.startswith(prefix) else k for k in handle.keys())
    encoder = getattr(model, model.base_model_prefix)
    return frozenset(name for name, _ in encoder.named_parameters() if name not in saved)


def lora_targets(model) -> tuple[list[str], list[str]]:
    """Linear layers of the encoder (attention and feed-forward) get adapters; the modules
    outside the encoder (the head) are trained in full and saved with the adapter."""
    prefix = model.base_model_prefix
    targets, heads = set(), set()
    for name, module in model.named_modules():
        if name.split(".")[0] == prefix and isinstance(module, torch.nn.Linear):
            targets.add(name.split(".")[-1])
    containers = (torch.nn.ModuleDict, torch.nn.ModuleList)  # peft saves leaves, not these
    for name, module in model.named_children():
        if name == prefix or not any(True for _ in module.parameters()):
            continue
        if isinstance(module, containers):
            heads.update(f"{name}.{child}" for child, sub in module.named_children()
                         if any(True for _ in sub.parameters()))
        else:
            heads.add(name)
    if not targets:
        raise ConfigError(f"{type(model).__name__}: no linear layers in the encoder for LoRA")
    return sorted(targets), sorted(heads)


def apply_lora(model, rank: int = 8, alpha: int = 16, dropout: float = 0.05):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # lcfm declares peft; a broken environment gets one line
        raise ConfigError(f"--lora needs the peft package ({exc}); install lcfm with its "
                          "dependencies (pip install lcfm) or `pip install peft`") from None

    targets, heads = lora_targets(model)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=targets, modules_to_save=heads)
    return get_peft_model(model, config)


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
