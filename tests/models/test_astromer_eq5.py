"""Astromer 2 eq. 5 weights as the published code defines them (issue 11, item 5):
min-max normalised 1/e per window plus 1e-3."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lcfm_models.astromer import AstromerConfig, reconstruction_loss, uncertainty_weights

REFERENCE_ERRORS = [0.01, 0.02, 0.05, 0.5]
#: the issue's rounded reference values, and the exact ones: (1/e - 2) / (100 - 2) + 1e-3
REFERENCE_WEIGHTS = [1.0, 0.49, 0.19, 0.001]
EXACT_WEIGHTS = [1.001, 48 / 98 + 1e-3, 18 / 98 + 1e-3, 0.001]


def weights(errors, valid=None, floor=1e-3):
    e = torch.tensor([errors], dtype=torch.float32)
    v = torch.ones_like(e, dtype=torch.bool) if valid is None else torch.tensor([valid])
    return uncertainty_weights(e, v, floor)[0].numpy()


def test_reference_values():
    w = weights(REFERENCE_ERRORS)
    np.testing.assert_allclose(w, EXACT_WEIGHTS, rtol=1e-6)
    np.testing.assert_allclose(w, REFERENCE_WEIGHTS, atol=0.01)
    # the default floor of the configuration is the published code's 1e-3
    assert AstromerConfig().uncertainty_floor == 1e-3


def test_weights_do_not_depend_on_error_scale_padding_or_order():
    w = weights(REFERENCE_ERRORS)
    # 1/e min-max normalised: multiplying every error by 7 changes nothing
    np.testing.assert_allclose(weights([7 * e for e in REFERENCE_ERRORS]), w, rtol=1e-5)
    # padding (valid False, error 0 as collators pad) neither changes the valid weights
    # nor takes part in the min-max
    padded = weights(REFERENCE_ERRORS + [0.0, 0.0], [True] * 4 + [False] * 2)
    np.testing.assert_allclose(padded[:4], w, rtol=1e-6)
    np.testing.assert_allclose(weights(REFERENCE_ERRORS[::-1]), w[::-1], rtol=1e-6)
    # bounded: no weight above 1 + floor however small an uncertainty is (plain 1/e of
    # uncertainties scaled by their largest value reached 1000)
    tiny = weights([1e-5, 0.3, 0.9])
    assert tiny.max() == pytest.approx(1.001) and tiny.min() == pytest.approx(0.001)


def test_unusable_uncertainties_and_constant_windows():
    w = weights([0.01, 0.0, float("nan"), -1.0, 0.5])
    # unusable ones weigh the floor and do not pull the minimum down
    np.testing.assert_allclose(w, [1.001, 0.001, 0.001, 0.001, 0.001], rtol=1e-6)
    np.testing.assert_allclose(weights([0.1, 0.1, 0.1]), [0.001] * 3)  # as the reference


def test_loss_uses_the_weights():
    prediction = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    probe = torch.tensor([[True, True, True, False]])
    errors = torch.tensor([REFERENCE_ERRORS])
    loss = reconstruction_loss(prediction, target, probe, errors, torch.ones_like(probe))
    expected = math.sqrt(sum(EXACT_WEIGHTS[:3]) / 3)  # squared residuals are all 1
    assert loss.item() == pytest.approx(expected, rel=1e-6)
