"""Claim skeletons: who went where, when, for what (items and money come later).

Claims are held as a struct of numpy arrays (:class:`ClaimFrame`), so that the
normal generator and every fraud scheme work vectorised on millions of rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from ._catalogue import Catalogue
from ._scenario import Scenario
from ._world import (CLINIC, HOSPITAL, INPATIENT, OUTPATIENT, CHRONIC, PHARMACY, PHARMACY_CARE,
                     GroupSampler, World)

# item-level behaviours a claim carries to the item generator
F_PHANTOM = 1 << 0  # extra phantom exam lines (the provider's template)
F_PHANTOM_ONLY = 1 << 1  # fictitious visit: consultation + template lines only
F_OVERCHARGE = 1 << 2
F_SWAP = 1 << 3
F_UPCODE_ADDON = 1 << 4
F_FULL_PANEL = 1 << 5  # every exam of the group on admission
F_HUNG_NURSING = 1 << 6  # hung days still carry nursing (but no drugs or tests)
F_INFLATE = 1 << 7  # drug quantities inflated (rings)

FIELDS = {
    "patient": np.int32, "provider": np.int32, "doctor": np.int32, "care": np.int8, "admit": np.int32,
    "los": np.int32, "diag": np.int32, "item_diag": np.int32, "severity": np.float32, "flags": np.int32,
    "hung": np.int32, "hung_from": np.int32, "drug": np.int32, "drug_qty": np.int32, "fraud": np.int32,
    "protected": np.bool_,
}


class ClaimFrame:
    """Parallel arrays, one row per claim (see :data:`FIELDS`)."""

    def __init__(self, **arrays: np.ndarray):
        n = len(next(iter(arrays.values())))
        for name, dtype in FIELDS.items():
            value = arrays.get(name)
            if value is None:
                default = -1 if name in ("doctor", "drug", "diag", "item_diag") else 0
                value = np.full(n, default, dtype=dtype)
            setattr(self, name, np.asarray(value, dtype=dtype))
        self.n = n

    def take(self, idx: np.ndarray) -> "ClaimFrame":
        return ClaimFrame(**{k: getattr(self, k)[idx] for k in FIELDS})

    @staticmethod
    def concat(frames: list["ClaimFrame"]) -> "ClaimFrame":
        frames = [f for f in frames if f is not None and f.n > 0]
        return ClaimFrame(**{k: np.concatenate([getattr(f, k) for f in frames]) for k in FIELDS})


def day_weights(sc: Scenario, key: str) -> np.ndarray:
    """Relative weight of each day of the period: month seasonality times a weekday profile."""
    season = sc.section("seasonality")
    dates = np.arange(sc.days) + np.datetime64(sc.period_start, "D")
    months = dates.astype("datetime64[M]").astype(int) % 12
    weekday = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    return np.asarray(season["month"])[months] * np.asarray(season[key])[weekday]


def sample_days(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1).astype(np.int32)


class DiagnosisSampler:
    """Diagnoses by care type, age band and sex."""

    def __init__(self, cat: Catalogue):
        n_diag = len(cat.icd)
        groups, members, weights = [], [], []
        for care in range(3):
            for band in range(3):
                for sex in range(2):
                    g = (care * 3 + band) * 2 + sex
                    w = cat.care_weight[:, care] * cat.age_weight[:, band] * cat.sex_ok[:, sex]
                    groups.append(np.full(n_diag, g))
                    members.append(np.arange(n_diag))
                    weights.append(w)
        self.sampler = GroupSampler(np.concatenate(groups), np.concatenate(weights), 18, np.concatenate(members))

    def sample(self, care: np.ndarray, band: np.ndarray, sex: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        care = np.minimum(care, 2)
        return self.sampler.sample((care.astype(np.int64) * 3 + band) * 2 + sex, rng).astype(np.int32)


def length_of_stay(cat: Catalogue, diag: np.ndarray, tier: np.ndarray, rng: np.random.Generator, factor=1.0) -> np.ndarray:
    mean = cat.los[diag] * np.array([1.0, 0.85, 1.0, 1.15])[tier] * factor
    los = np.round(mean * np.exp(0.4 * rng.standard_normal(len(diag)) - 0.08))
    return np.clip(los, 1, 60).astype(np.int32)


def drift_day(sc: Scenario) -> int | None:
    """Day index (from period start) where the drifted second period begins, or None."""
    start = sc.section("drift")["start"]
    if start is None:
        return None
    return (dt.date.fromisoformat(start) - sc.period_start).days


def pick_provider(world: World, ptype: np.ndarray, patient: np.ndarray, sc: Scenario, rng: np.random.Generator,
                  inpatient: np.ndarray | None = None) -> np.ndarray:
    """Providers of the given types for these patients: mostly their usual one, mostly nearby."""
    pop = sc.section("population")
    n = len(patient)
    home = world.pat_region[patient].astype(np.int64)
    u = rng.random(n)
    region = home.copy()
    away = u >= pop["home_region_share"]
    # a visit away from home: another home region, or rarely a distant one
    other = rng.integers(0, world.n_home, n)
    region[away] = other[away]
    n_dist = world.n_regions - world.n_home
    if n_dist:
        far = rng.random(n) < pop["distant_share"]
        region[far] = world.n_home + rng.integers(0, n_dist, far.sum())
    inpatient = np.zeros(n, bool) if inpatient is None else inpatient
    out = np.empty(n, dtype=np.int64)
    grp = ptype.astype(np.int64) * world.n_regions + region
    ok = world.out_sampler.has(grp)
    grp = np.where(ok, grp, ptype.astype(np.int64) * world.n_regions + home)
    out[:] = world.out_sampler.sample(grp, rng)
    if inpatient.any():
        out[inpatient] = world.inp_sampler.sample(region[inpatient], rng)
    loyal = rng.random(n) < pop["loyalty"]
    col = np.where(inpatient, 0, np.where(ptype == HOSPITAL, 1, np.where(ptype == CLINIC, 2, 3)))
    out[loyal] = world.usual[patient[loyal], col[loyal]]
    return out


def normal_claims(sc: Scenario, world: World, cat: Catalogue, n_target: int, rng: np.random.Generator) -> ClaimFrame:
    """Legitimate claims: roughly ``n_target`` of them (Poisson use per member and care type)."""
    util, prov_cfg = sc.section("utilisation"), sc.section("providers")
    years = sc.days / 365.25
    n_pat = world.n_patients
    rates = np.array([[util[s][c] for c in ("outpatient", "chronic", "inpatient", "pharmacy")] for s in ("EBMI", "RBMI")])
    lam = rates[world.pat_scheme] * (world.pat_factor * world.pat_frailty * years)[:, None]
    # chronic care only for members with a chronic condition (same expected total per scheme)
    has = world.pat_chronic >= 0
    for s in (0, 1):
        sel = world.pat_scheme == s
        share = has[sel].mean() if sel.any() else 0
        lam[sel, 1] = np.where(has[sel], lam[sel, 1] / max(share, 1e-9), 0)
    lam *= n_target / max(lam.sum(), 1e-9)
    counts = rng.poisson(lam).ravel()
    patient = np.repeat(np.repeat(np.arange(n_pat), 4), counts)
    care = np.repeat(np.tile(np.arange(4, dtype=np.int8), n_pat), counts)
    n = len(patient)
    cf = ClaimFrame(patient=patient, care=care)

    # dates
    admit = np.empty(n, dtype=np.int32)
    for c, key in ((OUTPATIENT, "weekday"), (CHRONIC, "weekday"), (INPATIENT, "admission_weekday"), (PHARMACY_CARE, "pharmacy_weekday")):
        sel = care == c
        admit[sel] = sample_days(day_weights(sc, key), int(sel.sum()), rng)
    cf.admit = admit

    # provider type and provider
    hosp_share = prov_cfg["hospital_outpatient_share"]
    ptype = np.where(care == PHARMACY_CARE, PHARMACY,
                     np.where(care == INPATIENT, HOSPITAL,
                              np.where(rng.random(n) < hosp_share + 0.05 * (care == CHRONIC), HOSPITAL, CLINIC)))
    cf.provider = pick_provider(world, ptype, patient, sc, rng, inpatient=care == INPATIENT)

    # doctors: attending doctor; pharmacy sales carry the prescribing doctor or none (over the counter)
    ptype_real = world.prov_type[cf.provider]
    doctor = np.full(n, -1, dtype=np.int64)
    med = ptype_real != PHARMACY
    doctor[med] = world.pick_doctor(cf.provider[med], rng)
    pharm = care == PHARMACY_CARE
    chronic_pat = world.pat_chronic[patient] >= 0
    rx = pharm & (rng.random(n) < np.where(chronic_pat, min(1.0, prov_cfg["prescription_share"] * 1.8), prov_cfg["prescription_share"] * 0.6))
    prescriber = np.where(rng.random(n) < 0.5, world.usual[patient, 1], world.usual[patient, 2])
    doctor[rx] = world.pick_doctor(prescriber[rx], rng)
    cf.doctor = doctor

    # diagnoses
    ds = DiagnosisSampler(cat)
    diag = ds.sample(care.astype(np.int64), world.pat_band[patient], world.pat_sex[patient], rng)
    chronic_diag = world.pat_chronic[patient]
    diag = np.where(care == CHRONIC, chronic_diag, diag)
    # prescriptions at pharmacies: for the chronic condition when there is one, otherwise an acute complaint
    rx_diag = np.where(chronic_pat, chronic_diag, ds.sample(np.zeros(n, np.int64), world.pat_band[patient], world.pat_sex[patient], rng))
    diag = np.where(pharm, np.where(rx, rx_diag, -1), diag)
    # some stays of chronic patients are for their condition
    stay_chronic = (care == INPATIENT) & chronic_pat & (rng.random(n) < 0.3) & (cat.care_weight[np.maximum(chronic_diag, 0), 2] > 0)
    diag = np.where(stay_chronic, chronic_diag, diag)
    cf.diag = diag
    cf.item_diag = diag.copy()

    # stays: length of stay (shorter after drift when configured), inside the period
    stay = care == INPATIENT
    dd = drift_day(sc)
    los_factor = np.ones(stay.sum())
    if dd is not None:
        los_factor = np.where(admit[stay] >= dd, 1 + sc.section("drift")["length_of_stay"], 1.0)
    los = np.zeros(n, dtype=np.int32)
    los[stay] = length_of_stay(cat, diag[stay], world.prov_tier[cf.provider[stay]], rng, los_factor)
    los = np.minimum(los, sc.days - 1)
    cf.los = los
    cf.admit = np.minimum(admit, sc.days - 1 - los).astype(np.int32)
    cf.severity = np.exp(0.35 * rng.standard_normal(n)).astype(np.float32)
    return _legitimate_noise(cf, sc, cat, world, rng)


def _legitimate_noise(cf: ClaimFrame, sc: Scenario, cat: Catalogue, world: World, rng: np.random.Generator) -> ClaimFrame:
    """Honest care that resembles fraud, so that signals are not trivially clean: readmissions of
    chronic and severe patients (some within 15 days), and day leave during long stays (a day with
    only the bed and nursing billed)."""
    stay = np.flatnonzero(cf.care == INPATIENT)
    at_risk = stay[(cat.severity[np.maximum(cf.diag[stay], 0)] >= 1) | (world.pat_chronic[cf.patient[stay]] == cf.diag[stay])]
    again = at_risk[rng.random(len(at_risk)) < 0.06]
    re = cf.take(again)
    re.admit = (cf.admit[again] + cf.los[again] + rng.integers(2, 46, len(again))).astype(np.int32)
    re.los = length_of_stay(cat, re.diag, world.prov_tier[re.provider], rng)
    fits = re.admit + re.los <= sc.days - 1
    re = re.take(np.flatnonzero(fits))
    leave = stay[(cf.los[stay] >= 4) & (rng.random(len(stay)) < 0.02)]
    cf.hung[leave] = 1
    cf.hung_from[leave] = 1 + (rng.random(len(leave)) * (cf.los[leave] - 2)).astype(np.int32)
    cf.flags[leave] |= F_HUNG_NURSING
    return ClaimFrame.concat([cf, re])
