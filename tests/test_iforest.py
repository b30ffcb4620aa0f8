"""IsolationForestDetector: measured quality on planted fraud, the detector contract, readable reasons."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fraudkit.detectors import EXPLAIN_COLUMNS, BaseDetector, IsolationForestDetector, rollup
from fraudkit.evaluate import evaluate
from fraudkit.features import FeatureBuilder, make_toy_batch


@pytest.fixture(scope="module")
def toy():
    batch, labels = make_toy_batch(6000, seed=0)
    return batch, labels, FeatureBuilder().fit(batch).transform(batch)


@pytest.fixture(scope="module")
def fitted(toy):
    _, _, f = toy
    return IsolationForestDetector(random_state=0).fit(f.claims)


def test_finds_planted_claims_and_providers(toy, fitted):
    batch, labels, f = toy
    scores = fitted.scores(f.claims)
    m = evaluate(labels, batch.claims, scores, rollup(scores, batch.claims)["score"])
    # measured: PR-AUC 0.69 (base rate 0.074), ROC-AUC 0.98, the 5 planted hospitals are the top 5;
    # top-5 % recall 1.0 over-charging, 0.91 fake admissions, 0.68 phantom, 0.62 split stays
    assert m["claims.pr_auc"] > 0.55
    assert m["claims.roc_auc"] > 0.93
    assert m["providers.precision_at_k"] >= 0.8
    for scheme, floor in (("over_charging", 0.85), ("fake_admission", 0.75), ("phantom_services", 0.5),
                          ("decomposed_stay", 0.45)):
        assert m[f"claims.recall_top.{scheme}"] >= floor, scheme


def test_provider_level_forest_ranks_planted_hospitals(toy):
    _, labels, f = toy
    det = IsolationForestDetector(entity="provider", random_state=0, n_estimators=300).fit(f.providers)
    top = det.scores(f.providers).nlargest(8).index
    assert labels.fraudulent("providers").reindex(top).sum() >= 3


def test_strongest_signal_keeps_one_extreme_feature_the_forest_dilutes(toy):
    """A clean provider with one signal far out (an item billed twice on many claims) and nothing
    else odd: the strongest-signal score ranks it first and, on a batch this small (fewer than
    MIN_REFERENCE_ROWS providers: the fit-time scaling), equals its first reason's contribution."""
    _, labels, f = toy
    det = IsolationForestDetector(entity="provider", random_state=0, n_estimators=300).fit(f.providers)
    clean = labels.providers.loc[~labels.fraudulent("providers").to_numpy(), "provider_id"]
    target = f.providers.index[f.providers.index.isin(clean)][0]
    X = f.providers.copy()
    X.loc[target, "dup_claim_sig"] = X["dup_claim_sig"].max() + 40.0
    signal = det.strongest_signal(X)
    assert signal.idxmax() == target and (signal >= 0).all()
    first = det.explain(X.loc[[target]], top=1)
    assert first["feature"].tolist() == ["dup_claim_sig"]
    assert first["contribution"].iloc[0] == pytest.approx(signal[target])
    assert "twice on the same day" in first["reason"].iloc[0]
    # without the planted value the provider is unremarkable on that signal
    assert det.strongest_signal(f.providers)[target] < signal[target] - 10


def test_strongest_signal_is_measured_against_the_rows_scored(toy, fitted):
    """A feature shifted for a whole batch (drift) is nobody's strongest signal; a handful of
    rows (fewer than MIN_REFERENCE_ROWS) is measured against the fit-time scaling instead."""
    from fraudkit.detectors._iforest import MIN_REFERENCE_ROWS

    _, _, f = toy
    shifted = f.claims.copy()
    shifted["cost_z"] += 25.0
    before, after = fitted.strongest_signal(f.claims), fitted.strongest_signal(shifted)
    assert np.allclose(before.to_numpy(), after.to_numpy())
    assert (fitted.scores(shifted) != fitted.scores(f.claims)).any()  # the forest keeps its fit-time scaling
    few = MIN_REFERENCE_ROWS - 1
    assert fitted.strongest_signal(shifted.iloc[:few]).median() > 20 > before.iloc[:few].median()
    # scores_with_signal gives the forest's own scores
    forest, _ = fitted.scores_with_signal(f.claims)
    assert np.array_equal(forest.to_numpy(), fitted.scores(f.claims).to_numpy())


def test_contract(toy, fitted):
    _, _, f = toy
    assert isinstance(fitted, BaseDetector) and fitted.entity == "claim"
    params = IsolationForestDetector(n_estimators=50, max_samples=64, random_state=3).get_params()
    assert params["n_estimators"] == 50 and params["max_samples"] == 64 and params["random_state"] == 3
    assert clone(fitted).get_params() == fitted.get_params()
    assert len(fitted.decision_scores_) == len(f.claims)
    assert fitted.predict(f.claims).mean() == pytest.approx(0.05, abs=0.01)
    again = IsolationForestDetector(random_state=0).fit(f.claims)
    np.testing.assert_array_equal(again.score_samples(f.claims), fitted.score_samples(f.claims))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.score_samples(f.claims.iloc[:100]), fitted.score_samples(f.claims.iloc[:100]))
    with pytest.raises(ValueError, match="lacks the columns"):
        fitted.score_samples(f.claims.drop(columns=["cost_z"]))
    with pytest.raises(TypeError):
        fitted.score_samples(f.claims.to_numpy())


def test_higher_is_more_suspicious_and_scores_are_local_to_the_row(toy, fitted):
    _, labels, f = toy
    s = fitted.scores(f.claims)
    y = labels.fraudulent("claims").reindex(s.index, fill_value=False)
    assert s[y].mean() > s[~y].mean()
    # scoring a subset gives the same numbers (no batch-level state at scoring time)
    np.testing.assert_allclose(fitted.score_samples(f.claims.iloc[10:20]), s.iloc[10:20].to_numpy())


def test_explain_gives_inspector_sentences(toy, fitted):
    _, labels, f = toy
    scheme = labels.claims.set_index("claim_id").fraud_type
    over = scheme[scheme == "over_charging"].index[:5]
    fake = scheme[scheme == "fake_admission"].index[:5]
    expl = fitted.explain(f.claims.loc[over.union(fake)], top=3)
    assert list(expl.columns) == EXPLAIN_COLUMNS
    assert expl.groupby("id").size().max() <= 3 and (expl.contribution > 0).all()
    first = expl[expl["rank"] == 1].set_index("id").reason
    over_text = " ".join(expl[expl.id.isin(over)].reason)
    assert "catalogue" in over_text or "twice on the same day" in over_text
    fake_text = " ".join(expl[expl.id.isin(fake)].reason)
    assert "stay" in fake_text and "× the group median" in fake_text
    assert first.str.len().gt(10).all()


def test_compiled_forest_scores_equal_scikit_learn(toy):
    from fraudkit.detectors._iforest import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed: scikit-learn scores are used directly")
    _, _, f = toy
    for max_features in (1.0, 0.6):
        det = IsolationForestDetector(random_state=1, max_features=max_features, n_estimators=50).fit(f.claims)
        t = det._scaled(det._matrix(f.claims), f.claims)
        np.testing.assert_array_equal(det.flat_forest_.score_samples(t), det.forest_.score_samples(t))


def test_repeated_rows_are_walked_once_with_the_same_scores(toy, monkeypatch):
    """A table where most rows repeat (patients alike) is walked on its distinct rows; the scores
    are the bits of walking every row, and rows that only share a hash are never merged."""
    from fraudkit.detectors import _iforest

    if not _iforest.HAVE_NUMBA:
        pytest.skip("numba not installed: scikit-learn scores are used directly")
    _, _, f = toy
    det = IsolationForestDetector(random_state=1, n_estimators=50).fit(f.claims)
    t = det._scaled(det._matrix(f.claims), f.claims).astype(np.float32)
    rng = np.random.default_rng(0)
    alike = np.ascontiguousarray(t[rng.integers(0, 40, size=6_000)])  # 6,000 rows, at most 40 distinct
    alike[-1, 0] = -0.0 if alike[-1, 0] == 0 else alike[-1, 0]  # -0.0 and 0.0 differ in bits: both kept apart
    flat = det.flat_forest_
    every_row = flat.walk(alike)
    distinct, position = _iforest._distinct_rows(alike)
    assert len(distinct) <= 41 and np.array_equal(distinct[position].view(np.uint32), alike.view(np.uint32))
    expected = -(2.0 ** (-every_row / flat.denominator))
    np.testing.assert_array_equal(flat.score_samples(alike), expected)
    assert len(t) >= 4_000 and _iforest._distinct_rows(t) is None  # claims mostly distinct: walked as they are
    monkeypatch.setattr(_iforest, "_row_hashes", lambda words: np.zeros(len(words), np.uint64))  # every row collides
    assert _iforest._distinct_rows(alike) is None
    np.testing.assert_array_equal(flat.score_samples(alike), expected)


def test_tree_node_padding_is_zeroed_after_fit(toy):
    """scikit-learn leaves 7 padding bytes of every 64-byte node record unwritten (whatever the
    allocator left there: the shipped model had such bytes); fit zeroes them, so that the pickled
    model depends on the fit alone. Garbage written into the padding is cleared, every field kept."""
    from fraudkit.detectors._iforest import _clear_node_padding

    _, _, f = toy
    det = IsolationForestDetector(n_estimators=20, random_state=3).fit(f.claims)
    clean_bytes = pickle.dumps(det.forest_)
    for tree in det.forest_.estimators_:  # what an allocator may leave: every padding byte set
        state = tree.tree_.__getstate__()
        dirty = state["nodes"].copy()
        dirty.view(np.uint8).reshape(len(dirty), dirty.dtype.itemsize)[:, 57:] = 0xFF
        tree.tree_.__setstate__({**state, "nodes": dirty})
    assert pickle.dumps(det.forest_) != clean_bytes
    _clear_node_padding(det.forest_)
    assert pickle.dumps(det.forest_) == clean_bytes
    # the fields are intact: scikit-learn's own walk of the trees still gives the fitted scores
    t = det._scaled(det._matrix(f.claims), f.claims)
    assert np.array_equal(-det.forest_.score_samples(t), det.decision_scores_)


def test_forests_grown_side_by_side_are_the_ones_grown_alone(toy):
    """FraudModel.fit grows the patients' and providers' forests on a second thread: each is the
    forest a detector fitted alone grows (the same trees, scores and pickled bytes)."""
    from fraudkit.pipeline import FraudModel, ModelConfig

    batch, _, f = toy
    cfg = ModelConfig()
    model = FraudModel(cfg).fit(batch)
    for level, params in (("claim", cfg.claim_forest), ("patient", cfg.patient_forest), ("provider", cfg.provider_forest)):
        alone = IsolationForestDetector(entity=level, random_state=cfg.seed, contamination=cfg.flag_share, **params)
        alone.fit(getattr(f, f"{level}s"))
        together = model.detectors_[f"{level}_features"]
        assert np.array_equal(alone.decision_scores_, together.decision_scores_), level
        assert pickle.dumps(alone.forest_) == pickle.dumps(together.forest_), level
