"""`lcfm push`: publish a trained model, or a dataset folder, with its card on the Hugging
Face Hub. The options are `lcfm.hub.PushArgs`; `push` is the command function generated
from them (the CLI module registers it), `run` and `report` the plain functions behind it."""

from __future__ import annotations

import typer
from lcfm.hub import PushArgs

from lcfm_cli.generate import dataclass_command

DOC = """Upload config.json, safetensors weights (LoRA adapters with base/ when present) and a
model card (base_model, model-index of the held-out metrics), or with --dataset a dataset
folder's shards and reports with a dataset card whose configs: name the shards; HF_ENDPOINT
selects the Hub. Then `import lcfm; AutoModel.from_pretrained("ORG/NAME")`, or
`datasets.load_dataset("ORG/NAME")`, loads it."""


def run(args: PushArgs) -> dict:
    """Push (`lcfm.hub.run_push`), or with --dry-run return the card and the files it would
    upload: {"dry_run": True, "card", "files"}."""
    from lcfm.hub import dataset_files, inspect_model, model_card, push_target, run_push

    if not args.dry_run:
        return run_push(args)
    if push_target(args) == "dataset":
        from lcfm.dataset_card import dataset_card

        card = dataset_card(args.dataset, repo_id=args.repo_id, license=args.license)
        return {"dry_run": True, "card": card,
                "files": [*dataset_files(args.dataset), "README.md"]}
    folder = inspect_model(args.model)
    card = model_card(folder, args.repo_id, evaluation=args.evaluation,
                      license=args.license or "mit", base_model=args.base_model,
                      datasets=args.datasets)
    return {"dry_run": True, "card": card,
            "files": [*(name if source else f"{name} (merged at push time)"
                        for name, source in folder.files.items()), "README.md"]}


def report(result: dict, args: PushArgs) -> None:
    if result.get("dry_run"):
        typer.echo(result["card"])
        typer.echo("files: " + ", ".join(result["files"]))
        return
    typer.echo(f"pushed {len(result['files'])} files to {result['url']} "
               f"(revision {result['revision']}, commit {result['commit'][:10]})")


def push_command():
    return dataclass_command(PushArgs, run, report, name="push", doc=DOC)


push = push_command()
