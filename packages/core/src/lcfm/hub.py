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

The card itself is built in `lcfm.hub_card` (base_model, datasets, model-index of the held-out
metrics). A dataset folder of `lcfm ingest` / `lcfm simulate` is published as a dataset
repository (`push_dataset`, `lcfm push --dataset`): its shards, reports and a dataset card
whose `configs:` name the shards (`lcfm.dataset_card`), so `load_dataset("ORG/NAME")` loads it.

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
from lcfm.options import option

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: remote files a push replaces: stale weights of an earlier push (e.g. a LoRA adapter left
#: over when a full model is pushed to the same repo) would change what from_pretrained loads
#: what travels with the weights: the processor (`lcfm.processing`) and the fitted metadata
#: encoder (`lcfm.engine.metadata`), so that pipelines and `lcfm.load` work from the Hub
SIDE_FILES = ("preprocessor_config.json", "metadata_encoder.json")
MANAGED_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.bin", "config.json",
                    ADAPTER_CONFIG, "adapter/*", "base/*", "merged/*", *SIDE_FILES]


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


def _side_files(places: dict[str, tuple[Path, ...]]) -> dict[str, Path]:
    """SIDE_FILES under each repository prefix, from the first folder that holds them."""
    found = {}
    for prefix, folders in places.items():
        for name in SIDE_FILES:
            source = next((f / name for f in folders if (f / name).is_file()), None)
            if source is not None:
                found[prefix + name] = source
    return found


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
        files |= _side_files({"": (merged, path), "base/": (path / "base", path)})
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
        files |= _side_files({"": (path,)})
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

def model_card(model: ModelFolder | Path, repo_id: str, *, evaluation: Path | None = None,
               license: str = "mit", base_model: str | None = None,
               datasets: list[str] | None = None) -> str:
    """The README.md of the repository (`lcfm.hub_card.model_card`) for a model folder."""
    from lcfm.hub_card import model_card as build

    folder = model if isinstance(model, ModelFolder) else inspect_model(model)
    return build(folder, repo_id, evaluation=evaluation, license=license,
                 base_model=base_model, datasets=datasets)


# ---- the upload ------------------------------------------------------------------------------

@dataclass
class PushArgs:
    """Options of `lcfm push` (one declaration, `lcfm.options`)."""

    repo_id: str = option(help="Hub repository, ORG/NAME.")
    model: Path | None = option(None, "Model folder written by `lcfm pretrain` or "
                                      "`lcfm finetune` (or give --dataset).")
    dataset: Path | None = option(None, "Dataset folder written by `lcfm ingest` or "
                                        "`lcfm simulate`: pushed as a dataset repository "
                                        "with a dataset card.")
    private: bool = option(False, "Create the repository as private.")
    token: str | None = option(None, "Hub access token (default: HF_TOKEN or the saved "
                                     "`hf auth login`).")
    revision: str | None = option(None, "Branch to push to (created from main when missing; "
                                        "default main).")
    evaluation: Path | None = option(None, "`lcfm evaluate` output folder whose held-out "
                                           "metrics go into the model card and model-index.")
    license: str | None = option(None, "Licence (Hub licence id) of the weights (default mit) "
                                       "or of the dataset (default: that of the source data "
                                       "when known, else unknown).")
    base_model: str | None = option(None, "Hub id of the pretrained model the weights started "
                                          "from (default: from metrics.json when it names a "
                                          "Hub model).")
    datasets: list[str] | None = option(None, "Hub ids of the training datasets (default: "
                                              "from metrics.json when the data came from the "
                                              "Hub).")
    commit_message: str | None = option(None, "Commit message.")
    dry_run: bool = option(False, "Print the card and the files to upload; upload nothing.")
    endpoint: str | None = option(None, "Hub URL (default: HF_ENDPOINT).", cli=False)


def _stage(folder: ModelFolder, card: str, into: Path) -> None:
    """Hard-link (or copy) exactly the files to publish, plus the card, into a staging folder,
    so that upload_folder commits them in one commit and nothing else."""
    _link({rel: source for rel, source in folder.files.items() if source is not None}, into)
    if any(source is None for source in folder.files.values()):
        from lcfm.engine.save import load_classifier
        from lcfm.processing import save_processor

        _, adapted = load_classifier(folder.path)
        merged = adapted.merge_and_unload()
        merged.save_pretrained(into)
        if "preprocessor_config.json" not in folder.files:  # the merged model's processor
            save_processor(merged, into)
    (into / "README.md").write_text(card, encoding="utf-8")


def _link(files: dict[str, Path], into: Path) -> None:
    for rel, source in files.items():
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _check_repo_id(repo_id: str) -> None:
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"--repo-id {repo_id!r}: expected ORG/NAME")


def _upload(repo_id: str, repo_type: str, stage, *, private: bool, token: str | None,
            revision: str | None, commit_message: str, endpoint: str | None,
            delete_patterns: list[str]) -> dict:
    """Create (or reuse) the repository and commit what `stage(folder)` puts in a staging
    folder, in one commit. Returns {"url", "commit", "revision", "files"}."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.is_offline_mode():
        raise HubError("HF_HUB_OFFLINE is set: pushing needs the Hub (unset it, or point "
                       "HF_ENDPOINT at a reachable Hub)")
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    api = HfApi(endpoint=endpoint.rstrip("/"), token=token)
    branch = revision or constants.DEFAULT_REVISION
    with tempfile.TemporaryDirectory(prefix="lcfm-push-") as tmp:
        stage(Path(tmp))
        staged = sorted(p.relative_to(tmp).as_posix() for p in Path(tmp).rglob("*")
                        if p.is_file())
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
            if branch != constants.DEFAULT_REVISION:
                api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type=repo_type)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=branch,
                                     repo_type=repo_type, delete_patterns=delete_patterns,
                                     commit_message=commit_message)
        except HfHubHTTPError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise HubError(f"{repo_id} on {endpoint}: {first_line}") from None
        except Exception as exc:  # transport errors of the HTTP client (connection refused)
            if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore",
                                                          "httpcore2"):
                raise
            raise HubError(f"{repo_id}: cannot reach {endpoint} "
                           f"({type(exc).__name__}: {exc})") from None
    return {"url": str(url), "commit": info.oid, "revision": branch, "files": staged}


def push(model_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None,
         revision: str | None = None, evaluation: Path | None = None, license: str = "mit",
         commit_message: str | None = None, endpoint: str | None = None,
         base_model: str | None = None, datasets: list[str] | None = None) -> dict:
    """Create (or reuse) the model repository and upload the model and its card in one
    commit. Returns {"url", "commit", "revision", "files"}."""
    _check_repo_id(repo_id)
    folder = inspect_model(model_dir)
    card = model_card(folder, repo_id, evaluation=evaluation, license=license,
                      base_model=base_model, datasets=datasets)
    return _upload(repo_id, "model", lambda into: _stage(folder, card, into), private=private,
                   token=token, revision=revision, endpoint=endpoint,
                   delete_patterns=MANAGED_PATTERNS,
                   commit_message=commit_message or f"Upload {folder.plugin.name} "
                                                    f"{folder.kind} model with lcfm")


def dataset_files(folder: Path) -> dict[str, Path]:
    """What a dataset push uploads: the shards and the top-level files beside them
    (report.json, simulation.json, a survey's fitted transforms), never hidden files or
    subfolders (a run's scratch space); the card is written at push time."""
    from lcfm.dataset_card import CARD
    from lcfm.dataset_lock import SHARD_GLOB, refuse_if_being_written

    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "no such dataset folder")
    refuse_if_being_written(folder)
    if not list(folder.glob(SHARD_GLOB)):
        raise DataError(f"{folder}: holds no Parquet shards ({SHARD_GLOB}); not a dataset "
                        "folder of `lcfm ingest` or `lcfm simulate`")
    return {p.name: p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.name != CARD}


def push_dataset(data_dir: Path, repo_id: str, *, private: bool = False,
                 token: str | None = None, revision: str | None = None,
                 license: str | None = None, commit_message: str | None = None,
                 endpoint: str | None = None) -> dict:
    """Upload a dataset folder as a dataset repository with its card (`configs:` naming the
    shards, provenance, counts per class), so that `load_dataset(repo_id)` loads it.
    Returns {"url", "commit", "revision", "files"}."""
    from lcfm.dataset_card import dataset_card

    _check_repo_id(repo_id)
    files = dataset_files(data_dir)
    card = dataset_card(data_dir, repo_id=repo_id, license=license)

    def stage(into: Path) -> None:
        _link(files, into)
        (into / "README.md").write_text(card, encoding="utf-8")

    return _upload(repo_id, "dataset", stage, private=private, token=token, revision=revision,
                   endpoint=endpoint, delete_patterns=["*.parquet"],
                   commit_message=commit_message or f"Upload {Path(data_dir).name} light "
                                                    "curves with lcfm")


def push_target(args: PushArgs) -> str:
    """"model" or "dataset": what `lcfm push` publishes (exactly one must be given)."""
    if (args.model is None) == (args.dataset is None):
        raise ConfigError("lcfm push: give exactly one of --model and --dataset")
    return "model" if args.model is not None else "dataset"


def run_push(args: PushArgs) -> dict:
    """`lcfm push` from its options: a model (--model) or a dataset (--dataset)."""
    push_target(args)
    common = {"private": args.private, "token": args.token, "revision": args.revision,
              "commit_message": args.commit_message, "endpoint": args.endpoint}
    if args.dataset is not None:
        return push_dataset(args.dataset, args.repo_id, license=args.license, **common)
    return push(args.model, args.repo_id, evaluation=args.evaluation,
                license=args.license or "mit", base_model=args.base_model,
                datasets=args.datasets, **common)
