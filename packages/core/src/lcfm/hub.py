"""Publishing a trained model to the Hugging Face Hub (`lcfm push`).

A model folder written by `lcfm pretrain` or `lcfm finetune` is published as an ordinary
transformers repository: `config.json` and safetensors weights at the top, plus a model card
(README.md). A LoRA run is published so that the top level still loads with `from_pretrained`:
there the merged model (`merged/` when `--merge-lora` saved it, else merged at push time), the
adapter in `adapter/` and the weights it adapts in `base/`; an adapter_config.json at the top
would send transformers looking for the base model under its local relative name. The card states
the architecture and its paper, the survey with its bands and taxonomy, the classes, the
training data and recipe (from the folder's metrics.json), the metrics of `lcfm evaluate`
when given, the licence, and how to load it. Pickled `.bin` weights, the resumable
`checkpoint/` folder and optimizer state are never uploaded.

Uploads go through huggingface_hub's own client (`HfApi.create_repo`, `upload_folder`), so
HF_ENDPOINT, HF_TOKEN and the saved login apply as for any Hub upload. After a push,
`import lcfm; AutoModel.from_pretrained("ORG/NAME")` loads the model through the normal
Hub client and cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lcfm.exceptions import ConfigError, DataError, InputFileError, LcfmError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CARD_TAGS = ("lcfm", "light-curves", "astronomy", "time-series")
#: remote files a push replaces: stale weights of an earlier push (e.g. a LoRA adapter left
#: over when a full model is pushed to the same repo) would change what from_pretrained loads
MANAGED_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.bin", "config.json",
                    ADAPTER_CONFIG, "adapter/*", "base/*", "merged/*"]


class HubError(LcfmError):
    """The Hub refused or could not complete a request."""


@dataclass
class ModelFolder:
    """What a model folder holds, as far as publishing is concerned."""

    path: Path
    kind: str  # "classifier", "pretrained" or "lora"
    config: object
    plugin: object
    #: path in the repository -> local file (None: the merged LoRA model, made at push time)
    files: dict[str, Path | None]
    metrics: dict | None = None
    parameters: int = 0
    extras: dict = field(default_factory=dict)


def _weight_files(folder: Path) -> list[str]:
    """File names of the safetensors weights in `folder` (single file or shards + index)."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise InputFileError(index, f"not a safetensors index ({exc})") from None
        missing = [s for s in shards if not (folder / s).exists()]
        if missing:
            raise InputFileError(index, f"names missing weight shards {missing}")
        return ["model.safetensors.index.json", *shards]
    if (folder / "model.safetensors").exists():
        return ["model.safetensors"]
    if list(folder.glob("*.bin")):
        raise DataError(f"{folder}: weights are pickled .bin files; lcfm publishes safetensors "
                        "only (re-save with save_pretrained)")
    raise DataError(f"{folder}: no model.safetensors (not a saved model folder)")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputFileError(path, "expected a JSON object")
    return data


def _load_config(folder: Path):
    from lcfm.engine.loading import plugin_for_model_type
    from lcfm.exceptions import PluginNotFoundError

    config_path = folder / "config.json"
    model_type = _read_json(config_path).get("model_type")
    if not model_type:
        raise InputFileError(config_path, "no model_type: not a transformers model config")
    try:
        plugin = plugin_for_model_type(model_type)
    except PluginNotFoundError as exc:
        raise ConfigError(f"{config_path}: {exc}") from None
    return plugin, plugin.config_class.from_pretrained(folder)


def _count_parameters(cls, config) -> int:
    import torch

    with torch.device("meta"):
        model = cls(config)
    return sum(p.numel() for p in model.parameters())


def inspect_model(path: Path) -> ModelFolder:
    """Check a model folder and list what a push uploads; bad folders raise one-line errors."""
    path = Path(path)
    if not path.is_dir():
        raise InputFileError(path, "no such model folder")
    lora = (path / ADAPTER_CONFIG).exists()
    if lora or (path / "config.json").exists():
        from lcfm.engine.loading import check_model_folder

        check_model_folder(path)  # damaged weights are never uploaded
    if lora:
        if not (path / ADAPTER_WEIGHTS).exists():
            raise DataError(f"{path}: LoRA folder without {ADAPTER_WEIGHTS}")
        if not (path / "base" / "config.json").exists():
            raise DataError(f"{path}: LoRA folder without its base model in base/ "
                            "(written by `lcfm finetune --lora`)")
        plugin, config = _load_config(path / "base")
        merged = path / "merged"
        if (merged / "config.json").exists():
            files = {name: merged / name for name in ["config.json", *_weight_files(merged)]}
        else:
            files = {"config.json": None, "model.safetensors": None}
        files |= {f"adapter/{name}": path / name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS)}
        files |= {f"base/{name}": path / "base" / name
                  for name in ["config.json", *_weight_files(path / "base")]}
    else:
        if not (path / "config.json").exists():
            folds = sorted(p.name for p in path.glob("fold-*") if (p / "config.json").exists()
                           or (p / ADAPTER_CONFIG).exists())
            if folds:
                raise DataError(f"{path}: a few-shot run; push one of its folds "
                                f"({', '.join(folds)})")
            raise DataError(f"{path}: not a model folder (no config.json or {ADAPTER_CONFIG})")
        plugin, config = _load_config(path)
        files = {name: path / name for name in ["config.json", *_weight_files(path)]}
    metrics = _read_json(path / "metrics.json") if (path / "metrics.json").exists() else None
    architecture = (getattr(config, "architectures", None) or [""])[0]
    classes = {c.__name__: c for c in (plugin.classification_class, plugin.pretraining_class,
                                       plugin.base_model_class) if c is not None}
    if lora:
        kind = "lora"
    elif plugin.classification_class is not None and (
            architecture == plugin.classification_class.__name__
            or (not architecture and metrics and "classes" in metrics)):
        kind = "classifier"
    else:
        kind = "pretrained"
    cls = (plugin.classification_class if kind != "pretrained"
           else classes.get(architecture, plugin.pretraining_class or plugin.base_model_class))
    return ModelFolder(path=path, kind=kind, config=config, plugin=plugin, files=files,
                       metrics=metrics, parameters=_count_parameters(cls, config),
                       extras={"class_name": cls.__name__})


# ---- the model card ------------------------------------------------------------------------

def _source(value) -> str:
    """A data source for the card: folder names, never a local absolute path."""
    text = str(value)
    return Path(text).name if (os.sep in text or "/" in text) else text


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def _survey_section(config) -> list[str]:
    from lcfm.exceptions import PluginNotFoundError
    from lcfm.registry import get_survey

    name = getattr(config, "lcfm_survey", None)
    if not name:
        return ["## Survey", "", "The survey of the training data was not recorded in "
                "config.json.", ""]
    try:
        survey = get_survey(name).describe()
    except PluginNotFoundError:
        bands = getattr(config, "lcfm_bands", None) or {}
        survey = {"name": name, "description": "(survey plugin not installed here)",
                  "bands": bands, "taxonomy": [], "value_kind": "?"}
    lines = ["## Survey", "", f"Trained on **{survey['name']}** light curves: "
             f"{survey['description']}", "", "| band | central wavelength (Å) |", "|---|---|"]
    lines += [f"| {b} | {w:.0f} |" for b, w in survey["bands"].items()]
    kind = {"mag": "magnitudes", "flux": "fluxes"}.get(survey["value_kind"], survey["value_kind"])
    lines += ["", f"Values are {kind}."]
    if survey["taxonomy"]:
        lines += ["", "Survey taxonomy: " + ", ".join(survey["taxonomy"]) + "."]
    return [*lines, ""]


def _classes_section(config) -> list[str]:
    id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
    lines = ["## Classes", "", "| id | class |", "|---|---|"]
    return [*lines, *(f"| {i} | {id2label[i]} |" for i in sorted(id2label)), ""]


def _training_section(metrics: dict | None) -> list[str]:
    lines = ["## Training", ""]
    if not metrics:
        return [*lines, "No metrics.json was found beside the weights: the training data and "
                "recipe were not recorded.", ""]
    args = metrics.get("args", {})
    if "first_loss" in metrics:  # `lcfm pretrain`
        validation = metrics.get("validation") or []
        rows = [("objective", "self-supervised pretraining"),
                ("data", _source(metrics.get("data"))),
                ("training / validation light curves",
                 f"{metrics.get('train_light_curves')} / {metrics.get('validation_light_curves')}"),
                ("steps", metrics.get("steps")), ("batch size", args.get("batch_size")),
                ("learning rate", args.get("learning_rate")),
                ("weight decay", args.get("weight_decay")),
                ("warm-up fraction", args.get("warmup_fraction")), ("seed", args.get("seed")),
                ("loss (first → last step)",
                 f"{_fmt(metrics.get('first_loss'))} → {_fmt(metrics.get('final_loss'))}"),
                ("validation loss", _fmt(validation[-1]["loss"]) if validation else "-")]
    else:  # `lcfm finetune`
        mode = (f"LoRA adapters (rank {args.get('lora_rank')}) and the head" if args.get("lora")
                else "head only (frozen encoder)" if args.get("freeze_encoder") else "full")
        rows = [("objective", f"classification, loss {args.get('loss')}"),
                ("starting point", _source(metrics.get("model"))), ("trained weights", mode),
                ("data", _source(args.get("data"))),
                ("training / validation / test light curves",
                 f"{metrics.get('train_light_curves')} / {metrics.get('validation_light_curves')}"
                 f" / {metrics.get('test_light_curves')}"),
                ("steps (best)", f"{metrics.get('steps')} ({metrics.get('best_step')})"),
                ("batch size", args.get("batch_size")),
                ("learning rates (encoder / head)",
                 f"{args.get('lr_encoder')} / {args.get('lr_head')}"),
                ("class-balanced batches", args.get("balanced")),
                ("augmentations", ", ".join(args.get("augment") or []) or "none"),
                ("seed", args.get("seed")),
                ("best validation macro F1", _fmt(metrics.get("best_validation_macro_f1"), 3))]
        test = metrics.get("test")
        if test:
            rows.append(("held-out test split", ", ".join(
                f"{k.replace('_', ' ')} {v:.3f}" for k, v in test.items())))
    lines += ["| | |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in rows)]
    return [*lines, ""]


def _evaluation_section(evaluation: dict) -> list[str]:
    lines = ["## Evaluation", "", f"`lcfm evaluate` on {evaluation.get('n_objects')} objects "
             f"({evaluation.get('light_curves')} light curves, all observations; probabilities "
             f"averaged per object), held out: the {evaluation['excluded_training_objects']} "
             "training and validation objects in the data were excluded.", "",
             "| metric | value |", "|---|---|"]
    for key in ("accuracy", "macro_f1", "class_balanced_f1", "macro_precision",
                "macro_recall", "ece"):
        if key in evaluation:
            lines.append(f"| {key.replace('_', ' ')} | {evaluation[key]:.3f} |")
    per_class = evaluation.get("per_class") or {}
    if per_class:
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                  f"{m['support']} |" for c, m in per_class.items()]
    return [*lines, ""]


def _usage_section(repo_id: str, kind: str) -> list[str]:
    code = ["import lcfm  # registers lcfm's models with transformers' Auto classes",
            "from transformers import AutoModel, AutoModelForSequenceClassification", "",
            f'encoder = AutoModel.from_pretrained("{repo_id}")  '
            "# per-step hidden states and a pooled embedding"]
    if kind == "pretrained":
        code += ["from transformers import AutoModelForPreTraining",
                 f'model = AutoModelForPreTraining.from_pretrained("{repo_id}")']
    else:
        code.append(f'classifier = AutoModelForSequenceClassification.from_pretrained('
                    f'"{repo_id}")')
    if kind == "lora":
        code += ["", "# or the LoRA adapters over their base weights, with peft",
                 "from peft import PeftModel",
                 f'base = AutoModelForSequenceClassification.from_pretrained("{repo_id}", '
                 'subfolder="base")',
                 f'adapted = PeftModel.from_pretrained(base, "{repo_id}", subfolder="adapter")']
    lines = ["## How to use", "", "Install lcfm (its model plugins register the architecture "
             "with transformers; no `trust_remote_code`), then:", "", "```python", *code, "```",
             "", "lcfm's own commands take a local folder:", "", "```bash",
             f"hf download {repo_id} --local-dir model"]
    if kind == "pretrained":
        lines += ["lcfm finetune --model model --data SHARDS --output finetuned",
                  "lcfm embed --model model --data SHARDS --output embeddings.parquet"]
    else:
        lines += ["lcfm predict --model model --data SHARDS --output predictions.parquet"]
    return [*lines, "```", ""]


def model_card(model: ModelFolder | Path, repo_id: str, *, evaluation: Path | None = None,
               license: str = "mit") -> str:
    """The README.md of the repository: YAML front matter, then the sections above."""
    from huggingface_hub import ModelCardData

    folder = model if isinstance(model, ModelFolder) else inspect_model(model)
    config, plugin = folder.config, folder.plugin
    survey = getattr(config, "lcfm_survey", None)
    tags = [*CARD_TAGS, config.model_type, *([survey] if survey else [])]
    if folder.kind != "pretrained":
        tags.append("time-series-classification")
    data = ModelCardData(library_name="transformers", license=license, tags=tags,
                         pipeline_tag="feature-extraction" if folder.kind == "pretrained"
                         else "other")
    task = {"pretrained": "a self-supervised pretrained encoder",
            "classifier": "a light-curve classifier",
            "lora": "a light-curve classifier fine-tuned with LoRA adapters"}[folder.kind]
    lines = ["---", data.to_yaml(), "---", "", f"# {repo_id}", "",
             f"{task[0].upper()}{task[1:]} ({plugin.name} architecture) for "
             f"{survey + ' light curves' if survey else 'light curves'}, trained with lcfm, "
             "the light-curve foundation-model platform.",
             "", "## Model", "",
             f"- Architecture: {plugin.description}",
             f"- Implements: {plugin.paper}",
             f"- transformers classes: `{type(config).__name__}` (model_type "
             f"`{config.model_type}`), `{folder.extras['class_name']}`",
             f"- Parameters: {folder.parameters:,}", ""]
    if folder.kind == "lora":
        lines += ["The top level holds the classifier with its LoRA adapters merged into the "
                  "weights; `adapter/` holds the adapters (and the trained head) and `base/` "
                  "the weights they adapt.", ""]
    lines += _survey_section(config)
    if folder.kind != "pretrained":
        lines += _classes_section(config)
    lines += _training_section(folder.metrics)
    if evaluation is not None:
        report = _read_json(Path(evaluation) / "metrics.json") if Path(evaluation).is_dir() \
            else _read_json(Path(evaluation))
        if "accuracy" not in report or "per_class" not in report:
            raise InputFileError(evaluation, "not an `lcfm evaluate` metrics.json "
                                             "(no accuracy / per_class)")
        if not isinstance(report.get("excluded_training_objects"), int):  # held-out only
            raise InputFileError(evaluation, "not checked against the model's training "
                                 "objects; run `lcfm evaluate` on the `lcfm finetune` folder")
        lines += _evaluation_section(report)
    lines += _usage_section(repo_id, folder.kind)
    lines += ["## Licence", "", f"The weights are released under the `{license}` licence. "
              f"The training light curves come from {survey or 'the survey named above'}; "
              "their own terms of use apply to the data.", ""]
    return "\n".join(lines)


# ---- the upload ------------------------------------------------------------------------------

def _stage(folder: ModelFolder, card: str, into: Path) -> None:
    """Hard-link (or copy) exactly the files to publish, plus the card, into a staging folder,
    so that upload_folder commits them in one commit and nothing else."""
    for rel, source in folder.files.items():
        if source is None:
            continue
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
    if any(source is None for source in folder.files.values()):
        from lcfm.engine.save import load_classifier

        _, adapted = load_classifier(folder.path)
        adapted.merge_and_unload().save_pretrained(into)
    (into / "README.md").write_text(card, encoding="utf-8")


def push(model_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None,
         revision: str | None = None, evaluation: Path | None = None, license: str = "mit",
         commit_message: str | None = None, endpoint: str | None = None) -> dict:
    """Create (or reuse) the repository and upload the model and its card in one commit.
    Returns {"url", "commit", "revision", "files"}."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    folder = inspect_model(model_dir)
    card = model_card(folder, repo_id, evaluation=evaluation, license=license)
    if constants.is_offline_mode():
        raise HubError("HF_HUB_OFFLINE is set: pushing needs the Hub (unset it, or point "
                       "HF_ENDPOINT at a reachable Hub)")
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    api = HfApi(endpoint=endpoint.rstrip("/"), token=token)
    branch = revision or constants.DEFAULT_REVISION
    with tempfile.TemporaryDirectory(prefix="lcfm-push-") as tmp:
        _stage(folder, card, Path(tmp))
        staged = sorted(p.relative_to(tmp).as_posix() for p in Path(tmp).rglob("*")
                        if p.is_file())
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if branch != constants.DEFAULT_REVISION:
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=tmp, revision=branch,
                delete_patterns=MANAGED_PATTERNS,
                commit_message=commit_message or f"Upload {folder.plugin.name} {folder.kind} "
                                                 "model with lcfm")
        except HfHubHTTPError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise HubError(f"{repo_id} on {endpoint}: {first_line}") from None
        except Exception as exc:  # transport errors of the HTTP client (connection refused)
            if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore",
                                                          "httpcore2"):
                raise
            raise HubError(f"{repo_id}: cannot reach {endpoint} "
                           f"({type(exc).__name__}: {exc})") from None
    return {"url": str(url), "commit": info.oid, "revision": branch,
            "files": staged}
