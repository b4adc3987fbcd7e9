"""TESS survey plugin (entry point `tess_qlp`): QLP HLSP and SPOC light curves."""

from lcfm_surveys.tess.readers import QlpReader, SpocReader
from lcfm_surveys.tess.survey import TESS_BITMASKS, TESS_CLASSES, TessQlpSurvey

__all__ = ["TESS_BITMASKS", "TESS_CLASSES", "QlpReader", "SpocReader", "TessQlpSurvey"]
