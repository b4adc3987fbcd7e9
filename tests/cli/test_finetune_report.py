"""The lines `lcfm finetune` prints: the model's test macro F1 beside the classical
baseline's on the same objects, and a hint when the baseline is far ahead."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lcfm_cli.training_commands import HINT_GAP, report_finetune


def args(**kw):
    return SimpleNamespace(**{"output": "runs/clf", "folds": 1, "samples_per_class": 0,
                              "features": False, "features_file": None, **kw})


def summary(model, baseline):
    return {"steps": 200, "baseline_macro_f1": baseline,
            "test": {"accuracy": 0.5, "macro_f1": model, "ece": 0.1}}


def test_the_baseline_is_shown_beside_the_model(capsys):
    report_finetune(summary(0.912, 0.95), args())
    out = capsys.readouterr().out
    assert "macro F1 0.912 (classical baseline 0.950)" in out and "hint" not in out


@pytest.mark.parametrize("features", [False, True])
def test_a_model_far_below_the_baseline_gets_a_hint_unless_it_has_the_features(
        capsys, features):
    report_finetune(summary(0.45, 0.45 + HINT_GAP + 0.01), args(features=features))
    out = capsys.readouterr().out
    assert ("hint: the classical baseline beats the model by 0.21" in out) != features
    assert ("lcfm fold" in out) != features


def test_few_shot_folds_show_the_mean_baseline(capsys):
    report_finetune({"test_macro_f1_mean": 0.35, "test_macro_f1_std": 0.04,
                     "baseline_macro_f1_mean": 0.78, "runs": []},
                    args(folds=3, samples_per_class=20))
    out = capsys.readouterr().out
    assert "3 folds, 20 per class: test macro F1 0.350 +- 0.040 (classical baseline 0.780)" \
        in out
    assert "beats the model by 0.43" in out


def test_no_baseline_no_hint(capsys):
    report_finetune(summary(0.1, None), args())
    out = capsys.readouterr().out
    assert "classical baseline" not in out and "hint" not in out
