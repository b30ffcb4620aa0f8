"""How fraudkit does on a batch whose fraud was planted by someone else's code.

An outside check scores batches written to the contract (``shared/CONTRACT.md``) by other
programs, with the schemes of ``shared/DOMAIN.md`` planted in other styles and proportions
than fraudkit's generator (``fraudkit/synthetic/_fraud.py``) uses. This script imitates one:

1. It generates a CLEAN batch with fraudkit's generator, every scheme switched off
   (``providers: 0``, ``patients_per_million: 0``, ``rings: 0``; the script checks that the
   labels come back empty), so the only fraud in the batch is the fraud planted here.
2. It plants ten schemes with its own code, written only against the four contract tables
   (pandas / NumPy; no generator internals such as the catalogue, drug classes or upcoding
   map: what it needs - ceiling prices, the items of a diagnosis, a richer diagnosis - it
   reads off the clean batch as an outside author would). Styles and proportions differ
   on purpose: few actors (about 20 providers), light touch (10-30 % of an actor's claims),
   small magnitudes, and evasive variants (see each ``plant_*`` docstring). Every contract
   invariant is kept (total = sum of items, service dates inside the stay, fund ≤ eligible ≤
   total, ids that exist, ...); the batch is written with ``labels/`` and read back through
   :func:`fraudkit.io.load_batch`, the validator of ``fraudkit validate``.
3. It scores the batch with the shipped default model (``models/default``, no refit) and
   with a model fitted on the foreign batch itself (unsupervised), and prints a markdown
   table: provider precision@k (k = planted fraudulent providers), share of the planted
   fraudulent money (fund_paid) in the top 5 % of providers, and per scheme the provider
   recall in the top k and the claim recall in the top 5 % of claims.

    python benchmarks/foreign.py                       # 300k claims, seed 1
    python benchmarks/foreign.py --claims 250000 --seed 2 --out /tmp/foreign-batch

Everything random comes from ``--seed`` (the clean batch's generator seed and the planting).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fraudkit.api import resolve_model
from fraudkit.evaluate import evaluate
from fraudkit.io import Batch, Labels, load_batch, load_labels, write_batch
from fraudkit.pipeline import FraudModel, ModelConfig
from fraudkit.synthetic import Scenario, generate_to

#: Every scheme of fraudkit's generator switched off: the clean background.
NO_FRAUD = {"name": "clean", "description": "fraudkit's normal care, no planted fraud", "fraud": {"schemes": {
    "phantom_services": {"providers": 0}, "fake_admission": {"providers": 0}, "bed_hanging": {"providers": 0},
    "decomposed_stay": {"providers": 0}, "upcoding": {"providers": 0}, "drug_swapping": {"providers": 0},
    "over_charging": {"providers": 0}, "card_lending": {"patients_per_million": 0},
    "drug_reselling": {"providers": 0, "patients_per_million": 0}, "collusion_ring": {"rings": 0},
}}}

SCHEME_ORDER = ("phantom_services", "upcoding", "drug_swapping", "over_charging", "decomposed_stay",
                "fake_admission", "bed_hanging", "card_lending", "drug_reselling", "collusion_ring")
DAY = np.timedelta64(1, "D")


def dx3_of(diagnosis) -> str:
    """The ICD-10 category (3 characters) of a diagnosis, "" when there is none."""
    return "" if pd.isna(diagnosis) else str(diagnosis)[:3]


def clean_batch(claims: int, seed: int, folder: Path) -> Batch:
    """A batch of fraudkit's normal care with no planted fraud (checked against its labels)."""
    generate_to(Scenario.from_dict(NO_FRAUD), folder, n_claims=claims, seed=seed)
    labels = load_labels(folder)
    assert not labels.fraudulent("claims").any() and not labels.fraudulent("providers").any(), "fraud left on"
    return load_batch(folder)


# --------------------------------------------------------------------------- editing the contract tables
class Planter:
    """The four tables of a batch being edited, the labels planted so far, and shared helpers.

    Changed claims are re-totalled at :meth:`finish`: ``total_amount`` = sum of the items,
    ``eligible_amount`` and ``fund_paid`` keep the claim's own eligible / total and fund /
    eligible ratios (new claims take them from the claim they were modelled on).
    """

    def __init__(self, batch: Batch, seed: int):
        self.rng = np.random.default_rng([seed, 20240601])
        self.patients, self.providers = batch.patients.copy(), batch.providers.copy()
        c = batch.claims.copy()
        for col in ("care_type",):
            c[col] = c[col].astype(str)
        total, elig = c["total_amount"].to_numpy(), c["eligible_amount"].to_numpy()
        c["_er"] = np.where(total > 0, elig / np.where(total > 0, total, 1), 1.0)
        c["_fr"] = np.where(elig > 0, c["fund_paid"].to_numpy() / np.where(elig > 0, elig, 1), 0.6)
        self.claims = c.reset_index(drop=True)
        it = batch.items.copy()
        it["item_kind"] = it["item_kind"].astype(str)
        self.items = it.reset_index(drop=True)
        self.new_claims: list[pd.DataFrame] = []
        self.new_items: list[pd.DataFrame] = []
        self.changed: list[str] = []
        self.claim_labels: dict[str, set] = {}
        self.provider_labels: dict[str, set] = {}
        self.patient_labels: dict[str, set] = {}
        self.taken: set = set()
        self.counter = 0
        self.period_end = c["discharge_date"].max()
        self.scale = len(c) / 250_000
        # lookups an outside author would compute from the batch itself
        self.claim_row = pd.Series(np.arange(len(c)), index=c["claim_id"].to_numpy())
        self.item_rows = self.items.groupby("claim_id", sort=False).indices
        self.ceiling = self.items.groupby("item_code")["unit_price"].max()
        self.median_price = self.items.groupby("item_code")["unit_price"].median()
        self.kind_of = self.items.drop_duplicates("item_code").set_index("item_code")["item_kind"]
        lines = self.items.merge(c[["claim_id", "diagnosis", "care_type", "provider_id"]], on="claim_id")
        lines["dx3"] = lines["diagnosis"].fillna("").str[:3]
        self.lines = lines
        # the local catalogue price: a service's highest price at providers of the same region and tier
        where = self.providers.set_index("provider_id")[["region", "tier"]]
        local = lines[["item_code", "unit_price"]].assign(region=where["region"].reindex(lines["provider_id"]).to_numpy(),
                                                          tier=where["tier"].reindex(lines["provider_id"]).to_numpy())
        self.local_ceiling = local.groupby(["item_code", "region", "tier"])["unit_price"].max()
        self.where = where
        self.volume = c["provider_id"].value_counts()

    # ---------------------------------------------------------------- small helpers

    def lines_of(self, claim_id) -> pd.DataFrame:
        """The claim's item lines as they stand (an empty frame for a claim without lines)."""
        return self.items.iloc[self.item_rows.get(claim_id, [])]
    def n(self, base: float) -> int:
        """A count of actors scaled gently with batch size (``base`` at 250k claims)."""
        return max(1, int(round(base * self.scale ** 0.8)))

    def new_id(self, prefix: str = "XC") -> str:
        self.counter += 1
        return f"{prefix}{self.counter:08d}"

    def pick_providers(self, mask: np.ndarray, k: int, min_claims: int = 50) -> list[str]:
        """``k`` providers of ``mask`` not yet used by another scheme, chosen with probability ∝ √volume."""
        prov = self.providers[mask]
        ids = [p for p in prov["provider_id"].tolist() if p not in self.taken and self.volume.get(p, 0) >= min_claims]
        if not ids:
            return []
        w = np.sqrt(np.array([self.volume.get(p, 0) for p in ids], float))
        chosen = self.rng.choice(ids, size=min(k, len(ids)), replace=False, p=w / w.sum()).tolist()
        self.taken.update(chosen)
        return chosen

    def ptype(self, *types: str) -> np.ndarray:
        return self.providers["provider_type"].astype(str).isin(types).to_numpy()

    def claims_of(self, provider: str, care: tuple[str, ...] | None = None) -> pd.DataFrame:
        c = self.claims[self.claims["provider_id"] == provider]
        return c if care is None else c[c["care_type"].isin(care)]

    def sample(self, frame: pd.DataFrame, share: float) -> pd.DataFrame:
        k = int(round(share * len(frame)))
        return frame.iloc[np.sort(self.rng.choice(len(frame), size=min(max(k, 1), len(frame)), replace=False))] if len(frame) else frame

    def label(self, scheme: str, claims=(), providers=(), patients=()) -> None:
        for store, ids in ((self.claim_labels, claims), (self.provider_labels, providers), (self.patient_labels, patients)):
            for i in ids:
                store.setdefault(str(i), set()).add(scheme)

    def add_lines(self, claim_id: str, rows: list[dict]) -> None:
        """Append item lines (item_code, item_kind, quantity, unit_price, service_date) to a claim."""
        if not rows:
            return
        df = pd.DataFrame(rows)
        df["claim_id"] = claim_id
        df["amount"] = (df["quantity"] * df["unit_price"]).round(2)
        df["line_no"] = 0  # renumbered at finish
        self.new_items.append(df)
        self.changed.append(claim_id)

    def add_claim(self, like: pd.Series, items: pd.DataFrame, **fields) -> str:
        """A new claim modelled on claim ``like`` (its money ratios), with ``fields`` overriding and ``items`` as lines."""
        row = like.copy()
        for k, v in fields.items():
            row[k] = v
        row["claim_id"] = cid = self.new_id()
        self.new_claims.append(row.to_frame().T)
        items = items.copy()
        items["claim_id"] = cid
        items["amount"] = (items["quantity"] * items["unit_price"]).round(2)
        items["line_no"] = 0
        self.new_items.append(items)
        self.changed.append(cid)
        return cid

    def codes_for(self, dx3: str, kinds: tuple[str, ...], care: tuple[str, ...]) -> pd.Series:
        """Item codes billed with diagnosis category ``dx3`` (in ``care``), with their line counts."""
        ln = self.lines
        sel = ln[(ln["dx3"] == dx3) & ln["item_kind"].isin(kinds) & ln["care_type"].isin(care)]
        return sel["item_code"].value_counts()

    def draw_code(self, counts: pd.Series) -> str:
        p = counts.to_numpy(float)
        return str(counts.index[self.rng.choice(len(counts), p=p / p.sum())])

    # ---------------------------------------------------------------- finish
    def finish(self) -> tuple[Batch, Labels]:
        claims = pd.concat([self.claims, *self.new_claims], ignore_index=True)
        items = pd.concat([self.items, *self.new_items], ignore_index=True)
        pos = pd.Series(np.arange(len(claims)), index=claims["claim_id"].to_numpy())
        items["service_date"] = pd.to_datetime(items["service_date"])
        items["_c"] = pos.reindex(items["claim_id"].to_numpy()).to_numpy()
        items = items.sort_values(["_c", "service_date", "line_no"], kind="stable").reset_index(drop=True)
        items["line_no"] = items.groupby("_c").cumcount() + 1
        # re-total changed claims in whole cents
        changed = np.unique(np.array(self.changed, dtype=object)) if self.changed else np.array([], dtype=object)
        cents = np.round(items["amount"].to_numpy(float) * 100)
        total_c = np.bincount(items["_c"].to_numpy(), weights=cents, minlength=len(claims))
        rows = pos.reindex(changed).to_numpy()
        tot = total_c[rows]
        er = claims["_er"].to_numpy(float)[rows]
        fr = claims["_fr"].to_numpy(float)[rows]
        elig = np.minimum(np.round(tot * er), tot)
        fund = np.minimum(np.round(elig * fr), elig)
        for col, values in (("total_amount", tot), ("eligible_amount", elig), ("fund_paid", fund), ("self_paid", tot - fund)):
            claims[col] = claims[col].astype(float)
            claims.loc[rows, col] = values / 100
        claims = claims.drop(columns=["_er", "_fr"])
        items = items.drop(columns=["_c"])
        for col in ("admit_date", "discharge_date"):
            claims[col] = pd.to_datetime(claims[col]).astype("datetime64[s]")
        items["service_date"] = pd.to_datetime(items["service_date"]).astype("datetime64[s]")
        batch = Batch(self.patients, self.providers, claims, items[["claim_id", "line_no", "item_code", "item_kind",
                                                                   "quantity", "unit_price", "amount", "service_date"]])

        def frame(ids: pd.Series, store: dict, key: str) -> pd.DataFrame:
            return pd.DataFrame({key: ids.to_numpy(), "fraud_type": [";".join(sorted(store.get(str(i), ()))) for i in ids]})

        labels = Labels(claims=frame(claims["claim_id"], self.claim_labels, "claim_id"),
                        providers=frame(self.providers["provider_id"], self.provider_labels, "provider_id"),
                        patients=frame(self.patients["patient_id"], self.patient_labels, "patient_id"))
        return batch, labels


# --------------------------------------------------------------------------- the schemes
def plant_phantom_services(p: Planter) -> None:
    """Phantom services: 1-2 extra exam or treatment lines never delivered, on 10-30 % of the visits
    and stays of one clinic and one hospital.

    Unlike fraudkit's generator (a fixed template of 2-4 exam codes copied identically onto
    5-25 % of claims, plus fictitious visits keyed in in batches), each phantom line is drawn
    from the codes normally billed for the claim's own diagnosis, at the usual price: no
    repeated exam set, no atypical item, only a modest cost rise.
    """
    actors = p.pick_providers(p.ptype("clinic"), 1) + p.pick_providers(p.ptype("hospital") & (p.providers["tier"] <= 2).to_numpy(), 1)
    cache: dict[tuple, pd.Series] = {}
    for prov in actors:
        touched = p.sample(p.claims_of(prov, ("outpatient", "chronic", "inpatient")), p.rng.uniform(0.1, 0.3))
        done = []
        for _, claim in touched.iterrows():
            dx3, care = dx3_of(claim["diagnosis"]), claim["care_type"]
            key = (dx3, care)
            if key not in cache:
                cache[key] = p.codes_for(dx3, ("exam", "treatment"), (care,))
            # a service not already on the claim (else it reads as a double charge)
            codes = cache[key]
            codes = codes[~codes.index.isin(p.lines_of(claim["claim_id"])["item_code"])]
            if len(codes) == 0:
                continue
            span = int((claim["discharge_date"] - claim["admit_date"]) / DAY)
            rows = []
            for _ in range(int(p.rng.integers(1, 3))):
                code = p.draw_code(codes)
                day = claim["admit_date"] + int(p.rng.integers(0, max(span, 1))) * DAY
                rows.append({"item_code": code, "item_kind": p.kind_of[code], "quantity": 1.0,
                             "unit_price": float(p.median_price[code]), "service_date": day})
            p.add_lines(claim["claim_id"], rows)
            done.append(claim["claim_id"])
        p.label("phantom_services", claims=done, providers=[prov])


def plant_upcoding(p: Planter) -> None:
    """Upcoding: on 10-30 % of the stays of two hospitals (any tier), the diagnosis is replaced by a
    richer one of the same ICD-10 chapter; the items stay those of the mild case.

    The richer diagnosis is read off the batch (same first letter, median stay cost 1.4-4× the
    original's), not the generator's fixed map (J20.9 -> J18.9, I10 -> I11.9, ...), and no
    exam of the richer group is ever added.
    """
    stays = p.claims[p.claims["care_type"] == "inpatient"]
    med = stays.groupby("diagnosis")["total_amount"].agg(["median", "size"])
    med = med[med["size"] >= 20]
    richer = {}
    for dx, row in med.iterrows():
        cand = med[(med.index.str[0] == dx[0]) & (med.index.str[:3] != dx[:3])
                   & (med["median"] >= 1.4 * row["median"]) & (med["median"] <= 4 * row["median"])]
        if len(cand):
            richer[dx] = str(cand["size"].idxmax())
    actors = p.pick_providers(p.ptype("hospital"), 2)
    for prov in actors:
        own = p.claims_of(prov, ("inpatient",))
        own = own[own["diagnosis"].isin(list(richer))]
        touched = p.sample(own, p.rng.uniform(0.1, 0.3))
        p.claims.loc[touched.index, "diagnosis"] = touched["diagnosis"].map(richer).to_numpy()
        p.label("upcoding", claims=touched["claim_id"], providers=[prov])


def plant_drug_swapping(p: Planter) -> None:
    """Drug swapping: on 10-30 % of the drug-bearing claims of two pharmacies and one clinic, the
    cheapest drug line is re-billed under a drug code 3-10× dearer (one billed for the same
    diagnosis, or sold at pharmacies for undiagnosed sales), at that code's ceiling price.

    fraudkit's generator swaps a share (30-100 %) of a claim's drug lines to the most expensive
    code of the same drug class; here one line per claim, any class, so a swapped claim is only
    moderately dearer and the code is not always the class maximum.
    """
    actors = p.pick_providers(p.ptype("pharmacy"), 2) + p.pick_providers(p.ptype("clinic"), 1)
    drugs = p.lines[p.lines["item_kind"] == "drug"]
    cache: dict[str, pd.Series] = {}
    for prov in actors:
        own = p.claims_of(prov)
        touched = p.sample(own[own["claim_id"].isin(drugs.loc[drugs["provider_id"] == prov, "claim_id"])], p.rng.uniform(0.1, 0.3))
        done = []
        for _, claim in touched.iterrows():
            sub = p.lines_of(claim["claim_id"])
            sub = sub[sub["item_kind"] == "drug"]
            if not len(sub):
                continue
            r = int(sub.index[np.argmin(sub["unit_price"].to_numpy())])
            price = float(p.items.at[r, "unit_price"])
            dx3 = dx3_of(claim["diagnosis"])
            if dx3 not in cache:
                cache[dx3] = drugs[drugs["dx3"] == dx3]["item_code"].value_counts()
            codes = cache[dx3]
            dear = codes[(p.ceiling.reindex(codes.index) >= 3 * price).to_numpy() & (p.ceiling.reindex(codes.index) <= 10 * price).to_numpy()]
            if not len(dear):
                continue
            code = p.draw_code(dear)
            p.items.at[r, "item_code"] = code
            p.items.at[r, "unit_price"] = float(p.ceiling[code])
            p.items.at[r, "amount"] = round(float(p.items.at[r, "quantity"]) * float(p.ceiling[code]), 2)
            p.changed.append(claim["claim_id"])
            done.append(claim["claim_id"])
        p.label("drug_swapping", claims=done, providers=[prov])


def plant_over_charging(p: Planter) -> None:
    """Over-charging: on 10-30 % of the claims of one hospital and one clinic, either one service
    line is billed twice on its day (a copy of the line) or 1-2 lines are priced 5-25 % above the
    local catalogue price (the code's highest price at providers of the same region and tier).

    fraudkit's generator marks up by 10-60 % and duplicates 5-25 % of a claim's service lines;
    here a single duplicate or a small mark-up per claim.
    """
    actors = p.pick_providers(p.ptype("hospital"), 1) + p.pick_providers(p.ptype("clinic"), 1)
    for prov in actors:
        region, tier = p.where.at[prov, "region"], p.where.at[prov, "tier"]
        touched = p.sample(p.claims_of(prov, ("outpatient", "chronic", "inpatient")), p.rng.uniform(0.1, 0.3))
        done = []
        for _, claim in touched.iterrows():
            sub = p.lines_of(claim["claim_id"])
            if not len(sub):
                continue
            service = sub[sub["item_kind"].isin(["exam", "treatment"])]
            if not len(service):
                continue
            if p.rng.random() < 0.5:
                line = service.iloc[int(p.rng.integers(0, len(service)))]
                p.add_lines(claim["claim_id"], [{k: line[k] for k in ("item_code", "item_kind", "quantity", "unit_price", "service_date")}])
            else:
                for r in p.rng.choice(service.index.to_numpy(), size=min(len(service), int(p.rng.integers(1, 3))), replace=False):
                    code = p.items.at[r, "item_code"]
                    price = round(float(p.local_ceiling.get((code, region, tier), p.ceiling[code])) * p.rng.uniform(1.05, 1.25), 2)
                    p.items.at[r, "unit_price"] = price
                    p.items.at[r, "amount"] = round(float(p.items.at[r, "quantity"]) * price, 2)
                p.changed.append(claim["claim_id"])
            done.append(claim["claim_id"])
        p.label("over_charging", claims=done, providers=[prov])


def plant_decomposed_stay(p: Planter) -> None:
    """Decomposed stays: 15-30 % of the stays of ≥ 6 days at two hospitals are billed as two
    stays, the second starting 1-14 days after the first ends (the items after the cut move to
    it, shifted by the gap, and its first day repeats the admission exams); in 30 % of cases
    the second stay carries another diagnosis of the same ICD-10 chapter.

    fraudkit's generator readmits on the same day half the time, always with the same diagnosis,
    and sometimes splits in three; a same-day readmission and an identical diagnosis are the
    easy cases, so they are avoided here.
    """
    actors = p.pick_providers(p.ptype("hospital"), 2)
    stays = p.claims[p.claims["care_type"] == "inpatient"]
    dx_by_letter = stays.groupby(stays["diagnosis"].str[0])["diagnosis"].agg(lambda s: s.value_counts().index[:8].tolist())
    moved = []  # item rows that left their stay for the second bill, dropped after the loop (positions stay valid)
    for prov in actors:
        own = p.claims_of(prov, ("inpatient",))
        los = (own["discharge_date"] - own["admit_date"]) / DAY
        own = own[(los >= 6) & (own["discharge_date"] + 3 * DAY <= p.period_end)]
        touched = p.sample(own, p.rng.uniform(0.15, 0.3))
        done = []
        for i, claim in touched.iterrows():
            sub = p.lines_of(claim["claim_id"])
            if not len(sub):
                continue
            los = int((claim["discharge_date"] - claim["admit_date"]) / DAY)
            cut = int(p.rng.integers(2, los - 2))
            room = int((p.period_end - claim["discharge_date"]) / DAY)
            gap = int(p.rng.integers(1, min(14, room) + 1))
            split = claim["admit_date"] + cut * DAY
            later = sub[sub["service_date"] >= split]
            admission_exams = sub[(sub["service_date"] == claim["admit_date"]) & (sub["item_kind"] == "exam")]
            second_items = later.drop(columns=["claim_id", "line_no", "amount"]).copy()
            second_items["service_date"] = second_items["service_date"] + gap * DAY
            repeat = admission_exams.drop(columns=["claim_id", "line_no", "amount"]).copy()
            repeat["service_date"] = split + gap * DAY
            moved.append(later.index.to_numpy())
            p.claims.at[i, "discharge_date"] = split
            p.changed.append(claim["claim_id"])
            dx = claim["diagnosis"]
            if p.rng.random() < 0.3:
                others = [d for d in dx_by_letter.get(str(dx)[0], []) if d[:3] != str(dx)[:3]]
                dx = others[int(p.rng.integers(0, len(others)))] if others else dx
            new = p.add_claim(claim, pd.concat([repeat, second_items], ignore_index=True),
                              admit_date=split + gap * DAY, discharge_date=claim["discharge_date"] + gap * DAY, diagnosis=dx)
            done += [claim["claim_id"], new]
        p.label("decomposed_stay", claims=done, providers=[prov])
    if moved:
        p.items = p.items.drop(index=np.concatenate(moved)).reset_index(drop=True)
        p.item_rows = p.items.groupby("claim_id", sort=False).indices


def plant_fake_admission(p: Planter) -> None:
    """Fake admissions: two level-1/2 hospitals admit healthy members (ages 20-65, at most two
    claims of their own in the period, from the hospital's region) for a mild diagnosis; the
    stays add 15-30 % to the hospital's admissions, each billed with a bed line a day, one
    cheap exam on the first day and a drug line every other day.

    fraudkit's generator admits recruits in groups of 5-20 on the same days (often elderly,
    bussed in from another region), keeps them 1.3-2.3× the typical stay and bills a full
    exam panel. Here admissions are one by one on scattered days, stays are of typical length
    (+0-2 days), and the bill is thin rather than rich.
    """
    actors = p.pick_providers(p.ptype("hospital") & (p.providers["tier"].between(1, 2)).to_numpy(), 2)
    stays = p.claims[p.claims["care_type"] == "inpatient"]
    stat = stays.assign(los=(stays["discharge_date"] - stays["admit_date"]) / DAY).groupby("diagnosis").agg(
        cost=("total_amount", "median"), los=("los", "median"), n=("claim_id", "size"))
    mild = stat[stat["n"] >= 30].sort_values("cost").index[:5].tolist()
    uses = p.claims["patient_id"].value_counts()
    year = p.claims["admit_date"].min().year
    start = p.claims["admit_date"].min()
    days = int((p.period_end - start) / DAY)
    pats = p.patients.assign(age=year - p.patients["birth_year"], uses=uses.reindex(p.patients["patient_id"]).fillna(0).to_numpy())
    for prov in actors:
        region = p.providers.loc[p.providers["provider_id"] == prov, "region"].iloc[0]
        own = p.claims_of(prov, ("inpatient",))
        if not len(own):
            continue
        pool = pats[(pats["region"] == region) & pats["age"].between(20, 65) & (pats["uses"] <= 2)]
        n_new = max(8, int(round(len(own) * p.rng.uniform(0.15, 0.3))))
        chosen = pool["patient_id"].to_numpy()[p.rng.choice(len(pool), size=min(n_new, len(pool)), replace=False)]
        bed = own["claim_id"].head(50)
        bed_lines = p.items[p.items["claim_id"].isin(bed) & (p.items["item_kind"] == "bed")]
        bed_code = bed_lines["item_code"].mode().iloc[0] if len(bed_lines) else "BED0001"
        bed_price = float(bed_lines.loc[bed_lines["item_code"] == bed_code, "unit_price"].median()) if len(bed_lines) else float(p.median_price[bed_code])
        done = []
        for patient in chosen:
            dx = mild[int(p.rng.integers(0, len(mild)))]
            los = int(max(2, stat.at[dx, "los"] + p.rng.integers(0, 3)))
            admit = start + int(p.rng.integers(0, max(days - los, 1))) * DAY
            exams = p.codes_for(dx[:3], ("exam",), ("inpatient",))
            drugs = p.codes_for(dx[:3], ("drug",), ("inpatient",))
            exam = exams.index[np.argmin(p.median_price.reindex(exams.index).to_numpy())] if len(exams) else None
            drug = p.draw_code(drugs) if len(drugs) else None
            rows = [{"item_code": bed_code, "item_kind": "bed", "quantity": 1.0, "unit_price": bed_price,
                     "service_date": admit + d * DAY} for d in range(los)]
            if exam is not None:
                rows.append({"item_code": exam, "item_kind": "exam", "quantity": 1.0, "unit_price": float(p.median_price[exam]),
                             "service_date": admit})
            if drug is not None:
                rows += [{"item_code": drug, "item_kind": "drug", "quantity": 1.0, "unit_price": float(p.median_price[drug]),
                          "service_date": admit + d * DAY} for d in range(0, los, 2)]
            like = own.iloc[int(p.rng.integers(0, len(own)))]
            done.append(p.add_claim(like, pd.DataFrame(rows), patient_id=patient, admit_date=admit,
                                    discharge_date=admit + los * DAY, diagnosis=dx))
        p.label("fake_admission", claims=done, providers=[prov], patients=chosen)


def plant_bed_hanging(p: Planter) -> None:
    """Bed hanging: 10-30 % of the stays of two hospitals are prolonged by 2-5 days at the end,
    billed with the stay's bed line each day; at one of the two hospitals each hung day also
    carries the stay's cheapest daily treatment line (a nursing charge), so no day is empty.

    fraudkit's generator hangs 20-60 % extra days, sometimes in the middle of the stay, and uses
    the card at a pharmacy during 35 % of hung stays; here hung days are few, at the end, the
    card is never used elsewhere, and half the time every day has a non-bed line.
    """
    actors = p.pick_providers(p.ptype("hospital"), 2)
    for j, prov in enumerate(actors):
        nursing = j == 1
        own = p.claims_of(prov, ("inpatient",))
        own = own[own["discharge_date"] + 6 * DAY <= p.period_end]
        touched = p.sample(own, p.rng.uniform(0.1, 0.3))
        done = []
        for i, claim in touched.iterrows():
            sub = p.lines_of(claim["claim_id"])
            if not len(sub):
                continue
            beds = sub[sub["item_kind"] == "bed"]
            if not len(beds):
                continue
            bed = beds.iloc[-1]
            treat = sub[sub["item_kind"] == "treatment"]
            care = treat.loc[treat["unit_price"].idxmin()] if len(treat) else None
            hung = int(p.rng.integers(2, 6))
            end = claim["discharge_date"]
            new = []
            for d in range(hung):
                day = end + d * DAY
                new.append({"item_code": bed["item_code"], "item_kind": "bed", "quantity": 1.0,
                            "unit_price": float(bed["unit_price"]), "service_date": day})
                if nursing and care is not None:
                    new.append({"item_code": care["item_code"], "item_kind": "treatment", "quantity": 1.0,
                                "unit_price": float(care["unit_price"]), "service_date": day})
            p.claims.at[i, "discharge_date"] = end + hung * DAY
            p.add_lines(claim["claim_id"], new)
            done.append(claim["claim_id"])
        p.label("bed_hanging", claims=done, providers=[prov])


def plant_card_lending(p: Planter) -> None:
    """Card lending: about 50 cards (per 250k claims) are each used 2-6 times by someone else: a
    copy of a real visit or purchase of another member (another sex or age, as it comes) at a
    provider of ANOTHER home region, half the time on a day the owner used the card at home.
    A third of the lenders also pool cards with 1-2 relatives: the same drug bought at the same
    pharmacy on the same day by every card, 2-4 times.

    fraudkit's generator sends 60 % of borrowed uses to the two distant regions and draws
    items for the borrower's own sex and age; here borrowed uses stay inside the pooling area
    (neighbouring regions) and are verbatim copies of real claims.
    """
    c = p.claims
    uses = c["patient_id"].value_counts()
    year = c["admit_date"].min().year
    home = sorted(p.patients["region"].unique())  # the pooling area: regions where members live
    adults = p.patients[(year - p.patients["birth_year"]).between(20, 75) & p.patients["region"].isin(home)]
    adults = adults[adults["patient_id"].isin(uses[uses >= 3].index)]
    lenders = adults.iloc[np.sort(p.rng.choice(len(adults), size=min(p.n(50), len(adults)), replace=False))]
    region_of = p.providers.set_index("provider_id")["region"]
    donors = c[c["care_type"].isin(["outpatient", "pharmacy"]) & ~c["claim_id"].isin(list(p.claim_labels))]
    donors = donors[region_of.reindex(donors["provider_id"]).isin(home).to_numpy()]
    donor_region = region_of.reindex(donors["provider_id"]).to_numpy()
    own_days = c.groupby("patient_id")["admit_date"].apply(list)
    pharm = donors[donors["care_type"] == "pharmacy"]
    done, actors = [], []
    for _, lender in lenders.iterrows():
        pid, reg = lender["patient_id"], lender["region"]
        elsewhere = np.flatnonzero(donor_region != reg)
        for _ in range(int(p.rng.integers(2, 7))):
            d = donors.iloc[int(elsewhere[p.rng.integers(0, len(elsewhere))])]
            day = own_days[pid][int(p.rng.integers(0, len(own_days[pid])))] if p.rng.random() < 0.5 else \
                d["admit_date"] + int(p.rng.integers(-20, 21)) * DAY
            day = min(max(day, c["admit_date"].min()), p.period_end)
            items = p.lines_of(d["claim_id"]).drop(columns=["claim_id", "line_no", "amount"])
            items["service_date"] = day
            done.append(p.add_claim(d, items, patient_id=pid, admit_date=day, discharge_date=day))
        actors.append(pid)
        if p.rng.random() < 1 / 3:
            kin = p.patients[(p.patients["region"] == reg) & (p.patients["patient_id"] != pid)]
            kin = kin["patient_id"].to_numpy()[p.rng.choice(len(kin), size=int(p.rng.integers(1, 3)), replace=False)]
            here = pharm[region_of.reindex(pharm["provider_id"]).to_numpy() == reg]
            buy = here.iloc[int(p.rng.integers(0, len(here)))]
            items = p.lines_of(buy["claim_id"]).drop(columns=["claim_id", "line_no", "amount"])
            for _ in range(int(p.rng.integers(2, 5))):
                day = c["admit_date"].min() + int(p.rng.integers(0, int((p.period_end - c["admit_date"].min()) / DAY))) * DAY
                for member in [pid, *kin]:
                    done.append(p.add_claim(buy, items.assign(service_date=day), patient_id=member, admit_date=day, discharge_date=day))
            actors += list(kin)
    p.label("card_lending", claims=done, patients=actors)


def plant_drug_reselling(p: Planter) -> None:
    """Drug reselling: about 25 members (per 250k claims) buy one dear drug (median price ≥ 50
    yuan, commonly sold at pharmacies) 1.5-3× as often as its usual repeat buyers do, spread
    over 3-6 pharmacies of their region; 40-60 % of the purchases go to two complicit pharmacies,
    which are labelled; half the purchases carry a prescribing doctor.

    fraudkit's generator supplies 2-6× the need (from the catalogue's days per pack), with 25 %
    of the supplies dispensed at hospital visits (doctor shopping); here the over-supply is
    milder, purchases are pharmacy sales only, and "need" is the batch's own usual interval.
    """
    ph = p.lines[(p.lines["care_type"] == "pharmacy") & (p.lines["item_kind"] == "drug")]
    stats = ph.groupby("item_code").agg(price=("unit_price", "median"), n=("claim_id", "size"), qty=("quantity", "median"))
    dear = stats[(stats["price"] >= 50) & (stats["n"] >= 100)].index.tolist()
    claims = p.claims.set_index("claim_id")
    ph = ph.assign(patient_id=claims.loc[ph["claim_id"], "patient_id"].to_numpy(),
                   day=claims.loc[ph["claim_id"], "admit_date"].to_numpy())
    gaps = ph.sort_values("day").groupby(["patient_id", "item_code"])["day"].diff().dt.days.dropna()
    gap = ph.loc[gaps.index].assign(g=gaps).groupby("item_code")["g"].median()
    home = sorted(p.patients["region"].unique())
    complicit = p.pick_providers(p.ptype("pharmacy") & p.providers["region"].isin(home).to_numpy(), 2)
    region_of = p.providers.set_index("provider_id")["region"]
    pharmacies = p.providers[p.ptype("pharmacy")]
    doctors = p.claims.dropna(subset=["doctor_id"]).groupby("provider_id")["doctor_id"].first()
    year = p.claims["admit_date"].min().year
    resellers = p.patients[p.patients["region"].isin(sorted(set(region_of[complicit])))
                           & (year - p.patients["birth_year"]).between(30, 80)]
    resellers = resellers["patient_id"].to_numpy()[p.rng.choice(len(resellers), size=min(p.n(25), len(resellers)), replace=False)]
    start = p.claims["admit_date"].min()
    days = int((p.period_end - start) / DAY)
    done = []
    for pid in resellers:
        code = dear[int(p.rng.integers(0, len(dear)))]
        reg = p.patients.loc[p.patients["patient_id"] == pid, "region"].iloc[0]
        local = pharmacies.loc[pharmacies["region"] == reg, "provider_id"].tolist()
        shops = list(p.rng.choice(local, size=min(len(local), int(p.rng.integers(3, 7))), replace=False))
        mine = [x for x in complicit if region_of[x] == reg] or complicit
        interval = max(3.0, float(gap.get(code, 30.0)) / p.rng.uniform(1.5, 3.0))
        t = p.rng.uniform(0, interval)
        at_complicit = p.rng.uniform(0.4, 0.6)
        like = ph[ph["item_code"] == code].iloc[0]
        template = claims.loc[like["claim_id"]].copy()
        template["claim_id"] = like["claim_id"]
        while t < days:
            day = start + int(t) * DAY
            shop = mine[int(p.rng.integers(0, len(mine)))] if p.rng.random() < at_complicit else shops[int(p.rng.integers(0, len(shops)))]
            doc = doctors.sample(1, random_state=int(p.rng.integers(0, 2**31))).iloc[0] if p.rng.random() < 0.5 else None
            qty = float(max(1.0, round(stats.at[code, "qty"] * p.rng.uniform(0.8, 1.3))))
            items = pd.DataFrame([{"item_code": code, "item_kind": "drug", "quantity": qty,
                                   "unit_price": float(stats.at[code, "price"]), "service_date": day}])
            done.append(p.add_claim(template, items, patient_id=pid, provider_id=shop, doctor_id=doc, admit_date=day,
                                    discharge_date=day, care_type="pharmacy"))
            t += interval * p.rng.uniform(0.7, 1.3)
    p.label("drug_reselling", claims=done, providers=complicit, patients=resellers)


def plant_collusion_ring(p: Planter) -> None:
    """Collusion ring: one clinic (per 250k claims), two pharmacies of its region and 15-30
    members. Each member visits the clinic about once a month (two of its doctors, a chronic
    diagnosis, the items of a real chronic visit there) and fills a prescription the same or next
    day, 70 % of the time at a ring pharmacy (the drugs of a real fill for that diagnosis, ×1.5).

    fraudkit's generator runs four rings of 20-60 members visiting 1.5-3 times a month with
    inflated visits; this ring is one, smaller, slower and billed at ordinary prices.
    """
    c = p.claims
    for _ in range(p.n(1)):
        home = p.providers["region"].isin(sorted(p.patients["region"].unique())).to_numpy()
        clinics = p.pick_providers(p.ptype("clinic") & home, 1, min_claims=200)
        if not clinics:
            return
        clinic = clinics[0]
        reg = p.providers.loc[p.providers["provider_id"] == clinic, "region"].iloc[0]
        ring_ph = p.pick_providers(p.ptype("pharmacy") & (p.providers["region"] == reg).to_numpy(), 2)
        visits = c[(c["provider_id"] == clinic) & c["care_type"].isin(["chronic", "outpatient"])]
        visits = visits[visits["claim_id"].isin(list(p.item_rows)) & ~visits["claim_id"].isin(list(p.claim_labels))]
        docs = visits["doctor_id"].value_counts().index[:2].tolist()
        fills = c[(c["care_type"] == "pharmacy") & c["diagnosis"].isin(visits["diagnosis"].unique())]
        fills = fills[fills["claim_id"].isin(list(p.item_rows)) & ~fills["claim_id"].isin(list(p.claim_labels))]
        age = c["admit_date"].min().year - p.patients["birth_year"]
        pool = p.patients[(p.patients["region"] == reg) & age.between(25, 85)]["patient_id"].to_numpy()
        members = pool[p.rng.choice(len(pool), size=int(p.rng.integers(15, 31)), replace=False)]
        start, days = c["admit_date"].min(), int((p.period_end - c["admit_date"].min()) / DAY)
        local_ph = p.providers[p.ptype("pharmacy") & (p.providers["region"] == reg).to_numpy()]["provider_id"].tolist()
        done = []
        for pid in members:
            n_visits = max(1, int(p.rng.poisson(days / 30.4)))
            for _ in range(n_visits):
                day = start + int(p.rng.integers(0, days - 1)) * DAY
                v = visits.iloc[int(p.rng.integers(0, len(visits)))]
                items = p.lines_of(v["claim_id"]).drop(columns=["claim_id", "line_no", "amount"])
                done.append(p.add_claim(v, items.assign(service_date=day), patient_id=pid, admit_date=day, discharge_date=day,
                                        doctor_id=docs[int(p.rng.integers(0, len(docs)))]))
                same_dx = fills[fills["diagnosis"] == v["diagnosis"]]
                f = (same_dx if len(same_dx) else fills).iloc[int(p.rng.integers(0, len(same_dx) or len(fills)))]
                fday = day + int(p.rng.random() < 0.3) * DAY
                fday = min(fday, p.period_end)
                shop = ring_ph[int(p.rng.integers(0, len(ring_ph)))] if (ring_ph and p.rng.random() < 0.7) else local_ph[int(p.rng.integers(0, len(local_ph)))]
                fitems = p.lines_of(f["claim_id"]).drop(columns=["claim_id", "line_no", "amount"])
                fitems = fitems.assign(service_date=fday, quantity=np.ceil(fitems["quantity"] * 1.5))
                done.append(p.add_claim(f, fitems, patient_id=pid, provider_id=shop, admit_date=fday, discharge_date=fday,
                                        doctor_id=v["doctor_id"] if p.rng.random() < 0.8 else None))
        p.label("collusion_ring", claims=done, providers=[clinic, *ring_ph], patients=members)


PLANTERS = {
    "phantom_services": plant_phantom_services, "upcoding": plant_upcoding, "drug_swapping": plant_drug_swapping,
    "over_charging": plant_over_charging, "decomposed_stay": plant_decomposed_stay,
    "fake_admission": plant_fake_admission, "bed_hanging": plant_bed_hanging, "card_lending": plant_card_lending,
    "drug_reselling": plant_drug_reselling, "collusion_ring": plant_collusion_ring,
}


def foreign_batch(claims: int, seed: int, out: Path) -> tuple[Batch, Labels, Batch]:
    """Generate a clean batch, plant every scheme, write it with labels to ``out`` and read it back validated.

    Returns the foreign batch, its labels and the clean batch it was planted in.
    """
    with tempfile.TemporaryDirectory(prefix="fk-foreign-") as tmp:
        clean = clean_batch(claims, seed, Path(tmp) / "clean")
    planter = Planter(clean, seed)
    for name in SCHEME_ORDER:  # each scheme takes its own providers: no provider commits two
        PLANTERS[name](planter)
    batch, labels = planter.finish()
    write_batch(batch, out, labels=labels)
    return load_batch(out), load_labels(out), clean  # load_batch refuses a batch that breaks the contract


# --------------------------------------------------------------------------- scoring
def measure(batch: Batch, labels: Labels) -> dict[str, dict]:
    """Metrics of the shipped default model and of a model fitted on the batch itself.

    Scoring the CLEAN batch with the foreign batch's provider labels gives the control: how
    high the chosen providers rank before any fraud is planted (the ranking favours some
    provider types and sizes whatever they bill; recall above the control is what the
    planted fraud itself earned).
    """
    models = {"default model": resolve_model(None)}
    t0 = time.perf_counter()
    models["fit on batch"] = FraudModel(ModelConfig()).fit(batch)
    fit_s = time.perf_counter() - t0
    out = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        result = model.score(batch)
        m = evaluate(labels, batch.claims, result.claims.set_index("claim_id")["suspicion"],
                     result.providers.set_index("provider_id")["suspicion"])
        m["seconds"] = time.perf_counter() - t0 + (fit_s if name == "fit on batch" else 0.0)
        out[name] = m
    return out


def table(results: dict[str, dict], labels: Labels, batch: Batch) -> pd.DataFrame:
    """One row per scheme (plus overall rows), provider recall@k and claim recall in the top 5 % per model."""
    fraud_claims = labels.claims[labels.claims["fraud_type"] != ""]
    n_claims = fraud_claims["fraud_type"].str.split(";").explode().value_counts()
    provs = labels.providers[labels.providers["fraud_type"] != ""]
    n_provs = provs["fraud_type"].str.split(";").explode().value_counts()
    fund = batch.claims.set_index("claim_id")["fund_paid"]
    money = fraud_claims.assign(f=fund.reindex(fraud_claims["claim_id"]).to_numpy()).assign(
        s=lambda d: d["fraud_type"].str.split(";")).explode("s").groupby("s")["f"].sum()
    rows = []
    for scheme in SCHEME_ORDER:
        row = {"scheme": scheme, "providers": int(n_provs.get(scheme, 0)), "claims": int(n_claims.get(scheme, 0)),
               "fund_paid": float(money.get(scheme, 0.0))}
        for model, m in results.items():
            short = "default" if model.startswith("default") else "refit"
            row[f"{short} prov recall@k"] = m.get(f"providers.recall_at_k.{scheme}", np.nan)
            row[f"{short} claim recall top5%"] = m.get(f"claims.recall_top.{scheme}", np.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    overall = {"scheme": "ALL", "providers": int(len(provs)), "claims": int(len(fraud_claims)),
               "fund_paid": float(fund.reindex(fraud_claims["claim_id"]).sum())}
    for model, m in results.items():
        short = "default" if model.startswith("default") else "refit"
        overall[f"{short} prov recall@k"] = m["providers.recall_at_k"]
        overall[f"{short} claim recall top5%"] = m["claims.recall_top"]
    return pd.concat([frame, pd.DataFrame([overall])], ignore_index=True)


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (floats to 3 decimals, NaN as "-"), without tabulate."""
    def cell(v) -> str:
        if isinstance(v, float):
            return "-" if np.isnan(v) else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3f}"
        return str(v)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the foreign batch (with labels/) here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fk-foreign-batch-") as tmp:
        out = args.out or Path(tmp) / "batch"
        batch, labels, clean = foreign_batch(args.claims, args.seed, out)
        plant_s = time.perf_counter() - t0
        results = measure(batch, labels)
    control_labels = Labels(claims=pd.DataFrame({"claim_id": clean.claims["claim_id"], "fraud_type": ""}),
                            providers=labels.providers)
    control = measure(clean, control_labels)
    per_scheme = table(results, labels, batch)
    for model, m in control.items():
        short = "default" if model.startswith("default") else "refit"
        per_scheme.insert(per_scheme.columns.get_loc(f"{short} prov recall@k") + 1, f"{short} clean control",
                          [m.get(f"providers.recall_at_k.{s}", np.nan) if s != "ALL" else m["providers.recall_at_k"]
                           for s in per_scheme["scheme"]])
    summary = pd.DataFrame([{
        "model": model, "k": int(m["k"]), "precision@k": m["providers.precision_at_k"],
        "money top 5% providers": m["providers.money_top"], "money@k": m["providers.money_at_k"],
        "provider PR-AUC": m["providers.pr_auc"], "claim PR-AUC": m["claims.pr_auc"],
        "claim recall top 5%": m["claims.recall_top"], "seconds": m["seconds"],
    } for model, m in results.items()] + [{
        "model": f"{model}, clean control", "k": int(m["k"]), "precision@k": m["providers.precision_at_k"],
        "provider PR-AUC": m["providers.pr_auc"], "seconds": m["seconds"],
    } for model, m in control.items()])
    print(f"# fraudkit on a foreign batch\n\n`python benchmarks/foreign.py --claims {args.claims} --seed {args.seed}`: "
          f"{len(batch.claims):,} claims, {len(batch.providers)} providers, "
          f"{int(labels.fraudulent('providers').sum())} planted fraudulent providers, "
          f"{int(labels.fraudulent('claims').sum()):,} fraudulent claims (built in {plant_s:.0f} s)\n")
    print(markdown(summary))
    print()
    print(markdown(per_scheme))
    print("\nprov recall@k: share of the scheme's planted providers among the top k providers (k = all planted "
          "fraudulent providers); clean control: the same for the same providers in the clean batch, before planting; "
          "claim recall top5%: share of the scheme's claims among the 5 % most suspicious claims; fund_paid: of the "
          "scheme's claims. card_lending has patient actors only.")


if __name__ == "__main__":
    main()
