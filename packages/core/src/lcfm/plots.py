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
    losses = [h["loss"] for h in history if h["loss"] > 0]
    if losses and max(losses) > 20 * min(losses):  # early spikes would flatten the rest
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_confusion(matrix, classes: list[str], path: Path) -> Path:
    """Row-normalised confusion matrix (true in rows) with counts in each cell."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=float)
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=120)
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_reliability(reliability: dict, path: Path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, with the ECE."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    bins = [b for b in reliability["bins"] if b["count"]]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(centres, [b["accuracy"] for b in bins], width=0.09, alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE = {reliability['ece']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_embedding(vectors, labels, path: Path) -> Path:
    """2-D PCA projection of embeddings, coloured by label."""
    import numpy as np

    plt = _pyplot()
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, 0 * centred[:, 0]]
    names = sorted({str(x) for x in labels})
    fig, ax = plt.subplots(figsize=(7 if len(names) > 1 else 5, 4.5), dpi=120)
    colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    markers = "os^Dv"  # distinct colour-marker pairs beyond 20 classes
    for i, name in enumerate(names):
        sel = np.array([str(x) == name for x in labels])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=10, label=name, color=colours(i % 20),
                   marker=markers[(i // 20) % len(markers)])
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if len(names) > 1:
        ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  ncol=1 if len(names) <= 20 else 2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
