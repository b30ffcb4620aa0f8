"""A small hand-made batch with a few planted schemes, for doctests and unit tests.

Independent of fraudkit's synthetic generator on purpose: features and detectors
must find the schemes' signals in batches written by other programs too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_DX = {  # category: (typical stay days, drug codes, exam codes)
    "J18.9": (7, ["D01", "D02", "D03"], ["E01", "E02"]),
    "I10": (5, ["D04", "D05"], ["E03"]),
    "E11.9": (6, ["D06", "D07"], ["E04", "E03"]),
    "K35.8": (5, ["D08", "D02"], ["E05", "E01"]),
    "M54.5": (8, ["D09", "D10"], ["E06"]),
    "N39.0": (4, ["D11", "D01"], ["E07", "E02"]),
}
_PRICES = {**{f"D{i:02d}": 10.0 + 7 * i for i in range(1, 12)}, **{f"E{i:02d}": 40.0 + 15 * i for i in range(1, 9)},
           "B01": 60.0, "T01": 35.0, "E99": 120.0}


def make_toy_batch(n_claims: int = 6000, seed: int = 0, fraud: bool = True):
    """A batch (and its labels) with ``n_claims`` claims; planted schemes when ``fraud``.

    Planted at four hospitals: long stays (``fake_admission``), duplicated and
    over-priced lines (``over_charging``), one identical exam set for many patients
    (``phantom_services``), split stays (``decomposed_stay``); bed days without daily items
    (``bed_hanging``) at a fifth. Patients ``P9xxxx`` buy drugs at many pharmacies
    (``drug_reselling``).

    Returns
    -------
    (Batch, Labels)
    """
    from fraudkit.io import Batch, Labels, validate_batch

    rng = np.random.default_rng(seed)
    n_pat = max(n_claims // 6, 50)
    patients = pd.DataFrame({
        "patient_id": [f"P{i:05d}" for i in range(n_pat)],
        "birth_year": rng.integers(1940, 2015, n_pat),
        "sex": rng.choice(["M", "F"], n_pat),
        "scheme": rng.choice(["EBMI", "RBMI"], n_pat, p=[0.3, 0.7]),
        "retired": False,
        "region": rng.choice(["3301", "3302", "3303"], n_pat, p=[0.5, 0.3, 0.2]),
    })
    hosp = [(f"H{i:02d}", "hospital", 1 + i % 3, ["3301", "3302", "3303"][i % 3], 40 + 60 * (i % 3)) for i in range(12)]
    clin = [(f"C{i:02d}", "clinic", 0, ["3301", "3302", "3303"][i % 3], 0) for i in range(10)]
    phar = [(f"R{i:02d}", "pharmacy", 0, ["3301", "3302", "3303"][i % 3], 0) for i in range(14)]
    providers = pd.DataFrame(hosp + clin + phar, columns=["provider_id", "provider_type", "tier", "region", "beds"])
    fraud_prov = {"H00": "fake_admission", "H01": "over_charging", "H02": "phantom_services", "H04": "decomposed_stay",
                  "H05": "bed_hanging"} if fraud else {}
    claims, items, labels = [], [], []
    start = np.datetime64("2024-01-01")
    dx_names = list(_DX)
    n_resellers = max(n_pat // 100, 3) if fraud else 0
    for i in range(n_claims):
        pid = int(rng.integers(n_pat))
        kind = rng.choice(["hosp", "clin", "phar"], p=[0.35, 0.35, 0.3])
        if kind == "hosp":
            prov = hosp[int(rng.integers(len(hosp)))]
            care = "inpatient" if rng.random() < 0.45 else "outpatient"
        elif kind == "clin":
            prov, care = clin[int(rng.integers(len(clin)))], rng.choice(["outpatient", "chronic"], p=[0.8, 0.2])
        else:
            prov, care = phar[int(rng.integers(len(phar)))], "pharmacy"
        dx = dx_names[int(rng.integers(len(dx_names)))]
        stay, drugs, exams = _DX[dx]
        admit = start + np.timedelta64(int(rng.integers(0, 170)), "D")
        los = max(1, int(rng.normal(stay, 1.2))) if care == "inpatient" else 0
        scheme = ""
        if prov[0] in fraud_prov and care == "inpatient" and rng.random() < 0.5:
            scheme = fraud_prov[prov[0]]
        if scheme == "fake_admission":
            los = int(los * rng.uniform(2.5, 3.5))
        lines = []  # (code, kind, qty, price, day offset)
        for d in range(los + 1):
            if care == "inpatient" and d < los:
                lines.append(("B01", "bed", 1.0, _PRICES["B01"], d))
            if scheme == "bed_hanging" and 1 <= d < los:
                continue
            lines.append((drugs[d % len(drugs)], "drug", 1.0, _PRICES[drugs[d % len(drugs)]], d))
            if care == "inpatient":
                lines.append(("T01", "treatment", 1.0, _PRICES["T01"], d))
        if care != "pharmacy":
            for e in exams:
                if rng.random() < 0.7:
                    lines.append((e, "exam", 1.0, _PRICES[e], 0))
        else:
            lines = [(drugs[0], "drug", float(rng.integers(7, 31)), _PRICES[drugs[0]], 0)]
        if scheme == "over_charging":
            lines += [(c, k, q, p, dd) for c, k, q, p, dd in lines if k == "drug"][:3]
            lines = [(c, k, q, p * 1.8 if k == "drug" else p, dd) for c, k, q, p, dd in lines]
        if scheme == "phantom_services":
            lines = [ln for ln in lines if ln[1] != "exam"] + [("E99", "exam", 2.0, _PRICES["E99"], 0), ("E08", "exam", 1.0, _PRICES["E08"], 0)]
        cid = f"X{i:07d}"
        parts = [(cid, scheme, pid, prov, care, admit, los, dx, lines)]
        if scheme == "decomposed_stay":
            half = max(los // 2, 1)
            first = [ln for ln in lines if ln[4] < half] or lines[:1]
            second = [(c, k, q, p, dd - half) for c, k, q, p, dd in lines if dd >= half] or lines[:1]
            parts = [(cid, scheme, pid, prov, care, admit, half, dx, first),
                     (cid + "b", scheme, pid, prov, care, admit + np.timedelta64(half + 2, "D"), max(los - half, 1), dx, second)]
        for cid_, sch, pid_, prov_, care_, admit_, los_, dx_, lines_ in parts:
            lines_ = [(c, k, q, p, min(max(dd, 0), los_)) for c, k, q, p, dd in lines_]
            total = 0.0
            for ln, (c, k, q, p, dd) in enumerate(lines_, 1):
                amount = round(q * p, 2)
                total += amount
                items.append((cid_, ln, c, k, q, p, amount, admit_ + np.timedelta64(dd, "D")))
            total = round(total, 2)
            eligible = round(total * 0.9, 2)
            fund = round(eligible * 0.7, 2)
            claims.append((cid_, f"P{pid_:05d}", prov_[0], f"{prov_[0]}-d{int(rng.integers(4))}", care_, admit_,
                           admit_ + np.timedelta64(los_, "D"), dx_, total, eligible, fund, round(total - fund, 2)))
            labels.append((cid_, sch))
    # drug resellers: many pharmacies, large quantities
    for r in range(n_resellers):
        pid = n_pat - 1 - r
        for j in range(25):
            prov = phar[(r + j) % len(phar)]
            admit = start + np.timedelta64(int(rng.integers(0, 170)), "D")
            cid = f"Y{r:03d}{j:03d}"
            q = float(rng.integers(60, 90))
            amount = round(q * _PRICES["D04"], 2)
            items.append((cid, 1, "D04", "drug", q, _PRICES["D04"], amount, admit))
            fund = round(amount * 0.9 * 0.7, 2)
            claims.append((cid, f"P{pid:05d}", prov[0], f"{prov[0]}-d0", "pharmacy", admit, admit, "I10",
                           amount, round(amount * 0.9, 2), fund, round(amount - fund, 2)))
            labels.append((cid, "drug_reselling"))
    claims = pd.DataFrame(claims, columns=["claim_id", "patient_id", "provider_id", "doctor_id", "care_type", "admit_date",
                                           "discharge_date", "diagnosis", "total_amount", "eligible_amount", "fund_paid", "self_paid"])
    items = pd.DataFrame(items, columns=["claim_id", "line_no", "item_code", "item_kind", "quantity", "unit_price", "amount", "service_date"])
    for f, cols in ((claims, ["admit_date", "discharge_date"]), (items, ["service_date"])):
        for col in cols:
            f[col] = f[col].astype("datetime64[s]")
    batch = validate_batch(Batch(patients=patients, providers=providers, claims=claims, items=items, source="<toy>"))
    prov_labels = pd.DataFrame({"provider_id": providers["provider_id"],
                                "fraud_type": providers["provider_id"].map(fraud_prov).fillna("")})
    return batch, Labels(claims=pd.DataFrame(labels, columns=["claim_id", "fraud_type"]), providers=prov_labels)
