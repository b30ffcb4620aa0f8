"""Prompt fills: purchases at a pharmacy that follow a visit elsewhere within a few days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fraudkit.features._prep import distinct

from ._network import ClaimsNetwork, as_network
from ._projection import _SIDES, chance_surprise

#: Columns of :func:`prompt_fills`.
PROMPT_COLUMNS = ["left_id", "right_id", "shared_patients", "fills", "prompt_fills", "expected_prompt", "prompt_lift",
                  "prompt_surprise"]


def _unique_rows(*cols: np.ndarray) -> list[np.ndarray]:
    """Distinct rows of non-negative integer columns (one int64 key when it fits)."""
    sizes = [int(c.max()) + 1 if len(c) else 1 for c in cols]
    if np.prod([float(x) for x in sizes]) < 2.0 ** 62:
        key = np.zeros(len(cols[0]), dtype=np.int64)
        for c, size in zip(cols, sizes):
            key = key * size + c
        key = distinct(key)  # sorting then dropping repeats beats hashing here
        out = []
        for size in reversed(sizes):
            out.append(key % size)
            key = key // size
        return out[::-1]
    return list(np.unique(np.stack(cols), axis=1))


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    out = m.copy()
    out.data = np.ones_like(out.data)
    return out


def _on_pattern(m: sp.csr_matrix, pattern: sp.csr_matrix) -> sp.csr_matrix:
    """``m``'s values on ``pattern``'s (sorted) entries, 0 where ``m`` has none."""
    n_cols = pattern.shape[1]
    want = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr)) * n_cols + pattern.indices
    m = m.tocoo()
    have = m.row.astype(np.int64) * n_cols + m.col
    order = np.argsort(have)
    have, vals = have[order], m.data[order]
    data = np.zeros(len(want))
    if len(have):
        pos = np.minimum(np.searchsorted(have, want), len(have) - 1)
        data = np.where(have[pos] == want, vals[pos], 0.0)
    return sp.csr_matrix((data, pattern.indices.copy(), pattern.indptr.copy()), shape=pattern.shape)


def _events(net: ClaimsNetwork, side: str, claims: np.ndarray, day0: int):
    """Distinct (patient, day - day0, entity) events of ``side`` among the claims selected by ``claims``."""
    if side == "doctor":
        code, ids = net.claim_doctor, net.doctor_ids
    else:
        t = net.provider_type
        mask = {"institution": t != "pharmacy", "provider": np.ones(len(t), dtype=bool)}.get(side, t == side)
        cols = np.flatnonzero(mask)
        to_col = np.full(net.n_providers, -1, dtype=np.int64)
        to_col[cols] = np.arange(len(cols))
        code, ids = to_col[net.claim_provider], net.provider_ids[cols]
    keep = claims & (code >= 0)
    day = net.claim_day[keep] - day0
    patient, day, entity = _unique_rows(net.claim_patient[keep], day, code[keep])
    return patient, day, entity, ids


def prompt_fills(batch_or_network, left: str = "institution", right: str = "pharmacy", window: int = 3,
                 min_shared: int = 1, calibrate: bool = True) -> pd.DataFrame:
    """How many of a pair's shared patients' purchases follow a visit at the other side promptly.

    For every pair (left entity, pharmacy) with at least ``min_shared`` patients in common,
    counts the shared patients' purchase days at the pharmacy (``fills``) and those that
    fall on the day of, or at most ``window`` days after, one of the same patient's visits
    at the left entity (``prompt_fills``: the purchase of what was prescribed there). Chance
    (``expected_prompt``) places each patient's visits independently and uniformly over
    the batch's days: a purchase follows one of ``n`` visits with probability
    ``1 - (1 - (window + 1) / days) ** n``. With ``calibrate``, chance is raised to the
    batch's overall promptness (all prompt fills over all expected, when above 1), so that
    where honest prescriptions are routinely filled the same day only pairs more prompt
    than usual stand out. ``prompt_surprise`` is ``-log10 P(prompt >= observed)``
    (binomial over the fills, :func:`fraudkit.graph.chance_surprise`).

    A colluding clinic and pharmacy leave exactly this: members buy the ring's drugs on
    the day of (or the day after) each visit. Prescriptions in China are valid for the day
    they are written, three days at most, hence ``window=3``.

    Parameters
    ----------
    batch_or_network : Batch or ClaimsNetwork
        Needs claim dates (``admit_date``); without them the result is empty.
    left : {"institution", "hospital", "clinic", "doctor"}
        Visits: claims at the institutions, or claims at institutions naming the doctor.
    right : {"pharmacy"}
    window : int, default=3
    min_shared : int, default=1
    calibrate : bool, default=True

    Returns
    -------
    DataFrame
        Columns :data:`PROMPT_COLUMNS`, one row per pair.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [(f"p{i}", "C1", d) for i in range(4) for d in (10, 40, 70)]      # visits at C1 ...
    >>> rows += [(f"p{i}", "R1", d + 1) for i in range(4) for d in (10, 40, 70)]  # ... each filled next day
    >>> rows += [(f"q{i}", "C1", 20 + i) for i in range(4)] + [(f"q{i}", "R2", 90 + i) for i in range(4)]
    >>> claims = pd.DataFrame(rows, columns=["patient_id", "provider_id", "day"])
    >>> claims["admit_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(claims.pop("day"), unit="D")
    >>> claims["claim_id"], claims["fund_paid"] = [f"c{i}" for i in range(len(claims))], 10.0
    >>> providers = pd.DataFrame({"provider_id": ["C1", "R1", "R2"],
    ...                           "provider_type": ["clinic", "pharmacy", "pharmacy"]})
    >>> t = prompt_fills(ClaimsNetwork.from_frames(claims, providers), calibrate=False)
    >>> t[["left_id", "right_id", "fills", "prompt_fills"]].values.tolist()
    [['C1', 'R1', 12, 12], ['C1', 'R2', 4, 0]]
    >>> bool(t.prompt_surprise[0] > 10)
    True
    """
    net = as_network(batch_or_network)
    if left not in _SIDES or right not in _SIDES:
        raise ValueError(f"left and right must be among {_SIDES}, got {left!r} and {right!r}")
    empty = pd.DataFrame({c: pd.Series(dtype=object if c.endswith("_id") else float) for c in PROMPT_COLUMNS})
    if net.claim_day is None or len(net.claim_day) == 0:
        return empty
    dated = net.claim_day != np.iinfo(np.int64).min  # NaT
    if not dated.any():
        return empty
    day0 = int(net.claim_day[dated].min())
    days = int(net.claim_day[dated].max()) - day0 + 1
    at_pharmacy = net.provider_type[net.claim_provider] == "pharmacy"
    lp, lday, lcode, lids = _events(net, left, dated & ~at_pharmacy, day0)  # visits: never a purchase naming a doctor
    rp, rday, rcode, rids = _events(net, right, dated, day0)
    if len(lp) == 0 or len(rp) == 0:
        return empty
    n_pat = net.n_patients
    # visit days and purchase days per patient and entity
    visits = sp.csr_matrix((np.ones(len(lp)), (lp, lcode)), shape=(n_pat, len(lids)))
    buys = sp.csr_matrix((np.ones(len(rp)), (rp, rcode)), shape=(n_pat, len(rids)))
    visits.sum_duplicates()
    buys.sum_duplicates()
    visits.sort_indices()
    buys.sort_indices()
    seen = _binary(visits)
    q = visits.copy()  # chance that one purchase follows one of n visits within the window
    q.data = 1.0 - (1.0 - min(1.0, (window + 1) / days)) ** q.data
    seen_t, q_t = seen.T.tocsr(), q.T.tocsr()
    # shared patients, their purchase days, and the prompt ones expected: one sparsity pattern
    products = [seen_t @ _binary(buys), seen_t @ buys, q_t @ buys]
    for m in products:
        m.sort_indices()
    shared_m, fills_m, expected_m = products
    if not all(np.array_equal(shared_m.indices, m.indices) for m in products[1:]):  # pragma: no cover
        fills_m, expected_m = (_on_pattern(m, shared_m) for m in products[1:])
    keep = shared_m.data >= min_shared
    rows = np.repeat(np.arange(shared_m.shape[0]), np.diff(shared_m.indptr))
    i, j, s = rows[keep], shared_m.indices[keep], shared_m.data[keep]
    if len(i) == 0:
        return empty
    fills, expected = fills_m.data[keep], expected_m.data[keep]
    # purchases on the day of, or up to ``window`` days after, a visit by the same patient
    span = days + window + 1
    lkey = lp.astype(np.int64) * span + lday
    order = np.argsort(lkey, kind="stable")
    lkey, lcode_sorted = lkey[order], lcode[order]
    rkey = rp.astype(np.int64) * span + rday
    lo = np.searchsorted(lkey, rkey - window, side="left")
    hi = np.searchsorted(lkey, rkey, side="right")
    n = hi - lo
    event = np.repeat(np.arange(len(rkey)), n)
    pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
    # each purchase counts once per entity visited in the window before it
    link = _unique_rows(event, lcode_sorted[pos])
    prompt_m = sp.csr_matrix((np.ones(len(link[0])), (link[1], rcode[link[0]])), shape=(len(lids), len(rids)))
    prompt_m.sum_duplicates()
    prompt = _on_pattern(prompt_m, shared_m).data[keep]
    if calibrate:  # the batch's typical promptness, over every pair with a shared patient
        expected = expected * max(1.0, float(prompt_m.sum()) / max(float(expected_m.sum()), 1e-12))
    out = pd.DataFrame({
        "left_id": np.asarray(lids[i], dtype=object), "right_id": np.asarray(rids[j], dtype=object),
        "shared_patients": s.astype(np.int64), "fills": fills.astype(np.int64), "prompt_fills": prompt.astype(np.int64),
        "expected_prompt": expected, "prompt_lift": prompt / np.maximum(expected, 1e-12),
        "prompt_surprise": chance_surprise(prompt, expected, fills),
    }, columns=PROMPT_COLUMNS)
    return out.sort_values(["prompt_surprise", "left_id", "right_id"], ascending=[False, True, True],
                           kind="mergesort").reset_index(drop=True)
