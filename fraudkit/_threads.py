"""Work side by side on threads, the results in order: the one way fraudkit's stages use a second core
in-process (NumPy, pandas' group operations and Arrow's kernels release the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable

#: Threads a stage runs side by side: the machine's cores, at most 4.
THREADS = max(1, min(4, os.cpu_count() or 1))

#: Rows (or entities) from which a stage splits its work over threads; below it, thread start-up is not worth it.
PARALLEL_FROM = 100_000


def threads_for(rows: int) -> int:
    """Threads for work over ``rows`` rows: :data:`THREADS` from :data:`PARALLEL_FROM` rows, else 1."""
    return THREADS if rows >= PARALLEL_FROM else 1


def map_in_order(fn: Callable, *iterables: Iterable, threads: int = THREADS) -> list:
    """``[fn(*args) for args in zip(*iterables)]``, on up to ``threads`` threads (1: in this thread).

    The results come back in the order of the inputs, whatever the number of threads, so a caller
    that combines them in that order gets the same bits either way.

    >>> map_in_order(pow, [2, 3, 4], [2, 2, 2], threads=2)
    [4, 9, 16]
    """
    work = list(zip(*iterables))
    if threads <= 1 or len(work) <= 1:
        return [fn(*args) for args in work]
    with ThreadPoolExecutor(max_workers=min(threads, len(work))) as pool:
        return list(pool.map(lambda args: fn(*args), work))


def done_or_run(job: Future, fn: Callable, *args):
    """The result of ``job``, queued on a pool to compute ``fn(*args)``: if the pool has not started it yet
    (it is busy with earlier work), the job is cancelled and run in this thread, which would only wait.

    >>> from concurrent.futures import Future
    >>> done_or_run(Future(), pow, 2, 5)       # never started: run here
    32
    """
    if job.cancel():
        return fn(*args)
    return job.result()
