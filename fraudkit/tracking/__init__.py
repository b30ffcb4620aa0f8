"""Experiment tracking and the model registry (MLflow) for fraudkit models.

- :func:`train` fits the pipeline on a batch, measures it on held-out data (a split
  in time, or a separate labelled batch) and logs params, metrics, figures, the data
  fingerprint, the scenario and the model to MLflow.
- The model is logged as an MLflow ``python_function`` model (:class:`FraudkitPyfunc`)
  whose artifact is the saved fraudkit model folder, loaded hash-checked; its input is
  a batch's four tables stacked in one frame (:func:`batch_to_frame`), so
  ``mlflow models serve`` scores batches over REST.
- :func:`promote` registers a run's model as ``fraudkit`` and sets an alias;
  :func:`load_model_uri` loads ``models:/fraudkit@champion``; :func:`compare_runs`
  puts two runs' metrics side by side; :func:`tune` runs a small random search.

The store is ``$MLFLOW_TRACKING_URI`` or, by default, ``sqlite:///mlruns.db`` in the
working folder with artifacts in ``./mlartifacts``. Importing this package does not
import MLflow; the functions do, when called.
"""

from ._config import check_config
from ._registry import Comparison, compare_runs, load_model_uri, promote, resolve_run_id
from ._split import TimeSplit, restrict_labels, subset, time_split
from ._store import DEFAULT_EXPERIMENT, DEFAULT_TRACKING_URI, REGISTERED_MODEL, artifact_root, resolve_tracking_uri
from ._train import DEFAULT_K, TrainResult, evaluate_model, feature_importance, flatten, train
from ._tune import SPACE, TuneResult, tune

_PYFUNC = ("FraudkitPyfunc", "batch_to_frame", "frame_to_batch", "log_fraud_model", "scores_frame", "serving_request",
           "OUTPUT_COLUMNS", "TABLE_COLUMN")


def __getattr__(name: str):
    # The pyfunc module imports MLflow (a second or two); load it only when asked for.
    if name in _PYFUNC:
        from . import _pyfunc

        return getattr(_pyfunc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Comparison", "DEFAULT_EXPERIMENT", "DEFAULT_K", "DEFAULT_TRACKING_URI", "REGISTERED_MODEL", "SPACE", "TimeSplit",
    "TrainResult", "TuneResult", "artifact_root", "check_config", "compare_runs", "evaluate_model", "feature_importance", "flatten",
    "load_model_uri", "promote", "resolve_run_id", "resolve_tracking_uri", "restrict_labels", "subset", "time_split",
    "train", "tune", *_PYFUNC,
]
