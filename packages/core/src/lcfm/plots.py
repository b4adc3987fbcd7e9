"""Figures written next to results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(history: list[dict], validation: list[dict], path: Path,
                    title: str = "") -> Path:
    """Training loss per step (and validation loss) as a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    if history:
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=0.8,
                label="train")
    if validation:
        ax.plot([v["step"] for v in validation], [v["loss"] for v in validation], "o-",
                label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
