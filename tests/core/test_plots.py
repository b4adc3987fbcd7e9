"""Figures carry a title, axis units and N (issue 13, item 7): loss with the validation
metric on a second axis, reliability with per-bin counts, embeddings with explained
variance (PCA) or t-SNE."""

from __future__ import annotations

import numpy as np
import pytest
from lcfm.exceptions import ConfigError
from lcfm.metrics import reliability
from lcfm.plots import (
    plot_confusion,
    plot_embedding,
    plot_loss_curve,
    plot_reliability,
    project,
)


@pytest.fixture
def figures(monkeypatch):
    """Figures the plot functions close, kept open for inspection."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    monkeypatch.undo()
    plt.close("all")


def _texts(fig) -> str:
    parts = []
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
    return "\n".join(parts)


def test_loss_plot_has_the_validation_metric_on_a_second_axis(tmp_path, figures):
    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 21)]
    validation = [{"step": 10, "loss": 0.2, "macro_f1": 0.5},
                  {"step": 20, "loss": 0.1, "macro_f1": 0.75}]
    path = plot_loss_curve(history, validation, tmp_path / "loss.png", title="run")
    assert path.read_bytes()[:4] == b"\x89PNG"
    fig = figures[-1]
    assert len(fig.axes) == 2  # loss on the left, the metric on the right
    right = fig.axes[1]
    assert right.get_ylabel() == "validation macro_f1 (0-1)"
    assert list(right.lines[0].get_ydata()) == [0.5, 0.75]
    text = _texts(fig)
    assert "N = 20 logged steps, 2 evaluations" in text and "optimiser step" in text
    # pretraining validation has only a loss: one axis
    plot_loss_curve(history, [{"step": 10, "loss": 0.2}], tmp_path / "p.png")
    assert len(figures[-1].axes) == 1


def test_reliability_bars_carry_their_counts(tmp_path, figures):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 3, size=50)
    report = reliability(y, probs)
    plot_reliability(report, tmp_path / "r.png")
    fig = figures[-1]
    ax = fig.axes[0]
    counts = [int(t.get_text()) for t in ax.texts]
    assert counts == [b["count"] for b in report["bins"] if b["count"]]
    assert sum(counts) == 50
    assert "N = 50 objects" in ax.get_title() and f"ECE = {report['ece']:.3f}" in \
        ax.get_title()
    assert "0-1" in ax.get_xlabel() and "0-1" in ax.get_ylabel()


def test_confusion_title_counts_objects(tmp_path, figures):
    plot_confusion([[3, 1], [0, 4]], ["a", "b"], tmp_path / "c.png")
    assert "N = 8 objects" in figures[-1].axes[0].get_title()


def test_pca_axes_give_the_explained_variance(tmp_path, figures):
    rng = np.random.default_rng(1)
    # variance 9 : 1 : ~0 along three axes
    vectors = rng.normal(size=(200, 3)) * np.array([3.0, 1.0, 0.01])
    xy, axes = project(vectors, "pca")
    assert xy.shape == (200, 2)
    first = float(axes[0].split("(")[1].split("%")[0])
    assert first == pytest.approx(90, abs=3)
    plot_embedding(vectors, ["x"] * 100 + ["y"] * 100, tmp_path / "e.png")
    ax = figures[-1].axes[0]
    assert ax.get_xlabel() == axes[0] and "N = 200 objects, 3-dimensional" in ax.get_title()
    assert "(PCA)" in ax.get_title()


def test_tsne_and_unknown_methods(tmp_path, figures):
    rng = np.random.default_rng(2)
    vectors = np.r_[rng.normal(0, 0.1, (15, 4)), rng.normal(5, 0.1, (15, 4))]
    plot_embedding(vectors, ["a"] * 15 + ["b"] * 15, tmp_path / "t.png", method="tsne")
    ax = figures[-1].axes[0]
    assert "t-SNE" in ax.get_title() and ax.get_xlabel() == "t-SNE 1 (no units)"
    with pytest.raises(ConfigError, match="'isomap'"):
        project(vectors, "isomap")
