"""ASTRAFier plugin: paper size, padding invisibility, MC dropout, weighted loss, collator,
save/load through the Auto classes in a fresh process, and a short training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import lcfm
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lcfm.exceptions import ConfigError, DataError
from lcfm_models.astrafier import (
    AstrafierConfig,
    AstrafierForSequenceClassification,
    AstrafierModel,
    AstrafierPlugin,
)
from lcfm_models.astrafier.modeling_astrafier import AstrafierTimeEncoding
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

LABEL2ID = {"PULSATOR": 0, "NOISE": 1}


@pytest.fixture(scope="module")
def plugin() -> AstrafierPlugin:
    return lcfm.get_model("astrafier")


def tiny_model(plugin, **overrides) -> AstrafierForSequenceClassification:
    torch.manual_seed(0)
    return AstrafierForSequenceClassification(plugin.make_config("tiny", **overrides))


def synthetic_rows(n: int, *, seed: int = 0, length: tuple[int, int] = (40, 60)) -> list[dict]:
    """Two separable classes: a 6-day sinusoid (PULSATOR) and white noise (NOISE),
    irregularly sampled over ~27 days (a TESS sector) at absolute BTJD-like times."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        size = int(rng.integers(*length))
        time = 2000.0 + np.sort(rng.uniform(0, 27, size))
        label = "PULSATOR" if i % 2 == 0 else "NOISE"
        signal = np.sin(2 * np.pi * time / 6.0) if label == "PULSATOR" else 0.0
        value = 100 + 5 * signal + rng.normal(0, 1 if label == "NOISE" else 0.3, size)
        rows.append({"object_id": f"TIC {i}", "survey": "tess_qlp", "time": time,
                     "value": value.astype(np.float32),
                     "error": np.full(size, 0.1, np.float32), "band": np.array(["TESS"] * size),
                     "value_kind": "flux", "label": label, "meta": {}})
    return rows


def test_paper_configuration_has_8_8_million_parameters(plugin):
    config = plugin.make_config("astrafier")
    assert plugin.default_configuration == "astrafier"
    assert plugin.pretraining_class is None
    assert plugin.classification_class is AstrafierForSequenceClassification
    assert config.num_labels == 8 and config.num_attention_heads == 8
    assert config.cnn_kernel_sizes == [3, 7, 15, 111]
    count = plugin.parameter_count("astrafier", head="classification")
    assert abs(count / 8.8e6 - 1) < 0.02, count


def test_registered_with_auto_classes(plugin):
    config = AutoConfig.for_model("lcfm_astrafier", **plugin.tiny)
    assert isinstance(config, AstrafierConfig)
    assert type(AutoModel.from_config(config)) is AstrafierModel
    assert type(AutoModelForSequenceClassification.from_config(config)) is \
        AstrafierForSequenceClassification


@pytest.mark.parametrize("bad", [{"hidden_size": 63}, {"cnn_kernel_sizes": [3, 4]},
                                 {"dropout": 1.5}, {"norm_groups": 3},
                                 {"num_labels": 2, "class_weights": [1.0, 2.0, 3.0]},
                                 {"num_labels": 2, "class_weights": [1.0, -1.0]},
                                 {"num_blocks": 0}])
def test_invalid_configuration_raises_config_error(plugin, bad):
    with pytest.raises(ConfigError, match="AstrafierConfig"):
        plugin.make_config("tiny", **bad)


def test_time_encoding_follows_eqs_2_and_3(plugin):
    config = plugin.make_config("tiny")
    d, steps = config.hidden_size, 5
    times = torch.tensor([[0.0, 0.5, 2.0, 3.25, 10.0]])
    encoding = AstrafierTimeEncoding(config)(times, torch.tensor([steps]))
    i = 3
    angle = times[0] / 10000 ** (2 * i / d) * d / steps
    torch.testing.assert_close(encoding[0, :, 2 * i], torch.sin(angle))
    torch.testing.assert_close(encoding[0, :, 2 * i + 1], torch.cos(angle))


def test_forward_backward_tiny(plugin):
    model = tiny_model(plugin)
    batch = plugin.collator(model.config, task="classify", train=True,
                            label2id=LABEL2ID)(synthetic_rows(4))
    out = model(**batch)
    assert out.logits.shape == (4, 2) and torch.isfinite(out.loss)
    out.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert sum(param.grad.abs().sum() for param in model.parameters()) > 0


def test_padding_is_invisible(plugin):
    # long kernels against short curves: any leak through convolutions would show
    model = tiny_model(plugin, cnn_kernel_sizes=[3, 15], num_blocks=2).eval()
    rows = synthetic_rows(3, length=(12, 30))
    collate = plugin.collator(model.config, task="classify", train=False, label2id=LABEL2ID)
    alone = [model(**collate([row])) for row in rows]  # no padding at all
    base = [model.astrafier(**{k: v for k, v in collate([row]).items() if k != "labels"})
            for row in rows]
    batch = collate(rows)
    generator = torch.Generator().manual_seed(1)
    for extra, fill in ((0, 0.0), (7, 1e4), (40, float("nan"))):
        values = F.pad(batch["values"], (0, extra))
        times = F.pad(batch["times"], (0, extra))
        mask = F.pad(batch["attention_mask"], (0, extra))
        padded = mask == 0
        values[padded] = fill + torch.randn(int(padded.sum()), generator=generator)
        times[padded] = torch.rand(int(padded.sum()), generator=generator) * 1e3
        logits = model(values, times, mask).logits
        encoded = model.astrafier(values, times, mask)
        for i, row in enumerate(rows):
            n = len(row["time"])
            torch.testing.assert_close(logits[i], alone[i].logits[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(encoded.pooler_output[i], base[i].pooler_output[0],
                                       atol=1e-5, rtol=0)
            torch.testing.assert_close(encoded.last_hidden_state[i, :n],
                                       base[i].last_hidden_state[0], atol=1e-5, rtol=0)
            assert (encoded.last_hidden_state[i, n:] == 0).all()


def test_padding_must_be_at_the_end(plugin):
    model = tiny_model(plugin).eval()
    mask = torch.tensor([[1, 0, 1, 1]])
    with pytest.raises(DataError, match="attention_mask"):
        model(torch.zeros(1, 4), torch.arange(4.0)[None], mask)


@torch.no_grad()
def test_fused_bilstm_equals_the_bilstm_over_packed_sequences(plugin):
    """The fused path (one kernel per direction over the padded batch) computes what a
    bidirectional nn.LSTM computes over each light curve alone (packed sequences)."""
    module = tiny_model(plugin).astrafier.blocks[0].bilstm.eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 30, module.norm.normalized_shape[0], generator=generator)
    lengths = torch.tensor([30, 11, 1, 2])
    mask = torch.arange(30)[None, :] < lengths[:, None]
    x[~mask] = 1e3  # whatever the padding holds must not reach valid steps
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    for lstm in module.lstm:
        packed, _ = lstm(packed)
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=30)
    captured = {}

    def capture(_, args):  # the BiLSTM output, as the CNN projection receives it
        captured["lstm"] = args[0].transpose(1, 2).clone()

    hook = module.expand.register_forward_pre_hook(capture)
    try:
        module(x, mask, lengths)
    finally:
        hook.remove()
    torch.testing.assert_close(captured["lstm"], expected, atol=1e-5, rtol=0)


def count_aten_calls(fn) -> int:
    """Number of ATen operator calls (kernel launches) made by `fn`."""

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.calls


def test_bilstm_kernel_calls_do_not_grow_with_the_light_curve(plugin):
    """Issue 10 item 8: the packed BiLSTM ran one small kernel per time step (~100k calls per
    2 light curves); the fused path makes the same number of calls at any length."""
    model = tiny_model(plugin)
    collate = plugin.collator(model.config, task="classify", train=True, label2id=LABEL2ID)
    short = collate(synthetic_rows(2, length=(8, 9)))
    long = collate(synthetic_rows(2, length=(60, 61)))

    def step(batch):
        model(**batch).loss.backward()

    assert count_aten_calls(lambda: step(long)) == count_aten_calls(lambda: step(short))


def test_runs_under_bf16_autocast_on_cpu(plugin):
    model = tiny_model(plugin)
    batch = plugin.collator(model.config, task="classify", train=False,
                            label2id=LABEL2ID)(synthetic_rows(4))
    model.eval()
    with torch.no_grad():
        reference = model(**batch).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(**batch).logits
    torch.testing.assert_close(low.float(), reference, atol=0.05, rtol=0.05)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
    out.loss.backward()
    lstm = model.astrafier.blocks[0].bilstm.lstm[0]
    assert torch.isfinite(out.loss) and lstm.weight_hh_l0_reverse.grad.abs().sum() > 0
    for name, param in model.named_parameters():
        assert param.dtype == torch.float32 and torch.isfinite(param.grad).all(), name


def test_mc_dropout_gives_spread_and_normalized_probabilities(plugin):
    model = tiny_model(plugin).eval()
    batch = plugin.collator(model.config, task="classify", train=False,
                            label2id=LABEL2ID)(synthetic_rows(3))
    mean, std = model.predict_mc_dropout(**batch, n_samples=8)
    assert mean.shape == std.shape == (3, 2)
    torch.testing.assert_close(mean.sum(dim=-1), torch.ones(3))
    assert (std > 0).all()
    assert not model.training and not any(m.training for m in model.modules())
    # plain inference stays deterministic: dropout is off again
    torch.testing.assert_close(model(**batch).logits, model(**batch).logits, atol=0, rtol=0)


def test_class_weighted_loss_matches_hand_computation(plugin):
    weights = [0.5, 2.0, 4.0]
    model = tiny_model(plugin, num_labels=3, class_weights=weights).eval()
    batch = plugin.collator(model.config, task="classify", train=False,
                            label2id={"PULSATOR": 0, "NOISE": 2})(synthetic_rows(5))
    out = model(**batch)
    log_p = out.logits.log_softmax(dim=-1)
    labels = batch["labels"].tolist()
    numerator = -sum(weights[y] * log_p[i, y] for i, y in enumerate(labels))
    expected = numerator / sum(weights[y] for y in labels)
    torch.testing.assert_close(out.loss, expected)
    unweighted = tiny_model(plugin, num_labels=3).eval()
    out = unweighted(**batch)
    plain = -out.logits.log_softmax(-1)[range(5), batch["labels"]].mean()
    torch.testing.assert_close(out.loss, plain)
    assert not torch.allclose(plain, expected)


def test_collator(plugin):
    config = plugin.make_config("tiny", max_length=32)
    with pytest.raises(ConfigError, match="astrafier has no self-supervised objective"):
        plugin.collator(config, task="pretrain", train=True)
    rows = synthetic_rows(3, length=(50, 60))
    rows[1]["label"] = None
    evaluate = plugin.collator(config, task="classify", train=False, label2id=LABEL2ID)
    batch = evaluate(rows)
    assert batch["values"].shape == (3, 32) and batch["attention_mask"].sum() == 3 * 32
    assert batch["labels"].tolist() == [0, -100, 0]
    # deterministic window = the first max_length points, time from zero, standardized
    first = rows[0]
    np.testing.assert_allclose(batch["times"][0].numpy(), first["time"][:32] - first["time"][0],
                               atol=1e-4)
    window = first["value"][:32].astype(np.float64)
    np.testing.assert_allclose(batch["values"][0].numpy(),
                               (window - window.mean()) / window.std(), atol=1e-5)
    assert torch.equal(evaluate(rows)["values"], batch["values"])
    # random windows: differ from the first window, reproducible with the same seed
    crops = [plugin.collator(config, task="classify", train=True, label2id=LABEL2ID, seed=s)
             (rows)["times"] for s in (1, 1, 2)]
    assert torch.equal(crops[0], crops[1]) and not torch.equal(crops[0], crops[2])
    # short curves are padded to the longest row, or to max_length on request
    short = synthetic_rows(2, length=(5, 9))
    assert evaluate(short)["values"].shape[1] == max(len(r["time"]) for r in short)
    padded = plugin.collator(config, task="classify", train=False, label2id=LABEL2ID,
                             pad_to_max_length=True)(short)
    assert padded["values"].shape == (2, 32)
    # magnitudes become flux (Pogson, lcfm.bands) before standardization: brighter is larger
    mags = dict(short[0], value_kind="mag",
                value=np.linspace(15.0, 14.0, len(short[0]["time"]), dtype=np.float32))
    flux = 10 ** (-0.4 * mags["value"].astype(np.float64))
    np.testing.assert_allclose(evaluate([mags])["values"].numpy()[0],
                               (flux - flux.mean()) / flux.std(), atol=1e-5)
    with pytest.raises(DataError, match="TIC 0.*'ROTATOR'"):
        evaluate([dict(short[0], label="ROTATOR")])


SUBPROCESS = textwrap.dedent("""
    import json, sys
    import lcfm  # registers the lcfm model plugins with the Auto classes
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification
    path, batch_file, out_file = sys.argv[1:]
    batch = torch.load(batch_file)
    classifier = AutoModelForSequenceClassification.from_pretrained(path).eval()
    base = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        logits = classifier(**batch).logits
        pooled = base(batch["values"], batch["times"], batch["attention_mask"]).pooler_output
    json.dump({"logits": logits.tolist(), "pooled": pooled.tolist(),
               "classes": [type(classifier).__name__, type(base).__name__]}, open(out_file, "w"))
""")


def test_save_and_load_in_a_fresh_process(plugin, tmp_path):
    model = tiny_model(plugin).eval()
    batch = plugin.collator(model.config, task="classify", train=False,
                            label2id=LABEL2ID)(synthetic_rows(3))
    batch.pop("labels")
    model.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()
    torch.save(batch, tmp_path / "batch.pt")
    (tmp_path / "load.py").write_text(SUBPROCESS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(tmp_path / "load.py"), str(tmp_path / "model"),
                    str(tmp_path / "batch.pt"), str(tmp_path / "out.json")],
                   check=True, env=env, cwd=tmp_path, timeout=120)
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["classes"] == ["AstrafierForSequenceClassification", "AstrafierModel"]
    with torch.no_grad():
        logits = model(**batch).logits
        pooled = model.astrafier(**batch).pooler_output
    torch.testing.assert_close(torch.tensor(result["logits"]), logits, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(result["pooled"]), pooled, atol=1e-6, rtol=0)


def test_a_few_training_steps_lower_the_loss(plugin):
    model = tiny_model(plugin, dropout=0.0)
    rows = synthetic_rows(16, seed=3)
    collate = plugin.collator(model.config, task="classify", train=True, label2id=LABEL2ID)
    fixed = plugin.collator(model.config, task="classify", train=False,
                            label2id=LABEL2ID)(rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, betas=(0.9, 0.95),
                                  weight_decay=1e-5)

    def held_loss() -> float:
        model.eval()
        with torch.no_grad():
            loss = model(**fixed).loss.item()
        model.train()
        return loss

    before = held_loss()
    for _ in range(15):
        loss = model(**collate(rows)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_loss()
    assert after < 0.6 * before, (before, after)


def test_time_shift_augmentation_survives_collation():
    """The augmenter's offset (row["time_shift"]) is added after times restart at 0."""
    from lcfm.registry import get_model

    plugin = get_model("astrafier")
    config = plugin.make_config("tiny")
    collate = plugin.collator(config, task="classify", train=False, bands={"tess": 7865.0})
    row = {"object_id": "a", "time": np.arange(10.0) + 100, "value": np.ones(10),
           "error": np.ones(10), "band": np.array(["tess"] * 10), "value_kind": "flux",
           "label": None}
    plain = collate([row])["times"]
    shifted = collate([dict(row, time_shift=3.0)])["times"]
    assert plain[0, 0] == 0 and torch.allclose(shifted - plain, torch.full_like(plain, 3.0))


@pytest.mark.parametrize("removed", ["lstm", "attention", "cnn"])
def test_table6_ablation_builds_the_model_without_one_module(removed):
    """Table 6: each ablated model lacks exactly one module (the LSTM with its 3-layer CNN
    projection, the attention encoder, or the CNN module), keeps everything else, and
    still classifies."""
    from lcfm.exceptions import ConfigError
    from lcfm.registry import get_model

    plugin = get_model("astrafier")
    full = plugin.classification_class(plugin.make_config(None, **plugin.tiny))
    ablated = plugin.classification_class(plugin.make_config(
        None, **plugin.tiny, removed_module=removed))
    attribute = {"lstm": "bilstm", "attention": "transformer", "cnn": "cnn"}[removed]

    def names(model):
        return {n for n, _ in model.named_parameters()}

    missing = names(full) - names(ablated)
    assert missing and not names(ablated) - names(full)
    assert all(f".{attribute}." in n for n in missing)  # only that module's weights
    values = torch.randn(2, 20)
    batch = {"values": values, "times": torch.cumsum(torch.rand(2, 20), 1),
             "attention_mask": torch.ones(2, 20, dtype=torch.long)}
    assert ablated(**batch).logits.shape == full(**batch).logits.shape
    with pytest.raises(ConfigError, match="removed_module"):
        plugin.make_config(None, **plugin.tiny, removed_module="gru")
