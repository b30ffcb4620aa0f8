"""Drug swapping: a dear drug billed where similar providers bill its cheaper substitutes.

Swapping bills cheap or non-catalogue goods under an expensive catalogue code. What it
leaves in claims is a shift *within a therapeutic slot*: among the drugs interchangeable
for a diagnosis, the provider bills the dear one far more often than its peers do.
The claims carry no drug classes, so substitutes are learned from the data: two drugs
are substitutes when they are billed for the same diagnoses (ICD-10 category × care
type) in the same proportions (cosine similarity of their context profiles ≥
``min_similarity``). Each drug's *premium* is its reference price against the mean
(log, weighted by use) of its substitutes' reference prices.

Then, within the batch transformed, for each (claim, drug) with a premium, the lift of
that drug at the provider: claims billing it here over what the provider's volume of the
slot and the habit of similar providers (type × tier, the provider itself left out) lead
to expect, kept only where the excess is significant (binomial z above ``min_z``), so
that the ordinary scatter of small providers stays at 1.

Both functions take plain arrays (no batch, no builder), so that they can be run on a
partition of claims.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._prep import group_max


@dataclass
class Substitutes:
    """Learned at fit: each drug code's substitutes and its price premium over them."""

    neighbours: sp.csr_matrix  # (codes × codes) 1 where two codes are substitutes (a code is its own)
    premium: np.ndarray  # log(reference price) − use-weighted mean log reference price of its substitutes; 0 = none


def substitutes(claim_ctx: np.ndarray, pair_claim: np.ndarray, pair_code: np.ndarray, ref_price: np.ndarray,
                n_codes: int, min_claims: int = 20, min_similarity: float = 0.95, block: int = 1024) -> Substitutes:
    """Substitute drugs and their premium from the distinct (claim, drug code) pairs of a batch.

    Parameters
    ----------
    claim_ctx : int array, one per claim
        The claim's context (diagnosis category × care type; ≥ 0).
    pair_claim, pair_code : int arrays
        Distinct (claim position, drug code) pairs; codes in ``0..n_codes-1``.
    ref_price : float array (n_codes,)
        Reference unit price of each code (NaN or ≤ 0 where unknown).
    min_claims : int
        Fewest claims billing a code before its profile is trusted (else it has no substitutes).
    min_similarity : float
        Cosine similarity of context profiles above which two codes are substitutes.
    block : int
        Codes whose similarities are computed at once (memory: ``block × n_codes`` floats).
    """
    eye = sp.identity(n_codes, format="csr")
    premium = np.zeros(n_codes)
    if len(pair_claim) == 0 or n_codes == 0:
        return Substitutes(eye, premium)
    ctx = claim_ctx[pair_claim].astype(np.int64)
    ctx_ids, ctx_col = np.unique(ctx, return_inverse=True)
    profile = sp.csr_matrix((np.ones(len(ctx_col)), (pair_code.astype(np.int64), ctx_col)),
                            shape=(n_codes, len(ctx_ids)))
    profile.sum_duplicates()
    uses = np.asarray(profile.sum(axis=1)).ravel()
    price = np.asarray(ref_price, dtype=float)
    trusted = (uses >= min_claims) & (price > 0)
    norm = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
    unit = (sp.diags(np.where(trusted, 1.0 / np.maximum(norm, 1e-12), 0.0)) @ profile).tocsr()
    unit_t = unit.T.tocsc()
    rows, cols = [], []
    for lo in range(0, n_codes, block):  # the similarities a block of codes at a time: never all V × V at once
        sim = (unit[lo:lo + block] @ unit_t).toarray()
        r, c = np.nonzero(sim >= min_similarity)
        rows.append(r + lo)
        cols.append(c)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    near = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_codes, n_codes))
    near = ((near + eye) > 0).astype(float).tocsr()
    log_price = np.log(np.where(price > 0, price, 1.0))
    weight = np.where(trusted, uses, 0.0)
    slot_w = near @ weight
    slot_mean = np.where(slot_w > 0, (near @ (weight * log_price)) / np.maximum(slot_w, 1e-12), log_price)
    premium = np.where(trusted, log_price - slot_mean, 0.0)
    return Substitutes(near, premium)


def swap_lift(subs: Substitutes, pair_claim: np.ndarray, pair_code: np.ndarray, provider: np.ndarray,
              provider_class: np.ndarray, n_claims: int, min_premium: float = 0.05, min_z: float = 3.0) -> np.ndarray:
    """Per claim, the largest significant lift of its premium drugs among their substitutes at its provider.

    ``pair_claim, pair_code``: distinct (claim position, drug code) pairs of the batch;
    ``provider``, ``provider_class``: per claim, the provider's position and its class
    (type × tier). For each pair whose code is at least ``min_premium`` (log) dearer than
    its substitutes: ``n`` = the provider's claims billing the code, ``N`` = its claims
    billing any of the code's substitutes, ``p`` = the code's share among its substitutes
    at the other providers of the class; lift = (n + 1) / (N·p + 1), kept where
    (n − N·p) / √(N·p·(1 − p) + 1) > ``min_z``. 1 for a claim without such a pair.
    """
    out = np.ones(n_claims)
    premium = subs.premium
    if len(pair_claim) == 0:
        return out
    sel = premium[pair_code] > min_premium
    if not sel.any():
        return out
    n_codes = len(premium)
    provider_class = np.maximum(provider_class, 0)
    v, k = provider[pair_claim].astype(np.int64), provider_class[pair_claim].astype(np.int64)
    n_v, n_k = int(provider.max()) + 1, int(provider_class.max()) + 1
    by_v, by_k = _counts(v, pair_code, (n_v, n_codes)), _counts(k, pair_code, (n_k, n_codes))
    slot_v, slot_k = by_v @ subs.neighbours.T, by_k @ subs.neighbours.T  # claims billing a substitute (the code too)
    v, k, c, claim = v[sel], k[sel], pair_code[sel], pair_claim[sel]
    n_vc, n_kc, n_vs, n_ks = _at(by_v, v, c), _at(by_k, k, c), _at(slot_v, v, c), _at(slot_k, k, c)
    share = np.clip((n_kc - n_vc) / np.maximum(n_ks - n_vs, 1.0), 0.0, 1.0)
    expected = n_vs * share
    z = (n_vc - expected) / np.sqrt(expected * (1.0 - share) + 1.0)
    lift = np.where(z > min_z, (n_vc + 1.0) / (expected + 1.0), 1.0)
    return np.maximum(group_max(claim, lift, n_claims, fill=1.0), 1.0)


#: Largest (rows x codes) count table :func:`swap_lift` holds dense (32 MB); above it, sparse.
DENSE_CELLS = 1 << 22


def _counts(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]):
    """How many of the pairs fall in each (row, col) cell, as a float table: dense when it has at most
    :data:`DENSE_CELLS` cells (one bincount; no sorting of indices), else a CSR matrix. The counts are
    whole numbers, and so are their products with the 0/1 substitute matrix: the same values either way."""
    if shape[0] * shape[1] <= DENSE_CELLS:
        return np.bincount(rows * shape[1] + cols, minlength=shape[0] * shape[1]).astype(float).reshape(shape)
    table = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    table.sum_duplicates()
    return table


def _at(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[i], cols[i]]`` for each i: indexing for a dense table; for a sparse one, one sorted-key
    lookup (scipy's fancy indexing is slow at millions)."""
    if isinstance(matrix, np.ndarray):
        return matrix[rows, cols]
    m = matrix.tocoo()
    width = np.int64(m.shape[1])
    keys = m.row.astype(np.int64) * width + m.col
    order = np.argsort(keys, kind="stable")
    keys, data = keys[order], m.data[order]
    query = rows.astype(np.int64) * width + cols
    if len(keys) == 0:
        return np.zeros(len(query))
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, data[pos], 0.0)
