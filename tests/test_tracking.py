"""fraudkit.tracking: what `fraudkit train`, `promote`, `compare`, `tune` log to MLflow, and serving.

One temporary SQLite store per module (creating its tables takes seconds), one
training run on the tiny synthetic batch, one small tuning run; the tests read
back what was logged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "models" / "config.yaml"
SCENARIO = REPO / "synthetic" / "tiny.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """Run the `fraudkit` console entry point in-process: (exit code, stdout + stderr)."""
    from fraudkit.cli import main

    capsys.readouterr()
    with mock.patch.object(sys, "argv", ["fraudkit", *map(str, args)]):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh tracking store for this module, also seen by the CLI and `mlflow models serve`."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        yield uri


@pytest.fixture(scope="module")
def client(store):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.fixture(scope="module")
def trained(store, tiny_batch_dir, tmp_path_factory):
    """`fraudkit train` on the tiny batch through the CLI: (run id, saved model folder, output)."""
    from fraudkit.cli import main

    out = tmp_path_factory.mktemp("model") / "model"
    argv = ["fraudkit", "train", str(tiny_batch_dir), "--config", str(CONFIG), "--register", "--out", str(out),
            "--scenario", str(SCENARIO), "--run-name", "test", "-q"]
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with mock.patch.object(sys, "argv", argv), redirect_stdout(buffer):
        try:
            main()
        except SystemExit as exc:  # Typer exits 0 after a command
            assert not exc.code, f"train exited {exc.code}: {buffer.getvalue()}"
    text = " ".join(buffer.getvalue().split())
    run_id = re.search(r"Run id: ([0-9a-f]{32})", text).group(1)
    return run_id, out, text


# ---------------------------------------------------------------------- train
def test_train_logs_params_metrics_and_data(trained, client, tiny_batch_dir, store):
    from fraudkit.io import batch_fingerprint, load_batch

    run_id, out, text = trained
    assert f"mlflow ui --backend-store-uri {store}" in text
    run = client.get_run(run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    # the config, flattened: every setting of models/config.yaml
    from fraudkit.pipeline import ModelConfig
    from fraudkit.tracking import flatten

    expected = flatten(ModelConfig.from_yaml(CONFIG).to_dict())
    assert {key: params.get(key) for key in expected} == expected
    assert "weights.rings" in expected and expected["graph.dense_blocks"] == "{}"
    # the data and the split
    fingerprint = batch_fingerprint(tiny_batch_dir)
    assert params["data.fingerprint"] == fingerprint == tags["data.fingerprint"]
    assert tags["scenario"] == "tiny"
    assert params["split"] == "time" and params["split.holdout"] == "0.3"
    n = len(load_batch(tiny_batch_dir).claims)
    held_out = metrics["claims.n"]
    assert int(params["split.train_claims"]) + held_out == n
    assert 0.2 * n < held_out < 0.4 * n
    # metrics: present, in range, and better than chance on the planted fraud
    for name in ("providers.precision_at_k", "providers.recall_at_k", "providers.money_at_k", "providers.pr_auc",
                 "providers.roc_auc", "claims.pr_auc", "claims.roc_auc", "claims.recall_top"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["k"] == 20
    assert metrics["claims.pr_auc"] > metrics["claims.fraud_share"]
    assert metrics["providers.precision_at_k"] > metrics["providers.fraudulent"] / metrics["providers.n"]
    schemes = {m.split(".", 2)[2] for m in metrics if m.startswith("providers.recall_at_k.")}
    assert {"phantom_services", "upcoding", "collusion_ring"} <= schemes
    assert any(m.startswith("claims.recall_top.") for m in metrics)


def test_train_logs_figures_scenario_and_model(trained, client):
    import mlflow

    run_id, out, _ = trained
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(out.parent / "arts")))
    for figure in ("pr_curve.png", "feature_importance.png", "scheme_recall.png"):
        path = local / "figures" / figure
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000, figure
    assert (local / "scenario" / "tiny.yaml").read_text() == SCENARIO.read_text()
    logged = json.loads((local / "metrics.json").read_text())
    run_metrics = client.get_run(run_id).data.metrics
    assert logged["providers.precision_at_k"] == pytest.approx(run_metrics["providers.precision_at_k"])
    importance = pd.read_csv(local / "feature_importance.csv")
    assert {"claim features", "provider features", "detectors (top-k providers)"} <= set(importance["level"])
    assert (importance["importance"] >= 0).all() and importance["importance"].max() > 0
    top = pd.read_csv(local / "top_providers.csv")
    assert list(top["rank"][:3]) == [1, 2, 3]
    from fraudkit.pipeline import ModelConfig

    assert ModelConfig.from_yaml(local / "config.yaml").to_dict() == ModelConfig.from_yaml(CONFIG).to_dict()
    # the model: a pyfunc whose artifact is the saved fraudkit model, byte for byte
    model_uri = client.get_run(run_id).data.tags["fraudkit.model_uri"]
    model_dir = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(out.parent / "pyfunc")))
    assert "python_function" in (model_dir / "MLmodel").read_text()
    assert not (model_dir / "python_model.pkl").exists()  # logged from code: nothing but the fraudkit model is unpickled
    saved = model_dir / "artifacts" / "fraudkit_model"
    assert (saved / "model.joblib").read_bytes() == (out / "model.joblib").read_bytes()


def test_logged_model_is_the_measured_one(trained, client):
    """The model is fitted on the earlier part only; its manifest carries the held-out metrics."""
    run_id, out, _ = trained
    run = client.get_run(run_id)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trained_on"]["claims"] == int(run.data.params["split.train_claims"])
    assert manifest["training"]["data_fingerprint"] == run.data.params["data.fingerprint"]
    assert manifest["metrics"]["providers.precision_at_k"] == pytest.approx(run.data.metrics["providers.precision_at_k"])


def test_time_split_is_disjoint_and_in_time(tiny_batch):
    from fraudkit.errors import FraudkitError
    from fraudkit.tracking import time_split

    batch, labels = tiny_batch
    split = time_split(batch, 0.3)
    assert split.train.claims["admit_date"].max() < split.cutoff <= split.holdout.claims["admit_date"].min()
    assert set(split.train.claims["claim_id"]).isdisjoint(split.holdout.claims["claim_id"])
    assert len(split.train.claims) + len(split.holdout.claims) == len(batch.claims)
    assert set(split.holdout.items["claim_id"]) <= set(split.holdout.claims["claim_id"])
    assert set(split.holdout.claims["provider_id"]) == set(split.holdout.providers["provider_id"])
    held = split.holdout_labels(labels)
    assert set(held.claims["claim_id"]) == set(split.holdout.claims["claim_id"])
    with pytest.raises(FraudkitError, match="between 0 and 1"):
        time_split(batch, 1.5)


# ---------------------------------------------------------------------- registry
def test_register_promote_and_load_by_alias(trained, client, store):
    from fraudkit.pipeline import FraudModel
    from fraudkit.tracking import load_model_uri, promote

    run_id, out, text = trained
    assert "alias challenger" in text
    challenger = client.get_model_version_by_alias("fraudkit", "challenger")
    assert challenger.run_id == run_id
    version = promote(run_id, "champion")
    assert version.version == challenger.version  # registered once, not again
    assert set(version.aliases) >= {"champion", "challenger"}
    assert client.get_model_version_by_alias("fraudkit", "champion").run_id == run_id
    assert len(client.search_model_versions("name = 'fraudkit'")) == 1
    for uri in ("models:/fraudkit@champion", f"runs:/{run_id}/model", f"models:/fraudkit/{version.version}"):
        model = load_model_uri(uri)
        assert isinstance(model, FraudModel) and model.trained_on_ == json.loads((out / "manifest.json").read_text())["trained_on"]


def test_tampered_model_is_refused(trained, client, tmp_path):
    from fraudkit.errors import ModelError
    from fraudkit.pipeline import load_model
    from fraudkit.tracking import load_model_uri

    run_id, out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with open(copy / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="does not match its manifest"):
        load_model(copy)
    # the same file inside the tracking store: loading by alias refuses it too
    logged = client.get_logged_model(client.get_run(run_id).data.tags["fraudkit.model_uri"].split("/")[-1])
    stored = Path(logged.artifact_location.removeprefix("file://")) / "artifacts" / "fraudkit_model" / "model.joblib"
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(ModelError, match="does not match its manifest"):
            load_model_uri("models:/fraudkit@challenger")
    finally:
        stored.write_bytes(original)


def test_cli_errors_exit_2_with_one_paragraph(trained, capsys, tmp_path, tiny_batch_dir, monkeypatch):
    import fraudkit.cli._score  # noqa: F401  (registers `fraudkit score`, which loads models:/ URIs through tracking)

    code, text = run_cli(["promote", "0" * 32, "--alias", "champion"], capsys)
    assert code == 2 and "run '00000000000000000000000000000000' does not exist" in text and "Traceback" not in text
    code, text = run_cli(["compare", "champion", "no-such-alias"], capsys)
    assert code == 2 and "neither a run id nor an alias" in text
    code, text = run_cli(["score", str(tiny_batch_dir), "--model", "models:/fraudkit@nobody", "--out", tmp_path / "o", "-q"], capsys)
    assert code == 2 and "alias 'nobody'" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("claim_forest: {n_estimators: lots}\n")
    code, text = run_cli(["train", str(tiny_batch_dir), "--config", bad, "-q"], capsys)
    assert code == 2 and "claim_forest.n_estimators" in text and str(bad) in text
    bad.write_text("claim_forests: {}\n")
    code, text = run_cli(["train", str(tiny_batch_dir), "--config", bad, "-q"], capsys)
    assert code == 2 and "unknown key 'claim_forests'" in text
    assert not (tmp_path / "o").exists()
    # looking up a model in a store that does not exist does not create one
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    code, text = run_cli(["compare", "champion", "challenger"], capsys)
    assert code == 2 and "there is no tracking store" in text and not (tmp_path / "none.db").exists()


# ---------------------------------------------------------------------- pyfunc
def _small(batch, n_claims=600):
    from fraudkit.tracking import subset

    return subset(batch, np.arange(len(batch.claims)) < n_claims, "<small>")


def test_pyfunc_input_round_trips_and_scores(trained, tiny_batch):
    import mlflow

    from fraudkit.errors import FraudkitError
    from fraudkit.tracking import OUTPUT_COLUMNS, batch_to_frame, frame_to_batch

    run_id, _, _ = trained
    small = _small(tiny_batch[0])
    frame = batch_to_frame(small)
    assert set(frame["table"]) == {"patients", "providers", "claims", "items"}
    back = frame_to_batch(frame)
    for name in ("patients", "providers", "claims", "items"):
        pd.testing.assert_frame_equal(back.tables()[name].reset_index(drop=True), small.tables()[name].reset_index(drop=True),
                                      check_dtype=False, check_categorical=False)
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    out = pyfunc.predict(frame, params={"inspections": 4})
    assert list(out.columns) == OUTPUT_COLUMNS
    providers, claims = out[out["entity"] == "provider"], out[out["entity"] == "claim"]
    assert len(providers) == len(small.providers) and len(claims) == len(small.claims)
    assert providers["rank"].tolist() == list(range(1, len(providers) + 1))
    assert providers["selected"].sum() == 4 and providers["suspicion"].between(0, 1).all()
    assert claims["suspicion"].is_monotonic_decreasing
    with pytest.raises(FraudkitError, match="no 'table' column"):
        pyfunc.predict(frame.drop(columns="table"))


def test_mlflow_models_serve_scores_a_batch(trained, tiny_batch, store):
    """`mlflow models serve -m models:/fraudkit@champion --env-manager local` answers REST scoring."""
    import requests

    from fraudkit.tracking import promote, serving_request

    run_id, _, _ = trained
    promote(run_id, "champion")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = str(Path(sys.executable).parent)  # uvicorn and mlflow live beside the interpreter
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [str(Path(bindir) / "mlflow"), "models", "serve", "-m", "models:/fraudkit@champion", "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = open(Path(store.removeprefix("sqlite:///")).with_name("serve.log"), "wb")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"server exited: {Path(log.name).read_text()[-2000:]}"
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.3)
        small = _small(tiny_batch[0], 400)
        body = json.loads(json.dumps(serving_request(small, inspections=3, level="providers")))  # really JSON
        reply = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=60)
        assert reply.status_code == 200, reply.text[:1000]
        rows = pd.DataFrame(reply.json()["predictions"])
        assert set(rows["entity"]) == {"provider"} and len(rows) == len(small.providers)
        assert rows["selected"].sum() == 3 and rows.loc[rows["selected"], "rank"].tolist() == [1, 2, 3]
        assert rows["suspicion"].between(0, 1).all()
        bad = requests.post(f"http://127.0.0.1:{port}/invocations",
                            json={"dataframe_records": [{"table": "doctors", "x": 1}]}, timeout=30)
        assert bad.status_code >= 400 and "unknown table 'doctors'" in bad.text
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=5)
        log.close()


# ---------------------------------------------------------------------- tune and compare
@pytest.fixture(scope="module")
def tuned(store, tiny_batch_dir):
    from fraudkit.tracking import tune

    return tune(tiny_batch_dir, trials=2, config=CONFIG, seed=3)


def test_tune_logs_nested_trials_and_best(tuned, client):
    import mlflow

    parent = client.get_run(tuned.parent_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{tuned.parent_run_id}'")
    assert len(children) == 2
    assert all("providers.precision_at_k" in c.data.metrics and "claim_forest.max_samples" in c.data.params for c in children)
    best = parent.data.metrics["best.providers.precision_at_k"]
    assert best == max(c.data.metrics["providers.precision_at_k"] for c in children)
    assert best >= parent.data.metrics["baseline.providers.precision_at_k"]
    assert parent.data.params["tune.trials"] == "2" and "best.flag_share" in parent.data.params
    assert parent.data.tags["best_run_id"] in {c.info.run_id for c in children}
    local = Path(mlflow.artifacts.download_artifacts(run_id=tuned.parent_run_id, artifact_path="best_config.yaml"))
    from fraudkit.pipeline import ModelConfig

    assert ModelConfig.from_yaml(local).to_dict() == tuned.best_config.to_dict()


def test_compare_prints_metrics_side_by_side(tuned, capsys, client):
    a, b = tuned.trials["run_id"].tolist()
    code, text = run_cli(["compare", a, b], capsys)
    assert code == 0, text
    ma, mb = client.get_run(a).data.metrics, client.get_run(b).data.metrics
    name = "providers.precision_at_k"
    row = re.search(re.escape(name) + r" │ (\S+) │ (\S+) │ (\S+) │", text)
    assert row, text
    assert float(row.group(1)) == pytest.approx(ma[name], abs=1e-4)
    assert float(row.group(2)) == pytest.approx(mb[name], abs=1e-4)
    assert float(row.group(3)) == pytest.approx(mb[name] - ma[name], abs=1e-4)
    assert "Settings that differ" in text
    assert "different data" not in text  # same batch, same cut-off


def test_default_config_is_valid():
    from fraudkit.pipeline import ModelConfig
    from fraudkit.tracking import check_config

    config = ModelConfig.from_yaml(CONFIG)
    check_config(config, str(CONFIG))
    assert isinstance(config.seed, int) and isinstance(config.claim_forest, dict)


def test_weights_given_in_part_keep_the_other_defaults():
    from fraudkit.pipeline import DEFAULT_WEIGHTS, ModelConfig

    for config in (ModelConfig(weights={"rings": 2.0}), ModelConfig.from_dict({"weights": {"rings": 2.0}})):
        assert config.weights == {**DEFAULT_WEIGHTS, "rings": 2.0}
        assert config.weights["egonet"] == 0.0  # off by default, not the combination's fallback of 1


def test_provider_weights_are_checked_like_weights():
    from fraudkit.errors import FraudkitError
    from fraudkit.pipeline import ModelConfig
    from fraudkit.tracking import check_config

    assert ModelConfig().provider_weights == {"rings": 2.0}
    with pytest.raises(FraudkitError, match="provider weight 'ringz' names no detector"):
        ModelConfig.from_dict({"provider_weights": {"ringz": 2.0}})
    with pytest.raises(FraudkitError, match="provider_weights.rings must be a number ≥ 0"):
        check_config(ModelConfig(provider_weights={"rings": -1.0}))


def test_saved_model_bytes_are_reproducible(tiny_batch_dir, tmp_path):
    """`make model` must give the same bytes twice: fit and save here and in a process with another hash seed."""
    from fraudkit.io import load_batch
    from fraudkit.pipeline import FraudModel, ModelConfig, save_model
    from fraudkit.tracking import time_split

    code = (
        "import sys; from fraudkit.io import load_batch; from fraudkit.pipeline import FraudModel, ModelConfig, save_model;"
        "from fraudkit.tracking import time_split;"
        "b = time_split(load_batch(sys.argv[1]), 0.7).train;"
        "save_model(FraudModel(ModelConfig.from_yaml(sys.argv[2])).fit(b), sys.argv[3], {'k': 1})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", code, str(tiny_batch_dir), str(CONFIG), str(tmp_path / "b")],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    train_part = time_split(load_batch(tiny_batch_dir), 0.7).train
    save_model(FraudModel(ModelConfig.from_yaml(CONFIG)).fit(train_part), tmp_path / "a", {"k": 1})
    for name in ("model.joblib", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
