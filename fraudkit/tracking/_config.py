"""Check a model configuration's values before hours of fitting, with a message naming the key."""

from __future__ import annotations

import inspect
import numbers

from fraudkit.errors import FraudkitError

# Set by the pipeline itself for every forest; a config must not set them.
_FOREST_FIXED = {"entity", "random_state", "contamination", "self"}


def _kind_ok(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, numbers.Real):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return True  # None or another default: any value may be meant


def _check_params(cls, params, where: str, source: str, fixed=frozenset({"self"})) -> None:
    if params is None:
        return
    if not isinstance(params, dict):
        raise FraudkitError(f"{source}: {where} must be a mapping of settings, got {params!r}")
    signature = inspect.signature(cls.__init__).parameters
    allowed = {name: p.default for name, p in signature.items() if name not in fixed and p.kind == p.POSITIONAL_OR_KEYWORD}
    for key, value in params.items():
        if key not in allowed:
            raise FraudkitError(f"{source}: {where}.{key} is not a setting of {cls.__name__}; "
                                f"known settings are {', '.join(sorted(allowed))}")
        default = allowed[key]
        if default is not inspect.Parameter.empty and not _kind_ok(value, default):
            raise FraudkitError(f"{source}: {where}.{key} must be like {default!r} ({type(default).__name__}), got {value!r}")


def check_config(config, source: str = "config") -> None:
    """Raise :class:`FraudkitError` for a value the pipeline could not use (type, range or unknown setting)."""
    from fraudkit.detectors import IsolationForestDetector
    from fraudkit.pipeline import GRAPH_DETECTORS

    if not isinstance(config.seed, int) or isinstance(config.seed, bool) or config.seed < 0:
        raise FraudkitError(f"{source}: seed must be a whole number ≥ 0, got {config.seed!r}")
    if not isinstance(config.flag_share, numbers.Real) or isinstance(config.flag_share, bool):
        raise FraudkitError(f"{source}: flag_share must be a number between 0 and 1, got {config.flag_share!r}")
    if not isinstance(config.peer_groups, bool):
        raise FraudkitError(f"{source}: peer_groups must be true or false, got {config.peer_groups!r}")
    if not isinstance(config.explain_claims, int) or isinstance(config.explain_claims, bool) or config.explain_claims < 0:
        raise FraudkitError(f"{source}: explain_claims must be a whole number ≥ 0, got {config.explain_claims!r}")
    for level in ("claim_forest", "patient_forest", "provider_forest"):
        params = getattr(config, level)
        _check_params(IsolationForestDetector, params, level, source, fixed=_FOREST_FIXED)
        n = (params or {}).get("n_estimators", 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FraudkitError(f"{source}: {level}.n_estimators must be a whole number ≥ 1, got {n!r}")
        m = (params or {}).get("max_samples", 1)
        if not (m == "auto" or (isinstance(m, int) and not isinstance(m, bool) and m >= 1)
                or (isinstance(m, float) and 0 < m <= 1)):
            raise FraudkitError(f"{source}: {level}.max_samples must be a whole number ≥ 1, a share in (0, 1] or 'auto', got {m!r}")
    if not isinstance(config.graph, dict):
        raise FraudkitError(f"{source}: graph must map detector names to their settings, got {config.graph!r}")
    for name, params in config.graph.items():
        _check_params(GRAPH_DETECTORS[name], params, f"graph.{name}", source)
    for name, fence in (getattr(config, "fences", None) or {}).items():
        if fence is not None and (isinstance(fence, bool) or not isinstance(fence, numbers.Real) or fence < 0):
            raise FraudkitError(f"{source}: fences.{name} must be a number ≥ 0 of interquartile ranges above Q3 "
                                f"(or null for no fence), got {fence!r}")
    for key in ("weights", "provider_weights"):
        for name, weight in (getattr(config, key, None) or {}).items():
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or weight < 0:
                raise FraudkitError(f"{source}: {key}.{name} must be a number ≥ 0 (0 switches the detector off), got {weight!r}")
