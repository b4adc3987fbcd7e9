"""Registry-driven contract of every model collator (issue 10, fast collation): row dicts and
`FlatRows` give identical tensors, padding goes to the longest window of the batch, a given
generator gives the same batch, rows of very different lengths collate, and the work is
vectorised (the Python calls made do not grow with the number of points).

A single-band model reads one sequence per (light curve, band) (issue 12, lcfm.bands): its
tensors have one row per sequence and `band_group` names the light curve of each."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from lcfm.exceptions import DataError
from lcfm.flat import FlatRows
from lcfm.registry import get_model, get_survey, model_names

BANDS = get_survey("elasticc").bands
LABELS = ("a", "b")


def make_rows(lengths, seed=0) -> list[dict]:
    """Multi-band light curves (flux and magnitude rows alternate) at MJD-like times."""
    rng = np.random.default_rng(seed)
    names = list(BANDS)
    rows = []
    for i, n in enumerate(lengths):
        time = 60000.0 + np.sort(rng.uniform(0, 300, n))
        value = 100 + 20 * np.sin(time / rng.uniform(3, 30)) + rng.normal(0, 2, n)
        rows.append({"object_id": f"obj{i}", "survey": "elasticc", "time": time,
                     "value": value.astype(np.float32),
                     "error": rng.uniform(0.5, 3, n).astype(np.float32),
                     "band": np.array([names[j % len(names)] for j in rng.integers(0, 6, n)]),
                     "value_kind": "flux" if i % 2 else "mag", "label": LABELS[i % 2],
                     "meta": {}})
    return rows


def cases():
    for name in model_names():
        plugin = get_model(name)
        tasks = ["classify"] + (["pretrain"] if plugin.pretraining_class else [])
        for task in tasks:
            for train in (True, False):
                mode = "train" if train else "eval"
                yield pytest.param(name, task, train, id=f"{name}-{task}-{mode}")


def build(name, task, train, seed=0):
    plugin = get_model(name)
    config = plugin.make_config("tiny")
    collate = plugin.collator(config, task=task, train=train, bands=BANDS, seed=seed,
                              label2id={k: i for i, k in enumerate(LABELS)}
                              if task == "classify" else None)
    return plugin, config, collate


def run(collate, rows, step=0):
    collate.rng = np.random.default_rng([11, step])  # as the engine does before each batch
    return collate(rows)


def sequences(batch: dict, n_rows: int) -> int:
    """Rows of the batch's (sequences, width) tensors: one per light curve, or one per
    (light curve, band) with `band_group` covering every light curve."""
    if "band_group" not in batch:
        return n_rows
    group = batch["band_group"]
    assert group.dtype == torch.int64 and torch.equal(group.unique(), torch.arange(n_rows))
    assert (group.diff() >= 0).all()  # light curves in batch order
    return group.numel()


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("name", "task", "train"), list(cases()))
def test_row_dicts_and_flat_rows_give_identical_tensors(name, task, train):
    plugin, config, collate = build(name, task, train)
    window = plugin.inference_window(config)
    rows = make_rows([1, 2, window, 2 * window, 3 * window + 5, 7], seed=1)
    expected = run(collate, rows)
    assert_same(run(collate, FlatRows.from_rows(rows)), expected)
    # a FlatRows cut out of a larger one (as the streaming path hands them) agrees too
    bigger = FlatRows.from_rows(make_rows([5, 9], seed=2) + rows, band_names=["Y", "u"])
    assert_same(run(collate, bigger.take(np.arange(2, 2 + len(rows)))), expected)
    # same generator, same batch; the tensors are what the model takes
    assert_same(run(collate, rows), expected)
    mask = expected["attention_mask"]
    assert mask.dtype == torch.int64 and mask.shape[0] == sequences(expected, len(rows))
    assert mask.sum(1).min() >= 1
    if "labels" in expected:
        assert expected["labels"].shape == (len(rows),)


@pytest.mark.parametrize(("name", "task", "train"), list(cases()))
def test_padding_goes_to_the_longest_window_of_the_batch(name, task, train):
    plugin, config, collate = build(name, task, train)
    window = plugin.inference_window(config)
    short = run(collate, make_rows([3, 5, 4]))
    mask = short["attention_mask"]
    assert mask.shape[1] == int(mask.sum(1).max()) < window  # not padded to the window
    assert (mask.diff(dim=1) <= 0).all()  # padding only at the end of a row
    # the longest row fills a window even when each of its bands is read on its own
    mixed = run(collate, make_rows([1, window // 2, 3 * window * len(BANDS)]))["attention_mask"]
    assert mixed.shape[1] == int(mixed.sum(1).max())
    assert mixed.sum(1).tolist()[0] == 1 and mixed.sum(1).max() >= window
    for key, tensor in short.items():
        if tensor.dim() == 2 and key != "metadata":
            assert tensor.shape == mask.shape, key


@pytest.mark.parametrize(("name", "task", "train"), list(cases()))
def test_a_seed_gives_the_same_batch_and_training_draws_new_ones(name, task, train):
    plugin, config, collate = build(name, task, train, seed=4)
    rows = make_rows([3 * plugin.inference_window(config) * len(BANDS), 40, 17], seed=3)
    first = run(collate, rows, step=5)
    _, _, fresh = build(name, task, train, seed=4)
    assert_same(run(fresh, rows, step=5), first)  # a new collator, same (seed, step)
    other = run(collate, rows, step=6)
    differs = any(not torch.equal(first[k], other[k]) for k in first)
    # training draws windows (and masks) from the step's generator; evaluation never varies
    assert differs == train


@pytest.mark.parametrize(("name", "task", "train"), list(cases()))
def test_bad_batches_are_one_line_data_errors(name, task, train):
    _, _, collate = build(name, task, train)
    with pytest.raises(DataError, match="empty batch"):
        collate([])
    rows = make_rows([4, 6])
    rows[1] = dict(rows[1], time=np.array([]), value=np.array([], np.float32),
                   error=np.array([], np.float32), band=np.array([], str))
    for batch in (rows, FlatRows.from_rows(rows)):
        with pytest.raises(DataError, match="obj1") as error:
            collate(batch)
        assert "\n" not in str(error.value)
    uneven = make_rows([4])
    uneven[0]["error"] = uneven[0]["error"][:2]
    with pytest.raises(DataError, match="obj0"):
        collate(uneven)


@pytest.mark.parametrize("name", model_names())
def test_collated_batches_of_mixed_lengths_run_through_the_model(name):
    plugin = get_model(name)
    task = "pretrain" if plugin.pretraining_class else "classify"
    _, config, collate = build(name, task, True)
    config.num_labels = len(LABELS)
    model = (plugin.pretraining_class or plugin.classification_class)(config)
    window = plugin.inference_window(config)
    batch = run(collate, FlatRows.from_rows(make_rows([1, 2, window, 3 * window])))
    output = model(**batch)
    result = output.loss if output.loss is not None else output.logits.sum()
    assert torch.isfinite(result)


def python_calls(fn) -> int:
    """Number of Python and C function calls made while running `fn`."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize(("name", "task", "train"), list(cases()))
def test_collation_is_vectorised_over_points_and_rows(name, task, train):
    """The same rows with 8x more points cost the same number of Python calls (no loop per
    point), and 4x more rows only a few calls per row (the speed target, >= 4k light
    curves/s per core, rests on this)."""
    plugin, config, collate = build(name, task, train)
    window = plugin.inference_window(config)
    few = FlatRows.from_rows(make_rows([window // 8] * 16, seed=5))
    many = FlatRows.from_rows(make_rows([window] * 16, seed=5))
    more_rows = FlatRows.from_rows(make_rows([window] * 64, seed=5))
    run(collate, few)  # warm caches (imports, lazily built tables)
    calls = python_calls(lambda: run(collate, few))
    assert python_calls(lambda: run(collate, many)) == calls
    assert python_calls(lambda: run(collate, more_rows)) - calls <= 4 * 48
