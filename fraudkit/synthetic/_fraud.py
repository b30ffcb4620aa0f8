"""Planting the fraud schemes of ``fraudkit.schemes`` into claim skeletons.

Each scheme picks its actors, draws a share (camouflage: the rest of an actor's
business stays normal) and an intensity per actor from the scenario's ranges, then
modifies claims or adds new ones, and sets label bits on claims. Item-level
signals (phantom lines, over-charging, swaps, hung days) are carried to the item
generator as flags and per-provider parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudkit.schemes import SCHEMES

from ._catalogue import EXAM, Catalogue, resale_drugs
from ._claims import (F_FULL_PANEL, F_HUNG_NURSING, F_INFLATE, F_OVERCHARGE, F_PHANTOM, F_PHANTOM_ONLY, F_SWAP,
                      F_UPCODE_ADDON, ClaimFrame, DiagnosisSampler, drift_day)
from ._scenario import Scenario
from ._world import (ADULT, CHRONIC, CLINIC, EBMI, ELDER, HOSPITAL, INPATIENT, OUTPATIENT, PHARMACY, PHARMACY_CARE,
                     World)

SCHEME_NAMES = tuple(SCHEMES)
BIT = {name: 1 << i for i, name in enumerate(SCHEME_NAMES)}
PROVIDER_SCHEMES = tuple(n for n, s in SCHEMES.items() if "provider" in s.actors)
PATIENT_SCHEMES = tuple(n for n, s in SCHEMES.items() if "patient" in s.actors)

#: Diagnosis a resold drug is prescribed for.
_RESALE_DIAG = {"insulin": "E11.2", "anticoagulant": "I50.9", "oncology": "C34.9", "biologic": "M06.9",
                "bronchodilator": "J44.9", "heart_failure": "I50.9"}


@dataclass
class FraudPlan:
    """Per-provider parameters for the item generator and the actors of each scheme."""

    phantom_tpl: np.ndarray
    n_phantom: np.ndarray
    oc_dup: np.ndarray
    oc_price: np.ndarray
    oc_factor: np.ndarray
    swap_p: np.ndarray
    provider_actors: dict[str, np.ndarray] = field(default_factory=dict)
    patient_actors: dict[str, np.ndarray] = field(default_factory=dict)


def _u(rng: np.random.Generator, lohi, size=None):
    lo, hi = lohi
    return rng.uniform(lo, hi, size) if hi > lo else np.full(size, lo) if size is not None else lo


class _Planter:
    def __init__(self, sc: Scenario, world: World, cat: Catalogue, cf: ClaimFrame, rng: np.random.Generator, n_claims: int):
        self.sc, self.world, self.cat, self.cf, self.rng = sc, world, cat, cf, rng
        self.scale = n_claims / 1e6
        self.added: list[ClaimFrame] = []
        n_prov = world.n_providers
        self.taken_prov = np.zeros(n_prov, bool)
        self.taken_pat = np.zeros(world.n_patients, bool)
        self.plan = FraudPlan(
            phantom_tpl=np.full((n_prov, 4), -1, np.int64), n_phantom=np.zeros(n_prov, np.int64),
            oc_dup=np.zeros(n_prov), oc_price=np.zeros(n_prov), oc_factor=np.ones(n_prov), swap_p=np.zeros(n_prov),
        )
        self.dd = drift_day(sc)
        self.fshare = sc.section("drift")["fraud_share"]
        self.vol_all = np.bincount(cf.provider, minlength=n_prov)
        self.vol_stay = np.bincount(cf.provider[cf.care == INPATIENT], minlength=n_prov)
        self.home = world.prov_region < world.n_home
        self.diag_index = {c: i for i, c in enumerate(cat.icd)}
        self.ds = DiagnosisSampler(cat)

    # ------------------------------------------------------------------ helpers
    def choose_providers(self, pool: np.ndarray, k: int, volume: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(pool & self.home & (volume > 0))
        # at most ~15 % of the eligible providers commit one scheme, so small batches are not mostly fraud
        k = min(k, max(2, int(round(0.15 * len(cand)))))
        if len(cand) >= 4:  # actors need enough business to leave a trace (and to hide in)
            cand = cand[volume[cand] >= np.quantile(volume[cand], 0.25)]
        if k <= 0 or len(cand) == 0:
            return np.empty(0, np.int64)
        k = min(k, max(1, len(cand) // 2))
        w = np.sqrt(volume[cand].astype(float)) * np.where(self.taken_prov[cand], 0.05, 1.0)
        chosen = self.rng.choice(cand, size=k, replace=False, p=w / w.sum())
        self.taken_prov[chosen] = True
        return np.sort(chosen)

    def choose_patients(self, pool: np.ndarray, k: int, weight: np.ndarray | None = None) -> np.ndarray:
        cand = np.flatnonzero(pool & ~self.taken_pat)
        k = min(k, len(cand))
        if k <= 0:
            return np.empty(0, np.int64)
        w = None if weight is None else weight[cand] / weight[cand].sum()
        chosen = self.rng.choice(cand, size=k, replace=False, p=w)
        self.taken_pat[chosen] = True
        return chosen

    def n_patients(self, cfg) -> int:
        return 0 if cfg.patients <= 0 else max(2, int(round(cfg.patients * self.scale)))

    def per_actor(self, actors: np.ndarray, lohi) -> np.ndarray:
        out = np.zeros(self.world.n_providers)
        out[actors] = _u(self.rng, lohi, len(actors))
        return out

    def select(self, mask: np.ndarray, share_of_provider: np.ndarray, at_least: int = 3) -> np.ndarray:
        """Claims in ``mask`` chosen with their provider's share; every actor gets ``at_least`` of them."""
        cf = self.cf
        p = share_of_provider[cf.provider]
        if self.dd is not None and self.fshare:
            p = p * np.where(cf.admit >= self.dd, 1 + self.fshare, 1.0)
        sel = mask & (self.rng.random(cf.n) < np.minimum(p, 1.0))
        for a in np.flatnonzero(share_of_provider > 0):
            mine = np.flatnonzero(mask & (cf.provider == a))
            short = at_least - int(sel[mine].sum())
            if short > 0 and len(mine):
                free = mine[~sel[mine]]
                sel[self.rng.choice(free, size=min(short, len(free)), replace=False)] = True
        return sel

    def doctors_in(self, region: np.ndarray) -> np.ndarray:
        """A doctor of a random hospital or clinic in each region."""
        w = self.world
        ptype = np.where(self.rng.random(len(region)) < 0.6, HOSPITAL, CLINIC)
        prov = w.out_sampler.sample(ptype * w.n_regions + region, self.rng)
        return w.pick_doctor(prov, self.rng), prov

    def provider_in(self, ptype: int, region: np.ndarray) -> np.ndarray:
        w = self.world
        grp = ptype * w.n_regions + np.asarray(region, np.int64)
        return w.out_sampler.sample(grp, self.rng)

    def record(self, name: str, prov=None, pat=None):
        if prov is not None:
            self.plan.provider_actors[name] = np.asarray(prov, np.int64)
        if pat is not None:
            self.plan.patient_actors[name] = np.asarray(pat, np.int64)

    # ------------------------------------------------------------------ schemes
    def phantom_services(self, cfg):
        w, cf, rng, cat = self.world, self.cf, self.rng, self.cat
        pool = ((w.prov_type == HOSPITAL) & (w.prov_tier <= 2)) | (w.prov_type == CLINIC)
        actors = self.choose_providers(pool, cfg.providers, self.vol_all)
        self.record("phantom_services", prov=actors)
        if len(actors) == 0:
            return
        exams = np.flatnonzero(cat.kind == EXAM)
        pw = np.sqrt(cat.price[exams].astype(float))
        for a in actors:
            k = int(rng.integers(2, 5))
            self.plan.phantom_tpl[a, :k] = rng.choice(exams, size=k, replace=False, p=pw / pw.sum())
            self.plan.n_phantom[a] = k
        share = self.per_actor(actors, cfg.share)
        inten = self.per_actor(actors, cfg.intensity)
        sel = self.select(np.isin(cf.provider, actors) & (cf.care <= INPATIENT), share)
        cf.flags[sel] |= F_PHANTOM
        cf.fraud[sel] |= BIT["phantom_services"]
        # fictitious visits of real patients of the provider, keyed in in batches on a few days,
        # some on days the patient was in hospital elsewhere
        stays = np.flatnonzero(cf.care == INPATIENT)
        new = []
        for a in actors:
            n_mod = int(sel[cf.provider == a].sum())
            n_inj = int(round(inten[a] * 0.6 * max(n_mod, 2)))
            pats = np.unique(cf.patient[cf.provider == a])
            if n_inj == 0 or len(pats) == 0:
                continue
            patient = rng.choice(pats, size=n_inj)
            entry_days = rng.integers(0, self.sc.days, max(1, n_inj // 10))
            admit = entry_days[rng.integers(0, len(entry_days), n_inj)]
            elsewhere = stays[cf.provider[stays] != a]
            n_else = int(round(0.3 * n_inj)) if len(elsewhere) else 0
            if n_else:
                st = rng.choice(elsewhere, size=n_else)
                patient[:n_else] = cf.patient[st]
                admit[:n_else] = cf.admit[st] + (rng.random(n_else) * (cf.los[st] + 1)).astype(np.int64)
            diag = self.ds.sample(np.zeros(n_inj, np.int64), w.pat_band[patient], w.pat_sex[patient], rng)
            new.append(ClaimFrame(
                patient=patient, provider=np.full(n_inj, a), doctor=w.pick_doctor(np.full(n_inj, a), rng),
                care=np.full(n_inj, OUTPATIENT), admit=admit, diag=diag, item_diag=diag, severity=np.ones(n_inj),
                flags=np.full(n_inj, F_PHANTOM_ONLY), fraud=np.full(n_inj, BIT["phantom_services"]), protected=np.ones(n_inj, bool)))
        self.added += new

    def fake_admission(self, cfg):
        w, cf, rng, cat, sc = self.world, self.cf, self.rng, self.cat, self.sc
        pool = (w.prov_type == HOSPITAL) & (w.prov_tier <= 2)
        actors = self.choose_providers(pool, cfg.providers, self.vol_stay)
        mild = np.flatnonzero(cat.mild)
        lo, hi = (int(v) for v in cfg.extra.get("group_size", (5, 20)))
        recruits_all, new = [], []
        for a in actors:
            s = _u(rng, cfg.share)
            inten = _u(rng, cfg.intensity)
            n_fake = max(lo, int(round(s / (1 - s) * self.vol_stay[a])))
            region = w.prov_region[a] if rng.random() < 0.5 else rng.integers(0, w.n_home)
            eligible_pat = (w.pat_region == region) & (w.pat_band >= ADULT)
            weight = np.where(w.pat_band == ELDER, 3.0, 1.0)
            crowd = self.choose_patients(eligible_pat, max(lo, int(n_fake * 0.6)), weight)
            if len(crowd) == 0:
                continue
            recruits_all.append(crowd)
            doctors = w.pick_doctor(np.full(2, a), rng)
            made = 0
            while made < n_fake:
                size = min(int(rng.integers(lo, hi + 1)), len(crowd))
                members = rng.choice(crowd, size=size, replace=False)
                diag = np.full(size, mild[rng.integers(0, len(mild))], dtype=np.int64)
                other = rng.random(size) < 0.3
                diag[other] = mild[rng.integers(0, len(mild), other.sum())]
                stay_len = int(np.clip(round(cat.los[diag[0]] * (1.3 + inten) + rng.integers(-1, 3)), 5, 25))
                stay_len = min(stay_len, sc.days - 2)
                day0 = int(rng.integers(0, max(1, sc.days - stay_len - 1)))
                admit = day0 + (rng.random(size) < 0.3) * rng.integers(0, 2, size)
                discharge = day0 + stay_len + (rng.random(size) < 0.15) * rng.integers(0, 2, size)
                discharge = np.minimum(discharge, sc.days - 1)
                new.append(ClaimFrame(
                    patient=members, provider=np.full(size, a), doctor=doctors[rng.integers(0, 2, size)],
                    care=np.full(size, INPATIENT), admit=admit, los=np.maximum(discharge - admit, 1), diag=diag, item_diag=diag,
                    severity=np.full(size, 1.0), flags=np.full(size, F_FULL_PANEL), fraud=np.full(size, BIT["fake_admission"]),
                    protected=np.ones(size, bool)))
                made += size
        self.record("fake_admission", prov=actors, pat=np.concatenate(recruits_all) if recruits_all else np.empty(0))
        self.added += new

    def bed_hanging(self, cfg):
        w, cf, rng, sc = self.world, self.cf, self.rng, self.sc
        pool = w.prov_type == HOSPITAL
        actors = self.choose_providers(pool, cfg.providers, self.vol_stay * np.where(w.prov_tier == 3, 0.3, 1.0))
        self.record("bed_hanging", prov=actors)
        if len(actors) == 0:
            return
        share = self.per_actor(actors, cfg.share)
        inten = self.per_actor(actors, cfg.intensity)
        sel = np.flatnonzero(self.select(np.isin(cf.provider, actors) & (cf.care == INPATIENT) & ~cf.protected, share))
        los = cf.los[sel].astype(np.int64)
        hung = np.maximum(1, np.ceil(los * inten[cf.provider[sel]] * rng.uniform(0.6, 1.4, len(sel)))).astype(np.int64)
        new_los = np.minimum(los + hung, sc.days - 1)
        hung = new_los - los
        ok = hung > 0
        sel, los, hung, new_los = sel[ok], los[ok], hung[ok], new_los[ok]
        middle = (rng.random(len(sel)) < 0.3) & (los > 1)
        hung_from = np.where(middle, 1 + (rng.random(len(sel)) * np.maximum(los - 1, 1)).astype(np.int64), los)
        cf.los[sel] = new_los
        cf.admit[sel] = np.minimum(cf.admit[sel], sc.days - 1 - new_los)
        cf.hung[sel] = hung
        cf.hung_from[sel] = hung_from
        cf.flags[sel] |= np.where(rng.random(len(sel)) < 0.3, F_HUNG_NURSING, 0).astype(np.int32)
        cf.fraud[sel] |= BIT["bed_hanging"]
        cf.protected[sel] = True
        # the card is used elsewhere during some hung stays (a pharmacy purchase at home)
        away = rng.random(len(sel)) < 0.35
        s = sel[away]
        if len(s):
            patient = cf.patient[s]
            day = cf.admit[s] + hung_from[away] + (rng.random(len(s)) * hung[away]).astype(np.int64)
            pharm = self.provider_in(PHARMACY, w.pat_region[patient])
            self.added.append(ClaimFrame(patient=patient, provider=pharm, care=np.full(len(s), PHARMACY_CARE), admit=day,
                                         severity=np.ones(len(s)), protected=np.ones(len(s), bool)))

    def _split(self, idx: np.ndarray) -> ClaimFrame:
        """Split stays ``idx`` in two: the first part stays in place, the second part is returned."""
        cf, rng, sc = self.cf, self.rng, self.sc
        los = cf.los[idx].astype(np.int64)
        cut = 1 + (rng.random(len(idx)) * (los - 1)).astype(np.int64)
        g = rng.random(len(idx))
        gap = np.where(g < 0.5, 0, np.where(g < 0.85, rng.integers(1, 4, len(idx)), rng.integers(4, 15, len(idx))))
        second = cf.take(idx)
        second.admit = (cf.admit[idx] + cut + gap).astype(np.int32)
        second.los = (los - cut).astype(np.int32)
        end = second.admit + second.los
        shift = np.maximum(end - (sc.days - 1), 0)
        second.admit = (second.admit - shift).astype(np.int32)
        cf.admit[idx] = np.maximum(cf.admit[idx] - shift, 0)
        cf.los[idx] = np.minimum(cut, np.maximum(second.admit - cf.admit[idx], 1)).astype(np.int32)
        second.hung = np.zeros(len(idx), np.int32)
        return second

    def decomposed_stay(self, cfg):
        w, cf, rng = self.world, self.cf, self.rng
        actors = self.choose_providers(w.prov_type == HOSPITAL, cfg.providers, self.vol_stay)
        self.record("decomposed_stay", prov=actors)
        if len(actors) == 0:
            return
        share = self.per_actor(actors, cfg.share)
        inten = self.per_actor(actors, cfg.intensity)
        sel = np.flatnonzero(self.select(np.isin(cf.provider, actors) & (cf.care == INPATIENT) & (cf.los >= 4) & ~cf.protected, share))
        three = sel[(cf.los[sel] >= 8) & (rng.random(len(sel)) < 0.5 * inten[cf.provider[sel]])]
        cf.fraud[sel] |= BIT["decomposed_stay"]
        cf.protected[sel] = True
        second = self._split(sel)
        self.added.append(second)
        if len(three):
            # split the first part again for a third bill
            third = self._split(three[cf.los[three] >= 2])
            self.added.append(third)

    def upcoding(self, cfg):
        w, cf, rng, cat = self.world, self.cf, self.rng, self.cat
        actors = self.choose_providers((w.prov_type == HOSPITAL) & (w.prov_tier >= 2), cfg.providers, self.vol_stay)
        self.record("upcoding", prov=actors)
        if len(actors) == 0:
            return
        share = self.per_actor(actors, cfg.share)
        inten = self.per_actor(actors, cfg.intensity)
        can = (cf.care == INPATIENT) & (cf.diag >= 0) & (cat.upcode_to[np.maximum(cf.diag, 0)] >= 0) & (cf.fraud == 0)
        sel = np.flatnonzero(self.select(np.isin(cf.provider, actors) & can, share * 2.0))
        cf.diag[sel] = cat.upcode_to[cf.diag[sel]]
        addon = rng.random(len(sel)) < inten[cf.provider[sel]]
        cf.flags[sel[addon]] |= F_UPCODE_ADDON
        cf.fraud[sel] |= BIT["upcoding"]
        cf.protected[sel] = True

    def drug_swapping(self, cfg):
        w, cf, rng = self.world, self.cf, self.rng
        k = cfg.providers
        n_ph = int(round(k / 3))
        a1 = self.choose_providers(w.prov_type == PHARMACY, n_ph, self.vol_all)
        a2 = self.choose_providers(w.prov_type != PHARMACY, k - len(a1), self.vol_all)
        actors = np.sort(np.concatenate([a1, a2]))
        self.record("drug_swapping", prov=actors)
        if len(actors) == 0:
            return
        share = self.per_actor(actors, cfg.share)
        self.plan.swap_p[actors] = np.clip(_u(rng, cfg.intensity, len(actors)), 0.05, 1.0)
        w.pharm_factor[a1] = 1.0  # swappers bill at the regulated maximum
        sel = self.select(np.isin(cf.provider, actors) & (cf.care != INPATIENT), share)
        cf.flags[sel] |= F_SWAP
        cf.fraud[sel] |= BIT["drug_swapping"]

    def over_charging(self, cfg):
        w, cf, rng = self.world, self.cf, self.rng
        actors = self.choose_providers(w.prov_type != PHARMACY, cfg.providers, self.vol_all)
        self.record("over_charging", prov=actors)
        if len(actors) == 0:
            return
        share = self.per_actor(actors, cfg.share)
        variant = rng.random(len(actors))
        self.plan.oc_dup[actors] = np.where(variant < 0.7, rng.uniform(0.05, 0.25, len(actors)), 0.0)
        self.plan.oc_price[actors] = np.where(variant >= 0.3, rng.uniform(0.3, 0.9, len(actors)), 0.0)
        self.plan.oc_factor[actors] = 1 + np.maximum(_u(rng, cfg.intensity, len(actors)), 0.05)
        sel = self.select(np.isin(cf.provider, actors) & (cf.care != PHARMACY_CARE), share)
        cf.flags[sel] |= F_OVERCHARGE
        cf.fraud[sel] |= BIT["over_charging"]

    def card_lending(self, cfg):
        w, cf, rng, sc, cat = self.world, self.cf, self.rng, self.sc, self.cat
        own = np.bincount(cf.patient, minlength=w.n_patients)
        weight = np.where(w.pat_scheme == EBMI, 2.0, 1.0)
        lenders = self.choose_patients((own > 0) & (w.pat_band >= ADULT), self.n_patients(cfg), weight)
        self.record("card_lending", pat=lenders)
        if len(lenders) == 0:
            return
        s = _u(rng, cfg.share, len(lenders))
        same_day = _u(rng, cfg.intensity, len(lenders))
        n_use = np.clip(np.round(s / (1 - s) * own[lenders]), 1, 15).astype(np.int64)
        li = np.repeat(np.arange(len(lenders)), n_use)
        patient = lenders[li]
        m = len(patient)
        # the day: one of the card owner's own visit days (same-day use elsewhere), or any day
        order = np.argsort(cf.patient, kind="stable")
        starts = np.searchsorted(cf.patient[order], patient)
        pick = order[np.minimum(starts + (rng.random(m) * own[patient]).astype(np.int64), len(order) - 1)]
        admit = np.where(rng.random(m) < same_day[li], cf.admit[pick], rng.integers(0, sc.days, m))
        # where: a distant region when there is one, otherwise another home region
        home = w.pat_region[patient].astype(np.int64)
        n_dist = w.n_regions - w.n_home
        region = (home + 1 + rng.integers(0, max(w.n_home - 1, 1), m)) % w.n_home if w.n_home > 1 else home
        if n_dist:
            far = rng.random(m) < 0.6
            region[far] = w.n_home + rng.integers(0, n_dist, far.sum())
        care = np.where(rng.random(m) < 0.6, OUTPATIENT, PHARMACY_CARE)
        care[rng.random(m) < 0.05] = INPATIENT
        ptype = np.where(care == PHARMACY_CARE, PHARMACY, np.where(rng.random(m) < 0.5, HOSPITAL, CLINIC))
        ptype[care == INPATIENT] = HOSPITAL
        provider = self.provider_in(0, region)
        for t in (HOSPITAL, CLINIC, PHARMACY):
            sel = ptype == t
            provider[sel] = self.provider_in(t, region[sel])
        doctor = np.full(m, -1, np.int64)
        med = ptype != PHARMACY
        doctor[med] = w.pick_doctor(provider[med], rng)
        rx = ~med
        doctor[rx], _ = self.doctors_in(region[rx])
        # the borrower is someone else: often another sex or age, so items can be implausible for the card
        b_sex = np.where(rng.random(m) < 0.4, 1 - w.pat_sex[patient], w.pat_sex[patient])
        b_band = np.where(rng.random(m) < 0.3, rng.integers(0, 3, m), ADULT)
        diag = self.ds.sample(np.minimum(care, 2).astype(np.int64), b_band, b_sex, rng)
        los = np.where(care == INPATIENT, np.clip(np.round(cat.los[diag]), 1, 20), 0).astype(np.int64)
        los = np.minimum(los, sc.days - 1)
        admit = np.minimum(admit, sc.days - 1 - los)
        self.added.append(ClaimFrame(patient=patient, provider=provider, doctor=doctor, care=care, admit=admit, los=los,
                                     diag=diag, item_diag=diag, severity=np.exp(0.3 * rng.standard_normal(m)),
                                     fraud=np.full(m, BIT["card_lending"]), protected=np.ones(m, bool)))
        # family cards: relatives' cards draw the same drug at the same pharmacy on the same day
        fam_lenders = lenders[rng.random(len(lenders)) < 0.25]
        drugs = resale_drugs(cat)
        for head in fam_lenders:
            r = w.pat_region[head]
            fam = np.concatenate([[head], self.choose_patients((w.pat_region == r) & (w.pat_band >= ADULT), int(rng.integers(1, 4)))])
            if len(fam) < 2:
                continue
            self.plan.patient_actors["card_lending"] = np.concatenate([self.plan.patient_actors["card_lending"], fam[1:]])
            pharm = self.provider_in(PHARMACY, np.array([r]))[0]
            drug = drugs[rng.integers(0, len(drugs))]
            qty = int(np.ceil(30 / max(cat.days_per_pack[drug], 1)))
            for day in rng.integers(0, sc.days, int(rng.integers(2, 6))):
                k = len(fam)
                doc, _ = self.doctors_in(np.full(k, r))
                self.added.append(ClaimFrame(
                    patient=fam, provider=np.full(k, pharm), doctor=doc, care=np.full(k, PHARMACY_CARE), admit=np.full(k, day),
                    diag=np.full(k, self.diag_index[_RESALE_DIAG[cat.class_names[cat.drug_class[drug]]]]),
                    item_diag=np.full(k, self.diag_index[_RESALE_DIAG[cat.class_names[cat.drug_class[drug]]]]),
                    severity=np.ones(k), drug=np.full(k, drug), drug_qty=np.full(k, qty),
                    fraud=np.full(k, BIT["card_lending"]), protected=np.ones(k, bool)))

    def drug_reselling(self, cfg):
        w, cf, rng, sc, cat = self.world, self.cf, self.rng, self.sc, self.cat
        pharmacies = self.choose_providers(w.prov_type == PHARMACY, cfg.providers, self.vol_all)
        weight = np.where(w.pat_retired, 4.0, 1.0) * np.where(w.pat_band == ELDER, 2.0, 1.0)
        sellers = self.choose_patients(w.pat_band >= ADULT, self.n_patients(cfg), weight)
        self.record("drug_reselling", prov=pharmacies, pat=sellers)
        if len(sellers) == 0:
            return
        drugs = resale_drugs(cat)
        home_pharm = rng.choice(pharmacies, size=(len(sellers), 2)) if len(pharmacies) else None
        parts = []
        for i, p in enumerate(sellers):
            drug = drugs[rng.integers(0, len(drugs))]
            dpp = max(int(cat.days_per_pack[drug]), 1)
            ratio = _u(rng, cfg.intensity)
            # a purchase every few days or weeks (at least five in the period), each supplying `ratio` times the gap
            interval = max(1.0, min(rng.uniform(30, 90) / ratio, sc.days / 5))
            qty = max(1, int(np.ceil(interval * ratio / dpp)))
            steps = interval * rng.uniform(0.6, 1.4, int(sc.days / interval) + 2)
            days = (rng.uniform(0, interval) + np.cumsum(steps) - steps[0]).astype(np.int64)
            days = days[days < sc.days]
            if len(days) < 2:
                days = np.sort(rng.integers(0, sc.days, 2))
            k = len(days)
            share = _u(rng, cfg.share)
            at_home = (rng.random(k) < share) & (home_pharm is not None)
            region = rng.integers(0, w.n_home, k)
            provider = self.provider_in(PHARMACY, region)
            if home_pharm is not None:
                provider[at_home] = home_pharm[i, rng.integers(0, 2, at_home.sum())]
            doctor, doc_prov = self.doctors_in(region)
            care = np.full(k, PHARMACY_CARE)
            # doctor shopping: some supplies are prescribed and dispensed at a hospital visit
            visit = (~at_home) & (rng.random(k) < 0.25)
            care[visit] = CHRONIC
            provider[visit] = doc_prov[visit]
            diag = self.diag_index[_RESALE_DIAG[cat.class_names[cat.drug_class[drug]]]]
            parts.append(ClaimFrame(
                patient=np.full(k, p), provider=provider, doctor=doctor, care=care, admit=days, diag=np.full(k, diag),
                item_diag=np.full(k, diag), severity=np.ones(k), drug=np.full(k, drug),
                drug_qty=np.maximum(1, np.round(qty * rng.uniform(0.8, 1.5, k))), fraud=np.full(k, BIT["drug_reselling"]),
                protected=np.ones(k, bool)))
        self.added += parts

    def collusion_ring(self, cfg):
        w, cf, rng, sc, cat = self.world, self.cf, self.rng, self.sc, self.cat
        n_rings = int(cfg.extra.get("rings", (0, 0))[0])
        clinics, pharms, members = [], [], []
        drugs = resale_drugs(cat)
        chronic_diags = np.array([self.diag_index[c] for c in ("I10", "E11.9", "I25.1", "J44.9", "E11.2")])
        for _ in range(n_rings):
            region = int(rng.integers(0, w.n_home))
            in_region = w.prov_region == region
            clinic = self.choose_providers((w.prov_type == CLINIC) & in_region, 1, self.vol_all)
            if len(clinic) == 0:
                continue
            n_ph = int(rng.integers(int(cfg.extra["ring_pharmacies"][0]), int(cfg.extra["ring_pharmacies"][1]) + 1))
            ring_ph = self.choose_providers((w.prov_type == PHARMACY) & in_region, n_ph, self.vol_all + 1)
            if len(ring_ph) == 0:
                self.taken_prov[clinic] = False
                continue
            c = int(clinic[0])
            n_doc = min(int(rng.integers(int(cfg.extra["ring_doctors"][0]), int(cfg.extra["ring_doctors"][1]) + 1)), int(w.doc_count[c]))
            doctors = w.doc_start[c] + rng.choice(int(w.doc_count[c]), size=n_doc, replace=False)
            lo, hi = (int(v) for v in cfg.extra["ring_patients"])
            n_pat = int(rng.integers(lo, hi + 1))
            n_pat = min(n_pat, max(3, int(self.scale * 1e6) // 400))  # small batches get small rings
            pats = self.choose_patients((w.pat_region == region) & (w.pat_band >= ADULT), n_pat)
            if len(pats) == 0:
                continue
            clinics.append(c)
            pharms.append(ring_ph)
            members.append(pats)
            ring_drugs = rng.choice(drugs, size=2, replace=False)
            rate = _u(rng, cfg.intensity)
            months = sc.days / 30.4
            n_visit = np.maximum(1, rng.poisson(rate * months, len(pats)))
            patient = np.repeat(pats, n_visit)
            m = len(patient)
            admit = rng.integers(0, sc.days - 1, m)
            doctor = doctors[rng.integers(0, n_doc, m)]
            diag = np.where(w.pat_chronic[patient] >= 0, w.pat_chronic[patient], chronic_diags[rng.integers(0, len(chronic_diags), m)])
            care = np.where(rng.random(m) < 0.7, CHRONIC, OUTPATIENT)
            visits = ClaimFrame(patient=patient, provider=np.full(m, c), doctor=doctor, care=care, admit=admit, diag=diag,
                                item_diag=diag, severity=np.exp(0.3 * rng.standard_normal(m)) * 1.5, flags=np.full(m, F_INFLATE),
                                fraud=np.full(m, BIT["collusion_ring"]), protected=np.ones(m, bool))
            fav = ring_ph[rng.integers(0, len(ring_ph), len(pats))]
            fill = rng.random(m) < max(_u(rng, cfg.share), 0.5)
            f = np.flatnonzero(fill)
            drug = ring_drugs[rng.integers(0, 2, len(f))]
            qty = np.ceil(rng.uniform(30, 60, len(f)) / np.maximum(cat.days_per_pack[drug], 1)).astype(np.int64)
            pat_pos = np.searchsorted(np.sort(pats), patient[f])
            fav_sorted = fav[np.argsort(pats)]
            fills = ClaimFrame(patient=patient[f], provider=fav_sorted[pat_pos], doctor=doctor[f], care=np.full(len(f), PHARMACY_CARE),
                               admit=admit[f] + (rng.random(len(f)) < 0.3), diag=diag[f], item_diag=diag[f], severity=np.ones(len(f)),
                               drug=drug, drug_qty=qty, fraud=np.full(len(f), BIT["collusion_ring"]), protected=np.ones(len(f), bool))
            self.added += [visits, fills]
        self.record("collusion_ring", prov=np.concatenate([np.array(clinics, np.int64)] + [np.asarray(p, np.int64) for p in pharms]) if clinics else np.empty(0),
                    pat=np.concatenate(members) if members else np.empty(0))


def plant_fraud(sc: Scenario, world: World, cat: Catalogue, cf: ClaimFrame, rng: np.random.Generator,
                n_claims: int) -> tuple[ClaimFrame, FraudPlan]:
    """Plant every enabled scheme; returns all claims (normal, modified and added) and the plan."""
    planter = _Planter(sc, world, cat, cf, rng, n_claims)
    # claim-level rewrites that change stays go first, then schemes that add claims, then item-level ones
    order = ("fake_admission", "collusion_ring", "drug_reselling", "card_lending", "bed_hanging", "decomposed_stay",
             "upcoding", "phantom_services", "over_charging", "drug_swapping")
    for name in order:
        cfg = sc.schemes.get(name)
        if cfg is not None and cfg.enabled:
            getattr(planter, name)(cfg)
    added = [a for a in planter.added if a.n]
    all_claims = ClaimFrame.concat([cf] + added) if added else cf
    return all_claims, planter.plan
