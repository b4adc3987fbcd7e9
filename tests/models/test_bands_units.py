"""Bands and units done right for every model (issue 12, "Must include" 1 and 2; lcfm.bands,
docs/multiband.md): Pogson conversion and its error propagation against hand values,
per-band normalisation that removes colour offsets, a 3-band light curve through every
model's collator and forward, band_combine and extra features into the head, and single-band
data read exactly as before."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lcfm.bands import (
    ZERO_POINT,
    convert,
    flux_to_mag,
    mag_to_flux,
    normalise,
    split_bands,
)
from lcfm.exceptions import DataError
from lcfm.flat import FlatRows
from lcfm.registry import get_model, get_survey, model_names

BANDS = get_survey("elasticc").bands
LABELS = {"a": 0, "b": 1}
#: the unit each model reads, from its paper (Astromer 2 sect. 2.1, AstroCo sect. 3.1,
#: ASTRAFier sect. 4.3, ATCAT sect. 2.5.1)
EXPECTED_KIND = {"astromer": "mag", "astroco": "mag", "astrafier": "flux", "atcat": "flux"}
#: base magnitude and amplitude per band: colour offsets (2 mag) far above the variability
BASE = {"g": (15.0, 0.10), "r": (17.0, 0.08), "i": (16.0, 0.05)}


def three_band_row(kind: str, index: int = 0, n: int = 60, seed: int = 0) -> dict:
    """A periodic star seen in g, r, i (interleaved, time-sorted) in magnitudes or in
    FLUXCAL flux (zero point 27.5)."""
    rng = np.random.default_rng(seed + index)
    time = 58000.0 + np.sort(rng.uniform(0, 200, n))
    band = np.array(list(BASE))[np.arange(n) % 3]
    base = np.array([BASE[b][0] for b in band])
    amp = np.array([BASE[b][1] for b in band])
    mag = base + amp * np.sin(2 * np.pi * time / (3.0 + index))
    error = np.full(n, 0.02)
    if kind == "flux":
        value, error = mag_to_flux(mag, error)
    else:
        value = mag
    return {"object_id": f"star{index}", "survey": "elasticc", "time": time,
            "value": value.astype(np.float32), "error": error.astype(np.float32),
            "band": band, "value_kind": kind, "label": "ab"[index % 2], "meta": {}}


def single_band_rows(n_rows: int = 3) -> list[dict]:
    rows = []
    for i in range(n_rows):
        row = three_band_row("mag", i, n=40)
        rows.append(dict(row, band=np.array(["r"] * 40)))
    return rows


def tiny(name: str, **overrides):
    plugin = get_model(name)
    config = plugin.make_config("tiny", **overrides)
    config.num_labels = 2
    return plugin, config


def collate(name, config, rows, task="classify", train=False):
    plugin = get_model(name)
    return plugin.collator(config, task=task, train=train, bands=BANDS,
                           label2id=LABELS if task == "classify" else None, seed=0)(rows)


VALUE_KEY = {"astromer": "input_values", "astroco": "values", "astrafier": "values",
             "atcat": "flux"}


def band_means(batch: dict, key: str) -> list[float]:
    """Mean collated value of every (light curve, band): per sequence when each band is its
    own sequence (`band_group`), else per distinct wavelength within a row."""
    values, mask = batch[key].double(), batch["attention_mask"].bool()
    if "band_group" in batch:
        return [float(values[i][mask[i]].mean()) for i in range(values.shape[0])]
    wavelength = batch.get("wavelengths", batch.get("wavelength"))
    means = []
    for i in range(values.shape[0]):
        for w in wavelength[i][mask[i]].unique():
            means.append(float(values[i][mask[i] & (wavelength[i] == w)].mean()))
    return means


# ---------------------------------------------------------------- conversions
def test_pogson_conversion_and_error_propagation_against_hand_values():
    flux, sigma = mag_to_flux([20.0, 27.5], [0.1, 0.05])
    # 10^(-0.4 (20 - 27.5)) = 10^3; sigma_f = 0.4 ln10 * 1000 * 0.1 = 92.1034
    np.testing.assert_allclose(flux, [1000.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(sigma, [92.10340371976183, 0.4 * math.log(10) * 0.05],
                               rtol=1e-12)
    mag, sigma_m = flux_to_mag([1000.0, 10.0], [92.10340371976183, 1.0], zero_point=25.0)
    np.testing.assert_allclose(mag, [17.5, 22.5], rtol=1e-12)
    np.testing.assert_allclose(sigma_m, [0.1, 2.5 / math.log(10) / 10.0], rtol=1e-12)
    bad, bad_error = flux_to_mag([-3.0, 0.0], [1.0, 1.0])
    assert np.isnan(bad).all() and np.isnan(bad_error).all()


def test_round_trip_mag_to_flux_to_mag():
    rng = np.random.default_rng(1)
    mag, error = rng.uniform(10, 24, 500), rng.uniform(0.001, 0.3, 500)
    for zp in (ZERO_POINT, 0.0, 31.4):
        back, back_error = flux_to_mag(*mag_to_flux(mag, error, zp), zp)
        np.testing.assert_allclose(back, mag, rtol=0, atol=1e-10)
        np.testing.assert_allclose(back_error, error, rtol=1e-10)
    flat = FlatRows.from_rows([three_band_row("mag")])
    there = convert(flat, "flux")
    assert there.value_kind == ["flux"]
    back = convert(there, "mag")
    np.testing.assert_allclose(back.value, flat.value, atol=2e-5)
    np.testing.assert_allclose(back.error, flat.error, rtol=1e-4)
    assert convert(flat, "mag") is flat  # already in the unit: untouched


def test_bands_without_an_absolute_level_are_standardised_not_logged():
    row = three_band_row("flux")
    for band in ("g", "r"):  # difference fluxes in g and r; i keeps its absolute level
        pick = row["band"] == band
        row["value"][pick] -= np.median(row["value"][pick])
    out = convert(FlatRows.from_rows([row]), "mag")
    assert np.isfinite(out.value).all()
    for band in ("g", "r"):
        pick = row["band"] == band
        assert abs(out.value[pick].mean()) < 1e-5 and abs(out.value[pick].std() - 1) < 1e-4
    pick = row["band"] == "i"
    np.testing.assert_allclose(out.value[pick], flux_to_mag(row["value"][pick], 1.0)[0],
                               atol=1e-4)


def test_normalise_never_uses_one_mean_across_bands():
    values = np.array([15.0, 15.2, 17.0, 17.2])
    group = np.array([0, 0, 1, 1])
    centred, _ = normalise(values, np.ones(4), group, "center")
    np.testing.assert_allclose(centred, [-0.1, 0.1, -0.1, 0.1], atol=1e-12)
    scaled, errors = normalise(values, np.full(4, 0.05), group, "standardize")
    np.testing.assert_allclose(scaled, [-1, 1, -1, 1], atol=1e-12)
    np.testing.assert_allclose(errors, np.full(4, 0.5), atol=1e-12)


def test_split_bands_orders_by_band_name_whatever_the_codes():
    rows = [three_band_row("mag", 0, n=9), three_band_row("mag", 1, n=4)]
    flat = FlatRows.from_rows(rows)
    other = FlatRows.from_rows(rows, band_names=["r", "Y", "i"])
    for batch in (flat, other):
        sub, parent, code = split_bands(batch)
        assert parent.tolist() == [0, 0, 0, 1, 1, 1]
        assert [batch.band_names[c] for c in code] == ["g", "i", "r"] * 2
        np.testing.assert_array_equal(sub.lengths, [3, 3, 3, 2, 1, 1])
        assert (np.diff(sub.time[:3]) > 0).all()


# ---------------------------------------------------------------- every model x unit
@pytest.mark.parametrize("kind", ["mag", "flux"])
@pytest.mark.parametrize("name", model_names())
def test_colour_offsets_vanish_per_band(name, kind):
    """Two-magnitude colour offsets between bands against 0.1-mag variability: every
    (light curve, band) of the collated batch has zero mean. ATCAT reads stored fluxes as
    the paper's difference fluxes (no offset removed) and centres converted magnitudes."""
    plugin, config = tiny(name)
    reader = plugin.collator(config, task="classify", train=False, bands=BANDS)
    assert reader.value_kind == EXPECTED_KIND.get(name, reader.value_kind)
    rows = [three_band_row(kind, i) for i in range(2)]
    batch = collate(name, config, rows)
    key = VALUE_KEY[name]
    if name == "atcat" and kind == "flux":
        mask = batch["attention_mask"].bool()
        np.testing.assert_allclose(batch[key][0][mask[0]].numpy(), rows[0]["value"][:64])
        return
    means = band_means(batch, key)
    assert len(means) == 6  # 2 light curves x 3 bands
    scale = float(batch[key][batch["attention_mask"].bool()].double().abs().max())
    assert max(abs(m) for m in means) < 1e-5 * max(scale, 1.0)


@pytest.mark.parametrize("kind", ["mag", "flux"])
@pytest.mark.parametrize("name", model_names())
def test_three_band_rows_through_every_collator_and_forward(name, kind):
    plugin, config = tiny(name)
    rows = [three_band_row(kind, i) for i in range(3)]
    torch.manual_seed(0)
    heads = [("classify", plugin.classification_class)]
    if plugin.pretraining_class is not None:
        heads.append(("pretrain", plugin.pretraining_class))
    for task, cls in heads:
        config = plugin.prepare_config(config, FlatRows.from_rows(rows))
        batch = collate(name, config, rows, task=task, train=True)
        if "band_group" in batch:  # single-band model: one sequence per band
            assert batch["band_group"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        out = cls(config)(**batch)
        if task == "classify":
            assert out.logits.shape == (3, 2) and torch.isfinite(out.logits).all()
        assert out.loss is not None and torch.isfinite(out.loss)


def test_astromer_reads_flux_as_magnitudes_per_band():
    plugin, config = tiny("astromer")
    row = three_band_row("flux")
    batch = collate("astromer", config, [row])
    mags, errors = flux_to_mag(row["value"], row["error"])
    for sequence, band in enumerate(sorted(BASE)):  # sequences in band-name order
        pick = row["band"] == band
        expected = mags[pick] - mags[pick].mean()
        n = int(pick.sum())
        np.testing.assert_allclose(batch["input_values"][sequence, :n].numpy(), expected,
                                   atol=2e-4)
        np.testing.assert_allclose(batch["errors"][sequence, :n].numpy(), errors[pick],
                                   rtol=1e-4)


def test_atcat_reads_magnitudes_as_centred_fluxcal_flux_with_propagated_errors():
    _, config = tiny("atcat")
    row = three_band_row("mag")
    batch = collate("atcat", config, [row])
    flux, sigma = mag_to_flux(row["value"].astype(np.float64), row["error"])
    n = int(batch["attention_mask"][0].sum())
    expected = flux.copy()
    for band in BASE:
        pick = row["band"] == band
        expected[pick] -= flux[pick].mean()
    np.testing.assert_allclose(batch["flux"][0, :n].numpy(), expected[:n], rtol=1e-3,
                               atol=0.5)
    np.testing.assert_allclose(batch["flux_err"][0, :n].numpy(), sigma[:n], rtol=1e-4)


# ---------------------------------------------------------------- band_combine, features
SINGLE_BAND_MODELS = ["astromer", "astrafier"]


def _without_bands(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("band_group", "band_slot")}


@pytest.mark.parametrize("name", SINGLE_BAND_MODELS + ["astroco"])
def test_a_single_band_survey_reads_exactly_as_before(name):
    """One band per light curve: one sequence per light curve, and the band combination
    (mean of one, or concat of one band) is the identity."""
    plugin, config = tiny(name, band_combine="mean")
    rows = single_band_rows()
    batch = collate(name, config, rows)
    assert batch["attention_mask"].shape[0] == len(rows)
    model = plugin.classification_class(config).eval()
    with torch.no_grad():
        combined = model(**batch).logits
        alone = model(**_without_bands(batch)).logits
    assert torch.equal(combined, alone)
    if name == "astromer":  # sect. 2.1: zero-mean magnitudes of the window, as before
        window = rows[0]["value"][:config.window_size].astype(np.float64)
        n = window.size
        np.testing.assert_allclose(batch["input_values"][0, :n].numpy(),
                                   window - window.mean(), atol=1e-5)
    _, concat = tiny(name, band_combine="concat", band_names=["r"])
    model = plugin.classification_class(concat).eval()
    batch = collate(name, concat, rows)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, model(**_without_bands(batch)).logits)


@pytest.mark.parametrize("name", SINGLE_BAND_MODELS + ["astroco"])
def test_band_combine_mean_and_concat(name):
    plugin, config = tiny(name, band_combine="mean")
    rows = [three_band_row("mag", i) for i in range(2)]
    base = plugin.base_model_class(config).eval()
    batch = collate(name, config, rows)
    with torch.no_grad():
        pooled = base(**batch).pooler_output
        per_band = base(**_without_bands(batch)).pooler_output  # one vector per sequence
    assert pooled.shape == (2, per_band.shape[1])
    torch.testing.assert_close(pooled[0], per_band[:3].mean(0))
    torch.testing.assert_close(pooled[1], per_band[3:].mean(0))

    _, concat = tiny(name, band_combine="concat", band_names=["g", "i", "r", "z"])
    base = plugin.base_model_class(concat).eval()
    batch = collate(name, concat, rows)
    hidden = per_band.shape[1]
    with torch.no_grad():
        pooled = base(**batch).pooler_output
    assert pooled.shape == (2, 4 * hidden)
    assert torch.equal(pooled[:, 3 * hidden:], torch.zeros(2, hidden))  # no z observations
    logits = plugin.classification_class(concat)(**batch).logits
    assert logits.shape == (2, 2)
    _, unknown = tiny(name, band_combine="concat", band_names=["g", "r"])
    with pytest.raises(DataError, match="band 'i' is not one of"):
        collate(name, unknown, rows)
    # a model built from data records its bands, so a checkpoint pretrained with "mean" can
    # be fine-tuned with "concat"
    fitted = plugin.prepare_config(tiny(name, band_combine="mean")[1], FlatRows.from_rows(rows))
    assert fitted.band_names == ["g", "i", "r"]


@pytest.mark.parametrize("name", [n for n in model_names() if n != "atcat"])
def test_extra_features_enter_the_head(name):
    plugin, config = tiny(name, num_extra_features=3)
    rows = [three_band_row("mag", i) for i in range(2)]
    flat = FlatRows.from_rows(rows)
    flat.extras["extra_features"] = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, np.nan]],
                                             np.float32)
    batch = collate(name, config, flat)
    assert batch["extra_features"].shape == (2, 3)
    assert torch.isfinite(batch["extra_features"]).all()
    torch.manual_seed(0)
    model = plugin.classification_class(config).eval()
    with torch.no_grad():
        first = model(**batch).logits
        moved = model(**dict(batch, extra_features=batch["extra_features"] + 1.0)).logits
    assert first.shape == (2, 2) and not torch.allclose(first, moved)
    with pytest.raises(DataError, match="num_extra_features=3"):
        collate(name, config, rows)  # the model reads features the batch lacks


def test_atcat_fits_its_mixture_on_the_flux_its_collator_feeds():
    """Sect. 2.5.1's fixed components come from the training flux as the model reads it:
    magnitudes as centred FLUXCAL flux (both signs), not raw magnitudes (all ~15-17)."""
    plugin, config = tiny("atcat")
    rows = [three_band_row("mag", i) for i in range(4)]
    config = plugin.prepare_config(config, FlatRows.from_rows(rows))
    means = np.asarray(config.mixture_means)
    assert means.min() < 0 < means.max()
    flux_config = plugin.prepare_config(tiny("atcat")[1],
                                        FlatRows.from_rows([three_band_row("flux", 0)]))
    assert min(flux_config.mixture_means) > 0  # stored flux: read as it is
