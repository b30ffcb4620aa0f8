"""The supervised re-ranker: learn from inspected providers which evidence finds fraud in this batch.

How the final provider ranking blends the unsupervised evidence with what inspections found:

1. **Design.** Each provider is described by the unsupervised detectors' evidence
   (``-log`` tail probability of each detector's score; not propagation's, see
   :data:`NOT_IN_DESIGN`) and by its provider features, each as
   two tail evidences (``-log`` upper- and lower-tail probability), so that scales and heavy
   tails do not matter and extremes count more than the middle. Tail probabilities are within
   the provider type when the ranking compares peers (``ModelConfig.peer_groups``), else
   across all providers, as the ranking does.
2. **Model.** Inspected providers are few and biased (the ones the ranking put first), so the
   re-ranker learns positive-unlabelled: an L2 logistic regression of ``confirmed`` (1) against
   ``cleared`` (0, weight 1) *and* the uninspected providers (0, weight ``unlabelled_weight``,
   most of them are honest), with the confirmed class weighted up to balance. Cleared providers
   pull the ones that look like them down, confirmed ones pull their look-alikes up, and which
   detectors deserve trust in this batch is learnt too. (In simulated rounds on generated
   200k-claim batches, default and hard, seeds 1-2, this did at least as well as a model
   trained on the inspected providers alone: rounds 2-5 precision 0.24 vs 0.23; a gradient
   boosting re-ranker (depth 2, 60 trees) did worse, 0.21 to 0.22, no better than the
   unsupervised ranking re-run, 0.21.)
3. **Probability.** With at least ``min_calibration`` inspected providers in each class, the
   model's output is calibrated on them by :class:`~sklearn.calibration.CalibratedClassifierCV`
   (sigmoid, model frozen). Below that, the documented fallback is the regression's own output
   with the class balancing undone (log-odds moved by the log of the confirmed share among the
   inspected), roughly calibrated but unchecked. Calibration is monotone: it never changes the order.
4. **Blend.** The probability of the *uninspected* providers becomes one more column,
   ``reranker``, combined with the detectors by :func:`fraudkit.prioritise.combine_scores`
   (weighted Fisher on tail probabilities). Its weight grows with the outcomes it learnt from:
   ``weight = MAX_WEIGHT * n / (n + HALF_WEIGHT_AT)`` (n = inspected providers; 2 at 20, 3.2 at
   80), while every detector keeps its weight (1). With one class only (all confirmed or all
   cleared) nothing is learnt; the column is left out and only propagation uses the outcomes.
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
#: Provider score columns kept out of the design. Propagation is seeded with the confirmed
#: providers themselves, so its score of a confirmed provider is made by its own label: learnt
#: as an input it taught the re-ranker "propagation finds fraud" from the seeds alone and
#: crowded out the evidence that does (rounds 2-5 precision on four generated 200k-claim
#: batches, default and hard, seeds 1-2: 0.23 with it, 0.24 without). Propagation still
#: counts, as its own Fisher column; a leave-one-seed-out propagation input measured the
#: same as none (0.242 vs 0.242 on eight batches), so it was not kept.
NOT_IN_DESIGN = (RERANKER, "propagation")
#: Label of an uninspected provider in :meth:`OutcomeReranker.fit`.
UNLABELLED = -1


def provider_design(features: pd.DataFrame, provider_scores: pd.DataFrame, groups: pd.Series | None = None) -> pd.DataFrame:
    """The re-ranker's inputs: detector evidence and provider features made comparable.

    Parameters
    ----------
    features : DataFrame
        ``Features.providers`` (indexed by provider_id).
    provider_scores : DataFrame
        One column per detector, indexed by provider_id (higher = more suspicious); the columns
        of :data:`NOT_IN_DESIGN` are left out.
    groups : Series, optional
        Peer group of each provider (provider_type); tail probabilities are within it.

    Returns
    -------
    DataFrame
        ``det_<detector>``, ``high_<feature>``, ``low_<feature>``: ``-log`` tail probabilities,
        indexed like ``provider_scores``.

    Examples
    --------
    >>> s = pd.DataFrame({"iforest": [0.9, 0.1, 0.5]}, index=["H1", "H2", "H3"])
    >>> f = pd.DataFrame({"dup_share": [0.0, 0.3, 0.1]}, index=["H1", "H2", "H3"])
    >>> provider_design(f, s).round(2).to_dict("list")
    {'det_iforest': [1.1, 0.0, 0.41], 'high_dup_share': [0.0, 1.1, 0.41], 'low_dup_share': [1.1, 0.0, 0.41]}
    """
    index = provider_scores.index
    out = {}
    for column in provider_scores.columns:
        if column in NOT_IN_DESIGN or not provider_scores[column].notna().any():
            continue
        out[f"det_{column}"] = np.abs(np.log(tail_probability(provider_scores[column], groups))).to_numpy()
    table = features.reindex(index)
    for column in table.columns:
        if column in NOT_EVIDENCE or not pd.api.types.is_numeric_dtype(table[column]):
            continue
        values = table[column].astype(float)
        if values.nunique(dropna=True) < 2:
            continue
        out[f"high_{column}"] = np.abs(np.log(tail_probability(values, groups))).to_numpy()
        out[f"low_{column}"] = np.abs(np.log(tail_probability(-values, groups))).to_numpy()
    return pd.DataFrame(out, index=index).fillna(0.0)


class OutcomeReranker(BaseEstimator, ClassifierMixin):
    """Probability that a provider is confirmed on inspection, learnt from past outcomes (positive-unlabelled).

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 strength of the logistic regression (small: few labels, many inputs).
    unlabelled_weight : float, default=1.0
        Weight of each uninspected provider (label ``-1``) as a presumed honest one.
    min_calibration : int, default=8
        Inspected providers needed in *each* class to calibrate (sigmoid) on them; below, the
        regression's own output with the class balancing undone.
    random_state : int, default=0

    Attributes
    ----------
    model_ : Pipeline
        Standardisation and the logistic regression.
    calibrator_ : CalibratedClassifierCV or None
    calibrated_ : bool
    prior_ : float
        Share of confirmed providers among the inspected.
    coef_ : Series
        Coefficients per input (standardised), for explanations.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    >>> y = np.where(X["a"] > 0.8, 1, np.where(X.index < 30, 0, -1))
    >>> r = OutcomeReranker().fit(X, y)
    >>> bool(r.predict_proba(pd.DataFrame({"a": [2.0], "b": [0.0]}))[0, 1] > 0.5)
    True
    """

    def __init__(self, C: float = 0.1, unlabelled_weight: float = 1.0, min_calibration: int = 8, random_state: int = 0):
        self.C = C
        self.unlabelled_weight = unlabelled_weight
        self.min_calibration = min_calibration
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y) -> "OutcomeReranker":
        """``y``: 1 confirmed, 0 cleared, -1 not inspected (unlabelled)."""
        y = np.asarray(y, dtype=int)
        labelled = y != UNLABELLED
        counts = np.bincount(y[labelled], minlength=2)
        if (counts == 0).any():
            raise ValueError("the re-ranker needs both confirmed and cleared providers")
        self.classes_ = np.array([0, 1])
        self.features_ = list(X.columns)
        self.prior_ = float(counts[1] / counts.sum())
        target = (y == 1).astype(int)
        weight = np.where(labelled, 1.0, float(self.unlabelled_weight))
        weight = np.where(target == 1, weight[target == 0].sum() / max(weight[target == 1].sum(), 1e-12), weight)
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=3000, random_state=self.random_state))
        self.model_.fit(X, target, logisticregression__sample_weight=weight)
        self.coef_ = pd.Series(self.model_[-1].coef_[0], index=self.features_)
        self.calibrated_ = bool(counts.min() >= self.min_calibration)
        self.calibrator_ = None
        if self.calibrated_:
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.frozen import FrozenEstimator

            self.calibrator_ = CalibratedClassifierCV(FrozenEstimator(self.model_), method="sigmoid")
            self.calibrator_.fit(X[labelled], y[labelled])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        X = X.reindex(columns=self.features_, fill_value=0.0)
        if self.calibrator_ is not None:
            p = self.calibrator_.predict_proba(X)[:, 1]
        else:
            # Balancing acts as if confirmed cases were half the population; undo it on the log-odds.
            p = self.model_.predict_proba(X)[:, 1]
            shift = np.log(self.prior_ / (1 - self.prior_)) if 0 < self.prior_ < 1 else 0.0
            logit = np.log(np.clip(p, 1e-12, 1) / np.clip(1 - p, 1e-12, 1)) + shift
            p = 1.0 / (1.0 + np.exp(-logit))
        return np.column_stack([1 - p, p])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.decision_function(X.reindex(columns=self.features_, fill_value=0.0))


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
    target = labels.reindex(design.index).fillna(UNLABELLED).astype(int).to_numpy()
    model = (reranker or OutcomeReranker()).fit(design, target)
    probability = pd.Series(model.predict_proba(design)[:, 1], index=design.index)
    probability[labels.index] = np.nan
    scores = provider_scores.copy()
    scores[RERANKER] = probability
    weights[RERANKER] = reranker_weight(len(labels))
    model.reasons_ = explain_reranker(model, design, probability, len(labels))
    return scores, weights, model


def explain_reranker(model: OutcomeReranker, design: pd.DataFrame, probability: pd.Series, n_outcomes: int,
                     top: int = 2) -> pd.DataFrame:
    """Reasons of the re-ranker, for the uninspected providers it finds likely: what makes them look like the confirmed.

    Long table ``id, rank, feature, value, contribution, reason, detector`` (as the detectors'
    ``explain``): the inputs whose standardised value times coefficient pushes the provider up most.
    """
    likely = probability[probability.notna()]
    likely = likely[likely >= likely.quantile(0.75)] if len(likely) else likely
    if not len(likely):
        return pd.DataFrame(columns=["id", "rank", "feature", "value", "contribution", "reason", "detector"])
    scaler = model.model_[0]
    z = (design.loc[likely.index, model.features_].to_numpy() - scaler.mean_) / np.where(scaler.scale_ > 0, scaler.scale_, 1)
    push = z * model.coef_.to_numpy()
    rows = []
    for i, pid in enumerate(likely.index):
        order = [j for j in np.argsort(-push[i])[:top] if push[i, j] > 0]
        if not order:
            continue
        names = []
        for j in order:
            kind, _, name = model.features_[j].partition("_")
            names.append({"det": f"{name} detector", "high": f"high {name}", "low": f"low {name}"}.get(kind, name))
        j = order[0]
        rows.append({"id": pid, "rank": 1, "feature": model.features_[j], "value": float(design.at[pid, model.features_[j]]),
                     "contribution": float(push[i, j]),
                     "reason": f"looks like the providers confirmed in {n_outcomes} past inspections "
                               f"(p = {likely[pid]:.2f}): {', '.join(names)}",
                     "detector": RERANKER})
    return pd.DataFrame(rows, columns=["id", "rank", "feature", "value", "contribution", "reason", "detector"])


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
