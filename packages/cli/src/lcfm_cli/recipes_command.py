"""`lcfm recipes [--json]`: the training recipes of the papers and lcfm's defaults
(`lcfm.recipes`), one line each, or every field with its source as JSON."""

from __future__ import annotations

import json

import typer


def _rates(values: dict) -> str:
    if values.get("learning_rate") is not None:
        return f"lr {values['learning_rate']:g}"
    return f"lr {values['lr_encoder']:g}/{values['lr_head']:g}"


def _length(values: dict) -> str:
    steps = (f"{values['max_steps']} steps" if values.get("max_steps") is not None
             else f"{values['max_epochs']:g} epochs")
    if values.get("patience_steps") is not None:
        return f"{steps}, patience {values['patience_steps']} steps"
    if values.get("patience_epochs") is not None:
        return f"{steps}, patience {values['patience_epochs']:g} epochs"
    return steps


def _loss(loss) -> str:
    if isinstance(loss, dict):
        return "+".join(f"{w:g}*{name}" if w != 1 else name for name, w in loss.items())
    return str(loss)


def recipe_line(record: dict) -> str:
    """`NAME  STAGE  optimiser lr schedule, clipping, batch, length, loss, selection`."""
    v = record["values"]
    clip = f"clip {v['max_grad_norm']:g}" if v.get("max_grad_norm") else "no clipping"
    parts = [f"{v['optimizer']} {_rates(v)} betas {tuple(v['betas'])}",
             f"{v['schedule']} (warm-up {v['warmup_steps']})", clip,
             f"batch {v['batch_size']}", _length(v), f"loss {_loss(v['loss'])}"]
    if record["stage"] == "finetune":
        parts.append(f"selects on {v['selection']}")
    return f"{record['name']:<22} {record['stage']:<8} " + "; ".join(parts)


def recipes(as_json: bool = False) -> None:
    """Print the training recipes (`--recipe NAME` of pretrain and finetune): one line
    each, or with `as_json` every field, its value and its source (paper section, or
    "paper silent: chose ... because ...")."""
    from lcfm.recipes import describe_recipes

    records = describe_recipes()
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    for record in records:
        typer.echo(recipe_line(record))
    typer.echo("Each field's source: lcfm recipes --json. A paper configuration uses its own "
               "recipe; any option given overrides one field.")


__all__ = ["recipe_line", "recipes"]
