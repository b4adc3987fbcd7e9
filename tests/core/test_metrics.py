import numpy as np
import pytest
import torch
from lcfm.losses import class_weights, classification_loss, soft_f1_loss
from lcfm.metrics import classification_report, reconstruction_metrics, reliability


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


def test_reconstruction_rmse_and_r2_on_probed_points_only():
    # window 1: 2 probed points, window 2: 1 probed point; padding and unprobed points carry
    # wild values that would change every score if they were counted
    predictions = np.array([[1.0, 2.0, 50.0, 0.0], [0.0, 9.0, -40.0, 7.0]])
    targets = np.array([[0.0, 4.0, -50.0, 0.0], [1.0, 9.0, 40.0, 3.0]])
    probe = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], bool)
    m = reconstruction_metrics(predictions, targets, probe)
    # residuals: window 1 -> 1, -2 (squares 1, 4); window 2 -> 4 (square 16)
    assert m["n_points"] == 3 and m["n_windows"] == 2
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 4 + 16) / 3))
    assert m["rmse_window_mean"] == pytest.approx(np.sqrt(((1 + 4) / 2 + 16) / 2))
    # SS_tot about each window's probed mean: window 1 mean 2 -> 4 + 4; window 2 -> 0
    assert m["r2"] == pytest.approx(1 - 21 / 8)


def test_reconstruction_perfect_and_mean_predictions():
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(5, 30))
    probe = rng.random((5, 30)) < 0.5
    perfect = reconstruction_metrics(targets, targets, probe)
    assert perfect["rmse"] == 0.0 and perfect["r2"] == 1.0
    # predicting each window's probed mean scores R2 = 0 exactly
    means = np.array([targets[i][probe[i]].mean() for i in range(5)])
    baseline = reconstruction_metrics(np.repeat(means[:, None], 30, axis=1), targets, probe)
    assert baseline["r2"] == pytest.approx(0.0, abs=1e-12)
    assert baseline["rmse"] > 0.5


def test_reconstruction_metrics_edge_cases():
    assert np.isnan(reconstruction_metrics([1.0], [2.0], [False])["rmse"])
    one = reconstruction_metrics([1.0, 3.0], [2.0, 2.0], [True, True])  # 1-D: one window
    assert one["rmse"] == pytest.approx(1.0) and np.isnan(one["r2"])  # constant target
    with pytest.raises(ValueError, match="one shape"):
        reconstruction_metrics(np.zeros((2, 3)), np.zeros((2, 4)), np.ones((2, 3), bool))
