"""The model registry: promote a run's model under an alias, load a model by URI, compare runs."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudkit.errors import FraudkitError, ModelError

from ._store import REGISTERED_MODEL, connect, get_run, model_uri_of_run, version_by_alias

_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


def _check_uri(client, uri: str, store: str) -> None:
    """Turn a model URI that points nowhere into a ModelError naming what is missing."""
    from mlflow.exceptions import MlflowException

    if m := _RUNS_URI.match(uri):
        get_run(client, m["run"], store)
    elif m := _ALIAS_URI.match(uri):
        version_by_alias(client, m["alias"], store, name=m["name"])
    elif m := _VERSION_URI.match(uri):
        try:
            client.get_model_version(m["name"], m["version"])
        except MlflowException:
            raise ModelError(f"registered model {m['name']!r} has no version {m['version']} in {store}") from None
    elif not uri.startswith("models:/"):
        raise ModelError(f"{uri!r} is not an MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model)")


def load_model_uri(uri: str, tracking_uri: str | None = None):
    """Load the :class:`~fraudkit.pipeline.FraudModel` behind an MLflow model URI.

    The pyfunc's artifacts are downloaded and the fraudkit model folder in them is
    loaded with :func:`fraudkit.pipeline.load_model`, so its SHA-256 is checked
    before anything is unpickled.

    Parameters
    ----------
    uri : str
        ``models:/fraudkit@champion``, ``models:/fraudkit/3`` or ``runs:/RUN_ID/model``.
    tracking_uri : str, optional
        Store to look in; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlruns.db``.

    Raises
    ------
    ModelError
        Unknown run, alias or version; a model that is not a fraudkit model; a hash mismatch.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from fraudkit.pipeline import load_model

    from ._pyfunc import ARTIFACT_KEY

    client, store = connect(tracking_uri)
    _check_uri(client, uri, store)
    with tempfile.TemporaryDirectory(prefix="fraudkit-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=store))
        except MlflowException as exc:
            raise ModelError(f"cannot fetch model {uri} from {store}: {exc.message.splitlines()[0]}") from None
        folder = local / "artifacts" / ARTIFACT_KEY
        if not folder.is_dir():
            raise ModelError(f"{uri} is not a fraudkit model (no artifacts/{ARTIFACT_KEY} in it)")
        return load_model(folder)


def promote(run_id: str, alias: str = "champion", tracking_uri: str | None = None):
    """Register the model of run ``run_id`` as ``fraudkit`` (once) and point ``alias`` at that version.

    Returns the :class:`mlflow.entities.model_registry.ModelVersion`.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client, store = connect(tracking_uri)
    run = get_run(client, run_id, store)
    model_uri = model_uri_of_run(client, run, store)
    existing = client.search_model_versions(f"name = '{REGISTERED_MODEL}' and run_id = '{run_id}'")
    if existing:
        version = max(existing, key=lambda v: int(v.version))
    else:
        version = mlflow.register_model(model_uri, REGISTERED_MODEL, tags={"fraudkit.run_id": run_id})
    try:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version.version)
    except MlflowException as exc:
        raise FraudkitError(f"cannot set alias {alias!r}: {exc.message.splitlines()[0]}") from None
    return client.get_model_version(REGISTERED_MODEL, version.version)


@dataclass
class Comparison:
    """Two runs side by side: ``metrics`` (metric, a, b, difference b − a) and ``params`` that differ."""

    a: str
    b: str
    a_label: str
    b_label: str
    metrics: pd.DataFrame
    params: pd.DataFrame
    same_data: bool


def resolve_run_id(spec: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """``(run_id, label)`` for a run id, an alias of ``fraudkit`` (``champion``) or ``models:/fraudkit@alias``."""
    client, store = connect(tracking_uri)
    m = _ALIAS_URI.match(spec)
    if m is None and re.fullmatch(r"[0-9a-f]{32}", spec):
        get_run(client, spec, store)
        return spec, spec[:8]
    name, alias = (m["name"], m["alias"]) if m else (REGISTERED_MODEL, spec)
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ModelError(f"{spec!r} is neither a run id nor an alias of registered model {name!r} in {store}; "
                         "pass a run id (32 hex digits, printed by `fraudkit train`) or an alias set by `fraudkit promote`") from None
    if not version.run_id:
        raise ModelError(f"version {version.version} of {name!r} ({alias}) was not logged by a run")
    return version.run_id, f"{alias} (v{version.version}, {version.run_id[:8]})"


def compare_runs(a: str, b: str, tracking_uri: str | None = None) -> Comparison:
    """Metrics of runs ``a`` and ``b`` side by side with the difference ``b − a`` (run ids or aliases)."""
    client, store = connect(tracking_uri)
    run_a, label_a = resolve_run_id(a, tracking_uri)
    run_b, label_b = resolve_run_id(b, tracking_uri)
    ra, rb = client.get_run(run_a), client.get_run(run_b)
    names = sorted(set(ra.data.metrics) | set(rb.data.metrics), key=_metric_order)
    rows = []
    for name in names:
        va, vb = ra.data.metrics.get(name), rb.data.metrics.get(name)
        diff = vb - va if va is not None and vb is not None else None
        rows.append((name, va, vb, diff))
    metrics = pd.DataFrame(rows, columns=["metric", "a", "b", "difference"])
    keys = sorted(set(ra.data.params) | set(rb.data.params))
    params = pd.DataFrame([(k, ra.data.params.get(k), rb.data.params.get(k)) for k in keys
                           if ra.data.params.get(k) != rb.data.params.get(k) and not k.startswith("data.")],
                          columns=["param", "a", "b"])
    fa, fb = ra.data.tags.get("data.fingerprint"), rb.data.tags.get("data.fingerprint")
    ea, eb = ra.data.params.get("eval.data"), rb.data.params.get("eval.data")
    same = fa == fb and ea == eb and ra.data.params.get("split.cutoff") == rb.data.params.get("split.cutoff")
    return Comparison(run_a, run_b, label_a, label_b, metrics, params, same)


def _metric_order(name: str):
    """Headline metrics first (what an inspection team cares about), then the rest alphabetically."""
    head = ["providers.precision_at_k", "providers.money_at_k", "providers.recall_at_k", "providers.pr_auc",
            "providers.roc_auc", "claims.pr_auc", "claims.roc_auc", "claims.recall_top"]
    return (head.index(name), "") if name in head else (len(head), name)
