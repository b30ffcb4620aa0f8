"""Learning from inspection outcomes: what flight inspections found feeds the next ranking.

- :func:`load_outcomes` reads and checks an outcomes file (CSV or Parquet:
  ``provider_id, inspected_on, outcome`` with outcome ``confirmed`` / ``cleared``, optional
  ``patient_id`` and ``claim_id``) against a batch; :meth:`Outcomes.seeds` gives the confirmed
  providers and patients that seed graph propagation.
- :func:`rerank` trains :class:`OutcomeReranker` (calibrated, class-weighted logistic
  regression on detector evidence and provider features) on the inspected providers and
  adds its probability as one more column of the Fisher combination in
  :mod:`fraudkit.prioritise` (the blend is documented in :mod:`fraudkit.outcomes._rerank`);
  :func:`mark_inspected` moves inspected providers after the others and says what was found.
  ``FraudModel.score(batch, outcomes=...)`` does all of it (``fraudkit score --outcomes``).
  ``FraudModel.fit(batch, outcomes=...)`` (``fraudkit train --outcomes``) keeps the verdicts
  with the model; every later ``score`` merges them in and retrains on the scored batch.
- :func:`simulate_inspections` replays the loop on a labelled batch (inspect the top k
  uninspected, reveal their labels, retrain, re-rank) against the unsupervised ranking, round
  by round (``fraudkit simulate-inspections``; ``benchmarks/outcomes.py`` measures it on
  several generated batches).
"""

from ._load import OPTIONAL_COLUMNS, OUTCOME_VALUES, REQUIRED_COLUMNS, Outcomes, OutcomesError, load_outcomes, merge_outcomes
from ._rerank import RERANKER, OutcomeReranker, mark_inspected, provider_design, reranker_weight, rerank
from ._simulate import SimulationResult, outcomes_from_labels, simulate_inspections

__all__ = [
    "OPTIONAL_COLUMNS", "OUTCOME_VALUES", "REQUIRED_COLUMNS", "RERANKER", "OutcomeReranker", "Outcomes", "OutcomesError",
    "SimulationResult", "load_outcomes", "mark_inspected", "merge_outcomes", "outcomes_from_labels", "provider_design",
    "reranker_weight", "rerank", "simulate_inspections",
]
