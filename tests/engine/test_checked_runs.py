"""Checked runs (issue 9, item 8): pretraining refuses data of another survey, `--resume`
refuses a run that differs from the checkpoint's (model, data, batch size, seed, max steps,
learning rate), and a final save killed half-way never leaves a folder that looks complete."""

import json
import os
import stat

import polars as pl
import pytest
from lcfm.engine import PretrainArgs, pretrain
from lcfm.engine.checkpoint import data_fingerprint
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.engine.loading import check_model_folder
from lcfm.engine.save import save_model_atomically
from lcfm.exceptions import DataError, ModelFolderError, RunMismatchError
from lcfm.registry import get_model, model_names, survey_names
from lcfm.shards import ShardWriter, read_shards


def _write(path, rows):
    with ShardWriter(path) as writer:
        for row in rows:
            writer.add(row)
    return path


def _pretrain_args(data, output, **kw):
    base = dict(survey="macho", data=data, output=output, model="astromer-v2", max_steps=6,
                batch_size=8, learning_rate=1e-3, seed=0, progress=False,
                config_overrides=dict(get_model("astromer").tiny))
    base.update(kw)
    return PretrainArgs(**base)


# ---- the survey of the data ---------------------------------------------------------------

@pytest.mark.parametrize("survey", survey_names())
def test_pretrain_refuses_data_of_another_survey(survey, make_labeled_rows, tmp_path):
    other = "kepler" if survey == "macho" else "macho"
    rows = [dict(r, survey=other) for r in make_labeled_rows(n_objects=4)]
    data = _write(tmp_path / "data", rows)
    with pytest.raises(DataError) as info:
        pretrain(_pretrain_args(data, tmp_path / "run", survey=survey))
    message = str(info.value)
    assert f"survey {other!r}" in message and f"--survey is {survey!r}" in message
    assert str(data) in message and "\n" not in message
    assert not (tmp_path / "run" / "config.json").exists()


def test_pretrain_refuses_data_of_several_surveys(make_labeled_rows, tmp_path):
    rows = make_labeled_rows(n_objects=4)
    rows = [dict(r, survey="kepler") if i % 4 == 0 else r for i, r in enumerate(rows)]
    data = _write(tmp_path / "data", rows)
    with pytest.raises(DataError, match=r"several surveys \(kepler, macho\)"):
        pretrain(_pretrain_args(data, tmp_path / "run"))


# ---- --resume compares the run --------------------------------------------------------------

@pytest.fixture(scope="module")
def interrupted(labeled_dir, tmp_path_factory):
    """A pretraining run stopped after 2 of 6 steps, with its checkpoint."""
    output = tmp_path_factory.mktemp("checked") / "run"
    assert pretrain(_pretrain_args(labeled_dir, output, stop_after=2)) == \
        {"steps": 2, "interrupted": True}
    return output


def _pretrainable_others():
    return [m for m in model_names()
            if m != "astromer" and get_model(m).pretraining_class is not None]


@pytest.mark.parametrize(("field", "change"), [
    ("batch_size", dict(batch_size=4)),
    ("seed", dict(seed=1)),
    ("max_steps", dict(max_steps=7)),
    ("learning_rate", dict(learning_rate=2e-3)),
    ("config_overrides", dict(config_overrides={**get_model("astromer").tiny,
                                                "num_hidden_layers": 1})),
    *[("model", dict(model=m, config_overrides=dict(get_model(m).tiny)))
      for m in _pretrainable_others()],
])
def test_resume_refuses_a_different_run(interrupted, labeled_dir, field, change):
    state_before = (interrupted / "checkpoint" / "trainer_state.json").read_text()
    with pytest.raises(RunMismatchError) as info:
        pretrain(_pretrain_args(labeled_dir, interrupted, resume=True, **change))
    assert info.value.field == field
    stored, asked = next((s, a) for f, s, a in info.value.mismatches if f == field)
    assert stored != asked and f"{field} is {stored!r}" in str(info.value)
    assert "\n" not in str(info.value)
    # refused before anything was loaded or written
    assert (interrupted / "checkpoint" / "trainer_state.json").read_text() == state_before


def test_resume_refuses_different_data(interrupted, make_labeled_rows, tmp_path):
    fewer = _write(tmp_path / "fewer", make_labeled_rows(n_objects=20))
    with pytest.raises(RunMismatchError, match=r"data is '48 light curves.*but '40 light"):
        pretrain(_pretrain_args(fewer, interrupted, resume=True))


def test_resume_of_the_same_run_continues(interrupted, labeled_dir, tmp_path):
    import shutil

    copy, data = tmp_path / "copy", tmp_path / "data"
    shutil.copytree(interrupted, copy)
    shutil.copytree(labeled_dir, data)  # the same data in another folder is the same data
    metrics = pretrain(_pretrain_args(data, copy, resume=True))
    assert metrics["steps"] == 6
    state = json.loads((copy / "checkpoint" / "trainer_state.json").read_text())
    assert state["run"]["batch_size"] == 8 and state["run"]["model"] == "astromer-v2"


def test_checkpoint_without_a_run_record_resumes_with_a_warning(interrupted, labeled_dir,
                                                                tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(interrupted, copy)
    state_file = copy / "checkpoint" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["run"]
    state_file.write_text(json.dumps(state))
    with pytest.warns(UserWarning, match="written before runs were recorded"):
        assert pretrain(_pretrain_args(labeled_dir, copy, resume=True))["steps"] == 6
    assert json.loads(state_file.read_text())["run"]["seed"] == 0  # recorded from now on


def test_finetune_resume_refuses_a_different_run(labeled_dir, tmp_path):
    base = dict(data=labeled_dir, model="astromer-v2", output=tmp_path / "ft", max_steps=6,
                batch_size=8, progress=False, eval_every=2,
                config_overrides=dict(get_model("astromer").tiny))
    assert finetune(FinetuneArgs(**base, stop_after=2))["interrupted"]
    with pytest.raises(RunMismatchError, match="batch_size is 8 in the checkpoint but 16"):
        finetune(FinetuneArgs(**{**base, "batch_size": 16}, resume=True))
    for other in [m for m in model_names() if get_model(m).classification_class is not None
                  and m != "astromer"]:
        with pytest.raises(RunMismatchError) as info:
            finetune(FinetuneArgs(**{**base, "model": other,
                                     "config_overrides": dict(get_model(other).tiny)},
                                  resume=True))
        assert info.value.field == "model", (other, str(info.value))


def test_data_fingerprint_ignores_layout_and_sees_one_point(make_labeled_rows, tmp_path):
    rows = make_labeled_rows(n_objects=6)
    a = read_shards(_write(tmp_path / "a", rows))
    b = read_shards(_write(tmp_path / "b", rows[::-1]))
    assert data_fingerprint(a) == data_fingerprint(b)
    changed = [dict(r) for r in rows]
    changed[3]["value"] = changed[3]["value"].copy()
    changed[3]["value"][10] += 0.5
    c = read_shards(_write(tmp_path / "c", changed))
    assert data_fingerprint(c) != data_fingerprint(a)
    relabeled = a.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("EC"))
                               .otherwise(pl.col("label")).alias("label"))
    if relabeled["label"][0] != a["label"][0]:
        assert data_fingerprint(relabeled) != data_fingerprint(a)


# ---- the final save ----------------------------------------------------------------------

def _tiny_model():
    plugin = get_model("astromer")
    return plugin.pretraining_class(plugin.make_config("tiny"))


def test_killed_final_save_leaves_no_complete_looking_folder(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    save_model_atomically(_tiny_model(), folder)
    assert check_model_folder(folder)["model_type"] == "lcfm_astromer"
    mode = stat.S_IMODE((folder / "model.safetensors").stat().st_mode)
    assert mode & 0o044 == 0o044 & ~_umask(), oct(mode)  # readable by group/others

    import lcfm.engine.save as save

    def killed(*args):
        raise KeyboardInterrupt

    # killed while moving the new weights in: no config.json, so no loader takes it
    monkeypatch.setattr(save.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_model_atomically(_tiny_model(), folder)
    assert not (folder / "config.json").exists()
    with pytest.raises(ModelFolderError, match="not a model folder"):
        check_model_folder(folder)
    monkeypatch.undo()

    # killed while transformers writes the staging copy: the previous model stays whole
    save_model_atomically(_tiny_model(), folder)
    before = (folder / "model.safetensors").read_bytes()
    model = _tiny_model()
    real_save = type(model).save_pretrained

    def half_save(self, path, **kw):
        real_save(self, path, **kw)
        (path / "model.safetensors").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(model), "save_pretrained", half_save)
    with pytest.raises(KeyboardInterrupt):
        save_model_atomically(model, folder)
    assert (folder / "model.safetensors").read_bytes() == before
    check_model_folder(folder)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
