"""Register lcfm's transformers pipelines without importing transformers at `import lcfm`
(issue 10, "Light start-up"; issue 13: `pipeline("light-curve-classification")` with no
`trust_remote_code`).

`install_pipeline_hook()` (called by `import lcfm`) registers the pipelines now when
transformers' pipelines module is already imported, and otherwise right after it is: a
one-shot post-import hook on `transformers.pipelines`, as `lcfm.registry` does for
transformers' configuration registry.
"""

from __future__ import annotations

import importlib.abc
import sys

PIPELINES_MODULE = "transformers.pipelines"


def _register() -> None:
    module = sys.modules.get("lcfm.pipelines")
    if module is not None and not hasattr(module, "register_pipelines"):
        return  # lcfm.pipelines is being imported: it registers itself when it is done
    from lcfm.pipelines import register_pipelines

    register_pipelines()


class _PipelinesImportHook(importlib.abc.MetaPathFinder):
    """Runs `_register` right after `transformers.pipelines` has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != PIPELINES_MODULE:
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
            _register()

        loader.exec_module = exec_module
        return spec


def install_pipeline_hook() -> None:
    """Idempotent (module docstring)."""
    module = sys.modules.get(PIPELINES_MODULE)
    if module is not None and hasattr(module, "PIPELINE_REGISTRY"):
        _register()
    elif not any(isinstance(f, _PipelinesImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PipelinesImportHook())
