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


def consume(budget: np.ndarray, demand: np.ndarray, group: np.ndarray, order: np.ndarray,
            srt: np.ndarray | None = None) -> np.ndarray:
    """How much of each claim's ``demand`` an annual ``budget`` per group covers, in date order.

    ``budget`` is per claim (the budget of its group). Returns the covered part per claim.
    ``srt`` (optional) is ``np.lexsort((order, group))``, when already known.

    >>> consume(np.array([100, 100, 100]), np.array([60, 60, 60]), np.array([0, 0, 1]), np.array([0, 1, 2]))
    array([60, 40, 60])
    """
    if srt is None:
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


def _consume_sorted(idx: np.ndarray, group: np.ndarray, budget: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """:func:`consume` for the claims ``idx``, already in (group, settlement) order; returns their covered parts."""
    g = group[idx]
    cum = np.cumsum(demand)
    first = np.r_[True, g[1:] != g[:-1]]
    base = np.maximum.accumulate(np.where(first, cum - demand, 0))
    return np.clip(budget - (cum - demand - base), 0, demand)


def settle(sc: Scenario, world: World, patient: np.ndarray, provider: np.ndarray, care: np.ndarray,
           doctor: np.ndarray, admit: np.ndarray, seq: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Fund paid per claim (cents), with 0 ≤ fund_paid ≤ eligible.

    Works on the claims of each benefit separately (in member-year, settlement order), so that
    memory stays a few arrays of the batch's length even for ten million claims.
    """
    b = sc.section("benefits")
    n = len(patient)
    scheme = world.pat_scheme[patient]
    tier = np.maximum(world.prov_tier[provider], 1)
    fund = np.zeros(n, dtype=np.int64)
    start = np.datetime64(sc.period_start, "D")
    years = np.arange(sc.period_start.year, sc.period_end.year + 2)
    boundaries = (np.array([f"{y}-01-01" for y in years[1:]], dtype="datetime64[D]") - start).astype(np.int64)
    year = np.searchsorted(boundaries, admit, side="right").astype(np.int64)
    group = patient.astype(np.int64) * 8 + year
    del year
    srt = np.lexsort((seq, group))  # member-year, then settlement order: shared by every budget below
    retired = world.pat_retired[patient]

    # inpatient: a deductible per stay; the rate above it gives the published ratio per scheme and tier
    inp = np.flatnonzero(care == INPATIENT)
    for s, sname in enumerate(_SCHEMES):
        for t in (1, 2, 3):
            sel = inp[(scheme[inp] == s) & (tier[inp] == t)]
            if len(sel) == 0:
                continue
            elig = eligible[sel]
            above = np.maximum(elig - int(round(b["inpatient"]["deductible"][sname][str(t)] * 100)), 0)
            if above.sum() == 0:
                continue
            rate = min(b["inpatient"]["fund_ratio"][sname][str(t)] * elig.sum() / above.sum(), 0.99)
            fund[sel] = np.floor(rate * above).astype(np.int64)

    def per_scheme(table: dict, idx: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return (np.array([table[s] for s in _SCHEMES]) * scale)[scheme[idx]]

    # general outpatient, including prescriptions filled at pharmacies (outpatient pooling)
    o = b["outpatient"]
    is_out = (care == OUTPATIENT) | ((care == PHARMACY_CARE) & (doctor >= 0))
    idx = srt[is_out[srt]]
    elig = eligible[idx]
    below = _consume_sorted(idx, group, per_scheme(o["deductible"], idx, 100).astype(np.int64), elig)
    pooled = np.floor(per_scheme(o["ratio"], idx) * (elig - below)).astype(np.int64)
    fund[idx] += _consume_sorted(idx, group, per_scheme(o["cap"], idx, 100).astype(np.int64), pooled)
    del is_out, idx, elig, below, pooled

    # chronic and special diseases
    c = b["chronic"]
    idx = srt[(care == CHRONIC)[srt]]
    pooled = np.floor(per_scheme(c["ratio"], idx) * eligible[idx]).astype(np.int64)
    fund[idx] += _consume_sorted(idx, group, per_scheme(c["cap"], idx, 100).astype(np.int64), pooled)
    del idx, pooled

    # EBMI individual account: the rest of eligible non-inpatient spending, up to the yearly credit
    acc = b["individual_account"]
    idx = srt[((scheme == EBMI) & (care != INPATIENT))[srt]]
    credit = np.where(retired[idx], acc["retired"], acc["active"]) * 100
    fund[idx] += _consume_sorted(idx, group, credit.astype(np.int64), eligible[idx] - fund[idx])
    return np.minimum(fund, eligible)
