"""Institution-pharmacy (and doctor-pharmacy) rings: pairs sharing far more patients than chance."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from ._common import Analysis, GraphDetector, fmt_money, fmt_times
from ._network import ClaimsNetwork
from ._projection import _side, cached_sides, shared_patients
from ._timing import prompt_fills


class RingDetector(GraphDetector):
    """Collusion rings as pairs (and communities) sharing far more patients than chance.

    For every institution-pharmacy pair (and doctor-pharmacy pair) two tests:

    - **sharing**: the shared patients, the count expected from each side's patient volume
      within patients' regions, the lift, and the surprise ``-log10 P(shared >= observed)``
      under a binomial null (:func:`shared_patients`), both for all shared patients and for
      *regular* ones (each pair kept at its most surprising level);
    - **timing** (``window``): how many of the shared patients' purchases at the pharmacy
      came on the day of, or within ``window`` days after, one of their visits at the
      other side, against chance placing visits at random and against the batch's usual
      promptness (:func:`fraudkit.graph.prompt_fills`): ring members buy the ring's drugs
      right after each visit.

    A pair's ``evidence`` is the joint surprise (the sum of both, i.e. ``-log10`` of the
    product of the two p-values; the timing test is conditional on the shared patients) and
    its ``strength`` is ``evidence * ln(lift * prompt_lift)`` (evidence times effect size,
    each lift floored at 1); a provider scores the summed strength of its ``top_pairs``
    strongest pairs (a doctor's pairs count for the institution where the doctor works).
    Pairs with evidence >= ``min_surprise`` form a graph weighted by the log of the effect;
    its connected groups (large ones split into seeded Louvain communities) are the rings
    reported in the evidence.

    Measured (``benchmarks/bench_graph.py --recovery``, 300k-claim batches): ring
    providers in the top k (k = ring providers) 100 % on default (5 seeds) and 75-100 %
    on hard (12 seeds, mean 95 %); with ``window=None`` (sharing alone) 90-100 % and
    50-100 % (mean 79 %).

    Parameters
    ----------
    min_shared : int, default=4
        Pairs sharing fewer patients are ignored (too small to inspect).
    regular_claims : int, tuple of int or None, default=(2, 3)
        Also test each pair counting only *regular* patients (at least this many claims
        on both sides): a ring's members come back again and again, ordinary shared
        patients mostly once. Each pair keeps its strongest count (column
        ``min_claims`` of the evidence). None = all patients only.
    top_pairs : int, default=3
        A provider scores the summed strength of its this many strongest pairs.
    min_surprise : float, default=6.0
        Significance for a pair to join the ring graph and score patients (p < 1e-6).
    include_doctors : bool, default=True
        Also doctor-pharmacy pairs.
    stratify : bool, default=True
        Chance computed within patients' regions.
    max_ring_size : int, default=12
        A connected group of significant pairs up to this many providers and doctors is
        one ring; larger groups are split by Louvain communities.
    resolution : float, default=1.0
        Louvain resolution.
    seed : int, default=0
        Louvain seed.
    min_reason_surprise, min_reason_lift : float, default=2.0 and 1.5
        Pairs below either (p > 0.01, or less than 1.5× chance) are not given as reasons.
    window : int or None, default=3
        Days after a visit within which a purchase counts as prompt (prescriptions in
        China are valid three days at most); None = sharing alone.
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    evidence_ : dict
        ``"pairs"``: DataFrame of significant pairs (columns of :func:`shared_patients`
        plus ``min_claims``: 1 = all shared patients, else regular shared patients; the
        timing columns of :func:`prompt_fills`: ``fills``, ``prompt_fills``,
        ``expected_prompt``, ``prompt_lift``, ``prompt_surprise``; ``evidence`` and
        ``strength``);
        ``"rings"``: list of dicts (``ring``, ``providers``, ``doctors``, ``pairs``,
        ``shared_patients``, ``max_lift``, ``surprise``: the strongest pair's evidence).
    entity_scores_ : dict of Series
        "provider" (summed strength of its strongest pairs) and "doctor" (strongest
        pair), "patient" (summed evidence of the
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
    >>> sorted(det.scores(net).nlargest(2).index)
    ['H0', 'H10']
    >>> det.explain(net, top=1).set_index("id").loc["H0", "reason"]  # doctest: +ELLIPSIS
    'shares 32 patients with pharmacy H10, 2.9× what chance predicts (11.0); ...'

    """

    def __init__(self, min_shared: int = 4, regular_claims: int | tuple | None = (2, 3), top_pairs: int = 3,
                 min_surprise: float = 6.0, include_doctors: bool = True, stratify: bool = True,
                 max_ring_size: int = 12, resolution: float = 1.0, seed: int = 0, min_reason_surprise: float = 2.0,
                 min_reason_lift: float = 1.5, window: int | None = 3, contamination: float = 0.05,
                 budget: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.window = window
        self.min_shared = min_shared
        self.regular_claims = regular_claims
        self.top_pairs = top_pairs
        self.max_ring_size = max_ring_size
        self.min_reason_surprise = min_reason_surprise
        self.min_reason_lift = min_reason_lift
        self.min_surprise = min_surprise
        self.include_doctors = include_doctors
        self.stratify = stratify
        self.resolution = resolution
        self.seed = seed

    def _analyse(self, net: ClaimsNetwork) -> Analysis:
        with cached_sides(net):
            return self._analyse_sides(net)

    def _analyse_sides(self, net: ClaimsNetwork) -> Analysis:
        lefts = ["institution"] + (["doctor"] if self.include_doctors and net.n_doctors > 0 else [])
        regular = self.regular_claims
        regular = [] if not regular else [regular] if np.isscalar(regular) else list(regular)
        levels = sorted({1, *(int(r) for r in regular)})
        pairs = []
        for left in lefts:
            found = pd.concat([shared_patients(net, left, "pharmacy", self.min_shared, self.stratify, min_claims=level)
                               .assign(min_claims=level) for level in levels], ignore_index=True)
            timing = self._timing(net, left)
            pairs.append(found.merge(timing, on=["left_id", "right_id"], how="left"))
        pairs = pd.concat(pairs, ignore_index=True)
        for col in ("fills", "prompt_fills"):
            pairs[col] = pairs[col].fillna(0).astype(np.int64)
        pairs[["expected_prompt", "prompt_surprise"]] = pairs[["expected_prompt", "prompt_surprise"]].fillna(0.0)
        pairs["prompt_lift"] = pairs["prompt_lift"].fillna(1.0)
        # each pair once, at the level (all patients / regular patients) where sharing is most surprising
        pairs = pairs.sort_values(["surprise", "shared_patients", "min_claims"], ascending=[False, False, True],
                                  kind="mergesort")
        pairs = pairs.drop_duplicates(["left_kind", "left_id", "right_id"]).reset_index(drop=True)
        # two tests of one pair: its shared patients against chance, and (given them) how
        # promptly their purchases follow their visits; evidence is the joint -log10 p
        pairs["evidence"] = pairs["surprise"] + pairs["prompt_surprise"]
        # evidence times effect size: a big hospital and the pharmacy next door share many
        # patients a little above chance; a ring shares its regulars many times above chance
        effect = np.maximum(pairs["lift"].to_numpy(), 1.0) * np.maximum(pairs["prompt_lift"].to_numpy(), 1.0)
        pairs["strength"] = pairs["evidence"] * np.log(effect)
        pairs = pairs.sort_values(["strength", "evidence"], ascending=False, kind="mergesort").reset_index(drop=True)

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
        surprise = pairs["strength"].to_numpy()
        for codes in (inst_code, right_code):
            ok = codes >= 0
            # pairs are sorted by strength: keep each provider's ``top_pairs`` strongest
            cc, ss = codes[ok], surprise[ok]
            order = np.argsort(cc, kind="stable")
            cc, ss = cc[order], ss[order]
            first = np.r_[True, cc[1:] != cc[:-1]] if len(cc) else np.zeros(0, dtype=bool)
            rank = np.arange(len(cc)) - np.maximum.accumulate(np.where(first, np.arange(len(cc)), 0))
            keep = rank < self.top_pairs
            np.add.at(provider, cc[keep], ss[keep])
        ok = doc_code >= 0
        np.maximum.at(doctor, doc_code[ok], surprise[ok])

        significant = pairs[pairs["evidence"] >= self.min_surprise].reset_index(drop=True)
        patient = self._patient_scores(net, significant)
        rings = self._rings(significant)
        reasons = self._reasons(net, pairs, inst_code, right_code)
        return Analysis(provider=provider, patient=patient, doctor=doctor if net.n_doctors else None,
                        evidence={"pairs": significant, "rings": rings}, reasons=reasons)

    def _timing(self, net: ClaimsNetwork, left: str) -> pd.DataFrame:
        cols = ["left_id", "right_id", "fills", "prompt_fills", "expected_prompt", "prompt_lift", "prompt_surprise"]
        if self.window is None:
            return pd.DataFrame({c: pd.Series(dtype=object if c.endswith("_id") else float) for c in cols})
        return prompt_fills(net, left, "pharmacy", window=self.window, min_shared=self.min_shared)[cols]

    def _patient_scores(self, net: ClaimsNetwork, significant: pd.DataFrame, max_pairs: int = 2000) -> np.ndarray:
        patient = np.zeros(net.n_patients)
        if significant.empty:
            return patient
        sides = {}

        def side(kind, level):
            if (kind, level) not in sides:
                binary, _, ids, _, _ = _side(net, kind, level)
                sides[(kind, level)] = (binary.tocsc(), pd.Series(np.arange(len(ids)), index=ids))
            return sides[(kind, level)]

        top = significant.head(max_pairs)
        kinds = np.where((top["left_kind"] == "doctor").to_numpy(), "doctor", "institution")
        levels = top["min_claims"].to_numpy()
        evidence = top["evidence"].to_numpy(dtype=float)
        rows, pairs = [], []
        # the pairs of one (side, level) at once: their patients in common are the nonzeros of
        # (left columns) .* (right columns), one column per pair
        for kind, level in sorted(set(zip(kinds.tolist(), levels.tolist()))):
            k = np.flatnonzero((kinds == kind) & (levels == level))
            lmat, lidx = side(kind, level)
            rmat, ridx = side("pharmacy", level)
            lcol = lidx.reindex(top["left_id"].to_numpy()[k]).to_numpy()
            rcol = ridx.reindex(top["right_id"].to_numpy()[k]).to_numpy()
            if np.isnan(lcol).any() or np.isnan(rcol).any():
                raise KeyError("a significant pair names an entity its side does not hold")
            both = lmat[:, lcol.astype(np.int64)].multiply(rmat[:, rcol.astype(np.int64)]).tocoo()
            rows.append(both.row[both.data != 0])
            pairs.append(k[both.col[both.data != 0]])
        rows, pairs = np.concatenate(rows), np.concatenate(pairs)
        # each patient gains the evidence of its pairs in the pairs' order (the same sums as pair by pair)
        order = np.lexsort((rows, pairs))
        np.add.at(patient, rows[order], evidence[pairs[order]])
        return patient

    def _rings(self, significant: pd.DataFrame) -> list[dict]:
        if significant.empty:
            return []
        g = nx.Graph()
        for row in significant.itertuples(index=False):
            u = ("doctor" if row.left_kind == "doctor" else "provider", row.left_id)
            v = ("provider", row.right_id)
            effect = max(row.lift, 1.0) * max(row.prompt_lift, 1.0)
            g.add_edge(u, v, weight=float(np.log(max(effect, 1.0 + 1e-9))), shared=int(row.shared_patients),
                       surprise=float(row.evidence), lift=float(row.lift))
        communities = []
        for component in sorted(nx.connected_components(g), key=lambda c: sorted(c)):
            if len(component) <= self.max_ring_size:
                communities.append(component)
            else:  # a large tangle of pairs: split it into communities
                communities += nx.community.louvain_communities(_ordered_subgraph(g, component), weight="weight",
                                                                resolution=self.resolution, seed=self.seed)
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
        # pairs below either threshold are not worth an inspector's attention
        worth = np.flatnonzero((pairs["evidence"].to_numpy() >= self.min_reason_surprise)
                               & (pairs["lift"].to_numpy() >= self.min_reason_lift))
        # pairs are sorted by strength and a provider keeps its first 5: skip pairs that reach neither side
        first = np.zeros(len(worth), dtype=bool)
        for codes in (inst_code[worth], right_code[worth]):
            first |= (pd.Series(codes).groupby(codes).cumcount().to_numpy() < 5) & (codes >= 0)
        worth = worth[first]
        for k, row in zip(worth, pairs.iloc[worth].itertuples(index=False)):
            chance = f"{fmt_times(row.lift)} what chance predicts ({row.expected:.1f}); "
            if row.prompt_surprise >= self.min_reason_surprise and row.prompt_lift >= self.min_reason_lift:
                chance += (f"{row.prompt_fills} of their {row.fills} purchases there within {self.window} days of a "
                           f"visit ({fmt_times(row.prompt_lift)} chance); ")
            chance += f"{fmt_money(row.shared_money)} fund paid by them there"
            who = (f"{row.shared_patients} patients" if row.min_claims <= 1 else
                   f"{row.shared_patients} regular patients ({row.min_claims}+ claims at each)")
            if row.left_kind == "doctor":
                inst = inst_code[k]
                where = f" (at {net.provider_ids[inst]})" if inst >= 0 else ""
                left_text = f"its doctor {row.left_id} shares {who} with pharmacy {row.right_id}, {chance}"
                right_text = f"shares {who} with doctor {row.left_id}{where}, {chance}"
            else:
                left_text = f"shares {who} with pharmacy {row.right_id}, {chance}"
                right_text = f"shares {who} with {row.left_kind} {row.left_id}, {chance}"
            for code, text, partner in ((inst_code[k], left_text, row.right_id), (right_code[k], right_text, row.left_id)):
                if code < 0:
                    continue
                bucket = reasons.setdefault(int(code), [])
                if len(bucket) < 5:
                    bucket.append((f"shared_patients:{partner}", int(row.shared_patients), float(row.strength), text))
        return reasons


def _ordered_subgraph(g: nx.Graph, nodes) -> nx.Graph:
    """The subgraph of ``nodes`` with nodes and edges in sorted order.

    ``g.subgraph(set)`` iterates the set, whose order of string ids changes with Python's hash
    seed from one process to the next; Louvain visits nodes in graph order (then shuffles them
    with its seed), so only a fixed order gives the same communities in every run.
    """
    sub = nx.Graph()
    sub.add_nodes_from(sorted(nodes))
    for u in sub.nodes:
        for v in sorted(g[u]):
            if v in nodes and u < v:
                sub.add_edge(u, v, **g[u][v])
    return sub
