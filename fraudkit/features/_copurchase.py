"""Cards that buy together: the same drug, at the same place, on the same day, again and again.

Family cards lent to one buyer (and card pools) leave a trace no single claim shows: two
cards draw the same drug at the same provider on the same day, not once by coincidence
but on several days. For every pair of cards that share such a purchase, the number of
distinct days they do so is counted; a claim gets the largest count over the cards it
bought with (a patient, the largest over its claims).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def co_purchase_days(claim: np.ndarray, code: np.ndarray, patient: np.ndarray, provider: np.ndarray,
                     day: np.ndarray, max_group: int = 12) -> np.ndarray:
    """Per claim: the most days on which its card bought the same drug at the same provider on
    the same day as one other card.

    Parameters
    ----------
    claim, code : ndarray
        One row per (claim, drug code) billed (claim positions index the per-claim arrays).
    patient, provider, day : ndarray
        Per claim: patient code (non-negative), provider code and day number.
    max_group : int, default=12
        Purchases of one drug at one provider on one day by more cards than this are left
        out: a popular drug at a busy pharmacy brings strangers together by chance.

    Returns
    -------
    ndarray
        Per claim; 0 where the card never shared such a purchase.

    Examples
    --------
    Cards 0 and 1 buy drug 7 together at provider 5 on days 1 and 9; card 2 joins once:

    >>> claim = np.arange(5); code = np.full(5, 7)
    >>> patient, provider, day = np.array([0, 1, 0, 1, 2]), np.full(5, 5), np.array([1, 1, 9, 9, 9])
    >>> co_purchase_days(claim, code, patient, provider, day).tolist()
    [2.0, 2.0, 2.0, 2.0, 1.0]
    """
    per_claim = np.zeros(len(patient))
    if len(claim) == 0:
        return per_claim
    n_patients = int(patient.max()) + 1
    span = int(day.max()) - int(day.min()) + 1
    place_day = provider.astype(np.int64) * span + (day - day.min())
    n_codes = int(code.max()) + 1
    # one group per drug, place and day; each card once per group
    group, _ = pd.factorize(place_day[claim] * n_codes + code)
    pat = patient[claim].astype(np.int64)
    key = group.astype(np.int64) * n_patients + pat
    order = np.lexsort((claim, key))  # each card once per group, by its first claim: whatever the lines' order
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    group, pat, cl = group[first], pat[first], claim[first]  # sorted by group
    size = np.bincount(group)
    keep = (size[group] >= 2) & (size[group] <= max_group)
    if not keep.any():
        return per_claim
    g, pat, cl = group[keep], pat[keep], cl[keep]
    # every pair of cards within a group: position p with position p + d of the same group
    left, right = [], []
    for d in range(1, max_group):
        idx = np.flatnonzero(g[d:] == g[:-d])
        if not len(idx):
            break
        left.append(idx)
        right.append(idx + d)
    left, right = np.concatenate(left), np.concatenate(right)
    pair = np.minimum(pat[left], pat[right]) * n_patients + np.maximum(pat[left], pat[right])
    # distinct days (place and day) per pair of cards
    pair_code, pairs = pd.factorize(pair)
    pd_code = pd.factorize(place_day[cl[left]])[0].astype(np.int64)
    distinct = np.sort(pair_code.astype(np.int64) * (pd_code.max() + 1) + pd_code)
    distinct = distinct[np.r_[True, distinct[1:] != distinct[:-1]]]
    together = np.bincount(distinct // (pd_code.max() + 1), minlength=len(pairs)).astype(float)[pair_code]
    for side in (left, right):
        np.maximum.at(per_claim, cl[side], together)
    return per_claim
