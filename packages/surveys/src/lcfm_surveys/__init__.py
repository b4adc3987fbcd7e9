"""lcfm survey plugins."""
