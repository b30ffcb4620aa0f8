"""Prioritisation: the one place where detector scores become a ranking for flight inspection.

How scores are combined (documented, rank-based, no assumption on each detector's scale):

1. Each detector's scores for an entity (claim, patient or provider) become **empirical
   upper-tail probabilities** ``p = rank / n`` (1/n for the most suspicious, 1 for the least).
   A detector may be *fenced*: its scores count as evidence only above Tukey's fence
   ``Q3 + f·IQR`` of its own distribution (p = 1 below). Graph detectors are fenced, since
   everyone shares some patients and sits in some loose block: only a clear outlier accuses.
2. The detectors' tail probabilities are combined by **weighted Fisher's method**:
   ``X = -2 Σ w_d log p_d``. A provider that one detector puts at the very top scores
   high even if others see nothing (collusion is invisible claim by claim), and one that
   several detectors agree on scores higher still.
3. ``suspicion = 1 - chi2.sf(X, 2 Σ w_d)``: the probability that the evidence is not chance,
   in [0, 1]; ranks use ``-log sf`` so that they keep order even where suspicion rounds to 1.

Providers are then ranked for a budget of inspections, with the money at stake
(fund_paid of their flagged claims weighted by claim suspicion), the schemes suspected,
the top reasons and the evidence claims an inspection team should pull.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from fraudkit._threads import map_in_order, threads_for

#: Columns of the ranked provider table (``providers.csv``), in order.
PROVIDER_COLUMNS = [
    "rank", "provider_id", "provider_type", "tier", "region", "suspicion", "money_at_stake",
    "fund_paid", "claims", "flagged_claims", "schemes", "reasons", "evidence_claims",
]


def tail_probability(scores: pd.Series, groups: pd.Series | None = None) -> pd.Series:
    """Empirical upper-tail probability of each score (1/n for the highest, 1 for the lowest).

    Ties share the larger probability (no detector gains by giving equal scores).
    Missing scores get ``exp(-1)``, whose ``-log`` is the mean under chance, so a
    detector that did not see an entity neither accuses nor clears it.
    With ``groups``, each score is compared only with its own group (like with like).

    Examples
    --------
    >>> tail_probability(pd.Series([0.1, 0.9, 0.5, 0.5], index=list("abcd"))).tolist()
    [1.0, 0.25, 0.75, 0.75]
    """
    values = scores.astype(float)
    if groups is None:
        ranks = values.rank(ascending=False, method="max")
        n = values.notna().sum()
    else:
        grouped = values.groupby(groups.reindex(values.index).to_numpy(), observed=True)
        ranks = grouped.rank(ascending=False, method="max")
        n = grouped.transform("count")
    p = ranks / np.maximum(n, 1)
    return p.fillna(np.exp(-1.0)).clip(1e-12, 1.0)


def fence(scores: pd.Series, factor: float) -> float:
    """Tukey's fence ``Q3 + factor · IQR`` of a detector's scores (3 = "far out").

    Examples
    --------
    >>> fence(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]), 1.5)
    7.0
    """
    q1, q3 = scores.quantile([0.25, 0.75])
    return float(q3 + factor * (q3 - q1))


def detector_evidence(scores: pd.Series, groups: pd.Series | None = None, fence_factor: float | None = None) -> pd.Series:
    """How strongly one detector accuses each entity: ``-log`` of its tail probability,
    0 at or below the detector's fence (when it has one).

    Examples
    --------
    >>> detector_evidence(pd.Series([1.0, 2.0, 3.0, 4.0, 100.0]), fence_factor=3.0).round(2).tolist()
    [0.0, 0.0, 0.0, 0.0, 1.61]
    """
    if groups is None:  # by position: no alignment of (Arrow string) ids, same numbers
        return pd.Series(_evidence(scores.to_numpy(), fence_factor), index=scores.index, name=scores.name)
    evidence = -np.log(tail_probability(scores, groups))
    if fence_factor is not None:
        evidence = evidence.where(scores > fence(scores.dropna(), fence_factor), 0.0)
    return evidence


def _evidence(values: np.ndarray, fence_factor: float | None = None) -> np.ndarray:
    """:func:`detector_evidence` without groups, of a plain array (the same pandas operations on a
    RangeIndex: aligning string ids would convert them to Python objects several times per detector)."""
    scores = pd.Series(values)
    evidence = -np.log(tail_probability(scores))
    if fence_factor is not None:
        evidence = evidence.where(scores > fence(scores.dropna(), fence_factor), 0.0)
    return evidence.to_numpy()


def combine_scores(
    scores: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    groups: pd.Series | None = None,
    fences: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Combine several detectors' scores of one entity into one suspicion (Fisher's method).

    Parameters
    ----------
    scores : DataFrame
        One column per detector, indexed by entity id, higher = more suspicious.
        A column that is entirely missing (a skipped detector) is ignored.
    weights : mapping, optional
        Weight per detector column (default 1 each; 0 drops a detector).
    groups : Series, optional
        Peer group of each entity (e.g. provider_type) for like-with-like tail probabilities.
    fences : mapping, optional
        Detector column -> Tukey factor; that detector's scores count only above
        :func:`fence` (below it, p = 1: no evidence either way).

    Returns
    -------
    DataFrame
        ``suspicion`` in [0, 1] and ``evidence`` (= -log of the combined tail probability,
        the sort key), indexed like ``scores``.

    Examples
    --------
    >>> s = pd.DataFrame({"iforest": [0.1, 0.2, 0.9, 0.3], "graph": [0.0, 5.0, 0.3, 0.2]},
    ...                  index=["H1", "H2", "H3", "H4"])
    >>> combine_scores(s).sort_values("evidence", ascending=False).index.tolist()
    ['H3', 'H2', 'H4', 'H1']
    """
    weights = dict(weights or {})
    used = [c for c in scores.columns if scores[c].notna().any() and weights.get(c, 1.0) > 0]
    if not used:
        raise ValueError("no detector produced scores to combine")
    statistic = np.zeros(len(scores))
    total_weight = 0.0
    fences = dict(fences or {})

    def evidence_of(column: str, values: pd.Series) -> np.ndarray:
        if groups is None:
            return _evidence(values.to_numpy(), fences.get(column))
        return detector_evidence(values, groups, fences.get(column)).to_numpy()

    columns = [scores[column] for column in used]  # taken here: the threads only read them
    evidences = map_in_order(evidence_of, used, columns, threads=threads_for(len(scores)))  # each detector's ranks on a thread
    for column, evidence in zip(used, evidences):  # summed in the detectors' order, as one by one
        w = float(weights.get(column, 1.0))
        statistic += 2.0 * w * evidence
        total_weight += w
    dof = 2.0 * total_weight
    log_sf = stats.chi2.logsf(statistic, dof)
    return pd.DataFrame(
        {"suspicion": np.clip(-np.expm1(log_sf), 0.0, 1.0) + 0.0, "evidence": np.maximum(-log_sf, 0.0) + 0.0},  # no -0.0
        index=scores.index,
    )


def money_at_stake(claims: pd.DataFrame, by: str = "provider_id") -> pd.Series:
    """Expected money at stake per provider (or patient): Σ fund_paid × suspicion over flagged claims.

    ``claims`` needs ``by``, ``fund_paid``, ``suspicion`` and ``flagged``.
    """
    at_stake = claims["fund_paid"].where(claims["flagged"], 0.0) * claims["suspicion"]
    return _GroupKey(claims[by]).sum(at_stake).round(2)


class _GroupKey:
    """Group rows by a column of ids through integer codes (Arrow's dictionary encoding of string ids)
    instead of Python strings; sums are pandas' own, over the same rows in the same order."""

    def __init__(self, keys: pd.Series):
        codes, uniques = pd.factorize(keys, use_na_sentinel=True)
        self.keys, self.ok = keys, bool(len(codes) == 0 or codes.min() >= 0)
        self.codes, self.labels = codes, pd.Index(uniques)

    def _grouped(self, values: pd.Series):
        if not self.ok:  # missing ids: pandas drops them
            return values.groupby(self.keys.to_numpy(), observed=True), None
        return pd.Series(values.to_numpy()).groupby(self.codes), self.labels

    def _labelled(self, result: pd.Series, labels) -> pd.Series:
        if labels is not None:
            result.index = labels[result.index.to_numpy()]
        return result

    def sum(self, values: pd.Series) -> pd.Series:
        grouped, labels = self._grouped(values)
        return self._labelled(grouped.sum(), labels)

    def size(self) -> pd.Series:
        if not self.ok:
            return self.keys.groupby(self.keys.to_numpy(), observed=True).size()
        return pd.Series(np.bincount(self.codes, minlength=len(self.labels)).astype(np.int64), index=self.labels)


def rank_providers(
    provider_scores: pd.DataFrame,
    claims: pd.DataFrame,
    providers: pd.DataFrame,
    reasons: pd.DataFrame | None = None,
    schemes: pd.Series | None = None,
    *,
    inspections: int | None = None,
    region: str | None = None,
    provider_type: str | None = None,
    evidence_claims: int = 10,
    top_reasons: int = 3,
) -> pd.DataFrame:
    """Rank providers for flight inspection.

    Parameters
    ----------
    provider_scores : DataFrame
        Indexed by provider_id with ``suspicion`` and ``evidence`` (see :func:`combine_scores`).
    claims : DataFrame
        Scored claims: ``claim_id``, ``provider_id``, ``fund_paid``, ``suspicion``, ``flagged``.
    providers : DataFrame
        The batch's providers table.
    reasons : DataFrame, optional
        Long table ``id, reason, strength`` of provider reasons (any detector); the
        ``top_reasons`` strongest per provider are kept, joined with " | ".
    schemes : Series, optional
        Suspected schemes per provider id (";"-joined names).
    inspections : int, optional
        Inspection budget k: only the top k are returned (all when None).
    region, provider_type : str, optional
        Restrict the ranking to one pooling region or one provider type.

    Returns
    -------
    DataFrame
        The columns of :data:`PROVIDER_COLUMNS` (plus any detector columns of
        ``provider_scores``), rank 1 first.
    """
    table = providers.set_index("provider_id")[["provider_type", "tier", "region"]].copy()
    table["provider_type"] = table["provider_type"].astype(str)
    table = table.join(provider_scores, how="left")
    table["suspicion"] = table["suspicion"].fillna(0.0)
    table["evidence"] = table["evidence"].fillna(0.0)
    by_provider = _GroupKey(claims["provider_id"])
    table["fund_paid"] = by_provider.sum(claims["fund_paid"]).round(2).reindex(table.index).fillna(0.0)
    table["claims"] = by_provider.size().reindex(table.index).fillna(0).astype(int)
    table["flagged_claims"] = by_provider.sum(claims["flagged"]).reindex(table.index).fillna(0).astype(int)
    at_stake = claims["fund_paid"].where(claims["flagged"], 0.0) * claims["suspicion"]
    table["money_at_stake"] = by_provider.sum(at_stake).round(2).reindex(table.index).fillna(0.0)

    top = claims[claims["flagged"]].sort_values(["suspicion", "fund_paid", "claim_id"], ascending=[False, False, True])
    top = top.groupby(top["provider_id"].to_numpy(), observed=True).head(evidence_claims)
    table["evidence_claims"] = top.groupby(top["provider_id"].to_numpy(), observed=True)["claim_id"].agg(";".join).reindex(table.index).fillna("")

    if reasons is not None and len(reasons):
        best = reasons.sort_values(["id", "strength", "reason"], ascending=[True, False, True])
        best = best.drop_duplicates(["id", "reason"]).groupby("id", observed=True).head(top_reasons)
        table["reasons"] = best.groupby("id", observed=True)["reason"].agg(" | ".join).reindex(table.index).fillna("")
    else:
        table["reasons"] = ""
    table["schemes"] = (schemes.reindex(table.index).fillna("") if schemes is not None else "")

    if region is not None:
        table = table[table["region"].astype(str) == str(region)]
    if provider_type is not None:
        table = table[table["provider_type"] == provider_type]
    # Evidence first; money and id break ties so the order is deterministic.
    table = table.reset_index().sort_values(["evidence", "money_at_stake", "provider_id"], ascending=[False, False, True])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    if inspections is not None:
        table = table.head(int(inspections))
    extra = [c for c in table.columns if c not in PROVIDER_COLUMNS and c != "evidence"]
    return table[PROVIDER_COLUMNS + extra].reset_index(drop=True)


#: Words in a reason's feature or detector name, and the scheme they point to. The first match wins.
REASON_SCHEMES: tuple[tuple[str, str], ...] = (
    ("readmi", "decomposed_stay"),
    ("without_daily", "bed_hanging"),
    ("empty_day", "bed_hanging"),
    ("identical", "phantom_services"),
    ("phantom", "phantom_services"),
    ("duplicate", "over_charging"),
    ("over_catalogue", "over_charging"),
    ("price", "drug_swapping"),
    ("days_supplied", "drug_reselling"),
    ("supply", "drug_reselling"),
    ("pharmacies", "drug_reselling"),
    ("distant", "card_lending"),
    ("regions_same_day", "card_lending"),
    ("implausible", "card_lending"),
    ("admission", "fake_admission"),
    ("los", "fake_admission"),
    ("stay", "fake_admission"),
    ("upcod", "upcoding"),
    ("cost", "upcoding"),
    ("rings", "collusion_ring"),
    ("dense_blocks", "collusion_ring"),
    ("shared_patients", "collusion_ring"),
)


def schemes_from_reasons(reasons: pd.DataFrame, top: int = 3) -> pd.Series:
    """Suspected schemes per id (";"-joined, strongest first) from its strongest reasons.

    Each reason's feature (then detector) name is matched against :data:`REASON_SCHEMES`;
    reasons without strength (their detector does not accuse the provider) name none.

    Examples
    --------
    >>> r = pd.DataFrame({"id": ["H1", "H1", "H2"], "feature": ["readmit_15d_share", "dup_lines", "x"],
    ...                   "detector": ["provider_features", "provider_features", "rings"],
    ...                   "strength": [3.0, 1.0, 2.0]})
    >>> schemes_from_reasons(r).to_dict()
    {'H1': 'decomposed_stay', 'H2': 'collusion_ring'}
    """
    if reasons is None or len(reasons) == 0:
        return pd.Series(dtype=str)

    def scheme_of(feature: str, detector: str) -> str:
        for text in (str(feature).lower(), str(detector).lower()):
            for word, scheme in REASON_SCHEMES:
                if word in text:
                    return scheme
        return ""

    ranked = reasons[reasons["strength"] > 0].sort_values(["id", "strength"], ascending=[True, False])
    ranked = ranked.groupby("id", observed=True).head(top)
    names = [scheme_of(f, d) for f, d in zip(ranked["feature"], ranked["detector"])]
    ranked = ranked.assign(scheme=names)
    ranked = ranked[ranked["scheme"] != ""].drop_duplicates(["id", "scheme"])
    return ranked.groupby("id", observed=True)["scheme"].agg(";".join)


__all__ = ["PROVIDER_COLUMNS", "REASON_SCHEMES", "detector_evidence", "fence", "schemes_from_reasons", "combine_scores", "money_at_stake", "rank_providers", "tail_probability"]
