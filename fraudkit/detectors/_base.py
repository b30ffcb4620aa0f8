"""The one detector contract of fraudkit.

Every detector, tabular or graph, is a scikit-learn estimator with the same face
(modelled on PyOD's ``BaseDetector``), so that evaluation and prioritisation never
care which detector made a score:

- ``__init__`` stores hyperparameters untouched (``contamination`` or ``budget``
  among them);
- ``fit(X)`` learns and returns ``self``; learned state ends in ``_``:
  ``decision_scores_`` (scores of the training samples) and ``threshold_``;
- ``score_samples(X)`` returns one float per sample, **higher = more suspicious**,
  everywhere and always;
- ``predict(X)`` returns 1 where the score exceeds ``threshold_``;
- ``explain(X, top=3)`` returns the reasons behind each sample's score as a
  long DataFrame (see :data:`EXPLAIN_COLUMNS`), in words an inspector can check.

What a "sample" is depends on the detector and is declared in ``entity``
(``"claim"``, ``"patient"`` or ``"provider"``); ``sample_ids(X)`` gives their ids.
Tabular detectors take a feature DataFrame indexed by the entity id; graph
detectors take a :class:`fraudkit.graph.ClaimsNetwork`.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

#: Columns of the frame returned by ``explain``: the sample's id, the rank of the
#: reason (1 = strongest), the feature or evidence it rests on, the value observed,
#: its contribution to the score (larger = weighs more) and the sentence for the inspector.
EXPLAIN_COLUMNS = ["id", "rank", "feature", "value", "contribution", "reason"]

ENTITIES = ("claim", "patient", "provider")


class BaseDetector(BaseEstimator):
    """Base class of all fraudkit detectors.

    Parameters
    ----------
    contamination : float, default=0.05
        Expected share of suspicious samples; sets ``threshold_`` when ``budget`` is None.
    budget : int or None, default=None
        Number of samples an inspection team can look at; when given, ``threshold_``
        is the score of the ``budget``-th most suspicious training sample.
    """

    entity: str = "claim"

    def __init__(self, contamination: float = 0.05, budget: int | None = None):
        self.contamination = contamination
        self.budget = budget

    # -- to implement -------------------------------------------------------------
    @abstractmethod
    def _fit(self, X) -> np.ndarray:
        """Learn from X; return the training samples' scores (higher = more suspicious)."""

    @abstractmethod
    def _score(self, X) -> np.ndarray:
        """Scores of the samples of X from the learned state."""

    @abstractmethod
    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Reasons per sample, with the columns of :data:`EXPLAIN_COLUMNS`."""

    # -- shared ----------------------------------------------------------------------
    def sample_ids(self, X) -> pd.Index:
        """Ids of the samples of X, in the order of ``score_samples``."""
        return X.index if isinstance(X, (pd.DataFrame, pd.Series)) else X.ids(self.entity)

    def fit(self, X, y=None):
        self._check_params()
        scores = np.asarray(self._fit(X), dtype=float)
        self.decision_scores_ = scores
        self.threshold_ = self._threshold(scores)
        return self

    def score_samples(self, X) -> np.ndarray:
        check_is_fitted(self, "threshold_")
        return np.asarray(self._score(X), dtype=float)

    def predict(self, X) -> np.ndarray:
        return (self.score_samples(X) > self.threshold_).astype(int)

    def scores(self, X) -> pd.Series:
        """``score_samples`` as a Series indexed by sample id."""
        return pd.Series(self.score_samples(X), index=self.sample_ids(X), name=type(self).__name__)

    def _check_params(self) -> None:
        if self.budget is None and not 0.0 < self.contamination < 0.5:
            raise ValueError(f"contamination must be in (0, 0.5), got {self.contamination!r}")
        if self.budget is not None and int(self.budget) < 1:
            raise ValueError(f"budget must be a positive number of inspections, got {self.budget!r}")

    def _threshold(self, scores: np.ndarray) -> float:
        if len(scores) == 0:
            return float("inf")
        if self.budget is not None:
            k = min(int(self.budget), len(scores))
            return float(np.partition(scores, len(scores) - k)[len(scores) - k]) - 1e-12
        return float(np.quantile(scores, 1.0 - self.contamination))


def rollup(
    claim_scores: pd.Series,
    claims: pd.DataFrame,
    by: str = "provider_id",
    weight: str | None = "fund_paid",
    flag_share: float = 0.01,
) -> pd.DataFrame:
    """Lift claim scores to the patients or providers that made the claims.

    The documented aggregation of fraudkit: for each group (provider or patient),

    - ``score``: the money-weighted mean claim score (weights = ``weight`` column,
      e.g. fund_paid), so that a provider is as suspicious as the money it bills suspiciously;
    - ``top_score``: the mean of its 5 % highest claim scores (at least one claim), which
      catches a scheme hidden among much normal business;
    - ``excess``: how surprising the group's number of claims among the batch's top
      ``flag_share`` is, ``-log P(X ≥ x)`` for ``X ~ Binomial(claims, flag_share)``. It weighs
      share against size: 30 top claims of 300 is far stronger evidence than 1 of 3;
    - ``claims`` and ``money`` (sum of ``weight``).

    Parameters
    ----------
    claim_scores : Series
        Indexed by claim_id, higher = more suspicious.
    claims : DataFrame
        Has ``claim_id``, the ``by`` column and the ``weight`` column.

    Examples
    --------
    >>> claims = pd.DataFrame({"claim_id": ["a", "b", "c"], "provider_id": ["H1", "H1", "H2"],
    ...                        "fund_paid": [100.0, 300.0, 50.0]})
    >>> rollup(pd.Series([0.0, 1.0, 0.5], index=["a", "b", "c"]), claims, flag_share=0.3).round(2)
                 score  top_score  excess  claims  money
    provider_id
    H1            0.75        1.0    0.67       2  400.0
    H2            0.50        0.5   -0.00       1   50.0
    """
    frame = pd.DataFrame({
        "group": claims[by].to_numpy(),
        "score": claim_scores.reindex(claims["claim_id"]).to_numpy(dtype=float),
        "w": claims[weight].to_numpy(dtype=float) if weight else 1.0,
    })
    frame["w"] = frame["w"].clip(lower=0.0) + 1e-9
    frame["sw"] = frame["score"] * frame["w"]
    grouped = frame.groupby("group", sort=True, observed=True)
    out = pd.DataFrame({"score": grouped["sw"].sum() / grouped["w"].sum()})
    codes = out.index.get_indexer(frame["group"])
    known = codes >= 0  # claims without a group are left out, as groupby leaves them
    score = frame["score"].to_numpy()
    for column in ("top_score", "excess"):
        out[column] = group_rollup(score[known], codes[known], len(out), column,
                                   flag_share, np.nanquantile(score, 1.0 - flag_share))
    out["claims"] = grouped.size()
    out["money"] = grouped["w"].sum().round(2)
    out.index.name = by
    return out


def group_rollup(score: np.ndarray, codes: np.ndarray, n_groups: int, column: str, flag_share: float = 0.01,
                 cut: float | None = None) -> np.ndarray:
    """One column of :func:`rollup` from claim scores and each claim's group position (0..n_groups-1).

    ``"top_score"``: the mean of each group's 5 % highest scores (at least one claim; ties in row
    order, NaN last); ``"excess"``: ``-log P(X >= hits)`` for ``X ~ Binomial(claims, flag_share)``,
    hits = the group's claims scoring above ``cut`` (default: the scores' ``1 - flag_share``
    quantile). Groups without claims get NaN. Integer positions, no string ids: the scoring
    pipeline calls it with positions it already has.
    """
    size = np.bincount(codes, minlength=n_groups)[:n_groups]
    if column == "excess":
        if cut is None:
            cut = np.nanquantile(score, 1.0 - flag_share)
        hits = np.bincount(codes[score > cut], minlength=n_groups)[:n_groups]
        seen = size > 0
        out = np.full(n_groups, np.nan)
        out[seen] = -stats.binom.logsf(hits[seen] - 1, size[seen], flag_share)
        return out
    if column != "top_score":
        raise ValueError(f"column must be top_score or excess, got {column!r}")
    n = len(score)
    order = np.lexsort((np.arange(n), -score, codes))
    start = np.cumsum(size) - size
    rank = np.empty(n)
    rank[order] = np.arange(n) - start[codes[order]] + 1.0
    top = (rank <= np.maximum(1, np.ceil(0.05 * size[codes]))) & ~np.isnan(score)
    means = pd.Series(score[top]).groupby(codes[top], sort=True).mean()
    return means.reindex(np.arange(n_groups)).to_numpy()
