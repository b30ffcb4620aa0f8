"""The insured population and the providers (with their doctors) of a synthetic batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._catalogue import Catalogue
from ._scenario import Scenario

HOSPITAL, CLINIC, PHARMACY = 0, 1, 2
OUTPATIENT, CHRONIC, INPATIENT, PHARMACY_CARE = 0, 1, 2, 3
EBMI, RBMI = 0, 1
CHILD, ADULT, ELDER = 0, 1, 2

#: Price level of a provider: 0 clinic, 1..3 hospital tier, 4 pharmacy.
SERVICE_PRICE_FACTOR = np.array([0.70, 0.80, 0.90, 1.00, 1.00])


class GroupSampler:
    """Weighted sampling of members within groups, vectorised over many draws (alias method).

    ``sample(groups, rng)`` returns, for each requested group, one member drawn with
    probability proportional to its weight among that group's members.

    >>> s = GroupSampler(np.array([0, 0, 1]), np.array([1.0, 3.0, 1.0]), 2)
    >>> draws = s.sample(np.zeros(10_000, dtype=np.int64), np.random.default_rng(0))
    >>> bool(abs((draws == 1).mean() - 0.75) < 0.02)
    True
    """

    def __init__(self, group: np.ndarray, weight: np.ndarray, n_groups: int, members: np.ndarray | None = None):
        group = np.asarray(group, dtype=np.int64)
        members = np.arange(len(group)) if members is None else np.asarray(members)
        order = np.lexsort((np.arange(len(group)), group))
        g, w = group[order], np.asarray(weight, dtype=float)[order]
        self.members = members[order]
        self.size = np.bincount(g, minlength=n_groups)
        self.start = np.concatenate([[0], np.cumsum(self.size)[:-1]]).astype(np.int64)
        self.n_groups = n_groups
        self.prob = np.ones(len(g))
        self.alias = np.arange(len(g))
        for k in range(n_groups):
            lo, m = int(self.start[k]), int(self.size[k])
            if m == 0:
                continue
            ww = w[lo: lo + m]
            total = ww.sum()
            scaled = ww * m / total if total > 0 else np.ones(m)
            small = [i for i in range(m) if scaled[i] < 1.0]
            large = [i for i in range(m) if scaled[i] >= 1.0]
            prob, alias = np.ones(m), np.arange(m)
            while small and large:
                a, b = small.pop(), large[-1]
                prob[a], alias[a] = scaled[a], b
                scaled[b] -= 1.0 - scaled[a]
                if scaled[b] < 1.0:
                    large.pop()
                    small.append(b)
            self.prob[lo: lo + m] = prob
            self.alias[lo: lo + m] = lo + alias

    def has(self, groups: np.ndarray) -> np.ndarray:
        return self.size[groups] > 0

    def sample(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        groups = np.asarray(groups, dtype=np.int64)
        u = rng.random(len(groups))
        size = np.maximum(self.size[groups], 1)
        scaled = u * size
        slot = np.minimum(scaled.astype(np.int64), size - 1)
        idx = np.minimum(self.start[groups] + slot, len(self.members) - 1)
        # the fractional part of u * size is a fresh uniform for the alias decision
        idx = np.where(scaled - slot < self.prob[idx], idx, self.alias[idx])
        return self.members[idx]


@dataclass
class World:
    """Patients, providers and doctors as parallel numpy arrays (index = row)."""

    regions: list[str]  # home regions first, then distant ones
    n_home: int
    ref_year: int
    # patients
    pat_scheme: np.ndarray
    pat_retired: np.ndarray
    pat_birth: np.ndarray
    pat_sex: np.ndarray  # 0 M, 1 F
    pat_band: np.ndarray
    pat_region: np.ndarray
    pat_frailty: np.ndarray
    pat_factor: np.ndarray
    pat_chronic: np.ndarray  # diagnosis index or -1
    usual: np.ndarray  # (n_patients, 4): usual inpatient hospital, outpatient hospital, clinic, pharmacy
    # providers
    prov_type: np.ndarray
    prov_tier: np.ndarray
    prov_region: np.ndarray
    prov_beds: np.ndarray
    prov_level: np.ndarray
    pharm_factor: np.ndarray  # retail pharmacies sell drugs at this share of the catalogue price
    doc_start: np.ndarray
    doc_count: np.ndarray
    prov_number: np.ndarray  # running number within its type (for ids)
    out_sampler: GroupSampler  # group = type * n_regions + region (outpatient attraction)
    inp_sampler: GroupSampler  # inpatient attraction (hospitals, by beds)

    @property
    def n_patients(self) -> int:
        return len(self.pat_scheme)

    @property
    def n_providers(self) -> int:
        return len(self.prov_type)

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    @property
    def n_doctors(self) -> int:
        return int(self.doc_start[-1] + self.doc_count[-1])

    def pick_doctor(self, provider: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A doctor of each provider; busier doctors first (skewed draw)."""
        u = rng.random(len(provider)) ** 1.4
        return self.doc_start[provider] + np.minimum((u * self.doc_count[provider]).astype(np.int64), self.doc_count[provider] - 1)


def claims_per_member(sc: Scenario) -> float:
    """Expected claims per member over the scenario's period (used to size the population)."""
    pop, util = sc.section("population"), sc.section("utilisation")
    years = sc.days / 365.25
    per_year = {s: sum(util[s].values()) for s in ("EBMI", "RBMI")}
    return years * (pop["ebmi_share"] * per_year["EBMI"] + (1 - pop["ebmi_share"]) * per_year["RBMI"])


def provider_counts(sc: Scenario, n_claims: int) -> dict[int, int]:
    prov = sc.section("providers")
    scale = (n_claims / 1e6) ** prov["scale_exponent"]
    n_regions = len(sc.section("population")["regions"]) + len(sc.section("population")["distant_regions"])
    return {
        HOSPITAL: max(prov["min_hospitals"], n_regions, round(prov["hospitals_per_million"] * scale)),
        CLINIC: max(prov["min_clinics"], n_regions, round(prov["clinics_per_million"] * scale)),
        PHARMACY: max(prov["min_pharmacies"], n_regions, round(prov["pharmacies_per_million"] * scale)),
    }


def _regions_for(n: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every region with weight gets one provider first, the rest follow the weights."""
    first = np.flatnonzero(weights > 0)[:n]
    rest = rng.choice(len(weights), size=n - len(first), p=weights / weights.sum())
    return np.concatenate([first, rest]).astype(np.int32)


def build_patients(sc: Scenario, n_claims: int, cat: Catalogue, rng: np.random.Generator,
                   home_w: np.ndarray, ref_year: int) -> dict[str, np.ndarray]:
    """Members: scheme, retirement, age, sex, home region, frailty and chronic condition."""
    pop, util = sc.section("population"), sc.section("utilisation")
    n = max(50, int(round(n_claims / claims_per_member(sc))))
    scheme = np.where(rng.random(n) < pop["ebmi_share"], EBMI, RBMI).astype(np.int8)
    ebmi = scheme == EBMI
    retired = ebmi & (rng.random(n) < pop["retired_share"])
    age = np.empty(n)
    active = ebmi & ~retired
    age[active] = rng.integers(20, 60, active.sum())
    age[retired] = np.minimum(55 + rng.gamma(2.0, 7.0, retired.sum()), 100)
    rb = ~ebmi
    band_draw = rng.random(rb.sum())
    age[rb] = np.where(band_draw < 0.22, rng.integers(0, 18, rb.sum()),
                       np.where(band_draw < 0.68, rng.integers(18, 60, rb.sum()), np.minimum(60 + rng.gamma(2.0, 6.0, rb.sum()), 100)))
    age = np.round(age).astype(np.int64)
    sex = np.where(active, rng.random(n) < 0.45, rng.random(n) < 0.52).astype(np.int8)  # 1 = F
    band = np.where(age < 15, CHILD, np.where(age < 60, ADULT, ELDER)).astype(np.int8)
    region = rng.choice(len(home_w), size=n, p=home_w).astype(np.int32)
    k = pop["frailty_shape"]
    frailty = rng.gamma(k, 1.0 / k, n)
    # use factor: retirees use `retiree_factor` times what active employees use; in RBMI the old use more.
    f = util["retiree_factor"]
    factor = np.ones(n)
    a = 1.0 / (1 - pop["retired_share"] + pop["retired_share"] * f)
    factor[active] = a
    factor[retired] = a * f
    rb_factor = np.array([0.8, 0.85, 1.6])[band[rb]]
    factor[rb] = rb_factor / rb_factor.mean() if rb.any() else rb_factor
    # chronic condition: likelier with age; drawn among diagnoses with chronic care
    has = rng.random(n) < np.array([0.02, 0.15, 0.55])[band]
    w = cat.care_weight[:, 1][None, :] * cat.age_weight.T[:, :]  # (band, diag)
    chronic = np.full(n, -1, dtype=np.int32)
    for b in range(3):
        for s in (0, 1):
            sel = has & (band == b) & (sex == s)
            ww = w[b] * cat.sex_ok[:, s]
            if sel.any() and ww.sum() > 0:
                chronic[sel] = rng.choice(len(ww), size=sel.sum(), p=ww / ww.sum())
    return {"scheme": scheme, "retired": retired, "birth": ref_year - age, "sex": sex, "band": band,
            "region": region, "frailty": frailty, "factor": factor, "chronic": chronic}


def build_world(sc: Scenario, n_claims: int, cat: Catalogue, rng: np.random.Generator) -> World:
    pop, prov_cfg = sc.section("population"), sc.section("providers")
    home = list(pop["regions"])
    distant = list(pop["distant_regions"])
    regions = home + distant
    n_home, n_regions = len(home), len(regions)
    home_w = np.array([pop["regions"][r] for r in home], dtype=float)
    home_w = home_w / home_w.sum() if home_w.sum() > 0 else np.full(n_home, 1 / n_home)
    dist_w = np.array([pop["distant_regions"][r] for r in distant], dtype=float)
    ref_year = sc.period_start.year

    # ---------------------------------------------------------------- providers
    counts = provider_counts(sc, n_claims)
    types, tiers, pregions, beds = [], [], [], []
    tier_cfg = prov_cfg["tier_shares"]
    tier_p = np.array([tier_cfg["1"], tier_cfg["2"], tier_cfg["3"]], dtype=float)
    tier_p = tier_p / tier_p.sum()
    for ptype in (HOSPITAL, CLINIC, PHARMACY):
        n = counts[ptype]
        n_dist = 0 if not distant else max(len(distant), round(n * prov_cfg["distant_share"]))
        n_dist = min(n_dist, n - n_home)
        w_all = np.concatenate([home_w * (1 - prov_cfg["distant_share"]),
                                (dist_w / dist_w.sum() if dist_w.sum() > 0 else np.full(len(distant), 1 / max(1, len(distant)))) * prov_cfg["distant_share"]])
        reg = np.concatenate([_regions_for(n - n_dist, np.concatenate([home_w, np.zeros(len(distant))]), rng),
                              _regions_for(n_dist, np.concatenate([np.zeros(n_home), w_all[n_home:] + 1e-12]), rng) if n_dist else np.empty(0, np.int32)])
        if ptype == HOSPITAL:
            tier = rng.choice([1, 2, 3], size=n, p=tier_p)
            # every home region has a hospital of each tier when there are enough hospitals
            if n >= 3 * n_home:
                tier[: n_home] = 3
                tier[n_home: 2 * n_home] = 2
                reg[: 2 * n_home] = np.tile(np.arange(n_home), 2)
            bed_median = np.array([0, 60, 350, 1200])[tier]
            b = np.clip(np.round(bed_median * np.exp(0.45 * rng.standard_normal(n))), 10, 4000)
        else:
            tier = np.zeros(n, dtype=int)
            b = np.zeros(n)
        types.append(np.full(n, ptype))
        tiers.append(tier)
        pregions.append(reg)
        beds.append(b)
    prov_type = np.concatenate(types).astype(np.int8)
    prov_tier = np.concatenate(tiers).astype(np.int8)
    prov_region = np.concatenate(pregions).astype(np.int32)
    prov_beds = np.concatenate(beds).astype(np.int64)
    n_prov = len(prov_type)
    prov_number = np.concatenate([np.arange(1, counts[t] + 1) for t in (HOSPITAL, CLINIC, PHARMACY)])
    prov_level = np.where(prov_type == HOSPITAL, prov_tier, np.where(prov_type == CLINIC, 0, 4)).astype(np.int8)
    pharm_factor = np.where(prov_type == PHARMACY, rng.choice([0.85, 0.9, 0.95, 1.0], size=n_prov, p=[0.2, 0.3, 0.3, 0.2]), 1.0)

    hosp = prov_type == HOSPITAL
    out_weight = np.where(hosp, prov_beds ** 0.9 * np.array([1, 0.8, 1.0, 1.6])[prov_tier],
                          np.exp(0.5 * rng.standard_normal(n_prov)))
    # clinics and pharmacies: weights relative within their own type only
    inp_weight = np.where(hosp, prov_beds.astype(float), 0.0)
    group = prov_type.astype(np.int64) * n_regions + prov_region
    out_sampler = GroupSampler(group, out_weight, 3 * n_regions)
    inp_sampler = GroupSampler(np.where(hosp, prov_region, n_regions), inp_weight, n_regions + 1)

    doc_count = np.where(hosp, np.clip(np.round(prov_beds / 10), 5, 300), np.where(prov_type == CLINIC, rng.integers(2, 7, n_prov), 0))
    doc_count = doc_count.astype(np.int64)
    doc_start = np.concatenate([[0], np.cumsum(doc_count)[:-1]]).astype(np.int64)

    # ---------------------------------------------------------------- patients
    pats = build_patients(sc, n_claims, cat, rng, home_w, ref_year)
    n_pat = len(pats["scheme"])
    # usual providers in the home region
    usual = np.empty((n_pat, 4), dtype=np.int64)
    r = pats["region"].astype(np.int64)
    usual[:, 0] = inp_sampler.sample(r, rng)
    usual[:, 1] = out_sampler.sample(HOSPITAL * n_regions + r, rng)
    usual[:, 2] = out_sampler.sample(CLINIC * n_regions + r, rng)
    usual[:, 3] = out_sampler.sample(PHARMACY * n_regions + r, rng)
    return World(
        regions=regions, n_home=n_home, ref_year=ref_year,
        pat_scheme=pats["scheme"], pat_retired=pats["retired"], pat_birth=pats["birth"], pat_sex=pats["sex"],
        pat_band=pats["band"], pat_region=pats["region"], pat_frailty=pats["frailty"], pat_factor=pats["factor"],
        pat_chronic=pats["chronic"], usual=usual,
        prov_type=prov_type, prov_tier=prov_tier, prov_region=prov_region, prov_beds=prov_beds, prov_level=prov_level,
        pharm_factor=pharm_factor, doc_start=doc_start, doc_count=doc_count, prov_number=prov_number,
        out_sampler=out_sampler, inp_sampler=inp_sampler,
    )
