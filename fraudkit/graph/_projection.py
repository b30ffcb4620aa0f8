"""Shared-patient projections (institution-pharmacy, doctor-pharmacy) and their lift over chance."""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ._network import ClaimsNetwork, as_network

#: Columns of :func:`shared_patients`.
SHARED_COLUMNS = ["left_id", "left_kind", "right_id", "right_kind", "shared_patients", "left_patients",
                  "right_patients", "expected", "lift", "surprise", "shared_money"]

_SIDES = ("institution", "hospital", "clinic", "pharmacy", "provider", "doctor")
_LN10 = np.log(10.0)


#: Sides and region matrices of a network while :func:`cached_sides` is open for it: the ring
#: detector asks for the same sides at every level of sharing, and again for its patients' scores
#: (read-only matrices, computed once, released when the block ends).
_SIDE_CACHE: "weakref.WeakKeyDictionary[ClaimsNetwork, dict]" = weakref.WeakKeyDictionary()


@contextmanager
def cached_sides(net: ClaimsNetwork):
    """Within the block, ``_side`` and the chance model's region matrices are computed once for ``net``."""
    try:
        _SIDE_CACHE[net] = {}
    except TypeError:  # not weakly referenceable: no cache
        yield
        return
    try:
        yield
    finally:
        _SIDE_CACHE.pop(net, None)


def _side(net: ClaimsNetwork, side: str, min_claims: int = 1):
    """(binary patients x entities, money matrix, ids, kinds) for one side of the projection.

    A patient counts for an entity when it has at least ``min_claims`` claims there.
    The result is cached per network; callers must not modify it.
    """
    if side not in _SIDES:
        raise ValueError(f"side must be one of {_SIDES}, got {side!r}")
    return _cached(net, ("side", side, min_claims), lambda: _side_uncached(net, side, min_claims))


def _side_uncached(net: ClaimsNetwork, side: str, min_claims: int = 1):
    if side == "doctor":
        counts, money = net.patient_doctor, net.patient_doctor_money
        ids, kinds = net.doctor_ids, np.full(net.n_doctors, "doctor", dtype=object)
        cols = np.arange(net.n_doctors)
    else:
        t = net.provider_type
        mask = {"institution": t != "pharmacy", "provider": np.ones(len(t), dtype=bool)}.get(side, t == side)
        cols = np.flatnonzero(mask)
        counts, money = net.patient_provider[:, cols], net.patient_provider_money[:, cols]
        ids, kinds = net.provider_ids[cols], t[cols]
    binary = counts.copy().tocsc()
    binary.data = (binary.data >= min_claims).astype(binary.data.dtype)
    binary.eliminate_zeros()
    money = money.tocsc().multiply(binary).tocsc() if min_claims > 1 else money.tocsc()
    return binary, money, ids, kinds, cols


def chance_surprise(observed, expected, trials) -> np.ndarray:
    """``-log10 P(X >= observed)`` for ``X ~ Binomial(trials, expected / trials)``.

    How far above chance a count of shared patients is: ``trials`` is the smaller
    side's patient count (no pair can share more), ``expected`` the count chance
    predicts. Exact where representable; beyond float range, the Chernoff bound
    ``trials * KL(observed/trials || p)``.

    >>> chance_surprise([10, 43], [10.0, 18.0], [100, 45]).round(1).tolist()
    [0.3, 14.5]
    """
    k = np.asarray(observed, dtype=float)
    n = np.maximum(np.asarray(trials, dtype=float), k)
    p = np.clip(np.asarray(expected, dtype=float) / np.maximum(n, 1.0), 1e-15, 1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = stats.binom.logsf(k - 1, n, p)
        q = np.clip(k / np.maximum(n, 1.0), 1e-15, 1.0)
        kl = q * np.log(q / p) + np.where(q < 1, (1 - q) * np.log(np.maximum(1 - q, 1e-300) / (1 - p)), 0.0)
        approx = -n * kl
    logp = np.where(np.isfinite(logp), logp, approx)
    return np.maximum(-logp / _LN10, 0.0)


def shared_patients(batch_or_network, left: str = "institution", right: str = "pharmacy", min_shared: int = 2,
                    stratify: bool = True, min_claims: int = 1) -> pd.DataFrame:
    """Pairs that share patients, with how many more than chance predicts.

    For every pair (left entity, right entity) with at least ``min_shared`` patients in
    common, compares the shared patients with the number expected if patients chose
    each side independently, given each side's patient volume:
    ``expected = sum over regions r of n_left(r) * n_right(r) / N(r)``, where ``n(r)``
    counts an entity's distinct patients living in region ``r`` and ``N(r)`` the active
    patients of ``r`` (one region for all when ``stratify`` is False or regions are unknown),
    so that living near each other is not mistaken for collusion. For two providers in regions
    ``x`` and ``y`` (equal or not), ``N(r)`` and both ``n(r)`` count only the patients of ``r``
    with claims in both ``x`` and ``y``: where most patients only pass through (a distant city),
    sharing them is what chance does.

    Parameters
    ----------
    batch_or_network : Batch or ClaimsNetwork
    left, right : {"institution", "hospital", "clinic", "pharmacy", "provider", "doctor"}
        The two sides; "institution" = hospitals and clinics.
    min_shared : int, default=2
    stratify : bool, default=True
        Expected counts within patients' regions.
    min_claims : int, default=1
        A patient counts for a side only with at least this many claims there
        (``min_claims=3``: regular patients of both, the signature of organised,
        repeated visits); volumes and chance are computed the same way.

    Returns
    -------
    DataFrame
        Columns :data:`SHARED_COLUMNS`: ids and kinds of both sides, ``shared_patients``,
        each side's distinct patients, ``expected``, ``lift`` (= shared / expected),
        ``surprise`` (-log10 of the probability of at least that many shared patients
        by chance, binomial over the smaller side's patients: :func:`chance_surprise`) and ``shared_money`` (fund paid by the shared patients at the
        two), sorted by surprise, most surprising first.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [(f"p{i}", "C1") for i in range(6)] + [(f"p{i}", "R1") for i in range(6)]
    >>> rows += [(f"q{i}", "C2") for i in range(6)] + [(f"q{i}", "R2") for i in range(0, 6, 3)]
    >>> rows += [(f"q{i}", "R1") for i in range(1, 6, 3)]
    >>> claims = pd.DataFrame(rows, columns=["patient_id", "provider_id"])
    >>> claims["claim_id"], claims["fund_paid"] = [f"c{i}" for i in range(len(claims))], 10.0
    >>> providers = pd.DataFrame({"provider_id": ["C1", "C2", "R1", "R2"],
    ...                           "provider_type": ["clinic", "clinic", "pharmacy", "pharmacy"]})
    >>> pairs = shared_patients(ClaimsNetwork.from_frames(claims, providers))
    >>> pairs[["left_id", "right_id", "shared_patients", "expected", "lift"]].round(2)
      left_id right_id  shared_patients  expected  lift
    0      C1       R1                6       4.0   1.5
    1      C2       R2                2       1.0   2.0
    2      C2       R1                2       4.0   0.5
    """
    net = as_network(batch_or_network)
    lb, lm, lids, lkinds, lcols = _side(net, left, min_claims)
    rb, rm, rids, rkinds, rcols = _side(net, right, min_claims)
    shared = (lb.T.tocsr() @ rb).tocoo()
    same_space = (left == "doctor") == (right == "doctor")
    keep = shared.data >= min_shared
    if same_space:  # a provider is not its own partner; each unordered pair once
        li, ri = lcols[shared.row], rcols[shared.col]
        keep &= li != ri
        both = np.isin(li, rcols) & np.isin(ri, lcols)
        keep &= ~both | (li < ri)
    i, j, s = shared.row[keep], shared.col[keep], shared.data[keep].astype(float)
    expected = _expected(net, lb, rb, i, j, stratify, _regions(net, left, lcols), _regions(net, right, rcols))
    # money the shared patients brought to the two sides
    money = np.zeros(len(i))
    if len(i):
        money = (np.asarray((lm.T.tocsr() @ rb)[i, j]).ravel() + np.asarray((lb.T.tocsr() @ rm)[i, j]).ravel())
    lift = s / np.maximum(expected, 1e-12)
    left_n = np.asarray(lb.sum(axis=0)).ravel()[i]
    right_n = np.asarray(rb.sum(axis=0)).ravel()[j]
    out = pd.DataFrame({
        "left_id": np.asarray(lids[i], dtype=object), "left_kind": lkinds[i],
        "right_id": np.asarray(rids[j], dtype=object), "right_kind": rkinds[j],
        "shared_patients": s.astype(np.int64),
        "left_patients": left_n.astype(np.int64), "right_patients": right_n.astype(np.int64),
        "expected": expected, "lift": lift, "surprise": chance_surprise(s, expected, np.minimum(left_n, right_n)),
        "shared_money": np.round(money, 2),
    }, columns=SHARED_COLUMNS)
    out = out.sort_values(["surprise", "shared_patients", "left_id", "right_id"],
                          ascending=[False, False, True, True], kind="mergesort")
    return out.reset_index(drop=True)


def _regions(net: ClaimsNetwork, side: str, cols: np.ndarray) -> np.ndarray | None:
    """Region of each entity of a side: a provider's, or that of the provider a doctor works at
    (None when regions are unknown)."""
    if net.provider_region is None:
        return None
    region = np.asarray(net.provider_region, dtype=object)
    if side == "doctor":
        home = net.doctor_home()[cols]
        return np.where(home >= 0, region[np.maximum(home, 0)], None)
    return region[cols]


def _cached(net: ClaimsNetwork, key, make):
    """``make()``, computed once per network and key inside :func:`cached_sides`."""
    try:
        cache = _SIDE_CACHE.get(net)
    except TypeError:
        cache = None
    if cache is None:
        return make()
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _patient_regions(net: ClaimsNetwork, stratify: bool):
    """Patients x regions indicator of active patients, and each region's active patients."""
    active = np.asarray((net.patient_provider.sum(axis=1))).ravel() > 0
    if stratify and net.patient_region is not None:
        region_codes, regions = pd.factorize(pd.Series(net.patient_region))
    else:
        region_codes, regions = np.zeros(net.n_patients, dtype=np.int64), [None]
    n_regions = max(len(regions), 1)
    rows = np.flatnonzero(active & (region_codes >= 0))
    ind = sp.csr_matrix((np.ones(len(rows)), (rows, region_codes[rows])), shape=(net.n_patients, n_regions))
    total = np.asarray(ind.sum(axis=0)).ravel()
    return n_regions, ind, total


def _seen_in_regions(net: ClaimsNetwork, visits):
    """Patients x the regions of providers (``visits``): claims there (CSC)."""
    visit = pd.Index(visits).get_indexer(net.provider_region)
    where = sp.csr_matrix((np.ones(len(visit)), (np.arange(len(visit)), visit)), shape=(len(visit), len(visits)))
    return (net.patient_provider @ where).tocsc()


def _expected(net: ClaimsNetwork, lb, rb, i, j, stratify: bool, lregion=None, rregion=None) -> np.ndarray:
    # patients x regions indicator of active patients
    n_regions, ind, total = _cached(net, ("patient_regions", bool(stratify)), lambda: _patient_regions(net, stratify))
    left_by_region = (lb.T.tocsr() @ ind).toarray() if n_regions <= 512 else None
    right_by_region = (rb.T.tocsr() @ ind).toarray() if n_regions <= 512 else None
    if left_by_region is None:  # very many regions: fall back to one region
        n = total.sum()
        return np.asarray(lb.sum(axis=0)).ravel()[i] * np.asarray(rb.sum(axis=0)).ravel()[j] / max(n, 1.0)
    inv = np.where(total > 0, 1.0 / np.maximum(total, 1.0), 0.0)
    out = np.empty(len(i))
    step = max(1, 2_000_000 // n_regions)
    for a in range(0, len(i), step):
        b = a + step
        out[a:b] = np.einsum("ij,ij->i", left_by_region[i[a:b]] * inv, right_by_region[j[a:b]])
    visits = (_cached(net, "visits", lambda: pd.unique(pd.Series(net.provider_region)))
              if net.provider_region is not None else [])
    if stratify and lregion is not None and rregion is not None and len(i) and len(visits) <= 64:
        # patients choose among the providers of the regions they visit: for a pair in regions
        # x and y, chance draws on the patients of each home region seen in both x and y, and
        # counts each side's patients among those (travellers through a distant city share its
        # hospital and pharmacy by chance; those of a pair of distant cities, the more so)
        seen = _cached(net, "seen", lambda: _seen_in_regions(net, visits))  # patients x visit regions: claims there
        lv = pd.Index(visits).get_indexer(lregion[i].astype(object))
        rv = pd.Index(visits).get_indexer(rregion[j].astype(object))
        in_region = {v: _cached(net, ("in_region", int(v)), lambda v=v: seen[:, [v]].toarray().ravel() > 0)
                     for v in np.unique(np.r_[lv, rv]) if v >= 0}
        # each side's patients by home region, counting only those seen in region v
        left_in = {v: (lb.multiply(in_region[v][:, None]).T.tocsr() @ ind).toarray() for v in np.unique(rv[rv >= 0])}
        right_in = {v: (rb.multiply(in_region[v][:, None]).T.tocsr() @ ind).toarray() for v in np.unique(lv[lv >= 0])}
        ind_t = ind.T.tocsr()
        for x in np.unique(lv[lv >= 0]):
            for y in np.unique(rv[(lv == x) & (rv >= 0)]):
                sel = np.flatnonzero((lv == x) & (rv == y))
                n_both = ind_t @ (in_region[x] & in_region[y]).astype(float)  # per home region, seen in x and y
                inv_b = np.where(n_both > 0, 1.0 / np.maximum(n_both, 1.0), 0.0)
                out[sel] = np.einsum("ij,ij->i", left_in[y][i[sel]] * inv_b, right_in[x][j[sel]])
    return out
