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


def camouflage_weights(matrix: sp.spmatrix, c: float = 5.0, edge_value: str = "binary",
                       row_weighting: bool = False) -> sp.csr_matrix:
    """Edge weights for peeling, robust to camouflage.

    - Column weighting (FRAUDAR): each column's edges weigh ``1 / log(c + column degree)``.
      A fraudster can add edges to popular columns (a big hospital) to look normal; those
      edges weigh little, so camouflage does not hide the block.
    - ``edge_value``: ``"binary"`` (1 per edge), ``"log1p"`` (``log1p(claims)``) or
      ``"log"`` (``ln(claims)``: a single visit weighs nothing, a repeat relationship
      grows with its visits; camouflage by one-off visits then adds no weight at all).
    - ``row_weighting``: also divide each row's edges by ``sqrt(row degree)`` (degree over
      the edges that kept a weight), so that heavy users spread over many providers and
      doctors do not outweigh a group tied to the same few.

    Weights are rounded to multiples of 2**-20 so that peeling sums are exact.

    >>> m = sp.csr_matrix(np.array([[1, 3], [1, 0]]))
    >>> camouflage_weights(m, edge_value="log").toarray().round(3).tolist()
    [[0.0, 0.613], [0.0, 0.0]]
    """
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    if edge_value == "binary":
        m.data = np.ones_like(m.data)
    elif edge_value == "log1p":
        m.data = np.log1p(m.data)
    elif edge_value == "log":
        m.data = np.log(np.maximum(m.data, 1.0))
        m.eliminate_zeros()
    else:
        raise ValueError(f"edge_value must be 'binary', 'log1p' or 'log', got {edge_value!r}")
    degree = np.diff(m.tocsc().indptr)
    values = m.data * (1.0 / np.log(c + degree))[m.indices]
    if row_weighting:
        row_degree = np.diff(m.indptr)
        values = values / np.sqrt(np.maximum(np.repeat(row_degree, row_degree), 1))
    m.data = np.maximum(np.round(values * _QUANTUM), 1.0) / _QUANTUM
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
def _weighted_degrees(n_rows, n_cols, r_ptr, r_w, c_ptr, c_w):
    """Weighted degree of every node: rows 0..n_rows-1, then columns."""
    prio = np.zeros(n_rows + n_cols)
    for i in range(n_rows):
        s = 0.0
        for e in range(r_ptr[i], r_ptr[i + 1]):
            s += r_w[e]
        prio[i] = s
    for j in range(n_cols):
        s = 0.0
        for e in range(c_ptr[j], c_ptr[j + 1]):
            s += c_w[e]
        prio[n_rows + j] = s
    return prio


@_jit
def _peel_kernel(n_rows, n_cols, r_ptr, r_idx, r_w, c_ptr, c_idx, c_w):
    n = n_rows + n_cols
    prio = _weighted_degrees(n_rows, n_cols, r_ptr, r_w, c_ptr, c_w)
    f = 0.0
    for j in range(n_cols):
        f += prio[n_rows + j]
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


@_jit
def _core_kernel(n_rows, n_cols, r_ptr, r_idx, r_w, c_ptr, c_idx, c_w, tau):
    """Alive mask of the tau-core: repeatedly drop nodes whose remaining weighted degree < tau."""
    n = n_rows + n_cols
    prio = _weighted_degrees(n_rows, n_cols, r_ptr, r_w, c_ptr, c_w)
    alive = np.ones(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for u in range(n):
        if prio[u] < tau:
            alive[u] = False
            stack[top] = u
            top += 1
    while top > 0:
        top -= 1
        u = stack[top]
        if u < n_rows:
            for e in range(r_ptr[u], r_ptr[u + 1]):
                v = n_rows + r_idx[e]
                if alive[v]:
                    prio[v] -= r_w[e]
                    if prio[v] < tau:
                        alive[v] = False
                        stack[top] = v
                        top += 1
        else:
            j = u - n_rows
            for e in range(c_ptr[j], c_ptr[j + 1]):
                v = c_idx[e]
                if alive[v]:
                    prio[v] -= c_w[e]
                    if prio[v] < tau:
                        alive[v] = False
                        stack[top] = v
                        top += 1
    return alive


def dense_core(weights: sp.spmatrix, max_rounds: int = 20) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows and columns that can hold the densest peeled set, found cheaply.

    Prunes to the tau-core (every node keeps weighted degree >= tau) with tau = the
    graph's own density, then again with the core's density, until it stops growing.
    This is exact for greedy peeling: while some node has degree below the current
    density, peeling removes exactly such nodes and the density only rises, so the
    densest peeled set lies in the core, and peeling the core alone gives the same
    order from there on (sums are exact, see :func:`camouflage_weights`).

    Returns
    -------
    rows, cols : int arrays (codes kept), density_floor : float (last tau)
    """
    csr = sp.csr_matrix(weights)
    rows = np.arange(csr.shape[0])
    cols = np.arange(csr.shape[1])
    tau = 0.0
    for _ in range(max_rounds):
        n = len(rows) + len(cols)
        if n == 0 or csr.nnz == 0:
            break
        density = float(csr.data.sum()) / n
        if density <= tau:
            break
        tau = density
        csc = csr.tocsc()
        alive = _core_kernel(csr.shape[0], csr.shape[1], csr.indptr, csr.indices, csr.data, csc.indptr,
                             csc.indices, csc.data, tau)
        del csc
        keep_r, keep_c = np.flatnonzero(alive[:csr.shape[0]]), np.flatnonzero(alive[csr.shape[0]:])
        if len(keep_r) == len(rows) and len(keep_c) == len(cols):
            break
        rows, cols = rows[keep_r], cols[keep_c]
        csr = csr[keep_r][:, keep_c]
    return rows, cols, tau


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
                reference: bool = False, prune: bool = True, min_density: float = 0.0) -> tuple[list[PeeledBlock], np.ndarray]:
    """Several dense blocks: peel, take the densest set (its densest connected part), delete its edges, repeat.

    Parameters
    ----------
    weights : sparse matrix
        Weighted bipartite adjacency (rows x columns), e.g. from :func:`camouflage_weights`.
    n_blocks : int
        At most this many blocks; stops earlier when the densest set has fewer than
        ``min_rows`` rows or ``min_cols`` columns (nothing block-like is left), or is
        less dense than ``min_density``.
    reference : bool
        Use :func:`peel_reference` (tests only).
    prune : bool
        Peel only the dense core (:func:`dense_core`), which gives the same blocks.

    Returns
    -------
    blocks : list of PeeledBlock, densest first
    node_density : float array of length n_rows + n_cols
        From the first peeling: the density of the densest peeled set that still held
        the node (a continuous "how dense is the company it keeps" score); nodes pruned
        before the core get the density of the graph they were pruned from.
    """
    run = peel_reference if reference else peel
    w = sp.csr_matrix(weights, dtype=np.float64, copy=True)
    n_rows, n_cols = w.shape
    blocks: list[PeeledBlock] = []
    node_density = np.zeros(n_rows + n_cols)
    for k in range(n_blocks):
        if w.nnz == 0:
            break
        # peel only the dense core: same result, a fraction of the graph (see dense_core)
        core_r, core_c, floor = dense_core(w) if prune else (np.arange(n_rows), np.arange(n_cols), 0.0)
        if len(core_r) == 0 or len(core_c) == 0:
            break
        order, density = run(w[core_r][:, core_c])
        members = order[int(np.argmax(density)):]
        best = float(density.max())
        order = np.where(order < len(core_r), core_r[np.minimum(order, len(core_r) - 1)],
                         n_rows + core_c[np.maximum(order - len(core_r), 0)])
        members = np.sort(np.where(members < len(core_r), core_r[np.minimum(members, len(core_r) - 1)],
                                   n_rows + core_c[np.maximum(members - len(core_r), 0)]))
        if k == 0:
            # nodes pruned before the core keep the density of the graph they were pruned from
            node_density[:] = float(w.data.sum()) / (n_rows + n_cols)
            node_density[order] = np.maximum(np.maximum.accumulate(density), floor)
        rows, cols = members[members < n_rows], members[members >= n_rows] - n_rows
        rows, cols, dens = _densest_component(w, rows, cols)
        if dens is None:
            dens = best
        if len(rows) < min_rows or len(cols) < min_cols or dens < min_density:
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
