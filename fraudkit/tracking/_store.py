"""Where runs go: the tracking store, the experiment, and run/alias look-ups with readable errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fraudkit.errors import FraudkitError, ModelError

#: Used when neither ``tracking_uri=`` nor ``MLFLOW_TRACKING_URI`` says otherwise.
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
#: Experiment that ``fraudkit train`` and ``fraudkit tune`` log to by default.
DEFAULT_EXPERIMENT = "fraudkit"
#: Name of the registered model that ``fraudkit promote`` versions.
REGISTERED_MODEL = "fraudkit"
#: Run tag naming the URI of the fraudkit pyfunc model logged by the run.
MODEL_URI_TAG = "fraudkit.model_uri"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db`` (in the working folder)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(uri: str) -> str | None:
    """Artifact folder of a local SQLite store: ``mlartifacts/`` beside the database file.

    Other stores (a tracking server, Databricks) decide for themselves: None.
    """
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.resolve().parent / "mlartifacts").as_uri()
    return None


def quiet_mlflow() -> None:
    """Keep MLflow's and Alembic's set-up chatter (creating tables, migrations) off the console."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def connect(uri: str | None = None, *, create: bool = False):
    """Point MLflow at the store and return ``(MlflowClient, resolved uri)``.

    A local SQLite store that does not exist yet is created only when ``create`` is
    True (training); looking a model up in it is a :class:`ModelError` instead.
    """
    import mlflow
    from mlflow import MlflowClient

    quiet_mlflow()
    resolved = resolve_tracking_uri(uri)
    if not create and resolved.startswith("sqlite:///") and not Path(resolved[len("sqlite:///"):]).is_file():
        raise ModelError(f"there is no tracking store at {resolved} (no runs were logged here); train a model with "
                         "`fraudkit train`, run from the folder that holds mlruns.db, or set MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return MlflowClient(tracking_uri=resolved, registry_uri=resolved), resolved


def experiment_id(client, name: str, uri: str) -> str:
    """Id of experiment ``name``, created (with artifacts beside a SQLite store) if missing."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=artifact_root(uri))
    if found.lifecycle_stage == "deleted":
        raise FraudkitError(f"experiment {name!r} was deleted in {uri}; restore it (mlflow experiments restore "
                            f"--experiment-id {found.experiment_id}) or pass another --experiment")
    return found.experiment_id


def get_run(client, run_id: str, uri: str):
    """The run ``run_id``, or a :class:`ModelError` that says where it was looked for."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise ModelError(f"run {run_id!r} does not exist in the tracking store {uri}; list runs with "
                         f"`mlflow ui --backend-store-uri {uri}` or set MLFLOW_TRACKING_URI to the store that holds it") from None


def version_by_alias(client, alias: str, uri: str, name: str = REGISTERED_MODEL):
    """The model version that carries ``alias``, or a :class:`ModelError`."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ModelError(f"no version of registered model {name!r} carries the alias {alias!r} in {uri}; "
                         f"set it with `fraudkit promote RUN_ID --alias {alias}`") from None


def model_uri_of_run(client, run, uri: str) -> str:
    """URI of the fraudkit model that ``run`` logged (``models:/m-…``), or a :class:`ModelError`."""
    tagged = run.data.tags.get(MODEL_URI_TAG)
    if tagged:
        return tagged
    found = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                        filter_string=f"source_run_id = '{run.info.run_id}'", max_results=1)
    if not found:
        raise ModelError(f"run {run.info.run_id} logged no model (was it a `fraudkit tune` trial?); "
                         "train one with `fraudkit train`")
    return found[0].model_uri
