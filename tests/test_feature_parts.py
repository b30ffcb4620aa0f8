"""Features a part of the patients at a time: the same tables, bit for bit, as the whole batch's."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from fraudkit.features import FeatureBuilder
from fraudkit.features._builder import CROSS_COLUMNS
from fraudkit.io import Batch, patient_part, split_by_patient


def _shuffled(batch: Batch, seed: int) -> Batch:
    """The batch with its claims and item lines in a random order (a claim's lines no longer together)."""
    rng = np.random.default_rng(seed)
    claims = batch.claims.iloc[rng.permutation(len(batch.claims))].reset_index(drop=True)
    items = batch.items.iloc[rng.permutation(len(batch.items))].reset_index(drop=True)
    return Batch(patients=batch.patients, providers=batch.providers, claims=claims, items=items)


def _assert_same_bits(a, b):
    for name in ("claim", "patient", "provider"):
        left, right = a.table(name), b.table(name)
        pd.testing.assert_frame_equal(left, right, check_exact=True)
        assert (pd.util.hash_pandas_object(left).to_numpy() == pd.util.hash_pandas_object(right).to_numpy()).all()


@pytest.fixture(scope="module")
def fitted(tiny_batch):
    batch, _ = tiny_batch
    return FeatureBuilder().fit(batch)


@pytest.mark.parametrize("parts", [2, 5, 13])
@pytest.mark.parametrize("shuffle", [False, True])
def test_parts_give_the_whole_batchs_tables(tiny_batch, fitted, parts, shuffle):
    batch, _ = tiny_batch
    if shuffle:
        batch = _shuffled(batch, parts)
    whole = fitted.transform(batch)
    _assert_same_bits(fitted.transform(batch, parts=parts), whole)
    # parts computed elsewhere (pickled, as to a worker) and handed back in another order
    pieces = [pickle.loads(pickle.dumps(fitted.part_features(pickle.loads(pickle.dumps(p)))))
              for p in split_by_patient(batch, parts)]
    _assert_same_bits(fitted.combine(pieces[::-1]), whole)
    # the columns counted over other patients' claims are left to combine, which computes every one of them
    assert all(np.isnan(piece.columns[col]).all() for piece in pieces for col in CROSS_COLUMNS)


def test_parts_of_patients_without_claims():
    """Patients without claims have their rows too, also in parts that hold no claim at all."""
    from fraudkit.features import make_toy_batch

    batch, _ = make_toy_batch(300, seed=3)
    idle = batch.patients.iloc[:40].assign(patient_id=[f"idle-{i}" for i in range(40)])
    batch = Batch(patients=pd.concat([batch.patients, idle], ignore_index=True), providers=batch.providers,
                  claims=batch.claims, items=batch.items)
    assert any(len(p.claims) == 0 for p in split_by_patient(batch, 200))
    fb = FeatureBuilder().fit(batch)
    whole = fb.transform(batch)
    _assert_same_bits(fb.transform(batch, parts=200), whole)
    assert (whole.patients.loc["idle-0", "claims"] == 0) and len(whole.patients) == len(batch.patients)


def test_split_by_patient_keeps_each_patients_claims_and_lines_together(tiny_batch):
    batch, _ = tiny_batch
    pieces = split_by_patient(batch, 4)
    assert len(pieces) == 4
    claims = np.concatenate([p.claims for p in pieces])
    patients = np.concatenate([p.patients for p in pieces])
    assert np.array_equal(np.sort(claims), np.arange(len(batch.claims)))
    assert np.array_equal(np.sort(patients), np.arange(len(batch.patients)))
    assert sum(len(p.batch.items) for p in pieces) == len(batch.items)
    for p in pieces:
        part = p.batch
        assert part.claims.claim_id.tolist() == batch.claims.claim_id.iloc[p.claims].tolist()
        assert set(part.claims.patient_id) <= set(part.patients.patient_id)
        assert set(part.items.claim_id) == set(part.claims.claim_id)
        # the lookups kept from the whole batch's are those of the part's own tables
        for table, column, target, key in (("claims", "patient_id", "patients", "patient_id"),
                                           ("items", "claim_id", "claims", "claim_id"),
                                           ("claims", "provider_id", "providers", "provider_id")):
            rows = part.rows_of(table, column)
            assert (getattr(part, target)[key].to_numpy()[rows] == getattr(part, table)[column].to_numpy()).all()
        # and they travel with the part to another process
        again = pickle.loads(pickle.dumps(part))
        assert np.array_equal(again.rows_of("items", "claim_id"), part.rows_of("items", "claim_id"))
        assert again._rows  # kept, not looked up again
    # a patient's part is a function of its id alone
    ids = batch.patients.patient_id
    assert np.array_equal(patient_part(ids.iloc[::-1], 4), patient_part(ids, 4)[::-1])


def test_split_by_patient_refuses_a_batch_with_broken_references(tiny_batch):
    batch, _ = tiny_batch
    claims = batch.claims.copy()
    claims.loc[0, "patient_id"] = "nobody"
    broken = Batch(patients=batch.patients, providers=batch.providers, claims=claims, items=batch.items)
    with pytest.raises(ValueError, match="every claim must name a patient"):
        split_by_patient(broken, 3)
    with pytest.raises(ValueError, match="parts must be at least 1"):
        split_by_patient(batch, 0)
    with pytest.raises(TypeError, match="cuts a fraudkit.io.Batch"):
        split_by_patient(batch.tables(), 2)
    with pytest.raises(ValueError, match="parts must be a whole number of at least 1, got 0"):
        FeatureBuilder().fit(batch).transform(batch, parts=0)
