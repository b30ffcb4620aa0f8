"""Greedy peeling for dense blocks (FRAUDAR, Hooi et al. 2016) on sparse bipartite matrices.

The fast path peels with an indexed binary min-heap (decrease-key, O(E log N)) compiled
with numba when it is installed; :func:`peel_reference` is the straightforward O(N^2)
version used to check it. Edge weights are rounded to multiples of 2**-20 so that every
sum is exact in float64: both versions then see identical priorities, break ties the same
way (lowest node index first) and return identical peeling orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

try:  # numba turns the kernel from minutes into seconds on 10M edges; optional
    from numba import njit as _njit

    def _jit(fn):
        return _njit(cache=True, nogil=True)(fn)

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    def _jit(fn):
        return fn

    HAVE_NUMBA = False

_QUANTUM = 2.0 ** 20


def camouflage_weights(matrix: sp.spmatrix, c: float = 5.0, log_counts: bool = False) -> sp.csr_matrix:
    """Edge weights against camouflage: each column's edges weigh ``1 / log(c + column degree)``.

    A fraudster can add edges to popular columns (a big hospital) to look normal; those
    columns' edges weigh little, so camouflage does not hide the block (FRAUDAR's column
    weighting). With ``log_counts`` the edge value is ``log1p(count)`` instead of 1.
    Weights are rounded to multiples of 2**-20 so that peeling sums are exact.
    """
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    degree = np.diff(m.tocsc().indptr)
    col_w = 1.0 / np.log(c + degree)
    values = np.log1p(m.data) if log_counts else np.ones_like(m.data)
    m.data = np.maximum(np.round(values * col_w[m.indices] * _QUANTUM), 1.0) / _QUANTUM
    m.indices = m.indices.astype(np.int32, copy=False)
    return m


@_jit
def _less(prio, a, b):
    return prio[a] < prio[b] or (prio[a] == prio[b] and a < b)


@_jit
def _sift_up(heap, pos, prio, k):
    node = heap[k]
    while k > 0:
        parent = (k - 1) >> 1
        other = heap[parent]
        if _less(prio, node, other):
            heap[k] = other
            pos[other] = k
            k = parent
        else:
            break
    heap[k] = node
    pos[node] = k


@_jit
def _sift_down(heap, pos, prio, k, size):
    node = heap[k]
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and _less(prio, heap[child + 1], heap[child]):
            child += 1
        other = heap[child]
        if _less(prio, other, node):
            heap[k] = other
            pos[other] = k
            k = child
        else:
            break
    heap[k] = node
    pos[node] = k


@_jit
def _peel_kernel(n_rows, n_cols, r_ptr, r_idx, r_w, c_ptr, c_idx, c_w):
    n = n_rows + n_cols
    prio = np.zeros(n)
    for i in range(n_rows):
        s = 0.0
        for e in range(r_ptr[i], r_ptr[i + 1]):
            s += r_w[e]
        prio[i] = s
    f = 0.0
    for j in range(n_cols):
        s = 0.0
        for e in range(c_ptr[j], c_ptr[j + 1]):
            s += c_w[e]
        prio[n_rows + j] = s
        f += s
    heap = np.arange(n)
    pos = np.arange(n)
    for k in range(n // 2 - 1, -1, -1):
        _sift_down(heap, pos, prio, k, n)
    removed = np.zeros(n, dtype=np.bool_)
    order = np.empty(n, dtype=np.int64)
    density = np.empty(n)
    size = n
    for t in range(n):
        density[t] = f / (n - t)
        u = heap[0]
        size -= 1
        if size > 0:
            heap[0] = heap[size]
            pos[heap[0]] = 0
            _sift_down(heap, pos, prio, 0, size)
        order[t] = u
        removed[u] = True
        f -= prio[u]
        if u < n_rows:
            for e in range(r_ptr[u], r_ptr[u + 1]):
                v = n_rows + r_idx[e]
                if not removed[v]:
                    prio[v] -= r_w[e]
                    _sift_up(heap, pos, prio, pos[v])
        else:
            j = u - n_rows
            for e in range(c_ptr[j], c_ptr[j + 1]):
                v = c_idx[e]
                if not removed[v]:
                    prio[v] -= c_w[e]
                    _sift_up(heap, pos, prio, pos[v])
    return order, density


def peel(weights: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Greedy peeling of a weighted bipartite graph (rows x columns).

    Repeatedly removes the node (row ``i`` or column ``n_rows + j``) with the least
    remaining weighted degree (ties: lowest index).

    Returns
    -------
    order : int array of length n_rows + n_cols
        Nodes in the order they were removed.
    density : float array
        ``density[t]`` = total remaining edge weight / remaining nodes, just before the
        ``t``-th removal; the densest peeled set is ``order[argmax(density):]``.
    """
    csr = sp.csr_matrix(weights)
    csc = csr.tocsc()
    n_rows, n_cols = csr.shape
    return _peel_kernel(n_rows, n_cols, csr.indptr, csr.indices, csr.data.astype(np.float64, copy=False),
                        csc.indptr, csc.indices, csc.data.astype(np.float64, copy=False))


def peel_reference(weights: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """The same peeling done plainly on a dense matrix: O(N) per removal, O(N^2) in all.

    For tests and benchmarks only (small graphs).
    """
    w = sp.csr_matrix(weights).toarray()
    n_rows, n_cols = w.shape
    n = n_rows + n_cols
    prio = np.concatenate([w.sum(axis=1), w.sum(axis=0)])
    f = float(w.sum())
    alive = np.ones(n, dtype=bool)
    order, density = np.empty(n, dtype=np.int64), np.empty(n)
    for t in range(n):
        density[t] = f / (n - t)
        u = int(np.argmin(np.where(alive, prio, np.inf)))  # first minimum = lowest index among ties
        order[t] = u
        alive[u] = False
        f -= prio[u]
        if u < n_rows:
            prio[n_rows:] -= np.where(alive[n_rows:], w[u], 0.0)
        else:
            prio[:n_rows] -= np.where(alive[:n_rows], w[:, u - n_rows], 0.0)
    return order, density


def _densest_component(w: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray):
    """The densest connected component of the peeled set (None density if it is connected).

    Greedy peeling cannot split disconnected groups (their union is never denser than the
    densest of them, but peeling may stop at the union); splitting afterwards fixes that.
    """
    sub = w[rows][:, cols]
    n_r = len(rows)
    graph = sp.bmat([[None, sub], [sub.T, None]], format="csr")
    n_comp, label = connected_components(graph, directed=False)
    if n_comp <= 1:
        return rows, cols, None
    weight = np.bincount(label[:n_r], weights=np.asarray(sub.sum(axis=1)).ravel(), minlength=n_comp)
    size = np.bincount(label, minlength=n_comp)
    dens = weight / size
    best = int(np.argmax(dens))  # first maximum: the component of the lowest-numbered node
    return rows[label[:n_r] == best], cols[label[n_r:] == best], float(dens[best])


@dataclass
class PeeledBlock:
    """One dense block: row and column codes, density (edge weight per node) and edge weight."""

    rows: np.ndarray
    cols: np.ndarray
    density: float
    weight: float
    edges: int


def peel_blocks(weights: sp.spmatrix, n_blocks: int = 5, min_rows: int = 2, min_cols: int = 2,
                reference: bool = False) -> tuple[list[PeeledBlock], np.ndarray]:
    """Several dense blocks: peel, take the densest set (its densest connected part), delete its edges, repeat.

    Parameters
    ----------
    weights : sparse matrix
        Weighted bipartite adjacency (rows x columns), e.g. from :func:`camouflage_weights`.
    n_blocks : int
        At most this many blocks; stops earlier when the densest set has fewer than
        ``min_rows`` rows or ``min_cols`` columns (nothing block-like is left).
    reference : bool
        Use :func:`peel_reference` (tests only).

    Returns
    -------
    blocks : list of PeeledBlock, densest first
    node_density : float array of length n_rows + n_cols
        From the first peeling: the density of the densest peeled set that still held
        the node (a continuous "how dense is the company it keeps" score).
    """
    run = peel_reference if reference else peel
    w = sp.csr_matrix(weights, dtype=np.float64, copy=True)
    n_rows, n_cols = w.shape
    blocks: list[PeeledBlock] = []
    node_density = np.zeros(n_rows + n_cols)
    for k in range(n_blocks):
        if w.nnz == 0:
            break
        order, density = run(w)
        if k == 0:
            node_density[order] = np.maximum.accumulate(density)
        t = int(np.argmax(density))
        members = np.sort(order[t:])
        rows, cols = members[members < n_rows], members[members >= n_rows] - n_rows
        if len(rows) < min_rows or len(cols) < min_cols:
            break
        rows, cols, dens = _densest_component(w, rows, cols)
        if dens is None:
            dens = float(density[t])
        if len(rows) < min_rows or len(cols) < min_cols:
            break
        sub = w[rows][:, cols]
        blocks.append(PeeledBlock(rows=rows, cols=cols, density=dens, weight=float(sub.sum()),
                                  edges=int(sub.nnz)))
        row_in = np.zeros(n_rows, dtype=bool)
        row_in[rows] = True
        col_in = np.zeros(n_cols, dtype=bool)
        col_in[cols] = True
        entry_row = np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(w.indptr))
        w.data[row_in[entry_row] & col_in[w.indices]] = 0.0
        del entry_row
        w.eliminate_zeros()
    return blocks, node_density
