"""Kepler survey plugin (entry point `kepler`)."""

from lcfm_surveys.kepler.survey import KEPLER_BITMASKS, KEPLER_CLASSES, KeplerSurvey

__all__ = ["KEPLER_BITMASKS", "KEPLER_CLASSES", "KeplerSurvey"]
