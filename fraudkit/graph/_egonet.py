"""OddBall-style egonet anomalies (Akoglu et al. 2010) on the provider shared-patient graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._common import Analysis, GraphDetector, fmt_times
from ._network import ClaimsNetwork
from ._projection import shared_patients

#: Columns of ``evidence_["egonets"]``.
EGONET_COLUMNS = ["provider_id", "provider_type", "nodes", "edges", "weight", "eigen", "edges_expected",
                  "weight_expected", "eigen_expected", "score"]

#: The three OddBall laws used: (y, x, feature name, what an excess means)
_LAWS = (
    ("edges", "nodes", "near_clique", "its partners are {r} as interlinked as peers' with as many partners"),
    ("weight", "edges", "heavy_vicinity", "its links carry {r} the excess shared patients expected for its number of partners"),
    ("eigen", "weight", "dominant_pair", "one partnership dominates: {r} the concentration expected"),
)


def provider_graph(net: ClaimsNetwork, weight: str = "excess", min_claims: int = 1) -> sp.csr_matrix:
    """Providers x providers, symmetric, zero diagonal.

    ``weight="shared"``: number of shared (distinct) patients. ``weight="excess"``:
    shared patients beyond what chance predicts within patients' regions
    (``shared - expected`` from :func:`shared_patients`, pairs above chance only), so that
    two big providers are not linked merely for being big. With ``min_claims`` > 1 only
    regular patients (that many claims at both) count.
    """
    if weight == "shared":
        b = net.patient_provider.copy()
        b.data = (b.data >= min_claims).astype(float)
        b.eliminate_zeros()
        a = (b.T.tocsr() @ b).tocsr()
        a.setdiag(0)
        a.eliminate_zeros()
        return a.astype(float)
    if weight != "excess":
        raise ValueError(f"weight must be 'excess' or 'shared', got {weight!r}")
    pairs = shared_patients(net, "provider", "provider", min_shared=2, min_claims=min_claims)
    pairs = pairs[pairs["shared_patients"] > pairs["expected"]]
    i = net.provider_ids.get_indexer(pairs["left_id"])
    j = net.provider_ids.get_indexer(pairs["right_id"])
    w = (pairs["shared_patients"] - pairs["expected"]).to_numpy()
    n = net.n_providers
    a = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    a.sum_duplicates()
    return a


def egonet_features(adjacency: sp.csr_matrix, chunk: int = 2048) -> pd.DataFrame:
    """OddBall egonet features of every node of a weighted undirected graph.

    ``nodes`` (node + neighbours), ``edges`` (inside the egonet), ``weight`` (total edge
    weight inside) and ``eigen``, a cheap stand-in for the principal eigenvalue of the
    weighted egonet: ``sqrt(sum of squared weights of the node's edges)``, exact for a
    star, and large when one link dominates.

    >>> a = sp.csr_matrix(np.array([[0, 2, 1], [2, 0, 1], [1, 1, 0]], dtype=float))
    >>> egonet_features(a)[["nodes", "edges", "weight"]].values.tolist()
    [[3.0, 3.0, 4.0], [3.0, 3.0, 4.0], [3.0, 3.0, 4.0]]
    """
    a = sp.csr_matrix(adjacency, dtype=float)
    binary = a.copy()
    binary.data = np.ones_like(binary.data)
    deg = np.diff(a.indptr).astype(float)
    strength = np.asarray(a.sum(axis=1)).ravel()
    tri = np.zeros(a.shape[0])
    inner_w = np.zeros(a.shape[0])
    for lo in range(0, a.shape[0], chunk):  # bounded memory on large graphs
        hi = min(lo + chunk, a.shape[0])
        rows = binary[lo:hi]
        tri[lo:hi] = np.asarray((rows @ binary).multiply(rows).sum(axis=1)).ravel() / 2
        inner_w[lo:hi] = np.asarray((rows @ a).multiply(rows).sum(axis=1)).ravel() / 2
    sq = a.copy()
    sq.data **= 2
    eigen = np.sqrt(np.asarray(sq.sum(axis=1)).ravel())
    return pd.DataFrame({"nodes": deg + 1, "edges": deg + tri, "weight": strength + inner_w, "eigen": eigen})


def _fit_power_law(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of log y = log C + theta log x; returns (C, theta)."""
    ok = (x > 0) & (y > 0)
    if ok.sum() < 3 or np.ptp(np.log(x[ok])) == 0:
        return (float(np.exp(np.mean(np.log(y[ok]))) if ok.any() else 1.0), 0.0)
    theta, logc = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(np.exp(logc)), float(theta)


def oddball_score(y: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """OddBall out-line score: ``max(y, e) / min(y, e) * log(|y - e| + 1)``, here only above the line."""
    y = np.asarray(y, dtype=float)
    e = np.maximum(np.asarray(expected, dtype=float), 1e-12)
    ratio = np.maximum(y, e) / np.maximum(np.minimum(y, e), 1e-12)
    return np.where(y > e, ratio * np.log(np.abs(y - e) + 1.0), 0.0)


class EgonetDetector(GraphDetector):
    """Providers whose neighbourhood breaks the power laws their peers follow (OddBall).

    On the provider graph (two providers linked by the patients they share beyond chance),
    each provider's egonet (itself, its partners and the links among them) gives
    ``nodes``, ``edges``, ``weight`` and a principal-eigenvalue proxy. Within each
    provider_type, OddBall's laws are fitted by least squares in log-log space (edges ~
    nodes, weight ~ edges, eigen ~ weight); a provider scores, summed over the laws,
    ``max(y, fit) / min(y, fit) * log(|y - fit| + 1)`` where it lies above the line
    (more interlinked partners, heavier links, or one dominating partnership, which is
    what a clinic feeding one pharmacy looks like).

    Parameters
    ----------
    weight : {"excess", "shared"}, default="excess"
        Link weight: shared patients beyond chance, or all shared patients
        (see :func:`provider_graph`).
    min_claims : int, default=3
        Only regular patients (at least this many claims at both providers) link them:
        one-off visits say little about how two providers work together.
    min_peers : int, default=5
        Types with fewer providers are fitted together with all providers.
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    evidence_ : dict
        ``"egonets"``: DataFrame (:data:`EGONET_COLUMNS`), one row per provider;
        ``"laws"``: dict provider_type -> {law: (C, theta)}.
    entity_scores_ : dict of Series
        "provider" (the OddBall score), "patient" (the highest score of its providers),
        "claim".

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> patient = np.r_[np.arange(600), np.arange(600), np.arange(60), np.arange(60)]
    >>> provider = np.r_[rng.integers(0, 30, 600), rng.integers(0, 30, 600), np.zeros(60, int), np.ones(60, int)]
    >>> net = ClaimsNetwork.from_arrays(patient, provider)
    >>> {"H0", "H1"} <= set(EgonetDetector(min_claims=1).fit(net).scores(net).nlargest(3).index)
    True
    """

    def __init__(self, weight: str = "excess", min_claims: int = 3, min_peers: int = 5, contamination: float = 0.05,
                 budget: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.weight = weight
        self.min_claims = min_claims
        self.min_peers = min_peers

    def _analyse(self, net: ClaimsNetwork) -> Analysis:
        adj = provider_graph(net, self.weight, self.min_claims)
        feats = egonet_features(adj)
        kinds = pd.Series(net.provider_type, dtype=object).astype(str).to_numpy()
        expected = {law[0]: np.zeros(net.n_providers) for law in _LAWS}
        parts = {law[2]: np.zeros(net.n_providers) for law in _LAWS}
        laws = {}
        present = feats["nodes"].to_numpy() > 1
        groups = {k: (kinds == k) & present for k in np.unique(kinds)}
        for kind, mask in groups.items():
            fit_mask = mask if mask.sum() >= self.min_peers else present
            laws[kind] = {}
            for y_col, x_col, name, _ in _LAWS:
                x, y = feats[x_col].to_numpy(), feats[y_col].to_numpy()
                c, theta = _fit_power_law(x[fit_mask], y[fit_mask])
                laws[kind][name] = (c, theta)
                e = c * np.power(np.maximum(x[mask], 1e-12), theta)
                expected[y_col][mask] = e
                parts[name][mask] = oddball_score(y[mask], e)
        score = sum(parts.values())
        table = pd.DataFrame({
            "provider_id": net.provider_ids, "provider_type": kinds, "nodes": feats["nodes"].to_numpy(),
            "edges": feats["edges"].to_numpy(), "weight": feats["weight"].to_numpy(),
            "eigen": feats["eigen"].to_numpy(), "edges_expected": expected["edges"],
            "weight_expected": expected["weight"], "eigen_expected": expected["eigen"], "score": score,
        }, columns=EGONET_COLUMNS)
        # a patient is as odd as the oddest provider it used
        pp = net.patient_provider.tocsr().astype(bool).astype(float)
        patient = np.zeros(net.n_patients)
        if pp.nnz:
            per_edge = score[pp.indices]
            row = np.repeat(np.arange(net.n_patients), np.diff(pp.indptr))
            np.maximum.at(patient, row, per_edge)
        top_partner = _top_partner(adj, net)
        reasons = {}
        for p in np.flatnonzero(score > 0):
            items = []
            for y_col, _, name, text in _LAWS:
                if parts[name][p] > 0.05 * score[p]:
                    r = fmt_times(table[y_col].iat[p] / max(table[f"{y_col}_expected"].iat[p], 1e-12))
                    sentence = text.format(r=r)
                    if name == "dominant_pair" and top_partner[p]:
                        sentence += f" (top partner {top_partner[p]})"
                    items.append((name, float(table[y_col].iat[p]), float(parts[name][p]),
                                  sentence + f" among {kinds[p]}s"))
            items.sort(key=lambda t: -t[2])
            reasons[int(p)] = items
        return Analysis(provider=score, patient=patient, doctor=None,
                        evidence={"egonets": table, "laws": laws}, reasons=reasons)


def _top_partner(adj: sp.csr_matrix, net: ClaimsNetwork) -> list[str]:
    out = [""] * adj.shape[0]
    for i in range(adj.shape[0]):
        lo, hi = adj.indptr[i], adj.indptr[i + 1]
        if hi > lo:
            k = lo + int(np.argmax(adj.data[lo:hi]))
            out[i] = f"{net.provider_ids[adj.indices[k]]}, {adj.data[k]:,.0f} shared patients beyond chance"
    return out
