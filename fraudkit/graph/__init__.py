"""The claims network and the graph detectors of fraudkit.

- :class:`ClaimsNetwork` — patients, doctors, institutions and pharmacies as integer-coded
  scipy.sparse matrices; ``ClaimsNetwork.from_batch(batch)``.
- :func:`ego_network` — a provider's neighbourhood as a networkx Graph, ready to draw.
- :func:`shared_patients` — institution/doctor–pharmacy pairs, shared patients and lift over chance
  (chance among the patients seen in both sides' regions).
- :func:`prompt_fills` — how many of a pair's shared patients' pharmacy purchases follow their
  visits within a few days, against chance and the batch's usual promptness.
- Detectors (``entity = "provider"``, X = a ClaimsNetwork or a Batch), each with
  ``entity_scores(network)`` and ``evidence_``:
  :class:`DenseBlockDetector` (FRAUDAR peeling with camouflage-resistant weights, several
  blocks per run; a provider is a member only if the block holds far more of its patients
  than chance), :class:`RingDetector` (institution/doctor–pharmacy pairs sharing far more
  patients, and regular patients, than chance, whose purchases follow the visits promptly;
  rings as groups of such pairs),
  :class:`PropagationDetector` (personalised PageRank from providers/patients confirmed in
  past inspections; skipped without seeds), :class:`EgonetDetector` (OddBall power laws
  over peers of the same provider_type).
- ``explain(X, top)`` on every detector gives the reasons an inspector reads.

Examples
--------
>>> from fraudkit.graph import ClaimsNetwork, RingDetector
>>> import numpy as np
>>> net = ClaimsNetwork.from_arrays(np.r_[np.arange(20), np.arange(20)], np.r_[np.zeros(20, int), np.ones(20, int)],
...                                 provider_type=["clinic", "pharmacy"])
>>> RingDetector(min_surprise=0).fit(net).evidence_["pairs"][["left_id", "right_id", "shared_patients"]].values.tolist()
[['H0', 'H1', 20]]
"""

from ._dense import DenseBlockDetector
from ._egonet import EgonetDetector, egonet_features, provider_graph
from ._network import ClaimsNetwork, ego_network
from ._peeling import camouflage_weights, peel, peel_blocks, peel_reference
from ._projection import SHARED_COLUMNS, chance_surprise, shared_patients
from ._propagation import PropagationDetector, personalized_pagerank
from ._ring import RingDetector
from ._timing import PROMPT_COLUMNS, prompt_fills

__all__ = [
    "ClaimsNetwork", "DenseBlockDetector", "EgonetDetector", "PropagationDetector", "RingDetector",
    "PROMPT_COLUMNS", "SHARED_COLUMNS", "camouflage_weights", "ego_network", "egonet_features", "peel", "peel_blocks",
    "peel_reference", "personalized_pagerank", "chance_surprise", "prompt_fills", "provider_graph",
    "shared_patients",
]
