"""lcfm model plugins (entry point group `lcfm.models`)."""

# Import lcfm first, so that plugin discovery never runs while a plugin module is half
# loaded (importing a plugin module directly before lcfm would otherwise do that).
import lcfm  # noqa: F401
