"""Training defaults that work on a few hundred labels (issue 12, item 4): early stopping
counted in steps with a minimum number of steps, a warm-up of at least a fixed number of
steps, class balancing by default on imbalanced data, and a summary saying when and why a
run stopped and which step was kept."""

import json

import numpy as np
import pytest
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.engine.training import Selection, balanced_batches
from lcfm.recipes import MIN_WARMUP_STEPS, apply_overrides, get_recipe, lr_factor
from lcfm.registry import get_model
from lcfm.shards import ShardWriter


def test_early_stopping_counts_steps_after_min_steps():
    selection = Selection("macro_f1", patience=30, min_steps=50, max_steps=500)
    state = {}
    # before min_steps nothing is kept, however good
    assert not selection.update(state, 20, 0.99) and "best_step" not in state
    assert not selection.should_stop(state, 40)
    assert selection.update(state, 60, 0.5) and state["best_step"] == 60
    assert selection.update(state, 70, 0.5)  # a tie keeps the later model ...
    assert state["best_step"] == 70 and state["improved_step"] == 60  # ... not the patience
    assert not selection.update(state, 80, 0.4) and state["best_step"] == 70
    assert not selection.should_stop(state, 80)  # 20 steps since the improvement at 60
    assert selection.should_stop(state, 90)  # 30 steps
    stopped = selection.stopped(state, 90, early=True)
    assert stopped["reason"] == "early_stopping" and stopped["kept_step"] == 70
    assert stopped["step"] == 90 and "after step 60" in stopped["detail"]
    # a run shorter than twice min_steps selects among its second half: a 200-step run
    # keeps its best evaluation after step 100, not necessarily its last
    short = Selection("loss", patience=None, min_steps=200, max_steps=40)
    state = {}
    assert not short.update(state, 10, 0.1)  # before the middle of the run
    assert short.update(state, 20, 0.9) and short.update(state, 30, 0.5)
    assert not short.update(state, 40, 0.7) and state["best_step"] == 30
    assert not short.should_stop(state, 40)  # no patience: no early stopping
    stopped = short.stopped(state, 40, early=False)
    assert stopped["reason"] == "max_steps" and stopped["kept_step"] == 30


def test_warmup_has_a_minimum_and_fits_the_run():
    recipe = get_recipe("lcfm-default")
    assert recipe.warmup(1000) == MIN_WARMUP_STEPS
    assert recipe.warmup(30) == 15  # never more than half the run
    one_step, _ = apply_overrides(recipe, {"warmup_steps": 1})
    assert one_step.warmup(1000) == MIN_WARMUP_STEPS  # issue 12: not int(0.05 x steps)
    assert lr_factor(one_step, 1, 1000) == pytest.approx(1 / MIN_WARMUP_STEPS)
    atcat = get_recipe("atcat-finetune")
    assert atcat.warmup(40000) == 1000 and atcat.warmup(100) == 50


def test_class_balancing_is_on_for_imbalanced_labels_only():
    assert balanced_batches("auto", [30, 8]) and not balanced_batches("auto", [10, 9])
    assert balanced_batches(True, [10, 10]) and not balanced_batches(False, [30, 1])


@pytest.fixture(scope="module")
def imbalanced_dir(tmp_path_factory):
    """32 constant light curves ("A") and 8 with a large sinusoid ("B"), one band."""
    path = tmp_path_factory.mktemp("imbalanced")
    rng = np.random.default_rng(0)
    with ShardWriter(path) as writer:
        for i in range(40):
            label = "B" if i % 5 == 0 else "A"
            t = np.sort(rng.uniform(0, 100, 40))
            signal = np.sin(2 * np.pi * t / rng.uniform(3, 7)) if label == "B" else 0 * t
            writer.add({"object_id": f"o{i}", "survey": "macho", "time": t,
                        "value": (15 + signal + rng.normal(0, 0.05, 40)).astype(np.float32),
                        "error": np.full(40, 0.05, np.float32), "band": np.array(["R"] * 40),
                        "value_kind": "mag", "label": label, "meta": {"field": 1}})
    return path


def _args(data, out, **kw):
    base = dict(data=data, model="astromer-v2", output=out, recipe="lcfm-default",
                batch_size=16, progress=False, baseline=False, workers=0,
                config_overrides=dict(get_model("astromer").tiny))
    return FinetuneArgs(**{**base, **kw})


def test_imbalanced_labels_do_not_end_at_the_majority_class(imbalanced_dir, tmp_path):
    """With plain cross-entropy and shuffled batches the same run predicts "A" for every
    test object (macro F1 0.43, measured); lcfm-default balances the batches."""
    summary = finetune(_args(imbalanced_dir, tmp_path / "run", max_steps=40, eval_every=10,
                             min_steps=10, baseline=True))
    assert summary["recipe"]["run"]["balanced_batches"] is True
    # always predicting the majority class scores at most 0.5 macro F1 on two classes
    assert summary["test"]["macro_f1"] > 0.5
    stopped = summary["stopped"]
    assert stopped["reason"] == "max_steps" and stopped["step"] == 40
    assert stopped["kept_step"] == summary["best_step"] >= 10
    assert "kept the model of step" in stopped["message"]
    assert 0.0 <= summary["baseline_macro_f1"] <= 1.0  # the classical baseline, same objects
    for name in ("loss.png", "validation.png"):
        assert (tmp_path / "run" / name).stat().st_size > 1000


def test_early_stop_says_when_and_why_and_which_step_was_kept(imbalanced_dir, tmp_path):
    """Learning rates 0: the validation metric never improves after the first eligible
    evaluation, so the run stops `patience` steps later and says so."""
    summary = finetune(_args(imbalanced_dir, tmp_path / "stop", max_steps=30, eval_every=2,
                             min_steps=4, patience=4, lr_encoder=0.0, lr_head=0.0))
    stopped = json.loads((tmp_path / "stop" / "metrics.json").read_text())["stopped"]
    assert stopped == summary["stopped"]
    assert stopped["reason"] == "early_stopping" and stopped["step"] == 8
    assert summary["steps"] == 8 and stopped["kept_step"] == 8  # ties keep the later model
    assert "did not improve for 4 steps" in stopped["detail"]
    assert [v["step"] for v in summary["validation"]] == [2, 4, 6, 8]


def test_paper_evaluation_interval_shrinks_with_a_shortened_run():
    from lcfm.engine.training import evaluation_interval

    atcat = get_recipe("atcat-finetune")  # sect. 2.4: every 4000 of 40000 steps
    assert evaluation_interval(atcat, 40000, given=False) == 4000
    assert evaluation_interval(atcat, 500, given=False) == 0  # the engine's cadence
    assert evaluation_interval(atcat, 500, given=True) == 4000  # asked for: kept
