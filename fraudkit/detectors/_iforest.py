"""Isolation forest on a feature table, with reasons an inspector can check."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from ._base import ENTITIES, EXPLAIN_COLUMNS, BaseDetector


def _default_features(entity: str) -> list[str]:
    from fraudkit.features import CLAIM_MODEL_FEATURES, PATIENT_MODEL_FEATURES, PROVIDER_MODEL_FEATURES

    return {"claim": CLAIM_MODEL_FEATURES, "patient": PATIENT_MODEL_FEATURES, "provider": PROVIDER_MODEL_FEATURES}[entity]


class IsolationForestDetector(BaseDetector):
    """Scikit-learn ``IsolationForest`` on a fraudkit feature table (claims, patients or providers).

    Before the forest, each feature is robustly scaled with fit-time statistics,
    ``z = (x − median) / scale`` (scale = 1.4826·MAD, or the mean absolute deviation
    where the MAD is 0), clipped to its suspicious tail when the feature has a
    direction (``fraudkit.features.DIRECTIONS``: a cheap claim is no evidence of
    fraud). The harmless tail collapses to 0, so the forest's random splits fall in
    the suspicious tail only (measured: +0.05–0.1 PR-AUC over two-sided features).
    Score = the forest's anomaly score (``−IsolationForest.score_samples``, in (0, 1]),
    **higher = more suspicious**.

    Parameters
    ----------
    entity : {"claim", "patient", "provider"}, default="claim"
        What a row of the feature table is (its index holds the ids).
    features : list of str or None, default=None
        Columns to model; None = the entity's default model features that are present
        (``fraudkit.features.CLAIM_MODEL_FEATURES`` ...), else every numeric column.
    n_estimators, max_samples, max_features, random_state, n_jobs
        Passed to :class:`sklearn.ensemble.IsolationForest` untouched.
    one_sided : bool, default=True
        Ignore the harmless tail of directed features.
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    features_ : list of str
        Columns modelled.
    center_, scale_ : ndarray
        Fit-time robust location and scale per feature.
    forest_ : IsolationForest
    decision_scores_, threshold_
        As in :class:`BaseDetector`.

    Examples
    --------
    >>> from fraudkit.features import FeatureBuilder, make_toy_batch
    >>> batch, labels = make_toy_batch(2000, seed=2)
    >>> table = FeatureBuilder().fit_transform(batch).claims
    >>> det = IsolationForestDetector(random_state=0).fit(table)
    >>> scores = det.scores(table)
    >>> det.explain(table.loc[[scores.idxmax()]], top=2).columns.tolist()
    ['id', 'rank', 'feature', 'value', 'contribution', 'reason']
    """

    def __init__(self, entity: str = "claim", features: list[str] | None = None, n_estimators: int = 200,
                 max_samples: int | float | str = 256, max_features: float = 1.0, one_sided: bool = True,
                 contamination: float = 0.05, budget: int | None = None, random_state=None, n_jobs: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.entity = entity
        self.features = features
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.one_sided = one_sided
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ contract
    def _fit(self, X) -> np.ndarray:
        if self.entity not in ENTITIES:
            raise ValueError(f"entity must be one of {ENTITIES}, got {self.entity!r}")
        X = self._check_frame(X)
        if self.features is not None:
            missing = [c for c in self.features if c not in X.columns]
            if missing:
                raise ValueError(f"feature table lacks the columns {missing}")
            cols = list(self.features)
        else:
            cols = [c for c in _default_features(self.entity) if c in X.columns]
            if len(cols) < 2:
                cols = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        if not cols:
            raise ValueError("no numeric feature columns to model")
        from fraudkit.features import DIRECTIONS

        self.features_ = cols
        self.n_features_in_ = len(cols)
        values = self._matrix(X)
        center = np.nanmedian(values, axis=0) if len(values) else np.zeros(len(cols))
        center = np.nan_to_num(center)
        dev = np.abs(values - center)
        mad = 1.4826 * np.nanmedian(dev, axis=0) if len(values) else np.ones(len(cols))
        mean_dev = 1.2533 * np.nanmean(dev, axis=0) if len(values) else np.ones(len(cols))
        scale = np.where(mad > 1e-9, mad, np.where(mean_dev > 1e-9, mean_dev, 1.0))
        self.center_, self.scale_ = center, np.nan_to_num(scale, nan=1.0)
        self.direction_ = np.array([DIRECTIONS.get(c, 0) if self.one_sided else 0 for c in cols])
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, max_samples=self._max_samples(len(values)),
                                       max_features=self.max_features, random_state=self.random_state, n_jobs=self.n_jobs)
        t = self._scaled(values)
        self.forest_.fit(t)
        return -self.forest_.score_samples(t)

    def _score(self, X) -> np.ndarray:
        X = self._check_frame(X)
        if len(X) == 0:
            return np.empty(0)
        return -self.forest_.score_samples(self._scaled(self._matrix(X)))

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Per row, the ``top`` features farthest in their suspicious tail, with a sentence each.

        ``contribution`` is the feature's robust deviation ``|z|`` in its suspicious tail
        (the quantity the forest splits on); only features with a positive contribution
        are listed, so a row may get fewer than ``top`` reasons.
        """
        from fraudkit.features import describe

        X = self._check_frame(X)
        if len(X) == 0:
            return pd.DataFrame(columns=EXPLAIN_COLUMNS)
        t = np.abs(self._scaled(self._matrix(X)))
        k = min(top, t.shape[1])
        order = np.argsort(-t, axis=1, kind="stable")[:, :k]
        contrib = np.take_along_axis(t, order, axis=1)
        rows, ranks = np.nonzero(contrib > 1e-9)
        feats = np.asarray(self.features_)[order[rows, ranks]]
        records = X.iloc[np.unique(rows)].to_dict("records")
        by_row = dict(zip(np.unique(rows).tolist(), records))
        reasons = [describe(f, by_row[r]) for r, f in zip(rows.tolist(), feats.tolist())]
        values = X[self.features_].to_numpy(dtype=float)[rows, order[rows, ranks]]
        return pd.DataFrame({
            "id": X.index.to_numpy()[rows], "rank": ranks + 1, "feature": feats, "value": values,
            "contribution": contrib[rows, ranks], "reason": reasons,
        }, columns=EXPLAIN_COLUMNS)

    # ------------------------------------------------------------------ helpers
    def _check_frame(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} takes a feature DataFrame indexed by {self.entity}_id, "
                            f"got {type(X).__name__}")
        if hasattr(self, "features_"):
            missing = [c for c in self.features_ if c not in X.columns]
            if missing:
                raise ValueError(f"feature table lacks the columns {missing} seen at fit")
        return X

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.features_].to_numpy(dtype=float, na_value=np.nan)

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        z = (values - self.center_) / self.scale_
        z = np.where(np.isnan(z), 0.0, z)
        return np.where(self.direction_ > 0, np.maximum(z, 0.0), z)

    def _max_samples(self, n: int):
        if isinstance(self.max_samples, (int, np.integer)) and not isinstance(self.max_samples, bool):
            return int(min(self.max_samples, max(n, 1)))
        return self.max_samples
