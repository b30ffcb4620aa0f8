"""The supervised re-ranker: learn from inspected providers which evidence finds fraud in this batch.

How the final provider ranking blends the unsupervised evidence with what inspections found:

1. **Design.** Each provider is described by the unsupervised detectors' evidence
   (``-log`` tail probability of each ``score_*`` column, within its provider type) and by its
   provider features, each as a centred percentile within its provider type (``-0.5`` lowest,
   ``+0.5`` highest), so that scales, heavy tails and provider types do not matter.
2. **Model.** An L2 logistic regression with balanced class weights (confirmed cases are rare
   among inspections once the obvious ones are found) is trained on the inspected providers,
   ``confirmed`` = 1, ``cleared`` = 0. Cleared providers pull the ones that look like them down,
   confirmed ones pull their look-alikes up; which detectors deserve trust in this batch is
   learnt too. With at least :attr:`OutcomeReranker.min_calibration` providers of each class,
   probabilities are calibrated by :class:`~sklearn.calibration.CalibratedClassifierCV`
   (sigmoid, 3 folds); below that, the fallback is the regression's own probability with the
   class-weight shift undone (the intercept moved by the log of the class ratio), which is
   roughly calibrated but not checked on held-out cases.
3. **Blend.** The re-ranker's probability for the *uninspected* providers becomes one more
   column, ``reranker``, combined with the detectors by :func:`fraudkit.prioritise.combine_scores`
   (weighted Fisher). Its weight grows with the evidence it learnt from:
   ``weight = max_weight * n / (n + half_weight_at)``, ``n`` = inspected providers, while
   every detector keeps weight 1. With one class only (all confirmed or all cleared)
   there is nothing to learn; the column is left out and only propagation uses the outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraudkit.prioritise import tail_probability

#: Name of the re-ranker's column among the provider scores (``score_reranker`` in providers.csv).
RERANKER = "reranker"
#: Fisher weight of the re-ranker reached with many outcomes, and the count at which it is half that.
MAX_WEIGHT = 4.0
HALF_WEIGHT_AT = 20
#: Feature-table columns that are not evidence (identity of the peer group, size).
NOT_EVIDENCE = ("peer_group", "tier", "beds")


def provider_design(features: pd.DataFrame, provider_scores: pd.DataFrame, groups: pd.Series | None = None) -> pd.DataFrame:
    """The re-ranker's inputs: detector evidence and provider features made comparable.

    Parameters
    ----------
    features : DataFrame
        ``Features.providers`` (indexed by provider_id).
    provider_scores : DataFrame
        One column per unsupervised detector, indexed by provider_id (higher = more suspicious).
    groups : Series, optional
        Peer group of each provider (provider_type); percentiles and tail probabilities are within it.

    Returns
    -------
    DataFrame
        ``det_<detector>`` = ``-log`` tail probability, ``feat_<feature>`` = centred percentile,
        indexed like ``provider_scores``.

    Examples
    --------
    >>> s = pd.DataFrame({"iforest": [0.9, 0.1, 0.5]}, index=["H1", "H2", "H3"])
    >>> f = pd.DataFrame({"dup_share": [0.0, 0.3, 0.1]}, index=["H1", "H2", "H3"])
    >>> provider_design(f, s).round(2).to_dict("list")
    {'det_iforest': [1.1, 0.0, 0.41], 'feat_dup_share': [-0.33, 0.33, 0.0]}
    """
    index = provider_scores.index
    out = {}
    for column in provider_scores.columns:
        if column == RERANKER or not provider_scores[column].notna().any():
            continue
        out[f"det_{column}"] = -np.log(tail_probability(provider_scores[column], groups)).to_numpy()
    table = features.reindex(index)
    key = groups.reindex(index).to_numpy() if groups is not None else np.zeros(len(index))
    for column in table.columns:
        if column in NOT_EVIDENCE or not pd.api.types.is_numeric_dtype(table[column]):
            continue
        values = table[column].astype(float)
        if values.nunique(dropna=True) < 2:
            continue
        pct = values.groupby(key).rank(pct=True, method="average")
        out[f"feat_{column}"] = (pct - 0.5).fillna(0.0).to_numpy()
    return pd.DataFrame(out, index=index).fillna(0.0)


class OutcomeReranker(BaseEstimator, ClassifierMixin):
    """Probability that a provider is confirmed on inspection, learnt from past outcomes.

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 strength of the logistic regression (small: few labels, many inputs).
    min_calibration : int, default=8
        Providers needed in *each* class to calibrate with 3-fold ``CalibratedClassifierCV``;
        below, the regression's own probability with the class-weight shift undone.
    random_state : int, default=0

    Attributes
    ----------
    model_ : estimator
        The fitted (calibrated or plain) classifier.
    calibrated_ : bool
    classes_ : ndarray
    prior_ : float
        Share of confirmed providers among the training outcomes.
    coef_ : Series
        The logistic regression's coefficients per input (standardised), for explanations.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    >>> y = (X["a"] > 0.8).astype(int)
    >>> r = OutcomeReranker().fit(X, y)
    >>> bool(r.predict_proba(pd.DataFrame({"a": [2.0], "b": [0.0]}))[0, 1] > 0.5)
    True
    """

    def __init__(self, C: float = 0.1, min_calibration: int = 8, random_state: int = 0):
        self.C = C
        self.min_calibration = min_calibration
        self.random_state = random_state

    def _base(self):
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000,
                                                                  random_state=self.random_state))

    def fit(self, X: pd.DataFrame, y) -> "OutcomeReranker":
        y = np.asarray(y, dtype=int)
        counts = np.bincount(y, minlength=2)
        if (counts == 0).any():
            raise ValueError("the re-ranker needs both confirmed and cleared providers")
        self.classes_ = np.array([0, 1])
        self.features_ = list(X.columns)
        self.prior_ = float(counts[1] / counts.sum())
        self.calibrated_ = bool(counts.min() >= self.min_calibration)
        plain = self._base().fit(X, y)
        self.coef_ = pd.Series(plain[-1].coef_[0], index=self.features_)
        if self.calibrated_:
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.model_selection import StratifiedKFold

            folds = StratifiedKFold(3, shuffle=True, random_state=self.random_state)
            self.model_ = CalibratedClassifierCV(self._base(), method="sigmoid", cv=folds).fit(X, y)
            self.shift_ = 0.0
        else:
            # Balanced weights act as if the classes were equally common; undo it on the log-odds.
            self.model_ = plain
            self.shift_ = float(np.log(counts[1] / counts[0]))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        X = X.reindex(columns=self.features_, fill_value=0.0)
        p = self.model_.predict_proba(X)[:, 1]
        if self.shift_:
            logit = np.log(np.clip(p, 1e-12, 1 - 1e-12) / np.clip(1 - p, 1e-12, 1)) + self.shift_
            p = 1.0 / (1.0 + np.exp(-logit))
        return np.column_stack([1 - p, p])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X)[:, 1]


def reranker_weight(n_outcomes: int, max_weight: float = MAX_WEIGHT, half_at: int = HALF_WEIGHT_AT) -> float:
    """Fisher weight of the re-ranker after ``n_outcomes`` inspected providers.

    >>> reranker_weight(20), reranker_weight(0)
    (2.0, 0.0)
    """
    return float(max_weight * n_outcomes / (n_outcomes + half_at))


def rerank(features: pd.DataFrame, provider_scores: pd.DataFrame, outcomes, groups: pd.Series | None = None,
           weights: dict | None = None, reranker: OutcomeReranker | None = None):
    """Add the re-ranker's column to ``provider_scores`` and its weight to ``weights``.

    Returns ``(provider_scores, weights, fitted_reranker_or_None)``; the inputs are not changed.
    The column holds the probability of the providers that were *not* inspected (NaN for the
    inspected ones, which :func:`~fraudkit.prioritise.tail_probability` treats as neutral).
    """
    weights = dict(weights or {})
    labels = outcomes.labels().reindex(provider_scores.index).dropna().astype(int)
    if labels.nunique() < 2:
        return provider_scores, weights, None
    design = provider_design(features, provider_scores, groups)
    model = (reranker or OutcomeReranker()).fit(design.loc[labels.index], labels.to_numpy())
    probability = pd.Series(model.predict_proba(design)[:, 1], index=design.index)
    probability[labels.index] = np.nan
    scores = provider_scores.copy()
    scores[RERANKER] = probability
    weights[RERANKER] = reranker_weight(len(labels))
    return scores, weights, model


def mark_inspected(ranked: pd.DataFrame, outcomes, inspections: int) -> pd.DataFrame:
    """Put already-inspected providers after the others and say what their inspection found.

    The order of :func:`fraudkit.prioritise.rank_providers` is kept within each part; ranks
    are renumbered, ``inspect`` marks the first ``inspections`` *uninspected* providers, and
    ``inspected`` / ``outcome`` / ``inspected_on`` are added, so that no team is sent back by
    mistake.
    """
    verdicts = outcomes.providers
    done = ranked["provider_id"].astype(str).isin(verdicts.index).to_numpy()
    order = np.concatenate([np.flatnonzero(~done), np.flatnonzero(done)])
    out = ranked.iloc[order].reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    inspected = done[order]
    out["inspect"] = (~inspected) & (out["rank"] <= inspections)
    out["inspected"] = inspected
    ids = out["provider_id"].astype(str)
    out["outcome"] = ids.map(verdicts["outcome"]).fillna("").to_numpy()
    out["inspected_on"] = ids.map(verdicts["inspected_on"].dt.strftime("%Y-%m-%d")).fillna("").to_numpy()
    return out
