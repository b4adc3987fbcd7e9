"""Plugin discovery through entry points (groups `lcfm.surveys` and `lcfm.models`).

Built-in plugins register exactly as third-party ones do. Discovery is cached; a plugin
that fails to import warns and is skipped; an unknown name raises `PluginNotFoundError`
listing what is installed.
"""

from __future__ import annotations

import functools
import warnings
from importlib.metadata import entry_points

from lcfm.exceptions import PluginNotFoundError

SURVEY_GROUP = "lcfm.surveys"
MODEL_GROUP = "lcfm.models"


class PluginLoadWarning(UserWarning):
    """An installed plugin could not be loaded and was skipped."""


@functools.cache
def discover(group: str) -> dict[str, type]:
    """Load every entry point of `group` once; returns name -> plugin class."""
    found: dict[str, type] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break lcfm
            warnings.warn(f"skipping {group} plugin {ep.name!r} ({ep.value}): "
                          f"{type(exc).__name__}: {exc}", PluginLoadWarning, stacklevel=2)
            continue
        if ep.name in found:
            warnings.warn(f"{group} plugin {ep.name!r} is installed twice; keeping "
                          f"{found[ep.name].__module__}", PluginLoadWarning, stacklevel=2)
            continue
        found[ep.name] = plugin
    return found


def clear_cache() -> None:
    """Forget discovered plugins (after installing one in the same process)."""
    discover.cache_clear()
    _instance.cache_clear()


@functools.cache
def _instance(group: str, name: str):
    plugins = discover(group)
    if name not in plugins:
        kind = "survey" if group == SURVEY_GROUP else "model"
        raise PluginNotFoundError(kind, name, list(plugins))
    return plugins[name]()


def survey_names() -> list[str]:
    return sorted(discover(SURVEY_GROUP))


def model_names() -> list[str]:
    return sorted(discover(MODEL_GROUP))


def get_survey(name: str):
    """The survey plugin instance registered as `name` (e.g. "macho")."""
    return _instance(SURVEY_GROUP, name)


def get_model(name: str):
    """The model plugin instance registered as `name` (e.g. "astromer")."""
    return _instance(MODEL_GROUP, name)


def find_model_configuration(config_name: str):
    """(plugin, configuration name) for a named paper configuration such as "astromer-v2"."""
    available = []
    for plugin_name in model_names():
        plugin = get_model(plugin_name)
        if config_name == plugin_name:
            return plugin, plugin.default_configuration
        if config_name in plugin.configurations:
            return plugin, config_name
        available += list(plugin.configurations)
    raise PluginNotFoundError("model configuration", config_name, available)
