"""lcfm survey plugins (entry point group `lcfm.surveys`)."""

import lcfm  # noqa: F401  (see lcfm_models/__init__.py: lcfm is initialised first)
