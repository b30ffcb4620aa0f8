"""The held-out split that training metrics are measured on: a split in time.

An inspection model is fitted on past settlements and applied to the next
period's, so fraudkit measures it that way: the model is fitted on the claims
admitted in the earlier part of the batch's period and scored on the later part
*alone* (the graph detectors see only the held-out claims, as they would see a
new batch), and the metrics compare those scores with the held-out claims' and
their providers' labels. No held-out claim, item or feature statistic is seen
at fit time.

Two consequences worth knowing when reading the metrics. A provider keeps its label
in the held-out part (a fraudulent actor is one wherever its claims fall: an
inspection would find it), even if its planted claims happen to fall before the cut.
And the held-out part is a shorter period than a full batch, so the graph detectors
see fewer shared patients: held-out metrics are, if anything, pessimistic for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudkit.errors import FraudkitError
from fraudkit.io import Batch, Labels


@dataclass
class TimeSplit:
    """A batch cut at ``cutoff``: ``train`` holds claims admitted before it, ``holdout`` the rest."""

    train: Batch
    holdout: Batch
    cutoff: pd.Timestamp
    holdout_share: float

    def describe(self) -> str:
        return (f"time split at {self.cutoff.date()}: fit on {len(self.train.claims):,} claims admitted before, "
                f"evaluate on {len(self.holdout.claims):,} claims admitted on or after it")

    def holdout_labels(self, labels: Labels) -> Labels:
        """Labels restricted to the held-out claims, providers and patients."""
        return restrict_labels(labels, self.holdout)


def subset(batch: Batch, keep_claims, source: str) -> Batch:
    """The batch restricted to the claims where ``keep_claims`` is True, their items, patients and providers."""
    keep = np.asarray(keep_claims, dtype=bool)
    claims = batch.claims[keep].reset_index(drop=True)
    items = batch.items[batch.items["claim_id"].isin(claims["claim_id"])].reset_index(drop=True)
    patients = batch.patients[batch.patients["patient_id"].isin(claims["patient_id"])].reset_index(drop=True)
    providers = batch.providers[batch.providers["provider_id"].isin(claims["provider_id"])].reset_index(drop=True)
    return Batch(patients=patients, providers=providers, claims=claims, items=items, source=source)


def time_split(batch: Batch, holdout: float = 0.3) -> TimeSplit:
    """Cut ``batch`` so that about ``holdout`` of its claims (the latest admitted) are held out.

    All claims admitted on one day fall on the same side, so the cut is a date.

    Raises
    ------
    FraudkitError
        When ``holdout`` is not in (0, 1) or the batch spans too few days to cut.
    """
    if not 0 < holdout < 1:
        raise FraudkitError(f"holdout must be between 0 and 1 (a share of claims), got {holdout!r}")
    dates = pd.to_datetime(batch.claims["admit_date"]).to_numpy()
    if len(dates) == 0:
        raise FraudkitError(f"{batch.source}: no claims to split")
    ordered = np.sort(dates)
    cutoff = ordered[min(len(ordered) - 1, int(np.floor((1 - holdout) * len(ordered))))]
    before = dates < cutoff
    if not before.any() or before.all():
        raise FraudkitError(f"{batch.source}: all claims are admitted on too few days to hold out the latest "
                            f"{holdout:.0%} (the cut falls on {pd.Timestamp(cutoff).date()}); "
                            "train with --holdout 0 or on a batch spanning a longer period")
    cutoff = pd.Timestamp(cutoff)
    return TimeSplit(
        train=subset(batch, before, f"{batch.source} [admitted before {cutoff.date()}]"),
        holdout=subset(batch, ~before, f"{batch.source} [admitted from {cutoff.date()}]"),
        cutoff=cutoff,
        holdout_share=float((~before).mean()),
    )


def restrict_labels(labels: Labels, batch: Batch) -> Labels:
    """Labels of the claims, providers and patients present in ``batch``."""

    def keep(frame: pd.DataFrame | None, ids: pd.Series) -> pd.DataFrame | None:
        if frame is None:
            return None
        return frame[frame.iloc[:, 0].astype(str).isin(set(ids.astype(str)))].reset_index(drop=True)

    return Labels(claims=keep(labels.claims, batch.claims["claim_id"]),
                  providers=keep(labels.providers, batch.providers["provider_id"]),
                  patients=keep(labels.patients, batch.patients["patient_id"]))
