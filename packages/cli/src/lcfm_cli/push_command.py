"""`lcfm push`: publish a trained model and its model card to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lcfm_cli.main import app


@app.command()
def push(
    model: Annotated[Path, typer.Option(
        help="Model folder written by `lcfm pretrain` or `lcfm finetune`.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub repository, ORG/NAME.")],
    private: Annotated[bool, typer.Option(help="Create the repository as private.")] = False,
    token: Annotated[str | None, typer.Option(
        help="Hub access token (default: HF_TOKEN or the saved `hf auth login`).")] = None,
    revision: Annotated[str | None, typer.Option(
        help="Branch to push to (created from main when missing; default main).")] = None,
    evaluation: Annotated[Path | None, typer.Option(
        help="`lcfm evaluate` output folder whose metrics go into the model card.")] = None,
    license: Annotated[str, typer.Option(help="Licence of the weights (Hub licence id).")]
    = "mit",
    commit_message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
    dry_run: Annotated[bool, typer.Option(
        help="Print the model card and the files to upload; upload nothing.")] = False,
) -> None:
    """Upload config.json, safetensors weights (LoRA adapters with base/ when present) and a
    model card; HF_ENDPOINT selects the Hub. Then `import lcfm;
    AutoModel.from_pretrained("ORG/NAME")` loads it."""
    from lcfm.hub import inspect_model, model_card
    from lcfm.hub import push as run

    if dry_run:
        folder = inspect_model(model)
        typer.echo(model_card(folder, repo_id, evaluation=evaluation, license=license))
        typer.echo("files: " + ", ".join(
            [*(name if source else f"{name} (merged at push time)"
               for name, source in folder.files.items()), "README.md"]))
        return
    result = run(model, repo_id, private=private, token=token, revision=revision,
                 evaluation=evaluation, license=license, commit_message=commit_message)
    typer.echo(f"pushed {len(result['files'])} files to {result['url']} "
               f"(revision {result['revision']}, commit {result['commit'][:10]})")
