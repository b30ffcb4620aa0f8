"""Fast construction of Arrow columns from numpy arrays (ids, dates, money, labels)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_EPOCH = np.datetime64("1970-01-01", "D")


def fixed_ids(prefix: str, numbers: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """Strings ``prefix`` + zero-padded ``numbers`` (e.g. ``D000123``), built without Python strings."""
    numbers = np.asarray(numbers, dtype=np.int64)
    n = len(numbers)
    p = prefix.encode()
    size = len(p) + width
    buf = np.empty((n, size), dtype=np.uint8)
    if p:
        buf[:, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    x = np.where(numbers < 0, 0, numbers)
    # two digits at a time through a lookup table of "00".."99"
    pairs = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)
    k = width
    while k >= 2:
        buf[:, len(p) + k - 2: len(p) + k] = pairs[x % 100]
        x = x // 100
        k -= 2
    if k == 1:
        buf[:, len(p)] = 48 + (x % 10)
    offsets = (np.arange(n + 1, dtype=np.int64) * size)
    if offsets[-1] < 2**31 - 1:
        arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(buf)])
    else:  # pragma: no cover - only for tables beyond 2 GB of ids
        arr = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]).cast(pa.string())
    if valid is not None and not valid.all():
        arr = pa.compute.if_else(pa.array(valid), arr, pa.scalar(None, pa.string()))
    return arr


def dictionary(values: list[str] | np.ndarray, index: np.ndarray) -> pa.Array:
    """``values[index]`` as a string column; index -1 gives null."""
    index = np.asarray(index, dtype=np.int64)
    table = pa.array(list(values), type=pa.string())
    mask = index < 0
    out = table.take(pa.array(np.where(mask, 0, index)))
    if mask.any():
        out = pa.compute.if_else(pa.array(~mask), out, pa.scalar(None, pa.string()))
    return out


def dates(start: np.datetime64, offset: np.ndarray) -> pa.Array:
    days = (np.datetime64(start, "D") - _EPOCH).astype(np.int64) + np.asarray(offset, dtype=np.int64)
    return pa.Array.from_buffers(pa.date32(), len(days), [None, pa.py_buffer(days.astype(np.int32))])


def money(cents: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(cents, dtype=np.int64) / 100.0, type=pa.float64())


def ints(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), type=pa.int64())


def floats(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.float64), type=pa.float64())


def bools(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=bool), type=pa.bool_())
