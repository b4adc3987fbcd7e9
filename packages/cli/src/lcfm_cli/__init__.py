"""The lcfm command line."""
