"""Dense blocks of patients, providers and doctors (FRAUDAR-style greedy peeling)."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from ._common import Analysis, GraphDetector, fmt_money, fmt_times
from ._network import ClaimsNetwork
from ._peeling import camouflage_weights, peel_blocks


class DenseBlockDetector(GraphDetector):
    """Collusion rings as dense blocks: many patients all using the same few providers and doctors.

    Builds the bipartite graph patients x (providers [+ doctors]), weights each column's
    edges by ``1 / log(c + degree)`` so that camouflage edges to popular hospitals weigh
    little, then peels greedily (Hooi et al., FRAUDAR, KDD 2016): remove the node with
    the least remaining weight, keep the densest set seen (weight per node). The block's
    edges are deleted and peeling repeats, up to ``n_blocks`` blocks.

    Parameters
    ----------
    n_blocks : int, default=10
        Most blocks to find; peeling stops earlier once the densest set is no block
        (fewer than ``min_patients`` patients or fewer than 2 providers/doctors).
    include_doctors : bool, default=True
        Also take patient x doctor edges (a ring's doctors join its block).
    c : float, default=5.0
        Constant of the column weighting ``1 / log(c + degree)``.
    edge_value : {"log", "log1p", "binary"}, default="log"
        Weight of a patient's tie to a provider or doctor from its number of claims.
        ``"log"`` = ``ln(claims)``: one-off visits weigh nothing, so camouflage by
        scattered single visits adds no weight, while a ring's members, who come back
        again and again, weigh more with every visit (see :func:`camouflage_weights`).
    row_weighting : bool, default=True
        Divide each patient's ties by ``sqrt(number of ties)``: a heavy user spread over
        many doctors of a big hospital does not outweigh a group tied to the same few.
    min_patients : int, default=3
    min_lift : float, default=10.0
        A provider or doctor belongs to a peeled block only if its share of patients inside
        the block is at least this many times the block patients' share of all patients, and
        a block is reported only if at least two belong, at most ``max_providers`` of them
        providers. Peeling keeps finding dense sets after the rings are gone: the busy core of
        ordinary care (thousands of heavy users and most hospitals, lift ≈ 3) or one region's
        patients and providers (200 providers); and a ring's block takes in the popular hospital
        its patients also visit. None of these is a member an inspector should visit for the block.
    max_providers : int, default=50
    min_density_ratio : float, default=1.5
        Stop once the densest remaining set is less than this many times as dense as the
        whole graph (what is left is ordinary care, not a block).
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    evidence_ : dict
        ``{"blocks": [...], "background_density": float}``; each block is a dict with
        ``block`` (1 = densest), ``density``, ``density_ratio`` (to the whole graph's),
        ``patients``, ``providers``, ``doctors`` (id lists; providers and doctors by
        decreasing ``provider_share`` / ``doctor_share`` of the block's patients), ``n_patients``,
        ``n_providers``, ``n_doctors``, ``claims`` and ``money`` (fund paid on claims
        between the block's patients and providers).
    entity_scores_ : dict of Series
        "provider", "patient", "doctor", "claim". A provider (doctor) in a block scores the
        block's density times the geometric mean of the share of the block's patients it
        serves and the share of its own patients inside the block (so that a popular
        hospital that camouflage edges reach does not rank with the ring); a patient, the
        density times its in-block weight relative to the block's heaviest patient. Others
        score 0.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> # 500 patients using 40 providers at random, once each; 20 more come back to providers 0, 1, 2
    >>> patient = np.r_[np.arange(500), rng.integers(0, 500, 300), np.repeat(np.arange(500, 520), 6)]
    >>> provider = np.r_[rng.integers(0, 40, 800), np.tile([0, 1, 2], 40)]
    >>> net = ClaimsNetwork.from_arrays(patient, provider)
    >>> det = DenseBlockDetector().fit(net)
    >>> block = det.evidence_["blocks"][0]
    >>> sorted(block["providers"]), block["n_patients"]
    (['H0', 'H1', 'H2'], 20)
    >>> sorted(det.scores(net).nlargest(3).index)
    ['H0', 'H1', 'H2']
    """

    def __init__(self, n_blocks: int = 10, include_doctors: bool = True, c: float = 5.0, edge_value: str = "log",
                 row_weighting: bool = True, min_patients: int = 3, min_density_ratio: float = 1.5,
                 min_lift: float = 10.0, max_providers: int = 50, contamination: float = 0.05, budget: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.n_blocks = n_blocks
        self.include_doctors = include_doctors
        self.c = c
        self.edge_value = edge_value
        self.row_weighting = row_weighting
        self.min_patients = min_patients
        self.min_density_ratio = min_density_ratio
        self.min_lift = min_lift
        self.max_providers = max_providers

    def _members(self, blocks: list, counts: sp.csr_matrix, n_prov: int) -> list:
        """Keep, in each peeled block, the providers and doctors that belong to it: those whose
        share of patients inside the block is ``min_lift`` times the block's share of all
        patients (a hospital the ring's patients also visit stays out); keep the block if at
        least two remain, at most ``max_providers`` of them providers."""
        binary = counts > 0
        col_patients = np.asarray(binary.sum(axis=0)).ravel()
        active = max(int((np.diff(counts.indptr) > 0).sum()), 1)
        kept = []
        for b in blocks:
            inside = np.asarray(binary[b.rows][:, b.cols].sum(axis=0)).ravel()
            lift = inside / np.maximum(col_patients[b.cols], 1) / (len(b.rows) / active)
            cols = b.cols[lift >= self.min_lift]
            if len(cols) >= 2 and (cols < n_prov).sum() <= self.max_providers and (cols < n_prov).any():
                kept.append(dataclasses.replace(b, cols=cols))
        return kept

    def _analyse(self, net: ClaimsNetwork) -> Analysis:
        n_pat, n_prov = net.n_patients, net.n_providers
        cols = [net.patient_provider]
        if self.include_doctors and net.n_doctors:
            cols.append(net.patient_doctor)
        counts = sp.hstack(cols, format="csr")
        weights = camouflage_weights(counts, c=self.c, edge_value=self.edge_value, row_weighting=self.row_weighting)
        # the batch's density over every patient, provider and doctor with a claim
        n_nodes = max(int((np.diff(counts.indptr) > 0).sum() + (np.diff(counts.tocsc().indptr) > 0).sum()), 1)
        background = float(weights.sum()) / n_nodes
        blocks, node_density = peel_blocks(weights, n_blocks=self.n_blocks, min_rows=self.min_patients, min_cols=2,
                                           min_density=self.min_density_ratio * background)
        blocks = self._members(blocks, counts, n_prov)

        n_cols = counts.shape[1]
        col_score = np.full(n_cols, -np.inf)
        row_score = np.full(n_pat, -np.inf)
        col_block = np.zeros(n_cols, dtype=np.int64)
        col_cover = np.zeros(n_cols)
        money_pp = net.patient_provider_money
        binary = counts.copy()
        binary.data = np.ones_like(binary.data)
        col_patients = np.diff(binary.tocsc().indptr)
        col_loyal = np.zeros(n_cols)
        evidence_blocks = []
        for k, b in enumerate(blocks, 1):
            prov = b.cols[b.cols < n_prov]
            docs = b.cols[b.cols >= n_prov] - n_prov
            inside = binary[b.rows][:, b.cols]
            # a member weighs by how much of the block it carries: the share of the block's
            # patients a provider serves; a patient's in-block weight relative to the heaviest
            in_block = np.asarray(inside.sum(axis=0)).ravel()
            cover = in_block / len(b.rows)
            loyalty = in_block / np.maximum(col_patients[b.cols], 1)
            row_w = np.asarray(weights[b.rows][:, b.cols].sum(axis=1)).ravel()
            col_s, row_s = b.density * np.sqrt(cover * loyalty), b.density * row_w / max(row_w.max(), 1e-12)
            better = col_s > col_score[b.cols]
            col_block[b.cols[better]] = k
            col_cover[b.cols[better]] = cover[better]
            col_loyal[b.cols[better]] = loyalty[better]
            col_score[b.cols] = np.maximum(col_score[b.cols], col_s)
            row_score[b.rows] = np.maximum(row_score[b.rows], row_s)
            order = np.argsort(-cover, kind="stable")
            prov_order = [int(c) for c in b.cols[order] if c < n_prov]
            doc_order = [int(c) - n_prov for c in b.cols[order] if c >= n_prov]
            cover_of = dict(zip(b.cols.tolist(), cover.tolist()))
            evidence_blocks.append({
                "block": k, "density": b.density, "density_ratio": b.density / background if background else np.inf,
                "patients": net.patient_ids[b.rows].tolist(), "providers": net.provider_ids[prov_order].tolist(),
                "doctors": net.doctor_ids[doc_order].tolist(),
                "provider_share": [round(cover_of[c], 4) for c in prov_order],
                "doctor_share": [round(cover_of[c + n_prov], 4) for c in doc_order],
                "n_patients": len(b.rows), "n_providers": len(prov), "n_doctors": len(docs),
                "claims": int(net.patient_provider[b.rows][:, prov].sum()),
                "money": round(float(money_pp[b.rows][:, prov].sum()), 2),
            })
        # non-members score 0: no block, no evidence (ordering them by the density of the company
        # they kept let ordinary busy providers past the combination's fence)
        row_score = np.where(np.isfinite(row_score), row_score, 0.0)
        col_in = np.isfinite(col_score)
        col_score = np.where(col_in, col_score, 0.0)

        reasons = {}
        for p in range(n_prov):
            if col_in[p]:
                blk = evidence_blocks[col_block[p] - 1]
                others = [x for x in blk["providers"] if x != net.provider_ids[p]]
                named = f" ({', '.join(others[:4])}{', …' if len(others) > 4 else ''})" if others else ""
                served = int(round(col_cover[p] * blk["n_patients"]))
                reasons[p] = [("dense_block", blk["density"], float(col_score[p]),
                               f"serves {served} of the {blk['n_patients']} patients of dense block #{blk['block']} "
                               f"({col_loyal[p]:.0%} of its own patients), shared with {len(others)} other "
                               f"provider{'s' if len(others) != 1 else ''}{named} and {blk['n_doctors']} "
                               f"doctor{'s' if blk['n_doctors'] != 1 else ''}; "
                               f"block density {fmt_times(blk['density_ratio'])} the batch's; "
                               f"{fmt_money(blk['money'])} fund paid inside the block")]
            elif node_density[n_pat + p] > 0:
                reasons[p] = [("peeling_density", float(node_density[n_pat + p]), float(col_score[p]),
                               f"in no dense block; the densest group it belongs to has "
                               f"{fmt_times(node_density[n_pat + p] / background if background else 0)} "
                               f"the batch's density")]
        doctor = col_score[n_prov:] if n_cols > n_prov else (np.zeros(net.n_doctors) if net.n_doctors else None)
        return Analysis(provider=col_score[:n_prov], patient=row_score, doctor=doctor,
                        evidence={"blocks": evidence_blocks, "background_density": background}, reasons=reasons)
