"""Labeled synthetic light curves in a survey's cadence and noise (`lcfm simulate`).

Generic machinery lives here: the driver (`simulate`, streaming shards with a progress
bar), the simulator contract (`SurveySimulator`, `Cadence`, `Simulated`), cadence
generators, noise models, shared signal shapes and variable-star generators. Each survey
plugin supplies its classes and cadence through `SurveyPlugin.simulator()`.
"""

from lcfm.simulate.base import Cadence, Simulated, SurveySimulator, balanced_labels
from lcfm.simulate.driver import SUMMARY_FILE, SimulateArgs, run_simulate, simulate

__all__ = ["SUMMARY_FILE", "Cadence", "SimulateArgs", "Simulated", "SurveySimulator",
           "balanced_labels", "run_simulate", "simulate"]
