"""Settlement: from a claim's eligible amount to what the fund pays (integer cents).

Inpatient: a per-stay deductible by scheme and tier, then a rate above it chosen so
that the batch's fund payment ratio (fund paid / eligible) equals the published ratio
for that scheme and tier. Outpatient: an annual deductible and cap per member, a
pooled rate; chronic-disease care: its own rate and cap. EBMI members' individual
accounts pay part of the rest of eligible outpatient and pharmacy spending.
"""

from __future__ import annotations

import numpy as np

from ._scenario import Scenario
from ._world import CHRONIC, EBMI, INPATIENT, OUTPATIENT, PHARMACY_CARE, World

_SCHEMES = ("EBMI", "RBMI")


def consume(budget: np.ndarray, demand: np.ndarray, group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """How much of each claim's ``demand`` an annual ``budget`` per group covers, in date order.

    ``budget`` is per claim (the budget of its group). Returns the covered part per claim.

    >>> consume(np.array([100, 100, 100]), np.array([60, 60, 60]), np.array([0, 0, 1]), np.array([0, 1, 2]))
    array([60, 40, 60])
    """
    srt = np.lexsort((order, group))
    g, dmd = group[srt], demand[srt]
    cum = np.cumsum(dmd)
    first = np.r_[True, g[1:] != g[:-1]]
    base = np.maximum.accumulate(np.where(first, cum - dmd, 0))
    before = cum - dmd - base
    covered = np.clip(budget[srt] - before, 0, dmd)
    out = np.empty_like(covered)
    out[srt] = covered
    return out


def settle(sc: Scenario, world: World, patient: np.ndarray, provider: np.ndarray, care: np.ndarray,
           doctor: np.ndarray, admit: np.ndarray, seq: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Fund paid per claim (cents), with 0 ≤ fund_paid ≤ eligible."""
    b = sc.section("benefits")
    scheme = world.pat_scheme[patient].astype(np.int64)
    tier = world.prov_tier[provider].astype(np.int64)
    fund = np.zeros(len(patient), dtype=np.int64)
    year = (np.datetime64(sc.period_start, "D") + admit.astype("timedelta64[D]")).astype("datetime64[Y]").astype(np.int64)
    group = patient.astype(np.int64) * 8 + (year - year.min() if len(year) else 0)

    # inpatient
    inp = care == INPATIENT
    ded = np.zeros(len(patient), dtype=np.int64)
    target = np.zeros(len(patient))
    for s, sname in enumerate(_SCHEMES):
        for t in (1, 2, 3):
            sel = inp & (scheme == s) & (np.maximum(tier, 1) == t)
            ded[sel] = int(round(b["inpatient"]["deductible"][sname][str(t)] * 100))
            target[sel] = b["inpatient"]["fund_ratio"][sname][str(t)]
    above = np.maximum(eligible - ded, 0)
    rate = np.zeros(len(patient))
    for s in range(2):
        for t in (1, 2, 3):
            sel = inp & (scheme == s) & (np.maximum(tier, 1) == t)
            if sel.any() and above[sel].sum() > 0:
                r = target[sel][0] * eligible[sel].sum() / above[sel].sum()
                rate[sel] = min(r, 0.99)
    fund[inp] = np.floor(rate[inp] * above[inp]).astype(np.int64)

    # general outpatient, including prescriptions filled at pharmacies (outpatient pooling)
    out = (care == OUTPATIENT) | ((care == PHARMACY_CARE) & (doctor >= 0))
    o = b["outpatient"]
    ded_y = np.array([o["deductible"][s] for s in _SCHEMES])[scheme] * 100
    cap_y = np.array([o["cap"][s] for s in _SCHEMES])[scheme] * 100
    ratio = np.array([o["ratio"][s] for s in _SCHEMES])[scheme]
    elig_out = np.where(out, eligible, 0)
    below = consume(ded_y.astype(np.int64), elig_out, group, seq)
    pooled = np.floor(ratio * (elig_out - below)).astype(np.int64)
    pooled = consume(cap_y.astype(np.int64), pooled, group, seq)
    fund += np.where(out, pooled, 0)

    # chronic and special diseases
    chr_ = care == CHRONIC
    c = b["chronic"]
    ratio_c = np.array([c["ratio"][s] for s in _SCHEMES])[scheme]
    cap_c = (np.array([c["cap"][s] for s in _SCHEMES])[scheme] * 100).astype(np.int64)
    pooled_c = np.floor(ratio_c * np.where(chr_, eligible, 0)).astype(np.int64)
    fund += np.where(chr_, consume(cap_c, pooled_c, group, seq), 0)

    # EBMI individual account: the rest of eligible non-inpatient spending, up to the yearly credit
    acc = b["individual_account"]
    ebmi = (scheme == EBMI) & ~inp
    credit = np.where(world.pat_retired[patient], acc["retired"], acc["active"]) * 100
    rest = np.where(ebmi, eligible - fund, 0)
    fund += consume(credit.astype(np.int64), rest, group, seq)
    return np.minimum(fund, eligible)
