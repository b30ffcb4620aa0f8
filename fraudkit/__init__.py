"""fraudkit: find fraud in medical-insurance claims and decide where flight inspections go.

The Python API reads like an inspection team's work (see :mod:`fraudkit.api`):

- :func:`load_batch` / :func:`generate` — a claims batch (real, or synthetic with planted fraud);
- :func:`train` — fit the scoring pipeline (``track=True`` logs the run to MLflow);
- :func:`score` — rank the batch's providers for ``inspections`` flight inspections;
- :func:`explain_provider` — one provider's reasons, claims against peers, evidence, money at stake;
- :func:`ego_network`, :func:`shared_patients` — its neighbourhood in the claims network;
- :func:`evaluate` — precision@k and money recovered against labels.

Only the batch reader is imported with the package; the rest loads on first use.

Examples
--------
>>> import fraudkit
>>> batch, labels = fraudkit.generate("tiny", n_claims=2000, seed=1)
>>> g = fraudkit.ego_network(batch, batch.providers.provider_id[0], radius=1, max_nodes=30)
>>> g.nodes[batch.providers.provider_id[0]]["hops"], g.number_of_nodes() <= 30
(0, True)
"""

__version__ = "0.1.0"

import sys as _sys
import types as _types

from fraudkit.io import Batch, BatchError, load_batch, load_labels, write_batch  # noqa: E402

# name -> module that defines it; imported on first access (module ``__getattr__``).
_LAZY = {
    "generate": "fraudkit.api",
    "train": "fraudkit.api",
    "score": "fraudkit.api",
    "explain_provider": "fraudkit.api",
    "resolve_model": "fraudkit.api",
    "ProviderExplanation": "fraudkit.api",
    "ego_network": "fraudkit.graph",
    "shared_patients": "fraudkit.graph",
    "Labels": "fraudkit.io",
    "FraudModel": "fraudkit.pipeline",
    "ModelConfig": "fraudkit.pipeline",
    "ScoreResult": "fraudkit.pipeline",
    "save_model": "fraudkit.pipeline",
    "load_model": "fraudkit.pipeline",
    "write_report": "fraudkit.report",
    "FraudkitError": "fraudkit.errors",
    "ModelError": "fraudkit.errors",
}


class _EvaluateModule(_types.ModuleType):
    """``fraudkit.evaluate`` is both the metrics module and, called, :func:`fraudkit.api.evaluate`."""

    def __call__(self, result, labels, k=None):
        """Precision@k and money recovered of a :class:`ScoreResult` against labels (:func:`fraudkit.api.evaluate`)."""
        from fraudkit.api import evaluate

        return evaluate(result, labels, k=k)


class _Package(_types.ModuleType):
    # The submodule ``fraudkit.evaluate`` and the API function ``fraudkit.evaluate`` share a
    # name, and importing a submodule always sets it on the package. Rather than let the
    # last import win, the module is made callable: ``fraudkit.evaluate(result, labels)``
    # and ``from fraudkit.evaluate import evaluation_table`` both keep working.
    def __setattr__(self, name, value):
        if name == "evaluate" and isinstance(value, _types.ModuleType) and type(value) is _types.ModuleType:
            value.__class__ = _EvaluateModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
if "fraudkit.evaluate" in _sys.modules:  # imported before this package finished (unlikely)
    evaluate = _sys.modules["fraudkit.evaluate"]


def __getattr__(name: str):
    if name == "evaluate":
        import importlib

        return importlib.import_module("fraudkit.evaluate")  # sets (and wraps) the attribute
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"evaluate"})


__all__ = ["Batch", "BatchError", "__version__", "load_batch", "load_labels", "write_batch",
           "evaluate", *_LAZY]
