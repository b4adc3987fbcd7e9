"""Astromer plugin: paper sizes, collator masking, attention masking, losses, HF round trip."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import lcfm
import numpy as np
import pytest
import torch
from lcfm.exceptions import ConfigError, DataError
from lcfm_models.astromer import (
    AstromerConfig,
    AstromerForMaskedReconstruction,
    AstromerForSequenceClassification,
    reconstruction_loss,
    time_positional_encoding,
)

PLUGIN = lcfm.get_model("astromer")


def make_row(rng, index, n, label="a"):
    """A sinusoidal magnitude light curve with MJD times and varying uncertainties."""
    t = 50_000.0 + np.sort(rng.uniform(0.0, 400.0, n))
    period, phase = rng.uniform(2.0, 30.0), rng.uniform(0, 2 * np.pi)
    value = 17.0 + 0.4 * np.sin(2 * np.pi * t / period + phase) + rng.normal(0, 0.02, n)
    error = rng.uniform(0.01, 0.1, n)
    return {"object_id": f"obj{index}", "survey": "test", "time": t,
            "value": value.astype(np.float32), "error": error.astype(np.float32),
            "band": np.array(["R"] * n), "value_kind": "mag", "label": label, "meta": {}}


def make_rows(count, lengths=(10, 80), seed=0):
    rng = np.random.default_rng(seed)
    return [make_row(rng, i, int(rng.integers(*lengths)), "ab"[i % 2]) for i in range(count)]


def tiny(**overrides):
    return PLUGIN.make_config("tiny", **overrides)


# ---------------------------------------------------------------- sizes and configuration


def test_paper_configurations_have_the_published_parameter_counts():
    assert PLUGIN.parameter_count("astromer-v1") == 661_505
    # published layout + the one-scalar mask token of sect. 3.1 (see AstromerConfig)
    assert PLUGIN.parameter_count("astromer-v2") == 3_953_409 + 1
    with torch.device("meta"):
        without_token = AstromerForMaskedReconstruction(
            PLUGIN.make_config("astromer-v2", mask_token=False))
    assert sum(p.numel() for p in without_token.parameters() if p.requires_grad) == 3_953_409


def test_config_rejects_bad_values_with_config_error():
    with pytest.raises(ConfigError, match="hidden_size=250"):
        AstromerConfig(hidden_size=250, num_attention_heads=4)
    with pytest.raises(ConfigError, match="probed_fraction"):
        AstromerConfig(probed_fraction=0.1, random_fraction=0.1, kept_fraction=0.1)
    with pytest.raises(ConfigError, match="hidden_act"):
        AstromerConfig(hidden_act="swish")
    with pytest.raises(ConfigError, match="task"):
        PLUGIN.collator(tiny(), task="forecast", train=True)
    assert AstromerConfig.model_type == "lcfm_astromer"


def test_time_encoding_follows_eq_1_and_2():
    times = torch.tensor([[0.0, 1.5, 50_000.25]], dtype=torch.float64)
    encoding = time_positional_encoding(times, 8, 1000.0)[0]
    for row, t in enumerate(times[0].tolist()):
        for j in range(8):
            omega = 1.0 / 1000.0 ** (2 * j / 8)
            expected = math.sin(t * omega) if j % 2 == 0 else math.cos(t * omega)
            assert encoding[row, j].item() == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- collator


def test_probing_proportions_over_many_windows():
    rows = make_rows(300, lengths=(120, 600), seed=1)
    batch = PLUGIN.collator(tiny(window_size=200), task="pretrain", train=True, seed=3)(rows)
    valid = batch["attention_mask"].bool()
    probed, masked = batch["probe_mask"], batch["masked_positions"]
    changed = batch["input_values"] != batch["target_values"]
    n = valid.sum().item()
    assert not (probed & ~valid).any() and not (masked & ~probed).any()
    assert (batch["input_values"][masked] == 0).all()
    assert not changed[valid & ~probed].any()  # unprobed points are untouched
    random = probed & ~masked & changed
    kept = probed & ~masked & ~changed
    assert probed.sum().item() / n == pytest.approx(0.5, abs=0.01)
    assert masked.sum().item() / n == pytest.approx(0.3, abs=0.015)
    assert random.sum().item() / n == pytest.approx(0.1, abs=0.015)
    assert kept.sum().item() / n == pytest.approx(0.1, abs=0.015)


def test_collator_windows_zero_mean_padding_and_determinism():
    rows = make_rows(6, lengths=(10, 90), seed=2)
    config = tiny()
    first = PLUGIN.collator(config, task="pretrain", train=True, seed=5)
    again = PLUGIN.collator(config, task="pretrain", train=True, seed=5)
    other = PLUGIN.collator(config, task="pretrain", train=True, seed=6)
    a, b, c = first(rows), again(rows), other(rows)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["probe_mask"], c["probe_mask"])

    valid = a["attention_mask"].bool()
    lengths = [min(len(r["time"]), config.window_size) for r in rows]
    assert valid.sum(1).tolist() == lengths
    means = (a["target_values"] * valid).sum(1) / valid.sum(1)
    assert means.abs().max().item() < 1e-5  # sect. 2.1: zero-mean windows
    assert (a["input_values"][~valid] == 0).all() and (a["times"][~valid] == 0).all()
    assert a["times"].dtype == torch.float64

    # training draws a new random window per call; evaluation takes the first window
    long_row = make_rows(1, lengths=(300, 301), seed=3)
    starts = {first(long_row)["times"][0, 0].item() for _ in range(8)}
    assert len(starts) > 1
    evaluate = PLUGIN.collator(config, task="pretrain", train=False, seed=5)
    e1, e2 = evaluate(long_row), evaluate(long_row + rows[:2])
    assert e1["times"][0, 0].item() == long_row[0]["time"][0]
    assert torch.equal(e1["probe_mask"][0], e2["probe_mask"][0])  # per-object mask

    classify = PLUGIN.collator(config, task="classify", train=False, label2id={"a": 0, "b": 1})
    batch = classify(rows)
    assert batch["labels"].tolist() == [0, 1, 0, 1, 0, 1] and "probe_mask" not in batch
    mean = (batch["input_values"] * batch["attention_mask"]).sum(1) / batch["attention_mask"].sum(1)
    assert mean.abs().max().item() < 1e-5
    with pytest.raises(DataError, match="obj0"):
        classify([dict(rows[0], label="c")])
    with pytest.raises(DataError, match="no observations"):
        classify([dict(rows[0], time=np.array([]), value=np.array([]), error=np.array([]))])


# ---------------------------------------------------------------- model behaviour


@torch.no_grad()
def test_masked_points_are_excluded_from_attention():
    rows = make_rows(4, lengths=(20, 60), seed=4)
    v1_style = dict(mask_token=False, residual_projection=False, uncertainty_weighted_loss=False)
    for config in (tiny(), tiny(**v1_style)):
        torch.manual_seed(0)
        model = AstromerForMaskedReconstruction(config).eval()
        batch = PLUGIN.collator(config, task="pretrain", train=True, seed=0)(rows)
        masked = batch["masked_positions"]
        reference = model(**batch).last_hidden_state
        altered = dict(batch, input_values=batch["input_values"] + 5.0 * masked)
        changed = model(**altered).last_hidden_state
        others = batch["attention_mask"].bool() & ~masked
        torch.testing.assert_close(changed[others], reference[others], rtol=0, atol=1e-6)
        if config.mask_token:  # the token replaces the value: nothing may change
            torch.testing.assert_close(changed, reference, rtol=0, atol=1e-6)
        else:  # the masked point's own query still sees its value (Astromer 1)
            assert not torch.allclose(changed[masked], reference[masked])
        # eq. 3: zero attention on masked points; the explicit path matches the fused one
        explicit = model.astromer(**batch, output_attentions=True)
        torch.testing.assert_close(explicit.last_hidden_state, reference, rtol=1e-5, atol=1e-5)
        for weights in explicit.attentions:  # (batch, heads, query, key)
            assert weights.permute(0, 3, 1, 2)[masked].abs().max().item() == 0.0
        # sensitivity: a visible point does move the others
        visible = others.clone()
        visible[:, 1:] = False
        moved = model(**dict(batch, input_values=batch["input_values"] + 5.0 * visible))
        assert not torch.allclose(moved.last_hidden_state[others & ~visible],
                                  reference[others & ~visible])


@torch.no_grad()
def test_padding_is_invisible():
    rows = make_rows(3, lengths=(8, 25), seed=5)
    config = tiny()
    torch.manual_seed(1)
    model = AstromerForMaskedReconstruction(config).eval()
    batch = PLUGIN.collator(config, task="pretrain", train=False, seed=0)(rows)
    valid = batch["attention_mask"].bool()
    reference = model(**batch)
    garbage = torch.randn(valid.shape) * 100
    noisy = dict(batch, input_values=torch.where(valid, batch["input_values"], garbage),
                 times=torch.where(valid, batch["times"], garbage.double() * 1e3),
                 errors=torch.where(valid, batch["errors"], garbage.abs()))
    out = model(**noisy)
    torch.testing.assert_close(out.last_hidden_state[valid], reference.last_hidden_state[valid],
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(out.pooler_output, reference.pooler_output, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.loss, reference.loss)
    for i in range(len(rows)):  # the same window without any padding
        n = int(valid[i].sum())
        alone = model(**{k: v[i:i + 1, :n] for k, v in batch.items() if k != "band_group"})
        torch.testing.assert_close(alone.last_hidden_state[0], reference.last_hidden_state[i, :n],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(alone.pooler_output[0], reference.pooler_output[i],
                                   rtol=1e-5, atol=1e-5)


def test_losses_match_eq_4_and_eq_5_by_hand():
    prediction = np.array([[0.1, 0.5, -0.2, 0.0], [0.3, 0.0, 0.0, 9.0]])
    target = np.array([[0.0, 0.2, 0.1, 0.4], [0.0, -0.5, 0.2, 0.0]])
    probe = np.array([[1, 1, 0, 1], [1, 0, 1, 0]], bool)
    valid = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)  # last step of window 2 is padding
    errors = np.array([[0.02, 0.05, 0.10, 0.04], [0.2, 0.1, 0.05, 0.0]])

    def by_hand(weighted):
        per_window = []
        for i in range(2):
            sel = probe[i] & valid[i]
            inv = 1.0 / errors[i][valid[i]]  # eq. 5 weights: 1/e min-max scaled, + 1e-3
            w = ((1.0 / errors[i][sel] - inv.min()) / (inv.max() - inv.min()) + 1e-3
                 if weighted else 1.0)
            per_window.append(np.sum(w * (target[i][sel] - prediction[i][sel]) ** 2)
                              / sel.sum())
        return math.sqrt(np.mean(per_window))

    args = [torch.tensor(a, dtype=torch.float32) for a in (prediction, target)]
    eq4 = reconstruction_loss(*args, torch.tensor(probe), None, torch.tensor(valid))
    eq5 = reconstruction_loss(*args, torch.tensor(probe), torch.tensor(errors, dtype=torch.float32),
                              torch.tensor(valid))
    assert eq4.item() == pytest.approx(by_hand(False), rel=1e-6)
    assert eq5.item() == pytest.approx(by_hand(True), rel=1e-6)
    assert eq5.item() < eq4.item()  # weights in (0, 1]: noisy points count less

    # the model picks eq. 4 or eq. 5 from its configuration
    rows = make_rows(3, lengths=(20, 40), seed=6)
    for weighted in (False, True):
        config = tiny(uncertainty_weighted_loss=weighted)
        model = AstromerForMaskedReconstruction(config).eval()
        batch = PLUGIN.collator(config, task="pretrain", train=False)(rows)
        out = model(**batch)
        expected = reconstruction_loss(out.reconstruction, batch["target_values"],
                                       batch["probe_mask"], batch["errors"] if weighted else None,
                                       batch["attention_mask"])
        torch.testing.assert_close(out.loss, expected)
    with pytest.raises(ValueError, match="errors"):
        model(**{k: v for k, v in batch.items() if k != "errors"})


def test_classification_head_and_layer_weights():
    config = tiny(num_labels=2)
    rows = make_rows(4, seed=7)
    batch = PLUGIN.collator(config, task="classify", train=True,
                            label2id={"a": 0, "b": 1})(rows)
    model = AstromerForSequenceClassification(config)
    out = model(**batch)
    assert out.logits.shape == (4, 2) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.astromer.layer_weights.grad is not None  # sect. 5.4: gamma trains here
    pretraining = AstromerForMaskedReconstruction(config)
    assert not pretraining.astromer.layer_weights.requires_grad


def test_save_and_auto_load_in_a_fresh_process(tmp_path):
    config = tiny()
    torch.manual_seed(2)
    model = AstromerForMaskedReconstruction(config).eval()
    batch = PLUGIN.collator(config, task="pretrain", train=False)(make_rows(3, seed=8))
    with torch.no_grad():
        encoded = model.astromer(**batch)
        reconstruction = model(**batch).reconstruction
    model.save_pretrained(tmp_path / "model")
    torch.save(batch, tmp_path / "batch.pt")
    script = textwrap.dedent("""
        import sys, torch
        import lcfm
        from transformers import AutoConfig, AutoModel, AutoModelForPreTraining
        path, folder = sys.argv[1], sys.argv[2]
        batch = torch.load(folder + "/batch.pt")
        encoder = AutoModel.from_pretrained(path).eval()
        pretraining = AutoModelForPreTraining.from_pretrained(path).eval()
        with torch.no_grad():
            out = encoder(**batch)
            rec = pretraining(**batch).reconstruction
        torch.save({"type": type(encoder).__name__, "pre": type(pretraining).__name__,
                    "model_type": AutoConfig.from_pretrained(path).model_type,
                    "hidden": out.last_hidden_state, "pooled": out.pooler_output,
                    "reconstruction": rec}, folder + "/result.pt")
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result = torch.load(tmp_path / "result.pt")
    assert result["type"] == "AstromerModel"
    assert result["pre"] == "AstromerForMaskedReconstruction"
    assert result["model_type"] == "lcfm_astromer"
    torch.testing.assert_close(result["hidden"], encoded.last_hidden_state, rtol=0, atol=1e-6)
    torch.testing.assert_close(result["pooled"], encoded.pooler_output, rtol=0, atol=1e-6)
    torch.testing.assert_close(result["reconstruction"], reconstruction, rtol=0, atol=1e-6)


def test_a_few_optimizer_steps_lower_the_loss():
    config = tiny()
    rows = make_rows(64, lengths=(40, 120), seed=9)
    train = PLUGIN.collator(config, task="pretrain", train=True, seed=0)
    held_out = PLUGIN.collator(config, task="pretrain", train=False, seed=1)(rows[:32])
    torch.manual_seed(3)
    model = AstromerForMaskedReconstruction(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate():
        model.eval()
        with torch.no_grad():
            return model(**held_out).loss.item()

    before = evaluate()
    model.train()
    for step in range(60):
        batch = train([rows[(step * 16 + k) % len(rows)] for k in range(16)])
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = evaluate()
    assert after < 0.7 * before, (before, after)
