"""`lcfm pretrain --survey S --model M` for every self-supervised model on every survey
that ships a sample (tiny configurations, a few steps)."""

import json

import pytest
from lcfm.engine import PretrainArgs, pretrain
from lcfm.exceptions import ConfigError
from lcfm.registry import get_model, get_survey, model_names, survey_names


def _pretrainable():
    return [m for m in model_names() if get_model(m).pretraining_class is not None]


def _with_data():
    """Surveys with a bundled sample, or (ATLAS) a simulator to stand in for one."""
    out = []
    for s in survey_names():
        plugin = get_survey(s)
        try:
            plugin.sample_path()
        except ConfigError:
            try:
                plugin.simulator()
            except ConfigError:
                continue
        out.append(s)
    return out


@pytest.mark.parametrize("model", _pretrainable())
@pytest.mark.parametrize("survey", _with_data())
def test_pretrain_runs(model, survey, tmp_path):
    plugin = get_model(model)
    metrics = pretrain(PretrainArgs(survey=survey, output=tmp_path, model=model, max_steps=3,
                                    batch_size=4, progress=False,
                                    config_overrides=dict(plugin.tiny)))
    assert metrics["steps"] == 3 and metrics["final_loss"] == metrics["final_loss"]  # not NaN
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == plugin.config_class.model_type
    assert config["lcfm_survey"] == survey
    assert (tmp_path / "model.safetensors").stat().st_size > 0
    if survey == "atlas":  # no real sample may be shipped: simulated stand-in, said so
        assert "simulated" in metrics["data"]


def test_astrafier_has_no_pretraining(tmp_path):
    with pytest.raises(ConfigError, match="no self-supervised objective"):
        pretrain(PretrainArgs(survey="macho", output=tmp_path, model="astrafier", max_steps=1,
                              progress=False))
