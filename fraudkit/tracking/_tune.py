"""``tune``: a small random search over the model settings, one nested MLflow run per trial.

Every trial is fitted on the earlier part of the batch and measured on the later part
(the same time split as ``train``); trials are compared on provider precision@k (what
an inspection team gets), ties broken by provider PR-AUC. Trial 0 is the starting
configuration, so the best is never worse than it on this split.
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fraudkit.errors import FraudkitError

from ._config import check_config
from ._split import restrict_labels, time_split
from ._store import DEFAULT_EXPERIMENT, connect, experiment_id
from ._train import DEFAULT_K, evaluate_model, finite, flatten

OBJECTIVE = "providers.precision_at_k"
TIEBREAK = "providers.pr_auc"

#: The search space: dotted ModelConfig key -> candidate values.
SPACE: dict[str, list] = {
    "flag_share": [0.02, 0.05, 0.1],
    "claim_forest.max_samples": [256, 512, 1024],
    "claim_forest.n_estimators": [100, 200],
    "provider_forest.max_samples": [64, 128, 256],
    "weights.claim_outliers": [0.5, 1.0, 2.0],
    "weights.provider_features": [0.5, 1.0, 2.0],
    "weights.provider_signals": [0.0, 0.5, 1.0, 2.0],
    "weights.claim_signals": [0.0, 0.5, 1.0, 2.0],
    "weights.dense_blocks": [0.0, 1.0, 2.0],
    "weights.rings": [0.0, 1.0, 2.0],
    "provider_weights.rings": [1.0, 2.0, 3.0],
    "weights.egonet": [0.0, 0.5, 1.0],
    "weights.patient_outliers": [0.0, 0.5, 1.0],
    "peer_groups": [True, False],
}


@dataclass
class TuneResult:
    parent_run_id: str
    best_run_id: str
    best_params: dict
    best_metrics: dict
    best_config: object
    trials: pd.DataFrame


def _set(config: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = config
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value


def _get(config: dict, dotted: str):
    node = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def sample(rng: np.random.Generator, space: dict = SPACE) -> dict:
    """One random point of ``space`` (dotted key -> value)."""
    return {key: values[int(rng.integers(len(values)))] for key, values in space.items()}


def tune(
    batch: str | Path,
    trials: int = 10,
    config=None,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    holdout: float = 0.3,
    k: int = DEFAULT_K,
    seed: int = 0,
    space: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Random search over :data:`SPACE` on a labelled batch; logs a parent run with one nested run per trial.

    The parent run logs the best trial's settings as ``best.<key>`` params, its metrics
    (``best.providers.precision_at_k``…), ``trials.csv`` and ``best_config.yaml``
    (ready for ``fraudkit train --config``).
    """
    import mlflow
    import yaml

    from fraudkit.io import batch_fingerprint, load_batch, load_labels
    from fraudkit.pipeline import FraudModel, ModelConfig

    step = progress or (lambda stage: None)
    if trials < 1:
        raise FraudkitError(f"--trials must be at least 1, got {trials}")
    base = config if isinstance(config, ModelConfig) else (ModelConfig.from_yaml(config) if config else ModelConfig())
    check_config(base, str(config) if config is not None and not isinstance(config, ModelConfig) else "config")
    batch_dir = Path(batch)
    step(f"loading {batch_dir}")
    loaded = load_batch(batch_dir)
    labels = load_labels(batch_dir, required_for="tuning (precision@k)")
    split = time_split(loaded, holdout)
    held_labels = restrict_labels(labels, split.holdout)
    rng = np.random.default_rng(seed)
    space = SPACE if space is None else space

    client, store = connect(tracking_uri, create=True)
    exp_id = experiment_id(client, experiment, store)
    rows = []
    with mlflow.start_run(experiment_id=exp_id, run_name=f"tune-{trials}") as parent:
        mlflow.set_tags({"fraudkit.command": "tune", "data.fingerprint": batch_fingerprint(batch_dir),
                         "evaluation": split.describe()})
        mlflow.log_params({"tune.trials": trials, "tune.seed": seed, "tune.objective": OBJECTIVE, "eval.k": k,
                           "split": "time", "split.holdout": holdout, "split.cutoff": str(split.cutoff.date()),
                           "data.source": str(batch_dir)})
        for i in range(trials):
            drawn = {} if i == 0 else sample(rng, space)
            # keep only what differs from the starting config: that is what the trial tries
            point = {key: value for key, value in drawn.items() if _get(base.to_dict(), key) != value}
            data = copy.deepcopy(base.to_dict())
            for key, value in point.items():
                _set(data, key, value)
            cfg = ModelConfig.from_dict(data, source=f"trial {i}")
            step(f"trial {i + 1}/{trials}")
            with mlflow.start_run(experiment_id=exp_id, run_name=f"trial-{i}", nested=True) as child:
                mlflow.log_params(flatten(cfg.to_dict()))
                model = FraudModel(cfg).fit(split.train)
                metrics, _ = evaluate_model(model, split.holdout, held_labels, k)
                mlflow.log_metrics(finite(metrics))
            rows.append({"trial": i, "run_id": child.info.run_id, OBJECTIVE: metrics.get(OBJECTIVE, np.nan),
                         TIEBREAK: metrics.get(TIEBREAK, np.nan),
                         "changed": ", ".join(f"{key}={value}" for key, value in point.items()),
                         "_config": cfg, "_metrics": metrics, "_point": point})
        table = pd.DataFrame(rows)
        order = table.sort_values([OBJECTIVE, TIEBREAK, "trial"], ascending=[False, False, True], na_position="last")
        best = order.iloc[0]
        best_cfg = best["_config"]
        mlflow.log_params({f"best.{key}": value for key, value in flatten(best_cfg.to_dict()).items()})
        mlflow.log_param("best.trial", int(best["trial"]))
        mlflow.log_metrics({f"best.{name}": v for name, v in finite(best["_metrics"]).items()})
        mlflow.log_metric(f"baseline.{OBJECTIVE}", float(table.iloc[0][OBJECTIVE]))
        mlflow.set_tag("best_run_id", best["run_id"])
        public = table.drop(columns=["_config", "_metrics", "_point"])
        with tempfile.TemporaryDirectory(prefix="fraudkit-tune-") as tmp:
            tmp = Path(tmp)
            public.to_csv(tmp / "trials.csv", index=False)
            (tmp / "best_config.yaml").write_text(yaml.safe_dump(best_cfg.to_dict(), sort_keys=True))
            (tmp / "best_metrics.json").write_text(json.dumps(finite(best["_metrics"]), indent=2, sort_keys=True) + "\n")
            mlflow.log_artifacts(str(tmp))
    return TuneResult(parent_run_id=parent.info.run_id, best_run_id=best["run_id"], best_params=dict(best["_point"]),
                      best_metrics=best["_metrics"], best_config=best_cfg, trials=public)
