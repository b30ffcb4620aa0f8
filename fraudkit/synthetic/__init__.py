"""Synthetic, labelled claims batches: normal care calibrated to China's basic medical insurance,
with the fraud schemes of :mod:`fraudkit.schemes` planted in it.

>>> from fraudkit.synthetic import Scenario, generate
>>> batch, labels = generate(Scenario.from_dict({"claims": 2000}), seed=3)
>>> sorted(batch.claims.care_type.unique())
['chronic', 'inpatient', 'outpatient', 'pharmacy']
"""

from ._generate import BLOCK, Summary, catalogue, generate, generate_to
from ._scenario import DEFAULTS, Scenario, ScenarioError, SchemeConfig, builtin_scenario

__all__ = ["BLOCK", "DEFAULTS", "Scenario", "ScenarioError", "SchemeConfig", "Summary", "builtin_scenario",
           "catalogue", "generate", "generate_to"]
