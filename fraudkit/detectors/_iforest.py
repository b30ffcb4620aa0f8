"""Isolation forest on a feature table, with reasons an inspector can check."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

from ._base import ENTITIES, EXPLAIN_COLUMNS, BaseDetector

try:  # numba walks the whole forest row by row, in cache: several times faster than tree.apply per tree
    import numba as _numba

    @_numba.njit(parallel=True, cache=True, nogil=True)
    def _forest_depths(X, roots, depth, nodes, split, value):  # pragma: no cover - compiled
        # Blocks of rows (kept in cache) x trees (one tree's nodes fit in L1). The descent is
        # branch-free (leaves point to themselves with threshold +inf, so every row takes
        # exactly depth[t] steps) and walks eight rows at once, so that their chains of
        # dependent loads overlap instead of waiting on each other. A node is one 16-byte
        # record (feature, float32 threshold, left, right): ``nodes`` (uint32) and ``split``
        # (its float32 view) read the same memory, one cache line per step. Node indices are
        # unsigned, so that no index needs the negative-index check: 1.8x faster than int32.
        n, block = X.shape[0], 1024
        two = np.uint32(2)
        out = np.zeros(n)
        for b in _numba.prange((n + block - 1) // block):
            lo, hi = b * block, min(n, (b + 1) * block)
            for t in range(roots.shape[0]):
                root, steps = roots[t], depth[t]
                i = lo
                while i + 8 <= hi:
                    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = root
                    for _ in range(steps):
                        a0 = nodes[a0, two + np.uint32(X[i, nodes[a0, 0]] > split[a0, 1])]
                        a1 = nodes[a1, two + np.uint32(X[i + 1, nodes[a1, 0]] > split[a1, 1])]
                        a2 = nodes[a2, two + np.uint32(X[i + 2, nodes[a2, 0]] > split[a2, 1])]
                        a3 = nodes[a3, two + np.uint32(X[i + 3, nodes[a3, 0]] > split[a3, 1])]
                        a4 = nodes[a4, two + np.uint32(X[i + 4, nodes[a4, 0]] > split[a4, 1])]
                        a5 = nodes[a5, two + np.uint32(X[i + 5, nodes[a5, 0]] > split[a5, 1])]
                        a6 = nodes[a6, two + np.uint32(X[i + 6, nodes[a6, 0]] > split[a6, 1])]
                        a7 = nodes[a7, two + np.uint32(X[i + 7, nodes[a7, 0]] > split[a7, 1])]
                    out[i] += value[a0]
                    out[i + 1] += value[a1]
                    out[i + 2] += value[a2]
                    out[i + 3] += value[a3]
                    out[i + 4] += value[a4]
                    out[i + 5] += value[a5]
                    out[i + 6] += value[a6]
                    out[i + 7] += value[a7]
                    i += 8
                while i < hi:
                    a0 = root
                    for _ in range(steps):
                        a0 = nodes[a0, two + np.uint32(X[i, nodes[a0, 0]] > split[a0, 1])]
                    out[i] += value[a0]
                    i += 1
        return out

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False

#: numba's default "workqueue" threading layer aborts when two threads launch parallel kernels at
#: once: forests scored or fitted side by side on threads take turns (each launch uses every core).
KERNEL_LOCK = threading.Lock()

#: Fewest rows the compiled walk scores; fewer go through scikit-learn's trees (same scores up to rounding).
MIN_FLAT_ROWS = 2_000


def warm_up() -> None:
    """Load the compiled forest walk and start numba's threads, on a one-row forest.

    The first walk in a process pays for both (about 0.4 s, and a compilation where numba's
    cache is empty); ``fraudkit score`` calls this on a thread while it validates the batch.
    """
    if not HAVE_NUMBA:
        return
    nodes = np.zeros((1, 4), dtype=np.uint32)  # the argument types of _FlatForest.walk: one compiled version
    with KERNEL_LOCK:
        _forest_depths(np.zeros((1, 1), dtype=np.float32), np.zeros(1, np.uint32), np.zeros(1, np.int32), nodes,
                       nodes.view(np.float32), np.zeros(1))


class _FlatForest:
    """An isolation forest's trees flattened into arrays; scores equal ``IsolationForest.score_samples``.

    Each leaf holds what scikit-learn adds per tree (depth + average path length of the
    leaf's training samples − 1), so the score is ``2 ** (−Σ value / (T · c(max_samples)))``.
    """

    def __init__(self, forest: IsolationForest):
        from sklearn.ensemble._iforest import _average_path_length

        roots, depth, child, feature, threshold, value = [], [], [], [], [], []
        offset = 0
        for t, (tree, feats) in enumerate(zip(forest.estimators_, forest.estimators_features_)):
            tr = tree.tree_
            leaf = tr.children_left == -1
            nodes = np.arange(tr.node_count) + offset
            roots.append(offset)
            depth.append(tr.max_depth)
            child.append(np.stack([np.where(leaf, nodes, tr.children_left + offset),
                                   np.where(leaf, nodes, tr.children_right + offset)], axis=1).ravel())
            feature.append(np.where(leaf, 0, np.asarray(feats)[np.maximum(tr.feature, 0)]))
            threshold.append(np.where(leaf, np.inf, tr.threshold).astype(np.float64))
            value.append(forest._decision_path_lengths[t] + forest._average_path_length_per_tree[t] - 1.0)
            offset += tr.node_count
        self.roots, self.depth = np.asarray(roots, dtype=np.int32), np.asarray(depth, dtype=np.int32)
        self.child, self.feature = np.concatenate(child).astype(np.int32), np.concatenate(feature).astype(np.int32)
        self.threshold, self.value = np.concatenate(threshold), np.concatenate(value).astype(np.float64)
        self.denominator = len(forest.estimators_) * float(_average_path_length([forest._max_samples])[0])

    def packed(self) -> np.ndarray:
        """One int32 record per node: feature, threshold (float32 bits), left child, right child.

        The threshold is the largest float32 not above the float64 one: for a float32 ``x``,
        ``x > t32`` exactly when ``x > t64``, so the walk takes the same branches.
        """
        t32 = self.threshold.astype(np.float32)
        above = t32.astype(np.float64) > self.threshold
        t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
        nodes = np.empty((len(self.threshold), 4), dtype=np.int32)
        nodes[:, 0] = self.feature
        nodes[:, 1] = t32.view(np.int32)
        nodes[:, 2] = self.child[0::2]
        nodes[:, 3] = self.child[1::2]
        return nodes

    def walk(self, X: np.ndarray) -> np.ndarray:
        """Each row's sum over the trees of its leaf's value (path length), by the compiled walk;
        X float32, C-ordered."""
        nodes = self.packed().view(np.uint32)
        with KERNEL_LOCK:
            return _forest_depths(X, self.roots.astype(np.uint32), self.depth, nodes, nodes.view(np.float32), self.value)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """``IsolationForest.score_samples`` (negative anomaly score) of the rows of X.

        Rows that repeat are walked once (:func:`_distinct_rows`): a row's path depends on
        nothing but its own values, so the scores are the same bits.
        """
        X = np.ascontiguousarray(X, dtype=np.float32)  # the precision scikit-learn's trees split on
        distinct = _distinct_rows(X)
        depths = self.walk(X) if distinct is None else self.walk(distinct[0])[distinct[1]]
        if self.denominator == 0:
            return -np.ones(len(X))
        return -(2.0 ** (-depths / self.denominator))


#: Rows whose repeats are looked for, and the share of distinct rows below which only they are walked.
DISTINCT_SAMPLE, DISTINCT_BELOW = 20_000, 0.6


def _row_hashes(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a 2-D uint32 array (FNV-1a over its words), column by column."""
    h = np.full(len(words), 0xCBF29CE484222325, dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= np.uint64(0x100000001B3)
    return h


def _distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(D, position)`` with ``D[position]`` bit for bit ``X``, when under :data:`DISTINCT_BELOW` of
    the rows are distinct (many patients look alike: one claim, nothing odd), else None.

    Whether it pays is judged on :data:`DISTINCT_SAMPLE` evenly spaced rows first, so that a
    table of distinct rows (claims) costs one small hashing. Rows are told apart by their bits
    (hashes, then every row checked against the one standing for it), never by chance.
    """
    n = len(X)
    if n < 2 * MIN_FLAT_ROWS or X.ndim != 2 or X.shape[1] == 0:
        return None
    words = X.view(np.uint32)
    sample = words[:: max(1, n // DISTINCT_SAMPLE)]
    if len(pd.unique(_row_hashes(sample))) >= DISTINCT_BELOW * len(sample):
        return None
    position, _ = pd.factorize(_row_hashes(words))  # codes in order of first appearance
    first = np.flatnonzero(np.r_[True, position[1:] > np.maximum.accumulate(position)[:-1]])
    if len(first) >= DISTINCT_BELOW * n or not np.array_equal(words[first][position], words):
        return None  # few repeats after all, or two rows sharing a hash
    return np.ascontiguousarray(X[first]), position


def _clear_node_padding(forest: IsolationForest) -> None:
    """Zero the padding bytes of every tree's node records, in place.

    scikit-learn's node struct (64 bytes) has 7 bytes of padding that it never writes: they
    hold whatever the allocator left there, which differs from one thread or run to the next,
    so the pickled model (and its SHA-256 in the manifest) would differ while every field is
    the same. Copying the fields into zeroed records makes a saved model the same bytes for the
    same fit (``make model-check``).
    """
    for tree in forest.estimators_:
        state = tree.tree_.__getstate__()
        nodes = state["nodes"]
        clean = np.zeros(nodes.shape, dtype=nodes.dtype)
        for name in nodes.dtype.names:
            clean[name] = nodes[name]
        tree.tree_.__setstate__({**state, "nodes": clean})


def _default_features(entity: str) -> list[str]:
    from fraudkit.features import CLAIM_MODEL_FEATURES, PATIENT_MODEL_FEATURES, PROVIDER_MODEL_FEATURES

    return {"claim": CLAIM_MODEL_FEATURES, "patient": PATIENT_MODEL_FEATURES, "provider": PROVIDER_MODEL_FEATURES}[entity]


def _column_medians(values: np.ndarray) -> np.ndarray:
    """``np.nanmedian(values, axis=0)``, column by column of a column-major copy (2.5× faster on a
    million rows: no strided gathers), the same numbers."""
    cols = np.asfortranarray(values)
    return np.array([np.nanmedian(cols[:, j]) for j in range(cols.shape[1])], dtype=float)


#: Columns whose deviations :func:`_robust` holds at once.
_DEV_BLOCK = 4


def _robust(values: np.ndarray, floor: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust scale per column (1.4826·MAD, else 1.2533·mean absolute deviation, else 1),
    at least ``floor``."""
    if len(values) == 0:
        return np.zeros(values.shape[1]), np.maximum(np.ones(values.shape[1]), floor)
    center = np.nan_to_num(_column_medians(values))
    # the absolute deviations a few columns at a time, not as two more copies of a million-row table
    # (fresh memory costs time of its own); each column is reduced alone either way: the same numbers
    mad, mean_dev = np.empty(values.shape[1]), np.empty(values.shape[1])
    for j in range(0, values.shape[1], _DEV_BLOCK):
        dev = np.abs(values[:, j:j + _DEV_BLOCK] - center[j:j + _DEV_BLOCK])
        mad[j:j + _DEV_BLOCK], mean_dev[j:j + _DEV_BLOCK] = _column_medians(dev), np.nanmean(dev, axis=0)
    mad, mean_dev = 1.4826 * mad, 1.2533 * mean_dev
    scale = np.where(mad > 1e-9, mad, np.where(mean_dev > 1e-9, mean_dev, 1.0))
    return center, np.maximum(np.nan_to_num(scale, nan=1.0), floor)


#: Pseudo-rows of the overall scaling mixed into each peer group's (empirical Bayes, as the provider
#: features' PRIOR_CLAIMS): the robust centre and scale of a dozen hospitals of one tier are noisy,
#: and a provider the noise puts far out is isolated for it. Centre and variance are weighted
#: n / (n + 20) towards the group's own. Provider ranking over 10 batches (fraud planted by other
#: code, benchmarks/foreign.py seeds 1-4; default 300k seeds 7, 21, 23; hard 300k seeds 7, 22, 24):
#: mean precision@k 0.743 -> 0.755 (none lower, 4 higher), provider PR-AUC 0.822 -> 0.830; 10 and 40
#: pseudo-rows, or the scale alone, gained less; small groups falling back to the overall scaling
#: instead (a group's own below 30 rows) lost on the first six batches (0.733 -> 0.713).
PEER_PRIOR_ROWS = 20.0


def _learn_scaling(values: np.ndarray, groups: np.ndarray | None, floor: np.ndarray, min_group: int = 10):
    """Robust centre and scale of every column, overall and per peer group of at least ``min_group``
    rows (shrunk towards the overall ones by :data:`PEER_PRIOR_ROWS` pseudo-rows)."""
    center, scale = _robust(values, floor)
    peer = {}
    if groups is not None:
        for g in np.unique(groups):
            rows = groups == g
            n = int(rows.sum())
            if n >= min_group:
                own_center, own_scale = _robust(values[rows], floor)
                w = n / (n + PEER_PRIOR_ROWS)
                peer[g] = (w * own_center + (1 - w) * center, np.sqrt(w * own_scale ** 2 + (1 - w) * scale ** 2))
    return center, scale, peer


#: The strongest signal is measured against the scored rows themselves from this many rows on
#: (their robust scaling, from at most REFERENCE_SAMPLE evenly spaced rows).
MIN_REFERENCE_ROWS = 100
REFERENCE_SAMPLE = 100_000

#: Rows scaled at a time when scoring (IsolationForestDetector._scan).
SCAN_ROWS = 1 << 15


class IsolationForestDetector(BaseDetector):
    """Scikit-learn ``IsolationForest`` on a fraudkit feature table (claims, patients or providers).

    Before the forest, each feature is robustly scaled with fit-time statistics,
    ``z = (x − median) / scale`` (scale = 1.4826·MAD, or the mean absolute deviation
    where the MAD is 0; at least 1 for columns that are already calibrated z-scores,
    ``fraudkit.features.Z_UNITS``), clipped to its suspicious tail when the feature has a
    direction (``fraudkit.features.DIRECTIONS``: a cheap claim is no evidence of
    fraud). The harmless tail collapses to 0, so the forest's random splits fall in
    the suspicious tail only (measured: +0.05–0.1 PR-AUC over two-sided features).
    Score = the forest's anomaly score (``−IsolationForest.score_samples``, in (0, 1]),
    **higher = more suspicious**.

    Parameters
    ----------
    entity : {"claim", "patient", "provider"}, default="claim"
        What a row of the feature table is (its index holds the ids).
    features : list of str or None, default=None
        Columns to model; None = the entity's default model features that are present
        (``fraudkit.features.CLAIM_MODEL_FEATURES`` ...), else every numeric column.
    n_jobs : int or None, default=None
        Threads for fitting (scikit-learn) and scoring; None scores on all cores with the
        compiled forest walk (numba), which gives scikit-learn's scores exactly, ~2× faster per core.
    n_estimators, max_samples, max_features, random_state
        Passed to :class:`sklearn.ensemble.IsolationForest` untouched (``max_samples`` is capped
        at the number of rows). The default ``max_samples=2048`` (not scikit-learn's 256) lets
        signals carried by a fraction of a percent of claims (a line billed twice, a split stay)
        reach most trees' samples: a feature constant in a tree's sample is never split on, so
        the tree cannot see it (measured on default 200k: PR-AUC 0.48 with 256, 0.54 with 1024-2048).
    one_sided : bool, default=True
        Ignore the harmless tail of directed features.
    peer_column : str, None or "auto", default="auto"
        Column of X holding a peer group (e.g. provider type × tier): the robust scaling
        is then learned per group (groups of fewer than 10 rows use the overall
        statistics), so that a hospital is compared with hospitals, not with pharmacies.
        "auto" = ``peer_group`` when X has it.
    contamination, budget
        See :class:`fraudkit.detectors.BaseDetector`.

    Attributes
    ----------
    features_ : list of str
        Columns modelled.
    center_, scale_ : ndarray
        Fit-time robust location and scale per feature.
    forest_ : IsolationForest
    decision_scores_, threshold_
        As in :class:`BaseDetector`.

    Examples
    --------
    >>> from fraudkit.features import FeatureBuilder, make_toy_batch
    >>> batch, labels = make_toy_batch(2000, seed=2)
    >>> table = FeatureBuilder().fit_transform(batch).claims
    >>> det = IsolationForestDetector(random_state=0).fit(table)
    >>> scores = det.scores(table)
    >>> det.explain(table.loc[[scores.idxmax()]], top=2).columns.tolist()
    ['id', 'rank', 'feature', 'value', 'contribution', 'reason']
    """

    def __init__(self, entity: str = "claim", features: list[str] | None = None, n_estimators: int = 200,
                 max_samples: int | float | str = 2048, max_features: float = 1.0, one_sided: bool = True,
                 peer_column: str | None = "auto", contamination: float = 0.05, budget: int | None = None,
                 random_state=None, n_jobs: int | None = None):
        super().__init__(contamination=contamination, budget=budget)
        self.entity = entity
        self.features = features
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.one_sided = one_sided
        self.peer_column = peer_column
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ contract
    def _fit(self, X) -> np.ndarray:
        if self.entity not in ENTITIES:
            raise ValueError(f"entity must be one of {ENTITIES}, got {self.entity!r}")
        X = self._check_frame(X)
        if self.features is not None:
            missing = [c for c in self.features if c not in X.columns]
            if missing:
                raise ValueError(f"feature table lacks the columns {missing}")
            cols = list(self.features)
        else:
            cols = [c for c in _default_features(self.entity) if c in X.columns]
            if len(cols) < 2:
                cols = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        if not cols:
            raise ValueError("no numeric feature columns to model")
        from fraudkit.features import DIRECTIONS

        self.features_ = cols
        self.n_features_in_ = len(cols)
        values = self._matrix(X)
        floor = self._scale_floor()
        self.peer_column_ = ("peer_group" if "peer_group" in X.columns else None) if self.peer_column == "auto" else self.peer_column
        groups = X[self.peer_column_].to_numpy() if self.peer_column_ is not None else None
        self.center_, self.scale_, self.peer_stats_ = _learn_scaling(values, groups, floor)
        del values  # the trees' input is read from the table again, a block at a time (_scan)
        self.direction_ = np.array([DIRECTIONS.get(c, 0) if self.one_sided else 0 for c in cols])
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, max_samples=self._max_samples(len(X)),
                                       max_features=self.max_features, random_state=self.random_state, n_jobs=self.n_jobs)
        t = self._scan(X, forest=True)[0]  # float32, as scikit-learn's trees take it: no copy in fit or in the walk
        self.forest_.fit(t)
        _clear_node_padding(self.forest_)
        self.flat_forest_ = _FlatForest(self.forest_) if HAVE_NUMBA else None
        return -self._forest_scores(t)

    def _score(self, X) -> np.ndarray:
        X = self._check_frame(X)
        if len(X) == 0:
            return np.empty(0)
        return -self._forest_scores(self._scan(X, forest=True)[0])

    def strongest_signal(self, X) -> pd.Series:
        """Per row, its largest robust deviation in a suspicious tail, among the rows scored.

        A forest dilutes one strong signal among many features: a provider billing an item
        twice on 8 % of its claims (z +18 against its peers) and unremarkable otherwise is
        isolated little faster than one mildly odd everywhere. This score keeps that one
        signal, as a second detector beside the forest (``claim_signals`` and
        ``provider_signals`` in :data:`fraudkit.pipeline.DEFAULT_WEIGHTS`).

        The deviation is measured against the rows scored (their robust centre and scale per
        feature, and per peer group, as :meth:`fit` learns them; from ``MIN_REFERENCE_ROWS``
        rows on): a feature shifted in a whole batch (drift, counts that grow with the batch's
        size) is then nobody's strongest signal. The forest keeps the fit-time scaling. On the
        batch the model was fitted on, both scalings agree.
        """
        return self.scores_with_signal(X)[1]

    def scores_with_signal(self, X, scaling="batch", fitted: bool = False) -> tuple[pd.Series, pd.Series]:
        """:meth:`scores` and :meth:`strongest_signal` of ``X`` from one read of the matrix.

        ``scaling``: what the signal is measured against, ``"batch"`` (:meth:`signal_scaling`
        of ``X``) or one already taken from a whole batch of which ``X`` is a part (None = the
        fit-time scaling), so that partitions scored apart give the whole batch's signal.
        ``fitted=True`` says ``X`` is the very table :meth:`fit` learnt from: its scores are then
        ``decision_scores_`` (the same bits; the forest is not walked again).
        """
        X = self._check_frame(X)
        check_is_fitted(self, "features_")
        ids = self.sample_ids(X)
        if fitted and len(self.decision_scores_) != len(X):
            raise ValueError(f"fitted=True, but X has {len(X):,} rows and the fitted table {len(self.decision_scores_):,}")
        if isinstance(scaling, str) and scaling == "batch":
            scaling = self.signal_scaling(X)
        t, signal = self._scan(X, forest=not fitted, signal=True, scaling=scaling)
        scores = self.decision_scores_ if fitted else -self._forest_scores(t) if len(X) else np.empty(0)
        return (pd.Series(scores, index=ids, name=type(self).__name__),
                pd.Series(signal, index=ids, name="strongest_signal"))

    def signal_scaling(self, X):
        """The scaling the strongest signal of ``X`` is measured against: ``X``'s own robust centre and
        scale (overall and per peer group) from at most ``REFERENCE_SAMPLE`` evenly spaced rows, or
        None (the fit-time scaling) below ``MIN_REFERENCE_ROWS`` rows."""
        rows = self.signal_sample_rows(len(X))
        return None if rows is None else self.scaling_of_sample(X.iloc[rows])

    @staticmethod
    def signal_sample_rows(n_rows: int) -> np.ndarray | None:
        """The rows :meth:`signal_scaling` of a table of ``n_rows`` rows learns from (evenly spaced:
        deterministic), or None below ``MIN_REFERENCE_ROWS`` rows."""
        return None if n_rows < MIN_REFERENCE_ROWS else np.arange(0, n_rows, -(-n_rows // REFERENCE_SAMPLE))

    def scaling_of_sample(self, sample: pd.DataFrame):
        """:meth:`signal_scaling` learnt from the rows it samples (:meth:`signal_sample_rows`), wherever they were read."""
        groups = sample[self.peer_column_].to_numpy() if self.peer_column_ is not None else None
        return _learn_scaling(self._matrix(sample), groups, self._scale_floor())

    def _scale_floor(self) -> np.ndarray:
        """Least robust scale per feature: a column already in z units keeps at least its own unit
        (see fraudkit.features.Z_UNITS)."""
        from fraudkit.features import Z_UNITS

        return np.array([1.0 if c in Z_UNITS else 0.0 for c in self.features_])

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Per row, the ``top`` features farthest in their suspicious tail, with a sentence each.

        ``contribution`` is the feature's robust deviation ``|z|`` in its suspicious tail
        (the quantity the forest splits on); only features with a positive contribution
        are listed, so a row may get fewer than ``top`` reasons.
        """
        from fraudkit.features import describe

        X = self._check_frame(X)
        if len(X) == 0:
            return pd.DataFrame(columns=EXPLAIN_COLUMNS)
        t = np.abs(self._scaled(self._matrix(X), X))
        k = min(top, t.shape[1])
        order = np.argsort(-t, axis=1, kind="stable")[:, :k]
        contrib = np.take_along_axis(t, order, axis=1)
        rows, ranks = np.nonzero(contrib > 1e-9)
        feats = np.asarray(self.features_)[order[rows, ranks]]
        records = X.iloc[np.unique(rows)].to_dict("records")
        by_row = dict(zip(np.unique(rows).tolist(), records))
        reasons = [describe(f, by_row[r]) for r, f in zip(rows.tolist(), feats.tolist())]
        values = X[self.features_].to_numpy(dtype=float)[rows, order[rows, ranks]]
        return pd.DataFrame({
            "id": X.index.to_numpy()[rows], "rank": ranks + 1, "feature": feats, "value": values,
            "contribution": contrib[rows, ranks], "reason": reasons,
        }, columns=EXPLAIN_COLUMNS)

    # ------------------------------------------------------------------ helpers
    def _check_frame(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} takes a feature DataFrame indexed by {self.entity}_id, "
                            f"got {type(X).__name__}")
        if hasattr(self, "features_"):
            missing = [c for c in self.features_ if c not in X.columns]
            if missing:
                raise ValueError(f"feature table lacks the columns {missing} seen at fit")
        return X

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.features_].to_numpy(dtype=float, na_value=np.nan)

    def _scan(self, X: pd.DataFrame, forest: bool, signal: bool = False, scaling=None) -> tuple:
        """One pass over the rows of X, :data:`SCAN_ROWS` at a time: the forest's input (the fit-time
        robust z of every feature, float32, the precision its trees split on) if ``forest``, and each
        row's largest ``|z|`` under ``scaling`` (None = the fit-time one; see :meth:`scores_with_signal`)
        if ``signal``. Either is None when not asked for.

        Block by block, elementwise, so the same bits as scaling the whole matrix at once, without
        its float64 copies (two of 190 MB for a million claims): memory a process touches for the
        first time costs more than the arithmetic on it.
        """
        n = len(X)
        t = np.empty((n, len(self.features_)), dtype=np.float32) if forest else None
        strongest = np.empty(n) if signal else None
        for lo in range(0, n, SCAN_ROWS):
            part = X.iloc[lo:lo + SCAN_ROWS]
            values = self._matrix(part)
            z = self._scaled(values, part) if forest or (signal and scaling is None) else None
            if forest:
                t[lo:lo + len(part)] = z
            if signal:
                if scaling is not None:
                    z = self._scaled(values, part, scaling)
                np.abs(z, out=z)  # as explain's contribution
                strongest[lo:lo + len(part)] = z.max(axis=1, initial=0.0)
        return t, strongest

    def _scaled(self, values: np.ndarray, X: pd.DataFrame, scaling=None) -> np.ndarray:
        """Robust z of every value (fit-time scaling unless ``scaling`` = (centre, scale, per-group))."""
        center, scale, peer_stats = scaling or (self.center_, self.scale_, getattr(self, "peer_stats_", None))
        # broadcast instead of materialising n×k centre and scale matrices (same bits, ~16× faster at 1M)
        z = values - center
        z /= scale
        if peer_stats:
            groups = X[self.peer_column_].to_numpy()
            for g, (c, s) in peer_stats.items():
                rows = groups == g
                if rows.any():
                    z[rows] = (values[rows] - c) / s
        z[np.isnan(z)] = 0.0
        up = np.broadcast_to(np.asarray(self.direction_) > 0, z.shape)
        np.maximum(z, 0.0, out=z, where=up)
        return z

    def _forest_scores(self, t: np.ndarray) -> np.ndarray:
        flat = getattr(self, "flat_forest_", None)
        # (a part of a table scored apart walks as the whole table would: the Dask engine sets _flat_from)
        if flat is not None and HAVE_NUMBA and len(t) >= getattr(self, "_flat_from", MIN_FLAT_ROWS):
            if self.n_jobs is None or self.n_jobs < 1:  # None / -1: numba's threads (all cores)
                return flat.score_samples(t)
            before = _numba.get_num_threads()
            _numba.set_num_threads(min(int(self.n_jobs), _numba.config.NUMBA_NUM_THREADS))
            try:
                return flat.score_samples(t)
            finally:
                _numba.set_num_threads(before)
        return self.forest_.score_samples(t)

    def _max_samples(self, n: int):
        if isinstance(self.max_samples, (int, np.integer)) and not isinstance(self.max_samples, bool):
            return int(min(self.max_samples, max(n, 1)))
        return self.max_samples
