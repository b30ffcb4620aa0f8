"""The Python API: the whole of fraudkit as a handful of functions, for notebooks and scripts.

The functions follow an inspection team's work::

    batch, labels = generate("tiny")          # or load_batch("data/claims")
    model = train(batch)                      # or track=True: log the run to MLflow
    result = score(batch, model, inspections=20)
    result.top()                              # the providers to send teams to
    explain_provider(result, "C00029")        # why, how much money, which claims to pull
    evaluate(result, labels)                  # precision@k against the planted fraud

Everything heavy (scikit-learn, networkx, MLflow, plotly) is imported when a function
needs it, so ``import fraudkit`` stays light and the command line can import
:func:`resolve_model` from here without paying for the rest.

"""

from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkit.errors import FraudkitError, ModelError

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import pandas as pd

    from fraudkit.io import Batch, Labels
    from fraudkit.pipeline import FraudModel, ModelConfig, ScoreResult
    from fraudkit.synthetic import Scenario

__all__ = ["DEFAULT_MODEL", "ProviderExplanation", "TrackedRun", "evaluate", "explain_provider", "generate",
           "resolve_model", "score", "train"]

#: The default model shipped in the repository (``make model`` rebuilds it).
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"
#: Scenarios shipped in the repository's ``synthetic/`` folder, by name.
BUILTIN_SCENARIOS = ("tiny", "default", "hard")


# ---------------------------------------------------------------------- data
def _scenario(scenario) -> "Scenario":
    from fraudkit.synthetic import Scenario, builtin_scenario

    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return Scenario.from_dict(scenario)
    if isinstance(scenario, str) and scenario in BUILTIN_SCENARIOS:
        return Scenario.from_yaml(builtin_scenario(scenario))
    if isinstance(scenario, (str, Path)):
        return Scenario.from_yaml(scenario)
    raise FraudkitError(f"scenario must be a name ({', '.join(BUILTIN_SCENARIOS)}), a YAML path, a dict or a "
                        f"Scenario, not {type(scenario).__name__}")


def generate(scenario: "str | Path | dict | Scenario" = "tiny", n_claims: int | None = None, seed: int = 0,
             out: str | Path | None = None) -> "tuple[Batch, Labels]":
    """Generate a labelled synthetic claims batch with fraud schemes planted in it.

    Parameters
    ----------
    scenario : {"tiny", "default", "hard"}, path, dict or Scenario, default="tiny"
        A scenario shipped in ``synthetic/`` by name, a scenario YAML file, its settings
        as a dict, or a :class:`fraudkit.synthetic.Scenario`. Its ``drift`` section shifts
        prices and behaviour in a second period (to test retraining).
    n_claims : int, optional
        Number of claims; the scenario's ``claims`` when omitted.
    seed : int, default=0
        Same scenario, seed and size give the same batch.
    out : path, optional
        Also write the batch (with ``labels/``) as a batch folder here, as
        ``fraudkit generate --out`` does; the returned batch is read back from it.

    Returns
    -------
    batch : fraudkit.io.Batch
        Claims, items, patients and providers.
    labels : fraudkit.io.Labels
        The planted ground truth (``fraud_type`` per claim, provider and patient).

    See Also
    --------
    fraudkit.load_batch : read a real batch folder.

    Examples
    --------
    >>> import fraudkit
    >>> batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=1)
    >>> len(batch.claims), sorted(batch.providers.provider_type.unique())
    (2000, ['clinic', 'hospital', 'pharmacy'])
    >>> bool(labels.fraudulent("providers").any())
    True
    """
    from fraudkit.synthetic import generate as _generate, generate_to

    sc = _scenario(scenario)
    if out is None:
        return _generate(sc, n_claims=n_claims, seed=seed)
    from fraudkit.io import load_batch, load_labels

    generate_to(sc, out, n_claims=n_claims, seed=seed)
    return load_batch(out), load_labels(out)


def _batch(batch) -> "Batch":
    from fraudkit.io import Batch, load_batch

    if isinstance(batch, Batch):
        return batch
    if isinstance(batch, (str, Path)):
        return load_batch(batch)
    raise FraudkitError(f"batch must be a Batch or a batch folder, not {type(batch).__name__}")


def _config(config) -> "ModelConfig":
    from fraudkit.pipeline import ModelConfig

    if config is None:
        return ModelConfig()
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, dict):
        return ModelConfig.from_dict(config)
    if isinstance(config, (str, Path)):
        return ModelConfig.from_yaml(config)
    raise FraudkitError(f"config must be a ModelConfig, a dict or a YAML path, not {type(config).__name__}")


# ---------------------------------------------------------------------- train
@dataclass(frozen=True)
class TrackedRun:
    """Where :func:`train` logged a model (``model.run_`` after ``train(..., track=True)``).

    Attributes
    ----------
    run_id, model_uri, tracking_uri, experiment_id : str
        The MLflow run, its model (``runs:/<run_id>/model``) and its store.
    metrics : dict
        Held-out metrics (empty without labels), as :func:`fraudkit.evaluate.evaluate` names them.
    evaluation : str
        How the metrics were held out, in words.
    version : str or None
        Registered version of ``fraudkit`` (``register=True``), else None.
    """

    run_id: str
    model_uri: str
    tracking_uri: str
    experiment_id: str
    metrics: dict = field(default_factory=dict)
    evaluation: str = ""
    version: str | None = None


def train(batch: "Batch | str | Path", config: "ModelConfig | dict | str | Path | None" = None, *,
          labels: "Labels | None" = None, track: bool = False, register: bool = False,
          experiment: str = "fraudkit", tracking_uri: str | None = None, run_name: str | None = None,
          holdout: float = 0.3, k: int = 20, out: str | Path | None = None,
          scenario: str | Path | None = None) -> "FraudModel":
    """Fit the scoring pipeline (features, isolation forests, graph settings) on a batch.

    Parameters
    ----------
    batch : Batch or path
        Training claims; a path is read with :func:`fraudkit.load_batch`.
    config : ModelConfig, dict, path or None
        Model settings (see :class:`fraudkit.pipeline.ModelConfig`); a path is a YAML file.
    labels : Labels, optional
        Ground truth of ``batch``; used only with ``track=True`` to log held-out metrics
        (a batch folder brings its own ``labels/``).
    track : bool, default=False
        Log the run to MLflow with :func:`fraudkit.tracking.train`: parameters, held-out
        metrics, figures, the data fingerprint and the model. With labels and
        ``holdout > 0`` the model is fitted on the earlier ``1 - holdout`` of the claims
        and measured on the later ones (a split in time), so the returned model *is*
        the measured one.
    register : bool, default=False
        Register the logged model as ``fraudkit`` with the alias ``challenger`` (needs ``track``).
    experiment, tracking_uri, run_name : str, optional
        Where to log; the store is ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else
        ``sqlite:///mlruns.db`` in the working folder.
    holdout : float, default=0.3
        Share of the latest claims held out for the metrics (``track=True`` only).
    k : int, default=20
        Inspection budget of the logged metrics (``track=True`` only).
    out : path, optional
        Also save the model folder here (``model.joblib`` + ``manifest.json``), ready for
        ``score(batch, model=out)`` and ``fraudkit score --model``.
    scenario : path, optional
        Scenario YAML logged with the run (``track=True`` only).

    Returns
    -------
    FraudModel
        Fitted. With ``track=True`` it carries ``run_`` (a :class:`TrackedRun`).

    See Also
    --------
    score : rank a batch's providers with the model.
    fraudkit.tracking.promote : point an alias (``champion``) at a logged model.

    Examples
    --------
    >>> import fraudkit
    >>> batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=1)
    >>> model = fraudkit.train(batch, {"flag_share": 0.03})
    >>> model.config.flag_share, model.trained_on_["claims"]
    (0.03, 2000)
    """
    from fraudkit.pipeline import FraudModel, save_model

    cfg = _config(config)
    if not track:
        if register:
            raise FraudkitError("register=True needs track=True: a model is registered from its MLflow run")
        model = FraudModel(cfg).fit(_batch(batch))
        if out is not None:
            save_model(model, out)
        return model

    from fraudkit.tracking import train as tracked_train

    with tempfile.TemporaryDirectory(prefix="fraudkit-api-") as tmp:
        folder = batch
        if not isinstance(batch, (str, Path)):
            # MLflow runs record a batch folder (fingerprint, source); write the in-memory one.
            from fraudkit.io import write_batch

            folder = write_batch(_batch(batch), Path(tmp) / "batch", labels=labels)
        elif labels is not None:
            raise FraudkitError("labels= is for an in-memory batch; a batch folder brings its own labels/")
        outcome = tracked_train(folder, cfg, experiment=experiment, tracking_uri=tracking_uri, track=True,
                                register=register, out=out, holdout=holdout, k=k, run_name=run_name,
                                scenario=scenario)
    model = outcome.model
    model.run_ = TrackedRun(run_id=outcome.run_id, model_uri=outcome.model_uri, tracking_uri=outcome.tracking_uri,
                            experiment_id=outcome.experiment_id, metrics=dict(outcome.metrics),
                            evaluation=outcome.evaluation,
                            version=None if outcome.version is None else str(outcome.version.version))
    return model


# ---------------------------------------------------------------------- score
def resolve_model(model: "FraudModel | str | Path | None" = None, tracking_uri: str | None = None) -> "FraudModel":
    """The model a user means: a fitted model, a model folder, an MLflow URI, or the default.

    This is the one resolver of fraudkit: ``fraudkit score --model`` uses it too.

    Parameters
    ----------
    model : FraudModel, path, str or None
        A fitted :class:`~fraudkit.pipeline.FraudModel` (returned as is); a folder written
        by :func:`~fraudkit.pipeline.save_model` (hash-checked before unpickling); an MLflow
        URI (``models:/fraudkit@champion``, ``models:/fraudkit/3``, ``runs:/RUN_ID/model``);
        or None for the default model in ``models/default/`` (``make model`` builds it).
    tracking_uri : str, optional
        Store of an MLflow URI; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlruns.db``.

    Raises
    ------
    ModelError
        A missing folder, a file that does not match its manifest, an unknown run or alias,
        or no default model.

    Examples
    --------
    >>> resolve_model("no/such/model")
    Traceback (most recent call last):
    ...
    fraudkit.errors.ModelError: model no/such/model does not exist
    """
    from fraudkit.pipeline import FraudModel, load_model

    if isinstance(model, FraudModel):
        return model
    if model is None:
        if not (DEFAULT_MODEL / "manifest.json").is_file():
            raise ModelError(f"no model given and the default model {DEFAULT_MODEL} is missing; "
                             "run `make model` to build it, or pass a model (train(batch), a folder or an MLflow URI)")
        return load_model(DEFAULT_MODEL)
    if isinstance(model, str) and model.startswith(("models:/", "runs:/")):
        from fraudkit.tracking import load_model_uri

        return load_model_uri(model, tracking_uri)
    if isinstance(model, (str, Path)):
        return load_model(model)
    raise ModelError(f"model must be a FraudModel, a model folder or an MLflow URI, not {type(model).__name__}")


def score(batch: "Batch | str | Path", model: "FraudModel | str | Path | None" = None, inspections: int = 20, *,
          region: str | None = None, provider_type: str | None = None, seeds: dict | None = None,
          outcomes=None, tracking_uri: str | None = None, refit: str = "auto") -> "ScoreResult":
    """Score a batch and rank its providers for ``inspections`` flight inspections.

    Parameters
    ----------
    batch : Batch or path
        Claims to score; a path is read with :func:`fraudkit.load_batch`.
    model : FraudModel, path, str or None
        See :func:`resolve_model`: a fitted model, a model folder, an MLflow URI, or None
        for the default model.
    inspections : int, default=20
        The inspection budget k: how many providers teams can visit. The top k are
        marked ``inspect`` and their money at stake is summed in ``result.summary``.
    region, provider_type : str, optional
        Rank only providers of this pooling region / type (hospital, clinic, pharmacy).
    seeds : dict, optional
        Confirmed fraudulent actors from past inspections
        (``{"providers": [...], "patients": [...]}``); they seed the propagation detector.
    outcomes : optional
        Past inspection outcomes of this batch's providers (see ``fraudkit.outcomes``),
        passed on to :meth:`FraudModel.score <fraudkit.pipeline.FraudModel.score>`.
    tracking_uri : str, optional
        Store of an MLflow ``model`` URI.
    refit : {"auto", "always", "never"}
        Learn the peer statistics from the batch itself: always, never, or (auto) when the
        model knows under half of its item codes; see :meth:`FraudModel.adapted
        <fraudkit.pipeline.FraudModel.adapted>`. ``result.summary["refit_on_batch"]`` says which.

    Returns
    -------
    ScoreResult
        ``providers`` (ranked: suspicion, money at stake, schemes, reasons, evidence
        claims), ``claims``, ``patients``, ``reasons`` (long table), ``blocks``, ``summary``.

    See Also
    --------
    explain_provider : one provider's case file.
    fraudkit.report.write_report : the same result as an HTML report for inspectors.

    Examples
    --------
    >>> import fraudkit
    >>> batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=1)
    >>> result = fraudkit.score(batch, fraudkit.train(batch), inspections=5)
    >>> result.top()[["rank", "provider_id", "suspicion", "money_at_stake"]].shape
    (5, 4)
    >>> int(result.providers["inspect"].sum())
    5
    """
    if inspections < 1:
        raise FraudkitError(f"inspections (the inspection budget) must be at least 1, got {inspections}")
    if provider_type is not None and provider_type not in ("hospital", "clinic", "pharmacy"):
        raise FraudkitError(f"provider_type must be hospital, clinic or pharmacy, got {provider_type!r}")
    if isinstance(batch, (str, Path)):  # a large batch: the graph worker and the forest walk start beside its validation
        from fraudkit.io import count_rows
        from fraudkit.pipeline import start_workers

        start_workers(count_rows(Path(batch), "claims") or 0)
    fitted = resolve_model(model, tracking_uri)
    loaded = _batch(batch)
    fitted, note = fitted.adapted(loaded, refit)
    extra = {} if outcomes is None else {"outcomes": outcomes}
    result = fitted.score(loaded, inspections=inspections, region=region, provider_type=provider_type,
                          seeds=seeds, **extra)
    result.summary["refit_on_batch"] = bool(note)
    return result


# ---------------------------------------------------------------------- explain
def _money(x: float) -> str:
    return f"¥{x:,.0f}"


@dataclass
class ProviderExplanation:
    """One provider's case file: why it ranks where it does and what to pull on the visit.

    Attributes
    ----------
    provider_id : str
    rank : int
        1 = inspect first.
    inspect : bool
        Within the inspection budget of the run.
    provider : Series
        The provider's row of ``result.providers`` (type, tier, region, suspicion, scores).
    suspicion : float
        Combined suspicion in [0, 1].
    money_at_stake : float
        Fund paid for the provider's flagged claims (yuan): what an inspection could recover.
    schemes : list of str
        Suspected schemes, strongest first (:data:`fraudkit.schemes`).
    reasons : DataFrame
        ``detector, feature, value, reason, strength``, strongest first.
    claims : DataFrame
        The provider's scored claims, most suspicious first, with ``peer_median_total``
        (median total of the claim's DRG/DIP group and tier) and ``cost_ratio``
        (total / peer median): its claims against its peers.
    evidence : DataFrame
        The evidence claims to pull on the visit (rows of ``claims``), in order.
    """

    provider_id: str
    rank: int
    inspect: bool
    provider: "pd.Series"
    suspicion: float
    money_at_stake: float
    schemes: list
    reasons: "pd.DataFrame"
    claims: "pd.DataFrame"
    evidence: "pd.DataFrame"

    def cost_figure(self, pseudonym=None):
        """The provider's claim costs against peer medians, as a plotly Figure (as in the report).

        ``pseudonym`` maps patient ids to what is shown (default: a fresh
        :class:`fraudkit.report.Pseudonymiser`, so raw patient ids never appear).
        """
        from fraudkit.report import Pseudonymiser, cost_figure

        fig, caption = cost_figure(self.claims, pseudonym or Pseudonymiser(),
                                   evidence=set(self.evidence["claim_id"].astype(str)))
        fig.update_layout(title=f"{self.provider_id}: {caption}")
        return fig

    def _lines(self, reasons: int = 5) -> list[str]:
        p = self.provider
        tier = p.get("tier")
        kind = str(p.get("provider_type", "provider")) + (f", tier {tier}" if tier not in (None, "", 0, "0")
                                                            and str(tier) != "nan" else "")
        flagged = int(self.claims["flagged"].sum()) if "flagged" in self.claims else 0
        lines = [
            f"Provider {self.provider_id} ({kind}), rank {self.rank}, suspicion {self.suspicion:.3f}"
            + (" - inspect" if self.inspect else ""),
            f"money at stake {_money(self.money_at_stake)} of {_money(float(p.get('fund_paid', 0.0)))} fund paid; "
            f"{len(self.claims):,} claims, {flagged:,} flagged",
            f"suspected schemes: {', '.join(self.schemes) or 'none named'}",
            "reasons:",
        ]
        lines += [f"  {i}. {r.reason} [{r.detector}]" for i, r in enumerate(self.reasons.head(reasons).itertuples(), 1)]
        if not len(self.reasons):
            lines.append("  (none)")
        ids = list(self.evidence["claim_id"].astype(str))
        lines.append(f"evidence claims to pull ({len(ids)}): {', '.join(ids[:10])}" + (" ..." if len(ids) > 10 else ""))
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        head, money, schemes, _, *rest = self._lines(reasons=len(self.reasons))
        reasons, evidence = rest[:-1], rest[-1]
        items = "".join(f"<li>{html.escape(r.strip().split('. ', 1)[-1])}</li>" for r in reasons)
        return (f"<div class='fraudkit-provider'><b>{html.escape(head)}</b><br>{html.escape(money)}<br>"
                f"{html.escape(schemes)}<br>reasons:<ol>{items}</ol>{html.escape(evidence)}</div>")


def explain_provider(result: "ScoreResult", provider_id: str) -> ProviderExplanation:
    """One provider's case file from a scored batch: reasons, claims against peers, evidence, money.

    Parameters
    ----------
    result : ScoreResult
        From :func:`score`.
    provider_id : str
        A provider of the batch (``result.providers.provider_id``).

    Returns
    -------
    ProviderExplanation
        Prints as a short case summary; shows as HTML in a notebook.

    Raises
    ------
    FraudkitError
        ``provider_id`` is not among the ranked providers.

    Examples
    --------
    >>> import fraudkit
    >>> batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=1)
    >>> result = fraudkit.score(batch, fraudkit.train(batch), inspections=5)
    >>> case = fraudkit.explain_provider(result, result.top().provider_id[0])
    >>> case.rank, case.inspect, list(case.reasons.columns[:3])
    (1, True, ['detector', 'feature', 'value'])
    >>> print(case)  # doctest: +ELLIPSIS
    Provider ... rank 1, suspicion ... - inspect
    money at stake ¥... fund paid; ... claims, ... flagged
    suspected schemes: ...
    reasons:
      1. ...
    evidence claims to pull (...): ...
    """
    import numpy as np

    providers = result.providers
    match = providers.index[providers["provider_id"].astype(str) == str(provider_id)]
    if not len(match):
        raise FraudkitError(f"provider {provider_id!r} is not among the {len(providers):,} ranked providers "
                            "(scored with a region or provider_type filter?)")
    row = providers.loc[match[0]]
    reasons = result.reasons[result.reasons["id"].astype(str) == str(provider_id)]
    reasons = (reasons.sort_values(["strength", "detector", "rank"], ascending=[False, True, True], kind="stable")
               [["detector", "feature", "value", "reason", "strength"]].reset_index(drop=True))
    claims = result.claims[result.claims["provider_id"].astype(str) == str(provider_id)].copy()
    if "peer_median_total" in claims:
        with np.errstate(divide="ignore", invalid="ignore"):
            claims["cost_ratio"] = (claims["total_amount"] / claims["peer_median_total"]).round(3)
    claims = claims.sort_values(["suspicion", "claim_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    ids = [c for c in str(row.get("evidence_claims") or "").split(";") if c]
    evidence = claims.set_index("claim_id").loc[[c for c in ids if c in set(claims["claim_id"])]].reset_index()
    schemes = [s for s in str(row.get("schemes") or "").split(";") if s]
    return ProviderExplanation(
        provider_id=str(provider_id), rank=int(row["rank"]), inspect=bool(row.get("inspect", False)), provider=row,
        suspicion=float(row["suspicion"]), money_at_stake=float(row["money_at_stake"]), schemes=schemes,
        reasons=reasons, claims=claims, evidence=evidence)


# ---------------------------------------------------------------------- evaluate
def evaluate(result: "ScoreResult", labels: "Labels", k: int | None = None) -> dict:
    """How good a ranking is, against the planted (or confirmed) fraud of a labelled batch.

    A thin layer over :func:`fraudkit.evaluate.evaluate` that takes the scores from a result.

    Parameters
    ----------
    result : ScoreResult
        From :func:`score`.
    labels : Labels
        Ground truth of the scored batch (:func:`generate`, :func:`fraudkit.load_labels`).
    k : int, optional
        Inspection budget; default the budget the batch was scored with.

    Returns
    -------
    dict
        ``providers.precision_at_k`` (share of the k inspected providers that are
        fraudulent), ``providers.money_at_k`` (their share of the fraudulent money),
        ``providers.recall_at_k``, PR-AUCs, per-scheme recalls, ``providers.n`` and
        ``providers.fraudulent`` (chance precision = fraudulent / n); see
        :func:`fraudkit.evaluate.evaluate`.

    Examples
    --------
    >>> import fraudkit
    >>> batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=1)
    >>> result = fraudkit.score(batch, fraudkit.train(batch), inspections=10)
    >>> m = fraudkit.evaluate(result, labels)
    >>> m["k"], m["providers.precision_at_k"] > m["providers.fraudulent"] / m["providers.n"]
    (10, True)
    """
    import pandas as pd

    from fraudkit.evaluate import evaluate as _evaluate

    claims, providers = result.claims, result.providers
    claim_scores = pd.Series(claims["suspicion"].to_numpy(dtype=float), index=claims["claim_id"].astype(str).to_numpy())
    provider_scores = pd.Series(providers["suspicion"].to_numpy(dtype=float),
                                index=providers["provider_id"].astype(str).to_numpy())
    kk = int(k) if k is not None else int(result.summary.get("inspections") or 20)
    return _evaluate(labels, claims, claim_scores, provider_scores, k=kk)
