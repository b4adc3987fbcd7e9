"""ATCAT model plugin (paper 003_05ad419fc2efc3e7.txt, sect. 2.2-2.7)."""

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
from lcfm.flat import FlatRows
from lcfm_models.atcat import (
    AtcatCollator,
    AtcatConfig,
    AtcatForNextValuePrediction,
    AtcatForSequenceClassification,
    AtcatModel,
    AtcatPlugin,
    mixture_components_from_flux,
    squash_flux,
    unsquash_flux,
)
from lcfm_models.atcat.attention_atcat import build_attention_mask
from lcfm_models.atcat.scaling_atcat import (
    expected_negative_log_prob,
    gaussian_entropy,
    mixture_log_prob,
)
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
)

LSST = {"u": 3671.0, "g": 4827.0, "r": 6223.0, "i": 7546.0, "z": 8691.0, "Y": 9712.0}
LABELS = {"burst": 0, "periodic": 1}
PLUGIN = AtcatPlugin()


def light_curve(rng, label, n_points, object_id="obj", span=60.0):
    """A multi-band interleaved, time-sorted light curve in ELAsTiCC-like flux units."""
    time = np.sort(rng.uniform(0, span, n_points)) + 60000.0
    band = rng.choice(list(LSST), n_points)
    colour = np.array([LSST[b] / 6000.0 for b in band])
    t = time - time[0]
    if label == "burst":
        peak, width = rng.uniform(10, 40), rng.uniform(4, 12)
        signal = rng.uniform(100, 800) * colour * np.exp(-0.5 * ((t - peak) / width) ** 2)
    else:
        signal = rng.uniform(30, 120) * np.sin(2 * np.pi * t / rng.uniform(0.7, 4)) * colour
    error = rng.uniform(2, 8, n_points)
    value = signal + rng.normal(0, error)
    return {"object_id": object_id, "survey": "elasticc", "time": time,
            "value": value.astype(np.float32), "error": error.astype(np.float32),
            "band": band, "value_kind": "flux", "label": label, "meta": {}}


def rows(n, seed=0, points=(6, 30)):
    rng = np.random.default_rng(seed)
    return [light_curve(rng, ("burst", "periodic")[i % 2], int(rng.integers(*points)),
                        object_id=f"obj{i}") for i in range(n)]


def tiny(**overrides):
    return PLUGIN.make_config("tiny", num_labels=2, **overrides)


def collate(config, batch_rows, task="classify", train=False):
    return PLUGIN.collator(config, task=task, train=train, bands=LSST, label2id=LABELS)(
        batch_rows)


# ---------------------------------------------------------------- size and config
def test_paper_configuration_has_4_1_million_parameters():
    for head in ("pretraining", "classification"):
        count = PLUGIN.parameter_count("atcat", head=head)
        assert abs(count / 4.1e6 - 1) < 0.02, (head, count)
    # the exact numbers documented in the AtcatConfig docstring
    assert PLUGIN.parameter_count("atcat", head="base") == 4_099_584
    assert PLUGIN.parameter_count("atcat", head="classification") == 4_108_437
    assert PLUGIN.parameter_count("atcat", head="pretraining") == 4_149_632
    plain = PLUGIN.make_config("atcat", gated_feed_forward=False)
    with torch.device("meta"):
        assert sum(p.numel() for p in AtcatModel(plain).parameters()) == 2_916_864


def test_paper_numbers_in_default_config():
    config = PLUGIN.make_config("atcat")
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
            config.attention_dim, config.intermediate_size) == (384, 4, 4, 64, 768)
    assert config.local_attention_days == [1.0, 10.0]
    assert [config.layer_window(i) for i in range(4)] == [1.0, 10.0, None, None]
    assert config.value_scales == [1.0, 10.0, 1000.0, 100000.0]
    assert config.time_max == 1500.0 and config.num_outputs == 21  # 20 classes + unsure
    layer = AtcatModel(tiny()).layers[0].attention
    assert layer.q_proj.bias is None and layer.k_proj.bias is None and layer.v_proj.bias is None
    assert AtcatModel(tiny()).embeddings.flux.linear.bias.abs().max() == 0  # zero-initialised


@pytest.mark.parametrize("bad", [
    {"attention_dim": 30}, {"local_attention_days": [1.0, 10.0, 5.0, 2.0, 1.0]},
    {"local_attention_days": [-1.0]}, {"hidden_act": "tanh"}, {"hidden_size": 30},
    {"mixture_means": [0.0], "mixture_sigmas": [1.0]}, {"next_value_loss": "mse"},
    {"hidden_dropout": 1.5}, {"unsure_output": False, "unsure_calibration": True},
])
def test_invalid_config_raises_config_error(bad):
    with pytest.raises(ConfigError, match="AtcatConfig"):
        AtcatConfig(**bad)


def test_registered_with_auto_classes():
    config = tiny()
    assert isinstance(AutoConfig.for_model("lcfm_atcat"), AtcatConfig)
    assert type(AutoModel.from_config(config)) is AtcatModel
    assert type(AutoModelForSequenceClassification.from_config(config)) is \
        AtcatForSequenceClassification
    assert type(AutoModelForPreTraining.from_config(config)) is AtcatForNextValuePrediction
    assert lcfm.get_model("atcat").pretraining_class is AtcatForNextValuePrediction


# ---------------------------------------------------------------- collator
def test_collator_packs_pred_tokens_before_each_point():
    row = light_curve(np.random.default_rng(1), "burst", 3)
    batch = collate(tiny(), [row], task="pretrain")
    assert batch["token_type"].tolist() == [[1, 2, 1, 2, 1]]
    t = row["time"] - row["time"][0]
    np.testing.assert_allclose(batch["times"][0], t[[0, 1, 1, 2, 2]], atol=1e-5)
    flux = batch["flux"][0].numpy()
    np.testing.assert_allclose(flux, [row["value"][0], 0, row["value"][1], 0, row["value"][2]])
    np.testing.assert_allclose(batch["target_flux"][0],
                               [0, row["value"][1], 0, row["value"][2], 0])
    wavelengths = [LSST[b] for b in row["band"][[0, 1, 1, 2, 2]]]
    np.testing.assert_allclose(batch["wavelength"][0], wavelengths)
    np.testing.assert_allclose(batch["target_flux_err"][0, [1, 3]], row["error"][1:])
    assert batch["attention_mask"].tolist() == [[1] * 5]


def test_collator_truncation_and_labels():
    config = tiny(max_length=10)
    long_row = light_curve(np.random.default_rng(2), "periodic", 40)
    batch = collate(config, [long_row, rows(1)[0] | {"label": None}])
    t = long_row["time"]
    np.testing.assert_allclose(batch["times"][0], t[:10] - t[0], atol=1e-4)  # earliest kept
    assert batch["labels"].tolist() == [1, -100]
    assert "token_type" not in batch
    train = PLUGIN.collator(config, task="classify", train=True, bands=LSST, label2id=LABELS,
                            seed=3)
    assert isinstance(train, AtcatCollator)
    starts = set()
    for _ in range(8):
        flux = train([long_row])["flux"][0].numpy()
        start = int(np.flatnonzero(long_row["value"] == flux[0])[0])
        np.testing.assert_array_equal(flux, long_row["value"][start:start + 10])  # contiguous
        starts.add(start)
    assert len(starts) > 1
    assert train([long_row])["times"][0, 0] == 0


def test_flat_rows_carry_redshift_scale_and_metadata_in_extras():
    """A FlatRows batch carries per-row `wavelength_scale` (redshifting augmentation) and
    metadata vectors in `extras`; the tensors equal those of the row dicts."""
    config = tiny(metadata_dim=3)
    batch_rows = rows(3, seed=4)
    scales = [1.0, 1.08, 0.93]
    vectors = np.array([[0.1, np.nan, 2.0], [0.0, 1.0, np.inf], [3.0, 4.0, 5.0]], np.float32)
    dicts = [row | {"wavelength_scale": scale, "meta": {"metadata": vector}}
             for row, scale, vector in zip(batch_rows, scales, vectors, strict=True)]
    flat = FlatRows.from_rows(batch_rows)
    flat.extras = {"wavelength_scale": np.array(scales), "metadata": vectors}
    for task in ("pretrain", "classify"):
        expected, got = collate(config, dicts, task), collate(config, flat, task)
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), (task, key)
        first_band = LSST[batch_rows[1]["band"][0]]
        assert got["wavelength"][1, 0].item() == pytest.approx(first_band * 1.08, rel=1e-6)
        assert got["metadata"].tolist()[1] == [0.0, 1.0, 0.0]
    flat.extras["metadata"] = vectors[:, :2]
    with pytest.raises(DataError, match="metadata_dim=3"):
        collate(config, flat)


@pytest.mark.parametrize("task", ["classify", "pretrain"])
def test_time_shift_augmentation_survives_collation(task):
    """ATCAT sect. 2.1.2: all times + one offset ~ U[0, 10] days. The collator restarts
    times at 0, so the shift must be added after that: collated times move by exactly the
    drawn offset (per row), and rows the shift did not hit are unchanged."""
    from lcfm.augment import Augmenter

    config = tiny()
    batch_rows = rows(4, seed=5)
    plain = collate(config, batch_rows, task)
    augment = Augmenter(["shift"], seed=3, rates={"shift": 1.0})
    shifted_rows = [augment(r) for r in batch_rows]
    offsets = [r["time_shift"] for r in shifted_rows]
    assert all(0 < o < 10 for o in offsets) and len(set(offsets)) == len(offsets)
    for before, after, offset in zip(batch_rows, shifted_rows, offsets, strict=True):
        np.testing.assert_allclose(after["time"] - before["time"], offset)
    shifted = collate(config, shifted_rows, task)
    valid = plain["attention_mask"].bool()
    assert torch.equal(valid, shifted["attention_mask"].bool())
    delta = (shifted["times"] - plain["times"])
    for i, offset in enumerate(offsets):
        assert delta[i][valid[i]].numpy() == pytest.approx(offset, abs=1e-4), i
        assert shifted["times"][i, 0].item() == pytest.approx(offset, abs=1e-4)
    for key in plain:  # nothing but the times moves
        if key != "times":
            assert torch.equal(plain[key], shifted[key]), key
    # the augmentation off (or drawn not to fire): the rows and the batch are unchanged
    for augmenter in (Augmenter(["scale"], seed=3, rates={"scale": 0.0}),
                      Augmenter(["shift"], seed=3, rates={"shift": 0.0})):
        untouched = [augmenter(r) for r in batch_rows]
        assert all("time_shift" not in r for r in untouched)
        assert torch.equal(collate(config, untouched, task)["times"], plain["times"])
    # a FlatRows batch carries the offsets in `extras`, as it does `wavelength_scale`
    flat = FlatRows.from_rows(batch_rows)
    flat.extras = {"time_shift": np.array(offsets)}
    assert torch.equal(collate(config, flat, task)["times"], shifted["times"])


def test_collator_errors_name_the_problem():
    config = tiny()
    row = rows(1)[0]
    with pytest.raises(DataError, match="band 'q'"):
        collate(config, [row | {"band": np.array(["q"] * len(row["time"]))}])
    with pytest.raises(DataError, match="label 'nova'"):
        collate(config, [row | {"label": "nova"}])
    with pytest.raises(ConfigError, match="bands"):
        PLUGIN.collator(config, task="pretrain", train=False, bands=None)
    meta_config = tiny(metadata_dim=4)
    with pytest.raises(DataError, match="metadata_dim=4"):
        collate(meta_config, [row | {"meta": {"metadata": [0.1, 0.2]}}])
    batch = collate(meta_config, [row | {"meta": {"metadata": [0.1, np.nan, np.inf, 1.0]}}])
    assert batch["metadata"].tolist() == [[pytest.approx(0.1), 0.0, 0.0, 1.0]]


# ---------------------------------------------------------------- masks, causality, padding
def test_attention_mask_thresholds():
    times = torch.tensor([[0.0, 0.5, 1.5, 1.5, 3.0, 0.0]])
    kinds = torch.tensor([[1, 1, 1, 1, 1, 0]])
    local = build_attention_mask(times, kinds, 1.0, has_metadata=False)[0]
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 1, 1, 0, 0, 0],  # 1.5 - 0.0 > 1 day: not seen; 1.5 - 0.5 = 1 day: seen
        [0, 1, 1, 1, 0, 0],  # same time, earlier position: seen
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],  # padding sees only itself, nobody sees padding
    ], dtype=torch.bool)
    assert torch.equal(local, expected)
    ten_day = build_attention_mask(times, kinds, 10.0, has_metadata=False)[0]
    assert torch.equal(ten_day[:5, :5], torch.ones(5, 5, dtype=torch.bool).tril())
    with_meta = build_attention_mask(times, kinds, 1.0, has_metadata=True)[0]
    assert with_meta[0].tolist() == [True] + [False] * 6  # metadata sees only itself
    assert not with_meta[1:, 0].any()  # local layers: points do not see the metadata token
    global_meta = build_attention_mask(times, kinds, None, has_metadata=True)[0]
    assert global_meta[1:6, 0].all() and not global_meta[6, 0]


def test_layer_one_ignores_points_more_than_one_day_earlier():
    config = tiny()
    model = AtcatModel(config).eval()
    row = light_curve(np.random.default_rng(4), "burst", 6)
    row["time"] = 60000.0 + np.array([0.0, 0.5, 2.0, 2.6, 3.0, 15.0])
    changed = row | {"value": row["value"].copy()}
    changed["value"][0] += 500.0
    with torch.no_grad():
        a, b = (model(**_batch_without_labels(collate(config, [r])),
                      output_hidden_states=True).hidden_states for r in (row, changed))
    diff = [(x - y).abs().amax(-1)[0] for x, y in zip(a, b, strict=False)]  # per layer, per point
    assert diff[1][1] > 1e-4 and diff[1][2:].max() < 1e-6  # layer 1: 1-day window
    assert diff[2][2] > 1e-4 and diff[2][5] < 1e-6  # layer 2: 10-day window (15 - 3 > 10)
    assert diff[3][5] > 1e-4  # layer 3 is global


def _batch_without_labels(batch):
    return {k: v for k, v in batch.items() if k != "labels"}


def test_causal_outputs_do_not_depend_on_future_points():
    config = tiny(metadata_dim=3)
    torch.manual_seed(0)
    classifier = AtcatForSequenceClassification(config).eval()
    generator = AtcatForNextValuePrediction(config).eval()
    rng = np.random.default_rng(5)
    row = light_curve(rng, "burst", 12) | {"meta": {"metadata": [0.3, -1.0, 2.0]}}
    future = row | {k: row[k].copy() for k in ("time", "value", "error", "band")}
    k = 6
    future["value"][k + 1:] = rng.normal(0, 300, 12 - k - 1)
    future["error"][k + 1:] *= 3
    future["band"][k + 1:] = "u"
    future["time"][k + 1:] = np.sort(rng.uniform(future["time"][k], future["time"][k] + 3, 5))
    with torch.no_grad():
        a, b = (classifier(**_batch_without_labels(collate(config, [r])),
                           return_step_logits=True) for r in (row, future))
        assert torch.allclose(a.step_logits[0, :k + 1], b.step_logits[0, :k + 1], atol=1e-5)
        assert not torch.allclose(a.step_logits[0, k + 1:], b.step_logits[0, k + 1:], atol=1e-3)
        # last-point logits are the step logits at the last valid point
        assert torch.allclose(a.logits[0], a.step_logits[0, -1], atol=1e-6)
        pa, pb = (collate(config, [r], task="pretrain") for r in (row, future))
        ga, gb = generator(**pa), generator(**pb)
        # token 2k is point k; token 2k+1 is [PRED] of point k+1 (its time/band/err changed)
        assert torch.allclose(ga.mixture_logits[0, :2 * k + 1], gb.mixture_logits[0, :2 * k + 1],
                              atol=1e-5)
        # the flux a [PRED] token stands for must not leak into the inputs
        leaked = pa | {"flux": torch.where(pa["token_type"] == 2, 1e4, pa["flux"])}
        assert torch.allclose(generator(**leaked).mixture_logits, ga.mixture_logits, atol=1e-6)


def test_padding_is_invisible():
    config = tiny(metadata_dim=2)
    model = AtcatForSequenceClassification(config).eval()
    rng = np.random.default_rng(6)
    short = light_curve(rng, "burst", 5) | {"meta": {"metadata": [1.0, 0.0]}}
    long = light_curve(rng, "periodic", 14) | {"meta": {"metadata": [0.0, 1.0]}}
    n = len(short["time"])
    with torch.no_grad():
        alone = model(**_batch_without_labels(collate(config, [short])), return_step_logits=True)
        batch = _batch_without_labels(collate(config, [short, long]))
        assert batch["attention_mask"][0].sum() == n < batch["flux"].shape[1]
        together = model(**batch, return_step_logits=True)
        pad = batch["attention_mask"] == 0
        noisy = batch | {key: torch.where(pad, 1e3, batch[key])
                         for key in ("times", "flux", "flux_err", "wavelength")}
        noisy_out = model(**noisy, return_step_logits=True)
    assert torch.allclose(alone.logits[0], together.logits[0], atol=1e-5)
    assert torch.allclose(alone.step_logits[0], together.step_logits[0, :n], atol=1e-5)
    assert torch.allclose(noisy_out.step_logits[0, :n], together.step_logits[0, :n], atol=1e-6)


# ---------------------------------------------------------------- mixture of Gaussians
def test_flux_squashing_matches_paper():
    x = torch.tensor([-2_568_897.0, -50.0, -3.0, 0.0, 7.0, 10.0, 11.0, 2_568_897.0],
                     dtype=torch.float64)
    y = squash_flux(x)
    assert y[-1].item() == pytest.approx(6.0, abs=0.01)  # "from 2,568,897 to 6" (Fig. 4)
    assert torch.all(torch.diff(y) > 0)
    torch.testing.assert_close(unsquash_flux(y), x, rtol=1e-9, atol=1e-9)
    grad = torch.autograd.functional.jacobian(lambda v: squash_flux(v).sum(),
                                              torch.tensor([9.999, 10.001], dtype=torch.float64))
    assert grad[0].item() == pytest.approx(grad[1].item(), rel=1e-3)  # slopes glued at 10


def test_mixture_components_from_quantiles_and_normalised_density():
    flux = np.random.default_rng(7).standard_t(2, 20_000) * 80
    means, sigmas = mixture_components_from_flux(flux, 16)
    squashed = squash_flux(torch.from_numpy(flux)).numpy()
    np.testing.assert_allclose(means, np.quantile(squashed, np.linspace(1 / 32, 1 - 1 / 32, 16)))
    means17 = np.quantile(squashed, np.linspace(1 / 34, 1 - 1 / 34, 17))
    np.testing.assert_allclose(sigmas, 0.7 * np.diff(means17))
    config = tiny(num_mixture_components=16)
    config.set_mixture_components(means, sigmas)
    model = AtcatForNextValuePrediction(config)
    assert model.head.means.tolist() == pytest.approx(means)
    logits = torch.randn(3, 16) * 3
    weights = logits.log_softmax(-1).exp()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    grid = torch.linspace(-10, 10, 40_001, dtype=torch.float64)
    density = mixture_log_prob(grid.expand(3, -1), logits.double().log_softmax(-1),
                               model.head.means.double(), model.head.sigmas.double()).exp()
    torch.testing.assert_close(torch.trapezoid(density, grid), torch.ones(3, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    # forward KL(P'||Q) = E_P'[-log Q] - H(P') >= 0; with zero width it is the plain NLL
    target, width = torch.tensor([0.1, -0.3, 0.5]), torch.tensor([0.05, 0.2, 0.0])
    expected = expected_negative_log_prob(target, width, logits.log_softmax(-1),
                                          model.head.means, model.head.sigmas, 16)
    assert torch.all(expected[:2] - gaussian_entropy(width[:2]) > 0)
    nll = -model.log_prob(logits[2], unsquash_flux(target[2]))
    assert expected[2].item() == pytest.approx(nll.item(), rel=1e-5)


# ---------------------------------------------------------------- training and saving
def test_forward_backward_tiny_with_all_losses():
    config = tiny(metadata_dim=3, early_classification=True, unsure_calibration=True)
    data = [r | {"meta": {"metadata": [0.1, 0.2, 0.3]}} for r in rows(4, seed=8)]
    model = AtcatForSequenceClassification(config)
    out = model(**collate(config, data))
    assert out.logits.shape == (4, 2) and out.unsure_logits.shape == (4,)
    assert out.step_logits.shape[:2] == collate(config, data)["flux"].shape
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None and "pred_token" not in n]
    assert torch.isfinite(out.loss) and not missing
    generator = AtcatForNextValuePrediction(config)
    loss = generator(**collate(config, data, task="pretrain")).loss
    loss.backward()
    assert torch.isfinite(loss) and generator.atcat.embeddings.pred_token.grad.abs().sum() > 0


def test_pretraining_steps_lower_the_loss():
    torch.manual_seed(0)
    data = rows(48, seed=9)
    config = PLUGIN.fit_config_to_rows(tiny(), data)
    model = AtcatForNextValuePrediction(config)
    train = PLUGIN.collator(config, task="pretrain", train=True, bands=LSST, seed=1)
    evaluation = collate(config, data[:16], task="pretrain")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = model(**evaluation).loss.item()
    for step in range(40):
        loss = model(**train([data[(step * 8 + j) % 48] for j in range(8)])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model(**evaluation).loss.item()
    assert after < before - 0.3, (before, after)


LOAD_SCRIPT = textwrap.dedent("""
    import sys, torch
    import lcfm
    from transformers import AutoModel, AutoModelForPreTraining, AutoModelForSequenceClassification
    folder = sys.argv[1]
    saved = torch.load(folder + "/reference.pt")
    generator = AutoModelForPreTraining.from_pretrained(folder + "/pretrain").eval()
    base = AutoModel.from_pretrained(folder + "/pretrain").eval()
    classifier = AutoModelForSequenceClassification.from_pretrained(folder + "/classify").eval()
    assert type(generator).__name__ == "AtcatForNextValuePrediction", type(generator)
    assert type(base).__name__ == "AtcatModel", type(base)
    assert generator.config.mixture_means == saved["means"]
    assert torch.equal(generator.head.means, torch.tensor(saved["means"]))
    with torch.no_grad():
        out = {"mixture": generator(**saved["pretrain"]).mixture_logits,
               "hidden": base(**saved["inputs"]).last_hidden_state,
               "logits": classifier(**saved["classify"]).logits}
    for key, value in out.items():
        torch.testing.assert_close(value, saved[key], atol=1e-6, rtol=0)
    print("loaded-ok")
""")


def test_save_pretrained_then_auto_load_in_fresh_process(tmp_path):
    data = [r | {"meta": {"metadata": [0.5, -0.5]}} for r in rows(3, seed=10)]
    config = PLUGIN.fit_config_to_rows(tiny(metadata_dim=2), data)
    torch.manual_seed(1)
    generator = AtcatForNextValuePrediction(config).eval()
    classifier = AtcatForSequenceClassification(config).eval()
    generator.save_pretrained(tmp_path / "pretrain")
    classifier.save_pretrained(tmp_path / "classify")
    assert (tmp_path / "pretrain" / "model.safetensors").exists()
    reloaded = AtcatConfig.from_pretrained(tmp_path / "pretrain")
    assert reloaded.mixture_means == config.mixture_means
    assert reloaded.mixture_sigmas == config.mixture_sigmas
    pretrain = collate(config, data, task="pretrain")
    classify = _batch_without_labels(collate(config, data))
    inputs = {k: v for k, v in pretrain.items() if not k.startswith("target_")}
    with torch.no_grad():
        torch.save({"pretrain": pretrain, "inputs": inputs, "classify": classify,
                    "means": config.mixture_means,
                    "mixture": generator(**pretrain).mixture_logits,
                    "hidden": generator.atcat(**inputs).last_hidden_state,
                    "logits": classifier(**classify).logits}, tmp_path / "reference.pt")
    # fine-tuning starts from the pretraining checkpoint: same encoder, new classifier
    finetune = AtcatForSequenceClassification.from_pretrained(tmp_path / "pretrain").eval()
    with torch.no_grad():
        torch.testing.assert_close(finetune.atcat(**inputs).last_hidden_state,
                                   generator.atcat(**inputs).last_hidden_state)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded-ok" in done.stdout, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr[-3000:]


def test_metadata_l1_penalty_enters_the_loss():
    data = [r | {"meta": {"metadata": [0.5, -0.5]}} for r in rows(2, seed=11)]
    torch.manual_seed(2)
    with_l1 = AtcatForSequenceClassification(tiny(metadata_dim=2, metadata_l1=1e-2)).eval()
    without = AtcatForSequenceClassification(tiny(metadata_dim=2, metadata_l1=0.0)).eval()
    without.load_state_dict(with_l1.state_dict())
    batch = collate(with_l1.config, data)
    penalty = with_l1.atcat.embeddings.metadata.l1_penalty().item() * 1e-2
    difference = with_l1(**batch).loss.item() - without(**batch).loss.item()
    assert difference == pytest.approx(penalty, rel=1e-4) and math.isfinite(difference)


def test_half_precision_keeps_float32_input_encoding():
    config = tiny()
    torch.manual_seed(3)
    model = AtcatModel(config).eval()
    half = AtcatModel(config).eval()
    half.load_state_dict(model.state_dict())
    half.to(torch.bfloat16)
    batch = _batch_without_labels(collate(config, rows(2, seed=12)))
    times = batch["times"] + 400.0  # late times: bfloat16 phases would be off by radians
    with torch.no_grad():
        exact = model.embeddings.time(times, batch["wavelength"])
        rounded = half.embeddings.time(times, batch["wavelength"])
        out = half(**batch)
    assert rounded.dtype == torch.bfloat16 and torch.isfinite(out.last_hidden_state.float()).all()
    assert (rounded.float() - exact).abs().max() < 0.05 * exact.abs().max()
