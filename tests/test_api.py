"""The Python API end to end on the tiny scenario: generate, train, score, explain, evaluate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import fraudkit
from fraudkit import api as fraudkit_api
from fraudkit.errors import FraudkitError, ModelError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    return fraudkit.generate("tiny", seed=0)


@pytest.fixture(scope="module")
def model(tiny):
    return fraudkit.train(tiny[0])


@pytest.fixture(scope="module")
def result(tiny, model):
    return fraudkit.score(tiny[0], model, inspections=10)


def test_import_is_light():
    code = ("import sys, fraudkit; heavy = [m for m in ('sklearn', 'networkx', 'mlflow', 'plotly', 'fraudkit.pipeline') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_public_names():
    for name in ("Batch", "BatchError", "load_batch", "load_labels", "write_batch", "__version__", "generate",
                 "train", "score", "explain_provider", "ego_network", "shared_patients", "evaluate"):
        assert name in fraudkit.__all__ and hasattr(fraudkit, name), name
    from fraudkit.graph import ego_network

    assert fraudkit.ego_network is ego_network


def test_evaluate_is_function_and_module(result, tiny):
    # the API function and the metrics module share the name; both must keep working
    from fraudkit.evaluate import evaluation_table
    import fraudkit.evaluate as metrics_module

    assert callable(fraudkit.evaluate) and metrics_module.evaluation_table is evaluation_table
    assert fraudkit.evaluate(result, tiny[1])["k"] == 10


def test_end_to_end(tiny, model, result):
    batch, labels = tiny
    top = result.top()
    assert len(top) == 10 and top["rank"].tolist() == list(range(1, 11)) and top["inspect"].all()

    case = fraudkit.explain_provider(result, top.provider_id[0])
    row = result.providers.iloc[0]
    assert (case.provider_id, case.rank, case.inspect) == (row.provider_id, 1, True)
    assert case.money_at_stake == pytest.approx(row.money_at_stake)
    assert len(case.reasons) and case.reasons["strength"].is_monotonic_decreasing
    assert set(case.claims["provider_id"]) == {case.provider_id}
    assert len(case.claims) == (batch.claims.provider_id == case.provider_id).sum()
    assert (case.claims["cost_ratio"].dropna() > 0).all()
    assert case.evidence["claim_id"].tolist() == [c for c in row.evidence_claims.split(";") if c]
    assert case.schemes == [s for s in (row.schemes or "").split(";") if s]
    text = repr(case)
    assert case.provider_id in text and "evidence claims to pull" in text and "rank 1" in text
    assert "<ol>" in case._repr_html_()
    # every detector's score is shown, the strongest-signal one included, and no sentence twice
    assert {"score_provider_features", "score_provider_signals", "score_rings"} <= set(result.providers.columns)
    assert not case.reasons.duplicated(["reason"]).any()
    for text in result.providers["reasons"]:
        parts = [p for p in text.split(" | ") if p]
        assert len(parts) == len(set(parts)), text

    m = fraudkit.evaluate(result, labels)
    chance = m["providers.fraudulent"] / m["providers.n"]
    assert m["k"] == 10
    assert m["providers.precision_at_k"] >= 2 * chance  # measured 0.9 against chance 0.26
    assert fraudkit.evaluate(result, labels, k=5)["k"] == 5


def test_explain_unknown_provider(result):
    with pytest.raises(FraudkitError, match="NOPE"):
        fraudkit.explain_provider(result, "NOPE")


def test_case_figure(result):
    fig = fraudkit.explain_provider(result, result.top().provider_id[0]).cost_figure()
    assert fig.data and not any(str(p) in fig.to_json() for p in result.claims.patient_id.head(50))


def test_score_with_saved_model_folder(tiny, model, result, tmp_path):
    from fraudkit.pipeline import save_model

    folder = save_model(model, tmp_path / "model")
    again = fraudkit.score(tiny[0], folder, inspections=10)
    pd.testing.assert_frame_equal(again.providers, result.providers)
    assert isinstance(fraudkit_api.resolve_model(str(folder)), type(model))
    assert fraudkit_api.resolve_model(model) is model


def test_train_out_and_batch_folder(tiny, tmp_path):
    batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=3, out=tmp_path / "batch")
    assert (tmp_path / "batch" / "labels").is_dir() and len(batch.claims) == 2000
    model = fraudkit.train(tmp_path / "batch", {"flag_share": 0.04}, out=tmp_path / "model")
    assert model.config.flag_share == 0.04 and (tmp_path / "model" / "manifest.json").is_file()
    result = fraudkit.score(tmp_path / "batch", tmp_path / "model", inspections=3)
    assert result.summary["inspections"] == 3 and len(result.top()) == 3


def test_generate_accepts_names_paths_and_scenarios():
    from fraudkit.synthetic import Scenario

    by_name = fraudkit.generate("tiny", n_claims=500, seed=2)[0]
    by_path = fraudkit.generate(REPO / "synthetic" / "tiny.yaml", n_claims=500, seed=2)[0]
    by_object = fraudkit.generate(Scenario.from_yaml(REPO / "synthetic" / "tiny.yaml"), n_claims=500, seed=2)[0]
    pd.testing.assert_frame_equal(by_name.claims, by_path.claims)
    pd.testing.assert_frame_equal(by_name.claims, by_object.claims)
    with pytest.raises(FraudkitError):
        fraudkit.generate(42)


def test_bad_model_raises_model_error(tiny, tmp_path, monkeypatch):
    batch = tiny[0]
    with pytest.raises(ModelError, match="does not exist"):
        fraudkit.score(batch, tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="manifest"):
        fraudkit.score(batch, tmp_path / "empty")
    with pytest.raises(ModelError):
        fraudkit.score(batch, 3.14)
    monkeypatch.setattr(fraudkit_api, "DEFAULT_MODEL", tmp_path / "missing-default")
    with pytest.raises(ModelError, match="make model"):
        fraudkit.score(batch)


def test_tampered_model_is_refused(model, tmp_path, tiny):
    from fraudkit.pipeline import save_model

    folder = save_model(model, tmp_path / "model")
    with open(folder / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="does not match its manifest"):
        fraudkit.score(tiny[0], folder)


def test_cli_uses_the_same_resolver():
    from fraudkit.cli import _score

    assert _score.resolve_model is fraudkit_api.resolve_model


def test_bad_arguments(tiny, model):
    with pytest.raises(FraudkitError, match="inspections"):
        fraudkit.score(tiny[0], model, inspections=0)
    with pytest.raises(FraudkitError, match="provider_type"):
        fraudkit.score(tiny[0], model, provider_type="dentist")
    with pytest.raises(FraudkitError, match="track=True"):
        fraudkit.train(tiny[0], register=True)


def test_auto_refits_a_batch_large_enough_to_be_its_own_reference(tiny, model, monkeypatch):
    from fraudkit.pipeline import FraudModel

    batch = tiny[0]
    assert model.adapted(batch, "auto") == (model, "")  # a small batch: the model's statistics
    monkeypatch.setattr(FraudModel, "REFIT_FROM_CLAIMS", len(batch.claims))
    refitted, note = model.adapted(batch, "auto")
    assert refitted is not model and "its own reference" in note
    assert refitted.trained_on_["claims"] == len(batch.claims)
    assert model.adapted(batch, "never") == (model, "")


def test_scoring_the_batch_just_fitted_reuses_its_features_with_the_same_result(tiny, monkeypatch):
    import pickle

    from fraudkit.features import FeatureBuilder
    from fraudkit.pipeline import FraudModel

    batch = tiny[0]
    fitted = FraudModel().fit(batch)
    assert "_fitted_features" not in pickle.loads(pickle.dumps(fitted)).__dict__  # never saved with the model
    calls = []
    transform = FeatureBuilder.transform
    monkeypatch.setattr(FeatureBuilder, "transform", lambda self, b: calls.append(b) or transform(self, b))
    first = fitted.score(batch, inspections=10)  # features of fit
    again = fitted.score(batch, inspections=10)  # transformed again
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first.claims, again.claims)
    pd.testing.assert_frame_equal(first.providers, again.providers)
