"""Detectors: one contract (:class:`BaseDetector`) for every tabular and graph detector."""

from ._base import ENTITIES, EXPLAIN_COLUMNS, BaseDetector, rollup

__all__ = ["BaseDetector", "ENTITIES", "EXPLAIN_COLUMNS", "rollup"]
