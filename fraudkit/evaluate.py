"""How good is a ranking? Measured against the planted (or confirmed) fraud of a labelled batch.

What matters to an inspection team is the ranking of **providers**: how many of the
``k`` it can visit are fraudulent (precision@k, k = inspection budget) and how much of
the fraudulent money those ``k`` hold. Claim scores are judged by PR-AUC (average
precision, robust to the rarity of fraud) and by the recall of each scheme among the
top 5 % of claims. One function, :func:`evaluate`, computes all of it as a flat dict
(ready for MLflow ``log_metrics``); :func:`evaluation_table` turns it into a tidy frame.
:func:`compare_detectors` puts PyOD baselines and fraudkit's detector side by side on
the same feature table.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["compare_detectors", "evaluate", "evaluation_table", "pyod_baselines", "split_schemes"]


def split_schemes(fraud_type: pd.Series) -> pd.DataFrame:
    """Long frame ``(id, scheme)``: one row per scheme named in ``fraud_type`` (``;``-joined free strings).

    >>> split_schemes(pd.Series(["a; b", "", None, "b"], index=["c1", "c2", "c3", "c4"]))
       id scheme
    0  c1      a
    1  c1      b
    2  c4      b
    """
    s = fraud_type.fillna("").astype(str).str.split(";").explode().str.strip()
    s = s[s.str.len() > 0]
    return pd.DataFrame({"id": s.index.to_numpy(), "scheme": s.to_numpy()})


def _truth(labels, entity: str, ids: pd.Index) -> pd.Series:
    flags = labels.fraudulent(entity)
    flags = flags[~flags.index.duplicated()]
    return flags.reindex(ids, fill_value=False).astype(bool) if len(ids) else flags.astype(bool)


def _rank(scores: pd.Series) -> pd.Index:
    """Ids from most to least suspicious (NaN last, ties in id order)."""
    s = scores.astype(float).fillna(-np.inf)
    return s.sort_values(ascending=False, kind="stable").index


def _auc(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    if y.all() or not y.any():
        return float("nan"), float("nan")
    s = np.nan_to_num(s, nan=-1e300, neginf=-1e300)
    return float(average_precision_score(y, s)), float(roc_auc_score(y, s))


def evaluate(labels, claims: pd.DataFrame, claim_scores: pd.Series | None = None,
             provider_scores: pd.Series | None = None, k: int | None = None, top_share: float = 0.05) -> dict:
    """Quality of claim and provider scores against the labels of a batch.

    Parameters
    ----------
    labels : fraudkit.io.Labels
        Ground truth (``labels.claims``, ``labels.providers``; ``fraud_type`` "" = legitimate).
    claims : DataFrame
        The batch's claims (``claim_id``, ``provider_id``, ``fund_paid``): the money at stake.
    claim_scores, provider_scores : Series or None
        Indexed by claim_id / provider_id, higher = more suspicious. Ids without a score rank last.
    k : int or None
        Inspection budget; default = the number of fraudulent providers.
    top_share : float, default=0.05
        The "top 5 %" of claims and of providers.

    Returns
    -------
    dict
        Flat ``name -> number``:

        - ``claims.n``, ``claims.fraud_share``, ``claims.pr_auc``, ``claims.roc_auc``,
          ``claims.recall_top`` (all fraudulent claims in the top ``top_share`` of claims),
          ``claims.recall_top.<scheme>`` per scheme named in the labels;
        - ``providers.n``, ``providers.fraudulent``, ``providers.pr_auc``, ``providers.roc_auc``,
          ``k``, ``providers.precision_at_k``, ``providers.recall_at_k``,
          ``providers.money_at_k`` (share of the fund_paid of fraudulent claims billed by the top-k
          providers), ``providers.money_top`` (same for the top ``top_share`` of providers),
          ``providers.recall_at_k.<scheme>`` per provider scheme.

    Examples
    --------
    >>> from fraudkit.io import Labels
    >>> claims = pd.DataFrame({"claim_id": ["a", "b", "c", "d"], "provider_id": ["H1", "H1", "H2", "H3"],
    ...                        "fund_paid": [100.0, 50.0, 10.0, 10.0]})
    >>> labels = Labels(claims=pd.DataFrame({"claim_id": list("abcd"), "fraud_type": ["upcoding", "", "", ""]}),
    ...                 providers=pd.DataFrame({"provider_id": ["H1", "H2", "H3"], "fraud_type": ["upcoding", "", ""]}))
    >>> m = evaluate(labels, claims, provider_scores=pd.Series({"H1": 0.9, "H2": 0.1, "H3": 0.5}))
    >>> m["k"], m["providers.precision_at_k"], m["providers.money_at_k"]
    (1, 1.0, 1.0)
    """
    out: dict[str, float] = {}
    claim_ids = pd.Index(claims["claim_id"].to_numpy())
    fraud_claims = _truth(labels, "claims", claim_ids)
    fund = pd.Series(claims["fund_paid"].to_numpy(dtype=float), index=claim_ids)
    fraud_money_by_provider = pd.Series(np.where(fraud_claims.to_numpy(), fund.to_numpy(), 0.0),
                                        index=claims["provider_id"].to_numpy()).groupby(level=0).sum()
    fraud_money = float(fraud_money_by_provider.sum())
    out["claims.n"] = float(len(claim_ids))
    out["claims.fraud_share"] = float(fraud_claims.mean()) if len(claim_ids) else float("nan")

    if claim_scores is not None:
        s = claim_scores.reindex(claim_ids).astype(float)
        out["claims.pr_auc"], out["claims.roc_auc"] = _auc(fraud_claims.to_numpy(), s.to_numpy())
        n_top = max(1, int(np.ceil(top_share * len(claim_ids))))
        top = _rank(s)[:n_top]
        out["claims.recall_top"] = float(fraud_claims.loc[top].sum() / max(fraud_claims.sum(), 1))
        schemes = split_schemes(labels.claims.set_index(labels.claims.columns[0])["fraud_type"])
        if len(schemes):
            schemes["hit"] = schemes["id"].isin(top)
            for name, recall in schemes.groupby("scheme", sort=True)["hit"].mean().items():
                out[f"claims.recall_top.{name}"] = float(recall)

    provider_ids = pd.Index(labels.providers.iloc[:, 0].astype(str).unique()).union(
        pd.Index(claims["provider_id"].astype(str).unique()), sort=False)
    if provider_scores is not None:
        provider_ids = provider_ids.union(pd.Index(provider_scores.index.astype(str)), sort=False)
    fraud_prov = _truth(labels, "providers", provider_ids)
    n_fraud = int(fraud_prov.sum())
    out["providers.n"] = float(len(provider_ids))
    out["providers.fraudulent"] = float(n_fraud)
    kk = int(k) if k is not None else max(n_fraud, 1)
    out["k"] = kk
    if provider_scores is not None:
        s = provider_scores.reindex(provider_ids).astype(float)
        out["providers.pr_auc"], out["providers.roc_auc"] = _auc(fraud_prov.to_numpy(), s.to_numpy())
        order = _rank(s)
        top_k = order[:kk]
        out["providers.precision_at_k"] = float(fraud_prov.loc[top_k].mean()) if kk else float("nan")
        out["providers.recall_at_k"] = float(fraud_prov.loc[top_k].sum() / max(n_fraud, 1))
        top_p = order[:max(1, int(np.ceil(top_share * len(order))))]
        money = fraud_money_by_provider.reindex(provider_ids, fill_value=0.0)
        out["providers.money_at_k"] = float(money.loc[top_k].sum() / fraud_money) if fraud_money > 0 else float("nan")
        out["providers.money_top"] = float(money.loc[top_p].sum() / fraud_money) if fraud_money > 0 else float("nan")
        schemes = split_schemes(labels.providers.set_index(labels.providers.columns[0])["fraud_type"])
        if len(schemes):
            schemes["hit"] = schemes["id"].isin(top_k)
            for name, recall in schemes.groupby("scheme", sort=True)["hit"].mean().items():
                out[f"providers.recall_at_k.{name}"] = float(recall)
    return out


def evaluation_table(metrics: dict) -> pd.DataFrame:
    """Tidy frame ``(level, metric, scheme, value)`` of a result of :func:`evaluate`."""
    rows = []
    for key, value in metrics.items():
        parts = key.split(".", 2)
        level = parts[0] if len(parts) > 1 else ""
        metric = parts[1] if len(parts) > 1 else parts[0]
        scheme = parts[2] if len(parts) > 2 else ""
        rows.append((level, metric, scheme, float(value)))
    return pd.DataFrame(rows, columns=["level", "metric", "scheme", "value"])


# --------------------------------------------------------------------------- baselines
def pyod_baselines(random_state: int = 0, max_fit: int = 20_000) -> dict:
    """PyOD detectors used as baselines: ECOD, HBOS, COPOD, KNN, IForest (default settings).

    KNN is fitted on at most ``max_fit`` rows (a seeded sample) and scores the rest
    by distance to them; the others see every row.
    """
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    return {"pyod.ECOD": ECOD(), "pyod.HBOS": HBOS(), "pyod.COPOD": COPOD(),
            "pyod.KNN": KNN(), "pyod.IForest": IForest(random_state=random_state)}


def _pyod_scores(model, X: np.ndarray, max_fit: int, random_state: int) -> np.ndarray:
    if len(X) > max_fit and type(model).__name__ == "KNN":
        rng = np.random.default_rng(random_state)
        model.fit(X[rng.choice(len(X), max_fit, replace=False)])
        return model.decision_function(X)
    model.fit(X)
    return model.decision_scores_


def compare_detectors(features, labels, claims: pd.DataFrame, detectors: dict | None = None,
                      k: int | None = None, provider_score: str = "score", random_state: int = 0,
                      max_fit: int = 20_000) -> pd.DataFrame:
    """Fit each detector on the claim feature table and evaluate claims and rolled-up providers.

    Every detector sees the same matrix: the claim columns modelled by fraudkit's
    :class:`~fraudkit.detectors.IsolationForestDetector` (its ``features_``). PyOD
    detectors get those raw columns; fraudkit's detector does its own robust scaling.

    Parameters
    ----------
    features : fraudkit.features.Features
    labels : fraudkit.io.Labels
    claims : DataFrame
        The batch's claims (for roll-up and money).
    detectors : dict or None
        Name -> PyOD-style estimator (``fit``, ``decision_scores_``); default:
        :func:`pyod_baselines`. fraudkit's isolation forest is always in the table, alone and
        with its strongest single signal combined as the pipeline combines them (the claim
        ranking of ``fraudkit score`` before graph and patient evidence).
    provider_score : {"score", "top_score"}
        Column of :func:`fraudkit.detectors.rollup` ranking the providers.

    Returns
    -------
    DataFrame
        One row per detector: ``claims.pr_auc``, ``claims.roc_auc``, ``claims.recall_top``,
        ``providers.pr_auc``, ``providers.precision_at_k``, ``providers.money_at_k``, ``seconds``.
    """
    from fraudkit.detectors import IsolationForestDetector, rollup

    ours = IsolationForestDetector(entity="claim", random_state=random_state)
    t0 = time.perf_counter()
    ours.fit(features.claims)
    ours_seconds = time.perf_counter() - t0
    table = features.claims
    X = np.nan_to_num(table[ours.features_].to_numpy(dtype=float))
    results = {"fraudkit.IsolationForest": (ours.decision_scores_, ours_seconds)}
    # as fraudkit ranks claims: the forest and its strongest single signal, by the pipeline's combination
    from fraudkit.prioritise import combine_scores

    t0 = time.perf_counter()
    both = pd.DataFrame({"forest": ours.decision_scores_, "signal": ours.strongest_signal(table).to_numpy()})
    combined = combine_scores(both)["evidence"].to_numpy()
    results["fraudkit.IsolationForest + strongest signal"] = (combined, ours_seconds + time.perf_counter() - t0)
    for name, model in (detectors if detectors is not None else pyod_baselines(random_state, max_fit)).items():
        t0 = time.perf_counter()
        scores = _pyod_scores(model, X, max_fit, random_state)
        results[name] = (np.asarray(scores, dtype=float), time.perf_counter() - t0)
    rows = []
    keep = ["claims.pr_auc", "claims.roc_auc", "claims.recall_top", "providers.pr_auc", "providers.precision_at_k",
            "providers.money_at_k"]
    for name, (scores, seconds) in results.items():
        claim_scores = pd.Series(scores, index=table.index)
        provider_scores = rollup(claim_scores, claims)[provider_score]
        m = evaluate(labels, claims, claim_scores, provider_scores, k=k)
        rows.append({"detector": name, **{c: m.get(c, np.nan) for c in keep}, "seconds": seconds})
    return pd.DataFrame(rows).set_index("detector")
