"""The generator's contract: valid batches for any seed and shipped scenario, determinism,
exact sizes, file formats and parts, drift and label noise, and clear refusals of bad scenarios."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fraudkit.cli import app
from fraudkit.io import load_batch, load_labels
from fraudkit.schemes import SCHEMES
from fraudkit.synthetic import Scenario, ScenarioError, builtin_scenario, generate, generate_to

SHIPPED = ("tiny", "default", "hard")


def scenario(name: str) -> Scenario:
    return Scenario.from_yaml(builtin_scenario(name))


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- valid batches
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(SHIPPED), seed=st.integers(0, 2**32 - 1), fmt=st.sampled_from(["parquet", "csv"]),
       n_claims=st.integers(1_500, 6_000))
def test_any_seed_and_scenario_writes_a_valid_batch(tmp_path_factory, name, seed, fmt, n_claims):
    out = tmp_path_factory.mktemp("gen") / "batch"
    summary = generate_to(scenario(name), out, n_claims=n_claims, seed=seed, fmt=fmt)
    batch = load_batch(out)  # refuses anything that breaks the contract
    labels = load_labels(out)
    assert len(batch.claims) == n_claims == summary.claims
    assert len(batch.items) == summary.items
    assert set(labels.claims.claim_id) == set(batch.claims.claim_id)
    assert set(labels.providers.provider_id) == set(batch.providers.provider_id)
    assert set(labels.patients.patient_id) == set(batch.patients.patient_id)
    names = set(";".join(pd.concat([labels.claims.fraud_type, labels.providers.fraud_type])).split(";")) - {""}
    assert names <= set(SCHEMES)
    assert all(p.suffix == f".{fmt}" for p in out.rglob("*") if p.is_file())


def test_in_memory_batch_passes_the_contract_and_matches_the_written_one(tmp_path):
    sc = scenario("tiny")
    batch, labels = generate(sc, n_claims=3_000, seed=5)  # validate=True: raises on any contract break
    generate_to(sc, tmp_path / "b", n_claims=3_000, seed=5)
    loaded = load_batch(tmp_path / "b")
    pd.testing.assert_frame_equal(batch.claims.reset_index(drop=True), loaded.claims.reset_index(drop=True), check_dtype=False)
    assert batch.items.amount.sum() == pytest.approx(loaded.items.amount.sum())
    assert (labels.claims.fraud_type != "").sum() == (load_labels(tmp_path / "b").claims.fraud_type != "").sum()


def test_money_rules_hold_exactly(tiny_batch):
    batch, _ = tiny_batch
    c = batch.claims
    cents = lambda s: np.round(s.to_numpy() * 100).astype(np.int64)  # noqa: E731
    assert (cents(c.fund_paid) <= cents(c.eligible_amount)).all()
    assert (cents(c.eligible_amount) <= cents(c.total_amount)).all()
    assert (cents(c.self_paid) == cents(c.total_amount) - cents(c.fund_paid)).all()
    sums = batch.items.assign(cents=cents(batch.items.amount)).groupby("claim_id").cents.sum()
    assert (sums.reindex(c.claim_id).to_numpy() == cents(c.total_amount)).all()
    assert (c.fund_paid < c.eligible_amount).any() and (c.eligible_amount < c.total_amount).any()


def test_every_care_type_provider_type_and_tier_appears(tiny_batch):
    batch, _ = tiny_batch
    assert set(batch.claims.care_type.astype(str)) == {"outpatient", "chronic", "inpatient", "pharmacy"}
    hospitals = batch.providers[batch.providers.provider_type == "hospital"]
    assert set(hospitals.tier) == {1, 2, 3} and (hospitals.beds > 0).all()
    assert set(batch.providers.provider_type.astype(str)) == {"hospital", "clinic", "pharmacy"}
    assert batch.claims.doctor_id.dropna().str.fullmatch(r"D\d{6}").all()
    assert batch.items.item_code.str.fullmatch(r"(DRG|EXM|TRT|CSM|BED|OTH)\d{4}").all()


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    sc = scenario("tiny")
    generate_to(sc, tmp_path / "a", n_claims=4_000, seed=3)
    generate_to(sc, tmp_path / "b", n_claims=4_000, seed=3)
    generate_to(sc, tmp_path / "c", n_claims=4_000, seed=4)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert a["claims.parquet"] != c["claims.parquet"] and a["items.parquet"] != c["items.parquet"]


def test_parts_hold_the_same_rows_as_one_file(tmp_path):
    sc = scenario("tiny")
    generate_to(sc, tmp_path / "one", n_claims=4_000, seed=2)
    generate_to(sc, tmp_path / "parts", n_claims=4_000, seed=2, parts=3)
    assert len(list((tmp_path / "parts" / "items").glob("*.parquet"))) == 3
    assert len(list((tmp_path / "parts" / "claims").glob("*.parquet"))) == 3
    one, parts = load_batch(tmp_path / "one"), load_batch(tmp_path / "parts")
    pd.testing.assert_frame_equal(one.claims, parts.claims)
    pd.testing.assert_frame_equal(one.items, parts.items)


def test_csv_and_parquet_carry_the_same_batch(tmp_path):
    sc = scenario("tiny")
    generate_to(sc, tmp_path / "p", n_claims=2_500, seed=9)
    generate_to(sc, tmp_path / "c", n_claims=2_500, seed=9, fmt="csv")
    p, c = load_batch(tmp_path / "p"), load_batch(tmp_path / "c")
    pd.testing.assert_frame_equal(p.claims, c.claims, check_dtype=False)
    assert np.allclose(p.items.amount, c.items.amount)


# --------------------------------------------------------------------------- knobs
def test_drift_moves_prices_and_stays_after_its_start():
    base = {"claims": 30_000, "period": {"start": "2024-01-01", "end": "2024-06-30"}}
    drifted = Scenario.from_dict({**base, "drift": {"start": "2024-04-01", "drug_price": -0.3, "length_of_stay": -0.3}})
    batch, _ = generate(drifted, seed=1, validate=False)
    items = batch.items[batch.items.item_kind == "drug"].merge(
        batch.claims[["claim_id", "provider_id"]], on="claim_id").merge(batch.providers, on="provider_id")
    items = items[items.provider_type == "hospital"]
    late = items.service_date >= "2024-04-01"
    ratio = items[late].groupby("item_code").unit_price.median() / items[~late].groupby("item_code").unit_price.median()
    assert ratio.dropna().median() == pytest.approx(0.7, abs=0.01)
    stays = batch.claims[batch.claims.care_type == "inpatient"]
    los = (stays.discharge_date - stays.admit_date).dt.days
    assert los[stays.admit_date >= "2024-04-01"].mean() < 0.85 * los[stays.admit_date < "2024-03-15"].mean()


def test_label_noise_flips_about_the_asked_share():
    clean = Scenario.from_yaml(builtin_scenario("tiny"))
    noisy = Scenario.from_dict({**clean.settings, "fraud": {**clean.settings["fraud"], "label_noise": 0.2}})
    (b0, l0), (b1, l1) = generate(clean, seed=4, validate=False), generate(noisy, seed=4, validate=False)
    pd.testing.assert_frame_equal(b0.claims, b1.claims)  # noise touches labels only
    bad0 = l0.claims.fraud_type != ""
    bad1 = l1.claims.fraud_type != ""
    lost = (bad0 & ~bad1).sum() / bad0.sum()
    assert 0.12 < lost < 0.28
    assert (~bad0 & bad1).sum() == pytest.approx((bad0 & ~bad1).sum(), abs=2)


def test_camouflage_share_knob_controls_fraud_volume():
    low = Scenario.from_dict({"claims": 20_000, "fraud": {"schemes": {"over_charging": {"share": [0.02, 0.04]}}}})
    high = Scenario.from_dict({"claims": 20_000, "fraud": {"schemes": {"over_charging": {"share": [0.6, 0.7]}}}})
    counts = []
    for sc in (low, high):
        _, labels = generate(sc, seed=8, validate=False)
        counts.append(labels.claims.fraud_type.str.contains("over_charging").sum())
    assert counts[1] > 5 * counts[0]


def test_scheme_can_be_switched_off():
    sc = Scenario.from_dict({"claims": 5_000, "fraud": {"schemes": {"phantom_services": {"providers": 0},
                                                                      "card_lending": {"patients_per_million": 0}}}})
    _, labels = generate(sc, seed=1, validate=False)
    text = ";".join(labels.claims.fraud_type)
    assert "phantom_services" not in text and "card_lending" not in text
    assert "over_charging" in text


# --------------------------------------------------------------------------- bad scenarios
@pytest.mark.parametrize("text, key", [
    ("fraud:\n  schemes:\n    phantom_service: {providers: 2}\n", "fraud.schemes.phantom_service"),
    ("claim: 100\n", "claim"),
    ("population:\n  ebmi_share: 1.5\n", "population.ebmi_share"),
    ("population:\n  ebmi_share: lots\n", "population.ebmi_share"),
    ("period: {start: 2024-03-01, end: 2024-01-01}\n", "period.end"),
    ("fraud:\n  schemes:\n    upcoding: {share: [0.5, 0.1]}\n", "fraud.schemes.upcoding.share"),
    ("fraud:\n  schemes:\n    upcoding: {share: 0.3}\n", "fraud.schemes.upcoding.share"),
    ("drift: {start: someday}\n", "drift.start"),
    ("providers: {min_hospitals: 2.5}\n", "providers.min_hospitals"),
])
def test_bad_scenario_is_refused_naming_the_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=f"'{key}'"):
        Scenario.from_yaml(path)


def test_not_yaml_and_missing_file_are_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("claims: [1, 2\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        Scenario.from_yaml(path)
    with pytest.raises(ScenarioError, match="does not exist"):
        Scenario.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match="at least 100"):
        generate(scenario("tiny"), n_claims=10)


# --------------------------------------------------------------------------- CLI
def test_cli_generate_writes_and_summarises(tmp_path):
    out = tmp_path / "batch"
    result = CliRunner().invoke(app, ["generate", "--scenario", str(builtin_scenario("tiny")), "--claims", "3000",
                                      "--seed", "7", "--out", str(out), "--parts", "2"])
    assert result.exit_code == 0, result.output
    assert "3,000 claims" in result.output and "fraudulent providers per scheme" in result.output
    assert len(load_batch(out).claims) == 3000
    assert (out / "labels" / "providers.parquet").exists()


def test_cli_generate_refuses_bad_scenario_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fraud: {schemes: {bed_hangin: {providers: 1}}}\n")
    result = CliRunner().invoke(app, ["generate", "--scenario", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bed_hanging" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
