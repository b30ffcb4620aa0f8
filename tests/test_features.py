"""Feature tables: documented columns, planted signals found, fit/transform discipline."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest

from fraudkit.features import (CLAIM_COLUMNS, CLAIM_MODEL_FEATURES, PATIENT_COLUMNS, PROVIDER_COLUMNS,
                               PROVIDER_MODEL_FEATURES, FeatureBuilder, Features, describe, make_toy_batch)
from fraudkit.io import Batch, validate_batch


@pytest.fixture(scope="module")
def toy():
    return make_toy_batch(6000, seed=0)


@pytest.fixture(scope="module")
def toy_features(toy):
    batch, _ = toy
    return FeatureBuilder().fit(batch).transform(batch)


def _scheme(labels, index) -> pd.Series:
    return labels.claims.set_index("claim_id")["fraud_type"].reindex(index).fillna("")


def test_tables_have_documented_columns_and_ids(toy, toy_features):
    batch, _ = toy
    f = toy_features
    assert isinstance(f, Features)
    assert list(f.claims.columns) == list(CLAIM_COLUMNS)
    assert list(f.patients.columns) == list(PATIENT_COLUMNS)
    assert list(f.providers.columns) == list(PROVIDER_COLUMNS)
    assert f.claims.index.name == "claim_id" and f.claims.index.equals(pd.Index(batch.claims.claim_id))
    assert set(f.patients.index) == set(batch.patients.patient_id)
    assert set(f.providers.index) == set(batch.providers.provider_id)
    assert set(CLAIM_MODEL_FEATURES) <= set(CLAIM_COLUMNS) and set(PROVIDER_MODEL_FEATURES) <= set(PROVIDER_COLUMNS)
    for table in (f.claims, f.patients, f.providers):
        assert np.isfinite(table.to_numpy(dtype=float)).all()


def test_planted_claim_signals_stand_out(toy, toy_features):
    _, labels = toy
    c = toy_features.claims
    scheme = _scheme(labels, c.index)
    legit = c[scheme == ""]
    fake = c[scheme == "fake_admission"]
    assert fake.los_ratio.median() > 2.0 and fake.los_z.median() > 3
    over = c[scheme == "over_charging"]
    assert (over.dup_lines > 0).mean() > 0.9 and over.price_ratio_max.median() == pytest.approx(1.8, rel=0.01)
    assert (legit.dup_lines > 0).mean() < 0.01 and legit.price_ratio_max.max() < 1.01
    phantom = c[scheme == "phantom_services"]
    assert phantom.exam_pattern_lift.median() > 10 and legit.exam_pattern_lift.quantile(0.99) < 3
    split = c[scheme == "decomposed_stay"]
    assert (split.readmit_15d + split.readmitted_15d).gt(0).mean() > 0.9
    assert legit.readmit_15d.mean() < 0.05
    hanging = c[scheme == "bed_hanging"]
    assert hanging.empty_day_share.median() > 0.4 and legit.empty_day_share.quantile(0.99) < 0.2


def test_planted_patient_and_provider_signals(toy, toy_features):
    _, labels = toy
    f = toy_features
    resellers = labels.claims[labels.claims.fraud_type == "drug_reselling"].claim_id
    pids = set(f.claims.loc[resellers].index.map(dict(zip(toy[0].claims.claim_id, toy[0].claims.patient_id))))
    top = f.patients.supply_ratio.nlargest(len(pids)).index
    assert len(pids & set(top)) / len(pids) >= 0.9
    # each reselling claim sells a drug its patient buys far faster than usual (measured: all 250 at
    # 44-57x, the 99th percentile of the other claims 26x)
    from fraudkit.features._builder import OVERSUPPLY
    over = f.claims.drug_oversupply
    selling = f.claims.index.isin(resellers)
    assert (over[selling] > OVERSUPPLY).all() and over[selling].median() > over[~selling].quantile(0.99)
    p = f.providers
    assert p.los_z_mean.idxmax() == "H00"
    assert p.dup_share.idxmax() == "H01" and p.overprice_share.idxmax() == "H01"
    assert p.exam_pattern_share.idxmax() == "H02"
    assert p.readmit_share.idxmax() == "H04"
    assert p.empty_day_share.idxmax() == "H05"


def _tiny(claims, items, patients=None, providers=None) -> Batch:
    patients = patients if patients is not None else pd.DataFrame({
        "patient_id": ["P1", "P2"], "birth_year": [1960, 1990], "sex": ["F", "M"], "scheme": ["EBMI", "RBMI"],
        "retired": [False, False], "region": ["3301", "3301"]})
    providers = providers if providers is not None else pd.DataFrame({
        "provider_id": ["H1", "H2", "R1"], "provider_type": ["hospital", "hospital", "pharmacy"], "tier": [2, 3, 0],
        "region": ["3301", "3302", "3301"], "beds": [100, 300, 0]})
    claims = pd.DataFrame(claims, columns=["claim_id", "patient_id", "provider_id", "care_type", "admit_date",
                                           "discharge_date", "diagnosis", "total_amount"])
    claims["doctor_id"] = "D1"
    claims["eligible_amount"] = claims.total_amount
    claims["fund_paid"] = (claims.total_amount * 0.5).round(2)
    claims["self_paid"] = claims.total_amount - claims.fund_paid
    items = pd.DataFrame(items, columns=["claim_id", "line_no", "item_code", "item_kind", "quantity", "unit_price",
                                         "service_date"])
    items["amount"] = (items.quantity * items.unit_price).round(2)
    for frame, cols in ((claims, ["admit_date", "discharge_date"]), (items, ["service_date"])):
        for col in cols:
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[s]")
    return validate_batch(Batch(patients=patients, providers=providers, claims=claims, items=items))


def test_drug_oversupply_is_the_patients_rate_of_buying_the_drug_over_its_usual_rate():
    """Three patients buy 10 units of one drug every 10 days (1 a day), one every 5 days (2 a day):
    the usual rate learnt at fit is 1 a day, so the fast buyer's claims say 2 and the others 1."""
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4"], "birth_year": 1960, "sex": "F",
                             "scheme": "EBMI", "retired": False, "region": "3301"})
    claims, items = [], []
    for pid, every in (("P1", 10), ("P2", 5), ("P3", 10), ("P4", 10)):
        for k, day in enumerate(range(0, 31, every)):
            cid = f"{pid}-{k}"
            date = pd.Timestamp("2024-03-01") + pd.Timedelta(days=day)
            claims.append([cid, pid, "R1", "pharmacy", date, date, "I10", 50.0])
            items.append([cid, 1, "D_AMLO", "drug", 10.0, 5.0, date])
    batch = _tiny(claims, items, patients=patients)
    f = FeatureBuilder(min_peers=1).fit(batch).transform(batch)
    over = f.claims.drug_oversupply.groupby(batch.claims.set_index("claim_id").patient_id).unique()
    assert over.map(list).to_dict() == {"P1": [1.0], "P2": [2.0], "P3": [1.0], "P4": [1.0]}
    assert f.patients.supply_ratio.to_dict() == {"P1": 1.0, "P2": 2.0, "P3": 1.0, "P4": 1.0}


def test_hand_made_rules_exactly():
    claims = [
        ("a", "P1", "H1", "inpatient", "2024-03-01", "2024-03-04", "J18.9", 400.0),  # Friday, 3-day stay
        ("b", "P1", "H1", "inpatient", "2024-03-14", "2024-03-16", "J18.0", 220.0),  # readmit after 10 days, same J18
        ("c", "P1", "H1", "inpatient", "2024-04-20", "2024-04-22", "J18.9", 220.0),  # 35 days later: no readmit
        ("d", "P2", "H2", "outpatient", "2024-03-02", "2024-03-02", "I10", 50.0),  # Saturday, other region
        ("e", "P2", "R1", "pharmacy", "2024-03-02", "2024-03-02", "", 120.0),  # same day, home region
    ]
    items = [
        ("a", 1, "DRUG1", "drug", 1, 100.0, "2024-03-01"), ("a", 2, "DRUG1", "drug", 1, 100.0, "2024-03-01"),
        ("a", 3, "BED", "bed", 1, 100.0, "2024-03-02"), ("a", 4, "BED", "bed", 1, 100.0, "2024-03-03"),
        ("b", 1, "DRUG1", "drug", 1, 110.0, "2024-03-14"), ("b", 2, "DRUG1", "drug", 1, 110.0, "2024-03-15"),
        ("c", 1, "DRUG1", "drug", 1, 110.0, "2024-04-20"), ("c", 2, "DRUG1", "drug", 1, 110.0, "2024-04-21"),
        ("d", 1, "EXAM1", "exam", 1, 50.0, "2024-03-02"),
        ("e", 1, "DRUG2", "drug", 30, 4.0, "2024-03-02"),
    ]
    batch = _tiny(claims, items)
    f = FeatureBuilder(min_peers=1).fit(batch).transform(batch)
    c = f.claims
    assert c.loc["a", "dup_lines"] == 1 and c.loc["b", "dup_lines"] == 0
    assert c.loc["a", "los"] == 3 and c.loc["a", "empty_days"] == 3  # only day 1 of 4 has a daily line
    assert c.loc["b", "readmit_15d"] == 1 and c.loc["a", "readmitted_15d"] == 1
    assert c.loc["c", "readmit_15d"] == 0 and c.loc["b", "readmitted_15d"] == 0
    assert c.loc["d", "weekend"] == 1 and c.loc["a", "weekend"] == 0
    assert c.loc["d", "out_of_region"] == 1 and c.loc["e", "out_of_region"] == 0
    assert c.loc["d", "regions_same_day"] == 1 and c.loc["e", "providers_same_day"] == 1
    assert c.loc["a", "price_ratio_max"] == pytest.approx(1.0)  # below the median price: not over-priced
    assert c.loc["b", "price_ratio_max"] == pytest.approx(1.0)
    assert f.patients.loc["P2", "distant_days"] == 1
    assert f.patients.loc["P2", "drug_days"] == 30


def test_unseen_groups_fall_back_and_prices_use_the_fitted_catalogue(toy):
    batch, _ = toy
    fb = FeatureBuilder().fit(batch)
    claims = batch.claims.copy()
    items = batch.items.copy()
    first = claims.claim_id.iloc[0]
    claims.loc[claims.claim_id == first, "diagnosis"] = "Z99.9"  # a category never seen at fit
    items.loc[items.claim_id == first, "unit_price"] *= 3
    items["amount"] = (items.quantity * items.unit_price).round(2)
    total = items.groupby("claim_id").amount.sum()
    claims["total_amount"] = claims.claim_id.map(total).round(2)
    claims["eligible_amount"] = np.minimum(claims.eligible_amount, claims.total_amount)
    claims["fund_paid"] = np.minimum(claims.fund_paid, claims.eligible_amount)
    claims["self_paid"] = (claims.total_amount - claims.fund_paid).round(2)
    other = validate_batch(Batch(patients=batch.patients, providers=batch.providers, claims=claims, items=items))
    c = fb.transform(other).claims
    assert c.loc[first, "peer_level"] >= 2
    assert c.loc[first, "price_ratio_max"] == pytest.approx(3.0, rel=0.02)
    assert c.loc[first, "overprice_share"] == pytest.approx(2 / 3, rel=0.02)


def test_fit_transform_is_deterministic_and_picklable(toy, toy_features):
    batch, _ = toy
    fb = FeatureBuilder().fit(batch)
    buffer = io.BytesIO()
    joblib.dump(fb, buffer)
    buffer.seek(0)
    again = joblib.load(buffer).transform(batch)
    pd.testing.assert_frame_equal(again.claims, toy_features.claims)
    pd.testing.assert_frame_equal(again.providers, toy_features.providers)
    assert pickle.loads(pickle.dumps(fb)).get_params() == FeatureBuilder().get_params()


def test_describe_reads_like_an_inspector_note():
    assert describe("los_z", {"los": 17, "los_ratio": 3.4, "los_z": 6.2}) == "stay 3.4× the group median (17 days, z +6.2)"
    assert "2.1× catalogue" in describe("price_ratio_max", {"price_ratio_max": 2.1})
    assert describe("no_such_feature", {"no_such_feature": 3.0}).startswith("no such feature")


def test_stouffer_z_of_several_measures_at_once_equals_each_alone():
    """The providers' ``*_sig`` means standardise several measures in one grouping: the same bits
    as one call per measure (and a batch's claims, in any class layout, always get a z)."""
    from fraudkit.features._prep import stouffer_excess_z

    rng = np.random.default_rng(5)
    provider = rng.integers(0, 40, 5000)
    klass, fallback = rng.integers(0, 6, 40), rng.integers(0, 2, 40)
    values = np.column_stack([rng.normal(size=5000), rng.lognormal(size=5000), (rng.random(5000) < 0.1).astype(float)])
    together = stouffer_excess_z(provider, values, klass, fallback)
    assert together.shape == (40, 3)
    for j in range(3):
        alone = stouffer_excess_z(provider, values[:, j], klass, fallback)
        assert alone.shape == (40,)
        assert np.array_equal(alone, together[:, j])
    assert stouffer_excess_z(provider[:0], values[:0], klass, fallback).shape == (40, 3)
    shifted = values.copy()
    shifted[provider == 7, 0] += 1.0  # one provider a standard deviation up on every claim
    z = stouffer_excess_z(provider, shifted, klass, fallback)
    assert z[7, 0] == z[:, 0].max() and z[7, 0] > 3


def test_columns_block_becomes_the_frame_without_a_copy():
    from fraudkit.features._builder import _Columns

    cols = _Columns(3, ["a", "b"])
    cols["b"] = np.array([1.0, 2.0, 3.0])
    assert list(cols.arrays()) == ["b"]
    cols["a"] = 0.5  # broadcast, as a DataFrame column would be
    assert list(cols.arrays()) == ["a", "b"]
    with pytest.raises(KeyError, match="'aside' is not a column"):
        cols["aside"] = [7, 8, 9]
    frame = cols.frame(pd.Index(["c1", "c2", "c3"], name="claim_id"))
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"a": 0.5, "b": [1.0, 2.0, 3.0]},
                                                      index=pd.Index(["c1", "c2", "c3"], name="claim_id")))
    assert np.shares_memory(frame.to_numpy(), cols["b"])
    with pytest.raises(TypeError, match="'b'.*aligned"):
        cols["b"] = pd.Series([1.0, 2.0, 3.0], index=[2, 1, 0])
    with pytest.raises(RuntimeError, match=r"never computed: \['b'\]"):
        unfinished = _Columns(2, ["a", "b"])
        unfinished["a"] = 1.0
        unfinished.frame(pd.RangeIndex(2))


def test_counting_helpers_give_the_same_counts_on_every_path():
    """count_by counts compact keys directly and hashes the rest; distinct_per sorts when given an order
    of its keys and hashes otherwise: the counts must not depend on the path taken."""
    from fraudkit.features._prep import count_by, distinct_per

    rng = np.random.default_rng(11)
    for n, span in ((1_000, 50), (20_000, 3_000), (5_000, 10**9)):
        key = rng.integers(0, span, n)
        expected = pd.Series(key).map(pd.Series(key).value_counts()).to_numpy(dtype=float)
        np.testing.assert_array_equal(count_by(key), expected)
        np.testing.assert_array_equal(count_by(key * 2**40), expected)  # never compact: hashed
        values = rng.integers(-1, 7, n)
        group = pd.factorize(key)[0]
        truth = pd.Series(values).groupby(group).transform("nunique").to_numpy(dtype=float)
        np.testing.assert_array_equal(distinct_per(group, values, coded=True), truth)
        np.testing.assert_array_equal(distinct_per(group, values, coded=True, order=np.argsort(group, kind="stable")), truth)
