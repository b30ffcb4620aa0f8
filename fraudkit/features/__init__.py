"""Features: from a :class:`~fraudkit.io.Batch` to claim, patient and provider tables.

``FeatureBuilder().fit(batch)`` learns peer-group statistics and catalogue
reference prices; ``.transform(batch)`` returns :class:`Features` with three
DataFrames whose columns are documented in :data:`CLAIM_COLUMNS`,
:data:`PATIENT_COLUMNS` and :data:`PROVIDER_COLUMNS` (name -> meaning).
:data:`DIRECTIONS` says which tail of each column is suspicious, :data:`Z_UNITS` which columns
are already calibrated z-scores, and
:func:`describe` turns a feature value into a sentence for an inspector.
``.transform(batch, parts=k)`` computes the same tables a part of the patients at a time
(:meth:`FeatureBuilder.part_features` of each part of :func:`fraudkit.io.split_by_patient`,
anywhere, then :meth:`FeatureBuilder.combine`): how the Dask engine spreads them over workers.

Examples
--------
>>> from fraudkit.features import FeatureBuilder, make_toy_batch
>>> batch, labels = make_toy_batch(2000, seed=1)
>>> feats = FeatureBuilder().fit(batch).transform(batch)
>>> bool(feats.claims.loc[labels.claims.set_index("claim_id").fraud_type.eq("fake_admission")].los_ratio.median() > 2)
True
"""

from ._builder import FeatureBuilder, Features, PartFeatures
from ._columns import (CLAIM_COLUMNS, CLAIM_MODEL_FEATURES, DIRECTIONS, PATIENT_COLUMNS, PATIENT_MODEL_FEATURES,
                       PROVIDER_COLUMNS, PROVIDER_MODEL_FEATURES, Z_UNITS, describe)
from ._toy import make_toy_batch

__all__ = ["CLAIM_COLUMNS", "CLAIM_MODEL_FEATURES", "DIRECTIONS", "FeatureBuilder", "Features", "PartFeatures", "PATIENT_COLUMNS", "PATIENT_MODEL_FEATURES",
           "PROVIDER_COLUMNS", "PROVIDER_MODEL_FEATURES", "Z_UNITS", "describe", "make_toy_batch"]
