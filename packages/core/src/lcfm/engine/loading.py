"""Resolve a model given by configuration name or checkpoint folder, build classification
models from pretrained encoders, and wrap them for frozen-encoder or LoRA fine-tuning."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig

from lcfm.exceptions import ConfigError, PluginNotFoundError
from lcfm.registry import find_model_configuration, get_model, model_names


def plugin_for_model_type(model_type: str):
    for name in model_names():
        plugin = get_model(name)
        if plugin.config_class.model_type == model_type:
            return plugin
    raise PluginNotFoundError("model type", model_type,
                              [get_model(n).config_class.model_type for n in model_names()])


def is_checkpoint(spec) -> bool:
    return Path(str(spec)).is_dir() and (Path(str(spec)) / "config.json").exists()


def resolve(spec: str, overrides: dict | None = None):
    """(plugin, config, checkpoint folder or None) for a configuration name or a folder."""
    if is_checkpoint(spec):
        config = AutoConfig.from_pretrained(spec)
        for key, value in (overrides or {}).items():
            setattr(config, key, value)
        return plugin_for_model_type(config.model_type), config, Path(spec)
    if Path(str(spec)).exists():
        raise ConfigError(f"{spec}: a folder without config.json is not a model checkpoint")
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
    return cls.from_pretrained(checkpoint, config=config, ignore_mismatched_sizes=True)


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


def freeze_encoder(model, keep_trainable: tuple[str, ...] = ()) -> None:
    """Freeze the encoder, except parameters whose names end with one of `keep_trainable`."""
    for name, param in getattr(model, model.base_model_prefix).named_parameters():
        param.requires_grad_(name.endswith(keep_trainable) if keep_trainable else False)


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
    from peft import LoraConfig, get_peft_model

    targets, heads = lora_targets(model)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=targets, modules_to_save=heads)
    return get_peft_model(model, config)


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
