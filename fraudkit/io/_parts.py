"""A validated batch cut into parts by patient: every patient's claims and their item lines in one part."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._batch import Batch


@dataclass
class BatchPart:
    """One part of a batch cut by patient (:func:`split_by_patient`).

    ``batch`` is a :class:`Batch` of its own: the part's patients, their claims and those
    claims' item lines, each in the order of the whole batch, and every provider.
    ``claims`` and ``patients`` are the positions of its claims and patients in the whole batch.
    """

    batch: Batch
    claims: np.ndarray
    patients: np.ndarray


def in_batch_order(arrays: list[np.ndarray], positions: list[np.ndarray], n: int) -> np.ndarray:
    """One array of the whole batch from one per part: each part's values put at its rows' positions.

    >>> in_batch_order([np.array([10, 30]), np.array([20])], [np.array([0, 2]), np.array([1])], 3).tolist()
    [10, 20, 30]
    """
    out = np.empty(n, dtype=np.result_type(*arrays))
    for pos, values in zip(positions, arrays):
        out[pos] = values
    return out


def patient_part(patient_ids: pd.Series, parts: int) -> np.ndarray:
    """The part of each patient: a hash of its id modulo ``parts``, so the same patient
    falls in the same part in any batch and on any machine.

    >>> part = patient_part(pd.Series(["P1", "P2", "P3", "P1"]), 4)
    >>> bool(part[0] == part[3] == patient_part(pd.Series(["P1"]), 4)[0]), bool(((part >= 0) & (part < 4)).all())
    (True, True)
    """
    if parts <= 1 or len(patient_ids) == 0:
        return np.zeros(len(patient_ids), dtype=np.int64)
    hashed = pd.util.hash_array(np.asarray(patient_ids.astype("str"), dtype=object))
    return (hashed % np.uint64(parts)).astype(np.int64)


def split_by_patient(batch: Batch, parts: int) -> list[BatchPart]:
    """``batch`` cut into at most ``parts`` parts by patient (:func:`patient_part`); empty parts are left out.

    Each part keeps the lookups of its references (``Batch.rows_of``) from the whole
    batch's, so that they are not hashed again.

    >>> from fraudkit.features import make_toy_batch
    >>> batch, _ = make_toy_batch(2000, seed=1)
    >>> pieces = split_by_patient(batch, 3)
    >>> sum(len(p.batch.claims) for p in pieces) == len(batch.claims)
    True
    """
    if not isinstance(batch, Batch):
        raise TypeError(f"split_by_patient cuts a fraudkit.io.Batch (from load_batch or validate_batch), got {type(batch).__name__}")
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    patient_rows = batch.rows_of("claims", "patient_id")
    claim_rows = batch.rows_of("items", "claim_id")
    provider_rows = batch.rows_of("claims", "provider_id")
    if (patient_rows < 0).any() or (claim_rows < 0).any():
        raise ValueError("every claim must name a patient of the batch and every item line a claim of it "
                         "(validate it with fraudkit.io.validate_batch first)")
    of_patient = patient_part(batch.patients["patient_id"], parts)
    of_claim = of_patient[patient_rows]
    of_line = of_claim[claim_rows]
    out = []
    for k in range(parts):
        patients = np.flatnonzero(of_patient == k)
        if len(patients) == 0:
            continue
        claims, lines = np.flatnonzero(of_claim == k), np.flatnonzero(of_line == k)
        local_patient = np.full(len(batch.patients), -1, dtype=np.int64)
        local_patient[patients] = np.arange(len(patients))
        local_claim = np.full(len(batch.claims), -1, dtype=np.int64)
        local_claim[claims] = np.arange(len(claims))
        part = Batch(patients=batch.patients.iloc[patients].reset_index(drop=True), providers=batch.providers,
                     claims=batch.claims.iloc[claims].reset_index(drop=True),
                     items=batch.items.iloc[lines].reset_index(drop=True), source=f"{batch.source} (part {k} of {parts})")
        part._keep_rows({("claims", "patient_id"): local_patient[patient_rows[claims]],
                         ("claims", "provider_id"): provider_rows[claims].copy(),
                         ("items", "claim_id"): local_claim[claim_rows[lines]]})
        out.append(BatchPart(part, claims, patients))
    return out
