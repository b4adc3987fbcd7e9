"""lcfm model plugins."""
