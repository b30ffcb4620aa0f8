"""A small hand-built claims world with planted collusion rings, for the graph tests.

Built here, not by fraudkit's generator, so that the graph detectors are tested on a
structure we control: regions with hospitals, clinics and pharmacies chosen by
popularity; rings of one clinic, two pharmacies and two doctors whose recruited
patients also keep their ordinary care (camouflage), and whose providers also serve
ordinary patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudkit.io import Batch


def build_world(seed: int = 0, regions: int = 4, patients_per_region: int = 500, rings: int = 2,
                ring_patients: int = 40, camouflage: float = 1.0, prompt_share: float = 0.0,
                ring_prompt: bool = False):
    """Return (Batch, set of ring provider ids, set of ring patient ids).

    ``prompt_share``: share of ordinary pharmacy purchases made 0-2 days after the
    patient's previous visit (prescriptions filled honestly, next door); ``ring_prompt``:
    ring members buy on the day of each ring visit (else on random days).
    """
    rng = np.random.default_rng(seed)
    providers, doctors_of = [], {}
    for r in range(regions):
        for kind, n, docs in (("hospital", 3, 8), ("clinic", 12, 2), ("pharmacy", 10, 0)):
            for i in range(n):
                pid = f"{kind[0].upper()}{r}{i:02d}"
                providers.append((pid, kind, 2 if kind == "hospital" else 0, f"33{r:02d}", 100 if kind == "hospital" else 0))
                doctors_of[pid] = [f"D{pid}_{d}" for d in range(docs)]
    providers = pd.DataFrame(providers, columns=["provider_id", "provider_type", "tier", "region", "beds"])
    by = {(r, k): providers[(providers.region == f"33{r:02d}") & (providers.provider_type == k)].provider_id.tolist()
          for r in range(regions) for k in ("hospital", "clinic", "pharmacy")}
    pop = {key: rng.zipf(1.6, len(ids)).astype(float) for key, ids in by.items()}
    patients, claims = [], []

    def claim(pat, prov, doc, day, amount):
        claims.append((f"K{len(claims):06d}", pat, prov, doc, day, amount))

    for r in range(regions):
        for i in range(patients_per_region):
            pat = f"P{r}{i:04d}"
            patients.append((pat, int(rng.integers(1940, 2015)), "MF"[i % 2], "RBMI", False, f"33{r:02d}"))
            last_doc, last_day = None, None
            for _ in range(int(rng.poisson(4)) + 1):
                rr = r if rng.random() > 0.05 else int(rng.integers(regions))
                kind = rng.choice(["hospital", "clinic", "pharmacy"], p=[0.3, 0.3, 0.4])
                ids, w = by[(rr, kind)], pop[(rr, kind)]
                prov = ids[rng.choice(len(ids), p=w / w.sum())]
                day = int(rng.integers(0, 180))
                if kind == "pharmacy":
                    doc = last_doc if rng.random() < 0.5 else None
                    if last_day is not None and rng.random() < prompt_share:
                        day = min(last_day + int(rng.integers(0, 3)), 179)
                else:
                    doc = doctors_of[prov][rng.integers(len(doctors_of[prov]))]
                    last_doc, last_day = doc, day
                claim(pat, prov, doc, day, float(rng.gamma(2, 150)))
    ring_providers, ring_patients_all = set(), set()
    for k in range(rings):
        r = k % regions
        clinic = by[(r, "clinic")][-1 - k // regions]  # unpopular clinics and pharmacies
        pharmacies = by[(r, "pharmacy")][-2 - 2 * (k // regions):][:2]
        docs = doctors_of[clinic]
        ring_providers |= {clinic, *pharmacies}
        members = rng.choice(patients_per_region, ring_patients, replace=False)
        for m in members:
            pat = f"P{r}{m:04d}"
            ring_patients_all.add(pat)
            for _ in range(int(rng.integers(3, 7))):
                doc = docs[rng.integers(len(docs))]
                day = int(rng.integers(0, 180))
                claim(pat, clinic, doc, day, float(rng.gamma(3, 200)))
                for ph in pharmacies:
                    if rng.random() < 0.8:
                        claim(pat, ph, doc, day if ring_prompt else int(rng.integers(0, 180)), float(rng.gamma(3, 150)))
            # camouflage: recruited patients also visit popular providers elsewhere
            for _ in range(int(rng.poisson(2 * camouflage))):
                kind = rng.choice(["hospital", "pharmacy"])
                key = (int(rng.integers(regions)), kind)
                ids, w = by[key], pop[key]
                prov = ids[rng.choice(len(ids), p=w / w.sum())]
                claim(pat, prov, doctors_of[prov][0] if doctors_of[prov] else None, int(rng.integers(0, 180)), 300.0)
    patients = pd.DataFrame(patients, columns=["patient_id", "birth_year", "sex", "scheme", "retired", "region"])
    claims = pd.DataFrame(claims, columns=["claim_id", "patient_id", "provider_id", "doctor_id", "day", "fund_paid"])
    claims["admit_date"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(claims.pop("day"), unit="D")
    claims["discharge_date"] = claims["admit_date"]
    claims["care_type"] = np.where(claims.provider_id.str.startswith("R"), "pharmacy", "outpatient")
    claims["fund_paid"] = claims["fund_paid"].round(2)
    claims["total_amount"] = claims["eligible_amount"] = claims["fund_paid"]
    claims["self_paid"] = 0.0
    claims["diagnosis"] = ""
    items = pd.DataFrame(columns=["claim_id", "line_no", "item_code", "item_kind", "quantity", "unit_price",
                                  "amount", "service_date"])
    batch = Batch(patients=patients, providers=providers, claims=claims, items=items, source="<world>")
    return batch, ring_providers, ring_patients_all


def recall_at_k(scores: pd.Series, positives: set) -> float:
    """Share of positives among the top-k by score, k = number of positives (ties broken by id)."""
    k = len(positives)
    top = scores.sort_index().sort_values(ascending=False, kind="mergesort").index[:k]
    return len(set(top) & positives) / k


def test_world_is_well_formed():
    batch, ring_providers, ring_patients = build_world(seed=1)
    assert len(ring_providers) == 6 and len(ring_patients) == 80
    assert batch.claims.patient_id.isin(batch.patients.patient_id).all()
    assert batch.claims.provider_id.isin(batch.providers.provider_id).all()
