"""Institution-pharmacy (and doctor-pharmacy) rings: pairs sharing far more patients than chance."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from ._common import Analysis, GraphDetector, fmt_money, fmt_times
from ._network import ClaimsNetwork
from ._projection import _side, shared_patients


class RingDetector(GraphDetector):
    """Collusion rings as pairs (and communities) sharing far more patients than chance.

    For every institution-pharmacy pair (and doctor-pharmacy pair) computes the shared
    patients, the count expected from each side's patient volume within patients'
    regions, the lift, and the surprise ``-log10 P(shared >= observed)`` under a binomial
    null (:func:`shared_patients`). A provider scores the surprise of its strongest
    pair (a doctor's pairs count for the institution where the doctor works). Pairs with
    surprise >= ``min_surprise`` form a graph weighted by ``log(lift)``; its Louvain
    communities (seeded) are the rings reported in the evidence.

    Parameters
    ----------
    min_shared : int, default=5
        Pairs sharing fewer patients are ignored (too small to inspect).
    min_surprise : float, default=6.0
        Significance for a pair to join the ring graph and score patients (p < 1e-6).
    include_doctors : bool, default=True
        Also doctor-pharmacy pairs.
    stratify : bool, default=True
        Chance computed within patients' regions.
    resolution : float, default=1.0
        Louvain resolution.
    seed : int, default=0
        Louvain seed.
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    evidence_ : dict
        ``"pairs"``: DataFrame of significant pairs (columns of :func:`shared_patients`);
        ``"rings"``: list of dicts (``ring``, ``providers``, ``doctors``, ``pairs``,
        ``shared_patients``, ``max_lift``, ``surprise``).
    entity_scores_ : dict of Series
        "provider" and "doctor" (best pair surprise), "patient" (summed surprise of the
        significant pairs whose both sides the patient used), "claim".

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> # providers 0-9 clinics, 10-19 pharmacies; 30 patients of clinic 0 all buy at pharmacy 10
    >>> patient = np.r_[np.arange(400), np.arange(400), np.arange(30), np.arange(30)]
    >>> provider = np.r_[rng.integers(0, 10, 400), rng.integers(10, 20, 400), np.zeros(30, int), np.full(30, 10)]
    >>> kinds = ["clinic"] * 10 + ["pharmacy"] * 10
    >>> net = ClaimsNetwork.from_arrays(patient, provider, provider_type=kinds)
    >>> det = RingDetector().fit(net)
    >>> det.evidence_["pairs"][["left_id", "right_id"]].iloc[0].tolist()
    ['H0', 'H10']
    >>> det.scores(net).nlargest(2).index.tolist()
    ['H0', 'H10']
    """

    def __init__(self, min_shared: int = 5, min_surprise: float = 6.0, include_doctors: bool = True,
                 stratify: bool = True, resolution: float = 1.0, seed: int = 0,
                 contamination: float = 0.05, budget: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.min_shared = min_shared
        self.min_surprise = min_surprise
        self.include_doctors = include_doctors
        self.stratify = stratify
        self.resolution = resolution
        self.seed = seed

    def _analyse(self, net: ClaimsNetwork) -> Analysis:
        pairs = [shared_patients(net, "institution", "pharmacy", self.min_shared, self.stratify)]
        has_doctors = self.include_doctors and net.n_doctors > 0
        if has_doctors:
            pairs.append(shared_patients(net, "doctor", "pharmacy", self.min_shared, self.stratify))
        pairs = pd.concat(pairs, ignore_index=True) if len(pairs) > 1 else pairs[0]
        pairs = pairs.sort_values(["surprise", "shared_patients"], ascending=False, kind="mergesort").reset_index(drop=True)

        provider = np.zeros(net.n_providers)
        doctor = np.zeros(net.n_doctors)
        home = net.doctor_home()
        pcode = pd.Series(np.arange(net.n_providers), index=net.provider_ids)
        dcode = pd.Series(np.arange(net.n_doctors), index=net.doctor_ids)
        is_doc = (pairs["left_kind"] == "doctor").to_numpy()
        left_code = np.where(is_doc, -1, pcode.reindex(pairs["left_id"].where(~is_doc)).fillna(-1).to_numpy()).astype(np.int64)
        doc_code = np.where(is_doc, dcode.reindex(pairs["left_id"].where(is_doc)).fillna(-1).to_numpy(), -1).astype(np.int64)
        # a doctor's pair speaks for the institution the doctor works at
        home_of = home[np.maximum(doc_code, 0)] if len(home) else np.full(len(doc_code), -1)
        inst_code = np.where(is_doc & (doc_code >= 0), home_of, left_code)
        right_code = pcode.reindex(pairs["right_id"]).to_numpy().astype(np.int64)
        surprise = pairs["surprise"].to_numpy()
        for codes in (inst_code, right_code):
            ok = codes >= 0
            np.maximum.at(provider, codes[ok], surprise[ok])
        ok = doc_code >= 0
        np.maximum.at(doctor, doc_code[ok], surprise[ok])

        significant = pairs[pairs["surprise"] >= self.min_surprise].reset_index(drop=True)
        patient = self._patient_scores(net, significant)
        rings = self._rings(significant)
        reasons = self._reasons(net, pairs, inst_code, right_code)
        return Analysis(provider=provider, patient=patient, doctor=doctor if net.n_doctors else None,
                        evidence={"pairs": significant, "rings": rings}, reasons=reasons)

    def _patient_scores(self, net: ClaimsNetwork, significant: pd.DataFrame, max_pairs: int = 2000) -> np.ndarray:
        patient = np.zeros(net.n_patients)
        if significant.empty:
            return patient
        sides = {}
        for kind in ("institution", "doctor", "pharmacy"):
            binary, _, ids, _, _ = _side(net, kind)
            sides[kind] = (binary.tocsc(), pd.Series(np.arange(len(ids)), index=ids))
        for row in significant.head(max_pairs).itertuples(index=False):
            lkind = "doctor" if row.left_kind == "doctor" else "institution"
            lmat, lidx = sides[lkind]
            rmat, ridx = sides["pharmacy"]
            a, b = lmat[:, int(lidx[row.left_id])], rmat[:, int(ridx[row.right_id])]
            both = a.multiply(b).tocoo().row
            patient[both] += row.surprise
        return patient

    def _rings(self, significant: pd.DataFrame) -> list[dict]:
        if significant.empty:
            return []
        g = nx.Graph()
        for row in significant.itertuples(index=False):
            u = ("doctor" if row.left_kind == "doctor" else "provider", row.left_id)
            v = ("provider", row.right_id)
            g.add_edge(u, v, weight=float(np.log(max(row.lift, 1.0 + 1e-9))), shared=int(row.shared_patients),
                       surprise=float(row.surprise), lift=float(row.lift))
        communities = nx.community.louvain_communities(g, weight="weight", resolution=self.resolution, seed=self.seed)
        rings = []
        for members in communities:
            sub = g.subgraph(members)
            if sub.number_of_edges() == 0:
                continue
            edges = list(sub.edges(data=True))
            rings.append({
                "providers": sorted(i for k, i in members if k == "provider"),
                "doctors": sorted(i for k, i in members if k == "doctor"),
                "pairs": len(edges),
                "shared_patients": int(sum(d["shared"] for _, _, d in edges)),
                "max_lift": float(max(d["lift"] for _, _, d in edges)),
                "surprise": float(max(d["surprise"] for _, _, d in edges)),
            })
        rings.sort(key=lambda r: (-r["surprise"], r["providers"]))
        for k, r in enumerate(rings, 1):
            r["ring"] = k
        return rings

    def _reasons(self, net, pairs, inst_code, right_code) -> dict[int, list[tuple]]:
        reasons: dict[int, list[tuple]] = {}
        for k, row in enumerate(pairs.itertuples(index=False)):
            chance = (f"{fmt_times(row.lift)} what chance predicts ({row.expected:.1f}); "
                      f"{fmt_money(row.shared_money)} fund paid by them there")
            if row.left_kind == "doctor":
                inst = inst_code[k]
                where = f" (at {net.provider_ids[inst]})" if inst >= 0 else ""
                left_text = (f"its doctor {row.left_id} shares {row.shared_patients} patients with pharmacy "
                             f"{row.right_id}, {chance}")
                right_text = (f"shares {row.shared_patients} patients with doctor {row.left_id}{where}, {chance}")
            else:
                left_text = f"shares {row.shared_patients} patients with pharmacy {row.right_id}, {chance}"
                right_text = f"shares {row.shared_patients} patients with {row.left_kind} {row.left_id}, {chance}"
            for code, text, partner in ((inst_code[k], left_text, row.right_id), (right_code[k], right_text, row.left_id)):
                if code < 0:
                    continue
                bucket = reasons.setdefault(int(code), [])
                if len(bucket) < 5:
                    bucket.append((f"shared_patients:{partner}", int(row.shared_patients), float(row.surprise), text))
        return reasons
