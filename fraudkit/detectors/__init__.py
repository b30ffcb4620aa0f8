"""Detectors: one contract (:class:`BaseDetector`) for every tabular and graph detector."""

from ._base import ENTITIES, EXPLAIN_COLUMNS, BaseDetector, rollup
from ._iforest import IsolationForestDetector

__all__ = ["BaseDetector", "ENTITIES", "EXPLAIN_COLUMNS", "IsolationForestDetector", "rollup"]
