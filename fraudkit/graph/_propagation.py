"""Guilt by association: personalised PageRank from providers and patients confirmed in past inspections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._common import Analysis, GraphDetector, fmt_times
from ._network import ClaimsNetwork

#: Columns of ``evidence_["paths"]``.
PATH_COLUMNS = ["provider_id", "seed_id", "seed_kind", "via", "patients", "example_patients"]


def personalized_pagerank(adjacency: sp.csr_matrix, restart: np.ndarray, alpha: float = 0.85,
                          max_iter: int = 200, tol: float = 1e-10) -> np.ndarray:
    """Personalised PageRank by power iteration on a symmetric sparse adjacency.

    ``r = alpha * A^T D^-1 r + (1 - alpha) * restart`` (mass of nodes without edges
    returns to ``restart``). ``restart`` is normalised to sum 1; the result sums to 1.

    >>> a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    >>> personalized_pagerank(a, np.array([1.0, 0, 0])).round(3).tolist()
    [0.345, 0.459, 0.195]
    """
    s = np.asarray(restart, dtype=float)
    s = s / s.sum()
    deg = np.asarray(adjacency.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1e-300), 0.0)
    dangling = deg <= 0
    at = adjacency.T.tocsr()
    r = s.copy()
    for _ in range(max_iter):
        nxt = alpha * (at @ (r * inv)) + (alpha * r[dangling].sum() + (1 - alpha)) * s
        if np.abs(nxt - r).sum() < tol:
            r = nxt
            break
        r = nxt
    return r


class PropagationDetector(GraphDetector):
    """Providers close to confirmed fraud: personalised PageRank seeded with past inspection findings.

    Walks the multipartite network (patients, providers, doctors; edge weight
    ``1 + log(claims)``), restarting at the seeds. A provider's score is its
    personalised PageRank divided by its ordinary PageRank: how much more often the
    walk from the seeds reaches it than a walk from anywhere, so that big hospitals
    are not suspicious merely for being big.

    Without seeds there is nothing to propagate: fitting sets ``skipped_ = True``,
    every score is 0, ``threshold_`` is infinite (nothing is predicted) and
    ``explain`` returns no rows.

    Parameters
    ----------
    seeds : list of str or None
        Ids of providers, patients or doctors confirmed fraudulent (e.g. by past flight
        inspections). Ids not in the network are listed in ``evidence_["unknown_seeds"]``.
    alpha : float, default=0.5
        Probability of following an edge rather than restarting. Short walks (0.5) keep
        the score on the seeds' own neighbourhood (their patients' other providers and
        doctors) rather than on the hubs of the whole network.
    max_iter : int, default=200
    tol : float, default=1e-10
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    skipped_ : bool
    evidence_ : dict
        ``skipped``, ``reason``, ``seeds`` (dict kind -> ids used), ``unknown_seeds``, and
        ``paths``: DataFrame (:data:`PATH_COLUMNS`) of how each provider connects to a
        seed: a provider seed via shared patients, or patient seeds it treated.
    entity_scores_ : dict of Series
        "provider", "patient", "doctor", "claim": PageRank ratios (0 when skipped).

    Examples
    --------
    >>> patient = [0, 0, 1, 1, 2, 3, 3, 4]
    >>> provider = [0, 1, 0, 1, 1, 2, 3, 3]
    >>> net = ClaimsNetwork.from_arrays(patient, provider)
    >>> det = PropagationDetector(seeds=["H0"]).fit(net)
    >>> s = det.scores(net)
    >>> bool(s["H1"] > s["H2"]), bool(s["H1"] > s["H3"])
    (True, True)
    >>> PropagationDetector().fit(net).skipped_
    True
    """

    def __init__(self, seeds: list[str] | None = None, alpha: float = 0.5, max_iter: int = 200, tol: float = 1e-10,
                 contamination: float = 0.05, budget: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.seeds = seeds
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y=None, *, analysis: Analysis | None = None):
        super().fit(X, y, analysis=analysis)
        self.skipped_ = bool(self.evidence_["skipped"])
        if self.skipped_:
            self.threshold_ = float("inf")
        return self

    def _analyse(self, net: ClaimsNetwork) -> Analysis:
        n_pat, n_prov, n_doc = net.n_patients, net.n_providers, net.n_doctors
        seeds = {"provider": [], "patient": [], "doctor": []}
        unknown = []
        for raw in self.seeds or []:
            sid = str(raw)
            for kind in ("provider", "patient", "doctor"):
                if sid in net.ids(kind):
                    seeds[kind].append(sid)
                    break
            else:
                unknown.append(sid)
        empty = pd.DataFrame(columns=PATH_COLUMNS)
        if not any(seeds.values()):
            reason = "no seeds given" if not self.seeds else "none of the seeds is in this network"
            return Analysis(provider=np.zeros(n_prov), patient=np.zeros(n_pat), doctor=np.zeros(n_doc),
                            evidence={"skipped": True, "reason": reason, "seeds": seeds, "unknown_seeds": unknown,
                                      "paths": empty})
        adj = net.adjacency("claims").astype(float)
        adj.data = 1.0 + np.log(adj.data)
        restart = np.zeros(adj.shape[0])
        restart[net.provider_ids.get_indexer(seeds["provider"]) + n_pat] = 1.0
        restart[net.patient_ids.get_indexer(seeds["patient"])] = 1.0
        restart[net.doctor_ids.get_indexer(seeds["doctor"]) + n_pat + n_prov] = 1.0
        ppr = personalized_pagerank(adj, restart, self.alpha, self.max_iter, self.tol)
        active = np.asarray(adj.sum(axis=1)).ravel() > 0
        base = personalized_pagerank(adj, active.astype(float) if active.any() else np.ones(len(active)),
                                     self.alpha, self.max_iter, self.tol)
        ratio = np.where(base > 0, ppr / np.maximum(base, 1e-300), 0.0)
        patient, provider, doctor = ratio[:n_pat], ratio[n_pat:n_pat + n_prov], ratio[n_pat + n_prov:]
        paths = self._paths(net, seeds)
        reasons = self._reasons(net, paths, provider, set(seeds["provider"]))
        return Analysis(provider=provider, patient=patient, doctor=doctor,
                        evidence={"skipped": False, "reason": None, "seeds": seeds, "unknown_seeds": unknown,
                                  "paths": paths}, reasons=reasons)

    @staticmethod
    def _paths(net: ClaimsNetwork, seeds: dict, per_provider: int = 3, examples: int = 3) -> pd.DataFrame:
        binary = net.patient_provider.copy()
        binary.data = np.ones_like(binary.data)
        binary_csc = binary.tocsc()
        rows = []
        if seeds["provider"]:
            seed_cols = net.provider_ids.get_indexer(seeds["provider"])
            shared = (binary.T.tocsr() @ binary_csc[:, seed_cols]).tocoo()
            frame = pd.DataFrame({"p": shared.row, "s": shared.col, "n": shared.data})
            frame = frame[frame["p"] != seed_cols[frame["s"]]]
            frame = frame.sort_values(["p", "n", "s"], ascending=[True, False, True]).groupby("p").head(per_provider)
            for p, s, n in frame.itertuples(index=False):
                both = binary_csc[:, p].multiply(binary_csc[:, seed_cols[s]]).tocoo().row[:examples]
                rows.append((net.provider_ids[p], seeds["provider"][s], "provider", "shared patients", int(n),
                             net.patient_ids[both].tolist()))
        if seeds["patient"]:
            seed_rows = net.patient_ids.get_indexer(seeds["patient"])
            sub = binary[seed_rows].tocsc()
            for p in np.flatnonzero(np.diff(sub.indptr)):
                who = sub.indices[sub.indptr[p]:sub.indptr[p + 1]]
                rows.append((net.provider_ids[p], ";".join(np.asarray(seeds["patient"])[who[:examples]]), "patient",
                             "treated seed patients", len(who), [seeds["patient"][w] for w in who[:examples]]))
        if seeds["doctor"]:
            seed_docs = net.doctor_ids.get_indexer(seeds["doctor"])
            sub = net.doctor_provider[seed_docs].tocsc()
            for p in np.flatnonzero(np.diff(sub.indptr)):
                who = sub.indices[sub.indptr[p]:sub.indptr[p + 1]]
                rows.append((net.provider_ids[p], ";".join(np.asarray(seeds["doctor"])[who[:examples]]), "doctor",
                             "seed doctors billed here", len(who), []))
        return pd.DataFrame(rows, columns=PATH_COLUMNS)

    @staticmethod
    def _reasons(net: ClaimsNetwork, paths: pd.DataFrame, provider: np.ndarray, seed_providers: set) -> dict:
        reasons: dict[int, list[tuple]] = {}
        codes = net.provider_ids.get_indexer(paths["provider_id"])
        for code, row in zip(codes, paths.itertuples(index=False)):
            if row.seed_kind == "provider":
                eg = f", e.g. {', '.join(row.example_patients)}" if row.example_patients else ""
                text = f"shares {row.patients} patients with {row.seed_id}, confirmed fraudulent{eg}"
            elif row.seed_kind == "patient":
                text = f"treated {row.patients} patients confirmed fraudulent ({row.seed_id}{' …' if row.patients > 3 else ''})"
            else:
                text = f"{row.patients} doctors confirmed fraudulent billed here ({row.seed_id})"
            reasons.setdefault(int(code), []).append(
                (f"seed_path:{row.seed_id}", int(row.patients), float(provider[code]), text))
        for code, pid in enumerate(net.provider_ids):
            if pid in seed_providers:
                reasons.setdefault(code, []).insert(0, ("seed", 1, float(provider[code]),
                                                        "confirmed fraudulent in a past inspection (seed)"))
            elif code in reasons:
                reasons[code].insert(0, ("propagation_ratio", float(provider[code]), float(provider[code]),
                                         f"reached from the seeds {fmt_times(provider[code])} as often as "
                                         "a walk from anywhere"))
        return reasons
