"""Measured quality on generated batches: the tiny fixture and a small default-scenario batch.

Thresholds sit well below what the current code measures (numbers in comments), so that
they catch a regression, not noise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudkit.detectors import IsolationForestDetector, rollup
from fraudkit.evaluate import compare_detectors, evaluate
from fraudkit.features import FeatureBuilder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tiny_batch):
    batch, labels = tiny_batch
    return batch, labels, FeatureBuilder().fit(batch).transform(batch)


@pytest.fixture(scope="module")
def default_40k(tmp_path_factory):
    from fraudkit.io import load_batch, load_labels
    from fraudkit.synthetic import Scenario, generate_to

    out = tmp_path_factory.mktemp("default40k") / "batch"
    generate_to(Scenario.from_yaml(REPO / "synthetic" / "default.yaml"), out, n_claims=40_000, seed=3)
    batch, labels = load_batch(out), load_labels(out)
    return batch, labels, FeatureBuilder().fit(batch).transform(batch)


def _forest_scores(f):
    """The claim forest, its claim scores and the provider forest's scores (seed 0)."""
    claim_forest = IsolationForestDetector(random_state=0).fit(f.claims)
    provider_forest = IsolationForestDetector(entity="provider", random_state=0).fit(f.providers)
    return claim_forest, claim_forest.scores(f.claims), provider_forest.scores(f.providers)


def test_tiny_claims_and_providers(tiny):
    batch, labels, f = tiny
    _, s, p = _forest_scores(f)
    m = evaluate(labels, batch.claims, s, p)
    # measured over tiny seeds 0/1/2: claims PR-AUC 0.49/0.49/0.45 (base rate ~0.05),
    # provider forest precision@k 0.57/0.63/0.59; bed hanging recall 0.78-0.96, fake admissions 0.70-1.0.
    # Tiny seed 0 has 36 bed-hanging claims: its recall is 0.58 (0.53-0.61 over forest seeds 0-5; 0.53-0.69
    # with drug_price_pct in the claim forest instead of drug_swap_lift), so one claim moves it by 0.03
    assert m["claims.pr_auc"] > 0.35
    assert m["claims.roc_auc"] > 0.8
    assert m["providers.precision_at_k"] >= 0.45
    assert m["claims.recall_top.bed_hanging"] >= 0.5
    assert m["claims.recall_top.fake_admission"] >= 0.6
    rolled = evaluate(labels, batch.claims, provider_scores=rollup(s, batch.claims)["score"])
    assert rolled["providers.precision_at_k"] >= 0.3  # measured 0.47/0.56/0.38


def test_tiny_beats_pyod_baselines_on_the_same_features(tiny):
    batch, labels, f = tiny
    table = compare_detectors(f, labels, batch.claims, random_state=0)
    ours = table.loc["fraudkit.IsolationForest", "claims.pr_auc"]
    both = table.loc["fraudkit.IsolationForest + strongest signal", "claims.pr_auc"]
    # measured: forest 0.61, with its strongest signal 0.58; ECOD 0.48, HBOS 0.42, COPOD 0.51,
    # KNN 0.46, PyOD IForest 0.56 (the signal's gain shows on larger batches: benchmarks/bench_detectors.py)
    for name in ("pyod.ECOD", "pyod.HBOS", "pyod.COPOD", "pyod.KNN"):
        assert ours > table.loc[name, "claims.pr_auc"], name
    assert ours > table.loc["pyod.IForest", "claims.pr_auc"] - 0.02
    for name in ("pyod.ECOD", "pyod.HBOS", "pyod.COPOD", "pyod.KNN", "pyod.IForest"):
        assert both > table.loc[name, "claims.pr_auc"], name


def test_default_scenario_small_batch(default_40k):
    batch, labels, f = default_40k
    claim_forest, s, p = _forest_scores(f)
    m = evaluate(labels, batch.claims, s, p)
    # measured (seed 3): claims PR-AUC 0.50, provider forest precision@k 0.73 (k = 40 of 104 providers)
    # and PR-AUC 0.87 (0.65 and 0.8 before the providers' shares entered as significance);
    # top-5 % recall: fake admissions 0.95, decomposed stays 0.87, card lending 0.84 (0.61 before
    # co_purchase_days), bed hanging 0.74, phantom 0.55
    assert m["claims.pr_auc"] > 0.4
    assert m["providers.precision_at_k"] >= 0.6
    assert m["providers.pr_auc"] >= 0.75
    for scheme in ("bed_hanging", "fake_admission", "phantom_services"):
        assert m[f"claims.recall_top.{scheme}"] >= 0.55, scheme
    assert m["claims.recall_top.card_lending"] >= 0.7
    expl = claim_forest.explain(f.claims.loc[s.nlargest(50).index])
    assert expl["reason"].str.len().gt(10).all() and expl["id"].nunique() == 50
