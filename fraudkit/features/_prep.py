"""Vectorised building blocks shared by the feature tables: id codes, robust statistics.

Everything here works on whole columns (NumPy / pandas group operations); no
per-row Python loops, so that a million claims take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Scale of the median absolute deviation that matches a normal standard deviation.
MAD_TO_SD = 1.4826

_EPOCH = np.datetime64("1970-01-01", "D")


def codes_in(reference, values) -> np.ndarray:
    """Position of each of ``values`` in ``reference`` (unique), -1 where absent.

    Factorising the concatenation is several times faster than ``Index.get_indexer``
    on string columns: the reference comes first, so its codes are 0..n-1.
    """
    val = values if isinstance(values, pd.Series) else pd.Series(values)
    if len(val) == 0:
        return np.empty(0, dtype=np.int64)
    if isinstance(val.dtype, pd.StringDtype) and val.dtype.storage == "pyarrow" and len(val) >= 2 * len(reference):
        # many rows per key (item lines of claims): code the rows once, look up their distinct values
        found = _arrow_positions(reference, val)
        if found is not None:
            return found
    ref = pd.Series(np.asarray(reference), dtype=val.dtype)
    both = pd.concat([ref, val], ignore_index=True)
    codes, _ = pd.factorize(both)
    out = codes[len(ref):].astype(np.int64)
    out[out >= len(ref)] = -1
    return out


def _arrow_positions(reference, values: pd.Series) -> np.ndarray | None:
    """``codes_in`` for Arrow strings by Arrow's hash lookup (no Python strings); None for a reference with repeats."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ref = reference.array if isinstance(reference, (pd.Series, pd.Index)) else reference
    if not isinstance(getattr(ref, "dtype", None), pd.StringDtype):
        ref = np.asarray(ref, dtype=object)
    try:
        keys = pa.array(ref, type=pa.string(), from_pandas=True)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        # the distinct values (in order of first appearance) are looked up once, not every row
        encoded = pc.dictionary_encode(pa.array(values.array, type=pa.string()))
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        distinct, codes = encoded.dictionary, encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        if len(distinct) == len(keys) and pc.all(pc.equal(distinct, keys)).as_py() is not False:
            return codes.astype(np.int64)  # the values name the reference in its own order (items of claims)
        if pc.count_distinct(keys, mode="all").as_py() != len(keys):
            return None  # first-occurrence semantics of a reference with repeats: left to pandas
        found = pc.index_in(distinct, value_set=keys).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return np.where(codes >= 0, found[np.maximum(codes, 0)] if len(found) else -1, -1).astype(np.int64)


def days(dates: pd.Series) -> np.ndarray:
    """Dates as integer days since 1970-01-01."""
    values = dates.to_numpy()
    if values.dtype == np.dtype("datetime64[s]"):  # what the loader gives: whole days, counted in seconds
        ticks = values.view(np.int64)
        out = ticks // 86_400  # floors, as the cast to days does
        nat = np.isnat(values)
        if nat.any():
            out[nat] = np.iinfo(np.int64).min
        return out
    return (dates.to_numpy(dtype="datetime64[D]") - _EPOCH).astype(np.int64)


def group_sum(codes: np.ndarray, weights, size: int) -> np.ndarray:
    """Sum of ``weights`` per code 0..size-1 (codes < 0 ignored)."""
    ok = codes >= 0
    w = np.broadcast_to(np.asarray(weights, dtype=float), codes.shape)
    return np.bincount(codes[ok], weights=w[ok], minlength=size)[:size]


def group_max(codes: np.ndarray, values: np.ndarray, size: int, fill: float = 0.0,
              order: np.ndarray | None = None) -> np.ndarray:
    """Maximum of ``values`` per code (``fill`` where a code has none); ``order``: a permutation of
    the rows that sorts ``codes`` (non-negative), when the caller has one."""
    out = np.full(size, fill, dtype=float)
    if order is not None:
        codes, values = codes[order], values[order]
    ok = codes >= 0
    codes, values = codes[ok], values[ok]
    if len(codes) == 0:
        return out
    if order is None and not (np.diff(codes) >= 0).all():  # items usually come grouped by claim; sort when not
        order = np.argsort(codes, kind="stable")
        codes, values = codes[order], values[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    out[codes[starts]] = np.maximum.reduceat(values, starts)
    return out


def group_nunique(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Number of distinct ``values`` (non-negative ints) per code."""
    ok = (codes >= 0) & (values >= 0)
    c, v = codes[ok].astype(np.int64), values[ok].astype(np.int64)
    if len(c) == 0:
        return np.zeros(size)
    pair, uniq = pd.factorize(c * (int(v.max()) + 1) + v)
    code_of_pair = np.empty(len(uniq), dtype=np.int64)
    code_of_pair[pair] = c
    return np.bincount(code_of_pair, minlength=size)[:size].astype(float)


def robust_location_scale(frame: pd.DataFrame, key: str, metrics: dict[str, float], min_count: int) -> pd.DataFrame:
    """Per group of ``key``: count, median and robust scale of each metric.

    The scale is ``1.4826 × MAD`` floored at the metric's given floor, so that a
    group where nearly every claim is alike does not turn tiny differences into
    huge z-scores. Groups with fewer than ``min_count`` rows are dropped (callers
    fall back to broader groups).
    """
    g = frame.groupby(key, sort=True)
    counts = g.size()
    keep = counts.index[counts.to_numpy() >= min_count]
    if len(keep) == 0:
        return pd.DataFrame(columns=["count"] + [f"{p}_{m}" for m in metrics for p in ("med", "scale")])
    sub = frame[frame[key].isin(keep)]
    g = sub.groupby(key, sort=True)
    med = g[list(metrics)].median()
    dev = (sub[list(metrics)] - med.reindex(sub[key]).to_numpy()).abs()
    dev[key] = sub[key].to_numpy()
    mad = dev.groupby(key, sort=True)[list(metrics)].median()
    out = pd.DataFrame({"count": counts.reindex(med.index).to_numpy()}, index=med.index)
    for m, floor in metrics.items():
        out[f"med_{m}"] = med[m]
        out[f"scale_{m}"] = np.maximum(MAD_TO_SD * mad[m].to_numpy(), floor)
    return out


def group_quantiles(values: np.ndarray, groups: np.ndarray, keys: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles ``qs`` of ``values`` per group, one row per entry of ``keys`` (sort-based, vectorised)."""
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    starts = np.searchsorted(g, keys, side="left")
    ends = np.searchsorted(g, keys, side="right")
    n = ends - starts
    pos = starts[:, None] + np.clip(np.round(qs[None, :] * (n[:, None] - 1)).astype(np.int64), 0, None)
    pos = np.minimum(pos, np.maximum(ends[:, None] - 1, 0))
    out = v[np.clip(pos, 0, max(len(v) - 1, 0))] if len(v) else np.zeros(pos.shape)
    out[n == 0] = np.nan
    return out


def window_counts(group: np.ndarray, day: np.ndarray, width: int, order: np.ndarray | None = None) -> np.ndarray:
    """For each row, rows of the same group with day in [day, day + width); ``order``: the rows
    sorted by (group, day), when the caller has it."""
    if len(day) == 0:
        return np.empty(0)
    key = group.astype(np.int64) * 1_000_000 + (day - day.min())
    if order is None:
        order = np.argsort(key, kind="stable")
    s = key[order]
    out = np.empty(len(key))
    # sorted queries walk the sorted keys in order: far faster than random probes
    out[order] = np.searchsorted(s, s + width, side="left") - np.searchsorted(s, s, side="left")
    return out


def hash_u26(a: np.ndarray, salt: int) -> np.ndarray:
    """A 26-bit integer hash (as float) of non-negative int64 values; sums stay exact in float64."""
    x = (a.astype(np.uint64) + np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return (x & np.uint64((1 << 26) - 1)).astype(np.float64)


def cat_codes(series: pd.Series, categories) -> np.ndarray:
    """Codes of a column in the fixed ``categories`` (-1 elsewhere), cheap when it already is that categorical."""
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == list(categories):
        return series.cat.codes.to_numpy().astype(np.int64)
    return np.asarray(pd.Categorical(series.astype("str"), categories=list(categories)).codes, dtype=np.int64)


def distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of an int array, sorted.

    A stable sort and one pass: keys built from item lines come nearly sorted (by claim), which
    the sort runs through almost in one go, about 20× faster than hashing them (``pd.unique``)
    at a million lines. For callers to whom the order of the distinct keys does not matter.

    >>> distinct(np.array([3, 1, 3, 2, 1]))
    array([1, 2, 3])
    """
    if len(keys) == 0:
        return keys
    s = np.sort(keys, kind="stable")
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def count_by(key: np.ndarray) -> np.ndarray:
    """For each row, how many rows share its (int64) key.

    Keys in a compact range (non-negative, below four per row: a provider, or a provider and a
    day as ``provider * days + day``) are counted directly, about 10× faster than hashing them
    first (pandas' factorize, used for the rest). The counts are the same either way.

    >>> count_by(np.array([7, 3, 7, 7])), count_by(np.array([10**12, 3, 10**12]))
    (array([3., 1., 3., 3.]), array([2., 1., 2.]))
    """
    if len(key) and key.min() >= 0 and key.max() < 4 * len(key):
        return np.bincount(key)[key].astype(float)
    codes, _ = pd.factorize(key)
    return np.bincount(codes)[codes].astype(float)


def distinct_per(key: np.ndarray, values: np.ndarray, coded: bool = False, order: np.ndarray | None = None) -> np.ndarray:
    """For each row, the number of distinct non-negative int ``values`` among rows with the same ``key``
    (``coded``: the keys are already dense codes 0..k-1; ``order``: a permutation of the rows that
    sorts the coded keys, when the caller has one: the (key, value) pairs are then told apart by a
    stable sort that has little left to do, not by hashing them).

    >>> distinct_per(np.array([0, 1, 0, 0, 1]), np.array([5, 5, 6, 5, 5]), coded=True)
    array([2., 1., 2., 2., 1.])
    """
    if len(key) == 0:
        return np.empty(0)
    k = key if coded else pd.factorize(key)[0]
    width = int(values.max()) + 2
    if coded and order is not None:
        pairs = distinct(k[order].astype(np.int64) * width + values[order] + 1)  # in key order: little left to sort
        return np.bincount(pairs // width, minlength=k.max() + 1)[k].astype(float)
    pair, uniq = pd.factorize(k.astype(np.int64) * width + values + 1)
    key_of_pair = np.empty(len(uniq), dtype=np.int64)
    key_of_pair[pair] = k  # every row of a pair has the same key
    return np.bincount(key_of_pair, minlength=k.max() + 1)[k].astype(float)


def lookup(index: pd.Index, keys: np.ndarray) -> np.ndarray:
    """``index.get_indexer(keys)`` for an int64 index, by binary search (the index is small, the keys many)."""
    ref = index.to_numpy(dtype=np.int64)
    order = np.argsort(ref, kind="stable")
    ordered = ref[order]
    pos = np.clip(np.searchsorted(ordered, keys), 0, max(len(ordered) - 1, 0))
    if len(ordered) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    return np.where(ordered[pos] == keys, order[pos], -1)


def _class_reference(provider: np.ndarray, klass: np.ndarray, fallback: np.ndarray, weight: np.ndarray,
                     min_rows: int) -> np.ndarray:
    """Per provider, the row index of its reference class: its own class when that class has
    ``min_rows`` rows (summed ``weight``), else its fallback class (offset by ``klass.max() + 1``)."""
    rows_per_class = np.bincount(klass[provider], weights=weight, minlength=int(klass.max()) + 1)
    return np.where(rows_per_class[klass] >= min_rows, klass, int(klass.max()) + 1 + fallback)


def binomial_excess_z(provider: np.ndarray, flagged: np.ndarray, klass: np.ndarray, fallback: np.ndarray,
                      min_rows: int = 200) -> np.ndarray:
    """Funnel-plot z of each provider's count of flagged claims against its class's pooled rate.

    ``provider`` (one code per claim considered), ``flagged`` (bool per claim); ``klass`` and
    ``fallback`` give each provider's peer class (e.g. type × tier) and a broader one (type),
    used when the class has fewer than ``min_rows`` claims. The z is that of the exact
    binomial upper tail (mid-p) of k flagged claims among n at the class rate, so a share
    means more the more claims stand behind it: one odd claim of three is no evidence, 30
    of 300 where peers have 3 is. Providers without claims considered get 0.

    >>> z = binomial_excess_z(np.repeat([0, 1, 2], 100), np.r_[np.zeros(195, bool), np.ones(105, bool)],
    ...                       np.zeros(3, int), np.zeros(3, int))
    >>> (z[2] > 5, z[0] < 0)
    (np.True_, np.True_)
    """
    from scipy import stats

    size = len(klass)
    k = np.bincount(provider, weights=flagged.astype(float), minlength=size)[:size]
    n = np.bincount(provider, minlength=size)[:size].astype(float)
    ref = _class_reference(provider, klass, fallback, np.ones(len(provider)), min_rows)
    p0 = np.bincount(ref, weights=k, minlength=ref.max() + 1) / np.maximum(np.bincount(ref, weights=n, minlength=ref.max() + 1), 1)
    p = p0[ref]
    z = np.zeros(size)
    ok = (n > 0) & (p > 0) & (p < 1)
    tail = stats.binom.sf(k[ok] - 1, n[ok], p[ok]) - 0.5 * stats.binom.pmf(k[ok], n[ok], p[ok])
    z[ok] = stats.norm.isf(np.clip(tail, 1e-300, 1.0 - 1e-16))  # finite at both ends (|z| < 38)
    return z


def stouffer_excess_z(provider: np.ndarray, values: np.ndarray, klass: np.ndarray, fallback: np.ndarray,
                      min_rows: int = 200, clip: float = 10.0) -> np.ndarray:
    """Stouffer z of each provider's claims on a claim-level measure against its class.

    Each claim's value is standardised within its provider's class (as in
    :func:`binomial_excess_z`): robustly first (median and 1.4826·MAD, clipped to
    ±``clip`` so that one wild claim cannot carry a provider), then to mean 0 and unit
    variance, so that a skewed measure does not push every large provider up. A provider's
    z is the sum over its claims / √n: a mean that is high on many claims is stronger
    evidence than the same mean on a few. ``values`` may be a matrix (claims × measures):
    one z column per measure, each the same numbers as alone, from one grouping.

    >>> v = np.r_[np.random.default_rng(0).normal(size=1800), np.full(300, 1.0)]  # provider 6: +1 sd on every claim
    >>> z = stouffer_excess_z(np.repeat([0, 1, 2, 3, 4, 5, 6], 300), v, np.zeros(7, int), np.zeros(7, int))
    >>> (z[6] > 5, abs(z[0]) < 3)
    (np.True_, np.True_)
    """
    size = len(klass)
    values = np.asarray(values, dtype=float)
    matrix = values[:, None] if values.ndim == 1 else values
    ref = _class_reference(provider, klass, fallback, np.ones(len(provider)), min_rows)[provider]
    row, _ = pd.factorize(ref)  # each claim's class, 0..: the groups' rows below

    def by_class(table: np.ndarray):
        return pd.DataFrame(table).groupby(row, sort=True)

    d = matrix - by_class(matrix).median().to_numpy()[row]
    g = by_class(d)
    mad, sd = by_class(np.abs(d)).median().to_numpy() * MAD_TO_SD, g.std(ddof=0).to_numpy()
    scale = np.where(mad > 1e-9, mad, sd)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.clip(d / scale[row], -clip, clip)
    g = by_class(z)
    mean, sd = g.mean().to_numpy()[row], g.std(ddof=0).to_numpy()[row]
    std = (z - mean) / np.where(sd > 1e-9, sd, 1.0)
    n = np.sqrt(np.maximum(np.bincount(provider, minlength=size)[:size], 1))
    total = np.column_stack([np.bincount(provider, weights=std[:, j], minlength=size)[:size] for j in range(std.shape[1])])
    out = total / n[:, None]
    return out[:, 0] if values.ndim == 1 else out
