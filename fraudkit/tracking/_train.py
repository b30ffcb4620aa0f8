"""``train``: fit the pipeline, measure it on held-out data, and log everything to MLflow."""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fraudkit import __version__
from fraudkit.errors import FraudkitError
from fraudkit.io import Batch, Labels

from ._config import check_config
from ._split import restrict_labels, subset, time_split
from ._store import DEFAULT_EXPERIMENT, MODEL_URI_TAG, connect, experiment_id

Progress = Callable[[str], None]

#: Files a batch folder may carry that record the scenario it was generated from.
SCENARIO_FILES = ("scenario.yaml", "scenario.yml", "scenario.json")
#: Default inspection budget k of the metrics (as ``fraudkit score``'s default).
DEFAULT_K = 20


@dataclass
class TrainResult:
    """What :func:`train` did: the fitted model, its held-out metrics and where it was logged."""

    model: object
    metrics: dict
    evaluation: str
    fingerprint: str
    run_id: str | None = None
    model_uri: str | None = None
    version: object | None = None
    model_folder: Path | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)


# ---------------------------------------------------------------------- helpers
def flatten(data: dict, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; an empty mapping is kept as ``"{}"`` (a detector with defaults).

    >>> flatten({"seed": 0, "graph": {"rings": {}, "egonet": {"k": 2}}})
    {'seed': '0', 'graph.rings': '{}', 'graph.egonet.k': '2'}
    """
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = "{}" if isinstance(value, dict) else str(value)
    return out


def metric_name(name: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . /`` and spaces)."""
    return re.sub(r"[^\w\-. /]", "_", name)


def finite(metrics: dict) -> dict[str, float]:
    """Metrics that are numbers (NaN, e.g. a PR-AUC without positives, is left out)."""
    return {metric_name(k): float(v) for k, v in metrics.items()
            if isinstance(v, (int, float, np.number)) and math.isfinite(float(v))}


def find_scenario(batch_dir: Path) -> Path | None:
    """The scenario file recorded in a batch folder by the generator, if any."""
    for name in SCENARIO_FILES:
        if (batch_dir / name).is_file():
            return batch_dir / name
    return None


def scenario_name(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # a record we cannot read is still logged as a file
        return path.name
    if isinstance(data, dict):
        for key in ("name", "scenario"):
            if isinstance(data.get(key), str):
                return data[key]
    return path.name


def evaluate_model(model, batch: Batch, labels: Labels, k: int = DEFAULT_K):
    """Score ``batch`` alone and compare with ``labels``: ``(metrics, ScoreResult)``.

    A model that carries inspection outcomes (``fit(outcomes=)``) ranks the providers already
    inspected last; they are left out of the provider metrics, which then measure how well it
    finds the fraud *not yet found* (precision@k of the next ``k`` inspections).
    """
    from fraudkit.evaluate import evaluate

    result = model.score(batch, inspections=k)
    claim_scores = pd.Series(result.claims["suspicion"].to_numpy(dtype=float), index=result.claims["claim_id"].astype(str).to_numpy())
    providers = result.providers
    if "inspected" in providers.columns:
        providers = providers[~providers["inspected"].to_numpy(dtype=bool)]
        keep = set(providers["provider_id"].astype(str))
        labels = Labels(claims=labels.claims, patients=labels.patients,
                        providers=labels.providers[labels.providers["provider_id"].astype(str).isin(keep)].reset_index(drop=True))
    provider_scores = pd.Series(providers["suspicion"].to_numpy(dtype=float), index=providers["provider_id"].astype(str).to_numpy())
    metrics = evaluate(labels, batch.claims, claim_scores, provider_scores, k=k)
    return metrics, result


def feature_importance(model, batch: Batch, result, k: int = DEFAULT_K, top_claims: int = 2000) -> pd.DataFrame:
    """What drives the most suspicious entities: a long table ``level, feature, importance``.

    Isolation forests have no built-in importances. For each forest (claims, patients,
    providers), a feature's importance is its mean contribution to the explanation of
    the most suspicious entities (flagged claims, at most ``top_claims``; the top 5 % of
    patients; the top ``k`` providers): the robust deviation the forest splits on.
    For the ranking itself, a detector's importance is the mean ``-log`` tail
    probability it gives the top ``k`` providers (its share of the Fisher evidence).
    """
    from fraudkit.prioritise import tail_probability

    features = model.features_.transform(batch)
    claims = result.claims.sort_values("suspicion", ascending=False, kind="stable")
    top_ids = {
        "claim": claims.loc[claims["flagged"], "claim_id"].head(top_claims).to_numpy(),
        "patient": result.patients["patient_id"].head(max(1, int(0.05 * len(result.patients)))).to_numpy(),
        "provider": result.providers["provider_id"].head(k).to_numpy(),
    }
    frames = []
    for level, ids in top_ids.items():
        det = model.detectors_.get(f"{level}_features")
        table = getattr(features, f"{level}s")
        ids = [i for i in ids if i in table.index]
        if det is None or not ids:
            continue
        explained = det.explain(table.loc[ids], top=len(det.features_))
        share = explained.groupby("feature")["contribution"].sum().reindex(det.features_, fill_value=0.0) / len(ids)
        frames.append(pd.DataFrame({"level": f"{level} features", "feature": share.index, "importance": share.to_numpy()}))
    providers = result.providers.set_index("provider_id")
    score_cols = [c for c in providers.columns if c.startswith("score_")]
    if score_cols:
        top = providers.index[:k]
        evidence = {c[len("score_"):]: float(-np.log(tail_probability(providers[c].astype(float))).reindex(top).mean())
                    for c in score_cols}
        frames.append(pd.DataFrame({"level": "detectors (top-k providers)", "feature": list(evidence),
                                    "importance": list(evidence.values())}))
    if not frames:
        return pd.DataFrame(columns=["level", "feature", "importance"])
    out = pd.concat(frames, ignore_index=True)  # levels stay in order: claims, patients, providers, detectors
    out["_level"] = pd.factorize(out["level"])[0]
    out = out.sort_values(["_level", "importance"], ascending=[True, False], kind="stable")
    return out.drop(columns="_level").reset_index(drop=True)


def _rounded(metrics: dict) -> dict:
    return {k: (round(float(v), 6) if math.isfinite(float(v)) else None) for k, v in metrics.items()}


def _timed(progress: Progress | None) -> Progress:
    import os
    import time

    if progress is None and not os.environ.get("FRAUDKIT_DEBUG_TIMING"):
        return lambda stage: None
    last = {"t": time.perf_counter(), "stage": "start"}

    def step(stage: str) -> None:
        if os.environ.get("FRAUDKIT_DEBUG_TIMING"):
            now = time.perf_counter()
            print(f"[{now - last['t']:6.2f}s] {last['stage']}")
            last.update(t=now, stage=stage)
        if progress is not None:
            progress(stage)

    return step


# ---------------------------------------------------------------------- train
def train(
    batch: str | Path,
    config=None,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    track: bool = True,
    register: bool = False,
    out: str | Path | None = None,
    holdout: float = 0.3,
    eval_batch: str | Path | None = None,
    k: int = DEFAULT_K,
    run_name: str | None = None,
    scenario: str | Path | None = None,
    outcomes: str | Path | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Fit the whole pipeline on a batch folder, measure it on held-out data and log the run.

    How the metrics are held out:

    - ``eval_batch`` given: the model is fitted on all of ``batch`` and measured on
      ``eval_batch`` (another labelled batch, e.g. a fresh draw of the generator).
    - else, when ``batch`` has ``labels/`` and ``holdout > 0``: a split in time
      (:func:`~fraudkit.tracking.time_split`). The model is fitted on the claims admitted
      in the earlier ``1 - holdout`` of the batch and measured on the later claims,
      scored alone as a new batch. The logged model *is* the measured one (fitted on
      the earlier part), so the metrics describe the artefact that is deployed.
    - else (no labels, or ``holdout=0``): fitted on all of ``batch``, no metrics.

    Parameters
    ----------
    batch : path
        Batch folder (``labels/`` optional).
    config : ModelConfig, path or None
        Model settings; a path is read with :meth:`ModelConfig.from_yaml`.
    experiment, tracking_uri : str
        Where to log; the store defaults to ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlruns.db``.
    track : bool
        Log to MLflow (False: only fit, measure and save to ``out``).
    register : bool
        Register the logged model as ``fraudkit`` and give it the alias ``challenger``.
    out : path, optional
        Also save the model folder here (``model.joblib`` + ``manifest.json``).
    holdout : float
        Share of the latest claims held out for the metrics.
    eval_batch : path, optional
        Labelled batch to measure on instead of a split.
    k : int
        Inspection budget of ``providers.precision_at_k`` and related metrics.
    scenario : path, optional
        Scenario YAML the batch was generated from, logged with the run; default: a
        ``scenario.yaml`` (or ``.yml``/``.json``) recorded in the batch folder, if any.
    outcomes : path, optional
        Outcomes file of past inspections of ``batch``'s providers (CSV or Parquet, see
        :func:`fraudkit.outcomes.load_outcomes`), checked against ``batch``: an id that is not in
        it is refused (:class:`~fraudkit.outcomes.OutcomesError`). The model keeps the verdicts
        (``FraudModel.fit(outcomes=)``): scoring a batch with it, even without ``--outcomes``,
        moves the inspected providers it holds to the end, seeds propagation with the confirmed
        ones and retrains the re-ranker on that batch. Held-out provider metrics leave the
        inspected providers out (see :func:`evaluate_model`).

    Returns
    -------
    TrainResult
    """
    from fraudkit.io import batch_fingerprint, load_batch, load_labels
    from fraudkit.pipeline import FraudModel, ModelConfig, save_model

    step = _timed(progress)
    batch_dir = Path(batch)
    source = "config"
    if config is None:
        config = ModelConfig()
    elif not isinstance(config, ModelConfig):
        source = str(config)
        config = ModelConfig.from_yaml(config)
    check_config(config, source)
    if k < 1:
        raise FraudkitError(f"k (the inspection budget) must be at least 1, got {k}")
    if register and not track:
        raise FraudkitError("--register needs tracking: a model is registered from its MLflow run (drop --no-track)")
    if not track and out is None:
        raise FraudkitError("with tracking off, give --out: otherwise the trained model would be thrown away")

    step(f"loading {batch_dir}")
    loaded = load_batch(batch_dir)
    labels = load_labels(batch_dir)
    fingerprint = batch_fingerprint(batch_dir)
    if scenario is not None:
        scenario = Path(scenario)
        if not scenario.is_file():
            raise FraudkitError(f"--scenario {scenario} does not exist")
    else:
        scenario = find_scenario(batch_dir)
    params = {"data.source": str(batch_dir), "data.claims": len(loaded.claims), "data.providers": len(loaded.providers),
              "data.patients": len(loaded.patients), "data.fingerprint": fingerprint, "eval.k": k}
    known = None
    if outcomes is not None:
        from fraudkit.outcomes import load_outcomes

        step(f"checking outcomes {outcomes}")
        known = load_outcomes(outcomes, loaded)
        params.update({"outcomes.file": str(outcomes), "outcomes.confirmed": len(known.confirmed),
                       "outcomes.cleared": len(known.cleared), "outcomes.patients": len(known.seeds()["patients"])})

    eval_on: Batch | None = None
    eval_labels: Labels | None = None
    if eval_batch is not None:
        eval_dir = Path(eval_batch)
        step(f"loading {eval_dir}")
        eval_on = load_batch(eval_dir)
        eval_labels = load_labels(eval_dir, required_for="--eval-batch (measuring a model)")
        eval_fp = batch_fingerprint(eval_dir)
        if eval_fp == fingerprint:
            raise FraudkitError(f"--eval-batch {eval_dir} holds the same data as {batch_dir}: that is not held out")
        fit_on = loaded
        evaluation = f"fitted on all of {batch_dir}; measured on the separate batch {eval_dir}"
        params.update({"split": "eval_batch", "eval.data": str(eval_dir), "eval.fingerprint": eval_fp,
                       "eval.claims": len(eval_on.claims)})
    elif labels is not None and holdout > 0:
        split = time_split(loaded, holdout)
        fit_on, eval_on = split.train, split.holdout
        eval_labels = restrict_labels(labels, split.holdout)
        evaluation = split.describe()
        params.update({"split": "time", "split.holdout": holdout, "split.cutoff": str(split.cutoff.date()),
                       "split.train_claims": len(split.train.claims), "eval.claims": len(split.holdout.claims)})
    else:
        fit_on = loaded
        evaluation = ("no labels/ in the batch: fitted on all of it, nothing measured" if labels is None
                      else "--holdout 0: fitted on all of the batch, nothing measured")
        params.update({"split": "none"})

    model = FraudModel(config).fit(fit_on, progress=step, outcomes=known)
    if known is not None:
        evaluation += f"; with {len(known)} inspection outcomes ({len(known.confirmed)} confirmed, " \
                      f"{len(known.cleared)} cleared), inspected providers left out of the provider metrics"
    metrics: dict = {}
    if eval_on is not None:
        step("measuring on held-out data")
        metrics, result = evaluate_model(model, eval_on, eval_labels, k)
        scored_batch = eval_on
    else:
        step("scoring the training batch (feature importance)")
        result = model.score(fit_on, inspections=k)
        scored_batch = fit_on
    importance = feature_importance(model, scored_batch, result, k)

    metadata = {"training": {"data_fingerprint": fingerprint, "scenario": scenario_name(scenario),
                             "evaluation": evaluation, "k": k,
                             **({"outcomes": {"file": str(outcomes), "confirmed": known.confirmed, "cleared": known.cleared}}
                                if known is not None else {})},
                "metrics": _rounded(metrics)}
    outcome = TrainResult(model=model, metrics=metrics, evaluation=evaluation, fingerprint=fingerprint,
                          importance=importance)
    if out is not None:
        step(f"saving {out}")
        outcome.model_folder = save_model(model, out, metadata)
    if not track:
        return outcome

    step("logging to MLflow")
    with tempfile.TemporaryDirectory(prefix="fraudkit-train-") as tmp:
        tmp = Path(tmp)
        folder = outcome.model_folder or save_model(model, tmp / "model", metadata)
        _log_run(outcome, config, params, metrics, result, eval_labels, importance, scenario, loaded, folder, tmp,
                 experiment=experiment, tracking_uri=tracking_uri, run_name=run_name, k=k)
    if register:
        from ._registry import promote

        step("registering")
        outcome.version = promote(outcome.run_id, "challenger", tracking_uri)
    return outcome


def _log_run(outcome, config, params, metrics, result, labels, importance, scenario, batch, folder, tmp, *,
             experiment, tracking_uri, run_name, k) -> None:
    import mlflow
    import yaml

    from fraudkit.evaluate import evaluation_table

    from . import _figures
    from ._pyfunc import log_fraud_model, serving_request

    client, store = connect(tracking_uri, create=True)
    exp_id = experiment_id(client, experiment, store)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        mlflow.set_tags({"fraudkit.version": __version__, "data.fingerprint": outcome.fingerprint,
                         "fraudkit.command": "train", "evaluation": outcome.evaluation,
                         **({"scenario": scenario_name(scenario)} if scenario else {})})
        mlflow.log_params({**flatten(config.to_dict()), **{key: str(v) for key, v in params.items()}})
        if metrics:
            mlflow.log_metrics(finite(metrics))
            (tmp / "metrics.json").write_text(json.dumps(_rounded(metrics), indent=2, sort_keys=True) + "\n")
            mlflow.log_artifact(str(tmp / "metrics.json"))
            evaluation_table(metrics).to_csv(tmp / "evaluation.csv", index=False)
            mlflow.log_artifact(str(tmp / "evaluation.csv"))
            figures = tmp / "figures"
            figures.mkdir()
            truth = _truth(result, labels)
            _figures.pr_curves(truth, k, figures / "pr_curve.png")
            _figures.scheme_recall(metrics, figures / "scheme_recall.png")
        else:
            figures = tmp / "figures"
            figures.mkdir()
        _figures.feature_importance(importance, figures / "feature_importance.png")
        mlflow.log_artifacts(str(figures), "figures")
        importance.to_csv(tmp / "feature_importance.csv", index=False)
        mlflow.log_artifact(str(tmp / "feature_importance.csv"))
        top = result.providers.drop(columns=["evidence_claims"], errors="ignore").head(max(k, 50))
        top.to_csv(tmp / "top_providers.csv", index=False, float_format="%.6g")
        mlflow.log_artifact(str(tmp / "top_providers.csv"))
        (tmp / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=True))
        mlflow.log_artifact(str(tmp / "config.yaml"))
        if scenario is not None:
            mlflow.log_artifact(str(scenario), "scenario")
        example = subset(batch, np.arange(len(batch.claims)) < 40, "<example>")
        (tmp / "request_example.json").write_text(json.dumps(serving_request(example, inspections=5), default=str) + "\n")
        mlflow.log_artifact(str(tmp / "request_example.json"))
        info = log_fraud_model(folder)
        mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    outcome.run_id = run.info.run_id
    outcome.model_uri = info.model_uri
    outcome.tracking_uri = store
    outcome.experiment_id = exp_id


def _truth(result, labels: Labels) -> dict:
    out = {}
    providers = result.providers
    flags = _unique(labels.fraudulent("providers"))
    out["providers"] = (flags.reindex(providers["provider_id"].astype(str)).fillna(False).to_numpy(dtype=bool),
                        providers["suspicion"].to_numpy(dtype=float))
    claims = result.claims
    flags = _unique(labels.fraudulent("claims"))
    out["claims"] = (flags.reindex(claims["claim_id"].astype(str)).fillna(False).to_numpy(dtype=bool),
                     claims["suspicion"].to_numpy(dtype=float))
    return out


def _unique(flags: pd.Series) -> pd.Series:
    flags = flags[~flags.index.duplicated()]
    flags.index = flags.index.astype(str)
    return flags
