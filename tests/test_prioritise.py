"""Prioritisation: combining detector scores and ranking providers for inspection."""

import numpy as np
import pandas as pd
import pytest

from fraudkit.prioritise import (
    PROVIDER_COLUMNS,
    combine_scores,
    money_at_stake,
    rank_providers,
    schemes_from_reasons,
    tail_probability,
)


def _noise(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"], index=[f"H{i:03d}" for i in range(n)])


def test_tail_probability_is_rank_over_n_and_ties_share_the_larger():
    p = tail_probability(pd.Series([3.0, 1.0, 3.0, 2.0, np.nan]))
    assert p.tolist()[:4] == [0.5, 1.0, 0.5, 0.75]
    assert p.iloc[4] == pytest.approx(np.exp(-1))  # missing = neutral evidence


def test_one_detector_at_the_very_top_beats_middling_agreement():
    scores = _noise(200, 0)
    scores.loc["H000"] = [100.0, 0.0, 0.0]  # only detector a sees it, but at the very top
    combined = combine_scores(scores)
    assert combined["evidence"].rank(ascending=False)["H000"] <= 10  # top 5 % of 200


def test_agreement_beats_a_single_detector():
    scores = _noise(200, 1)
    scores.loc["H001"] = [50.0, 0.0, 0.0]
    scores.loc["H002"] = [50.0, 50.0, 0.0]
    combined = combine_scores(scores)
    assert combined.loc["H002", "evidence"] > combined.loc["H001", "evidence"]
    assert combined["suspicion"].between(0, 1).all()


def test_skipped_and_zero_weight_detectors_do_not_count():
    scores = _noise(100, 2)
    scores["skipped"] = np.nan
    base = combine_scores(scores[["a", "b", "c"]])
    same = combine_scores(scores)
    pd.testing.assert_frame_equal(base, same)
    dropped = combine_scores(scores, weights={"c": 0.0})
    pd.testing.assert_frame_equal(dropped, combine_scores(scores[["a", "b"]]))
    with pytest.raises(ValueError, match="no detector"):
        combine_scores(scores[["skipped"]])


def test_peer_groups_compare_like_with_like():
    # pharmacies all score higher than hospitals on this detector; within groups the tops are H9 and R9
    idx = [f"H{i}" for i in range(10)] + [f"R{i}" for i in range(10)]
    scores = pd.DataFrame({"a": list(range(10)) + [100 + i for i in range(10)]}, index=idx)
    groups = pd.Series(["hospital"] * 10 + ["pharmacy"] * 10, index=idx)
    pooled = combine_scores(scores)["evidence"]
    peer = combine_scores(scores, groups=groups)["evidence"]
    assert pooled["H9"] < pooled["R0"]
    assert peer["H9"] == pytest.approx(peer["R9"])
    assert peer["H9"] > peer["R0"]


def _claims():
    return pd.DataFrame({
        "claim_id": ["c1", "c2", "c3", "c4", "c5"],
        "provider_id": ["H1", "H1", "H2", "H2", "R1"],
        "fund_paid": [100.0, 50.0, 1000.0, 10.0, 5.0],
        "suspicion": [0.9, 0.2, 0.5, 0.99, 0.1],
        "flagged": [True, False, True, True, False],
    })


def _providers():
    return pd.DataFrame({
        "provider_id": ["H1", "H2", "R1"],
        "provider_type": pd.Categorical(["hospital", "clinic", "pharmacy"]),
        "tier": [3, 0, 0], "region": ["3301", "3302", "3301"], "beds": [500, 0, 0],
    })


def test_money_at_stake_weights_flagged_claims_by_suspicion():
    m = money_at_stake(_claims())
    assert m.to_dict() == {"H1": 90.0, "H2": pytest.approx(509.9), "R1": 0.0}


def test_rank_providers_orders_by_evidence_and_carries_money_and_evidence():
    scores = pd.DataFrame({"suspicion": [0.5, 0.99, 0.1], "evidence": [1.0, 5.0, 0.2]}, index=["H1", "H2", "R1"])
    reasons = pd.DataFrame({"id": ["H2", "H2", "H2", "H1"], "reason": ["weak", "strong", "medium", "x"],
                            "strength": [0.1, 3.0, 1.0, 1.0]})
    ranked = rank_providers(scores, _claims(), _providers(), reasons, pd.Series({"H2": "upcoding"}))
    assert list(ranked.columns[: len(PROVIDER_COLUMNS)]) == PROVIDER_COLUMNS
    assert ranked["provider_id"].tolist() == ["H2", "H1", "R1"]
    assert ranked["rank"].tolist() == [1, 2, 3]
    top = ranked.iloc[0]
    assert top["reasons"] == "strong | medium | weak"
    assert top["schemes"] == "upcoding"
    assert top["evidence_claims"] == "c4;c3"  # flagged, most suspicious first
    assert top["flagged_claims"] == 2 and top["claims"] == 2
    assert top["money_at_stake"] == pytest.approx(509.9)
    assert ranked.set_index("provider_id").loc["R1", "evidence_claims"] == ""


def test_rank_providers_filters_and_budget():
    scores = pd.DataFrame({"suspicion": [0.5, 0.99, 0.1], "evidence": [1.0, 5.0, 0.2]}, index=["H1", "H2", "R1"])
    assert rank_providers(scores, _claims(), _providers(), inspections=1)["provider_id"].tolist() == ["H2"]
    assert rank_providers(scores, _claims(), _providers(), region="3301")["provider_id"].tolist() == ["H1", "R1"]
    assert rank_providers(scores, _claims(), _providers(), provider_type="pharmacy")["provider_id"].tolist() == ["R1"]


def test_ties_are_broken_deterministically():
    scores = pd.DataFrame({"suspicion": [0.5] * 3, "evidence": [1.0] * 3}, index=["H1", "H2", "R1"])
    claims = _claims().assign(flagged=False)
    ranked = rank_providers(scores, claims, _providers())
    assert ranked["provider_id"].tolist() == ["H1", "H2", "R1"]


def test_schemes_from_reasons_follows_the_strongest_reasons():
    reasons = pd.DataFrame({
        "id": ["H1", "H1", "H1", "H1"],
        "feature": ["readmit_15d_share", "shared_patients", "unit_price_ratio", "other"],
        "detector": ["provider_features", "rings", "claim_outliers", "x"],
        "strength": [1.0, 5.0, 3.0, 9.0],
    })
    assert schemes_from_reasons(reasons)["H1"] == "collusion_ring;drug_swapping"


def test_fenced_detector_only_accuses_clear_outliers():
    # a graph-like detector: everyone has some score, two providers are far out
    rng = np.random.default_rng(5)
    idx = [f"H{i:03d}" for i in range(300)]
    graph = pd.Series(rng.gamma(4.0, 5.0, 300), index=idx)
    graph[["H000", "H001"]] = [400.0, 300.0]
    tabular = pd.Series(rng.normal(size=300), index=idx)
    scores = pd.DataFrame({"graph": graph, "tabular": tabular})
    fenced = combine_scores(scores, fences={"graph": 3.0})["evidence"]
    unfenced = combine_scores(scores)["evidence"]
    # below the fence the graph detector neither accuses nor clears: the order is the tabular one
    rest = [i for i in idx if i not in ("H000", "H001")]
    assert (fenced[rest].rank() == tabular[rest].rank()).all()
    assert not (unfenced[rest].rank() == tabular[rest].rank()).all()
    # the far-out providers keep their evidence
    assert {"H000", "H001"} <= set(fenced.nlargest(5).index)
