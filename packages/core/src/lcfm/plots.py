"""Figures written next to results (matplotlib, Agg backend: no display needed).

Every figure has a title, axis labels with their units, and N (what it counts) in the title
(issue 13, item 7): the reliability diagram prints each bin's count, the embedding map its
method and, for PCA, the variance each axis explains.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lcfm.exceptions import ConfigError

#: validation metrics drawn on the loss plot's second axis, first found wins
VALIDATION_METRICS = ("macro_f1", "class_balanced_f1", "accuracy")
EMBEDDING_METHODS = ("pca", "tsne", "umap")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(history: list[dict], validation: list[dict], path: Path,
                    title: str = "", metric: str | None = None) -> Path:
    """Training loss per step and validation loss on the left axis; a validation metric
    (`metric`, default the first of VALIDATION_METRICS the evaluations hold) on a second,
    right axis. The title says how many steps and evaluations it shows."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=120)
    lines = []
    if history:
        lines += ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=0.8,
                         label="training loss")
    val_loss = [v for v in validation if v.get("loss") is not None]
    if val_loss:
        lines += ax.plot([v["step"] for v in val_loss], [v["loss"] for v in val_loss], "o-",
                         label="validation loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (cross-entropy in nats, or reconstruction MSE)")
    losses = [h["loss"] for h in history if h["loss"] > 0]
    if losses and max(losses) > 20 * min(losses):  # early spikes would flatten the rest
        ax.set_yscale("log")
    metric = metric or next((m for m in VALIDATION_METRICS
                             if any(v.get(m) is not None for v in validation)), None)
    scored = [v for v in validation if metric and v.get(metric) is not None]
    if scored:
        right = ax.twinx()
        lines += right.plot([v["step"] for v in scored], [v[metric] for v in scored], "s--",
                            color="tab:green", label=f"validation {metric}")
        right.set_ylabel(f"validation {metric} (0-1)")
        right.set_ylim(0, 1.02)
    n = (f"N = {len(history)} logged steps, {len(validation)} evaluations"
         if validation else f"N = {len(history)} logged steps")
    ax.set_title(f"{title}\n{n}" if title else f"Training loss ({n})", fontsize=9)
    if lines:
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_confusion(matrix, classes: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (true in rows) with counts in each cell."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=float)
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size + 0.3), dpi=120)
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    n = f"N = {int(matrix.sum())} objects; cells: counts, colour: row fraction"
    ax.set_title(f"{title or 'Confusion matrix'}\n{n}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_reliability(reliability: dict, path: Path, title: str = "") -> Path:
    """Reliability diagram: accuracy against confidence per bin, each bar labelled with its
    count of objects, the mean confidence of each bin marked, and the ECE in the title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.8), dpi=120)
    bins = [b for b in reliability["bins"] if b["count"]]
    total = sum(b["count"] for b in reliability["bins"])
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    widths = [0.9 * (b["high"] - b["low"]) for b in bins]
    bars = ax.bar(centres, [b["accuracy"] for b in bins], width=widths, alpha=0.7,
                  label="accuracy in the bin")
    for bar, b in zip(bars, bins, strict=True):
        ax.annotate(f"{b['count']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    confident = [b for b in bins if b.get("confidence") is not None]
    if confident:
        ax.plot([(b["low"] + b["high"]) / 2 for b in confident],
                [b["confidence"] for b in confident], "k.", label="mean confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.set_xlabel("confidence (top-class probability, 0-1)")
    ax.set_ylabel("accuracy (fraction correct, 0-1)")
    ax.set_title(f"{title or 'Reliability'}: ECE = {reliability['ece']:.3f}\n"
                 f"N = {total} objects; bar labels: objects per bin", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def project(vectors, method: str = "pca", seed: int = 0):
    """2-D projection of `vectors` (n x d) -> (xy, axis labels). PCA labels its axes with
    the fraction of variance each explains; t-SNE (scikit-learn) and UMAP (umap-learn,
    when installed) are non-linear maps whose axes have no units."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float64)
    if method not in EMBEDDING_METHODS:
        raise ConfigError(f"embedding plot method {method!r}: expected one of "
                          f"{', '.join(EMBEDDING_METHODS)}")
    n = vectors.shape[0]
    if method == "pca" or n < 4:
        from sklearn.decomposition import PCA

        k = max(1, min(2, n, vectors.shape[1]))
        pca = PCA(n_components=k, random_state=seed).fit(vectors)
        xy = pca.transform(vectors)
        if k < 2:
            xy = np.c_[xy, np.zeros(n)]
        ratio = list(pca.explained_variance_ratio_) + [0.0] * (2 - k)
        return xy, [f"PC {i + 1} ({100 * r:.1f}% of variance)" for i, r in enumerate(ratio)]
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (n - 1) // 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed,
                  init="pca").fit_transform(vectors)
        return xy, ["t-SNE 1 (no units)", "t-SNE 2 (no units)"]
    if importlib.util.find_spec("umap") is None:
        raise ConfigError("embedding plot method 'umap' needs umap-learn (pip install "
                          "umap-learn); pca and tsne need nothing more")
    umap = importlib.import_module("umap")
    xy = umap.UMAP(n_components=2, random_state=seed,
                   n_neighbors=min(15, n - 1)).fit_transform(vectors)
    return xy, ["UMAP 1 (no units)", "UMAP 2 (no units)"]


def plot_embedding(vectors, labels, path: Path, method: str = "pca", title: str = "",
                   seed: int = 0) -> Path:
    """2-D projection of embeddings (`project`: pca, tsne or umap), coloured by label;
    the title gives N objects, the embedding size and the method."""
    import numpy as np

    plt = _pyplot()
    vectors = np.asarray(vectors)
    xy, axes = project(vectors, method, seed)
    names = sorted({str(x) for x in labels})
    fig, ax = plt.subplots(figsize=(7 if len(names) > 1 else 5, 4.8), dpi=120)
    colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    markers = "os^Dv"  # distinct colour-marker pairs beyond 20 classes
    for i, name in enumerate(names):
        sel = np.array([str(x) == name for x in labels])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=10, label=f"{name} ({int(sel.sum())})",
                   color=colours(i % 20), marker=markers[(i // 20) % len(markers)])
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    shown = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method]
    ax.set_title(f"{title or 'Embeddings'} ({shown})\nN = {len(vectors)} objects, "
                 f"{vectors.shape[1] if vectors.ndim == 2 else 0}-dimensional", fontsize=9)
    if len(names) > 1:
        ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  ncol=1 if len(names) <= 20 else 2, title="label (objects)",
                  title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
