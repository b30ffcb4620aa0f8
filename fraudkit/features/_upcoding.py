"""Upcoding: a stay billed under a diagnosis group its items do not support, where a cheaper group fits.

Upcoding moves a stay into a richer (dearer) diagnosis group than the care delivered: the
diagnosis changes, the items stay those of the milder illness. Each inpatient diagnosis
group (ICD-10 category, inpatient care) is learnt at fit time as a Bernoulli profile of
its items: the share of its stays billing each item code (smoothed). A stay's items are
then scored under every group; ``cheaper_dx_llr`` is how much better (log-likelihood) the
best-fitting *cheaper* group explains them than the group billed, 0 when none does better.
Nothing here depends on how a batch was made: the profiles come from the batch fitted on,
and the comparison only asks which known group the stay's own items resemble.

The profile is stored sparsely (a group's codes it billed, and one value for the codes it
never billed), so a catalogue of tens of thousands of codes and thousands of groups stays small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Smoothing: a code never billed by a group has share ``PRIOR * BASE_SHARE / (n + PRIOR)``.
PRIOR, BASE_SHARE = 1.0, 0.01
#: Stays scored against the groups at once (the block of log-likelihoods is rows × groups).
BLOCK_ROWS = 8_192


@dataclass
class ItemProfiles:
    """Bernoulli item profiles of the diagnosis groups (fit-time state of ``FeatureBuilder``)."""

    keys: np.ndarray  # group keys (context ints), ascending
    log_cost: np.ndarray  # median log cost of each group's stays
    const: np.ndarray  # sum over every code of log(1 - share), per group
    base: np.ndarray  # log-odds of a code the group never billed, per group
    lift: sp.csr_matrix  # (codes × groups): log-odds of billed codes minus ``base``


def item_profiles(group: np.ndarray, n_stays: np.ndarray, pair_group: np.ndarray, pair_code: np.ndarray,
                  pair_count: np.ndarray, log_cost: np.ndarray, n_codes: int) -> ItemProfiles:
    """Profiles of the groups ``group`` (keys, ascending) with ``n_stays`` stays and median ``log_cost``.

    ``pair_*``: how many stays of a group (by key) billed each code (0..n_codes-1).

    >>> p = item_profiles(np.array([0, 1]), np.array([10, 10]), np.array([0, 1]), np.array([0, 1]),
    ...                   np.array([10, 10]), np.array([1.0, 2.0]), 2)
    >>> # stay 0 bills group 1's item: no cheaper group fits better; stay 1 bills group 0's item under group 1
    >>> cheaper_group_llr(p, np.array([1, 1]), np.array([0, 1]), np.array([1, 0]), 2).round(1).tolist()
    [0.0, 9.3]
    """
    order = np.argsort(group)
    group, n_stays, log_cost = group[order], n_stays[order].astype(float), log_cost[order]
    g = np.searchsorted(group, pair_group)
    ok = (g < len(group)) & (pair_code >= 0)
    ok[ok] &= group[g[ok]] == pair_group[ok]
    g, code, k = g[ok], pair_code[ok], pair_count[ok].astype(float)
    n = n_stays[g]
    share = np.minimum((k + PRIOR * BASE_SHARE) / (n + PRIOR), 0.999)
    s0 = PRIOR * BASE_SHARE / (n_stays + PRIOR)
    base = np.log(s0) - np.log1p(-s0)
    billed = np.bincount(g, minlength=len(group))
    const = np.bincount(g, weights=np.log1p(-share), minlength=len(group)) + (n_codes - billed) * np.log1p(-s0)
    lift = sp.csr_matrix((np.log(share) - np.log1p(-share) - base[g], (code, g)), shape=(n_codes, len(group)))
    return ItemProfiles(group, log_cost, const, base, lift)


def cheaper_group_llr(profiles: ItemProfiles, stay_group: np.ndarray, pair_stay: np.ndarray,
                      pair_code: np.ndarray, n_stays: int) -> np.ndarray:
    """Per stay: max(0, best log-likelihood of its items under a cheaper group − under its own).

    ``stay_group`` is each stay's group key (stays whose group has no profile get 0);
    ``pair_stay`` / ``pair_code`` its distinct item codes (stay positions 0..n_stays-1).
    """
    out = np.zeros(n_stays)
    keys = profiles.keys
    if len(keys) < 2 or n_stays == 0:
        return out
    pos = np.minimum(np.searchsorted(keys, stay_group), len(keys) - 1)
    own = np.where(keys[pos] == stay_group, pos, -1)
    rows = np.flatnonzero(own >= 0)
    if not len(rows):
        return out
    known = (pair_code >= 0) & (pair_code < profiles.lift.shape[0])
    pair_stay, pair_code = pair_stay[known], pair_code[known]
    x = sp.csr_matrix((np.ones(len(pair_stay)), (pair_stay, pair_code)), shape=(n_stays, profiles.lift.shape[0]))
    m = np.asarray(x.sum(axis=1)).ravel()
    cost = profiles.log_cost
    for lo in range(0, len(rows), BLOCK_ROWS):
        r = rows[lo:lo + BLOCK_ROWS]
        ll = (x[r] @ profiles.lift).toarray() + profiles.const[None, :] + m[r, None] * profiles.base[None, :]
        g = own[r]
        mine = ll[np.arange(len(r)), g]
        ll[cost[None, :] >= cost[g][:, None]] = -np.inf  # only cheaper groups (which excludes its own)
        best = ll.max(axis=1)
        out[r] = np.where(np.isfinite(best), np.maximum(best - mine, 0.0), 0.0)
    return out
