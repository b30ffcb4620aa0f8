"""fraudkit.graph: the claims network, projections and the four graph detectors.

Known answers on hand-built graphs, agreement of fast and reference peeling, and
measured recovery of planted rings (on a hand-built world here; on the generator's
tiny batch when it is available).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from fraudkit.detectors import EXPLAIN_COLUMNS
from fraudkit.graph import (
    ClaimsNetwork, DenseBlockDetector, EgonetDetector, PropagationDetector, RingDetector, camouflage_weights,
    ego_network, peel, peel_blocks, peel_reference, shared_patients,
)
from fraudkit.graph._projection import chance_surprise
from fraudkit.graph._timing import prompt_fills

from test_graph_world import build_world, recall_at_k


# --------------------------------------------------------------------------- helpers
def frames(rows, kinds, regions=None, patient_regions=None):
    """claims/providers/patients frames from (patient, provider, doctor, fund_paid) rows."""
    claims = pd.DataFrame(rows, columns=["patient_id", "provider_id", "doctor_id", "fund_paid"])
    claims.insert(0, "claim_id", [f"c{i}" for i in range(len(claims))])
    claims["admit_date"] = pd.Timestamp("2025-03-01") + pd.to_timedelta(np.arange(len(claims)) % 30, unit="D")
    providers = pd.DataFrame({"provider_id": list(kinds), "provider_type": list(kinds.values())})
    if regions:
        providers["region"] = [regions[p] for p in kinds]
    patients = None
    if patient_regions:
        patients = pd.DataFrame({"patient_id": list(patient_regions), "region": list(patient_regions.values())})
    return claims, providers, patients


def ring_network(seed=0, n_patients=400, ring_size=25):
    """30 clinics, 20 pharmacies, patients choosing at random; clinic C9 + pharmacies R6, R7 form a ring."""
    rng = np.random.default_rng(seed)
    kinds = {f"C{i}": "clinic" for i in range(30)} | {f"R{i}": "pharmacy" for i in range(20)}
    rows = []
    for p in range(n_patients):
        for _ in range(rng.integers(1, 4)):
            c = f"C{rng.integers(30)}"
            rows.append((f"p{p}", c, f"D{c}", 50.0))
            rows.append((f"p{p}", f"R{rng.integers(20)}", f"D{c}", 20.0))
    for p in range(ring_size):
        for _ in range(3):
            rows += [(f"r{p}", "C9", "DC9", 300.0), (f"r{p}", "R6", "DC9", 200.0), (f"r{p}", "R7", "DC9", 200.0)]
    claims, providers, _ = frames(rows, kinds)
    return ClaimsNetwork.from_frames(claims, providers)


def clique_in_noise(seed=0, n_patients=2000, n_providers=100, clique=(30, 4), repeat=1):
    """Patients with 1-2 random providers each; patients 0..29 also all use providers 0..3 (``repeat`` times)."""
    rng = np.random.default_rng(seed)
    deg = rng.integers(1, 3, n_patients)
    patient = np.repeat(np.arange(n_patients), deg)
    provider = rng.integers(0, n_providers, len(patient))
    rows, cols = clique
    patient = np.r_[patient, np.repeat(np.arange(rows), cols * repeat)]
    provider = np.r_[provider, np.tile(np.arange(cols), rows * repeat)]
    return ClaimsNetwork.from_arrays(patient, provider, n_patients=n_patients, n_providers=n_providers)


@pytest.fixture(scope="module")
def world():
    return build_world(seed=7)


# --------------------------------------------------------------------------- the network
def test_network_matrices_ids_and_window():
    claims, providers, patients = frames(
        [("A", "C1", "D1", 100.0), ("A", "C1", "D1", 50.0), ("A", "R1", None, 20.0), ("B", "C1", "D2", 10.0)],
        {"C1": "clinic", "R1": "pharmacy", "H1": "hospital"})
    net = ClaimsNetwork.from_frames(claims, providers)
    assert list(net.ids("provider")) == ["C1", "R1", "H1"]
    assert list(net.ids("patient")) == ["A", "B"] and list(net.ids("doctor")) == ["D1", "D2"]
    assert list(net.ids("claim")) == ["c0", "c1", "c2", "c3"]
    assert net.patient_provider.toarray().tolist() == [[2, 1, 0], [1, 0, 0]]
    assert net.patient_provider_money.toarray().tolist() == [[150.0, 20.0, 0.0], [10.0, 0.0, 0.0]]
    assert net.patient_doctor.toarray().tolist() == [[2, 0], [0, 1]]
    assert net.doctor_provider.toarray().tolist() == [[2, 0, 0], [1, 0, 0]]
    assert list(net.doctor_home()) == [0, 0]
    # a detector's sample ids come from the network (BaseDetector.sample_ids -> X.ids)
    assert list(RingDetector().sample_ids(net)) == ["C1", "R1", "H1"]
    # time window: same ids, fewer claims
    first = net.window(end_day=int(net.claim_day.min()) + 2)
    assert first.n_providers == 3 and len(first.claim_ids) == 2
    windowed = ClaimsNetwork.from_frames(claims, providers, start="2025-03-02")
    assert len(windowed.claim_ids) == 3
    with pytest.raises(ValueError):
        net.ids("pharmacist")


def test_ego_network_attributes_radius_and_cap():
    net = ring_network()
    g = ego_network(net, "C9", radius=1, suspicious=["R6"])
    kinds = {k for _, k in g.nodes(data="kind")}
    assert kinds == {"clinic", "patient", "doctor"}  # one hop: its patients and doctors
    assert g.nodes["C9"]["hops"] == 0 and g.graph["center"] == "C9"
    r0 = g.edges["r0", "C9"]
    assert r0 == {"claims": 3, "money": 900.0}
    g2 = ego_network(net, "C9", radius=2, max_nodes=60, suspicious=pd.Series({"R6": 0.9, "R7": 0.0}))
    assert g2.number_of_nodes() <= 60 and g2.nodes["R6"]["suspicious"] and not g2.nodes["R7"]["suspicious"]
    assert all({"claims", "money"} <= set(d) for _, _, d in g2.edges(data=True))
    with pytest.raises(KeyError):
        ego_network(net, "nope")


def test_shared_patients_lift_known_answer_within_regions():
    # region 1: 4 patients; clinic C1 has a, b; pharmacy R1 has a, b, c -> expected 2*3/4 = 1.5
    # region 2: 2 patients; C1 has e; R1 has e, f -> expected 1*2/2 = 1; shared = 3, expected 2.5
    rows = [(p, "C1", "D", 1.0) for p in "abe"] + [(p, "R1", None, 2.0) for p in "abcef"] + [("d", "C2", "D", 1.0)]
    claims, providers, patients = frames(rows, {"C1": "clinic", "C2": "clinic", "R1": "pharmacy"},
                                         patient_regions={"a": "1", "b": "1", "c": "1", "d": "1", "e": "2", "f": "2"})
    net = ClaimsNetwork.from_frames(claims, providers, patients)
    pairs = shared_patients(net, min_shared=1)
    row = pairs.set_index(["left_id", "right_id"]).loc[("C1", "R1")]
    assert row.shared_patients == 3 and row.expected == pytest.approx(2.5) and row.lift == pytest.approx(1.2)
    assert row.shared_money == pytest.approx(3 * 1.0 + 3 * 2.0)
    flat = shared_patients(net, min_shared=1, stratify=False).set_index(["left_id", "right_id"]).loc[("C1", "R1")]
    assert flat.expected == pytest.approx(3 * 5 / 6)
    # doctor-pharmacy projection
    docs = shared_patients(net, "doctor", "pharmacy", min_shared=1)
    assert docs.iloc[0][["left_id", "right_id", "shared_patients"]].tolist() == ["D", "R1", 3]


def test_shared_patients_chance_counts_only_patients_seen_in_the_pair_regions():
    # 100 patients live in region H; 10 of them travel to the distant city X, where there is one
    # hospital (HX) and one pharmacy (RX): all 10 use both. Against every patient of H that is a
    # 10x lift; against the 10 who were in X it is exactly chance. At home, clinic CH and pharmacy
    # RH share 10 of their 20 and 20 patients: 5 expected among the 80 patients seen in H.
    home = {f"p{i}": "H" for i in range(100)}
    rows = [(f"p{i}", "HX", "DX", 1.0) for i in range(10)] + [(f"p{i}", "RX", None, 1.0) for i in range(10)]
    rows += [(f"p{i}", "CH", "DH", 1.0) for i in range(20, 40)] + [(f"p{i}", "RH", None, 1.0) for i in range(30, 50)]
    rows += [(f"p{i}", "CH2", "DH2", 1.0) for i in range(50, 100)]
    kinds = {"HX": "hospital", "RX": "pharmacy", "CH": "clinic", "RH": "pharmacy", "CH2": "clinic"}
    claims, providers, patients = frames(rows, kinds, regions={"HX": "X", "RX": "X", "CH": "H", "RH": "H", "CH2": "H"},
                                         patient_regions=home)
    pairs = shared_patients(ClaimsNetwork.from_frames(claims, providers, patients), min_shared=1).set_index(["left_id", "right_id"])
    assert pairs.loc[("HX", "RX"), "expected"] == pytest.approx(10.0)  # 10 * 10 / 10 travellers
    assert pairs.loc[("HX", "RX"), "lift"] == pytest.approx(1.0)
    assert pairs.loc[("CH", "RH"), "expected"] == pytest.approx(20 * 20 / 80)
    assert pairs.loc[("CH", "RH"), "lift"] == pytest.approx(2.0)


def test_regular_shared_patients_and_ring_reasons():
    # C1-R1 share 6 patients once each and 4 regulars (3 claims at both); C2-R2 share 6 one-off patients
    rows = [(f"a{i}", "C1", "D1", 10.0) for i in range(6)] + [(f"a{i}", "R1", "D1", 5.0) for i in range(6)]
    rows += [(f"r{i}", p, "D1", 10.0) for i in range(4) for p in ("C1", "R1") for _ in range(3)]
    rows += [(f"b{i}", p, "D2", 10.0) for i in range(6) for p in ("C2", "R2")]
    rows += [(f"n{i}", p, "D2", 1.0) for i in range(40) for p in (f"C{3 + i % 3}", f"R{3 + i % 4}")]
    kinds = {f"C{i}": "clinic" for i in range(1, 6)} | {f"R{i}": "pharmacy" for i in range(1, 7)}
    claims, providers, _ = frames(rows, kinds)
    net = ClaimsNetwork.from_frames(claims, providers)
    regular = shared_patients(net, min_shared=1, min_claims=3).set_index(["left_id", "right_id"])
    assert regular.loc[("C1", "R1"), "shared_patients"] == 4 and ("C2", "R2") not in regular.index
    det = RingDetector(min_shared=2, min_surprise=0.0).fit(net)
    pairs = det.evidence_["pairs"].set_index(["left_id", "right_id"])
    assert pairs.loc[("C1", "R1"), "shared_patients"] == 10 and pairs.loc[("C1", "R1"), "strength"] > 0
    reasons = det.explain(net, top=1).set_index("id")["reason"]
    assert reasons["C1"].startswith("shares") and "pharmacy R1" in reasons["C1"]


def test_chance_surprise_orders_evidence():
    s = chance_surprise([40, 4, 3000], [4.0, 0.4, 2800.0], [50, 10, 5000])
    assert s[0] > 20 > s[1] > 1 and s[2] < s[0]


def _dated(rows, kinds):
    """claims/providers frames from (patient, provider, doctor, day) rows, day 0 = 2025-03-01."""
    claims = pd.DataFrame(rows, columns=["patient_id", "provider_id", "doctor_id", "day"])
    claims.insert(0, "claim_id", [f"c{i}" for i in range(len(claims))])
    claims["admit_date"] = pd.Timestamp("2025-03-01") + pd.to_timedelta(claims.pop("day"), unit="D")
    claims["fund_paid"] = 10.0
    return claims, pd.DataFrame({"provider_id": list(kinds), "provider_type": list(kinds.values())})


def test_prompt_fills_known_answer():
    # p0-p3 visit C1 (doctor D1) on days 0, 30, 60 and buy at R1 the day after each visit;
    # q0-q3 visit C1 once (day 5) and buy at R2 on day 90, far from the visit. Days 0..90: 91.
    rows = [(f"p{i}", "C1", "D1", d) for i in range(4) for d in (0, 30, 60)]
    rows += [(f"p{i}", "R1", "D1", d + 1) for i in range(4) for d in (0, 30, 60)]
    rows += [(f"q{i}", "C1", "D1", 5) for i in range(4)] + [(f"q{i}", "R2", None, 90) for i in range(4)]
    rows += [("s", "C1", "D1", 20), ("s", "R2", None, 19), ("s", "R2", None, 24)]  # a day before, 4 days after
    claims, providers = _dated(rows, {"C1": "clinic", "R1": "pharmacy", "R2": "pharmacy"})
    net = ClaimsNetwork.from_frames(claims, providers)
    q = lambda n: 1 - (1 - 4 / 91) ** n  # noqa: E731 - chance that a purchase follows one of n visits within 0..3 days
    t = prompt_fills(net, calibrate=False).set_index(["left_id", "right_id"])
    r1, r2 = t.loc[("C1", "R1")], t.loc[("C1", "R2")]
    assert (r1.shared_patients, r1.fills, r1.prompt_fills) == (4, 12, 12)
    assert r1.expected_prompt == pytest.approx(12 * q(3)) and r1.prompt_surprise > 10
    assert (r2.shared_patients, r2.fills, r2.prompt_fills) == (5, 6, 0) and r2.prompt_surprise == 0
    assert r2.expected_prompt == pytest.approx(6 * q(1))
    # the doctor's visits give the same answer; purchases naming the doctor are not visits
    d = prompt_fills(net, "doctor", calibrate=False).set_index(["left_id", "right_id"]).loc[("D1", "R1")]
    assert (d.fills, d.prompt_fills) == (12, 12) and d.expected_prompt == pytest.approx(12 * q(3))
    # calibrated: chance raised to the batch's promptness (12 prompt of 12 q(3) + 6 q(1) expected)
    c = prompt_fills(net).set_index(["left_id", "right_id"]).loc[("C1", "R1")]
    assert c.expected_prompt == pytest.approx(12 * q(3) * 12 / (12 * q(3) + 6 * q(1)))
    # no dates, no timing
    assert prompt_fills(ClaimsNetwork.from_frames(claims.drop(columns="admit_date"), providers)).empty
    with pytest.raises(ValueError):
        prompt_fills(net, "pharmacist")


def test_prompt_fills_calibrated_to_honest_prescriptions():
    # 70 % of honest purchases are made 0-2 days after the patient's previous visit, the
    # ring's on random days: no pair is prompt beyond the batch's habit (uncalibrated, honest
    # pairs would look far more prompt than chance)
    batch, ring, _ = build_world(seed=1, ring_patients=12, camouflage=2.0, prompt_share=0.7)
    net = ClaimsNetwork.from_batch(batch)
    honest = lambda t: t[~(t.left_id.isin(ring) & t.right_id.isin(ring))]  # noqa: E731
    assert honest(prompt_fills(net, min_shared=3, calibrate=False)).prompt_surprise.max() > 50
    assert prompt_fills(net, min_shared=3).prompt_surprise.max() < 6
    # ...while a ring whose members buy on the day of each ring visit still stands out
    batch, ring, _ = build_world(seed=1, ring_patients=12, camouflage=2.0, prompt_share=0.7, ring_prompt=True)
    t = prompt_fills(ClaimsNetwork.from_batch(batch), min_shared=3)
    assert honest(t).prompt_surprise.max() < 3
    assert t[t.left_id.isin(ring) & t.right_id.isin(ring)].prompt_surprise.min() > 4


def test_ring_detector_combines_sharing_and_timing():
    batch, ring, _ = build_world(seed=2, rings=3, ring_patients=8, camouflage=2.0, ring_prompt=True)
    net = ClaimsNetwork.from_batch(batch)
    det = RingDetector().fit(net)
    pairs = det.evidence_["pairs"]
    assert np.allclose(pairs.evidence, pairs.surprise + pairs.prompt_surprise)
    top = pairs.iloc[0]
    assert top.left_id in ring and top.right_id in ring and top.prompt_fills > 0.9 * top.fills
    assert "purchases there within 3 days of a visit" in det.explain(net, top=1).set_index("id").reason[top.right_id]
    untimed = RingDetector(window=None).fit(net).evidence_["pairs"]
    assert (untimed.prompt_surprise == 0).all() and (untimed.evidence == untimed.surprise).all()


# --------------------------------------------------------------------------- peeling
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_and_reference_peeling_agree(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = 300, 40
    r, c = rng.integers(0, n_rows, 900), rng.integers(0, n_cols, 900)
    r = np.r_[r, np.repeat(np.arange(25), 4), np.repeat(np.arange(100, 115), 3)]
    c = np.r_[c, np.tile(np.arange(4), 25), np.tile([10, 11, 12], 15)]
    counts = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_rows, n_cols))
    counts.data = rng.integers(1, 4, counts.nnz).astype(float)
    for edge_value, rows in (("binary", False), ("log1p", False), ("log", True)):
        w = camouflage_weights(counts, edge_value=edge_value, row_weighting=rows)
        order_fast, dens_fast = peel(w)
        order_ref, dens_ref = peel_reference(w)
        assert np.array_equal(order_fast, order_ref) and np.array_equal(dens_fast, dens_ref)
        fast, _ = peel_blocks(w, n_blocks=3)
        ref, _ = peel_blocks(w, n_blocks=3, reference=True, prune=False)
        unpruned, _ = peel_blocks(w, n_blocks=3, prune=False)  # pruning to the dense core is exact
        assert len(fast) == len(ref) == len(unpruned) >= 2
        for a, b, c in zip(fast, ref, unpruned):
            assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols) and a.density == b.density
            assert np.array_equal(a.rows, c.rows) and np.array_equal(a.cols, c.cols) and a.density == c.density


def test_peeling_finds_a_biclique_exactly():
    adjacency = np.zeros((10, 6))
    adjacency[:6, :3] = adjacency[6:, 3:] = 1  # a 6x3 and a 4x3 biclique
    blocks, node_density = peel_blocks(camouflage_weights(sp.csr_matrix(adjacency)), n_blocks=5)
    assert [(b.rows.tolist(), b.cols.tolist()) for b in blocks] == [([0, 1, 2, 3, 4, 5], [0, 1, 2]),
                                                                     ([6, 7, 8, 9], [3, 4, 5])]
    assert blocks[0].density == pytest.approx(18 / np.log(11) / 9, rel=1e-5)
    assert node_density.min() > 0


# --------------------------------------------------------------------------- detectors: known answers
@pytest.mark.parametrize("edge_value, row_weighting, repeat", [("binary", False, 1), ("log1p", False, 1),
                                                                ("log", True, 3), ("log1p", True, 3)])
def test_dense_block_finds_planted_clique_in_noise(edge_value, row_weighting, repeat):
    net = clique_in_noise(repeat=repeat)
    det = DenseBlockDetector(n_blocks=3, edge_value=edge_value, row_weighting=row_weighting).fit(net)
    block = det.evidence_["blocks"][0]
    assert set(block["providers"][:4]) == {"H0", "H1", "H2", "H3"}
    planted = {f"P{i}" for i in range(30)}
    assert len(planted & set(block["patients"])) >= 27
    assert set(det.scores(net).nlargest(4).index) == {"H0", "H1", "H2", "H3"}
    patients = det.entity_scores(net)["patient"]
    assert len(planted & set(patients.nlargest(30).index)) >= 27
    reason = det.explain(net, top=1).set_index("id").loc["H0", "reason"]
    assert "dense block #1" in reason and "patients" in reason


def test_dense_block_leaves_out_the_popular_hospital_its_patients_also_visit():
    # the 30 clique patients (providers 0-3, three visits each) also see provider 99, as do 900
    # others: it is in the densest peeled set but holds no more of the block than chance
    rng = np.random.default_rng(1)
    deg = rng.integers(1, 3, 2000)
    patient = np.r_[np.repeat(np.arange(2000), deg), np.repeat(np.arange(30), 12), np.arange(930), np.arange(930)]
    provider = np.r_[rng.integers(0, 99, deg.sum()), np.tile(np.arange(4), 90), np.full(930, 99), np.full(930, 99)]
    net = ClaimsNetwork.from_arrays(patient, provider, n_patients=2000, n_providers=100)
    det = DenseBlockDetector(n_blocks=3).fit(net)
    blocks = det.evidence_["blocks"]
    assert set(blocks[0]["providers"]) == {"H0", "H1", "H2", "H3"}
    assert all("H99" not in b["providers"] for b in blocks)
    scores = det.scores(net)
    assert scores["H99"] == 0 and set(scores.nlargest(4).index) == {"H0", "H1", "H2", "H3"}


def test_ring_detector_finds_clinic_and_two_pharmacies():
    net = ring_network()
    det = RingDetector().fit(net)
    assert set(det.scores(net).nlargest(3).index) == {"C9", "R6", "R7"}
    pairs = det.evidence_["pairs"]
    top_pairs = {tuple(x) for x in pairs.loc[pairs.left_kind == "clinic", ["left_id", "right_id"]].head(2).values}
    assert top_pairs == {("C9", "R6"), ("C9", "R7")}
    ring = det.evidence_["rings"][0]
    assert set(ring["providers"]) == {"C9", "R6", "R7"} and ring["doctors"] == ["DC9"]
    assert ring["max_lift"] > 3
    ring_patients = {f"r{i}" for i in range(25)}
    assert len(set(det.entity_scores(net)["patient"].nlargest(25).index) & ring_patients) >= 23
    reasons = det.explain(net, top=2)
    text = reasons.set_index(["id", "rank"]).loc[("R6", 1), "reason"]
    assert "shares" in text and "what chance predicts" in text


def test_propagation_ranks_neighbours_of_a_seed_above_strangers():
    net = ring_network()
    det = PropagationDetector(seeds=["C9"]).fit(net)
    scores = det.scores(net)
    assert not det.skipped_
    strangers = scores.drop(["C9", "R6", "R7"])
    assert min(scores["R6"], scores["R7"]) > strangers.max()
    paths = det.evidence_["paths"].set_index("provider_id")
    assert paths.loc["R6", "seed_id"] == "C9" and paths.loc["R6", "patients"] >= 25
    assert det.entity_scores(net)["patient"]["r0"] > det.entity_scores(net)["patient"]["p0"]
    # patient seeds: providers that treated them come first
    by_patient = PropagationDetector(seeds=["r0", "r1", "r2", "unknown"]).fit(net)
    assert set(by_patient.scores(net).nlargest(3).index) == {"C9", "R6", "R7"}
    assert by_patient.evidence_["unknown_seeds"] == ["unknown"]
    assert by_patient.explain(net)["reason"].str.contains("patients confirmed fraudulent").any()


@pytest.mark.parametrize("seeds", [None, [], ["not-in-network"]])
def test_propagation_without_seeds_is_skipped_not_faked(seeds):
    net = ring_network()
    det = PropagationDetector(seeds=seeds).fit(net)
    assert det.skipped_ and det.evidence_["skipped"]
    assert np.all(det.decision_scores_ == 0) and det.threshold_ == np.inf
    assert det.predict(net).sum() == 0
    assert det.explain(net).empty and list(det.explain(net).columns) == EXPLAIN_COLUMNS
    assert (det.entity_scores(net)["claim"] == 0).all()


def test_egonet_flags_a_dominant_partnership():
    net = ring_network()
    det = EgonetDetector().fit(net)
    top = set(det.scores(net).nlargest(3).index)
    assert len(top & {"C9", "R6", "R7"}) >= 2
    table = det.evidence_["egonets"].set_index("provider_id")
    assert table.loc["C9", "weight"] > table.loc["C9", "weight_expected"]
    assert set(det.evidence_["laws"]) == {"clinic", "pharmacy"}


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("make", [DenseBlockDetector, RingDetector, EgonetDetector,
                                  lambda: PropagationDetector(seeds=["C9"])])
def test_detector_contract(make):
    net = ring_network()
    det = make()
    assert det.entity == "provider" and clone(det).get_params() == det.get_params()
    assert det.fit(net) is det
    assert det.decision_scores_.shape == (net.n_providers,)
    assert np.allclose(det.score_samples(net), det.decision_scores_)
    scores = det.entity_scores(net)
    assert {"provider", "patient", "claim"} <= set(scores)
    assert scores["provider"].index.equals(net.provider_ids) and scores["claim"].index.equals(net.claim_ids)
    assert scores["patient"].index.equals(net.patient_ids)
    assert (scores["claim"] >= 0).all()
    explained = det.explain(net, top=2)
    assert list(explained.columns) == EXPLAIN_COLUMNS and explained["rank"].max() <= 2
    assert explained["reason"].str.len().gt(20).all()
    # another network (a time window) is scored afresh, the fitted state untouched
    other = net.window(end_day=int(np.median(net.claim_day)))
    before = det.decision_scores_.copy()
    assert det.score_samples(other).shape == (net.n_providers,)
    assert np.array_equal(det.decision_scores_, before)
    # a Batch works as X too
    batch, _, _ = build_world(seed=3, regions=2, patients_per_region=150, rings=1)
    assert make().fit(batch).scores(batch).index.equals(pd.Index(batch.providers.provider_id))


# --------------------------------------------------------------------------- measured recovery
def test_recovery_of_planted_rings_on_hand_built_world(world):
    batch, ring_providers, ring_patients = world
    net = ClaimsNetwork.from_batch(batch)
    dense = DenseBlockDetector().fit(net)
    ring = RingDetector().fit(net)
    assert recall_at_k(dense.scores(net), ring_providers) >= 0.8
    assert recall_at_k(ring.scores(net), ring_providers) >= 0.8
    assert recall_at_k(ring.entity_scores(net)["patient"], ring_patients) >= 0.8
    assert recall_at_k(dense.entity_scores(net)["patient"], ring_patients) >= 0.7


def _tiny(request):
    try:
        return request.getfixturevalue("tiny_batch")
    except pytest.FixtureLookupError:
        pytest.skip("the generator's tiny_batch fixture is not available yet")


@pytest.mark.slow
def test_recovery_of_ring_providers_on_generated_hard_batches():
    # issue #4: >= 70 % of planted ring providers in the top k on hard. Measured on
    # synthetic/hard.yaml at 100k claims, seeds 0-2 (label noise included): 100 %, 100 %, 86 %
    # (sharing alone, window=None: 88 %, 62 %, 71 %); at 300k claims seeds 1-12: 75-100 %, see
    # benchmarks/bench_graph.py --recovery.
    from fraudkit.synthetic import Scenario, generate

    scenario = Scenario.from_yaml(Path(__file__).resolve().parents[1] / "synthetic" / "hard.yaml")
    recalls = []
    for seed in range(3):
        batch, labels = generate(scenario, 100_000, seed=seed, validate=False)
        kinds = labels.providers.set_index("provider_id")["fraud_type"].fillna("").astype(str)
        ring = set(kinds[kinds.str.contains("collusion_ring")].index)
        net = ClaimsNetwork.from_batch(batch)
        recalls.append(recall_at_k(RingDetector().fit(net).scores(net), ring))
    assert min(recalls) >= 0.7 and np.mean(recalls) >= 0.85, recalls


def test_recovery_of_ring_providers_on_generated_tiny_batch(request):
    batch, labels = _tiny(request)
    kinds = labels.providers.set_index("provider_id")["fraud_type"].fillna("").astype(str)
    ring = set(kinds[kinds.str.contains("collusion_ring")].index)
    if not ring:
        pytest.skip("tiny batch plants no collusion ring")
    net = ClaimsNetwork.from_batch(batch)
    recalls = {type(d).__name__: recall_at_k(d.fit(net).scores(net), ring)
               for d in (DenseBlockDetector(), RingDetector())}
    assert max(recalls.values()) >= 0.6, recalls


def test_rings_split_by_louvain_are_the_same_under_any_hash_seed(tmp_path):
    # string ids hash differently in every process: the rings found must not depend on it
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "rings.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_graph_world import build_world\n"
        "from fraudkit.graph import ClaimsNetwork, RingDetector\n"
        "batch, _, _ = build_world(seed=2, rings=3, ring_patients=8, camouflage=2.0, ring_prompt=True)\n"
        "det = RingDetector(max_ring_size=2, min_surprise=3.0).fit(ClaimsNetwork.from_batch(batch))\n"
        "print(json.dumps(det.evidence_['rings']))\n")
    runs = []
    for seed in ("1", "2", "3"):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        runs.append(json.loads(out.stdout))
    assert sum(len(r["providers"]) + len(r["doctors"]) for r in runs[0]) >= 3  # Louvain had groups to split
    assert runs[0] == runs[1] == runs[2]
