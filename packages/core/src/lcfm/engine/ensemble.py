"""Ensembles of fine-tuned classifiers (ATCAT sect. 2.7 iv and 3.2; ASTRAFier uses none).

`train_ensemble` fine-tunes `members` classifiers on one split of the data (the same
validation and test objects for all) into OUTPUT/member-k, each on its own resample of the
training objects, and writes OUTPUT/ensemble.json. Sampling, per class so that every member
sees every class:

* "bootstrap": as many objects as the class has, drawn with replacement (an object drawn
  twice is trained on twice);
* "subfolds": the class's objects dealt into `subfolds` groups; member k leaves out group
  k mod subfolds (ATCAT sect. 3.2: "splitting our dataset into 5 subfolds ... and training
  10 models, each with one sub-fold omitted");
* "halves": the class's objects dealt into 6 partitions; member k (at most 4) takes 3 of
  them, any two members sharing exactly one (ATCAT sect. 2.7 iv: "4 bootstrap sub-models,
  each of which gets 1/2 of the data ... divides the training into 6 partitions and
  assigns 3 of these to each model"), so each object is seen by two members;
* "seeds": every member on all training objects, with its own seed.

Member k trains with seed `args.seed + k`. The ensemble folder also holds the split record
(`splits.parquet`, so that `lcfm evaluate` scores held-out objects only), the members'
metadata encoder, and `metrics.json` with the ensemble's and each member's test scores.

`load_classifier` (lcfm.engine.save) of such a folder returns one `EnsembleClassifier`: its
`logits` are log of the mean of the members' softmax probabilities, so predict and evaluate
work unchanged; a model with an "unsure" output (ATCAT sect. 2.2.5) gets `unsure_logits`
such that softmax(cat(logits, unsure_logits))[-1] is the members' mean P(unsure).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import torch
from transformers.utils import ModelOutput

from lcfm.engine.finetune import FinetuneArgs
from lcfm.exceptions import ConfigError, DataError, ModelFolderError
from lcfm.options import option

ENSEMBLE_FILE = "ensemble.json"
FORMAT = "lcfm-ensemble"
SAMPLINGS = ("bootstrap", "subfolds", "halves", "seeds")
#: sect. 2.7 (iv): 3 of 6 partitions per member, every two members overlapping in one
HALVES = ((0, 1, 2), (0, 3, 4), (1, 3, 5), (2, 4, 5))
#: files of member-0 that describe the inputs of every member (metadata encoder, processor)
_SHARED_FILES = ("metadata_encoder.json", "preprocessor_config.json")


@dataclasses.dataclass
class EnsembleOutput(ModelOutput):
    """logits (batch, C) = log mean_k softmax(logits_k); unsure_logits (batch,) or None;
    step_logits (batch, time, C) and step_unsure_logits (batch, time) likewise, when the
    members return them (early classification)."""

    logits: torch.Tensor | None = None
    unsure_logits: torch.Tensor | None = None
    step_logits: torch.Tensor | None = None
    step_unsure_logits: torch.Tensor | None = None


def _mean_probabilities(logits: list[torch.Tensor], unsure: list[torch.Tensor | None]
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log mean softmax, logit of the mean P(unsure) or None) over members."""
    probs = torch.stack([x.float().softmax(-1) for x in logits]).mean(0)
    mean_logits = probs.clamp(min=torch.finfo(torch.float32).tiny).log()
    if any(u is None for u in unsure):
        return mean_logits, None
    # P(unsure) of one member: softmax(cat(l, u))[-1] = sigmoid(u - logsumexp(l))
    p = torch.stack([torch.sigmoid(u.float() - x.float().logsumexp(-1))
                     for x, u in zip(logits, unsure, strict=True)]).mean(0)
    # with logsumexp(mean_logits) = 0 the same formula gives back p
    return mean_logits, torch.logit(p.clamp(1e-7, 1 - 1e-7))


class EnsembleClassifier(torch.nn.Module):
    """Members with identical classes averaged in probability (module docstring).
    `config` is the first member's (classes, bands, survey, window)."""

    def __init__(self, members: list[torch.nn.Module]):
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.members = torch.nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, *args, return_step_logits: bool = False, **kwargs) -> EnsembleOutput:
        kwargs.pop("labels", None)
        if return_step_logits:
            kwargs["return_step_logits"] = True
        outputs = [member(*args, **kwargs) for member in self.members]
        logits, unsure = _mean_probabilities(
            [o.logits for o in outputs], [getattr(o, "unsure_logits", None) for o in outputs])
        step = step_unsure = None
        if getattr(outputs[0], "step_logits", None) is not None:
            step, step_unsure = _mean_probabilities(
                [o.step_logits for o in outputs],
                [getattr(o, "step_unsure_logits", None) for o in outputs])
        return EnsembleOutput(logits=logits, unsure_logits=unsure, step_logits=step,
                              step_unsure_logits=step_unsure)


# ---------------------------------------------------------------- the folder
def is_ensemble(path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def read_manifest(path) -> dict:
    """The parsed ensemble.json of an ensemble folder, its member folders checked to
    exist; one-line ModelFolderError otherwise."""
    path = Path(path)
    file = path / ENSEMBLE_FILE
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(file, f"not valid JSON ({exc})") from None
    members = manifest.get("members") if isinstance(manifest, dict) else None
    if manifest.get("format") != FORMAT or not isinstance(members, list) or not members:
        raise ModelFolderError(file, f"not an lcfm ensemble manifest (needs format {FORMAT!r} "
                                     "and a non-empty list of members)")
    for member in members:
        if not isinstance(member, str) or not (path / member).is_dir():
            raise ModelFolderError(file, f"member {member!r} is not a folder inside {path}")
    return manifest


def load_ensemble(path) -> tuple[object, EnsembleClassifier]:
    """(plugin, EnsembleClassifier in eval mode) of an ensemble folder; the members must
    share model type, classes and bands."""
    from lcfm.engine.save import load_classifier

    path = Path(path)
    names = read_manifest(path)["members"]
    loaded = [load_classifier(path / m) for m in names]
    plugin, first = loaded[0]
    for (_, model), name in zip(loaded[1:], names[1:], strict=True):
        for field in ("model_type", "id2label", "lcfm_bands", "lcfm_survey"):
            mine, theirs = (getattr(first.config, field, None),
                            getattr(model.config, field, None))
            if mine != theirs:
                raise ModelFolderError(path / name, f"{field} {theirs!r} differs from the "
                                                    f"first member's {mine!r}")
    return plugin, EnsembleClassifier([model for _, model in loaded]).eval()


# ---------------------------------------------------------------- training
def member_train_ids(train: pl.DataFrame, member: int, sampling: str, *, subfolds: int = 0,
                     seed: int = 0) -> list[str]:
    """The training objects of `member` (module docstring), per class; repeated ids are
    trained on as often as they are listed."""
    if sampling not in SAMPLINGS:
        raise ConfigError(f"ensemble sampling {sampling!r}; expected one of "
                          f"{', '.join(SAMPLINGS)}")
    if sampling == "halves" and member >= len(HALVES):
        raise ConfigError(f"ensemble sampling 'halves' has {len(HALVES)} members (ATCAT "
                          f"sect. 2.7 iv), not {member + 1}")
    if sampling == "subfolds" and subfolds < 2:
        raise ConfigError(f"ensemble sampling 'subfolds' needs subfolds >= 2, got {subfolds}")
    objects = (train.filter(pl.col("label").is_not_null())
               .group_by("object_id").agg(pl.col("label").first()).sort("object_id"))
    chosen: list[str] = []
    for label in sorted(objects["label"].unique().to_list()):
        ids = objects.filter(pl.col("label") == label)["object_id"].cast(pl.String).to_numpy()
        shared = sampling in ("subfolds", "halves")  # one shuffle per class for all members
        rng = np.random.default_rng([seed, zlib.crc32(label.encode())] if shared
                                    else [seed, member, zlib.crc32(label.encode())])
        if sampling == "bootstrap":
            chosen += rng.choice(ids, size=ids.size, replace=True).tolist()
        elif shared:
            shuffled = rng.permutation(ids)
            if sampling == "subfolds":
                kept = shuffled[np.arange(ids.size) % subfolds != member % subfolds]
            else:
                kept = shuffled[np.isin(np.arange(ids.size) % 6, HALVES[member])]
            chosen += (kept if kept.size else shuffled).tolist()  # never drop a class
        else:
            chosen += ids.tolist()
    return chosen


def base_parts(args, summaries: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The split every member shares, as `lcfm finetune` makes it: the split file
    (`args.splits`, `args.fold`) when given, else objects stratified by class with
    `test_fraction` and `validation_fraction` of `args.seed`."""
    from lcfm.splits import read_split_file, split_by_file, stratified_object_split

    if getattr(args, "splits", None):
        parts, _ = split_by_file(summaries, read_split_file(args.splits),
                                 getattr(args, "fold", None))
    else:
        test = args.test_fraction
        val = args.validation_fraction * (1 - test)
        parts = stratified_object_split(summaries, {"train": 1 - test - val,
                                                    "validation": val, "test": test},
                                        args.seed)
    if parts["train"].height == 0:
        raise DataError(f"{args.data}: no labeled light curves left for training")
    return parts


def _member_done(folder: Path) -> bool:
    return (folder / "metrics.json").is_file() and (
        (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file())


def train_ensemble(args, members: int, bootstrap: bool = True, *, subfolds: int = 0,
                   sampling: str | None = None) -> dict:
    """Fine-tune an ensemble into `args.output` (module docstring); returns the summary
    written to `args.output/metrics.json`. `bootstrap`: resample the training objects with
    replacement per member (else every member trains on all of them, or, with
    `subfolds` > 0, leaves out one subfold); `sampling` (one of SAMPLINGS) overrides both.
    With `args.resume`, members already finished are kept. `args` is a
    `lcfm.engine.finetune.FinetuneArgs` (few-shot fields unused)."""
    from lcfm.engine.finetune import finetune_parts
    from lcfm.engine.inference import folder_output, write_splits
    from lcfm.splits import take_objects
    from lcfm.stream import ShardIndex

    if members < 1:
        raise ConfigError(f"--members {members}: an ensemble needs at least one member")
    if subfolds < 0 or subfolds == 1:
        raise ConfigError(f"--subfolds {subfolds}: 0 (none) or at least 2")
    if sampling is not None and sampling not in SAMPLINGS:
        raise ConfigError(f"--sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}")
    if getattr(args, "samples_per_class", 0) > 0 or getattr(args, "folds", 1) > 1:
        raise ConfigError("ensembles train on the whole training split; use lcfm fewshot "
                          "for samples per class and folds")
    sampling = sampling or ("subfolds" if subfolds else "bootstrap" if bootstrap else "seeds")
    if sampling == "halves" and members > len(HALVES):
        raise ConfigError(f"--members {members}: sampling 'halves' has {len(HALVES)} members "
                          "(ATCAT sect. 2.7 iv)")
    output = folder_output(Path(args.output))
    output.mkdir(parents=True, exist_ok=True)
    index = ShardIndex(args.data)
    parts = base_parts(args, index.summaries())
    names, results, counts = [], [], []
    for k in range(members):
        name = f"member-{k}"
        ids = member_train_ids(parts["train"], k, sampling, subfolds=subfolds, seed=args.seed)
        train = take_objects(parts["train"], ids)
        member_args = dataclasses.replace(args, output=output / name, seed=args.seed + k)
        if getattr(args, "resume", False) and _member_done(output / name):
            results.append(json.loads((output / name / "metrics.json").read_text()))
        else:
            results.append(finetune_parts(member_args, {**parts, "train": train},
                                          output / name, index=index))
        names.append(name)
        counts.append({"light_curves": train.height, "objects": len(set(ids)),
                       "draws": len(ids)})
    for file in _SHARED_FILES:
        if (output / names[0] / file).is_file():
            shutil.copy2(output / names[0] / file, output / file)
    write_splits(output, parts)
    manifest = {"format": FORMAT, "version": 1, "members": names, "sampling": sampling,
                "subfolds": subfolds, "seeds": [args.seed + k for k in range(members)],
                "combine": "mean of the members' softmax probabilities",
                "paper": "ATCAT sect. 2.7 (iv), 3.2"}
    (output / ENSEMBLE_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    summary = {**manifest, "member_training": counts,
               "member_test_macro_f1": [(r.get("test") or {}).get("macro_f1")
                                        for r in results],
               "test": _ensemble_test(output, index, parts)}
    (output / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


@dataclasses.dataclass
class EnsembleArgs(FinetuneArgs):
    """The options of `lcfm finetune` plus the ensemble's, for the generated CLI."""

    members: int = option(4, "Classifiers in the ensemble (ATCAT sect. 2.7 iv: 4; sect. 3.2: "
                             "10 with 5 subfolds).")
    sampling: str = option("bootstrap", "Training objects of each member: bootstrap (drawn "
                                        "with replacement), subfolds (one left out), halves "
                                        "(3 of 6 partitions, at most 4 members) or seeds "
                                        "(all objects).", choices=SAMPLINGS)
    subfolds: int = option(5, "Subfolds of the 'subfolds' sampling (ATCAT sect. 3.2: 5).")


def run_ensemble(args) -> dict:
    """`train_ensemble` from an `EnsembleArgs`."""
    names = {f.name for f in dataclasses.fields(FinetuneArgs)}
    finetune_args = FinetuneArgs(**{k: v for k, v in dataclasses.asdict(args).items()
                                    if k in names})
    return train_ensemble(finetune_args, args.members, sampling=args.sampling,
                          subfolds=args.subfolds if args.sampling == "subfolds" else 0)


def _ensemble_test(output: Path, index, parts) -> dict | None:
    """Accuracy, macro F1, class-balanced F1 and ECE of the ensemble on the test objects."""
    from lcfm.engine.inference import inference_collator
    from lcfm.engine.metadata import load_encoder, with_metadata
    from lcfm.engine.predict import predict_frame
    from lcfm.metrics import classification_report
    from lcfm.stream import read_frame

    plugin, model = load_ensemble(output)
    config = model.config
    classes = [config.id2label[i] for i in range(len(config.id2label))]
    test = parts["test"].filter(pl.col("label").is_in(classes))
    if test.height == 0:
        return None
    frame = with_metadata(read_frame(index, test["row"].to_numpy()), load_encoder(output),
                          config)
    collate = inference_collator(plugin, config, getattr(config, "lcfm_bands", None))
    probs = predict_frame(model, plugin, frame, collate, len(classes)).probs
    label2id = {c: i for i, c in enumerate(classes)}
    report = classification_report(np.array([label2id[x] for x in frame["label"]]), probs,
                                   classes)
    return {k: report[k] for k in ("accuracy", "macro_f1", "class_balanced_f1", "ece")}


__all__ = ["ENSEMBLE_FILE", "HALVES", "SAMPLINGS", "EnsembleClassifier", "EnsembleOutput",
           "base_parts", "is_ensemble", "load_ensemble", "member_train_ids", "read_manifest",
           "run_ensemble", "train_ensemble", "EnsembleArgs"]
