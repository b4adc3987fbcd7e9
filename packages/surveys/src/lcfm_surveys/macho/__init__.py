"""MACHO survey plugin for lcfm (entry point `macho`)."""

from lcfm_surveys.macho.survey import MachoSurvey

__all__ = ["MachoSurvey"]
