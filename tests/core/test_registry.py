import warnings
from importlib.metadata import EntryPoint

import lcfm.registry as registry
import pytest
from lcfm.exceptions import PluginNotFoundError
from lcfm.survey import SurveyPlugin


class GoodSurvey(SurveyPlugin):
    name = "good"


@pytest.fixture
def fake_entry_points(monkeypatch):
    points = [
        EntryPoint("good", f"{__name__}:GoodSurvey", registry.SURVEY_GROUP),
        EntryPoint("broken", "lcfm_no_such_module:Nothing", registry.SURVEY_GROUP),
    ]
    calls = []

    def fake(group):
        calls.append(group)
        return [p for p in points if p.group == group]

    monkeypatch.setattr(registry, "entry_points", fake)
    registry.clear_cache()
    yield calls
    registry.clear_cache()


def test_discovery_skips_broken_plugin_with_warning(fake_entry_points):
    with pytest.warns(registry.PluginLoadWarning, match="broken"):
        names = registry.survey_names()
    assert names == ["good"]
    assert isinstance(registry.get_survey("good"), GoodSurvey)


def test_discovery_is_cached(fake_entry_points):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry.survey_names()
        registry.survey_names()
        registry.get_survey("good")
    assert fake_entry_points.count(registry.SURVEY_GROUP) == 1


def test_unknown_name_lists_installed(fake_entry_points):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PluginNotFoundError) as info:
            registry.get_survey("ztf")
    assert str(info.value) == "unknown survey 'ztf'; installed: good"


def test_builtin_plugins_are_registered_through_entry_points():
    registry.clear_cache()
    assert {"macho"} <= set(registry.survey_names())
    assert {"astromer"} <= set(registry.model_names())


def test_unknown_model_configuration_lists_known_ones():
    with pytest.raises(PluginNotFoundError, match="astromer-v2"):
        registry.find_model_configuration("astromer-v9")
