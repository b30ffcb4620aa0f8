"""Cost-detail lines of claims, generated vectorised for a chunk of claims at a time.

Every amount is held in integer cents: a line's amount is quantity × unit price
exactly, and a claim's total is the exact sum of its lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._catalogue import BED, CONSUMABLE, DRUG, EXAM, OTHER, TREATMENT, Catalogue
from ._claims import (F_FULL_PANEL, F_HUNG_NURSING, F_INFLATE, F_OVERCHARGE, F_PHANTOM, F_PHANTOM_ONLY, F_SWAP,
                      F_UPCODE_ADDON, ClaimFrame)
from ._world import CHRONIC, INPATIENT, OUTPATIENT, PHARMACY_CARE, SERVICE_PRICE_FACTOR, World


@dataclass
class ItemContext:
    """Everything the item generator needs besides the claims themselves."""

    cat: Catalogue
    world: World
    price: np.ndarray  # (2 periods, 5 price levels, n_items) cents
    drift_day: int | None
    drug_rows: np.ndarray  # (n_diag + 1, K) outpatient drug lists, last row = over-the-counter drugs
    n_drug_rows: np.ndarray
    phantom_tpl: np.ndarray  # (n_providers, 4) template exam items, -1 padded
    n_phantom: np.ndarray
    oc_dup: np.ndarray  # per provider: share of service lines billed twice (over-charging)
    oc_price: np.ndarray  # per provider: share of service lines priced above the catalogue
    oc_factor: np.ndarray  # per provider: price factor above the catalogue
    swap_p: np.ndarray  # per provider: share of drug lines swapped to the expensive code
    codes: dict[str, int]
    panel_items: np.ndarray = None  # sorted item indices of packages
    panel_parts: np.ndarray = None  # (n_panels, 3) their parts, -1 padded


def price_table(cat: Catalogue, drug_change: float, service_change: float) -> np.ndarray:
    is_drug = cat.kind == DRUG
    levels = []
    for factor in SERVICE_PRICE_FACTOR:
        levels.append(np.where(is_drug, cat.price, np.round(cat.price * factor)))
    base = np.array(levels, dtype=np.int64)
    drifted = np.where(is_drug, np.round(base * (1 + drug_change)), np.round(base * (1 + service_change))).astype(np.int64)
    return np.stack([base, np.maximum(drifted, 1)])


def _stride(length: np.ndarray) -> np.ndarray:
    """A step coprime with each list length, so that positions off, off+s, off+2s, ... are distinct."""
    length = np.asarray(length, dtype=np.int64)
    out = np.ones_like(length)
    for p in (23, 19, 17, 13, 11, 7, 5):
        ok = (length > p) & (length % p != 0)
        out = np.where(ok, p, out)
    return out


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index repeated ``counts`` times and the position 0..count-1 within the row."""
    counts = np.asarray(counts, dtype=np.int64)
    rows = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    j = np.arange(len(rows)) - starts[rows]
    return rows, j


class _Lines:
    def __init__(self):
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, claim, item, qty, day, order):
        n = len(claim)
        if n == 0:
            return
        self.parts.append((np.asarray(claim, np.int64), np.broadcast_to(np.asarray(item, np.int64), (n,)),
                           np.broadcast_to(np.asarray(qty, np.int64), (n,)), np.broadcast_to(np.asarray(day, np.int64), (n,)),
                           np.full(n, order, np.int64)))

    def arrays(self):
        return [np.concatenate([p[k] for p in self.parts]) for k in range(5)]


@dataclass
class ItemChunk:
    claim: np.ndarray  # local claim index
    line_no: np.ndarray
    item: np.ndarray
    qty: np.ndarray
    price: np.ndarray  # cents
    amount: np.ndarray  # cents
    day: np.ndarray  # offset from admit
    total: np.ndarray  # per claim, cents
    eligible: np.ndarray  # per claim, cents
    swapped: np.ndarray  # per claim: a line was billed under another code (drug swapping)
    overcharged: np.ndarray  # per claim: a line priced above the catalogue or billed twice


def generate_items(cf: ClaimFrame, ctx: ItemContext, rng: np.random.Generator) -> ItemChunk:
    cat, world = ctx.cat, ctx.world
    n = cf.n
    care, d, idiag, los = cf.care, cf.diag, cf.item_diag, cf.los.astype(np.int64)
    flags = cf.flags
    sev = cf.severity.astype(float)
    stay = care == INPATIENT
    visit = (care == OUTPATIENT) | (care == CHRONIC)
    phantom_only = (flags & F_PHANTOM_ONLY) > 0
    idg = np.maximum(idiag, 0)
    L = _Lines()
    c = ctx.codes

    # 1. consultation fee (and the diagnosis' usual outpatient treatment)
    fee = np.flatnonzero(visit)
    L.add(fee, np.where(care[fee] == CHRONIC, c["TRT0002"], c["TRT0001"]), 1, 0, 0)
    trt = visit & ~phantom_only & (cat.out_treatment[idg] >= 0) & (idiag >= 0) & ((rng.random(n) < 0.5) | (care == CHRONIC))
    t = np.flatnonzero(trt)
    L.add(t, cat.out_treatment[idg[t]], 1, 0, 1)

    # 2. exams: distinct items of the group's list (random offset, consecutive positions)
    m = cat.n_exams[idg] * (idiag >= 0)
    n_ex = np.where(care == OUTPATIENT, rng.binomial(m, 0.3), np.where(care == CHRONIC, rng.binomial(m, 0.12),
                    np.where(stay, np.maximum(rng.binomial(m, 0.8), np.minimum(m, 1)), 0)))
    n_ex = np.where((flags & F_FULL_PANEL) > 0, m, n_ex)
    n_ex[phantom_only] = 0
    rows, j = _expand(n_ex)
    off = rng.integers(0, 1 << 30, n)
    L.add(rows, cat.exams[idg[rows], (off[rows] + j) % np.maximum(m[rows], 1)], 1, 0, 2)
    # repeat tests during a stay, on distinct days
    # higher tiers test more and treat more intensively (tertiary stays cost several times primary ones)
    tier = world.prov_tier[cf.provider].astype(np.int64)
    intensity = np.array([1.0, 1.0, 2.0, 3.5])[tier] * sev
    n_rep = np.where(stay & (los > 1), np.minimum(rng.poisson(los * intensity / 3.0), np.minimum(los - 1, m)), 0)
    rows, j = _expand(n_rep)
    off2 = rng.integers(0, 1 << 30, n)
    L.add(rows, cat.exams[idg[rows], (off2[rows] + j) % np.maximum(m[rows], 1)], 1,
          1 + (off[rows] + j) % np.maximum(los[rows] - 1, 1), 2)

    # 3. drugs of visits and pharmacy sales (or the one drug a claim is about: reselling, rings)
    drug_row = np.where((care == PHARMACY_CARE) & (cf.doctor < 0), len(cat.icd), idg)
    drug_row = np.where((idiag < 0) | (ctx.n_drug_rows[drug_row] == 0), len(cat.icd), drug_row)
    md = ctx.n_drug_rows[drug_row]
    nd = np.where(care == OUTPATIENT, 1 + rng.binomial(2, 0.45, n), np.where(care == CHRONIC, 1 + rng.binomial(2, 0.4, n),
                  np.where(care == PHARMACY_CARE, 1 + rng.binomial(2, 0.35, n), 0)))
    nd = np.minimum(nd, md)
    nd[(cf.drug >= 0) | phantom_only] = 0
    rows, j = _expand(nd)
    drug = ctx.drug_rows[drug_row[rows], (off[rows] + _stride(ctx.n_drug_rows)[drug_row[rows]] * j) % md[rows]]
    dpp = cat.days_per_pack[drug].astype(np.int64)
    long_supply = (dpp >= 14) & (care[rows] != OUTPATIENT)
    # chronic medication for two or four weeks (rarely eight), acute medication by severity
    weeks = np.array([2, 4, 4, 8])[rng.integers(0, 4, len(rows))]
    weeks = np.where(weeks == 8, np.where(rng.random(len(rows)) < 0.3, 8, 4), weeks)
    q = np.where(long_supply, np.ceil(7 * weeks / np.maximum(dpp, 1)), np.ceil(sev[rows] * (1 + (rng.random(len(rows)) < 0.4))))
    q = np.where((flags[rows] & F_INFLATE) > 0, np.ceil(q * 2.5), q)
    L.add(rows, drug, np.maximum(q, 1).astype(np.int64), 0, 3)
    ov = np.flatnonzero(cf.drug >= 0)
    L.add(ov, cf.drug[ov], np.maximum(cf.drug_qty[ov], 1), 0, 3)

    # 4. stays: every day a bed, nursing, the daily treatment and the same daily drugs
    s_idx = np.flatnonzero(stay)
    rows_d, day = _expand(los[s_idx])
    rows_d = s_idx[rows_d]
    double = rng.random(n) < 0.15
    # severe cases start in intensive care for a day or three
    icu_days = np.where((cat.severity[idg] >= 2) & (rng.random(n) < 0.4), rng.integers(1, 4, n), 0)
    bed = np.where(double[rows_d], c["BED0002"], c["BED0001"])
    bed = np.where(day < icu_days[rows_d], c["BED0003"], bed)
    L.add(rows_d, bed, 1, day, 4)
    nursing = np.where(cat.severity[idg] >= 1, c["TRT0004"], c["TRT0003"])
    L.add(rows_d, nursing[rows_d], 1, day, 5)
    dt_ = cat.daily_treatment[idg[rows_d]]
    keep = dt_ >= 0
    L.add(rows_d[keep], dt_[keep], 1, day[keep], 6)
    mi = cat.n_inp_drugs[idg]
    k = np.minimum(1 + rng.binomial(3, np.array([0.3, 0.3, 0.5, 0.7])[tier]), mi)
    rr, jj = _expand(k[rows_d])
    cl = rows_d[rr]
    daily_drug = cat.inp_drugs[idg[cl], (off[cl] + _stride(cat.n_inp_drugs)[idg[cl]] * jj) % np.maximum(mi[cl], 1)]
    # infusions are billed per dose (more in higher tiers); tablets one unit a day
    doses = np.maximum(1, np.round(intensity[cl] * rng.uniform(0.5, 1.5, len(cl)))).astype(np.int64)
    L.add(cl, daily_drug, np.where(cat.days_per_pack[daily_drug] <= 1, doses, 1), day[rr], 7)
    # admission consumables, the procedure, and drugs taken home on discharge
    L.add(s_idx, c["CSM0002"], np.maximum(los[s_idx], 1), 0, 8)
    proc_day = np.minimum(1, los)
    for col in range(cat.procedure.shape[1]):
        p = cat.procedure[idg[s_idx], col]
        ok = p >= 0
        L.add(s_idx[ok], p[ok], 1, proc_day[s_idx[ok]], 9)
    home_drug = s_idx[(cat.n_out_drugs[idg[s_idx]] > 0) & (rng.random(len(s_idx)) < 0.6)]
    L.add(home_drug, cat.out_drugs[idg[home_drug], off[home_drug] % cat.n_out_drugs[idg[home_drug]]],
          1 + (rng.random(len(home_drug)) < 0.5), los[home_drug], 10)

    # 5. items outside the catalogue (self-paid)
    other_items = np.flatnonzero(cat.kind == OTHER)
    wants = np.flatnonzero(~phantom_only & (rng.random(n) < np.where(stay, 0.25, np.where(care == PHARMACY_CARE, 0.1, 0.04))))
    L.add(wants, other_items[rng.integers(0, len(other_items), len(wants))], 1, np.where(stay[wants], los[wants], 0), 11)

    # 6. planted: phantom template lines; upcoding add-ons
    ph = np.flatnonzero((flags & (F_PHANTOM | F_PHANTOM_ONLY)) > 0)
    rows, j = _expand(ctx.n_phantom[cf.provider[ph]])
    rows = ph[rows]
    L.add(rows, ctx.phantom_tpl[cf.provider[rows], j], 1, np.minimum(los[rows], 1), 12)
    up = np.flatnonzero((flags & F_UPCODE_ADDON) > 0)
    dgu = np.maximum(d[up], 0)
    n_add = np.minimum(1 + (rng.random(len(up)) < 0.5), cat.n_exams[dgu])
    rows, j = _expand(n_add)
    rows_c = up[rows]
    L.add(rows_c, cat.exams[dgu[rows], (cat.n_exams[dgu[rows]] - 1 - j)], 1, np.minimum(los[rows_c], 1), 13)

    claim, item, qty, day, order = L.arrays()

    # bed hanging: on hung days only the bed (sometimes nursing) is billed
    hung_claim = cf.hung > 0
    if hung_claim.any():
        h = np.flatnonzero(hung_claim[claim])
        c_h = claim[h]
        lo = cf.hung_from[c_h]
        keep_nursing = ((flags[c_h] & F_HUNG_NURSING) > 0) & (order[h] == 5)
        drop = (day[h] >= lo) & (day[h] < lo + cf.hung[c_h]) & (cat.kind[item[h]] != BED) & ~keep_nursing
        if drop.any():
            keep = np.ones(len(claim), bool)
            keep[h[drop]] = False
            claim, item, qty, day, order = claim[keep], item[keep], qty[keep], day[keep], order[keep]

    # drug swapping: the expensive catalogue code of the same class; self-paid goods billed as drugs
    swapped = np.zeros(n, bool)
    overcharged = np.zeros(n, bool)
    sw_claim = (flags & F_SWAP) > 0
    if sw_claim.any():
        w_ = np.flatnonzero(sw_claim[claim])
        kind = cat.kind[item[w_]]
        hit = rng.random(len(w_)) < ctx.swap_p[cf.provider[claim[w_]]]
        before = item[w_]
        after = np.where(hit & (kind == DRUG), cat.swap_to[before], before)
        disguised = hit & (kind == OTHER)
        if disguised.any():
            top = np.unique(cat.swap_to[cat.kind == DRUG])
            after = np.where(disguised, top[(claim[w_] * 7 + day[w_]) % len(top)], after)
        item[w_] = after
        swapped[claim[w_][after != before]] = True

    # prices: by period and provider level; retail pharmacies at or below the catalogue price
    n_items = ctx.price.shape[2]
    prov = cf.provider[claim]
    level = world.prov_level[prov].astype(np.int64)
    flat = level * n_items + item
    if ctx.drift_day is not None:
        flat += (cf.admit[claim] + day >= ctx.drift_day) * (5 * n_items)
    catalogue_price = ctx.price.reshape(-1)[flat]
    price = catalogue_price
    retail = np.flatnonzero((level == 4) & (cat.kind[item] == DRUG))
    if len(retail):
        price = price.copy()
        price[retail] = np.round(price[retail] * world.pharm_factor[prov[retail]]).astype(np.int64)

    # over-charging: service lines above the catalogue price, and lines billed twice the same day
    oc_claim = (flags & F_OVERCHARGE) > 0
    if oc_claim.any():
        o = np.flatnonzero(oc_claim[claim])
        o = o[np.isin(cat.kind[item[o]], (EXAM, TREATMENT, BED, CONSUMABLE))]
        p_o = prov[o]
        up_ = rng.random(len(o)) < ctx.oc_price[p_o]
        dup = rng.random(len(o)) < ctx.oc_dup[p_o]
        # every over-charged claim with a service line shows its provider's way at least once
        done = np.zeros(n, bool)
        done[claim[o[up_ | dup]]] = True
        _, first = np.unique(claim[o], return_index=True)
        first = first[~done[claim[o[first]]]]
        prefers_price = ctx.oc_price[p_o[first]] > 0
        up_[first[prefers_price]] = True
        dup[first[~prefers_price]] = True
        if price is catalogue_price:
            price = price.copy()
        price[o[up_]] = np.round(price[o[up_]] * ctx.oc_factor[p_o[up_]]).astype(np.int64)
        priced_up = o[up_][price[o[up_]] > catalogue_price[o[up_]]]
        dd = o[dup]
        overcharged[claim[priced_up]] = True
        overcharged[claim[dd]] = True
        # a package billed together with its parts (same day, each part at its own price)
        pk = o[np.isin(item[o], ctx.panel_items)]
        pk = pk[rng.random(len(pk)) < np.maximum(ctx.oc_dup[prov[pk]], ctx.oc_price[prov[pk]]) * 2]
        parts = ctx.panel_parts[np.searchsorted(ctx.panel_items, item[pk])]  # (k, 3), -1 padded
        rows, col = np.nonzero(parts >= 0)
        src = pk[rows]
        part_item = parts[rows, col]
        part_price = ctx.price.reshape(-1)[flat[src] - item[src] + part_item]
        overcharged[claim[src]] = True
        claim = np.concatenate([claim, claim[dd], claim[src]])
        item = np.concatenate([item, item[dd], part_item])
        qty = np.concatenate([qty, qty[dd], np.ones(len(src), np.int64)])
        day = np.concatenate([day, day[dd], day[src]])
        order = np.concatenate([order, order[dd], order[src]])
        price = np.concatenate([price, price[dd], part_price])

    # order lines: by claim, day, component; number them 1.. within a claim
    # two stable radix sorts on 16-bit keys (claims per block ≤ 65,536; day * 32 + component < 65,536)
    if n <= 1 << 16 and (len(day) == 0 or day.max() < 2000):
        by_day = np.argsort((day * 32 + order).astype(np.uint16), kind="stable")
        srt = by_day[np.argsort(claim[by_day].astype(np.uint16), kind="stable")]
    else:
        srt = np.argsort(claim * (1 << 24) + day * 32 + order, kind="stable")
    claim, item, qty, day, price = claim[srt], item[srt], qty[srt], day[srt], price[srt]
    counts = np.bincount(claim, minlength=n)
    starts = np.cumsum(counts) - counts
    line_no = np.arange(len(claim)) - starts[claim] + 1
    amount = qty * price
    share = cat.eligible_share[item]
    eligible_line = np.floor(amount * share + 1e-9).astype(np.int64)
    total = np.bincount(claim, weights=amount, minlength=n).round().astype(np.int64)
    eligible = np.bincount(claim, weights=eligible_line, minlength=n).round().astype(np.int64)
    return ItemChunk(claim=claim, line_no=line_no, item=item, qty=qty, price=price, amount=amount, day=day,
                     total=total, eligible=eligible, swapped=swapped, overcharged=overcharged)
