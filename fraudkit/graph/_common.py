"""What the graph detectors share: the provider-level contract on a ClaimsNetwork."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..detectors._base import EXPLAIN_COLUMNS, BaseDetector
from ._network import ClaimsNetwork, as_network


@dataclass
class Analysis:
    """One detector's result on one network: scores per entity code, evidence, reasons.

    ``reasons`` maps a provider code to its reasons, strongest first, each a tuple
    ``(feature, value, contribution, sentence)``.
    """

    provider: np.ndarray
    patient: np.ndarray
    doctor: np.ndarray | None
    evidence: dict
    reasons: dict[int, list[tuple]] = field(default_factory=dict)


def fingerprint(net: ClaimsNetwork) -> tuple:
    """Cheap identity of a network, to tell the fitted network from another one."""
    return (len(net.claim_ids), net.n_providers, net.n_patients, net.n_doctors,
            round(float(net.claim_money.sum()), 2), int(net.claim_patient.sum()), int(net.claim_provider.sum()))


def claim_scores(net: ClaimsNetwork, provider: np.ndarray, patient: np.ndarray) -> np.ndarray:
    """A claim is as suspicious as both its provider and its patient: their geometric mean."""
    return np.sqrt(np.maximum(provider, 0.0)[net.claim_provider] * np.maximum(patient, 0.0)[net.claim_patient])


def fmt_money(yuan: float) -> str:
    return f"¥{yuan:,.0f}"


def fmt_times(x: float) -> str:
    return f"{x:,.0f}×" if x >= 10 else f"{x:,.1f}×"


class GraphDetector(BaseDetector):
    """Base of the graph detectors: samples are providers, X is a ClaimsNetwork (or a Batch).

    Subclasses implement ``_analyse(net) -> Analysis``. After ``fit``:
    ``entity_scores_`` (dict of Series for "provider", "patient", "claim" and, where
    meaningful, "doctor"), ``evidence_`` (plain data) and the usual ``decision_scores_``
    and ``threshold_``. Scoring or explaining another network re-runs the analysis on it
    (graph detectors are transductive) without touching the fitted state.
    """

    entity = "provider"

    def _analyse(self, net: ClaimsNetwork) -> Analysis:  # pragma: no cover - abstract
        raise NotImplementedError

    def analyse(self, network) -> Analysis:
        """This detector's analysis of ``network``, without fitting: pure, so it can run in
        another process (:meth:`fit` with ``analysis=`` then adopts it)."""
        return self._analyse(as_network(network))

    def fit(self, X, y=None, *, analysis: Analysis | None = None):
        """Analyse the network ``X``; or, given ``analysis`` (:meth:`analyse` of this same
        network, e.g. computed in another process), adopt it instead of analysing again."""
        self._given = analysis
        try:
            return super().fit(X, y)
        finally:
            del self._given

    def _fit(self, X) -> np.ndarray:
        net = as_network(X)
        result = self._given if getattr(self, "_given", None) is not None else self._analyse(net)
        self._result_ = result
        self.fingerprint_ = fingerprint(net)
        self.evidence_ = result.evidence
        self.entity_scores_ = self._entity_series(net, result)
        return result.provider

    def _result_for(self, X) -> tuple[Analysis, ClaimsNetwork]:
        net = as_network(X)
        if getattr(self, "fingerprint_", None) == fingerprint(net):
            return self._result_, net
        return self._analyse(net), net

    def _score(self, X) -> np.ndarray:
        return self._result_for(X)[0].provider

    def sample_ids(self, X) -> pd.Index:
        return as_network(X).ids(self.entity) if not isinstance(X, (pd.DataFrame, pd.Series)) else X.index

    def entity_scores(self, network) -> dict[str, pd.Series]:
        """Scores of every provider, patient and claim (and doctor) of ``network``.

        Returns
        -------
        dict
            ``"provider"``, ``"patient"``, ``"claim"`` (and ``"doctor"`` where the detector
            scores doctors): float Series indexed by id, higher = more suspicious. A claim
            scores the geometric mean of its provider's and its patient's scores.
        """
        if isinstance(network, ClaimsNetwork) or hasattr(network, "claims"):
            net = as_network(network)
            if getattr(self, "fingerprint_", None) == fingerprint(net):
                return self.entity_scores_
            return self._entity_series(net, self._analyse(net))
        raise TypeError("entity_scores needs a ClaimsNetwork or a Batch")

    def _entity_series(self, net: ClaimsNetwork, result: Analysis) -> dict[str, pd.Series]:
        name = type(self).__name__
        out = {
            "provider": pd.Series(result.provider, index=net.provider_ids, name=name),
            "patient": pd.Series(result.patient, index=net.patient_ids, name=name),
            "claim": pd.Series(claim_scores(net, result.provider, result.patient), index=net.claim_ids, name=name),
        }
        if result.doctor is not None:
            out["doctor"] = pd.Series(result.doctor, index=net.doctor_ids, name=name)
        return out

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Reasons behind each provider's score, strongest first (columns ``EXPLAIN_COLUMNS``).

        Providers with no evidence at all are left out; a detector that was skipped
        (e.g. propagation without seeds) returns an empty frame.
        """
        result, net = self._result_for(X)
        rows = []
        order = np.argsort(-result.provider, kind="stable")
        for code in order:
            for rank, (feature, value, contribution, reason) in enumerate(result.reasons.get(int(code), [])[:top], 1):
                rows.append((net.provider_ids[code], rank, feature, value, float(contribution), reason))
        return pd.DataFrame(rows, columns=EXPLAIN_COLUMNS)
