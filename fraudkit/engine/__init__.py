"""Execution engines: where the stages of ``FraudModel.score`` run.

``local`` is :meth:`fraudkit.pipeline.FraudModel.score` in this process. ``dask`` runs the
row-wise stages (isolation-forest scores of claims and patients, reasons of flagged claims)
partition by partition on a :mod:`distributed` cluster and gives the same files, byte for byte.

Examples
--------
>>> from fraudkit.engine import score_dask          # doctest: +SKIP
>>> result = score_dask(model, batch, workers=2)     # doctest: +SKIP
"""

from ._dask import ENGINES, MIN_ROWS, DaskEngine, partition_bounds, score_dask, score_with_engine

__all__ = ["ENGINES", "MIN_ROWS", "DaskEngine", "partition_bounds", "score_dask", "score_with_engine"]
