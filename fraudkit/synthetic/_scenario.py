"""Scenarios: what a synthetic batch looks like, as data (YAML -> :class:`Scenario`).

A scenario file only needs the keys it changes; everything else comes from
:data:`DEFAULTS` (which ``synthetic/default.yaml`` spells out in full). Unknown
keys, wrong types and out-of-range values are refused with a
:class:`ScenarioError` that names the key.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraudkit.errors import FraudkitError
from fraudkit.schemes import SCHEMES


class ScenarioError(FraudkitError):
    """A scenario file or value that cannot be used. The message names the key."""


# Scheme knobs. ``providers``: how many providers commit it (capped by the eligible pool);
# ``patients_per_million``: how many patients are actors per million claims (at least 2); ``share``: range of the fraudulent share of an actor's claims, drawn per
# actor (camouflage: the rest is normal business); ``intensity``: range drawn per actor, its
# meaning per scheme is documented in default.yaml.
_SCHEME_DEFAULTS: dict[str, dict[str, Any]] = {
    "phantom_services": {"providers": 5, "share": [0.05, 0.25], "intensity": [0.3, 1.0]},
    "fake_admission": {"providers": 4, "share": [0.1, 0.35], "intensity": [0.3, 1.0], "group_size": [5, 20]},
    "bed_hanging": {"providers": 5, "share": [0.1, 0.4], "intensity": [0.2, 0.6]},
    "decomposed_stay": {"providers": 5, "share": [0.1, 0.35], "intensity": [0.0, 1.0]},
    "upcoding": {"providers": 5, "share": [0.1, 0.35], "intensity": [0.0, 1.0]},
    "drug_swapping": {"providers": 6, "share": [0.05, 0.3], "intensity": [0.3, 1.0]},
    "over_charging": {"providers": 6, "share": [0.05, 0.3], "intensity": [0.1, 0.6]},
    "card_lending": {"patients_per_million": 300, "share": [0.1, 0.5], "intensity": [0.3, 1.0]},
    "drug_reselling": {"providers": 5, "patients_per_million": 150, "share": [0.3, 0.8], "intensity": [2.0, 6.0]},
    "collusion_ring": {"rings": 4, "share": [0.2, 0.6], "intensity": [1.5, 3.0],
                       "ring_patients": [20, 60], "ring_pharmacies": [1, 3], "ring_doctors": [2, 4]},
}

DEFAULTS: dict[str, Any] = {
    "name": "default",
    "description": "",
    "claims": 1_000_000,
    "period": {"start": "2024-01-01", "end": "2024-06-30"},
    "population": {
        "ebmi_share": 0.27,
        "retired_share": 0.25,
        "regions": {"3301": 0.30, "3302": 0.20, "3303": 0.15, "3304": 0.15, "3305": 0.10, "3306": 0.10},
        "distant_regions": {"1101": 0.5, "4403": 0.5},
        "home_region_share": 0.90,
        "distant_share": 0.01,
        "loyalty": 0.7,
        "frailty_shape": 1.0,
    },
    "providers": {
        "hospitals_per_million": 90,
        "clinics_per_million": 500,
        "pharmacies_per_million": 400,
        "scale_exponent": 0.8,
        "min_hospitals": 24,
        "min_clinics": 40,
        "min_pharmacies": 40,
        "tier_shares": {"3": 0.13, "2": 0.41, "1": 0.46},
        "distant_share": 0.05,
        "hospital_outpatient_share": 0.55,
        "prescription_share": 0.35,
    },
    "utilisation": {
        "EBMI": {"outpatient": 5.9, "chronic": 0.73, "inpatient": 0.219, "pharmacy": 6.2},
        "RBMI": {"outpatient": 2.17, "chronic": 0.35, "inpatient": 0.253, "pharmacy": 0.5},
        "retiree_factor": 2.5,
    },
    "seasonality": {
        "month": [1.15, 0.85, 1.0, 1.0, 0.95, 0.95, 0.95, 0.95, 1.0, 1.0, 1.05, 1.15],
        "weekday": [1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.55],
        "pharmacy_weekday": [1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1],
        "admission_weekday": [1.2, 1.1, 1.0, 1.0, 1.0, 0.5, 0.4],
    },
    "benefits": {
        "inpatient": {
            "fund_ratio": {"EBMI": {"3": 0.835, "2": 0.874, "1": 0.894}, "RBMI": {"3": 0.632, "2": 0.724, "1": 0.808}},
            "deductible": {"EBMI": {"3": 500, "2": 300, "1": 100}, "RBMI": {"3": 800, "2": 500, "1": 200}},
        },
        "outpatient": {
            "deductible": {"EBMI": 200, "RBMI": 50},
            "ratio": {"EBMI": 0.6, "RBMI": 0.5},
            "cap": {"EBMI": 4000, "RBMI": 1500},
        },
        "chronic": {"ratio": {"EBMI": 0.75, "RBMI": 0.6}, "cap": {"EBMI": 20000, "RBMI": 10000}},
        "individual_account": {"active": 1500, "retired": 3000},
    },
    "drift": {"start": None, "drug_price": 0.0, "service_price": 0.0, "length_of_stay": 0.0, "fraud_share": 0.0},
    "fraud": {
        "label_noise": 0.0,
        "schemes": copy.deepcopy(_SCHEME_DEFAULTS),
    },
}

# Keys whose mapping holds free names (region codes) rather than fixed keys.
_FREE_KEYS = {"population.regions", "population.distant_regions"}


@dataclass(frozen=True)
class SchemeConfig:
    """Knobs of one planted scheme (see default.yaml for what each means per scheme)."""

    name: str
    providers: int = 0
    patients: int = 0  # patient actors per million claims
    share: tuple[float, float] = (0.1, 0.3)
    intensity: tuple[float, float] = (0.5, 1.0)
    extra: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.providers > 0 or self.patients > 0 or self.extra.get("rings", (0, 0))[0] > 0


@dataclass(frozen=True)
class Scenario:
    """A scenario: population, providers, utilisation, benefits, drift and planted fraud.

    Build one with :meth:`from_yaml` (or :meth:`from_dict`); ``settings`` holds the
    full, validated configuration (defaults merged with the file).

    Examples
    --------
    >>> sc = Scenario.from_dict({"name": "demo", "claims": 5000})
    >>> sc.claims, sc.period_start.isoformat()
    (5000, '2024-01-01')
    """

    name: str
    description: str
    claims: int
    period_start: dt.date
    period_end: dt.date
    settings: dict[str, Any]
    schemes: dict[str, SchemeConfig]
    source: str = "<dict>"

    @property
    def days(self) -> int:
        return (self.period_end - self.period_start).days + 1

    def section(self, key: str) -> dict[str, Any]:
        return self.settings[key]

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Scenario":
        """Read a scenario YAML file; raises :class:`ScenarioError` naming the bad key."""
        path = Path(path)
        if not path.is_file():
            raise ScenarioError(f"Scenario file {path} does not exist." if not path.exists() else f"Scenario {path} is not a file.")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"Scenario file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ScenarioError(f"Scenario file {path} must hold a mapping of settings, not {type(data).__name__}.")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "Scenario":
        merged = _merge(DEFAULTS, data, "", source)
        return _build(merged, source)


# --------------------------------------------------------------------------- validation
def _err(source: str, key: str, message: str) -> ScenarioError:
    return ScenarioError(f"Scenario {source}: key '{key}' {message}")


def _merge(default: Any, given: Any, path: str, source: str) -> Any:
    if isinstance(default, dict):
        if not isinstance(given, dict):
            raise _err(source, path or "<top>", f"must be a mapping, got {given!r}")
        out = copy.deepcopy(default)
        if path in _FREE_KEYS:
            return {str(k): _number(v, f"{path}.{k}", source) for k, v in given.items()}
        for key, value in given.items():
            key = str(key)
            sub = f"{path}.{key}" if path else key
            if key not in default:
                near = difflib.get_close_matches(key, [str(k) for k in default], n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else f"; known keys: {', '.join(map(str, default))}"
                raise _err(source, sub, f"is unknown{hint}")
            if path == "fraud.schemes":
                out[key] = _merge(_SCHEME_DEFAULTS[key], value if value is not None else {}, sub, source)
            else:
                out[key] = _merge(default[key], value, sub, source)
        return out
    if given is None and default is None:
        return None
    if isinstance(default, list):
        if not isinstance(given, list) or len(given) != len(default):
            raise _err(source, path, f"must be a list of {len(default)} numbers, got {given!r}")
        return [_number(v, path, source) for v in given]
    if isinstance(default, bool):
        if not isinstance(given, bool):
            raise _err(source, path, f"must be true or false, got {given!r}")
        return given
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(given, bool) or not isinstance(given, (int, float)) or float(given) != int(given):
            raise _err(source, path, f"must be a whole number, got {given!r}")
        return int(given)
    if isinstance(default, float):
        return _number(given, path, source)
    if default is None or isinstance(default, str):
        if isinstance(given, (dt.date, str)) or given is None:
            return given.isoformat() if isinstance(given, dt.date) else given
        raise _err(source, path, f"must be text, got {given!r}")
    raise AssertionError(path)


def _number(value: Any, path: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _err(source, path, f"must be a number, got {value!r}")
    return float(value)


def _date(value: Any, key: str, source: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _err(source, key, f"must be a date YYYY-MM-DD, got {value!r}") from None


def _check_range(value: float, key: str, source: str, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise _err(source, key, f"must be between {lo:g} and {hi:g}, got {value:g}")


def _build(s: dict[str, Any], source: str) -> Scenario:
    start = _date(s["period"]["start"], "period.start", source)
    end = _date(s["period"]["end"], "period.end", source)
    if end < start:
        raise _err(source, "period.end", f"must not be before period.start ({start})")
    if (end - start).days > 3 * 366:
        raise _err(source, "period.end", "must be at most three years after period.start")
    if s["claims"] < 100:
        raise _err(source, "claims", f"must be at least 100, got {s['claims']}")
    pop = s["population"]
    for key in ("ebmi_share", "retired_share", "home_region_share", "distant_share", "loyalty"):
        _check_range(pop[key], f"population.{key}", source, 0, 1)
    if pop["frailty_shape"] <= 0:
        raise _err(source, "population.frailty_shape", "must be > 0")
    for key in ("regions", "distant_regions"):
        if key == "regions" and not pop[key]:
            raise _err(source, "population.regions", "must name at least one region")
        for code, weight in pop[key].items():
            if weight < 0:
                raise _err(source, f"population.{key}.{code}", "must be ≥ 0")
    if set(pop["regions"]) & set(pop["distant_regions"]):
        raise _err(source, "population.distant_regions", "must not repeat a home region")
    prov = s["providers"]
    for key in ("hospitals_per_million", "clinics_per_million", "pharmacies_per_million", "min_hospitals", "min_clinics", "min_pharmacies"):
        if prov[key] < 1:
            raise _err(source, f"providers.{key}", "must be ≥ 1")
    for key in ("distant_share", "hospital_outpatient_share", "prescription_share"):
        _check_range(prov[key], f"providers.{key}", source, 0, 1)
    _check_range(prov["scale_exponent"], "providers.scale_exponent", source, 0.1, 1.0)
    for key in ("month", "weekday", "pharmacy_weekday", "admission_weekday"):
        if any(v < 0 for v in s["seasonality"][key]) or sum(s["seasonality"][key]) <= 0:
            raise _err(source, f"seasonality.{key}", "must be non-negative with a positive sum")
    for scheme in ("EBMI", "RBMI"):
        for care, rate in s["utilisation"][scheme].items():
            if rate < 0:
                raise _err(source, f"utilisation.{scheme}.{care}", "must be ≥ 0")
        for tier in ("1", "2", "3"):
            _check_range(s["benefits"]["inpatient"]["fund_ratio"][scheme][tier], f"benefits.inpatient.fund_ratio.{scheme}.{tier}", source, 0, 0.99)
    if s["drift"]["start"] is not None:
        _date(s["drift"]["start"], "drift.start", source)
    for key in ("drug_price", "service_price", "length_of_stay", "fraud_share"):
        _check_range(s["drift"][key], f"drift.{key}", source, -0.9, 3.0)
    _check_range(s["fraud"]["label_noise"], "fraud.label_noise", source, 0, 0.5)

    schemes = {}
    for name, cfg in s["fraud"]["schemes"].items():
        if name not in SCHEMES:  # pragma: no cover - defaults only hold known names
            raise _err(source, f"fraud.schemes.{name}", "is not a known scheme")
        key = f"fraud.schemes.{name}"
        for rk in ("share", "intensity", "group_size", "ring_patients", "ring_pharmacies", "ring_doctors"):
            if rk in cfg:
                lo, hi = cfg[rk]
                if lo > hi:
                    raise _err(source, f"{key}.{rk}", f"must be [low, high] with low ≤ high, got {cfg[rk]}")
        lo, hi = cfg["share"]
        if not (0 <= lo and hi < 1):
            raise _err(source, f"{key}.share", f"must lie in [0, 1), got {cfg['share']}")
        if cfg["intensity"][0] < 0:
            raise _err(source, f"{key}.intensity", "must be ≥ 0")
        for count in ("providers", "patients_per_million", "rings"):
            if count in cfg and cfg[count] < 0:
                raise _err(source, f"{key}.{count}", "must be ≥ 0")
        for size in ("group_size", "ring_patients", "ring_pharmacies", "ring_doctors"):
            if size in cfg and cfg[size][0] < 1:
                raise _err(source, f"{key}.{size}", "must be at least 1")
        extra = {k: tuple(v) if isinstance(v, list) else (v, v) for k, v in cfg.items()
                 if k not in ("providers", "patients_per_million", "share", "intensity")}
        schemes[name] = SchemeConfig(
            name=name, providers=int(cfg.get("providers", 0)), patients=int(cfg.get("patients_per_million", 0)),
            share=tuple(cfg["share"]), intensity=tuple(cfg["intensity"]), extra=extra,
        )
    return Scenario(
        name=str(s["name"]), description=str(s["description"] or ""), claims=int(s["claims"]),
        period_start=start, period_end=end, settings=s, schemes=schemes, source=source,
    )


def builtin_scenario(name: str) -> Path:
    """Path of a scenario shipped in the repository's ``synthetic/`` folder (e.g. ``"tiny"``)."""
    root = Path(__file__).resolve().parents[2] / "synthetic"
    return root / f"{name}.yaml"
