"""The model card (README.md) `lcfm push` publishes beside the weights.

Its YAML front matter is built with huggingface_hub's `ModelCardData` and `EvalResult`:
`library_name: lcfm`, the licence, `pipeline_tag`, tags, `base_model` for a model trained
from a pretrained checkpoint that lives on the Hub (a Hub id, a Hub-cache snapshot or a
folder holding the card of an lcfm push), `datasets` when the training data are a Hub
dataset, and a `model-index` with the held-out metrics (the test split of `lcfm finetune`
and, when given, `lcfm evaluate`'s metrics.json). The text states the architecture and its
paper, the survey, the classes, where the training light curves come from (simulated data
are called simulated), the recipe with its numbers as recorded (a learning rate of 5e-5
stays 5e-05), the packages to install, the input format and how to load the model. The
card is parsed back with `ModelCard` before it is returned, so its metadata always
validates with huggingface_hub's own checks.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

from lcfm.dataset_card import describe_data, hub_repo_id, is_repo_id, provenance
from lcfm.exceptions import InputFileError

CARD_TAGS = ("lcfm", "light-curves", "astronomy", "time-series")
TASK = ("time-series-classification", "Light-curve classification")
#: metrics.json key -> (model-index metric type, display name, config)
HELD_OUT_METRICS = {"accuracy": ("accuracy", "Accuracy", None),
                    "macro_f1": ("f1", "Macro F1", "macro"),
                    "class_balanced_f1": ("f1", "Class-balanced F1", "class_balanced"),
                    "macro_precision": ("precision", "Macro precision", "macro"),
                    "macro_recall": ("recall", "Macro recall", "macro"),
                    "ece": ("ece", "Expected calibration error", None)}


def number(value) -> str:
    """A recorded hyperparameter as written: 5e-05, 0.001, 32 (never rounded to 0.0001)."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def metric(value, digits: int = 4) -> str:
    """A measured value to `digits` decimals; small values keep 3 significant digits."""
    if isinstance(value, float):
        return f"{value:.3g}" if 0 < abs(value) < 10 ** -digits else f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputFileError(path, "expected a JSON object")
    return data


def read_evaluation(evaluation: Path) -> dict:
    """`lcfm evaluate`'s metrics.json (a folder or the file), checked to be held out."""
    path = Path(evaluation)
    report = read_json(path / "metrics.json" if path.is_dir() else path)
    if "accuracy" not in report or "per_class" not in report:
        raise InputFileError(evaluation, "not an `lcfm evaluate` metrics.json "
                                         "(no accuracy / per_class)")
    if not isinstance(report.get("excluded_training_objects"), int):  # held-out only
        raise InputFileError(evaluation, "not checked against the model's training "
                             "objects; run `lcfm evaluate` on the `lcfm finetune` folder")
    return report


# ---- what the run started from and trained on ----------------------------------------------

def _is_pretraining(metrics: dict | None) -> bool:
    return bool(metrics) and "first_loss" in metrics


def starting_point(metrics: dict | None) -> tuple[str, str | None]:
    """(description, Hub id or None) of the weights a run started from: finetune's `--model`
    or pretrain's `--init`; a configuration name means random initialisation."""
    if not metrics:
        return "-", None
    if _is_pretraining(metrics):
        spec = (metrics.get("init") or {}).get("folder")
    else:
        spec = metrics.get("model") or (metrics.get("args") or {}).get("model")
    if not spec:
        return "random initialisation", None
    text = str(spec)
    if is_repo_id(text) and not Path(text).exists():
        return f"`{text}` (Hub)", text
    if "/" not in text and "\\" not in text and not Path(text).exists():
        return f"random initialisation (configuration `{text}`)", None
    repo_id = hub_repo_id(text, "model")
    if repo_id:
        return f"`{repo_id}` (Hub)", repo_id
    return f"local checkpoint `{Path(text).name}`", None


def training_data(metrics: dict | None) -> dict:
    """`describe_data` of the run's training data."""
    if not metrics:
        return describe_data(None)
    args = metrics.get("args") or {}
    if _is_pretraining(metrics):
        return describe_data(args.get("data") or metrics.get("data"))
    return describe_data(args.get("data"))


def install_line(plugin, survey: str | None) -> str:
    """`pip install` of lcfm, the distribution of the model plugin and, for the survey's
    readers and preprocessing, that of the survey plugin (their pyproject names)."""
    names = ["lcfm"]
    for group, name in (("lcfm.models", plugin.name), ("lcfm.surveys", survey)):
        for ep in entry_points(group=group):
            if ep.name == name and ep.dist is not None and ep.dist.name not in names:
                names.append(ep.dist.name)
    return "pip install " + " ".join(names)


# ---- sections --------------------------------------------------------------------------------

def _survey(name: str | None) -> dict | None:
    from lcfm.exceptions import PluginNotFoundError
    from lcfm.registry import get_survey

    if not name:
        return None
    try:
        plugin = get_survey(name)
    except PluginNotFoundError:
        return None
    return {**plugin.describe(), "preprocessing": [step for step, _ in plugin.preprocessing()]}


def survey_section(config, data: dict) -> list[str]:
    name = getattr(config, "lcfm_survey", None)
    if not name:
        return ["## Survey", "", "The survey of the training data was not recorded in "
                "config.json.", ""]
    survey = _survey(name) or {
        "name": name, "description": "(survey plugin not installed here)",
        "bands": getattr(config, "lcfm_bands", None) or {}, "taxonomy": [], "value_kind": "?"}
    kind = "simulated " if data["kind"] == "simulated" else ""
    lines = ["## Survey", "", f"Trained on {kind}**{survey['name']}** light curves: "
             f"{survey['description']}", "", "| band | central wavelength (Å) |", "|---|---|"]
    lines += [f"| {b} | {w:.0f} |" for b, w in survey["bands"].items()]
    unit = {"mag": "magnitudes", "flux": "fluxes"}.get(survey["value_kind"],
                                                       survey["value_kind"])
    lines += ["", f"Values are {unit}."]
    if survey["taxonomy"]:
        lines += ["", "Survey taxonomy: " + ", ".join(survey["taxonomy"]) + "."]
    return [*lines, ""]


def classes_section(config) -> list[str]:
    id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
    lines = ["## Classes", "", "| id | class |", "|---|---|"]
    return [*lines, *(f"| {i} | {id2label[i]} |" for i in sorted(id2label)), ""]


def training_section(metrics: dict | None, data: dict) -> list[str]:
    lines = ["## Training", ""]
    if not metrics:
        return [*lines, "No metrics.json was found beside the weights: the training data and "
                "recipe were not recorded.", ""]
    args = metrics.get("args", {})
    start, _ = starting_point(metrics)
    if _is_pretraining(metrics):
        validation = metrics.get("validation") or []
        rows = [("objective", "self-supervised pretraining"), ("starting point", start),
                ("recipe", (metrics.get("recipe") or {}).get("name", "-")),
                ("data", data["name"]),
                ("training / validation light curves",
                 f"{metrics.get('train_light_curves')} / {metrics.get('validation_light_curves')}"),
                ("steps", metrics.get("steps")), ("batch size", number(args.get("batch_size"))),
                ("learning rate", number(args.get("learning_rate"))),
                ("weight decay", number(args.get("weight_decay"))),
                ("warm-up steps", number(args.get("warmup_steps"))),
                ("seed", args.get("seed")),
                ("loss (first → last step)",
                 f"{metric(metrics.get('first_loss'))} → {metric(metrics.get('final_loss'))}"),
                ("validation loss", metric(validation[-1]["loss"]) if validation else "-")]
    else:  # `lcfm finetune`
        mode = (f"LoRA adapters (rank {args.get('lora_rank')}) and the head" if args.get("lora")
                else "head only (frozen encoder)" if args.get("freeze_encoder") else "full")
        rows = [("objective", f"classification, loss {args.get('loss')}"),
                ("starting point", start), ("trained weights", mode),
                ("recipe", (metrics.get("recipe") or {}).get("name", "-")), ("data", data["name"]),
                ("training / validation / test light curves",
                 f"{metrics.get('train_light_curves')} / {metrics.get('validation_light_curves')}"
                 f" / {metrics.get('test_light_curves')}"),
                ("steps (best)", f"{metrics.get('steps')} ({metrics.get('best_step')})"),
                ("batch size", number(args.get("batch_size"))),
                ("learning rates (encoder / head)",
                 f"{number(args.get('lr_encoder'))} / {number(args.get('lr_head'))}"),
                ("class-balanced batches", number(args.get("balanced"))),
                ("augmentations", ", ".join(args.get("augment") or []) or "none"),
                ("seed", args.get("seed")),
                ("best validation macro F1", metric(metrics.get("best_validation_macro_f1"), 3))]
        test = metrics.get("test")
        if test:
            rows.append(("held-out test split", ", ".join(
                f"{k.replace('_', ' ')} {v:.3f}" for k, v in test.items())))
    lines += ["| | |", "|---|---|", *(f"| {k} | {metric(v)} |" for k, v in rows)]
    return [*lines, "", "### Training data", "", provenance(data), ""]


def evaluation_section(evaluation: dict) -> list[str]:
    lines = ["## Evaluation", "", f"`lcfm evaluate` on {evaluation.get('n_objects')} objects "
             f"({evaluation.get('light_curves')} light curves, all observations; probabilities "
             f"averaged per object), held out: the {evaluation['excluded_training_objects']} "
             "training and validation objects in the data were excluded.", "",
             "| metric | value |", "|---|---|"]
    for key in HELD_OUT_METRICS:
        if key in evaluation:
            lines.append(f"| {key.replace('_', ' ')} | {evaluation[key]:.3f} |")
    per_class = evaluation.get("per_class") or {}
    if per_class:
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                  f"{m['support']} |" for c, m in per_class.items()]
    return [*lines, ""]


def eval_results(metrics: dict | None, evaluation: dict | None, data: dict,
                 survey: str | None) -> list:
    """`EvalResult`s of the held-out metrics: finetune's test split, `lcfm evaluate`."""
    from huggingface_hub import EvalResult

    dataset_type = data.get("repo_id") or survey or "lcfm"
    sources = []
    if metrics and isinstance(metrics.get("test"), dict) and metrics["test"]:
        sources.append((metrics["test"], f"{data['name']} (held-out test split)", "test"))
    if evaluation:
        sources.append((evaluation, f"{evaluation.get('n_objects')} held-out objects "
                                    "(lcfm evaluate)", "held-out"))
    results = []
    for values, name, split in sources:
        for key, (kind, label, config) in HELD_OUT_METRICS.items():
            if isinstance(values.get(key), int | float):
                results.append(EvalResult(
                    task_type=TASK[0], task_name=TASK[1], dataset_type=dataset_type,
                    dataset_name=name, dataset_split=split, metric_type=kind,
                    metric_name=label, metric_config=config,
                    metric_value=round(float(values[key]), 4)))
    return results


def input_section(repo_id: str, kind: str, config) -> list[str]:
    """The input a light curve must have, with a runnable example of arrays."""
    survey = _survey(getattr(config, "lcfm_survey", None))
    bands = list((survey or {}).get("bands") or getattr(config, "lcfm_bands", None) or {"g": 0})
    name = (survey or {}).get("name") or getattr(config, "lcfm_survey", None) or "SURVEY"
    kind_of_value = (survey or {}).get("value_kind", "mag")
    values = "[15.21, 15.34, 15.18, 15.29]" if kind_of_value == "mag" \
        else "[1.02, 0.97, 1.01, 0.99]"
    band_list = ", ".join(f'"{bands[i % len(bands)]}"' for i in range(4))
    steps = ", ".join((survey or {}).get("preprocessing") or []) or "none recorded"
    task = "embed" if kind == "pretrained" else "predict"
    lines = ["## Input format", "",
             "One light curve is four arrays of equal length, several bands interleaved in "
             "one time-sorted sequence: `time` (days, in the survey's native time system), "
             f"`value` ({'magnitudes' if kind_of_value == 'mag' else 'fluxes'}), `error` "
             f"(same unit) and `band` (one of {', '.join(bands)} per observation). The model "
             f"was trained on light curves after the survey's preprocessing ({steps}); "
             "`lcfm.read` applies it to survey files.", "", "```python",
             "import numpy as np", "import lcfm", "",
             f'model = lcfm.load("{repo_id}")',
             "curve = lcfm.from_arrays(time=np.array([50001.2, 50001.9, 50003.4, 50004.1]),",
             f"                        value=np.array({values}),",
             "                        error=np.array([0.03, 0.04, 0.03, 0.05]),",
             f'                        band=[{band_list}], survey="{name}", '
             'object_id="star-1")',
             f"result = lcfm.{task}(model, curve)"]
    if kind != "pretrained":
        lines += ["", "# or through transformers, with a dict of arrays",
                  "from transformers import pipeline", "",
                  f'classify = pipeline("light-curve-classification", model="{repo_id}")',
                  'classify({"time": [50001.2, 50001.9, 50003.4, 50004.1], '
                  f'"value": {values},',
                  f'          "error": [0.03, 0.04, 0.03, 0.05], "band": [{band_list}]}})']
    return [*lines, "```", ""]


def usage_section(repo_id: str, kind: str, install: str) -> list[str]:
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
    lines = ["## How to use", "", "```bash", install, "```", "",
             "lcfm's model plugins register the architecture with transformers (no "
             "`trust_remote_code`):", "", "```python", *code, "```", "",
             "lcfm's own commands take a local folder:", "", "```bash",
             f"hf download {repo_id} --local-dir model"]
    if kind == "pretrained":
        lines += ["lcfm finetune --model model --data SHARDS --output finetuned",
                  "lcfm embed --model model --data SHARDS --output embeddings.parquet"]
    else:
        lines += ["lcfm predict --model model --data SHARDS --output predictions.parquet"]
    return [*lines, "```", ""]


def model_card(folder, repo_id: str, *, evaluation: Path | None = None,
               license: str = "mit", base_model: str | None = None,
               datasets: list[str] | None = None) -> str:
    """The README.md of the repository for an `lcfm.hub.inspect_model` folder. `base_model`
    and `datasets` (Hub ids) override what the run's records tell."""
    from huggingface_hub import ModelCard, ModelCardData

    config, plugin, metrics = folder.config, folder.plugin, folder.metrics
    survey = getattr(config, "lcfm_survey", None)
    data = training_data(metrics)
    report = read_evaluation(evaluation) if evaluation is not None else None
    base_model = base_model or starting_point(metrics)[1]
    datasets = list(datasets or ([data["repo_id"]] if data["repo_id"] else []))
    tags = [*CARD_TAGS, config.model_type, *([survey] if survey else [])]
    if folder.kind != "pretrained":
        tags.append("time-series-classification")
    if data["kind"] == "simulated":
        tags.append("simulated-data")
    results = eval_results(metrics, report, data, survey) if folder.kind != "pretrained" else []
    meta = ModelCardData(
        library_name="lcfm", license=license, tags=tags, base_model=base_model,
        datasets=datasets or None,
        pipeline_tag="feature-extraction" if folder.kind == "pretrained" else "other",
        eval_results=results or None, model_name=repo_id if results else None)
    task = {"pretrained": "a self-supervised pretrained encoder",
            "classifier": "a light-curve classifier",
            "lora": "a light-curve classifier fine-tuned with LoRA adapters"}[folder.kind]
    what = f"{'simulated ' if data['kind'] == 'simulated' else ''}" \
           f"{survey + ' ' if survey else ''}light curves"
    install = install_line(plugin, survey)
    lines = ["---", meta.to_yaml(), "---", "", f"# {repo_id}", "",
             f"{task[0].upper()}{task[1:]} ({plugin.name} architecture) for {what}, trained "
             "with lcfm, the light-curve foundation-model platform.", "",
             "## Model", "", f"- Architecture: {plugin.description}",
             f"- Implements: {plugin.paper}",
             f"- transformers classes: `{type(config).__name__}` (model_type "
             f"`{config.model_type}`), `{folder.extras['class_name']}`",
             *([f"- Base model: `{base_model}`"] if base_model else []),
             f"- Parameters: {folder.parameters:,}", f"- Install: `{install}`", ""]
    if folder.kind == "lora":
        lines += ["The top level holds the classifier with its LoRA adapters merged into the "
                  "weights; `adapter/` holds the adapters (and the trained head) and `base/` "
                  "the weights they adapt.", ""]
    lines += survey_section(config, data)
    if folder.kind != "pretrained":
        lines += classes_section(config)
    lines += training_section(metrics, data)
    if report is not None:
        lines += evaluation_section(report)
    lines += input_section(repo_id, folder.kind, config)
    lines += usage_section(repo_id, folder.kind, install)
    source = ("simulated by lcfm (no survey observations)" if data["kind"] == "simulated"
              else f"come from {survey or 'the survey named above'}; their own terms of use "
                   "apply to the data")
    lines += ["## Licence", "", f"The weights are released under the `{license}` licence. "
              f"The training light curves {'were ' if data['kind'] == 'simulated' else ''}"
              f"{source}.", ""]
    text = "\n".join(lines)
    ModelCard(text, ignore_metadata_errors=False)  # huggingface_hub's own metadata checks
    return text
