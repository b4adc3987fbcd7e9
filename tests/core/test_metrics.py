import numpy as np
import pytest
import torch
from lcfm.losses import class_weights, classification_loss, soft_f1_loss
from lcfm.metrics import classification_report, reliability


def test_report_matches_hand_computed_confusion_matrix():
    # 3 classes; truth and predictions chosen so every number is easy to check by hand
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 1, 1, 2, 2, 0, 2])
    probs = np.full((10, 3), 0.1)
    probs[np.arange(10), y_pred] = 0.8
    r = classification_report(y_true, probs, ["a", "b", "c"])
    assert r["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1, 1], [0, 2, 0],
                                                                    [1, 0, 3]]
    assert r["accuracy"] == pytest.approx(0.7)
    # a: P = 2/3, R = 2/4; b: P = 2/3, R = 1; c: P = 3/4, R = 3/4
    f1 = [2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), 2 * (2 / 3) / (2 / 3 + 1), 0.75]
    assert r["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert r["macro_f1"] == pytest.approx(np.mean(f1))
    # class-balanced: weights 1/4, 1/2, 1/4 -> weighted matrix [[.5,.25,.25],[0,1,0],[.25,0,.75]]
    wm = np.array([[.5, .25, .25], [0, 1, 0], [.25, 0, .75]])
    p = np.diag(wm) / wm.sum(0)
    rec = np.diag(wm) / wm.sum(1)
    assert r["class_balanced_f1"] == pytest.approx(np.mean(2 * p * rec / (p + rec)))
    assert r["ece"] == pytest.approx(abs(0.7 - 0.8))  # every confidence is 0.8


def test_reliability_bins_sum_to_all_examples():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    y = rng.integers(4, size=200)
    rel = reliability(y, probs)
    assert sum(b["count"] for b in rel["bins"]) == 200 and 0 <= rel["ece"] <= 1


def test_class_weights_are_inverse_frequency():
    w = class_weights([10, 30, 0], normalise=False)
    assert w.tolist() == pytest.approx([4.0, 40 / 30, 0.0])


def test_losses_behave():
    logits = torch.tensor([[5.0, -5.0], [-5.0, 5.0]])
    labels = torch.tensor([0, 1])
    assert soft_f1_loss(logits, labels) < 0.01
    assert soft_f1_loss(-logits, labels) > 0.99
    assert classification_loss("focal", logits, labels) < classification_loss("ce", logits,
                                                                                labels)
    w = torch.tensor([1.0, 3.0])
    weighted = classification_loss("weighted_ce", -logits, labels, w)
    manual = torch.nn.functional.cross_entropy(-logits, labels, reduction="none")
    assert weighted == pytest.approx(float((manual * w).sum() / w.sum()))
