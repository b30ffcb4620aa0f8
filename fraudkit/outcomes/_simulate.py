"""Replaying the inspection loop on a labelled batch: does learning from outcomes find more fraud?

Each round a team inspects ``per_round`` providers. The *learning* arm inspects the top of the
current ranking, reveals their labels as outcomes (provider confirmed or cleared; confirmed
patients with fraudulent claims there), retrains (propagation seeds and re-ranker) and
re-ranks the providers not yet inspected. The *baseline* arm keeps inspecting down the
unsupervised ranking. Round 1 is the same for both.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ._load import Outcomes

Progress = Callable[[str], None]

#: Columns of :attr:`SimulationResult.rounds`.
ROUND_COLUMNS = [
    "round", "precision", "baseline_precision", "money_found", "baseline_money_found",
    "cumulative_precision", "baseline_cumulative_precision", "cumulative_money", "baseline_cumulative_money",
    "confirmed_so_far", "cleared_so_far", "calibrated", "reranker_weight",
]


@dataclass
class SimulationResult:
    """What :func:`simulate_inspections` measured.

    Attributes
    ----------
    rounds : DataFrame
        One row per round (:data:`ROUND_COLUMNS`): precision of the round's picks and the money
        found (fund_paid of fraudulent claims at the confirmed providers), for the learning arm
        and the baseline, per round and cumulated; outcomes known *before* the round's picks.
    picks : DataFrame
        ``arm, round, position, provider_id, fraudulent, money_found``: every inspection made.
    settings : dict
        rounds, per_round, seed, providers, fraudulent providers, batch.
    """

    rounds: pd.DataFrame
    picks: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def gain(self, first: int = 2, last: int | None = None) -> float:
        """Learning minus baseline precision over rounds ``first..last`` (pooled picks)."""
        r = self.rounds[(self.rounds["round"] >= first) & (self.rounds["round"] <= (last or self.rounds["round"].max()))]
        return float(r["precision"].mean() - r["baseline_precision"].mean())


def outcomes_from_labels(provider_ids, labels, batch, round_no: int = 1) -> Outcomes:
    """What inspecting ``provider_ids`` would reveal: a verdict per provider and its confirmed patients.

    A provider is confirmed when the labels name it in any scheme; the patients confirmed
    with it are the fraudulent patients with a fraudulent claim there. The inspection date
    is ``round_no`` weeks after the batch's last admission.
    """
    ids = [str(p) for p in provider_ids]
    fraud = labels.fraudulent("providers")
    fraud = fraud[~fraud.index.duplicated()]
    confirmed = fraud.reindex(ids).fillna(False).astype(bool)
    day = (pd.to_datetime(batch.claims["admit_date"]).max() + pd.Timedelta(weeks=round_no)).strftime("%Y-%m-%d")
    rows = [pd.DataFrame({"provider_id": ids, "inspected_on": day,
                          "outcome": np.where(confirmed.to_numpy(), "confirmed", "cleared")})]
    if labels.patients is not None and confirmed.any():
        claim_fraud = labels.fraudulent("claims")
        claims = batch.claims[["claim_id", "patient_id", "provider_id"]]
        claims = claims[claims["provider_id"].astype(str).isin(confirmed.index[confirmed])]
        claims = claims[claims["claim_id"].astype(str).map(claim_fraud).fillna(False).astype(bool).to_numpy()]
        bad_patients = labels.fraudulent("patients")
        claims = claims[claims["patient_id"].astype(str).map(bad_patients).fillna(False).astype(bool).to_numpy()]
        found = claims.drop_duplicates(["provider_id", "patient_id"])
        rows.append(pd.DataFrame({"provider_id": found["provider_id"].astype(str).to_numpy(), "inspected_on": day,
                                  "outcome": "confirmed", "patient_id": found["patient_id"].astype(str).to_numpy()}))
    return Outcomes.from_frame(pd.concat(rows, ignore_index=True), source=f"<simulated round {round_no}>")


def _money_found(batch, labels) -> pd.Series:
    """fund_paid of fraudulent claims per provider (what confirming it recovers)."""
    fraud = labels.fraudulent("claims")
    fraud = fraud[~fraud.index.duplicated()]
    is_fraud = batch.claims["claim_id"].astype(str).map(fraud).fillna(False).astype(bool).to_numpy()
    paid = batch.claims["fund_paid"].where(is_fraud, 0.0)
    return paid.groupby(batch.claims["provider_id"].astype(str).to_numpy()).sum()


def simulate_inspections(batch, labels, model=None, *, rounds: int = 5, per_round: int = 20, seed: int = 0,
                         progress: Progress | None = None) -> SimulationResult:
    """Replay ``rounds`` rounds of ``per_round`` inspections with and without learning from outcomes.

    Parameters
    ----------
    batch : fraudkit.io.Batch
    labels : fraudkit.io.Labels
        Ground truth; read only to reveal the outcome of each inspection made.
    model : FraudModel, optional
        Fitted model; default: a :class:`~fraudkit.pipeline.FraudModel` fitted on ``batch``
        (unsupervised, labels unused) with ``ModelConfig(seed=seed)``.
    rounds, per_round : int
        Number of rounds and inspections per round.
    seed : int
        Seed of the model fitted here.

    Returns
    -------
    SimulationResult
    """
    from fraudkit.errors import FraudkitError
    from fraudkit.pipeline import FraudModel, ModelConfig

    step = progress or (lambda stage: None)
    if rounds < 1 or per_round < 1:
        raise FraudkitError(f"rounds and per-round must be at least 1, got {rounds} and {per_round}")
    n_providers = len(batch.providers)
    if rounds * per_round > n_providers:
        raise FraudkitError(f"{rounds} rounds of {per_round} inspections need {rounds * per_round} providers; "
                            f"the batch {batch.source} has {n_providers}")
    if model is None:
        step("fitting the unsupervised model")
        model = FraudModel(ModelConfig(seed=seed)).fit(batch)
    money = _money_found(batch, labels)
    fraud = labels.fraudulent("providers")
    fraud = fraud[~fraud.index.duplicated()]
    step("round 1: the unsupervised ranking")
    baseline_order = model.score(batch, inspections=per_round).providers["provider_id"].astype(str).tolist()

    picks, rows = [], []
    inspected: list[str] = []
    outcomes = None
    for r in range(1, rounds + 1):
        calibrated, weight = False, 0.0
        if r == 1:
            chosen = baseline_order[:per_round]
        else:
            step(f"round {r}: retraining on {len(inspected)} outcomes")
            result = model.score(batch, inspections=per_round, outcomes=outcomes)
            table = result.providers
            chosen = table.loc[~table["inspected"], "provider_id"].astype(str).head(per_round).tolist()
            if "reranker" in result.summary.get("detectors", {}).get("provider", []):
                from ._rerank import reranker_weight

                weight = reranker_weight(len(outcomes))
                labelled = outcomes.labels()
                calibrated = bool(min(labelled.sum(), len(labelled) - labelled.sum()) >= 8)
        base = baseline_order[(r - 1) * per_round: r * per_round]
        for arm, ids in (("learning", chosen), ("baseline", base)):
            for position, pid in enumerate(ids, 1):
                hit = bool(fraud.get(pid, False))
                picks.append({"arm": arm, "round": r, "position": position, "provider_id": pid, "fraudulent": hit,
                              "money_found": round(float(money.get(pid, 0.0)) if hit else 0.0, 2)})
        known = outcomes.labels() if outcomes is not None else pd.Series(dtype=int)
        rows.append({"round": r, "confirmed_so_far": int(known.sum()), "cleared_so_far": int(len(known) - known.sum()),
                     "calibrated": calibrated, "reranker_weight": round(weight, 3)})
        inspected += chosen
        outcomes = outcomes_from_labels(inspected, labels, batch, round_no=r)

    picks = pd.DataFrame(picks)
    per = picks.groupby(["arm", "round"]).agg(precision=("fraudulent", "mean"), money=("money_found", "sum"),
                                              hits=("fraudulent", "sum"), n=("fraudulent", "size"))
    table = pd.DataFrame(rows)
    for arm, prefix in (("learning", ""), ("baseline", "baseline_")):
        part = per.loc[arm].reindex(table["round"])
        table[f"{prefix}precision"] = part["precision"].to_numpy()
        table[f"{prefix}money_found"] = part["money"].round(2).to_numpy()
        table[f"{prefix}cumulative_precision"] = (part["hits"].cumsum() / part["n"].cumsum()).to_numpy()
        table[f"{prefix}cumulative_money"] = part["money"].cumsum().round(2).to_numpy()
    settings = {"batch": batch.source, "rounds": rounds, "per_round": per_round, "seed": seed,
                "providers": n_providers, "fraudulent_providers": int(fraud.reindex(batch.providers["provider_id"].astype(str)).fillna(False).sum())}
    return SimulationResult(table[ROUND_COLUMNS], picks, settings)


def plot_simulation(result: SimulationResult, path: Path) -> Path:
    """Precision per round and cumulative money found, learning vs the unsupervised baseline."""
    from fraudkit.tracking._figures import _pyplot

    plt = _pyplot()
    r = result.rounds
    fig, (ax, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.plot(r["round"], r["precision"], marker="o", label="learning from outcomes")
    ax.plot(r["round"], r["baseline_precision"], marker="s", linestyle="--", label="unsupervised ranking (baseline)")
    ax.set(xlabel="round", ylabel="precision of the round's inspections", ylim=(0, 1.02),
           title=f"{result.settings.get('per_round')} inspections per round")
    ax.set_xticks(r["round"])
    ax.legend(fontsize=8)
    ax_m.plot(r["round"], r["cumulative_money"] / 1e6, marker="o", label="learning from outcomes")
    ax_m.plot(r["round"], r["baseline_cumulative_money"] / 1e6, marker="s", linestyle="--", label="baseline")
    ax_m.set(xlabel="round", ylabel="money found so far (million yuan)", title="Fraudulent fund_paid at confirmed providers")
    ax_m.set_xticks(r["round"])
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_simulation(result: SimulationResult, *, experiment: str, tracking_uri: str | None = None,
                   run_name: str | None = None, tags: dict | None = None) -> tuple[str, str]:
    """Log a simulation as an MLflow run (per-round metrics as steps, rounds.csv, picks.csv, a PNG plot).

    Uses the store and experiment set-up of ``fraudkit train``. Returns ``(run_id, tracking uri)``.
    """
    import mlflow

    from fraudkit import __version__
    from fraudkit.tracking._store import connect, experiment_id

    client, store = connect(tracking_uri, create=True)
    exp_id = experiment_id(client, experiment, store)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run, \
            tempfile.TemporaryDirectory(prefix="fraudkit-simulate-") as tmp:
        tmp = Path(tmp)
        mlflow.set_tags({"fraudkit.version": __version__, "fraudkit.command": "simulate-inspections", **(tags or {})})
        mlflow.log_params({f"simulate.{k}": str(v) for k, v in result.settings.items()})
        metric_columns = [c for c in ROUND_COLUMNS if c not in ("round", "calibrated")]
        for row in result.rounds.to_dict("records"):
            mlflow.log_metrics({f"simulate.{c}": float(row[c]) for c in metric_columns}, step=int(row["round"]))
        last = result.rounds.iloc[-1]
        mlflow.log_metrics({"simulate.final_cumulative_precision": float(last["cumulative_precision"]),
                            "simulate.final_baseline_cumulative_precision": float(last["baseline_cumulative_precision"]),
                            "simulate.gain_rounds_2_on": result.gain(2) if len(result.rounds) > 1 else 0.0})
        result.rounds.to_csv(tmp / "rounds.csv", index=False, float_format="%.6g")
        result.picks.to_csv(tmp / "picks.csv", index=False)
        (tmp / "settings.json").write_text(json.dumps(result.settings, indent=2, default=str) + "\n")
        for name in ("rounds.csv", "picks.csv", "settings.json"):
            mlflow.log_artifact(str(tmp / name))
        figures = tmp / "figures"
        figures.mkdir()
        plot_simulation(result, figures / "simulation.png")
        mlflow.log_artifacts(str(figures), "figures")
    return run.info.run_id, store
