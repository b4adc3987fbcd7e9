"""ATLAS survey plugin (entry point `atlas`). The reader is built from the published
description of the ATLAS photometry files; no real ATLAS file is bundled (see `plugin`)."""

from lcfm_surveys.atlas.labels import ATLAS_TAXONOMY, RAW_TO_CLASS, read_label_catalogue
from lcfm_surveys.atlas.plugin import AtlasSurvey
from lcfm_surveys.atlas.reader import AtlasPhotometryReader

__all__ = ["ATLAS_TAXONOMY", "RAW_TO_CLASS", "AtlasPhotometryReader", "AtlasSurvey",
           "read_label_catalogue"]
