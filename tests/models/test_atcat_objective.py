"""ATCAT's own fine-tuning objective (paper 003, sect. 2.2.2, 2.3.2, 2.6, 2.7) through
`AtcatPlugin.finetune_loss`, checked against hand computations."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lcfm.exceptions import ConfigError
from lcfm_models.atcat import AtcatForSequenceClassification, AtcatPlugin
from lcfm_models.atcat.losses_atcat import atcat_objective
from test_atcat import LSST, collate, rows, tiny

PLUGIN = AtcatPlugin()
MODEL_LOSS = SimpleNamespace(loss="model", label_smoothing=None)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def hand_soft_f1(probs, labels, n_classes):
    """1 - mean over present classes of 2 TP / (2 TP + FP + FN), from softmax scores."""
    f1 = []
    for c in sorted(set(labels.tolist())):
        tp = sum(probs[b, c] for b in range(len(labels)) if labels[b] == c)
        fp = sum(probs[b, c] for b in range(len(labels)) if labels[b] != c)
        fn = sum(1 - probs[b, c] for b in range(len(labels)) if labels[b] == c)
        f1.append(2 * tp / (2 * tp + fp + fn))
    return 1 - np.mean(f1)


def _model_and_batch(seed=0, n=6, **overrides):
    torch.manual_seed(seed)
    config = tiny(**overrides)
    model = AtcatForSequenceClassification(config)
    data = rows(n, seed=seed + 20)
    if config.metadata_dim:
        data = [r | {"meta": {"metadata": list(np.linspace(-1, 1, config.metadata_dim))}}
                for r in data]
    batch = collate(config, data)
    return model, batch


def _finetune_loss(model, batch, recipe=MODEL_LOSS, class_weights=None):
    batch = dict(batch)
    labels = batch.pop("labels")
    outputs = model(**batch)
    return PLUGIN.finetune_loss(model, outputs, labels, batch, recipe=recipe,
                                class_weights=class_weights), outputs, labels


def test_combined_loss_equals_hand_computation():
    model, batch = _model_and_batch(seed=1)
    model.train()
    loss, out, labels = _finetune_loss(model, batch)
    full = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach().numpy()
    y = labels.numpy()
    probs = _softmax(full.astype(np.float64))  # classes + "unsure"
    log_loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
    expected = 1.0 * log_loss + 1.0 * hand_soft_f1(probs, y, 2)  # paper default weights
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # the model's own loss (labels given to forward) is the same objective
    assert model(**batch).loss.item() == pytest.approx(expected, rel=1e-5)
    terms = PLUGIN.last_loss_terms
    assert float(terms["log_loss"]) == pytest.approx(log_loss, rel=1e-5)
    assert float(terms["mean_p_unsure"]) == pytest.approx(probs[:, -1].mean(), rel=1e-5)
    # the paper's recipe as lcfm.recipes holds it: the same objective
    from lcfm.recipes import get_recipe

    recipe = get_recipe("atcat-finetune")
    again = PLUGIN.finetune_loss(model, out, labels, batch, recipe=recipe,
                                 class_weights=torch.tensor([5.0, 1.0]))  # balanced: unused
    assert again.item() == pytest.approx(expected, rel=1e-5)
    # another loss in the recipe: the engine's generic loss applies
    assert PLUGIN.finetune_loss(model, out, labels, batch, recipe=SimpleNamespace(loss="ce"),
                                class_weights=None) is None


def test_loss_weights_come_from_the_config():
    model, batch = _model_and_batch(seed=2, soft_f1_weight=0.0, log_loss_weight=2.0)
    loss, out, labels = _finetune_loss(model.train(), batch)
    full = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach().double()
    expected = 2.0 * torch.nn.functional.cross_entropy(full, labels).item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_early_loss_is_per_example_mean_plus_a_third_of_the_last_point():
    model, batch = _model_and_batch(seed=3, n=4, early_classification=True)
    loss, out, labels = _finetune_loss(model.train(), batch)
    assert out.step_logits is not None  # training mode returns the step logits
    steps = torch.cat([out.step_logits, out.step_unsure_logits[..., None]], -1).detach()
    last = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach()
    points = batch["attention_mask"].bool().numpy()  # classify batches hold points only
    per_example, last_ce = [], []
    for b in range(len(labels)):
        idx = np.flatnonzero(points[b])[1:]  # every point but the first
        logp = steps[b].double().log_softmax(-1).numpy()
        per_example.append(-np.mean([logp[i, labels[b]] for i in idx]))
        last_ce.append(-last[b].double().log_softmax(-1)[labels[b]].item())
    expected = np.mean(per_example) + np.mean(last_ce) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    model.eval()  # evaluation mode: no step logits unless asked for
    with torch.no_grad():
        assert model(**{k: v for k, v in batch.items() if k != "labels"}).step_logits is None


def test_unsure_head_receives_gradient_and_probability_is_reported():
    model, batch = _model_and_batch(seed=4)
    loss, out, _ = _finetune_loss(model.train(), batch)
    loss.backward()
    weight = model.classifier.linear.weight.grad
    assert weight.shape[0] == 3 and weight[-1].abs().sum() > 0  # the "unsure" row
    full = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach()
    torch.testing.assert_close(out.p_unsure.detach(), full.softmax(-1)[:, -1])


def test_unsure_calibration_trains_the_unsure_output_towards_its_target():
    model, batch = _model_and_batch(seed=5, unsure_calibration=True)
    loss, out, labels = _finetune_loss(model.train(), batch)
    loss.backward()
    assert model.classifier.linear.weight.grad[-1].abs().sum() > 0
    full = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach().double()
    q = full.softmax(-1).numpy()
    y = labels.numpy()
    q_true = q[np.arange(len(y)), y]
    accuracy = np.mean(full[:, :2].argmax(-1).numpy() == y)
    cc = 0.5 * (q_true + np.maximum(0, 2 * (q_true - 0.5)))
    raw = 0.1 / 2 + (1 - cc)
    unsure = np.clip((1 - accuracy) / raw.mean() * raw, 0, 1)
    kl = []
    for b in range(len(y)):
        target = np.zeros(3)
        target[y[b]], target[-1] = 1 - unsure[b], unsure[b]
        kl.append(sum(t * (math.log(t) - math.log(q[b, i])) for i, t in enumerate(target)
                      if t > 0))
    expected = np.mean(kl) + hand_soft_f1(q, y, 2)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_label_smoothing_moves_eps_over_n_to_every_class():
    model, batch = _model_and_batch(seed=6, soft_f1_weight=0.0)
    model.train()
    plain, out, labels = _finetune_loss(model, batch)
    smoothed, _, _ = _finetune_loss(model, batch, recipe=SimpleNamespace(
        loss="model", label_smoothing=0.1))
    logp = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach().double() \
        .log_softmax(-1).numpy()
    y = labels.numpy()
    true = -logp[np.arange(len(y)), y]
    spread = -logp[:, :2].sum(1)  # eps / n to each of the n = 2 classes, none to "unsure"
    expected = np.mean((1 - 0.1) * true + 0.1 / 2 * spread)
    assert smoothed.item() == pytest.approx(expected, rel=1e-5)
    assert plain.item() == pytest.approx(true.mean(), rel=1e-5)
    assert smoothed.item() != pytest.approx(plain.item(), rel=1e-3)
    # the config's own value applies when the recipe sets none
    model.config.label_smoothing = 0.1
    from_config, _, _ = _finetune_loss(model, batch)
    assert from_config.item() == pytest.approx(expected, rel=1e-5)


def test_l1_term_is_coefficient_times_sum_of_abs_metadata_weights():
    model, batch = _model_and_batch(seed=7, metadata_dim=3, metadata_l1=1e-2)
    model.train()
    with_l1, _, _ = _finetune_loss(model, batch)
    model.config.metadata_l1 = 0.0
    without, _, _ = _finetune_loss(model, batch)
    encoder = model.atcat.embeddings.metadata
    weights = (encoder.base.weight.abs().sum() + encoder.branch_in.weight.abs().sum()).item()
    assert with_l1.item() - without.item() == pytest.approx(1e-2 * weights, rel=1e-4)


def test_class_weights_weight_the_examples():
    model, batch = _model_and_batch(seed=8, soft_f1_weight=0.0)
    model.train()
    weights = torch.tensor([3.0, 1.0])
    loss, out, labels = _finetune_loss(model, batch, class_weights=weights)
    full = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach().double()
    ce = torch.nn.functional.cross_entropy(full, labels, reduction="none").numpy()
    w = weights.numpy()[labels.numpy()]
    assert loss.item() == pytest.approx((w * ce).sum() / w.sum(), rel=1e-5)
    balanced, _, _ = _finetune_loss(model, batch, class_weights=weights, recipe=SimpleNamespace(
        loss="model", label_smoothing=None, balanced_batches=True))
    assert balanced.item() == pytest.approx(ce.mean(), rel=1e-5)


def test_objective_without_labels_is_zero_plus_penalty():
    config = tiny()
    logits = torch.randn(3, 3, requires_grad=True)
    terms = atcat_objective(config, logits, torch.full((3,), -100))
    assert terms.total.item() == 0.0


def test_optimiser_steps_reduce_the_objective():
    torch.manual_seed(0)
    config = tiny(early_classification=True)
    model = AtcatForSequenceClassification(config)
    data = rows(16, seed=30, points=(6, 16))
    train = PLUGIN.collator(config, task="classify", train=True, bands=LSST,
                            label2id={"burst": 0, "periodic": 1}, seed=2)
    evaluation = collate(config, data)
    optimizer = torch.optim.NAdam(model.parameters(), lr=2e-3, betas=(0.0, 0.999))

    def objective():
        model.train()
        with torch.no_grad():
            loss, _, _ = _finetune_loss(model, evaluation)
        return loss.item()

    before = objective()
    for step in range(12):
        batch = train([data[(step * 8 + j) % 16] for j in range(8)])
        loss, _, _ = _finetune_loss(model.train(), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = objective()
    assert after < before - 0.2, (before, after)


def test_unsure_teacher_target_from_a_saved_ensemble_member(tmp_path):
    """Sect. 2.7 (iv): KL towards p_true on the true class and 1 - p_true on "unsure",
    p_true from the teacher on the same batch; soft F1 stays on the true label."""
    teacher, batch = _model_and_batch(seed=9)
    teacher.config.lcfm_survey, teacher.config.lcfm_bands = "elasticc", LSST
    teacher.config.id2label, teacher.config.label2id = {0: "burst", 1: "periodic"}, \
        {"burst": 0, "periodic": 1}
    teacher.eval().save_pretrained(tmp_path / "teacher")
    model, _ = _model_and_batch(seed=10, unsure_teacher=str(tmp_path / "teacher"))
    model.config.id2label = teacher.config.id2label
    loss, out, labels = _finetune_loss(model.train(), batch)
    loss.backward()
    assert model.classifier.linear.weight.grad[-1].abs().sum() > 0
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        p_teacher = teacher(**inputs).logits.double().softmax(-1).numpy()
    y = labels.numpy()
    p_true = p_teacher[np.arange(len(y)), y]
    q = torch.cat([out.logits, out.unsure_logits[:, None]], -1).detach().double() \
        .softmax(-1).numpy()
    kl = [p * math.log(p / q[b, y[b]]) + (1 - p) * math.log((1 - p) / q[b, -1])
          for b, p in enumerate(p_true)]
    expected = np.mean(kl) + hand_soft_f1(q, y, 2)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_objective_defaults_are_the_papers():
    config = PLUGIN.make_config("atcat")
    assert config.unsure_output and not config.early_classification  # sect. 2.2.5, 2.6
    assert (config.log_loss_weight, config.soft_f1_weight) == (1.0, 1.0)  # Table 7 default
    assert config.early_last_point_ratio == pytest.approx(1 / 3)  # sect. 2.6
    assert config.label_smoothing == 0.0 and config.unsure_teacher is None  # sect. 2.7 variants
    with pytest.raises(ConfigError, match="unsure_teacher"):
        tiny(unsure_teacher="x", unsure_calibration=True)
    with pytest.raises(ConfigError, match="label_smoothing"):
        tiny(label_smoothing=1.0)
