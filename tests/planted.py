"""Helpers for tests that measure detection of one planted scheme on a labelled batch."""

from __future__ import annotations

import numpy as np

from fraudkit.detectors import IsolationForestDetector
from fraudkit.evaluate import evaluate


def scheme_rows(labels, index, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """(claims of ``scheme``, clean claims) as boolean arrays over the claim ``index`` of a feature table."""
    lab = labels.claims.set_index("claim_id")["fraud_type"].fillna("").reindex(index).fillna("")
    return lab.str.contains(scheme).to_numpy(), (lab == "").to_numpy()


def forest_recall(batch, labels, features, columns, scheme: str, seed: int = 0) -> float:
    """Share of ``scheme``'s claims in the top 5 % of a claim forest on ``columns`` (forest seed ``seed``)."""
    det = IsolationForestDetector(features=list(columns), random_state=seed).fit(features.claims)
    return evaluate(labels, batch.claims, det.scores(features.claims))[f"claims.recall_top.{scheme}"]
