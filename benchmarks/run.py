"""fraudkit end to end: claims per second and peak memory of every stage, against baselines of the same run.

    .venv/bin/python benchmarks/run.py                 # 1M claims (make bench)
    .venv/bin/python benchmarks/run.py --full          # 1M and 10M claims
    .venv/bin/python benchmarks/run.py --claims 200000 --workers 1 2

For each size a batch is generated (``generate_to`` with ``--parts`` Parquet parts) into a
temporary folder; a model is trained once on a separate 100k-claim batch (not timed against a
target). Each stage then runs in a fresh Python process, so its peak RSS is its own; inside a
process, a psutil sampler (every 20 ms) gives the peak of each sub-stage:

- ``generate``: the synthetic generator (``fraudkit.synthetic.generate_to``);
- ``validate``: the one loader and validator (``fraudkit.io.load_batch``);
- ``features``: ``FeatureBuilder.transform`` of the batch with the model's learned references,
  the first in its process (as in ``fraudkit score``), followed by the claim forest's scores: the
  two together are the features-plus-forest row (the compiled walk loaded before the clock);
- one row per detector: the claim, patient and provider isolation forests, the claims network
  and each graph detector (fit + scores);
- baselines on the same claim matrix: bare scikit-learn ``IsolationForest`` (same trees and
  sample size, fitted on the same rows) and PyOD's HBOS, ECOD and COPOD (fitted on a 20k sample,
  scoring every claim); the best (fastest) PyOD one is the one compared with;
- ``score (local)``: the whole ``fraudkit score`` command (load, validate, score, write; no report);
  with ``--refit never`` (the model as given), and again with the default ``--refit auto``, which
  refits a batch of 30,000 claims or more first;
- ``score (dask, N worker processes)``: the same command with ``--engine dask --scheduler`` on a
  LocalCluster of N single-threaded worker processes (each with cores / N numba threads), started
  before the clock, as a cluster of other machines would be used (every part copied to a worker);
  and once with ``--engine dask`` alone, on the engine's own local cluster of worker threads (the
  cluster's start inside the clock); their files are checked byte for byte against the local engine's.

Claims per second of a stage = claims of the batch / the stage's wall time. The machine is
whatever runs this: ratios against baselines measured in the same run are what carry over.
Writes ``benchmarks/results.md`` (and prints it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"generate": 200_000, "score": 100_000, "features_and_forest": 150_000, "peak_10m_gb": 8.0}
#: The stage the features-plus-isolation-forest target (issue #3) is measured on.
FEATURES_AND_FOREST = "features + claim forest (transform, then the claim forest's scores; cold process)"
OUTPUTS = ("providers.csv", "claims.parquet", "patients.parquet")


# ---------------------------------------------------------------------- measuring
class PeakRSS:
    """Peak resident memory of this process, sampled every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def reset(self) -> None:
        self.peak = self.proc.memory_info().rss

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.proc.memory_info().rss)


class Recorder:
    """Times named stages of one process and prints them as JSON lines for the parent."""

    def __init__(self, claims: int):
        self.claims, self.rss = claims, PeakRSS()

    @contextmanager
    def stage(self, name: str, **extra):
        self.rss.reset()
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        print(json.dumps({"stage": name, "seconds": seconds, "claims": self.claims, "peak_rss": self.rss.peak, **extra}),
              flush=True)


def _tree_peak(proc) -> int:
    """RSS of a process and its children (Dask worker processes count too)."""
    try:
        procs = [proc] + proc.children(recursive=True)
    except Exception:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except Exception:
            pass
    return total


def run_child(args: list[str], label: str) -> list[dict]:
    """Run this script with ``args`` in a fresh process; peak RSS of its whole process tree is sampled."""
    import psutil

    cmd = [sys.executable, __file__, *args]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, _tree_peak(ps))
        time.sleep(0.05)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{err[-3000:]}")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for row in rows:
        row.setdefault("process_wall", wall)
        row["tree_peak_rss"] = peak
    return rows


# ---------------------------------------------------------------------- children
def child_generate(out: str, claims: int, seed: int, parts: int) -> None:
    from fraudkit.synthetic import Scenario, generate_to

    rec = Recorder(claims)
    scenario = Scenario.from_yaml(REPO / "synthetic" / "default.yaml")
    with rec.stage("generate", parts=parts):
        generate_to(scenario, out, n_claims=claims, seed=seed, parts=parts)


def child_train(batch: str, out: str) -> None:
    from fraudkit.io import load_batch
    from fraudkit.pipeline import FraudModel, save_model

    loaded = load_batch(batch)
    rec = Recorder(len(loaded.claims))
    with rec.stage("train (100k claims)"):
        model = FraudModel().fit(loaded)
    save_model(model, out)


def child_validate(batch: str) -> None:
    from fraudkit.io import load_batch

    rss = PeakRSS()
    started = time.perf_counter()
    loaded = load_batch(batch)
    seconds = time.perf_counter() - started
    print(json.dumps({"stage": "validate", "seconds": seconds, "claims": len(loaded.claims), "peak_rss": rss.stop(),
                      "items": len(loaded.items)}), flush=True)


def child_detectors(batch: str, model_dir: str, max_fit: int, pyod: list[str]) -> None:
    import numpy as np

    from fraudkit.graph import ClaimsNetwork
    from fraudkit.io import load_batch
    from fraudkit.pipeline import GRAPH_DETECTORS, load_model

    from fraudkit.detectors._iforest import warm_up

    model = load_model(model_dir)
    loaded = load_batch(batch)
    rec = Recorder(len(loaded.claims))
    warm_up()  # the compiled walk loads once per process (fraudkit score does it beside the validation)
    started = time.perf_counter()
    with rec.stage("features"):
        features = model.features_.transform(loaded)
    peak = rec.rss.peak
    with rec.stage("claim forest (scores of the features just built)"):
        model.detectors_["claim_features"].scores(features.claims)
    print(json.dumps({"stage": FEATURES_AND_FOREST, "seconds": time.perf_counter() - started,
                      "claims": len(loaded.claims), "peak_rss": max(peak, rec.rss.peak)}), flush=True)
    for name, det in model.detectors_.items():
        table = features.table(det.entity)
        det.score_samples(table.iloc[:2_000])  # compile the forest kernel outside the timing
        with rec.stage(f"detector: {name} (isolation forest, {len(table):,} {det.entity}s)", rows=len(table)):
            det.scores(table)
    with rec.stage("detector: claims network (ClaimsNetwork.from_batch)"):
        network = ClaimsNetwork.from_batch(loaded)
    for name, params in model.config.graph.items():
        if name == "propagation":
            continue  # runs only with seeds from past inspections
        det = GRAPH_DETECTORS[name](**dict(params or {}))
        if "random_state" in det.get_params():
            det.set_params(random_state=model.config.seed)
        with rec.stage(f"detector: {name} (graph)"):
            det.fit(network)
            det.entity_scores(network)
    # baselines on the claim forest's own matrix
    table = features.claims
    from fraudkit.detectors import IsolationForestDetector

    fresh = IsolationForestDetector(entity="claim", random_state=model.config.seed,
                                    contamination=model.config.flag_share, **model.config.claim_forest)
    with rec.stage("ours: fraudkit claim forest, fit (robust scaling + trees)", role="ours", part="fit"):
        fresh.fit(table)
    fresh.score_samples(table.iloc[:2_000])
    with rec.stage("ours: fraudkit claim forest, score (from the feature table)", role="ours", part="score"):
        fresh.score_samples(table)
    matrix = fresh._scaled(fresh._matrix(table), table).astype(np.float32)
    rng = np.random.default_rng(0)
    sample = matrix[rng.choice(len(matrix), min(max_fit, len(matrix)), replace=False)]
    del features, table
    from joblib import parallel_backend
    from sklearn.ensemble import IsolationForest

    params = model.config.claim_forest
    bare = IsolationForest(n_estimators=params.get("n_estimators", 200), max_samples=params.get("max_samples", 512),
                           random_state=0)
    with rec.stage("baseline: scikit-learn IsolationForest, fit (same trees, scaled matrix)", role="sklearn", part="fit"):
        bare.fit(matrix)
    with rec.stage("baseline: scikit-learn IsolationForest, score (all cores)", role="sklearn", part="score"):
        with parallel_backend("threading", n_jobs=os.cpu_count()):
            bare.score_samples(matrix)
    for name in pyod:
        module, cls = {"HBOS": ("pyod.models.hbos", "HBOS"), "ECOD": ("pyod.models.ecod", "ECOD"),
                       "COPOD": ("pyod.models.copod", "COPOD"), "IForest": ("pyod.models.iforest", "IForest")}[name]
        import importlib

        try:
            det = getattr(importlib.import_module(module), cls)()
        except ImportError:
            continue
        with rec.stage(f"baseline: PyOD {name}, fit ({len(sample):,} rows)", role=f"pyod {name}", part="fit"):
            det.fit(sample)
        with rec.stage(f"baseline: PyOD {name}, score", role=f"pyod {name}", part="score"):
            det.decision_function(matrix)


def child_stages(batch: str, model_dir: str, out: str) -> None:
    """Validate, features and the whole of ``FraudModel.score`` of one batch, with the code on ``sys.path``.

    Run with ``PYTHONPATH`` set to a checkout of another commit, this measures that commit's code:
    the before/after table compares two commits stage by stage in alternating fresh processes.
    """
    import pickle

    import fraudkit
    from fraudkit.io import atomic_dir, load_batch
    from fraudkit.pipeline import load_model

    model = load_model(model_dir)
    rss = PeakRSS()

    def digest(frame, prefix: str = "") -> dict[str, str]:
        """One hash per column (dtype and values), so that columns added by one version are left out."""
        import pandas as pd

        return {prefix + c: hashlib.sha256(pickle.dumps(str(frame[c].dtype)) + pd.util.hash_pandas_object(
            frame[c], index=False).to_numpy().tobytes()).hexdigest()[:16] for c in frame.columns}

    def emit(stage, started, cpu, **extra):
        print(json.dumps({"stage": stage, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                          "peak_rss": rss.peak, "code": fraudkit.__file__, **extra}), flush=True)

    rss.reset()
    started, cpu = time.perf_counter(), time.process_time()
    loaded = load_batch(batch)
    emit("validate (load_batch)", started, cpu, same={**digest(loaded.items, "items."), **digest(loaded.claims, "claims.")})
    rss.reset()
    started, cpu = time.perf_counter(), time.process_time()
    features = model.features_.transform(loaded)
    emit("features (FeatureBuilder.transform)", started, cpu,
         same={**digest(features.claims, "claims."), **digest(features.patients, "patients.")})
    del features
    rss.reset()
    started, cpu = time.perf_counter(), time.process_time()
    result = model.score(loaded, inspections=20)
    with atomic_dir(out) as tmp:
        result.write(tmp)
    emit("score + write (FraudModel.score, ScoreResult.write)", started, cpu,
         same={n: hashlib.sha256((Path(out) / n).read_bytes()).hexdigest()[:16] for n in OUTPUTS})


#: Functions whose cumulative time makes up ``FraudModel.score`` (label, file suffix, function name).
#: The item lines' reductions (``_lines.line_totals``, ``_lines.line_features``) run on worker threads,
#: which cProfile does not see: their time shows as the wait of the stage that started them.
PROFILE_STAGES = [
    ("features: FeatureBuilder.transform (all)", "features/_builder.py", "transform"),
    ("features: _Base (column arrays of claims and items)", "features/_builder.py", "__init__"),
    ("features: claim features (_claims)", "features/_builder.py", "_claims"),
    ("features: patient features (_patients)", "features/_builder.py", "_patients"),
    ("features: provider features (_providers)", "features/_builder.py", "_providers"),
    ("forests: IsolationForestDetector.scores (all)", "detectors/_base.py", "scores"),
    ("forests: compiled forest walk (_forest_depths)", "detectors/_iforest.py", "_forest_depths"),
    ("forests: robust scaling (_scaled)", "detectors/_iforest.py", "_scaled"),
    ("graph: ClaimsNetwork.from_frames", "graph/_network.py", "from_frames"),
    ("graph: analyses (pipeline._analyse_graph)", "fraudkit/pipeline.py", "_analyse_graph"),
    ("graph: rings (_ring._analyse)", "graph/_ring.py", "_analyse"),
    ("graph: dense blocks (_dense._analyse)", "graph/_dense.py", "_analyse"),
    ("prioritise: combine_scores", "prioritise/__init__.py", "combine_scores"),
    ("prioritise: tail_probability (pandas rank)", "prioritise/__init__.py", "tail_probability"),
    ("prioritise: rollup of claims to providers/patients", "detectors/_base.py", "rollup"),
    ("prioritise: claim reasons (IsolationForestDetector.explain)", "detectors/_iforest.py", "explain"),
    ("prioritise: _provider_reasons", "fraudkit/pipeline.py", "_provider_reasons"),
    ("pandas: Series.reindex (string claim ids)", "pandas/core/series.py", "reindex"),
    ("pandas: Arrow strings to NumPy objects (ArrowExtensionArray.to_numpy)", "arrow/array.py", "to_numpy"),
]


def child_profile(batch: str, model_dir: str) -> None:
    import cProfile
    import pstats

    from fraudkit.io import load_batch
    from fraudkit.pipeline import load_model

    model = load_model(model_dir)
    loaded = load_batch(batch)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    model.score(loaded, inspections=20, executor=None)  # the graph in this process too, where the profiler sees it
    profile.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profile).stats
    for label, file, func in PROFILE_STAGES:
        cum = sum(v[3] for (f, _, name), v in stats.items() if name == func and f.endswith(file))
        print(json.dumps({"profile": label, "seconds": cum, "total": total, "claims": len(loaded.claims)}), flush=True)


def child_score(batch: str, model_dir: str, out: str, engine: str, workers: int) -> None:
    from typer.testing import CliRunner

    from fraudkit.cli import app

    import psutil

    args = ["score", batch, "--model", model_dir, "--out", out, "--quiet", "--no-report", "--refit", "never"]
    label = "score (local)"
    if engine == "refit":  # the command as an inspector runs it: a batch this large is its own reference
        args[-1], label = "auto", "score (local, default --refit auto: the model refitted on the batch first)"
    if engine == "dask":
        args += ["--engine", "dask", "--scheduler", _start_cluster(workers)]
        label = f"score (dask, {workers} worker process{'es' if workers > 1 else ''})"
    if engine == "dask-local":  # as a user runs it on one machine: the engine's own local cluster (threads)
        args += ["--engine", "dask"]
        label = "score (dask, the engine's own local cluster: one worker thread per core)"
    me = psutil.Process()
    claims = _claims_of(batch)
    started = time.perf_counter()
    done = CliRunner().invoke(app, args, catch_exceptions=False)
    seconds = time.perf_counter() - started
    if done.exit_code != 0:
        raise SystemExit(done.output)
    print(json.dumps({"stage": label, "seconds": seconds, "claims": claims, "peak_rss": 0, "workers": workers,
                      "engine": engine, "self_rss": me.memory_info().rss}), flush=True)


_CLUSTER = []


def _start_cluster(workers: int) -> str:
    from distributed import LocalCluster

    # worker processes share the cores out (the client keeps its own numba threads for the graph)
    os.environ["NUMBA_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    _CLUSTER.append(cluster)
    return cluster.scheduler_address


def _claims_of(batch: str) -> int:
    import pyarrow.parquet as pq

    root = Path(batch) / "claims"
    files = sorted(root.glob("*.parquet")) if root.is_dir() else [Path(batch) / "claims.parquet"]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


# ---------------------------------------------------------------------- report
def _digest(folder: Path) -> dict[str, str]:
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest()[:16] for n in OUTPUTS}


def _gb(b: float) -> str:
    return f"{b / 1e9:.2f}"


def _table(rows: list[dict]) -> str:
    lines = ["| stage | claims | seconds | claims/s | peak RSS (GB) |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        peak = max(r.get("peak_rss", 0), r.get("tree_peak_rss", 0) if r.get("whole_process") else 0)
        lines.append(f"| {r['stage']} | {r['claims']:,} | {r['seconds']:.1f} | {r['claims'] / r['seconds']:,.0f} | {_gb(peak)} |")
    return "\n".join(lines)


NOTES = """
## What the numbers mean

- **Shared machine.** Two cores shared with other jobs (see the load average above): every
  absolute number is pessimistic and noisy; compare ratios measured in the same run (the
  before/after table alternates the two versions, and gives CPU seconds too).
- **score (local / dask)** is the whole command: load the model, validate with `fraudkit.io`,
  score, write `providers.csv`, `claims.parquet`, `patients.parquet`, `summary.json` (no report).
  Its peak RSS counts the process and its Dask worker processes.
- **Dask engine.** The calling process validates the batch and cuts it into parts by patient
  (`fraudkit.io.split_by_patient`, a hash of the patient id). Each part's features are computed
  on a worker (`FeatureBuilder.part_features`: every column its patients' own claims decide, and
  the keys of the counts over other patients); the worker keeps the part's claim table and sends
  back the 31 columns the providers' features read (`PartFeatures.slim`), which the calling
  process reduces (`FeatureBuilder.combine`: the counts over all keys, the providers' features
  from all claims in the batch's order; the same bits for any number of parts). The claims'
  forest scores and strongest signal are computed on the worker that keeps each part (the batch's
  scaling learnt from its evenly spaced rows, fetched from the parts); the patients' scores and
  the reasons of flagged claims run per partition of rows; the graph detectors analyse the claims
  network as one task on a worker beside them. Worker processes (`--scheduler`, as a cluster of
  other machines is used) get every part copied to them, about 600 MB per million claims, where
  they used to get only the forests' columns: on two shared cores that costs more than the
  second core gives (0.45-0.47x the local engine, 0.63-0.72x when the client computed the
  features). The engine's own local cluster (no `--scheduler`) runs worker threads, which copy
  nothing; its time includes starting the cluster.
- **Memory.** Item lines are reduced to per-claim arrays a chunk of whole claims (about a million
  lines) at a time (`fraudkit/features/_lines.py`), so feature building no longer holds a copy of
  every line's columns and their temporaries. The claim feature table (54 columns) is written
  once, into the block its DataFrame wraps, and the forests scale their input a block of rows at a
  time into float32 (no float64 copy of the matrix). The client still holds the whole validated
  batch (the items table itself is about 0.4 GB per million claims), the claim feature table and
  the scoring tables: peak RSS grows linearly with the batch, so the 1M peak ×10 is an honest
  estimate for 10M, and the 8 GB target for 10M is not met by either engine.
- **Memory is time here.** On this virtual machine, memory a process touches for the first time
  costs about 2 s per GB of kernel time (page faults, huge pages zeroed): a fresh 400 MB array
  took 0.77 s the first time and 0.04 s once the process had freed one before. `FeatureBuilder.transform`
  at 1M spends 1.2–3.7 s of its 7–9 CPU seconds in the kernel, and the first transform of a
  process is about a second slower than the next (`resource.getrusage`, minor faults). Rows here
  are first runs in fresh processes, as `fraudkit score` runs; a long-lived scoring process does better.
- **Generation.** `fraudkit generate --parts N` has worker processes (`--workers`, default one per
  core from 500,000 claims) generate and write the parts of `items/` side by side; every block of
  65,536 claims draws from its own seed, so the files are the same bytes for any number of workers.
  Parts are contiguous blocks of claims, not aligned with patients.

## What is left to make `score` faster and smaller

1. **Done in part: features per part of the patients (`fraudkit/features/_builder.py`).**
   `FeatureBuilder.part_features` computes a part's claim and patient features, exact when claims
   and items are cut by `hash(patient_id)` (`fraudkit.io.split_by_patient`), and leaves the
   columns counted over other patients (`CROSS_COLUMNS`: cohorts, same-day diagnoses, exam
   patterns, drug lifts, co-purchases) to `FeatureBuilder.combine`, which counts over every
   part's keys and computes the providers' features from every claim in the batch's order: the
   same tables, bit for bit, for any number of parts (hashes at 300k on default, hard, foreign and
   shuffled batches, and at 1M). Making them exact took four changes, none of which moved a bit of
   an ordered batch's tables or the model: exam-set signatures hash the codes' text, not their
   order of appearance; a cost percentile's layout comes from the quantiles only; a care type
   unseen at fit falls back to the fitted medians, not the batch's; a card buying together is
   credited on its first claim by position, not by line order (17 claims of a shuffled 300k batch
   changed). The Dask engine runs the parts on its workers and scores the claims there. Left: the
   calling process still validates and holds the whole batch, cuts it and ships the parts; next,
   workers reading and validating their own parts (patient-aligned Parquet parts, or a shuffle by
   patient), which item 2 prepares. On one machine, parts computed one after another cost more
   than the whole batch at once (1M: 6-8.7 s against 4.7 s; the split copies the batch and the
   reduction writes a fresh claim table, and memory touched for the first time is slow here).
2. **Validation per part (`fraudkit/io`).** Parse and check each Parquet part on its own (only
   uniqueness and the cross-table sums need all parts, as integer codes), so that the raw and the
   typed copy of the items table are never held together.
3. **Done: integer codes in scoring.** `combine_scores`, the roll-ups and the claim reasons work by
   position and integer codes (prioritise 4.6 s -> 2.1 s at 1M); the ring detector computes its
   sides once per fit (1.8 s); the forest walk reads 16-byte node records (about 9 % less CPU);
   the item-line chunks are reduced on a thread pool. All with byte-identical files
   (`benchmarks/score_stages.py` compares two checkouts stage by stage and hashes the outputs).
4. **Both cores for the pandas stages: in part.** From 200,000 claims the graph detectors analyse
   the network in a worker process (loky, one worker, started once per session) while the
   features and forests run: the network goes over as integer arrays (its claim ids replaced by
   a range), the analyses come back, and `fit(network, analysis=...)` adopts them (the same
   bits; `tests/test_engine.py`). A thread had made both slower (the GIL). The worker adds its
   own memory (about 0.6 GB at 1M, counted in the peak above). In the features, the drug supply,
   the co-purchases and the exam patterns run on a second thread once the item lines are reduced
   (beside the rest of the claims' and the patients' features), the significances of the providers'
   means beside the patients' features and the rest of the provider table, and
   `FeatureBuilder.fit` computes the peer statistics beside the catalogue (pandas' group medians
   and NumPy's sorts release the GIL); `FraudModel.fit`
   grows the patients' and providers' forests beside the claims'. With the graph worker on the
   second core, these threads leave the whole `score` where it was: both cores are busy. Validation
   parses a large table's columns on two threads and looks the three references up side by side
   (4.0-5.3 -> 3.4-3.9 s at 1M), and keeps those lookups in the `Batch` (`Batch.rows_of`) for the
   features, the claims network and the roll-ups, which hashed every claim's ids again (features
   0.5 s less at 1M); `combine_scores` ranks each detector's scores on a thread (1M claims x 5
   detectors 1.7 -> 1.2 s). The patients' table is built beside the claims' and providers' prioritisation (2.20 -> 1.75 s);
   the rest of it runs on one core. `fraudkit score` starts the graph worker (its
   imports, about 2 s of CPU) and loads the compiled forest walk while it validates a large batch,
   when one core is mostly idle, instead of beside the features (`pipeline.start_workers`).
5. **Done: less work per row in the forests.** The patient forest walks each distinct row once
   (340k patients at 1M, 23 % distinct: 0.68 -> 0.16 s); claims, 93 % distinct, are walked as
   they are. The claim forest's scaling reads the table a block at a time (0.5-0.7 -> 0.15-0.2 s).
   The walk indexes nodes with unsigned integers, so numba checks no index for a negative value
   on every step: the claim forest's scores at 1M 2.3 -> 1.4 s, 1.3-1.6x -> 2.0-2.4x scikit-learn's.
   Fitting (the default `--refit auto` path): the robust scaling takes a column-major table's
   deviations four columns at a time instead of two more copies of the table (the claim forest's
   fit at 1M 5.3-6.2 -> 3.6-4.5 s), and `FeatureBuilder.fit` sorts the drug prices for their
   quantiles on the pool beside the reference prices (6.0-6.5 -> 4.8-5.1 s): `score --refit auto`
   26.1-30.4 -> 23.0-24.4 s in alternating runs, the same model bytes and files.
6. **Done: features + claim forest at 150k claims/s (issue #3).** 162k, 195k and 153k claims/s in
   this round's three `make bench` runs (6.2, 5.1 and 6.5 s cold at 1M; the third, with the final
   code, on an hour when the unchanged generator ran at 198k against 225-280k; 147k and 149k in the
   previous round's).
   In alternating cold runs against the round's starting code, the features took 3.2-3.5 s against
   3.6-4.3 s (features + claim forest 207-226k against 180-204k claims/s), with the same feature
   tables. What changed: keys in a compact range are counted with one `bincount` (`count_by`; the
   cohort and same-day keys are laid out over their codes' own ranges, provider x day, instead of
   provider x 100,000 + day: hashing a million such keys took 50-70 ms, counting them 5 ms); distinct
   (claim, code) pairs are found by a stable sort of keys that come nearly sorted (0.20 -> 0.01 s for
   1.7M drug lines) where their order feeds only counts and maxima; distinct (patient-day, provider)
   pairs likewise, in the patient-day order the features already have; the (patient, provider) pairs
   are found once per batch for five columns and the shared-patient table; `swap_lift` counts drugs
   in a dense provider x code table when it is small (0.38 -> 0.09 s); the significances of the
   providers' means start beside the patients' features and the main thread runs a queued job itself
   rather than wait for it (`fraudkit._threads.done_or_run`). Of the features' CPU time, about a third
   is still the kernel's: `perf` puts 33 % of a cold `transform`'s CPU in zeroing huge pages
   (`clear_page_erms` under `do_huge_pmd_anonymous_page`). Memory touched for the first time costs
   1.2-2.3 s per GB here and about 0.15 s per GB when the kernel has just had it back (a 2 GB array:
   2.5-4.7 s in a fresh process, 0.26 s in the next one, 1.9 s after 5 s of rest): the virtual
   machine's host reclaims freed memory within seconds. NumPy asks for huge pages on arrays of 4 MB and
   more; with that hint off (`NUMPY_MADVISE_HUGEPAGE=0`) the features' kernel time fell from 2.5 to
   1.7 s and the stage by 0.6 s, but the whole `score` was 1-3 s slower over three alternating runs
   (more user time), so it is left on. Glibc's malloc thresholds (`MALLOC_MMAP_MAX_=0`, a huge trim
   threshold) help a second `transform` in the same process (kernel time 2.2 -> 0.1 s), not the first,
   nor the whole `score`. What is left is less fresh memory per batch (the `_Base` arrays, 0.47 GB at
   1M, live until the end of `transform`; the 430 MB claim table), not more threads.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also 10M claims")
    ap.add_argument("--claims", type=int, nargs="+", help="batch sizes (default 1M; with --full 1M and 10M)")
    ap.add_argument("--parts", type=int, default=8, help="Parquet parts of claims/ and items/")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="Dask LocalCluster sizes")
    ap.add_argument("--max-fit", type=int, default=20_000, help="rows the PyOD baselines are fitted on")
    ap.add_argument("--pyod", nargs="*", default=["HBOS", "ECOD", "COPOD"])
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdown of score")
    ap.add_argument("--keep", type=Path, help="keep generated batches and outputs in this folder")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.md")
    ap.add_argument("--before", metavar="COMMIT", help="also time validate, features and score of this commit's code "
                    "against the working tree's, stage by stage (alternating fresh processes; a git worktree in the work folder)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the before/after comparison")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        {"generate": lambda: child_generate(rest[0], int(rest[1]), int(rest[2]), int(rest[3])),
         "train": lambda: child_train(*rest),
         "validate": lambda: child_validate(*rest),
         "detectors": lambda: child_detectors(rest[0], rest[1], int(rest[2]), rest[3:]),
         "score": lambda: child_score(rest[0], rest[1], rest[2], rest[3], int(rest[4])),
         "profile": lambda: child_profile(*rest),
         "stages": lambda: child_stages(*rest)}[kind]()
        for cluster in _CLUSTER:
            cluster.close()
        return 0

    sizes = args.claims or ([1_000_000, 10_000_000] if args.full else [1_000_000])
    work = args.keep or Path(tempfile.mkdtemp(prefix="fk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = [f"# fraudkit benchmark\n",
              f"`{' '.join(['.venv/bin/python', 'benchmarks/run.py', *sys.argv[1:]])}` on {platform.node()}, "
              f"{os.cpu_count()} CPUs, {_mem_gb():.0f} GB RAM, Python {platform.python_version()}, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at start "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine: absolute numbers are noisy, "
              f"ratios within one run are what carry over).\n"]
    try:
        model = work / "model"
        if not (model / "manifest.json").is_file():
            print("training the model on 100k claims ...", flush=True)
            run_child(["--child", "generate", str(work / "train"), "100000", "7", "1"], "generate train")
            run_child(["--child", "train", str(work / "train"), str(model)], "train")
        for n in sizes:
            report += _one_size(n, args, work, model)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(report) + "\n" + NOTES
    args.out.write_text(text)
    print(text)
    return 0


def _mem_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 1e9


def _one_size(n: int, args, work: Path, model: Path) -> list[str]:
    batch = work / f"batch-{n}"
    print(f"[{n:,} claims] generating ...", flush=True)
    shutil.rmtree(batch, ignore_errors=True)
    gen = run_child(["--child", "generate", str(batch), str(n), str(args.seed), str(args.parts)], "generate")
    for r in gen:
        r["whole_process"] = True
    print(f"[{n:,} claims] validating ...", flush=True)
    val = run_child(["--child", "validate", str(batch)], "validate")
    print(f"[{n:,} claims] features and detectors ...", flush=True)
    det = run_child(["--child", "detectors", str(batch), str(model), str(args.max_fit), *args.pyod], "detectors")
    print(f"[{n:,} claims] score, local engine ...", flush=True)
    local_out = work / f"out-{n}-local"
    shutil.rmtree(local_out, ignore_errors=True)
    score = run_child(["--child", "score", str(batch), str(model), str(local_out), "local", "1"], "score local")
    digest = _digest(local_out)
    print(f"[{n:,} claims] score, local engine, default --refit auto ...", flush=True)
    refit_out = work / f"out-{n}-refit"
    shutil.rmtree(refit_out, ignore_errors=True)
    refit = run_child(["--child", "score", str(batch), str(model), str(refit_out), "refit", "1"], "score refit")
    dask_rows, same = [], {}
    for w in args.workers:
        print(f"[{n:,} claims] score, dask engine, {w} workers ...", flush=True)
        out = work / f"out-{n}-dask{w}"
        shutil.rmtree(out, ignore_errors=True)
        rows = run_child(["--child", "score", str(batch), str(model), str(out), "dask", str(w)], f"score dask {w}")
        dask_rows += rows
        same[w] = _digest(out) == digest
    print(f"[{n:,} claims] score, dask engine, its own local cluster ...", flush=True)
    out = work / f"out-{n}-dask-local"
    shutil.rmtree(out, ignore_errors=True)
    rows = run_child(["--child", "score", str(batch), str(model), str(out), "dask-local", str(os.cpu_count() or 1)],
                     "score dask local")
    for r in rows:
        r["threads"] = True
    dask_rows += rows
    same["threads"] = _digest(out) == digest
    for r in score + refit + dask_rows:
        r["peak_rss"], r["whole_process"] = r["tree_peak_rss"], True
    items = val[0].get("items", 0)

    lines = [f"\n## {n:,} claims ({items:,} item lines, {args.parts} Parquet parts)\n",
             _table(gen + val + [r for r in det if not r["stage"].startswith(("baseline", "ours"))] + score + refit
                    + dask_rows)]
    # targets
    g = gen[0]["claims"] / gen[0]["seconds"]
    s = score[0]["claims"] / score[0]["seconds"]
    lines.append("\n### Targets\n")
    lines.append("| target | measured | met |\n|---|---:|:---:|")
    lines.append(f"| generation ≥ {TARGETS['generate']:,} claims/s | {g:,.0f} | {'yes' if g >= TARGETS['generate'] else 'no'} |")
    lines.append(f"| end-to-end scoring ≥ {TARGETS['score']:,} claims/s | {s:,.0f} | {'yes' if s >= TARGETS['score'] else 'no'} |")
    ff = next(r for r in det if r["stage"] == FEATURES_AND_FOREST)
    f = ff["claims"] / ff["seconds"]
    lines.append(f"| features + claim forest ≥ {TARGETS['features_and_forest']:,} claims/s | {f:,.0f} | "
                 f"{'yes' if f >= TARGETS['features_and_forest'] else 'no'} |")
    peak = max(r.get("peak_rss", 0) for r in gen + val + det + score + refit)
    if n >= 10_000_000:
        lines.append(f"| peak ≤ {TARGETS['peak_10m_gb']:.0f} GB at 10M | {_gb(peak)} GB | "
                     f"{'yes' if peak / 1e9 <= TARGETS['peak_10m_gb'] else 'no'} |")
    else:
        lines.append(f"| peak ≤ {TARGETS['peak_10m_gb']:.0f} GB at 10M | {_gb(peak)} GB at {n:,} (10M: `--full`) | — |")
    # baselines
    base = [r for r in det if r.get("role")]
    lines.append("\n### Claim-level detector against baselines (same matrix, same run)\n")
    lines.append(_table(base))
    secs = {}
    for r in base:
        secs.setdefault(r["role"], {})[r["part"]] = r["seconds"]
    ours = secs["ours"]
    pyod = sorted((k for k in secs if k.startswith("pyod")), key=lambda k: secs[k]["score"])
    lines.append("\n| scoring 1 claim matrix | claims/s | fraudkit's forest is … × as fast |\n|---|---:|---:|")
    n_claims = base[0]["claims"]
    for role in ["ours", "sklearn", *pyod]:
        name = {"ours": "fraudkit IsolationForestDetector", "sklearn": "scikit-learn IsolationForest"}.get(role, role.replace("pyod", "PyOD"))
        lines.append(f"| {name} | {n_claims / secs[role]['score']:,.0f} | {secs[role]['score'] / ours['score']:.2f} |")
    lines.append(f"\nScore only: fraudkit's claim forest is **{secs['sklearn']['score'] / ours['score']:.2f}×** as fast as bare "
                 f"scikit-learn `IsolationForest` (same trees and sample size; ours includes the robust scaling from the "
                 f"feature table)" + (f" and **{secs[pyod[0]]['score'] / ours['score']:.2f}×** as fast as the fastest PyOD "
                                      f"baseline ({pyod[0].replace('pyod ', '')})." if pyod else ".")
                 + f" Fit + score: {(secs['sklearn']['fit'] + secs['sklearn']['score']) / (ours['fit'] + ours['score']):.2f}× "
                   f"scikit-learn (our fit also learns the robust centre and scale of every feature on all rows).")
    lines.append("Detection quality of the same detectors: `benchmarks/bench_detectors.py` (results/detectors.md).")
    # dask
    lines.append("\n### Dask engine (`fraudkit score --engine dask`)\n")
    lines.append("| cluster | seconds | speed-up vs local engine | files identical to local |\n|---|---:|---:|:---:|")
    for r in dask_rows:
        w = r["workers"]
        key, what = ("threads", f"its own local cluster, {w} worker threads") if r.get("threads") else (
            w, f"`--scheduler` of a LocalCluster, {w} worker process{'es' if w > 1 else ''}")
        lines.append(f"| {what} | {r['seconds']:.1f} | {score[0]['seconds'] / r['seconds']:.2f}× | {'yes' if same[key] else '**no**'} |")
    if not args.no_profile:
        print(f"[{n:,} claims] profiling score ...", flush=True)
        rows = run_child(["--child", "profile", str(batch), str(model)], "profile")
        prof = [r for r in rows if "profile" in r]
        total = prof[0]["total"]
        lines.append(f"\n### Where `FraudModel.score` spends its time (cProfile, {total:.1f} s under the profiler)\n")
        lines.append("Cumulative seconds of each function (rows overlap: a stage's total includes its parts). Profiled "
                     "with `executor=None`: the graph analyses run in the profiled process, after the forests, instead "
                     "of in the worker process beside the features. Work on other threads (the item lines' reductions, "
                     "the drug supply, the exam patterns) is not seen by cProfile.\n")
        lines.append("| stage | seconds | share of score |\n|---|---:|---:|")
        for r in prof:
            lines.append(f"| {r['profile']} | {r['seconds']:.1f} | {r['seconds'] / total:.0%} |")
    if args.before:
        lines += _before_after(n, args, work, batch)
    return lines


def _before_after(n: int, args, work: Path, batch: Path) -> list[str]:
    """The same stages with the code of commit ``args.before`` and of the working tree, alternately."""
    tree = work / f"before-{args.before}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.before],
                       check=True, capture_output=True)
    runs = {"before": [], "after": []}

    def with_code(root: Path, args_: list[str], label: str) -> list[dict]:
        env_path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(root) + (os.pathsep + env_path if env_path else "")
        try:
            return run_child(args_, label)
        finally:
            os.environ.pop("PYTHONPATH") if env_path is None else os.environ.__setitem__("PYTHONPATH", env_path)

    try:
        # a model trained by the older code on the training batch: the newer code computes every column
        # it knows (a model trained by the newer code may need columns the older one lacks)
        model = work / f"model-{args.before}"
        if not (model / "manifest.json").is_file():
            print(f"training a model with the code of {args.before} ...", flush=True)
            with_code(tree, ["--child", "train", str(work / "train"), str(model)], "train before")
        for r in range(args.rounds):
            for which, root in (("before", tree), ("after", REPO)):
                print(f"[{n:,} claims] stages with the code {which} (round {r + 1}) ...", flush=True)
                rows = with_code(root, ["--child", "stages", str(batch), str(model), str(work / f"stages-{which}")], which)
                assert all(row["code"].startswith(str(root)) for row in rows), rows[0]["code"]
                runs[which].append(rows)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [f"\n### Before / after: commit {args.before} against the working tree ({head}), same batch, same machine\n",
             f"Each stage in a fresh process, the two versions alternating, {args.rounds} rounds; the best (least "
             "disturbed) round of each is shown. CPU seconds are less sensitive to the other jobs on the machine than "
             "wall seconds. Both score with a model trained by the older code on the 100k training batch. \"same output\": every column "
             "of the loaded tables and of the claim and patient feature tables that both versions have, and each "
             "written file (providers.csv, claims.parquet, patients.parquet), hashes alike under both; detection "
             "changes made by others between the two commits change the files.\n",
             "| stage | before s (cpu s) | after s (cpu s) | speed-up (cpu) | peak RSS before → after (GB) | same output |",
             "|---|---:|---:|---:|---:|:---:|"]
    for i, row in enumerate(runs["after"][0]):
        b = min((rows[i] for rows in runs["before"]), key=lambda x: x["seconds"])
        a = min((rows[i] for rows in runs["after"]), key=lambda x: x["seconds"])
        lines.append(f"| {row['stage']} | {b['seconds']:.1f} ({b['cpu']:.1f}) | {a['seconds']:.1f} ({a['cpu']:.1f}) | "
                     f"{b['seconds'] / a['seconds']:.2f}× ({b['cpu'] / a['cpu']:.2f}×) | {_gb(b['peak_rss'])} → {_gb(a['peak_rss'])} | "
                     f"{_same(b['same'], a['same'])} |")
    return lines


def _same(before: dict, after: dict) -> str:
    """'yes' when every column (or file) both versions have hashes alike, saying which ones only one has."""
    common = sorted(set(before) & set(after))
    differ = [k for k in common if before[k] != after[k]]
    text = "yes" if not differ else f"no ({', '.join(differ[:4])}{', …' if len(differ) > 4 else ''})"
    new, gone = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    if new:
        text += f"; new in after: {', '.join(new)}"
    if gone:
        text += f"; only before: {', '.join(gone)}"
    return text


if __name__ == "__main__":
    sys.exit(main())
