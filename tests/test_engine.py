"""``--engine dask`` gives the local engine's files, byte for byte, on a LocalCluster of several workers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from typer.testing import CliRunner  # noqa: E402

from fraudkit.engine import DaskEngine, partition_bounds  # noqa: E402
from fraudkit.io import load_batch  # noqa: E402
from fraudkit.pipeline import FraudModel, ModelConfig, save_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FILES = ("providers.csv", "claims.parquet", "patients.parquet", "summary.json")


@pytest.fixture(scope="module")
def parted(tmp_path_factory):
    """A 9,000-claim batch written as folders of 3 Parquet parts, and a model fitted on it."""
    from fraudkit.synthetic import Scenario, generate_to

    root = tmp_path_factory.mktemp("engine")
    generate_to(Scenario.from_yaml(REPO / "synthetic" / "tiny.yaml"), root / "batch", n_claims=9_000, seed=5, parts=3)
    batch = load_batch(root / "batch")
    model = FraudModel(ModelConfig(seed=2, explain_claims=1_500)).fit(batch)
    save_model(model, root / "model")
    return root, batch, model


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None,
                      silence_logs=40) as c:
        yield c


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def test_partitions_are_contiguous_and_never_too_small():
    assert partition_bounds(9_000, 4) == [(0, 2250), (2250, 4500), (4500, 6750), (6750, 9000)]
    assert partition_bounds(3_999, 8) == [(0, 3999)]
    bounds = partition_bounds(1_000_003, 7)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1_000_003
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_dask_engine_writes_the_local_engines_files_byte_for_byte(parted, cluster, tmp_path, monkeypatch):
    _, batch, model = parted
    local = model.score(batch, inspections=10)
    from distributed import Client

    from fraudkit.features import FeatureBuilder

    parts, real = [], FeatureBuilder.part_features
    monkeypatch.setattr(FeatureBuilder, "part_features", lambda self, part: parts.append(len(part.claims)) or real(self, part))
    with Client(cluster) as client:
        engine = DaskEngine(client=client, partitions=4)
        assert len(engine.partitions_of(len(batch.claims))) == 4  # the claims really are split
        with engine:
            distributed = engine.score(model, batch, inspections=10)
    assert len(parts) == 4 and sum(parts) == len(batch.claims)  # features computed a part of the patients at a time
    # a model just refitted on the batch scores it with the features its fit computed, on either engine
    refitted, _ = model.adapted(batch, "always")
    parts.clear()
    with Client(cluster) as client, DaskEngine(client=client, partitions=4) as engine:
        again = engine.score(refitted, batch, inspections=10)
    assert not parts
    plain = FraudModel(model.config).fit(batch).score(batch, inspections=10)
    for name, result in (("refit-dask", again), ("refit-local", plain)):
        (tmp_path / name).mkdir()
        result.write(tmp_path / name)
    assert _digests(tmp_path / "refit-dask") == _digests(tmp_path / "refit-local")
    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    local.write(tmp_path / "local")
    distributed.write(tmp_path / "dask")
    assert _digests(tmp_path / "dask") == _digests(tmp_path / "local")
    assert local.reasons.equals(distributed.reasons)


def test_worker_processes_give_the_local_engines_features_and_files(parted, tmp_path):
    """The parts travel to worker processes (pickled with their kept lookups); their features come
    back whole, or slim while the claim tables stay with the workers and are scored there."""
    import pandas as pd
    from distributed import Client, LocalCluster

    _, batch, model = parted
    whole = model.features_.transform(batch)
    local = model.score(batch, inspections=10)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        with DaskEngine(client=client, partitions=3) as engine:
            features = engine.features(model.features_, batch)
            distributed = engine.score(model, batch, inspections=10)
        workers = {pid for pid in client.run(__import__("os").getpid).values()}
    assert __import__("os").getpid() not in workers
    for name in ("claim", "patient", "provider"):
        pd.testing.assert_frame_equal(features.table(name), whole.table(name), check_exact=True)
    for name, result in (("local", local), ("dask", distributed)):
        (tmp_path / name).mkdir()
        result.write(tmp_path / name)
    assert _digests(tmp_path / "dask") == _digests(tmp_path / "local")


def test_claim_rows_come_from_the_workers_parts_in_the_order_asked(parted, cluster):
    import pandas as pd
    from distributed import Client

    _, batch, model = parted
    whole = model.features_.transform(batch).claims
    with Client(cluster) as client, DaskEngine(client=client, partitions=3) as engine:
        features, parts = engine.part_features(model.features_, batch)
        assert len(parts.futures) == 3 and features.claims.shape[1] < whole.shape[1]  # the full tables stayed behind
        asked = np.array([5, 0, len(whole) - 1, 3, 4_000])
        pd.testing.assert_frame_equal(parts.rows(asked), whole.iloc[asked], check_exact=True)
        none = parts.rows(np.zeros(0, dtype=np.int64), columns=["cost_z", "cohort_lift"])
        assert len(none) == 0 and list(none.columns) == ["cost_z", "cohort_lift"]


class _LostWorker:
    """An executor whose worker dies: ``score`` must analyse the graph itself."""

    def submit(self, fn, *args):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future = Future()
        future.set_exception(BrokenProcessPool("worker killed"))
        return future


def test_graph_analysed_in_a_worker_process_gives_the_same_bits(parted, tmp_path):
    from joblib.externals.loky import get_reusable_executor

    _, batch, model = parted
    here = model.score(batch, inspections=10, executor=None)
    worker = get_reusable_executor(max_workers=1)
    elsewhere = model.score(batch, inspections=10, executor=worker)
    assert worker.submit(__import__("os").getpid).result() != __import__("os").getpid()  # really another process
    lost = model.score(batch, inspections=10, executor=_LostWorker())
    for name, result in (("here", here), ("elsewhere", elsewhere), ("lost", lost)):
        (tmp_path / name).mkdir()
        result.write(tmp_path / name)
    assert _digests(tmp_path / "elsewhere") == _digests(tmp_path / "here") == _digests(tmp_path / "lost")
    assert here.summary["dense_blocks"] > 0 and "score_rings" in here.providers.columns  # the graph did run


def test_no_worker_to_be_had_means_the_graph_is_analysed_in_process(parted, monkeypatch):
    import fraudkit.pipeline as pipeline

    def refuse(n_claims):
        raise OSError("cannot start a process here")

    monkeypatch.setattr(pipeline, "_graph_worker", refuse)
    _, batch, model = parted
    result = model.score(batch, inspections=10)  # executor="auto"
    assert result.providers.equals(model.score(batch, inspections=10, executor=None).providers)


def test_graph_analyses_started_while_refitting_are_taken_over(parted, tmp_path, monkeypatch):
    import fraudkit.pipeline as pipeline

    monkeypatch.setattr(pipeline, "GRAPH_WORKER_FROM_CLAIMS", 0)  # the worker process even for 9,000 claims
    _, batch, model = parted
    refitted, note = model.adapted(batch, "always")
    assert note and refitted._graph_job.pending is not None  # the analyses are under way in the worker
    taken = refitted.score(batch, inspections=10)
    plain = FraudModel(model.config).fit(batch).score(batch, inspections=10, executor=None)
    for name, result in (("taken", taken), ("plain", plain)):
        (tmp_path / name).mkdir()
        result.write(tmp_path / name)
    assert _digests(tmp_path / "taken") == _digests(tmp_path / "plain")
    # with propagation seeds the detectors differ: the analyses are run again, propagation with them
    seeded, _ = model.adapted(batch, "always")
    first = batch.providers["provider_id"].iloc[0]
    result = seeded.score(batch, inspections=10, seeds={"providers": [first]})
    assert "score_propagation" in result.providers.columns and result.summary["propagation_seeds"] == 1


def test_score_cli_engine_dask_with_a_scheduler_address(parted, cluster):
    from fraudkit.cli import app

    root, _, _ = parted
    runner = CliRunner()
    common = ["score", str(root / "batch"), "--model", str(root / "model"), "-k", "5", "--quiet", "--no-report"]
    done = runner.invoke(app, common + ["--out", str(root / "out-local")])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, common + ["--out", str(root / "out-dask"), "--engine", "dask",
                                        "--scheduler", cluster.scheduler_address])
    assert done.exit_code == 0, done.output
    assert _digests(root / "out-dask") == _digests(root / "out-local")


def test_unknown_engine_exits_2(parted, tmp_path):
    from fraudkit.cli import app

    root, _, _ = parted
    done = CliRunner().invoke(app, ["score", str(root / "batch"), "--model", str(root / "model"),
                                    "--out", str(tmp_path / "o"), "--engine", "spark", "--quiet"])
    assert done.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_start_workers_starts_the_graph_worker_and_loads_the_forest_walk():
    """In a fresh process: before a large batch is validated, the worker process comes up with the
    graph detectors imported, and the compiled forest walk is loaded on a thread."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import os, sys, threading
        from fraudkit.detectors import _iforest
        from fraudkit.pipeline import GRAPH_WORKER_FROM_CLAIMS, _graph_worker, start_workers
        assert not _iforest._forest_depths.signatures
        start_workers(100)  # a small batch: nothing to start
        assert not [t for t in threading.enumerate() if t.name == "fraudkit-warm-up"]
        start_workers(GRAPH_WORKER_FROM_CLAIMS)
        for t in threading.enumerate():
            if t.name == "fraudkit-warm-up":
                t.join()
        assert _iforest._forest_depths.signatures, "the forest walk was not loaded"
        worker = _graph_worker(GRAPH_WORKER_FROM_CLAIMS)
        pid, imported = worker.submit(lambda: (os.getpid(), "fraudkit.graph" in sys.modules)).result()
        assert pid != os.getpid() and imported
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
