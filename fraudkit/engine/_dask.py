"""The Dask engine: ``FraudModel.score`` with its row-wise stages spread over a ``distributed`` cluster.

What runs where, and why the files are byte-identical to the local engine:

- validation: :func:`fraudkit.io.load_batch`, the one loader, in the calling process (it
  checks keys across tables, so it needs them all);
- features: per part of the patients on the workers (:func:`fraudkit.io.split_by_patient`,
  :meth:`FeatureBuilder.part_features`): every claim's features that its patient's claims
  decide (readmissions, stays, supply windows, peer comparisons, item lines), and the keys of
  the counts over other patients (cohorts, same-day diagnoses, exam patterns, drug lifts, cards
  buying together) and of the providers' sums. Each worker keeps its parts' claim tables and
  sends back the columns the providers' features read (:meth:`PartFeatures.slim`); the calling
  process reduces them (:meth:`FeatureBuilder.combine`): the counts over all keys, the
  providers' features from all claims, in the whole batch's order; the same bits as the local
  engine for any number of parts. (Reducing the parts in a task on a worker cost one more copy
  of every part between processes: 17-22 s against 12.5-13.6 s for the features of 1M claims
  on 2 worker processes.);
- claims' isolation-forest scores and strongest single signal (``claim_signals``): on the
  worker that keeps each part's claim table, the counts over all parts written in
  (:class:`_ClaimParts`). A claim's score depends only on its row, and every part walks the
  compiled forest if the whole table would, whatever its size. The signal is measured against
  the whole batch's robust scaling, learnt once in the calling process from the batch's evenly
  spaced rows, fetched from the parts that hold them (a reduction);
- patients' isolation-forest scores: per partition of rows on the workers, every partition at
  least :data:`MIN_ROWS` rows so that it takes the same compiled code path as the whole table;
- reasons of flagged claims: their rows fetched from the parts, explained per partition of
  rows on the workers (row-wise too);
- graph detectors: their analyses of the claims network as one task on a worker, beside the
  forests (pure functions of the network: the same bits anywhere);
- provider aggregates, combination and ranking: as in the local engine, on the reduced tables.

Row partitions are contiguous ranges, concatenated back in order, and parts' rows are put
back in the batch's order, so every later stage sees exactly what the local engine sees.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pandas as pd

from fraudkit.detectors._iforest import MIN_FLAT_ROWS

#: The engines ``fraudkit score --engine`` accepts.
ENGINES = ("local", "dask")

#: Fewest rows per partition: below it the isolation forest scores with scikit-learn's trees
#: instead of the compiled flat forest (same scores up to rounding, not the same bits).
MIN_ROWS = MIN_FLAT_ROWS



def partition_bounds(n_rows: int, partitions: int, min_rows: int = MIN_ROWS) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` row ranges: at most ``partitions``, each of at least ``min_rows`` rows.

    >>> partition_bounds(10_000, 4)
    [(0, 2500), (2500, 5000), (5000, 7500), (7500, 10000)]
    >>> partition_bounds(5_000, 4)
    [(0, 2500), (2500, 5000)]
    >>> partition_bounds(0, 4)
    [(0, 0)]
    """
    k = max(1, min(int(partitions), n_rows // max(min_rows, 1)))
    edges = [(i * n_rows) // k for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _on_threads(detector, threads: int | None):
    """The worker's copy of a detector, scoring on ``threads`` threads where it can."""
    det = copy.copy(detector)
    if threads and hasattr(det, "n_jobs"):
        det.n_jobs = threads
    return det


def _scores_part(detector, table: pd.DataFrame, threads: int | None) -> np.ndarray:
    """Worker task: a detector's scores of one partition of rows."""
    return _on_threads(detector, threads).score_samples(table)  # in-process workers take turns in the kernel (KERNEL_LOCK)


def _signal_part(detector, table: pd.DataFrame, extra) -> tuple[np.ndarray, np.ndarray]:
    """Worker task: a detector's scores and strongest signal of one partition of rows, the signal
    measured against the whole batch's scaling (``extra`` = (threads, scaling))."""
    threads, scaling = extra
    scores, signal = _on_threads(detector, threads).scores_with_signal(table, scaling=scaling)
    return scores.to_numpy(), signal.to_numpy()


def _features_part(builder, part, _) -> object:
    """Worker task: the features of one part of the batch cut by patient."""
    return builder.part_features(part)


def _part_table(part, cross: dict) -> pd.DataFrame:
    """A part's claim feature table, with the columns counted over every part (``cross``, from
    :meth:`FeatureBuilder.combine`) written in: in place, the same values every time."""
    for col, values in cross.items():
        part.columns[col] = values
    return part.columns.frame(part.claim_index)


def _on_part(func, detector, part, cross: dict, extra):
    """Worker task: ``func(detector, table, extra)`` on the claim table of a part the worker keeps."""
    return func(detector, _part_table(part, cross), extra)


def _part_rows(part, cross: dict, rows: np.ndarray, columns) -> pd.DataFrame:
    """Worker task: some rows of a part's claim table (``columns``: None = all)."""
    table = _part_table(part, cross).iloc[rows]
    return table if columns is None else table[list(columns)]


def _slim_part(part):
    """Worker task: what of a part's features the calling process reduces (:meth:`PartFeatures.slim`)."""
    return part.slim(keep=("peer_median_total",))


def _explain_part(detector, table: pd.DataFrame, top: int) -> pd.DataFrame:
    """Worker task: a detector's reasons for one partition of rows."""
    return detector.explain(table, top=top)


class _Features:
    """Stands in for the fitted ``FeatureBuilder``: hands out the features already computed."""

    def __init__(self, features):
        self.features = features

    def transform(self, batch):
        return self.features


class _DistributedDetector:
    """A fitted tabular detector whose ``scores`` and ``explain`` run partition-wise on the cluster."""

    def __init__(self, detector, engine: "DaskEngine"):
        self._detector = detector
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def _columns_of(self) -> list[str]:
        """The columns the forest reads (and the peer column it rescales by): all a worker needs."""
        det = self._detector
        cols = list(det.features_)
        peer = getattr(det, "peer_column_", None)
        if peer and peer not in cols:
            cols.append(peer)
        return cols

    def _columns(self, table: pd.DataFrame) -> pd.DataFrame:
        return table[self._columns_of()]

    def scores(self, table: pd.DataFrame) -> pd.Series:
        det = self._detector
        parts = self._engine.partitions_of(len(table))
        if len(parts) < 2:
            return det.scores(table)
        slim = self._columns(table)
        chunks = [slim.iloc[a:b] for a, b in parts]
        values = self._engine.map(_scores_part, det, chunks, self._engine.forest_threads)
        return pd.Series(np.concatenate(values), index=det.sample_ids(table), name=type(det).__name__)

    def scores_with_signal(self, table: pd.DataFrame, fitted: bool = False) -> tuple[pd.Series, pd.Series]:
        det = self._detector
        parts = self._engine.partitions_of(len(table))
        if len(parts) < 2 or fitted:  # fitted: the training scores are known, the signal is one pass
            return det.scores_with_signal(table, fitted=fitted)
        slim = self._columns(table)
        scaling = det.signal_scaling(slim)  # a reduction: the batch's robust scaling, from a sample of rows
        chunks = [slim.iloc[a:b] for a, b in parts]
        values = self._engine.map(_signal_part, det, chunks, (self._engine.forest_threads, scaling))
        ids = det.sample_ids(table)
        return (pd.Series(np.concatenate([v[0] for v in values]), index=ids, name=type(det).__name__),
                pd.Series(np.concatenate([v[1] for v in values]), index=ids, name="strongest_signal"))

    def explain(self, table: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        det = self._detector
        parts = self._engine.partitions_of(len(table), min_rows=500)
        if len(parts) < 2:
            return det.explain(table, top=top)
        chunks = [table.iloc[a:b] for a, b in parts]
        frames = self._engine.map(_explain_part, det, chunks, top)
        return pd.concat(frames, ignore_index=True)


class _ClaimParts:
    """The claim feature tables the workers keep, one per part of the patients, and where each
    claim of the batch is among them."""

    def __init__(self, engine: "DaskEngine", futures: list, positions: list[np.ndarray], claims: pd.DataFrame):
        from fraudkit.features._builder import CROSS_COLUMNS

        keep = [k for k, pos in enumerate(positions) if len(pos)]  # parts of patients without claims have no table
        self.engine, self.futures, self.positions = engine, [futures[k] for k in keep], [positions[k] for k in keep]
        positions = self.positions
        self.n, self.index = len(claims), claims.index
        self.cross = [{col: claims[col].to_numpy()[pos] for col in CROSS_COLUMNS} for pos in positions]
        self.part = np.empty(self.n, dtype=np.int64)
        self.local = np.empty(self.n, dtype=np.int64)
        for k, pos in enumerate(positions):
            self.part[pos], self.local[pos] = k, np.arange(len(pos))

    def map(self, func, detector, extra) -> np.ndarray | tuple:
        """``func(detector, table, extra)`` on every part's claim table, on the worker that keeps it;
        its arrays (or tuples of arrays) put back in the batch's order."""
        client = self.engine.client
        [det] = client.scatter([detector], broadcast=True)
        k = len(self.futures)
        results = client.gather(client.map(_on_part, [func] * k, [det] * k, self.futures, self.cross, [extra] * k,
                                           pure=False))

        from fraudkit.io import in_batch_order

        if isinstance(results[0], tuple):
            return tuple(in_batch_order([r[j] for r in results], self.positions, self.n) for j in range(len(results[0])))
        return in_batch_order(results, self.positions, self.n)

    def rows(self, positions: np.ndarray, columns=None) -> pd.DataFrame:
        """The claim table's rows at these positions of the batch, in this order, from the workers."""
        positions = np.asarray(positions, dtype=np.int64)
        which = self.part[positions]
        wanted = [np.flatnonzero(which == k) for k in range(len(self.futures))]
        client = self.engine.client
        asked = [k for k, sel in enumerate(wanted) if len(sel)] or [0]  # none: an empty table, columns and all
        frames = client.gather([client.submit(_part_rows, self.futures[k], self.cross[k], self.local[positions[wanted[k]]],
                                              columns, pure=False) for k in asked])
        return pd.concat(frames).iloc[np.argsort(np.concatenate([wanted[k] for k in asked]), kind="stable")]


class _PartsDetector(_DistributedDetector):
    """The claim forest, scoring the claim tables the workers keep (:class:`_ClaimParts`): every
    part on its worker, the signal against the batch's scaling learnt from its evenly spaced rows."""

    def __init__(self, detector, engine: "DaskEngine", parts: _ClaimParts):
        super().__init__(detector, engine)
        self._parts = parts

    def _walker(self):
        # every part walks the forest as the whole table would (parts smaller than the compiled
        # walk's least rows would otherwise go through scikit-learn's trees: not the same bits)
        det = copy.copy(self._detector)
        det._flat_from = 0 if self._parts.n >= MIN_FLAT_ROWS else self._parts.n + 1
        return det

    def _check(self, table: pd.DataFrame) -> None:
        if len(table) != self._parts.n or not table.index.equals(self._parts.index):
            raise ValueError("the claim parts score the batch they were computed for, in its order")

    def scores(self, table: pd.DataFrame) -> pd.Series:
        self._check(table)
        values = self._parts.map(_scores_part, self._walker(), self._engine.forest_threads)
        return pd.Series(values, index=self._detector.sample_ids(table), name=type(self._detector).__name__)

    def scores_with_signal(self, table: pd.DataFrame, fitted: bool = False) -> tuple[pd.Series, pd.Series]:
        if fitted:  # the training scores are known: the table is the fitted one, in this process
            return self._detector.scores_with_signal(table, fitted=True)
        self._check(table)
        det = self._walker()
        rows = det.signal_sample_rows(self._parts.n)  # a reduction: the batch's robust scaling, from a sample of rows
        scaling = None if rows is None else det.scaling_of_sample(self._parts.rows(rows, self._columns_of()))
        scores, signal = self._parts.map(_signal_part, det, (self._engine.forest_threads, scaling))
        ids = det.sample_ids(table)
        return (pd.Series(scores, index=ids, name=type(det).__name__), pd.Series(signal, index=ids, name="strongest_signal"))

    def explain(self, table: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        positions = self._parts.index.get_indexer(table.index)
        if (positions < 0).any():
            raise ValueError("explain: claims not in the batch the parts were computed for")
        return super().explain(self._parts.rows(positions), top=top)


class DaskEngine:
    """Score batches on a ``distributed`` cluster: a scheduler's address, or a ``LocalCluster``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). Without it a ``LocalCluster`` is started.
    workers : int, optional
        Workers of the local cluster (default: the machine's cores, at most 4).
    processes : bool, default=False
        Local workers as processes (default: threads of this process, which copy nothing). Worker
        processes get the parts of the batch and the rows to score copied to them, and the parts'
        features copied back, about 1.5 GB per million claims: ``fraudkit score --engine dask`` of 1M
        claims on 2 cores took 18-26 s with 2 worker processes, 13-14 s with 2 worker threads. A
        cluster of other machines (``scheduler``) copies the same.
    partitions : int, optional
        Parts of the patients whose features are computed apart (default: one per worker), and
        row partitions per row-wise stage (default: two per worker).
    client : distributed.Client, optional
        Use this client (and its cluster) as it is; the engine does not close it.

    Examples
    --------
    >>> with DaskEngine(workers=2) as engine:          # doctest: +SKIP
    ...     result = engine.score(model, batch, inspections=20)
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, processes: bool = False,
                 partitions: int | None = None, client=None):
        self.scheduler = scheduler
        self.workers = workers
        self.processes = processes
        self.partitions = partitions
        self.client = client
        self._owned: list = []

    # ------------------------------------------------------------------ cluster
    def __enter__(self) -> "DaskEngine":
        if self.client is None:
            from distributed import Client, LocalCluster

            if self.scheduler:
                from fraudkit.errors import FraudkitError

                try:
                    self.client = Client(self.scheduler, timeout="10s")
                except (OSError, TimeoutError, ValueError) as exc:
                    raise FraudkitError(f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); "
                                        "start one (dask scheduler) or leave --scheduler out for a local cluster") from None
                self._owned = [self.client]
            else:
                n = self.workers or max(1, min(os.cpu_count() or 1, 4))
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=self.processes,
                                       dashboard_address=None, silence_logs=40)
                self.client = Client(cluster)
                self._owned = [self.client, cluster]
        return self

    def __exit__(self, *exc) -> None:
        if self._owned:
            for thing in self._owned:
                thing.close()
            self._owned, self.client = [], None

    @property
    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {}))) if self.client else 1

    @property
    def forest_threads(self) -> int | None:
        """Compiled-forest threads per task: the cores shared out among local worker processes."""
        if self.scheduler or not self.processes:
            return None
        return max(1, (os.cpu_count() or 1) // self.n_workers)

    def partitions_of(self, n_rows: int, min_rows: int = MIN_ROWS) -> list[tuple[int, int]]:
        return partition_bounds(n_rows, self.partitions or 2 * self.n_workers, min_rows)

    def map(self, func, detector, chunks: list, extra) -> list:
        """``func(detector, chunk, extra)`` for every chunk on the cluster, results in chunk order."""
        client = self.client
        [det] = client.scatter([detector], broadcast=True)
        futures = client.map(func, [det] * len(chunks), client.scatter(chunks), [extra] * len(chunks), pure=False)
        return client.gather(futures)

    def _part_futures(self, builder, batch) -> tuple[list, list[np.ndarray]]:
        """Futures of the features of the batch's parts of patients, each on a worker, and their claims' positions."""
        from fraudkit.io import split_by_patient

        client = self.client
        # one part per worker by default: each part costs a split, a copy and a share of the
        # reduction (1M claims on 2 worker threads: score 13.2-13.6 s with 2 parts, 15.0-15.3 s with 4)
        pieces = split_by_patient(batch, self.partitions or self.n_workers)
        [det] = client.scatter([builder], broadcast=True)
        futures = client.map(_features_part, [det] * len(pieces), client.scatter(pieces), [None] * len(pieces), pure=False)
        return futures, [p.claims for p in pieces]

    def features(self, builder, batch):
        """``builder.transform(batch)``: each part of the patients on a worker, reduced here."""
        futures, _ = self._part_futures(builder, batch)
        return builder.combine(self.client.gather(futures))

    def part_features(self, builder, batch) -> tuple:
        """The batch's features with the claim tables left on the workers: (the feature tables with
        the claim columns the providers' features read, :class:`_ClaimParts`)."""
        futures, positions = self._part_futures(builder, batch)
        features = builder.combine(self.client.gather(self.client.map(_slim_part, futures, pure=False)))
        return features, _ClaimParts(self, futures, positions, features.claims)

    # ------------------------------------------------------------------ scoring
    def score(self, model, batch, *, progress=None, **kwargs):
        """``model.score(batch, **kwargs)`` with features computed once and row-wise stages on the cluster."""
        if self.client is None:
            with self:
                return self.score(model, batch, progress=progress, **kwargs)
        from fraudkit.errors import ModelError

        if not hasattr(model, "features_"):
            raise ModelError("this model is not fitted; train it first (fraudkit train)")
        step = progress or (lambda stage: None)
        step("features")
        staged = copy.copy(model)
        if model.fitted_on(batch):  # refitted on this batch: its features are already there, computed by fit
            parts = None
        else:
            features, parts = self.part_features(model.features_, batch)
            staged.features_ = _Features(features)
        staged.detectors_ = {name: (_PartsDetector(det, self, parts) if det.entity == "claim" and parts is not None
                                    else _DistributedDetector(det, self) if det.entity in ("claim", "patient") else det)
                             for name, det in model.detectors_.items()}
        kwargs.setdefault("executor", _OnCluster(self.client))
        return staged.score(batch, progress=lambda stage: None if stage == "features" else step(stage), **kwargs)


class _OnCluster:
    """``submit(fn, *args)`` on the cluster: the graph analyses run on a worker beside the forests."""

    def __init__(self, client):
        self.client = client

    def submit(self, fn, *args):
        return self.client.submit(fn, *self.client.scatter(list(args), hash=False), pure=False)


def score_dask(model, batch, *, scheduler: str | None = None, workers: int | None = None, processes: bool = False,
               partitions: int | None = None, client=None, **kwargs):
    """Score ``batch`` with ``model`` on a Dask cluster; same :class:`~fraudkit.pipeline.ScoreResult` as ``model.score``."""
    with DaskEngine(scheduler=scheduler, workers=workers, processes=processes, partitions=partitions,
                    client=client) as engine:
        return engine.score(model, batch, **kwargs)


def score_with_engine(model, batch, engine: str = "local", **options):
    """Dispatch to the engine named ``engine`` (``local`` or ``dask``); ``options`` go to the Dask engine."""
    if engine == "local":
        return model.score(batch, **{k: v for k, v in options.items()
                                     if k not in ("scheduler", "workers", "processes", "partitions", "client")})
    if engine == "dask":
        return score_dask(model, batch, **options)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
