"""The scoring pipeline: features → detectors → graph → prioritisation, as one model.

A :class:`FraudModel` is what ``fraudkit train`` fits, MLflow logs and registers, and
``fraudkit score`` applies. Fitting learns the feature statistics (peer medians,
catalogue prices) and the isolation forests on a training batch; the graph
detectors are transductive (dense blocks and rings exist in the batch being
scored), so the model stores their settings and runs them on each scored batch.

Model files are pickles, and a pickle is code: :func:`load_model` refuses any file
whose SHA-256 does not match the manifest written beside it by :func:`save_model`.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import joblib
import numpy as np
import pandas as pd

from fraudkit import __version__
from fraudkit.detectors import IsolationForestDetector, rollup
from fraudkit.detectors._base import group_rollup
from fraudkit.errors import FraudkitError, ModelError
from fraudkit.features import FeatureBuilder
from fraudkit.graph import ClaimsNetwork, DenseBlockDetector, EgonetDetector, PropagationDetector, RingDetector
from fraudkit.io import Batch, atomic_dir
from fraudkit.prioritise import combine_scores, rank_providers, schemes_from_reasons

#: Default weight of each detector in the combination (Fisher weights; 0 switches one off).
#: egonet and patient_outliers are off by default: at provider level they ranked fraud no
#: better than chance on default, hard and toy batches (precision@k 0.06-0.14), and in a
#: Fisher sum a detector that sees nothing dilutes the ones that do. The provider forest weighs
#: double and the claim roll-up half: the forest reads every provider-level signal as a
#: significance, the roll-up only the share of top claims (precision@k on default 1M, hard 1M,
#: default 300k, hard 300k: 0.79, 0.53, 0.74, 0.73 with weights 1 and 1; 0.85, 0.56, 0.78, 0.73 with 2 and 0.5).
#: Dense blocks weigh half: a block holds a ring's or a bussed cohort's claims among many of its
#: members' ordinary ones, so at claim level it flags those too. Weight 1 -> 0.5, precision@k /
#: claim PR-AUC: default 300k 0.71 / 0.67 -> 0.78 / 0.70, hard 300k 0.74 / 0.33 -> 0.74 / 0.34,
#: fraud planted by other code (benchmarks/foreign.py seeds 1, 2) claim PR-AUC 0.10 / 0.15 ->
#: 0.17 / 0.22 at the same precision@k; default and hard 1M unchanged (0.91 / 0.58, 0.65 / 0.15).
#: provider_signals (each provider's strongest single signal, which the forest dilutes among its
#: features; see IsolationForestDetector.strongest_signal) at weight 1, precision@k on default
#: 300k 0.78 -> 0.84, hard 300k 0.60 -> 0.66, fraud planted by other code (foreign.py seeds 1, 2)
#: 0.70 / 0.70 -> 0.75 / 0.65; the foreign batch's actors ranked in the top k before any fraud was
#: planted (the clean control) 0.30 -> 0.15. claim_signals, the same beside the claim forest at
#: weight 1: claim PR-AUC on default 300k 0.70 -> 0.80, hard 300k 0.31 -> 0.44, foreign seeds 1-4
#: 0.17-0.22 -> 0.24-0.30 (claim recall in the top 5 %: 0.70 -> 0.83, 0.49 -> 0.84, 0.53-0.60 ->
#: 0.59-0.64); 0.5 and 2 did worse on default. The signal is measured against the scored batch:
#: with the fit-time scaling it cost the shipped model on other batches (default 300k 0.54 -> 0.49),
#: against the batch it gains there too (0.54 -> 0.67; hard 0.19 -> 0.28, foreign seed 1 0.08 -> 0.15).
DEFAULT_WEIGHTS = {
    "claim_features": 1.0,
    "patient_features": 1.0,
    "provider_features": 2.0,
    "provider_signals": 1.0,
    "claim_signals": 1.0,
    "claim_outliers": 0.5,
    "patient_outliers": 0.0,
    "dense_blocks": 0.5,
    "rings": 1.0,
    "egonet": 0.0,
    "propagation": 1.0,
}

#: Forest -> the detector of its strongest single signal (IsolationForestDetector.strongest_signal).
SIGNAL_DETECTORS = {"claim_features": "claim_signals", "provider_features": "provider_signals"}

GRAPH_DETECTORS = {
    "dense_blocks": DenseBlockDetector,
    "rings": RingDetector,
    "egonet": EgonetDetector,
    "propagation": PropagationDetector,
}

#: From this many claims ``score`` (with ``executor="auto"``) analyses the graph in a worker
#: process, beside the features and forests, when the machine has a second core. Below it the
#: worker's start (about 2 s of imports, once per session) costs more than the overlap saves.
GRAPH_WORKER_FROM_CLAIMS = 200_000

#: Peak memory of ``fraudkit score`` per million claims, the process and its graph worker together
#: (``make bench`` at 1M, benchmarks/results.md): with the model as given, and refitting first.
SCORE_GB_PER_MILLION_CLAIMS = {"as given": 3.5, "refit": 3.8}

Progress = Callable[[str], None]


def score_memory_gb(n_claims: int, refit: bool) -> float:
    """About how much memory (GB) scoring ``n_claims`` claims takes (it grows linearly with the batch).

    >>> round(score_memory_gb(10_000_000, refit=False))
    35
    """
    return 0.3 + n_claims / 1e6 * SCORE_GB_PER_MILLION_CLAIMS["refit" if refit else "as given"]


@dataclass
class ModelConfig:
    """Everything that defines a model, as data (a YAML file maps onto it one to one).

    Parameters
    ----------
    seed : int
        Seed of every random choice (isolation forests, graph communities).
    flag_share : float
        Share of claims flagged as suspicious (their fund_paid counts as money at stake).
    claim_forest, patient_forest, provider_forest : dict
        Keyword arguments of :class:`fraudkit.detectors.IsolationForestDetector` per level.
        Fewer than ~2,048 samples per tree hide signals carried by a fraction of a percent
        of claims (claim PR-AUC 0.48 at 256 vs 0.54 at 2,048 on default).
    graph : dict
        Graph detector name -> keyword arguments; a detector missing here is not run.
    weights : dict
        Detector name -> weight in the combination (see :mod:`fraudkit.prioritise`).
    provider_weights : dict
        Detector name -> its weight in the providers' combination where it differs from
        ``weights``. Rings weigh 2 there (1 for claims): a ring's third member, often a small
        pharmacy, ranked just outside the budget, and at claim level a larger weight costs
        (fraud planted by other code, ``benchmarks/foreign.py`` seeds 1-4, refitted: precision@20
        0.75, 0.70, 0.70, 0.65 -> 0.75, 0.70, 0.80, 0.70, provider PR-AUC 0.80 -> 0.84; default
        and hard 300k and 1M unchanged; rings at 2 for claims too cost claim PR-AUC 0.80 -> 0.71).
    fences : dict
        Detector name -> Tukey factor: its scores count as evidence only above ``Q3 + f·IQR``
        (see :func:`fraudkit.prioritise.combine_scores`). Graph detectors are fenced by default,
        and so is the patient's score when it is lent to the patient's claims: only a clearly
        abnormal patient (card lending, reselling) makes its claims suspicious (claim PR-AUC on
        default 0.48 -> 0.65, hard 0.10 -> 0.14).
    peer_groups : bool
        Compare providers only with providers of the same type when combining. Off by
        default: the provider features are already scaled within peer groups, and ranking
        within types forces every type to the same share of suspects (precision@k on
        default / hard / toy batches: 0.54 / 0.41 / 0.4 with, 0.66 / 0.62 / 1.0 without).
    explain_claims : int
        At most this many flagged claims get written reasons (most suspicious first).
    """

    seed: int = 0
    flag_share: float = 0.05
    claim_forest: dict = field(default_factory=lambda: {"n_estimators": 200, "max_samples": 2048})
    patient_forest: dict = field(default_factory=lambda: {"n_estimators": 200, "max_samples": 2048})
    provider_forest: dict = field(default_factory=lambda: {"n_estimators": 300, "max_samples": 2048})
    graph: dict = field(default_factory=lambda: {"dense_blocks": {}, "rings": {}, "egonet": {}, "propagation": {}})
    weights: dict = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    provider_weights: dict = field(default_factory=lambda: {"rings": 2.0})
    fences: dict = field(default_factory=lambda: {"dense_blocks": 3.0, "rings": 3.0, "egonet": 3.0,
                                                  "patient_features": 3.0})
    peer_groups: bool = False
    explain_claims: int = 20000

    def __post_init__(self):
        # weights given in part (``ModelConfig(weights={"rings": 2.0})``) keep the other defaults,
        # rather than a weight of 1 for every detector left out (combine_scores' default)
        self.weights = {**DEFAULT_WEIGHTS, **dict(self.weights or {})}

    @classmethod
    def from_dict(cls, data: dict | None, source: str = "config") -> "ModelConfig":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FraudkitError(f"{source}: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(known))}")
        config = cls(**{k: v for k, v in data.items()})
        unknown_graph = sorted(set(config.graph) - set(GRAPH_DETECTORS))
        if unknown_graph:
            raise FraudkitError(f"{source}: graph detector {unknown_graph[0]!r} is unknown; use {', '.join(GRAPH_DETECTORS)}")
        unknown_w = sorted(set(config.weights) - set(DEFAULT_WEIGHTS))
        if unknown_w:
            raise FraudkitError(f"{source}: weight {unknown_w[0]!r} names no detector; use {', '.join(DEFAULT_WEIGHTS)}")
        unknown_p = sorted(set(config.provider_weights) - set(DEFAULT_WEIGHTS))
        if unknown_p:
            raise FraudkitError(f"{source}: provider weight {unknown_p[0]!r} names no detector; use {', '.join(DEFAULT_WEIGHTS)}")
        unknown_f = sorted(set(config.fences) - set(DEFAULT_WEIGHTS))
        if unknown_f:
            raise FraudkitError(f"{source}: fence {unknown_f[0]!r} names no detector; use {', '.join(DEFAULT_WEIGHTS)}")
        if not 0 < float(config.flag_share) < 1:
            raise FraudkitError(f"{source}: flag_share must be between 0 and 1, got {config.flag_share!r}")
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ModelConfig":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FraudkitError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise FraudkitError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if data is not None and not isinstance(data, dict):
            raise FraudkitError(f"config file {path} must hold a mapping of keys to values")
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ScoreResult:
    """What scoring a batch gives: ranked providers, scored claims and patients, reasons, evidence.

    Attributes
    ----------
    providers : DataFrame
        Ranked, see :data:`fraudkit.prioritise.PROVIDER_COLUMNS`; ``inspect`` marks the top k.
    claims : DataFrame
        Every claim: ids, care_type, dates, diagnosis, money, ``peer_median_total``,
        ``suspicion``, ``flagged``, ``reasons`` (flagged claims only) and one ``score_*`` column per detector.
    patients : DataFrame
        Every patient with ``suspicion``, claims, fund_paid and reasons.
    reasons : DataFrame
        Long table of provider reasons: ``id, detector, rank, feature, value, contribution, reason, strength``.
    blocks : list of dict
        Dense blocks found (members, density, money).
    summary : dict
        Counts, money and settings of the run (no timings, so reruns give identical files).
    """

    providers: pd.DataFrame
    claims: pd.DataFrame
    patients: pd.DataFrame
    reasons: pd.DataFrame
    blocks: list
    summary: dict

    def top(self, k: int | None = None) -> pd.DataFrame:
        """The k providers to inspect first (the run's budget by default)."""
        return self.providers.head(k if k is not None else self.summary["inspections"])

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write providers.csv, claims.parquet, patients.parquet and summary.json into ``folder``."""
        folder = Path(folder)
        paths = {
            "providers": folder / "providers.csv",
            "claims": folder / "claims.parquet",
            "patients": folder / "patients.parquet",
            "summary": folder / "summary.json",
        }
        self.providers.to_csv(paths["providers"], index=False, float_format="%.6g")
        self.claims.to_parquet(paths["claims"], index=False, compression="zstd")
        self.patients.to_parquet(paths["patients"], index=False, compression="zstd")
        paths["summary"].write_text(json.dumps(self.summary, indent=2, sort_keys=True, default=str) + "\n")
        return paths


class FraudModel:
    """The whole scoring pipeline as one fitted object.

    Parameters
    ----------
    config : ModelConfig, optional

    Examples
    --------
    >>> from fraudkit.synthetic import Scenario, generate
    >>> batch, labels = generate(Scenario.from_yaml("synthetic/tiny.yaml"), seed=1)
    >>> result = FraudModel().fit(batch).score(batch, inspections=5)
    >>> list(result.top().columns[:3])
    ['rank', 'provider_id', 'provider_type']
    """

    def __init__(self, config: ModelConfig | None = None):
        self.config = config or ModelConfig()

    # ------------------------------------------------------------------ fit
    def fit(self, batch: Batch, progress: Progress | None = None, outcomes=None) -> "FraudModel":
        """Learn the feature statistics and isolation forests on ``batch``.

        ``outcomes`` (:class:`fraudkit.outcomes.Outcomes` of this batch's past inspections) are
        kept with the model (attribute ``outcomes_``, only then): the verdicts, not a fitted
        re-ranker. Scoring any batch merges them with the outcomes it is given, keeps those about
        providers the batch still holds, and retrains the re-ranker and propagation on that batch
        (``score(outcomes=)``). A refit (:meth:`adapted`) keeps them too.
        """
        step = progress or (lambda stage: None)
        cfg = self.config
        if outcomes is not None:
            self.outcomes_ = outcomes
        step("features")
        self.features_ = FeatureBuilder()
        features = self.features_.fit_transform(batch)
        self._fitted_features = (weakref.ref(batch), features)  # scoring the same batch next reuses them
        step("isolation forests")

        def forest(level: str, params: dict) -> IsolationForestDetector:
            det = IsolationForestDetector(entity=level, random_state=cfg.seed, contamination=cfg.flag_share, **params)
            return det.fit(getattr(features, f"{level}s"))

        # the patients' and providers' forests grow on a second thread beside the claims' (tree
        # building and the compiled walk release the GIL; each forest is the same bits either way)
        with ThreadPoolExecutor(max_workers=1) as pool:
            others = [pool.submit(forest, level, params) for level, params in
                      (("patient", cfg.patient_forest), ("provider", cfg.provider_forest))]
            claim = forest("claim", cfg.claim_forest)
            self.detectors_ = {"claim_features": claim, "patient_features": others[0].result(),
                               "provider_features": others[1].result()}
        self.trained_on_ = {"source": batch.source, "claims": int(len(batch.claims)), "providers": int(len(batch.providers))}
        return self

    def _features_of(self, batch: Batch):
        """The batch's feature tables, and whether they are those ``fit`` computed and learnt from
        (when it was fitted on this very batch: the forests' ``decision_scores_`` then score them)."""
        _, features = getattr(self, "_fitted_features", (None, None))
        fitted = self.fitted_on(batch)
        self._fitted_features = (None, None)  # used once: a batch scored again is transformed again
        if fitted:
            return features, True
        return self.features_.transform(batch), False

    def fitted_on(self, batch: Batch) -> bool:
        """Whether this model was just fitted on this very batch (and not yet scored it): scoring it
        then reads the feature tables ``fit`` computed instead of transforming the batch again."""
        ref, _ = getattr(self, "_fitted_features", (None, None))
        return ref is not None and ref() is batch

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_fitted_features", None)  # transients of fit and adapted, never saved with the model
        state.pop("_graph_job", None)
        return state

    # ------------------------------------------------------------------ adapting to a batch
    #: Below this share of known item lines (or diagnoses), ``refit="auto"`` learns from the batch.
    REFIT_BELOW = 0.5
    #: From this many claims, ``refit="auto"`` learns from the batch too: a batch that large is its
    #: own reference (every peer group well filled), and refitted statistics follow its prices and
    #: stays where the shipped ones have gone stale. Measured with the shipped model against a refit
    #: (precision@k, claim PR-AUC): default 300k 0.71 / 0.54 against 0.71 / 0.67; hard 300k (drift)
    #: 0.56 / 0.28 against 0.74 / 0.33; fraud planted by other code (benchmarks/foreign.py, seeds 1
    #: and 2) 0.60 / 0.06 against 0.70 / 0.10-0.15. Lowered from 50,000 to 30,000: at 30k the refit
    #: ranked providers as well or better on default and hard (seeds 21, 22: precision@k 0.77 / 0.74
    #: against 0.74 / 0.76 and 0.68 / 0.74 against 0.71 / 0.77, claim PR-AUC level) and on a 40k
    #: foreign batch (seeds 5, 6: 0.70 both, claim PR-AUC 0.27 / 0.35 against 0.34 / 0.41); at 15k
    #: its claim PR-AUC fell on default and hard (0.84 -> 0.78, 0.71 -> 0.62: peer groups too thin).
    REFIT_FROM_CLAIMS = 30_000

    def known_share(self, batch: Batch) -> float:
        """Share of the batch's item lines whose item code the fitted statistics know.

        Without item lines, the share of claims whose ICD-10 category they know. A batch coded
        with another catalogue (another insurer's codes) scores low: the reference prices and
        typical items learnt at fit time say nothing about it.
        """
        builder = self.features_
        if len(batch.items):
            return float(batch.items["item_code"].isin(builder.code_vocab_).mean())
        categories = batch.claims["diagnosis"].astype(str).str[:3]
        return float(categories.isin(builder.dx_vocab_).mean()) if len(categories) else 1.0

    def adapted(self, batch: Batch, refit: str = "auto", progress: Progress | None = None) -> tuple["FraudModel", str]:
        """The model to score ``batch`` with, and a note saying which one and why.

        Parameters
        ----------
        refit : {"auto", "always", "never"}
            ``"never"``: this model as it is. ``"always"``: the same configuration fitted on
            ``batch`` itself (the detectors are unsupervised, so a batch can be its own reference:
            every claim is then compared with its peers in that batch). ``"auto"``: refit when the
            batch has at least :attr:`REFIT_FROM_CLAIMS` claims, or when the model knows less than
            :attr:`REFIT_BELOW` of its codes (:meth:`known_share`: on a batch from another
            catalogue the shipped model scored precision@k 0.6, refitted 1.0); a smaller batch
            (one provider's month) is scored with the model's own statistics.
        """
        if refit not in ("auto", "always", "never"):
            raise FraudkitError(f"refit must be auto, always or never, got {refit!r}")
        if not hasattr(self, "features_"):
            raise ModelError("this model is not fitted; train it first (fraudkit train)")
        share, n = self.known_share(batch), len(batch.claims)
        if refit == "never" or (refit == "auto" and share >= self.REFIT_BELOW and n < self.REFIT_FROM_CLAIMS):
            return self, ""
        why = (", as asked (--refit always)" if refit == "always" else
               f": the model knows only {share:.0%} of its item codes (refit below {self.REFIT_BELOW:.0%})"
               if share < self.REFIT_BELOW else
               f": with {n:,} claims the batch is its own reference (from {self.REFIT_FROM_CLAIMS:,}; "
               "--refit never keeps the model's)")
        refitted = FraudModel(self.config)
        refitted._start_graph(batch, keep=True)  # score's graph analyses, in the worker while this process refits
        refitted.fit(batch, progress=progress, outcomes=getattr(self, "outcomes_", None))
        return refitted, f"the model's statistics were learnt from this batch itself{why}"

    # ------------------------------------------------------------------ score
    def score(
        self,
        batch: Batch,
        *,
        inspections: int = 20,
        region: str | None = None,
        provider_type: str | None = None,
        seeds: dict | None = None,
        outcomes=None,
        progress: Progress | None = None,
        executor="auto",
    ) -> ScoreResult:
        """Score a batch and rank its providers for ``inspections`` flight inspections.

        ``seeds`` (``{"providers": [...], "patients": [...]}``) are confirmed fraudulent
        actors from past inspections; they seed the propagation detector, which is
        skipped without them.

        ``outcomes`` (:class:`fraudkit.outcomes.Outcomes`, merged with any kept by ``fit``) seed
        propagation when ``seeds`` is not given, train the supervised re-ranker (column
        ``score_reranker``, see :mod:`fraudkit.outcomes`) and move already-inspected providers
        after the others (columns ``inspected``, ``outcome``). Without outcomes nothing changes.

        ``executor`` is where the graph detectors analyse the network while this process builds
        the features and runs the forests: ``"auto"`` (a worker process from
        :data:`GRAPH_WORKER_FROM_CLAIMS` claims on a machine with a second core, else here),
        ``None`` (here, after the forests), or anything with ``submit(fn, *args)`` returning a
        future (a :mod:`concurrent.futures` executor, a ``distributed.Client``). The results
        are the same bits wherever the analysis runs.
        """
        if outcomes is not None or getattr(self, "outcomes_", None) is not None:
            from fraudkit.outcomes import merge_outcomes

            outcomes = merge_outcomes(getattr(self, "outcomes_", None), outcomes, batch)
            if seeds is None and outcomes is not None:
                seeds = outcomes.seeds()
        if not hasattr(self, "features_"):
            raise ModelError("this model is not fitted; train it first (fraudkit train)")
        step = progress or (lambda stage: None)
        step("features")
        network, graph_detectors, pending = self._start_graph(batch, seeds, executor)
        try:
            features, fitted = self._features_of(batch)
            return self._score(batch, network, graph_detectors, pending, features=features, fitted=fitted,
                               inspections=inspections, region=region, provider_type=provider_type,
                               seeds=seeds, outcomes=outcomes, step=step)
        finally:
            if pending is not None:
                pending.cancel()

    def _start_graph(self, batch: Batch, seeds: dict | None = None, executor="auto", keep: bool = False) -> tuple:
        """The claims network, the graph detectors to run and their analyses under way (or None).

        Those :meth:`adapted` started (``keep=True``) for this very batch while refitting are taken
        over when the detectors are the same (no propagation seeds since); otherwise they start now."""
        started = self.__dict__.pop("_graph_job", None)  # used once
        wanted = self._graph_detectors(seeds)
        if started is not None and started.batch() is batch and _same_detectors(started.detectors, wanted):
            return started.network, started.detectors, started.pending
        if started is not None and started.pending is not None:
            started.pending.cancel()
        network = ClaimsNetwork.from_batch(batch)
        pending = _submit_graph(executor, network, wanted)
        if keep:
            self._graph_job = _GraphJob(weakref.ref(batch), network, wanted, pending)
        return network, wanted, pending

    def _graph_detectors(self, seeds: dict | None) -> dict:
        """The graph detectors ``score`` runs, by name, unfitted (propagation only with seeds)."""
        cfg = self.config
        detectors = {}
        for name, params in cfg.graph.items():
            if cfg.weights.get(name, 0) <= 0:
                continue
            params = dict(params or {})
            if name == "propagation":
                if not seeds or not any(seeds.values()):
                    continue
                params.setdefault("seeds", [*seeds.get("providers", []), *seeds.get("patients", [])])
            det = GRAPH_DETECTORS[name](**params)
            for seed_param in ("random_state", "seed"):
                if seed_param in det.get_params() and seed_param not in params:
                    det.set_params(**{seed_param: cfg.seed})
            detectors[name] = det
        return detectors

    def _score(self, batch, network, graph_detectors, pending, *, features, fitted, inspections, region, provider_type,
               seeds, outcomes, step) -> ScoreResult:
        cfg = self.config
        claims = batch.claims
        step("isolation forests")
        claim_cols: dict[str, pd.Series] = {}
        patient_cols: dict[str, pd.Series] = {}
        provider_cols: dict[str, pd.Series] = {}
        for name, det in self.detectors_.items():
            table = getattr(features, f"{det.entity}s")
            target = {"claim": claim_cols, "patient": patient_cols, "provider": provider_cols}[det.entity]
            signal = SIGNAL_DETECTORS.get(name)
            if signal is not None and cfg.weights.get(signal, 0) > 0:  # the forest's strongest single signal beside it
                target[name], target[signal] = det.scores_with_signal(table, fitted=fitted)
            elif fitted:  # the table the forest learnt from: its training scores, the same bits
                target[name] = pd.Series(det.decision_scores_, index=det.sample_ids(table), name=type(det).__name__)
            else:
                target[name] = det.scores(table)
        # A claim by a suspicious patient is suspicious (card lending, reselling are patient schemes).
        claim_index = pd.Index(claims["claim_id"])
        patient_index = pd.Index(batch.patients["patient_id"])
        patient_codes = _claim_rows(batch, "patient_id", patient_index)  # each claim's patient, by position
        of_patients = patient_cols["patient_features"]
        if patient_codes is not None and of_patients.index.equals(patient_index):
            of_claims = of_patients.to_numpy(dtype=float)[patient_codes]
        else:
            of_claims = _lookup(of_patients, claims["patient_id"])
        claim_cols["patient_features"] = pd.Series(of_claims, index=claim_index)

        step("graph")
        analyses = _graph_analyses(pending, network, graph_detectors)
        graph_reasons, blocks = [], []
        for name, det in graph_detectors.items():
            det.fit(network, analysis=analyses[name])
            scores = det.entity_scores(network)
            for entity, target in (("claim", claim_cols), ("patient", patient_cols), ("provider", provider_cols)):
                s = scores.get(entity)
                if s is not None and len(s) and np.nanmax(np.abs(s.to_numpy(dtype=float))) > 0:
                    target[name] = s
            explained = det.explain(network, top=3)
            if len(explained):
                graph_reasons.append(explained.assign(detector=name))
            if name == "dense_blocks":
                blocks = list(det.evidence_.get("blocks", []))

        step("prioritise")
        claim_scores = _aligned_frame(claim_cols, claim_index)
        # the patients' table is built on a second thread beside the claims' and the providers'
        patient_pool = ThreadPoolExecutor(max_workers=1)
        patient_job = patient_pool.submit(self._patient_table, claim_scores["claim_features"], patient_cols, claims,
                                          patient_index, patient_codes)
        patient_pool.shutdown(wait=False)  # the job runs on; its result is taken below
        claim_combined = combine_scores(claim_scores, cfg.weights, fences=cfg.fences)
        scored = claims[["claim_id", "patient_id", "provider_id", "doctor_id", "care_type", "admit_date",
                         "discharge_date", "diagnosis", "total_amount", "fund_paid"]].copy()
        scored["care_type"] = scored["care_type"].astype(str)
        if "peer_median_total" in features.claims.columns:
            scored["peer_median_total"] = features.claims["peer_median_total"].reindex(claim_index).round(2).to_numpy()
        scored["suspicion"] = claim_combined["suspicion"].to_numpy()
        evidence = claim_combined["evidence"].to_numpy()
        n_flag = max(1, int(round(cfg.flag_share * len(scored))))
        order = _top_order(-evidence, scored["claim_id"], n_flag)
        flagged = np.zeros(len(scored), dtype=bool)
        flagged[order[:n_flag]] = True
        scored["flagged"] = flagged
        for k in claim_scores.columns:
            scored[f"score_{k}"] = claim_scores[k].to_numpy()

        # claim reasons for the most suspicious flagged claims
        scored["reasons"] = ""
        explain_rows = order[: min(n_flag, cfg.explain_claims)]
        claim_det = self.detectors_["claim_features"]
        if features.claims.index.equals(claim_index):  # the feature rows are the claims': by position
            claim_expl = claim_det.explain(features.claims.iloc[explain_rows], top=3)
        else:
            claim_expl = claim_det.explain(features.claims.loc[scored["claim_id"].to_numpy()[explain_rows]], top=3)
        if len(claim_expl):
            scored["reasons"] = _claim_reasons(claim_expl, scored["claim_id"], explain_rows)

        # lift claims and patients to providers
        # claim outliers count for a provider by their excess over chance (size-aware), not their mean
        provider_index = pd.Index(batch.providers["provider_id"])
        provider_codes = _claim_rows(batch, "provider_id", provider_index)
        provider_cols["claim_outliers"] = _rollup(claim_scores["claim_features"], claims, provider_index,
                                                  codes=provider_codes, column="excess")
        if cfg.weights.get("patient_outliers", 0) > 0:
            provider_cols["patient_outliers"] = _rollup(claim_scores["patient_features"], claims, provider_index,
                                                        codes=provider_codes, column="top_score")
        provider_scores = _aligned_frame(provider_cols, provider_index)
        groups = batch.providers.set_index("provider_id")["provider_type"].astype(str) if cfg.peer_groups else None
        weights = {**cfg.weights, **getattr(cfg, "provider_weights", {})}  # models saved before it have none
        if outcomes is not None:
            from fraudkit.outcomes import rerank

            provider_scores, weights, reranker = rerank(features.providers, provider_scores, outcomes, groups, weights)
            if reranker is not None and len(reranker.reasons_):
                graph_reasons.append(reranker.reasons_)
        provider_combined = combine_scores(provider_scores, weights, groups=groups, fences=cfg.fences)

        reasons = self._provider_reasons(features, provider_scores, graph_reasons, scored)
        schemes = schemes_from_reasons(reasons)
        ranked = rank_providers(provider_combined, scored, batch.providers, reasons, schemes,
                                region=region, provider_type=provider_type)
        ranked["inspect"] = ranked["rank"] <= inspections
        detail = provider_scores.add_prefix("score_").reset_index().rename(columns={"index": "provider_id"})
        ranked = ranked.merge(detail, on="provider_id", how="left")
        if outcomes is not None:
            from fraudkit.outcomes import mark_inspected

            ranked = mark_inspected(ranked, outcomes, inspections)

        patient_scores, patients = patient_job.result()

        top = ranked[ranked["inspect"]]
        summary = {
            "fraudkit_version": __version__,
            "batch": batch.source,
            "claims": int(len(claims)),
            "patients": int(len(batch.patients)),
            "providers": int(len(batch.providers)),
            "rejected_rows": int(len(batch.rejects)),
            "inspections": int(inspections),
            "region": region,
            "provider_type": provider_type,
            "flagged_claims": int(n_flag),
            "fund_paid_total": round(float(claims["fund_paid"].sum()), 2),
            "money_at_stake_top": round(float(top["money_at_stake"].sum()), 2),
            "detectors": {"claim": list(claim_scores.columns), "patient": list(patient_scores.columns),
                          "provider": list(provider_scores.columns)},
            "propagation_seeds": int(sum(len(v) for v in (seeds or {}).values())),
            "dense_blocks": len(blocks),
        }
        return ScoreResult(ranked, scored, patients, reasons, blocks, summary)

    def _patient_table(self, claim_scores: pd.Series, patient_cols: dict, claims: pd.DataFrame, patient_index: pd.Index,
                       patient_codes: np.ndarray | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The patients' detector scores (their claims' rolled up among them) and the ranked patient table."""
        cfg = self.config
        patient_cols = {**patient_cols, "claim_outliers": _rollup(claim_scores, claims, patient_index, by="patient_id",
                                                                  codes=patient_codes, column="top_score")}
        patient_scores = _aligned_frame(patient_cols, patient_index)
        patient_combined = combine_scores(patient_scores, cfg.weights, fences=cfg.fences)
        if patient_codes is not None:  # group by integer codes: the same sums in the same order
            n_claims = np.bincount(patient_codes, minlength=len(patient_index)).astype(int)
            fund = pd.Series(claims["fund_paid"].to_numpy()).groupby(patient_codes).sum().round(2)
            fund = fund.reindex(np.arange(len(patient_index))).fillna(0.0).to_numpy()
        else:
            by_patient = claims.groupby("patient_id", observed=True)
            n_claims = by_patient.size().reindex(patient_index).fillna(0).astype(int).to_numpy()
            fund = by_patient["fund_paid"].sum().round(2).reindex(patient_index).fillna(0.0).to_numpy()
        patients = pd.DataFrame({
            "patient_id": patient_index,
            "suspicion": patient_combined["suspicion"].to_numpy(),
            "claims": n_claims,
            "fund_paid": fund,
        })
        for k in patient_scores.columns:
            patients[f"score_{k}"] = patient_scores[k].to_numpy()
        patients = patients.sort_values(["suspicion", "patient_id"], ascending=[False, True]).reset_index(drop=True)
        return patient_scores, patients

    def _provider_reasons(self, features, provider_scores, graph_reasons, scored) -> pd.DataFrame:
        """Provider reasons from every detector, strongest first.

        A reason's strength is how strongly its detector accuses the provider
        (-log tail probability, 0 below the detector's fence, exactly as in the combination)
        divided by the reason's rank within that detector. A reason without strength is
        kept for the record but names no suspected scheme.
        """
        from fraudkit.prioritise import detector_evidence

        strength = {c: detector_evidence(provider_scores[c], fence_factor=self.config.fences.get(c))
                    for c in provider_scores.columns}
        frames = []
        det = self.detectors_["provider_features"]
        profile = det.explain(features.providers, top=3).assign(detector="provider_features")
        frames.append(profile)
        # the strongest signal's reason: the profile's first (its deviation at the fit-time scaling;
        # the signal's own is against the batch scored, the same on the batch the model was fitted on)
        if "provider_signals" in provider_scores.columns:
            frames.append(profile[profile["rank"] == 1].assign(detector="provider_signals"))
        frames += graph_reasons
        # flagged claims summarised per provider ("31 flagged claims, e.g. ...")
        flagged = scored[scored["flagged"] & scored["reasons"].ne("")]
        if len(flagged):
            first = flagged.sort_values("suspicion", ascending=False).groupby("provider_id", observed=True)
            counts = first.size()
            example = first["reasons"].first().str.split(" | ", regex=False).str[0]
            frames.append(pd.DataFrame({
                "id": counts.index, "rank": 1, "feature": "flagged_claims", "value": counts.to_numpy(),
                "contribution": 1.0,
                "reason": [f"{n} flagged claim{'s' if n != 1 else ''}, the most suspicious: {e}" for n, e in zip(counts, example)],
                "detector": "claim_outliers",
            }))
        frames = [f for f in frames if len(f)]
        reasons = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            {"id": pd.Series(dtype=str), "rank": pd.Series(dtype=int), "feature": pd.Series(dtype=str),
             "value": pd.Series(dtype=float), "contribution": pd.Series(dtype=float),
             "reason": pd.Series(dtype=str), "detector": pd.Series(dtype=str)})
        weight = np.zeros(len(reasons))  # each reason's detector's evidence against its provider (0 where none)
        ids = reasons["id"].to_numpy()
        for name, rows in reasons.groupby("detector", sort=False).indices.items():
            if name in strength:
                found = strength[name].index.get_indexer(ids[rows])
                weight[rows] = np.where(found >= 0, strength[name].to_numpy(dtype=float)[np.maximum(found, 0)], 0.0)
        reasons["strength"] = weight / reasons["rank"].clip(lower=1).to_numpy(dtype=float)
        if "provider_signals" in provider_scores.columns:  # one sentence once, at its stronger detector
            stronger = reasons.sort_values("strength", ascending=False, kind="mergesort")
            reasons = reasons.loc[np.sort(stronger.drop_duplicates(["id", "reason"]).index)].reset_index(drop=True)
        return reasons


def _aligned_frame(columns: dict[str, pd.Series], index: pd.Index) -> pd.DataFrame:
    """``DataFrame({k: v.reindex(index)})``; a Series already indexed like ``index`` is taken as it is
    (one comparison per distinct index object instead of a hash lookup of every id per column)."""
    same: dict[int, bool] = {}
    data = {}
    for k, v in columns.items():
        key = id(v.index)
        if key not in same:
            same[key] = v.index is index or (len(v.index) == len(index) and v.index.equals(index))
        data[k] = v.to_numpy() if same[key] else v.reindex(index).to_numpy()
    return pd.DataFrame(data, index=index, columns=list(columns))


def _top_order(keys: np.ndarray, ids: pd.Series, n: int) -> np.ndarray:
    """The first ``n`` of ``np.lexsort((ids, keys))``: the candidates up to the n-th smallest key
    (ties included) sorted alone, instead of all rows by their string ids."""
    if n >= len(keys) or np.isnan(keys).any():
        return np.lexsort((ids.to_numpy(), keys))
    kth = np.partition(keys, n - 1)[n - 1]
    candidates = np.flatnonzero(keys <= kth)
    return candidates[np.lexsort((ids.iloc[candidates].to_numpy(), keys[candidates]))][:n]


def _claim_reasons(explained: pd.DataFrame, claim_ids: pd.Series, rows: np.ndarray) -> pd.Series:
    """Each claim's reasons joined with " | " in rank order ("" for claims not explained).

    ``explained`` is ``explain`` of the claims at positions ``rows`` (ids unique): its rows come
    per claim in that order, ranks ascending, so the joins need no sort or lookup by string id.
    """
    from fraudkit.features._prep import codes_in

    ids = explained["id"]
    pos = codes_in(pd.Index(claim_ids.to_numpy()[rows]), ids)
    ranks = explained["rank"].to_numpy()
    if (pos < 0).any() or len(pos) > 1 and not (np.all((pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1]) & (ranks[1:] > ranks[:-1])))):
        joined = explained.sort_values(["id", "rank"]).groupby("id", sort=False)["reason"].agg(" | ".join)
        return claim_ids.map(joined).fillna("")
    reasons = explained["reason"].tolist()
    starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    ends = np.r_[starts[1:], len(pos)]
    out = np.full(len(claim_ids), "", dtype=object)
    out[rows[pos[starts]]] = [" | ".join(reasons[a:b]) for a, b in zip(starts.tolist(), ends.tolist())]
    return pd.Series(out, index=claim_ids.index, dtype=claim_ids.dtype)


@dataclass
class _GraphJob:
    """Graph analyses started for a batch (``FraudModel.adapted``), for ``score`` to take over."""

    batch: weakref.ref
    network: ClaimsNetwork
    detectors: dict
    pending: object  # a future, or None: analysed in process when score needs them


def _same_detectors(a: dict | None, b: dict) -> bool:
    """The same graph detectors with the same parameters."""
    return a is not None and a.keys() == b.keys() and all(
        type(a[k]) is type(b[k]) and a[k].get_params() == b[k].get_params() for k in a)


def start_workers(n_claims: int) -> None:
    """Start, in the background, what scoring a batch of ``n_claims`` claims will use: the graph
    worker process (:data:`GRAPH_WORKER_FROM_CLAIMS`; its imports take about 2 s) and the compiled
    forest walk (:func:`fraudkit.detectors._iforest.warm_up`).

    Called before a large batch is validated (``fraudkit score``, :func:`fraudkit.score`), both
    overlap the validation, which leaves a core mostly idle, instead of the features, which use both.
    Nothing changes in the results; without a worker to be had, the graph is analysed in process as before.
    """
    import threading

    from fraudkit.detectors._iforest import MIN_FLAT_ROWS, warm_up

    if n_claims < MIN_FLAT_ROWS:  # scikit-learn's own trees score a batch this small
        return
    try:
        worker = _graph_worker(n_claims)
        if worker is not None:
            worker.submit(_ready)
    except Exception:  # noqa: BLE001 - no worker process here: score analyses the graph in process
        pass
    threading.Thread(target=warm_up, name="fraudkit-warm-up", daemon=True).start()


def _ready() -> bool:
    """A worker task that does nothing: unpickling it imports this module, hence the graph detectors."""
    return True


def _analyse_graph(network: ClaimsNetwork, detectors: dict) -> dict:
    """Each graph detector's analysis of ``network``, by name: pure, so it may run in a worker."""
    return {name: det.analyse(network) for name, det in detectors.items()}


def _graph_worker(n_claims: int):
    """``executor="auto"``'s worker for a batch of ``n_claims`` claims, or None (analyse in process)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_claims < GRAPH_WORKER_FROM_CLAIMS or cores < 2:
        return None
    from joblib.externals.loky import get_reusable_executor  # scikit-learn's worker pool: no __main__ re-import

    return get_reusable_executor(max_workers=1)


def _submit_graph(executor, network: ClaimsNetwork, detectors: dict):
    """Start the graph analyses on ``executor`` (see ``FraudModel.score``); None: run them later, here."""
    auto = executor == "auto"
    if not detectors or (not auto and executor is None):
        return None
    # the analyses read codes, not claim ids: ship a range instead of a million strings
    slim = ClaimsNetwork(**{**{f.name: getattr(network, f.name) for f in fields(network) if f.name != "_cache"},
                            "claim_ids": pd.RangeIndex(len(network.claim_ids))})
    try:
        executor = _graph_worker(len(network.claim_ids)) if auto else executor
        return None if executor is None else executor.submit(_analyse_graph, slim, detectors)
    except Exception:  # noqa: BLE001 - no worker to be had ("auto": e.g. a sandbox without processes)
        if not auto:
            raise
        return None


def _graph_analyses(pending, network: ClaimsNetwork, detectors: dict) -> dict:
    """The analyses started by :func:`_submit_graph`, or computed here (also when the worker failed:
    a genuine error is then raised again, from this process)."""
    if pending is not None:
        try:
            return pending.result()
        except Exception:  # noqa: BLE001 - a lost worker, or an error re-raised just below
            pass
    return _analyse_graph(network, detectors)


def _claim_rows(batch, column: str, index: pd.Index) -> np.ndarray | None:
    """Each claim's position in ``index`` (the ids of ``batch.patients`` or ``batch.providers``, in
    their order) by ``column``: the loader's lookup (:meth:`Batch.rows_of`) when the batch keeps one,
    else :func:`_codes`; None when one is missing."""
    rows_of = getattr(batch, "rows_of", None)
    if rows_of is None:
        return _codes(index, batch.claims[column])
    rows = rows_of("claims", column)
    return None if len(rows) and rows.min() < 0 else rows


def _codes(index: pd.Index, keys: pd.Series) -> np.ndarray | None:
    """Position of each key in ``index`` (unique), or None when one is missing or the index repeats."""
    from fraudkit.features._prep import codes_in

    if not index.is_unique:
        return None
    codes = codes_in(index, keys)
    return None if (codes < 0).any() else codes


def _rollup(claim_scores: pd.Series, claims: pd.DataFrame, index: pd.Index, by: str = "provider_id",
            codes: np.ndarray | None = None, column: str = "top_score", flag_share: float = 0.01) -> pd.Series:
    """``rollup(claim_scores, claims, by)[column].reindex(index)`` for ``column`` "excess" or "top_score",
    computing that column alone from integer positions in ``index`` instead of string ids
    (the same counts, and the same pandas means over the same rows in the same order)."""
    if codes is None:
        codes = _codes(index, claims[by])
    if codes is None or not claim_scores.index.equals(pd.Index(claims["claim_id"])):
        return rollup(claim_scores, claims, by=by, flag_share=flag_share)[column].reindex(index)
    values = group_rollup(claim_scores.to_numpy(dtype=float), codes, len(index), column, flag_share)
    return pd.Series(values, index=index, name=column)


def _lookup(scores: pd.Series, keys: pd.Series) -> np.ndarray:
    """``scores.reindex(keys).to_numpy()`` by integer positions (Arrow's hash lookup, no Python strings)."""
    from fraudkit.features._prep import codes_in

    if not scores.index.is_unique:
        return scores.reindex(keys).to_numpy()
    found = codes_in(scores.index, keys)
    values = scores.to_numpy(dtype=float)
    return np.where(found >= 0, values[np.maximum(found, 0)] if len(values) else np.nan, np.nan)


# ---------------------------------------------------------------------- model files
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
MODEL_FORMAT = "fraudkit-model/1"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: FraudModel, folder: str | Path, metadata: dict | None = None) -> Path:
    """Write ``model.joblib`` and ``manifest.json`` (with its SHA-256) into ``folder``, atomically."""
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        joblib.dump(model, tmp / MODEL_FILE, compress=3)
        manifest = {
            "format": MODEL_FORMAT,
            "fraudkit_version": __version__,
            "file": MODEL_FILE,
            "sha256": _sha256(tmp / MODEL_FILE),
            "config": model.config.to_dict(),
            "trained_on": getattr(model, "trained_on_", None),
            **(metadata or {}),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return folder


def load_model(path: str | Path) -> FraudModel:
    """Load a model saved by :func:`save_model`, refusing any file whose hash does not match.

    ``path`` is the model folder (or its ``model.joblib``). The file is unpickled only
    after its SHA-256 matches the manifest: a pickle from an unknown source is code.
    """
    path = Path(path)
    folder = path.parent if path.is_file() else path
    manifest_path = folder / MANIFEST_FILE
    if not folder.exists():
        raise ModelError(f"model {path} does not exist")
    if not manifest_path.is_file():
        raise ModelError(f"model {folder} has no {MANIFEST_FILE}; refusing to unpickle a file of unknown origin")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{manifest_path} is not a valid manifest ({exc})") from None
    if manifest.get("format") != MODEL_FORMAT:
        raise ModelError(f"{manifest_path} is not a fraudkit model manifest (format {manifest.get('format')!r})")
    model_file = folder / manifest.get("file", MODEL_FILE)
    if not model_file.is_file():
        raise ModelError(f"model file {model_file} named by {manifest_path} is missing")
    actual = _sha256(model_file)
    if actual != manifest.get("sha256"):
        raise ModelError(
            f"model file {model_file} does not match its manifest (sha256 {actual[:12]}… ≠ {str(manifest.get('sha256'))[:12]}…); "
            "refusing to load it: it was changed or replaced after it was saved")
    model = joblib.load(model_file)
    if not isinstance(model, FraudModel):
        raise ModelError(f"{model_file} holds a {type(model).__name__}, not a FraudModel")
    return model

