"""AstroCo plugin (paper 002): sizes, masking of padding, layer mix, objective, collator,
Auto round trip and a short pretraining run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import lcfm  # noqa: F401  (registers the Auto classes of every installed model plugin)
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lcfm.exceptions import ConfigError, DataError
from lcfm.registry import get_model
from lcfm_models.astroco import (
    AstroCoConfig,
    AstroCoForMaskedReconstruction,
    AstroCoForSequenceClassification,
    AstroCoModel,
    AstroCoPlugin,
)

LABELS = {"RRab": 0, "EC": 1}


@pytest.fixture(scope="module")
def plugin() -> AstroCoPlugin:
    return get_model("astroco")


def make_row(rng, n, label=None, object_id="obj"):
    """A sinusoidal light curve: irregular MJD times (well sampled: periods of 5-30 days,
    gaps of 0.1-1 day), magnitudes, errors."""
    time = 49000.0 + np.cumsum(rng.uniform(0.1, 1.0, n))
    period, amplitude = rng.uniform(5.0, 30.0), rng.uniform(0.2, 1.0)
    value = 17.0 + amplitude * np.sin(2 * np.pi * time / period + rng.uniform(0, 6.3))
    value += rng.normal(0, 0.02, n)
    return {"object_id": object_id, "survey": "macho", "time": time,
            "value": value.astype(np.float32), "error": np.full(n, 0.02, np.float32),
            "band": np.array(["R"] * n), "value_kind": "mag", "label": label, "meta": {}}


def tiny_config(plugin, **overrides) -> AstroCoConfig:
    return plugin.make_config("tiny", **overrides)


def test_paper_parameter_counts_within_two_percent(plugin):
    assert plugin.default_configuration == "astroco-s"
    for name, paper in (("astroco-s", 5.9e6), ("astroco-l", 15.2e6)):
        count = plugin.parameter_count(name)
        assert abs(count / paper - 1) < 0.02, (name, count)
    large = plugin.make_config("astroco-l")
    assert (large.num_hidden_layers, large.num_attention_heads, large.head_dim) == (12, 4, 64)
    small = plugin.make_config("astroco-s")
    assert (small.num_hidden_layers, small.head_dim, small.conv_kernel_size) == (4, 69, 32)


@pytest.mark.parametrize("field, value", [
    ("hidden_size", 33), ("num_attention_heads", 5), ("conv_kernel_size", 0),
    ("hidden_dropout_prob", 1.5), ("value_normalization", "minmax"), ("mask_fraction", 0.6),
])
def test_invalid_config_raises_config_error(plugin, field, value):
    with pytest.raises(ConfigError, match=field):
        tiny_config(plugin, **{field: value})


def test_forward_backward_tiny(plugin):
    torch.manual_seed(0)
    config = tiny_config(plugin)
    rng = np.random.default_rng(0)
    rows = [make_row(rng, n, label) for n, label in ((90, "RRab"), (40, "EC"), (12, None))]
    model = AstroCoForMaskedReconstruction(config)
    batch = plugin.collator(config, task="pretrain", train=True, seed=1)(rows)
    out = model(**batch)
    assert out.reconstruction.shape == batch["values"].shape == (3, 64)
    assert out.pooler_output.shape == (3, 32) and torch.isfinite(out.loss)
    out.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert model.astroco.layer_mix_logits.grad.abs().sum() > 0

    classifier = AstroCoForSequenceClassification(tiny_config(plugin, num_labels=2))
    batch = plugin.collator(config, task="classify", train=False, label2id=LABELS)(rows)
    assert batch["labels"].tolist() == [0, 1, -100]
    out = classifier(**batch)
    assert out.logits.shape == (3, 2)
    expected = F.cross_entropy(out.logits[:2], batch["labels"][:2])
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert classifier.classifier.weight.grad.abs().sum() > 0


def _encode(model, batch):
    with torch.no_grad():
        return model(**{k: batch[k] for k in ("values", "times", "errors", "attention_mask")})


def _pad(batch, extra, fill):
    """Append `extra` padded steps whose inputs are `fill` (garbage the model must ignore)."""
    padded = {}
    for key in ("values", "times", "errors", "attention_mask"):
        tensor = batch[key]
        tail = torch.zeros((tensor.shape[0], extra), dtype=tensor.dtype)
        if key != "attention_mask":
            tail.fill_(fill)
        padded[key] = torch.cat([tensor, tail], dim=1)
    for key in ("values", "times", "errors"):  # garbage also in already-padded steps
        padded[key] = padded[key].masked_fill(padded["attention_mask"] == 0, fill)
    return padded


@pytest.mark.parametrize("mode", ["eval", "train_without_dropout"])
def test_padding_is_invisible(plugin, mode):
    torch.manual_seed(0)
    config = tiny_config(plugin, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = AstroCoForMaskedReconstruction(config)
    with torch.no_grad():  # non-trivial BatchNorm running statistics and layer mix
        model.astroco.layer_mix_logits.normal_()
        for module in model.modules():
            if hasattr(module, "running_var"):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    model.train(mode == "train_without_dropout")
    rng = np.random.default_rng(3)
    rows = [make_row(rng, n) for n in (50, 17, 33)]
    base = plugin.collator(config, task="classify", train=False, label2id={})(rows)
    reference = _encode(model, base)
    valid = base["attention_mask"].bool()
    for extra, fill in ((0, 1e4), (9, -3.0), (40, float("nan"))):
        out = _encode(model, _pad(base, extra, fill))
        length = base["values"].shape[1]
        for name in ("reconstruction", "last_hidden_state"):
            got, want = getattr(out, name)[:, :length], getattr(reference, name)
            torch.testing.assert_close(got[valid], want[valid], atol=1e-5, rtol=0)
        torch.testing.assert_close(out.pooler_output, reference.pooler_output,
                                   atol=1e-5, rtol=0)
    if mode == "eval":  # a row alone (no padding at all) gives the same outputs as batched
        alone = plugin.collator(config, task="classify", train=False, label2id={})(rows[1:2])
        torch.testing.assert_close(_encode(model, alone).pooler_output,
                                   reference.pooler_output[1:2], atol=1e-5, rtol=0)


def test_masked_batch_norm_matches_batch_norm_on_valid_steps():
    """Training statistics come from valid steps only and equal BatchNorm1d's on them."""
    from lcfm_models.astroco.modeling_astroco import AstroCoMaskedBatchNorm

    torch.manual_seed(0)
    masked, plain = AstroCoMaskedBatchNorm(4), torch.nn.BatchNorm1d(4)
    x = torch.randn(3, 4, 10) * 2 + 1
    valid = torch.ones(3, 10, dtype=torch.bool)
    valid[1, 6:] = False
    garbage = x.clone()
    garbage[1, :, 6:] = 1e3
    got = masked(garbage, valid)
    flat = torch.cat([x[0], x[1, :, :6], x[2]], dim=1)[None]  # the valid steps only
    want = plain(flat)[0]
    torch.testing.assert_close(torch.cat([got[0], got[1, :, :6], got[2]], dim=1), want)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)


def test_depthwise_convolution_follows_paper_offsets(plugin):
    """Y[t] = sum_k W[k] X[t + k - floor(K/2)] with even K, output length = input length."""
    config = tiny_config(plugin)  # K = 8
    conv = AstroCoModel(config).blocks[0].convolution
    kernel = config.conv_kernel_size
    x = torch.zeros(1, config.hidden_size, 20)
    x[0, :, 10] = 1.0  # an impulse at t = 10
    with torch.no_grad():
        conv.depthwise.bias.zero_()
        conv.depthwise.weight.copy_(torch.arange(1.0, kernel + 1).expand_as(conv.depthwise.weight))
        y = conv.depthwise(F.pad(x, conv.padding))
    assert y.shape == x.shape
    for t in range(20):
        k = 10 - t + kernel // 2  # the tap that reads X[10]
        expected = float(k + 1) if 0 <= k < kernel else 0.0
        assert y[0, 0, t].item() == expected, t


def test_layer_mix_weights_sum_to_one_and_mix_all_layers(plugin):
    torch.manual_seed(0)
    config = tiny_config(plugin)
    model = AstroCoModel(config).eval()
    with torch.no_grad():
        model.layer_mix_logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
    rows = [make_row(np.random.default_rng(1), 30)]
    batch = plugin.collator(config, task="classify", train=False, label2id={})(rows)
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    weights = out.layer_weights
    assert weights.shape == (config.num_hidden_layers + 1,)
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    torch.testing.assert_close(weights, torch.softmax(torch.tensor([0.3, -1.0, 2.0]), 0))
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    mixed = sum(w * h for w, h in zip(weights, out.hidden_states, strict=True))
    torch.testing.assert_close(out.last_hidden_state, mixed)
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state.mean(1))


def test_reconstruction_loss_counts_only_probed_steps(plugin):
    torch.manual_seed(0)
    config = tiny_config(plugin)
    model = AstroCoForMaskedReconstruction(config).eval()
    rows = [make_row(np.random.default_rng(i), 60) for i in range(2)]
    batch = plugin.collator(config, task="pretrain", train=True, seed=5)(rows)
    with torch.no_grad():
        out = model(**batch)
        probed = batch["target_mask"].bool()
        error = (out.reconstruction - batch["target_values"])[probed]
        torch.testing.assert_close(out.loss, error.pow(2).mean().sqrt())  # eq. 3
        unprobed = torch.nonzero(~probed & batch["attention_mask"].bool())[0]
        changed = {**batch, "target_values": batch["target_values"].clone()}
        changed["target_values"][tuple(unprobed)] += 100.0
        assert model(**changed).loss.item() == out.loss.item()
        one_probed = torch.nonzero(probed)[0]
        changed["target_values"][tuple(one_probed)] += 100.0
        assert model(**changed).loss.item() > out.loss.item() + 1.0


def test_collator_windows_normalisation_and_probing(plugin):
    config = tiny_config(plugin)  # max_length 64
    rng = np.random.default_rng(7)
    rows = [make_row(rng, 300), make_row(rng, 20)]
    first = plugin.collator(config, task="pretrain", train=False, seed=0)(rows)
    assert first["values"].shape == (2, 64) and first["attention_mask"].sum(1).tolist() == [64, 20]
    window = rows[0]["time"][:64]  # evaluation: the first window, times relative (days)
    np.testing.assert_allclose(first["times"][0].numpy(), window - window.mean(), atol=1e-3)
    targets = first["target_values"]
    np.testing.assert_allclose(targets[0].numpy(), rows[0]["value"][:64]
                               - rows[0]["value"][:64].mean(), atol=1e-5)
    assert abs(float(targets[1, :20].mean())) < 1e-5 and (targets[1, 20:] == 0).all()
    again = plugin.collator(config, task="pretrain", train=False, seed=0)(rows)
    assert all(torch.equal(first[k], again[k]) for k in first)  # deterministic validation
    # probing of a 64-step window: 32 probed, 19 masked (value = error = 0), 6 random
    probed = first["target_mask"][0].bool()
    assert int(probed.sum()) == 32
    masked = probed & (first["values"][0] == 0) & (first["errors"][0] == 0)
    assert int(masked.sum()) == round(0.3 * 64)
    unchanged = first["values"][0] == targets[0]
    assert unchanged[~probed].all() and int((unchanged & probed).sum()) >= 32 - 19 - 6
    assert (first["errors"][0][~probed] == 0.02).all()
    # training: seeded random windows
    starts = []
    for seed in (0, 0, 1):
        batch = plugin.collator(config, task="pretrain", train=True, seed=seed)(rows[:1])
        starts.append(float(batch["target_values"][0, 0]))
    assert starts[0] == starts[1] != starts[2]


def test_collator_errors(plugin):
    config = tiny_config(plugin)
    row = make_row(np.random.default_rng(0), 10, label="Mira", object_id="lc-9")
    with pytest.raises(DataError, match="lc-9.*'Mira'"):
        plugin.collator(config, task="classify", train=False, label2id=LABELS)([row])
    with pytest.raises(ConfigError, match="task"):
        plugin.collator(config, task="forecast", train=False)


def test_save_and_load_through_auto_in_fresh_process(plugin, tmp_path):
    torch.manual_seed(0)
    config = tiny_config(plugin)
    model = AstroCoForMaskedReconstruction(config)
    rows = [make_row(np.random.default_rng(i), n) for i, n in ((0, 70), (1, 25))]
    batch = plugin.collator(config, task="pretrain", train=False)(rows)
    model.train()
    model(**batch)  # moves the BatchNorm running statistics away from their initial values
    with torch.no_grad():
        model.astroco.layer_mix_logits.normal_()
    model.eval()
    model.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not list((tmp_path / "model").glob("*.py"))
    torch.save(dict(batch), tmp_path / "batch.pt")
    script = textwrap.dedent(f"""
        import json, torch
        import lcfm
        from transformers import AutoModel, AutoModelForPreTraining
        batch = torch.load({str(tmp_path / "batch.pt")!r})
        base = AutoModel.from_pretrained({str(tmp_path / "model")!r}).eval()
        head = AutoModelForPreTraining.from_pretrained({str(tmp_path / "model")!r}).eval()
        with torch.no_grad():
            encoded = base(**batch)
            recon = head(**batch)
        torch.save({{"pooled": encoded.pooler_output, "steps": encoded.last_hidden_state,
                    "reconstruction": recon.reconstruction, "loss": recon.loss}},
                   {str(tmp_path / "out.pt")!r})
        print(json.dumps([type(base).__name__, type(head).__name__]))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names = json.loads(done.stdout.strip().splitlines()[-1])
    assert names == ["AstroCoModel", "AstroCoForMaskedReconstruction"]
    loaded = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        expected = model(**batch)
    torch.testing.assert_close(loaded["pooled"], expected.pooler_output, atol=0, rtol=0)
    torch.testing.assert_close(loaded["steps"], expected.last_hidden_state, atol=0, rtol=0)
    torch.testing.assert_close(loaded["reconstruction"], expected.reconstruction,
                               atol=0, rtol=0)
    torch.testing.assert_close(loaded["loss"], expected.loss, atol=0, rtol=0)


def test_short_pretraining_on_sinusoids_lowers_the_loss(plugin):
    torch.manual_seed(0)
    config = tiny_config(plugin, max_length=48)
    rng = np.random.default_rng(11)
    train_rows = [make_row(rng, int(rng.integers(30, 120))) for _ in range(64)]
    val_rows = [make_row(rng, 60) for _ in range(16)]
    train_collate = plugin.collator(config, task="pretrain", train=True, seed=0)
    val_batch = plugin.collator(config, task="pretrain", train=False, seed=0)(val_rows)
    model = AstroCoForMaskedReconstruction(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)

    def validation_loss():
        model.eval()
        with torch.no_grad():
            return model(**val_batch).loss.item()

    before = validation_loss()
    for _ in range(50):
        model.train()
        picks = rng.choice(len(train_rows), 16, replace=False)
        loss = model(**train_collate([train_rows[i] for i in picks])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = validation_loss()
    assert after < 0.75 * before, (before, after)
