"""Plugin discovery through entry points (groups `lcfm.surveys` and `lcfm.models`).

Built-in plugins register exactly as third-party ones do. Discovery is cached; a plugin
that fails to import warns and is skipped; an unknown name raises `PluginNotFoundError`
listing what is installed.

Model plugins register with transformers lazily (issue 10, "Light start-up": "model plugins
register lazily but `import lcfm; AutoModel.from_pretrained(...)` keeps working"). Importing
a model plugin costs torch and transformers (several CPU-seconds), which `lcfm surveys`,
`ingest` and `simulate` never need. So `import lcfm` only calls `install_model_hook()`:
once transformers' configuration registry exists (now, or when transformers imports it),
the first lookup of a model type transformers does not know (`AutoConfig.from_pretrained`,
`AutoModel.from_pretrained`, `AutoConfig.for_model`) loads every model plugin, whose import
registers its classes with the Auto classes, and then answers. Nothing is imported while
another import is running, so the plugins never see a half-imported module.

Discovery imports every plugin's module; survey plugins keep that light by importing their
readers' heavy libraries (astropy, polars, scipy) on first use, with `lazy_import`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import sys
import warnings
from importlib.metadata import entry_points

from lcfm.exceptions import PluginNotFoundError

SURVEY_GROUP = "lcfm.surveys"
MODEL_GROUP = "lcfm.models"
#: the transformers module holding CONFIG_MAPPING (model_type -> config class), which every
#: Auto class consults first
AUTO_CONFIG_MODULE = "transformers.models.auto.configuration_auto"

#: groups being discovered right now: a lookup made while a plugin imports must not start
#: a second discovery of the same group (the plugin would be half-imported)
_discovering: set[str] = set()


class LazyModule:
    """Stands for a module that is imported on first attribute access (`lazy_import`)."""

    __slots__ = ("_lcfm_module", "_lcfm_name")

    def __init__(self, name: str):
        object.__setattr__(self, "_lcfm_name", name)
        object.__setattr__(self, "_lcfm_module", None)

    def __getattr__(self, attribute: str):
        module = object.__getattribute__(self, "_lcfm_module")
        if module is None:  # importlib's lock makes a race between threads harmless
            module = importlib.import_module(object.__getattribute__(self, "_lcfm_name"))
            object.__setattr__(self, "_lcfm_module", module)
        return getattr(module, attribute)

    def __dir__(self):
        return dir(importlib.import_module(self._lcfm_name_()))

    def _lcfm_name_(self) -> str:
        return object.__getattribute__(self, "_lcfm_name")

    def __repr__(self) -> str:
        return f"<module {self._lcfm_name_()!r}, imported on first use>"


def lazy_import(module: str, function: str | None = None):
    """`module` imported when first used, for plugin modules whose import must stay cheap:
    `pl = lazy_import("polars")` reads like `import polars as pl`, and
    `gaussian_filter1d = lazy_import("scipy.ndimage", "gaussian_filter1d")` like a
    from-import of a function. Names used at import time (module-level constants, base
    classes, default values) need a real import."""
    if function is None:
        return LazyModule(module)

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    call.__doc__ = f"{module}.{function}, imported on first call."
    return call


class PluginLoadWarning(UserWarning):
    """An installed plugin could not be loaded and was skipped."""


@functools.cache
def discover(group: str) -> dict[str, type]:
    """Load every entry point of `group` once; returns name -> plugin class."""
    found: dict[str, type] = {}
    _discovering.add(group)
    try:
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
    finally:
        _discovering.discard(group)
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
    """The survey plugin instance registered as `name` (e.g. "macho"); names joined by "+"
    ("kepler+tess_qlp") give the survey of a combined dataset (`lcfm.combined`)."""
    if "+" in str(name):
        from lcfm.combined import combined_survey

        return combined_survey([name])
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


# -- lazy registration of model plugins with transformers' Auto classes -------------------

def _load_model_plugins() -> bool:
    """Import every model plugin (each registers its Auto classes); False while that is
    already under way (the lookup comes from a plugin being imported)."""
    if MODEL_GROUP in _discovering:
        return False
    discover(MODEL_GROUP)
    return True


def _make_lazy(mapping) -> None:
    """Give transformers' CONFIG_MAPPING instance a subclass whose lookups load the model
    plugins on the first model type it does not know. Only misses load them, so
    transformers' own model types cost nothing."""
    base = type(mapping)
    if getattr(base, "_lcfm_loads_plugins", False):
        return

    class PluginLoadingConfigMapping(base):
        _lcfm_loads_plugins = True

        def __contains__(self, key) -> bool:
            return base.__contains__(self, key) or (
                _load_model_plugins() and base.__contains__(self, key))

        def __getitem__(self, key):
            if not base.__contains__(self, key):
                _load_model_plugins()
            return base.__getitem__(self, key)

        def __reduce__(self):  # pickles as transformers' own class
            function, args = base.__reduce__(self)[:2]
            return getattr(base, function.__name__), args

    try:
        mapping.__class__ = PluginLoadingConfigMapping
    except TypeError:  # a transformers whose mapping cannot be subclassed: register now
        _load_model_plugins()


class _AutoConfigImportHook(importlib.abc.MetaPathFinder):
    """Runs `_make_lazy` right after transformers' configuration_auto module has executed
    (a post-import hook: the real module is found and loaded by the other finders)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != AUTO_CONFIG_MODULE:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the search below from recursing
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(
                finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            _make_lazy(module.CONFIG_MAPPING)

        loader.exec_module = exec_module
        return spec


def install_model_hook() -> None:
    """Make `transformers.Auto*.from_pretrained` find lcfm's models without importing
    them (or torch) now; `import lcfm` calls this. Idempotent."""
    module = sys.modules.get(AUTO_CONFIG_MODULE)
    if module is not None and hasattr(module, "CONFIG_MAPPING"):
        _make_lazy(module.CONFIG_MAPPING)
    elif not any(isinstance(f, _AutoConfigImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _AutoConfigImportHook())
